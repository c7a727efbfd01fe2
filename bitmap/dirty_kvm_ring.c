/* SPDX-License-Identifier: MIT */
/*
 * dirty_kvm_ring.c — KVM dirty ring (KVM_CAP_DIRTY_LOG_RING[_ACQ_REL]).
 *
 * The ring is per VM: one ring per vCPU, mapped from the vCPU fd at
 * KVM_DIRTY_LOG_PAGE_OFFSET pages, covering all memslots. struct sl_kvm_ring
 * owns the mappings and harvests; each sl_dirty_kvm_ring source is one
 * memslot and receives its entries in a pending bitmap.
 *
 * Harvest protocol (Documentation/virt/kvm/api.rst): walk each ring from our
 * fetch index while the entry's flags have DIRTY (acquire load, so slot and
 * offset are read after KVM published them), record it, store RESET
 * (release, so KVM sees our reads done before it reuses the entry), then
 * KVM_RESET_DIRTY_RINGS re-protects the pages. A sync does all of this
 * before it returns, so the engine copies pages only after they are
 * re-armed (clear-before-copy).
 *
 * Threading: one mutex guards fetch indices and pending bitmaps; a vCPU
 * thread calls sl_dirty_kvm_ring_drain() on KVM_EXIT_DIRTY_RING_FULL while
 * the engine thread syncs. The lock is taken per harvest, not per entry.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sl_dirty_internal.h"
#include "sl_kernel_compat.h"

struct kvm_ring_src;

struct sl_kvm_ring {
	const struct sl_sys *sys;
	int vm_fd;
	unsigned nvcpus;
	uint32_t entries;
	size_t map_len;
	struct kvm_dirty_gfn **rings; /* nvcpus mappings */
	uint32_t *fetch;              /* per vCPU: next entry index to read */
	pthread_mutex_t lock;
	bool need_reset;              /* entries marked RESET since the last ioctl */
	struct kvm_ring_src **srcs;   /* registered per-slot sources */
	unsigned nsrcs, cap_srcs;
	uint64_t unclaimed;           /* entries for slots without a source */
	uint64_t overflows;           /* rings found overrun (entries lost) */
	struct sl_errbuf err;
};

struct kvm_ring_src {
	struct sl_dirty_source base;
	struct sl_kvm_ring *ring; /* NULL once the ring was freed first */
	uint32_t slot;
	/* Pending pages since the last sync, plus the words that became
	 * non-zero, so a sync costs O(dirty pages), not O(slot size). */
	uint64_t *pending;
	uint64_t *touched;
	uint64_t ntouched;
	bool accepting; /* started: entries go to pending */
	bool lost;      /* a ring overran: report the whole slot next sync */
};

static struct kvm_ring_src *to_rs(struct sl_dirty_source *src)
{
	return (struct kvm_ring_src *)src;
}

static struct kvm_ring_src *find_src(struct sl_kvm_ring *r, uint32_t slot)
{
	for (unsigned i = 0; i < r->nsrcs; i++)
		if (r->srcs[i]->slot == slot)
			return r->srcs[i];
	return NULL;
}

static void add_pending(struct sl_kvm_ring *r, uint32_t slot, uint64_t gfn)
{
	struct kvm_ring_src *rs = find_src(r, slot);
	uint64_t w;

	if (!rs || !rs->accepting || gfn >= rs->base.npages) {
		r->unclaimed++;
		return;
	}
	w = gfn / 64;
	if (!rs->pending[w])
		rs->touched[rs->ntouched++] = w;
	rs->pending[w] |= UINT64_C(1) << (gfn % 64);
}

