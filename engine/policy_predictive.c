/* SPDX-License-Identifier: MIT */
/*
 * policy_predictive.c — decide from the measured dirty rate and bandwidth.
 *
 * Stopping now would cost D0 = last sync time + pending / bandwidth.
 * One more iteration would take T = sync + scan + pending / bandwidth and
 * leave P1 = dirty_rate × T pending (capped at the largest dirty set seen,
 * i.e. all of RAM), so D1 = sync + P1 / bandwidth. One more iteration is
 * worth it when D1 is below D0 by more than predict_gain_pct.
 *
 *   D0 <= limit, iterating improves     → CONTINUE (PREDICT_IMPROVES)
 *   D0 <= limit, iterating does not     → SWITCHOVER (the minimum is now)
 *   D0 <= limit, but the gain promised last time did not come → SWITCHOVER
 *   D0 >  limit, iterating improves     → CONTINUE (ABOVE_LIMIT)
 *   D0 >  limit, does not → after DIVERGE_ROUNDS (3) decisions in a row
 *      where the prediction says no gain AND the observed D0 did not fall
 *      by the gain either: stall (PREDICT_DIVERGES). The dirty rate is too
 *      close to the bandwidth to ever get under the limit, so the stall
 *      action fires without waiting for the window. (Both conditions,
 *      because a busy host's bandwidth is noisy.)
 *
 * After the first iteration, when no dirty rate was measured (0), only
 * D0 <= limit is checked: there is nothing to predict from.
 */
#include "policy_internal.h"

#define DIVERGE_ROUNDS 3

static int predictive_decide(struct sl_policy *p, void *ctx,
			     const struct sl_policy_input *in,
			     struct sl_policy_decision *d)
{
	const struct sl_iter_record *last = &in->iters[in->n_iters - 1];
	uint64_t limit = p->cfg.downtime_limit_ns;
	uint64_t bw = d->bandwidth_bps, d0, d1, t, p1, cap = 0, last_d0;
	bool improves;

	(void)ctx;
	d->allowed_downtime_ns = limit;
	if (!bw) {
		d->action = SL_DECIDE_CONTINUE;
		d->reason = SL_REASON_NO_DATA;
		return 0;
	}
	d->threshold_bytes = sl_policy_muldiv(bw, limit, 1000000000ull);
	d0 = last->sync_ns + sl_policy_transfer_ns(d->pending_bytes, bw);
	if (d0 < last->sync_ns)
		d0 = UINT64_MAX;
	d->predicted_downtime_ns = d0;

	last_d0 = p->last_d0;
	p->last_d0 = d0;
	if (!last->dirty_rate_bps && in->n_iters < 2) {
		d->action = d0 <= limit ? SL_DECIDE_SWITCHOVER : SL_DECIDE_CONTINUE;
		d->reason = d0 <= limit ? SL_REASON_WITHIN_LIMIT : SL_REASON_ABOVE_LIMIT;
		return 0;
	}

	for (size_t i = 0; i < in->n_iters; i++)
		cap = SL_MAX(cap, in->iters[i].dirty_bytes);
	t = last->sync_ns + last->scan_ns + sl_policy_transfer_ns(d->pending_bytes, bw);
	p1 = sl_policy_muldiv(last->dirty_rate_bps, t, 1000000000ull);
	p1 = SL_MIN(p1, SL_MAX(cap, in->pending_ram_bytes));
	p1 += in->pending_device_bytes; /* device state does not shrink by iterating RAM */
	d1 = last->sync_ns + sl_policy_transfer_ns(p1, bw);
	if (d1 < last->sync_ns)
		d1 = UINT64_MAX;
	d->predicted_next_ns = d1;

	/* d1 < d0 × (100 - gain) / 100, without overflow. */
	improves = (unsigned __int128)d1 * 100 <
		   (unsigned __int128)d0 * (100 - p->cfg.predict_gain_pct);

	if (d0 <= limit) {
		/* The last iteration was run because it promised a gain; if
		 * the gain did not come, the prediction is off (a floor of
		 * pages dirtied faster than we can tell): stop now. */
		bool missed = p->prev_improves &&
			      (unsigned __int128)d0 * 100 >=
			      (unsigned __int128)p->prev_d0 * (100 - p->cfg.predict_gain_pct);

		p->diverge_count = 0;
		if (improves && !missed) {
			p->prev_improves = true;
			p->prev_d0 = d0;
			d->action = SL_DECIDE_CONTINUE;
			d->reason = SL_REASON_PREDICT_IMPROVES;
		} else {
			p->prev_improves = false;
			d->action = SL_DECIDE_SWITCHOVER;
			d->reason = SL_REASON_WITHIN_LIMIT;
		}
		return 0;
	}
	p->prev_improves = false;
	d->action = SL_DECIDE_CONTINUE;
	if (improves) {
		p->diverge_count = 0;
		d->reason = SL_REASON_ABOVE_LIMIT;
		return 0;
	}
	d->reason = SL_REASON_ABOVE_LIMIT;
	if (last_d0 && (unsigned __int128)d0 * 100 <
		       (unsigned __int128)last_d0 * (100 - p->cfg.predict_gain_pct)) {
		p->diverge_count = 0; /* it did shrink, whatever the model says */
		return 0;
	}
	p->diverge_count++;
	if (p->diverge_count >= DIVERGE_ROUNDS) {
		d->reason = SL_REASON_PREDICT_DIVERGES;
		p->impl_stalled = true;
	}
	return 0;
}

const struct sl_policy_ops sl_policy_predictive_ops = {
	.name = "predictive",
	.decide = predictive_decide,
};
