/* SPDX-License-Identifier: MIT */
/*
 * dirty_kvm_bitmap.c — KVM memslot dirty bitmap (KVM_GET_DIRTY_LOG), with
 * optional manual protection (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): then GET
 * does not re-protect, and the engine re-arms 64-page-aligned chunks with
 * KVM_CLEAR_DIRTY_LOG just before it copies them (clear-before-copy).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sl_dirty_internal.h"
#include "sl_kernel_compat.h"

/* The most pages one KVM_CLEAR_DIRTY_LOG names (num_pages is a u32); a
 * multiple of 64 so every chunk but the last stays aligned. */
#define CLEAR_MAX_PAGES (UINT32_C(1) << 31)

struct kvm_bitmap_src {
	struct sl_dirty_source base;
	const struct sl_sys *sys;
	int vm_fd;
	uint32_t slot;
	bool manual;
	uint64_t *scratch; /* GET target, sl_dirty_words(npages) words, ending at a guard page */
	void *scratch_map; /* the mapping holding scratch + guard */
	size_t scratch_map_len;
};

/* KVM_GET_DIRTY_LOG writes as many bytes as the memslot has pages / 8, and
 * KVM cannot be asked a slot's size: a config with npages smaller than the
 * slot would let KVM write past the buffer. So the buffer ends exactly at a
 * PROT_NONE page; KVM's copy then fails with EFAULT instead. */
static int scratch_alloc(struct kvm_bitmap_src *kb, uint64_t words)
{
	size_t psz = (size_t)sysconf(_SC_PAGESIZE);
	size_t bytes = words * sizeof(uint64_t);
	size_t data = SL_DIV_ROUND_UP(bytes, psz) * psz;
	char *p;

	p = mmap(NULL, data + psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	if (mprotect(p + data, psz, PROT_NONE) < 0) {
		munmap(p, data + psz);
		return -ENOMEM;
	}
	kb->scratch_map = p;
	kb->scratch_map_len = data + psz;
	kb->scratch = (uint64_t *)(p + data - bytes);
	return 0;
}

static struct kvm_bitmap_src *to_kb(struct sl_dirty_source *src)
{
	return (struct kvm_bitmap_src *)src;
}

static int get_log(struct kvm_bitmap_src *kb)
{
	struct kvm_dirty_log log;
	int ret;

	memset(&log, 0, sizeof(log));
	log.slot = kb->slot;
	log.dirty_bitmap = kb->scratch;
	ret = sl_sys_ioctl(kb->sys, kb->vm_fd, KVM_GET_DIRTY_LOG, &log);
	if (ret < 0) {
		const char *why = ret == -ENOENT ? " (slot lacks KVM_MEM_LOG_DIRTY_PAGES or does not exist)"
				: ret == -ENXIO ? " (the VM uses the dirty ring; use the kvm-ring source)"
				: ret == -EFAULT ? " (is the slot larger than the configured npages?)"
				: "";
		return sl_err(&kb->base.err, ret, "kvm-bitmap: KVM_GET_DIRTY_LOG slot %u (%llu pages): %s%s",
			      kb->slot, (unsigned long long)kb->base.npages, strerror(-ret), why);
	}
	return 0;
}

static int kb_start(struct sl_dirty_source *src)
{
	struct kvm_bitmap_src *kb = to_kb(src);

	/* One GET proves the slot logs dirty pages. Without manual protection
	 * it also drops what was written before start; with it (and
	 * INITIALLY_SET) the bits stay until the engine clears them. */
	return get_log(kb);
}

static int64_t kb_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	struct kvm_bitmap_src *kb = to_kb(src);
	int ret = get_log(kb);

	if (ret < 0)
		return ret;
	return (int64_t)sl_dirty_or_bits(bitmap, kb->scratch, src->npages);
}