/* Caller holds r->lock. Reads entries from our fetch index while DIRTY. */
static uint64_t harvest_run(struct sl_kvm_ring *r, unsigned v)
{
	struct kvm_dirty_gfn *ring = r->rings[v];
	uint32_t mask = r->entries - 1;
	uint64_t n = 0;

	while (n < r->entries) {
		struct kvm_dirty_gfn *e = &ring[r->fetch[v] & mask];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		add_pending(r, e->slot, e->offset);
		__atomic_store_n(&e->flags, (uint32_t)KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		r->fetch[v]++;
		n++;
	}
	return n;
}

/* KVM keeps entries in reserve and exits DIRTY_RING_FULL before its ring
 * fills, so a completely full ring means it overran: entries were
 * overwritten (seen with guests running in KVM's instruction emulator).
 * Pages may be lost, so every source on the ring reports its whole slot at
 * its next sync. */
static void overrun_locked(struct sl_kvm_ring *r)
{
	r->overflows++;
	for (unsigned i = 0; i < r->nsrcs; i++)
		r->srcs[i]->lost = r->srcs[i]->accepting;
}

/* After an overrun KVM's write position is no longer ours: nothing is DIRTY
 * at our index although DIRTY entries exist. Move to the first DIRTY entry
 * that follows a non-DIRTY one, and mark the skipped clean entries RESET so
 * KVM's reset walk (which stops at the first entry not RESET) can pass
 * them; they are stale, already-harvested slots. Returns true if moved. */
static bool resync_locked(struct sl_kvm_ring *r, unsigned v)
{
	struct kvm_dirty_gfn *ring = r->rings[v];
	uint32_t mask = r->entries - 1;
	uint32_t start = r->fetch[v];

	for (uint32_t k = 1; k < r->entries; k++) {
		uint32_t i = start + k;
		/* cur before prev: KVM publishes entries in order, so if cur
		 * is seen DIRTY a prev pushed just before it is seen too. */
		uint32_t cur = __atomic_load_n(&ring[i & mask].flags, __ATOMIC_ACQUIRE);
		uint32_t prev = __atomic_load_n(&ring[(i - 1) & mask].flags, __ATOMIC_ACQUIRE);

		if ((cur & KVM_DIRTY_GFN_F_DIRTY) && !(prev & KVM_DIRTY_GFN_F_DIRTY)) {
			for (uint32_t j = start; j != i; j++) {
				struct kvm_dirty_gfn *e = &ring[j & mask];

				if (!__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE))
					__atomic_store_n(&e->flags, (uint32_t)KVM_DIRTY_GFN_F_RESET,
							 __ATOMIC_RELEASE);
			}
			r->fetch[v] = i;
			return true;
		}
	}
	return false;
}

/* Caller holds r->lock. Returns entries harvested from vCPU v's ring.
 * stuck_check: the vCPU reported a full ring (drain), so an empty harvest
 * means we lost KVM's position. */
static uint64_t harvest_locked(struct sl_kvm_ring *r, unsigned v, bool stuck_check)
{
	uint64_t n = harvest_run(r, v);

	if (n == r->entries) {
		overrun_locked(r);
		n += harvest_run(r, v);
	} else if (!n && stuck_check && resync_locked(r, v)) {
		overrun_locked(r);
		n = harvest_run(r, v);
	}
	if (n)
		r->need_reset = true;
	return n;
}

static int reset_locked(struct sl_kvm_ring *r)
{
	int ret;

	if (!r->need_reset)
		return 0;
	ret = sl_sys_ioctl(r->sys, r->vm_fd, KVM_RESET_DIRTY_RINGS, NULL);
	if (ret < 0)
		return sl_err(&r->err, ret, "kvm-ring: KVM_RESET_DIRTY_RINGS: %s", strerror(-ret));
	r->need_reset = false;
	return 0;
}

/* Harvest every vCPU's ring and re-arm. Caller holds r->lock. */
static int harvest_all_locked(struct sl_kvm_ring *r)
{
	for (unsigned v = 0; v < r->nvcpus; v++)
		harvest_locked(r, v, false);
	return reset_locked(r);
}

SL_EXPORT int sl_dirty_kvm_ring_drain(struct sl_kvm_ring *r, unsigned vcpu)
{
	uint64_t n;
	int ret;

	if (!r || vcpu >= r->nvcpus)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	n = harvest_locked(r, vcpu, true);
	ret = reset_locked(r);
	pthread_mutex_unlock(&r->lock);
	if (ret < 0)
		return ret;
	return (int)SL_MIN(n, (uint64_t)INT32_MAX);
}

