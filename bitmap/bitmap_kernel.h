/* SPDX-License-Identifier: MIT */
/*
 * bitmap_kernel.h — the boundary kernel, written once and compiled per ISA.
 * Included by bitmap_scalar.c, bitmap_avx2.c and bitmap_avx512.c, each with
 * its own -m flags, after defining:
 *
 *   SL_K_NAME          the kernel's function name
 *   SL_K_BLOCK         words per skip block: 4 (256 bits) or 8 (512 bits)
 *   SL_K_ALL_EQ(p, f)  true if words p[0..SL_K_BLOCK) all equal f (0 or ~0)
 *   SL_K_ALL_EQ4(p, f) the same for 4 * SL_K_BLOCK words (the fast skip loop)
 *   SL_K_BMI           1 if tzcnt / blsr / popcnt may be used
 *   SL_K_FIXUP(f,a,b)  optional: a vector version of sl_bitmap_fixup()
 *   SL_K_BLOCK_DECODE(p, carry, pbase, f)  optional: decodes a whole block
 *                      (AVX-512: vpcompressd), returns the boundary count
 *
 * How it works (docs/bitmap.md has the long form):
 *  - skip: a block equal to the "fill" (all zero outside a run, all one
 *    inside one) has no boundary, so whole blocks are skipped with one
 *    vector compare; only the carry (in a run or not) crosses them;
 *  - boundaries: b = w ^ (w << 1 | carry) has a bit at every position where
 *    a run starts or ends; starts and ends alternate along the bitmap;
 *  - emission: the positions of b's bits are stored with tzcnt/blsr into
 *    consecutive slots without testing each one — 4 (or 16) stores happen
 *    unconditionally and k advances by popcount(b), so the only branches
 *    are per word and predictable. Slots past k are scratch overwritten
 *    later. Because starts and ends alternate, slot pairs are already
 *    (first, end) ranges; a short fix-up pass turns end into npages while
 *    the lines are still in L1.
 */
#ifndef SL_K_NAME
#error "define SL_K_NAME and friends before including bitmap_kernel.h"
#endif
#ifndef SL_K_FIXUP
#define SL_K_FIXUP(f, a, b) sl_bitmap_fixup(f, a, b)
#endif

static inline __attribute__((always_inline)) size_t
sl_k_decode(uint64_t *f, uint64_t b, uint64_t wb)
{
#if SL_K_BMI
	size_t cnt = (size_t)_mm_popcnt_u64(b);

#define SL_K_STEP(i)                          \
	do {                                  \
		f[i] = wb + _tzcnt_u64(b);    \
		b = _blsr_u64(b);             \
	} while (0)
	SL_K_STEP(0); SL_K_STEP(1); SL_K_STEP(2); SL_K_STEP(3);
	/* Few boundaries (sparse runs) or many (random): each side of this
	 * branch is stable for a given bitmap, so it predicts well. */
	if (cnt > 4) {
		SL_K_STEP(4); SL_K_STEP(5); SL_K_STEP(6); SL_K_STEP(7);
		SL_K_STEP(8); SL_K_STEP(9); SL_K_STEP(10); SL_K_STEP(11);
		SL_K_STEP(12); SL_K_STEP(13); SL_K_STEP(14); SL_K_STEP(15);
		if (cnt > 16) {
			uint64_t *p = f + 16;

			while (b) {
				*p++ = wb + _tzcnt_u64(b);
				b = _blsr_u64(b);
			}
		}
	}
#undef SL_K_STEP
	return cnt;
#else
	size_t n = 0;

	while (b) {
		f[n++] = wb + (uint64_t)__builtin_ctzll(b);
		b &= b - 1;
	}
	return n;
#endif
}

size_t SL_K_NAME(const uint64_t *words, uint64_t *wip, uint64_t wend, uint64_t *carryp,
		 uint64_t wbase, uint64_t *flat, size_t k, size_t kmax, size_t *fixedp)
{
	uint64_t wi = *wip, carry = *carryp;
	size_t fixed = *fixedp;

	for (;;) {
		uint64_t fill = 0 - carry;

		if (wi + SL_K_BLOCK > wend)
			break;
		if (SL_K_ALL_EQ(words + wi, fill)) {
			/* Inside an empty or a full stretch: skip it as fast
			 * as the memory streams. */
			wi += SL_K_BLOCK;
			while (wi + 4 * SL_K_BLOCK <= wend && SL_K_ALL_EQ4(words + wi, fill))
				wi += 4 * SL_K_BLOCK;
			while (wi + SL_K_BLOCK <= wend && SL_K_ALL_EQ(words + wi, fill))
				wi += SL_K_BLOCK;
			continue;
		}
		/* + 8: a block decoder may store up to 7 slots past its count. */
		if (k + SL_K_BLOCK * SL_KERNEL_SLACK + 8 > kmax)
			break;
#ifdef SL_K_BLOCK_DECODE
		k += SL_K_BLOCK_DECODE(words + wi, &carry, wbase + wi * 64, flat + k);
#else
#pragma GCC unroll 8
		for (unsigned j = 0; j < SL_K_BLOCK; j++) {
			uint64_t w = words[wi + j];
			uint64_t b = w ^ (w << 1 | carry);

			carry = w >> 63;
			/* No "if (b)": in sparse blocks it would be a coin
			 * toss; a boundary-free word costs 4 stores instead. */
			k += sl_k_decode(flat + k, b, wbase + (wi + j) * 64);
		}
#endif
		wi += SL_K_BLOCK;
		if (k / 2 - fixed >= 64) {
			SL_K_FIXUP(flat, fixed, k / 2);
			fixed = k / 2;
		}
	}
	/* The last words before wend, or the last room in flat: one at a time. */
	while (wi < wend && k + SL_KERNEL_SLACK <= kmax) {
		uint64_t w = words[wi];
		uint64_t b = w ^ (w << 1 | carry);

		carry = w >> 63;
		k += sl_k_decode(flat + k, b, wbase + wi * 64);
		wi++;
	}
	SL_K_FIXUP(flat, fixed, k / 2);
	*fixedp = k / 2;
	*wip = wi;
	*carryp = carry;
	return k;
}
