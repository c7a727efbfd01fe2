/* SPDX-License-Identifier: MIT */
/*
 * policy.c — the convergence policy object and the rules every policy
 * shares: device initial data, stall detection, bounds, and the advice
 * given when a migration cannot converge. The per-kind rule lives in
 * policy_<kind>.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy_internal.h"

#define NS_PER_S UINT64_C(1000000000)
#define NS_PER_MS UINT64_C(1000000)

uint64_t sl_policy_muldiv(uint64_t a, uint64_t b, uint64_t c)
{
	unsigned __int128 r;

	if (!c)
		return (a && b) ? UINT64_MAX : 0;
	r = (unsigned __int128)a * b / c;
	return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

uint64_t sl_policy_muldiv_up(uint64_t a, uint64_t b, uint64_t c)
{
	unsigned __int128 r;

	if (!c)
		return (a && b) ? UINT64_MAX : 0;
	r = ((unsigned __int128)a * b + c - 1) / c;
	return r > UINT64_MAX ? UINT64_MAX : (uint64_t)r;
}

uint64_t sl_policy_transfer_ns(uint64_t bytes, uint64_t bps)
{
	return sl_policy_muldiv_up(bytes, NS_PER_S, bps);
}

static const char *const kind_names[] = {
	[SL_POLICY_THRESHOLD] = "threshold",
	[SL_POLICY_PREDICTIVE] = "predictive",
	[SL_POLICY_RAMP] = "ramp",
	[SL_POLICY_CUSTOM] = "custom",
};

const char *sl_policy_kind_name(enum sl_policy_kind kind)
{
	if ((unsigned)kind >= SL_ARRAY_SIZE(kind_names))
		return "unknown";
	return kind_names[kind];
}

int sl_policy_kind_from_name(const char *name, enum sl_policy_kind *out)
{
	if (!name || !out)
		return -EINVAL;
	for (unsigned i = 0; i < SL_POLICY_CUSTOM; i++) {
		if (!strcmp(name, kind_names[i])) {
			*out = (enum sl_policy_kind)i;
			return 0;
		}
	}
	return -EINVAL;
}

int sl_stall_action_from_name(const char *name, enum sl_stall_action *out)
{
	if (!name || !out)
		return -EINVAL;
	if (!strcmp(name, "fail"))
		*out = SL_STALL_FAIL;
	else if (!strcmp(name, "continue"))
		*out = SL_STALL_CONTINUE;
	else if (!strcmp(name, "throttle"))
		*out = SL_STALL_THROTTLE;
	else
		return -EINVAL;
	return 0;
}

const char *sl_decision_action_name(enum sl_decision_action a)
{
	switch (a) {
	case SL_DECIDE_CONTINUE: return "continue";
	case SL_DECIDE_SWITCHOVER: return "switchover";
	case SL_DECIDE_THROTTLE: return "throttle";
	case SL_DECIDE_FAIL: return "fail";
	}
	return "unknown";
}

const char *sl_decision_reason_name(enum sl_decision_reason r)
{
	switch (r) {
	case SL_REASON_NO_DATA: return "no_data";
	case SL_REASON_ABOVE_LIMIT: return "above_limit";
	case SL_REASON_WITHIN_LIMIT: return "within_limit";
	case SL_REASON_DEVICE_INITIAL: return "device_initial";
	case SL_REASON_PREDICT_IMPROVES: return "predict_improves";
	case SL_REASON_STALLED: return "stalled";
	case SL_REASON_PREDICT_DIVERGES: return "predict_diverges";
	case SL_REASON_MAX_ITERATIONS: return "max_iterations";
	case SL_REASON_MAX_TIME: return "max_time";
	case SL_REASON_CUSTOM: return "custom";
	}
	return "unknown";
}

static int apply_defaults(struct sl_policy_config *c, struct sl_errbuf *eb)
{
	if (!c->downtime_limit_ns)
		c->downtime_limit_ns = 300 * NS_PER_MS;
	if (!c->stall_window)
		c->stall_window = 5;
	if (!c->stall_tolerance_pct)
		c->stall_tolerance_pct = 5;
	if (c->stall_tolerance_pct > 100)
		return sl_err(eb, -EINVAL, "policy: stall tolerance %" PRIu32 "%% is above 100%%",
			      c->stall_tolerance_pct);
	if ((unsigned)c->stall_action > SL_STALL_THROTTLE)
		return sl_err(eb, -EINVAL, "policy: unknown stall action %d", (int)c->stall_action);
	if ((unsigned)c->bound_action > SL_BOUND_SWITCHOVER)
		return sl_err(eb, -EINVAL, "policy: unknown bound action %d", (int)c->bound_action);
	if (!c->throttle_initial_pct)
		c->throttle_initial_pct = 20;
	if (!c->throttle_step_pct)
		c->throttle_step_pct = 10;
	if (!c->throttle_max_pct)
		c->throttle_max_pct = 99;
	if (c->throttle_max_pct > 100 || c->throttle_initial_pct > c->throttle_max_pct)
		return sl_err(eb, -EINVAL, "policy: throttle percentages must satisfy initial <= max <= 100");
	if (!c->ramp_after)
		c->ramp_after = 5;
	if (!c->ramp_every)
		c->ramp_every = 1;
	if (!c->ramp_step_ns)
		c->ramp_step_ns = SL_MAX(c->downtime_limit_ns / 2, 1);
	if (!c->ramp_max_ns)
		c->ramp_max_ns = c->downtime_limit_ns > UINT64_MAX / 4 ? UINT64_MAX
								    : 4 * c->downtime_limit_ns;
	if (c->ramp_max_ns < c->downtime_limit_ns)
		return sl_err(eb, -EINVAL, "policy: ramp maximum %.1f ms is below the downtime limit %.1f ms",
			      (double)c->ramp_max_ns / 1e6, (double)c->downtime_limit_ns / 1e6);
	if (!c->predict_gain_pct)
		c->predict_gain_pct = 10;
	if (c->predict_gain_pct >= 100)
		return sl_err(eb, -EINVAL, "policy: predictive gain must be below 100%%");
	return 0;
}

int sl_policy_new(const struct sl_policy_config *cfg, struct sl_policy **out,
		  struct sl_errbuf *eb)
{
	struct sl_errbuf local;
	struct sl_policy *p;
	int err;

	if (!eb)
		eb = &local;
	if (!out)
		return sl_err(eb, -EINVAL, "policy: no output pointer");
	*out = NULL;
	if (!cfg || cfg->size < sizeof(*cfg))
		return sl_err(eb, -EINVAL, "policy: config missing or its size field is not set");
	p = calloc(1, sizeof(*p));
	if (!p)
		return sl_err(eb, -ENOMEM, "policy: out of memory");
	p->cfg = *cfg;
	p->cfg.size = sizeof(p->cfg);
	err = apply_defaults(&p->cfg, eb);
	if (err)
		goto fail;
	switch (cfg->kind) {
	case SL_POLICY_THRESHOLD: p->ops = &sl_policy_threshold_ops; break;
	case SL_POLICY_PREDICTIVE: p->ops = &sl_policy_predictive_ops; break;
	case SL_POLICY_RAMP: p->ops = &sl_policy_ramp_ops; break;
	case SL_POLICY_CUSTOM:
		if (!cfg->custom_ops || !cfg->custom_ops->decide || !cfg->custom_ops->name) {
			err = sl_err(eb, -EINVAL, "policy: custom policy without ops");
			goto fail;
		}
		p->ops = cfg->custom_ops;
		p->ops_ctx = cfg->custom_ctx;
		break;
	default:
		err = sl_err(eb, -EINVAL, "policy: unknown kind %d", (int)cfg->kind);
		goto fail;
	}
	*out = p;
	return 0;
fail:
	free(p);
	return err;
}

void sl_policy_free(struct sl_policy **p)
{
	if (!p || !*p)
		return;
	free(*p);
	*p = NULL;
}

void sl_policy_reset(struct sl_policy *p)
{
	if (!p)
		return;
	p->stall_base = 0;
	p->throttle_pct = 0;
	p->diverge_count = 0;
	p->prev_improves = false;
	p->prev_d0 = 0;
	p->last_d0 = 0;
}

const char *sl_policy_name(const struct sl_policy *p)
{
	return p ? p->ops->name : "none";
}

const struct sl_policy_config *sl_policy_config(const struct sl_policy *p)
{
	return p ? &p->cfg : NULL;
}

/*
 * The dirty set has stopped shrinking when the smallest dirty set of the
 * last `window` iterations is not below the smallest before them by more
 * than the tolerance. Only iterations since the last throttle count, so a
 * throttle gets a full window to show its effect.
 */
