/* SPDX-License-Identifier: MIT */
/*
 * bitmap_scan.c — bitmap → ranges: argument checks, the resumable cursor,
 * the gap-merge / max-length split post-pass, and the word-run baseline.
 * The hot loop itself is the per-ISA boundary kernel (bitmap_kernel.h).
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "bitmap_internal.h"
#include "sl_common.h"

_Static_assert(sizeof(struct sl_range) == 2 * sizeof(uint64_t),
	       "the kernels write struct sl_range as pairs of uint64_t");

#define F_STARTED 1u
#define F_PENDING 2u
#define F_DONE 4u

SL_EXPORT void sl_scan_cursor_init(struct sl_scan_cursor *c)
{
	if (!c)
		return;
	memset(c, 0, sizeof(*c));
	c->magic = SL_SCAN_CURSOR_MAGIC;
}

SL_EXPORT bool sl_scan_cursor_done(const struct sl_scan_cursor *c)
{
	return c && c->magic == SL_SCAN_CURSOR_MAGIC && (c->flags & F_DONE);
}

/* Where a raw scan stands: every set bit below pos has been written out,
 * except the run [open_first, pos) when open. Page indices are 0-based. */
struct raw_state {
	uint64_t pos;
	uint64_t open_first;
	bool open;
};

/*
 * One word the careful way, from pos (possibly mid-word) to the end of its
 * word or npages, checking room before every store. Used where the kernel
 * cannot go: a start or end inside a word, the last partial word, and the
 * last few slots of the output. Returns false when flat filled first; pos
 * is then the first boundary not written (a start if k is even, an end if
 * k is odd), which is exactly where the next call resumes.
 */
static bool careful_word(const uint64_t *words, uint64_t npages, uint64_t base, uint64_t *pos,
			 uint64_t *flat, size_t *k, size_t kmax)
{
	uint64_t wi = *pos / 64, off = *pos % 64;
	uint64_t lim = SL_MIN(64, npages - wi * 64);
	uint64_t carry = *k & 1;
	uint64_t valid = (lim == 64 ? ~0ull : (1ull << lim) - 1) & (~0ull << off);
	/* Bits below off take the carry's value so they add no boundary. */
	uint64_t below = carry ? (1ull << off) - 1 : 0;
	uint64_t w = (words[wi] & valid) | below;
	uint64_t b = w ^ (w << 1 | carry);

	while (b) {
		uint64_t p = (uint64_t)__builtin_ctzll(b);

		if (*k == kmax) {
			*pos = wi * 64 + p;
			return false;
		}
		flat[(*k)++] = base + wi * 64 + p;
		b &= b - 1;
	}
	*pos = wi * 64 + lim;
	return true;
}

/* Writes complete runs (first = base + index, npages) into out[0..cap);
 * returns how many. Stops when out is full or the bitmap ends. */
static size_t scan_raw(const struct sl_bitmap_impl *impl, const uint64_t *words,
		       uint64_t npages, uint64_t base, struct raw_state *st,
		       struct sl_range *out, size_t cap)
{
	uint64_t *flat = (uint64_t *)out;
	uint64_t pos = st->pos, nfull = npages / 64;
	size_t kmax = 2 * cap, k = 0, fixed = 0;

	/* k's parity is the run state: odd = a start is waiting for its end. */
	if (st->open)
		flat[k++] = base + st->open_first;
	for (;;) {
		if (pos == npages) {
			if ((k & 1) && k < kmax)
				flat[k++] = base + npages;
			break;
		}
		if (pos % 64 == 0 && pos / 64 < nfull && k + SL_KERNEL_SLACK <= kmax) {
			uint64_t wi = pos / 64, carry = k & 1;

			k = impl->kernel(words, &wi, nfull, &carry, base, flat, k, kmax, &fixed);
			pos = wi * 64;
			continue;
		}
		if (!careful_word(words, npages, base, &pos, flat, &k, kmax))
			break;
	}
	sl_bitmap_fixup(flat, fixed, k / 2);
	st->pos = pos;
	st->open = k & 1;
	if (st->open)
		st->open_first = flat[k - 1] - base;
	return k / 2;
}

