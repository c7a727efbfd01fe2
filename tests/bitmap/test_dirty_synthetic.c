/* SPDX-License-Identifier: MIT */
/*
 * Synthetic dirty source: rate, the distribution of each pattern, determinism,
 * config checks. Time is simulated (a counter the test advances), never slept.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sl_dirty.h"

struct sim_clock {
	uint64_t now;
};

static uint64_t sim_now(void *ctx)
{
	return ((struct sim_clock *)ctx)->now;
}

static struct sl_dirty_synthetic_config base_cfg(struct sim_clock *clk, uint64_t npages,
						 enum sl_synth_pattern pattern, double rate)
{
	struct sl_dirty_synthetic_config c = {
		.size = sizeof(c),
		.npages = npages,
		.pages_per_sec = rate,
		.pattern = pattern,
		.hot_frac = 0.1,
		.hot_share = 0.9,
		.zipf_s = 1.0,
		.seed = 42,
		.clock_ns = sim_now,
		.clock_ctx = clk,
	};
	return c;
}

static struct sl_dirty_source *make(const struct sl_dirty_synthetic_config *c)
{
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb = { { 0 } };

	assert_int_equal(sl_dirty_synthetic_new(c, &src, &eb), 0);
	assert_non_null(src);
	assert_int_equal(sl_dirty_start(src), 0);
	return src;
}

static uint64_t popcount_bits(const uint64_t *bm, uint64_t first, uint64_t end)
{
	uint64_t c = 0;

	for (uint64_t p = first; p < end; p++)
		c += bm[p / 64] >> (p % 64) & 1;
	return c;
}

static uint64_t popcount_all(const uint64_t *bm, uint64_t npages)
{
	uint64_t c = 0;

	for (uint64_t i = 0; i < (npages + 63) / 64; i++)
		c += (uint64_t)__builtin_popcountll(bm[i]);
	return c;
}

static bool bit(const uint64_t *bm, uint64_t p)
{
	return bm[p / 64] >> (p % 64) & 1;
}

/* ---- rate ---------------------------------------------------------------- */

/* 10 simulated seconds at a given tick; returns the sum of pages the syncs
 * reported (each into a fresh bitmap) and checks the model's write count. */
static uint64_t run_10s(enum sl_synth_pattern pat, uint64_t npages, double rate,
			uint64_t tick_ns)
{
	struct sim_clock clk = { 1000 };
	struct sl_dirty_synthetic_config c = base_cfg(&clk, npages, pat, rate);
	struct sl_dirty_source *src = make(&c);
	struct sl_dirty_synthetic_stats st;
	struct sl_dirty_counters cnt;
	uint64_t *bm = calloc((npages + 63) / 64, 8), total = 0, end = clk.now + 10000000000ull;

	assert_non_null(bm);
	while (clk.now < end) {
		int64_t n;

		clk.now = SL_MIN(clk.now + tick_ns, end);
		memset(bm, 0, (npages + 63) / 64 * 8);
		n = sl_dirty_sync(src, bm);
		assert_true(n >= 0);
		/* Into a zeroed bitmap: the count is exactly the bits set. */
		assert_int_equal((uint64_t)n, popcount_all(bm, npages));
		total += (uint64_t)n;
	}
	assert_int_equal(sl_dirty_synthetic_get_stats(src, &st), 0);
	assert_int_equal(st.sim_ns, 10000000000ull);
	/* Writes = rate x time, exact up to the carried fraction. */
	assert_true(fabs((double)st.writes - rate * 10.0) <= 1.0);
	assert_int_equal(st.writes_dropped, 0);
	sl_dirty_get_counters(src, &cnt);
	assert_int_equal(cnt.pages_found, total);
	sl_dirty_free(&src);
	assert_null(src);
	free(bm);
	return total;
}

