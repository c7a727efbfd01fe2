/* SPDX-License-Identifier: MIT */
/*
 * session.c — the source session: configuration, registration, connect,
 * the precopy iteration and the one-call migrate. The switchover lives in
 * session_switchover.c, scanning in session_scan.c, sending in
 * session_send.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "engine_internal.h"
#include "sl_vfio.h"

void sl_session_log(struct sl_session *s, enum sl_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!s->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->cfg.log(s->cfg.log_ctx, lvl, msg);
}

const char *sl_zc_stats_name(enum sl_zc_mode m)
{
	switch (m) {
	case SL_ZC_URING: return "send_zc";
	case SL_ZC_MSG: return "msg_zerocopy";
	case SL_ZC_OFF: return "copy";
	default: return "auto";
	}
}

SL_EXPORT int sl_session_new(const struct sl_session_config *cfg, struct sl_session **out,
			     struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct sl_session *s;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "session: out is NULL");
	*out = NULL;
	if (!cfg || cfg->size < sizeof(*cfg))
		return sl_err(eb, -EINVAL, "session: config missing or its size field is wrong");
	if (cfg->channels > 64)
		return sl_err(eb, -EINVAL, "session: %u channels (1..64)", cfg->channels);
	if (!cfg->psk || !cfg->psk_len || cfg->psk_len > 4096)
		return sl_err(eb, -EINVAL, "session: a pre-shared key of 1..4096 bytes is required");
	if (cfg->page_size && (cfg->page_size & (cfg->page_size - 1)))
		return sl_err(eb, -EINVAL, "session: page size %u is not a power of two",
			      cfg->page_size);
	if ((unsigned)cfg->zero_copy > SL_ZERO_COPY_OFF)
		return sl_err(eb, -EINVAL, "session: unknown zero-copy mode %d", (int)cfg->zero_copy);

	s = calloc(1, sizeof(*s));
	if (!s)
		return sl_err(eb, -ENOMEM, "session: out of memory");
	s->cfg = *cfg;
	s->cfg.policy = NULL;
	if (!s->cfg.channels)
		s->cfg.channels = SL_DEFAULT_CHANNELS;
	if (!s->cfg.downtime_limit_ns)
		s->cfg.downtime_limit_ns = SL_DEFAULT_DOWNTIME_NS;
	if (!s->cfg.peer_timeout_ns)
		s->cfg.peer_timeout_ns = SL_DEFAULT_TIMEOUT_NS;
	if (!s->cfg.page_size)
		s->cfg.page_size = SL_DEFAULT_PAGE_SIZE;
	if (!s->cfg.scan_workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		s->cfg.scan_workers = (unsigned)SL_MIN(SL_MAX((long)1, n), (long)SL_MAX_SCAN_WORKERS);
	}
	s->psk = malloc(cfg->psk_len);
	if (!s->psk) {
		free(s);
		return sl_err(eb, -ENOMEM, "session: out of memory");
	}
	memcpy(s->psk, cfg->psk, cfg->psk_len);
	s->cfg.psk = s->psk;

	if (cfg->policy) {
		if (cfg->policy->size < sizeof(s->policy_cfg)) {
			sl_session_free(&s);
			return sl_err(eb, -EINVAL, "session: policy config size field is wrong");
		}
		s->policy_cfg = *cfg->policy;
	} else {
		s->policy_cfg.size = sizeof(s->policy_cfg);
		s->policy_cfg.kind = SL_POLICY_THRESHOLD;
		s->policy_cfg.max_iterations = 60;
		s->policy_cfg.bound_action = SL_BOUND_FAIL;
	}
	if (!s->policy_cfg.downtime_limit_ns)
		s->policy_cfg.downtime_limit_ns = s->cfg.downtime_limit_ns;
	if (!s->policy_cfg.bandwidth_bps)
		s->policy_cfg.bandwidth_bps = s->cfg.bandwidth_bps;
	ret = sl_policy_new(&s->policy_cfg, &s->policy, eb);
	if (ret < 0) {
		sl_session_free(&s);
		return ret;
	}

	sl_stats_init(&s->stats);
	s->stats.page_size = s->cfg.page_size;
	s->stats.channels = s->cfg.channels;
	s->stats.downtime_limit_ns = s->policy_cfg.downtime_limit_ns;
	s->stats.bandwidth_limit_bps = s->cfg.bandwidth_bps;
	snprintf(s->stats.policy, sizeof(s->stats.policy), "%s", sl_policy_name(s->policy));
	snprintf(s->stats.zero_copy_mode, sizeof(s->stats.zero_copy_mode), "%s",
		 sl_zc_stats_name((enum sl_zc_mode)s->cfg.zero_copy));
	snprintf(s->stats.outcome, sizeof(s->stats.outcome), "not-started");
	atomic_init(&s->cancelled, false);
	*out = s;
	return 0;
}

SL_EXPORT void sl_session_free(struct sl_session **sp)
{
	struct sl_session *s;

	if (!sp || !*sp)
		return;
	s = *sp;
	sl_session_watchdog_stop(s);
	sl_session_scan_teardown(s);
	sl_sender_free(&s->sender);
	for (size_t i = 0; i < s->nregions; i++) {
		if (s->regions[i].started_here)
			sl_dirty_stop(s->regions[i].dirty);
		free(s->regions[i].bitmap);
	}
	free(s->regions);
	sl_policy_free(&s->policy);
	sl_stats_exit(&s->stats);
	if (s->psk) {
		memset(s->psk, 0, s->cfg.psk_len);
		free(s->psk);
	}
	free(s);
	*sp = NULL;
}

SL_EXPORT int sl_session_add_ram(struct sl_session *s, const struct sl_ram_config *ram)
{
	struct sl_region *r, *grown;
	uint64_t ps;

	if (!s)
		return -EINVAL;
	ps = s->cfg.page_size;
	if (s->phase != SL_PHASE_NEW)
		return sl_err(&s->err, -EBUSY, "add_ram: the session is already connected");
	if (!ram || ram->size < sizeof(*ram) || !ram->host || !ram->length || !ram->dirty)
		return sl_err(&s->err, -EINVAL, "add_ram: host, length and a dirty source are required");
	if ((uintptr_t)ram->host % ps || ram->length % ps)
		return sl_err(&s->err, -EINVAL,
			      "add_ram: host %p / length %llu not aligned to the %llu-byte page",
			      ram->host, (unsigned long long)ram->length, (unsigned long long)ps);
	if (sl_dirty_npages(ram->dirty) != ram->length / ps)
		return sl_err(&s->err, -EINVAL,
			      "add_ram: dirty source tracks %llu pages, region has %llu",
			      (unsigned long long)sl_dirty_npages(ram->dirty),
			      (unsigned long long)(ram->length / ps));
	grown = realloc(s->regions, (s->nregions + 1) * sizeof(*grown));
	if (!grown)
		return sl_err(&s->err, -ENOMEM, "add_ram: out of memory");
	s->regions = grown;
	r = &s->regions[s->nregions];
	memset(r, 0, sizeof(*r));
	r->id = (uint32_t)s->nregions;
	r->host = ram->host;
	r->gpa = ram->gpa;
	r->length = ram->length;
	r->npages = ram->length / ps;
	r->dirty = ram->dirty;
	r->manual_clear = sl_dirty_caps(ram->dirty) & SL_DIRTY_CAP_MANUAL_CLEAR;
	r->node = -1;
	snprintf(r->name, sizeof(r->name), "%s", ram->name ? ram->name : "ram");
	r->bitmap = calloc(sl_bitmap_words(r->npages), sizeof(uint64_t));
	if (!r->bitmap)
		return sl_err(&s->err, -ENOMEM, "add_ram: out of memory for the dirty bitmap");
	s->nregions++;
	s->total_pages += r->npages;
	s->stats.total_bytes += r->length;
	return (int)r->id;
}

SL_EXPORT int sl_session_add_devices(struct sl_session *s, struct sl_devset *set)
{
	if (!s || !set)
		return -EINVAL;
	if (s->phase != SL_PHASE_NEW)
		return sl_err(&s->err, -EBUSY, "add_devices: the session is already connected");
	if (s->devices)
		return sl_err(&s->err, -EEXIST, "add_devices: a device set is already registered");
	s->devices = set;
	return 0;
}

SL_EXPORT int sl_session_set_vm_ops(struct sl_session *s, const struct sl_vm_ops *ops, void *vmm)
{
	if (!s)
		return -EINVAL;
	if (!ops || ops->size < sizeof(*ops) || !ops->stop || !ops->resume)
		return sl_err(&s->err, -EINVAL, "set_vm_ops: stop and resume callbacks are required");
	s->ops = *ops;
	s->vmm = vmm;
	s->have_ops = true;
	return 0;
}

/*
 * Channel workers go to cores of the NUMA nodes that hold the RAM they send
 * (the placement plan spreads channels over nodes by region bytes; every
 * channel carries granules of every region). Fills cpus[] and returns it, or
 * NULL (unpinned) when the topology cannot be read. Planned apart from the
 * scanners: scanning and sending are different phases of an iteration.
 */
