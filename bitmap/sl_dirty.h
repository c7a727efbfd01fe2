/* SPDX-License-Identifier: MIT */
/*
 * sl_dirty.h — dirty-log sources: one interface over every way a VMM learns
 * which guest pages were written (KVM bitmap, KVM dirty ring, userfaultfd-WP
 * + PAGEMAP_SCAN, VFIO type1, VFIO device DMA logging, iommufd, synthetic,
 * trace replay).
 *
 * A source instance tracks ONE region of `npages` pages (page 0 = the
 * region's first page). The engine owns a bitmap per region and calls
 * sl_dirty_sync() once per iteration; the source ORs the pages written since
 * the previous sync into that bitmap (bit n of word w = page w*64+n).
 *
 * Clear-before-copy: sources with SL_DIRTY_CAP_MANUAL_CLEAR (KVM bitmap with
 * MANUAL_PROTECT2) do NOT re-arm tracking in sync(); the engine calls
 * sl_dirty_clear() on 64-page-aligned chunks just before it reads those pages
 * for sending. Other sources re-arm inside sync() (fetch-and-clear) and their
 * clear() returns 0 without effect.
 *
 * Threading: one thread at a time per source (the engine's iteration
 * thread), except sl_dirty_kvm_ring_drain(), which a vCPU thread may call
 * concurrently with syncs (a mutex per ring). The tracked memory itself may
 * be written by any thread, vCPU or device at any time: nothing is lost,
 * a write racing with a sync is reported by that sync or the next.
 * Errors: negative errno; sl_dirty_last_error() has the text. A source that
 * cannot work on this kernel fails in start() and says why — it never
 * silently reports nothing.
 */
#ifndef SL_DIRTY_H
#define SL_DIRTY_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_common.h"
#include "sl_sys.h"

struct sl_dirty_source;

enum sl_dirty_kind {
	SL_DIRTY_KVM_BITMAP,
	SL_DIRTY_KVM_RING,
	SL_DIRTY_UFFD_WP,
	SL_DIRTY_VFIO_TYPE1,
	SL_DIRTY_VFIO_DMA_LOG,
	SL_DIRTY_IOMMUFD,
	SL_DIRTY_SYNTHETIC,
	SL_DIRTY_TRACE,
};

/* Capability bits returned by sl_dirty_caps(). */
#define SL_DIRTY_CAP_MANUAL_CLEAR (1u << 0) /* engine must call clear() before copying */
#define SL_DIRTY_CAP_SIMULATED (1u << 1)    /* not a kernel log: synthetic or replay */
#define SL_DIRTY_CAP_RANGES (1u << 2)       /* kernel returns coalesced ranges (PAGEMAP_SCAN) */

struct sl_dirty_counters {
	uint64_t syncs;        /* sync() calls that succeeded */
	uint64_t sync_ns;      /* total time inside sync() */
	uint64_t pages_found;  /* pages reported dirty, summed over syncs */
	uint64_t last_pages;   /* pages reported by the last sync */
	uint64_t clear_calls;  /* kernel clear operations issued */
	uint64_t clear_ns;     /* total time inside clear() */
	uint64_t errors;       /* kernel reports that failed; the source then marked
	                        * the whole range dirty rather than lose pages */
};

/* Operations table every source implements (see sl_dirty_internal.h).
 * sync returns the pages this sync found dirty (>= 0; bits it set, whether
 * or not they were already set in bitmap) or -errno. */
struct sl_dirty_ops {
	const char *name; /* "kvm-bitmap", "uffd-wp", ... */
	int (*start)(struct sl_dirty_source *src);
	int64_t (*sync)(struct sl_dirty_source *src, uint64_t *bitmap);
	int (*clear)(struct sl_dirty_source *src, uint64_t first, uint64_t npages);
	int (*stop)(struct sl_dirty_source *src);
	void (*destroy)(struct sl_dirty_source *src);
};

/* ---- generic calls ---------------------------------------------------- */

/* Starts tracking: from here on every write is caught. */
int sl_dirty_start(struct sl_dirty_source *src);
/* ORs pages written since the last sync (or start) into bitmap, which has
 * room for the region's npages (SL_DIV_ROUND_UP(npages, 64) words). Returns
 * the number of pages this sync reported dirty (>= 0; a page already set in
 * bitmap still counts) or negative errno (-EINVAL before start()). */