static void test_rate_within_5pct(void **state)
{
	(void)state;
	/* 16 GiB guest (4M pages); 200k page writes/s (800 MB/s). Sequential
	 * never repeats a page within a sweep, so its distinct pages per second
	 * ARE its writes; uniform over 4M pages repeats ~0.24 % per sync. */
	uint64_t seq = run_10s(SL_SYNTH_SEQUENTIAL, 1ull << 22, 200000.0, 100000000ull);
	uint64_t uni = run_10s(SL_SYNTH_UNIFORM, 1ull << 22, 200000.0, 100000000ull);
	/* Odd tick (37 ms) and rate: the carried fraction keeps the total. */
	uint64_t seq2 = run_10s(SL_SYNTH_SEQUENTIAL, 1ull << 20, 12345.6, 37000000ull);

	assert_int_equal(seq, 2000000);
	assert_true(fabs((double)uni / 10.0 - 200000.0) <= 0.05 * 200000.0);
	assert_true(uni <= 2000000);
	assert_true(fabs((double)seq2 - 123456.0) <= 1.0);
	/* Hot/cold and Zipf repeat pages on purpose; their write count (checked
	 * inside run_10s) is the rate, their distinct pages are fewer. */
	assert_true(run_10s(SL_SYNTH_HOTCOLD, 1ull << 20, 50000.0, 100000000ull) < 500000);
	assert_true(run_10s(SL_SYNTH_ZIPF, 1ull << 20, 50000.0, 100000000ull) < 500000);
}

/* ---- sequential ---------------------------------------------------------------- */

static void expect_exact(const uint64_t *bm, uint64_t npages, uint64_t a, uint64_t b,
			 uint64_t c, uint64_t d)
{
	/* Set exactly on [a, b) and [c, d). */
	for (uint64_t p = 0; p < npages; p++)
		assert_int_equal(bit(bm, p), (p >= a && p < b) || (p >= c && p < d));
}

static void test_sequential_sweeps_in_order(void **state)
{
	struct sim_clock clk = { 0 };
	struct sl_dirty_synthetic_config c = base_cfg(&clk, 2000, SL_SYNTH_SEQUENTIAL, 300.0);
	struct sl_dirty_source *src;
	uint64_t bm[32];

	(void)state;
	c.wss_first = 100;
	c.wss_pages = 1000;
	src = make(&c);
	for (int i = 0; i < 3; i++) {
		memset(bm, 0, sizeof(bm));
		clk.now += 1000000000ull;
		assert_int_equal(sl_dirty_sync(src, bm), 300);
		expect_exact(bm, 2000, 100 + 300 * (uint64_t)i, 400 + 300 * (uint64_t)i, 0, 0);
	}
	/* Wraps: [1000, 1100) then the start of the working set again. */
	memset(bm, 0, sizeof(bm));
	clk.now += 1000000000ull;
	assert_int_equal(sl_dirty_sync(src, bm), 300);
	expect_exact(bm, 2000, 1000, 1100, 100, 300);
	/* No time, no writes. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	expect_exact(bm, 2000, 0, 0, 0, 0);
	/* More writes than pages: the whole working set, nothing outside. */
	clk.now += 10000000000ull;
	assert_int_equal(sl_dirty_sync(src, bm), 1000);
	expect_exact(bm, 2000, 100, 1100, 0, 0);
	/* OR semantics: already-set bits stay, and still count. */
	clk.now += 1000000000ull;
	assert_int_equal(sl_dirty_sync(src, bm), 300);
	expect_exact(bm, 2000, 100, 1100, 0, 0);
	sl_dirty_free(&src);
}

/* ---- uniform ---------------------------------------------------------------- */

static void test_uniform_chi_square(void **state)
{
	/* 200 writes per sync over 4000 pages: below W/16, so one draw per
	 * write (the bulk path is test_uniform_bulk's). */
	enum { W = 4000, SYNCS = 5000, PER = 200, NP = 4200, FIRST = 150 };
	struct sim_clock clk = { 0 };
	struct sl_dirty_synthetic_config c = base_cfg(&clk, NP, SL_SYNTH_UNIFORM, PER);
	struct sl_dirty_source *src;
	uint64_t bm[NP / 64 + 1], *hits = calloc(W, sizeof(*hits));
	double q = 1.0 - pow(1.0 - 1.0 / W, PER), e = SYNCS * q, chi2 = 0;
	double df = W - 1, sd = sqrt(2 * df);

	(void)state;
	c.wss_first = FIRST;
	c.wss_pages = W;
	src = make(&c);
	memset(bm, 0, sizeof(bm));
	for (int i = 0; i < SYNCS; i++) {
		clk.now += 1000000000ull;
		assert_true(sl_dirty_sync(src, bm) > 0);
		for (size_t w = 0; w < SL_ARRAY_SIZE(bm); w++) {
			for (uint64_t x = bm[w]; x; x &= x - 1) {
				uint64_t p = w * 64 + (uint64_t)__builtin_ctzll(x);

				assert_true(p >= FIRST && p < FIRST + W);
				hits[p - FIRST]++;
			}
			bm[w] = 0;
		}
	}
	/* Per page, the syncs that hit it ~ Binomial(SYNCS, q); the normalised
	 * sum over the pages is ~ chi-square with ~W-1 degrees of freedom:
	 * accept within 5 sd. */
	for (int i = 0; i < W; i++)
		chi2 += ((double)hits[i] - e) * ((double)hits[i] - e) / (e * (1.0 - q));
	print_message("uniform chi-square %.1f (%.0f +- %.0f)\n", chi2, df, sd);
	assert_true(chi2 > df - 5 * sd && chi2 < df + 5 * sd);
	sl_dirty_free(&src);
	free(hits);
}

