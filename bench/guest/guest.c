/* SPDX-License-Identifier: MIT */
/*
 * guest.c — the sluice guest: rewrites a per-page record over a working set,
 * pass after pass, in a chosen order, and reports progress on I/O ports.
 *
 * Freestanding 32-bit code (no libc, no libgcc: 32-bit arithmetic only).
 * Parameters come from the mini-VMM's parameter block at SL_GUEST_PARAM_GPA
 * or, under a multiboot loader such as QEMU -kernel, from the command line:
 *   start=2M size=64M pattern=seq|random|stride stride=16 report=256
 *   seed=1 passes=0
 * (sizes take K/M/G suffixes; unknown words, like the kernel's own file name
 * QEMU puts first, are ignored). The layout and page record are described in
 * sl_guest_abi.h.
 */
#include <stdint.h>

#include "sl_guest_abi.h"

void guest_main(uint32_t magic, uint32_t info, uint32_t cpu);

/* Multiboot v1 information structure (the fields this guest reads). */
struct mb_info {
	uint32_t flags;
	uint32_t mem_lower; /* KiB below 1 MiB (flags bit 0) */
	uint32_t mem_upper; /* KiB above 1 MiB (flags bit 0) */
	uint32_t boot_device;
	uint32_t cmdline;   /* physical address of a C string (flags bit 2) */
};

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %w1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %w1" : : "a"(v), "Nd"(port) : "memory");
}

static void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" : : : "memory");
}

static void dbg_str(const char *s)
{
	while (*s)
		outb(SL_GUEST_PORT_DEBUGCON, (uint8_t)*s++);
}

static void dbg_u32(uint32_t v)
{
	char buf[11];
	int i = 10;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	dbg_str(&buf[i]);
}

static int word_is(const char *s, const char *key)
{
	while (*key)
		if (*s++ != *key++)
			return 0;
	return 1;
}

/* Parses a decimal number with an optional K/M/G suffix; saturates. */
static uint32_t parse_num(const char **sp)
{
	const char *s = *sp;
	uint32_t v = 0;
	while (*s >= '0' && *s <= '9') {
		uint32_t d = (uint32_t)(*s++ - '0');
		v = v > (0xffffffffu - d) / 10 ? 0xffffffffu : v * 10 + d;
	}
	uint32_t shift = 0;
	if (*s == 'K' || *s == 'k')
		shift = 10;
	else if (*s == 'M' || *s == 'm')
		shift = 20;
	else if (*s == 'G' || *s == 'g')
		shift = 30;
	if (shift) {
		s++;
		v = v > (0xffffffffu >> shift) ? 0xffffffffu : v << shift;
	}
	*sp = s;
	return v;
}

/* Fills the parameter block from a multiboot command line and memory map. */
static void params_from_multiboot(volatile struct sl_guest_params *p, const struct mb_info *mb)
{
	uint32_t mem_end = 0x100000u + 63u * 1024u * 1024u; /* if the loader says nothing */
	uint32_t start = SL_GUEST_WSS_MIN_GPA, size = 64u << 20;
	uint32_t pattern = SL_GUEST_SEQUENTIAL, stride = 16, report = 256, seed = 1, passes = 0;

	if (mb && (mb->flags & 1u) && mb->mem_upper < (0xffffffffu - 0x100000u) / 1024u)
		mem_end = 0x100000u + mb->mem_upper * 1024u;
	if (mb && (mb->flags & 4u) && mb->cmdline) {
		const char *s = (const char *)(uintptr_t)mb->cmdline;
		while (*s) {
			if (word_is(s, "start=")) {
				s += 6;
				start = parse_num(&s);
			} else if (word_is(s, "size=")) {
				s += 5;
				size = parse_num(&s);
			} else if (word_is(s, "stride=")) {
				s += 7;
				stride = parse_num(&s);
			} else if (word_is(s, "report=")) {
				s += 7;
				report = parse_num(&s);
			} else if (word_is(s, "seed=")) {
				s += 5;
				seed = parse_num(&s);
			} else if (word_is(s, "passes=")) {
				s += 7;
				passes = parse_num(&s);
			} else if (word_is(s, "pattern=random")) {
				pattern = SL_GUEST_RANDOM;
			} else if (word_is(s, "pattern=stride")) {
				pattern = SL_GUEST_STRIDE;
			} else if (word_is(s, "pattern=seq")) {
				pattern = SL_GUEST_SEQUENTIAL;
			}
			while (*s && *s != ' ')
				s++;
			while (*s == ' ')
				s++;
		}
	}
	/* Clamp the working set into [2 MiB, end of memory), whole pages. */
	start = (start + SL_GUEST_PAGE_SIZE - 1) & ~(SL_GUEST_PAGE_SIZE - 1);
	if (start < SL_GUEST_WSS_MIN_GPA)
		start = SL_GUEST_WSS_MIN_GPA;
	if (start >= mem_end)
		start = mem_end - SL_GUEST_PAGE_SIZE;
	if (size > mem_end - start)
		size = mem_end - start;
	if (size < SL_GUEST_PAGE_SIZE)
		size = SL_GUEST_PAGE_SIZE;

	p->version = SL_GUEST_PARAM_VERSION;
	p->nvcpus = 1;
	p->pattern = pattern;
	p->wss_first_page = start >> SL_GUEST_PAGE_SHIFT;
	p->wss_pages = size >> SL_GUEST_PAGE_SHIFT;
	p->stride = stride ? stride : 1;
	p->report_pages = report;
	p->seed = seed;
	p->max_passes = passes;
	p->magic = SL_GUEST_PARAM_MAGIC;

	/* Low memory may hold whatever the firmware left there. */
	volatile struct sl_guest_status *st = (volatile struct sl_guest_status *)SL_GUEST_STATUS_GPA;
	st->pass = 0;
	st->pos = 0;
	st->passes_done = 0;
	st->reserved = 0;
}

