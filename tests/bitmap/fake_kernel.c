/* SPDX-License-Identifier: MIT */
/*
 * fake_kernel.c — see fake_kernel.h. Each handler follows the checks the
 * real kernel makes (drivers/vfio/vfio_iommu_type1.c, drivers/vfio/vfio_main.c,
 * drivers/iommu/iommufd/, virt/kvm/kvm_main.c + dirty_ring.c,
 * fs/userfaultfd.c, fs/proc/task_mmu.c), reduced to one mapping/slot.
 */
#include "fake_kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "sl_common.h"
#include "sl_kernel_compat.h"

static bool pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static void set_user_bit(uint64_t *bm, uint64_t bit)
{
	bm[bit / 64] |= UINT64_C(1) << (bit % 64); /* the kernel only sets bits */
}

static int fail(int err)
{
	errno = err;
	return -1;
}

/* ---- VFIO type1 --------------------------------------------------------- */

static int type1_dirty_pages(struct fake_kernel *fk, void *arg)
{
	struct vfio_iommu_type1_dirty_bitmap *hdr = arg;
	struct vfio_iommu_type1_dirty_bitmap_get *get;
	uint32_t mask = VFIO_IOMMU_DIRTY_PAGES_FLAG_START | VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP |
			VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
	uint64_t npages, per;

	if (hdr->argsz < sizeof(*hdr) || (hdr->flags & ~mask))
		return fail(EINVAL);
	switch (hdr->flags) {
	case VFIO_IOMMU_DIRTY_PAGES_FLAG_START:
		fk->t1_tracking = true;
		memset(fk->t1_dirty, 0, sizeof(fk->t1_dirty));
		return 0;
	case VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP:
		fk->t1_tracking = false;
		return 0;
	case VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP:
		break;
	default:
		return fail(EINVAL); /* exactly one flag */
	}
	if (hdr->argsz < sizeof(*hdr) + sizeof(*get))
		return fail(EINVAL);
	get = (void *)hdr->data;
	if (get->bitmap.pgsize != fk->t1_pgsize || (get->iova & (fk->t1_pgsize - 1)) ||
	    !get->size || (get->size & (fk->t1_pgsize - 1)))
		return fail(EINVAL);
	/* The range must be exactly the DMA mapping(s). */
	if (get->iova != FK_BASE || get->size != fk->t1_map_pages * FK_PAGE)
		return fail(EINVAL);
	npages = get->size / get->bitmap.pgsize;
	if (get->bitmap.size < SL_DIV_ROUND_UP(npages, 64) * 8 || !get->bitmap.data)
		return fail(EINVAL);
	if (!fk->t1_tracking)
		return fail(EINVAL);
	per = get->bitmap.pgsize / FK_PAGE;
	for (uint64_t p = 0; p < fk->t1_map_pages; p++) {
		if (fk->t1_dirty[p]) {
			set_user_bit((uint64_t *)get->bitmap.data, p / per);
			fk->t1_dirty[p] = false; /* read and clear */
		}
	}
	return 0;
}

/* ---- VFIO device DMA logging --------------------------------------------- */

static bool dl_in_ranges(const struct fake_kernel *fk, uint64_t addr)
{
	for (uint32_t i = 0; i < fk->dl_nranges; i++)
		if (addr >= fk->dl_range_iova[i] && addr - fk->dl_range_iova[i] < fk->dl_range_len[i])
			return true;
	return false;
}