/* Many writes at once take the per-page path: each page dirty with
 * q = 1 - (1 - 1/W)^n, evenly over the working set. */
static void test_uniform_bulk(void **state)
{
	enum { W = 1 << 20 };
	struct sim_clock clk = { 0 };
	struct sl_dirty_synthetic_config c = base_cfg(&clk, W + 100, SL_SYNTH_UNIFORM, W);
	struct sl_dirty_source *src;
	uint64_t *bm = calloc((W + 100 + 63) / 64, 8);
	double q = -expm1((double)W * log1p(-1.0 / W)), sd = sqrt(W * q * (1 - q));
	int64_t n;

	(void)state;
	c.wss_first = 37; /* unaligned edges */
	c.wss_pages = W;
	src = make(&c);
	clk.now = 1000000000ull;
	n = sl_dirty_sync(src, bm);
	assert_true(fabs((double)n - W * q) < 5 * sd);
	assert_int_equal(popcount_bits(bm, 0, 37), 0);
	assert_int_equal(popcount_bits(bm, 37 + W, W + 100), 0);
	for (int b = 0; b < 16; b++) {
		uint64_t a = 37 + (uint64_t)b * (W / 16);
		double f = (double)popcount_bits(bm, a, a + W / 16) / (W / 16);

		assert_true(fabs(f - q) < 0.01); /* sd per block 0.0019 */
	}
	sl_dirty_free(&src);
	free(bm);
}

/* ---- hot/cold ------------------------------------------------------------------ */

static void test_hotcold_share(void **state)
{
	/* 10M-page working set, 1M hot: 2000 writes per sync repeat < 0.1 %, so
	 * distinct pages measure the write split. */
	enum { W = 10000000, HOT = 1000000 };
	struct sim_clock clk = { 0 };
	struct sl_dirty_synthetic_config c = base_cfg(&clk, W, SL_SYNTH_HOTCOLD, 2000.0);
	struct sl_dirty_source *src = make(&c);
	uint64_t *bm = calloc(W / 64 + 1, 8), hot = 0, all = 0;
	double share;

	(void)state;
	for (int i = 0; i < 250; i++) {
		clk.now += 1000000000ull;
		assert_true(sl_dirty_sync(src, bm) > 0);
		/* Count and reset only the words that can be set, to stay fast. */
		for (uint64_t w = 0; w < W / 64 + 1; w++) {
			if (!bm[w])
				continue;
			all += (uint64_t)__builtin_popcountll(bm[w]);
			if (w < HOT / 64)
				hot += (uint64_t)__builtin_popcountll(bm[w]);
			bm[w] = 0;
		}
	}
	share = (double)hot / (double)all;
	print_message("hot/cold: %.4f of %llu writes to the hot 10 %%\n", share,
		      (unsigned long long)all);
	assert_true(all > 499000 && all <= 500000);
	assert_true(fabs(share - 0.9) < 0.005); /* sd 0.0004 */
	sl_dirty_free(&src);

	/* Bulk: 10M writes over 1M pages: the hot 100k all dirty (q = 1 - e^-90),
	 * the cold 900k at q = 1 - e^(-1M/900k) = 0.6708. */
	{
		struct sl_dirty_synthetic_config c2 = base_cfg(&clk, 1 << 20, SL_SYNTH_HOTCOLD, 1e7);
		uint64_t hp = 104858; /* round(0.1 * 2^20) */
		double qc = -expm1(-1e6 / (double)((1 << 20) - hp)), f;

		clk.now = 0;
		src = make(&c2);
		memset(bm, 0, (1 << 20) / 8);
		clk.now = 1000000000ull;
		assert_true(sl_dirty_sync(src, bm) > 0);
		assert_int_equal(popcount_bits(bm, 0, hp), hp);
		f = (double)popcount_bits(bm, hp, 1 << 20) / (double)((1 << 20) - hp);
		/* nc ~ Binomial(1e7, 0.1) -> q in 0.6708 +- 0.0002; sd of f 0.0005 */
		assert_true(fabs(f - qc) < 0.005);
		sl_dirty_free(&src);
	}
	free(bm);
}

