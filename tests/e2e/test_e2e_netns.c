/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_netns.c — `sluice run --netns --link-rate`: source and
 * destination in two network namespaces joined by a veth pair with a tc
 * tbf rate, as two hosts. Needs root and iproute2 (skipped otherwise). The
 * namespaces must be gone afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_util.h"

static void test_netns_link_rate(void **state)
{
	const char *wl = e2e_have_kvm() ? "kvm" : "proc";
	const char *const args[] = { "run", "--netns", "--link-rate", "100M", "--workload", wl,
				     "--mem", "64M", "--wss", "48M", "--dirty-rate", "16M",
				     "--downtime-limit", "1s", "--json", NULL };
	struct e2e_run *r = *state;
	char cmd[128];

	assert_int_equal(e2e_exec(args, 55, r), 0);
	assert_int_equal(r->exit_code, 0);
	assert_true(e2e_bool(r, "verified"));
	assert_true(e2e_bool(r, "netns"));
	assert_int_equal(e2e_int(r, "link_rate_bps"), 100ll << 20);
	/* The first iteration moved the 48 MiB working set through a 100 MiB/s
	 * token bucket: its measured bandwidth cannot exceed the rate by much
	 * (socket buffers absorb a few MiB before the flush returns). */
	assert_true(e2e_array_len(r, "iterations") >= 1);
	assert_true(e2e_double(r, "iterations.0.bandwidth_bps") < 1.5 * (100 << 20));
	e2e_run_release(r);
	/* Nothing left behind. */
	snprintf(cmd, sizeof(cmd), "ip netns list | grep -q sluice-");
	assert_int_not_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netns_link_rate),
	};

	char probe[160];

	/* Creating a namespace is the real test (root in a container may lack
	 * CAP_SYS_ADMIN / CAP_NET_ADMIN). */
	snprintf(probe, sizeof(probe),
		 "ip netns add sluice-probe-%d >/dev/null 2>&1 && ip netns del sluice-probe-%d",
		 (int)getpid(), (int)getpid());
	if (geteuid() != 0 || system(probe) != 0 || system("tc -V >/dev/null 2>&1") != 0) {
		fprintf(stderr, "skipped: --netns needs root, ip and tc\n");
		return 77;
	}
	if (!e2e_have_kvm() && !e2e_have_uffd()) {
		fprintf(stderr, "skipped: neither /dev/kvm nor userfaultfd WP here\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
