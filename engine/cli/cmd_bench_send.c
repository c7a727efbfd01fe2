/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench_send.c — `sluice bench send`: guest-page bytes moved from this
 * process to a receiver process (fork) over loopback TCP by the transport,
 * against the raw TCP ceiling measured in the same run.
 *
 * Per (mode, channel count):
 *   baseline  N plain TCP connections, each a write() loop (4 MiB calls, the
 *             transport's packet size; 4 MiB socket buffers at both ends, as
 *             the transport sets them) of
 *             its share of the same source buffer; the receiver child read()s
 *             into a destination region of the same size
 *   transport sl_sender with N channels and the mode; the receiver child is
 *             an sl_receiver placing pages directly into its region
 * Both timed from the first byte to the receiver's acknowledgement (the raw
 * sink writes one byte back; the transport's RESUMED). Sender CPU is
 * CLOCK_PROCESS_CPUTIME_ID of this process (the receiver is another one).
 * gbps is gigabits per second (10^9 bit/s); gbytes_per_s is 10^9 B/s.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "sl_receiver.h"
#include "sl_sender.h"
#include "sl_url.h"

/* The transport's packet size (SL_PKT_TARGET_PAYLOAD), for a like-for-like ceiling. */
#define RAW_CHUNK (4u << 20)
#define MAX_CASES 16

static const uint8_t bench_psk[] = "sluice bench send (loopback only)";

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t *alloc_region(uint64_t size)
{
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ---- raw TCP baseline ---------------------------------------------------- */

struct raw_conn {
	int fd;
	uint8_t *buf;
	uint64_t len;
	int err;
	pthread_t t;
};

static void *raw_reader(void *arg)
{
	struct raw_conn *c = arg;
	uint64_t got = 0;

	while (got < c->len) {
		ssize_t n = read(c->fd, c->buf + got, SL_MIN(c->len - got, (uint64_t)RAW_CHUNK));

		if (n <= 0) {
			c->err = n < 0 ? -errno : -ECONNRESET;
			return NULL;
		}
		got += (uint64_t)n;
	}
	return NULL;
}

static void *raw_writer(void *arg)
{
	struct raw_conn *c = arg;
	uint64_t done = 0;

	while (done < c->len) {
		ssize_t n = write(c->fd, c->buf + done, SL_MIN(c->len - done, (uint64_t)RAW_CHUNK));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			c->err = -errno;
			return NULL;
		}
		done += (uint64_t)n;
	}
	return NULL;
}

/* The sink child: accepts n connections, reads each share into its region,
 * then acknowledges with one byte on connection 0. */
