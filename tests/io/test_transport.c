/* SPDX-License-Identifier: MIT */
/*
 * test_transport.c — sender and receiver in separate processes (fork) over
 * loopback TCP and unix sockets: every zero-copy mode with 1, 2 and 4
 * channels, random dirty ranges over several generations (RAM and ZERO),
 * device packets out of order on several channels, a STATE blob; the
 * receiver hashes its destination (XXH3) and sends the hash back in RESUMED,
 * which must equal the source's hash. Plus: ordering across generations,
 * authentication refusals, dead and silent peers.
 *
 * TRANSPORT_FAULTS (test_transport_faults.c) builds the refusal and
 * dead-peer tests instead of the data cases.
 * TRANSPORT_BIG (the e2e builds, one per send mode via BIG_MODE) moves
 * 256 MiB per case: 1 GiB did not stay under 20 s per test on this shared
 * 2-core box (68 s for the 9 cases in the normal build).
 */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "sl_io_internal.h"
#include "sl_url.h"
#include "transport_helpers.h"

#ifdef TRANSPORT_BIG
/* 1 GiB in normal builds, 256 MiB under the sanitizers (tests/io/meson.build). */
#define REGION_MB SL_TRANSPORT_BIG_MB
#else
#define REGION_MB 16
#endif

#define NDEV 2
#define DEV_PKTS 6
#define STATE_KIND 7

/* ---- receiver child ------------------------------------------------------ */

struct rx_ctx {
	struct sl_receiver *r;
	uint8_t *dst;
	size_t len;
	unsigned iter_ends;
	uint64_t state_hash;
	unsigned dev_ok;
};

static int rx_state(void *ctx, uint32_t kind, const void *buf, size_t len)
{
	struct rx_ctx *x = ctx;

	if (kind != STATE_KIND)
		return -EINVAL;
	x->state_hash = XXH3_64bits(buf, len);
	return 0;
}

/* Set before spawning the receiver (the child inherits it): the receiver
 * acknowledges every generation, and once more inside complete(). */
static bool rx_send_acks;

static int rx_iter(void *ctx, uint32_t gen)
{
	struct rx_ctx *x = ctx;

	x->iter_ends++;
	if (rx_send_acks)
		return sl_receiver_send_ack(x->r, SL_ACK_DEVICE_INIT_LOADED, gen, (uint64_t)gen * 10);
	return 0;
}

static size_t dev_len(uint32_t d, uint64_t i)
{
	return (size_t)((d * 31 + i * 17) % 5) * 20000 + (i == 2 ? 0 : 1);
}

static int rx_complete(void *ctx, char *msg, size_t n)
{
	struct rx_ctx *x = ctx;
	struct sl_devstore *st = sl_receiver_devstore(x->r);
	static uint8_t want[200000];

	/* The loader: every device's packets strictly in index order. */
	for (uint32_t d = 0; d < NDEV; d++) {
		for (uint64_t i = 0;; i++) {
			void *buf;
			size_t len;
			uint32_t flags;
			int ret = sl_devstore_next(st, d, &buf, &len, &flags, 5000);

			if (ret == -ENODATA && i == DEV_PKTS)
				break;
			if (ret) {
				snprintf(msg, n, "device %u index %llu: %s", d, (unsigned long long)i,
					 strerror(-ret));
				return ret;
			}
			dev_payload(d, i, want, dev_len(d, i));
			if (len != dev_len(d, i) || memcmp(buf, want, len) ||
			    !!(flags & SL_DEVSTORE_LAST_FLAG) != (i == DEV_PKTS - 1)) {
				snprintf(msg, n, "device %u index %llu: wrong content", d,
					 (unsigned long long)i);
				sl_devstore_release(st, buf);
				return -EIO;
			}
			sl_devstore_release(st, buf);
			x->dev_ok++;
		}
	}
	/* An ACK after COMPLETE: the sender must skip it while waiting for RESUMED. */
	if (rx_send_acks && sl_receiver_send_ack(x->r, SL_ACK_DEVICE_INIT_LOADED, 77, 0))
		return -EIO;
	snprintf(msg, n, "hash=%016llx iters=%u dev=%u state=%016llx",
		 (unsigned long long)XXH3_64bits(x->dst, x->len), x->iter_ends, x->dev_ok,
		 (unsigned long long)x->state_hash);
	return 0;
}

static const struct sl_receiver_ops rx_ops = {
	.state = rx_state, .iteration_end = rx_iter, .complete = rx_complete,
};

