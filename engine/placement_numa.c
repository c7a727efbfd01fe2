/* SPDX-License-Identifier: MIT */
/*
 * placement_numa.c — which NUMA node holds some memory, from libnuma's
 * move_pages(2) in query mode (nodes == NULL: nothing moves, status gets
 * each page's node, or -ENOENT for a page not faulted in yet).
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <stdint.h>
#include <unistd.h>

#include "sl_placement.h"

#define SAMPLES 64
#define MAX_NODES 1024

bool sl_numa_available(void)
{
	return numa_available() >= 0;
}

int sl_numa_node_of(const void *addr, size_t len)
{
	void *pages[SAMPLES];
	int status[SAMPLES];
	unsigned counts[MAX_NODES] = { 0 };
	uintptr_t start, end, step;
	long psz = sysconf(_SC_PAGESIZE);
	unsigned n = 0, best_n = 0;
	int best = -1;

	if (!addr || !len)
		return -EINVAL;
	if (!sl_numa_available())
		return 0;
	if (psz <= 0)
		psz = 4096;
	start = (uintptr_t)addr & ~((uintptr_t)psz - 1);
	end = (uintptr_t)addr + len;
	if (end < start)
		return -EINVAL;
	step = (end - start + SAMPLES - 1) / SAMPLES;
	step = (step + (uintptr_t)psz - 1) & ~((uintptr_t)psz - 1);
	if (!step)
		step = (uintptr_t)psz;
	for (uintptr_t a = start; a < end && n < SAMPLES; a += step)
		pages[n++] = (void *)a;
	if (move_pages(0, n, pages, NULL, status, 0) < 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		if (status[i] < 0 || status[i] >= MAX_NODES)
			continue;
		if (++counts[status[i]] > best_n) {
			best_n = counts[status[i]];
			best = status[i];
		}
	}
	return best;
}
