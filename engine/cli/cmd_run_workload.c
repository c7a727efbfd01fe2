/* SPDX-License-Identifier: MIT */
/*
 * cmd_run_workload.c — the workloads `sluice run/send/receive` migrate, seen
 * from the engine the way a VMM would register them:
 *
 *   kvm        the mini-VMM (bench/sl_vmm.h) running the guest on real KVM;
 *              one RAM region per memslot, KVM dirty log (manual clear by
 *              default, or plain bitmap, or the dirty ring); on the
 *              destination an incoming VM that restores the vCPUs and runs on.
 *   proc       the process dirtier (bench/sl_procload.h): threads of this
 *              process rewriting memory, tracked with userfaultfd-WP.
 *   synthetic  SIMULATED dirtying: a sparse mapping whose working set holds
 *              deterministic contents and a synthetic dirty source that
 *              reports pages as a guest with the given pattern and rate
 *              would. Memory larger than RAM works (untouched pages read as
 *              zero and travel as ZERO packets). Nothing writes the pages,
 *              so "dirty" pages are resent unchanged.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cmd_run.h"
#include "sl_dirty.h"
#include "sl_procload.h"
#include "sl_vfio.h"
#include "sl_vmm.h"

#define WL_MAX_REGIONS 64
#define PAGE 4096ull

struct wl_region {
	void *host;
	uint64_t gpa, len;
	struct sl_dirty_source *src;
};

struct wl_source {
	struct run_opts o;
	struct sl_vmm *vmm;
	struct sl_procload *proc;
	/* synthetic */
	void *mem;
	uint64_t mem_len;
	atomic_bool paused;
	uint64_t t0, pause_start, paused_ns;
	struct wl_region reg[WL_MAX_REGIONS];
	unsigned nreg;
	struct sl_devset *devs;
	/* throttling: the write rate the workload had before the first throttle */
	uint64_t base_t0, base_p0;
	uint64_t base_rate; /* pages/s, 0 = not measured yet */
};

/* The --device specs as a device set (same order on both ends). */
static int make_devices(const struct run_opts *o, struct sl_devset **out, struct sl_errbuf *eb)
{
	struct sl_devset *ds = NULL;
	int ret;

	*out = NULL;
	if (!o->ndevices)
		return 0;
	ret = sl_devset_new(NULL, &ds);
	if (ret < 0)
		return sl_err(eb, ret, "device set: %s", strerror(-ret));
	for (unsigned i = 0; i < o->ndevices; i++) {
		struct sl_vfio_backend *be = NULL;
		char name[16];

		snprintf(name, sizeof(name), "dev%u", i);
		ret = sl_vfio_spec_new(o->devices[i], name, &be, eb);
		if (ret >= 0)
			ret = sl_devset_add(ds, be);
		if (ret < 0) {
			if (!eb->msg[0] || ret == -ENOMEM)
				sl_err(eb, ret, "--device %s: %s", o->devices[i], sl_devset_last_error(ds));
			sl_devset_free(&ds);
			return ret;
		}
	}
	*out = ds;
	return 0;
}

/* A simulated device's state hash; 0 for real devices (no way to read it). */
static uint64_t device_hash(struct sl_devset *ds, unsigned i)
{
	struct sl_vfio_backend *be = sl_vfio_dev_backend(sl_devset_dev(ds, i));

	if (!be)
		return 0;
	if (!strcmp(be->ops->kind, "simulated"))
		return sl_devsim_state_hash(be);
	if (!strcmp(be->ops->kind, "legacy-simulated"))
		return sl_vfio_legacy_state_hash(be);
	return 0;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull), .tv_nsec = (long)(ns % 1000000000ull) };

	nanosleep(&ts, NULL);
}

static void *map_mem(uint64_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Deterministic page contents of the synthetic working set. */
static uint64_t synth_word(uint64_t seed, uint64_t page, unsigned k)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (page + 1) * 0xBF58476D1CE4E5B9ull ^ k;

	x ^= x >> 31;
	x *= 0x94D049BB133111EBull;
	return x ^ (x >> 29);
}

static uint64_t synth_clock(void *ctx)
{
	struct wl_source *w = ctx;
	uint64_t now = sl_now_ns();

	/* Simulated time stops while the "VM" is stopped: no writes then. */
	if (atomic_load(&w->paused))
		now = w->pause_start;
	return now - w->t0 - w->paused_ns;
}