static int kb_clear(struct sl_dirty_source *src, uint64_t first, uint64_t npages)
{
	struct kvm_bitmap_src *kb = to_kb(src);
	uint64_t end = first + npages;

	if (first % 64 || (npages % 64 && end != src->npages))
		return sl_err(&src->err, -EINVAL,
			      "kvm-bitmap: clear [%llu, +%llu) must start and end on 64-page boundaries "
			      "(or end at the slot's end, %llu)",
			      (unsigned long long)first, (unsigned long long)npages,
			      (unsigned long long)src->npages);
	while (first < end) {
		uint64_t n = SL_MIN(end - first, (uint64_t)CLEAR_MAX_PAGES);
		struct kvm_clear_dirty_log cl;
		int ret;

		memset(&cl, 0, sizeof(cl));
		cl.slot = kb->slot;
		cl.num_pages = (uint32_t)n;
		cl.first_page = first;
		/* Only the pages the last GET reported (and the engine is about
		 * to send): an all-ones mask would also clear a page written
		 * after that GET, and its write would be lost (QEMU passes its
		 * synced bitmap for the same reason). */
		cl.dirty_bitmap = kb->scratch + first / 64;
		ret = sl_sys_ioctl(kb->sys, kb->vm_fd, KVM_CLEAR_DIRTY_LOG, &cl);
		if (ret < 0)
			return sl_err(&src->err, ret,
				      "kvm-bitmap: KVM_CLEAR_DIRTY_LOG slot %u [%llu, +%llu): %s%s",
				      kb->slot, (unsigned long long)first, (unsigned long long)n,
				      strerror(-ret),
				      ret == -EINVAL ? " (is KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 enabled?)" : "");
		src->counters.clear_calls++;
		first += n;
	}
	return 0;
}

static void kb_destroy(struct sl_dirty_source *src)
{
	struct kvm_bitmap_src *kb = to_kb(src);

	if (kb->scratch_map)
		munmap(kb->scratch_map, kb->scratch_map_len);
	free(kb);
}

static const struct sl_dirty_ops kvm_bitmap_ops = {
	.name = "kvm-bitmap",
	.start = kb_start,
	.sync = kb_sync,
	.clear = kb_clear,
	.destroy = kb_destroy,
};

SL_EXPORT int sl_dirty_kvm_bitmap_new(const struct sl_dirty_kvm_bitmap_config *cfg,
				      struct sl_dirty_source **out, struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct kvm_bitmap_src *kb;
	uint64_t words;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "kvm-bitmap: out is NULL");
	*out = NULL;
	ret = sl_dirty_check_config(cfg, sizeof(*cfg), "kvm-bitmap", eb);
	if (ret < 0)
		return ret;
	if (cfg->vm_fd < 0)
		return sl_err(eb, -EINVAL, "kvm-bitmap: vm_fd %d is not a file descriptor", cfg->vm_fd);
	if (!cfg->npages || cfg->npages > (UINT64_C(1) << 40))
		return sl_err(eb, -EINVAL, "kvm-bitmap: npages %llu out of range (1 .. 2^40)",
			      (unsigned long long)cfg->npages);
	kb = calloc(1, sizeof(*kb));
	if (!kb)
		return sl_err(eb, -ENOMEM, "kvm-bitmap: out of memory");
	sl_dirty_source_init(&kb->base, &kvm_bitmap_ops, SL_DIRTY_KVM_BITMAP,
			     cfg->manual_protect ? SL_DIRTY_CAP_MANUAL_CLEAR : 0, cfg->npages);
	kb->sys = cfg->sys ? cfg->sys : sl_sys_default();
	kb->vm_fd = cfg->vm_fd;
	kb->slot = cfg->slot;
	kb->manual = cfg->manual_protect;
	words = sl_dirty_words(cfg->npages);
	ret = scratch_alloc(kb, words);
	if (ret < 0) {
		kb_destroy(&kb->base);
		return sl_err(eb, -ENOMEM, "kvm-bitmap: out of memory for %llu pages",
			      (unsigned long long)cfg->npages);
	}
	*out = &kb->base;
	return 0;
}

SL_EXPORT int sl_kvm_enable_manual_protect(const struct sl_sys *sys, int vm_fd, bool initially_set,
					   struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct kvm_enable_cap cap;
	uint64_t want = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
			(initially_set ? KVM_DIRTY_LOG_INITIALLY_SET : 0);
	int ret;

	if (!eb)
		eb = &dummy;
	if (!sys)
		sys = sl_sys_default();
	ret = sl_sys_ioctl(sys, vm_fd, KVM_CHECK_EXTENSION,
			   (void *)(uintptr_t)KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	if (ret < 0)
		return sl_err(eb, ret, "KVM_CHECK_EXTENSION(MANUAL_DIRTY_LOG_PROTECT2): %s",
			      strerror(-ret));
	if (((uint64_t)ret & want) != want)
		return sl_err(eb, -EOPNOTSUPP,
			      "KVM lacks MANUAL_DIRTY_LOG_PROTECT2 flags 0x%llx (supports 0x%x)",
			      (unsigned long long)want, ret);
	memset(&cap, 0, sizeof(cap));
	cap.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
	cap.args[0] = want;
	ret = sl_sys_ioctl(sys, vm_fd, KVM_ENABLE_CAP, &cap);
	if (ret < 0)
		return sl_err(eb, ret, "KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2): %s", strerror(-ret));
	return 0;
}
