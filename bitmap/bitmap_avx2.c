/* SPDX-License-Identifier: MIT */
/*
 * bitmap_avx2.c — AVX2 + BMI1/BMI2 + POPCNT path. Built in its own static
 * library with -mavx2 -mbmi -mbmi2 -mpopcnt; only called after cpuid says
 * the CPU has all four (bitmap_dispatch.c).
 */
#include <immintrin.h>

#include "bitmap_internal.h"

/* One 256-bit block equal to the fill (all 0 or all 1)? */
static inline int all_eq4(const uint64_t *p, uint64_t fill)
{
	__m256i f = _mm256_set1_epi64x((long long)fill);
	__m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)p), f);

	return _mm256_testz_si256(v, v);
}

/* Four blocks (one 128-byte stretch, two cache lines) at once. */
static inline int all_eq16(const uint64_t *p, uint64_t fill)
{
	__m256i f = _mm256_set1_epi64x((long long)fill);
	__m256i a = _mm256_loadu_si256((const __m256i *)p);
	__m256i b = _mm256_loadu_si256((const __m256i *)(p + 4));
	__m256i c = _mm256_loadu_si256((const __m256i *)(p + 8));
	__m256i d = _mm256_loadu_si256((const __m256i *)(p + 12));
	__m256i v = _mm256_or_si256(_mm256_or_si256(_mm256_xor_si256(a, f), _mm256_xor_si256(b, f)),
				    _mm256_or_si256(_mm256_xor_si256(c, f), _mm256_xor_si256(d, f)));

	return _mm256_testz_si256(v, v);
}

/* (first, end) -> (first, end - first), two ranges per vector, four per turn. */
static inline void fixup_avx2(uint64_t *flat, size_t from, size_t to)
{
	size_t r = from;

	for (; r + 4 <= to; r += 4) {
		__m256i v = _mm256_loadu_si256((const __m256i *)(flat + 2 * r));
		__m256i u = _mm256_loadu_si256((const __m256i *)(flat + 2 * r + 4));

		/* slli_si256 shifts each 128-bit lane: (s, e) -> (0, s). */
		v = _mm256_sub_epi64(v, _mm256_slli_si256(v, 8));
		u = _mm256_sub_epi64(u, _mm256_slli_si256(u, 8));
		_mm256_storeu_si256((__m256i *)(flat + 2 * r), v);
		_mm256_storeu_si256((__m256i *)(flat + 2 * r + 4), u);
	}
	sl_bitmap_fixup(flat, r, to);
}

#define SL_K_FIXUP(f, a, b) fixup_avx2(f, a, b)
#define SL_K_NAME sl_bitmap_kernel_avx2
#define SL_K_BLOCK 4
#define SL_K_ALL_EQ(p, f) all_eq4(p, f)
#define SL_K_ALL_EQ4(p, f) all_eq16(p, f)
#define SL_K_BMI 1
#include "bitmap_kernel.h"

int64_t sl_bitmap_count_avx2(const uint64_t *words, uint64_t nwords)
{
	uint64_t a = 0, b = 0, c = 0, d = 0, i = 0;

	for (; i + 4 <= nwords; i += 4) {
		a += (uint64_t)_mm_popcnt_u64(words[i]);
		b += (uint64_t)_mm_popcnt_u64(words[i + 1]);
		c += (uint64_t)_mm_popcnt_u64(words[i + 2]);
		d += (uint64_t)_mm_popcnt_u64(words[i + 3]);
	}
	for (; i < nwords; i++)
		a += (uint64_t)_mm_popcnt_u64(words[i]);
	return (int64_t)(a + b + c + d);
}

/* The benchmark floor: read every word once, OR them, nothing else. */
uint64_t sl_bitmap_floor_or_avx2(const uint64_t *words, uint64_t nwords)
{
	__m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
	uint64_t i = 0, r = 0;

	for (; i + 16 <= nwords; i += 16) {
		a = _mm256_or_si256(a, _mm256_loadu_si256((const __m256i *)(words + i)));
		b = _mm256_or_si256(b, _mm256_loadu_si256((const __m256i *)(words + i + 4)));
		c = _mm256_or_si256(c, _mm256_loadu_si256((const __m256i *)(words + i + 8)));
		d = _mm256_or_si256(d, _mm256_loadu_si256((const __m256i *)(words + i + 12)));
	}
	a = _mm256_or_si256(_mm256_or_si256(a, b), _mm256_or_si256(c, d));
	r = (uint64_t)_mm256_extract_epi64(a, 0) | (uint64_t)_mm256_extract_epi64(a, 1) |
	    (uint64_t)_mm256_extract_epi64(a, 2) | (uint64_t)_mm256_extract_epi64(a, 3);
	for (; i < nwords; i++)
		r |= words[i];
	return r;
}
