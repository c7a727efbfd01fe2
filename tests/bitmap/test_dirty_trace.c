/* SPDX-License-Identifier: MIT */
/*
 * Trace record and replay: a recording wrapped around synthetic sources, then
 * replayed bit for bit; truncated, mutated and foreign files rejected with
 * -EBADMSG and a message, never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <xxhash.h>

#include "sl_dirty.h"

#define SYNCS 30
#define NP_A 100000 /* region 7: hot/cold */
#define NP_B 5000   /* region 3: uniform, shares the writer */
#define WORDS(n) (((n) + 63) / 64)

struct sim_clock {
	uint64_t now;
};

static uint64_t sim_now(void *ctx)
{
	return ((struct sim_clock *)ctx)->now;
}

static char tmpdir[64];

static void path_in_tmp(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static struct sl_dirty_source *synth(struct sim_clock *clk, uint64_t np,
				     enum sl_synth_pattern pat, double rate)
{
	struct sl_dirty_synthetic_config c = {
		.size = sizeof(c), .npages = np, .pages_per_sec = rate, .pattern = pat,
		.hot_frac = 0.1, .hot_share = 0.9, .zipf_s = 1.0, .seed = 7,
		.clock_ns = sim_now, .clock_ctx = clk,
	};
	struct sl_dirty_source *s = NULL;

	assert_int_equal(sl_dirty_synthetic_new(&c, &s, NULL), 0);
	return s;
}

/* The syncs of the reference run: ref_a[i] / ref_b[i], with their counts. */
static uint64_t ref_a[SYNCS][WORDS(NP_A)], ref_b[SYNCS][WORDS(NP_B)];
static int64_t ref_na[SYNCS], ref_nb[SYNCS];

/* Records two regions into path; checks the recording changes nothing
 * compared with the bare sources (same seeds, same clock). */
static void record_trace(const char *path)
{
	struct sim_clock clk = { 0 }, clk_ref = { 0 };
	struct sl_trace_writer *w = NULL;
	struct sl_dirty_source *ra = NULL, *rb = NULL, *inner;
	struct sl_dirty_source *bare_a = synth(&clk_ref, NP_A, SL_SYNTH_HOTCOLD, 20000.0);
	struct sl_dirty_source *bare_b = synth(&clk_ref, NP_B, SL_SYNTH_UNIFORM, 3000.0);
	static uint64_t a[WORDS(NP_A)], b[WORDS(NP_B)];
	struct sl_errbuf eb = { { 0 } };

	assert_int_equal(sl_trace_writer_open(path, &w, &eb), 0);
	inner = synth(&clk, NP_A, SL_SYNTH_HOTCOLD, 20000.0);
	assert_int_equal(sl_dirty_recording_new(inner, w, 7, &ra, &eb), 0);
	inner = synth(&clk, NP_B, SL_SYNTH_UNIFORM, 3000.0);
	assert_int_equal(sl_dirty_recording_new(inner, w, 3, &rb, &eb), 0);
	assert_int_equal(sl_dirty_kind(ra), SL_DIRTY_SYNTHETIC);
	assert_int_equal(sl_dirty_npages(ra), NP_A);
	assert_int_equal(sl_dirty_start(ra), 0);
	assert_int_equal(sl_dirty_start(rb), 0);
	assert_int_equal(sl_dirty_start(bare_a), 0);
	assert_int_equal(sl_dirty_start(bare_b), 0);
	for (int i = 0; i < SYNCS; i++) {
		clk.now += 50000000ull * (uint64_t)(1 + i % 4);
		clk_ref.now = clk.now;
		/* Recording ORs into a bitmap that already has bits: the trace
		 * must hold only the source's own bits. */
		memset(a, 0xff, sizeof(a) / 2);
		memset((uint8_t *)a + sizeof(a) / 2, 0, sizeof(a) - sizeof(a) / 2);
		memset(ref_a[i], 0, sizeof(ref_a[i]));
		ref_na[i] = sl_dirty_sync(ra, ref_a[i]);
		assert_true(ref_na[i] > 0);
		memset(b, 0, sizeof(b));
		ref_nb[i] = sl_dirty_sync(rb, ref_b[i]);
		assert_true(ref_nb[i] > 0);
		assert_int_equal(sl_dirty_sync(bare_a, a), ref_na[i]);
		assert_int_equal(sl_dirty_sync(bare_b, b), ref_nb[i]);
		assert_memory_equal(b, ref_b[i], sizeof(b));
		/* The second half of a is exactly the reference's. */
		assert_memory_equal((uint8_t *)a + sizeof(a) / 2,
				    (uint8_t *)ref_a[i] + sizeof(a) / 2, sizeof(a) - sizeof(a) / 2);
	}
	sl_dirty_free(&ra);
	sl_dirty_free(&rb);
	sl_dirty_free(&bare_a);
	sl_dirty_free(&bare_b);
	assert_int_equal(sl_trace_writer_close(&w), 0);
	assert_null(w);
}

static struct sl_dirty_source *open_replay(const char *path, uint32_t region, bool loop,
					   int expect, struct sl_errbuf *eb)
{
	struct sl_dirty_trace_config c = { .size = sizeof(c), .path = path,
					   .region_id = region, .loop = loop };
	struct sl_dirty_source *s = NULL;

	memset(eb, 0, sizeof(*eb));
	assert_int_equal(sl_dirty_trace_new(&c, &s, eb), expect);
	if (expect < 0) {
		assert_null(s);
		assert_true(strlen(eb->msg) > 0);
	}
	return s;
}

static void test_record_then_replay_identical(void **state)
{
	char path[128];
	static uint64_t bm[WORDS(NP_A)];
	struct sl_errbuf eb;
	struct sl_dirty_source *t;

	(void)state;
	path_in_tmp(path, sizeof(path), "rec.sltrace");
	record_trace(path);

	t = open_replay(path, 7, false, 0, &eb);
	assert_int_equal(sl_dirty_kind(t), SL_DIRTY_TRACE);
	assert_int_equal(sl_dirty_caps(t), SL_DIRTY_CAP_SIMULATED);
	assert_int_equal(sl_dirty_npages(t), NP_A);
	assert_int_equal(sl_dirty_sync(t, bm), -EINVAL); /* before start */
	assert_int_equal(sl_dirty_start(t), 0);
	for (int i = 0; i < SYNCS; i++) {
		memset(bm, 0, sizeof(bm));
		assert_int_equal(sl_dirty_sync(t, bm), ref_na[i]);
		assert_memory_equal(bm, ref_a[i], sizeof(bm));
	}
	/* Past the end without loop: quiet. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(t, bm), 0);
	for (size_t i = 0; i < WORDS(NP_A); i++)
		assert_int_equal(bm[i], 0);
	/* stop + start replays from the beginning. */
	assert_int_equal(sl_dirty_stop(t), 0);
	assert_int_equal(sl_dirty_start(t), 0);
	assert_int_equal(sl_dirty_sync(t, bm), ref_na[0]);
	assert_memory_equal(bm, ref_a[0], sizeof(bm));
	sl_dirty_free(&t);

	/* Loop: sync SYNCS + k is sync k again. */
	t = open_replay(path, 3, true, 0, &eb);
	assert_int_equal(sl_dirty_npages(t), NP_B);
	assert_int_equal(sl_dirty_start(t), 0);
	for (int i = 0; i < 2 * SYNCS + 3; i++) {
		memset(bm, 0, sizeof(bm));
		assert_int_equal(sl_dirty_sync(t, bm), ref_nb[i % SYNCS]);
		assert_memory_equal(bm, ref_b[i % SYNCS], WORDS(NP_B) * 8);
	}
	sl_dirty_free(&t);

	/* A region not in the trace. */
	open_replay(path, 99, false, -ENODATA, &eb);
	assert_non_null(strstr(eb.msg, "region 99"));
	unlink(path);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* A small trace: 4 records of 300 pages (one unaligned tail word). */
static void small_trace(const char *path)
{
	struct sl_trace_writer *w = NULL;
	uint64_t bm[WORDS(300)];

	assert_int_equal(sl_trace_writer_open(path, &w, NULL), 0);
	for (int i = 0; i < 4; i++) {
		memset(bm, 0, sizeof(bm));
		for (int p = i; p < 300; p += 7 + i)
			bm[p / 64] |= 1ull << (p % 64);
		bm[4] |= ~0ull << 44; /* garbage past page 300: must not be recorded */
		assert_int_equal(sl_trace_writer_add(w, 1000u * (uint64_t)i, i % 2, bm, 300), 0);
	}
	assert_int_equal(sl_trace_writer_close(&w), 0);
}

static void test_truncated_and_mutated_rejected(void **state)
{
	char good[128], bad[128];
	uint8_t *buf, *mut;
	size_t len;
	struct sl_errbuf eb;
	struct sl_dirty_source *t;
	uint64_t bm[WORDS(300)];
	unsigned seed = 1;

	(void)state;
	path_in_tmp(good, sizeof(good), "small.sltrace");
	path_in_tmp(bad, sizeof(bad), "bad.sltrace");
	small_trace(good);
	buf = slurp(good, &len);
	mut = malloc(len + 16);

	/* Sanity: the good file replays; bits past page 300 were masked. */
	t = open_replay(good, 1, false, 0, &eb);
	assert_int_equal(sl_dirty_start(t), 0);
	memset(bm, 0, sizeof(bm));
	assert_true(sl_dirty_sync(t, bm) > 0);
	assert_int_equal(bm[4] >> 44, 0);
	sl_dirty_free(&t);

	/* Every truncation. */
	for (size_t n = 0; n < len; n++) {
		spit(bad, buf, n);
		open_replay(bad, 1, false, -EBADMSG, &eb);
	}
	/* Every single-byte change. */
	for (size_t i = 0; i < len; i++) {
		memcpy(mut, buf, len);
		mut[i] ^= (uint8_t)(1u << (i % 8));
		spit(bad, mut, len);
		open_replay(bad, 1, false, -EBADMSG, &eb);
	}
	/* Random multi-byte damage. */
	for (int k = 0; k < 300; k++) {
		memcpy(mut, buf, len);
		for (int j = 0; j < 1 + k % 5; j++)
			mut[(size_t)rand_r(&seed) % len] ^= (uint8_t)(1 + rand_r(&seed) % 255);
		if (!memcmp(mut, buf, len))
			continue;
		spit(bad, mut, len);
		open_replay(bad, 1, false, -EBADMSG, &eb);
	}
	/* Trailing garbage. */
	memcpy(mut, buf, len);
	memset(mut + len, 0, 16);
	spit(bad, mut, len + 16);
	open_replay(bad, 0, false, -EBADMSG, &eb);
	assert_non_null(strstr(eb.msg, "bad.sltrace"));

	/* Not a trace; no such file. */
	spit(bad, (const uint8_t *)"hello, this is not a dirty trace at all, it is just some text.\n"
		  "hello, this is not a dirty trace at all\n", 104);
	open_replay(bad, 0, false, -EBADMSG, &eb);
	assert_non_null(strstr(eb.msg, "magic"));
	path_in_tmp(bad, sizeof(bad), "missing.sltrace");
	open_replay(bad, 0, false, -ENOENT, &eb);
	path_in_tmp(bad, sizeof(bad), "bad.sltrace");

	/* A header with a valid checksum but a wrong count: truncated. */
	memcpy(mut, buf, len);
	mut[24] = 5; /* record_count 4 -> 5 */
	{
		uint64_t h = XXH64(mut, 56, 0);

		for (int i = 0; i < 8; i++)
			mut[56 + i] = (uint8_t)(h >> (8 * i));
	}
	spit(bad, mut, len);
	open_replay(bad, 0, false, -EBADMSG, &eb);
	assert_non_null(strstr(eb.msg, "header says 5 records"));

	/* Not finalized (a writer that never closed): whole records replay, a
	 * torn last record is still rejected. */
	memcpy(mut, buf, len);
	memset(mut + 20, 0, 16); /* flags, record_count, region_count */
	{
		uint64_t h = XXH64(mut, 56, 0);

		for (int i = 0; i < 8; i++)
			mut[56 + i] = (uint8_t)(h >> (8 * i));
	}
	spit(bad, mut, len);
	t = open_replay(bad, 1, false, 0, &eb);
	sl_dirty_free(&t);
	spit(bad, mut, len - 3);
	open_replay(bad, 1, false, -EBADMSG, &eb);

	/* A record whose checksum matches but whose dirty count lies: caught
	 * when the payload is decoded in sync(). */
	memcpy(mut, buf, len);
	mut[64 + 24] ^= 1; /* first record's ndirty */
	{
		uint32_t clen = (uint32_t)mut[64 + 32] | (uint32_t)mut[64 + 33] << 8;
		XXH64_state_t *hs = XXH64_createState();
		uint64_t h;

		XXH64_reset(hs, 0);
		XXH64_update(hs, mut + 64, 40);
		XXH64_update(hs, mut + 64 + 48, clen);
		h = XXH64_digest(hs);
		XXH64_freeState(hs);
		for (int i = 0; i < 8; i++)
			mut[64 + 40 + i] = (uint8_t)(h >> (8 * i));
	}
	spit(bad, mut, len);
	t = open_replay(bad, 0, false, 0, &eb);
	assert_int_equal(sl_dirty_start(t), 0);
	assert_int_equal(sl_dirty_sync(t, bm), -EBADMSG);
	assert_non_null(strstr(sl_dirty_last_error(t), "header says"));
	sl_dirty_free(&t);

	/* The file changes after it was checked: sync rejects the record. */
	spit(bad, buf, len);
	t = open_replay(bad, 0, false, 0, &eb);
	assert_int_equal(sl_dirty_start(t), 0);
	memcpy(mut, buf, len);
	mut[64 + 48] ^= 0x10; /* first payload byte */
	spit(bad, mut, len);
	assert_int_equal(sl_dirty_sync(t, bm), -EBADMSG);
	assert_non_null(strstr(sl_dirty_last_error(t), "checksum"));
	sl_dirty_free(&t);

	unlink(bad);
	unlink(good);
	free(buf);
	free(mut);
}

static void test_writer_errors(void **state)
{
	char path[128];
	struct sl_trace_writer *w = NULL;
	struct sl_errbuf eb = { { 0 } };
	struct sl_dirty_source *r = NULL, *inner;
	struct sim_clock clk = { 0 };
	uint64_t bm[4] = { 1, 2, 3, 4 };

	(void)state;
	assert_int_equal(sl_trace_writer_open("/nonexistent-dir/x.sltrace", &w, &eb), -ENOENT);
	assert_null(w);
	assert_non_null(strstr(eb.msg, "/nonexistent-dir/x.sltrace"));
	assert_int_equal(sl_trace_writer_open(NULL, &w, &eb), -EINVAL);
	/* A device that is always full: the header write fails cleanly. */
	if (access("/dev/full", W_OK) == 0) {
		assert_int_equal(sl_trace_writer_open("/dev/full", &w, &eb), -ENOSPC);
		assert_null(w);
		assert_non_null(strstr(eb.msg, "header"));
	}

	path_in_tmp(path, sizeof(path), "w.sltrace");
	assert_int_equal(sl_trace_writer_open(path, &w, &eb), 0);
	assert_int_equal(sl_trace_writer_add(w, 0, 1, bm, 0), -EINVAL);
	assert_int_equal(sl_trace_writer_add(w, 0, 1, NULL, 10), -EINVAL);
	assert_int_equal(sl_trace_writer_add(w, 0, 1, bm, 200), 0);
	assert_int_equal(sl_trace_writer_add(w, 0, 1, bm, 201), -EINVAL); /* npages changed */
	assert_int_equal(sl_trace_writer_add(w, 0, 2, bm, 201), 0);

	/* Recording: NULL args; a started inner is refused and stays the
	 * caller's. */
	inner = synth(&clk, 256, SL_SYNTH_UNIFORM, 10.0);
	assert_int_equal(sl_dirty_recording_new(NULL, w, 1, &r, &eb), -EINVAL);
	assert_int_equal(sl_dirty_recording_new(inner, NULL, 1, &r, &eb), -EINVAL);
	assert_int_equal(sl_dirty_start(inner), 0);
	assert_int_equal(sl_dirty_recording_new(inner, w, 1, &r, &eb), -EINVAL);
	assert_null(r);
	sl_dirty_free(&inner);
	/* A recording of a region whose size disagrees with earlier records
	 * fails its sync with the writer's reason. */
	inner = synth(&clk, 256, SL_SYNTH_UNIFORM, 1e9);
	assert_int_equal(sl_dirty_recording_new(inner, w, 1, &r, &eb), 0);
	assert_int_equal(sl_dirty_start(r), 0);
	clk.now = 1000;
	assert_int_equal(sl_dirty_sync(r, bm), -EINVAL);
	assert_non_null(strstr(sl_dirty_last_error(r), "region 1 had 200 pages"));
	sl_dirty_free(&r);
	assert_int_equal(sl_trace_writer_close(&w), 0);
	assert_int_equal(sl_trace_writer_close(&w), 0); /* NULL: no-op */
	unlink(path);
}

/* A big region (64 GiB = 16M pages by default, 16 GiB under ASan; SL_TRACE_PAGES=268435456 for
 * 1 TiB): syncs from sparse to dense round-trip exactly. Prints the cost per
 * sync of recording and replaying, beside a memcpy of the same bitmap, and
 * the compressed sizes, for docs/results.md. */
static void test_large_region_roundtrip(void **state)
{
	const char *env = getenv("SL_TRACE_PAGES");
#ifdef __SANITIZE_ADDRESS__
	const uint64_t np = env ? strtoull(env, NULL, 0) : 1ull << 22; /* ASan: 16 GiB */
#else
	const uint64_t np = env ? strtoull(env, NULL, 0) : 1ull << 24;
#endif
	const double rates[] = { 0.001, 0.05, 1.0 }; /* writes per page per sync */
	enum { N = SL_ARRAY_SIZE(rates) };
	uint64_t *bm = malloc(WORDS(np) * 8), *cp = malloc(WORDS(np) * 8), *ref[N];
	int64_t ref_n[N];
	uint64_t t_rec[N], t_rep[N], t0, t_memcpy, off_prev = 64, inner_ns = 0;
	struct sl_dirty_counters ic;
	struct sim_clock clk = { 0 };
	struct sl_trace_writer *w = NULL;
	struct sl_dirty_source *r = NULL, *inner, *t;
	struct sl_errbuf eb;
	char path[128];
	double bytes[N];
	FILE *f;

	(void)state;
	assert_non_null(bm);
	assert_non_null(cp);
	memset(bm, 1, WORDS(np) * 8);
	memset(cp, 0, WORDS(np) * 8);
	t0 = sl_now_ns();
	memcpy(cp, bm, WORDS(np) * 8);
	t_memcpy = sl_now_ns() - t0;
	path_in_tmp(path, sizeof(path), "big.sltrace");
	assert_int_equal(sl_trace_writer_open(path, &w, &eb), 0);
	inner = synth(&clk, np, SL_SYNTH_UNIFORM, 1.0);
	assert_int_equal(sl_dirty_recording_new(inner, w, 0, &r, &eb), 0);
	assert_int_equal(sl_dirty_start(r), 0);
	for (int i = 0; i < N; i++) {
		/* rate 1 page/s: advance the clock by the number of writes wanted */
		clk.now += (uint64_t)(rates[i] * (double)np * 1e9);
		memset(bm, 0, WORDS(np) * 8);
		t0 = sl_now_ns();
		ref_n[i] = sl_dirty_sync(r, bm);
		t_rec[i] = sl_now_ns() - t0;
		/* minus the synthetic source's own time: the recording's cost */
		sl_dirty_get_counters(inner, &ic);
		t_rec[i] -= ic.sync_ns - inner_ns;
		inner_ns = ic.sync_ns;
		assert_true(ref_n[i] > 0);
		ref[i] = malloc(WORDS(np) * 8);
		assert_non_null(ref[i]);
		memcpy(ref[i], bm, WORDS(np) * 8);
	}
	sl_dirty_free(&r);
	assert_int_equal(sl_trace_writer_close(&w), 0);

	/* Compressed size of each record: walk the record headers. */
	f = fopen(path, "rb");
	assert_non_null(f);
	for (int i = 0; i < N; i++) {
		uint8_t h[48];

		assert_int_equal(fseek(f, (long)off_prev, SEEK_SET), 0);
		assert_int_equal(fread(h, 1, 48, f), 48);
		bytes[i] = (double)((uint32_t)h[32] | (uint32_t)h[33] << 8 | (uint32_t)h[34] << 16 |
				    (uint32_t)h[35] << 24);
		off_prev += 48 + (uint64_t)bytes[i];
	}
	fclose(f);

	t = open_replay(path, 0, false, 0, &eb);
	assert_int_equal(sl_dirty_npages(t), np);
	assert_int_equal(sl_dirty_start(t), 0);
	for (int i = 0; i < N; i++) {
		memset(bm, 0, WORDS(np) * 8);
		t0 = sl_now_ns();
		assert_int_equal(sl_dirty_sync(t, bm), ref_n[i]);
		t_rep[i] = sl_now_ns() - t0;
		assert_memory_equal(bm, ref[i], WORDS(np) * 8);
		print_message("%llu pages, %5.1f %% dirty: recording adds %7.2f ms, replay %7.2f ms, "
			      "memcpy of the bitmap %.2f ms; %.0f of %llu bitmap bytes stored\n",
			      (unsigned long long)np, 100.0 * (double)ref_n[i] / (double)np,
			      (double)t_rec[i] / 1e6, (double)t_rep[i] / 1e6,
			      (double)t_memcpy / 1e6, bytes[i], (unsigned long long)WORDS(np) * 8);
		free(ref[i]);
	}
	sl_dirty_free(&t);
	unlink(path);
	free(bm);
	free(cp);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sl-trace-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_then_replay_identical),
		cmocka_unit_test(test_truncated_and_mutated_rejected),
		cmocka_unit_test(test_writer_errors),
		cmocka_unit_test(test_large_region_roundtrip),
	};

	if (getenv("SL_TEST_FILTER")) /* run one test: SL_TEST_FILTER=test_name */
		cmocka_set_test_filter(getenv("SL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
