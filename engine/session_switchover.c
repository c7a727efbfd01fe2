/* SPDX-License-Identifier: MIT */
/*
 * session_switchover.c — stop, final copy, hand-over, and failure handling.
 *
 * Downtime (architecture.md): source side = stop callback → COMPLETE sent
 * (QEMU's definition); end to end = stop → RESUMED received, minus the time
 * the destination spent hashing its RAM for verification (reported apart).
 *
 * Failure, nothing lost: whatever fails after the stop (peer gone, timeout,
 * device error, cancel), the devices go back to RUNNING and the vCPUs are
 * resumed before the error is returned, so the VM keeps running here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "engine_internal.h"
#include "sl_vfio.h"

/* Marks the session failed, brings the VM (and devices) back to running
 * when we had stopped it, and returns err. The first error's text stays. */
int sl_session_fail(struct sl_session *s, int err)
{
	const char *what = err == -ECANCELED ? "cancelled" : "failed";

	if (s->phase == SL_PHASE_FAILED)
		return err;
	s->phase = SL_PHASE_FAILED;
	if (s->t_setup_start) {
		struct sl_sender_stats st;

		s->stats.total_ns = sl_now_ns() - s->t_setup_start;
		if (s->sender) {
			sl_sender_get_stats(s->sender, &st);
			s->stats.throughput_bps = s->stats.total_ns
				? (uint64_t)((double)(st.page_bytes + st.device_bytes) * 1e9 /
					     (double)s->stats.total_ns) : 0;
		}
	}
	if (err != -ECANCELED) {
		char prev[SL_ERRMSG_MAX];

		snprintf(prev, sizeof(prev), "%s", s->err.msg);
		if (s->vm_stopped)
			sl_err(&s->err, err, "during stop-and-copy: %s", prev);
		else if (s->generation)
			sl_err(&s->err, err, "during precopy iteration %u: %s", s->generation, prev);
	}
	snprintf(s->stats.outcome, sizeof(s->stats.outcome), "%s", err == -ECANCELED ? "cancelled" : "failed");
	/* Stop the channels first so nothing more leaves. */
	if (s->sender)
		sl_sender_cancel(s->sender);
	if (s->devices) {
		int r = sl_devset_abort_to_running(s->devices);

		if (r < 0)
			sl_session_log(s, SL_LOG_ERR, "devices did not all return to RUNNING: %s",
				       sl_devset_last_error(s->devices));
	}
	if (s->vm_stopped && s->have_ops) {
		int r = s->ops.resume(s->vmm);

		if (r < 0) {
			char prev[SL_ERRMSG_MAX];

			snprintf(prev, sizeof(prev), "%s", s->err.msg);
			sl_err(&s->err, err, "%s; resuming the source VM ALSO failed (%d)", prev, r);
			return err;
		}
		s->vm_stopped = false;
		{
			char prev[SL_ERRMSG_MAX];

			snprintf(prev, sizeof(prev), "%s", s->err.msg);
			sl_err(&s->err, err, "%s (source VM resumed)", prev);
		}
	}
	sl_session_log(s, SL_LOG_ERR, "migration %s: %s", what, s->err.msg);
	return err;
}

static int save_and_send_state(struct sl_session *s)
{
	size_t cap = 64 << 10;
	void *buf = NULL;
	ssize_t n;
	int ret;

	if (!s->ops.save_state)
		return 0;
	for (;;) {
		void *nb = realloc(buf, cap);

		if (!nb) {
			free(buf);
			return sl_err(&s->err, -ENOMEM, "saving CPU state: out of memory");
		}
		buf = nb;
		n = s->ops.save_state(s->vmm, buf, cap);
		if (n != -ENOSPC || cap >= SL_STATE_MAX)
			break;
		cap *= 2;
	}
	if (n < 0) {
		free(buf);
		return sl_err(&s->err, (int)n, "saving CPU/config state: the VMM's save_state failed (%s)",
			      strerror((int)-n));
	}
	ret = sl_sender_send_state(s->sender, 1, buf, (size_t)n);
	free(buf);
	if (ret < 0)
		return sl_err(&s->err, ret, "sending CPU state: %s", sl_sender_last_error(s->sender));
	s->stats.downtime_bytes += (uint64_t)n;
	return 0;
}

