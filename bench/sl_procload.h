/* SPDX-License-Identifier: MIT */
/*
 * sl_procload.h — the process workload: dirtier threads writing into an
 * anonymous region of this process, with the guest's patterns, page record
 * and rate control, for migrating process memory without KVM (tracked with
 * the userfaultfd-WP + PAGEMAP_SCAN source, sl_dirty_uffd_new).
 *
 * The region is cut like the guest's working set (sl_guest_abi.h): thread t
 * writes share t of [wss_start, wss_start + wss_bytes); every page it writes
 * gets the record {tag = page index in the region, pass, pass}, so
 * sl_procload_verify (or sl_vmm_verify_pages on a copy) can check an image.
 * Pages outside the working set are never touched: with the default
 * MAP_NORESERVE mapping they stay unpopulated.
 *
 * Threading: control calls (new/free/start/stop/resume/verify) from one
 * thread at a time; sl_procload_passes/get_stats/set_rate_limit from any.
 * Errors: negative errno, text in the caller's sl_errbuf (new) or
 * sl_procload_last_error().
 */
#ifndef SL_PROCLOAD_H
#define SL_PROCLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/sl_guest_abi.h"
#include "sl_common.h"
#include "sl_vmm.h"

struct sl_procload;

struct sl_procload_config {
	size_t size;                  /* sizeof(struct sl_procload_config) */
	uint64_t bytes;               /* region size, multiple of 4 KiB, 4 KiB .. 8 TiB */
	void *mem;                    /* caller's page-aligned region of `bytes`;
				       * NULL = an anonymous MAP_NORESERVE mapping */
	unsigned nthreads;            /* dirtier threads, 1 .. SL_GUEST_MAX_VCPUS */
	uint64_t wss_start;           /* working set offset in the region, 4 KiB aligned */
	uint64_t wss_bytes;           /* 0 = to the end of the region; < 8 TiB */
	enum sl_guest_pattern pattern;
	uint32_t stride_pages;        /* SL_GUEST_STRIDE (0 = 16) */
	uint32_t report_pages;        /* rate-control granularity in pages (0 = 64) */
	uint32_t seed;
	uint32_t max_passes;          /* threads finish after this many passes (0 = never) */
	uint64_t rate_limit;          /* page writes per second, all threads (0 = unlimited) */
};

struct sl_procload_stats {
	uint64_t pages_written;   /* page records written since start */
	uint64_t rate_sleep_ns;   /* time threads slept to hold the rate */
	unsigned finished;        /* threads done (max_passes reached) */
};

/* Maps (or adopts) the region; threads start with sl_procload_start.
 * -EINVAL bad config, -ENOMEM. */
int sl_procload_new(const struct sl_procload_config *cfg, struct sl_procload **out,
		    struct sl_errbuf *eb);
/* Stops and joins the threads, unmaps the region if it mapped it. NULL-safe. */
void sl_procload_free(struct sl_procload **pl);

/* Starts the threads (-EALREADY if started). */
int sl_procload_start(struct sl_procload *pl);
/* Returns once every thread is parked between two page writes (or
 * finished): the region is stable until sl_procload_resume. Idempotent. */
int sl_procload_stop(struct sl_procload *pl);
int sl_procload_resume(struct sl_procload *pl);

int sl_procload_mem(struct sl_procload *pl, void **ptr, uint64_t *len);
/* Completed passes: the minimum over threads. */
uint64_t sl_procload_passes(const struct sl_procload *pl);
void sl_procload_get_stats(const struct sl_procload *pl, struct sl_procload_stats *out);
void sl_procload_set_rate_limit(struct sl_procload *pl, uint64_t pages_per_sec);

/* The working set as a parameter block (for sl_vmm_verify_pages on a copy of
 * the region; page numbers are region-relative) and, if status is non-NULL,
 * nthreads status entries. */
void sl_procload_params(const struct sl_procload *pl, struct sl_guest_params *p,
			struct sl_guest_status *status);
/* Checks the region's page records (call while stopped): 0, -EBADMSG. */
int sl_procload_verify(struct sl_procload *pl, struct sl_vmm_verify *out);

const char *sl_procload_last_error(const struct sl_procload *pl);

#endif /* SL_PROCLOAD_H */