static enum sl_guest_pattern guest_pattern(const char *p)
{
	return !strcmp(p, "random") ? SL_GUEST_RANDOM : !strcmp(p, "stride") ? SL_GUEST_STRIDE
		: SL_GUEST_SEQUENTIAL;
}

static enum sl_vmm_dirty_mode kvm_dirty_mode(const char *m)
{
	return !strcmp(m, "ring") ? SL_VMM_DIRTY_RING : !strcmp(m, "bitmap") ? SL_VMM_DIRTY_BITMAP
		: SL_VMM_DIRTY_BITMAP_MANUAL;
}

static int kvm_source_new(struct wl_source *w, struct sl_errbuf *eb)
{
	struct sl_vmm_config vc;
	struct sl_vmm_info info;
	uint64_t deadline;
	int ret;

	memset(&vc, 0, sizeof(vc));
	vc.size = sizeof(vc);
	vc.mem_bytes = w->o.mem;
	vc.nvcpus = w->o.vcpus;
	vc.dirty_mode = kvm_dirty_mode(w->o.dirty_log);
	vc.initially_set = vc.dirty_mode == SL_VMM_DIRTY_BITMAP_MANUAL;
	vc.work.wss_start = 2ull << 20;
	vc.work.wss_bytes = w->o.wss;
	vc.work.pattern = guest_pattern(w->o.pattern);
	vc.work.seed = (uint32_t)w->o.seed;
	vc.dirty_rate_limit = w->o.dirty_rate / PAGE;
	ret = sl_vmm_new(&vc, &w->vmm, eb);
	if (ret < 0)
		return ret;
	ret = sl_vmm_get_info(w->vmm, &info);
	if (ret < 0)
		return sl_err(eb, ret, "kvm: %s", sl_vmm_last_error(w->vmm));
	if (info.nslots > WL_MAX_REGIONS)
		return sl_err(eb, -EINVAL, "kvm: %u memslots, at most %u supported here", info.nslots,
			      WL_MAX_REGIONS);
	for (unsigned i = 0; i < info.nslots; i++) {
		const struct sl_vmm_slot *sl = &info.slots[i];
		struct wl_region *r = &w->reg[i];

		r->host = sl->host;
		r->gpa = sl->gpa;
		r->len = sl->bytes;
		if (info.dirty_mode == SL_VMM_DIRTY_RING) {
			struct sl_dirty_kvm_ring_config rc = {
				.size = sizeof(rc), .ring = info.ring, .slot = sl->id, .npages = sl->npages,
			};

			ret = sl_dirty_kvm_ring_new(&rc, &r->src, eb);
		} else {
			struct sl_dirty_kvm_bitmap_config bc = {
				.size = sizeof(bc), .vm_fd = info.vm_fd, .slot = sl->id,
				.npages = sl->npages, .manual_protect = info.manual_protect,
			};

			ret = sl_dirty_kvm_bitmap_new(&bc, &r->src, eb);
		}
		if (ret < 0)
			return ret;
		w->nreg++;
	}
	ret = sl_vmm_start(w->vmm);
	if (ret < 0)
		return sl_err(eb, ret, "kvm: starting the guest: %s", sl_vmm_last_error(w->vmm));
	/* Warm-up: at least one full pass over the working set (so it holds
	 * data), and at least --warmup. */
	deadline = sl_now_ns() + SL_MAX(w->o.warmup_ns, 5000000000ull);
	while (sl_vmm_guest_passes(w->vmm) < 1 && sl_now_ns() < deadline)
		sleep_ns(2000000);
	if (sl_vmm_guest_passes(w->vmm) < 1 && w->o.wss) {
		struct sl_vmm_stats st;

		sl_vmm_get_stats(w->vmm, &st);
		if (st.guest_error)
			return sl_err(eb, -EIO, "kvm: the guest reported error %u", st.guest_error);
	}
	sleep_ns(w->o.warmup_ns);
	return 0;
}

static enum sl_synth_pattern synth_pattern(const char *p)
{
	return !strcmp(p, "uniform") ? SL_SYNTH_UNIFORM : !strcmp(p, "hotcold") ? SL_SYNTH_HOTCOLD
		: !strcmp(p, "zipf") ? SL_SYNTH_ZIPF : SL_SYNTH_SEQUENTIAL;
}