static bool window_stalled(const struct sl_policy *p, const struct sl_policy_input *in)
{
	size_t n = in->n_iters, w = p->cfg.stall_window, base = p->stall_base;
	uint64_t ref = UINT64_MAX, recent = UINT64_MAX;

	if (base > n)
		base = 0;
	if (n - base < w + 1)
		return false;
	for (size_t i = base; i < n - w; i++)
		ref = SL_MIN(ref, in->iters[i].dirty_bytes);
	for (size_t i = n - w; i < n; i++)
		recent = SL_MIN(recent, in->iters[i].dirty_bytes);
	if (!ref)
		return false; /* nothing left to shrink: not a stall */
	return (unsigned __int128)recent * 100 >=
	       (unsigned __int128)ref * (100 - p->cfg.stall_tolerance_pct);
}

static const char *fmt_rate(uint64_t bps, char *buf, size_t len)
{
	if (bps >= 1000000000ull)
		snprintf(buf, len, "%.2f GB/s", (double)bps / 1e9);
	else
		snprintf(buf, len, "%.1f MB/s", (double)bps / 1e6);
	return buf;
}

/*
 * What would converge, from the measured figures: the smallest pending
 * amount seen lately (now, or the dirty sets of the last window plus the
 * devices) must fit in one downtime. Limit: that amount at the measured
 * bandwidth, rounded up to a whole ms. Bandwidth: that amount within the
 * allowed downtime.
 */
