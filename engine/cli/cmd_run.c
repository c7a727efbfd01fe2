/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c — `sluice run`, the main job: a complete live migration on this
 * host. The destination is a separate process (`sluice receive`, spawned
 * from /proc/self/exe) listening on a loopback port it reports through a
 * pipe; the source runs here. The two share a random key through a
 * private temporary file. After the switchover the source's memory (the VM
 * stays stopped here) is hashed and compared with the hash the destination
 * took before resuming, and the destination reports whether the guest runs
 * on there.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cmd_run.h"
#include "cmd_run_netns.h"
#include "cmd_run_report.h"

struct child {
	pid_t pid;
	int out_fd;   /* its stdout (the --json report) */
};

struct run_ctx {
	const struct run_opts *o;
	struct child *dest;
	struct sl_cli_progress prog;
	uint64_t sent;
	uint64_t total;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice run [options]\n"
		"\n"
		"Runs a complete live migration on this host: the destination in a separate\n"
		"process (sluice receive) over loopback TCP, the source in this one, and\n"
		"verifies the result (destination memory hash = source memory at stop, and\n"
		"the guest keeps running on the destination). With no options: a 512 MiB KVM\n"
		"guest rewriting a 256 MiB working set, 2 channels, predictive policy, 300 ms\n"
		"downtime limit.\n"
		"\n"
		"Exit codes: 0 migrated and verified, 1 migration failed (the source VM keeps\n"
		"running), 2 bad usage, 3 migrated but verification failed, 4 unsupported here.\n"
		"\n"
		"network:\n"
		"  --netns               source and destination in two network namespaces joined\n"
		"                        by a veth pair, as two hosts (needs root and iproute2)\n"
		"  --link-rate RATE      with --netns: a tc tbf rate on the link, bytes/s (e.g. 1G)\n"
		"test aid:\n"
		"  --fault NAME          kill-dest-precopy, kill-dest-stopcopy, stall-dest,\n"
		"                        wrong-key, dest-refuse-state\n");
	run_print_common_help(f);
}

/* ---- the destination process ---------------------------------------------- */

static int write_key_file(char *path, size_t pathlen, uint8_t *key, size_t keylen,
			  struct sl_errbuf *eb)
{
	static const char hex[] = "0123456789abcdef";
	char text[129];
	int fd;

	if (getrandom(key, keylen, 0) != (ssize_t)keylen)
		return sl_err(eb, -EIO, "getrandom failed: %s", strerror(errno));
	for (size_t i = 0; i < keylen; i++) {
		text[2 * i] = hex[key[i] >> 4];
		text[2 * i + 1] = hex[key[i] & 15];
	}
	snprintf(path, pathlen, "%s/sluice-psk-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return sl_err(eb, -errno, "cannot create a key file in %s: %s", path, strerror(errno));
	fchmod(fd, 0600);
	if (write(fd, text, 2 * keylen) != (ssize_t)(2 * keylen)) {
		close(fd);
		unlink(path);
		return sl_err(eb, -EIO, "cannot write the key file %s", path);
	}
	close(fd);
	/* The key is the file's bytes (the hex text). */
	memcpy(key, text, 2 * keylen);
	return 0;
}

static void push(char **argv, int *n, const char *a)
{
	argv[(*n)++] = (char *)a;
}

static int spawn_dest(const struct run_opts *o, const char *keyfile, const char *netns,
		      struct child *c, int *port, struct sl_errbuf *eb)
{
	char mem[32], wss[32], vcpus[16], timeout[32], readyfd[16];
	char *argv[64];
	int ready[2], out[2], n = 0;
	char buf[32];
	ssize_t got = 0;
	struct pollfd pfd;

	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return sl_err(eb, -errno, "pipe: %s", strerror(errno));
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)o->mem);
	snprintf(wss, sizeof(wss), "%llu", (unsigned long long)o->wss);
	snprintf(vcpus, sizeof(vcpus), "%u", o->vcpus);
	snprintf(timeout, sizeof(timeout), "%llums", (unsigned long long)(o->timeout_ns / 1000000ull));
	push(argv, &n, "sluice");
	push(argv, &n, "receive");
	push(argv, &n, "--listen");
	push(argv, &n, netns ? "tcp:" RUN_NETNS_DST_IP ":0" : "tcp:127.0.0.1:0");
	push(argv, &n, "--psk-file");
	push(argv, &n, keyfile);
	push(argv, &n, "--workload");
	push(argv, &n, run_workload_name(o->workload));
	push(argv, &n, "--mem");
	push(argv, &n, mem);
	push(argv, &n, "--wss");
	push(argv, &n, wss);
	push(argv, &n, "--vcpus");
	push(argv, &n, vcpus);
	push(argv, &n, "--timeout");
	push(argv, &n, timeout);
	push(argv, &n, o->verify ? "--verify" : "--no-verify");
	push(argv, &n, "--json");
	push(argv, &n, "--quiet"); /* its failure reaches us in its JSON, not as a second line */
	for (unsigned i = 0; i < o->ndevices; i++) {
		push(argv, &n, "--device");
		push(argv, &n, o->devices[i]);
	}
	if (o->fault == RUN_FAULT_DEST_REFUSE_STATE) {
		push(argv, &n, "--fault");
		push(argv, &n, "refuse-state");
	}
	push(argv, &n, "--ready-fd");
	push(argv, &n, readyfd);
	argv[n] = NULL;

	c->pid = fork();
	if (c->pid < 0)
		return sl_err(eb, -errno, "fork: %s", strerror(errno));
	if (c->pid == 0) {
		/* Child: stdout → the report pipe; ready pipe kept open across exec. */
		int rfd = fcntl(ready[1], F_DUPFD, 10);

		if (netns && run_netns_enter(netns, eb) < 0) {
			fprintf(stderr, "sluice run: destination: %s\n", eb->msg);
			_exit(127);
		}
		snprintf(readyfd, sizeof(readyfd), "%d", rfd);
		dup2(out[1], STDOUT_FILENO);
		execv("/proc/self/exe", argv);
		fprintf(stderr, "sluice run: cannot start the destination: %s\n", strerror(errno));
		_exit(127);
	}
	close(ready[1]);
	close(out[1]);
	c->out_fd = out[0];
	/* Wait until it listens (creating a VM can take a moment). */
	pfd.fd = ready[0];
	pfd.events = POLLIN;
	while (got < (ssize_t)sizeof(buf) - 1) {
		ssize_t r;

		if (poll(&pfd, 1, 30000) <= 0)
			break;
		r = read(ready[0], buf + got, sizeof(buf) - 1 - (size_t)got);
		if (r <= 0)
			break;
		got += r;
		if (memchr(buf, '\n', (size_t)got))
			break;
	}
	close(ready[0]);
	buf[got] = 0;
	*port = atoi(buf);
	if (*port <= 0)
		return sl_err(eb, -ECHILD, "the destination process did not start listening (see its message above)");
	return 0;
}