/* Starts a receiver child for one session; *url_out gets the address. */
static pid_t spawn_receiver(const char *listen, size_t len, char *url_out, size_t url_len,
			    const uint8_t *psk, size_t psk_len, int expect_err)
{
	struct sl_receiver_config cfg = {
		.size = sizeof(cfg), .url = listen, .psk = psk, .psk_len = psk_len,
		.timeout_ms = 5000, .device_mem_cap = 1 << 20,
	};
	struct sl_errbuf eb;
	struct sl_receiver *r = NULL;
	pid_t pid;

	assert_int_equal(sl_receiver_new(&cfg, &r, &eb), 0);
	if (!strncmp(listen, "tcp:[::1]", 9))
		snprintf(url_out, url_len, "tcp:[::1]:%d", sl_receiver_port(r));
	else if (!strncmp(listen, "tcp:", 4))
		snprintf(url_out, url_len, "tcp:127.0.0.1:%d", sl_receiver_port(r));
	else
		snprintf(url_out, url_len, "%s", listen);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rx_ctx x = { .r = r, .len = len };
		int ret;

		alarm(60); /* never outlive a failed parent */

		x.dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (x.dst == MAP_FAILED || sl_receiver_add_region(r, 0, x.dst, len))
			_exit(10);
		ret = sl_receiver_run_session(r, &rx_ops, &x, &eb);
		if (ret != expect_err) {
			fprintf(stderr, "receiver: got %d (%s), expected %d\n", ret, eb.msg, expect_err);
			_exit(1);
		}
		if (ret)
			fprintf(stderr, "receiver (expected failure): %s\n", eb.msg);
		sl_receiver_free(&r);
		_exit(0);
	}
	sl_receiver_free(&r);
	return pid;
}

