/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench_qemu.c — `sluice bench qemu`: QEMU's own live migration of the
 * same guest image (build/bench/guest.elf, booted with -kernel), driven over
 * QMP with the same memory size, working set, bandwidth cap and downtime
 * limit as `sluice run`; with --compare, `sluice run` runs in the same
 * invocation and the report gives sluice / QEMU ratios.
 *
 * QEMU reports downtime measured on the source (VM stop to completion), the
 * same definition as sluice's source-side downtime_ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "qmp.h"
#include "sl_common.h"
#include "sl_config.h"

struct qemu_opts {
	uint64_t mem, wss, bandwidth, downtime_ns, warmup_ns, timeout_ns;
	const char *pattern, *qemu, *guest, *policy;
	unsigned reps;
	bool json, compare;
};

struct qemu_result {
	bool ok, dest_running;
	double downtime_ms, total_ms, setup_ms;
	uint64_t transferred, dirty_syncs, normal_pages;
	char error[256];
	json_object *raw; /* QEMU's final query-migrate reply, for --json */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice bench qemu [options]\n"
		"\n"
		"Migrates the sluice guest image with QEMU (KVM accelerator, -kernel,\n"
		"QMP migrate) between two QEMU processes on loopback and reports QEMU's\n"
		"downtime, total time and bytes; --compare also runs `sluice run` with\n"
		"the same settings in this invocation and reports the ratios.\n"
		"\n"
		"options:\n"
		"  --mem SIZE             guest memory (default 512M)\n"
		"  --wss SIZE             working set rewritten continuously (default 316M)\n"
		"  --pattern P            sequential | random | stride (default sequential)\n"
		"  --bandwidth RATE       max-bandwidth, e.g. 1G (default 1G; 0 = unlimited)\n"
		"  --downtime-limit DUR   downtime-limit, e.g. 300ms (default 300ms)\n"
		"  --warmup DUR           run the guest this long before migrating (default 1s)\n"
		"  --reps N               repeat and report each run (default 1)\n"
		"  --compare              also run `sluice run` with the same settings\n"
		"  --policy NAME          with --compare: sluice's convergence policy\n"
		"                         (default: sluice run's default)\n"
		"  --qemu PATH            QEMU binary (default qemu-system-x86_64)\n"
		"  --guest PATH           guest image (default: the build's bench/guest.elf)\n"
		"  --timeout DUR          give up on one migration after this (default 120s)\n"
		"  --json                 print one JSON object\n"
		"  -h, --help             this text\n"
		"\n"
		"Exit codes: 0 ok, 1 a migration failed, 2 usage, 4 QEMU or /dev/kvm missing.\n");
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static pid_t spawn_qemu(const struct qemu_opts *o, const char *qmp_path, const char *incoming,
			const char *log_path, const char *con_path)
{
	char mem[32], append[160];
	pid_t pid;

	snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)(o->mem >> 20));
	snprintf(append, sizeof(append), "start=2M size=%lluM pattern=%s",
		 (unsigned long long)(o->wss >> 20), o->pattern);
	pid = fork();
	if (pid != 0)
		return pid;
	int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	char qmparg[300];

	snprintf(qmparg, sizeof(qmparg), "unix:%s,server=on,wait=off", qmp_path);
	char conarg[300];

	snprintf(conarg, sizeof(conarg), "file:%s", con_path);
	const char *argv[32];
	int n = 0;

	argv[n++] = o->qemu;
	argv[n++] = "-machine";
	argv[n++] = "pc,accel=kvm";
	argv[n++] = "-cpu";
	argv[n++] = "host";
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-nodefaults";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-kernel";
	argv[n++] = o->guest;
	argv[n++] = "-append";
	argv[n++] = append;
	argv[n++] = "-qmp";
	argv[n++] = qmparg;
	argv[n++] = "-debugcon"; /* the guest's text log: tells when it runs */
	argv[n++] = conarg;
	if (incoming) {
		argv[n++] = "-incoming";
		argv[n++] = incoming;
	}
	argv[n] = NULL;
	execvp(o->qemu, (char *const *)argv);
	_exit(127);
}

