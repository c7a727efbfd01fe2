/* SPDX-License-Identifier: MIT */
/*
 * dirty_uffd.c — dirty tracking of this process's memory without KVM:
 * userfaultfd asynchronous write-protect (WP_ASYNC: a write just clears the
 * WP bit, no fault message) + PAGEMAP_SCAN on /proc/self/pagemap, whose
 * WP_MATCHING flag atomically reports written pages and write-protects them
 * again, returning coalesced [start, end) regions. Kernel 6.7+.
 *
 * Every kernel call goes through the sl_sys seam (userfaultfd via syscall6).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sl_dirty_internal.h"
#include "sl_kernel_compat.h"

/* Regions returned per PAGEMAP_SCAN; when it fills, the scan restarts from
 * walk_end. 512 * 24 B = 12 KiB. */
#define UFFD_VEC_DEFAULT 512

#define UFFD_FEATURES (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)

struct uffd_src {
	struct sl_dirty_source base;
	const struct sl_sys *sys;
	uintptr_t addr;
	uint64_t page_size;
	int uffd;
	int pagemap_fd;
	struct page_region *vec;
	uint64_t vec_len;
	uint64_t scans; /* PAGEMAP_SCAN calls (tests check the restart path) */
};

static struct uffd_src *to_us(struct sl_dirty_source *src)
{
	return (struct uffd_src *)src;
}

/* Opens a userfaultfd with WP_ASYNC; returns the fd or -errno with why. */
static int open_uffd(const struct sl_sys *sys, struct sl_errbuf *eb)
{
	struct uffdio_api api;
	long fd;
	int ret;

	fd = sys->syscall6(sys->ctx, SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY, 0, 0, 0, 0, 0);
	if (fd < 0) {
		ret = -errno;
		return sl_err(eb, ret, "uffd-wp: userfaultfd(): %s%s", strerror(-ret),
			      ret == -ENOSYS ? " (kernel built without CONFIG_USERFAULTFD)"
			      : ret == -EPERM ? " (blocked by vm.unprivileged_userfaultfd or seccomp)"
			      : "");
	}
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = UFFD_FEATURES;
	ret = sl_sys_ioctl(sys, (int)fd, UFFDIO_API, &api);
	if (ret < 0 || (api.features & UFFD_FEATURES) != UFFD_FEATURES) {
		int ifd = (int)fd;

		sl_sys_close(sys, &ifd);
		if (ret == 0)
			ret = -EOPNOTSUPP;
		return sl_err(eb, ret,
			      "uffd-wp: UFFDIO_API with WP_ASYNC|WP_UNPOPULATED: %s "
			      "(needs Linux 6.7+ with CONFIG_PTE_MARKER_UFFD_WP)", strerror(-ret));
	}
	return (int)fd;
}

static int protect(struct uffd_src *us, bool wp)
{
	struct uffdio_writeprotect w;
	int ret;

	memset(&w, 0, sizeof(w));
	w.range.start = us->addr;
	w.range.len = us->base.npages * us->page_size;
	w.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0;
	ret = sl_sys_ioctl(us->sys, us->uffd, UFFDIO_WRITEPROTECT, &w);
	if (ret < 0)
		return sl_err(&us->base.err, ret, "uffd-wp: UFFDIO_WRITEPROTECT: %s", strerror(-ret));
	return 0;
}

static void close_fds(struct uffd_src *us)
{
	sl_sys_close(us->sys, &us->uffd);
	sl_sys_close(us->sys, &us->pagemap_fd);
}