int64_t sl_dirty_sync(struct sl_dirty_source *src, uint64_t *bitmap);
/* Re-arms tracking for [first, first+npages) (region-relative): the pages
 * the last sync reported there are write-protected again; a page written
 * after that sync stays dirty and is reported by the next one. For manual
 * sources first must be a multiple of 64 and npages too, unless the range
 * ends at the region's end (-EINVAL otherwise). Others: 0, no effect. */
int sl_dirty_clear(struct sl_dirty_source *src, uint64_t first, uint64_t npages);
int sl_dirty_stop(struct sl_dirty_source *src);
void sl_dirty_free(struct sl_dirty_source **src);

enum sl_dirty_kind sl_dirty_kind(const struct sl_dirty_source *src);
const char *sl_dirty_name(const struct sl_dirty_source *src);
unsigned sl_dirty_caps(const struct sl_dirty_source *src);
uint64_t sl_dirty_npages(const struct sl_dirty_source *src);
void sl_dirty_get_counters(const struct sl_dirty_source *src, struct sl_dirty_counters *out);
const char *sl_dirty_last_error(const struct sl_dirty_source *src);
/* Optional log callback for non-fatal events (e.g. a failed kernel report
 * that was replaced by "all dirty"). Call before start(). */
void sl_dirty_set_log(struct sl_dirty_source *src, sl_log_fn fn, void *ctx);

/* ---- constructors: each validates its config, returns 0 or -errno ---------
 * `sys` may be NULL for the real kernel. Configs start with a size field so
 * they can grow: set it to sizeof(struct ...). */

struct sl_dirty_kvm_bitmap_config {
	size_t size;
	const struct sl_sys *sys;
	int vm_fd;
	uint32_t slot;        /* KVM memslot id (as_id << 16 | id) */
	uint64_t npages;      /* pages in the slot */
	bool manual_protect;  /* use KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (enabled by the VMM) */
};
int sl_dirty_kvm_bitmap_new(const struct sl_dirty_kvm_bitmap_config *cfg,
			    struct sl_dirty_source **out, struct sl_errbuf *eb);
/* VMM helper: enables KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 on vm_fd with
 * MANUAL_PROTECT_ENABLE (| INITIALLY_SET: every page starts dirty, so the
 * first sync reports the whole slot). Call before creating memslots.
 * Returns 0, -EOPNOTSUPP if KVM lacks the flags, or the ioctl's -errno. */
int sl_kvm_enable_manual_protect(const struct sl_sys *sys, int vm_fd, bool initially_set,
				 struct sl_errbuf *eb);

/* The dirty ring is per VM (one ring per vCPU, all slots). A shared ring
 * object is harvested once and dispatched to the per-slot sources. */
struct sl_kvm_ring;
struct sl_kvm_ring_config {
	size_t size;
	const struct sl_sys *sys;
	int vm_fd;
	unsigned nvcpus;
	const int *vcpu_fds;    /* nvcpus fds */
	uint32_t ring_entries;  /* as enabled with KVM_CAP_DIRTY_LOG_RING(_ACQ_REL) */
	long page_size;         /* host page size (ring mmap offset = 64 * page_size) */
};
int sl_kvm_ring_new(const struct sl_kvm_ring_config *cfg, struct sl_kvm_ring **out,
		    struct sl_errbuf *eb);
void sl_kvm_ring_free(struct sl_kvm_ring **ring);
/* Drains one vCPU's ring (vCPU thread, after KVM_EXIT_DIRTY_RING_FULL or
 * before stopping): harvested entries are kept for the next sync, and
 * KVM_RESET_DIRTY_RINGS lets the vCPU run on. Call it from vCPU `vcpu`'s
 * own thread while it is out of KVM_RUN (any other thread may sync at the
 * same time). Also recovers a ring KVM overran (see sl_kvm_ring_overflows).
 * Returns entries harvested, -EINVAL for a bad vcpu, or the reset's -errno. */
