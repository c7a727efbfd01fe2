/* SPDX-License-Identifier: MIT */
/*
 * vmm_verify.c — checks that a memory image holds a state the workload
 * could really have been in (see sl_guest_abi.h for the page record): used
 * on a migration destination to prove no page was lost, misplaced or torn.
 * Shared by the guest (mini-VMM) and the process workload.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm_internal.h"

static void bad(struct sl_vmm_verify *out, uint64_t page, const char *fmt, uint32_t a, uint32_t b)
{
	if (out->bad_pages++ == 0) {
		out->first_bad = page;
		snprintf(out->why, sizeof(out->why), fmt, (unsigned long long)page, a, b);
	}
}

static const uint32_t *rec(const uint8_t *mem, uint32_t page)
{
	return (const uint32_t *)(mem + (uint64_t)page * SL_GUEST_PAGE_SIZE);
}

static void verify_share(const uint8_t *mem, const struct sl_guest_params *p, uint32_t cpu,
			 const struct sl_guest_status *st, struct sl_vmm_verify *out)
{
	uint32_t first, n, top = 0;
	uint64_t half = UINT64_MAX; /* a page stopped between its two pass words */

	sl_guest_share(p, cpu, &first, &n);
	for (uint32_t i = 0; i < n; i++) {
		const uint32_t *w = rec(mem, first + i);
		uint32_t a = w[SL_GUEST_REC_PASS], b = w[SL_GUEST_REC_PASS_END];
		/* The writer stores tag, start word, end word: a stop can land
		 * between the last two, on one page per share. */
		if (a == b + 1 && half == UINT64_MAX)
			half = first + i;
		else if (a != b)
			bad(out, first + i, "page %llu is torn: pass %u at its start, %u at its end", a, b);
		if (a && w[SL_GUEST_REC_TAG] != first + i)
			bad(out, first + i, "page %llu holds the record of page %u (pass %u)",
			    w[SL_GUEST_REC_TAG], a);
		if (a > top)
			top = a;
	}
	out->pages += n;
	if (cpu == 0 || top < out->pass_min)
		out->pass_min = top;
	if (top > out->pass_max)
		out->pass_max = top;
	if (top == 0)
		return; /* never written: all zero, checked above */

	/* Pass `top` wrote a prefix of its visit order; the rest still hold
	 * the previous pass. A half-written page is the prefix's last. */
	struct sl_guest_order o;
	uint32_t k = 0;
	uint64_t last = UINT64_MAX;
	bool in_prefix = true;
	sl_guest_order_begin(&o, n, p->pattern, p->stride, p->seed, top);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t page = first + sl_guest_order_next(&o);
		uint32_t v = rec(mem, page)[SL_GUEST_REC_PASS];
		if (in_prefix && v == top) {
			k++;
			last = page;
		} else if (v == top - 1) {
			in_prefix = false;
		} else {
			bad(out, page, "page %llu holds pass %u out of order (share's latest pass %u)", v,
			    top);
		}
	}
	if (half != UINT64_MAX && half != last)
		bad(out, half, "page %llu is torn: pass %u at its start, %u at its end",
		    rec(mem, (uint32_t)half)[SL_GUEST_REC_PASS],
		    rec(mem, (uint32_t)half)[SL_GUEST_REC_PASS_END]);
	if (st) {
		uint32_t done = st[cpu].passes_done;
		if (done > top || done + 1 < top || (k < n && done != top - 1))
			bad(out, first, "share at page %llu: status says %u passes done, pages say %u",
			    done, top);
	}
}

SL_EXPORT int sl_vmm_verify_pages(const void *mem, uint64_t mem_pages, const struct sl_guest_params *p,
				  const struct sl_guest_status *status, struct sl_vmm_verify *out)
{
	if (!mem || !p || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->first_bad = UINT64_MAX;
	if (p->nvcpus == 0 || p->nvcpus > SL_GUEST_MAX_VCPUS || p->wss_pages < p->nvcpus ||
	    p->pattern > SL_GUEST_STRIDE || (uint64_t)p->wss_first_page + p->wss_pages > mem_pages ||
	    (uint64_t)p->wss_first_page + p->wss_pages > (1ull << 31)) {
		snprintf(out->why, sizeof(out->why), "parameters don't fit the memory image");
		return -EINVAL;
	}
	out->nshares = p->nvcpus;
	for (uint32_t c = 0; c < p->nvcpus; c++)
		verify_share(mem, p, c, status, out);
	return out->bad_pages ? -EBADMSG : 0;
}

SL_EXPORT int sl_vmm_verify_image(const void *mem, uint64_t len, struct sl_vmm_verify *out)
{
	struct sl_guest_params p;
	struct sl_guest_status st[SL_GUEST_MAX_VCPUS];

	if (!mem || !out || len < SL_GUEST_STATUS_GPA + sizeof(st))
		return -EINVAL;
	memcpy(&p, (const uint8_t *)mem + SL_GUEST_PARAM_GPA, sizeof(p));
	memcpy(st, (const uint8_t *)mem + SL_GUEST_STATUS_GPA, sizeof(st));
	if (p.magic != SL_GUEST_PARAM_MAGIC || p.version != SL_GUEST_PARAM_VERSION) {
		memset(out, 0, sizeof(*out));
		out->first_bad = UINT64_MAX;
		snprintf(out->why, sizeof(out->why), "no guest parameter block at 0x%x", SL_GUEST_PARAM_GPA);
		return -EBADMSG;
	}
	return sl_vmm_verify_pages(mem, len / SL_GUEST_PAGE_SIZE, &p, st, out);
}

SL_EXPORT int sl_vmm_verify(struct sl_vmm *vmm, struct sl_vmm_verify *out)
{
	if (!vmm || !out)
		return -EINVAL;
	return sl_vmm_verify_image(vmm->mem, SL_MIN(vmm->mem_bytes, 1ull << 32), out);
}