static int device_feature(struct fake_kernel *fk, void *arg)
{
	struct vfio_device_feature *f = arg;
	uint32_t feat = f->flags & VFIO_DEVICE_FEATURE_MASK;
	uint32_t dir = f->flags & (VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_SET |
				   VFIO_DEVICE_FEATURE_PROBE);

	if (f->argsz < sizeof(*f))
		return fail(EINVAL);
	if (!fk->dl_supported ||
	    (feat != VFIO_DEVICE_FEATURE_DMA_LOGGING_START && feat != VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP &&
	     feat != VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT))
		return fail(ENOTTY);
	if (feat == VFIO_DEVICE_FEATURE_DMA_LOGGING_START) {
		struct vfio_device_feature_dma_logging_control *ctl = (void *)f->data;
		const struct vfio_device_feature_dma_logging_range *r;

		if (dir != VFIO_DEVICE_FEATURE_SET || f->argsz < sizeof(*f) + sizeof(*ctl))
			return fail(EINVAL);
		if (!ctl->num_ranges || !pow2(ctl->page_size))
			return fail(EINVAL);
		if (ctl->num_ranges > FK_DMA_LOG_MAX_RANGES)
			return fail(E2BIG);
		if (fk->dl_started)
			return fail(EBUSY);
		r = (const void *)(uintptr_t)ctl->ranges;
		for (uint32_t i = 0; i < ctl->num_ranges; i++) {
			if (!r[i].length || (r[i].iova | r[i].length) & (ctl->page_size - 1))
				return fail(EINVAL);
			for (uint32_t j = 0; j < i; j++)
				if (r[i].iova < r[j].iova + r[j].length && r[j].iova < r[i].iova + r[i].length)
					return fail(EINVAL);
		}
		for (uint32_t i = 0; i < ctl->num_ranges; i++) {
			fk->dl_range_iova[i] = r[i].iova;
			fk->dl_range_len[i] = r[i].length;
		}
		fk->dl_nranges = ctl->num_ranges;
		fk->dl_started = true;
		fk->dl_starts++;
		memset(fk->dl_dirty, 0, sizeof(fk->dl_dirty));
		if (fk->dl_chosen_pgsize)
			ctl->page_size = fk->dl_chosen_pgsize; /* the driver's choice */
		return 0;
	}
	if (feat == VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP) {
		if (dir != VFIO_DEVICE_FEATURE_SET)
			return fail(EINVAL);
		fk->dl_started = false;
		fk->dl_nranges = 0;
		fk->dl_stops++;
		return 0;
	}
	/* REPORT */
	{
		struct vfio_device_feature_dma_logging_report *rep = (void *)f->data;

		if (dir != VFIO_DEVICE_FEATURE_GET || f->argsz < sizeof(*f) + sizeof(*rep))
			return fail(EINVAL);
		if (rep->page_size < 4096 || !pow2(rep->page_size) || !rep->length ||
		    rep->iova + rep->length < rep->iova)
			return fail(rep->iova + rep->length < rep->iova ? EOVERFLOW : EINVAL);
		if (!fk->dl_started || !rep->bitmap)
			return fail(EINVAL);
		fk->dl_reports++;
		for (uint64_t p = 0; p < FK_PAGES; p++) {
			uint64_t addr = FK_BASE + p * FK_PAGE;

			if (!fk->dl_dirty[p] || addr < rep->iova || addr - rep->iova >= rep->length)
				continue;
			set_user_bit((uint64_t *)(uintptr_t)rep->bitmap, (addr - rep->iova) / rep->page_size);
			fk->dl_dirty[p] = false;
		}
		return 0;
	}
}

/* ---- iommufd ------------------------------------------------------------ */

static int hwpt_check(uint32_t id)
{
	if (id == FK_HWPT_ID)
		return 0;
	return fail(id == FK_HWPT_NODIRTY_ID ? EOPNOTSUPP : ENOENT);
}