static int us_start(struct sl_dirty_source *src)
{
	struct uffd_src *us = to_us(src);
	struct uffdio_register reg;
	int ret;

	ret = open_uffd(us->sys, &src->err);
	if (ret < 0)
		return ret;
	us->uffd = ret;
	ret = sl_sys_open(us->sys, "/proc/self/pagemap", O_RDONLY);
	if (ret < 0) {
		close_fds(us);
		return sl_err(&src->err, ret, "uffd-wp: open /proc/self/pagemap: %s", strerror(-ret));
	}
	us->pagemap_fd = ret;
	memset(&reg, 0, sizeof(reg));
	reg.range.start = us->addr;
	reg.range.len = src->npages * us->page_size;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	ret = sl_sys_ioctl(us->sys, us->uffd, UFFDIO_REGISTER, &reg);
	if (ret < 0) {
		close_fds(us);
		return sl_err(&src->err, ret,
			      "uffd-wp: UFFDIO_REGISTER(MODE_WP) [%#lx, +%llu pages): %s%s",
			      (unsigned long)us->addr, (unsigned long long)src->npages, strerror(-ret),
			      ret == -EINVAL ? " (range must be mapped anonymous/shmem/hugetlb memory)" : "");
	}
	/* Registration alone protects nothing: arm every page now, so the
	 * first sync reports exactly the writes made after start. */
	ret = protect(us, true);
	if (ret < 0) {
		close_fds(us);
		return ret;
	}
	return 0;
}

static int64_t us_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	struct uffd_src *us = to_us(src);
	uint64_t end = us->addr + src->npages * us->page_size;
	uint64_t cur = us->addr, found = 0;

	while (cur < end) {
		struct pm_scan_arg arg;
		int ret;

		memset(&arg, 0, sizeof(arg));
		arg.size = sizeof(arg);
		arg.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
		arg.start = cur;
		arg.end = end;
		arg.vec = (uintptr_t)us->vec;
		arg.vec_len = us->vec_len; /* never 0: that path had a kernel bug */
		arg.category_mask = PAGE_IS_WRITTEN;
		arg.return_mask = PAGE_IS_WRITTEN;
		ret = sl_sys_ioctl(us->sys, us->pagemap_fd, PAGEMAP_SCAN, &arg);
		us->scans++;
		if (ret < 0)
			return sl_err(&src->err, ret, "uffd-wp: PAGEMAP_SCAN [%#llx, %#llx): %s",
				      (unsigned long long)cur, (unsigned long long)end, strerror(-ret));
		if ((uint64_t)ret > us->vec_len)
			return sl_err(&src->err, -EIO, "uffd-wp: PAGEMAP_SCAN returned %d > %llu regions",
				      ret, (unsigned long long)us->vec_len);
		for (int i = 0; i < ret; i++) {
			const struct page_region *pr = &us->vec[i];
			uint64_t s = SL_MAX(pr->start, cur), e = SL_MIN(pr->end, end);

			if (e <= s)
				continue;
			s = (s - us->addr) / us->page_size;
			e = SL_DIV_ROUND_UP(e - us->addr, us->page_size);
			sl_dirty_set_bits(bitmap, s, e - s);
			found += e - s;
		}
		/* The kernel stops early when the vector fills; walk_end is
		 * where it stopped (end when it finished). */
		if (arg.walk_end <= cur || arg.walk_end > end)
			return sl_err(&src->err, -EIO, "uffd-wp: PAGEMAP_SCAN walk_end %#llx outside (%#llx, %#llx]",
				      (unsigned long long)arg.walk_end, (unsigned long long)cur,
				      (unsigned long long)end);
		cur = arg.walk_end;
	}
	return (int64_t)found;
}

static int us_stop(struct sl_dirty_source *src)
{
	struct uffd_src *us = to_us(src);

	/* Closing the userfaultfd unregisters the range and drops the WP
	 * markers' meaning; writes stop being tracked. */
	close_fds(us);
	return 0;
}

static void us_destroy(struct sl_dirty_source *src)
{
	struct uffd_src *us = to_us(src);

	close_fds(us);
	free(us->vec);
	free(us);
}

static const struct sl_dirty_ops uffd_ops = {
	.name = "uffd-wp",
	.start = us_start,
	.sync = us_sync,
	.stop = us_stop,
	.destroy = us_destroy,
};