static int synthetic_source_new(struct wl_source *w, struct sl_errbuf *eb)
{
	struct sl_dirty_synthetic_config sc;
	uint64_t npages = w->o.mem / PAGE, wss_pages = w->o.wss / PAGE;
	int ret;

	w->mem = map_mem(w->o.mem);
	if (!w->mem)
		return sl_err(eb, -errno, "synthetic: cannot map %llu bytes: %s",
			      (unsigned long long)w->o.mem, strerror(errno));
	w->mem_len = w->o.mem;
	for (uint64_t p = 0; p < wss_pages; p++) {
		uint64_t *pg = (uint64_t *)((char *)w->mem + p * PAGE);

		pg[0] = synth_word(w->o.seed, p, 0);
		pg[PAGE / 8 - 1] = synth_word(w->o.seed, p, 1);
	}
	memset(&sc, 0, sizeof(sc));
	sc.size = sizeof(sc);
	sc.npages = npages;
	sc.wss_first = 0;
	sc.wss_pages = wss_pages;
	sc.pages_per_sec = (double)(w->o.dirty_rate ? w->o.dirty_rate : (256ull << 20)) / (double)PAGE;
	sc.pattern = synth_pattern(w->o.pattern);
	sc.hot_frac = 0.1;
	sc.hot_share = 0.9;
	sc.zipf_s = 1.0;
	sc.seed = w->o.seed;
	sc.clock_ns = synth_clock;
	sc.clock_ctx = w;
	w->t0 = sl_now_ns();
	ret = sl_dirty_synthetic_new(&sc, &w->reg[0].src, eb);
	if (ret < 0)
		return ret;
	w->reg[0].host = w->mem;
	w->reg[0].len = w->o.mem;
	w->nreg = 1;
	return 0;
}

static int proc_source_new(struct wl_source *w, struct sl_errbuf *eb)
{
	struct sl_procload_config pc;
	struct sl_dirty_uffd_config uc;
	void *mem;
	uint64_t len;
	int ret;

	ret = sl_dirty_uffd_probe(eb);
	if (ret < 0)
		return ret;
	memset(&pc, 0, sizeof(pc));
	pc.size = sizeof(pc);
	pc.bytes = w->o.mem;
	pc.nthreads = w->o.vcpus;
	pc.wss_start = 0;
	pc.wss_bytes = w->o.wss;
	pc.pattern = guest_pattern(w->o.pattern);
	pc.seed = (uint32_t)w->o.seed;
	pc.rate_limit = w->o.dirty_rate / PAGE;
	ret = sl_procload_new(&pc, &w->proc, eb);
	if (ret < 0)
		return ret;
	ret = sl_procload_mem(w->proc, &mem, &len);
	if (ret < 0)
		return sl_err(eb, ret, "proc: %s", sl_procload_last_error(w->proc));
	memset(&uc, 0, sizeof(uc));
	uc.size = sizeof(uc);
	uc.addr = mem;
	uc.npages = len / PAGE;
	ret = sl_dirty_uffd_new(&uc, &w->reg[0].src, eb);
	if (ret < 0)
		return ret;
	w->reg[0].host = mem;
	w->reg[0].len = len;
	w->nreg = 1;
	ret = sl_procload_start(w->proc);
	if (ret < 0)
		return sl_err(eb, ret, "proc: starting the dirtier: %s", sl_procload_last_error(w->proc));
	sleep_ns(w->o.warmup_ns);
	return 0;
}

int wl_source_new(const struct run_opts *o, struct wl_source **out, struct sl_errbuf *eb)
{
	struct wl_source *w = calloc(1, sizeof(*w));
	int ret;

	*out = NULL;
	if (!w)
		return sl_err(eb, -ENOMEM, "out of memory");
	w->o = *o;
	atomic_init(&w->paused, false);
	switch (o->workload) {
	case RUN_WL_KVM: ret = kvm_source_new(w, eb); break;
	case RUN_WL_PROC: ret = proc_source_new(w, eb); break;
	default: ret = synthetic_source_new(w, eb); break;
	}
	if (ret >= 0)
		ret = make_devices(o, &w->devs, eb);
	if (ret < 0) {
		wl_source_free(&w);
		return ret;
	}
	w->base_t0 = sl_now_ns();
	w->base_p0 = wl_source_progress(w);
	*out = w;
	return 0;
}

void wl_source_free(struct wl_source **wp)
{
	struct wl_source *w = *wp;

	if (!w)
		return;
	/* Stop the writers before their dirty sources go away. */
	if (w->proc)
		sl_procload_stop(w->proc);
	if (w->vmm)
		sl_vmm_stop(w->vmm);
	for (unsigned i = 0; i < w->nreg; i++)
		sl_dirty_free(&w->reg[i].src);
	sl_procload_free(&w->proc);
	sl_vmm_free(&w->vmm);
	sl_devset_free(&w->devs);
	if (w->mem)
		munmap(w->mem, w->mem_len);
	free(w);
	*wp = NULL;
}

