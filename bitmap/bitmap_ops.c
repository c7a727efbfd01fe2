/* SPDX-License-Identifier: MIT */
/*
 * bitmap_ops.c — whole-bitmap helpers: count, OR, AND-NOT, set/clear a page
 * range, ranges back to a bitmap. Bits past npages are never read or changed.
 */
#include <errno.h>
#include <string.h>

#include "bitmap_internal.h"
#include "sl_common.h"

SL_EXPORT int64_t sl_bitmap_count(const uint64_t *words, uint64_t npages)
{
	uint64_t nfull = npages / 64;
	int64_t n;

	if (npages && !words)
		return -EINVAL;
	n = sl_bitmap_impl()->count(words, nfull);
	if (npages % 64)
		n += __builtin_popcountll(words[nfull] & sl_bitmap_tail_mask(npages));
	return n;
}

SL_EXPORT int sl_bitmap_or(uint64_t *dst, const uint64_t *src, uint64_t npages)
{
	uint64_t nfull = npages / 64;

	if (npages && (!dst || !src))
		return -EINVAL;
	for (uint64_t i = 0; i < nfull; i++)
		dst[i] |= src[i];
	if (npages % 64)
		dst[nfull] |= src[nfull] & sl_bitmap_tail_mask(npages);
	return 0;
}

SL_EXPORT int sl_bitmap_andnot(uint64_t *dst, const uint64_t *src, uint64_t npages)
{
	uint64_t nfull = npages / 64;

	if (npages && (!dst || !src))
		return -EINVAL;
	for (uint64_t i = 0; i < nfull; i++)
		dst[i] &= ~src[i];
	if (npages % 64)
		dst[nfull] &= ~(src[nfull] & sl_bitmap_tail_mask(npages));
	return 0;
}

/* Bits [lo, hi) of one word, 0 <= lo < hi <= 64. */
static inline uint64_t bits(uint64_t lo, uint64_t hi)
{
	uint64_t upto = hi == 64 ? ~0ull : (1ull << hi) - 1;

	return upto & (~0ull << lo);
}

static void fill_range(uint64_t *words, uint64_t first, uint64_t n, bool set)
{
	uint64_t end = first + n, wa = first / 64, wb = (end - 1) / 64;

	if (!n)
		return;
	if (wa == wb) {
		uint64_t m = bits(first % 64, end - wa * 64);

		words[wa] = set ? words[wa] | m : words[wa] & ~m;
		return;
	}
	{
		uint64_t m0 = bits(first % 64, 64), m1 = bits(0, end - wb * 64);

		words[wa] = set ? words[wa] | m0 : words[wa] & ~m0;
		words[wb] = set ? words[wb] | m1 : words[wb] & ~m1;
		if (wb > wa + 1)
			memset(words + wa + 1, set ? 0xff : 0, (wb - wa - 1) * sizeof(uint64_t));
	}
}

static int check_range(const uint64_t *words, uint64_t npages, uint64_t first, uint64_t n)
{
	if (first > npages || n > npages - first)
		return -EINVAL;
	if (n && !words)
		return -EINVAL;
	return 0;
}

SL_EXPORT int sl_bitmap_set_range(uint64_t *words, uint64_t npages, uint64_t first, uint64_t n)
{
	int ret = check_range(words, npages, first, n);

	if (!ret)
		fill_range(words, first, n, true);
	return ret;
}

SL_EXPORT int sl_bitmap_clear_range(uint64_t *words, uint64_t npages, uint64_t first, uint64_t n)
{
	int ret = check_range(words, npages, first, n);

	if (!ret)
		fill_range(words, first, n, false);
	return ret;
}

SL_EXPORT int sl_bitmap_from_ranges(uint64_t *words, uint64_t npages, uint64_t base_page,
				    const struct sl_range *r, size_t n)
{
	if (n && !r)
		return -EINVAL;
	if (base_page > UINT64_MAX - npages)
		return -EINVAL;
	/* Check everything first so a bad range leaves the bitmap untouched. */
	for (size_t i = 0; i < n; i++) {
		if (r[i].first < base_page ||
		    check_range(words, npages, r[i].first - base_page, r[i].npages))
			return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		fill_range(words, r[i].first - base_page, r[i].npages, true);
	return 0;
}
