/* SPDX-License-Identifier: MIT */
/*
 * test_e2e_cli.c — the CLI contract of run/send/receive: the --json keys
 * the issue lists (sweep and scripts depend on them), the SIMULATED
 * synthetic workload (larger than it touches: zero pages travel as ZERO
 * packets), usage errors (exit 2 with one line), and `sluice send` to a
 * separately started `sluice receive` with a key file, as on two hosts.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_util.h"

static void test_json_keys_synthetic(void **state)
{
	static const char *const args[] = { "run", "--workload", "synthetic", "--mem", "1G", "--wss", "32M",
					     "--pattern", "zipf", "--dirty-rate", "64M", "--channels", "3",
					     "--policy", "predictive", "--downtime-limit", "200ms",
					     "--zero-copy", "off", "--json", NULL };
	static const char *const keys[] = { "workload", "verified", "downtime_ms", "e2e_downtime_ms",
					    "downtime_breakdown", "total_ms", "setup_ms", "iterations",
					    "transferred_bytes", "zero_pages", "channels", "zero_copy_mode",
					    "policy", "downtime_limit_ms",
					    "downtime_breakdown.final_sync_ms", "downtime_breakdown.final_ram_ms",
					    "downtime_breakdown.device_ms", "downtime_breakdown.state_ms",
					    "downtime_breakdown.dest_load_ms", "downtime_breakdown.resume_ms" };
	struct e2e_run *r = *state;

	assert_int_equal(e2e_exec(args, 55, r), 0);
	assert_int_equal(r->exit_code, 0);
	assert_non_null(r->json);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!e2e_has(r, keys[i]))
			fail_msg("--json lacks key %s", keys[i]);
	assert_string_equal(e2e_str(r, "workload"), "synthetic");
	assert_true(e2e_bool(r, "verified"));
	assert_int_equal(e2e_int(r, "channels"), 3);
	assert_string_equal(e2e_str(r, "policy"), "predictive");
	assert_string_equal(e2e_str(r, "zero_copy_mode"), "copy");
	assert_true(e2e_double(r, "downtime_limit_ms") > 199.9 && e2e_double(r, "downtime_limit_ms") < 200.1);
	/* 1 GiB mapped, 32 MiB ever written: the rest are ZERO pages. */
	assert_true(e2e_int(r, "zero_pages") >= ((1ll << 30) - (32ll << 20)) / 4096);
	assert_true(e2e_int(r, "transferred_bytes") >= 32ll << 20);
	assert_true(e2e_int(r, "transferred_bytes") < 512ll << 20);
	assert_true(e2e_array_len(r, "iterations") >= 1);
	e2e_run_release(r);
}

/* SIMULATED VFIO devices from --device specs: PRE_COPY data during precopy,
 * STOP_COPY at the switchover, their state hashes equal on both ends. */
static void test_devices(void **state)
{
	static const char *const args[] = { "run", "--workload", "synthetic", "--mem", "64M", "--wss", "16M",
					     "--device", "sim:state=8M,precopy=4M,dirty-rate=1M/s",
					     "--device", "sim:state=1M", "--json", NULL };
	struct e2e_run *r = *state;

	assert_int_equal(e2e_exec(args, 55, r), 0);
	assert_int_equal(r->exit_code, 0);
	assert_true(e2e_bool(r, "verified"));
	assert_int_equal((int64_t)e2e_array_len(r, "devices"), 2);
	/* Device 0 has 4 MiB of PRE_COPY data; device 1 has no PRE_COPY. */
	assert_true(e2e_int(r, "devices.0.bytes_precopy") >= 4ll << 20);
	assert_true(e2e_int(r, "devices.0.bytes_stopcopy") > 0);
	assert_int_equal(e2e_int(r, "devices.1.bytes_precopy"), 0);
	/* 1 MiB of state plus the simulated device's stream framing (< 4 KiB). */
	assert_true(e2e_int(r, "devices.1.bytes_stopcopy") >= 1ll << 20);
	assert_true(e2e_int(r, "devices.1.bytes_stopcopy") < (1ll << 20) + 4096);
	assert_true(e2e_bool(r, "devices.0.verified"));
	assert_true(e2e_bool(r, "devices.1.verified"));
	assert_true(e2e_bool(r, "verification.devices_checked"));
	assert_true(e2e_bool(r, "verification.devices_ok"));
	assert_true(e2e_int(r, "device_bytes") >= 9ll << 20);
	e2e_run_release(r);
}