int wl_source_register(struct wl_source *w, struct sl_session *s, struct sl_errbuf *eb)
{
	for (unsigned i = 0; i < w->nreg; i++) {
		char name[32];
		struct sl_ram_config rc = {
			.size = sizeof(rc), .host = w->reg[i].host, .gpa = w->reg[i].gpa,
			.length = w->reg[i].len, .dirty = w->reg[i].src, .name = name,
		};
		int ret;

		snprintf(name, sizeof(name), "ram%u", i);
		ret = sl_session_add_ram(s, &rc);
		if (ret < 0)
			return sl_err(eb, ret, "%s", sl_session_last_error(s));
	}
	if (w->devs) {
		int ret = sl_session_add_devices(s, w->devs);

		if (ret < 0)
			return sl_err(eb, ret, "%s", sl_session_last_error(s));
	}
	return 0;
}

unsigned wl_source_device_hashes(struct wl_source *w, uint64_t *out, unsigned max)
{
	unsigned n = w->devs ? SL_MIN(sl_devset_count(w->devs), max) : 0;

	for (unsigned i = 0; i < n; i++)
		out[i] = device_hash(w->devs, i);
	return n;
}

unsigned wl_source_device_bytes(struct wl_source *w, uint64_t *precopy, uint64_t *stopcopy,
				unsigned max)
{
	unsigned n = w->devs ? SL_MIN(sl_devset_count(w->devs), max) : 0;

	for (unsigned i = 0; i < n; i++) {
		struct sl_devset_dev_stats st = { 0 };

		sl_devset_stats(w->devs, i, &st);
		precopy[i] = st.precopy_bytes;
		stopcopy[i] = st.stopcopy_bytes;
	}
	return n;
}

/* ---- VM operations ------------------------------------------------------- */

static int src_stop(void *ctx)
{
	struct wl_source *w = ctx;

	if (w->vmm)
		return sl_vmm_stop(w->vmm);
	if (w->proc)
		return sl_procload_stop(w->proc);
	if (!atomic_load(&w->paused)) {
		w->pause_start = sl_now_ns();
		atomic_store(&w->paused, true);
	}
	return 0;
}

static int src_resume(void *ctx)
{
	struct wl_source *w = ctx;

	if (w->vmm)
		return sl_vmm_resume(w->vmm);
	if (w->proc)
		return sl_procload_resume(w->proc);
	if (atomic_load(&w->paused)) {
		w->paused_ns += sl_now_ns() - w->pause_start;
		atomic_store(&w->paused, false);
	}
	return 0;
}

/* The state blob of the non-KVM workloads: what the destination checks. */
struct wl_blob {
	uint32_t magic;
	uint32_t workload;
	uint64_t mem;
	uint64_t progress;
	/* proc: the page-record layout, so the destination can check them */
	struct sl_guest_params params;
	struct sl_guest_status status[SL_GUEST_MAX_VCPUS];
};
#define WL_BLOB_MAGIC 0x534c574bu /* "SLWK" */

static ssize_t src_save_state(void *ctx, void *buf, size_t cap)
{
	struct wl_source *w = ctx;

	if (w->vmm) {
		void *blob;
		size_t len;
		int ret = sl_vmm_save_state(w->vmm, &blob, &len);

		if (ret < 0)
			return ret;
		if (len > cap) {
			free(blob);
			return -ENOSPC;
		}
		memcpy(buf, blob, len);
		free(blob);
		return (ssize_t)len;
	} else {
		struct wl_blob b;

		memset(&b, 0, sizeof(b));
		b.magic = WL_BLOB_MAGIC;
		b.workload = (uint32_t)w->o.workload;
		b.mem = w->o.mem;
		b.progress = wl_source_progress(w);
		if (w->proc)
			sl_procload_params(w->proc, &b.params, b.status);
		if (cap < sizeof(b))
			return -ENOSPC;
		memcpy(buf, &b, sizeof(b));
		return (ssize_t)sizeof(b);
	}
}

/* The policy's throttle (stall action "throttle"): take pct % of the
 * workload's write rate away, like QEMU's CPU throttling takes vCPU time. */
