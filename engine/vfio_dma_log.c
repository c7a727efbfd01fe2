/* SPDX-License-Identifier: MIT */
/*
 * vfio_dma_log.c — a device's DMA writes into guest RAM as a dirty-log
 * source: the sources module's VFIO DMA-logging source
 * (sl_dirty_vfio_dma_log_new) on the device's fd, through the backend's
 * kernel seam — the real kernel for a VFIO device, the simulated device's
 * own sl_sys for the simulated one.
 */
#include <errno.h>

#include "sl_dirty.h"
#include "sl_vfio.h"

int sl_vfio_dma_log_new(struct sl_vfio_backend *be, uint64_t iova, uint64_t npages,
			uint64_t page_size, struct sl_dirty_source **out, struct sl_errbuf *eb)
{
	struct sl_dirty_vfio_dma_log_config c = { .size = sizeof(c), .iova = iova,
						  .npages = npages, .page_size = page_size };
	struct sl_errbuf dummy;

	if (!eb)
		eb = &dummy;
	if (!be || !out)
		return sl_err(eb, -EINVAL, "vfio DMA log: missing device or output");
	if (sl_vfio_kernel_device_fd(be) >= 0) {
		c.sys = sl_vfio_kernel_sys(be);
		c.device_fd = sl_vfio_kernel_device_fd(be);
	} else if (sl_devsim_sys(be)) {
		c.sys = sl_devsim_sys(be);
		c.device_fd = SL_DEVSIM_DMA_FD;
	} else {
		return sl_err(eb, -EOPNOTSUPP, "%s (%s): no DMA logging on this kind of device",
			      be->name, be->ops->kind);
	}
	return sl_dirty_vfio_dma_log_new(&c, out, eb);
}
