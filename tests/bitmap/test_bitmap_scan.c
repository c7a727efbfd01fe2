/* SPDX-License-Identifier: MIT */
/*
 * test_bitmap_scan.c — sl_bitmap_scan against a naive per-bit reference:
 * runs across words and blocks,
 * the last partial word, over a million random words at densities from
 * 0.01 % to 100 % with random page counts, base pages, gap/split options and
 * output capacities down to 1 (resumed through the cursor), bad arguments.
 * Each ISA path is forced in turn; paths this CPU lacks are skipped.
 * (Every 16-bit pattern at every offset: test_bitmap_exhaustive.c.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sl_bitmap.h"

/* ---- small helpers ---------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: fast, reproducible from the seed printed on failure. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static int bit(const uint64_t *w, uint64_t i)
{
	return (w[i / 64] >> (i % 64)) & 1;
}

struct ranges {
	struct sl_range *r;
	size_t n, cap;
};

static void push(struct ranges *rs, uint64_t first, uint64_t npages)
{
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 256;
		rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
		assert_non_null(rs->r);
	}
	rs->r[rs->n].first = first;
	rs->r[rs->n].npages = npages;
	rs->n++;
}

/* The reference: one bit at a time, then merge, then split. */
static void reference(const uint64_t *w, uint64_t npages, uint64_t base, uint64_t gap,
		      uint64_t max_len, struct ranges *out)
{
	struct ranges raw = { 0 };

	out->n = 0;
	for (uint64_t i = 0; i < npages;) {
		uint64_t s;

		/* Whole words of the background are skipped only to keep the
		 * test fast; everything else goes bit by bit. */
		if (!bit(w, i)) {
			i += (i % 64 == 0 && npages - i >= 64 && w[i / 64] == 0) ? 64 : 1;
			continue;
		}
		s = i;
		while (i < npages && bit(w, i))
			i += (i % 64 == 0 && npages - i >= 64 && w[i / 64] == ~0ull) ? 64 : 1;
		if (raw.n && s - (raw.r[raw.n - 1].first + raw.r[raw.n - 1].npages) <= gap)
			raw.r[raw.n - 1].npages = i - raw.r[raw.n - 1].first;
		else
			push(&raw, s, i - s);
	}
	for (size_t k = 0; k < raw.n; k++) {
		uint64_t f = raw.r[k].first, left = raw.r[k].npages;

		while (left) {
			uint64_t len = max_len && left > max_len ? max_len : left;

			push(out, base + f, len);
			f += len;
			left -= len;
		}
	}
	free(raw.r);
}

/* Runs a whole scan through the cursor. cap 0 = pick a random capacity per
 * call (1..64 or large). Asserts the cursor contract on every call. */
static void scan_all(const uint64_t *w, uint64_t npages, uint64_t base, uint64_t gap,
		     uint64_t max_len, size_t cap, struct ranges *out)
{
	struct sl_scan_opts o = { .size = sizeof(o), .gap = gap, .max_len = max_len };
	struct sl_scan_cursor c;
	struct sl_range buf[4096];
	int calls = 0;

	out->n = 0;
	sl_scan_cursor_init(&c);
	while (!sl_scan_cursor_done(&c)) {
		size_t k = cap ? cap : (rnd() & 1 ? 1 + rnd_below(64) : 4096);
		ssize_t n;

		/* Poison so a range the call did not write cannot pass. */
		if (k < 64)
			memset(buf, 0xa5, sizeof(buf[0]) * k);
		n = sl_bitmap_scan(w, npages, base, (gap || max_len || rnd() % 2) ? &o : NULL,
				   &c, buf, k);
		assert_true(n >= 0 && (size_t)n <= k);
		/* Progress: a call on a live cursor writes a range or finishes;
		 * a call that does not fill the buffer finishes. */
		assert_true(n > 0 || sl_scan_cursor_done(&c));
		assert_true((size_t)n == k || sl_scan_cursor_done(&c));
		for (ssize_t i = 0; i < n; i++)
			push(out, buf[i].first, buf[i].npages);
		assert_true(++calls < 100000000);
	}
	/* Done cursors stay done and write nothing. */
	assert_int_equal(sl_bitmap_scan(w, npages, base, (gap || max_len) ? &o : NULL, &c, buf, 8), 0);
}

