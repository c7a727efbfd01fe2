/* SPDX-License-Identifier: MIT */
/*
 * test_policy.c — each convergence policy decides exactly as specified on
 * scripted iteration histories (no clocks, no timing).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sl_policy.h"

#define MS 1000000ull
#define GBPS 1000000000ull  /* 1 GB/s */
#define MB 1000000ull

/* A history of up to 16 iterations, all at one bandwidth. */
struct hist {
	struct sl_iter_record r[16];
	size_t n;
};

static void push(struct hist *h, uint64_t dirty, uint64_t bw)
{
	struct sl_iter_record *r = &h->r[h->n];

	memset(r, 0, sizeof(*r));
	r->index = (uint32_t)++h->n;
	r->dirty_bytes = dirty;
	r->pending_bytes = dirty;
	r->bandwidth_bps = bw;
}

static struct sl_policy_input input(const struct hist *h, uint64_t pending)
{
	struct sl_policy_input in = {
		.size = sizeof(in),
		.iters = h->r,
		.n_iters = h->n,
		.pending_ram_bytes = pending,
	};
	return in;
}

static struct sl_policy *mkpol(struct sl_policy_config *c)
{
	struct sl_policy *p = NULL;
	struct sl_errbuf eb = { { 0 } };

	c->size = sizeof(*c);
	assert_int_equal(sl_policy_new(c, &p, &eb), 0);
	assert_non_null(p);
	return p;
}

static void decide(struct sl_policy *p, const struct sl_policy_input *in,
		   struct sl_policy_decision *d)
{
	assert_int_equal(sl_policy_decide(p, in, d), 0);
}

/* ---- threshold ---------------------------------------------------------- */

static void test_threshold_boundary(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 300 * MS };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	assert_string_equal(sl_policy_name(p), "threshold");
	in = input(&h, 0);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_NO_DATA);

	push(&h, 4000 * MB, GBPS);
	in = input(&h, 300 * MB + 1);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_ABOVE_LIMIT);
	assert_int_equal(d.threshold_bytes, 300 * MB);
	assert_int_equal(d.bandwidth_bps, GBPS);
	assert_int_equal(d.allowed_downtime_ns, 300 * MS);
	/* 300 MB + 1 byte at 1 GB/s = 300 ms + 1 ns, rounded up. */
	assert_int_equal(d.predicted_downtime_ns, 300 * MS + 1);

	push(&h, 300 * MB, GBPS);
	in = input(&h, 300 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.reason, SL_REASON_WITHIN_LIMIT);
	assert_int_equal(d.predicted_downtime_ns, 300 * MS);
	assert_false(d.stalled);
	sl_policy_free(&p);
	assert_null(p);
}

static void test_threshold_bandwidth_fallback(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 100 * MS };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	push(&h, 10 * MB, 0); /* nothing measured */
	in = input(&h, 10 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_NO_DATA);
	sl_policy_free(&p);

	/* The configured cap stands in for an unmeasured bandwidth. */
	c.bandwidth_bps = 200 * MB;
	p = mkpol(&c);
	decide(p, &in, &d);
	assert_int_equal(d.bandwidth_bps, 200 * MB);
	assert_int_equal(d.threshold_bytes, 20 * MB);
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	sl_policy_free(&p);
}

static void test_threshold_devices(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 300 * MS };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	push(&h, 200 * MB, GBPS);
	in = input(&h, 200 * MB);
	in.pending_device_bytes = 150 * MB; /* 350 MB > 300 MB */
	decide(p, &in, &d);
	assert_int_equal(d.pending_bytes, 350 * MB);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_ABOVE_LIMIT);

	in.pending_device_bytes = 100 * MB; /* exactly 300 MB */
	in.device_initial_bytes = 1;        /* but a device has initial data */
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_DEVICE_INITIAL);

	in.device_initial_bytes = 0;
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.reason, SL_REASON_WITHIN_LIMIT);
	sl_policy_free(&p);
}

/* ---- stall detection (common to all kinds) ------------------------------- */

