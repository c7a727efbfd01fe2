/* SPDX-License-Identifier: MIT */
/*
 * sl_guest_abi.h — the contract between the freestanding guest (bench/guest/)
 * and the host side (mini-VMM, process workload, verifier).
 *
 * Included by 32-bit freestanding guest code AND by the 64-bit host, so it
 * uses only <stdint.h> types and 32-bit arithmetic (no 64-bit division in
 * the guest: there is no libgcc).
 *
 * Memory image (guest-physical, 4 KiB pages):
 *   0x9000            parameter block (struct sl_guest_params) followed by
 *                     one struct sl_guest_status per vCPU
 *   0x100000 (1 MiB)  the guest image (multiboot v1 ELF), < 1 MiB
 *   >= 2 MiB          the working set
 *
 * Each page the guest writes carries a record so a copy of the memory can be
 * checked: word 0 = the page's own number (a tag, catches misplaced pages),
 * word 1 and the page's last word = the pass number that wrote it (catches
 * torn copies). Pass numbers start at 1; 0 means never written.
 *
 * Every pass visits every page of a vCPU's share of the working set exactly
 * once, in an order fixed by (pattern, stride, seed, pass), so a consistent
 * image of a share has pass P on a prefix of pass P's visit order and P-1 on
 * the rest. The visit order is defined by sl_guest_order_*() below, used by
 * both the guest and the verifier.
 */
#ifndef SL_GUEST_ABI_H
#define SL_GUEST_ABI_H

#include <stdint.h>

#define SL_GUEST_PAGE_SHIFT 12u
#define SL_GUEST_PAGE_SIZE 4096u
#define SL_GUEST_LOAD_GPA 0x100000u   /* multiboot image load address */
#define SL_GUEST_WSS_MIN_GPA 0x200000u /* working set may not start below */
#define SL_GUEST_PARAM_GPA 0x9000u
#define SL_GUEST_MAX_VCPUS 32u
#define SL_GUEST_STACK_SIZE 4096u

#define SL_GUEST_MB_MAGIC 0x1BADB002u        /* multiboot v1 header magic */
#define SL_GUEST_MB_BOOT_MAGIC 0x2BADB002u   /* EAX from a multiboot loader */
#define SL_GUEST_VMM_MAGIC 0x534C564Du       /* EAX from the mini-VMM ("SLVM") */
#define SL_GUEST_PARAM_MAGIC 0x534C4750u     /* "SLGP" */
#define SL_GUEST_PARAM_VERSION 1u

/* I/O ports (32-bit OUT). */
#define SL_GUEST_PORT_PASS 0x510u     /* value: pass number just finished */
#define SL_GUEST_PORT_PROGRESS 0x511u /* value: pages written since the last progress OUT */
#define SL_GUEST_PORT_ERROR 0x512u    /* value: SL_GUEST_ERR_* ; the guest then halts */
#define SL_GUEST_PORT_DEBUGCON 0xE9u  /* bytes: text log (QEMU isa-debugcon) */

#define SL_GUEST_ERR_PARAMS 1u /* parameter block missing or invalid */
#define SL_GUEST_ERR_VCPU 2u   /* vCPU index out of range */

enum sl_guest_pattern {
	SL_GUEST_SEQUENTIAL = 0, /* pages in order */
	SL_GUEST_RANDOM = 1,     /* a pseudo-random permutation, new per pass */
	SL_GUEST_STRIDE = 2,     /* every stride-th page, then the next column */
};

/* At SL_GUEST_PARAM_GPA. The VMM fills it before starting the vCPUs; under a
 * multiboot loader the guest fills it from its command line. */
