/* SPDX-License-Identifier: MIT */
/*
 * sl_vmm.h — a minimal VMM on real KVM that runs the sluice guest
 * (bench/guest/), for migrating a live VM end to end.
 *
 * What it does: one anonymous mapping of guest RAM at guest-physical 0, cut
 * into one or more memslots with dirty logging (bitmap, bitmap with manual
 * protect, or dirty ring); N vCPUs that start directly in 32-bit protected
 * mode (flat segments, no paging, no interrupt controller) at the guest's
 * entry; one thread per vCPU running KVM_RUN; a dirty-rate limit applied on
 * the guest's progress exits; stop/resume (kick out of KVM_RUN with a signal
 * and immediate_exit, wait until every vCPU is parked); save/restore of the
 * vCPU state to an opaque blob; and a destination ("incoming") mode that
 * creates the same VM without loading the guest, takes memory and state, and
 * continues the guest where the source stopped it.
 *
 * A VMM's migration glue with sluice looks like:
 *   source:       sl_vmm_new(cfg) → sl_vmm_start → (sluice harvests using
 *                 sl_vmm_get_info: vm_fd, slots, vCPU fds, ring) → sl_vmm_stop
 *                 → sl_vmm_save_state → send memory and blob
 *   destination:  sl_vmm_new(cfg with incoming = true) → receive memory into
 *                 sl_vmm_mem → sl_vmm_restore_state(blob) → sl_vmm_start
 *                 → sl_vmm_guest_passes keeps growing; sl_vmm_verify checks
 *                 the page records.
 *
 * Kernel calls go through the sl_sys seam (cfg->sys). Errors: negative errno
 * plus text in the caller's sl_errbuf (sl_vmm_new) or sl_vmm_last_error().
 *
 * Threading: sl_vmm_new/free/start/stop/resume/save_state/restore_state are
 * control calls: call them from one thread at a time (the VMM's or the
 * engine's control thread). sl_vmm_guest_passes, sl_vmm_get_stats and
 * sl_vmm_get_info may be called from any thread at any time. The vCPU
 * threads are internal.
 *
 * Signals: the VMM kicks vCPU threads with cfg->kick_signal (default
 * SIGUSR1) and installs an empty handler for it if the signal has none.
 */
#ifndef SL_VMM_H
#define SL_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "guest/sl_guest_abi.h"
#include "sl_common.h"
#include "sl_sys.h"

struct sl_vmm;
struct sl_kvm_ring;

enum sl_vmm_dirty_mode {
	SL_VMM_DIRTY_NONE = 0,      /* no dirty logging (e.g. a destination) */
	SL_VMM_DIRTY_BITMAP,        /* KVM_MEM_LOG_DIRTY_PAGES; GET_DIRTY_LOG re-protects */
	SL_VMM_DIRTY_BITMAP_MANUAL, /* + KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: CLEAR re-protects */
	SL_VMM_DIRTY_RING,          /* KVM_CAP_DIRTY_LOG_RING(_ACQ_REL), per-vCPU rings */
};

/* What the guest does (the parameter block the VMM writes for it). */
struct sl_vmm_workload {
	uint64_t wss_start;     /* guest-physical start of the working set, bytes,
				 * 4 KiB aligned, >= 2 MiB; 0 = 2 MiB */
	uint64_t wss_bytes;     /* working-set size; 0 = from wss_start to the end of RAM;
				 * it must end by 0xfee00000 (the xAPIC page, which KVM
				 * turns into unlogged MMIO exits) */
	enum sl_guest_pattern pattern;
	uint32_t stride_pages;  /* SL_GUEST_STRIDE: distance between writes (0 = 16) */
	uint32_t report_pages;  /* progress exit every this many page writes (0 = 256; with
				 * a dirty ring 0 means min(256, (ring_entries-128)/8),
				 * since the vCPU loop drains the ring on these exits) */
	uint32_t seed;          /* SL_GUEST_RANDOM permutation seed */
	uint32_t max_passes;    /* the guest halts after this many passes (0 = never) */
};

