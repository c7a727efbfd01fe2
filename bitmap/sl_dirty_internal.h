/* SPDX-License-Identifier: MIT */
/*
 * sl_dirty_internal.h — what every dirty-log source implementation shares:
 * the base struct, its init, and small bitmap helpers. Only source files
 * (bitmap/dirty_*.c) include this; users of sources see sl_dirty.h only.
 *
 * How to write a source:
 *   struct my_src { struct sl_dirty_source base; ...own state... };
 *   static const struct sl_dirty_ops my_ops = { .name = "my", .start = ...,
 *       .sync = ..., .clear = ... (may be NULL), .stop = ... (may be NULL),
 *       .destroy = my_destroy (must free the whole struct my_src) };
 *   sl_dirty_new: calloc, sl_dirty_source_init(&s->base, &my_ops, KIND,
 *       caps, npages), validate config, *out = &s->base.
 *
 * The generic layer (dirty_source.c) does, so sources need not:
 *   - state checks: sync/clear before start or after stop -> -EINVAL;
 *     start twice -> -EALREADY; clear range outside the region -> -EINVAL;
 *     clear on a source without SL_DIRTY_CAP_MANUAL_CLEAR -> 0, op not called;
 *   - counters: syncs, sync_ns, pages_found, last_pages (from the value
 *     ops->sync returns), clear_calls, clear_ns (time around ops->clear;
 *     sources add 1 to clear_calls per kernel clear they issue themselves);
 *   - sl_dirty_free(): calls ops->stop if still started, then ops->destroy.
 * Sources fill src->err (sl_err(&src->err, -E.., "...")) before returning a
 * negative errno, and count replaced-by-all-dirty failures in
 * src->counters.errors (via sl_dirty_report_error()).
 */
#ifndef SL_DIRTY_INTERNAL_H
#define SL_DIRTY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_dirty.h"

struct sl_dirty_source {
	const struct sl_dirty_ops *ops;
	enum sl_dirty_kind kind;
	unsigned caps;     /* SL_DIRTY_CAP_* */
	uint64_t npages;   /* pages in the tracked region */
	bool started;
	struct sl_dirty_counters counters;
	struct sl_errbuf err;
	sl_log_fn log;     /* may be NULL */
	void *log_ctx;
};

/* Fills the base; the rest of the containing struct is the source's. */
void sl_dirty_source_init(struct sl_dirty_source *src, const struct sl_dirty_ops *ops,
			  enum sl_dirty_kind kind, unsigned caps, uint64_t npages);

/* Checks a versioned config: non-NULL and cfg->size >= min_size (the size of
 * the first version of the struct). Returns 0 or -EINVAL with text in eb. */
int sl_dirty_check_config(const void *cfg, size_t min_size, const char *what,
			  struct sl_errbuf *eb);

/* Words of a bitmap for npages pages. */
static inline uint64_t sl_dirty_words(uint64_t npages)
{
	return SL_DIV_ROUND_UP(npages, 64);
}

/* dst |= src over npages bits (bits past npages in src are ignored).
 * Returns the number of bits set in src (pages reported). */
uint64_t sl_dirty_or_bits(uint64_t *dst, const uint64_t *src, uint64_t npages);

/* Sets bits [first, first + n) in bitmap. */
void sl_dirty_set_bits(uint64_t *bitmap, uint64_t first, uint64_t n);

/* Logs through the source's callback, if any (printf-style). */
void sl_dirty_log(struct sl_dirty_source *src, enum sl_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A kernel report failed with err: count it, keep the text in src->err and
 * log it as a warning. The caller then marks the whole range dirty. */
void sl_dirty_report_error(struct sl_dirty_source *src, int err, const char *what);

#endif /* SL_DIRTY_INTERNAL_H */
