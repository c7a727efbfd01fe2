/* SPDX-License-Identifier: MIT */
/*
 * bitmap_avx512.c — AVX-512F + BMI1/BMI2 + POPCNT path: the same kernel as
 * AVX2 but skipping 512-bit blocks with one compare-to-mask. Built with
 * -mavx512f -mbmi -mbmi2 -mpopcnt in its own static library; only called
 * after cpuid says the CPU has them (and the OS saves ZMM state).
 */
#include <immintrin.h>

#include "bitmap_internal.h"

static inline int all_eq8(const uint64_t *p, uint64_t fill)
{
	__m512i f = _mm512_set1_epi64((long long)fill);

	return _mm512_cmpneq_epi64_mask(_mm512_loadu_si512(p), f) == 0;
}

/* Four blocks (four cache lines) at once. */
static inline int all_eq32(const uint64_t *p, uint64_t fill)
{
	__m512i f = _mm512_set1_epi64((long long)fill);
	__m512i a = _mm512_xor_si512(_mm512_loadu_si512(p), f);
	__m512i b = _mm512_xor_si512(_mm512_loadu_si512(p + 8), f);
	__m512i c = _mm512_xor_si512(_mm512_loadu_si512(p + 16), f);
	__m512i d = _mm512_xor_si512(_mm512_loadu_si512(p + 24), f);
	__m512i v = _mm512_or_si512(_mm512_or_si512(a, b), _mm512_or_si512(c, d));

	return _mm512_test_epi64_mask(v, v) == 0;
}

/* (first, end) -> (first, end - first), four ranges per vector, eight per turn. */
static inline void fixup_avx512(uint64_t *flat, size_t from, size_t to)
{
	size_t r = from;

	for (; r + 8 <= to; r += 8) {
		__m512i v = _mm512_loadu_si512(flat + 2 * r);
		__m512i u = _mm512_loadu_si512(flat + 2 * r + 8);

		/* unpacklo gives (s, s) per range; subtract it from the odd lanes. */
		v = _mm512_mask_sub_epi64(v, 0xaa, v, _mm512_unpacklo_epi64(v, v));
		u = _mm512_mask_sub_epi64(u, 0xaa, u, _mm512_unpacklo_epi64(u, u));
		_mm512_storeu_si512(flat + 2 * r, v);
		_mm512_storeu_si512(flat + 2 * r + 8, u);
	}
	sl_bitmap_fixup(flat, r, to);
}

/*
 * A block of 8 words (512 pages) at once with vpcompressd: for each 16-bit
 * slice of a word's boundary mask, compress the lane indices whose bit is
 * set — 16 positions per instruction, no branch per boundary — then widen
 * the 32-bit positions to absolute 64-bit page numbers 8 at a time. About
 * a third of the instructions of the tzcnt/blsr loop at 10 % density.
 */
static inline size_t block_decode_avx512(const uint64_t *wp, uint64_t *carry, uint64_t pbase,
					 uint64_t *flat)
{
	uint32_t pos[8 * 64 + 16];
	const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
					       14, 15);
	const __m512i vbase = _mm512_set1_epi64((long long)pbase);
	size_t np = 0;

	for (unsigned j = 0; j < 8; j++) {
		uint64_t w = wp[j];
		uint64_t b = w ^ (w << 1 | *carry);
		__m512i lanes = _mm512_add_epi32(iota, _mm512_set1_epi32((int)(j * 64)));

		*carry = w >> 63;
		if (_mm_popcnt_u64(b) <= 4) {
			/* Sparse or boundary-free word: four tzcnt stores beat
			 * four compresses, and testing b == 0 separately would
			 * mispredict in blocks with a lone run. */
			uint32_t base = j * 64;
			size_t cnt = (size_t)_mm_popcnt_u64(b);

			pos[np] = base + (uint32_t)_tzcnt_u64(b);
			b = _blsr_u64(b);
			pos[np + 1] = base + (uint32_t)_tzcnt_u64(b);
			b = _blsr_u64(b);
			pos[np + 2] = base + (uint32_t)_tzcnt_u64(b);
			b = _blsr_u64(b);
			pos[np + 3] = base + (uint32_t)_tzcnt_u64(b);
			np += cnt;
			continue;
		}
		for (unsigned c = 0; c < 4; c++) {
			__mmask16 m = (__mmask16)(b >> (16 * c));
			__m512i v = _mm512_maskz_compress_epi32(
				m, _mm512_add_epi32(lanes, _mm512_set1_epi32((int)(16 * c))));

			_mm512_storeu_si512(pos + np, v);
			np += (size_t)_mm_popcnt_u32(m);
		}
	}
	for (size_t i = 0; i < np; i += 8) {
		__m256i d = _mm256_loadu_si256((const __m256i *)(pos + i));

		_mm512_storeu_si512(flat + i, _mm512_add_epi64(_mm512_cvtepu32_epi64(d), vbase));
	}
	return np;
}

#define SL_K_BLOCK_DECODE(p, carry, pbase, f) block_decode_avx512(p, carry, pbase, f)
#define SL_K_FIXUP(f, a, b) fixup_avx512(f, a, b)
#define SL_K_NAME sl_bitmap_kernel_avx512
#define SL_K_BLOCK 8
#define SL_K_ALL_EQ(p, f) all_eq8(p, f)
#define SL_K_ALL_EQ4(p, f) all_eq32(p, f)
#define SL_K_BMI 1
#include "bitmap_kernel.h"