static void test_stall_fail_with_advice(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 300 * MS,
				      .stall_window = 3,
				      .stall_tolerance_pct = 5 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;
	const uint64_t dirty[] = { 1000 * MB, 400 * MB, 400 * MB, 390 * MB, 395 * MB };

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		push(&h, dirty[i], GBPS);
		in = input(&h, dirty[i]);
		decide(p, &in, &d);
		assert_int_equal(d.action, SL_DECIDE_CONTINUE);
		assert_false(d.stalled);
	}
	/* iteration 5: min of the last 3 (390) is not 5% below 400 → stall */
	push(&h, dirty[4], GBPS);
	in = input(&h, dirty[4]);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_FAIL);
	assert_int_equal(d.reason, SL_REASON_STALLED);
	assert_true(d.stalled);
	/* 390 MB at 1 GB/s = 390 ms; 390 MB in 300 ms = 1.3 GB/s */
	assert_int_equal(d.advice_downtime_ns, 390 * MS);
	assert_int_equal(d.advice_bandwidth_bps, 1300 * MB);
	assert_non_null(strstr(d.advice, "downtime limit of 390 ms"));
	assert_non_null(strstr(d.advice, "1.30 GB/s"));
	sl_policy_free(&p);
}

static void test_stall_shrinking_is_not_stall(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 10 * MS,
				      .stall_window = 2,
				      .stall_tolerance_pct = 10 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;
	uint64_t v = 1000 * MB;

	(void)state;
	/* Shrinks by 12% per iteration: never a stall (needs > 10% per window). */
	for (int i = 0; i < 12; i++) {
		push(&h, v, GBPS);
		in = input(&h, v);
		decide(p, &in, &d);
		assert_false(d.stalled);
		assert_int_equal(d.action, SL_DECIDE_CONTINUE);
		v = v * 88 / 100;
	}
	sl_policy_free(&p);
}

static void test_stall_continue(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 100 * MS,
				      .stall_window = 2,
				      .stall_action = SL_STALL_CONTINUE };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	for (int i = 0; i < 3; i++) {
		push(&h, 500 * MB, GBPS);
		in = input(&h, 500 * MB);
		decide(p, &in, &d);
	}
	assert_true(d.stalled);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_STALLED);
	assert_string_equal(d.advice, "");
	sl_policy_free(&p);
}

static void test_stall_throttle_steps(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 100 * MS,
				      .stall_window = 2,
				      .stall_action = SL_STALL_THROTTLE,
				      .throttle_initial_pct = 20,
				      .throttle_step_pct = 10,
				      .throttle_max_pct = 30 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;
	/* expected action after each iteration (constant dirty set) */
	const enum sl_decision_action want[] = {
		SL_DECIDE_CONTINUE, SL_DECIDE_CONTINUE, SL_DECIDE_THROTTLE, /* 20% */
		SL_DECIDE_CONTINUE, SL_DECIDE_CONTINUE, SL_DECIDE_THROTTLE, /* 30% */
		SL_DECIDE_CONTINUE, SL_DECIDE_CONTINUE, SL_DECIDE_FAIL,     /* at max */
	};
	const uint32_t want_pct[] = { 0, 0, 20, 0, 0, 30, 0, 0, 30 };

	(void)state;
	for (size_t i = 0; i < SL_ARRAY_SIZE(want); i++) {
		push(&h, 500 * MB, GBPS);
		in = input(&h, 500 * MB);
		decide(p, &in, &d);
		assert_int_equal(d.action, want[i]);
		assert_int_equal(d.throttle_pct, want_pct[i]);
	}
	assert_int_equal(d.reason, SL_REASON_STALLED);
	assert_int_equal(d.advice_downtime_ns, 500 * MS);
	assert_non_null(strstr(d.advice, "maximum throttle"));

	/* reset: a new migration starts with no throttle */
	sl_policy_reset(p);
	h.n = 0;
	for (int i = 0; i < 3; i++) {
		push(&h, 500 * MB, GBPS);
		in = input(&h, 500 * MB);
		decide(p, &in, &d);
	}
	assert_int_equal(d.action, SL_DECIDE_THROTTLE);
	assert_int_equal(d.throttle_pct, 20);
	sl_policy_free(&p);
}