/* ---- Zipf ------------------------------------------------------------------------ */

static double zipf_total(double s, uint64_t n)
{
	double t = 0;

	for (uint64_t k = n; k >= 1; k--)
		t += pow((double)k, -s);
	return t;
}

static void zipf_slope(double s)
{
	enum { W = 2000, DRAWS = 200000 };
	struct sim_clock clk = { 0 };
	struct sl_dirty_synthetic_config c = base_cfg(&clk, W, SL_SYNTH_ZIPF, 1.0);
	struct sl_dirty_source *src;
	uint64_t bm[W / 64 + 1] = { 0 }, *cnt = calloc(W, sizeof(*cnt));
	double sx = 0, sy = 0, sxx = 0, sxy = 0, slope, h = zipf_total(s, W), e1;
	int m = 100;

	c.zipf_s = s;
	src = make(&c);
	/* One write per sync: each sync reports exactly the page written. */
	for (int i = 0; i < DRAWS; i++) {
		clk.now += 1000000000ull;
		assert_int_equal(sl_dirty_sync(src, bm), 1);
		for (int w = 0; w < W / 64 + 1; w++) {
			if (bm[w]) {
				cnt[w * 64 + __builtin_ctzll(bm[w])]++;
				bm[w] = 0;
			}
		}
	}
	/* Least squares of log(count) on log(rank) over ranks 1..100. */
	for (int k = 1; k <= m; k++) {
		double x = log(k), y = log((double)cnt[k - 1]);

		sx += x;
		sy += y;
		sxx += x * x;
		sxy += x * y;
	}
	slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
	e1 = DRAWS / h;
	print_message("zipf s=%.2f: slope %.3f, rank 1 %llu (expected %.0f)\n", s, slope,
		      (unsigned long long)cnt[0], e1);
	assert_true(fabs(slope + s) < 0.05);
	assert_true(fabs((double)cnt[0] - e1) < 5 * sqrt(e1));
	sl_dirty_free(&src);
	free(cnt);
}

static void test_zipf_rank_frequency(void **state)
{
	(void)state;
	zipf_slope(1.0);
	zipf_slope(0.8);
	zipf_slope(1.3);
}

/* Many writes per sync: the prefix-skipping draw path (n < W/32) and the
 * per-page bulk path (n >= W/32) must both give the expected number of
 * distinct pages, sum_k 1 - (1 - p_k)^n. */
static void zipf_distinct(uint64_t n, uint64_t W, double s)
{
	struct sim_clock clk = { 0 };
	struct sl_dirty_synthetic_config c = base_cfg(&clk, W, SL_SYNTH_ZIPF, (double)n);
	struct sl_dirty_source *src;
	uint64_t *bm = calloc(W / 64 + 1, 8);
	double h = zipf_total(s, W), e = 0, var = 0;
	int64_t got;
	struct sl_dirty_synthetic_stats st;

	c.zipf_s = s;
	c.seed = 12345;
	src = make(&c);
	for (uint64_t k = 1; k <= W; k++) {
		double q = -expm1((double)n * log1p(-pow((double)k, -s) / h));

		e += q;
		var += q * (1 - q);
	}
	clk.now = 1000000000ull;
	got = sl_dirty_sync(src, bm);
	print_message("zipf n=%llu W=%llu: %lld distinct, expected %.0f +- %.0f\n",
		      (unsigned long long)n, (unsigned long long)W, (long long)got, e, sqrt(var));
	assert_true(fabs((double)got - e) < 5 * sqrt(var) + 0.002 * e);
	assert_int_equal(sl_dirty_synthetic_get_stats(src, &st), 0);
	assert_int_equal(st.writes, n);
	assert_int_equal(st.writes_dropped, 0);
	sl_dirty_free(&src);
	free(bm);
}

