/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_faults.c — failure injection, nothing lost: the destination
 * killed during precopy and during stop-and-copy, a destination that goes
 * silent (timeout), a wrong key, and a destination that rejects the CPU
 * state. Each must end with exit code 1, one clear message, and the source
 * workload running again (the source resumed it).
 *
 * The proc workload is used (userfaultfd), so these run without KVM too;
 * one case repeats with the KVM guest when /dev/kvm works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "e2e_util.h"

static const char *workload = "proc";

static void run_fault(struct e2e_run *r, const char *fault, const char *const *extra)
{
	const char *args[40] = { "run", "--workload", workload, "--mem", "32M", "--wss", "16M",
				 "--timeout", "2s", "--json", "--fault", fault };
	int n = 12;

	for (; extra && *extra; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	assert_int_equal(e2e_exec(args, 55, r), 0);
	assert_int_equal(r->exit_code, 1);
	assert_non_null(r->json);
	assert_false(e2e_bool(r, "verified"));
	assert_false(e2e_bool(r, "migrated"));
	assert_true(e2e_bool(r, "source_running"));
	assert_string_not_equal(e2e_str(r, "error"), "");
	/* One line on stderr says what failed and that the VM still runs. */
	assert_non_null(strstr(r->err, "migration failed:"));
	assert_non_null(strstr(r->err, "still running"));
}

static void test_kill_dest_during_precopy(void **state)
{
	/* A limit no iteration can meet keeps it in precopy. */
	static const char *const extra[] = { "--downtime-limit", "1us", "--stall-action", "continue",
					     "--max-iterations", "1000", "--bandwidth", "64M", NULL };
	struct e2e_run *r = *state;

	run_fault(r, "kill-dest-precopy", extra);
	assert_non_null(strstr(e2e_str(r, "error"), "during precopy iteration"));
	assert_string_equal(e2e_str(r, "outcome"), "failed");
	e2e_run_release(r);
}

static void test_kill_dest_during_stop_and_copy(void **state)
{
	struct e2e_run *r = *state;

	run_fault(r, "kill-dest-stopcopy", NULL);
	assert_non_null(strstr(e2e_str(r, "error"), "during stop-and-copy"));
	assert_non_null(strstr(e2e_str(r, "error"), "source VM resumed"));
	e2e_run_release(r);
}

static void test_silent_dest_times_out(void **state)
{
	struct e2e_run *r = *state;

	run_fault(r, "stall-dest", NULL);
	assert_true(strstr(e2e_str(r, "error"), "did not answer in time") || strstr(e2e_str(r, "error"), "stopped answering"));
	assert_non_null(strstr(e2e_str(r, "error"), "source VM resumed"));
	e2e_run_release(r);
}

/* The same with io_uring SEND_ZC: sends in flight wait for completions a
 * silent peer never produces; the engine's watchdog must still end it. */
static void test_silent_dest_zero_copy(void **state)
{
	static const char *const extra[] = { "--zero-copy", "uring", NULL };
	struct e2e_run *r = *state;

	run_fault(r, "stall-dest", extra);
	assert_true(strstr(e2e_str(r, "error"), "did not answer in time") ||
		    strstr(e2e_str(r, "error"), "stopped answering"));
	e2e_run_release(r);
}

static void test_wrong_key(void **state)
{
	struct e2e_run *r = *state;

	run_fault(r, "wrong-key", NULL);
	assert_non_null(strstr(e2e_str(r, "error"), "wrong pre-shared key"));
	e2e_run_release(r);
}

static void test_dest_rejects_state(void **state)
{
	struct e2e_run *r = *state;

	run_fault(r, "dest-refuse-state", NULL);
	assert_non_null(strstr(e2e_str(r, "error"), "load_state failed"));
	assert_non_null(strstr(e2e_str(r, "error"), "source VM resumed"));
	e2e_run_release(r);
}

static void test_kvm_kill_dest_during_stop_and_copy(void **state)
{
	struct e2e_run *r = *state;

	if (!e2e_have_kvm())
		skip();
	workload = "kvm";
	run_fault(r, "kill-dest-stopcopy", NULL);
	workload = "proc";
	assert_non_null(strstr(e2e_str(r, "error"), "during stop-and-copy"));
	e2e_run_release(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_dest_during_precopy),
		cmocka_unit_test(test_kill_dest_during_stop_and_copy),
		cmocka_unit_test(test_silent_dest_times_out),
		cmocka_unit_test(test_silent_dest_zero_copy),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_dest_rejects_state),
		cmocka_unit_test(test_kvm_kill_dest_during_stop_and_copy),
	};

	if (!e2e_have_uffd()) {
		fprintf(stderr, "skipped: userfaultfd WP_ASYNC + PAGEMAP_SCAN unavailable on this kernel\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