static void expect_usage(struct e2e_run *r, const char *const *args, const char *needle)
{
	assert_int_equal(e2e_exec(args, 20, r), 0);
	assert_int_equal(r->exit_code, 2);
	assert_non_null(strstr(r->err, needle));
	e2e_run_release(r);
}

static void test_usage_errors(void **state)
{
	static const char *const a1[] = { "run", "--channels", "0", NULL };
	static const char *const a2[] = { "run", "--workload", "vmware", NULL };
	static const char *const a3[] = { "run", "--mem", "lots", NULL };
	static const char *const a4[] = { "run", "--policy", "yolo", NULL };
	static const char *const a5[] = { "run", "--workload", "synthetic", "--mem", "64M", "--wss", "128M", NULL };
	static const char *const a6[] = { "run", "--frobnicate", NULL };
	static const char *const a7[] = { "send", "--psk-file", "/nonexistent", NULL };
	static const char *const a8[] = { "receive", "--listen", "tcp:127.0.0.1:0", NULL };
	static const char *const help[] = { "run", "--help", NULL };
	struct e2e_run *r = *state;

	expect_usage(r, a1, "--channels");
	expect_usage(r, a2, "--workload");
	expect_usage(r, a3, "--mem");
	expect_usage(r, a4, "--policy");
	expect_usage(r, a5, "--wss");
	expect_usage(r, a6, "unknown option");
	expect_usage(r, a7, "--to");
	expect_usage(r, a8, "--psk-file");
	assert_int_equal(e2e_exec(help, 20, r), 0);
	assert_int_equal(r->exit_code, 0);
	assert_non_null(strstr(r->out, "--downtime-limit"));
	assert_non_null(strstr(r->out, "Exit codes"));
	e2e_run_release(r);
}

/* `sluice receive` started on its own (as on a second host), then `sluice
 * send --to` with the same key file. */
static void test_send_to_receive(void **state)
{
	char keyfile[] = "/tmp/sluice-e2e-key-XXXXXX", port_s[16], url[64], fdarg[16];
	struct e2e_run *r = *state;
	int kfd = mkstemp(keyfile), ready[2], status, n;
	pid_t pid;

	assert_true(kfd >= 0);
	assert_int_equal(write(kfd, "a shared secret\n", 16), 16);
	close(kfd);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		close(ready[0]);
		snprintf(fdarg, sizeof(fdarg), "%d", ready[1]);
		execl(e2e_sluice(), "sluice", "receive", "--listen", "tcp:127.0.0.1:0", "--psk-file", keyfile,
		      "--workload", "synthetic", "--mem", "64M", "--wss", "16M", "--ready-fd", fdarg,
		      "--quiet", (char *)NULL);
		_exit(127);
	}
	close(ready[1]);
	n = (int)read(ready[0], port_s, sizeof(port_s) - 1);
	close(ready[0]);
	assert_true(n > 0);
	port_s[n] = 0;
	snprintf(url, sizeof(url), "tcp:127.0.0.1:%d", atoi(port_s));
	{
		const char *const args[] = { "send", "--to", url, "--psk-file", keyfile, "--workload", "synthetic",
					     "--mem", "64M", "--wss", "16M", "--json", NULL };

		assert_int_equal(e2e_exec(args, 55, r), 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(keyfile);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(r->exit_code, 0);
	assert_true(e2e_bool(r, "verified"));
	assert_true(e2e_bool(r, "verification.hash_equal"));
	e2e_run_release(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_keys_synthetic),
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_send_to_receive),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, e2e_group_setup, e2e_group_teardown);
}
