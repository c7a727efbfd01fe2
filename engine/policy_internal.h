/* SPDX-License-Identifier: MIT */
/* policy_internal.h — what the convergence policy files share. */
#ifndef SL_POLICY_INTERNAL_H
#define SL_POLICY_INTERNAL_H

#include "sl_policy.h"

struct sl_policy {
	struct sl_policy_config cfg;        /* defaults applied */
	const struct sl_policy_ops *ops;
	void *ops_ctx;
	/* State across decisions (reset by sl_policy_reset). */
	size_t stall_base;      /* stall window looks at iters[stall_base..] */
	uint32_t throttle_pct;  /* last throttle asked for, 0 = none */
	uint32_t diverge_count; /* predictive: consecutive "cannot improve" */
	bool prev_improves;     /* predictive: last decision was "one more" */
	uint64_t prev_d0;       /* predictive: D0 at that decision */
	uint64_t last_d0;       /* predictive: D0 at the previous decision */
	/* Per decision, set by the kind's decide(). */
	bool impl_stalled;      /* the kind itself saw a stall */
	bool defer_stall;       /* the kind has a remedy left (ramp) */
};

extern const struct sl_policy_ops sl_policy_threshold_ops;
extern const struct sl_policy_ops sl_policy_predictive_ops;
extern const struct sl_policy_ops sl_policy_ramp_ops;

/* a × b / c without overflow (128-bit), rounded up; UINT64_MAX if the
 * result does not fit or c == 0 (with a × b > 0). */
uint64_t sl_policy_muldiv_up(uint64_t a, uint64_t b, uint64_t c);
/* Same, rounded down. */
uint64_t sl_policy_muldiv(uint64_t a, uint64_t b, uint64_t c);

/* The QEMU rule with a given allowed downtime, shared by threshold/ramp. */
void sl_policy_threshold_rule(const struct sl_policy_input *in,
			      struct sl_policy_decision *d, uint64_t allowed_ns);

#endif /* SL_POLICY_INTERNAL_H */
