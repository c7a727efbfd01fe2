/* SPDX-License-Identifier: MIT */
/*
 * vmm_core.c — mini-VMM: VM creation (memory, memslots with dirty logging,
 * vCPUs, dirty-log capabilities), teardown and the read-only accessors.
 * The vCPU threads are in vmm_run.c, vCPU state in vmm_state.c, the guest
 * image in vmm_guest.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sl_dirty.h"
#include "sl_kernel_compat.h"
#include "vmm_internal.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define TSS_GPA 0xfffbd000ull /* Intel real-mode TSS; unused by a protected-mode guest */

static int vm_ioctl(struct sl_vmm *vmm, unsigned long req, void *arg)
{
	return sl_sys_ioctl(vmm->sys, vmm->vm_fd, req, arg);
}

static int check_config(const struct sl_vmm_config *cfg, struct sl_errbuf *eb)
{
	if (cfg->mem_bytes < 4 * MIB || cfg->mem_bytes > 1024 * GIB || cfg->mem_bytes % (2 * MIB))
		return sl_err(eb, -EINVAL,
			      "vmm: mem_bytes %llu must be a multiple of 2 MiB in 4 MiB..1 TiB",
			      (unsigned long long)cfg->mem_bytes);
	if (cfg->slot_bytes % (2 * MIB))
		return sl_err(eb, -EINVAL, "vmm: slot_bytes %llu must be a multiple of 2 MiB",
			      (unsigned long long)cfg->slot_bytes);
	if (cfg->slot_bytes && SL_DIV_ROUND_UP(cfg->mem_bytes, cfg->slot_bytes) > VMM_MAX_SLOTS)
		return sl_err(eb, -EINVAL, "vmm: slot_bytes %llu gives more than %u memslots",
			      (unsigned long long)cfg->slot_bytes, VMM_MAX_SLOTS);
	if (cfg->nvcpus < 1 || cfg->nvcpus > SL_GUEST_MAX_VCPUS)
		return sl_err(eb, -EINVAL, "vmm: nvcpus %u must be in 1..%u", cfg->nvcpus,
			      SL_GUEST_MAX_VCPUS);
	if (cfg->dirty_mode > SL_VMM_DIRTY_RING)
		return sl_err(eb, -EINVAL, "vmm: unknown dirty mode %d", (int)cfg->dirty_mode);
	if (cfg->dirty_mode == SL_VMM_DIRTY_RING && cfg->ring_entries &&
	    (cfg->ring_entries < 64 || cfg->ring_entries > 65536 ||
	     (cfg->ring_entries & (cfg->ring_entries - 1))))
		return sl_err(eb, -EINVAL, "vmm: ring_entries %u must be a power of two in 64..65536",
			      cfg->ring_entries);
	if (cfg->initially_set && cfg->dirty_mode != SL_VMM_DIRTY_BITMAP_MANUAL)
		return sl_err(eb, -EINVAL, "vmm: initially_set needs dirty mode bitmap-manual");
	if (cfg->kick_signal < 0 || cfg->kick_signal >= NSIG || cfg->kick_signal == SIGKILL ||
	    cfg->kick_signal == SIGSTOP)
		return sl_err(eb, -EINVAL, "vmm: bad kick_signal %d", cfg->kick_signal);
	if (cfg->guest_elf && !cfg->guest_elf_len)
		return sl_err(eb, -EINVAL, "vmm: guest_elf given with length 0");
	return 0;
}

static int enable_cap(struct sl_vmm *vmm, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap ec = { .cap = cap };
	ec.args[0] = arg0;
	return vm_ioctl(vmm, KVM_ENABLE_CAP, &ec);
}

/* Dirty-log capabilities must be enabled before memslots (manual protect)
 * and before vCPUs exist (ring). */