static void src_throttle(void *ctx, unsigned pct)
{
	struct wl_source *w = ctx;
	uint64_t rate;

	if (!w->base_rate) {
		uint64_t dt = sl_now_ns() - w->base_t0, dp = wl_source_progress(w) - w->base_p0;

		w->base_rate = w->o.dirty_rate ? w->o.dirty_rate / PAGE
			: dt ? (uint64_t)((double)dp * 1e9 / (double)dt) : 0;
		if (!w->base_rate)
			w->base_rate = 1;
	}
	rate = pct >= 100 ? 1 : SL_MAX(w->base_rate * (100 - pct) / 100, (uint64_t)1);
	if (!pct)
		rate = w->o.dirty_rate / PAGE; /* back to the configured rate */
	if (w->vmm)
		sl_vmm_set_rate_limit(w->vmm, rate);
	else if (w->proc)
		sl_procload_set_rate_limit(w->proc, rate);
}

void wl_source_vm_ops(struct wl_source *w, struct sl_vm_ops *ops, void **vmm)
{
	memset(ops, 0, sizeof(*ops));
	ops->size = sizeof(*ops);
	ops->stop = src_stop;
	ops->resume = src_resume;
	ops->save_state = src_save_state;
	ops->throttle = w->vmm || w->proc ? src_throttle : NULL;
	*vmm = w;
}

uint64_t wl_source_progress(struct wl_source *w)
{
	if (w->vmm) {
		struct sl_vmm_stats st;

		sl_vmm_get_stats(w->vmm, &st);
		return st.progress_pages;
	}
	if (w->proc) {
		struct sl_procload_stats st;

		sl_procload_get_stats(w->proc, &st);
		return st.pages_written;
	}
	return synth_clock(w) / 1000000ull;
}

bool wl_source_running(struct wl_source *w, uint64_t wait_ns)
{
	uint64_t p0 = wl_source_progress(w), end = sl_now_ns() + wait_ns;

	while (sl_now_ns() < end) {
		if (wl_source_progress(w) > p0)
			return true;
		sleep_ns(2000000);
	}
	return wl_source_progress(w) > p0;
}

uint64_t wl_source_mem_bytes(const struct wl_source *w)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < w->nreg; i++)
		t += w->reg[i].len;
	return t;
}

/* ---- destination ----------------------------------------------------------- */

struct wl_dest {
	struct run_opts o;
	struct sl_vmm *vmm;
	void *mem;
	uint64_t mem_len;
	struct wl_region reg[WL_MAX_REGIONS];
	unsigned nreg;
	bool state_ok;
	struct sl_devset *devs;
	struct wl_blob blob;
	uint64_t progress_at_resume;
	bool resumed;
};

