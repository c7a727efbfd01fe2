/* SPDX-License-Identifier: MIT */
/*
 * bitmap_scalar.c — the portable path: plain 64-bit words, no -m flags.
 * Correct everywhere and still skips empty/full stretches 256 bits at a time.
 */
#include "bitmap_internal.h"

static inline int all_eq4(const uint64_t *p, uint64_t fill)
{
	return ((p[0] ^ fill) | (p[1] ^ fill) | (p[2] ^ fill) | (p[3] ^ fill)) == 0;
}

static inline int all_eq16(const uint64_t *p, uint64_t fill)
{
	return all_eq4(p, fill) & all_eq4(p + 4, fill) & all_eq4(p + 8, fill) &
	       all_eq4(p + 12, fill);
}

#define SL_K_NAME sl_bitmap_kernel_scalar
#define SL_K_BLOCK 4
#define SL_K_ALL_EQ(p, f) all_eq4(p, f)
#define SL_K_ALL_EQ4(p, f) all_eq16(p, f)
#define SL_K_BMI 0
#include "bitmap_kernel.h"

int64_t sl_bitmap_count_scalar(const uint64_t *words, uint64_t nwords)
{
	int64_t n = 0;

	for (uint64_t i = 0; i < nwords; i++)
		n += __builtin_popcountll(words[i]);
	return n;
}