static int iommufd_ioctl(struct fake_kernel *fk, unsigned long req, void *arg)
{
	if (req == IOMMU_HWPT_SET_DIRTY_TRACKING) {
		struct iommu_hwpt_set_dirty_tracking *st = arg;

		if (st->size < sizeof(*st))
			return fail(EINVAL);
		if ((st->flags & ~IOMMU_HWPT_DIRTY_TRACKING_ENABLE) || st->__reserved)
			return fail(EOPNOTSUPP);
		if (hwpt_check(st->hwpt_id) < 0)
			return -1;
		fk->io_tracking = st->flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE;
		if (fk->io_tracking)
			memset(fk->io_dirty, 0, sizeof(fk->io_dirty)); /* enable clears */
		return 0;
	}
	if (req == IOMMU_HWPT_GET_DIRTY_BITMAP) {
		struct iommu_hwpt_get_dirty_bitmap *gd = arg;

		if (gd->size < sizeof(*gd))
			return fail(EINVAL);
		if ((gd->flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) || gd->__reserved)
			return fail(EOPNOTSUPP);
		if (hwpt_check(gd->hwpt_id) < 0)
			return -1;
		if (!pow2(gd->page_size) || (gd->iova & (gd->page_size - 1)) || !gd->length ||
		    (gd->length & (gd->page_size - 1)) || !gd->data || (gd->data & 7))
			return fail(EINVAL);
		if (!fk->io_tracking)
			return fail(EINVAL);
		for (uint64_t p = 0; p < FK_PAGES; p++) {
			uint64_t addr = FK_BASE + p * FK_PAGE;

			if (!fk->io_dirty[p] || addr < gd->iova || addr - gd->iova >= gd->length)
				continue;
			set_user_bit((uint64_t *)(uintptr_t)gd->data, (addr - gd->iova) / gd->page_size);
			if (!(gd->flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR))
				fk->io_dirty[p] = false;
		}
		return 0;
	}
	return fail(ENOTTY);
}

/* ---- KVM ---------------------------------------------------------------- */

static int kvm_vm_ioctl(struct fake_kernel *fk, unsigned long req, void *arg)
{
	if (req == KVM_GET_DIRTY_LOG) {
		struct kvm_dirty_log *log = arg;
		uint64_t *bm = log->dirty_bitmap;

		if (fk->kvm_ring_mode)
			return fail(ENXIO);
		if (log->slot != FK_SLOT || !fk->kvm_npages)
			return fail(ENOENT);
		/* KVM copies its whole bitmap (overwrites). */
		memset(bm, 0, SL_DIV_ROUND_UP(fk->kvm_npages, 64) * 8);
		for (uint64_t p = 0; p < fk->kvm_npages; p++) {
			if (fk->kvm_dirty[p]) {
				set_user_bit(bm, p);
				if (!fk->kvm_manual)
					fk->kvm_dirty[p] = false; /* get-and-re-protect */
			}
		}
		return 0;
	}
	if (req == KVM_CLEAR_DIRTY_LOG) {
		struct kvm_clear_dirty_log *cl = arg;
		const uint64_t *mask = cl->dirty_bitmap;

		if (fk->kvm_ring_mode)
			return fail(ENXIO);
		if (cl->slot != FK_SLOT || !fk->kvm_npages)
			return fail(ENOENT);
		if ((cl->first_page & 63) || cl->first_page >= fk->kvm_npages ||
		    cl->num_pages > fk->kvm_npages - cl->first_page)
			return fail(EINVAL);
		if ((cl->num_pages & 63) && cl->first_page + cl->num_pages != fk->kvm_npages)
			return fail(EINVAL);
		for (uint64_t i = 0; i < cl->num_pages; i++)
			if (mask[i / 64] & (UINT64_C(1) << (i % 64)))
				fk->kvm_dirty[cl->first_page + i] = false;
		fk->kvm_clears++;
		return 0;
	}
	if (req == KVM_RESET_DIRTY_RINGS) {
		int n = 0;

		for (unsigned v = 0; v < fk->nvcpus; v++) {
			struct kvm_dirty_gfn *ring = fk->rings[v];

			while (fk->ring_reset[v] != fk->ring_write[v]) {
				struct kvm_dirty_gfn *e = &ring[fk->ring_reset[v] & (fk->ring_entries - 1)];

				if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_RESET))
					break;
				e->flags = 0;
				fk->ring_reset[v]++;
				n++;
			}
		}
		fk->ring_resets++;
		fk->ring_entries_reset += (uint64_t)n;
		return n;
	}
	if (req == KVM_CHECK_EXTENSION) {
		if ((uintptr_t)arg == KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
			return KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET;
		return 0;
	}
	if (req == KVM_ENABLE_CAP) {
		struct kvm_enable_cap *cap = arg;

		if (cap->cap != KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 || (cap->args[0] & ~UINT64_C(3)))
			return fail(EINVAL);
		fk->kvm_manual = cap->args[0] & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
		if (cap->args[0] & KVM_DIRTY_LOG_INITIALLY_SET)
			for (uint64_t p = 0; p < fk->kvm_npages; p++)
				fk->kvm_dirty[p] = true;
		return 0;
	}
	return fail(ENOTTY);
}

