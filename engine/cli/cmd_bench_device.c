/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench_device.c — `sluice bench device`: VFIO device-state data path.
 *
 * Part 1, data fd -> socket throughput. A SIMULATED device in STOP_COPY
 * feeds its real data fd (a pipe); the bytes go to a loopback TCP socket
 * drained by another thread. Paths, each on a fresh device, same run:
 *   baseline  read() + write() loop, 1 MiB user buffer
 *   uring     io_uring READ_FIXED into registered buffers, WRITE_FIXED of
 *             the same buffer to the socket (read of the next buffer
 *             overlaps the write of this one)
 *   splice    splice(2) pipe -> socket, no user-space buffer at all
 *   devset    the device set's STOP_COPY reader (what the engine calls)
 *             with a sink that writes each buffer to the socket
 * Reported per path: best GB/s of --repeat rounds, the median over rounds of
 * path/baseline (each round runs every path back to back) and process CPU
 * seconds per GiB.
 *
 * Part 2 (--downtime): the device's STOP_COPY time (its share of downtime)
 * for a simulated device with and without PRE_COPY, over 1 and 4 sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "sl_datafd.h"
#include "sl_vfio.h"

#define BUF (1u << 20)
#define MAXCH 8

struct drain {
	int fd;
	uint64_t bytes;
	pthread_t t;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	char *b = malloc(BUF);
	ssize_t n;

	if (!b)
		return NULL;
	while ((n = read(d->fd, b, BUF)) > 0)
		d->bytes += (uint64_t)n;
	free(b);
	return NULL;
}

/* A connected loopback TCP pair: *tx for us, the other end drained. */
static int tcp_pair(int *tx, struct drain *d)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c = -1, s = -1;

	if (l < 0)
		return -errno;
	if (bind(l, (void *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (void *)&a, &al) < 0)
		goto fail;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (void *)&a, sizeof(a)) < 0)
		goto fail;
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		goto fail;
	close(l);
	*tx = c;
	d->fd = s;
	d->bytes = 0;
	if (pthread_create(&d->t, NULL, drain_main, d) != 0) {
		close(s);
		close(c);
		return -EAGAIN;
	}
	return 0;
fail:
	if (c >= 0)
		close(c);
	close(l);
	return -errno;
}

static void drain_join(int tx, struct drain *d)
{
	shutdown(tx, SHUT_WR);
	pthread_join(d->t, NULL);
	close(d->fd);
	close(tx);
}