static void give_advice(const struct sl_policy *p, const struct sl_policy_input *in,
			struct sl_policy_decision *d, const char *why)
{
	size_t n = in->n_iters, w = SL_MIN((size_t)p->cfg.stall_window, n);
	uint64_t minp = d->pending_bytes;
	char bwbuf[32], needbuf[32];

	for (size_t i = n - w; i < n; i++) {
		uint64_t v = in->iters[i].dirty_bytes + in->pending_device_bytes;

		minp = SL_MIN(minp, v);
	}
	if (d->bandwidth_bps) {
		uint64_t t = sl_policy_transfer_ns(minp, d->bandwidth_bps);

		/* The smallest set of the window would have fit the limit in
		 * force (the dirty set dipped, then grew again): advising a
		 * lower limit would be nonsense, so advise from what is
		 * pending now, which is what has to fit. */
		if (t <= d->allowed_downtime_ns && d->pending_bytes > minp) {
			minp = d->pending_bytes;
			t = sl_policy_transfer_ns(minp, d->bandwidth_bps);
		}
		d->advice_downtime_ns = t >= UINT64_MAX - NS_PER_MS ? UINT64_MAX
				      : SL_DIV_ROUND_UP(t, NS_PER_MS) * NS_PER_MS;
	}
	d->advice_bandwidth_bps = sl_policy_muldiv_up(minp, NS_PER_S,
						      d->allowed_downtime_ns);
	if (d->bandwidth_bps)
		snprintf(d->advice, sizeof(d->advice),
			 "%s: %.1f MiB stays dirty at %s; a downtime limit of %" PRIu64
			 " ms (now %.1f ms) or a bandwidth of %s would converge",
			 why, (double)minp / (1024.0 * 1024.0),
			 fmt_rate(d->bandwidth_bps, bwbuf, sizeof(bwbuf)),
			 d->advice_downtime_ns / NS_PER_MS,
			 (double)d->allowed_downtime_ns / 1e6,
			 fmt_rate(d->advice_bandwidth_bps, needbuf, sizeof(needbuf)));
	else
		snprintf(d->advice, sizeof(d->advice),
			 "%s: no bandwidth measured yet; %.1f MiB pending would need %s "
			 "within the %.1f ms downtime limit",
			 why, (double)minp / (1024.0 * 1024.0),
			 fmt_rate(d->advice_bandwidth_bps, needbuf, sizeof(needbuf)),
			 (double)d->allowed_downtime_ns / 1e6);
}

static void stall_action(struct sl_policy *p, const struct sl_policy_input *in,
			 struct sl_policy_decision *d)
{
	const struct sl_policy_config *c = &p->cfg;