struct sl_guest_params {
	uint32_t magic;          /* SL_GUEST_PARAM_MAGIC */
	uint32_t version;        /* SL_GUEST_PARAM_VERSION */
	uint32_t nvcpus;         /* vCPUs sharing the working set (1..SL_GUEST_MAX_VCPUS) */
	uint32_t pattern;        /* enum sl_guest_pattern */
	uint32_t wss_first_page; /* guest page number of the working set's first page */
	uint32_t wss_pages;      /* pages in the working set */
	uint32_t stride;         /* SL_GUEST_STRIDE: pages between writes (>= 1) */
	uint32_t report_pages;   /* progress OUT every this many writes (0 = per pass only) */
	uint32_t seed;           /* SL_GUEST_RANDOM: permutation seed */
	uint32_t max_passes;     /* halt after this many passes (0 = run forever) */
	uint32_t reserved[6];
};

/* Per-vCPU progress, written by the guest: one per vCPU right after the
 * parameter block. pos: pages of pass `pass` written, updated per chunk
 * (at each progress report and at the end of a pass), so it may lag. */
struct sl_guest_status {
	uint32_t pass;
	uint32_t pos;
	uint32_t passes_done;
	uint32_t reserved;
};

#define SL_GUEST_STATUS_GPA (SL_GUEST_PARAM_GPA + (uint32_t)sizeof(struct sl_guest_params))

/* Word indices of the per-page record. */
#define SL_GUEST_REC_TAG 0u
#define SL_GUEST_REC_PASS 1u
#define SL_GUEST_REC_PASS_END (SL_GUEST_PAGE_SIZE / 4u - 1u)

/* The share of the working set vCPU `cpu` writes: pages [*first, *first + *n). */
static inline void sl_guest_share(const struct sl_guest_params *p, uint32_t cpu,
				  uint32_t *first, uint32_t *n)
{
	/* Divide first: no product can overflow 32 bits. */
	uint32_t lo = p->wss_pages / p->nvcpus * cpu;
	uint32_t hi = cpu + 1 == p->nvcpus ? p->wss_pages : p->wss_pages / p->nvcpus * (cpu + 1);
	*first = p->wss_first_page + lo;
	*n = hi - lo;
}

/* Visit-order iterator over n pages (indices 0..n-1 relative to the share). */
struct sl_guest_order {
	uint32_t n;
	uint32_t pattern;
	uint32_t step;  /* STRIDE: stride; RANDOM: multiplier coprime to n */
	uint32_t cur;
	uint32_t col;   /* STRIDE: current column */
};

static inline uint32_t sl_guest_gcd(uint32_t a, uint32_t b)
{
	while (b) {
		uint32_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static inline uint32_t sl_guest_hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

static inline void sl_guest_order_begin(struct sl_guest_order *o, uint32_t n, uint32_t pattern,
					uint32_t stride, uint32_t seed, uint32_t pass)
{
	o->n = n;
	o->pattern = pattern;
	o->cur = 0;
	o->col = 0;
	o->step = 1;
	if (n == 0)
		return;
	if (pattern == SL_GUEST_STRIDE) {
		o->step = stride == 0 ? 1 : (stride > n ? n : stride);
	} else if (pattern == SL_GUEST_RANDOM) {
		/* cur += step mod n visits every page once when gcd(step, n) = 1;
		 * a step near 0.69 n scatters consecutive writes. */
		uint32_t m = (n >> 1) + (n >> 3) + (n >> 4) + 1;
		if (m >= n)
			m = n - 1;
		if (m == 0)
			m = 1;
		while (m > 1 && sl_guest_gcd(m, n) != 1)
			m--;
		o->step = m;
		o->cur = sl_guest_hash32(seed ^ (pass * 0x9e3779b9u)) % n;
	}
}

/* Returns the next page index; call exactly n times per pass. */
static inline uint32_t sl_guest_order_next(struct sl_guest_order *o)
{
	uint32_t r = o->cur;
	if (o->pattern == SL_GUEST_STRIDE) {
		o->cur += o->step;
		if (o->cur >= o->n)
			o->cur = ++o->col;
	} else if (o->pattern == SL_GUEST_RANDOM) {
		o->cur += o->step; /* < 2n <= 2^32 for n < 2^31 pages */
		if (o->cur >= o->n)
			o->cur -= o->n;
	} else {
		o->cur++;
	}
	return r;
}

#endif /* SL_GUEST_ABI_H */
