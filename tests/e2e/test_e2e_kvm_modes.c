/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_kvm_modes.c — `sluice run` with the KVM guest in its other
 * modes: the KVM dirty ring instead of the bitmap, and a guest that writes
 * faster than the link so the policy must throttle it to converge.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_util.h"

static void test_kvm_dirty_ring(void **state)
{
	static const char *const args[] = { "run", "--workload", "kvm", "--mem", "64M", "--wss", "32M",
					     "--dirty-log", "ring", "--pattern", "random", "--channels", "2",
					     "--bandwidth", "100M", "--dirty-rate", "20M", "--json", NULL };
	struct e2e_run *r = *state;

	assert_int_equal(e2e_exec(args, 55, r), 0);
	e2e_check_kvm_verified(r, 2);
	e2e_run_release(r);
}

/* A working set rewritten faster than a 40 MiB/s link can carry: the dirty
 * set stops shrinking, the policy asks to throttle the guest (stall action
 * throttle), the guest's write rate is cut and the migration converges. */
static void test_kvm_stall_throttle(void **state)
{
	static const char *const args[] = { "run", "--workload", "kvm", "--mem", "32M", "--wss", "16M",
					     "--bandwidth", "40M", "--policy", "threshold",
					     "--downtime-limit", "100ms", "--stall-action", "throttle",
					     "--max-iterations", "60", "--json", NULL };
	struct e2e_run *r = *state;

	assert_int_equal(e2e_exec(args, 55, r), 0);
	assert_int_equal(r->exit_code, 0);
	assert_true(e2e_bool(r, "verified"));
	assert_true(e2e_int(r, "throttle_calls") >= 1);
	assert_true(e2e_int(r, "throttle_pct") >= 20);
	assert_true(e2e_array_len(r, "iterations") >= 3);
	e2e_run_release(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kvm_dirty_ring),
		cmocka_unit_test(test_kvm_stall_throttle),
	};

	if (!e2e_have_kvm()) {
		fprintf(stderr, "skipped: /dev/kvm is not usable here\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