SL_EXPORT int sl_dirty_uffd_new(const struct sl_dirty_uffd_config *cfg,
				struct sl_dirty_source **out, struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct uffd_src *us;
	long page_size;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "uffd-wp: out is NULL");
	*out = NULL;
	ret = sl_dirty_check_config(cfg, offsetof(struct sl_dirty_uffd_config, page_size) + sizeof(long),
				    "uffd-wp", eb);
	if (ret < 0)
		return ret;
	page_size = cfg->page_size ? cfg->page_size : sysconf(_SC_PAGESIZE);
	if (page_size <= 0 || (page_size & (page_size - 1)))
		return sl_err(eb, -EINVAL, "uffd-wp: bad page_size %ld", page_size);
	if (!cfg->addr || ((uintptr_t)cfg->addr & (uintptr_t)(page_size - 1)))
		return sl_err(eb, -EINVAL, "uffd-wp: addr %p is not page-aligned", cfg->addr);
	if (!cfg->npages || cfg->npages > (UINTPTR_MAX - (uintptr_t)cfg->addr) / (uint64_t)page_size)
		return sl_err(eb, -EINVAL, "uffd-wp: npages %llu out of range",
			      (unsigned long long)cfg->npages);
	us = calloc(1, sizeof(*us));
	if (!us)
		return sl_err(eb, -ENOMEM, "uffd-wp: out of memory");
	sl_dirty_source_init(&us->base, &uffd_ops, SL_DIRTY_UFFD_WP, SL_DIRTY_CAP_RANGES, cfg->npages);
	us->sys = cfg->sys ? cfg->sys : sl_sys_default();
	us->addr = (uintptr_t)cfg->addr;
	us->page_size = (uint64_t)page_size;
	us->uffd = -1;
	us->pagemap_fd = -1;
	us->vec_len = UFFD_VEC_DEFAULT;
	if (cfg->size >= offsetof(struct sl_dirty_uffd_config, vec_len) + sizeof(cfg->vec_len) &&
	    cfg->vec_len)
		us->vec_len = cfg->vec_len;
	us->vec = calloc(us->vec_len, sizeof(*us->vec));
	if (!us->vec) {
		free(us);
		return sl_err(eb, -ENOMEM, "uffd-wp: out of memory");
	}
	*out = &us->base;
	return 0;
}

SL_EXPORT uint64_t sl_dirty_uffd_scans(const struct sl_dirty_source *src)
{
	if (!src || src->kind != SL_DIRTY_UFFD_WP)
		return 0;
	return ((const struct uffd_src *)src)->scans;
}

SL_EXPORT int sl_dirty_uffd_probe(struct sl_errbuf *eb)
{
	const struct sl_sys *sys = sl_sys_default();
	struct sl_dirty_uffd_config cfg;
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf dummy;
	uint64_t bm = 0;
	long psz = sysconf(_SC_PAGESIZE);
	volatile char *mem;
	int64_t n;
	int ret;

	if (!eb)
		eb = &dummy;
	/* A real round trip on two pages: write one, expect exactly it. */
	mem = mmap(NULL, 2 * (size_t)psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return sl_err(eb, -errno, "uffd-wp probe: mmap: %s", strerror(errno));
	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.sys = sys;
	cfg.addr = (void *)mem;
	cfg.npages = 2;
	ret = sl_dirty_uffd_new(&cfg, &src, eb);
	if (ret == 0)
		ret = sl_dirty_start(src);
	if (ret < 0) {
		if (src)
			sl_err(eb, ret, "%s", sl_dirty_last_error(src));
		goto out;
	}
	mem[psz] = 1;
	n = sl_dirty_sync(src, &bm);
	if (n < 0) {
		ret = sl_err(eb, (int)n, "%s%s", sl_dirty_last_error(src),
			     n == -ENOTTY || n == -EINVAL ? " (kernel lacks PAGEMAP_SCAN, Linux 6.7+)" : "");
		goto out;
	}
	if (bm != 2)
		ret = sl_err(eb, -EIO, "uffd-wp probe: wrote page 1, PAGEMAP_SCAN reported mask %#llx",
			     (unsigned long long)bm);
out:
	sl_dirty_free(&src);
	munmap((void *)mem, 2 * (size_t)psz);
	return ret;
}
