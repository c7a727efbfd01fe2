/* SPDX-License-Identifier: MIT */
/*
 * dirty_vfio_dma_log.c — device-side DMA dirty logging of a VFIO device
 * (VFIO_DEVICE_FEATURE DMA_LOGGING_START / REPORT / STOP on the device fd).
 *
 * START takes the IOVA ranges to watch (page-aligned, non-overlapping, at
 * most PAGE_SIZE/16 of them, else E2BIG) and a page-size hint the driver may
 * replace (written back). REPORT reads and clears [iova, iova+length) into a
 * caller-zeroed bitmap at any power-of-two page size; it only sets bits. On
 * any REPORT error the log is corrupt: the uAPI says treat all memory as
 * dirty and restart logging, which is what sync does (counted in
 * counters.errors, text in last_error, a warning through the log callback).
 * One START per device: a device needs exactly one source.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sl_dirty_internal.h"
#include "sl_kernel_compat.h"

struct dma_log_src {
	struct sl_dirty_source base;
	const struct sl_sys *sys;
	int device_fd;
	uint64_t iova;
	uint64_t page_size;
	uint64_t device_page_size; /* what the driver chose at START */
	uint32_t nranges;
	struct vfio_device_feature_dma_logging_range *ranges;
	uint64_t *scratch;
};

static struct dma_log_src *to_dl(struct sl_dirty_source *src)
{
	return (struct dma_log_src *)src;
}

static int feature(struct dma_log_src *dl, uint32_t flags, void *payload, size_t len)
{
	union {
		struct vfio_device_feature hdr;
		uint64_t align;
	} *buf;
	size_t argsz = sizeof(struct vfio_device_feature) + len;
	int ret;

	buf = calloc(1, argsz + sizeof(uint64_t));
	if (!buf)
		return -ENOMEM;
	buf->hdr.argsz = (uint32_t)argsz;
	buf->hdr.flags = flags;
	if (len)
		memcpy(buf->hdr.data, payload, len);
	ret = sl_sys_ioctl(dl->sys, dl->device_fd, VFIO_DEVICE_FEATURE, buf);
	if (ret >= 0 && len)
		memcpy(payload, buf->hdr.data, len); /* START writes page_size back */
	free(buf);
	return ret;
}

static int log_start(struct dma_log_src *dl)
{
	struct vfio_device_feature_dma_logging_control ctl;
	int ret;

	memset(&ctl, 0, sizeof(ctl));
	ctl.page_size = dl->page_size;
	ctl.num_ranges = dl->nranges;
	ctl.ranges = (uintptr_t)dl->ranges;
	ret = feature(dl, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
		      &ctl, sizeof(ctl));
	if (ret < 0)
		return sl_err(&dl->base.err, ret, "vfio-dma-log: DMA_LOGGING_START (%u ranges): %s%s",
			      dl->nranges, strerror(-ret),
			      ret == -E2BIG ? " (too many ranges for the driver)"
			      : ret == -ENOTTY ? " (device has no DMA logging)"
			      : ret == -EBUSY ? " (logging already started on this device)" : "");
	dl->device_page_size = ctl.page_size;
	if (ctl.page_size != dl->page_size)
		sl_dirty_log(&dl->base, SL_LOG_INFO,
			     "vfio-dma-log: driver tracks at %llu-byte pages (asked %llu); reports use %llu",
			     (unsigned long long)ctl.page_size, (unsigned long long)dl->page_size,
			     (unsigned long long)dl->page_size);
	return 0;
}

static int log_stop(struct dma_log_src *dl)
{
	int ret = feature(dl, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP, NULL, 0);

	if (ret < 0)
		return sl_err(&dl->base.err, ret, "vfio-dma-log: DMA_LOGGING_STOP: %s", strerror(-ret));
	return 0;
}

static int dl_start(struct sl_dirty_source *src)
{
	return log_start(to_dl(src));
}

static int dl_stop(struct sl_dirty_source *src)
{
	return log_stop(to_dl(src));
}

static int64_t dl_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	struct dma_log_src *dl = to_dl(src);
	uint64_t found = 0;

	for (uint32_t i = 0; i < dl->nranges; i++) {
		const struct vfio_device_feature_dma_logging_range *r = &dl->ranges[i];
		struct vfio_device_feature_dma_logging_report rep;
		uint64_t first = (r->iova - dl->iova) / dl->page_size;
		uint64_t n = r->length / dl->page_size;
		int ret;

		/* The report's bit 0 is r->iova; a per-range scratch keeps the
		 * engine's bitmap out of the kernel's reach on failure. */
		memset(dl->scratch, 0, sl_dirty_words(n) * sizeof(uint64_t));
		memset(&rep, 0, sizeof(rep));
		rep.iova = r->iova;
		rep.length = r->length;
		rep.page_size = dl->page_size;
		rep.bitmap = (uintptr_t)dl->scratch;
		ret = feature(dl, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
			      &rep, sizeof(rep));
		if (ret < 0) {
			/* Log corrupted: everything is dirty, restart logging. */
			sl_dirty_report_error(src, ret, "DMA_LOGGING_REPORT");
			sl_dirty_set_bits(bitmap, 0, src->npages);
			log_stop(dl); /* may fail if logging already died */
			if (log_start(dl) < 0)
				sl_dirty_log(src, SL_LOG_WARNING,
					     "vfio-dma-log: restart after a failed REPORT: %s", src->err.msg);
			/* Keep the REPORT failure as the last error. */
			sl_err(&src->err, ret, "vfio-dma-log: DMA_LOGGING_REPORT failed (%s); whole range marked dirty",
			       strerror(-ret));
			return (int64_t)src->npages;
		}
		/* Ranges may start mid-word in the region bitmap: move set
		 * bits one by one (the log is sparse; skip empty words). */
		for (uint64_t w = 0; w < sl_dirty_words(n); w++) {
			uint64_t bits = dl->scratch[w];

			if (w == n / 64 && n % 64)
				bits &= (UINT64_C(1) << (n % 64)) - 1;
			while (bits) {
				uint64_t p = first + w * 64 + (uint64_t)__builtin_ctzll(bits);

				bitmap[p / 64] |= UINT64_C(1) << (p % 64);
				bits &= bits - 1;
				found++;
			}
		}
	}
	return (int64_t)found;
}