int wl_dest_new(const struct run_opts *o, struct wl_dest **out, struct sl_errbuf *eb)
{
	struct wl_dest *w = calloc(1, sizeof(*w));
	int ret;

	*out = NULL;
	if (!w)
		return sl_err(eb, -ENOMEM, "out of memory");
	w->o = *o;
	if (o->workload == RUN_WL_KVM) {
		struct sl_vmm_config vc;
		struct sl_vmm_info info;

		memset(&vc, 0, sizeof(vc));
		vc.size = sizeof(vc);
		vc.mem_bytes = o->mem;
		vc.nvcpus = o->vcpus;
		vc.dirty_mode = SL_VMM_DIRTY_NONE;
		vc.incoming = true;
		ret = sl_vmm_new(&vc, &w->vmm, eb);
		if (ret < 0)
			goto fail;
		ret = sl_vmm_get_info(w->vmm, &info);
		if (ret < 0) {
			sl_err(eb, ret, "kvm: %s", sl_vmm_last_error(w->vmm));
			goto fail;
		}
		for (unsigned i = 0; i < info.nslots && i < WL_MAX_REGIONS; i++) {
			w->reg[i].host = info.slots[i].host;
			w->reg[i].gpa = info.slots[i].gpa;
			w->reg[i].len = info.slots[i].bytes;
			w->nreg++;
		}
	} else {
		w->mem = map_mem(o->mem);
		if (!w->mem) {
			ret = sl_err(eb, -errno, "cannot map %llu bytes: %s", (unsigned long long)o->mem,
				     strerror(errno));
			goto fail;
		}
		w->mem_len = o->mem;
		w->reg[0].host = w->mem;
		w->reg[0].len = o->mem;
		w->nreg = 1;
	}
	ret = make_devices(o, &w->devs, eb);
	if (ret < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	wl_dest_free(&w);
	return ret;
}

void wl_dest_free(struct wl_dest **wp)
{
	struct wl_dest *w = *wp;

	if (!w)
		return;
	sl_vmm_free(&w->vmm);
	sl_devset_free(&w->devs);
	if (w->mem)
		munmap(w->mem, w->mem_len);
	free(w);
	*wp = NULL;
}

static int dst_load_state(void *ctx, uint32_t kind, const void *buf, size_t len)
{
	struct wl_dest *w = ctx;

	(void)kind;
	if (w->o.fault == RUN_FAULT_DEST_REFUSE_STATE)
		return -EBADMSG;
	if (w->vmm) {
		int ret = sl_vmm_restore_state(w->vmm, buf, len);

		w->state_ok = ret == 0;
		return ret;
	} else {
		struct wl_blob b;

		if (len != sizeof(b))
			return -EBADMSG;
		memcpy(&b, buf, sizeof(b));
		if (b.magic != WL_BLOB_MAGIC || b.workload != (uint32_t)w->o.workload || b.mem != w->o.mem)
			return -EBADMSG;
		w->blob = b;
		w->state_ok = true;
		return 0;
	}
}

static int dst_resume(void *ctx)
{
	struct wl_dest *w = ctx;

	if (w->vmm) {
		int ret;

		if (!w->state_ok)
			return -EINVAL; /* no CPU state arrived: cannot run */
		w->progress_at_resume = sl_vmm_guest_passes(w->vmm);
		ret = sl_vmm_start(w->vmm);
		if (ret < 0)
			return ret;
	}
	w->resumed = true;
	return 0;
}

int wl_dest_register(struct wl_dest *w, struct sl_dest *d, struct sl_errbuf *eb)
{
	struct sl_dest_ops ops = { .size = sizeof(ops), .load_state = dst_load_state, .resume = dst_resume };
	int ret;

	for (unsigned i = 0; i < w->nreg; i++) {
		struct sl_ram_config rc = {
			.size = sizeof(rc), .host = w->reg[i].host, .gpa = w->reg[i].gpa, .length = w->reg[i].len,
		};

		ret = sl_dest_add_ram(d, &rc);
		if (ret < 0)
			return sl_err(eb, ret, "%s", sl_dest_last_error(d));
	}
	if (w->devs) {
		ret = sl_dest_add_devices(d, w->devs);
		if (ret < 0)
			return sl_err(eb, ret, "%s", sl_dest_last_error(d));
	}
	ret = sl_dest_set_ops(d, &ops, w);
	if (ret < 0)
		return sl_err(eb, ret, "%s", sl_dest_last_error(d));
	return 0;
}

void wl_dest_check(struct wl_dest *w, struct wl_dest_result *out)
{
	memset(out, 0, sizeof(*out));
	if (w->devs) {
		out->ndevices = SL_MIN(sl_devset_count(w->devs), (unsigned)RUN_MAX_DEVICES);
		for (unsigned i = 0; i < out->ndevices; i++)
			out->dev_hash[i] = device_hash(w->devs, i);
	}
	if (!w->vmm) {
		out->applicable = false;
		out->running = w->resumed;
		if (w->o.workload == RUN_WL_PROC && w->state_ok) {
			struct sl_vmm_verify v;
			int ret = sl_vmm_verify_pages(w->mem, w->mem_len / PAGE, &w->blob.params,
						      w->blob.status, &v);

			out->pages_checked = true;
			out->pages_ok = ret == 0;
			if (ret < 0)
				snprintf(out->why, sizeof(out->why), "page records: %s", v.why);
		}
		return;
	}
	out->applicable = true;
	out->progress_at_resume = w->progress_at_resume;
	{
		uint64_t end = sl_now_ns() + 15000000000ull;

		/* The guest's pass counter lives in guest memory: it must move on
		 * from where the source stopped it. */
		while (sl_vmm_guest_passes(w->vmm) <= w->progress_at_resume && sl_now_ns() < end)
			sleep_ns(2000000);
	}
	out->progress_after = sl_vmm_guest_passes(w->vmm);
	out->running = out->progress_after > out->progress_at_resume;
	if (!out->running)
		snprintf(out->why, sizeof(out->why),
			 "the guest's pass counter stayed at %llu for 15 s after the resume",
			 (unsigned long long)out->progress_at_resume);
	if (sl_vmm_stop(w->vmm) == 0) {
		struct sl_vmm_verify v;
		int ret = sl_vmm_verify(w->vmm, &v);

		out->pages_checked = true;
		out->pages_ok = ret == 0;
		if (ret < 0 && !out->why[0])
			snprintf(out->why, sizeof(out->why), "guest page records: %s", v.why);
	}
}