/* ---- options: gap merge and max-length split ----------------------------- */

/* The merged range not yet written: [pf, pe), 0-based. */
struct emitter {
	uint64_t gap, max_len, base;
	uint64_t pf, pe;
	bool has;
	struct sl_range *out;
	size_t n, cap;
};

/* Writes the pending range, split by max_len; false if out filled first
 * (the unwritten rest stays pending). */
static bool em_flush(struct emitter *em)
{
	while (em->pf < em->pe) {
		uint64_t len = em->pe - em->pf;

		if (em->n == em->cap)
			return false;
		if (em->max_len && len > em->max_len)
			len = em->max_len;
		em->out[em->n].first = em->base + em->pf;
		em->out[em->n].npages = len;
		em->n++;
		em->pf += len;
	}
	em->has = false;
	return true;
}

/* Takes run [a, e) (a >= pending end); false if it could not be taken
 * because out is full. */
static bool em_push(struct emitter *em, uint64_t a, uint64_t e)
{
	if (em->has && a - em->pe <= em->gap) {
		em->pe = e;
		return true;
	}
	if (em->has && !em_flush(em))
		return false;
	em->has = true;
	em->pf = a;
	em->pe = e;
	return true;
}

#define BOUNCE 1024

static size_t scan_opts(const struct sl_bitmap_impl *impl, const uint64_t *words,
			uint64_t npages, struct sl_scan_cursor *cur, struct sl_range *out,
			size_t cap)
{
	struct sl_range bounce[BOUNCE];
	struct raw_state raw = { .pos = cur->pos };
	struct emitter em = {
		.gap = cur->gap, .max_len = cur->max_len, .base = cur->base_page,
		.pf = cur->pend_first, .pe = cur->pend_end,
		.has = cur->flags & F_PENDING, .out = out, .cap = cap,
	};
	bool done = false;

	for (;;) {
		size_t m, i;

		if (raw.pos == npages) {
			done = !em.has || em_flush(&em);
			break;
		}
		m = scan_raw(impl, words, npages, 0, &raw, bounce, BOUNCE);
		for (i = 0; i < m; i++)
			if (!em_push(&em, bounce[i].first, bounce[i].first + bounce[i].npages))
				break;
		if (i < m) {
			raw.pos = bounce[i].first; /* resume at the run not taken */
			break;
		}
		if (raw.open) {
			/* A run still going at the batch end: take what we have;
			 * its continuation at raw.pos merges (distance 0). */
			raw.open = false;
			if (!em_push(&em, raw.open_first, raw.pos)) {
				raw.pos = raw.open_first;
				break;
			}
		}
	}
	cur->pos = raw.pos;
	cur->pend_first = em.pf;
	cur->pend_end = em.pe;
	cur->flags = (cur->flags & ~(F_PENDING | F_DONE)) | (em.has ? F_PENDING : 0) |
		     (done ? F_DONE : 0);
	return em.n;
}

/* ---- the public entry ----------------------------------------------------- */

/* Shared checks of scan and wordrun; fills *gap / *max_len. */
static int check_args(const uint64_t *words, uint64_t npages, uint64_t base_page,
		      const struct sl_scan_opts *opts, struct sl_scan_cursor *cur,
		      const struct sl_range *out, size_t cap, uint64_t *gap, uint64_t *max_len)
{
	*gap = 0;
	*max_len = 0;
	if (!cur || !out || !cap || (npages && !words))
		return -EINVAL;
	if (cur->magic != SL_SCAN_CURSOR_MAGIC)
		return -EINVAL;
	if (base_page > UINT64_MAX - npages)
		return -EINVAL;
	if (opts) {
		if (opts->size && opts->size < sizeof(*opts))
			return -EINVAL;
		*gap = opts->gap;
		*max_len = opts->max_len;
	}
	if (!(cur->flags & F_STARTED)) {
		cur->flags = F_STARTED;
		cur->pos = 0;
		cur->npages = npages;
		cur->base_page = base_page;
		cur->gap = *gap;
		cur->max_len = *max_len;
	} else if (cur->npages != npages || cur->base_page != base_page ||
		   cur->gap != *gap || cur->max_len != *max_len) {
		return -EINVAL;
	}
	return 0;
}

