/* SPDX-License-Identifier: MIT */
/*
 * policy_ramp.c — the threshold rule with a downtime limit that rises:
 * after ramp_after iterations at the base limit, the allowed downtime grows
 * by ramp_step_ns every ramp_every iterations, up to ramp_max_ns. A stall
 * is acted on only once the ramp has reached its maximum (before that,
 * raising the limit is the remedy).
 */
#include "policy_internal.h"

static uint64_t ramp_allowed(const struct sl_policy_config *c, size_t n)
{
	uint64_t raises, allowed;

	if (n <= c->ramp_after)
		return c->downtime_limit_ns;
	raises = (n - c->ramp_after - 1) / c->ramp_every + 1;
	allowed = c->downtime_limit_ns;
	/* Saturating: limit + raises × step, capped at max. */
	if (raises > (c->ramp_max_ns - allowed) / c->ramp_step_ns)
		return c->ramp_max_ns;
	allowed += raises * c->ramp_step_ns;
	return SL_MIN(allowed, c->ramp_max_ns);
}

static int ramp_decide(struct sl_policy *p, void *ctx,
		       const struct sl_policy_input *in,
		       struct sl_policy_decision *d)
{
	uint64_t allowed = ramp_allowed(&p->cfg, in->n_iters);

	(void)ctx;
	sl_policy_threshold_rule(in, d, allowed);
	p->defer_stall = allowed < p->cfg.ramp_max_ns;
	return 0;
}

const struct sl_policy_ops sl_policy_ramp_ops = {
	.name = "ramp",
	.decide = ramp_decide,
};