static void test_stall_disabled(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 100 * MS,
				      .stall_window = 2,
				      .stall_disabled = true };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	for (int i = 0; i < 10; i++) {
		push(&h, 500 * MB, GBPS);
		in = input(&h, 500 * MB);
		decide(p, &in, &d);
		assert_int_equal(d.action, SL_DECIDE_CONTINUE);
		assert_false(d.stalled);
	}
	sl_policy_free(&p);
}

/* ---- bounds ------------------------------------------------------------- */

static void test_bounds(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 100 * MS,
				      .stall_disabled = true,
				      .max_iterations = 3 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	for (int i = 0; i < 3; i++) {
		push(&h, 1000 * MB - (uint64_t)i * 100 * MB, GBPS);
		in = input(&h, h.r[h.n - 1].dirty_bytes);
		decide(p, &in, &d);
	}
	assert_int_equal(d.action, SL_DECIDE_FAIL);
	assert_int_equal(d.reason, SL_REASON_MAX_ITERATIONS);
	assert_int_equal(d.advice_downtime_ns, 800 * MS);
	assert_int_equal(d.advice_bandwidth_bps, 8 * GBPS);
	sl_policy_free(&p);

	c.bound_action = SL_BOUND_SWITCHOVER;
	p = mkpol(&c);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.reason, SL_REASON_MAX_ITERATIONS);
	sl_policy_free(&p);

	c.max_iterations = 0;
	c.max_time_ns = 5000 * MS;
	c.bound_action = SL_BOUND_FAIL;
	p = mkpol(&c);
	in.elapsed_ns = 4999 * MS;
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	in.elapsed_ns = 5000 * MS;
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_FAIL);
	assert_int_equal(d.reason, SL_REASON_MAX_TIME);
	assert_non_null(strstr(d.advice, "time limit"));
	sl_policy_free(&p);
}

/* The dirty set dipped below what the limit allows while a device still
 * owed its initial data, then grew: the advice must come from what is
 * pending now (500 MB: 500 ms at 1 GB/s), never a limit below the one in
 * force. */
static void test_advice_never_below_limit(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 300 * MS,
				      .stall_disabled = true,
				      .max_iterations = 3 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;
	const uint64_t dirty[] = { 1000 * MB, 100 * MB, 500 * MB };

	(void)state;
	for (int i = 0; i < 3; i++) {
		push(&h, dirty[i], GBPS);
		in = input(&h, dirty[i]);
		in.device_initial_bytes = i < 2; /* waiting for a device at the dip */
		decide(p, &in, &d);
	}
	assert_int_equal(d.action, SL_DECIDE_FAIL);
	assert_int_equal(d.reason, SL_REASON_MAX_ITERATIONS);
	assert_int_equal(d.advice_downtime_ns, 500 * MS);
	assert_true(d.advice_downtime_ns > c.downtime_limit_ns);
	assert_int_equal(d.advice_bandwidth_bps, 5000 * MB / 3 + 1);
	assert_non_null(strstr(d.advice, "downtime limit of 500 ms (now 300.0 ms)"));
	sl_policy_free(&p);
}

/* ---- predictive ---------------------------------------------------------- */

static void set_last(struct hist *h, uint64_t sync_ns, uint64_t scan_ns, uint64_t rate)
{
	h->r[h->n - 1].sync_ns = sync_ns;
	h->r[h->n - 1].scan_ns = scan_ns;
	h->r[h->n - 1].dirty_rate_bps = rate;
}