static void dl_destroy(struct sl_dirty_source *src)
{
	struct dma_log_src *dl = to_dl(src);

	free(dl->ranges);
	free(dl->scratch);
	free(dl);
}

static const struct sl_dirty_ops dma_log_ops = {
	.name = "vfio-dma-log",
	.start = dl_start,
	.sync = dl_sync,
	.stop = dl_stop,
	.destroy = dl_destroy,
};

SL_EXPORT int sl_dirty_vfio_dma_log_new(const struct sl_dirty_vfio_dma_log_config *cfg,
					struct sl_dirty_source **out, struct sl_errbuf *eb)
{
	const size_t v1 = offsetof(struct sl_dirty_vfio_dma_log_config, page_size) + sizeof(uint64_t);
	struct sl_errbuf dummy;
	struct dma_log_src *dl;
	uint32_t nranges = 0;
	const struct sl_dirty_iova_range *ranges = NULL;
	uint64_t end, max_n = 0;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "vfio-dma-log: out is NULL");
	*out = NULL;
	ret = sl_dirty_check_config(cfg, v1, "vfio-dma-log", eb);
	if (ret < 0)
		return ret;
	if (cfg->size >= sizeof(*cfg)) {
		nranges = cfg->nranges;
		ranges = cfg->ranges;
	}
	if (cfg->device_fd < 0)
		return sl_err(eb, -EINVAL, "vfio-dma-log: device_fd %d", cfg->device_fd);
	if (cfg->page_size < 4096 || (cfg->page_size & (cfg->page_size - 1)))
		return sl_err(eb, -EINVAL, "vfio-dma-log: page_size %llu is not a power of two >= 4096",
			      (unsigned long long)cfg->page_size);
	if (cfg->iova & (cfg->page_size - 1))
		return sl_err(eb, -EINVAL, "vfio-dma-log: iova %#llx not aligned to page_size",
			      (unsigned long long)cfg->iova);
	if (!cfg->npages || cfg->npages > (UINT64_C(1) << 40) ||
	    cfg->npages > (UINT64_MAX - cfg->iova) / cfg->page_size)
		return sl_err(eb, -EINVAL, "vfio-dma-log: npages %llu out of range",
			      (unsigned long long)cfg->npages);
	if (nranges && !ranges)
		return sl_err(eb, -EINVAL, "vfio-dma-log: nranges %u but ranges is NULL", nranges);
	end = cfg->iova + cfg->npages * cfg->page_size;
	for (uint32_t i = 0; i < nranges; i++) {
		const struct sl_dirty_iova_range *r = &ranges[i];

		if (!r->length || (r->iova | r->length) & (cfg->page_size - 1) ||
		    r->iova < cfg->iova || r->iova > end || r->length > end - r->iova)
			return sl_err(eb, -EINVAL,
				      "vfio-dma-log: range %u [%#llx, +%#llx) must be non-empty, page-aligned "
				      "and inside [%#llx, %#llx)", i, (unsigned long long)r->iova,
				      (unsigned long long)r->length, (unsigned long long)cfg->iova,
				      (unsigned long long)end);
		for (uint32_t j = 0; j < i; j++)
			if (r->iova < ranges[j].iova + ranges[j].length &&
			    ranges[j].iova < r->iova + r->length)
				return sl_err(eb, -EINVAL, "vfio-dma-log: ranges %u and %u overlap", j, i);
	}
	dl = calloc(1, sizeof(*dl));
	if (!dl)
		return sl_err(eb, -ENOMEM, "vfio-dma-log: out of memory");
	sl_dirty_source_init(&dl->base, &dma_log_ops, SL_DIRTY_VFIO_DMA_LOG, 0, cfg->npages);
	dl->sys = cfg->sys ? cfg->sys : sl_sys_default();
	dl->device_fd = cfg->device_fd;
	dl->iova = cfg->iova;
	dl->page_size = cfg->page_size;
	dl->nranges = nranges ? nranges : 1;
	dl->ranges = calloc(dl->nranges, sizeof(*dl->ranges));
	if (!dl->ranges) {
		dl_destroy(&dl->base);
		return sl_err(eb, -ENOMEM, "vfio-dma-log: out of memory");
	}
	if (!nranges) {
		dl->ranges[0].iova = cfg->iova;
		dl->ranges[0].length = cfg->npages * cfg->page_size;
	}
	for (uint32_t i = 0; i < nranges; i++) {
		dl->ranges[i].iova = ranges[i].iova;
		dl->ranges[i].length = ranges[i].length;
	}
	for (uint32_t i = 0; i < dl->nranges; i++)
		max_n = SL_MAX(max_n, dl->ranges[i].length / cfg->page_size);
	dl->scratch = calloc(sl_dirty_words(max_n), sizeof(uint64_t));
	if (!dl->scratch) {
		dl_destroy(&dl->base);
		return sl_err(eb, -ENOMEM, "vfio-dma-log: out of memory");
	}
	*out = &dl->base;
	return 0;
}