static void expect_child_ok(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- sender side --------------------------------------------------------- */

enum pattern { PAT_RANDOM, PAT_ORDERING };

struct dev_buf {
	uint8_t *buf;
	size_t len;
};

/* The receiver's acknowledgement of generation g arrives, exactly once. */
static void expect_ack(struct sl_sender *s, uint32_t g)
{
	struct sl_ack ack;

	assert_int_equal(sl_sender_next_ack(s, 10000, &ack), 1);
	assert_int_equal(ack.kind, SL_ACK_DEVICE_INIT_LOADED);
	assert_int_equal(ack.id, g);
	assert_int_equal(ack.value, (uint64_t)g * 10);
	assert_int_equal(sl_sender_next_ack(s, 0, &ack), 0);
}

__attribute__((unused)) static void run_case(enum sl_zc_mode mode, unsigned nch, const char *listen, enum pattern pat)
{
	size_t len = (size_t)REGION_MB << 20;
	uint64_t npages = len / 4096, seed = 12345 + nch * 7 + mode;
	char url[128], want[256];
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .url = url, .nchannels = nch, .psk = test_psk,
		.psk_len = sizeof(test_psk), .zc = mode, .timeout_ms = 10000,
		.granule_bytes = pat == PAT_ORDERING ? 64 << 10 : 0,
	};
	struct sl_resumed_info info;
	struct sl_sender_stats st;
	struct dev_buf devs[NDEV][DEV_PKTS];
	struct sl_sender *s = NULL;
	struct sl_errbuf eb;
	uint8_t state_blob[3000];
	unsigned ngens = pat == PAT_ORDERING ? 10 : 4;
	uint8_t *src;
	pid_t pid;

	pid = spawn_receiver(listen, len, url, sizeof(url), test_psk, sizeof(test_psk), 0);
	src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(src != MAP_FAILED);
	assert_int_equal(sl_sender_new(&cfg, &s, &eb), 0);
	assert_int_equal(sl_sender_add_region(s, 0, src, len), 0);

	/* Generation 0: everything; pages [100, 300) stay zero and go as ZERO. */
	fill_pages(src, 0, 100, seed);
	fill_pages(src, 300, npages - 300, seed);
	{
		struct sl_range all[2] = { { 0, 100 }, { 300, npages - 300 } }, z = { 100, 200 };

		assert_int_equal(sl_sender_send_ranges(s, 0, all, 2, 0), 0);
		assert_int_equal(sl_sender_send_zero_ranges(s, 0, &z, 1, 0), 0);
		assert_int_equal(sl_sender_iteration_end(s, 0), 0);
	}
	if (rx_send_acks)
		expect_ack(s, 0);
	for (uint32_t g = 1; g < ngens; g++) {
		struct sl_range rs[64];
		size_t n = 0;

		if (pat == PAT_ORDERING) {
			/* The same pages every generation: the newest must win. */
			rs[n++] = (struct sl_range){ 1000, 700 };
			rs[n++] = (struct sl_range){ 3000, 33 };
			for (size_t i = 0; i < n; i++)
				fill_pages(src, rs[i].first, rs[i].npages, seed + g * 1000);
		} else {
			uint64_t x = seed + g;

			for (n = 0; n < 48; n++) {
				uint64_t first = splitmix64(&x) % (npages - 600);
				uint64_t cnt = 1 + splitmix64(&x) % 520;

				rs[n] = (struct sl_range){ first, cnt };
				fill_pages(src, first, cnt, seed + g * 1000 + n);
			}
		}
		assert_int_equal(sl_sender_send_ranges(s, 0, rs, n, g), 0);
		/* Some written pages become zero: ZERO must clear them. */
		struct sl_range z = { 2000 + g * 50, 40 };

		memset(src + z.first * 4096, 0, z.npages * 4096);
		assert_int_equal(sl_sender_send_zero_ranges(s, 0, &z, 1, g), 0);
		assert_int_equal(sl_sender_iteration_end(s, g), 0);
		if (rx_send_acks)
			expect_ack(s, g);
	}
	/* Device packets, backwards and spread over channels. */
	for (int i = DEV_PKTS - 1; i >= 0; i--)
		for (uint32_t d = 0; d < NDEV; d++) {
			struct dev_buf *b = &devs[d][i];

			b->len = dev_len(d, (uint64_t)i);
			b->buf = malloc(b->len + 1);
			dev_payload(d, (uint64_t)i, b->buf, b->len);
			assert_int_equal(sl_sender_send_device(s, d, (uint64_t)i,
				i == DEV_PKTS - 1 ? SL_DEV_FLAG_LAST : 0, b->buf, b->len,
				(int)((i + d) % nch)), 0);
		}
	dev_payload(99, 1, state_blob, sizeof(state_blob));
	assert_int_equal(sl_sender_send_state(s, STATE_KIND, state_blob, sizeof(state_blob)), 0);
	assert_int_equal(sl_sender_complete(s), 0);
	for (uint32_t d = 0; d < NDEV; d++)
		for (int i = 0; i < DEV_PKTS; i++)
			free(devs[d][i].buf);
	int ret = sl_sender_wait_resumed(s, 10000, &info);

	if (ret)
		fprintf(stderr, "sender: %s\n", sl_sender_last_error(s));
	assert_int_equal(ret, 0);
	snprintf(want, sizeof(want), "hash=%016llx iters=%u dev=%u state=%016llx",
		 (unsigned long long)XXH3_64bits(src, len), ngens, NDEV * DEV_PKTS,
		 (unsigned long long)XXH3_64bits(state_blob, sizeof(state_blob)));
	assert_string_equal(info.msg, want);
	sl_sender_get_stats(s, &st);
	/* auto picks off on loopback and unix sockets */
	assert_int_equal(st.mode, mode == SL_ZC_AUTO ? SL_ZC_OFF : mode);
	assert_int_equal(st.user_copied_bytes, 0);
	assert_int_equal(st.nchannels, nch);
	assert_true(st.pages >= npages - 200);
	assert_int_equal(st.page_bytes, st.pages * 4096);
	if (st.mode != SL_ZC_OFF && strncmp(listen, "tcp:", 4) == 0) {
		/* Loopback always copies: the kernel must have said so. */
		assert_true(st.zc_notifications > 0);
		assert_true(st.kernel_copied_bytes > 0);
	}
	for (unsigned i = 0; i < nch; i++)
		assert_true(st.channel_bytes[i] > 0);
	sl_sender_free(&s);
	assert_null(s);
	munmap(src, len);
	expect_child_ok(pid);
}

#ifndef TRANSPORT_FAULTS
__attribute__((unused)) static void test_off_1(void **state) { (void)state; run_case(SL_ZC_OFF, 1, "tcp:127.0.0.1:0", PAT_RANDOM); }
__attribute__((unused)) static void test_off_2(void **state) { (void)state; run_case(SL_ZC_OFF, 2, "tcp:127.0.0.1:0", PAT_RANDOM); }
__attribute__((unused)) static void test_off_4(void **state) { (void)state; run_case(SL_ZC_OFF, 4, "tcp:127.0.0.1:0", PAT_RANDOM); }
__attribute__((unused)) static void test_msg_1(void **state) { (void)state; run_case(SL_ZC_MSG, 1, "tcp:127.0.0.1:0", PAT_RANDOM); }
__attribute__((unused)) static void test_msg_2(void **state) { (void)state; run_case(SL_ZC_MSG, 2, "tcp:127.0.0.1:0", PAT_RANDOM); }
__attribute__((unused)) static void test_msg_4(void **state) { (void)state; run_case(SL_ZC_MSG, 4, "tcp:127.0.0.1:0", PAT_RANDOM); }
__attribute__((unused)) static void test_uring_1(void **state) { (void)state; run_case(SL_ZC_URING, 1, "tcp:127.0.0.1:0", PAT_RANDOM); }
__attribute__((unused)) static void test_uring_2(void **state) { (void)state; run_case(SL_ZC_URING, 2, "tcp:127.0.0.1:0", PAT_RANDOM); }
__attribute__((unused)) static void test_uring_4(void **state) { (void)state; run_case(SL_ZC_URING, 4, "tcp:127.0.0.1:0", PAT_RANDOM); }
#endif