/* Reads the destination's JSON report (its whole stdout) and reaps it. */
static void collect_dest(struct child *c, struct run_dest_view *dv, int *status, int timeout_ms)
{
	char buf[65536];
	size_t got = 0;
	struct pollfd pfd = { .fd = c->out_fd, .events = POLLIN };
	struct json_object *j, *v;
	uint64_t end = sl_now_ns() + (uint64_t)timeout_ms * 1000000ull;

	memset(dv, 0, sizeof(*dv));
	while (got < sizeof(buf) - 1) {
		int left = (int)((end - SL_MIN(end, sl_now_ns())) / 1000000ull);
		ssize_t r;

		if (left <= 0 || poll(&pfd, 1, left) <= 0)
			break;
		r = read(c->out_fd, buf + got, sizeof(buf) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = 0;
	close(c->out_fd);
	c->out_fd = -1;
	if (waitpid(c->pid, status, WNOHANG) == 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, status, 0);
	}
	c->pid = -1;
	j = json_tokener_parse(buf);
	if (!j)
		return;
	dv->known = true;
#define GETB(k, f) if (json_object_object_get_ex(j, k, &v)) f = json_object_get_boolean(v)
#define GETU(k, f) if (json_object_object_get_ex(j, k, &v)) f = (uint64_t)json_object_get_int64(v)
	GETB("ok", dv->ok);
	GETB("guest_check", dv->guest_check);
	GETB("guest_running", dv->guest_running);
	GETU("progress_at_resume", dv->progress_at_resume);
	GETU("progress_after", dv->progress_after);
	GETB("pages_checked", dv->pages_checked);
	GETB("pages_ok", dv->pages_ok);
#undef GETB
#undef GETU
	if (json_object_object_get_ex(j, "why", &v))
		snprintf(dv->why, sizeof(dv->why), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(j, "error", &v))
		snprintf(dv->error, sizeof(dv->error), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(j, "device_hashes", &v) && json_object_is_type(v, json_type_array)) {
		dv->ndevices = (unsigned)SL_MIN(json_object_array_length(v), (size_t)RUN_MAX_DEVICES);
		for (unsigned i = 0; i < dv->ndevices; i++)
			dv->dev_hash[i] = strtoull(json_object_get_string(json_object_array_get_idx(v, i)),
						   NULL, 16);
	}
	json_object_put(j);
}

/* ---- hooks: progress and fault injection ------------------------------------ */

static void on_iteration(void *ctx, const struct sl_iter_record *rec)
{
	struct run_ctx *rc = ctx;

	rc->sent += rec->sent_bytes;
	sl_cli_progress_update(&rc->prog, "migrating", rec->index, rc->sent, rc->total);
	if (rec->index == 1 && rc->dest->pid > 0) {
		if (rc->o->fault == RUN_FAULT_KILL_DEST_PRECOPY)
			kill(rc->dest->pid, SIGKILL);
		else if (rc->o->fault == RUN_FAULT_STALL_DEST)
			kill(rc->dest->pid, SIGSTOP);
	}
}

static void on_stopped(void *ctx)
{
	struct run_ctx *rc = ctx;

	if (rc->o->fault == RUN_FAULT_KILL_DEST_STOPCOPY && rc->dest->pid > 0)
		kill(rc->dest->pid, SIGKILL);
}

/* Ctrl-C / kill: don't leave the destination process, the key file or the
 * namespaces behind (the source workload dies with this process). */
static struct {
	pid_t dest;
	const char *keyfile;
	struct run_netns *ns;
} cleanup;

static void on_signal(int sig)
{
	if (cleanup.dest > 0)
		kill(cleanup.dest, SIGKILL);
	if (cleanup.keyfile && cleanup.keyfile[0])
		unlink(cleanup.keyfile);
	if (cleanup.ns)
		run_netns_teardown(cleanup.ns);
	_exit(128 + sig);
}

static int parse_fault(const char *s, enum run_fault *f)
{
	static const struct { const char *n; enum run_fault f; } t[] = {
		{ "kill-dest-precopy", RUN_FAULT_KILL_DEST_PRECOPY },
		{ "kill-dest-stopcopy", RUN_FAULT_KILL_DEST_STOPCOPY },
		{ "stall-dest", RUN_FAULT_STALL_DEST },
		{ "wrong-key", RUN_FAULT_WRONG_KEY },
		{ "dest-refuse-state", RUN_FAULT_DEST_REFUSE_STATE },
	};

	for (size_t i = 0; i < SL_ARRAY_SIZE(t); i++) {
		if (!strcmp(s, t[i].n)) {
			*f = t[i].f;
			return 0;
		}
	}
	return -EINVAL;
}

static int run_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		RUN_COMMON_LONGOPTS,
		{ "fault", required_argument, NULL, 3001 },
		{ "netns", no_argument, NULL, 3002 },
		{ "link-rate", required_argument, NULL, 3003 },
		{ NULL, 0, NULL, 0 },
	};
	struct run_opts o;
	struct run_ctx rc;
	struct run_hooks hooks;
	struct child dest = { .pid = -1, .out_fd = -1 };
	struct run_result res;
	struct run_dest_view dv;
	struct run_verdict verdict;
	struct wl_source *w = NULL;
	struct run_netns ns = { 0 };
	struct sl_errbuf eb = { { 0 } };
	uint8_t key[64];
	char keyfile[256] = "", url[64];
	int c, ret, port = 0, status = 0, code = SL_EXIT_FAILED;
	bool reported = false;

	run_opts_default(&o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r;

		if (c == 'h') {
			usage(stdout);
			return SL_EXIT_OK;
		}
		if (c == 3001) {
			if (parse_fault(optarg, &o.fault) < 0)
				return sl_cli_usage_error("run", "--fault %s: unknown fault", optarg);
			continue;
		}
		if (c == 3002) {
			o.netns = true;
			continue;
		}
		if (c == 3003) {
			if (sl_cli_parse_rate(optarg, &o.link_rate) < 0)
				return sl_cli_usage_error("run", "--link-rate %s: expected bytes/s like 1G", optarg);
			o.netns = true;
			continue;
		}
		if (c == '?')
			return sl_cli_usage_error("run", "unknown option");
		r = run_parse_common("run", c, optarg, &o);
		if (r)
			return r == 1 ? sl_cli_usage_error("run", "unexpected option") : r;
	}
	if (optind < argc)
		return sl_cli_usage_error("run", "unexpected argument '%s'", argv[optind]);
	if (o.psk_file)
		return sl_cli_usage_error("run", "--psk-file is for send/receive; run makes its own key");
	/* Both ends on one host (loopback or veth): the kernel copies every
	 * zero-copy send anyway, and SEND_ZC's buffer registration and
	 * completions only cost time (docs/results.md: 295 vs 186 MB/s, setup
	 * 33 vs 500 ms for 512 MiB). Zero-copy stays one option away. */
	if (!o.zc_set)
		o.zc = SL_ZERO_COPY_OFF;
	ret = run_opts_check("run", &o);
	if (ret)
		return ret;

	memset(&res, 0, sizeof(res));
	sl_stats_init(&res.stats);
	memset(&dv, 0, sizeof(dv));
	signal(SIGPIPE, SIG_IGN);

	cleanup.keyfile = keyfile;
	cleanup.ns = &ns;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ret = write_key_file(keyfile, sizeof(keyfile), key, 32, &eb);
	if (ret < 0) {
		fprintf(stderr, "sluice run: %s\n", eb.msg);
		keyfile[0] = 0;
		goto out;
	}
	if (o.netns) {
		ret = run_netns_setup(&ns, o.link_rate, &eb);
		if (ret == 0)
			ret = run_netns_enter(ns.src, &eb);
		if (ret < 0) {
			fprintf(stderr, "sluice run: --netns: %s\n", eb.msg);
			code = SL_EXIT_UNSUPPORTED;
			goto out;
		}
	}
	ret = spawn_dest(&o, keyfile, o.netns ? ns.dst : NULL, &dest, &port, &eb);
	if (ret < 0) {
		fprintf(stderr, "sluice run: %s\n", eb.msg);
		goto out;
	}
	cleanup.dest = dest.pid;
	ret = wl_source_new(&o, &w, &eb);
	if (ret < 0) {
		fprintf(stderr, "sluice run: source %s workload: %s\n", run_workload_name(o.workload), eb.msg);
		code = ret == -ENODEV || ret == -EOPNOTSUPP || ret == -ENOSYS ? SL_EXIT_UNSUPPORTED : SL_EXIT_FAILED;
		goto out;
	}
	if (!o.json)
		run_print_scenario(stdout, &o, "run");
	fflush(stdout);

	memset(&rc, 0, sizeof(rc));
	rc.o = &o;
	rc.dest = &dest;
	rc.total = wl_source_mem_bytes(w);
	sl_cli_progress_init(&rc.prog, o.json || o.quiet);
	hooks.iteration = on_iteration;
	hooks.stopped = on_stopped;
	hooks.ctx = &rc;
	snprintf(url, sizeof(url), "tcp:%s:%d", o.netns ? RUN_NETNS_DST_IP : "127.0.0.1", port);
	if (o.fault == RUN_FAULT_WRONG_KEY) {
		if (getrandom(key, 32, 0) != 32)
			memset(key, 0x5a, 32);
		ret = run_source(&o, w, url, key, 32, &hooks, &res);
	} else {
		ret = run_source(&o, w, url, key, 64, &hooks, &res);
	}
	sl_cli_progress_done(&rc.prog);

	if (ret < 0) {
		/* Nothing lost: the session resumed the VM; prove it runs. */
		res.source_running_after_failure = wl_source_running(w, 3000000000ull);
		if (dest.pid > 0)
			kill(dest.pid, SIGCONT); /* a stalled destination may exit now */
	}
	if (dest.pid > 0)
		collect_dest(&dest, &dv, &status, ret < 0 ? 3000 : 30000);
	cleanup.dest = -1; /* reaped: its pid may be reused */
	run_verdict(&o, &res, &dv, &verdict);
	code = verdict.exit_code;
	if (ret < 0 && !res.source_running_after_failure)
		snprintf(res.msg + strlen(res.msg), sizeof(res.msg) - strlen(res.msg),
			 "; the source VM is not making progress");
	if (o.json) {
		struct json_object *j = run_json(&o, &res, &dv, &verdict);

		if (j) {
			printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
			json_object_put(j);
		}
	} else {
		run_print_report(stdout, &o, &res, &dv, &verdict);
	}
	reported = true;
	if (ret < 0)
		fprintf(stderr, "sluice run: migration failed: %s%s\n", res.msg,
			res.source_running_after_failure ? " — the source VM is still running" : "");
	else if (code == SL_EXIT_VERIFY)
		fprintf(stderr, "sluice run: verification failed%s%s\n", dv.why[0] ? ": " : "", dv.why);
out:
	if (o.json && !reported) {
		/* Failed before migrating: scripts (sluice sweep) still get an object. */
		struct run_verdict v = { .exit_code = code };

		res.err = ret < 0 ? ret : -EIO;
		snprintf(res.msg, sizeof(res.msg), "%s", eb.msg);
		{
			struct json_object *j = run_json(&o, &res, NULL, &v);

			if (j) {
				printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
				json_object_put(j);
			}
		}
	}
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (dest.pid > 0) {
		kill(dest.pid, SIGKILL);
		waitpid(dest.pid, &status, 0);
	}
	if (dest.out_fd >= 0)
		close(dest.out_fd);
	if (keyfile[0])
		unlink(keyfile);
	run_netns_teardown(&ns);
	wl_source_free(&w);
	sl_stats_exit(&res.stats);
	memset(key, 0, sizeof(key));
	fflush(stdout);
	return code;
}

SL_CLI_COMMAND(run, "run", "run a complete live migration on this host and verify it (the main job)", run_main)