static void test_zipf_many_writes(void **state)
{
	(void)state;
	zipf_distinct(20000, 1 << 20, 1.0);     /* draws, prefix skipping */
	zipf_distinct(30000, 1 << 20, 0.8);
	zipf_distinct(200000, 1 << 20, 1.0);    /* bulk */
	zipf_distinct(5000000, 1 << 20, 1.0);   /* bulk, >> pages */
	zipf_distinct(1000000, 1 << 20, 1.5);

	/* Extreme exponents: practically every write hits rank 1 (P(rank 2) is
	 * 2^-50 at s = 50); both paths finish at once and report page 0. */
	for (int i = 0; i < 4; i++) {
		struct sim_clock clk = { 0 };
		struct sl_dirty_synthetic_config c =
			base_cfg(&clk, 1 << 20, SL_SYNTH_ZIPF, i % 2 ? 1e6 : 1000.0);
		struct sl_dirty_source *src;
		uint64_t *bm = calloc((1 << 20) / 64, 8);

		c.zipf_s = i < 2 ? 50.0 : 100.0;
		src = make(&c);
		clk.now = 1000000000ull;
		assert_int_equal(sl_dirty_sync(src, bm), 1);
		assert_int_equal(bm[0], 1);
		sl_dirty_free(&src);
		free(bm);
	}
}

/* ---- determinism, big guests, bad input ------------------------------------------ */

static void test_same_seed_same_syncs(void **state)
{
	enum { NP = 100000 };
	enum sl_synth_pattern pats[] = { SL_SYNTH_UNIFORM, SL_SYNTH_HOTCOLD, SL_SYNTH_ZIPF };
	uint64_t a[NP / 64 + 1], b[NP / 64 + 1];

	(void)state;
	for (size_t p = 0; p < SL_ARRAY_SIZE(pats); p++) {
		struct sim_clock ca = { 0 }, cb = { 0 }, cc = { 0 };
		struct sl_dirty_synthetic_config c1 = base_cfg(&ca, NP, pats[p], 30000.0);
		struct sl_dirty_synthetic_config c2 = base_cfg(&cb, NP, pats[p], 30000.0);
		struct sl_dirty_synthetic_config c3 = base_cfg(&cc, NP, pats[p], 30000.0);
		struct sl_dirty_source *s1, *s2, *s3;
		bool differs = false;

		c3.seed = 43;
		s1 = make(&c1);
		s2 = make(&c2);
		s3 = make(&c3);
		for (int i = 0; i < 20; i++) {
			uint64_t dt = 10000000ull * (uint64_t)(1 + i % 7);
			int64_t n1, n2;

			ca.now += dt;
			cb.now += dt;
			cc.now += dt;
			memset(a, 0, sizeof(a));
			memset(b, 0, sizeof(b));
			n1 = sl_dirty_sync(s1, a);
			n2 = sl_dirty_sync(s2, b);
			assert_int_equal(n1, n2);
			assert_memory_equal(a, b, sizeof(a));
			memset(b, 0, sizeof(b));
			assert_true(sl_dirty_sync(s3, b) >= 0);
			differs |= memcmp(a, b, sizeof(a)) != 0;
		}
		assert_true(differs);
		sl_dirty_free(&s1);
		sl_dirty_free(&s2);
		sl_dirty_free(&s3);
	}
}

/* A big guest: 64 GiB (16M pages) by default (16 GiB under ASan), SL_SYNTH_PAGES=268435456 for
 * 1 TiB (32 MiB bitmap). One second at 2.5M writes/s, then a 10 s interval
 * (like a migration's first pass) with more writes than pages: the bulk
 * paths. Prints the time per sync beside a memset of the same bitmap (what
 * any consumer pays to touch it), for docs/results.md. */
