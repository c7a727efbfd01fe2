/* SPDX-License-Identifier: MIT */
/*
 * dirty_synthetic.c — a simulated guest: page writes over (simulated) time
 * with a chosen pattern, reported as a dirty log. Lets the engine study guests
 * far larger than this machine (64 GiB - 1 TiB = 16M - 256M pages).
 *
 * Model: between two syncs that are dt apart, the guest performs
 * n = pages_per_sec * dt page writes (the fraction is carried to the next
 * sync, so the total over any run is exact to one write). Each write picks a
 * page of the working set by the pattern; a write to a page already written
 * in this interval changes nothing. The sync reports the distinct pages.
 *
 * Cost, chosen so that a sync costs about what the engine's own scan of the
 * bitmap costs, whatever the write count (W = working-set pages):
 *   sequential   exact, O(pages set / 64) (range fills);
 *   uniform      n < W/16: one draw per write (exact), batched with
 *                prefetch; otherwise each page is dirty independently with
 *                q = 1 - (1 - 1/W)^n, drawn 64 pages at a time from <= 24
 *                bit-sliced random words (q exact to 2^-25); O(W / 64);
 *   hot/cold     writes split hot/cold by a binomial draw (exact by geometric
 *                gaps while the minority side expects <= 1e5 writes, normal
 *                approximation beyond), then two uniform populations;
 *   Zipf         n < W/32: one rejection-inversion draw per write, where draws
 *                that would land in the prefix of ranks already dirty this
 *                interval are skipped in bulk (a geometric count of them; exact).
 *                n >= W/32: per page q = 1 - (1 - p_rank)^n as for uniform
 *                (gen_zipf_bulk). At most SYNTH_MAX_DRAWS draws per sync (only
 *                reachable past 2^30 pages); writes left then are counted in
 *                writes_dropped and logged.
 * The bulk paths make pages independent, so the distinct-page count has the
 * exact mean but a slightly larger variance than true repeated draws.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sl_bitmap.h"
#include "sl_dirty_internal.h"

/* Zipf: per-sync cap on sampled writes (about 1 s of work on this machine). */
#define SYNTH_MAX_DRAWS (UINT64_C(1) << 25)
/* Uniform: below pages/UNIFORM_LOOP_DIV writes, draw each write. */
#define UNIFORM_LOOP_DIV 16
/* Precision of per-page probabilities in the bulk fills. */
#define Q_BITS 24
#define Q_ONE (UINT64_C(1) << Q_BITS)
/* Zipf: from pages/ZIPF_BULK_DIV writes on, fill per page (gen_zipf_bulk). */
#define ZIPF_BULK_DIV 32
#define ZIPF_EXACT_RANKS 4096
/* Binomial split: exact (geometric gaps) while the minority expects <= this. */
#define BINOM_EXACT_MAX 1e5

/* ---- xoshiro256** (Blackman & Vigna), seeded by splitmix64 ---------------- */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, 1). */
static inline double rng_double(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n) (Lemire's multiply-shift; bias < n / 2^64). */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Failures before the first success of a Bernoulli(p) sequence, 0 < p < 1. */
static uint64_t rng_geometric(struct rng *r, double log1m_p)
{
	double u = 1.0 - rng_double(r); /* (0, 1] */
	double g = floor(log(u) / log1m_p);

	return g >= 0x1.0p63 ? UINT64_MAX : (uint64_t)g;
}

/* Standard normal (Box-Muller; one of the pair is enough here). */
static double rng_normal(struct rng *r)
{
	double u1 = 1.0 - rng_double(r), u2 = rng_double(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Binomial(n, p). */
static uint64_t rng_binomial(struct rng *r, uint64_t n, double p)
{
	bool flip = p > 0.5;
	double pm = flip ? 1.0 - p : p, x;
	uint64_t k = 0;

	if (pm <= 0.0)
		return flip ? n : 0;
	if ((double)n * pm <= BINOM_EXACT_MAX) {
		/* Count successes by jumping over runs of failures: exact. */
		double l = log1p(-pm);
		uint64_t pos = 0;

		for (;;) {
			uint64_t g = rng_geometric(r, l);

			if (g >= n - pos)
				break;
			pos += g + 1;
			k++;
		}
	} else {
		x = round((double)n * pm + sqrt((double)n * pm * (1.0 - pm)) * rng_normal(r));
		k = x < 0 ? 0 : x > (double)n ? n : (uint64_t)x;
	}
	return flip ? n - k : k;
}

/* ---- Zipf by rejection inversion (Hörmann & Derflinger 1996) --------------
 * Ranks 1..n with P(k) ~ k^-s. h(x) = x^-s; H(x) = (x^(1-s) - 1) / (1 - s),
 * or log(x) at s = 1, written with expm1/log1p so s near 1 stays accurate. */

static double helper1(double x) /* log1p(x) / x */
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double helper2(double x) /* expm1(x) / x */
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x));
}