static void stop_qemu(struct qmp **q, pid_t pid)
{
	int status;

	if (*q)
		qmp_exec(*q, "quit", NULL, NULL, NULL, 0);
	qmp_close(q);
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static double get_num(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

/* True once the guest's debug console shows it finished its first pass. */
static bool guest_running(const char *con_path)
{
	char buf[4096];
	FILE *f = fopen(con_path, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, "pass 1") != NULL;
}

static int run_qemu_once(const struct qemu_opts *o, const char *dir, struct qemu_result *r)
{
	char src_qmp[256], dst_qmp[256], src_log[256], dst_log[256], incoming[64], uri[64];
	char src_con[256], dst_con[256];
	struct qmp *src = NULL, *dst = NULL;
	pid_t spid, dpid;
	int port, ret;

	memset(r, 0, sizeof(*r));
	port = free_port();
	if (port < 0)
		return snprintf(r->error, sizeof(r->error), "no free loopback port"), -EADDRINUSE;
	snprintf(src_qmp, sizeof(src_qmp), "%s/src.qmp", dir);
	snprintf(dst_qmp, sizeof(dst_qmp), "%s/dst.qmp", dir);
	snprintf(src_log, sizeof(src_log), "%s/src.log", dir);
	snprintf(dst_log, sizeof(dst_log), "%s/dst.log", dir);
	snprintf(src_con, sizeof(src_con), "%s/src.con", dir);
	snprintf(dst_con, sizeof(dst_con), "%s/dst.con", dir);
	snprintf(incoming, sizeof(incoming), "tcp:127.0.0.1:%d", port);
	snprintf(uri, sizeof(uri), "tcp:127.0.0.1:%d", port);

	dpid = spawn_qemu(o, dst_qmp, incoming, dst_log, dst_con);
	spid = spawn_qemu(o, src_qmp, NULL, src_log, src_con);
	if ((ret = qmp_open(dst_qmp, 10000, &dst)) || (ret = qmp_open(src_qmp, 10000, &src))) {
		snprintf(r->error, sizeof(r->error), "QEMU did not start (see %.150s): %.60s",
			 dst ? src_log : dst_log, strerror(-ret));
		goto out;
	}
	/* SeaBIOS alone can take 10-20 s under nested KVM; that is not migration
	 * time, so wait for the guest to be writing before the warm-up starts. */
	uint64_t boot_deadline = sl_now_ns() + 120ull * 1000000000;

	while (!guest_running(src_con)) {
		if (sl_now_ns() > boot_deadline) {
			snprintf(r->error, sizeof(r->error), "guest did not start under QEMU in 120s (see %.180s)", src_con);
			ret = -ETIMEDOUT;
			goto out;
		}
		sleep_ns(50 * 1000 * 1000);
	}
	sleep_ns(o->warmup_ns);

	json_object *params = json_object_new_object();

	json_object_object_add(params, "max-bandwidth", json_object_new_int64(
		o->bandwidth ? (int64_t)o->bandwidth : INT64_MAX / 2));
	json_object_object_add(params, "downtime-limit",
			       json_object_new_int64((int64_t)(o->downtime_ns / 1000000)));
	ret = qmp_exec(src, "migrate-set-parameters", params, NULL, r->error, sizeof(r->error));
	if (ret)
		goto out;
	json_object *margs = json_object_new_object();

	json_object_object_add(margs, "uri", json_object_new_string(uri));
	ret = qmp_exec(src, "migrate", margs, NULL, r->error, sizeof(r->error));
	if (ret)
		goto out;

	uint64_t deadline = sl_now_ns() + o->timeout_ns;
	unsigned completed_polls = 0;

	for (;;) {
		json_object *st = NULL, *v;
		const char *status;

		sleep_ns(20 * 1000 * 1000);
		ret = qmp_exec(src, "query-migrate", NULL, &st, r->error, sizeof(r->error));
		if (ret)
			goto out;
		status = json_object_object_get_ex(st, "status", &v) ? json_object_get_string(v) : "";
		/* QEMU 7.2 can report "completed" a moment before it fills in
		 * total-time and downtime: ask again until they are there. */
		if (!strcmp(status, "completed") && get_num(st, "total-time") <= 0 &&
		    completed_polls++ < 50) {
			json_object_put(st);
			continue;
		}
		if (!strcmp(status, "completed")) {
			json_object *ram;

			r->downtime_ms = get_num(st, "downtime");
			r->total_ms = get_num(st, "total-time");
			r->setup_ms = get_num(st, "setup-time");
			if (json_object_object_get_ex(st, "ram", &ram)) {
				r->transferred = (uint64_t)get_num(ram, "transferred");
				r->dirty_syncs = (uint64_t)get_num(ram, "dirty-sync-count");
				r->normal_pages = (uint64_t)get_num(ram, "normal");
			}
			r->raw = st;
			break;
		}
		if (!strcmp(status, "failed") || !strcmp(status, "cancelled")) {
			snprintf(r->error, sizeof(r->error), "QEMU migration %s", status);
			json_object_put(st);
			ret = -EIO;
			goto out;
		}
		json_object_put(st);
		if (sl_now_ns() > deadline) {
			snprintf(r->error, sizeof(r->error), "QEMU migration did not finish in %.0fs",
				 (double)o->timeout_ns / 1e9);
			qmp_exec(src, "migrate_cancel", NULL, NULL, NULL, 0);
			ret = -ETIMEDOUT;
			goto out;
		}
	}
	/* The destination must be running the guest. */
	json_object *ds = NULL, *running;

	for (int i = 0; i < 50 && !r->dest_running; i++) {
		if (qmp_exec(dst, "query-status", NULL, &ds, NULL, 0) == 0) {
			r->dest_running = json_object_object_get_ex(ds, "running", &running) &&
					  json_object_get_boolean(running);
			json_object_put(ds);
		}
		if (!r->dest_running)
			sleep_ns(20 * 1000 * 1000);
	}
	r->ok = true;
	ret = 0;
out:
	stop_qemu(&src, spid);
	stop_qemu(&dst, dpid);
	return ret;
}

/* Runs `sluice run --json` with the same scenario; fills the sluice figures. */
static int run_sluice(const struct qemu_opts *o, json_object **out)
{
	char cmd[1024], buf[1 << 16];
	size_t len = 0;
	FILE *p;
	int status;

	char exe[512];
	ssize_t elen = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	/* Resolve our own path here: inside popen's shell /proc/self/exe is the shell. */
	if (elen <= 0)
		return -errno;
	exe[elen] = '\0';
	snprintf(cmd, sizeof(cmd),
		 "'%s' run --json --workload kvm --mem %lluM --wss %lluM --pattern %s "
		 "--bandwidth %llu --downtime-limit %llums%s%s",
		 exe, (unsigned long long)(o->mem >> 20), (unsigned long long)(o->wss >> 20),
		 !strcmp(o->pattern, "seq") ? "sequential" : o->pattern,
		 (unsigned long long)o->bandwidth, (unsigned long long)(o->downtime_ns / 1000000),
		 o->policy ? " --policy " : "", o->policy ? o->policy : "");
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	while (len < sizeof(buf) - 1) {
		size_t n = fread(buf + len, 1, sizeof(buf) - 1 - len, p);

		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	status = pclose(p);
	*out = json_tokener_parse(buf);
	if (!*out)
		return -EBADMSG;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static const char *default_guest(char *buf, size_t len)
{
	char exe[512];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');

		if (slash) {
			*slash = '\0';
			snprintf(buf, len, "%s/../bench/guest.elf", exe);
			if (access(buf, R_OK) == 0)
				return buf;
		}
	}
	snprintf(buf, len, "%s/bench/guest.elf", SL_BUILD_DIR);
	return buf;
}

static int have_qemu(const char *qemu)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", qemu);
	return system(cmd) == 0;
}

static int cmd_bench_qemu(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "wss", required_argument, NULL, 'w' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "downtime-limit", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "reps", required_argument, NULL, 'r' },
		{ "compare", no_argument, NULL, 'c' },
		{ "policy", required_argument, NULL, 'P' },
		{ "qemu", required_argument, NULL, 'q' },
		{ "guest", required_argument, NULL, 'g' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct qemu_opts o = {
		.mem = 512ull << 20, .wss = 316ull << 20, .bandwidth = 1ull << 30,
		.downtime_ns = 300ull * 1000000, .warmup_ns = 1000000000ull,
		.timeout_ns = 120ull * 1000000000, .pattern = "seq",
		.qemu = "qemu-system-x86_64", .reps = 1,
	};
	char guest_buf[600];
	uint64_t v;
	int c, failures = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 'm': if (sl_cli_parse_size(optarg, &o.mem)) return sl_cli_usage_error(argv[0], "bad --mem '%s'", optarg); break;
		case 'w': if (sl_cli_parse_size(optarg, &o.wss)) return sl_cli_usage_error(argv[0], "bad --wss '%s'", optarg); break;
		case 'p':
			/* The guest's command line says "seq"; sluice run says "sequential". */
			if (!strcmp(optarg, "sequential"))
				optarg = "seq";
			if (strcmp(optarg, "seq") && strcmp(optarg, "random") && strcmp(optarg, "stride"))
				return sl_cli_usage_error(argv[0], "bad --pattern '%s' (sequential, random, stride)", optarg);
			o.pattern = optarg;
			break;
		case 'b': if (sl_cli_parse_rate(optarg, &o.bandwidth)) return sl_cli_usage_error(argv[0], "bad --bandwidth '%s'", optarg); break;
		case 'd': if (sl_cli_parse_duration(optarg, &o.downtime_ns) || o.downtime_ns < 1000000) return sl_cli_usage_error(argv[0], "bad --downtime-limit '%s' (at least 1ms)", optarg); break;
		case 'W': if (sl_cli_parse_duration(optarg, &o.warmup_ns)) return sl_cli_usage_error(argv[0], "bad --warmup '%s'", optarg); break;
		case 'r': if (sl_cli_parse_uint(optarg, 1, 100, &v)) return sl_cli_usage_error(argv[0], "bad --reps '%s' (1..100)", optarg); o.reps = (unsigned)v; break;
		case 'c': o.compare = true; break;
		case 'P':
			if (strcmp(optarg, "threshold") && strcmp(optarg, "predictive") && strcmp(optarg, "ramp"))
				return sl_cli_usage_error(argv[0], "bad --policy '%s' (threshold, predictive, ramp)", optarg);
			o.policy = optarg;
			break;
		case 'q': o.qemu = optarg; break;
		case 'g': o.guest = optarg; break;
		case 't': if (sl_cli_parse_duration(optarg, &o.timeout_ns)) return sl_cli_usage_error(argv[0], "bad --timeout '%s'", optarg); break;
		case 'j': o.json = true; break;
		case 'h': usage(stdout); return SL_EXIT_OK;
		default: return sl_cli_usage_error(argv[0], "unknown option");
		}
	}
	if (optind < argc)
		return sl_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	if (o.wss + (2ull << 20) > o.mem)
		return sl_cli_usage_error(argv[0], "--wss must fit in --mem above the first 2 MiB");
	if (!o.guest)
		o.guest = default_guest(guest_buf, sizeof(guest_buf));
	if (access(o.guest, R_OK)) {
		fprintf(stderr, "sluice bench qemu: guest image %s not found (build it: ./sluice.sh build)\n", o.guest);
		return SL_EXIT_UNSUPPORTED;
	}
	if (!have_qemu(o.qemu)) {
		fprintf(stderr, "sluice bench qemu: %s not found (apt-get install qemu-system-x86)\n", o.qemu);
		return SL_EXIT_UNSUPPORTED;
	}
	if (access("/dev/kvm", R_OK | W_OK)) {
		fprintf(stderr, "sluice bench qemu: /dev/kvm is not usable here\n");
		return SL_EXIT_UNSUPPORTED;
	}

	char dir[] = "/tmp/sluice-qemu-XXXXXX";

	if (!mkdtemp(dir)) {
		fprintf(stderr, "sluice bench qemu: mkdtemp: %s\n", strerror(errno));
		return SL_EXIT_FAILED;
	}
	json_object *root = json_object_new_object(), *results = json_object_new_array();

	json_object_object_add(root, "benchmark", json_object_new_string("qemu"));
	json_object_object_add(root, "mem_bytes", json_object_new_int64((int64_t)o.mem));
	json_object_object_add(root, "wss_bytes", json_object_new_int64((int64_t)o.wss));
	json_object_object_add(root, "pattern", json_object_new_string(o.pattern));
	json_object_object_add(root, "bandwidth_bps", json_object_new_int64((int64_t)o.bandwidth));
	json_object_object_add(root, "downtime_limit_ms", json_object_new_double((double)o.downtime_ns / 1e6));
	if (!o.json)
		printf("%-4s %-7s %12s %10s %12s %8s %8s\n", "rep", "engine", "downtime_ms", "total_ms",
		       "sent_MiB", "syncs", "dest_ok");
	for (unsigned rep = 0; rep < o.reps; rep++) {
		struct qemu_result r;
		json_object *row = json_object_new_object();
		int ret = run_qemu_once(&o, dir, &r);

		json_object_object_add(row, "rep", json_object_new_int((int)rep));
		json_object_object_add(row, "qemu_ok", json_object_new_boolean(ret == 0));
		if (ret) {
			failures++;
			json_object_object_add(row, "qemu_error", json_object_new_string(r.error));
			if (!o.json)
				printf("%-4u %-7s failed: %s\n", rep, "qemu", r.error);
		} else {
			json_object_object_add(row, "qemu_downtime_ms", json_object_new_double(r.downtime_ms));
			json_object_object_add(row, "qemu_total_ms", json_object_new_double(r.total_ms));
			json_object_object_add(row, "qemu_setup_ms", json_object_new_double(r.setup_ms));
			json_object_object_add(row, "qemu_transferred_bytes", json_object_new_int64((int64_t)r.transferred));
			json_object_object_add(row, "qemu_dirty_syncs", json_object_new_int64((int64_t)r.dirty_syncs));
			json_object_object_add(row, "qemu_dest_running", json_object_new_boolean(r.dest_running));
			json_object_object_add(row, "qemu_query_migrate", r.raw);
			r.raw = NULL;
			if (!o.json)
				printf("%-4u %-7s %12.1f %10.1f %12.1f %8llu %8s\n", rep, "qemu", r.downtime_ms,
				       r.total_ms, (double)r.transferred / 1048576.0,
				       (unsigned long long)r.dirty_syncs, r.dest_running ? "yes" : "NO");
		}
		if (o.compare) {
			json_object *s = NULL;
			int sret = run_sluice(&o, &s);

			json_object_object_add(row, "sluice_ok", json_object_new_boolean(sret == 0));
			if (s) {
				double sd = get_num(s, "downtime_ms"), st = get_num(s, "total_ms");
				double sb = get_num(s, "transferred_bytes");
				json_object *ver;
				bool verified = json_object_object_get_ex(s, "verified", &ver) &&
						json_object_get_boolean(ver);

				json_object_object_add(row, "sluice_downtime_ms", json_object_new_double(sd));
				json_object_object_add(row, "sluice_e2e_downtime_ms",
						       json_object_new_double(get_num(s, "e2e_downtime_ms")));
				json_object_object_add(row, "sluice_total_ms", json_object_new_double(st));
				json_object_object_add(row, "sluice_transferred_bytes", json_object_new_double(sb));
				json_object_object_add(row, "sluice_verified", json_object_new_boolean(verified));
				if (ret == 0 && r.downtime_ms > 0 && r.total_ms > 0) {
					json_object_object_add(row, "downtime_ratio", json_object_new_double(sd / r.downtime_ms));
					json_object_object_add(row, "total_ratio", json_object_new_double(st / r.total_ms));
				}
				if (!o.json)
					printf("%-4u %-7s %12.1f %10.1f %12.1f %8s %8s\n", rep, "sluice", sd, st,
					       sb / 1048576.0, "", verified ? "yes" : "NO");
				if (!o.json && ret == 0 && r.downtime_ms > 0)
					printf("%-4u %-7s %12.2fx %9.2fx\n", rep, "ratio", sd / r.downtime_ms,
					       st / r.total_ms);
				json_object_put(s);
			}
			if (sret)
				failures++;
		}
		json_object_array_add(results, row);
	}
	json_object_object_add(root, "results", results);
	if (o.json)
		printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
	json_object_put(root);
	char rm[300];

	snprintf(rm, sizeof(rm), "rm -rf %s", dir);
	if (system(rm) != 0)
		fprintf(stderr, "sluice bench qemu: could not remove %s\n", dir);
	return failures ? SL_EXIT_FAILED : SL_EXIT_OK;
}

SL_CLI_COMMAND(bench_qemu, "bench qemu", "QEMU's migration of the same guest, side by side", cmd_bench_qemu)
