/* SPDX-License-Identifier: MIT */
/*
 * test_torture.c — at least 10,000 bad streams against one receiver whose
 * destination region has PROT_NONE guard pages on both sides: truncated
 * streams, flipped header bytes, well-formed headers with bad meaning
 * (outside the region, across a granule, unknown region, wrong counts,
 * sequence gaps, generations going back, duplicate device indexes...),
 * random bytes, bad handshakes, and sessions where one of two channels goes
 * bad. Every one must be rejected with an error; a write outside the region
 * would fault on a guard page. Then a good session (real sender) completes
 * and the destination equals the source.
 *
 * The streams go over a unix socket to the receiver in this process (a
 * client thread plays the sender), which keeps 10,000 sessions fast enough
 * for the ASan build.
 */
#include <errno.h>
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

#define NSTREAMS 10000
#define REGION_PAGES 64
#define GRANULE (4 * 4096)
#define MAXPKT 16

struct spec {
	struct sl_pkt p;
	struct sl_wire_range r[4];
	bool fixed_counts; /* ITERATION_END/COMPLETE: keep p's counts */
};

struct stream {
	uint8_t buf[256 << 10];
	size_t len;
	size_t hdr_off[MAXPKT], hdr_len[MAXPKT];
	unsigned npkt;
};

static uint64_t rnd(uint64_t *x)
{
	return splitmix64(x);
}

/* The good packet sequence for channel 0 (granules 0, 2, 14 are channel 0's
 * in a 2-channel session too). */
static unsigned base_specs(struct spec *s)
{
	unsigned n = 0;

	s[n] = (struct spec){ .p = { .type = SL_PKT_RAM, .generation = 0 } };
	s[n].p.u.ram.region_id = 0;
	s[n].p.u.ram.nranges = 2;
	s[n].r[0] = (struct sl_wire_range){ 0, 2 };
	s[n].r[1] = (struct sl_wire_range){ 9, 1 };
	n++;
	s[n] = (struct spec){ .p = { .type = SL_PKT_RAM, .generation = 0 } };
	s[n].p.u.ram.nranges = 1;
	s[n].r[0] = (struct sl_wire_range){ 56, 4 };
	n++;
	s[n] = (struct spec){ .p = { .type = SL_PKT_ZERO, .generation = 0 } };
	s[n].p.u.ram.nranges = 2;
	s[n].r[0] = (struct sl_wire_range){ 1, 1 };
	s[n].r[1] = (struct sl_wire_range){ 20, 4 }; /* granule 5: wrong for 2 channels, see below */
	n++;
	s[n] = (struct spec){ .p = { .type = SL_PKT_ITERATION_END, .generation = 0 } };
	n++;
	s[n] = (struct spec){ .p = { .type = SL_PKT_RAM, .generation = 1 } };
	s[n].p.u.ram.nranges = 1;
	s[n].r[0] = (struct sl_wire_range){ 58, 2 };
	n++;
	s[n] = (struct spec){ .p = { .type = SL_PKT_DEVICE, .generation = 1, .payload_len = 100 } };
	s[n].p.u.dev.index = 1;
	s[n].p.u.dev.flags = SL_DEV_FLAG_LAST;
	n++;
	s[n] = (struct spec){ .p = { .type = SL_PKT_DEVICE, .generation = 1, .payload_len = 50 } };
	s[n].p.u.dev.index = 0;
	n++;
	s[n] = (struct spec){ .p = { .type = SL_PKT_STATE, .generation = 1, .payload_len = 64 } };
	s[n].p.u.state.kind = 3;
	n++;
	s[n] = (struct spec){ .p = { .type = SL_PKT_ITERATION_END, .generation = 1 } };
	n++;
	s[n] = (struct spec){ .p = { .type = SL_PKT_COMPLETE, .generation = 1 } };
	n++;
	return n;
}

