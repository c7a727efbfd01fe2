/* SPDX-License-Identifier: MIT */
/*
 * receiver.c — the destination: a transport receiver (io/sl_receiver.h)
 * placing pages straight into the VMM's registered RAM, plus the
 * orchestration around it: CPU/config state kept until every channel has
 * completed, devices loaded, the VMM's load and resume callbacks, and the
 * report (load/resume times, RAM hash) sent back inside RESUMED.
 *
 * Threading: sl_dest_run drives the receiver; the transport runs one thread
 * per channel and calls state()/complete() on them, so the state list is
 * guarded by a mutex. complete() runs once, after every channel finished.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"
#include "sl_receiver.h"
#include "sl_vfio.h"
#include "sl_wire.h" /* SL_ACK_* */

struct state_blob {
	uint32_t kind;
	size_t len;
	struct state_blob *next;
	unsigned char data[];
};

struct sl_dest {
	struct sl_dest_config cfg;
	uint8_t *psk;
	struct sl_receiver *rx;
	struct sl_errbuf err;
	struct sl_dest_ops ops;
	void *vmm;
	bool have_ops;
	struct sl_devset *devices;

	void **hosts;
	uint64_t *lengths;
	size_t nregions;

	pthread_mutex_t lock;
	struct state_blob *states, **tail;
	uint32_t generations;
	bool devices_started;     /* loaders running for this session */
	int devices_err;
	bool dev_acked[SL_ACK_MAX_DEVICES]; /* switchover-ack sent */

	struct sl_dest_report report;
	struct sl_migration_stats stats;
	uint64_t t_start;
};

static void dlog(struct sl_dest *d, enum sl_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void dlog(struct sl_dest *d, enum sl_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!d->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->cfg.log(d->cfg.log_ctx, lvl, msg);
}

static void drop_states(struct sl_dest *d)
{
	while (d->states) {
		struct state_blob *b = d->states;

		d->states = b->next;
		free(b);
	}
	d->tail = &d->states;
}

SL_EXPORT int sl_dest_new(const struct sl_dest_config *cfg, struct sl_dest **out,
			  struct sl_errbuf *eb)
{
	struct sl_receiver_config rc;
	struct sl_errbuf dummy;
	struct sl_dest *d;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "dest: out is NULL");
	*out = NULL;
	if (!cfg || cfg->size < sizeof(*cfg) || !cfg->listen)
		return sl_err(eb, -EINVAL, "dest: config missing, wrong size field or no listen address");
	if (!cfg->psk || !cfg->psk_len || cfg->psk_len > 4096)
		return sl_err(eb, -EINVAL, "dest: a pre-shared key of 1..4096 bytes is required");
	d = calloc(1, sizeof(*d));
	if (!d)
		return sl_err(eb, -ENOMEM, "dest: out of memory");
	d->cfg = *cfg;
	if (!d->cfg.peer_timeout_ns)
		d->cfg.peer_timeout_ns = SL_DEFAULT_TIMEOUT_NS;
	if (!d->cfg.page_size)
		d->cfg.page_size = SL_DEFAULT_PAGE_SIZE;
	d->psk = malloc(cfg->psk_len);
	if (!d->psk) {
		free(d);
		return sl_err(eb, -ENOMEM, "dest: out of memory");
	}
	memcpy(d->psk, cfg->psk, cfg->psk_len);
	d->cfg.psk = d->psk;
	d->cfg.listen = NULL; /* not kept: the caller's string */
	pthread_mutex_init(&d->lock, NULL);
	d->tail = &d->states;
	sl_stats_init(&d->stats);
	d->stats.page_size = d->cfg.page_size;

	memset(&rc, 0, sizeof(rc));
	rc.size = sizeof(rc);
	rc.url = cfg->listen;
	rc.psk = d->psk;
	rc.psk_len = cfg->psk_len;
	rc.timeout_ms = (int)SL_MIN(d->cfg.peer_timeout_ns / 1000000ull, (uint64_t)INT32_MAX);
	rc.page_size = d->cfg.page_size;
	rc.log = cfg->log;
	rc.log_ctx = cfg->log_ctx;
	ret = sl_receiver_new(&rc, &d->rx, eb);
	if (ret < 0) {
		sl_dest_free(&d);
		return ret;
	}
	*out = d;
	return 0;
}

SL_EXPORT void sl_dest_free(struct sl_dest **dp)
{
	struct sl_dest *d;

	if (!dp || !*dp)
		return;
	d = *dp;
	sl_receiver_free(&d->rx);
	drop_states(d);
	pthread_mutex_destroy(&d->lock);
	free(d->hosts);
	free(d->lengths);
	sl_stats_exit(&d->stats);
	if (d->psk) {
		memset(d->psk, 0, d->cfg.psk_len);
		free(d->psk);
	}
	free(d);
	*dp = NULL;
}

SL_EXPORT int sl_dest_port(const struct sl_dest *d)
{
	return d ? sl_receiver_port(d->rx) : -EINVAL;
}

