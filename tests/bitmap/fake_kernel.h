/* SPDX-License-Identifier: MIT */
/*
 * fake_kernel.h — an sl_sys table backed by a fake kernel that follows the
 * documented uAPI rules of the dirty-tracking interfaces (KVM dirty bitmap
 * and ring, userfaultfd WP_ASYNC + PAGEMAP_SCAN, VFIO type1 dirty pages,
 * VFIO device DMA logging, iommufd HWPT dirty tracking), so the sources'
 * real code runs against it: argument checks (argsz, alignment, sizes,
 * flags), read-and-clear, bits only ever OR'ed into user buffers (a source
 * that forgets to zero its buffer sees stale bits), E2BIG for too many DMA
 * logging ranges, and injected failures.
 *
 * All "memory" is a window of FK_PAGES 4 KiB pages at IOVA/GPA/address
 * FK_BASE; fk_write() marks a page written for every tracker that is on.
 */
#ifndef FAKE_KERNEL_H
#define FAKE_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_sys.h"

#define FK_PAGE 4096u
#define FK_PAGES 4096u               /* 16 MiB window */
#define FK_BASE UINT64_C(0x40000000) /* iova / user address of page 0 */

enum {
	FK_CONTAINER_FD = 100,
	FK_DEVICE_FD,
	FK_IOMMUFD,
	FK_VM_FD,
	FK_UFFD,
	FK_PAGEMAP_FD,
	FK_VCPU_FD0 = 110, /* vCPU v is FK_VCPU_FD0 + v */
};

#define FK_MAX_VCPUS 4
/* KVM keeps reserved ring entries: a vCPU exits DIRTY_RING_FULL once
 * ring_entries - FK_RING_RSVD entries are in use (soft full). */
#define FK_RING_RSVD 16
#define FK_HWPT_ID 7u         /* allocated with DIRTY_TRACKING */
#define FK_HWPT_NODIRTY_ID 8u /* allocated without */
#define FK_DMA_LOG_MAX_RANGES (4096 / 16)

struct fake_kernel {
	struct sl_sys sys;

	/* Failure injection: the next fail_count ioctls with request
	 * fail_req (0 = any) fail with fail_errno. */
	unsigned long fail_req;
	int fail_errno;
	int fail_count;
	unsigned ioctls; /* total ioctls seen */

	/* VFIO type1: one DMA mapping [FK_BASE, +t1_map_pages) */
	bool t1_tracking;
	uint64_t t1_pgsize; /* smallest IOMMU page size */
	uint64_t t1_map_pages;
	bool t1_dirty[FK_PAGES];

	/* VFIO device DMA logging */
	bool dl_supported;
	bool dl_started;
	uint64_t dl_chosen_pgsize; /* 0 = accept the hint */
	uint32_t dl_nranges;
	uint64_t dl_range_iova[FK_DMA_LOG_MAX_RANGES];
	uint64_t dl_range_len[FK_DMA_LOG_MAX_RANGES];
	bool dl_dirty[FK_PAGES];
	unsigned dl_starts, dl_stops, dl_reports;

	/* iommufd */
	bool io_tracking;
	bool io_dirty[FK_PAGES];

	/* KVM bitmap: slot FK_SLOT of kvm_npages pages at gfn 0 */
	uint64_t kvm_npages;
	bool kvm_manual;
	bool kvm_ring_mode;
	bool kvm_dirty[FK_PAGES];
	unsigned kvm_clears;

	/* KVM dirty ring */
	unsigned nvcpus;
	uint32_t ring_entries;
	void *rings[FK_MAX_VCPUS];
	uint32_t ring_write[FK_MAX_VCPUS];  /* kernel's next push index */
	uint32_t ring_reset[FK_MAX_VCPUS];  /* kernel's next reset index */
	bool ring_overrun;                  /* push into a full ring overwrites (KVM's WARN case) */
	unsigned ring_resets;               /* KVM_RESET_DIRTY_RINGS calls */
	uint64_t ring_entries_reset;        /* entries recycled by them */

	/* userfaultfd + PAGEMAP_SCAN over the window */
	uint64_t uffd_features; /* what UFFDIO_API grants */
	int uffd_errno;         /* userfaultfd() fails with this if non-zero */
	bool pagemap_scan_supported;
	bool uffd_registered;
	bool uffd_open;
	bool pm_written[FK_PAGES]; /* PAGE_IS_WRITTEN: !uffd-wp */
	unsigned pm_scans;
};

#define FK_SLOT 3u

/* Initialises fk with every feature present and nothing dirty. */
void fk_init(struct fake_kernel *fk);
/* Frees ring memory. */
void fk_exit(struct fake_kernel *fk);
/* A write to window page p (DMA, guest or CPU): each tracker that is on
 * logs it; a KVM ring push goes to vCPU 0 (see fk_ring_push). */
void fk_write(struct fake_kernel *fk, uint64_t page);
/* Pushes a dirty entry to vCPU v's ring; false when the ring is soft-full
 * (the vCPU would exit KVM_EXIT_DIRTY_RING_FULL), unless ring_overrun. */
bool fk_ring_push(struct fake_kernel *fk, unsigned v, uint32_t slot, uint64_t gfn);
/* Makes the next n ioctls with req (0 = any) fail with err (positive). */
void fk_fail(struct fake_kernel *fk, unsigned long req, int err, int n);


#include <stddef.h>
/* cmocka assertion: bm (npages bits) has exactly the n pages listed set. */
void fk_assert_pages(const uint64_t *bm, uint64_t npages, const uint64_t *pages, size_t n);

#endif /* FAKE_KERNEL_H */
