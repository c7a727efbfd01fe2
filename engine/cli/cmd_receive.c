/* SPDX-License-Identifier: MIT */
/*
 * cmd_receive.c — `sluice receive`: the destination of one migration. It
 * creates the same workload in "incoming" form (for kvm: a VM without a
 * guest loaded), listens, places pages straight into its memory, loads the
 * state, resumes, then checks the workload runs on and reports.
 *
 * `sluice run` spawns it (via /proc/self/exe) with --ready-fd so it learns
 * the port, and reads its --json report from a pipe.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cmd_run.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice receive --listen tcp:HOST:PORT --psk-file PATH [options]\n"
		"\n"
		"Receives one live migration: creates the destination workload (the same\n"
		"--workload, --mem and --vcpus as the sender), places incoming pages\n"
		"directly into its memory, loads the CPU state, resumes it and checks it\n"
		"keeps running. Exits 0 on success, 1 when the migration failed (the partial\n"
		"VM is discarded), 3 when the destination check failed.\n"
		"\n"
		"  --listen URL          tcp:0.0.0.0:4444, tcp:127.0.0.1:0 (any port), unix:/path\n"
		"  --ready-fd FD         write the bound port and a newline to FD once listening\n");
	run_print_common_help(f);
}

static int write_ready(int fd, int port)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d\n", port);
	ssize_t w = write(fd, buf, (size_t)n);

	close(fd);
	return w == n ? 0 : -EIO;
}

static int receive_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		RUN_COMMON_LONGOPTS,
		{ "listen", required_argument, NULL, 'l' },
		{ "ready-fd", required_argument, NULL, 2001 },
		{ "fault", required_argument, NULL, 2002 },
		{ NULL, 0, NULL, 0 },
	};
	struct run_opts o;
	struct wl_dest *w = NULL;
	struct sl_dest *d = NULL;
	struct sl_dest_config dc;
	struct wl_dest_result chk;
	struct sl_dest_report rep;
	struct sl_errbuf eb = { { 0 } };
	uint8_t psk[4096];
	size_t psk_len = 0;
	int c, ret, code = SL_EXIT_FAILED;
	uint64_t v;

	run_opts_default(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r;

		switch (c) {
		case 'h':
			usage(stdout);
			return SL_EXIT_OK;
		case 'l':
			o.url = optarg;
			continue;
		case 2001:
			if (sl_cli_parse_uint(optarg, 0, 1 << 20, &v) < 0)
				return sl_cli_usage_error("receive", "--ready-fd %s: expected a file descriptor", optarg);
			o.ready_fd = (int)v;
			continue;
		case 2002:
			if (strcmp(optarg, "refuse-state"))
				return sl_cli_usage_error("receive", "--fault %s: expected refuse-state", optarg);
			o.fault = RUN_FAULT_DEST_REFUSE_STATE;
			continue;
		case '?':
			return sl_cli_usage_error("receive", "unknown option");
		default:
			break;
		}
		r = run_parse_common("receive", c, optarg, &o);
		if (r)
			return r == 1 ? sl_cli_usage_error("receive", "unexpected option") : r;
	}
	if (optind < argc)
		return sl_cli_usage_error("receive", "unexpected argument '%s'", argv[optind]);
	if (!o.url)
		return sl_cli_usage_error("receive", "--listen is required");
	if (!o.psk_file)
		return sl_cli_usage_error("receive", "--psk-file is required (both ends share the key)");
	ret = run_opts_check("receive", &o);
	if (ret)
		return ret;
	ret = run_read_psk(o.psk_file, psk, sizeof(psk), &psk_len, &eb);
	if (ret < 0) {
		fprintf(stderr, "sluice receive: %s\n", eb.msg);
		return SL_EXIT_USAGE;
	}

	ret = wl_dest_new(&o, &w, &eb);
	if (ret < 0) {
		fprintf(stderr, "sluice receive: destination %s workload: %s\n",
			run_workload_name(o.workload), eb.msg);
		code = ret == -ENODEV ? SL_EXIT_UNSUPPORTED : SL_EXIT_FAILED;
		goto out;
	}
	memset(&dc, 0, sizeof(dc));
	dc.size = sizeof(dc);
	dc.listen = o.url;
	dc.psk = psk;
	dc.psk_len = psk_len;
	dc.peer_timeout_ns = o.timeout_ns;
	dc.hash_ram = o.verify;
	dc.log = run_log;
	ret = sl_dest_new(&dc, &d, &eb);
	if (ret < 0) {
		fprintf(stderr, "sluice receive: listening on %s: %s\n", o.url, eb.msg);
		goto out;
	}
	ret = wl_dest_register(w, d, &eb);
	if (ret < 0) {
		fprintf(stderr, "sluice receive: %s\n", eb.msg);
		goto out;
	}
	if (o.ready_fd >= 0 && write_ready(o.ready_fd, sl_dest_port(d)) < 0) {
		fprintf(stderr, "sluice receive: cannot write to --ready-fd %d\n", o.ready_fd);
		goto out;
	}
	if (!o.json && !o.quiet)
		fprintf(stderr, "sluice receive: listening on %s (port %d)\n", o.url, sl_dest_port(d));

	ret = sl_dest_run(d);
	memset(&chk, 0, sizeof(chk));
	if (ret == 0) {
		wl_dest_check(w, &chk);
		code = (chk.applicable && !chk.running) || (chk.pages_checked && !chk.pages_ok)
			? SL_EXIT_VERIFY : SL_EXIT_OK;
	}
	sl_dest_report(d, &rep);
	if (o.json) {
		struct json_object *j = json_object_new_object();
		struct sl_migration_stats st;
		struct json_object *js = NULL;
		char hash[24];

		snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)rep.ram_hash);
		json_object_object_add(j, "ok", json_object_new_boolean(ret == 0));
		json_object_object_add(j, "error", json_object_new_string(ret ? sl_dest_last_error(d) : ""));
		json_object_object_add(j, "workload", json_object_new_string(run_workload_name(o.workload)));
		json_object_object_add(j, "has_hash", json_object_new_boolean(rep.has_hash));
		json_object_object_add(j, "hash", json_object_new_string(hash));
		json_object_object_add(j, "guest_check", json_object_new_boolean(chk.applicable));
		json_object_object_add(j, "guest_running", json_object_new_boolean(chk.running));
		json_object_object_add(j, "progress_at_resume", json_object_new_int64((int64_t)chk.progress_at_resume));
		json_object_object_add(j, "progress_after", json_object_new_int64((int64_t)chk.progress_after));
		json_object_object_add(j, "pages_checked", json_object_new_boolean(chk.pages_checked));
		json_object_object_add(j, "pages_ok", json_object_new_boolean(chk.pages_ok));
		json_object_object_add(j, "why", json_object_new_string(chk.why));
		{
			struct json_object *a = json_object_new_array();

			for (unsigned i = 0; i < chk.ndevices; i++) {
				snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)chk.dev_hash[i]);
				json_object_array_add(a, json_object_new_string(hash));
			}
			json_object_object_add(j, "device_hashes", a);
		}
		sl_stats_init(&st);
		if (sl_dest_get_stats(d, &st) == 0 && sl_stats_to_json(&st, &js) == 0)
			json_object_object_add(j, "stats", js);
		sl_stats_exit(&st);
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
		fflush(stdout);
		json_object_put(j);
	} else if (ret == 0) {
		printf("received: hash %016llx, load %.2f ms, resume %.2f ms%s%s\n",
		       (unsigned long long)rep.ram_hash, (double)rep.load_ns / 1e6,
		       (double)rep.resume_ns / 1e6,
		       chk.applicable ? (chk.running ? ", guest running" : ", guest NOT running") : "",
		       chk.pages_checked ? (chk.pages_ok ? ", page records consistent" : ", page records INCONSISTENT") : "");
		if (chk.why[0])
			printf("  %s\n", chk.why);
	}
	/* Quiet (as `sluice run` starts it): the reason is in --json's "error"
	 * and the source reports the failure in one line of its own. */
	if (ret < 0 && !o.quiet)
		fprintf(stderr, "sluice receive: migration failed: %s (partial VM discarded)\n",
			sl_dest_last_error(d));
out:
	sl_dest_free(&d);
	wl_dest_free(&w);
	memset(psk, 0, sizeof(psk));
	return code;
}

SL_CLI_COMMAND(receive, "receive", "receive one live migration (the destination end)", receive_main)