static const cpu_set_t *plan_channels(struct sl_session *s, cpu_set_t *cpus)
{
	struct sl_region_node *rn = calloc(s->nregions ? s->nregions : 1, sizeof(*rn));
	struct sl_placement plan = { 0 };
	struct sl_errbuf eb = { { 0 } };
	uint32_t n = 0;
	int ret;

	if (!rn)
		return NULL;
	for (size_t i = 0; i < s->nregions; i++) {
		rn[i].node = sl_numa_node_of(s->regions[i].host, s->regions[i].length);
		rn[i].bytes = s->regions[i].length;
	}
	ret = sl_placement_plan_host(rn, s->nregions, 0, s->cfg.channels, &plan, &eb);
	free(rn);
	if (ret < 0) {
		sl_session_log(s, SL_LOG_INFO, "channel workers unpinned: %s", eb.msg);
		return NULL;
	}
	for (uint32_t i = 0; i < plan.n_workers; i++)
		if (plan.workers[i].role == SL_WORKER_CHANNEL && plan.workers[i].index < s->cfg.channels) {
			cpus[plan.workers[i].index] = plan.workers[i].cpus;
			n++;
		}
	sl_placement_release(&plan);
	return n == s->cfg.channels ? cpus : NULL;
}

SL_EXPORT int sl_session_connect(struct sl_session *s, const char *url)
{
	cpu_set_t chan_cpus[SL_SENDER_MAX_CHANNELS];
	struct sl_sender_config sc;
	struct sl_sender_stats st;
	struct sl_errbuf eb = { { 0 } };
	int ret;

	if (!s)
		return -EINVAL;
	if (s->phase != SL_PHASE_NEW)
		return sl_err(&s->err, -EBUSY, "connect: already connected");
	if (!url)
		return sl_err(&s->err, -EINVAL, "connect: no address");
	if (!s->nregions)
		return sl_err(&s->err, -EINVAL, "connect: no RAM registered");
	if (!s->have_ops)
		return sl_err(&s->err, -EINVAL, "connect: VM operations not set (sl_session_set_vm_ops)");
	if (atomic_load(&s->cancelled))
		return sl_err(&s->err, -ECANCELED, "connect: cancelled");
	s->t_setup_start = sl_now_ns();

	memset(&sc, 0, sizeof(sc));
	sc.size = sizeof(sc);
	sc.url = url;
	sc.nchannels = s->cfg.channels;
	sc.psk = s->psk;
	sc.psk_len = s->cfg.psk_len;
	sc.zc = (enum sl_zc_mode)s->cfg.zero_copy;
	sc.bandwidth_bps = s->cfg.bandwidth_bps;
	sc.page_size = s->cfg.page_size;
	sc.timeout_ms = (int)SL_MIN(s->cfg.peer_timeout_ns / 1000000ull, (uint64_t)INT32_MAX);
	sc.log = s->cfg.log;
	sc.log_ctx = s->cfg.log_ctx;
	sc.channel_cpus = plan_channels(s, chan_cpus);
	ret = sl_sender_new(&sc, &s->sender, &eb);
	if (ret < 0)
		return sl_err(&s->err, ret, "connect %s: %s", url, eb.msg);
	for (size_t i = 0; i < s->nregions; i++) {
		struct sl_region *r = &s->regions[i];

		ret = sl_sender_add_region(s->sender, r->id, r->host, r->length);
		if (ret < 0) {
			sl_err(&s->err, ret, "connect: registering region %s (%llu MiB) with the transport: %s",
			       r->name, (unsigned long long)(r->length >> 20),
			       sl_sender_last_error(s->sender));
			goto fail;
		}
	}
	ret = sl_session_scan_setup(s);
	if (ret < 0)
		goto fail;
	ret = sl_session_watchdog_start(s);
	if (ret < 0)
		goto fail;
	/* Start tracking before the first copy: every write from here on is
	 * caught. The first iteration sends everything (all bits set). */
	for (size_t i = 0; i < s->nregions; i++) {
		struct sl_region *r = &s->regions[i];

		ret = sl_dirty_start(r->dirty);
		if (ret == -EALREADY || ret == -EBUSY) {
			ret = 0; /* the VMM started it */
		} else if (ret < 0) {
			sl_err(&s->err, ret, "connect: starting dirty tracking (%s) on %s: %s",
			       sl_dirty_name(r->dirty), r->name, sl_dirty_last_error(r->dirty));
			goto fail;
		} else {
			r->started_here = true;
		}
		sl_bitmap_set_range(r->bitmap, r->npages, 0, r->npages);
	}
	s->pending_pages = s->total_pages;
	if (s->devices) {
		ret = sl_session_devices_attach(s);
		if (ret >= 0)
			ret = sl_devset_precopy_start(s->devices);
		if (ret < 0) {
			sl_err(&s->err, ret, "connect: devices to PRE_COPY: %s",
			       sl_devset_last_error(s->devices));
			goto fail;
		}
	}
	sl_sender_get_stats(s->sender, &st);
	snprintf(s->stats.zero_copy_mode, sizeof(s->stats.zero_copy_mode), "%s",
		 sl_zc_stats_name(st.mode));
	s->t_precopy_start = s->t_last_sync = sl_now_ns();
	s->stats.setup_ns = s->t_precopy_start - s->t_setup_start;
	s->phase = SL_PHASE_CONNECTED;
	snprintf(s->stats.outcome, sizeof(s->stats.outcome), "running");
	sl_session_log(s, SL_LOG_INFO,
		       "connected to %s: %u channels, %s, %zu regions, %llu MiB, setup %.1f ms", url,
		       s->cfg.channels, s->stats.zero_copy_mode, s->nregions,
		       (unsigned long long)(s->stats.total_bytes >> 20), (double)s->stats.setup_ns / 1e6);
	return 0;
fail:
	for (size_t i = 0; i < s->nregions; i++) {
		if (s->regions[i].started_here) {
			sl_dirty_stop(s->regions[i].dirty);
			s->regions[i].started_here = false;
		}
	}
	sl_session_watchdog_stop(s);
	sl_session_scan_teardown(s);
	sl_sender_free(&s->sender);
	return ret;
}