static double zipf_h(double s, double x)
{
	return exp(-s * log(x));
}

static double zipf_H(double s, double x)
{
	double lx = log(x);

	return helper2((1.0 - s) * lx) * lx;
}

static double zipf_H_inv(double s, double x)
{
	double t = x * (1.0 - s);

	if (t < -1.0)
		t = -1.0;
	return exp(helper1(t) * x);
}

struct zipf {
	double s;
	uint64_t n;        /* ranks 1..n */
	double total;      /* sum of k^-s over 1..n */
	/* the current restriction to ranks [lo, n] */
	uint64_t lo;
	double H_lo;       /* H(lo + 0.5) - h(lo) */
	double H_n;        /* H(n + 0.5) */
	double tail;       /* P(rank >= lo) */
	double log1m_tail; /* log(1 - tail), 0 when lo == 1 */
	double sm;         /* squeeze: 2 - H^-1(H(2.5) - h(2)) */
};

/* Sum of k^-s for k in [a, n]: the first terms exactly, the rest by the
 * midpoint rule (relative error ~ s / (24 a^2), < 1e-5 past 32 terms). */
static double zipf_sum(double s, uint64_t a, uint64_t n)
{
	double sum = 0.0;
	uint64_t k = a;

	for (; k <= n && k < a + 32; k++)
		sum += zipf_h(s, (double)k);
	if (k <= n)
		sum += zipf_H(s, (double)n + 0.5) - zipf_H(s, (double)k - 0.5);
	return sum;
}

static void zipf_restrict(struct zipf *z, uint64_t lo)
{
	double tail;

	z->lo = lo;
	z->H_lo = zipf_H(z->s, (double)lo + 0.5) - zipf_h(z->s, (double)lo);
	z->H_n = zipf_H(z->s, (double)z->n + 0.5);
	tail = lo <= 1 ? 1.0 : zipf_sum(z->s, lo, z->n) / z->total;
	z->tail = tail;
	z->log1m_tail = tail >= 1.0 ? 0.0 : log1p(-tail);
}

static void zipf_init(struct zipf *z, double s, uint64_t n)
{
	z->s = s;
	z->n = n;
	z->total = zipf_sum(s, 1, n);
	z->sm = 2.0 - zipf_H_inv(s, zipf_H(s, 2.5) - zipf_h(s, 2.0));
	zipf_restrict(z, 1);
}

/* A rank in [z->lo, z->n] with P(k) ~ k^-s. */
static uint64_t zipf_sample(const struct zipf *z, struct rng *r)
{
	for (;;) {
		double u = z->H_n + rng_double(r) * (z->H_lo - z->H_n);
		double x = zipf_H_inv(z->s, u);
		double kd = floor(x + 0.5);
		uint64_t k = kd < (double)z->lo ? z->lo : kd > (double)z->n ? z->n : (uint64_t)kd;

		/* The squeeze (k - x <= sm) accepts most draws without the second
		 * H(); it holds for every k >= 2, so for any restriction. */
		if ((double)k - x <= z->sm ||
		    u >= zipf_H(z->s, (double)k + 0.5) - zipf_h(z->s, (double)k))
			return k;
	}
}

/* ---- the source ----------------------------------------------------------- */

struct synth {
	struct sl_dirty_source base;
	struct sl_dirty_synthetic_config cfg;
	struct rng rng;
	uint64_t wss;        /* working-set pages */
	uint64_t hot_pages;  /* HOTCOLD: the first hot_pages of the working set */
	struct zipf zipf;
	/* Pages written in the current interval (region-relative bits), and the
	 * word range touched, so merging costs the dirtied span only. */
	uint64_t *scratch;
	uint64_t lo_word, hi_word;
	uint64_t last_ns;
	double carry;        /* fractional write carried to the next sync */
	uint64_t seq_next;   /* SEQUENTIAL: next page, working-set relative */
	struct sl_dirty_synthetic_stats stats;
};

