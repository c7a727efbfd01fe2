/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_state.c — sl_vfio_next_state() against the kernel's
 * combination-transition table, all 64 (cur, requested) pairs for each of
 * the four capability sets. The expected table below is typed in from
 * docs (kernel-facts.md), in that document's column order, independently
 * of engine/vfio_state.c; the skip rule is applied here on its own, and
 * every arc taken is checked against the list of arcs drivers implement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "sl_vfio.h"

enum { ST, RU, PC, PP, SC, RE, RP, ER, N };
static const enum sl_vfio_state K[N] = {
	[ST] = SL_VFIO_STOP, [RU] = SL_VFIO_RUNNING, [PC] = SL_VFIO_PRE_COPY,
	[PP] = SL_VFIO_PRE_COPY_P2P, [SC] = SL_VFIO_STOP_COPY, [RE] = SL_VFIO_RESUMING,
	[RP] = SL_VFIO_RUNNING_P2P, [ER] = SL_VFIO_ERROR,
};
/* kernel-facts.md: row = current, column = requested (ST RU PC PP SC RE RP ER). */
static const int table[N][N] = {
	[ST] = { ST, RP, RP, RP, SC, RE, RP, ER },
	[RU] = { RP, RU, PC, RP, RP, RP, RP, ER },
	[PC] = { RU, RU, PC, PP, PP, RU, RU, ER },
	[PP] = { RP, RP, PC, PP, SC, RP, RP, ER },
	[SC] = { ST, ST, ER, ER, SC, ST, ST, ER },
	[RE] = { ST, ST, ST, ST, ST, RE, ST, ER },
	[RP] = { ST, RU, RU, PP, ST, ST, RP, ER },
	[ER] = { ER, ER, ER, ER, ER, ER, ER, ER },
};

#define C_SC SL_VFIO_CAP_STOP_COPY
#define C_P2P SL_VFIO_CAP_P2P
#define C_PRE SL_VFIO_CAP_PRE_COPY

static int have(int s, uint32_t caps)
{
	switch (s) {
	case ST: case RU: case SC: case RE: return 1;
	case RP: return !!(caps & C_P2P);
	case PC: return !!(caps & C_PRE);
	case PP: return (caps & C_P2P) && (caps & C_PRE);
	default: return 0;
	}
}

/* The arcs kernel-facts.md says drivers implement. */
static int implemented(int a, int b, uint32_t caps)
{
	int p2p = !!(caps & C_P2P), pre = !!(caps & C_PRE);
#define A(x, y) (a == (x) && b == (y))
	if (A(RE, ST) || A(ST, RE) || A(ST, SC) || A(SC, ST))
		return 1;
	if (p2p && (A(RU, RP) || A(RP, RU) || A(RP, ST) || A(ST, RP)))
		return 1;
	if (pre && (A(RU, PC) || A(PC, RU) || A(PC, SC)))
		return 1;
	if (p2p && pre && (A(PC, PP) || A(PP, PC) || A(PP, RP) || A(PP, SC) || A(RP, PP)))
		return 1;
	if (!p2p && !pre && (A(RU, ST) || A(ST, RU)))
		return 1;
	/* Neither/with only PRE_COPY: RU<->ST also exists (no P2P in between). */
	if (!p2p && (A(RU, ST) || A(ST, RU)))
		return 1;
#undef A
	return 0;
}

static int idx_of(enum sl_vfio_state s)
{
	for (int i = 0; i < N; i++)
		if (K[i] == s)
			return i;
	return -1;
}

static void check_caps(uint32_t caps)
{
	int pairs = 0;

	for (int cur = 0; cur < N; cur++) {
		for (int req = 0; req < N; req++) {
			enum sl_vfio_state got = SL_VFIO_ERROR;
			int ret = sl_vfio_next_state(K[cur], K[req], caps, &got);
			int want = -1;

			pairs++;
			if (have(cur, caps) && have(req, caps)) {
				want = table[cur][req];
				while (want != ER && !have(want, caps))
					want = table[want][req];
				if (want == ER)
					want = -1;
			}
			if (want < 0) {
				assert_int_equal(ret, -22);
				continue;
			}
			assert_int_equal(ret, 0);
			assert_int_equal(idx_of(got), want);
			if (cur != req) {
				assert_true(implemented(cur, want, caps));
				assert_true(sl_vfio_arc_valid(K[cur], K[want], caps));
				/* Following the arcs reaches the target in <= 4 steps. */
				enum sl_vfio_state s = K[cur];
				int steps = 0;
				while (s != K[req] && steps < 5) {
					assert_int_equal(sl_vfio_next_state(s, K[req], caps, &s), 0);
					steps++;
				}
				assert_int_equal(s, K[req]);
				assert_true(steps <= 4);
			}
		}
	}
	assert_int_equal(pairs, 64);
}