static void test_predictive(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_PREDICTIVE,
				      .downtime_limit_ns = 300 * MS,
				      .predict_gain_pct = 10,
				      .stall_disabled = false,
				      .stall_window = 8 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	assert_string_equal(sl_policy_name(p), "predictive");
	/* iteration 1 without a measured dirty rate: only D0 vs limit */
	push(&h, 2000 * MB, GBPS);
	set_last(&h, 1 * MS, 1 * MS, 0);
	in = input(&h, 500 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_ABOVE_LIMIT);
	assert_int_equal(d.predicted_downtime_ns, 501 * MS);
	assert_int_equal(d.predicted_next_ns, 0);
	in.pending_ram_bytes = 299 * MB; /* D0 = 300 ms: within */
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.reason, SL_REASON_WITHIN_LIMIT);

	/* with a dirty rate it predicts already: 5 GB/s × 502 ms, capped at
	 * the largest dirty set (2000 MB) → D1 = 2001 ms */
	sl_policy_reset(p);
	h.r[0].dirty_rate_bps = 5 * GBPS;
	in.pending_ram_bytes = 500 * MB;
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_ABOVE_LIMIT);
	assert_int_equal(d.predicted_next_ns, 2001 * MS);

	/* above the limit, converging: D0 = 1 + 500 ms; T = 502 ms;
	 * P1 = 100 MB/s × 502 ms = 50.2 MB → D1 = 51.2 ms */
	push(&h, 500 * MB, GBPS);
	set_last(&h, 1 * MS, 1 * MS, 100 * MB);
	in = input(&h, 500 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_ABOVE_LIMIT);
	assert_int_equal(d.predicted_downtime_ns, 501 * MS);
	assert_int_equal(d.predicted_next_ns, 51200000);

	/* within the limit, one more iteration pays: D0 = 101 ms,
	 * P1 = 100 MB/s × 102 ms = 10.2 MB → D1 = 11.2 ms */
	push(&h, 100 * MB, GBPS);
	set_last(&h, 1 * MS, 1 * MS, 100 * MB);
	in = input(&h, 100 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_PREDICT_IMPROVES);
	assert_int_equal(d.predicted_downtime_ns, 101 * MS);
	assert_int_equal(d.predicted_next_ns, 11200000);

	/* within the limit, no gain: dirty rate = bandwidth → D1 = 103 ms */
	push(&h, 100 * MB, GBPS);
	set_last(&h, 1 * MS, 1 * MS, GBPS);
	in = input(&h, 100 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.reason, SL_REASON_WITHIN_LIMIT);
	assert_int_equal(d.predicted_next_ns, 103 * MS);

	/* the same, but a gain of 1.9% is under the 10% bar either way:
	 * D0 = 101, D1 = 1 + 0.98 × 102 = 100.96 ms */
	h.r[h.n - 1].dirty_rate_bps = 980 * MB;
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.predicted_next_ns, 100960000);
	sl_policy_free(&p);
}

static void test_predictive_diverges(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_PREDICTIVE,
				      .downtime_limit_ns = 300 * MS,
				      .stall_window = 8 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	push(&h, 2000 * MB, GBPS);
	set_last(&h, 0, 0, 0);
	in = input(&h, 500 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);

	/* dirty rate 2 GB/s at 1 GB/s: P1 = 2 GB/s × 500 ms = 1 GB → worse,
	 * and observed D0 stays at 500 ms: rounds 1 and 2 are not enough */
	for (int round = 1; round <= 2; round++) {
		push(&h, 500 * MB, GBPS);
		set_last(&h, 0, 0, 2 * GBPS);
		in = input(&h, 500 * MB);
		decide(p, &in, &d);
		assert_int_equal(d.action, SL_DECIDE_CONTINUE);
		assert_int_equal(d.reason, SL_REASON_ABOVE_LIMIT);
		assert_int_equal(d.predicted_next_ns, 1000 * MS);
		assert_false(d.stalled);
	}

	/* the model says no gain, but the observed D0 fell 500 → 400 ms:
	 * that resets the count */
	push(&h, 400 * MB, GBPS);
	set_last(&h, 0, 0, 2 * GBPS);
	in = input(&h, 400 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	for (int round = 1; round <= 2; round++) {
		push(&h, 400 * MB, GBPS);
		set_last(&h, 0, 0, 2 * GBPS);
		in = input(&h, 400 * MB);
		decide(p, &in, &d);
		assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	}
	/* third flat round in a row */
	push(&h, 500 * MB, GBPS);
	set_last(&h, 0, 0, 2 * GBPS);
	in = input(&h, 500 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_FAIL);
	assert_int_equal(d.reason, SL_REASON_PREDICT_DIVERGES);
	assert_true(d.stalled);
	/* advice from the smallest dirty set of the window: 400 MB */
	assert_int_equal(d.advice_downtime_ns, 400 * MS);
	assert_int_equal(d.advice_bandwidth_bps, 1333333334);
	assert_non_null(strstr(d.advice, "dirty rate too close"));
	sl_policy_free(&p);
}

static void test_predictive_bound_within_limit_switches(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_PREDICTIVE,
				      .downtime_limit_ns = 300 * MS,
				      .max_iterations = 2,
				      .bound_action = SL_BOUND_FAIL };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	push(&h, 2000 * MB, GBPS);
	push(&h, 100 * MB, GBPS);
	set_last(&h, 1 * MS, 1 * MS, 100 * MB);
	in = input(&h, 100 * MB);
	decide(p, &in, &d);
	/* would improve, but the bound is reached while within the limit */
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.reason, SL_REASON_MAX_ITERATIONS);
	sl_policy_free(&p);
}

