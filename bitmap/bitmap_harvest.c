/* SPDX-License-Identifier: MIT */
/*
 * bitmap_harvest.c — fetch-and-clear of a bitmap that writers (other
 * threads, the kernel, a device) keep setting bits in.
 *
 * Why the race is safe: writers only ever SET bits, with an atomic OR (or a
 * locked bts, as KVM does). A plain load that sees zero may miss a bit set a
 * moment later — that bit stays in shared and the next harvest takes it, as
 * if it had been set just after this one. A non-zero word is taken with an
 * atomic exchange, so a bit set between our load and the exchange is taken
 * by the exchange, and a bit set after it lands in a word that is now zero
 * for the next round. Every set bit is thus taken by exactly one harvest:
 * never lost, never counted twice. The acquire on the exchange pairs with
 * a writer that stores page data and then sets the bit with release order,
 * so the caller sees the data the bit announces.
 */
#include <errno.h>

#include "bitmap_internal.h"
#include "sl_common.h"

/* Portable popcount: the baseline x86-64 build has no POPCNT instruction,
 * and libgcc's fallback is a call per word. */
static inline uint64_t pop64(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (x * 0x0101010101010101ull) >> 56;
}

static inline uint64_t peek(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

SL_EXPORT int64_t sl_bitmap_harvest(uint64_t *shared, uint64_t *out, uint64_t npages)
{
	uint64_t nfull = npages / 64, i = 0, n = 0;

	if (npages && (!shared || !out || shared == out))
		return -EINVAL;
	while (i < nfull) {
		/* Dirty sets are sparse: skip 4 zero words with plain loads. */
		if (i + 4 <= nfull &&
		    !(peek(shared + i) | peek(shared + i + 1) | peek(shared + i + 2) |
		      peek(shared + i + 3))) {
			i += 4;
			continue;
		}
		if (peek(shared + i)) {
			uint64_t v = __atomic_exchange_n(shared + i, 0, __ATOMIC_ACQUIRE);

			out[i] |= v;
			n += pop64(v);
		}
		i++;
	}
	if (npages % 64) {
		uint64_t mask = sl_bitmap_tail_mask(npages);

		if (peek(shared + nfull) & mask) {
			/* Only the bits inside npages: the rest is not ours. */
			uint64_t v = __atomic_fetch_and(shared + nfull, ~mask, __ATOMIC_ACQUIRE) & mask;

			out[nfull] |= v;
			n += pop64(v);
		}
	}
	return (int64_t)n;
}