static void test_caps_stop_copy(void **st) { (void)st; check_caps(C_SC); }
static void test_caps_p2p(void **st) { (void)st; check_caps(C_SC | C_P2P); }
static void test_caps_pre_copy(void **st) { (void)st; check_caps(C_SC | C_PRE); }
static void test_caps_all(void **st) { (void)st; check_caps(C_SC | C_P2P | C_PRE); }

/* A few paths written out by hand. */
static void test_known_paths(void **st)
{
	enum sl_vfio_state n;

	(void)st;
	/* RUNNING -> STOP_COPY without P2P: RUNNING -> STOP directly. */
	assert_int_equal(sl_vfio_next_state(SL_VFIO_RUNNING, SL_VFIO_STOP_COPY, C_SC, &n), 0);
	assert_int_equal(n, SL_VFIO_STOP);
	/* With P2P it goes through RUNNING_P2P. */
	assert_int_equal(sl_vfio_next_state(SL_VFIO_RUNNING, SL_VFIO_STOP_COPY, C_SC | C_P2P, &n), 0);
	assert_int_equal(n, SL_VFIO_RUNNING_P2P);
	/* PRE_COPY -> STOP_COPY: via PRE_COPY_P2P only when P2P exists. */
	assert_int_equal(sl_vfio_next_state(SL_VFIO_PRE_COPY, SL_VFIO_STOP_COPY, C_SC | C_PRE, &n), 0);
	assert_int_equal(n, SL_VFIO_STOP_COPY);
	assert_int_equal(sl_vfio_next_state(SL_VFIO_PRE_COPY, SL_VFIO_STOP_COPY,
					    C_SC | C_PRE | C_P2P, &n), 0);
	assert_int_equal(n, SL_VFIO_PRE_COPY_P2P);
	/* STOP_COPY -> PRE_COPY is forbidden; ERROR can't be requested or left. */
	assert_int_equal(sl_vfio_next_state(SL_VFIO_STOP_COPY, SL_VFIO_PRE_COPY, C_SC | C_PRE, &n), -22);
	assert_int_equal(sl_vfio_next_state(SL_VFIO_RUNNING, SL_VFIO_ERROR, C_SC, &n), -22);
	assert_int_equal(sl_vfio_next_state(SL_VFIO_ERROR, SL_VFIO_RUNNING, C_SC, &n), -22);
	/* Out of range and missing STOP_COPY. */
	assert_int_equal(sl_vfio_next_state((enum sl_vfio_state)8, SL_VFIO_STOP, C_SC, &n), -22);
	assert_int_equal(sl_vfio_next_state(SL_VFIO_RUNNING, SL_VFIO_STOP, 0, &n), -22);
	assert_int_equal(sl_vfio_next_state(SL_VFIO_RUNNING, SL_VFIO_STOP, C_SC, NULL), -22);
	/* Names. */
	assert_string_equal(sl_vfio_state_name(SL_VFIO_PRE_COPY_P2P), "PRE_COPY_P2P");
	assert_string_equal(sl_vfio_state_name((enum sl_vfio_state)99), "INVALID");
	assert_int_equal(sl_vfio_state_parse("stop_copy", &n), 0);
	assert_int_equal(n, SL_VFIO_STOP_COPY);
	assert_int_equal(sl_vfio_state_parse("bogus", &n), -22);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps_stop_copy),
		cmocka_unit_test(test_caps_p2p),
		cmocka_unit_test(test_caps_pre_copy),
		cmocka_unit_test(test_caps_all),
		cmocka_unit_test(test_known_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