static struct synth *to_synth(struct sl_dirty_source *src)
{
	return (struct synth *)src;
}

static uint64_t synth_now(const struct synth *s)
{
	return s->cfg.clock_ns ? s->cfg.clock_ns(s->cfg.clock_ctx) : sl_now_ns();
}

static void touch(struct synth *s, uint64_t first, uint64_t n)
{
	uint64_t lo = first / 64, hi = (first + n + 63) / 64;

	if (lo < s->lo_word)
		s->lo_word = lo;
	if (hi > s->hi_word)
		s->hi_word = hi;
}

static inline void set_page(struct synth *s, uint64_t page)
{
	s->scratch[page / 64] |= UINT64_C(1) << (page % 64);
}

/* One random word whose bits are 1 with probability qbits / Q_ONE each: fold
 * random words in from the least significant binary digit of q up; digit 1
 * ORs (p -> 1/2 + p/2), digit 0 ANDs (p -> p/2). Q_BITS digits keep q exact
 * to 2^-25 (8 pages in 256M) for at most 24 random words per 64 pages. */
static inline uint64_t bernoulli_word(struct rng *r, uint64_t qbits)
{
	uint64_t x = 0;

	for (int j = __builtin_ctzll(qbits); j < Q_BITS; j++) {
		uint64_t w = rng_next(r);

		x = (qbits >> j) & 1 ? x | w : x & w;
	}
	return x;
}

/* n uniform writes over pages [first, first + count). */
static void fill_uniform(struct synth *s, uint64_t first, uint64_t count, uint64_t n)
{
	double q;
	uint64_t qbits, end = first + count;

	if (!n || !count)
		return;
	touch(s, first, count);
	if (n < count / UNIFORM_LOOP_DIV) {
		/* Random bits of a bitmap far bigger than the cache: draw a batch
		 * of pages and prefetch their words before setting them. */
		uint64_t idx[64];

		for (uint64_t i = 0; i < n; i += SL_ARRAY_SIZE(idx)) {
			uint64_t b = SL_MIN(n - i, SL_ARRAY_SIZE(idx));

			for (uint64_t j = 0; j < b; j++) {
				idx[j] = first + rng_below(&s->rng, count);
				__builtin_prefetch(&s->scratch[idx[j] / 64], 1);
			}
			for (uint64_t j = 0; j < b; j++)
				set_page(s, idx[j]);
		}
		return;
	}
	/* Many writes: each page independently dirty with q. */
	q = -expm1((double)n * log1p(-1.0 / (double)count));
	qbits = (uint64_t)llround(q * Q_ONE);
	if (qbits >= Q_ONE || count == 1) {
		sl_dirty_set_bits(s->scratch, first, count);
		return;
	}
	if (!qbits)
		return;
	for (uint64_t w = first / 64; w * 64 < end; w++) {
		uint64_t mask = ~UINT64_C(0);

		if (w * 64 < first)
			mask &= ~UINT64_C(0) << (first % 64);
		if ((w + 1) * 64 > end)
			mask &= (UINT64_C(1) << (end % 64)) - 1;
		s->scratch[w] |= bernoulli_word(&s->rng, qbits) & mask;
	}
}

static void gen_sequential(struct synth *s, uint64_t n)
{
	uint64_t first = s->cfg.wss_first, w = s->wss, a = s->seq_next;

	if (!n)
		return;
	if (n >= w) {
		sl_dirty_set_bits(s->scratch, first, w);
		touch(s, first, w);
	} else if (a + n <= w) {
		sl_dirty_set_bits(s->scratch, first + a, n);
		touch(s, first + a, n);
	} else {
		sl_dirty_set_bits(s->scratch, first + a, w - a);
		sl_dirty_set_bits(s->scratch, first, n - (w - a));
		touch(s, first, w);
	}
	s->seq_next = (uint64_t)(((unsigned __int128)a + n) % w);
}

static void gen_hotcold(struct synth *s, uint64_t n)
{
	uint64_t first = s->cfg.wss_first, cold = s->wss - s->hot_pages;
	uint64_t nhot = cold ? rng_binomial(&s->rng, n, s->cfg.hot_share) : n;

	fill_uniform(s, first, s->hot_pages, nhot);
	fill_uniform(s, first + s->hot_pages, cold, n - nhot);
}