static void raw_sink_child(int lfd, unsigned n, uint64_t size)
{
	struct raw_conn c[SL_SENDER_MAX_CHANNELS];
	uint8_t *dst = alloc_region(size);
	uint64_t share = size / n;
	char ack = 1;

	if (!dst)
		_exit(1);
	for (unsigned i = 0; i < n; i++) {
		int b = 4 << 20;

		c[i].fd = accept(lfd, NULL, NULL);
		if (c[i].fd < 0)
			_exit(1);
		setsockopt(c[i].fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof(b));
		setsockopt(c[i].fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
		c[i].buf = dst + i * share;
		c[i].len = i + 1 == n ? size - i * share : share;
		c[i].err = 0;
	}
	/* Ready (memory populated, all accepted): the parent starts its clock. */
	if (write(c[0].fd, &ack, 1) != 1)
		_exit(1);
	for (unsigned i = 0; i < n; i++)
		pthread_create(&c[i].t, NULL, raw_reader, &c[i]);
	for (unsigned i = 0; i < n; i++) {
		pthread_join(c[i].t, NULL);
		if (c[i].err)
			_exit(1);
	}
	if (write(c[0].fd, &ack, 1) != 1)
		_exit(1);
	_exit(0);
}

static int run_raw(uint8_t *src, uint64_t size, unsigned n, double *secs, double *cpu)
{
	struct sl_errbuf eb;
	struct sl_url u;
	struct raw_conn c[SL_SENDER_MAX_CHANNELS];
	uint64_t share = size / n;
	int lfd, status, ret = 0;
	char ack;
	pid_t pid;

	sl_url_parse("tcp:127.0.0.1:0", &u, &eb);
	lfd = sl_url_listen(&u, (int)n, &eb);
	if (lfd < 0)
		return lfd;
	char url[64];

	snprintf(url, sizeof(url), "tcp:127.0.0.1:%d", sl_url_bound_port(lfd));
	sl_url_parse(url, &u, &eb);
	pid = fork();
	if (pid == 0) {
		alarm(300); /* never outlive a failed parent */
		raw_sink_child(lfd, n, size);
	}
	close(lfd);
	for (unsigned i = 0; i < n; i++) {
		c[i].fd = sl_url_connect(&u, &eb);
		if (c[i].fd < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return c[i].fd;
		}
		/* Same socket buffers as the transport asks for (both ends). */
		int b = 4 << 20;

		setsockopt(c[i].fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof(b));
		setsockopt(c[i].fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
		c[i].buf = src + i * share;
		c[i].len = i + 1 == n ? size - i * share : share;
		c[i].err = 0;
	}
	if (read(c[0].fd, &ack, 1) != 1)
		ret = -ECONNRESET;
	uint64_t t0 = sl_now_ns();
	double c0 = cpu_now();

	bool started = !ret;

	for (unsigned i = 0; i < n && started; i++)
		pthread_create(&c[i].t, NULL, raw_writer, &c[i]);
	for (unsigned i = 0; i < n && started; i++) {
		pthread_join(c[i].t, NULL);
		if (c[i].err)
			ret = c[i].err;
	}
	if (!ret && read(c[0].fd, &ack, 1) != 1)
		ret = -ECONNRESET;
	*secs = (double)(sl_now_ns() - t0) / 1e9;
	*cpu = cpu_now() - c0;
	for (unsigned i = 0; i < n; i++)
		close(c[i].fd);
	waitpid(pid, &status, 0);
	if (!ret && (!WIFEXITED(status) || WEXITSTATUS(status)))
		ret = -EIO;
	return ret;
}

/* ---- transport ----------------------------------------------------------- */

static int run_transport(uint8_t *src, uint64_t size, unsigned n, enum sl_zc_mode mode,
			 double *secs, double *cpu, struct sl_sender_stats *st, char *err,
			 size_t errlen)
{
	struct sl_receiver_config rc = {
		.size = sizeof(rc), .url = "tcp:127.0.0.1:0", .psk = bench_psk,
		.psk_len = sizeof(bench_psk), .timeout_ms = 30000,
	};
	struct sl_sender_config sc = {
		.size = sizeof(sc), .nchannels = n, .psk = bench_psk, .psk_len = sizeof(bench_psk),
		.zc = mode, .timeout_ms = 30000,
	};
	struct sl_range all = { 0, size / 4096 };
	struct sl_resumed_info info;
	struct sl_receiver *r = NULL;
	struct sl_sender *s = NULL;
	struct sl_errbuf eb;
	char url[64];
	int ret, status;
	pid_t pid;

	ret = sl_receiver_new(&rc, &r, &eb);
	if (ret) {
		snprintf(err, errlen, "%s", eb.msg);
		return ret;
	}
	snprintf(url, sizeof(url), "tcp:127.0.0.1:%d", sl_receiver_port(r));
	pid = fork();
	if (pid == 0) {
		uint8_t *dst = alloc_region(size);

		alarm(300); /* never outlive a failed parent */
		if (!dst || sl_receiver_add_region(r, 0, dst, size))
			_exit(1);
		_exit(sl_receiver_run_session(r, NULL, NULL, &eb) ? 1 : 0);
	}
	sl_receiver_free(&r);
	sc.url = url;
	ret = sl_sender_new(&sc, &s, &eb);
	if (ret) {
		snprintf(err, errlen, "%s", eb.msg);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return ret;
	}
	ret = sl_sender_add_region(s, 0, src, size);
	uint64_t t0 = sl_now_ns();
	double c0 = cpu_now();

	if (!ret)
		ret = sl_sender_send_ranges(s, 0, &all, 1, 0);
	if (!ret)
		ret = sl_sender_iteration_end(s, 0);
	if (!ret)
		ret = sl_sender_complete(s);
	if (!ret)
		ret = sl_sender_wait_resumed(s, 30000, &info);
	*secs = (double)(sl_now_ns() - t0) / 1e9;
	*cpu = cpu_now() - c0;
	sl_sender_get_stats(s, st);
	if (ret)
		snprintf(err, errlen, "%s", sl_sender_last_error(s));
	sl_sender_free(&s);
	if (ret)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	if (!ret && (!WIFEXITED(status) || WEXITSTATUS(status))) {
		snprintf(err, errlen, "receiver process failed");
		ret = -EIO;
	}
	return ret;
}

/* ---- command ------------------------------------------------------------- */

static void usage(void)
{
	printf("usage: sluice bench send [--size BYTES] [--channels N[,N...]]\n"
	       "                         [--zero-copy auto|uring|msg|off|all] [--json]\n\n"
	       "Moves --size bytes of page data (default 2G) to a receiver process over\n"
	       "loopback TCP with the transport, for each zero-copy mode (default: all =\n"
	       "off, msg, uring) and channel count (default 1), and in the same run a plain\n"
	       "write() loop of the same bytes over the same number of TCP connections\n"
	       "(raw_tcp_gbps). Reports Gbit/s, the ratio to raw TCP, sender CPU seconds\n"
	       "per GiB, and bytes copied in user space (0 by design) and by the kernel\n"
	       "(loopback always copies).\n");
}

static int parse_channels(const char *s, unsigned *out, unsigned *n)
{
	char buf[128], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", s);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint64_t v;

		if (*n == 8 || sl_cli_parse_uint(tok, 1, SL_SENDER_MAX_CHANNELS, &v))
			return -EINVAL;
		out[(*n)++] = (unsigned)v;
	}
	return *n ? 0 : -EINVAL;
}

static int cmd_bench_send(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "channels", required_argument, NULL, 'c' },
		{ "zero-copy", required_argument, NULL, 'z' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 2ull << 30;
	unsigned chans[8] = { 1 }, nchans = 1, nmodes = 3;
	enum sl_zc_mode modes[3] = { SL_ZC_OFF, SL_ZC_MSG, SL_ZC_URING };
	bool json = false;
	int opt, failures = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (sl_cli_parse_size(optarg, &size) || size < (1u << 20) || size % 4096)
				return sl_cli_usage_error(argv[0], "bad --size '%s' (>= 1M, a multiple of 4K)", optarg);
			break;
		case 'c':
			if (parse_channels(optarg, chans, &nchans))
				return sl_cli_usage_error(argv[0], "bad --channels '%s' (1..64, comma-separated)", optarg);
			break;
		case 'z':
			if (!strcmp(optarg, "all")) {
				nmodes = 3;
			} else {
				nmodes = 1;
				if (sl_sender_mode_parse(optarg, &modes[0]))
					return sl_cli_usage_error(argv[0], "bad --zero-copy '%s' (auto, uring, msg, off, all)", optarg);
			}
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage();
			return SL_EXIT_OK;
		default:
			return SL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return sl_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	signal(SIGPIPE, SIG_IGN);

	uint8_t *src = alloc_region(size);

	if (!src) {
		fprintf(stderr, "sluice bench send: cannot allocate %llu bytes\n", (unsigned long long)size);
		return SL_EXIT_FAILED;
	}
	/* Distinct, non-zero page contents. */
	for (uint64_t p = 0; p < size / 4096; p++)
		memset(src + p * 4096, (int)(p % 251) + 1, 4096);

	struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
	struct utsname un;

	uname(&un);
	json_object_object_add(root, "benchmark", json_object_new_string("send"));
	json_object_object_add(root, "size", json_object_new_int64((int64_t)size));
	json_object_object_add(root, "kernel", json_object_new_string(un.release));
	json_object_object_add(root, "cpus", json_object_new_int((int)sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_object_add(root, "transport", json_object_new_string("tcp loopback"));
	if (!json)
		printf("%-6s %3s %10s %9s %9s %6s %10s %10s %12s %12s\n", "mode", "ch", "bytes", "Gbit/s",
		       "raw", "ratio", "cpu s/GiB", "raw cpu", "user_copied", "kern_copied");
	for (unsigned ci = 0; ci < nchans; ci++) {
		for (unsigned mi = 0; mi < nmodes; mi++) {
			struct sl_sender_stats st = { 0 };
			double rs = 0, rcpu = 0, ts = 0, tcpu = 0;
			char err[SL_ERRMSG_MAX] = "";
			int ret = run_raw(src, size, chans[ci], &rs, &rcpu);

			if (ret)
				snprintf(err, sizeof(err), "raw baseline failed: %s", strerror(-ret));
			else
				ret = run_transport(src, size, chans[ci], modes[mi], &ts, &tcpu, &st, err,
						    sizeof(err));
			double gib = (double)size / (double)(1ull << 30);
			double gbps = ret ? 0 : (double)size * 8 / ts / 1e9;
			double raw = ret ? 0 : (double)size * 8 / rs / 1e9;
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "mode", json_object_new_string(
				sl_sender_mode_name(ret ? modes[mi] : st.mode)));
			json_object_object_add(o, "requested_mode",
					       json_object_new_string(sl_sender_mode_name(modes[mi])));
			json_object_object_add(o, "channels", json_object_new_int((int)chans[ci]));
			json_object_object_add(o, "bytes", json_object_new_int64((int64_t)size));
			if (ret) {
				failures++;
				json_object_object_add(o, "error", json_object_new_string(err));
				if (!json)
					printf("%-6s %3u  error: %s\n", sl_sender_mode_name(modes[mi]),
					       chans[ci], err);
			} else {
				json_object_object_add(o, "gbps", json_object_new_double(gbps));
				json_object_object_add(o, "gbytes_per_s", json_object_new_double(gbps / 8));
				json_object_object_add(o, "raw_tcp_gbps", json_object_new_double(raw));
				json_object_object_add(o, "ratio", json_object_new_double(gbps / raw));
				json_object_object_add(o, "seconds", json_object_new_double(ts));
				json_object_object_add(o, "raw_seconds", json_object_new_double(rs));
				json_object_object_add(o, "cpu_s_per_gib", json_object_new_double(tcpu / gib));
				json_object_object_add(o, "raw_cpu_s_per_gib", json_object_new_double(rcpu / gib));
				json_object_object_add(o, "user_copied_bytes",
						       json_object_new_int64((int64_t)st.user_copied_bytes));
				json_object_object_add(o, "kernel_copied_bytes",
						       json_object_new_int64((int64_t)st.kernel_copied_bytes));
				json_object_object_add(o, "zc_notifications",
						       json_object_new_int64((int64_t)st.zc_notifications));
				json_object_object_add(o, "packets", json_object_new_int64((int64_t)st.packets));
				if (!json)
					printf("%-6s %3u %10llu %9.2f %9.2f %6.2f %10.3f %10.3f %12llu %12llu\n",
					       sl_sender_mode_name(st.mode), chans[ci],
					       (unsigned long long)size, gbps, raw, gbps / raw, tcpu / gib,
					       rcpu / gib, (unsigned long long)st.user_copied_bytes,
					       (unsigned long long)st.kernel_copied_bytes);
			}
			json_object_array_add(arr, o);
		}
	}
	json_object_object_add(root, "results", arr);
	if (json)
		printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
	json_object_put(root);
	munmap(src, size);
	return failures ? SL_EXIT_FAILED : SL_EXIT_OK;
}

SL_CLI_COMMAND(bench_send, "bench send",
	       "transport throughput vs raw TCP on loopback (zero-copy modes, channels)",
	       cmd_bench_send)