static void test_predictive_missed_gain(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_PREDICTIVE,
				      .downtime_limit_ns = 300 * MS };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	push(&h, 2000 * MB, GBPS);
	push(&h, 100 * MB, GBPS);
	set_last(&h, 1 * MS, 1 * MS, 100 * MB);
	in = input(&h, 100 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.reason, SL_REASON_PREDICT_IMPROVES);

	/* promised 11.2 ms, got 96 ms (not 10% below 101): stop now */
	push(&h, 95 * MB, GBPS);
	set_last(&h, 1 * MS, 1 * MS, 100 * MB);
	in = input(&h, 95 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.reason, SL_REASON_WITHIN_LIMIT);
	assert_int_equal(d.predicted_downtime_ns, 96 * MS);
	sl_policy_free(&p);

	/* the gain came (101 → 11 ms) and another is predicted: continue */
	p = mkpol(&c);
	h.n = 0;
	push(&h, 2000 * MB, GBPS);
	push(&h, 100 * MB, GBPS);
	set_last(&h, 1 * MS, 1 * MS, 100 * MB);
	in = input(&h, 100 * MB);
	decide(p, &in, &d);
	push(&h, 10 * MB, GBPS);
	set_last(&h, 1 * MS, 1 * MS, 100 * MB);
	in = input(&h, 10 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_PREDICT_IMPROVES);
	assert_int_equal(d.predicted_next_ns, 2200000); /* 1 + 100 MB/s × 12 ms */
	sl_policy_free(&p);
}

static void test_predictive_stall_within_limit_switches(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_PREDICTIVE,
				      .downtime_limit_ns = 300 * MS,
				      .stall_window = 2 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;
	const uint64_t pending[] = { 0, 100 * MB, 50 * MB, 25 * MB };
	const uint64_t dirty[] = { 2000 * MB, 100 * MB, 100 * MB, 100 * MB };

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		push(&h, dirty[i], GBPS);
		set_last(&h, 1 * MS, 1 * MS, 100 * MB);
		in = input(&h, pending[i]);
		decide(p, &in, &d);
		if (i && i < 3) {
			assert_int_equal(d.action, SL_DECIDE_CONTINUE);
			assert_int_equal(d.reason, SL_REASON_PREDICT_IMPROVES);
		}
	}
	/* the dirty set is flat over the window: within the limit that means
	 * switch over, not fail */
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.reason, SL_REASON_WITHIN_LIMIT);
	assert_true(d.stalled);
	assert_string_equal(d.advice, "");
	sl_policy_free(&p);
}

static void test_device_wait_is_not_a_stall(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_THRESHOLD,
				      .downtime_limit_ns = 300 * MS,
				      .stall_window = 2 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	for (int i = 0; i < 8; i++) {
		push(&h, 10 * MB, GBPS);
		in = input(&h, 10 * MB);
		in.device_initial_bytes = 1 << 20;
		decide(p, &in, &d);
		assert_int_equal(d.action, SL_DECIDE_CONTINUE);
		assert_int_equal(d.reason, SL_REASON_DEVICE_INITIAL);
	}
	sl_policy_free(&p);
}