#if !defined(TRANSPORT_BIG) && !defined(TRANSPORT_FAULTS)
static void test_unix_auto(void **state)
{
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "unix:/tmp/sl-transport-%d.sock", (int)getpid());
	run_case(SL_ZC_AUTO, 2, path, PAT_RANDOM);
	unlink(path + 5);
}

static void test_ipv6(void **state)
{
	(void)state;
	run_case(SL_ZC_OFF, 2, "tcp:[::1]:0", PAT_RANDOM);
}

static void test_ordering_uring(void **state) { (void)state; run_case(SL_ZC_URING, 4, "tcp:127.0.0.1:0", PAT_ORDERING); }
static void test_ordering_off(void **state) { (void)state; run_case(SL_ZC_OFF, 4, "tcp:127.0.0.1:0", PAT_ORDERING); }

/* Switchover acknowledgements (wire ACK) travel back during the session,
 * and one still in flight after COMPLETE does not disturb RESUMED. */
static void test_acks(void **state)
{
	(void)state;
	rx_send_acks = true;
	run_case(SL_ZC_OFF, 2, "tcp:127.0.0.1:0", PAT_RANDOM);
	rx_send_acks = false;
}
#endif

#ifdef TRANSPORT_FAULTS

/* ---- refusals ------------------------------------------------------------ */

static void test_wrong_key(void **state)
{
	static const uint8_t other[] = "not the key";
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .nchannels = 2, .psk = other, .psk_len = sizeof(other),
		.zc = SL_ZC_OFF, .timeout_ms = 3000,
	};
	struct sl_sender *s = NULL;
	struct sl_errbuf eb;
	char url[128];
	pid_t pid;

	(void)state;
	pid = spawn_receiver("tcp:127.0.0.1:0", 1 << 20, url, sizeof(url), test_psk,
			     sizeof(test_psk), -EACCES);
	cfg.url = url;
	assert_int_equal(sl_sender_new(&cfg, &s, &eb), -EACCES);
	assert_null(s);
	assert_non_null(strstr(eb.msg, "receiver refused channel 0: authentication failed: wrong pre-shared key"));
	expect_child_ok(pid);
}

/* A raw client: connect and handshake with a hand-made HELLO. */
static int raw_channel(const char *url, struct sl_wire_hello *h, int *fd_out, struct sl_errbuf *eb)
{
	struct sl_url u;
	int fd, ret;

	assert_int_equal(sl_url_parse(url, &u, eb), 0);
	fd = sl_url_connect(&u, eb);
	assert_true(fd >= 0);
	sl_io_prepare_socket(fd, 3000);
	ret = sl_hs_client(fd, test_psk, sizeof(test_psk), h, eb);
	*fd_out = fd;
	return ret;
}

static struct sl_wire_hello hello_for(unsigned idx, unsigned count, uint8_t sid)
{
	struct sl_wire_hello h = {
		.version = SL_WIRE_VERSION, .caps = SL_CAP_HDR_XXH32, .page_size = 4096,
		.channel_index = (uint16_t)idx, .channel_count = (uint16_t)count,
		.granule_bytes = 2 << 20,
	};

	memset(h.session_id, sid, sizeof(h.session_id));
	return h;
}

static void test_wrong_version(void **state)
{
	struct sl_wire_hello h = hello_for(0, 1, 1);
	struct sl_errbuf eb;
	char url[128];
	pid_t pid;
	int fd;

	(void)state;
	pid = spawn_receiver("tcp:127.0.0.1:0", 1 << 20, url, sizeof(url), test_psk,
			     sizeof(test_psk), -EPROTONOSUPPORT);
	h.version = 2;
	assert_int_equal(raw_channel(url, &h, &fd, &eb), -EPROTONOSUPPORT);
	assert_non_null(strstr(eb.msg, "unsupported protocol version 2 (this receiver speaks 1)"));
	close(fd);
	expect_child_ok(pid);
}

