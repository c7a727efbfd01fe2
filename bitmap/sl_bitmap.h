/* SPDX-License-Identifier: MIT */
/*
 * sl_bitmap.h — dirty-page bitmaps: scan to coalesced page ranges (SIMD,
 * run-time dispatched), fetch-and-clear harvest, count, OR / AND-NOT,
 * set/clear a page range, ranges back to a bitmap.
 *
 * Layout: a bitmap is an array of uint64_t; bit n of word w is page w*64+n
 * (KVM, VFIO and iommufd all report this way). `npages` need not be a
 * multiple of 64: the array then has sl_bitmap_words(npages) words and the
 * bits past npages in the last word are ignored by every read and never
 * changed by any write in this module (except sl_bitmap_harvest, see there).
 *
 * Errors: negative errno. -EINVAL for NULL pointers with non-zero sizes,
 * zero output capacity, out-of-range pages and page numbers that would
 * overflow uint64_t. No function here allocates, prints or blocks.
 *
 * Threading: every function is reentrant; concurrent calls on DIFFERENT
 * bitmaps are always fine. On the SAME bitmap, only sl_bitmap_harvest()
 * tolerates another thread (or the kernel) setting bits at the same time;
 * everything else needs the caller to own the words it reads or writes.
 * A scan cursor belongs to one caller at a time.
 *
 * docs/bitmap.md explains the design (block skipping, boundary decoding,
 * branch-light emission) and the cursor contract in more detail.
 */
#ifndef SL_BITMAP_H
#define SL_BITMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h> /* ssize_t */

