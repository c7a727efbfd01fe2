/* SPDX-License-Identifier: MIT */
/*
 * policy_threshold.c — QEMU's convergence rule: switch over when what is
 * pending can be sent within the downtime limit at the measured bandwidth
 * (migration_iteration_run: pending_size <= threshold_size, with
 * threshold_size = bandwidth × downtime_limit).
 */
#include "policy_internal.h"

void sl_policy_threshold_rule(const struct sl_policy_input *in,
			      struct sl_policy_decision *d, uint64_t allowed_ns)
{
	(void)in;
	d->allowed_downtime_ns = allowed_ns;
	if (!d->bandwidth_bps) {
		d->action = SL_DECIDE_CONTINUE;
		d->reason = SL_REASON_NO_DATA;
		return;
	}
	d->threshold_bytes = sl_policy_muldiv(d->bandwidth_bps, allowed_ns,
					      1000000000ull);
	d->predicted_downtime_ns = sl_policy_transfer_ns(d->pending_bytes,
							 d->bandwidth_bps);
	if (d->pending_bytes <= d->threshold_bytes) {
		d->action = SL_DECIDE_SWITCHOVER;
		d->reason = SL_REASON_WITHIN_LIMIT;
	} else {
		d->action = SL_DECIDE_CONTINUE;
		d->reason = SL_REASON_ABOVE_LIMIT;
	}
}

static int threshold_decide(struct sl_policy *p, void *ctx,
			    const struct sl_policy_input *in,
			    struct sl_policy_decision *d)
{
	(void)ctx;
	sl_policy_threshold_rule(in, d, p->cfg.downtime_limit_ns);
	return 0;
}

const struct sl_policy_ops sl_policy_threshold_ops = {
	.name = "threshold",
	.decide = threshold_decide,
};