bool fk_ring_push(struct fake_kernel *fk, unsigned v, uint32_t slot, uint64_t gfn)
{
	struct kvm_dirty_gfn *e;

	if (v >= fk->nvcpus ||
	    (fk->ring_write[v] - fk->ring_reset[v] >= fk->ring_entries - FK_RING_RSVD &&
	     !fk->ring_overrun))
		return false;
	e = &((struct kvm_dirty_gfn *)fk->rings[v])[fk->ring_write[v] & (fk->ring_entries - 1)];
	e->slot = slot;
	e->offset = gfn;
	__atomic_store_n(&e->flags, (uint32_t)KVM_DIRTY_GFN_F_DIRTY, __ATOMIC_RELEASE);
	fk->ring_write[v]++;
	return true;
}

/* ---- userfaultfd + PAGEMAP_SCAN ------------------------------------------ */

static bool window_range(uint64_t start, uint64_t len)
{
	return !(start & (FK_PAGE - 1)) && !(len & (FK_PAGE - 1)) && len && start >= FK_BASE &&
	       start + len <= FK_BASE + (uint64_t)FK_PAGES * FK_PAGE;
}

static int uffd_ioctl(struct fake_kernel *fk, unsigned long req, void *arg)
{
	if (req == UFFDIO_API) {
		struct uffdio_api *api = arg;

		if (api->api != UFFD_API || (api->features & ~fk->uffd_features)) {
			api->features = 0;
			return fail(EINVAL);
		}
		api->features = fk->uffd_features;
		api->ioctls = 0;
		return 0;
	}
	if (req == UFFDIO_REGISTER) {
		struct uffdio_register *reg = arg;

		if (reg->mode != UFFDIO_REGISTER_MODE_WP || !window_range(reg->range.start, reg->range.len))
			return fail(EINVAL);
		fk->uffd_registered = true;
		return 0;
	}
	if (req == UFFDIO_WRITEPROTECT) {
		struct uffdio_writeprotect *w = arg;
		uint64_t first = (w->range.start - FK_BASE) / FK_PAGE;

		if (!fk->uffd_registered)
			return fail(ENOENT);
		if (!window_range(w->range.start, w->range.len))
			return fail(EINVAL);
		for (uint64_t p = first; p < first + w->range.len / FK_PAGE; p++)
			fk->pm_written[p] = !(w->mode & UFFDIO_WRITEPROTECT_MODE_WP);
		return 0;
	}
	return fail(ENOTTY);
}

