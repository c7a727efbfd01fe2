/* SPDX-License-Identifier: MIT */
/*
 * dirty_vfio_type1.c — VFIO type1 container dirty page tracking
 * (VFIO_IOMMU_DIRTY_PAGES START / GET_BITMAP / STOP on the container fd).
 *
 * GET_BITMAP reads and clears the container's log for [iova, iova + size):
 * size must match DMA mappings, pgsize must be the IOMMU's smallest page
 * size, the buffer must be zeroed and hold ALIGN(npages, 64) / 8 bytes.
 * When a group is not pinned-page scoped the kernel reports every mapped
 * page dirty. If GET fails, the log for the range is lost, so the source
 * marks the whole range dirty and counts the error instead of failing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sl_dirty_internal.h"
#include "sl_kernel_compat.h"

struct type1_src {
	struct sl_dirty_source base;
	const struct sl_sys *sys;
	int container_fd;
	uint64_t iova;
	uint64_t pgsize;
	uint64_t *scratch;
};

struct type1_get_arg {
	struct vfio_iommu_type1_dirty_bitmap hdr;
	struct vfio_iommu_type1_dirty_bitmap_get get;
};

static struct type1_src *to_t1(struct sl_dirty_source *src)
{
	return (struct type1_src *)src;
}

static int dirty_pages(struct type1_src *t1, uint32_t flag, const char *what)
{
	struct vfio_iommu_type1_dirty_bitmap db;
	int ret;

	memset(&db, 0, sizeof(db));
	db.argsz = sizeof(db);
	db.flags = flag;
	ret = sl_sys_ioctl(t1->sys, t1->container_fd, VFIO_IOMMU_DIRTY_PAGES, &db);
	if (ret < 0)
		return sl_err(&t1->base.err, ret, "vfio-type1: VFIO_IOMMU_DIRTY_PAGES %s: %s%s", what,
			      strerror(-ret),
			      ret == -ENOTTY ? " (container is not type1 v2 or kernel lacks dirty tracking)" : "");
	return 0;
}

static int t1_start(struct sl_dirty_source *src)
{
	return dirty_pages(to_t1(src), VFIO_IOMMU_DIRTY_PAGES_FLAG_START, "START");
}

static int t1_stop(struct sl_dirty_source *src)
{
	return dirty_pages(to_t1(src), VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP, "STOP");
}

static int64_t t1_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	struct type1_src *t1 = to_t1(src);
	uint64_t words = sl_dirty_words(src->npages);
	struct type1_get_arg arg;
	int ret;

	memset(t1->scratch, 0, words * sizeof(uint64_t)); /* the kernel ORs into it */
	memset(&arg, 0, sizeof(arg));
	arg.hdr.argsz = sizeof(arg);
	arg.hdr.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	arg.get.iova = t1->iova;
	arg.get.size = src->npages * t1->pgsize;
	arg.get.bitmap.pgsize = t1->pgsize;
	arg.get.bitmap.size = words * sizeof(uint64_t);
	arg.get.bitmap.data = (__u64 *)t1->scratch;
	ret = sl_sys_ioctl(t1->sys, t1->container_fd, VFIO_IOMMU_DIRTY_PAGES, &arg);
	if (ret < 0) {
		/* The log may be half read-and-cleared: assume everything. */
		sl_dirty_report_error(src, ret, "VFIO_IOMMU_DIRTY_PAGES GET_BITMAP");
		sl_dirty_set_bits(bitmap, 0, src->npages);
		return (int64_t)src->npages;
	}
	return (int64_t)sl_dirty_or_bits(bitmap, t1->scratch, src->npages);
}

static void t1_destroy(struct sl_dirty_source *src)
{
	struct type1_src *t1 = to_t1(src);

	free(t1->scratch);
	free(t1);
}

static const struct sl_dirty_ops type1_ops = {
	.name = "vfio-type1",
	.start = t1_start,
	.sync = t1_sync,
	.stop = t1_stop,
	.destroy = t1_destroy,
};

SL_EXPORT int sl_dirty_vfio_type1_new(const struct sl_dirty_vfio_type1_config *cfg,
				      struct sl_dirty_source **out, struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct type1_src *t1;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "vfio-type1: out is NULL");
	*out = NULL;
	ret = sl_dirty_check_config(cfg, sizeof(*cfg), "vfio-type1", eb);
	if (ret < 0)
		return ret;
	if (cfg->container_fd < 0)
		return sl_err(eb, -EINVAL, "vfio-type1: container_fd %d", cfg->container_fd);
	if (cfg->pgsize < 4096 || (cfg->pgsize & (cfg->pgsize - 1)))
		return sl_err(eb, -EINVAL, "vfio-type1: pgsize %llu is not a power of two >= 4096",
			      (unsigned long long)cfg->pgsize);
	if (cfg->iova & (cfg->pgsize - 1))
		return sl_err(eb, -EINVAL, "vfio-type1: iova %#llx is not aligned to pgsize %llu",
			      (unsigned long long)cfg->iova, (unsigned long long)cfg->pgsize);
	if (!cfg->npages || cfg->npages > (UINT64_C(1) << 40) ||
	    cfg->npages > (UINT64_MAX - cfg->iova) / cfg->pgsize)
		return sl_err(eb, -EINVAL, "vfio-type1: npages %llu out of range",
			      (unsigned long long)cfg->npages);
	t1 = calloc(1, sizeof(*t1));
	if (!t1)
		return sl_err(eb, -ENOMEM, "vfio-type1: out of memory");
	sl_dirty_source_init(&t1->base, &type1_ops, SL_DIRTY_VFIO_TYPE1, 0, cfg->npages);
	t1->sys = cfg->sys ? cfg->sys : sl_sys_default();
	t1->container_fd = cfg->container_fd;
	t1->iova = cfg->iova;
	t1->pgsize = cfg->pgsize;
	t1->scratch = calloc(sl_dirty_words(cfg->npages), sizeof(uint64_t));
	if (!t1->scratch) {
		free(t1);
		return sl_err(eb, -ENOMEM, "vfio-type1: out of memory");
	}
	*out = &t1->base;
	return 0;
}
