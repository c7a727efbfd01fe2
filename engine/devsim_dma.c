/* SPDX-License-Identifier: MIT */
/*
 * devsim_dma.c — the SIMULATED device's DMA log over guest RAM, with
 * VFIO_DEVICE_FEATURE_DMA_LOGGING_{START,STOP,REPORT} semantics (report
 * reads and clears; bit n = page n), directly and as an sl_sys view so the
 * sources module's VFIO DMA-log source runs on it unchanged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devsim_internal.h"
#include "sl_kernel_compat.h"

/* ---- DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_* semantics) -------------- */

int sl_devsim_dma_log_start(struct sl_vfio_backend *be, uint64_t page_size)
{
	struct devsim *s = to_sim(be);
	uint64_t nbits;

	if (!be || !devsim_is(be) || !page_size || (page_size & (page_size - 1)) ||
	    !s->cfg.guest_ram)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	if (s->dma_logging) {
		pthread_mutex_unlock(&s->lock);
		return -EBUSY;
	}
	nbits = SL_DIV_ROUND_UP(s->cfg.guest_bytes, page_size);
	free(s->dma_bits);
	s->dma_bits = calloc(SL_DIV_ROUND_UP(nbits, 64), 8);
	if (!s->dma_bits) {
		pthread_mutex_unlock(&s->lock);
		return -ENOMEM;
	}
	s->dma_page = page_size;
	s->dma_logging = true;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int sl_devsim_dma_log_report(struct sl_vfio_backend *be, uint64_t iova, uint64_t length,
			     uint64_t *bitmap)
{
	struct devsim *s = to_sim(be);
	int ret = 0;

	if (!be || !devsim_is(be) || !bitmap)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	devsim_advance(s);
	if (!s->dma_logging) {
		ret = -EINVAL;
	} else if (iova % s->dma_page || length % s->dma_page || iova + length < iova ||
		   iova + length > SL_DIV_ROUND_UP(s->cfg.guest_bytes, s->dma_page) * s->dma_page) {
		ret = -EINVAL;
	} else {
		/* Read and clear, bit n = (addr - iova) / page_size. */
		uint64_t first = iova / s->dma_page, n = length / s->dma_page;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t b = first + i;
			if (s->dma_bits[b / 64] & (1ull << (b % 64))) {
				bitmap[i / 64] |= 1ull << (i % 64);
				s->dma_bits[b / 64] &= ~(1ull << (b % 64));
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int sl_devsim_dma_log_stop(struct sl_vfio_backend *be)
{
	struct devsim *s = to_sim(be);

	if (!be || !devsim_is(be))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->dma_logging = false;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The sl_sys view: DMA logging feature ioctls on SL_DEVSIM_DMA_FD. */
static int sys_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct devsim *s = ctx;
	struct vfio_device_feature *f = arg;
	int ret;

	if (fd != SL_DEVSIM_DMA_FD || req != VFIO_DEVICE_FEATURE || !f) {
		errno = fd != SL_DEVSIM_DMA_FD ? EBADF : ENOTTY;
		return -1;
	}
	uint32_t feat = f->flags & VFIO_DEVICE_FEATURE_MASK;
	if (f->flags & VFIO_DEVICE_FEATURE_PROBE) {
		ret = (feat >= VFIO_DEVICE_FEATURE_DMA_LOGGING_START &&
		       feat <= VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT) ? 0 : -ENOTTY;
	} else if (feat == VFIO_DEVICE_FEATURE_DMA_LOGGING_START &&
		   (f->flags & VFIO_DEVICE_FEATURE_SET)) {
		struct vfio_device_feature_dma_logging_control *c = (void *)f->data;
		struct vfio_device_feature_dma_logging_range *r = (void *)(uintptr_t)c->ranges;
		ret = c->num_ranges == 0 || !r || r[0].length == 0 ? -EINVAL
			: sl_devsim_dma_log_start(&s->be, c->page_size);
	} else if (feat == VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP &&
		   (f->flags & VFIO_DEVICE_FEATURE_SET)) {
		ret = sl_devsim_dma_log_stop(&s->be);
	} else if (feat == VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT &&
		   (f->flags & VFIO_DEVICE_FEATURE_GET)) {
		struct vfio_device_feature_dma_logging_report *r = (void *)f->data;
		ret = r->page_size != s->dma_page ? -EINVAL
			: sl_devsim_dma_log_report(&s->be, r->iova, r->length,
						   (uint64_t *)(uintptr_t)r->bitmap);
	} else {
		ret = -ENOTTY;
	}
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return 0;
}

const struct sl_sys *sl_devsim_sys(struct sl_vfio_backend *be)
{
	return be && devsim_is(be) ? &to_sim(be)->sys : NULL;
}

void devsim_sys_init(struct devsim *s)
{
	s->sys = *sl_sys_default();
	s->sys.ctx = s;
	s->sys.ioctl = sys_ioctl;
}
