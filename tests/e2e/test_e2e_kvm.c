/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_kvm.c — `sluice run` with the KVM guest, end to end: a real VM
 * on /dev/kvm migrated to a separate `sluice receive` process over loopback
 * TCP, verified (memory hash at stop, page records) and shown to keep
 * running on the destination (its pass counter advances there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_util.h"

static void test_kvm_one_channel(void **state)
{
	/* (the default zero-copy mode of run: off, both ends on one host) */
	static const char *const args[] = { "run", "--workload", "kvm", "--mem", "64M", "--wss", "32M",
					     "--channels", "1", "--dirty-rate", "64M", "--json", NULL };
	struct e2e_run *r = *state;

	assert_int_equal(e2e_exec(args, 55, r), 0);
	e2e_check_kvm_verified(r, 1);
	assert_string_equal(e2e_str(r, "zero_copy_mode"), "copy");
	e2e_run_release(r);
}

static void test_kvm_several_channels_bandwidth(void **state)
{
	/* A bandwidth cap makes precopy take several iterations while the
	 * guest keeps writing, so the dirty log really matters here. */
	static const char *const args[] = { "run", "--workload", "kvm", "--mem", "64M", "--wss", "32M",
					     "--channels", "3", "--bandwidth", "150M", "--dirty-rate", "20M",
					     "--downtime-limit", "50ms", "--max-iterations", "40",
					     "--stall-action", "continue", "--zero-copy", "uring", "--json", NULL };
	struct e2e_run *r = *state;

	assert_int_equal(e2e_exec(args, 55, r), 0);
	e2e_check_kvm_verified(r, 3);
	assert_int_equal(e2e_int(r, "bandwidth_limit_bps"), 150ll << 20);
	assert_string_equal(e2e_str(r, "zero_copy_mode"), "send_zc");
	e2e_run_release(r);
}

static void test_kvm_readable_report(void **state)
{
	static const char *const args[] = { "run", "--mem", "32M", "--wss", "16M", "--quiet", NULL };
	struct e2e_run *r = *state;

	assert_int_equal(e2e_exec(args, 55, r), 0);
	assert_non_null(strstr(r->out, "Iterations"));
	assert_non_null(strstr(r->out, "Downtime"));
	assert_non_null(strstr(r->out, "memory hash"));
	assert_non_null(strstr(r->out, "advancing on the destination"));
	assert_non_null(strstr(r->out, "result: migrated and verified"));
	e2e_run_release(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kvm_one_channel),
		cmocka_unit_test(test_kvm_several_channels_bandwidth),
		cmocka_unit_test(test_kvm_readable_report),
	};

	if (!e2e_have_kvm()) {
		fprintf(stderr, "skipped: /dev/kvm is not usable here\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