static inline bool rank_dirty(const struct synth *s, uint64_t rank)
{
	uint64_t page = s->cfg.wss_first + rank - 1;

	return s->scratch[page / 64] >> (page % 64) & 1;
}

static void gen_zipf(struct synth *s, uint64_t n)
{
	struct zipf *z = &s->zipf;
	uint64_t left = n, draws = 0, k = 1, max_rank = 0, first = s->cfg.wss_first;
	uint64_t idx[32];

	if (!n)
		return;
	zipf_restrict(z, 1);
	while (left) {
		uint64_t b = 0;

		/* Ranks below k are dirty already: writes there change nothing,
		 * so draw only from [lo, n] and skip the writes that would have
		 * landed below (a geometric count). Re-deriving the tail costs
		 * ~32 pow(), so lo follows k in doubling steps; any lo <= k is
		 * exact. */
		while (k <= z->n && rank_dirty(s, k))
			k++;
		if (k > z->n)
			break; /* every page of the working set is dirty */
		if (k >= 2 * z->lo + 16)
			zipf_restrict(z, k);
		if (z->tail <= 0.0)
			break; /* huge s: the rest underflows, no write gets past k */
		/* A batch of draws, their bitmap words prefetched before the bits
		 * are set: the tail's pages are cache misses in a big bitmap. */
		while (left && b < SL_ARRAY_SIZE(idx)) {
			uint64_t rank;

			if (z->log1m_tail < 0.0) {
				uint64_t skip = rng_geometric(&s->rng, z->log1m_tail);

				if (skip >= left) {
					left = 0;
					break;
				}
				left -= skip;
			}
			left--;
			rank = zipf_sample(z, &s->rng);
			max_rank = SL_MAX(max_rank, rank);
			idx[b] = first + rank - 1;
			__builtin_prefetch(&s->scratch[idx[b] / 64], 1);
			b++;
		}
		for (uint64_t j = 0; j < b; j++)
			set_page(s, idx[j]);
		draws += b;
		if (left && draws >= SYNTH_MAX_DRAWS) {
			s->stats.writes_dropped += left;
			sl_dirty_log(&s->base, SL_LOG_WARNING,
				     "synthetic: %llu writes over the per-sync cap dropped",
				     (unsigned long long)left);
			break;
		}
	}
	if (max_rank)
		touch(s, first, max_rank);
}

/* Many writes (n >= pages / ZIPF_BULK_DIV): each page independently dirty
 * with q = 1 - (1 - p_rank)^n. Ranks below ZIPF_EXACT_RANKS get their own q;
 * past them p changes by < 2 % across a 64-page word, so each word uses the q
 * of its middle rank and is drawn bit-sliced like the uniform fill. Once q
 * falls below 2^-16 the remaining tail is drawn write by write: a binomial
 * count of the writes that land there, then Zipf draws restricted to it. */
static void gen_zipf_bulk(struct synth *s, uint64_t n)
{
	struct zipf *z = &s->zipf;
	uint64_t first = s->cfg.wss_first, end = first + s->wss, tail_rank = 0, m;
	uint64_t qbits = 0, q_until = 0; /* q is reused for words < q_until */
	double dn = (double)n;

	touch(s, first, s->wss);
	for (uint64_t w = first / 64; w * 64 < end; w++) {
		uint64_t lo = SL_MAX(w * 64, first), hi = SL_MIN(w * 64 + 64, end);
		uint64_t rank_lo = lo - first + 1, mask;

		if (rank_lo < ZIPF_EXACT_RANKS) {
			for (uint64_t pg = lo; pg < hi; pg++) {
				double p = zipf_h(z->s, (double)(pg - first + 1)) / z->total;

				if (rng_double(&s->rng) < -expm1(dn * log1p(-p)))
					set_page(s, pg);
			}
			continue;
		}
		if (w >= q_until) {
			/* One q for a group of words whose p differ by < 0.1 %:
			 * g words at rank r span 64g ranks, g = r / 65536. */
			uint64_t g = SL_MAX(rank_lo / 65536, 1);
			double mid = (double)rank_lo + (double)(64 * g - 1) / 2.0;
			double q = -expm1(dn * log1p(-zipf_h(z->s, mid) / z->total));

			if (q < 0x1.0p-16) {
				tail_rank = rank_lo;
				break;
			}
			qbits = (uint64_t)llround(q * Q_ONE);
			q_until = w + g;
		}
		mask = ~UINT64_C(0);
		if (lo % 64)
			mask &= ~UINT64_C(0) << (lo % 64);
		if (hi % 64)
			mask &= (UINT64_C(1) << (hi % 64)) - 1;
		s->scratch[w] |= (qbits >= Q_ONE ? ~UINT64_C(0) :
				  bernoulli_word(&s->rng, qbits)) & mask;
	}
	if (!tail_rank)
		return;
	zipf_restrict(z, tail_rank);
	m = rng_binomial(&s->rng, n, -expm1(z->log1m_tail));
	for (uint64_t i = 0; i < m; i++)
		set_page(s, first + zipf_sample(z, &s->rng) - 1);
}