static int pagemap_scan(struct fake_kernel *fk, struct pm_scan_arg *a)
{
	struct page_region *vec = (void *)(uintptr_t)a->vec;
	uint64_t n = 0, addr;

	if (!fk->pagemap_scan_supported)
		return fail(ENOTTY);
	if (a->size != sizeof(*a) || (a->flags & ~(uint64_t)(PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC)) ||
	    (a->start & (FK_PAGE - 1)) || a->start > a->end || a->category_mask & ~UINT64_C(0xff) ||
	    a->return_mask & ~UINT64_C(0xff))
		return fail(EINVAL);
	/* vec_len 0 is legal uAPI but hit a kernel bug; the fake refuses it
	 * so a source that passes it fails loudly. */
	if (!a->vec_len || !vec)
		return fail(EINVAL);
	if ((a->flags & PM_SCAN_CHECK_WPASYNC) && !fk->uffd_registered)
		return fail(EPERM);
	for (addr = a->start; addr < a->end; addr += FK_PAGE) {
		uint64_t p = (addr - FK_BASE) / FK_PAGE;

		if (addr < FK_BASE || p >= FK_PAGES || !fk->pm_written[p])
			continue;
		if (n && vec[n - 1].end == addr) {
			vec[n - 1].end += FK_PAGE;
		} else if (n == a->vec_len) {
			break; /* vector full: stop here */
		} else {
			vec[n].start = addr;
			vec[n].end = addr + FK_PAGE;
			vec[n].categories = PAGE_IS_WRITTEN & a->return_mask;
			n++;
		}
		if (a->flags & PM_SCAN_WP_MATCHING)
			fk->pm_written[p] = false; /* atomic get-and-re-protect */
	}
	a->walk_end = addr < a->end ? addr : a->end;
	fk->pm_scans++;
	return (int)n;
}

/* ---- the sl_sys table ---------------------------------------------------- */

static int fk_open(void *ctx, const char *path, int flags, mode_t mode)
{
	(void)ctx;
	(void)flags;
	(void)mode;
	if (!strcmp(path, "/proc/self/pagemap"))
		return FK_PAGEMAP_FD;
	return fail(ENOENT);
}

static int fk_close(void *ctx, int fd)
{
	struct fake_kernel *fk = ctx;

	if (fd == FK_UFFD) {
		fk->uffd_open = false;
		fk->uffd_registered = false;
	}
	return 0;
}

static int fk_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct fake_kernel *fk = ctx;

	fk->ioctls++;
	if (fk->fail_count && (!fk->fail_req || fk->fail_req == req)) {
		fk->fail_count--;
		return fail(fk->fail_errno);
	}
	switch (fd) {
	case FK_CONTAINER_FD:
		return req == VFIO_IOMMU_DIRTY_PAGES ? type1_dirty_pages(fk, arg) : fail(ENOTTY);
	case FK_DEVICE_FD:
		return req == VFIO_DEVICE_FEATURE ? device_feature(fk, arg) : fail(ENOTTY);
	case FK_IOMMUFD:
		return iommufd_ioctl(fk, req, arg);
	case FK_VM_FD:
		return kvm_vm_ioctl(fk, req, arg);
	case FK_UFFD:
		return fk->uffd_open ? uffd_ioctl(fk, req, arg) : fail(EBADF);
	case FK_PAGEMAP_FD:
		return req == PAGEMAP_SCAN ? pagemap_scan(fk, arg) : fail(ENOTTY);
	default:
		return fail(EBADF);
	}
}

static void *fk_mmap(void *ctx, void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct fake_kernel *fk = ctx;
	unsigned v = (unsigned)(fd - FK_VCPU_FD0);

	(void)addr;
	(void)prot;
	(void)flags;
	if (fd < FK_VCPU_FD0 || v >= fk->nvcpus || off != 64 * 4096 || !fk->ring_entries ||
	    len != SL_DIV_ROUND_UP(fk->ring_entries * sizeof(struct kvm_dirty_gfn), 4096) * 4096) {
		errno = EINVAL;
		return MAP_FAILED;
	}
	return fk->rings[v];
}

static int fk_munmap(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	(void)addr;
	(void)len;
	return 0; /* rings are freed by fk_exit */
}

static ssize_t fk_read(void *ctx, int fd, void *buf, size_t len)
{
	(void)ctx;
	(void)fd;
	(void)buf;
	(void)len;
	return fail(EBADF);
}