static void expect_equal(const struct ranges *got, const struct ranges *want, const char *what)
{
	if (got->n != want->n)
		fail_msg("%s: %zu ranges, expected %zu (seed state %#llx)", what, got->n, want->n,
			 (unsigned long long)rng_state);
	for (size_t i = 0; i < got->n; i++) {
		if (got->r[i].first != want->r[i].first || got->r[i].npages != want->r[i].npages)
			fail_msg("%s: range %zu is (%llu,+%llu), expected (%llu,+%llu)", what, i,
				 (unsigned long long)got->r[i].first,
				 (unsigned long long)got->r[i].npages,
				 (unsigned long long)want->r[i].first,
				 (unsigned long long)want->r[i].npages);
	}
}

static void check(const uint64_t *w, uint64_t npages, uint64_t base, uint64_t gap,
		  uint64_t max_len, size_t cap, const char *what)
{
	struct ranges got = { 0 }, want = { 0 };

	reference(w, npages, base, gap, max_len, &want);
	scan_all(w, npages, base, gap, max_len, cap, &got);
	expect_equal(&got, &want, what);
	free(got.r);
	free(want.r);
}

/* Forces the ISA of the test's state; skips if the CPU lacks it. */
static void use_isa(void **state)
{
	enum sl_isa isa = (enum sl_isa)(uintptr_t)*state;
	int ret = sl_bitmap_force_isa(isa);

	if (ret == -ENOTSUP) {
		print_message("[  SKIP    ] this CPU or build lacks %s\n", sl_isa_name(isa));
		skip();
	}
	assert_int_equal(ret, 0);
	assert_int_equal(sl_bitmap_isa(), isa);
}

/* ---- exhaustive small cases ------------------------------------------------- */

/* Hand-written cases with exact expected output. */
static void test_cross_word_exact(void **state)
{
	uint64_t w[8] = { 0 };
	struct sl_range out[8];
	struct sl_scan_cursor c;

	use_isa(state);
	/* Pages 60..69 (crosses word 0/1), 128..383 (words 2..5 whole, a full
	 * block for AVX2), 447..449 (crosses 6/7), 511 (the last page). */
	assert_int_equal(sl_bitmap_set_range(w, 512, 60, 10), 0);
	assert_int_equal(sl_bitmap_set_range(w, 512, 128, 256), 0);
	assert_int_equal(sl_bitmap_set_range(w, 512, 447, 3), 0);
	assert_int_equal(sl_bitmap_set_range(w, 512, 511, 1), 0);
	sl_scan_cursor_init(&c);
	assert_int_equal(sl_bitmap_scan(w, 512, 7, NULL, &c, out, 8), 4);
	assert_true(sl_scan_cursor_done(&c));
	assert_int_equal(out[0].first, 67);
	assert_int_equal(out[0].npages, 10);
	assert_int_equal(out[1].first, 135);
	assert_int_equal(out[1].npages, 256);
	assert_int_equal(out[2].first, 454);
	assert_int_equal(out[2].npages, 3);
	assert_int_equal(out[3].first, 518);
	assert_int_equal(out[3].npages, 1);

	/* Gap 60 merges the first two (58 clean pages between); max_len 100
	 * then splits the merged 60..383 into 100, 100, 100, 24. */
	{
		struct sl_scan_opts o = { .size = sizeof(o), .gap = 60, .max_len = 100 };

		sl_scan_cursor_init(&c);
		assert_int_equal(sl_bitmap_scan(w, 512, 0, &o, &c, out, 8), 6);
		assert_true(sl_scan_cursor_done(&c));
		assert_int_equal(out[0].first, 60);
		assert_int_equal(out[0].npages, 100);
		assert_int_equal(out[3].first, 360);
		assert_int_equal(out[3].npages, 24);
		assert_int_equal(out[4].first, 447);
		assert_int_equal(out[4].npages, 3);
		assert_int_equal(out[5].first, 511);
		assert_int_equal(out[5].npages, 1);
	}

	/* Capacity 1: the same four ranges, one per call. */
	sl_scan_cursor_init(&c);
	for (int i = 0; i < 4; i++) {
		static const uint64_t first[4] = { 67, 135, 454, 518 }, len[4] = { 10, 256, 3, 1 };

		assert_false(sl_scan_cursor_done(&c));
		assert_int_equal(sl_bitmap_scan(w, 512, 7, NULL, &c, out, 1), 1);
		assert_int_equal(out[0].first, first[i]);
		assert_int_equal(out[0].npages, len[i]);
	}
	assert_true(sl_scan_cursor_done(&c));
}