/* A simulated device already in STOP_COPY; its data fd in *fd. */
static int sim_in_stopcopy(uint64_t size, struct sl_vfio_dev **dev, int *fd, struct sl_errbuf *eb)
{
	struct sl_devsim_config c = { .size = sizeof(c), .name = "bench",
				      .caps = SL_VFIO_CAP_STOP_COPY, .state_bytes = size,
				      .chunk_bytes = 1u << 20, .seed = 1 };
	struct sl_vfio_backend *be = NULL;
	int ret = sl_devsim_new(&c, &be, eb);

	if (ret < 0)
		return ret;
	ret = sl_vfio_dev_new(be, SL_VFIO_UNWIND, dev);
	if (ret < 0) {
		sl_vfio_backend_free(&be);
		return ret;
	}
	ret = sl_vfio_dev_set_state(*dev, SL_VFIO_STOP_COPY);
	if (ret < 0) {
		sl_err(eb, ret, "%s", sl_vfio_dev_last_error(*dev));
		sl_vfio_dev_free(dev);
		return ret;
	}
	*fd = sl_vfio_dev_data_fd(*dev);
	/* STOP_COPY reads wait for data; 0 is the end (as the device set does). */
	int fl = fcntl(*fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
	return 0;
}

enum path { P_BASELINE, P_URING, P_SPLICE, P_DEVSET, P_DEVSET_READ, P_N };
static const char *const path_names[P_N] = { "baseline", "uring", "splice", "devset",
					     "devset-read" };

static int write_all(int fd, const void *b, size_t n)
{
	return sl_datafd_write_all(fd, b, n, -1);
}

static int run_baseline(int in, int out, uint64_t *bytes)
{
	char *b = malloc(BUF);
	ssize_t n;
	int ret = 0;

	if (!b)
		return -ENOMEM;
	while ((n = read(in, b, BUF)) > 0) {
		ret = write_all(out, b, (size_t)n);
		if (ret < 0)
			break;
		*bytes += (uint64_t)n;
	}
	if (n < 0)
		ret = -errno;
	free(b);
	return ret;
}

static int run_uring(int in, int out, uint64_t *bytes, struct sl_errbuf *eb)
{
	struct sl_datafd_reader_config c = { .size = sizeof(c), .nbufs = 2, .buf_size = BUF };
	struct sl_datafd_reader *r = NULL;
	uint64_t user;
	int ret, res, cur = 0, wpending = 0, woff = 0, wlen = 0, wbuf = -1;
	bool eof = false;

	ret = sl_datafd_reader_new(&c, &r, eb);
	if (ret < 0)
		return ret;
	ret = sl_datafd_submit_read(r, in, 0, BUF, 0, false);
	/* Read into one buffer while the other one is written to the socket. */
	while (ret == 0 && (!eof || wpending)) {
		ret = sl_datafd_reap(r, &user, &res, -1);
		if (ret < 0)
			break;
		if (res < 0) {
			ret = res;
			break;
		}
		if (user < 2) { /* a read into buffer `user` finished */
			if (res == 0) {
				eof = true;
				continue;
			}
			*bytes += (uint64_t)res;
			/* Wait for the previous write to finish before starting this one. */
			while (wpending && ret == 0) {
				int w;
				ret = sl_datafd_reap(r, &user, &w, -1);
				if (ret == 0 && w < 0)
					ret = w;
				if (ret == 0) {
					woff += w;
					if (woff < wlen)
						ret = sl_datafd_submit_send(r, out, (unsigned)wbuf,
									     (size_t)woff,
									     (size_t)(wlen - woff), 2);
					else
						wpending = 0;
				}
			}
			if (ret < 0)
				break;
			wbuf = cur;
			woff = 0;
			wlen = res;
			wpending = 1;
			ret = sl_datafd_submit_send(r, out, (unsigned)wbuf, 0, (size_t)wlen, 2);
			cur ^= 1;
			if (ret == 0)
				ret = sl_datafd_submit_read(r, in, (unsigned)cur, BUF, (uint64_t)cur,
							    false);
		} else { /* the write finished */
			woff += res;
			if (woff < wlen)
				ret = sl_datafd_submit_send(r, out, (unsigned)wbuf, (size_t)woff,
							     (size_t)(wlen - woff), 2);
			else
				wpending = 0;
		}
	}
	sl_datafd_reader_free(&r);
	return ret;
}

static int run_splice(int in, int out, uint64_t *bytes)
{
	ssize_t n;

	while ((n = sl_datafd_splice(in, out, BUF, NULL)) > 0)
		*bytes += (uint64_t)n;
	return n < 0 ? (int)n : 0;
}

/* ---- the device set's reader, with a sink writing to sockets -------------- */

struct sock_sink {
	int fds[MAXCH];
	unsigned n;
	uint64_t bytes;
};

static int sink_send(void *ctx, uint32_t dev, uint64_t index, uint32_t flags, const void *buf,
		     size_t len)
{
	struct sock_sink *s = ctx;
	uint8_t hdr[24] = { 0 };
	int fd = s->fds[index % s->n], ret;

	/* A stand-in DEVICE packet header (24 bytes), then the payload. */
	memcpy(hdr, &dev, 4);
	memcpy(hdr + 4, &flags, 4);
	memcpy(hdr + 8, &index, 8);
	memcpy(hdr + 16, &len, 8);
	/* Header and payload in one writev, as a transport links them: two
	 * writes would put a 24-byte segment on the wire first. */
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)buf, len } };
	size_t left = sizeof(hdr) + len;
	int n_iov = len ? 2 : 1, first = 0;
	ret = 0;
	while (left) {
		ssize_t n = writev(fd, iov + first, n_iov - first);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		left -= (size_t)n;
		while (first < n_iov && (size_t)n >= iov[first].iov_len) {
			n -= (ssize_t)iov[first].iov_len;
			first++;
		}
		if (first < n_iov) {
			iov[first].iov_base = (uint8_t *)iov[first].iov_base + n;
			iov[first].iov_len -= (size_t)n;
		}
	}
	s->bytes += len;
	return ret;
}