SL_EXPORT int sl_dest_add_ram(struct sl_dest *d, const struct sl_ram_config *ram)
{
	void **h;
	uint64_t *l;
	int ret;

	if (!d)
		return -EINVAL;
	if (!ram || ram->size < sizeof(*ram) || !ram->host || !ram->length)
		return sl_err(&d->err, -EINVAL, "dest add_ram: host and length are required");
	h = realloc(d->hosts, (d->nregions + 1) * sizeof(*h));
	if (!h)
		return sl_err(&d->err, -ENOMEM, "dest add_ram: out of memory");
	d->hosts = h;
	l = realloc(d->lengths, (d->nregions + 1) * sizeof(*l));
	if (!l)
		return sl_err(&d->err, -ENOMEM, "dest add_ram: out of memory");
	d->lengths = l;
	ret = sl_receiver_add_region(d->rx, (uint32_t)d->nregions, ram->host, ram->length);
	if (ret < 0)
		return sl_err(&d->err, ret, "dest add_ram: region %zu (%p, %llu bytes) refused by the receiver",
			      d->nregions, ram->host, (unsigned long long)ram->length);
	d->hosts[d->nregions] = ram->host;
	d->lengths[d->nregions] = ram->length;
	d->stats.total_bytes += ram->length;
	return (int)d->nregions++;
}

static void on_initial_loaded(void *ctx, uint32_t dev);

SL_EXPORT int sl_dest_add_devices(struct sl_dest *d, struct sl_devset *set)
{
	if (!d || !set)
		return -EINVAL;
	if (d->devices)
		return sl_err(&d->err, -EEXIST, "dest: a device set is already registered");
	if (sl_devset_set_initial_loaded_cb(set, on_initial_loaded, d) < 0)
		return sl_err(&d->err, -EBUSY, "dest: the device set is already loading");
	d->devices = set;
	return 0;
}

SL_EXPORT int sl_dest_set_ops(struct sl_dest *d, const struct sl_dest_ops *ops, void *vmm)
{
	if (!d)
		return -EINVAL;
	if (!ops || ops->size < sizeof(*ops) || !ops->resume)
		return sl_err(&d->err, -EINVAL, "dest set_ops: a resume callback is required");
	d->ops = *ops;
	d->vmm = vmm;
	d->have_ops = true;
	return 0;
}

/* ---- transport callbacks (receiver channel threads) ---------------------- */