static int synth_start(struct sl_dirty_source *src)
{
	struct synth *s = to_synth(src);

	s->last_ns = synth_now(s);
	s->carry = 0.0;
	memset(&s->stats, 0, sizeof(s->stats));
	return 0;
}

static int64_t synth_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	struct synth *s = to_synth(src);
	uint64_t now = synth_now(s), dt, n, found = 0;
	double writes;

	if (now < s->last_ns)
		return sl_err(&src->err, -EINVAL,
			      "synthetic: clock went backwards (%llu ns < previous %llu ns)",
			      (unsigned long long)now, (unsigned long long)s->last_ns);
	dt = now - s->last_ns;
	s->last_ns = now;
	writes = s->cfg.pages_per_sec * ((double)dt * 1e-9) + s->carry;
	if (writes >= 0x1.0p63) {
		n = UINT64_C(1) << 63;
		s->carry = 0.0;
	} else {
		n = (uint64_t)writes;
		s->carry = writes - (double)n;
	}
	s->stats.writes += n;
	s->stats.sim_ns += dt;

	s->lo_word = UINT64_MAX;
	s->hi_word = 0;
	switch (s->cfg.pattern) {
	case SL_SYNTH_SEQUENTIAL:
		gen_sequential(s, n);
		break;
	case SL_SYNTH_UNIFORM:
		fill_uniform(s, s->cfg.wss_first, s->wss, n);
		break;
	case SL_SYNTH_HOTCOLD:
		gen_hotcold(s, n);
		break;
	case SL_SYNTH_ZIPF:
		if (n >= s->wss / ZIPF_BULK_DIV)
			gen_zipf_bulk(s, n);
		else
			gen_zipf(s, n);
		break;
	}
	/* Merge into the engine's bitmap and reset the interval's pages, with
	 * the bitmap module's (SIMD-dispatched) count and OR. */
	if (s->hi_word > s->lo_word) {
		uint64_t nw = s->hi_word - s->lo_word;

		found = (uint64_t)sl_bitmap_count(s->scratch + s->lo_word, nw * 64);
		sl_bitmap_or(bitmap + s->lo_word, s->scratch + s->lo_word, nw * 64);
		memset(s->scratch + s->lo_word, 0, nw * 8);
	}
	return (int64_t)found;
}

/* The interval's bitmap takes random single-bit writes: for big guests back
 * it with huge pages where the kernel allows (THP "madvise" mode), which
 * halves the cost of a write at 1 TiB (TLB misses, not cache misses, bound
 * it). */
static uint64_t *scratch_alloc(size_t bytes)
{
	const size_t huge = 2u << 20;
	void *p;

	if (bytes < huge)
		return calloc(1, bytes);
	bytes = (bytes + huge - 1) / huge * huge;
	if (posix_memalign(&p, huge, bytes))
		return NULL;
	madvise(p, bytes, MADV_HUGEPAGE); /* a hint: fine if it fails */
	memset(p, 0, bytes);
	return p;
}

static void synth_destroy(struct sl_dirty_source *src)
{
	struct synth *s = to_synth(src);

	free(s->scratch);
	free(s);
}

static const struct sl_dirty_ops synth_ops = {
	.name = "synthetic",
	.start = synth_start,
	.sync = synth_sync,
	.destroy = synth_destroy,
};

