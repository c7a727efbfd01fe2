/* SPDX-License-Identifier: MIT */
/*
 * transport_helpers.h — shared by the transport tests: a receiver in a
 * fork()ed child process that reports its destination hash back in RESUMED,
 * deterministic page contents, guard-paged regions.
 */
#ifndef TRANSPORT_HELPERS_H
#define TRANSPORT_HELPERS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "sl_devstore.h"
#include "sl_receiver.h"
#include "sl_sender.h"

static const uint8_t test_psk[] = "sluice test pre-shared key 0123456789";

static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Fills pages [first, first+n) with content derived from (seed, page). */
static inline void fill_pages(uint8_t *base, uint64_t first, uint64_t n, uint64_t seed)
{
	for (uint64_t p = first; p < first + n; p++) {
		uint64_t x = seed * 1000003ull + p, *w = (uint64_t *)(base + p * 4096);

		for (unsigned i = 0; i < 4096 / 8; i++)
			w[i] = splitmix64(&x);
	}
}

/* Anonymous memory with a PROT_NONE page on each side. */
static inline uint8_t *guarded_alloc(size_t len)
{
	uint8_t *m = mmap(NULL, len + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		return NULL;
	if (mprotect(m + 4096, len, PROT_READ | PROT_WRITE))
		return NULL;
	return m + 4096;
}

static inline void guarded_free(uint8_t *p, size_t len)
{
	munmap(p - 4096, len + 2 * 4096);
}

/* Device payload i of device d: deterministic bytes. */
static inline void dev_payload(uint32_t d, uint64_t i, uint8_t *buf, size_t len)
{
	uint64_t x = d * 7919ull + i * 104729ull;

	for (size_t k = 0; k < len; k++)
		buf[k] = (uint8_t)splitmix64(&x);
}

#endif /* TRANSPORT_HELPERS_H */