static int on_state(void *ctx, uint32_t kind, const void *buf, size_t len)
{
	struct sl_dest *d = ctx;
	struct state_blob *b = malloc(sizeof(*b) + len);

	if (!b)
		return -ENOMEM;
	b->kind = kind;
	b->len = len;
	b->next = NULL;
	memcpy(b->data, buf, len);
	pthread_mutex_lock(&d->lock);
	*d->tail = b;
	d->tail = &b->next;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* The device loaders start once the session runs (the transport resets
 * its reassembly store when a session begins, so not before): at the first
 * ITERATION END, or at COMPLETE for a migration without one. Packets that
 * arrive earlier wait in the store. */
static int start_devices(struct sl_dest *d)
{
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	if (d->devices && !d->devices_started) {
		ret = sl_dest_devices_start(d->devices, sl_receiver_devstore(d->rx));
		d->devices_started = true;
		d->devices_err = ret;
		if (ret < 0)
			sl_err(&d->err, ret, "devices to RESUMING: %s", sl_devset_last_error(d->devices));
	} else {
		ret = d->devices_err;
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

/* Switchover-ack: a device's loader has just written the packet that ended
 * its initial PRE_COPY data; tell the source at once (loader thread), so its
 * switchover waits no longer than the load itself. */
static void on_initial_loaded(void *ctx, uint32_t dev)
{
	struct sl_dest *d = ctx;
	int ret;

	if (dev >= SL_ACK_MAX_DEVICES)
		return;
	pthread_mutex_lock(&d->lock);
	if (!d->dev_acked[dev]) {
		ret = sl_receiver_send_ack(d->rx, SL_ACK_DEVICE_INIT_LOADED, dev, 0);
		if (ret < 0)
			dlog(d, SL_LOG_WARNING,
				    "sending the switchover acknowledgement of device %u: %s",
				    dev, strerror(-ret));
		else
			d->dev_acked[dev] = true;
	}
	pthread_mutex_unlock(&d->lock);
}

static int on_iteration_end(void *ctx, uint32_t generation)
{
	struct sl_dest *d = ctx;

	pthread_mutex_lock(&d->lock);
	if (generation > d->generations)
		d->generations = generation;
	pthread_mutex_unlock(&d->lock);
	return start_devices(d);
}

static int on_complete(void *ctx, char *msg, size_t msglen)
{
	struct sl_dest *d = ctx;
	uint64_t t0 = sl_now_ns(), t1, t2, t3;
	int ret = start_devices(d);

	if (ret < 0)
		goto fail;
	if (d->devices) {
		ret = sl_devset_resume_finish(d->devices);
		if (ret < 0) {
			sl_err(&d->err, ret, "loading device state: %s", sl_devset_last_error(d->devices));
			goto fail;
		}
	}
	pthread_mutex_lock(&d->lock);
	for (struct state_blob *b = d->states; b && ret >= 0; b = b->next) {
		if (d->ops.load_state) {
			ret = d->ops.load_state(d->vmm, b->kind, b->data, b->len);
			if (ret < 0)
				sl_err(&d->err, ret, "loading CPU/config state (kind %u, %zu bytes): the VMM's load_state failed (%s)",
				       b->kind, b->len, strerror(-ret));
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (ret < 0)
		goto fail;
	t1 = sl_now_ns();
	if (d->cfg.hash_ram) {
		d->report.ram_hash = sl_ram_hash(d->hosts, d->lengths, d->nregions);
		d->report.has_hash = true;
	}
	t2 = sl_now_ns();
	if (d->devices) {
		ret = sl_devset_resume_run(d->devices);
		if (ret < 0) {
			sl_err(&d->err, ret, "devices to RUNNING: %s", sl_devset_last_error(d->devices));
			goto fail;
		}
	}
	ret = d->ops.resume(d->vmm);
	if (ret < 0) {
		sl_err(&d->err, ret, "resuming the VM: the VMM's resume failed (%s)", strerror(-ret));
		goto fail;
	}
	t3 = sl_now_ns();
	d->report.valid = true;
	d->report.load_ns = t1 - t0;
	d->report.hash_ns = t2 - t1;
	d->report.resume_ns = t3 - t2;
	/* The report always fits (< 200 bytes of the transport's 1024). */
	sl_dest_report_format(&d->report, msg, msglen);
	return 0;
fail:
	snprintf(msg, msglen, "destination: %s", d->err.msg);
	return ret;
}

SL_EXPORT int sl_dest_run(struct sl_dest *d)
{
	struct sl_receiver_ops ops = {
		.state = on_state,
		.iteration_end = on_iteration_end,
		.complete = on_complete,
	};
	struct sl_receiver_stats st;
	struct sl_errbuf eb = { { 0 } };
	int ret;

	if (!d)
		return -EINVAL;
	if (!d->have_ops)
		return sl_err(&d->err, -EINVAL, "dest: VM operations not set (sl_dest_set_ops)");
	if (!d->nregions)
		return sl_err(&d->err, -EINVAL, "dest: no RAM registered");
	drop_states(d);
	memset(&d->report, 0, sizeof(d->report));
	d->generations = 0;
	d->err.msg[0] = 0;
	d->devices_started = false;
	d->devices_err = 0;
	memset(d->dev_acked, 0, sizeof(d->dev_acked));
	d->t_start = sl_now_ns();
	ret = sl_receiver_run_session(d->rx, &ops, d, &eb);
	sl_receiver_get_stats(d->rx, &st);
	d->stats.transferred_bytes = st.page_bytes + st.device_bytes;
	d->stats.zero_pages = st.zero_pages;
	d->stats.normal_pages = st.pages;
	d->stats.device_bytes = st.device_bytes;
	d->stats.channels = st.nchannels;
	d->stats.iterations = d->generations;
	d->stats.total_ns = sl_now_ns() - d->t_start;
	d->stats.breakdown.dest_load_ns = d->report.load_ns;
	d->stats.breakdown.resume_ns = d->report.resume_ns;
	if (ret < 0) {
		snprintf(d->stats.outcome, sizeof(d->stats.outcome), "failed");
		/* Discard the partial device state: back to RUNNING (reset). */
		if (d->devices && d->devices_started)
			sl_devset_abort_to_running(d->devices);
		/* Keep the more specific text of our own callbacks if there is one. */
		if (!d->err.msg[0])
			sl_err(&d->err, ret, "%s", eb.msg[0] ? eb.msg : strerror(-ret));
		else if (eb.msg[0]) {
			char prev[SL_ERRMSG_MAX];

			snprintf(prev, sizeof(prev), "%s", d->err.msg);
			sl_err(&d->err, ret, "%s", prev);
		}
		dlog(d, SL_LOG_ERR, "migration in failed: %s", d->err.msg);
		return ret;
	}
	snprintf(d->stats.outcome, sizeof(d->stats.outcome), "completed");
	dlog(d, SL_LOG_INFO, "migration in completed: %llu pages, %llu zero, load %.2f ms, resume %.2f ms",
	     (unsigned long long)st.pages, (unsigned long long)st.zero_pages,
	     (double)d->report.load_ns / 1e6, (double)d->report.resume_ns / 1e6);
	return 0;
}

SL_EXPORT int sl_dest_cancel(struct sl_dest *d)
{
	return d ? sl_receiver_cancel(d->rx) : -EINVAL;
}

SL_EXPORT int sl_dest_get_stats(struct sl_dest *d, struct sl_migration_stats *out)
{
	if (!d || !out)
		return -EINVAL;
	return sl_stats_copy(out, &d->stats);
}

SL_EXPORT void sl_dest_report(const struct sl_dest *d, struct sl_dest_report *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (d)
		*out = d->report;
}

SL_EXPORT const char *sl_dest_last_error(const struct sl_dest *d)
{
	return d ? d->err.msg : "no dest";
}