/* Precopy: whatever device data the devices have now (the device set reads
 * without waiting: ENOMSG / EAGAIN / 0 mean "nothing now"). */
static int precopy_devices(struct sl_session *s)
{
	int64_t n;

	if (!s->devices)
		return 0;
	n = sl_devset_precopy_read(s->devices, 0);
	if (n < 0)
		return sl_err(&s->err, (int)n, "precopy: reading device state: %s",
			      sl_devset_last_error(s->devices));
	return 0;
}

static void device_pending(struct sl_session *s, uint64_t *pending, uint64_t *initial)
{
	struct sl_devset_pending p;

	*pending = *initial = 0;
	if (!s->devices || sl_devset_pending(s->devices, &p) < 0)
		return;
	*pending = p.switchover_bytes; /* initial+dirty+stop-copy without double counting */
	*initial = p.initial_done ? 0 : p.initial_bytes;
	/* Switchover-ack: the initial data left, but the destination has not
	 * said it loaded it yet. Keep precopy going (it still sends dirty
	 * pages) for up to the peer timeout; after that switch over anyway —
	 * the loader still writes every packet in order before the device
	 * leaves RESUMING, so only downtime is at stake, not correctness. */
	if (!*initial && sl_session_acks_pending(s)) {
		uint64_t now = sl_now_ns();

		if (!s->ack_wait_start_ns)
			s->ack_wait_start_ns = now;
		if (now - s->ack_wait_start_ns < s->cfg.peer_timeout_ns) {
			*initial = 1;
		} else if (!s->ack_wait_warned) {
			s->ack_wait_warned = true;
			sl_session_log(s, SL_LOG_WARNING,
				       "no switchover acknowledgement from the destination after %.1f s: switching over without it",
				       (double)(now - s->ack_wait_start_ns) / 1e9);
		}
	}
}