static void build(struct stream *st, struct spec *s, unsigned n, bool two_channels)
{
	uint64_t gp = 0, gb = 0, tp = 0, tb = 0;

	st->len = 0;
	st->npkt = 0;
	for (unsigned i = 0; i < n; i++) {
		struct sl_pkt p = s[i].p;
		int hl;

		if (p.type == SL_PKT_ZERO && two_channels && p.u.ram.nranges == 2 &&
		    s[i].r[1].first == 20)
			s[i].r[1].first = 32; /* granule 8: channel 0's */
		if (!s[i].p.seq)
			p.seq = i;
		if (p.type == SL_PKT_RAM && !p.payload_len) {
			for (uint32_t k = 0; k < p.u.ram.nranges; k++)
				p.payload_len += s[i].r[k].npages * 4096;
		}
		if ((p.type == SL_PKT_ITERATION_END || p.type == SL_PKT_COMPLETE) && !s[i].fixed_counts) {
			p.u.count.packets = p.type == SL_PKT_COMPLETE ? tp : gp;
			p.u.count.bytes = p.type == SL_PKT_COMPLETE ? tb : gb;
		}
		hl = sl_wire_encode_header(&p, s[i].r, st->buf + st->len, SL_PKT_MAX_HDR);
		assert_true(hl > 0);
		st->hdr_off[st->npkt] = st->len;
		st->hdr_len[st->npkt++] = (size_t)hl;
		st->len += (size_t)hl;
		assert_true(st->len + p.payload_len <= sizeof(st->buf));
		memset(st->buf + st->len, (uint8_t)(i * 37 + 1), p.payload_len);
		st->len += p.payload_len;
		if (p.type == SL_PKT_ITERATION_END) {
			gp = gb = 0;
		} else if (p.type != SL_PKT_COMPLETE) {
			gp++;
			gb += p.payload_len;
			tp++;
			tb += p.payload_len;
		}
	}
}

/* One well-formed header with a bad meaning; returns a label. */
static const char *semantic_mutation(struct spec *s, unsigned n, uint64_t *x)
{
	unsigned k = (unsigned)(rnd(x) % 16);

	(void)n;
	switch (k) {
	case 0: s[1].r[0] = (struct sl_wire_range){ 62, 4 }; return "range past the region end";
	case 1: s[1].r[0] = (struct sl_wire_range){ 64, 4 }; return "range after the region";
	case 2: s[0].r[0] = (struct sl_wire_range){ 3, 2 }; return "range across a granule";
	case 3: s[0].p.u.ram.region_id = 9; return "unknown region";
	case 4: s[1].p.seq = 5; return "sequence gap";
	case 5: s[5].p.generation = 0; return "generation going back";
	case 6: s[6].p.u.dev.index = 1; return "duplicate device index";
	case 7: s[6].p.u.dev.flags = SL_DEV_FLAG_LAST; return "second LAST";
	case 8: s[3].fixed_counts = true; s[3].p.u.count.packets = 7; return "ITERATION_END packets";
	case 9: s[9].fixed_counts = true; s[9].p.u.count.bytes = 1; return "COMPLETE bytes";
	case 10: s[7].p.type = SL_PKT_RESUMED; s[7].p.u.resumed.status = 0; return "RESUMED to receiver";
	case 11: s[2].r[1] = (struct sl_wire_range){ 60, 8 }; return "ZERO past the end";
	case 12: s[5].p.u.dev.index = 0; s[6].p.u.dev.index = 0; return "same index twice";
	case 13: s[9].p.type = SL_PKT_ERROR; s[9].p.payload_len = 5; s[9].p.u.error.code = 5; return "sender ERROR";
	case 14: s[4].r[0] = (struct sl_wire_range){ ~0ull - 1, 2 }; return "overflowing range";
	default: s[5].p.u.dev.flags = 8; return "unknown device flag";
	}
}

/* ---- the client side ----------------------------------------------------- */

struct client {
	const char *url;
	int nstreams;
	int rejected_hs;
	int bad;  /* streams the client could not even start */
};

