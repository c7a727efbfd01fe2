/* SPDX-License-Identifier: MIT */
/*
 * cmd_run_source.c — the source side shared by `sluice run` and `sluice
 * send`: a session over the workload's RAM, connect, migrate, and on success
 * the hash of the (stopped) source memory for verification.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd_run.h"

struct src_ctx {
	struct sl_vm_ops inner;
	void *inner_vmm;
	const struct run_hooks *hooks;
	struct run_result *res;
};

static int hook_stop(void *ctx)
{
	struct src_ctx *c = ctx;
	int ret = c->inner.stop(c->inner_vmm);

	if (ret == 0 && c->hooks && c->hooks->stopped)
		c->hooks->stopped(c->hooks->ctx);
	return ret;
}

static int hook_resume(void *ctx)
{
	struct src_ctx *c = ctx;

	return c->inner.resume(c->inner_vmm);
}

static ssize_t hook_save(void *ctx, void *buf, size_t cap)
{
	struct src_ctx *c = ctx;

	return c->inner.save_state(c->inner_vmm, buf, cap);
}

static void hook_throttle(void *ctx, unsigned pct)
{
	struct src_ctx *c = ctx;

	c->res->throttle_calls++;
	c->res->throttle_pct = pct;
	c->inner.throttle(c->inner_vmm, pct);
}

static void hook_iter(void *ctx, const struct sl_iter_record *rec)
{
	struct src_ctx *c = ctx;

	if (c->hooks && c->hooks->iteration)
		c->hooks->iteration(c->hooks->ctx, rec);
}

int run_source(const struct run_opts *o, struct wl_source *w, const char *url,
	       const uint8_t *psk, size_t psk_len, const struct run_hooks *hooks,
	       struct run_result *res)
{
	struct sl_session_config cfg;
	struct sl_policy_config pol;
	struct sl_session *s = NULL;
	struct sl_vm_ops ops;
	struct src_ctx c;
	struct sl_errbuf eb = { { 0 } };
	int ret;

	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.channels = o->channels;
	cfg.downtime_limit_ns = o->downtime_limit_ns;
	cfg.bandwidth_bps = o->bandwidth;
	cfg.zero_copy = o->zc;
	cfg.psk = psk;
	cfg.psk_len = psk_len;
	cfg.peer_timeout_ns = o->timeout_ns;
	cfg.log = run_log;
	memset(&pol, 0, sizeof(pol));
	pol.size = sizeof(pol);
	pol.kind = o->policy;
	pol.downtime_limit_ns = o->downtime_limit_ns;
	pol.bandwidth_bps = o->bandwidth;
	pol.max_iterations = o->max_iterations;
	pol.stall_action = o->stall;
	cfg.policy = &pol;

	ret = sl_session_new(&cfg, &s, &eb);
	if (ret < 0) {
		res->err = ret;
		snprintf(res->msg, sizeof(res->msg), "%s", eb.msg);
		return ret;
	}
	ret = wl_source_register(w, s, &eb);
	if (ret < 0) {
		snprintf(res->msg, sizeof(res->msg), "%s", eb.msg);
		goto out;
	}
	memset(&c, 0, sizeof(c));
	wl_source_vm_ops(w, &c.inner, &c.inner_vmm);
	c.hooks = hooks;
	c.res = res;
	ops = c.inner;
	ops.stop = hook_stop;
	ops.resume = hook_resume;
	ops.save_state = c.inner.save_state ? hook_save : NULL;
	ops.throttle = c.inner.throttle ? hook_throttle : NULL;
	ops.iteration_done = hook_iter;
	sl_session_set_vm_ops(s, &ops, &c);

	ret = sl_session_connect(s, url);
	if (ret < 0) {
		snprintf(res->msg, sizeof(res->msg), "%s", sl_session_last_error(s));
		goto out;
	}
	ret = sl_session_migrate(s, &res->stats);
	if (ret < 0) {
		snprintf(res->msg, sizeof(res->msg), "%s", sl_session_last_error(s));
		goto out;
	}
	sl_session_dest_report(s, &res->dest);
	res->ndevices = wl_source_device_bytes(w, res->dev_precopy, res->dev_stopcopy, RUN_MAX_DEVICES);
	/* The VM stays stopped here after a successful migration, so its
	 * memory is exactly what the destination received. */
	if (o->verify) {
		res->source_hash = sl_session_ram_hash(s);
		res->ndevices = wl_source_device_hashes(w, res->dev_hash, RUN_MAX_DEVICES);
	}
out:
	if (ret < 0 && !res->stats.n_iter)
		sl_session_get_stats(s, &res->stats);
	res->err = ret;
	sl_session_free(&s);
	return ret;
}