SL_EXPORT int sl_session_iterate(struct sl_session *s)
{
	struct sl_sender_stats a, b;
	struct sl_iter_record rec;
	struct sl_policy_input in;
	struct sl_policy_decision d;
	uint64_t t0, t_scan, t_send, t_end, sync_ns = 0, prev_sync;
	uint64_t ps, dev_pending, dev_initial;
	int64_t found;
	int ret;

	if (!s)
		return -EINVAL;
	if (s->phase != SL_PHASE_CONNECTED)
		return sl_err(&s->err, s->phase == SL_PHASE_FAILED ? -EPIPE : -EINVAL,
			      "iterate: the session is not connected%s",
			      s->phase == SL_PHASE_FAILED ? " (it failed earlier)" : "");
	if (atomic_load(&s->cancelled))
		return sl_session_fail(s, sl_err(&s->err, -ECANCELED, "migration cancelled"));
	ps = s->cfg.page_size;
	memset(&rec, 0, sizeof(rec));
	rec.index = ++s->generation;
	rec.dirty_bytes = s->pending_pages * ps;
	sl_sender_get_stats(s->sender, &a);

	/* Scan what the last sync found (the first iteration: everything). */
	t0 = sl_now_ns();
	ret = sl_session_scan_all(s);
	if (ret < 0)
		return sl_session_fail(s, ret);
	t_scan = sl_now_ns();
	ret = sl_session_send_jobs(s, true);
	if (ret >= 0)
		ret = precopy_devices(s);
	if (ret >= 0) {
		sl_session_busy(s, true);
		ret = sl_sender_iteration_end(s->sender, s->generation);
		if (ret >= 0)
			ret = sl_sender_flush(s->sender);
		sl_session_busy(s, false);
		if (ret < 0) {
			ret = sl_session_transport_err(s, ret);
			sl_err(&s->err, ret, "%s", sl_session_transport_msg(s));
		}
	}
	/* The destination's acknowledgements; also notices early that it died. */
	if (ret >= 0 && s->devices)
		ret = sl_session_poll_acks(s);
	if (ret < 0)
		return sl_session_fail(s, ret);
	t_send = sl_now_ns();

	/* Sync at the end: the pages written while we sent are what stopping
	 * now would leave (the policy's exact input, as QEMU does near the
	 * threshold). */
	prev_sync = s->t_last_sync;
	found = sl_session_sync_all(s, &sync_ns);
	if (found < 0)
		return sl_session_fail(s, (int)found);
	t_end = sl_now_ns();
	s->t_last_sync = t_end;
	s->pending_pages = (uint64_t)found;
	sl_sender_get_stats(s->sender, &b);
	device_pending(s, &dev_pending, &dev_initial);

	rec.device_sent_bytes = b.device_bytes - a.device_bytes;
	rec.sent_bytes = (b.page_bytes - a.page_bytes) + rec.device_sent_bytes;
	rec.zero_pages = b.zero_pages - a.zero_pages;
	rec.normal_pages = b.pages - a.pages;
	rec.sync_ns = sync_ns;
	rec.scan_ns = t_scan - t0;
	rec.send_ns = t_send - t_scan;
	rec.duration_ns = t_end - t0;
	rec.bandwidth_bps = rec.send_ns ? (uint64_t)((double)(b.bytes - a.bytes) * 1e9 / (double)rec.send_ns) : 0;
	if (rec.bandwidth_bps == 0 || b.bytes - a.bytes < (1u << 20))
		/* Too little sent to measure: keep the previous figure. */
		rec.bandwidth_bps = s->stats.n_iter ? s->stats.iter[s->stats.n_iter - 1].bandwidth_bps
				    : rec.bandwidth_bps;
	rec.dirty_rate_bps = t_end > prev_sync
		? (uint64_t)((double)s->pending_pages * (double)ps * 1e9 / (double)(t_end - prev_sync)) : 0;
	rec.pending_bytes = s->pending_pages * ps;
	rec.device_pending_bytes = dev_pending;
	rec.predicted_downtime_ns = sl_policy_transfer_ns(rec.pending_bytes + dev_pending,
							  rec.bandwidth_bps);
	ret = sl_stats_add_iter(&s->stats, &rec);
	if (ret < 0)
		return sl_session_fail(s, sl_err(&s->err, ret, "iterate: out of memory for stats"));
	s->stats.precopy_bytes += rec.sent_bytes;
	s->stats.dirty_pages_rate = ps ? rec.dirty_rate_bps / ps : 0;
	s->stats.remaining_bytes = rec.pending_bytes;
	if (s->ops.iteration_done)
		s->ops.iteration_done(s->vmm, &rec);

	memset(&in, 0, sizeof(in));
	in.size = sizeof(in);
	in.iters = s->stats.iter;
	in.n_iters = s->stats.n_iter;
	in.pending_ram_bytes = rec.pending_bytes;
	in.pending_device_bytes = dev_pending;
	in.device_initial_bytes = dev_initial;
	in.elapsed_ns = t_end - s->t_precopy_start;
	memset(&d, 0, sizeof(d));
	ret = sl_policy_decide(s->policy, &in, &d);
	if (ret < 0)
		return sl_session_fail(s, sl_err(&s->err, ret, "policy: bad input"));
	sl_session_log(s, SL_LOG_INFO,
		       "iteration %u: sent %.1f MiB in %.1f ms (%.0f MB/s), pending %.1f MiB, predicted downtime %.1f ms: %s (%s)",
		       rec.index, (double)rec.sent_bytes / 1048576.0, (double)rec.send_ns / 1e6,
		       (double)rec.bandwidth_bps / 1e6, (double)rec.pending_bytes / 1048576.0,
		       rec.predicted_downtime_ns == UINT64_MAX ? -1.0 : (double)rec.predicted_downtime_ns / 1e6,
		       sl_decision_action_name(d.action), sl_decision_reason_name(d.reason));
	switch (d.action) {
	case SL_DECIDE_SWITCHOVER:
		return 1;
	case SL_DECIDE_THROTTLE:
		if (s->ops.throttle)
			s->ops.throttle(s->vmm, d.throttle_pct);
		return 0;
	case SL_DECIDE_FAIL:
		return sl_session_fail(s, sl_err(&s->err, -ERANGE, "migration does not converge (%s)%s%s",
						  sl_decision_reason_name(d.reason),
						  d.advice[0] ? ": " : "", d.advice));
	case SL_DECIDE_CONTINUE:
	default:
		return 0;
	}
}