int sl_dirty_kvm_ring_drain(struct sl_kvm_ring *ring, unsigned vcpu);
/* Entries harvested for slots that have no started source (dropped after
 * re-arming, so the guest never stalls on them). Any thread. */
uint64_t sl_kvm_ring_unclaimed(struct sl_kvm_ring *ring);
/* Times a ring was found overrun (KVM overwrote entries; seen when a guest
 * runs in KVM's instruction emulator). Each overrun makes every source on
 * the ring report its whole slot once (counted in its counters.errors).
 * Any thread. */
uint64_t sl_kvm_ring_overflows(struct sl_kvm_ring *ring);

struct sl_dirty_kvm_ring_config {
	size_t size;
	struct sl_kvm_ring *ring; /* shared; must outlive the source */
	uint32_t slot;
	uint64_t npages;
};
int sl_dirty_kvm_ring_new(const struct sl_dirty_kvm_ring_config *cfg,
			  struct sl_dirty_source **out, struct sl_errbuf *eb);

struct sl_dirty_uffd_config {
	size_t size;
	const struct sl_sys *sys;
	void *addr;      /* page-aligned start of the tracked memory (this process) */
	uint64_t npages;
	long page_size;  /* 0 = sysconf */
	uint64_t vec_len; /* regions per PAGEMAP_SCAN call; 0 = 512 (optional field) */
};
int sl_dirty_uffd_new(const struct sl_dirty_uffd_config *cfg,
		      struct sl_dirty_source **out, struct sl_errbuf *eb);
/* Probes userfaultfd WP_ASYNC + PAGEMAP_SCAN on this kernel with a real
 * two-page round trip: 0, or -errno with why in eb (e.g. -EOPNOTSUPP: no
 * WP_ASYNC, -ENOTTY: no PAGEMAP_SCAN, -EPERM: userfaultfd not allowed). */
int sl_dirty_uffd_probe(struct sl_errbuf *eb);
/* PAGEMAP_SCAN calls issued so far by a uffd-wp source (0 for others). */
uint64_t sl_dirty_uffd_scans(const struct sl_dirty_source *src);

struct sl_dirty_vfio_type1_config {
	size_t size;
	const struct sl_sys *sys;
	int container_fd;
	uint64_t iova;
	uint64_t npages;
	uint64_t pgsize;
};
int sl_dirty_vfio_type1_new(const struct sl_dirty_vfio_type1_config *cfg,
			    struct sl_dirty_source **out, struct sl_errbuf *eb);

/* An IOVA range [iova, iova + length) (VFIO DMA logging). */
struct sl_dirty_iova_range {
	uint64_t iova;
	uint64_t length;
};

/* Device DMA logging: the region is [iova, iova + npages * page_size). By
 * default the whole region is one logged range; `ranges` may instead list
 * the parts a device can reach (page-aligned, non-overlapping, inside the
 * region; the driver may refuse too many with -E2BIG at start). One source
 * per device: a second START on the same device fails. */
struct sl_dirty_vfio_dma_log_config {
	size_t size;
	const struct sl_sys *sys;
	int device_fd;
	uint64_t iova;
	uint64_t npages;
	uint64_t page_size;
	uint32_t nranges;                         /* optional; 0 = whole region */
	const struct sl_dirty_iova_range *ranges; /* copied by _new */
};
int sl_dirty_vfio_dma_log_new(const struct sl_dirty_vfio_dma_log_config *cfg,
			      struct sl_dirty_source **out, struct sl_errbuf *eb);

struct sl_dirty_iommufd_config {
	size_t size;
	const struct sl_sys *sys;
	int iommufd;
	uint32_t hwpt_id;
	uint64_t iova;
	uint64_t npages;
	uint64_t page_size;
};
int sl_dirty_iommufd_new(const struct sl_dirty_iommufd_config *cfg,
			 struct sl_dirty_source **out, struct sl_errbuf *eb);