struct sl_vmm_config {
	size_t size;                  /* sizeof(struct sl_vmm_config) */
	const struct sl_sys *sys;     /* NULL = the real kernel */
	uint64_t mem_bytes;           /* guest RAM, multiple of 2 MiB, 4 MiB .. 1 TiB (the
				       * 32-bit guest's working set must end by 0xfee00000;
				       * memory is mapped MAP_NORESERVE, touched lazily) */
	uint64_t slot_bytes;          /* memslot size: RAM is cut into slots of this size
				       * (multiple of 2 MiB); 0 = one slot */
	unsigned nvcpus;              /* 1 .. SL_GUEST_MAX_VCPUS */
	enum sl_vmm_dirty_mode dirty_mode;
	uint32_t ring_entries;        /* SL_VMM_DIRTY_RING: entries per vCPU, power of two
				       * in 64..65536 (0 = 4096) */
	bool initially_set;           /* BITMAP_MANUAL: also KVM_DIRTY_LOG_INITIALLY_SET */
	bool incoming;                /* destination: don't load the guest; restore first */
	const void *guest_elf;        /* guest image bytes; NULL = guest_path or embedded */
	size_t guest_elf_len;
	const char *guest_path;       /* guest image file; NULL = the embedded guest.elf */
	struct sl_vmm_workload work;  /* ignored when incoming */
	uint64_t dirty_rate_limit;    /* page writes per second, all vCPUs (0 = unlimited) */
	int kick_signal;              /* 0 = SIGUSR1 */
	sl_log_fn log;                /* optional */
	void *log_ctx;
};

struct sl_vmm_slot {
	uint32_t id;        /* KVM memslot id (address space 0) */
	uint64_t gpa;       /* guest-physical start */
	uint64_t bytes;
	uint64_t npages;    /* 4 KiB pages */
	void *host;         /* host address of the slot's first byte */
};

/* Everything a dirty source needs. Pointers stay valid until sl_vmm_free. */
struct sl_vmm_info {
	int vm_fd;
	unsigned nvcpus;
	const int *vcpu_fds;
	unsigned nslots;
	const struct sl_vmm_slot *slots;
	enum sl_vmm_dirty_mode dirty_mode;
	uint32_t ring_entries;          /* 0 unless SL_VMM_DIRTY_RING */
	bool ring_acq_rel;              /* ring enabled with KVM_CAP_DIRTY_LOG_RING_ACQ_REL */
	bool manual_protect;            /* MANUAL_PROTECT2 enabled */
	bool initially_set;
	struct sl_kvm_ring *ring;       /* the VM's rings (SL_VMM_DIRTY_RING), owned by the VMM */
	long page_size;                 /* host page size */
};

struct sl_vmm_stats {
	uint64_t exits;             /* KVM_RUN returns, all vCPUs */
	uint64_t progress_pages;    /* page writes the guest reported since start */
	uint64_t pass_exits;        /* pass-completion reports */
	uint64_t rate_sleep_ns;     /* time vCPUs slept to hold the rate limit */
	uint64_t ring_full_exits;   /* KVM_EXIT_DIRTY_RING_FULL handled */
	uint64_t ring_drained;      /* entries drained by vCPU threads */
	uint64_t kicks;             /* signals sent by stop */
	unsigned halted_vcpus;      /* vCPUs whose guest halted (max_passes or error) */
	uint32_t guest_error;       /* SL_GUEST_ERR_* the guest reported, 0 = none */
};

/* Creates the VM, its memory and vCPUs; loads the guest unless incoming.
 * vCPUs do not run until sl_vmm_start. Returns 0, -EINVAL (bad config),
 * -ENOENT (guest image missing), -ENOEXEC (not a valid guest ELF),
 * -ENODEV (/dev/kvm missing), -EOPNOTSUPP (dirty mode unsupported), or the
 * errno of the failing KVM call; eb (may be NULL) says which. */
int sl_vmm_new(const struct sl_vmm_config *cfg, struct sl_vmm **out, struct sl_errbuf *eb);
/* Stops and joins the vCPU threads, closes everything. NULL-safe; NULLs *vmm. */
void sl_vmm_free(struct sl_vmm **vmm);

/* Starts the vCPU threads. Incoming VMs need sl_vmm_restore_state first
 * (-EINVAL otherwise). -EALREADY if already started. */
int sl_vmm_start(struct sl_vmm *vmm);
/* Kicks every vCPU out of KVM_RUN, completes pending I/O, and returns once
 * all are parked (or halted). Idempotent. After it returns no guest
 * instruction runs until sl_vmm_resume, so memory and state are stable. */
int sl_vmm_stop(struct sl_vmm *vmm);
/* Unparks the vCPUs. Idempotent; -EINVAL before sl_vmm_start. */
int sl_vmm_resume(struct sl_vmm *vmm);
bool sl_vmm_is_stopped(const struct sl_vmm *vmm);

/* Saves every vCPU's state (regs, sregs, xsave, xcrs, events, MSRs) into a
 * malloc'd blob the caller frees with free(). vCPUs must be stopped (or not
 * started): -EBUSY otherwise. */
int sl_vmm_save_state(struct sl_vmm *vmm, void **blob, size_t *len);
/* Loads a blob from sl_vmm_save_state into this VM's vCPUs. Same vCPU
 * count required. -EBUSY while running, -EINVAL for a malformed blob. */