SL_EXPORT int sl_session_migrate(struct sl_session *s, struct sl_migration_stats *stats)
{
	int ret;

	if (!s)
		return -EINVAL;
	do {
		ret = sl_session_iterate(s);
	} while (ret == 0);
	if (ret > 0)
		ret = sl_session_switchover(s);
	if (stats)
		sl_session_get_stats(s, stats);
	return ret;
}

SL_EXPORT int sl_session_cancel(struct sl_session *s)
{
	if (!s)
		return -EINVAL;
	atomic_store(&s->cancelled, true);
	/* The sender pointer is set once in connect (same thread as any
	 * later free); cancelling it wakes blocked sends and waits. */
	if (s->sender)
		sl_sender_cancel(s->sender);
	return 0;
}

SL_EXPORT int sl_session_get_stats(struct sl_session *s, struct sl_migration_stats *out)
{
	if (!s || !out)
		return -EINVAL;
	if (s->sender) {
		struct sl_sender_stats st;

		sl_sender_get_stats(s->sender, &st);
		s->stats.transferred_bytes = st.page_bytes + st.device_bytes;
		s->stats.zero_pages = st.zero_pages;
		s->stats.normal_pages = st.pages;
		s->stats.kernel_copied_bytes = st.kernel_copied_bytes;
		s->stats.device_bytes = st.device_bytes;
	}
	return sl_stats_copy(out, &s->stats);
}

SL_EXPORT void sl_session_dest_report(const struct sl_session *s, struct sl_dest_report *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (s)
		*out = s->dest;
}

SL_EXPORT uint64_t sl_ram_hash(void *const *hosts, const uint64_t *lengths, size_t n)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h;

	if (!st)
		return 0;
	XXH3_64bits_reset(st);
	for (size_t i = 0; i < n; i++)
		XXH3_64bits_update(st, hosts[i], lengths[i]);
	h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

SL_EXPORT uint64_t sl_session_ram_hash(const struct sl_session *s)
{
	XXH3_state_t *st;
	uint64_t h;

	if (!s || !(st = XXH3_createState()))
		return 0;
	XXH3_64bits_reset(st);
	for (size_t i = 0; i < s->nregions; i++)
		XXH3_64bits_update(st, s->regions[i].host, s->regions[i].length);
	h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

SL_EXPORT const char *sl_session_last_error(const struct sl_session *s)
{
	return s ? s->err.msg : "no session";
}
