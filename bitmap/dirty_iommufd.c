/* SPDX-License-Identifier: MIT */
/*
 * dirty_iommufd.c — IOMMU dirty tracking through iommufd: a HW page table
 * (HWPT) allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING has tracking switched
 * on with IOMMU_HWPT_SET_DIRTY_TRACKING (enable clears all bits first) and
 * read-and-cleared with IOMMU_HWPT_GET_DIRTY_BITMAP: iova and length aligned
 * to a power-of-two page_size, a zeroed u64-aligned buffer, bit n = page
 * (addr - iova) / page_size. A failed GET loses the log: the whole range is
 * then marked dirty and the error counted, never dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sl_dirty_internal.h"
#include "sl_kernel_compat.h"

struct iommufd_src {
	struct sl_dirty_source base;
	const struct sl_sys *sys;
	int iommufd;
	uint32_t hwpt_id;
	uint64_t iova;
	uint64_t page_size;
	uint64_t *scratch;
};

static struct iommufd_src *to_io(struct sl_dirty_source *src)
{
	return (struct iommufd_src *)src;
}

static int set_tracking(struct iommufd_src *io, bool enable)
{
	struct iommu_hwpt_set_dirty_tracking st;
	int ret;

	memset(&st, 0, sizeof(st));
	st.size = sizeof(st);
	st.flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0;
	st.hwpt_id = io->hwpt_id;
	ret = sl_sys_ioctl(io->sys, io->iommufd, IOMMU_HWPT_SET_DIRTY_TRACKING, &st);
	if (ret < 0)
		return sl_err(&io->base.err, ret, "iommufd: IOMMU_HWPT_SET_DIRTY_TRACKING(%s) hwpt %u: %s%s",
			      enable ? "enable" : "disable", io->hwpt_id, strerror(-ret),
			      ret == -EOPNOTSUPP ? " (HWPT not allocated with DIRTY_TRACKING, or IOMMU lacks it)"
			      : ret == -ENOENT ? " (no such HWPT)"
			      : ret == -ENOTTY ? " (kernel lacks iommufd dirty tracking, Linux 6.7+)" : "");
	return 0;
}

static int io_start(struct sl_dirty_source *src)
{
	return set_tracking(to_io(src), true);
}

static int io_stop(struct sl_dirty_source *src)
{
	return set_tracking(to_io(src), false);
}

static int64_t io_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	struct iommufd_src *io = to_io(src);
	struct iommu_hwpt_get_dirty_bitmap gd;
	int ret;

	memset(io->scratch, 0, sl_dirty_words(src->npages) * sizeof(uint64_t)); /* kernel only sets bits */
	memset(&gd, 0, sizeof(gd));
	gd.size = sizeof(gd);
	gd.hwpt_id = io->hwpt_id;
	gd.flags = 0; /* read and clear */
	gd.iova = io->iova;
	gd.length = src->npages * io->page_size;
	gd.page_size = io->page_size;
	gd.data = (uintptr_t)io->scratch;
	ret = sl_sys_ioctl(io->sys, io->iommufd, IOMMU_HWPT_GET_DIRTY_BITMAP, &gd);
	if (ret < 0) {
		sl_dirty_report_error(src, ret, "IOMMU_HWPT_GET_DIRTY_BITMAP");
		sl_dirty_set_bits(bitmap, 0, src->npages);
		return (int64_t)src->npages;
	}
	return (int64_t)sl_dirty_or_bits(bitmap, io->scratch, src->npages);
}

static void io_destroy(struct sl_dirty_source *src)
{
	struct iommufd_src *io = to_io(src);

	free(io->scratch);
	free(io);
}

static const struct sl_dirty_ops iommufd_ops = {
	.name = "iommufd",
	.start = io_start,
	.sync = io_sync,
	.stop = io_stop,
	.destroy = io_destroy,
};

SL_EXPORT int sl_dirty_iommufd_new(const struct sl_dirty_iommufd_config *cfg,
				   struct sl_dirty_source **out, struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct iommufd_src *io;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "iommufd: out is NULL");
	*out = NULL;
	ret = sl_dirty_check_config(cfg, sizeof(*cfg), "iommufd", eb);
	if (ret < 0)
		return ret;
	if (cfg->iommufd < 0)
		return sl_err(eb, -EINVAL, "iommufd: fd %d", cfg->iommufd);
	if (cfg->page_size < 4096 || (cfg->page_size & (cfg->page_size - 1)))
		return sl_err(eb, -EINVAL, "iommufd: page_size %llu is not a power of two >= 4096",
			      (unsigned long long)cfg->page_size);
	if (cfg->iova & (cfg->page_size - 1))
		return sl_err(eb, -EINVAL, "iommufd: iova %#llx not aligned to page_size",
			      (unsigned long long)cfg->iova);
	if (!cfg->npages || cfg->npages > (UINT64_C(1) << 40) ||
	    cfg->npages > (UINT64_MAX - cfg->iova) / cfg->page_size)
		return sl_err(eb, -EINVAL, "iommufd: npages %llu out of range",
			      (unsigned long long)cfg->npages);
	io = calloc(1, sizeof(*io));
	if (!io)
		return sl_err(eb, -ENOMEM, "iommufd: out of memory");
	sl_dirty_source_init(&io->base, &iommufd_ops, SL_DIRTY_IOMMUFD, 0, cfg->npages);
	io->sys = cfg->sys ? cfg->sys : sl_sys_default();
	io->iommufd = cfg->iommufd;
	io->hwpt_id = cfg->hwpt_id;
	io->iova = cfg->iova;
	io->page_size = cfg->page_size;
	io->scratch = calloc(sl_dirty_words(cfg->npages), sizeof(uint64_t));
	if (!io->scratch) {
		free(io);
		return sl_err(eb, -ENOMEM, "iommufd: out of memory");
	}
	*out = &io->base;
	return 0;
}