static void test_large_guest(void **state)
{
	const char *env = getenv("SL_SYNTH_PAGES");
#ifdef __SANITIZE_ADDRESS__
	const uint64_t np = env ? strtoull(env, NULL, 0) : 1ull << 22; /* ASan: 16 GiB */
#else
	const uint64_t np = env ? strtoull(env, NULL, 0) : 1ull << 24;
#endif
	enum sl_synth_pattern pats[] = { SL_SYNTH_SEQUENTIAL, SL_SYNTH_UNIFORM, SL_SYNTH_HOTCOLD,
					 SL_SYNTH_ZIPF };
	const char *names[] = { "sequential", "uniform", "hotcold", "zipf" };
	uint64_t *bm = calloc(np / 64 + 1, 8), t0, t_memset;

	(void)state;
	assert_non_null(bm);
	assert_true(np >= 1u << 20);
	memset(bm, 0, (np / 64 + 1) * 8); /* fault the pages in first */
	t0 = sl_now_ns();
	memset(bm, 0x5a, (np / 64 + 1) * 8);
	t_memset = sl_now_ns() - t0;
	for (size_t p = 0; p < SL_ARRAY_SIZE(pats); p++) {
		struct sim_clock clk = { 0 };
		struct sl_dirty_synthetic_config c = base_cfg(&clk, np, pats[p], 2500000.0);
		struct sl_dirty_source *src = make(&c);
		struct sl_dirty_synthetic_stats st;
		const double writes2 = 2.5e6 * 10.0 * (double)np / (double)(1u << 24);
		uint64_t t1, t2;
		int64_t n1, n2;

		memset(bm, 0, (np / 64 + 1) * 8);
		clk.now = 1000000000ull;
		t0 = sl_now_ns();
		n1 = sl_dirty_sync(src, bm);
		t1 = sl_now_ns() - t0;
		assert_true(n1 > 0 && n1 <= 2500000);
		if (pats[p] == SL_SYNTH_SEQUENTIAL)
			assert_int_equal(n1, 2500000);
		if (pats[p] == SL_SYNTH_UNIFORM) { /* ~190k repeats expected at 16M */
			double q = -expm1(2.5e6 * log1p(-1.0 / (double)np));

			assert_true(fabs((double)n1 - (double)np * q) <
				    5.0 * sqrt((double)np * q * (1.0 - q)));
		}
		/* Scale the rate so the second interval always writes 1.49x the
		 * guest's pages. */
		sl_dirty_free(&src);
		c.pages_per_sec = writes2 / 10.0;
		clk.now = 0;
		src = make(&c);
		memset(bm, 0, (np / 64 + 1) * 8);
		clk.now = 10000000000ull;
		t0 = sl_now_ns();
		n2 = sl_dirty_sync(src, bm);
		t2 = sl_now_ns() - t0;
		if (pats[p] == SL_SYNTH_SEQUENTIAL)
			assert_int_equal(n2, np);
		if (pats[p] == SL_SYNTH_UNIFORM) {
			double q = -expm1(writes2 * log1p(-1.0 / (double)np));

			assert_true(fabs((double)n2 - q * (double)np) < 0.001 * (double)np);
		}
		assert_true(n2 > 0);
		assert_int_equal(sl_dirty_synthetic_get_stats(src, &st), 0);
		assert_true(fabs((double)st.writes - writes2) <= 1.0);
		assert_int_equal(st.writes_dropped, 0);
		print_message("%llu pages %-10s: 2.5M writes %7.2f ms (%lld dirty); %.3gM writes "
			      "%7.2f ms (%lld dirty); memset of the bitmap %.2f ms\n",
			      (unsigned long long)np, names[p], (double)t1 / 1e6, (long long)n1,
			      writes2 / 1e6, (double)t2 / 1e6, (long long)n2, (double)t_memset / 1e6);
		sl_dirty_free(&src);
	}
	free(bm);
}