static int setup_dirty_mode(struct sl_vmm *vmm, struct sl_errbuf *eb)
{
	const struct sl_vmm_config *cfg = &vmm->cfg;
	int ret;

	if (cfg->dirty_mode == SL_VMM_DIRTY_BITMAP_MANUAL) {
		uint64_t want = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
				(cfg->initially_set ? KVM_DIRTY_LOG_INITIALLY_SET : 0);
		ret = vm_ioctl(vmm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
		if (ret <= 0 || ((uint64_t)ret & want) != want)
			return sl_err(eb, -EOPNOTSUPP,
				      "vmm: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 lacks flags 0x%llx (has 0x%x)",
				      (unsigned long long)want, ret > 0 ? ret : 0);
		ret = enable_cap(vmm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, want);
		if (ret < 0)
			return sl_err(eb, ret, "vmm: enabling MANUAL_DIRTY_LOG_PROTECT2: %s", strerror(-ret));
		vmm->manual_protect = true;
	} else if (cfg->dirty_mode == SL_VMM_DIRTY_RING) {
		uint32_t entries = cfg->ring_entries ? cfg->ring_entries : 4096;
		uint32_t cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
		/* KVM_CHECK_EXTENSION returns the largest ring in bytes. */
		ret = vm_ioctl(vmm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)cap);
		if (ret <= 0) {
			cap = KVM_CAP_DIRTY_LOG_RING;
			ret = vm_ioctl(vmm, KVM_CHECK_EXTENSION, (void *)(uintptr_t)cap);
		}
		if (ret <= 0)
			return sl_err(eb, -EOPNOTSUPP, "vmm: this kernel has no KVM dirty ring");
		if ((uint64_t)entries * sizeof(struct kvm_dirty_gfn) > (uint64_t)ret)
			return sl_err(eb, -EINVAL, "vmm: ring of %u entries exceeds KVM's maximum of %d bytes",
				      entries, ret);
		ret = enable_cap(vmm, cap, (uint64_t)entries * sizeof(struct kvm_dirty_gfn));
		if (ret < 0)
			return sl_err(eb, ret, "vmm: enabling the dirty ring (%u entries): %s", entries,
				      strerror(-ret));
		vmm->ring_entries = entries;
		vmm->ring_acq_rel = cap == KVM_CAP_DIRTY_LOG_RING_ACQ_REL;
	}
	return 0;
}