/* ---- ramp ----------------------------------------------------------------- */

static void test_ramp(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_RAMP,
				      .downtime_limit_ns = 100 * MS,
				      .ramp_after = 2, .ramp_every = 1,
				      .ramp_step_ns = 50 * MS,
				      .ramp_max_ns = 200 * MS };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;
	const uint64_t allowed[] = { 100, 100, 150, 200 };

	(void)state;
	assert_string_equal(sl_policy_name(p), "ramp");
	for (size_t i = 0; i < 4; i++) {
		push(&h, 180 * MB, GBPS);
		in = input(&h, 180 * MB);
		decide(p, &in, &d);
		assert_int_equal(d.allowed_downtime_ns, allowed[i] * MS);
		assert_int_equal(d.action, i < 3 ? SL_DECIDE_CONTINUE : SL_DECIDE_SWITCHOVER);
	}
	sl_policy_free(&p);

	c.ramp_every = 2;
	p = mkpol(&c);
	h.n = 0;
	const uint64_t allowed2[] = { 100, 100, 150, 150, 200, 200 };
	for (size_t i = 0; i < 6; i++) {
		push(&h, 250 * MB, GBPS);
		in = input(&h, 250 * MB);
		decide(p, &in, &d);
		assert_int_equal(d.allowed_downtime_ns, allowed2[i] * MS);
	}
	sl_policy_free(&p);
}

static void test_ramp_stall_waits_for_max(void **state)
{
	struct sl_policy_config c = { .kind = SL_POLICY_RAMP,
				      .downtime_limit_ns = 100 * MS,
				      .ramp_after = 2, .ramp_step_ns = 50 * MS,
				      .ramp_max_ns = 200 * MS,
				      .stall_window = 2 };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;

	(void)state;
	for (int i = 0; i < 3; i++) {
		push(&h, 250 * MB, GBPS);
		in = input(&h, 250 * MB);
		decide(p, &in, &d);
		/* iteration 3 is a stall by the window, but the ramp still rises */
		assert_int_equal(d.action, SL_DECIDE_CONTINUE);
		assert_false(d.stalled);
	}
	push(&h, 250 * MB, GBPS);
	in = input(&h, 250 * MB);
	decide(p, &in, &d);
	assert_int_equal(d.allowed_downtime_ns, 200 * MS);
	assert_int_equal(d.action, SL_DECIDE_FAIL);
	assert_int_equal(d.reason, SL_REASON_STALLED);
	assert_int_equal(d.advice_downtime_ns, 250 * MS);
	assert_int_equal(d.advice_bandwidth_bps, 1250 * MB);
	sl_policy_free(&p);
}

/* ---- custom policy and config checks -------------------------------------- */

static int custom_decide(struct sl_policy *p, void *ctx,
			 const struct sl_policy_input *in,
			 struct sl_policy_decision *d)
{
	int *calls = ctx;

	(void)p;
	(void)in;
	(*calls)++;
	d->action = SL_DECIDE_SWITCHOVER;
	d->reason = SL_REASON_CUSTOM;
	return 0;
}

static const struct sl_policy_ops custom_ops = { .name = "always", .decide = custom_decide };

