/* SPDX-License-Identifier: MIT */
/*
 * sl_policy.h — convergence policies: after each precopy iteration, decide
 * whether to keep iterating, stop the VM and switch over, throttle the
 * guest, or give up with advice.
 *
 * Built-in policies (docs/tuning.md):
 *   threshold   QEMU's rule: switch when pending <= bandwidth × downtime limit.
 *   predictive  from the measured dirty rate and bandwidth, predict what one
 *               more iteration would leave pending; switch at the iteration
 *               that minimises predicted downtime within the limit (or when
 *               a promised gain did not come), and declare a stall after 3
 *               iterations in a row in which neither the prediction nor the
 *               observed downtime improves (no waiting for the window).
 *   ramp        threshold, but after `ramp_after` iterations the allowed
 *               downtime rises by `ramp_step_ns` every `ramp_every`
 *               iterations, up to `ramp_max_ns`.
 * Common to all:
 *   - devices: pending includes device bytes, and switchover waits while
 *     any device still reports initial_bytes > 0 (VFIO PRE_COPY);
 *   - stall detection: the dirty set has not shrunk by more than
 *     stall_tolerance_pct over the last stall_window iterations → the
 *     configured action: continue, THROTTLE (the caller calls its throttle
 *     hook with decision.throttle_pct) or FAIL with advice (the downtime
 *     limit or bandwidth that would converge, computed from the measured
 *     figures);
 *   - bounds: max_iterations / max_time_ns → bound_action (fail or force
 *     switchover).
 * Decisions are a pure function of the policy's config, its small internal
 * state (throttle level, last stall) and the history passed in: no clocks
 * are read, so tests script histories.
 *
 * Threading: one policy object belongs to one session thread.
 */
#ifndef SL_POLICY_H
#define SL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_common.h"
#include "sl_stats.h"

enum sl_policy_kind {
	SL_POLICY_THRESHOLD = 0,
	SL_POLICY_PREDICTIVE = 1,
	SL_POLICY_RAMP = 2,
	SL_POLICY_CUSTOM = 3,     /* cfg.custom_ops supplies decide() */
};

enum sl_stall_action {
	SL_STALL_FAIL = 0,        /* default: give up with advice */
	SL_STALL_CONTINUE = 1,    /* note it (decision.stalled) and keep going */
	SL_STALL_THROTTLE = 2,    /* ask the caller to throttle the guest */
};

enum sl_bound_action {
	SL_BOUND_FAIL = 0,        /* default: give up with advice */
	SL_BOUND_SWITCHOVER = 1,  /* stop anyway (downtime may exceed the limit) */
};

enum sl_decision_action {
	SL_DECIDE_CONTINUE = 0,
	SL_DECIDE_SWITCHOVER = 1,
	SL_DECIDE_THROTTLE = 2,   /* keep iterating after throttling the guest */
	SL_DECIDE_FAIL = 3,
};

/* Why — one value per rule, so tests and logs can tell them apart. */
enum sl_decision_reason {
	SL_REASON_NO_DATA = 0,          /* no iteration / no bandwidth yet */
	SL_REASON_ABOVE_LIMIT,          /* pending too large, still converging */
	SL_REASON_WITHIN_LIMIT,         /* predicted downtime within the limit */
	SL_REASON_DEVICE_INITIAL,       /* within limit, but a device has
	                                   initial_bytes > 0: wait */
	SL_REASON_PREDICT_IMPROVES,     /* predictive: within limit, but one
	                                   more iteration should cut downtime */
	SL_REASON_STALLED,              /* dirty set stopped shrinking */
	SL_REASON_PREDICT_DIVERGES,     /* predictive: dirty rate >= what the
	                                   bandwidth can clear; cannot converge */
	SL_REASON_MAX_ITERATIONS,
	SL_REASON_MAX_TIME,
	SL_REASON_CUSTOM,               /* set by a custom policy */
};

struct sl_policy_config {
	size_t size;                    /* sizeof(struct sl_policy_config) */
	enum sl_policy_kind kind;
	uint64_t downtime_limit_ns;     /* 0 → 300 ms (QEMU's default) */
	uint64_t bandwidth_bps;         /* configured cap; used only when an
	                                   iteration measured no bandwidth.
	                                   0 = unknown */
	/* Bounds (0 = none). */
	uint32_t max_iterations;
	uint64_t max_time_ns;
	enum sl_bound_action bound_action;
	/* Stall detection. */
	uint32_t stall_window;          /* iterations; 0 → 5 */
	uint32_t stall_tolerance_pct;   /* must shrink by more than this; 0 → 5;
	                                   101 or more → invalid */
	bool stall_disabled;            /* true: never declare a stall */
	enum sl_stall_action stall_action;
	/* Throttle steps (QEMU's cpu-throttle-initial/increment): first
	 * THROTTLE asks for throttle_initial_pct, each further one adds
	 * throttle_step_pct, capped at throttle_max_pct; once at the cap a
	 * further stall FAILs. 0 → 20 / 10 / 99. */
	uint32_t throttle_initial_pct;
	uint32_t throttle_step_pct;
	uint32_t throttle_max_pct;
	/* ramp (kind == SL_POLICY_RAMP). */
	uint32_t ramp_after;            /* iterations at the base limit; 0 → 5 */
	uint32_t ramp_every;            /* raise every N iterations; 0 → 1 */
	uint64_t ramp_step_ns;          /* 0 → downtime_limit_ns / 2 */
	uint64_t ramp_max_ns;           /* 0 → 4 × downtime_limit_ns; must be
	                                   >= downtime_limit_ns */
	/* predictive: one more iteration is worth it only if it cuts the
	 * predicted downtime by more than this percentage. 0 → 10. */
	uint32_t predict_gain_pct;
	/* custom policy (kind == SL_POLICY_CUSTOM). */
	const struct sl_policy_ops *custom_ops;
	void *custom_ctx;
};

