/* SPDX-License-Identifier: MIT */
/*
 * sl_kernel_compat.h — kernel uAPI that is newer than the installed headers.
 *
 * The build machines run a 6.18 kernel but ship linux-libc-dev 6.1, which
 * lacks VFIO PRE_COPY and its precopy-info ioctl, MIG_DATA_SIZE, all of
 * iommufd, PAGEMAP_SCAN and userfaultfd's WP_ASYNC. Every definition sits
 * behind #ifndef so newer headers win; values are from the kernel uAPI.
 * Features are probed at run time: a constant existing here does not mean
 * the running kernel supports it.
 *
 * This is the only place such constants may be defined.
 */
#ifndef SL_KERNEL_COMPAT_H
#define SL_KERNEL_COMPAT_H

#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <linux/vfio.h>
#include <linux/fs.h>

/* ---- KVM ---------------------------------------------------------------- */
#ifndef KVM_CAP_DIRTY_LOG_RING_ACQ_REL
#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223
#endif
#ifndef KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE
#define KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (1 << 0)
#endif
#ifndef KVM_DIRTY_LOG_INITIALLY_SET
#define KVM_DIRTY_LOG_INITIALLY_SET (1 << 1)
#endif

/* ---- userfaultfd (6.7+: WP_ASYNC, WP_UNPOPULATED) ----------------------- */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

/* ---- PAGEMAP_SCAN (6.7+) on /proc/PID/pagemap ---------------------------- */
#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)

struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

/* ---- VFIO migration v2 additions (6.2+) --------------------------------- */
#ifndef VFIO_MIGRATION_PRE_COPY
#define VFIO_MIGRATION_PRE_COPY (1 << 2)
#endif
/* enum vfio_device_mig_state gained these two after 6.1. */
#define SL_VFIO_DEVICE_STATE_PRE_COPY 6
#define SL_VFIO_DEVICE_STATE_PRE_COPY_P2P 7

#ifndef VFIO_MIG_GET_PRECOPY_INFO
struct vfio_precopy_info {
	__u32 argsz;
	__u32 flags;
	__aligned_u64 initial_bytes;
	__aligned_u64 dirty_bytes;
};
#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
#endif

#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
struct vfio_device_feature_mig_data_size {
	__aligned_u64 stop_copy_length;
};
#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif

/* iommufd-bound VFIO cdev (6.6+). */
#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif

/* ---- iommufd (6.2+; dirty tracking 6.7+) -------------------------------- */
#ifndef IOMMUFD_TYPE
#define IOMMUFD_TYPE (';')
#define IOMMUFD_CMD_BASE 0x80
#endif
#ifndef IOMMU_HWPT_ALLOC_DIRTY_TRACKING
#define IOMMU_HWPT_ALLOC_DIRTY_TRACKING (1 << 1)
#endif
#ifndef IOMMU_HWPT_SET_DIRTY_TRACKING
#define IOMMU_HWPT_DIRTY_TRACKING_ENABLE 1
struct iommu_hwpt_set_dirty_tracking {
	__u32 size;
	__u32 flags;
	__u32 hwpt_id;
	__u32 __reserved;
};
#define IOMMU_HWPT_SET_DIRTY_TRACKING _IO(IOMMUFD_TYPE, 0x8b)

#define IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR 1
struct iommu_hwpt_get_dirty_bitmap {
	__u32 size;
	__u32 hwpt_id;
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 data;
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP _IO(IOMMUFD_TYPE, 0x8c)
#endif

/* ---- io_uring ------------------------------------------------------------ */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

#endif /* SL_KERNEL_COMPAT_H */