SL_EXPORT int sl_session_switchover(struct sl_session *s)
{
	struct sl_sender_stats a, b;
	struct sl_resumed_info info;
	uint64_t t_stop, t_sync, t_ram, t_dev, t_complete, t_resumed, sync_ns = 0;
	int64_t found;
	int ret;

	if (!s)
		return -EINVAL;
	if (s->phase != SL_PHASE_CONNECTED)
		return sl_err(&s->err, s->phase == SL_PHASE_FAILED ? -EPIPE : -EINVAL,
			      "switchover: the session is not connected");
	if (atomic_load(&s->cancelled))
		return sl_session_fail(s, sl_err(&s->err, -ECANCELED, "migration cancelled"));
	sl_sender_get_stats(s->sender, &a);

	t_stop = sl_now_ns();
	/* The bandwidth limit bounds the live phase's use of the link; with
	 * the VM stopped every millisecond is downtime, so the rest goes as
	 * fast as the link allows (QEMU lifts max-bandwidth here too). */
	if (s->cfg.bandwidth_bps)
		sl_sender_set_bandwidth(s->sender, 0);
	ret = s->ops.stop(s->vmm);
	s->vm_stopped = true; /* resume even after a partial stop */
	if (ret < 0)
		return sl_session_fail(s, sl_err(&s->err, ret, "stopping the VM: the VMM's stop failed (%s)",
						  strerror(-ret)));
	if (s->devices) {
		ret = sl_devset_stop(s->devices);
		if (ret < 0)
			return sl_session_fail(s, sl_err(&s->err, ret, "stopping devices: %s",
							  sl_devset_last_error(s->devices)));
	}

	/* Final sync: what was written since the last one joins the pending set. */
	found = sl_session_sync_all(s, &sync_ns);
	if (found < 0)
		return sl_session_fail(s, (int)found);
	t_sync = sl_now_ns();
	s->generation++;
	ret = sl_session_scan_all(s);
	if (ret >= 0)
		ret = sl_session_send_jobs(s, false); /* stopped: nothing to re-arm */
	if (ret >= 0) {
		sl_session_busy(s, true);
		ret = sl_sender_flush(s->sender);
		sl_session_busy(s, false);
		if (ret < 0) {
			ret = sl_session_transport_err(s, ret);
			sl_err(&s->err, ret, "final RAM: %s", sl_session_transport_msg(s));
		}
	}
	if (ret < 0)
		return sl_session_fail(s, ret);
	t_ram = sl_now_ns();

	if (s->devices) {
		int64_t n = sl_devset_stopcopy_read_all(s->devices);

		if (n < 0)
			return sl_session_fail(s, sl_err(&s->err, (int)n, "device stop-and-copy: %s",
							  sl_devset_last_error(s->devices)));
	}
	t_dev = sl_now_ns();

	ret = save_and_send_state(s);
	if (ret < 0)
		return sl_session_fail(s, ret);
	sl_session_busy(s, true);
	ret = sl_sender_complete(s->sender);
	sl_session_busy(s, false);
	if (ret < 0) {
		ret = sl_session_transport_err(s, ret);
		return sl_session_fail(s, sl_err(&s->err, ret, "sending COMPLETE: %s",
						  sl_session_transport_msg(s)));
	}
	t_complete = sl_now_ns();

	memset(&info, 0, sizeof(info));
	ret = sl_sender_wait_resumed(s->sender, 0, &info);
	t_resumed = sl_now_ns();
	if (ret < 0) {
		const char *why = ret == -ETIMEDOUT ? "the destination did not answer in time"
				  : info.msg[0] ? info.msg : sl_sender_last_error(s->sender);

		return sl_session_fail(s, sl_err(&s->err, ret,
						  "waiting for the destination to resume: %s", why));
	}
	if (sl_dest_report_parse(info.msg, &s->dest) < 0)
		memset(&s->dest, 0, sizeof(s->dest));

	if (s->devices) {
		ret = sl_devset_complete(s->devices);
		if (ret < 0)
			sl_session_log(s, SL_LOG_WARNING, "devices: STOP_COPY -> STOP after success: %s",
				       sl_devset_last_error(s->devices));
	}
	sl_sender_get_stats(s->sender, &b);
	s->stats.downtime_bytes += (b.page_bytes - a.page_bytes) + (b.device_bytes - a.device_bytes);
	s->stats.downtime_ns = t_complete - t_stop;
	s->stats.e2e_downtime_ns = t_resumed - t_stop;
	/* The destination's verification hash sat on the critical path
	 * (before its resume); a production destination does not hash, so it
	 * is taken out. The hash may have overlapped the end of our own
	 * COMPLETE flush (zero-copy completions), hence the floor: RESUMED is
	 * never handled before COMPLETE was sent. */
	if (s->dest.has_hash && s->stats.e2e_downtime_ns > s->dest.hash_ns)
		s->stats.e2e_downtime_ns = SL_MAX(s->stats.e2e_downtime_ns - s->dest.hash_ns,
						  s->stats.downtime_ns);
	s->stats.breakdown.final_sync_ns = t_sync - t_stop;
	s->stats.breakdown.final_ram_ns = t_ram - t_sync;
	s->stats.breakdown.device_ns = t_dev - t_ram;
	s->stats.breakdown.state_ns = t_complete - t_dev;
	s->stats.breakdown.dest_load_ns = s->dest.valid ? s->dest.load_ns : 0;
	{
		uint64_t after = t_resumed - t_complete;

		if (s->dest.has_hash)
			after = after > s->dest.hash_ns ? after - s->dest.hash_ns : 0;
		s->stats.breakdown.resume_ns = after > s->stats.breakdown.dest_load_ns
			? after - s->stats.breakdown.dest_load_ns : 0;
	}
	/* Total time excludes the same verification hash (what e2e dropped). */
	s->stats.total_ns = t_resumed - s->t_setup_start - ((t_resumed - t_stop) - s->stats.e2e_downtime_ns);
	s->stats.remaining_bytes = 0;
	s->stats.throughput_bps = s->stats.total_ns
		? (uint64_t)((double)(b.page_bytes + b.device_bytes) * 1e9 / (double)s->stats.total_ns) : 0;
	sl_session_watchdog_stop(s);
	s->phase = SL_PHASE_DONE;
	snprintf(s->stats.outcome, sizeof(s->stats.outcome), "completed");
	sl_session_log(s, SL_LOG_INFO, "switched over: downtime %.2f ms (end to end %.2f ms)",
		       (double)s->stats.downtime_ns / 1e6, (double)s->stats.e2e_downtime_ns / 1e6);
	return 0;
}

/* ---- the destination's report inside RESUMED ----------------------------- */

int sl_dest_report_format(const struct sl_dest_report *r, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "{\"load_ns\":%llu,\"resume_ns\":%llu,\"hash\":\"%016llx\",\"has_hash\":%s,\"hash_ns\":%llu}",
			 (unsigned long long)r->load_ns, (unsigned long long)r->resume_ns,
			 (unsigned long long)r->ram_hash, r->has_hash ? "true" : "false",
			 (unsigned long long)r->hash_ns);

	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return (uint64_t)json_object_get_int64(v);
}

int sl_dest_report_parse(const char *text, struct sl_dest_report *r)
{
	struct json_object *o, *v;

	memset(r, 0, sizeof(*r));
	o = json_tokener_parse(text);
	if (!o)
		return -EINVAL;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EINVAL;
	}
	r->load_ns = get_u64(o, "load_ns");
	r->resume_ns = get_u64(o, "resume_ns");
	r->hash_ns = get_u64(o, "hash_ns");
	if (json_object_object_get_ex(o, "has_hash", &v))
		r->has_hash = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "hash", &v))
		r->ram_hash = strtoull(json_object_get_string(v), NULL, 16);
	r->valid = true;
	json_object_put(o);
	return 0;
}