	d->stalled = true;
	d->reason = p->impl_stalled ? SL_REASON_PREDICT_DIVERGES : SL_REASON_STALLED;
	switch (c->stall_action) {
	case SL_STALL_CONTINUE:
		d->action = SL_DECIDE_CONTINUE;
		return;
	case SL_STALL_THROTTLE:
		if (p->throttle_pct < c->throttle_max_pct) {
			p->throttle_pct = p->throttle_pct
				? SL_MIN(p->throttle_pct + c->throttle_step_pct, c->throttle_max_pct)
				: c->throttle_initial_pct;
			d->action = SL_DECIDE_THROTTLE;
			d->throttle_pct = p->throttle_pct;
			/* Give the throttle a whole window before judging again. */
			p->stall_base = in->n_iters;
			p->diverge_count = 0;
			return;
		}
		d->throttle_pct = p->throttle_pct;
		d->action = SL_DECIDE_FAIL;
		give_advice(p, in, d, "not converging even at the maximum throttle");
		return;
	case SL_STALL_FAIL:
		break;
	}
	d->action = SL_DECIDE_FAIL;
	give_advice(p, in, d, d->reason == SL_REASON_PREDICT_DIVERGES
		    ? "not converging (dirty rate too close to the bandwidth)"
		    : "not converging (the dirty set stopped shrinking)");
}

int sl_policy_decide(struct sl_policy *p, const struct sl_policy_input *in,
		     struct sl_policy_decision *d)
{
	const struct sl_policy_config *c;
	const struct sl_iter_record *last;
	enum sl_decision_reason bound = SL_REASON_NO_DATA;
	bool stalled;
	int err;

	if (!p || !in || !d || (in->n_iters && !in->iters))
		return -EINVAL;
	c = &p->cfg;
	memset(d, 0, sizeof(*d));
	d->allowed_downtime_ns = c->downtime_limit_ns;
	d->pending_bytes = in->pending_ram_bytes + in->pending_device_bytes;
	if (d->pending_bytes < in->pending_ram_bytes)
		d->pending_bytes = UINT64_MAX;
	if (!in->n_iters) {
		d->action = SL_DECIDE_CONTINUE;
		d->reason = SL_REASON_NO_DATA;
		return 0;
	}
	last = &in->iters[in->n_iters - 1];
	d->bandwidth_bps = last->bandwidth_bps ? last->bandwidth_bps : c->bandwidth_bps;
	if (p->stall_base > in->n_iters)
		p->stall_base = 0;

	p->impl_stalled = false;
	p->defer_stall = false;
	err = p->ops->decide(p, p->ops_ctx, in, d);
	if (err)
		return err;
	if (d->action == SL_DECIDE_FAIL)
		return 0;
	stalled = !c->stall_disabled && !p->defer_stall &&
		  (p->impl_stalled || window_stalled(p, in));
	if (stalled && d->reason == SL_REASON_PREDICT_IMPROVES) {
		/* Within the limit and no longer shrinking: polishing is over. */
		d->action = SL_DECIDE_SWITCHOVER;
		d->reason = SL_REASON_WITHIN_LIMIT;
		d->stalled = true;
	}
	if (d->action == SL_DECIDE_SWITCHOVER) {
		if (!in->device_initial_bytes)
			return 0;
		/* VFIO PRE_COPY: a device still has initial data; stopping now
		 * would send it during downtime. Waiting within the limit is
		 * no stall. */
		d->action = SL_DECIDE_CONTINUE;
		d->reason = SL_REASON_DEVICE_INITIAL;
		stalled = false;
	}
	if (stalled) {
		stall_action(p, in, d);
		if (d->action == SL_DECIDE_FAIL)
			return 0;
	}

	if (c->max_iterations && in->n_iters >= c->max_iterations)
		bound = SL_REASON_MAX_ITERATIONS;
	else if (c->max_time_ns && in->elapsed_ns >= c->max_time_ns)
		bound = SL_REASON_MAX_TIME;
	if (bound != SL_REASON_NO_DATA) {
		/* Already within the limit (predictive still polishing, or a
		 * device's initial data): stopping is no failure. */
		bool within = d->reason == SL_REASON_PREDICT_IMPROVES ||
			      d->reason == SL_REASON_DEVICE_INITIAL;

		d->reason = bound;
		if (within || c->bound_action == SL_BOUND_SWITCHOVER) {
			d->action = SL_DECIDE_SWITCHOVER;
		} else {
			d->action = SL_DECIDE_FAIL;
			give_advice(p, in, d, bound == SL_REASON_MAX_ITERATIONS
				    ? "no convergence within the iteration limit"
				    : "no convergence within the time limit");
		}
	}
	return 0;
}