SL_EXPORT int sl_kvm_ring_new(const struct sl_kvm_ring_config *cfg, struct sl_kvm_ring **out,
			      struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct sl_kvm_ring *r;
	long page_size;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "kvm-ring: out is NULL");
	*out = NULL;
	ret = sl_dirty_check_config(cfg, sizeof(*cfg), "kvm-ring", eb);
	if (ret < 0)
		return ret;
	if (cfg->vm_fd < 0 || !cfg->nvcpus || !cfg->vcpu_fds)
		return sl_err(eb, -EINVAL, "kvm-ring: need vm_fd and at least one vCPU fd");
	if (cfg->ring_entries < 16 || cfg->ring_entries > 65536 ||
	    (cfg->ring_entries & (cfg->ring_entries - 1)))
		return sl_err(eb, -EINVAL,
			      "kvm-ring: ring_entries %u must be a power of two in 16..65536",
			      cfg->ring_entries);
	page_size = cfg->page_size ? cfg->page_size : sysconf(_SC_PAGESIZE);
	if (page_size <= 0 || (page_size & (page_size - 1)))
		return sl_err(eb, -EINVAL, "kvm-ring: bad page_size %ld", page_size);
	for (unsigned v = 0; v < cfg->nvcpus; v++)
		if (cfg->vcpu_fds[v] < 0)
			return sl_err(eb, -EINVAL, "kvm-ring: vcpu_fds[%u] = %d", v, cfg->vcpu_fds[v]);

	r = calloc(1, sizeof(*r));
	if (!r)
		return sl_err(eb, -ENOMEM, "kvm-ring: out of memory");
	r->sys = cfg->sys ? cfg->sys : sl_sys_default();
	r->vm_fd = cfg->vm_fd;
	r->nvcpus = cfg->nvcpus;
	r->entries = cfg->ring_entries;
	r->map_len = SL_DIV_ROUND_UP((size_t)cfg->ring_entries * sizeof(struct kvm_dirty_gfn),
				     (size_t)page_size) * (size_t)page_size;
	r->rings = calloc(cfg->nvcpus, sizeof(*r->rings));
	r->fetch = calloc(cfg->nvcpus, sizeof(*r->fetch));
	pthread_mutex_init(&r->lock, NULL);
	if (!r->rings || !r->fetch) {
		sl_kvm_ring_free(&r);
		return sl_err(eb, -ENOMEM, "kvm-ring: out of memory");
	}
	for (unsigned v = 0; v < cfg->nvcpus; v++) {
		void *p = r->sys->mmap(r->sys->ctx, NULL, r->map_len, PROT_READ | PROT_WRITE,
				       MAP_SHARED, cfg->vcpu_fds[v],
				       (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * page_size);

		if (p == MAP_FAILED) {
			ret = -errno;
			sl_kvm_ring_free(&r);
			return sl_err(eb, ret, "kvm-ring: mmap of vCPU %u's ring (%u entries): %s%s", v,
				      cfg->ring_entries, strerror(-ret),
				      ret == -EINVAL ? " (was KVM_CAP_DIRTY_LOG_RING enabled with this size?)"
						     : "");
		}
		r->rings[v] = p;
	}
	*out = r;
	return 0;
}

SL_EXPORT void sl_kvm_ring_free(struct sl_kvm_ring **rp)
{
	struct sl_kvm_ring *r;

	if (!rp || !*rp)
		return;
	r = *rp;
	for (unsigned i = 0; i < r->nsrcs; i++)
		r->srcs[i]->ring = NULL; /* sources outliving the ring fail with -ENODEV */
	if (r->rings)
		for (unsigned v = 0; v < r->nvcpus; v++)
			if (r->rings[v])
				r->sys->munmap(r->sys->ctx, r->rings[v], r->map_len);
	pthread_mutex_destroy(&r->lock);
	free(r->rings);
	free(r->fetch);
	free(r->srcs);
	free(r);
	*rp = NULL;
}

/* ---- per-slot source -------------------------------------------------- */

static void drop_pending(struct kvm_ring_src *rs)
{
	for (uint64_t i = 0; i < rs->ntouched; i++)
		rs->pending[rs->touched[i]] = 0;
	rs->ntouched = 0;
}

static int rs_start(struct sl_dirty_source *src)
{
	struct kvm_ring_src *rs = to_rs(src);
	struct sl_kvm_ring *r = rs->ring;
	int ret;

	if (!r)
		return sl_err(&src->err, -ENODEV, "kvm-ring: the shared ring was freed");
	pthread_mutex_lock(&r->lock);
	/* Entries from before start are dropped: tracking begins now. */
	ret = harvest_all_locked(r);
	drop_pending(rs);
	rs->lost = false;
	rs->accepting = ret == 0;
	pthread_mutex_unlock(&r->lock);
	if (ret < 0)
		return sl_err(&src->err, ret, "%s", r->err.msg);
	return 0;
}

static int64_t rs_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	struct kvm_ring_src *rs = to_rs(src);
	struct sl_kvm_ring *r = rs->ring;
	uint64_t found = 0;
	int ret;

	if (!r)
		return sl_err(&src->err, -ENODEV, "kvm-ring: the shared ring was freed");
	pthread_mutex_lock(&r->lock);
	ret = harvest_all_locked(r);
	if (ret == 0 && rs->lost) {
		/* Entries were overwritten: any page may be dirty. */
		rs->lost = false;
		drop_pending(rs);
		sl_dirty_set_bits(bitmap, 0, src->npages);
		found = src->npages;
		sl_dirty_report_error(src, -EOVERFLOW, "dirty ring harvest (ring overran)");
	} else if (ret == 0) {
		for (uint64_t i = 0; i < rs->ntouched; i++) {
			uint64_t w = rs->touched[i];

			bitmap[w] |= rs->pending[w];
			found += (uint64_t)__builtin_popcountll(rs->pending[w]);
			rs->pending[w] = 0;
		}
		rs->ntouched = 0;
	}
	pthread_mutex_unlock(&r->lock);
	if (ret < 0)
		return sl_err(&src->err, ret, "%s", r->err.msg);
	return (int64_t)found;
}