static void test_bad_config(void **state)
{
	struct sim_clock clk = { 5 };
	struct sl_dirty_synthetic_config c;
	struct sl_dirty_source *src = (struct sl_dirty_source *)&clk;
	struct sl_errbuf eb;
	uint64_t bm[2] = { 0 };

	(void)state;
#define EXPECT_EINVAL(mutate)                                                             \
	do {                                                                              \
		c = base_cfg(&clk, 100, SL_SYNTH_HOTCOLD, 10.0);                          \
		mutate;                                                                   \
		memset(&eb, 0, sizeof(eb));                                               \
		assert_int_equal(sl_dirty_synthetic_new(&c, &src, &eb), -EINVAL);         \
		assert_null(src);                                                         \
		assert_true(strlen(eb.msg) > 0);                                          \
		src = (struct sl_dirty_source *)&clk;                                     \
	} while (0)
	EXPECT_EINVAL(c.size = 8);
	EXPECT_EINVAL(c.npages = 0);
	EXPECT_EINVAL(c.wss_first = 100);
	EXPECT_EINVAL((c.wss_first = 50, c.wss_pages = 51));
	EXPECT_EINVAL(c.wss_pages = UINT64_MAX);
	EXPECT_EINVAL(c.pages_per_sec = -1.0);
	EXPECT_EINVAL(c.pages_per_sec = NAN);
	EXPECT_EINVAL(c.pages_per_sec = INFINITY);
	EXPECT_EINVAL(c.pattern = (enum sl_synth_pattern)99);
	EXPECT_EINVAL(c.hot_frac = 0.0);
	EXPECT_EINVAL(c.hot_frac = 1.5);
	EXPECT_EINVAL(c.hot_share = -0.1);
	EXPECT_EINVAL((c.pattern = SL_SYNTH_ZIPF, c.zipf_s = 0.0));
	EXPECT_EINVAL((c.pattern = SL_SYNTH_ZIPF, c.zipf_s = NAN));
	assert_int_equal(sl_dirty_synthetic_new(NULL, &src, NULL), -EINVAL);

	/* wss_pages 0 = the rest of the region; sync before start; clock going
	 * backwards; stats of a non-synthetic pointer. */
	c = base_cfg(&clk, 100, SL_SYNTH_SEQUENTIAL, 1e9);
	c.wss_first = 90;
	assert_int_equal(sl_dirty_synthetic_new(&c, &src, &eb), 0);
	assert_int_equal(sl_dirty_sync(src, bm), -EINVAL);
	assert_int_equal(sl_dirty_kind(src), SL_DIRTY_SYNTHETIC);
	assert_int_equal(sl_dirty_caps(src), SL_DIRTY_CAP_SIMULATED);
	assert_int_equal(sl_dirty_npages(src), 100);
	assert_int_equal(sl_dirty_start(src), 0);
	clk.now = 1000;
	assert_int_equal(sl_dirty_sync(src, bm), 10);
	assert_int_equal(bm[0], 0);
	assert_int_equal(bm[1], ((1ull << 36) - 1) & ~((1ull << 26) - 1));
	clk.now = 999;
	assert_int_equal(sl_dirty_sync(src, bm), -EINVAL);
	assert_non_null(strstr(sl_dirty_last_error(src), "backwards"));
	assert_int_equal(sl_dirty_clear(src, 0, 64), 0); /* not manual: no effect */
	sl_dirty_free(&src);
}

/* clock_ns NULL: the monotonic clock. Whatever time passed, the writes are
 * rate x the time the source saw, and sequential writes are all distinct. */
static void test_real_clock(void **state)
{
	struct sl_dirty_synthetic_config c = base_cfg(NULL, 1 << 20, SL_SYNTH_SEQUENTIAL, 1e6);
	struct sl_dirty_source *src;
	struct sl_dirty_synthetic_stats st;
	uint64_t *bm = calloc((1 << 20) / 64, 8), total = 0, t0;

	(void)state;
	c.clock_ns = NULL;
	c.clock_ctx = NULL;
	src = make(&c);
	t0 = sl_now_ns();
	while (sl_now_ns() - t0 < 2000000) { /* ~2 ms of real time, 3+ syncs */
		int64_t n = sl_dirty_sync(src, bm);

		assert_true(n >= 0);
		total += (uint64_t)n;
	}
	total += (uint64_t)sl_dirty_sync(src, bm); /* after the 2 ms for sure */
	assert_int_equal(sl_dirty_synthetic_get_stats(src, &st), 0);
	assert_true(st.sim_ns >= 2000000);
	assert_true(fabs((double)st.writes - 1e6 * (double)st.sim_ns * 1e-9) <= 1.0);
	assert_int_equal(total, st.writes); /* < 2^20 pages: no wrap, all distinct */
	assert_int_equal(popcount_all(bm, 1 << 20), st.writes);
	sl_dirty_free(&src);
	free(bm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_within_5pct),
		cmocka_unit_test(test_sequential_sweeps_in_order),
		cmocka_unit_test(test_uniform_chi_square),
		cmocka_unit_test(test_uniform_bulk),
		cmocka_unit_test(test_hotcold_share),
		cmocka_unit_test(test_zipf_rank_frequency),
		cmocka_unit_test(test_zipf_many_writes),
		cmocka_unit_test(test_same_seed_same_syncs),
		cmocka_unit_test(test_large_guest),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_real_clock),
	};

	if (getenv("SL_TEST_FILTER")) /* run one test: SL_TEST_FILTER=test_name */
		cmocka_set_test_filter(getenv("SL_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