#ifdef __cplusplus
extern "C" {
#endif

/* A run of pages: [first, first + npages), absolute page numbers. */
struct sl_range {
	uint64_t first;
	uint64_t npages;
};

/* Scan options; a NULL pointer means all zero.
 *   size:    sizeof(struct sl_scan_opts) (0 is accepted as "current size").
 *   gap:     merge runs separated by <= gap clean pages (0 = no merging):
 *            sending a few clean pages beats another header.
 *   max_len: split ranges longer than max_len pages into pieces of max_len
 *            (the last piece shorter); 0 = no limit. Merging happens first.
 * A cursor must see the same options on every call of one scan. */
struct sl_scan_opts {
	size_t size;
	uint64_t gap;
	uint64_t max_len;
};

/* Resumable scan position. Treat the fields as private: initialise with
 * sl_scan_cursor_init(), then pass the same cursor to every call of one
 * scan. A cursor is tied to the (npages, base_page, options) of its first
 * call; a later call with different values returns -EINVAL. */
struct sl_scan_cursor {
	uint64_t magic;      /* SL_SCAN_CURSOR_MAGIC once initialised */
	uint64_t pos;        /* next page index (0-based in the bitmap) to read */
	uint64_t pend_first; /* pending range (0-based), not yet written out */
	uint64_t pend_end;
	uint64_t npages;     /* geometry and options of the first call */
	uint64_t base_page;
	uint64_t gap;
	uint64_t max_len;
	uint32_t flags;      /* started, pending, done */
	uint32_t reserved;
};

#define SL_SCAN_CURSOR_MAGIC 0x736c7363616e6375ull /* "slscancu" */

/* Resets c to the start of a scan. Never fails. */
void sl_scan_cursor_init(struct sl_scan_cursor *c);

/* True once every range of the scan has been written out. */
bool sl_scan_cursor_done(const struct sl_scan_cursor *c);

/*
 * Writes the runs of set bits among the first npages bits of words as
 * ranges (first = base_page + bit index) into out[0..cap), in ascending
 * order, coalesced (adjacent set bits always form one range), then merged
 * and split per opts.
 *
 * Returns the number of ranges written (0..cap), or -EINVAL (words NULL with
 * npages > 0, cur or out NULL, cap == 0, base_page + npages overflows,
 * opts->size too small, cursor not initialised or reused with different
 * geometry/options). When the return value is < cap the scan is complete;
 * when it equals cap, call again with the same cursor until
 * sl_scan_cursor_done(cur). Every range is written exactly once across the
 * calls, whatever cap is (cap == 1 works). A call on a done cursor returns 0.
 *
 * The bitmap must not change between calls of one scan (harvest into a
 * private bitmap first). Threading: the cursor and out belong to the caller.
 */
ssize_t sl_bitmap_scan(const uint64_t *words, uint64_t npages, uint64_t base_page,
		       const struct sl_scan_opts *opts, struct sl_scan_cursor *cur,
		       struct sl_range *out, size_t cap);

/*
 * Fetch-and-clear: moves every set bit of shared[] (bits < npages) into
 * out[] — out is OR'ed, never overwritten — and clears it in shared[].
 * Returns the number of pages harvested (bits taken from shared), or -EINVAL.
 *
 * Threading: other threads (or the kernel, or a device) may set bits in
 * shared concurrently with atomic OR. Every bit set before the call is
 * harvested by it; a bit set during the call is harvested by it or left set
 * for the next call — never lost, never counted twice. Zero words are
 * skipped with a plain load; others are exchanged with zero atomically.
 * out must not be shared. Bits past npages in shared's last word stay as
 * they are.
 */
int64_t sl_bitmap_harvest(uint64_t *shared, uint64_t *out, uint64_t npages);

/* Number of set bits among the first npages bits, or -EINVAL. */
int64_t sl_bitmap_count(const uint64_t *words, uint64_t npages);

/* dst |= src over the first npages bits. 0 or -EINVAL. */
int sl_bitmap_or(uint64_t *dst, const uint64_t *src, uint64_t npages);

/* dst &= ~src over the first npages bits. 0 or -EINVAL. */
int sl_bitmap_andnot(uint64_t *dst, const uint64_t *src, uint64_t npages);

/* Sets / clears pages [first, first + n) — 0-based bit indices, not
 * absolute pages. first + n must be <= npages. 0 or -EINVAL. */
int sl_bitmap_set_range(uint64_t *words, uint64_t npages, uint64_t first, uint64_t n);
int sl_bitmap_clear_range(uint64_t *words, uint64_t npages, uint64_t first, uint64_t n);

/* Sets (ORs in) the bits of n ranges given in absolute pages; each range
 * must lie inside [base_page, base_page + npages). All ranges are checked
 * before any bit changes: on -EINVAL the bitmap is untouched. 0 or -EINVAL. */
int sl_bitmap_from_ranges(uint64_t *words, uint64_t npages, uint64_t base_page,
			  const struct sl_range *r, size_t n);

/* Words needed for npages bits. */
static inline uint64_t sl_bitmap_words(uint64_t npages)
{
	return npages / 64 + (npages % 64 != 0);
}

/* ---- SIMD dispatch ------------------------------------------------------ */

enum sl_isa { SL_ISA_SCALAR, SL_ISA_AVX2, SL_ISA_AVX512 };

/* The code path in use. The first call of any bitmap function picks the
 * best the CPU supports (cpuid), unless the environment variable
 * SL_BITMAP_ISA=scalar|avx2|avx512 names one (ignored, falling back to the
 * best, if the CPU lacks it or the name is unknown). */
enum sl_isa sl_bitmap_isa(void);

/* Switches path: 0, -ENOTSUP if the CPU (or this build) lacks it, -EINVAL
 * for an unknown value. Meant for tests and benchmarks: call it while no
 * other thread is inside a bitmap function. */
int sl_bitmap_force_isa(enum sl_isa isa);

/* True if the CPU and this build support isa. */
bool sl_bitmap_isa_supported(enum sl_isa isa);

/* "scalar", "avx2", "avx512"; "unknown" for other values. */
const char *sl_isa_name(enum sl_isa isa);

/* ---- baselines, for benchmarks and tests -------------------------------- */

/* The memory-read floor: an OR-reduction over nwords words (AVX2 when the
 * CPU has it, whatever path is forced; scalar otherwise). Returns the OR so
 * the compiler cannot drop the reads. */
uint64_t sl_bitmap_floor_or(const uint64_t *words, uint64_t nwords);

/* The word-run method (what Cloud Hypervisor adopted): per 64-bit word, skip
 * zero words and use ctz on w and ~w to emit whole runs, checking capacity
 * per range. Same contract and ranges as sl_bitmap_scan() without options
 * (opts must be NULL or all zero); uses its own cursor state. */
ssize_t sl_bitmap_scan_wordrun(const uint64_t *words, uint64_t npages, uint64_t base_page,
			       struct sl_scan_cursor *cur, struct sl_range *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* SL_BITMAP_H */