static int rs_stop(struct sl_dirty_source *src)
{
	struct kvm_ring_src *rs = to_rs(src);

	if (!rs->ring)
		return 0;
	pthread_mutex_lock(&rs->ring->lock);
	rs->accepting = false;
	drop_pending(rs);
	pthread_mutex_unlock(&rs->ring->lock);
	return 0;
}

static void rs_destroy(struct sl_dirty_source *src)
{
	struct kvm_ring_src *rs = to_rs(src);
	struct sl_kvm_ring *r = rs->ring;

	if (r) {
		pthread_mutex_lock(&r->lock);
		for (unsigned i = 0; i < r->nsrcs; i++) {
			if (r->srcs[i] == rs) {
				r->srcs[i] = r->srcs[--r->nsrcs];
				break;
			}
		}
		pthread_mutex_unlock(&r->lock);
	}
	free(rs->pending);
	free(rs->touched);
	free(rs);
}

static const struct sl_dirty_ops kvm_ring_ops = {
	.name = "kvm-ring",
	.start = rs_start,
	.sync = rs_sync,
	.stop = rs_stop,
	.destroy = rs_destroy,
};

SL_EXPORT int sl_dirty_kvm_ring_new(const struct sl_dirty_kvm_ring_config *cfg,
				    struct sl_dirty_source **out, struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct kvm_ring_src *rs;
	struct sl_kvm_ring *r;
	uint64_t words;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "kvm-ring: out is NULL");
	*out = NULL;
	ret = sl_dirty_check_config(cfg, sizeof(*cfg), "kvm-ring", eb);
	if (ret < 0)
		return ret;
	if (!cfg->ring)
		return sl_err(eb, -EINVAL, "kvm-ring: ring is NULL (create it with sl_kvm_ring_new)");
	if (!cfg->npages || cfg->npages > (UINT64_C(1) << 40))
		return sl_err(eb, -EINVAL, "kvm-ring: npages %llu out of range (1 .. 2^40)",
			      (unsigned long long)cfg->npages);
	r = cfg->ring;
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		return sl_err(eb, -ENOMEM, "kvm-ring: out of memory");
	sl_dirty_source_init(&rs->base, &kvm_ring_ops, SL_DIRTY_KVM_RING, 0, cfg->npages);
	rs->slot = cfg->slot;
	words = sl_dirty_words(cfg->npages);
	rs->pending = calloc(words, sizeof(uint64_t));
	rs->touched = calloc(words, sizeof(uint64_t));
	if (!rs->pending || !rs->touched) {
		rs_destroy(&rs->base);
		return sl_err(eb, -ENOMEM, "kvm-ring: out of memory for %llu pages",
			      (unsigned long long)cfg->npages);
	}
	pthread_mutex_lock(&r->lock);
	ret = 0;
	if (find_src(r, cfg->slot)) {
		ret = sl_err(eb, -EEXIST, "kvm-ring: slot %u already has a source", cfg->slot);
	} else if (r->nsrcs == r->cap_srcs) {
		unsigned ncap = r->cap_srcs ? r->cap_srcs * 2 : 8;
		struct kvm_ring_src **n = realloc(r->srcs, ncap * sizeof(*n));

		if (!n) {
			ret = sl_err(eb, -ENOMEM, "kvm-ring: out of memory");
		} else {
			r->srcs = n;
			r->cap_srcs = ncap;
		}
	}
	if (ret == 0) {
		r->srcs[r->nsrcs++] = rs;
		rs->ring = r;
	}
	pthread_mutex_unlock(&r->lock);
	if (ret < 0) {
		rs_destroy(&rs->base);
		return ret;
	}
	*out = &rs->base;
	return 0;
}

SL_EXPORT uint64_t sl_kvm_ring_overflows(struct sl_kvm_ring *r)
{
	uint64_t n;

	pthread_mutex_lock(&r->lock);
	n = r->overflows;
	pthread_mutex_unlock(&r->lock);
	return n;
}

SL_EXPORT uint64_t sl_kvm_ring_unclaimed(struct sl_kvm_ring *r)
{
	uint64_t n;

	pthread_mutex_lock(&r->lock);
	n = r->unclaimed;
	pthread_mutex_unlock(&r->lock);
	return n;
}