static void test_duplicate_channel(void **state)
{
	struct sl_wire_hello h0 = hello_for(0, 2, 1), h1 = hello_for(0, 2, 1);
	struct sl_errbuf eb;
	char url[128];
	pid_t pid;
	int fd0, fd1;

	(void)state;
	pid = spawn_receiver("tcp:127.0.0.1:0", 1 << 20, url, sizeof(url), test_psk,
			     sizeof(test_psk), -EEXIST);
	assert_int_equal(raw_channel(url, &h0, &fd0, &eb), 0);
	assert_int_equal(raw_channel(url, &h1, &fd1, &eb), -EEXIST);
	assert_non_null(strstr(eb.msg, "duplicate channel index 0"));
	close(fd0);
	close(fd1);
	expect_child_ok(pid);
}

static void test_other_session(void **state)
{
	struct sl_wire_hello h0 = hello_for(0, 2, 1), h1 = hello_for(1, 2, 2);
	struct sl_errbuf eb;
	char url[128];
	pid_t pid;
	int fd0, fd1;

	(void)state;
	pid = spawn_receiver("tcp:127.0.0.1:0", 1 << 20, url, sizeof(url), test_psk,
			     sizeof(test_psk), -EBUSY);
	assert_int_equal(raw_channel(url, &h0, &fd0, &eb), 0);
	assert_int_equal(raw_channel(url, &h1, &fd1, &eb), -EBUSY);
	assert_non_null(strstr(eb.msg, "channel 1 belongs to another session"));
	close(fd0);
	close(fd1);
	expect_child_ok(pid);
}

/* ---- dead and silent peers ----------------------------------------------- */

enum fake_end {
	FAKE_CLOSE, /* close the channel right after the handshake */
	FAKE_HOLD,  /* keep it open, reading nothing, until the parent closes hold[1] */
	FAKE_RESET, /* read a little, then vanish with a RST */
};

/* A forked "receiver" that authenticates one channel and then ends it as
 * `end` says; *url gets its address. FAKE_HOLD takes a pipe from the caller
 * (the parent keeps hold[1] and closes it to release the child). */
static pid_t fake_receiver(char *url, size_t url_len, enum fake_end end, const int hold[2])
{
	struct sl_url u;
	struct sl_errbuf eb;
	int lfd;
	pid_t pid;

	assert_int_equal(sl_url_parse("tcp:127.0.0.1:0", &u, &eb), 0);
	lfd = sl_url_listen(&u, 4, &eb);
	assert_true(lfd >= 0);
	snprintf(url, url_len, "tcp:127.0.0.1:%d", sl_url_bound_port(lfd));
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sl_wire_hello h;
		int fd = accept(lfd, NULL, NULL);
		static char buf[65536];

		if (fd < 0 || sl_hs_server_begin(fd, test_psk, sizeof(test_psk), 4096, &h, &eb) ||
		    sl_hs_server_verdict(fd, 0, ""))
			_exit(1);
		if (end == FAKE_HOLD) {
			close(hold[1]);
			(void)!read(hold[0], buf, 1);
		} else if (end == FAKE_RESET) {
			struct linger lg = { 1, 0 };

			(void)!read(fd, buf, sizeof(buf));
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(fd);
		_exit(0);
	}
	if (end == FAKE_HOLD)
		close(hold[0]);
	close(lfd);
	return pid;
}

/* A "receiver" that authenticates one channel and then never reads. */
static void stalled_sender_case(enum sl_zc_mode mode)
{
	struct sl_errbuf eb;
	char url[128];
	int pfd[2];
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fake_receiver(url, sizeof(url), FAKE_HOLD, pfd);

	size_t len = 64 << 20;
	uint8_t *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .url = url, .nchannels = 1, .psk = test_psk,
		.psk_len = sizeof(test_psk), .zc = mode, .timeout_ms = 400,
	};
	struct sl_range all = { 0, len / 4096 };
	struct sl_sender *s = NULL;
	uint64_t t0 = sl_now_ns();
	int ret;

	assert_int_equal(sl_sender_new(&cfg, &s, &eb), 0);
	assert_int_equal(sl_sender_add_region(s, 0, src, len), 0);
	ret = sl_sender_send_ranges(s, 0, &all, 1, 3);
	if (!ret)
		ret = sl_sender_flush(s);
	assert_int_equal(ret, -ETIMEDOUT);
	assert_non_null(strstr(sl_sender_last_error(s), "channel 0 (generation 3, "));
	assert_non_null(strstr(sl_sender_last_error(s), "bytes sent): peer stopped reading for 400 ms"));
	/* Detected in about the timeout, not waited on forever. */
	assert_true(sl_now_ns() - t0 < 5000000000ull);
	/* Every later call reports the same error. */
	assert_int_equal(sl_sender_iteration_end(s, 3), -ETIMEDOUT);
	sl_sender_free(&s);
	close(pfd[1]);
	expect_child_ok(pid);
	munmap(src, len);
}