static int connect_hs(const char *url, unsigned idx, unsigned count, uint8_t sid, int *fd_out,
		      bool bad_hello, uint64_t *x)
{
	struct sl_wire_hello h = {
		.version = SL_WIRE_VERSION, .caps = SL_CAP_HDR_XXH32, .page_size = 4096,
		.channel_index = (uint16_t)idx, .channel_count = (uint16_t)count,
		.granule_bytes = GRANULE,
	};
	struct sl_errbuf eb;
	struct sl_url u;
	int fd;

	memset(h.session_id, sid, sizeof(h.session_id));
	if (sl_url_parse(url, &u, &eb))
		return -EINVAL;
	fd = sl_url_connect(&u, &eb);
	if (fd < 0)
		return fd;
	sl_io_prepare_socket(fd, 5000);
	*fd_out = fd;
	if (bad_hello) {
		/* Raw: read the challenge, send a HELLO with one byte changed after
		 * signing (or a short one), expect a refusal or a close. */
		uint8_t c[SL_CHALLENGE_LEN], hb[SL_HELLO_LEN];
		struct sl_wire_challenge ch;

		if (sl_io_read_full(fd, c, sizeof(c)) != (ssize_t)sizeof(c) ||
		    sl_wire_decode_challenge(c, sizeof(c), &ch, &eb))
			return -EPROTO;
		sl_wire_encode_hello(&h, hb);
		sl_wire_hello_mac(test_psk, sizeof(test_psk), ch.nonce, hb, h.hmac);
		memcpy(hb + SL_HELLO_SIGNED_LEN, h.hmac, SL_HMAC_LEN);
		size_t len = sizeof(hb);

		if (rnd(x) % 4 == 0)
			len = rnd(x) % sizeof(hb);
		else
			hb[rnd(x) % sizeof(hb)] ^= (uint8_t)(1 + rnd(x) % 255);
		sl_io_write_full(fd, hb, len);
		shutdown(fd, SHUT_WR);
		return 1;
	}
	return sl_hs_client(fd, test_psk, sizeof(test_psk), &h, &eb);
}

static void drain_close(int fd)
{
	char buf[4096];

	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	static struct stream st, st1;
	struct spec base[MAXPKT], s[MAXPKT];
	unsigned n = base_specs(base);
	uint64_t x = 42;

	for (int i = 0; i < cl->nstreams; i++) {
		unsigned kind = (unsigned)(rnd(&x) % 100);
		bool two = kind >= 90;
		int fd0 = -1, fd1 = -1, ret;

		if (kind < 4) {
			/* A handshake that must be refused. */
			ret = connect_hs(cl->url, 0, 1, (uint8_t)i, &fd0, true, &x);
			if (fd0 >= 0)
				drain_close(fd0);
			cl->rejected_hs++;
			continue;
		}
		ret = connect_hs(cl->url, 0, two ? 2 : 1, (uint8_t)i, &fd0, false, &x);
		if (ret) {
			cl->bad++;
			if (fd0 >= 0)
				close(fd0);
			continue;
		}
		if (two) {
			/* Channel 1 is fine (ITERATION_ENDs, COMPLETE); channel 0 goes bad. */
			struct spec s1[3] = {
				{ .p = { .type = SL_PKT_ITERATION_END, .generation = 0 } },
				{ .p = { .type = SL_PKT_ITERATION_END, .generation = 1 } },
				{ .p = { .type = SL_PKT_COMPLETE, .generation = 1 } },
			};

			if (connect_hs(cl->url, 1, 2, (uint8_t)i, &fd1, false, &x)) {
				cl->bad++;
				close(fd0);
				if (fd1 >= 0)
					close(fd1);
				continue;
			}
			build(&st1, s1, 3, true);
			sl_io_write_full(fd1, st1.buf, st1.len);
		}
		memcpy(s, base, sizeof(s));
		build(&st, s, n, two);
		if (kind < 34) {
			/* Truncated: any prefix of the good stream. */
			st.len = rnd(&x) % st.len;
		} else if (kind < 64) {
			/* 1-3 flipped bytes inside headers. */
			unsigned flips = 1 + (unsigned)(rnd(&x) % 3);

			for (unsigned f = 0; f < flips; f++) {
				unsigned k = (unsigned)(rnd(&x) % st.npkt);

				st.buf[st.hdr_off[k] + rnd(&x) % st.hdr_len[k]] ^= (uint8_t)(1 + rnd(&x) % 255);
			}
		} else if (kind < 82 || two) {
			semantic_mutation(s, n, &x);
			build(&st, s, n, two);
		} else {
			/* Random bytes after a good handshake. */
			st.len = rnd(&x) % 4096;
			for (size_t k = 0; k < st.len; k++)
				st.buf[k] = (uint8_t)rnd(&x);
			if (st.len && rnd(&x) % 2)
				st.buf[0] = (uint8_t)(1 + rnd(&x) % 8); /* a plausible type */
		}
		sl_io_write_full(fd0, st.buf, st.len);
		drain_close(fd0);
		if (fd1 >= 0)
			drain_close(fd1);
	}
	return NULL;
}

/* ---- the good session at the end ------------------------------------------ */

struct good {
	const char *url;
	uint8_t *src;
	int ret;
	char msg[1100];
};