enum sl_synth_pattern {
	SL_SYNTH_SEQUENTIAL, /* sweeps the working set in order, wrapping */
	SL_SYNTH_UNIFORM,    /* uniform random pages of the working set */
	SL_SYNTH_HOTCOLD,    /* hot_share of the writes go to the first hot_frac of the pages */
	SL_SYNTH_ZIPF,       /* Zipf(s) over the working set */
};
struct sl_dirty_synthetic_config {
	size_t size;
	uint64_t npages;
	uint64_t wss_first;     /* working set: [wss_first, wss_first + wss_pages) */
	uint64_t wss_pages;
	double pages_per_sec;   /* page writes per simulated second (a write may hit a dirty page) */
	enum sl_synth_pattern pattern;
	double hot_frac;        /* HOTCOLD: fraction of the working set that is hot (0.1) */
	double hot_share;       /* HOTCOLD: fraction of writes going to hot pages (0.9) */
	double zipf_s;          /* ZIPF exponent (1.0) */
	uint64_t seed;
	/* Simulated clock: NULL = real monotonic time; else called for "now" in ns. */
	uint64_t (*clock_ns)(void *ctx);
	void *clock_ctx;
};
int sl_dirty_synthetic_new(const struct sl_dirty_synthetic_config *cfg,
			   struct sl_dirty_source **out, struct sl_errbuf *eb);
/* Model (docs/dirty-sources.md "Synthetic source"): wss_pages == 0 means
 * the rest of the region from wss_first; HOTCOLD's hot set is the first
 * hot_frac of the working set; ZIPF rank 1 is the working set's first page.
 * Errors: -EINVAL (bad config, text in eb), -ENOMEM. sync() returns -EINVAL
 * if clock_ns goes backwards. */
struct sl_dirty_synthetic_stats {
	uint64_t writes;         /* page writes simulated since start (rate x time) */
	uint64_t writes_dropped; /* ZIPF only: writes over the per-sync work cap, not simulated */
	uint64_t sim_ns;         /* clock time covered by the syncs since start */
};
/* Model counters of a synthetic source: 0, or -EINVAL if src is not one. */
int sl_dirty_synthetic_get_stats(const struct sl_dirty_source *src,
				 struct sl_dirty_synthetic_stats *out);

/* Trace record/replay (file format: docs/dirty-sources.md). */
struct sl_trace_writer;
int sl_trace_writer_open(const char *path, struct sl_trace_writer **out, struct sl_errbuf *eb);
/* Records one sync's result for region_id (the bitmap after the source's OR,
 * only the bits it added: pass the delta). */
int sl_trace_writer_add(struct sl_trace_writer *w, uint64_t t_ns, uint32_t region_id,
			const uint64_t *bitmap, uint64_t npages);
int sl_trace_writer_close(struct sl_trace_writer **w);
/* Writer: open creates/truncates path (-errno from open, text in eb); add
 * returns 0, -EINVAL (npages 0 or different from earlier records of the
 * region), -ENOMEM, or -errno of write(); it is thread-safe (regions' sources
 * may share one writer). close finalizes the header (counts), frees *w and
 * NULLs it; it returns the first error seen by add or close. */
/* Wraps any source: every sync is also written to the trace. */
/* The recording source takes ownership of inner (frees it with itself; on
 * failure the caller keeps it) but not of w, which must outlive it. Its sync
 * returns what inner's returns; the trace gets exactly inner's bits, with t_ns
 * = monotonic time since sl_trace_writer_open(). caps/kind are inner's. */
int sl_dirty_recording_new(struct sl_dirty_source *inner, struct sl_trace_writer *w,
			   uint32_t region_id, struct sl_dirty_source **out, struct sl_errbuf *eb);

struct sl_dirty_trace_config {
	size_t size;
	const char *path;
	uint32_t region_id;
	bool loop; /* wrap to the first sync at the end */
};
int sl_dirty_trace_new(const struct sl_dirty_trace_config *cfg,
		       struct sl_dirty_source **out, struct sl_errbuf *eb);
/* Replay: the file is fully validated here (every record's checksum and
 * size): -ENOENT etc. from open, -EBADMSG for a corrupt or truncated file,
 * -ENODATA if it holds no record of region_id; text in eb. npages comes from
 * the trace. Each sync ORs the next recorded sync of region_id and returns its
 * page count; past the end, syncs report 0 pages unless loop is set. */

#endif /* SL_DIRTY_H */