static void test_stalled_off(void **state) { (void)state; stalled_sender_case(SL_ZC_OFF); }
static void test_stalled_msg(void **state) { (void)state; stalled_sender_case(SL_ZC_MSG); }
static void test_stalled_uring(void **state) { (void)state; stalled_sender_case(SL_ZC_URING); }

/* The receiver notices a sender that goes silent mid-session. */
static void test_silent_sender(void **state)
{
	struct sl_receiver_config cfg = {
		.size = sizeof(cfg), .url = "tcp:127.0.0.1:0", .psk = test_psk,
		.psk_len = sizeof(test_psk), .timeout_ms = 300,
	};
	struct sl_wire_hello h = hello_for(0, 1, 5);
	struct sl_receiver *r = NULL;
	struct sl_errbuf eb;
	char url[128];
	pid_t pid;
	int fd;

	(void)state;
	assert_int_equal(sl_receiver_new(&cfg, &r, &eb), 0);
	snprintf(url, sizeof(url), "tcp:127.0.0.1:%d", sl_receiver_port(r));
	pid = fork();
	if (pid == 0) {
		if (raw_channel(url, &h, &fd, &eb))
			_exit(1);
		sleep(2);
		_exit(0);
	}
	assert_int_equal(sl_receiver_run_session(r, NULL, NULL, &eb), -ETIMEDOUT);
	assert_non_null(strstr(eb.msg, "channel 0 (generation 0, 0 bytes received): peer silent for 300 ms"));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	sl_receiver_free(&r);
}

/* The receiver dies mid-transfer: the sender's error names the channel. */
/* A receiver that goes away between iterations (clean close, nothing in
 * flight) is noticed by the non-blocking ACK poll, not by a hang later. */
static void test_receiver_gone_seen_by_ack_poll(void **state)
{
	struct sl_errbuf eb;
	struct sl_ack ack;
	char url[128];
	pid_t pid;

	(void)state;
	pid = fake_receiver(url, sizeof(url), FAKE_CLOSE, NULL);
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .url = url, .nchannels = 1, .psk = test_psk,
		.psk_len = sizeof(test_psk), .zc = SL_ZC_OFF, .timeout_ms = 5000,
	};
	struct sl_sender *s = NULL;

	assert_int_equal(sl_sender_new(&cfg, &s, &eb), 0);
	expect_child_ok(pid); /* the receiver has closed its end */
	assert_int_equal(sl_sender_next_ack(s, 2000, &ack), -ECONNRESET);
	assert_non_null(strstr(sl_sender_last_error(s), "receiver closed the connection"));
	sl_sender_free(&s);
}

static void test_receiver_killed(void **state)
{
	struct sl_errbuf eb;
	char url[128];
	pid_t pid;

	(void)state;
	pid = fake_receiver(url, sizeof(url), FAKE_RESET, NULL);
	size_t len = 64 << 20;
	uint8_t *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .url = url, .nchannels = 1, .psk = test_psk,
		.psk_len = sizeof(test_psk), .zc = SL_ZC_URING, .timeout_ms = 5000,
	};
	struct sl_range all = { 0, len / 4096 };
	struct sl_sender *s = NULL;
	int ret;

	assert_int_equal(sl_sender_new(&cfg, &s, &eb), 0);
	assert_int_equal(sl_sender_add_region(s, 0, src, len), 0);
	ret = sl_sender_send_ranges(s, 0, &all, 1, 2);
	if (!ret)
		ret = sl_sender_flush(s);
	assert_true(ret == -ECONNRESET || ret == -EPIPE);
	assert_non_null(strstr(sl_sender_last_error(s), "channel 0 (generation 2, "));
	assert_non_null(strstr(sl_sender_last_error(s), "peer gone"));
	sl_sender_free(&s);
	expect_child_ok(pid);
	munmap(src, len);
}

/* ---- bandwidth limit and cancel -------------------------------------------- */