static void *good_sender(void *arg)
{
	struct good *g = arg;
	struct sl_sender_config cfg = {
		.size = sizeof(cfg), .url = g->url, .nchannels = 1, .psk = test_psk,
		.psk_len = sizeof(test_psk), .zc = SL_ZC_AUTO, .granule_bytes = GRANULE,
		.timeout_ms = 5000,
	};
	struct sl_range all = { 0, REGION_PAGES }, z = { 5, 3 };
	struct sl_resumed_info info;
	struct sl_sender *s = NULL;
	struct sl_errbuf eb;

	g->ret = sl_sender_new(&cfg, &s, &eb);
	if (g->ret) {
		snprintf(g->msg, sizeof(g->msg), "%s", eb.msg);
		return NULL;
	}
	g->ret = sl_sender_add_region(s, 0, g->src, REGION_PAGES * 4096);
	if (!g->ret)
		g->ret = sl_sender_send_ranges(s, 0, &all, 1, 0);
	if (!g->ret)
		g->ret = sl_sender_send_zero_ranges(s, 0, &z, 1, 0);
	if (!g->ret)
		g->ret = sl_sender_complete(s);
	if (!g->ret)
		g->ret = sl_sender_wait_resumed(s, 5000, &info);
	snprintf(g->msg, sizeof(g->msg), "%s", g->ret ? sl_sender_last_error(s) : info.msg);
	sl_sender_free(&s);
	return NULL;
}

static int complete_hash(void *ctx, char *msg, size_t n)
{
	snprintf(msg, n, "%016llx", (unsigned long long)XXH3_64bits(ctx, REGION_PAGES * 4096));
	return 0;
}

static void test_torture(void **state)
{
	char path[64], url[80];
	struct sl_receiver_config cfg = {
		.size = sizeof(cfg), .psk = test_psk, .psk_len = sizeof(test_psk),
		.timeout_ms = 5000, .device_mem_cap = 1 << 20,
	};
	struct sl_receiver *r = NULL;
	struct sl_receiver_stats rs;
	struct client cl = { .nstreams = NSTREAMS };
	struct sl_errbuf eb;
	uint8_t *dst = guarded_alloc(REGION_PAGES * 4096);
	pthread_t th;
	int rejected = 0;

	(void)state;
	assert_non_null(dst);
	snprintf(path, sizeof(path), "/tmp/sl-torture-%d.sock", (int)getpid());
	snprintf(url, sizeof(url), "unix:%s", path);
	cfg.url = url;
	cl.url = url;
	assert_int_equal(sl_receiver_new(&cfg, &r, &eb), 0);
	assert_int_equal(sl_receiver_add_region(r, 0, dst, REGION_PAGES * 4096), 0);
	assert_int_equal(pthread_create(&th, NULL, client_main, &cl), 0);
	for (int i = 0; i < NSTREAMS; i++) {
		int ret = sl_receiver_run_session(r, NULL, NULL, &eb);

		if (ret == 0)
			fprintf(stderr, "stream %d was accepted\n", i);
		assert_true(ret < 0);
		assert_true(eb.msg[0] != '\0');
		rejected++;
	}
	pthread_join(th, NULL);
	assert_int_equal(cl.bad, 0);
	assert_int_equal(rejected, NSTREAMS);
	sl_receiver_get_stats(r, &rs);
	assert_int_equal(rs.sessions_failed, NSTREAMS);
	assert_int_equal(rs.sessions_ok, 0);
	fprintf(stderr, "%d streams rejected (%d bad handshakes)\n", rejected, cl.rejected_hs);

	/* Still serving: a good session now completes, bytes identical. */
	struct good g = { .url = url };

	g.src = mmap(NULL, REGION_PAGES * 4096, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fill_pages(g.src, 0, REGION_PAGES, 99);
	memset(g.src + 5 * 4096, 0, 3 * 4096);
	struct sl_receiver_ops ops = { .complete = complete_hash };

	assert_int_equal(pthread_create(&th, NULL, good_sender, &g), 0);
	assert_int_equal(sl_receiver_run_session(r, &ops, dst, &eb), 0);
	pthread_join(th, NULL);
	assert_int_equal(g.ret, 0);
	char want[32];

	snprintf(want, sizeof(want), "%016llx",
		 (unsigned long long)XXH3_64bits(g.src, REGION_PAGES * 4096));
	assert_string_equal(g.msg, want);
	assert_memory_equal(g.src, dst, REGION_PAGES * 4096);
	sl_receiver_free(&r);
	unlink(path);
	guarded_free(dst, REGION_PAGES * 4096);
	munmap(g.src, REGION_PAGES * 4096);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_torture),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