static int setup_memory(struct sl_vmm *vmm, struct sl_errbuf *eb)
{
	const struct sl_vmm_config *cfg = &vmm->cfg;
	uint64_t slot_bytes = cfg->slot_bytes ? cfg->slot_bytes : cfg->mem_bytes;
	int ret;

	/* NORESERVE + lazy: a large VM costs only the pages its guest touches. */
	void *p = vmm->sys->mmap(vmm->sys->ctx, NULL, cfg->mem_bytes, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return sl_err(eb, -errno, "vmm: mapping %llu bytes of guest RAM: %s",
			      (unsigned long long)cfg->mem_bytes, strerror(errno));
	vmm->mem = p;
	vmm->mem_bytes = cfg->mem_bytes;

	for (uint64_t gpa = 0; gpa < cfg->mem_bytes; gpa += slot_bytes) {
		struct sl_vmm_slot *s = &vmm->slots[vmm->nslots];
		struct kvm_userspace_memory_region r = {
			.slot = vmm->nslots,
			.flags = cfg->dirty_mode != SL_VMM_DIRTY_NONE ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = gpa,
			.memory_size = SL_MIN(slot_bytes, cfg->mem_bytes - gpa),
			.userspace_addr = (uintptr_t)vmm->mem + gpa,
		};
		ret = vm_ioctl(vmm, KVM_SET_USER_MEMORY_REGION, &r);
		if (ret < 0)
			return sl_err(eb, ret, "vmm: memslot %u (gpa 0x%llx, %llu bytes): %s", r.slot,
				      (unsigned long long)gpa, (unsigned long long)r.memory_size,
				      strerror(-ret));
		s->id = r.slot;
		s->gpa = gpa;
		s->bytes = r.memory_size;
		s->npages = r.memory_size / SL_GUEST_PAGE_SIZE;
		s->host = vmm->mem + gpa;
		vmm->nslots++;
	}
	return 0;
}

static int get_supported_cpuid(struct sl_vmm *vmm, struct kvm_cpuid2 **out, struct sl_errbuf *eb)
{
	for (uint32_t nent = 128; nent <= 4096; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			return sl_err(eb, -ENOMEM, "vmm: out of memory");
		c->nent = nent;
		int ret = sl_sys_ioctl(vmm->sys, vmm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (ret == 0) {
			*out = c;
			return 0;
		}
		free(c);
		if (ret != -E2BIG)
			return sl_err(eb, ret, "vmm: KVM_GET_SUPPORTED_CPUID: %s", strerror(-ret));
	}
	return sl_err(eb, -E2BIG, "vmm: KVM_GET_SUPPORTED_CPUID: too many entries");
}

static int setup_vcpus(struct sl_vmm *vmm, struct sl_errbuf *eb)
{
	struct kvm_cpuid2 *cpuid = NULL;
	int ret;

	ret = sl_sys_ioctl(vmm->sys, vmm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL);
	if (ret < (int)sizeof(struct kvm_run))
		return sl_err(eb, ret < 0 ? ret : -EINVAL, "vmm: KVM_GET_VCPU_MMAP_SIZE returned %d", ret);
	vmm->run_size = (size_t)ret;
	ret = get_supported_cpuid(vmm, &cpuid, eb);
	if (ret < 0)
		return ret;

	for (unsigned i = 0; i < vmm->nvcpus; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];
		v->vmm = vmm;
		v->idx = i;
		ret = vm_ioctl(vmm, KVM_CREATE_VCPU, (void *)(uintptr_t)i);
		if (ret < 0) {
			sl_err(eb, ret, "vmm: KVM_CREATE_VCPU %u: %s", i, strerror(-ret));
			goto out;
		}
		v->fd = ret;
		vmm->vcpu_fds[i] = ret;
		void *run = vmm->sys->mmap(vmm->sys->ctx, NULL, vmm->run_size, PROT_READ | PROT_WRITE,
					   MAP_SHARED, v->fd, 0);
		if (run == MAP_FAILED) {
			ret = sl_err(eb, -errno, "vmm: mapping vCPU %u's kvm_run: %s", i, strerror(errno));
			goto out;
		}
		v->run = run;
		/* Each vCPU's CPUID says which APIC id it has (leaf 1 EBX[31:24]). */
		for (uint32_t e = 0; e < cpuid->nent; e++)
			if (cpuid->entries[e].function == 1)
				cpuid->entries[e].ebx = (cpuid->entries[e].ebx & 0x00ffffffu) | (i << 24);
		ret = sl_sys_ioctl(vmm->sys, v->fd, KVM_SET_CPUID2, cpuid);
		if (ret < 0) {
			sl_err(eb, ret, "vmm: KVM_SET_CPUID2 on vCPU %u: %s", i, strerror(-ret));
			goto out;
		}
	}
	ret = 0;
out:
	free(cpuid);
	return ret;
}

static int setup_ring(struct sl_vmm *vmm, struct sl_errbuf *eb)
{
	if (vmm->cfg.dirty_mode != SL_VMM_DIRTY_RING)
		return 0;
	struct sl_kvm_ring_config rc = {
		.size = sizeof(rc),
		.sys = vmm->sys,
		.vm_fd = vmm->vm_fd,
		.nvcpus = vmm->nvcpus,
		.vcpu_fds = vmm->vcpu_fds,
		.ring_entries = vmm->ring_entries,
		.page_size = vmm->page_size,
	};
	int ret = sl_kvm_ring_new(&rc, &vmm->ring, eb);
	return ret < 0 ? ret : 0;
}

static int open_kvm(struct sl_vmm *vmm, struct sl_errbuf *eb)
{
	int ret = sl_sys_open(vmm->sys, "/dev/kvm", O_RDWR | O_CLOEXEC);
	if (ret < 0)
		return sl_err(eb, ret == -ENOENT ? -ENODEV : ret, "vmm: opening /dev/kvm: %s",
			      strerror(-ret));
	vmm->kvm_fd = ret;
	ret = sl_sys_ioctl(vmm->sys, vmm->kvm_fd, KVM_GET_API_VERSION, NULL);
	if (ret != KVM_API_VERSION)
		return sl_err(eb, -EOPNOTSUPP, "vmm: KVM API version %d, need %d", ret, KVM_API_VERSION);
	ret = sl_sys_ioctl(vmm->sys, vmm->kvm_fd, KVM_CREATE_VM, (void *)0);
	if (ret < 0)
		return sl_err(eb, ret, "vmm: KVM_CREATE_VM: %s", strerror(-ret));
	vmm->vm_fd = ret;
	/* Only Intel without unrestricted guest uses it, and only below 4 GiB
	 * of RAM is the default spot free. */
	if (vmm->cfg.mem_bytes <= TSS_GPA)
		(void)vm_ioctl(vmm, KVM_SET_TSS_ADDR, (void *)(uintptr_t)TSS_GPA);
	return 0;
}

SL_EXPORT int sl_vmm_new(const struct sl_vmm_config *cfg, struct sl_vmm **out, struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct sl_vmm *vmm;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "vmm: out is NULL");
	*out = NULL;
	if (!cfg || cfg->size < sizeof(*cfg))
		return sl_err(eb, -EINVAL, "vmm: config missing or its size field is too small");
	ret = check_config(cfg, eb);
	if (ret < 0)
		return ret;
	if (!cfg->incoming) {
		struct sl_guest_params p;
		ret = vmm_guest_params(cfg, cfg->mem_bytes, &p, eb);
		if (ret < 0)
			return ret;
	}

	vmm = calloc(1, sizeof(*vmm));
	if (!vmm)
		return sl_err(eb, -ENOMEM, "vmm: out of memory");
	vmm->cfg = *cfg;
	vmm->cfg.size = sizeof(vmm->cfg);
	if (!vmm->cfg.kick_signal)
		vmm->cfg.kick_signal = SIGUSR1;
	vmm->sys = cfg->sys ? cfg->sys : sl_sys_default();
	vmm->kvm_fd = -1;
	vmm->vm_fd = -1;
	vmm->nvcpus = cfg->nvcpus;
	vmm->page_size = sysconf(_SC_PAGESIZE);
	atomic_store(&vmm->rate_limit, cfg->dirty_rate_limit);
	pthread_mutex_init(&vmm->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vmm->cond, &ca);
	pthread_condattr_destroy(&ca);
	vmm->vcpus = calloc(vmm->nvcpus, sizeof(*vmm->vcpus));
	vmm->vcpu_fds = calloc(vmm->nvcpus, sizeof(*vmm->vcpu_fds));
	if (!vmm->vcpus || !vmm->vcpu_fds) {
		ret = sl_err(eb, -ENOMEM, "vmm: out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < vmm->nvcpus; i++)
		vmm->vcpus[i].fd = vmm->vcpu_fds[i] = -1;

	if ((ret = open_kvm(vmm, eb)) < 0 || (ret = setup_dirty_mode(vmm, eb)) < 0 ||
	    (ret = setup_memory(vmm, eb)) < 0 || (ret = setup_vcpus(vmm, eb)) < 0 ||
	    (ret = setup_ring(vmm, eb)) < 0)
		goto fail;
	if (!cfg->incoming) {
		ret = vmm_guest_load(vmm, eb);
		if (ret < 0)
			goto fail;
		for (unsigned i = 0; i < vmm->nvcpus; i++) {
			ret = vmm_vcpu_init_regs(vmm, &vmm->vcpus[i]);
			if (ret < 0) {
				sl_err(eb, ret, "%s", vmm->err.msg);
				goto fail;
			}
		}
	}
	*out = vmm;
	return 0;
fail:
	sl_vmm_free(&vmm);
	return ret;
}

SL_EXPORT void sl_vmm_free(struct sl_vmm **vmmp)
{
	struct sl_vmm *vmm;

	if (!vmmp || !*vmmp)
		return;
	vmm = *vmmp;
	vmm_threads_quit(vmm);
	sl_kvm_ring_free(&vmm->ring);
	if (vmm->vcpus) {
		for (unsigned i = 0; i < vmm->nvcpus; i++) {
			struct vmm_vcpu *v = &vmm->vcpus[i];
			if (v->run)
				vmm->sys->munmap(vmm->sys->ctx, v->run, vmm->run_size);
			sl_sys_close(vmm->sys, &v->fd);
		}
	}
	sl_sys_close(vmm->sys, &vmm->vm_fd);
	if (vmm->mem)
		vmm->sys->munmap(vmm->sys->ctx, vmm->mem, vmm->mem_bytes);
	sl_sys_close(vmm->sys, &vmm->kvm_fd);
	pthread_cond_destroy(&vmm->cond);
	pthread_mutex_destroy(&vmm->lock);
	free(vmm->vcpus);
	free(vmm->vcpu_fds);
	free(vmm);
	*vmmp = NULL;
}

SL_EXPORT int sl_vmm_mem(struct sl_vmm *vmm, void **ptr, uint64_t *len)
{
	if (!vmm || !ptr || !len)
		return -EINVAL;
	*ptr = vmm->mem;
	*len = vmm->mem_bytes;
	return 0;
}

SL_EXPORT int sl_vmm_get_info(const struct sl_vmm *vmm, struct sl_vmm_info *out)
{
	if (!vmm || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->vm_fd = vmm->vm_fd;
	out->nvcpus = vmm->nvcpus;
	out->vcpu_fds = vmm->vcpu_fds;
	out->nslots = vmm->nslots;
	out->slots = vmm->slots;
	out->dirty_mode = vmm->cfg.dirty_mode;
	out->ring_entries = vmm->ring_entries;
	out->ring_acq_rel = vmm->ring_acq_rel;
	out->manual_protect = vmm->manual_protect;
	out->initially_set = vmm->manual_protect && vmm->cfg.initially_set;
	out->ring = vmm->ring;
	out->page_size = vmm->page_size;
	return 0;
}

SL_EXPORT void sl_vmm_get_stats(const struct sl_vmm *vmm, struct sl_vmm_stats *out)
{
	struct sl_vmm *m = (struct sl_vmm *)vmm; /* atomics: loads only */

	memset(out, 0, sizeof(*out));
	if (!vmm)
		return;
	out->exits = atomic_load_explicit(&m->st_exits, memory_order_relaxed);
	out->progress_pages = atomic_load_explicit(&m->st_progress, memory_order_relaxed);
	out->pass_exits = atomic_load_explicit(&m->st_pass_exits, memory_order_relaxed);
	out->rate_sleep_ns = atomic_load_explicit(&m->st_sleep_ns, memory_order_relaxed);
	out->ring_full_exits = atomic_load_explicit(&m->st_ring_full, memory_order_relaxed);
	out->ring_drained = atomic_load_explicit(&m->st_ring_drained, memory_order_relaxed);
	out->kicks = atomic_load_explicit(&m->st_kicks, memory_order_relaxed);
	out->halted_vcpus = atomic_load_explicit(&m->st_halted, memory_order_relaxed);
	out->guest_error = atomic_load_explicit(&m->st_guest_error, memory_order_relaxed);
}

SL_EXPORT struct sl_kvm_ring *sl_vmm_dirty_ring(const struct sl_vmm *vmm)
{
	return vmm ? vmm->ring : NULL;
}

SL_EXPORT uint64_t sl_vmm_guest_passes(const struct sl_vmm *vmm)
{
	if (!vmm || vmm->mem_bytes < SL_GUEST_STATUS_GPA + SL_GUEST_MAX_VCPUS * sizeof(struct sl_guest_status))
		return 0;
	const volatile struct sl_guest_status *st =
		(const volatile struct sl_guest_status *)(vmm->mem + SL_GUEST_STATUS_GPA);
	uint64_t min = UINT64_MAX;
	for (unsigned i = 0; i < vmm->nvcpus; i++)
		min = SL_MIN(min, (uint64_t)st[i].passes_done);
	return min == UINT64_MAX ? 0 : min;
}

SL_EXPORT void sl_vmm_set_rate_limit(struct sl_vmm *vmm, uint64_t pages_per_sec)
{
	if (!vmm)
		return;
	atomic_store(&vmm->rate_limit, pages_per_sec);
	pthread_mutex_lock(&vmm->lock);
	pthread_cond_broadcast(&vmm->cond); /* sleepers recompute their deadline */
	pthread_mutex_unlock(&vmm->lock);
}

SL_EXPORT const char *sl_vmm_last_error(const struct sl_vmm *vmm)
{
	return vmm ? vmm->err.msg : "vmm: NULL";
}
