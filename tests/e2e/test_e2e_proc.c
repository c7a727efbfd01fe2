/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_proc.c — `sluice run --workload proc`: dirtier threads in the
 * source process tracked with userfaultfd-WP + PAGEMAP_SCAN, migrated to a
 * separate destination process over 1 and several channels, verified by the
 * memory hash at stop and the page records on the destination.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "e2e_util.h"

static void check(struct e2e_run *r, int channels)
{
	assert_int_equal(r->exit_code, 0);
	assert_non_null(r->json);
	assert_string_equal(e2e_str(r, "workload"), "proc");
	assert_true(e2e_bool(r, "verified"));
	assert_true(e2e_bool(r, "verification.hash_equal"));
	assert_true(e2e_bool(r, "verification.pages_checked"));
	assert_true(e2e_bool(r, "verification.pages_ok"));
	assert_int_equal(e2e_int(r, "channels"), channels);
	assert_true(e2e_array_len(r, "iterations") >= 1);
	assert_int_equal(e2e_int(r, "remaining_bytes"), 0);
	/* 48 MiB never written: travel as ZERO packets, not payload. */
	assert_true(e2e_int(r, "zero_pages") >= (48 << 20) / 4096);
}

static void test_proc_one_channel(void **state)
{
	static const char *const args[] = { "run", "--workload", "proc", "--mem", "64M", "--wss", "16M",
					     "--channels", "1", "--json", NULL };
	struct e2e_run *r = *state;

	assert_int_equal(e2e_exec(args, 55, r), 0);
	check(r, 1);
	e2e_run_release(r);
}

static void test_proc_four_channels_two_threads(void **state)
{
	static const char *const args[] = { "run", "--workload", "proc", "--mem", "64M", "--wss", "16M",
					     "--vcpus", "2", "--channels", "4", "--pattern", "random",
					     "--dirty-rate", "64M", "--zero-copy", "msg", "--json", NULL };
	struct e2e_run *r = *state;

	assert_int_equal(e2e_exec(args, 55, r), 0);
	check(r, 4);
	assert_string_equal(e2e_str(r, "zero_copy_mode"), "msg_zerocopy");
	e2e_run_release(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proc_one_channel),
		cmocka_unit_test(test_proc_four_channels_two_threads),
	};

	if (!e2e_have_uffd()) {
		fprintf(stderr, "skipped: userfaultfd WP_ASYNC + PAGEMAP_SCAN unavailable on this kernel\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