static ssize_t fk_write_fd(void *ctx, int fd, const void *buf, size_t len)
{
	(void)ctx;
	(void)fd;
	(void)buf;
	(void)len;
	return fail(EBADF);
}

static long fk_syscall6(void *ctx, long nr, long a, long b, long c, long d, long e, long f)
{
	struct fake_kernel *fk = ctx;

	(void)b;
	(void)c;
	(void)d;
	(void)e;
	(void)f;
	if (nr != SYS_userfaultfd)
		return fail(ENOSYS);
	if (!(a & UFFD_USER_MODE_ONLY) || !(a & O_CLOEXEC))
		return fail(EPERM); /* unprivileged users need USER_MODE_ONLY */
	if (fk->uffd_errno)
		return fail(fk->uffd_errno);
	fk->uffd_open = true;
	return FK_UFFD;
}

void fk_init(struct fake_kernel *fk)
{
	memset(fk, 0, sizeof(*fk));
	fk->sys.ctx = fk;
	fk->sys.open = fk_open;
	fk->sys.close = fk_close;
	fk->sys.ioctl = fk_ioctl;
	fk->sys.mmap = fk_mmap;
	fk->sys.munmap = fk_munmap;
	fk->sys.read = fk_read;
	fk->sys.write = fk_write_fd;
	fk->sys.syscall6 = fk_syscall6;
	fk->t1_pgsize = FK_PAGE;
	fk->t1_map_pages = FK_PAGES;
	fk->dl_supported = true;
	fk->kvm_npages = FK_PAGES;
	fk->nvcpus = 2;
	fk->ring_entries = 64;
	for (unsigned v = 0; v < FK_MAX_VCPUS; v++)
		fk->rings[v] = calloc(fk->ring_entries, sizeof(struct kvm_dirty_gfn));
	fk->uffd_features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	fk->pagemap_scan_supported = true;
}

void fk_exit(struct fake_kernel *fk)
{
	for (unsigned v = 0; v < FK_MAX_VCPUS; v++) {
		free(fk->rings[v]);
		fk->rings[v] = NULL;
	}
}

void fk_write(struct fake_kernel *fk, uint64_t page)
{
	uint64_t addr = FK_BASE + page * FK_PAGE;

	if (page >= FK_PAGES)
		return;
	if (fk->t1_tracking && page < fk->t1_map_pages)
		fk->t1_dirty[page] = true;
	if (fk->dl_started && dl_in_ranges(fk, addr))
		fk->dl_dirty[page] = true;
	if (fk->io_tracking)
		fk->io_dirty[page] = true;
	if (!fk->kvm_ring_mode && page < fk->kvm_npages)
		fk->kvm_dirty[page] = true;
	fk->pm_written[page] = true; /* a write clears uffd-wp (async) */
}

void fk_fail(struct fake_kernel *fk, unsigned long req, int err, int n)
{
	fk->fail_req = req;
	fk->fail_errno = err;
	fk->fail_count = n;
}

/* ---- test helper ---------------------------------------------------------- */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <cmocka.h>

void fk_assert_pages(const uint64_t *bm, uint64_t npages, const uint64_t *pages, size_t n)
{
	uint64_t set = 0;

	for (size_t i = 0; i < n; i++) {
		if (!(bm[pages[i] / 64] & (UINT64_C(1) << (pages[i] % 64))))
			fail_msg("page %llu expected dirty, is clean", (unsigned long long)pages[i]);
	}
	for (uint64_t p = 0; p < npages; p++) {
		if (bm[p / 64] & (UINT64_C(1) << (p % 64))) {
			bool listed = false;

			for (size_t i = 0; i < n; i++)
				listed |= pages[i] == p;
			if (!listed)
				fail_msg("page %llu reported dirty, was not written", (unsigned long long)p);
			set++;
		}
	}
	assert_int_equal(set, n);
}