int sl_vmm_restore_state(struct sl_vmm *vmm, const void *blob, size_t len);

/* Guest RAM (guest-physical 0 .. len). Writable; the destination receives
 * into it. */
int sl_vmm_mem(struct sl_vmm *vmm, void **ptr, uint64_t *len);
int sl_vmm_get_info(const struct sl_vmm *vmm, struct sl_vmm_info *out);
void sl_vmm_get_stats(const struct sl_vmm *vmm, struct sl_vmm_stats *out);
/* The VM's dirty rings (SL_VMM_DIRTY_RING), else NULL. */
struct sl_kvm_ring *sl_vmm_dirty_ring(const struct sl_vmm *vmm);

/* Passes the guest has completed: the minimum over vCPUs of the count in
 * the guest's own status block (it lives in guest memory, so it carries
 * over a migration and keeps growing on the destination). */
uint64_t sl_vmm_guest_passes(const struct sl_vmm *vmm);

/* Changes the dirty-rate limit (page writes/s, 0 = unlimited) at any time. */
void sl_vmm_set_rate_limit(struct sl_vmm *vmm, uint64_t pages_per_sec);

const char *sl_vmm_last_error(const struct sl_vmm *vmm);

/* ---- guest image and memory-image checks --------------------------------- */

/* The guest.elf embedded at build time: 0 or -ENOENT if built without it. */
int sl_vmm_guest_image(const void **elf, size_t *len);

/* Checks an ELF is a loadable guest: 32-bit x86 ELF, a multiboot v1 header
 * (magic, flags, checksum) 4-byte aligned in the first 8 KiB of the file,
 * PT_LOAD segments in [1 MiB, 2 MiB). 0, or -ENOEXEC with the reason. */
int sl_vmm_guest_check(const void *elf, size_t len, uint32_t *entry, struct sl_errbuf *eb);

struct sl_vmm_verify {
	uint32_t nshares;      /* vCPU (or thread) shares checked */
	uint32_t pass_min;     /* highest pass seen, minimum over shares */
	uint32_t pass_max;     /* highest pass seen, maximum over shares */
	uint64_t pages;        /* working-set pages checked */
	uint64_t bad_pages;    /* pages that break the rules below */
	uint64_t first_bad;    /* page number of the first bad page, UINT64_MAX = none */
	char why[160];         /* the first problem, in words */
};

/* Checks the page records of a working set (format in sl_guest_abi.h):
 * every page's tag is its page number, both pass words agree (except on
 * the one page per share the writer was stopped in, which must be the last
 * of the prefix below, with start word = end word + 1), and in each
 * share the pages holding pass P (the share's highest) are exactly a prefix
 * of pass P's visit order while the rest hold P-1. `mem` holds pages
 * [0, mem_pages) (page n at mem + n*4096); p describes the working set;
 * status (may be NULL) has p->nvcpus entries and is checked against the
 * pages. Returns 0 when consistent, -EBADMSG when not (out says why), or
 * -EINVAL for arguments that don't fit. */
int sl_vmm_verify_pages(const void *mem, uint64_t mem_pages, const struct sl_guest_params *p,
			const struct sl_guest_status *status, struct sl_vmm_verify *out);
/* sl_vmm_verify_pages over a guest memory image (parameters and status read
 * from the image at SL_GUEST_PARAM_GPA). */
int sl_vmm_verify_image(const void *mem, uint64_t len, struct sl_vmm_verify *out);
/* The same over this VM's memory; call while stopped. */
int sl_vmm_verify(struct sl_vmm *vmm, struct sl_vmm_verify *out);

/* ---- benchmark helper ---------------------------------------------------- */

/* Dirties pages of the VM's RAM from inside the guest, also beyond the
 * 4 GiB a 32-bit guest can reach: runs a small 64-bit loop on vCPU 0
 * (identity map with 2 MiB pages; tables in guest pages 1..3 and from page
 * 16, one page per GiB of RAM; code in page 4) that writes one 8-byte word
 * to every `stride`-th page of [first_page, first_page + npages),
 * synchronously in the calling thread. For VMs created with cfg.incoming =
 * true (no guest) whose vCPU threads were never started; it overwrites
 * vCPU 0's state and the table pages, so the range must start above them
 * (sl_vmm_touch_first_page). Returns pages written or -errno (-EBUSY
 * started or not incoming, -EINVAL range). */
int64_t sl_vmm_touch(struct sl_vmm *vmm, uint64_t first_page, uint64_t npages, uint64_t stride);
/* The first page sl_vmm_touch may write in this VM. */
uint64_t sl_vmm_touch_first_page(const struct sl_vmm *vmm);

#endif /* SL_VMM_H */
