/* SPDX-License-Identifier: MIT */
/*
 * bitmap_internal.h — what only bitmap/ shares: the per-ISA kernel table and
 * the kernels' prototypes. Each ISA's kernels live in their own file, built
 * in their own static library with their own -m flags (bitmap/meson.build),
 * and are only called after cpuid says the CPU has that ISA.
 */
#ifndef SL_BITMAP_INTERNAL_H
#define SL_BITMAP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sl_bitmap.h"

/*
 * Boundary kernel. Reads full words [*wi, wend) and appends the absolute
 * page number (wbase + index) of every run boundary to flat[k..] — starts
 * and ends alternate, so flat read as struct sl_range[] holds (first, end)
 * pairs. *carry is 1 when the page before word *wi is set (a run is open).
 * Stops at wend or when fewer than SL_KERNEL_SLACK slots remain before kmax
 * (it stores a few positions past k without a branch). Turns completed
 * pairs (first, end) into (first, npages) in place from range *fixed on,
 * and may leave the last ones for the caller. Returns the new k.
 */
typedef size_t (*sl_bitmap_kernel_fn)(const uint64_t *words, uint64_t *wi, uint64_t wend,
				      uint64_t *carry, uint64_t wbase, uint64_t *flat,
				      size_t k, size_t kmax, size_t *fixed);

/* Room a kernel needs to handle one more word: 64 boundaries at most, and
 * the unconditional stores never reach past k + max(16, count). */
#define SL_KERNEL_SLACK 64

struct sl_bitmap_impl {
	enum sl_isa isa;
	sl_bitmap_kernel_fn kernel;
	int64_t (*count)(const uint64_t *words, uint64_t nwords);
};

size_t sl_bitmap_kernel_scalar(const uint64_t *words, uint64_t *wi, uint64_t wend,
			       uint64_t *carry, uint64_t wbase, uint64_t *flat,
			       size_t k, size_t kmax, size_t *fixed);
int64_t sl_bitmap_count_scalar(const uint64_t *words, uint64_t nwords);

#ifdef SL_BITMAP_HAVE_X86
size_t sl_bitmap_kernel_avx2(const uint64_t *words, uint64_t *wi, uint64_t wend,
			     uint64_t *carry, uint64_t wbase, uint64_t *flat,
			     size_t k, size_t kmax, size_t *fixed);
int64_t sl_bitmap_count_avx2(const uint64_t *words, uint64_t nwords);
uint64_t sl_bitmap_floor_or_avx2(const uint64_t *words, uint64_t nwords);

size_t sl_bitmap_kernel_avx512(const uint64_t *words, uint64_t *wi, uint64_t wend,
			       uint64_t *carry, uint64_t wbase, uint64_t *flat,
			       size_t k, size_t kmax, size_t *fixed);
#endif

/* The table in use (picked on first call; see bitmap_dispatch.c). */
const struct sl_bitmap_impl *sl_bitmap_impl(void);

/* Mask of the valid bits of the last word (all ones when npages % 64 == 0). */
static inline uint64_t sl_bitmap_tail_mask(uint64_t npages)
{
	return npages % 64 ? (1ull << (npages % 64)) - 1 : ~0ull;
}

/* Turns (first, end) pairs into (first, npages) for ranges [from, to). */
static inline void sl_bitmap_fixup(uint64_t *flat, size_t from, size_t to)
{
	for (size_t r = from; r < to; r++)
		flat[2 * r + 1] -= flat[2 * r];
}

#endif /* SL_BITMAP_INTERNAL_H */