/* Extreme options: an unbounded gap merges everything into one range from
 * the first to the last dirty page; max_len 1 gives one range per page;
 * both together, resumed with capacity 3. */
static void test_options_edges(void **state)
{
	uint64_t w[10] = { 0 };
	struct sl_range out[700];
	struct sl_scan_cursor c;
	struct sl_scan_opts all = { .size = sizeof(all), .gap = UINT64_MAX };
	struct sl_scan_opts one = { .size = 0, .max_len = 1 };
	struct sl_scan_opts both = { .size = sizeof(both), .gap = UINT64_MAX, .max_len = 100 };
	uint64_t next = 5;
	ssize_t n;

	use_isa(state);
	w[0] = 1ull << 5;
	w[4] = 0xff00;
	w[9] = 1ull << 40; /* page 616 */
	sl_scan_cursor_init(&c);
	assert_int_equal(sl_bitmap_scan(w, 640, 1, &all, &c, out, 700), 1);
	assert_int_equal(out[0].first, 6);
	assert_int_equal(out[0].npages, 612);
	assert_true(sl_scan_cursor_done(&c));

	sl_scan_cursor_init(&c);
	n = sl_bitmap_scan(w, 640, 0, &one, &c, out, 700);
	assert_int_equal(n, 10);
	assert_int_equal(out[0].first, 5);
	for (int i = 1; i < 9; i++) {
		assert_int_equal(out[i].first, 256 + 8 + i - 1);
		assert_int_equal(out[i].npages, 1);
	}
	assert_int_equal(out[9].first, 616);

	/* 5..616 merged (612 pages), split into 100s: 7 pieces, 3 per call. */
	sl_scan_cursor_init(&c);
	for (int call = 0; call < 3; call++) {
		n = sl_bitmap_scan(w, 640, 0, &both, &c, out, 3);
		assert_int_equal(n, call < 2 ? 3 : 1);
		for (ssize_t i = 0; i < n; i++) {
			assert_int_equal(out[i].first, next);
			assert_int_equal(out[i].npages, next + 100 <= 617 ? 100 : 617 - next);
			next += out[i].npages;
		}
	}
	assert_int_equal(next, 617);
	assert_true(sl_scan_cursor_done(&c));
	assert_int_equal(sl_bitmap_scan(w, 640, 0, &both, &c, out, 3), 0);
}

/* The last partial word: bits past npages are ignored; a run reaching
 * npages ends there. Every npages from 1 to 300 on a full bitmap. */
static void test_last_partial_word(void **state)
{
	uint64_t w[5];
	struct sl_range out[4];
	struct sl_scan_cursor c;

	use_isa(state);
	memset(w, 0xff, sizeof(w));
	for (uint64_t np = 1; np <= 300; np++) {
		sl_scan_cursor_init(&c);
		assert_int_equal(sl_bitmap_scan(w, np, 5, NULL, &c, out, 4), 1);
		assert_int_equal(out[0].first, 5);
		assert_int_equal(out[0].npages, np);
		assert_true(sl_scan_cursor_done(&c));
	}
	/* Only garbage past npages: nothing. */
	memset(w, 0, sizeof(w));
	w[1] = ~0ull << 20;
	sl_scan_cursor_init(&c);
	assert_int_equal(sl_bitmap_scan(w, 84, 0, NULL, &c, out, 4), 0);
	assert_true(sl_scan_cursor_done(&c));
	/* npages == 0 is an empty, finished scan (words may be NULL). */
	sl_scan_cursor_init(&c);
	assert_int_equal(sl_bitmap_scan(NULL, 0, 0, NULL, &c, out, 4), 0);
	assert_true(sl_scan_cursor_done(&c));
}

/* ---- randomized property tests ---------------------------------------------- */

/* Fills n words with density p (per bit) or, for kind 1, with runs whose
 * lengths are geometric around 1/p, so long runs cross words and blocks. */