static void test_custom_and_config(void **state)
{
	int calls = 0;
	struct sl_policy_config c = { .kind = SL_POLICY_CUSTOM,
				      .custom_ops = &custom_ops,
				      .custom_ctx = &calls };
	struct sl_policy *p = mkpol(&c);
	struct sl_policy_decision d;
	struct hist h = { .n = 0 };
	struct sl_policy_input in;
	struct sl_errbuf eb = { { 0 } };
	enum sl_policy_kind k;

	(void)state;
	assert_string_equal(sl_policy_name(p), "always");
	push(&h, 1, GBPS);
	in = input(&h, 1);
	in.device_initial_bytes = 4096;
	decide(p, &in, &d);
	assert_int_equal(calls, 1);
	assert_int_equal(d.action, SL_DECIDE_CONTINUE);
	assert_int_equal(d.reason, SL_REASON_DEVICE_INITIAL);
	in.device_initial_bytes = 0;
	decide(p, &in, &d);
	assert_int_equal(d.action, SL_DECIDE_SWITCHOVER);
	assert_int_equal(d.reason, SL_REASON_CUSTOM);
	assert_int_equal(sl_policy_decide(p, NULL, &d), -EINVAL);
	in.iters = NULL;
	assert_int_equal(sl_policy_decide(p, &in, &d), -EINVAL);
	sl_policy_free(&p);

	/* defaults */
	memset(&c, 0, sizeof(c));
	p = mkpol(&c);
	assert_int_equal(sl_policy_config(p)->downtime_limit_ns, 300 * MS);
	assert_int_equal(sl_policy_config(p)->stall_window, 5);
	assert_int_equal(sl_policy_config(p)->ramp_max_ns, 1200 * MS);
	sl_policy_free(&p);

	/* bad configs */
	c.stall_tolerance_pct = 101;
	c.size = sizeof(c);
	assert_int_equal(sl_policy_new(&c, &p, &eb), -EINVAL);
	assert_null(p);
	assert_non_null(strstr(eb.msg, "tolerance"));
	c.stall_tolerance_pct = 0;
	c.kind = SL_POLICY_RAMP;
	c.downtime_limit_ns = 300 * MS;
	c.ramp_max_ns = 200 * MS;
	assert_int_equal(sl_policy_new(&c, &p, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "ramp maximum"));
	c.ramp_max_ns = 0;
	c.kind = SL_POLICY_CUSTOM;
	assert_int_equal(sl_policy_new(&c, &p, &eb), -EINVAL);
	c.kind = (enum sl_policy_kind)42;
	assert_int_equal(sl_policy_new(&c, &p, NULL), -EINVAL);
	c.kind = SL_POLICY_THRESHOLD;
	c.size = 0;
	assert_int_equal(sl_policy_new(&c, &p, NULL), -EINVAL);

	assert_int_equal(sl_policy_kind_from_name("predictive", &k), 0);
	assert_int_equal(k, SL_POLICY_PREDICTIVE);
	assert_int_equal(sl_policy_kind_from_name("ramp", &k), 0);
	assert_int_equal(k, SL_POLICY_RAMP);
	assert_int_equal(sl_policy_kind_from_name("qemu", &k), -EINVAL);
	assert_string_equal(sl_decision_action_name(SL_DECIDE_THROTTLE), "throttle");
	assert_string_equal(sl_decision_reason_name(SL_REASON_DEVICE_INITIAL), "device_initial");
	assert_int_equal(sl_policy_transfer_ns(0, 0), 0);
	assert_int_equal(sl_policy_transfer_ns(1, 0), UINT64_MAX);
	assert_int_equal(sl_policy_transfer_ns(3, 2 * GBPS), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_threshold_boundary),
		cmocka_unit_test(test_threshold_bandwidth_fallback),
		cmocka_unit_test(test_threshold_devices),
		cmocka_unit_test(test_stall_fail_with_advice),
		cmocka_unit_test(test_advice_never_below_limit),
		cmocka_unit_test(test_stall_shrinking_is_not_stall),
		cmocka_unit_test(test_stall_continue),
		cmocka_unit_test(test_stall_throttle_steps),
		cmocka_unit_test(test_stall_disabled),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_predictive),
		cmocka_unit_test(test_predictive_diverges),
		cmocka_unit_test(test_predictive_bound_within_limit_switches),
		cmocka_unit_test(test_predictive_missed_gain),
		cmocka_unit_test(test_predictive_stall_within_limit_switches),
		cmocka_unit_test(test_device_wait_is_not_a_stall),
		cmocka_unit_test(test_ramp),
		cmocka_unit_test(test_ramp_stall_waits_for_max),
		cmocka_unit_test(test_custom_and_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