static int synth_check(const struct sl_dirty_synthetic_config *c, struct sl_errbuf *eb)
{
	uint64_t wss;

	if (!c->npages)
		return sl_err(eb, -EINVAL, "synthetic: npages is 0");
	if (c->wss_first >= c->npages)
		return sl_err(eb, -EINVAL, "synthetic: working set starts at page %llu, past the "
			      "region's %llu pages", (unsigned long long)c->wss_first,
			      (unsigned long long)c->npages);
	wss = c->wss_pages ? c->wss_pages : c->npages - c->wss_first;
	if (wss > c->npages - c->wss_first)
		return sl_err(eb, -EINVAL, "synthetic: working set [%llu, +%llu) ends past the "
			      "region's %llu pages", (unsigned long long)c->wss_first,
			      (unsigned long long)wss, (unsigned long long)c->npages);
	if (!isfinite(c->pages_per_sec) || c->pages_per_sec < 0)
		return sl_err(eb, -EINVAL, "synthetic: pages_per_sec %g is not a finite rate >= 0",
			      c->pages_per_sec);
	switch (c->pattern) {
	case SL_SYNTH_SEQUENTIAL:
	case SL_SYNTH_UNIFORM:
		break;
	case SL_SYNTH_HOTCOLD:
		if (!(c->hot_frac > 0.0 && c->hot_frac <= 1.0))
			return sl_err(eb, -EINVAL, "synthetic: hot_frac %g not in (0, 1]",
				      c->hot_frac);
		if (!(c->hot_share >= 0.0 && c->hot_share <= 1.0))
			return sl_err(eb, -EINVAL, "synthetic: hot_share %g not in [0, 1]",
				      c->hot_share);
		break;
	case SL_SYNTH_ZIPF:
		if (!(c->zipf_s > 0.0 && c->zipf_s <= 100.0))
			return sl_err(eb, -EINVAL, "synthetic: zipf_s %g not in (0, 100]",
				      c->zipf_s);
		break;
	default:
		return sl_err(eb, -EINVAL, "synthetic: unknown pattern %d", (int)c->pattern);
	}
	return 0;
}

SL_EXPORT int sl_dirty_synthetic_new(const struct sl_dirty_synthetic_config *cfg,
				     struct sl_dirty_source **out, struct sl_errbuf *eb)
{
	struct synth *s;
	int ret;

	if (!out)
		return sl_err(eb, -EINVAL, "synthetic: out is NULL");
	*out = NULL;
	ret = sl_dirty_check_config(cfg, offsetof(struct sl_dirty_synthetic_config, clock_ctx) +
				    sizeof(void *), "synthetic", eb);
	if (ret < 0)
		return ret;
	ret = synth_check(cfg, eb);
	if (ret < 0)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return sl_err(eb, -ENOMEM, "synthetic: out of memory");
	memcpy(&s->cfg, cfg, SL_MIN(cfg->size, sizeof(s->cfg)));
	s->cfg.size = sizeof(s->cfg);
	sl_dirty_source_init(&s->base, &synth_ops, SL_DIRTY_SYNTHETIC, SL_DIRTY_CAP_SIMULATED,
			     cfg->npages);
	s->wss = cfg->wss_pages ? cfg->wss_pages : cfg->npages - cfg->wss_first;
	s->scratch = scratch_alloc(sl_dirty_words(cfg->npages) * 8);
	if (!s->scratch) {
		free(s);
		return sl_err(eb, -ENOMEM, "synthetic: no memory for a %llu-page bitmap",
			      (unsigned long long)cfg->npages);
	}
	if (cfg->pattern == SL_SYNTH_HOTCOLD) {
		double hp = round(cfg->hot_frac * (double)s->wss);

		s->hot_pages = hp < 1.0 ? 1 : hp > (double)s->wss ? s->wss : (uint64_t)hp;
	}
	if (cfg->pattern == SL_SYNTH_ZIPF)
		zipf_init(&s->zipf, cfg->zipf_s, s->wss);
	rng_seed(&s->rng, cfg->seed);
	*out = &s->base;
	return 0;
}

SL_EXPORT int sl_dirty_synthetic_get_stats(const struct sl_dirty_source *src,
					   struct sl_dirty_synthetic_stats *out)
{
	if (!src || !out || src->ops != &synth_ops)
		return -EINVAL;
	*out = ((const struct synth *)src)->stats;
	return 0;
}