static void test_bandwidth_limit(void **state)
{
	size_t len = 8 << 20;
	char url[128];
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .url = url, .nchannels = 2, .psk = test_psk,
		.psk_len = sizeof(test_psk), .zc = SL_ZC_OFF, .timeout_ms = 5000,
		.bandwidth_bps = 40000000, /* 40 MB/s shared by both channels */
	};
	struct sl_range all = { 0, len / 4096 };
	struct sl_sender_stats st;
	struct sl_sender *s = NULL;
	struct sl_errbuf eb;
	uint8_t *src;
	pid_t pid;

	(void)state;
	/* The session ends with the sender's cancel: the receiver sees the
	 * connection go away. */
	pid = spawn_receiver("tcp:127.0.0.1:0", len, url, sizeof(url), test_psk, sizeof(test_psk),
			     -ECONNRESET);
	src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill_pages(src, 0, len / 4096, 3);
	assert_int_equal(sl_sender_new(&cfg, &s, &eb), 0);
	assert_int_equal(sl_sender_add_region(s, 0, src, len), 0);
	uint64_t t0 = sl_now_ns();

	assert_int_equal(sl_sender_send_ranges(s, 0, &all, 1, 0), 0);
	assert_int_equal(sl_sender_flush(s), 0);
	double secs = (double)(sl_now_ns() - t0) / 1e9;

	sl_sender_get_stats(s, &st);
	/* 8 MiB at 40 MB/s is 0.21 s; the burst allowance is 10 ms of rate. */
	assert_true(secs >= 0.18);
	assert_true(secs < 3.0);
	assert_true(st.throttle_ns > 100000000ull);
	fprintf(stderr, "8 MiB at 40 MB/s took %.3f s\n", secs);

	/* At 1 MB/s the same 8 MiB would take 8.4 s; lifting the limit (what
	 * the engine does when the VM stops) must wake the throttled workers
	 * and let the data go at once. */
	assert_int_equal(sl_sender_set_bandwidth(s, 1000000), 0);
	t0 = sl_now_ns();
	assert_int_equal(sl_sender_send_ranges(s, 0, &all, 1, 1), 0);
	assert_int_equal(sl_sender_set_bandwidth(s, 0), 0);
	assert_int_equal(sl_sender_flush(s), 0);
	secs = (double)(sl_now_ns() - t0) / 1e9;
	fprintf(stderr, "8 MiB after lifting a 1 MB/s limit took %.3f s\n", secs);
	assert_true(secs < 4.0);
	sl_sender_cancel(s);
	sl_sender_free(&s);
	munmap(src, len);
	expect_child_ok(pid);
}

struct canceller {
	struct sl_sender *s;
	struct sl_receiver *r;
};

/* Threads of this process whose affinity is exactly {cpu}. */
static int threads_pinned_to(int cpu)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		cpu_set_t set;
		pid_t tid = (pid_t)atoi(e->d_name);

		if (tid <= 0 || sched_getaffinity(tid, sizeof(set), &set))
			continue;
		if (CPU_COUNT(&set) == 1 && CPU_ISSET(cpu, &set))
			n++;
	}
	closedir(d);
	return n;
}

/* channel_cpus pins each channel's worker (the engine's NUMA placement). */
static void test_channel_pinning(void **state)
{
	size_t len = 1 << 20;
	char url[128];
	cpu_set_t cpus[2];
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .url = url, .nchannels = 2, .psk = test_psk,
		.psk_len = sizeof(test_psk), .zc = SL_ZC_OFF, .timeout_ms = 5000,
		.channel_cpus = cpus,
	};
	struct sl_sender *s = NULL;
	struct sl_errbuf eb;
	pid_t pid;

	(void)state;
	{
		cpu_set_t mine;

		/* With one CPU every thread is "pinned" to it: nothing to see. */
		if (sched_getaffinity(0, sizeof(mine), &mine) || CPU_COUNT(&mine) < 2 ||
		    !CPU_ISSET(0, &mine)) {
			skip();
			return;
		}
	}
	CPU_ZERO(&cpus[0]);
	CPU_ZERO(&cpus[1]);
	CPU_SET(0, &cpus[0]);
	CPU_SET(0, &cpus[1]);
	pid = spawn_receiver("tcp:127.0.0.1:0", len, url, sizeof(url), test_psk, sizeof(test_psk),
			     -ECONNRESET);
	assert_int_equal(threads_pinned_to(0), 0);
	assert_int_equal(sl_sender_new(&cfg, &s, &eb), 0);
	assert_int_equal(threads_pinned_to(0), 2);
	sl_sender_cancel(s);
	sl_sender_free(&s);
	assert_int_equal(threads_pinned_to(0), 0);
	expect_child_ok(pid);
}

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;

	usleep(200000);
	if (c->s)
		sl_sender_cancel(c->s);
	if (c->r)
		sl_receiver_cancel(c->r);
	return NULL;
}

/* cancel() from another thread unblocks a sender stuck on a stalled peer
 * and a receiver waiting for its first channel. */