/* Keeps 2 * cap slot indices and the ssize_t result in range. */
#define CAP_MAX ((size_t)SSIZE_MAX / sizeof(struct sl_range))

SL_EXPORT ssize_t sl_bitmap_scan(const uint64_t *words, uint64_t npages, uint64_t base_page,
				 const struct sl_scan_opts *opts, struct sl_scan_cursor *cur,
				 struct sl_range *out, size_t cap)
{
	const struct sl_bitmap_impl *impl;
	struct raw_state st;
	uint64_t gap, max_len;
	size_t n;
	int ret = check_args(words, npages, base_page, opts, cur, out, cap, &gap, &max_len);

	if (ret)
		return ret;
	if (cur->flags & F_DONE)
		return 0;
	cap = SL_MIN(cap, CAP_MAX);
	impl = sl_bitmap_impl();
	if (gap || max_len)
		return (ssize_t)scan_opts(impl, words, npages, cur, out, cap);

	/* The lean path: no post-pass; the only state between calls is the
	 * position and a run left open when out filled. */
	st.pos = cur->pos;
	st.open = cur->flags & F_PENDING;
	st.open_first = cur->pend_first;
	n = scan_raw(impl, words, npages, base_page, &st, out, cap);
	cur->pos = st.pos;
	cur->pend_first = st.open_first;
	cur->pend_end = st.pos;
	cur->flags = F_STARTED | (st.open ? F_PENDING : 0) |
		     (st.pos == npages && !st.open ? F_DONE : 0);
	return (ssize_t)n;
}

/* ---- the word-run baseline ------------------------------------------------ */

SL_EXPORT ssize_t sl_bitmap_scan_wordrun(const uint64_t *words, uint64_t npages, uint64_t base_page,
					 struct sl_scan_cursor *cur, struct sl_range *out,
					 size_t cap)
{
	uint64_t gap, max_len, pos, start;
	bool open;
	size_t n = 0;
	int ret = check_args(words, npages, base_page, NULL, cur, out, cap, &gap, &max_len);

	if (ret)
		return ret;
	if (cur->flags & F_DONE)
		return 0;
	pos = cur->pos;
	open = cur->flags & F_PENDING;
	start = cur->pend_first;

	while (pos < npages) {
		uint64_t wi = pos / 64, bit = pos % 64;
		uint64_t lim = SL_MIN(64, npages - wi * 64);
		uint64_t w = words[wi] & (lim == 64 ? ~0ull : (1ull << lim) - 1);

		/* Per run: ctz on w finds a start, ctz on ~w its end. */
		for (;;) {
			if (open) {
				uint64_t z = ~w & (~0ull << bit);

				if (!z) {
					bit = 64;
					break;
				}
				bit = (uint64_t)__builtin_ctzll(z);
				if (n == cap) {
					pos = wi * 64 + bit;
					goto out;
				}
				out[n].first = base_page + start;
				out[n].npages = wi * 64 + bit - start;
				n++;
				open = false;
			} else {
				uint64_t s = w & (~0ull << bit);

				if (!s) {
					bit = 64;
					break;
				}
				bit = (uint64_t)__builtin_ctzll(s);
				start = wi * 64 + bit;
				open = true;
			}
			if (bit >= lim)
				break;
		}
		pos = wi * 64 + SL_MIN(bit, lim);
	}
	if (open && n < cap) {
		out[n].first = base_page + start;
		out[n].npages = npages - start;
		n++;
		open = false;
	}
out:
	cur->pos = pos;
	cur->pend_first = start;
	cur->flags = F_STARTED | (open ? F_PENDING : 0) | (pos == npages && !open ? F_DONE : 0);
	return (ssize_t)n;
}