static void fill_random(uint64_t *w, uint64_t nwords, double p, int kind)
{
	if (kind == 1) {
		uint64_t i = 0, npages = nwords * 64;
		int on = rnd() & 1;
		double mean_on = 1 + rnd_below(300), mean_off = mean_on * (1 - p) / (p > 0 ? p : 1e-9);

		memset(w, 0, nwords * 8);
		while (i < npages) {
			double m = on ? mean_on : mean_off;
			uint64_t len = 1 + (uint64_t)((double)rnd_below(1u << 20) / (1u << 20) * 2 * m);

			if (len > npages - i)
				len = npages - i;
			if (on)
				sl_bitmap_set_range(w, npages, i, len);
			i += len;
			on = !on;
		}
		return;
	}
	if (p >= 1.0) {
		memset(w, 0xff, nwords * 8);
		return;
	}
	if (p < 0.02 || p > 0.98) {
		/* Sparse (or sparse holes): place the bits directly. */
		uint64_t k = (uint64_t)((p < 0.5 ? p : 1 - p) * (double)nwords * 64 + 0.5);

		memset(w, p < 0.5 ? 0 : 0xff, nwords * 8);
		if (!k && rnd() % 2)
			k = 1;
		for (uint64_t j = 0; j < k; j++) {
			uint64_t b = rnd_below(nwords * 64);

			w[b / 64] ^= 1ull << (b % 64);
		}
		return;
	}
	{
		uint64_t thr = (uint64_t)(p * 65536);

		for (uint64_t i = 0; i < nwords; i++) {
			uint64_t v = 0;

			for (int b = 0; b < 64; b += 4) {
				uint64_t r = rnd();

				for (int q = 0; q < 4; q++)
					v |= (uint64_t)(((r >> (16 * q)) & 0xffff) < thr) << (b + q);
			}
			w[i] = v;
		}
	}
}

static uint64_t supported_paths(void)
{
	return 1 + sl_bitmap_isa_supported(SL_ISA_AVX2) + sl_bitmap_isa_supported(SL_ISA_AVX512);
}

static void test_random(void **state)
{
	static const double dens[] = { 0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5,
				       0.75, 0.9, 0.99, 0.9999, 1.0 };
	uint64_t total_words = 0;
	int iter = 0;

	use_isa(state);
	rng_state = 0x5eed0000ull + (uint64_t)(uintptr_t)*state;
	/* Over a million words in all, shared among the paths this CPU has,
	 * so the test stays quick under ASan. */
	while (total_words < 1100000 / supported_paths()) {
		uint64_t nwords = 1 + rnd_below(rnd() % 4 ? 600 : 20000);
		uint64_t npages = (nwords - 1) * 64 + 1 + rnd_below(64);
		uint64_t *w = malloc(nwords * 8);
		double p = dens[rnd_below(sizeof(dens) / sizeof(dens[0]))];
		uint64_t base, gap = 0, max_len = 0;
		size_t cap;

		assert_non_null(w);
		fill_random(w, nwords, p, (int)(rnd() % 3 == 0));
		/* Base pages: zero, ordinary, or right at the top of the range. */
		switch (rnd() % 3) {
		case 0: base = 0; break;
		case 1: base = rnd() >> 20; break;
		default: base = UINT64_MAX - npages; break;
		}
		if (rnd() % 2) {
			gap = rnd() % 2 ? rnd_below(4) : rnd_below(200);
			max_len = rnd() % 2 ? 0 : 1 + rnd_below(rnd() % 2 ? 8 : 500);
		}
		switch (rnd() % 4) {
		case 0: cap = 1; break;
		case 1: cap = 1 + rnd_below(40); break;
		case 2: cap = 0; break; /* random per call */
		default: cap = 4096; break;
		}
		/* Tiny capacities on huge range counts take long under ASan: only
		 * on the smaller bitmaps. */
		if (cap && cap < 8 && nwords > 600)
			cap = 4096;
		check(w, npages, base, gap, max_len, cap, "random");
		total_words += nwords;
		iter++;
		free(w);
	}
	print_message("[          ] %s: %d bitmaps, %llu words\n", sl_isa_name(sl_bitmap_isa()),
		      iter, (unsigned long long)total_words);
}

/* sl_bitmap_scan_wordrun (the benchmark baseline) gives the same ranges. */
static void test_wordrun_matches(void **state)
{
	(void)state;
	for (int it = 0; it < 200; it++) {
		uint64_t nwords = 1 + rnd_below(300), npages = nwords * 64 - rnd_below(64);
		uint64_t *w = malloc(nwords * 8);
		struct ranges want = { 0 }, got = { 0 };
		struct sl_scan_cursor c;
		struct sl_range buf[64];
		size_t cap = it % 2 ? 1 + rnd_below(5) : 64;

		assert_non_null(w);
		fill_random(w, nwords, it % 3 ? 0.3 : 0.01, it % 2);
		reference(w, npages, 42, 0, 0, &want);
		sl_scan_cursor_init(&c);
		while (!sl_scan_cursor_done(&c)) {
			ssize_t n = sl_bitmap_scan_wordrun(w, npages, 42, &c, buf, cap);

			assert_true(n > 0 || sl_scan_cursor_done(&c));
			for (ssize_t i = 0; i < n; i++)
				push(&got, buf[i].first, buf[i].npages);
		}
		expect_equal(&got, &want, "wordrun");
		free(got.r);
		free(want.r);
		free(w);
	}
}