static int params_valid(const volatile struct sl_guest_params *p)
{
	if (p->magic != SL_GUEST_PARAM_MAGIC || p->version != SL_GUEST_PARAM_VERSION)
		return 0;
	if (p->nvcpus == 0 || p->nvcpus > SL_GUEST_MAX_VCPUS || p->pattern > SL_GUEST_STRIDE)
		return 0;
	if (p->wss_pages < p->nvcpus || p->wss_first_page < (SL_GUEST_WSS_MIN_GPA >> SL_GUEST_PAGE_SHIFT))
		return 0;
	/* The last page must be addressable with 32-bit physical addresses. */
	if (p->wss_pages > (1u << 20) - p->wss_first_page)
		return 0;
	return 1;
}

/* The page record: tag, then the pass at the start and at the end. */
static inline void write_page(uint32_t page, uint32_t pass)
{
	volatile uint32_t *w = (volatile uint32_t *)(uintptr_t)(page << SL_GUEST_PAGE_SHIFT);
	w[SL_GUEST_REC_TAG] = page;
	w[SL_GUEST_REC_PASS] = pass;
	w[SL_GUEST_REC_PASS_END] = pass;
}

void guest_main(uint32_t magic, uint32_t info, uint32_t cpu)
{
	volatile struct sl_guest_params *vp = (volatile struct sl_guest_params *)SL_GUEST_PARAM_GPA;
	int debugcon = 0;

	if (magic == SL_GUEST_MB_BOOT_MAGIC) {
		params_from_multiboot(vp, (const struct mb_info *)(uintptr_t)info);
		debugcon = 1;
		cpu = 0;
		dbg_str("sluice-guest: working set ");
		dbg_u32(vp->wss_pages);
		dbg_str(" pages at page ");
		dbg_u32(vp->wss_first_page);
		dbg_str("\n");
	} else if (magic != SL_GUEST_VMM_MAGIC || !params_valid(vp)) {
		outl(SL_GUEST_PORT_ERROR, SL_GUEST_ERR_PARAMS);
		halt_forever();
	}
	if (!params_valid(vp)) {
		dbg_str("sluice-guest: bad parameters\n");
		outl(SL_GUEST_PORT_ERROR, SL_GUEST_ERR_PARAMS);
		halt_forever();
	}
	if (cpu >= vp->nvcpus) {
		outl(SL_GUEST_PORT_ERROR, SL_GUEST_ERR_VCPU);
		halt_forever();
	}

	/* Copy the parameters once: the loop must not depend on memory the
	 * host might rewrite. */
	struct sl_guest_params p;
	p.nvcpus = vp->nvcpus;
	p.pattern = vp->pattern;
	p.wss_first_page = vp->wss_first_page;
	p.wss_pages = vp->wss_pages;
	p.stride = vp->stride;
	p.report_pages = vp->report_pages;
	p.seed = vp->seed;
	p.max_passes = vp->max_passes;

	volatile struct sl_guest_status *st =
		(volatile struct sl_guest_status *)SL_GUEST_STATUS_GPA + cpu;
	uint32_t first, n;
	sl_guest_share(&p, cpu, &first, &n);

	/* Resuming after a restore needs nothing special: all state is in
	 * registers, this stack and the status block, which migrate.
	 *
	 * The loops are kept short: on a KVM that emulates guest code (PVM)
	 * every instruction costs, so pages are written in chunks up to the
	 * next progress report, the sequential pattern has its own loop, and
	 * the status block's pos is updated per chunk, not per page. */
	const uint32_t report = p.report_pages ? p.report_pages : 0xffffffffu;
	uint32_t left = report; /* page writes until the next progress OUT */
	for (uint32_t pass = st->passes_done + 1;; pass++) {
		struct sl_guest_order o;
		sl_guest_order_begin(&o, n, p.pattern, p.stride, p.seed, pass);
		st->pass = pass;
		st->pos = 0;
		for (uint32_t i = 0; i < n;) {
			uint32_t chunk = n - i < left ? n - i : left;
			if (p.pattern == SL_GUEST_SEQUENTIAL) {
				for (uint32_t page = first + i, end = page + chunk; page < end; page++)
					write_page(page, pass);
			} else {
				for (uint32_t k = 0; k < chunk; k++)
					write_page(first + sl_guest_order_next(&o), pass);
			}
			i += chunk;
			left -= chunk;
			st->pos = i;
			if (left == 0) {
				outl(SL_GUEST_PORT_PROGRESS, report);
				left = report;
			}
		}
		st->passes_done = pass;
		outl(SL_GUEST_PORT_PASS, pass);
		if (debugcon) {
			dbg_str("sluice-guest: pass ");
			dbg_u32(pass);
			dbg_str("\n");
		}
		if (p.max_passes && pass >= p.max_passes)
			break;
	}
	if (p.report_pages && left != report)
		outl(SL_GUEST_PORT_PROGRESS, report - left);
	halt_forever();
}