static int sink_flush(void *ctx)
{
	(void)ctx;
	return 0; /* write() copied: buffers are free at once */
}

static int run_devset(struct sl_vfio_backend **bes, unsigned nbe, struct sock_sink *ss,
		      bool precopy, bool uring, uint64_t *bytes, uint64_t *stop_ns,
		      uint64_t *pre_bytes, struct sl_devset **keep, struct sl_errbuf *eb)
{
	struct sl_devset_config c = { .size = sizeof(c), .no_uring = !uring };
	struct sl_devset_sink sink = { .send = sink_send, .flush = sink_flush, .ctx = ss };
	struct sl_devset *ds = NULL;
	struct sl_devset_dev_stats st;
	int ret = sl_devset_new(&c, &ds);

	if (ret < 0) {
		for (unsigned i = 0; i < nbe; i++)
			sl_vfio_backend_free(&bes[i]);
		return ret;
	}
	for (unsigned i = 0; i < nbe; i++) {
		int r = sl_devset_add(ds, bes[i]); /* takes ownership, also on failure */
		if (r < 0 && ret >= 0)
			ret = r;
	}
	if (ret >= 0)
		ret = sl_devset_set_sink(ds, &sink);
	if (ret == 0 && precopy) {
		struct sl_devset_pending p = { 0 };
		ret = sl_devset_precopy_start(ds);
		for (int i = 0; ret == 0 && i < 100000; i++) {
			int64_t n = sl_devset_precopy_read(ds, 0);
			if (n < 0)
				ret = (int)n;
			else if ((ret = sl_devset_pending(ds, &p)) == 0 && p.initial_done)
				break;
			if (n == 0)
				usleep(500);
		}
	}
	uint64_t t0 = sl_now_ns();
	if (ret == 0)
		ret = sl_devset_stop(ds);
	if (ret == 0) {
		int64_t n = sl_devset_stopcopy_read_all(ds);
		ret = n < 0 ? (int)n : 0;
	}
	*stop_ns = sl_now_ns() - t0;
	if (ret < 0)
		sl_err(eb, ret, "%s", sl_devset_last_error(ds));
	*bytes = *pre_bytes = 0;
	for (unsigned i = 0; i < sl_devset_count(ds); i++) {
		if (sl_devset_stats(ds, i, &st) == 0) {
			*bytes += st.stopcopy_bytes;
			*pre_bytes += st.precopy_bytes;
		}
	}
	if (keep)
		*keep = ds; /* freed by the caller, outside its measurement */
	else
		sl_devset_free(&ds);
	return ret;
}

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* gbps: bytes per wall ns; cpu: process CPU seconds per GiB moved (the
 * simulated device and the drain cost the same in every path, so the
 * differences are the consumer's). */
static int one_run(enum path p, uint64_t size, double *gbps, double *cpu, struct sl_errbuf *eb)
{
	struct sl_vfio_dev *dev = NULL;
	struct sl_devset *keep = NULL;
	struct drain d;
	int in = -1, out = -1, ret;
	uint64_t bytes = 0, t0, ns;

	ret = tcp_pair(&out, &d);
	if (ret < 0)
		return sl_err(eb, ret, "loopback socket: %s", strerror(-ret));
	uint64_t c0 = cpu_ns();
	if (p == P_DEVSET || p == P_DEVSET_READ) {
		struct sl_devsim_config c = { .size = sizeof(c), .name = "bench",
					      .caps = SL_VFIO_CAP_STOP_COPY, .state_bytes = size,
					      .chunk_bytes = 1u << 20, .seed = 1 };
		struct sl_vfio_backend *be = NULL;
		struct sock_sink ss = { .fds = { out }, .n = 1 };
		uint64_t pre = 0;
		ret = sl_devsim_new(&c, &be, eb);
		if (ret == 0)
			ret = run_devset(&be, 1, &ss, false, p == P_DEVSET, &bytes, &ns, &pre, &keep, eb);
	} else {
		ret = sim_in_stopcopy(size, &dev, &in, eb);
		t0 = sl_now_ns();
		if (ret == 0 && p == P_BASELINE)
			ret = run_baseline(in, out, &bytes);
		else if (ret == 0 && p == P_URING)
			ret = run_uring(in, out, &bytes, eb);
		else if (ret == 0)
			ret = run_splice(in, out, &bytes);
		ns = sl_now_ns() - t0;
	}
	drain_join(out, &d);
	uint64_t c1 = cpu_ns();
	sl_vfio_dev_free(&dev);
	sl_devset_free(&keep);
	if (ret < 0)
		return eb->msg[0] ? ret : sl_err(eb, ret, "%s path: %s", path_names[p], strerror(-ret));
	if (d.bytes < bytes)
		return sl_err(eb, -EIO, "%s path: receiver got %llu of %llu bytes", path_names[p],
			      (unsigned long long)d.bytes, (unsigned long long)bytes);
	*gbps = (double)bytes / (double)ns;
	*cpu = (double)(c1 - c0) / 1e9 / ((double)bytes / (double)(1ull << 30));
	return 0;
}

/* ndev devices of size/ndev each; their STOP_COPY time over nch sockets. */
static int downtime_run(uint64_t size, uint64_t precopy, unsigned nch, unsigned ndev, bool uring,
			double *ms, uint64_t *sc_bytes, uint64_t *pre_bytes, struct sl_errbuf *eb)
{
	struct sl_vfio_backend *bes[MAXCH] = { NULL };
	struct sock_sink ss = { .n = nch };
	struct drain d[MAXCH];
	uint64_t ns = 0;
	int ret = 0;
	unsigned made = 0;

	for (; made < nch && ret == 0; made++)
		ret = tcp_pair(&ss.fds[made], &d[made]);
	if (ret < 0) {
		made--;
		sl_err(eb, ret, "loopback socket: %s", strerror(-ret));
	}
	for (unsigned i = 0; i < ndev && ret == 0; i++) {
		struct sl_devsim_config c = {
			.size = sizeof(c), .name = "sim",
			.caps = precopy ? SL_VFIO_CAP_MASK : SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P,
			.state_bytes = size / ndev, .precopy_bytes = precopy / ndev,
			.dirty_rate = precopy ? (20u << 20) / ndev : 0, .chunk_bytes = 1u << 20,
			.seed = 2 + i };
		ret = sl_devsim_new(&c, &bes[i], eb);
	}
	if (ret == 0)
		ret = run_devset(bes, ndev, &ss, precopy > 0, uring, sc_bytes, &ns, pre_bytes, NULL,
				 eb);
	else
		for (unsigned i = 0; i < ndev; i++)
			sl_vfio_backend_free(&bes[i]);
	for (unsigned i = 0; i < made; i++)
		drain_join(ss.fds[i], &d[i]);
	*ms = (double)ns / 1e6;
	return ret;
}

static void usage(void)
{
	printf("usage: sluice bench device [--size SIZE] [--repeat N] [--downtime] [--only PATH] [--json]\n\n"
	       "VFIO device-state data path on a SIMULATED device (real pipe data fd):\n"
	       "data fd -> loopback TCP throughput of the io_uring path, splice and the\n"
	       "device set's reader, each against a plain read()+write() loop in the\n"
	       "same run: best of N, and the median over rounds of path/baseline, each\n"
	       "round running every path back to back; process CPU seconds per GiB.\n"
	       "devset-read is the device set with no_uring = true (read(2) into the\n"
	       "same pool buffers).\n"
	       "  --size SIZE    device state per run (default 256M)\n"
	       "  --repeat N     runs per path (default 5)\n"
	       "  --only PATH    run only PATH (and the baseline), e.g. for profiling\n"
	       "  --downtime     also: device STOP_COPY time with/without PRE_COPY, 1 and 4 sockets\n"
	       "  --json         machine-readable output\n");
}

static int cmd_bench_device(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' }, { "repeat", required_argument, NULL, 'r' },
		{ "downtime", no_argument, NULL, 'd' },  { "json", no_argument, NULL, 'j' },
		{ "only", required_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t size = 256ull << 20, repeat = 5;
	bool json = false, downtime = false;
	int only = -1;
	double best[P_N] = { 0 }, cpu[P_N], ratios[P_N][50], med[P_N];
	struct sl_errbuf eb = { { 0 } };
	int c;

	signal(SIGPIPE, SIG_IGN); /* a dead drain shows up as EPIPE */
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (sl_cli_parse_size(optarg, &size) < 0 || size < (1u << 20) ||
			    size > (16ull << 30))
				return sl_cli_usage_error(argv[0], "--size: 1M .. 16G, got '%s'", optarg);
			break;
		case 'r':
			if (sl_cli_parse_uint(optarg, 1, 50, &repeat) < 0)
				return sl_cli_usage_error(argv[0], "--repeat: 1..50, got '%s'", optarg);
			break;
		case 'd': downtime = true; break;
		case 'o':
			for (int p = 0; p < P_N; p++)
				if (!strcmp(optarg, path_names[p]))
					only = p;
			if (only < 0)
				return sl_cli_usage_error(argv[0], "--only: unknown path '%s'", optarg);
			break;
		case 'j': json = true; break;
		case 'h': usage(); return SL_EXIT_OK;
		default: return sl_cli_usage_error(argv[0], "see --help");
		}
	}
	if (optind < argc)
		return sl_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);

	/* Interleave the paths so drift on a shared machine hits all alike. */
	for (int p = 0; p < P_N; p++)
		cpu[p] = 1e30;
	for (uint64_t r = 0; r < repeat; r++) {
		/* Rotate the order each round so no path always runs first or last. */
		for (int k = 0; k < P_N; k++) {
			int p = (int)((k + r) % P_N);
			double g = 0, cs = 0;
			if (only >= 0 && p != only && p != P_BASELINE) {
				best[p] = ratios[p][r] = 0;
				cpu[p] = 0;
				continue;
			}
			if (one_run((enum path)p, size, &g, &cs, &eb) < 0) {
				fprintf(stderr, "sluice bench device: %s\n", eb.msg);
				return SL_EXIT_FAILED;
			}
			if (g > best[p])
				best[p] = g;
			ratios[p][r] = g;
			if (cs < cpu[p])
				cpu[p] = cs;
		}
	}

	/* The ratio of each round (paths back to back) is what drift cannot
	 * fake; report their median. */
	for (int p = 0; p < P_N; p++) {
		double v[50];
		for (uint64_t r = 0; r < repeat; r++)
			v[r] = ratios[p][r] / ratios[0][r];
		for (uint64_t i = 1; i < repeat; i++)
			for (uint64_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
				double t = v[j];
				v[j] = v[j - 1];
				v[j - 1] = t;
			}
		med[p] = repeat % 2 ? v[repeat / 2] : (v[repeat / 2 - 1] + v[repeat / 2]) / 2;
	}

	/* Device share of downtime: with/without PRE_COPY, 1 and 4 sockets, and
	 * 4 devices read concurrently (io_uring) or one after another (read). */
	struct dtrow {
		uint64_t pre;
		unsigned nch, ndev;
		bool uring;
		double ms;
		uint64_t sc, prebytes;
	} dt[] = {
		{ 0, 1, 1, true, 0, 0, 0 },
		{ 0, 4, 1, true, 0, 0, 0 },
		{ size / 256 * 200, 1, 1, true, 0, 0, 0 }, /* 200M of 256M, scaled */
		{ size / 256 * 200, 4, 1, true, 0, 0, 0 },
		{ 0, 4, 4, true, 0, 0, 0 },
		{ 0, 4, 4, false, 0, 0, 0 },
	};
	const int ndt = (int)SL_ARRAY_SIZE(dt);
	if (downtime) {
		for (int i = 0; i < ndt; i++) {
			if (downtime_run(size, dt[i].pre, dt[i].nch, dt[i].ndev, dt[i].uring, &dt[i].ms,
					 &dt[i].sc, &dt[i].prebytes, &eb) < 0) {
				fprintf(stderr, "sluice bench device: %s\n", eb.msg);
				return SL_EXIT_FAILED;
			}
		}
	}

	if (json) {
		struct json_object *o = json_object_new_object(), *paths = json_object_new_object();
		json_object_object_add(o, "size_bytes", json_object_new_int64((int64_t)size));
		json_object_object_add(o, "repeat", json_object_new_int64((int64_t)repeat));
		for (int p = 0; p < P_N; p++) {
			struct json_object *e = json_object_new_object();
			json_object_object_add(e, "gbps", json_object_new_double(best[p]));
			json_object_object_add(e, "ratio_of_best", json_object_new_double(best[p] / best[0]));
			json_object_object_add(e, "median_round_ratio", json_object_new_double(med[p]));
			json_object_object_add(e, "cpu_s_per_gib", json_object_new_double(cpu[p]));
			json_object_object_add(paths, path_names[p], e);
		}
		json_object_object_add(o, "paths", paths);
		if (downtime) {
			struct json_object *a = json_object_new_array();
			for (int i = 0; i < ndt; i++) {
				struct json_object *e = json_object_new_object();
				json_object_object_add(e, "devices", json_object_new_int((int)dt[i].ndev));
				json_object_object_add(e, "uring", json_object_new_boolean(dt[i].uring));
				json_object_object_add(e, "precopy_bytes", json_object_new_int64((int64_t)dt[i].pre));
				json_object_object_add(e, "channels", json_object_new_int(dt[i].nch));
				json_object_object_add(e, "device_ms", json_object_new_double(dt[i].ms));
				json_object_object_add(e, "stopcopy_bytes", json_object_new_int64((int64_t)dt[i].sc));
				json_object_object_add(e, "precopy_sent_bytes", json_object_new_int64((int64_t)dt[i].prebytes));
				json_object_array_add(a, e);
			}
			json_object_object_add(o, "downtime", a);
		}
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
		json_object_put(o);
		return SL_EXIT_OK;
	}
	char sz[32];
	printf("device state %s, best of %llu, data fd (pipe) -> loopback TCP\n",
	       sl_cli_fmt_bytes(size, sz, sizeof(sz)), (unsigned long long)repeat);
	printf("%-12s %9s %10s %13s %10s\n", "path", "best GB/s", "best ratio",
	       "median ratio", "cpu_s/GiB");
	for (int p = 0; p < P_N; p++)
		printf("%-12s %9.2f %10.2f %13.2f %10.2f\n", path_names[p], best[p], best[p] / best[0],
		       med[p], cpu[p]);
	if (downtime) {
		printf("\ndevice STOP_COPY time (its share of downtime), state %s in total\n",
		       sl_cli_fmt_bytes(size, sz, sizeof(sz)));
		printf("%-12s %8s %8s %8s %12s %14s %14s\n", "precopy", "devices", "reader",
		       "sockets", "device_ms", "stopcopy", "precopy_sent");
		for (int i = 0; i < ndt; i++) {
			char a[32], b[32], e[32];
			printf("%-12s %8u %8s %8u %12.1f %14s %14s\n",
			       sl_cli_fmt_bytes(dt[i].pre, a, sizeof(a)), dt[i].ndev,
			       dt[i].uring ? "uring" : "read", dt[i].nch, dt[i].ms,
			       sl_cli_fmt_bytes(dt[i].sc, b, sizeof(b)),
			       sl_cli_fmt_bytes(dt[i].prebytes, e, sizeof(e)));
		}
	}
	return SL_EXIT_OK;
}

SL_CLI_COMMAND(bench_device, "bench device",
	       "VFIO device-state data path: data fd -> socket vs read()+write()",
	       cmd_bench_device)