/* What the caller knows at the decision point (after an iteration). */
struct sl_policy_input {
	size_t size;                    /* sizeof(struct sl_policy_input) */
	/* Completed iterations, oldest first (e.g. stats.iter, stats.n_iter).
	 * The last record's bandwidth, dirty rate, sync time and pending
	 * figures are the "current" measurements. */
	const struct sl_iter_record *iters;
	size_t n_iters;
	/* RAM that would have to be sent if the VM stopped now. Usually the
	 * last record's pending_bytes; the caller may pass a fresher value
	 * (e.g. right after a sync, as QEMU does near the threshold). */
	uint64_t pending_ram_bytes;
	/* Sum over devices of initial + dirty + stop-copy estimate. */
	uint64_t pending_device_bytes;
	/* Sum over devices of initial_bytes still to read. Switchover waits
	 * while this is > 0. */
	uint64_t device_initial_bytes;
	/* Time since precopy began (for max_time_ns). */
	uint64_t elapsed_ns;
};

struct sl_policy_decision {
	enum sl_decision_action action;
	enum sl_decision_reason reason;
	bool stalled;                   /* stall detected (any action) */
	uint64_t allowed_downtime_ns;   /* limit in force (ramp raises it) */
	uint64_t bandwidth_bps;         /* the bandwidth the decision used */
	uint64_t pending_bytes;         /* RAM + device pending used */
	uint64_t threshold_bytes;       /* bandwidth × allowed downtime */
	uint64_t predicted_downtime_ns; /* pending / bandwidth (+ sync time
	                                   for predictive) */
	uint64_t predicted_next_ns;     /* predictive: after one more iteration */
	uint32_t throttle_pct;          /* THROTTLE: ask for this much */
	/* FAIL: what would converge, from the measured figures (0 = unknown). */
	uint64_t advice_downtime_ns;
	uint64_t advice_bandwidth_bps;
	char advice[SL_ERRMSG_MAX];     /* one line for the user; "" if none */
};

struct sl_policy;

/* A policy implementation. decide() fills *d (zeroed by the caller, with
 * allowed_downtime_ns set to the configured limit) and returns 0 or a
 * negative errno. The common rules (device wait, stall, bounds) are applied
 * around it by sl_policy_decide(). */
struct sl_policy_ops {
	const char *name;
	int (*decide)(struct sl_policy *p, void *ctx,
		      const struct sl_policy_input *in,
		      struct sl_policy_decision *d);
};

/* Creates a policy. Returns 0, -EINVAL (bad config: unknown kind, custom
 * without ops, tolerance > 100, ramp_max < limit; text in eb if eb) or
 * -ENOMEM. */
SL_EXPORT int sl_policy_new(const struct sl_policy_config *cfg,
			    struct sl_policy **out, struct sl_errbuf *eb);
SL_EXPORT void sl_policy_free(struct sl_policy **p);

/* Decides after an iteration. Returns 0 (decision in *d) or -EINVAL (NULL
 * args, n_iters > 0 with iters NULL). Updates the policy's internal state
 * (throttle level, stall bookkeeping), so call it once per iteration. */
SL_EXPORT int sl_policy_decide(struct sl_policy *p,
			       const struct sl_policy_input *in,
			       struct sl_policy_decision *d);

/* Forgets the internal state (a new migration with the same policy). */
SL_EXPORT void sl_policy_reset(struct sl_policy *p);

/* "threshold", "predictive", "ramp", or the custom ops' name. */
SL_EXPORT const char *sl_policy_name(const struct sl_policy *p);
/* The effective (defaults applied) config. */
SL_EXPORT const struct sl_policy_config *sl_policy_config(const struct sl_policy *p);

/* Name ↔ kind: returns 0 or -EINVAL for an unknown name. */
SL_EXPORT int sl_policy_kind_from_name(const char *name, enum sl_policy_kind *out);
SL_EXPORT const char *sl_policy_kind_name(enum sl_policy_kind kind);
SL_EXPORT int sl_stall_action_from_name(const char *name, enum sl_stall_action *out);
SL_EXPORT const char *sl_decision_action_name(enum sl_decision_action a);
SL_EXPORT const char *sl_decision_reason_name(enum sl_decision_reason r);

/* Helper for filling sl_iter_record.predicted_downtime_ns: bytes / bps in
 * ns, rounded up; UINT64_MAX when bps == 0 and bytes > 0. */
SL_EXPORT uint64_t sl_policy_transfer_ns(uint64_t bytes, uint64_t bps);

#endif /* SL_POLICY_H */