static void test_cancel(void **state)
{
	struct sl_receiver_config rc = {
		.size = sizeof(rc), .url = "tcp:127.0.0.1:0", .psk = test_psk,
		.psk_len = sizeof(test_psk),
	};
	struct canceller c = { 0 };
	struct sl_errbuf eb;
	pthread_t th;
	char url[128];
	int pfd[2];
	pid_t pid;

	(void)state;
	assert_int_equal(sl_receiver_new(&rc, &c.r, &eb), 0);
	assert_int_equal(pthread_create(&th, NULL, cancel_later, &c), 0);
	uint64_t t0 = sl_now_ns();

	assert_int_equal(sl_receiver_run_session(c.r, NULL, NULL, &eb), -ECANCELED);
	assert_true(sl_now_ns() - t0 < 3000000000ull);
	pthread_join(th, NULL);
	sl_receiver_free(&c.r);

	assert_int_equal(pipe(pfd), 0);
	pid = fake_receiver(url, sizeof(url), FAKE_HOLD, pfd);
	size_t len = 64 << 20;
	uint8_t *src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .url = url, .nchannels = 1, .psk = test_psk,
		.psk_len = sizeof(test_psk), .zc = SL_ZC_URING, .timeout_ms = 20000,
	};
	struct sl_range all = { 0, len / 4096 };
	int ret;

	assert_int_equal(sl_sender_new(&cfg, &c.s, &eb), 0);
	assert_int_equal(sl_sender_add_region(c.s, 0, src, len), 0);
	assert_int_equal(pthread_create(&th, NULL, cancel_later, &c), 0);
	t0 = sl_now_ns();
	ret = sl_sender_send_ranges(c.s, 0, &all, 1, 0);
	if (!ret)
		ret = sl_sender_flush(c.s);
	assert_int_equal(ret, -ECANCELED);
	assert_true(sl_now_ns() - t0 < 5000000000ull);
	assert_int_equal(sl_sender_complete(c.s), -ECANCELED);
	pthread_join(th, NULL);
	sl_sender_free(&c.s);
	close(pfd[1]);
	expect_child_ok(pid);
	munmap(src, len);
}

static void test_bad_config(void **state)
{
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .url = "tcp:127.0.0.1:1", .psk = test_psk,
		.psk_len = sizeof(test_psk), .nchannels = 65,
	};
	struct sl_sender *s = NULL;
	struct sl_errbuf eb;

	(void)state;
	assert_int_equal(sl_sender_new(&cfg, &s, &eb), -EINVAL);
	cfg.nchannels = 1;
	cfg.granule_bytes = 3 << 20;
	assert_int_equal(sl_sender_new(&cfg, &s, &eb), -EINVAL);
	cfg.granule_bytes = 0;
	cfg.psk_len = 0;
	assert_int_equal(sl_sender_new(&cfg, &s, &eb), -EINVAL);
	cfg.psk_len = sizeof(test_psk);
	cfg.url = "unix:/tmp/nonexistent-sluice.sock";
	cfg.zc = SL_ZC_URING;
	assert_int_equal(sl_sender_new(&cfg, &s, &eb), -EOPNOTSUPP);
	cfg.zc = SL_ZC_OFF;
	assert_int_equal(sl_sender_new(&cfg, &s, &eb), -ENOENT);
	assert_null(s);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
#if defined(TRANSPORT_BIG) && defined(BIG_MODE)
#if BIG_MODE == 0
		cmocka_unit_test(test_off_1),
		cmocka_unit_test(test_off_2),
		cmocka_unit_test(test_off_4),
#elif BIG_MODE == 1
		cmocka_unit_test(test_msg_1),
		cmocka_unit_test(test_msg_2),
		cmocka_unit_test(test_msg_4),
#else
		cmocka_unit_test(test_uring_1),
		cmocka_unit_test(test_uring_2),
		cmocka_unit_test(test_uring_4),
#endif
#elif !defined(TRANSPORT_FAULTS)
		cmocka_unit_test(test_off_1),
		cmocka_unit_test(test_off_2),
		cmocka_unit_test(test_off_4),
		cmocka_unit_test(test_msg_1),
		cmocka_unit_test(test_msg_2),
		cmocka_unit_test(test_msg_4),
		cmocka_unit_test(test_uring_1),
		cmocka_unit_test(test_uring_2),
		cmocka_unit_test(test_uring_4),
#endif
#if !defined(TRANSPORT_BIG) && !defined(TRANSPORT_FAULTS)
		cmocka_unit_test(test_unix_auto),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_ordering_uring),
		cmocka_unit_test(test_ordering_off),
		cmocka_unit_test(test_acks),
#endif
#ifdef TRANSPORT_FAULTS
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_wrong_version),
		cmocka_unit_test(test_duplicate_channel),
		cmocka_unit_test(test_other_session),
		cmocka_unit_test(test_stalled_off),
		cmocka_unit_test(test_stalled_msg),
		cmocka_unit_test(test_stalled_uring),
		cmocka_unit_test(test_silent_sender),
		cmocka_unit_test(test_receiver_killed),
		cmocka_unit_test(test_receiver_gone_seen_by_ack_poll),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_bandwidth_limit),
		cmocka_unit_test(test_channel_pinning),
		cmocka_unit_test(test_cancel),
#endif
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
