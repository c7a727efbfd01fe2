/* SPDX-License-Identifier: MIT */
/*
 * dirty_source.c — the generic half of every dirty-log source: state checks,
 * counters and timing around the source's ops, plus shared bitmap helpers.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sl_bitmap.h"
#include "sl_dirty_internal.h"

void sl_dirty_source_init(struct sl_dirty_source *src, const struct sl_dirty_ops *ops,
			  enum sl_dirty_kind kind, unsigned caps, uint64_t npages)
{
	memset(src, 0, sizeof(*src));
	src->ops = ops;
	src->kind = kind;
	src->caps = caps;
	src->npages = npages;
}

int sl_dirty_check_config(const void *cfg, size_t min_size, const char *what,
			  struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;

	if (!eb)
		eb = &dummy;
	if (!cfg)
		return sl_err(eb, -EINVAL, "%s: config is NULL", what);
	/* Every config starts with `size_t size`. */
	if (*(const size_t *)cfg < min_size)
		return sl_err(eb, -EINVAL, "%s: config size %zu < %zu (set .size = sizeof(config))",
			      what, *(const size_t *)cfg, min_size);
	return 0;
}

uint64_t sl_dirty_or_bits(uint64_t *dst, const uint64_t *src, uint64_t npages)
{
	/* Count with the bitmap engine's SIMD popcount; a clean log (the
	 * common case late in a migration) then costs one read pass. */
	int64_t found = sl_bitmap_count(src, npages);

	if (found > 0)
		sl_bitmap_or(dst, src, npages);
	return found > 0 ? (uint64_t)found : 0;
}

void sl_dirty_set_bits(uint64_t *bitmap, uint64_t first, uint64_t n)
{
	if (n)
		sl_bitmap_set_range(bitmap, first + n, first, n);
}

void sl_dirty_log(struct sl_dirty_source *src, enum sl_log_level level, const char *fmt, ...)
{
	char msg[SL_ERRMSG_MAX];
	va_list ap;

	if (!src->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	src->log(src->log_ctx, level, msg);
}

void sl_dirty_report_error(struct sl_dirty_source *src, int err, const char *what)
{
	src->counters.errors++;
	sl_err(&src->err, err, "%s: %s failed (%s); whole range marked dirty",
	       src->ops->name, what, strerror(-err));
	sl_dirty_log(src, SL_LOG_WARNING, "%s", src->err.msg);
}

/* ---- generic calls ---------------------------------------------------- */

SL_EXPORT int sl_dirty_start(struct sl_dirty_source *src)
{
	int ret;

	if (!src)
		return -EINVAL;
	if (src->started)
		return sl_err(&src->err, -EALREADY, "%s: already started", src->ops->name);
	ret = src->ops->start(src);
	if (ret < 0)
		return ret;
	src->started = true;
	return 0;
}

SL_EXPORT int64_t sl_dirty_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	uint64_t t0;
	int64_t ret;

	if (!src || !bitmap)
		return -EINVAL;
	if (!src->started)
		return sl_err(&src->err, -EINVAL, "%s: sync before start", src->ops->name);
	t0 = sl_now_ns();
	ret = src->ops->sync(src, bitmap);
	src->counters.sync_ns += sl_now_ns() - t0;
	if (ret < 0)
		return ret;
	src->counters.syncs++;
	src->counters.pages_found += (uint64_t)ret;
	src->counters.last_pages = (uint64_t)ret;
	return ret;
}

SL_EXPORT int sl_dirty_clear(struct sl_dirty_source *src, uint64_t first, uint64_t npages)
{
	uint64_t t0;
	int ret;

	if (!src)
		return -EINVAL;
	if (!src->started)
		return sl_err(&src->err, -EINVAL, "%s: clear before start", src->ops->name);
	if (first > src->npages || npages > src->npages - first)
		return sl_err(&src->err, -EINVAL,
			      "%s: clear [%llu, +%llu) outside the region of %llu pages",
			      src->ops->name, (unsigned long long)first,
			      (unsigned long long)npages, (unsigned long long)src->npages);
	if (!(src->caps & SL_DIRTY_CAP_MANUAL_CLEAR) || !src->ops->clear || !npages)
		return 0;
	t0 = sl_now_ns();
	ret = src->ops->clear(src, first, npages);
	src->counters.clear_ns += sl_now_ns() - t0;
	return ret;
}

SL_EXPORT int sl_dirty_stop(struct sl_dirty_source *src)
{
	int ret = 0;

	if (!src)
		return -EINVAL;
	if (!src->started)
		return 0;
	if (src->ops->stop)
		ret = src->ops->stop(src);
	src->started = false;
	return ret;
}

SL_EXPORT void sl_dirty_free(struct sl_dirty_source **src)
{
	if (!src || !*src)
		return;
	sl_dirty_stop(*src);
	(*src)->ops->destroy(*src);
	*src = NULL;
}

SL_EXPORT enum sl_dirty_kind sl_dirty_kind(const struct sl_dirty_source *src)
{
	return src->kind;
}

SL_EXPORT const char *sl_dirty_name(const struct sl_dirty_source *src)
{
	return src->ops->name;
}

SL_EXPORT unsigned sl_dirty_caps(const struct sl_dirty_source *src)
{
	return src->caps;
}

SL_EXPORT uint64_t sl_dirty_npages(const struct sl_dirty_source *src)
{
	return src->npages;
}

SL_EXPORT void sl_dirty_get_counters(const struct sl_dirty_source *src,
				     struct sl_dirty_counters *out)
{
	*out = src->counters;
}

SL_EXPORT const char *sl_dirty_last_error(const struct sl_dirty_source *src)
{
	return src->err.msg;
}

SL_EXPORT void sl_dirty_set_log(struct sl_dirty_source *src, sl_log_fn fn, void *ctx)
{
	src->log = fn;
	src->log_ctx = ctx;
}