/* ---- bad arguments ---------------------------------------------------------- */

static void test_bad_args(void **state)
{
	uint64_t w[2] = { 0xf0f0, 0 };
	struct sl_range out[4];
	struct sl_scan_cursor c, raw;
	struct sl_scan_opts o = { .size = sizeof(o), .gap = 1 };
	struct sl_scan_opts small = { .size = 1 };

	use_isa(state);
	sl_scan_cursor_init(&c);
	assert_int_equal(sl_bitmap_scan(NULL, 10, 0, NULL, &c, out, 4), -EINVAL);
	assert_int_equal(sl_bitmap_scan(w, 10, 0, NULL, NULL, out, 4), -EINVAL);
	assert_int_equal(sl_bitmap_scan(w, 10, 0, NULL, &c, NULL, 4), -EINVAL);
	assert_int_equal(sl_bitmap_scan(w, 10, 0, NULL, &c, out, 0), -EINVAL);
	assert_int_equal(sl_bitmap_scan(w, 128, UINT64_MAX - 100, NULL, &c, out, 4), -EINVAL);
	assert_int_equal(sl_bitmap_scan(w, 128, UINT64_MAX - 127, NULL, &c, out, 4), -EINVAL);
	/* The highest base that fits: first + npages of every range <= UINT64_MAX. */
	assert_int_equal(sl_bitmap_scan(w, 128, UINT64_MAX - 128, NULL, &c, out, 1), 1);
	assert_int_equal(out[0].first, UINT64_MAX - 128 + 4);
	assert_int_equal(out[0].npages, 4);
	assert_int_equal(sl_bitmap_scan(w, 128, UINT64_MAX - 128, &small, &c, out, 4), -EINVAL);
	/* A cursor reused with other geometry or options. */
	assert_int_equal(sl_bitmap_scan(w, 127, UINT64_MAX - 128, NULL, &c, out, 4), -EINVAL);
	assert_int_equal(sl_bitmap_scan(w, 128, 0, NULL, &c, out, 4), -EINVAL);
	assert_int_equal(sl_bitmap_scan(w, 128, UINT64_MAX - 128, &o, &c, out, 4), -EINVAL);
	/* ... and still usable with the right ones. */
	assert_int_equal(sl_bitmap_scan(w, 128, UINT64_MAX - 128, NULL, &c, out, 4), 1);
	assert_int_equal(out[0].first, UINT64_MAX - 128 + 12);
	assert_true(sl_scan_cursor_done(&c));
	/* A cursor never initialised. */
	memset(&raw, 0x5a, sizeof(raw));
	assert_int_equal(sl_bitmap_scan(w, 128, 0, NULL, &raw, out, 4), -EINVAL);
	assert_false(sl_scan_cursor_done(&raw));
	assert_false(sl_scan_cursor_done(NULL));
	assert_int_equal(sl_bitmap_scan_wordrun(NULL, 1, 0, &c, out, 4), -EINVAL);
	assert_int_equal(sl_bitmap_scan_wordrun(w, 1, 0, &c, out, 0), -EINVAL);
	/* The ISA switch. */
	assert_int_equal(sl_bitmap_force_isa((enum sl_isa)7), -EINVAL);
	assert_string_equal(sl_isa_name((enum sl_isa)7), "unknown");
}

#define ISA(t, isa) \
	cmocka_unit_test_prestate(t, (void *)(uintptr_t)(isa))
#define ALL_ISAS(t) ISA(t, SL_ISA_SCALAR), ISA(t, SL_ISA_AVX2), ISA(t, SL_ISA_AVX512)

int main(void)
{
	const struct CMUnitTest tests[] = {
		ALL_ISAS(test_cross_word_exact),
		ALL_ISAS(test_last_partial_word),
		ALL_ISAS(test_options_edges),
		ALL_ISAS(test_bad_args),
		ALL_ISAS(test_random),
		cmocka_unit_test(test_wordrun_matches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
