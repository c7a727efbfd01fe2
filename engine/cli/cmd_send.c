/* SPDX-License-Identifier: MIT */
/*
 * cmd_send.c — `sluice send`: the source end for two real hosts. Starts the
 * workload here, migrates it to a `sluice receive` listening elsewhere and
 * checks the destination's memory hash against this side's at stop.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cmd_run.h"
#include "cmd_run_report.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice send --to tcp:HOST:PORT --psk-file PATH [options]\n"
		"\n"
		"Starts the workload on this host and live-migrates it to a `sluice receive`\n"
		"started with the same --workload, --mem, --vcpus and key. Exit codes: 0\n"
		"migrated (and the destination's memory hash matched), 1 failed (the VM keeps\n"
		"running here), 2 usage, 3 hash mismatch.\n"
		"\n"
		"  --to URL              the receiver's address\n");
	run_print_common_help(f);
}

struct send_ctx {
	struct sl_cli_progress prog;
	uint64_t sent, total;
};

static void on_iteration(void *ctx, const struct sl_iter_record *rec)
{
	struct send_ctx *sc = ctx;

	sc->sent += rec->sent_bytes;
	sl_cli_progress_update(&sc->prog, "migrating", rec->index, sc->sent, sc->total);
}

static int send_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		RUN_COMMON_LONGOPTS,
		{ "to", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct run_opts o;
	struct run_result res;
	struct run_verdict v;
	struct run_hooks hooks;
	struct send_ctx sc;
	struct wl_source *w = NULL;
	struct sl_errbuf eb = { { 0 } };
	uint8_t psk[4096];
	size_t psk_len = 0;
	int c, ret, code = SL_EXIT_FAILED;

	run_opts_default(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r;

		if (c == 'h') {
			usage(stdout);
			return SL_EXIT_OK;
		}
		if (c == 't') {
			o.url = optarg;
			continue;
		}
		if (c == '?')
			return sl_cli_usage_error("send", "unknown option");
		r = run_parse_common("send", c, optarg, &o);
		if (r)
			return r == 1 ? sl_cli_usage_error("send", "unexpected option") : r;
	}
	if (optind < argc)
		return sl_cli_usage_error("send", "unexpected argument '%s'", argv[optind]);
	if (!o.url)
		return sl_cli_usage_error("send", "--to is required");
	if (!o.psk_file)
		return sl_cli_usage_error("send", "--psk-file is required (both ends share the key)");
	ret = run_opts_check("send", &o);
	if (ret)
		return ret;
	ret = run_read_psk(o.psk_file, psk, sizeof(psk), &psk_len, &eb);
	if (ret < 0) {
		fprintf(stderr, "sluice send: %s\n", eb.msg);
		return SL_EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&res, 0, sizeof(res));
	sl_stats_init(&res.stats);

	ret = wl_source_new(&o, &w, &eb);
	if (ret < 0) {
		fprintf(stderr, "sluice send: %s workload: %s\n", run_workload_name(o.workload), eb.msg);
		code = ret == -ENODEV || ret == -EOPNOTSUPP ? SL_EXIT_UNSUPPORTED : SL_EXIT_FAILED;
		goto out;
	}
	if (!o.json)
		run_print_scenario(stdout, &o, "send");
	fflush(stdout);
	memset(&sc, 0, sizeof(sc));
	sc.total = wl_source_mem_bytes(w);
	sl_cli_progress_init(&sc.prog, o.json || o.quiet);
	hooks.iteration = on_iteration;
	hooks.stopped = NULL;
	hooks.ctx = &sc;
	ret = run_source(&o, w, o.url, psk, psk_len, &hooks, &res);
	sl_cli_progress_done(&sc.prog);
	if (ret < 0)
		res.source_running_after_failure = wl_source_running(w, 3000000000ull);
	run_verdict(&o, &res, NULL, &v);
	code = v.exit_code;
	if (o.json) {
		struct json_object *j = run_json(&o, &res, NULL, &v);

		if (j) {
			printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
			json_object_put(j);
		}
	} else {
		run_print_report(stdout, &o, &res, NULL, &v);
	}
	if (ret < 0)
		fprintf(stderr, "sluice send: migration failed: %s%s\n", res.msg,
			res.source_running_after_failure ? " — the VM is still running here" : "");
out:
	wl_source_free(&w);
	sl_stats_exit(&res.stats);
	memset(psk, 0, sizeof(psk));
	return code;
}

SL_CLI_COMMAND(send, "send", "live-migrate a workload to a `sluice receive` on another host", send_main)
