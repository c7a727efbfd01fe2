/* SPDX-License-Identifier: MIT */
/*
 * vmm_touch.c — dirties guest pages anywhere in a large VM for the harvest
 * benchmark. The 32-bit guest reaches only 4 GiB, and KVM logs only writes
 * made by the guest, so vCPU 0 runs a 5-instruction 64-bit loop under an
 * identity map built from 2 MiB pages (1 GiB pages would need fewer tables,
 * but not every KVM offers them: PVM doesn't):
 *
 *   1: mov %rax, (%rdi)     48 89 07
 *      add %rdx, %rdi       48 01 d7
 *      cmp %rsi, %rdi       48 39 f7
 *      jb 1b                72 f5
 *      hlt                  f4
 *
 * with rdi = first address, rsi = end, rdx = stride in bytes.
 */
#include <errno.h>
#include <string.h>

#include "sl_dirty.h"
#include "vmm_internal.h"

#define PML4_GPA 0x1000ull
#define PDPT_GPA 0x2000ull /* two pages: 0..512 GiB, 512 GiB..1 TiB */
#define CODE_GPA 0x4000ull
#define PD_FIRST_PAGE 16ull /* one page directory per GiB from here */

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define PTE_PS (1ull << 7)
#define GIB (1ull << 30)

static const uint8_t touch_code[] = {
	0x48, 0x89, 0x07, 0x48, 0x01, 0xd7, 0x48, 0x39, 0xf7, 0x72, 0xf5, 0xf4,
};

static uint64_t gib_count(const struct sl_vmm *vmm)
{
	return SL_DIV_ROUND_UP(vmm->mem_bytes, GIB);
}

SL_EXPORT uint64_t sl_vmm_touch_first_page(const struct sl_vmm *vmm)
{
	return vmm ? PD_FIRST_PAGE + gib_count(vmm) : 0;
}

static int setup_long_mode(struct sl_vmm *vmm, struct vmm_vcpu *v)
{
	uint64_t *pml4 = (uint64_t *)(vmm->mem + PML4_GPA);
	uint64_t *pdpt = (uint64_t *)(vmm->mem + PDPT_GPA);
	uint64_t ngib = gib_count(vmm);
	struct kvm_sregs s;
	int ret;

	/* A and D preset, so the CPU never writes the tables (which would
	 * add dirty pages of its own). */
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 2 * 4096);
	pml4[0] = PDPT_GPA | PTE_P | PTE_W | PTE_A;
	pml4[1] = (PDPT_GPA + 0x1000) | PTE_P | PTE_W | PTE_A;
	for (uint64_t g = 0; g < ngib; g++) {
		uint64_t pd_gpa = (PD_FIRST_PAGE + g) * 4096;
		uint64_t *pd = (uint64_t *)(vmm->mem + pd_gpa);
		pdpt[g] = pd_gpa | PTE_P | PTE_W | PTE_A;
		for (uint64_t i = 0; i < 512; i++)
			pd[i] = (g * GIB + (i << 21)) | PTE_P | PTE_W | PTE_A | PTE_D | PTE_PS;
	}
	memcpy(vmm->mem + CODE_GPA, touch_code, sizeof(touch_code));

	ret = sl_sys_ioctl(vmm->sys, v->fd, KVM_GET_SREGS, &s);
	if (ret < 0)
		return ret;
	struct kvm_segment cs = {
		.limit = 0xffffffffu, .selector = 0x08, .type = 0xb, .present = 1,
		.s = 1, .l = 1, .g = 1,
	};
	struct kvm_segment ds = {
		.limit = 0xffffffffu, .selector = 0x10, .type = 0x3, .present = 1,
		.s = 1, .db = 1, .g = 1,
	};
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.cr3 = PML4_GPA;
	s.cr4 = 0x20;          /* PAE */
	s.cr0 = 0x80000033u;   /* PG | NE | ET | MP | PE */
	s.efer = 0x500;        /* LMA | LME */
	return sl_sys_ioctl(vmm->sys, v->fd, KVM_SET_SREGS, &s);
}

SL_EXPORT int64_t sl_vmm_touch(struct sl_vmm *vmm, uint64_t first_page, uint64_t npages, uint64_t stride)
{
	if (!vmm || !npages || !stride)
		return -EINVAL;
	pthread_mutex_lock(&vmm->lock);
	bool started = vmm->started;
	pthread_mutex_unlock(&vmm->lock);
	if (started || !vmm->cfg.incoming)
		return sl_err(&vmm->err, -EBUSY, "vmm: touch needs an incoming VM that never started");
	uint64_t total = vmm->mem_bytes / SL_GUEST_PAGE_SIZE;
	uint64_t lowest = sl_vmm_touch_first_page(vmm);
	if (first_page < lowest || first_page > total || npages > total - first_page)
		return sl_err(&vmm->err, -EINVAL, "vmm: touch range %llu+%llu outside pages %llu..%llu",
			      (unsigned long long)first_page, (unsigned long long)npages,
			      (unsigned long long)lowest, (unsigned long long)total);

	struct vmm_vcpu *v = &vmm->vcpus[0];
	int ret = setup_long_mode(vmm, v);
	if (ret < 0)
		return sl_err(&vmm->err, ret, "vmm: touch: entering long mode: %s", strerror(-ret));
	struct kvm_regs r = {
		.rip = CODE_GPA,
		.rflags = 0x2,
		.rax = 0x746f756368ull, /* "touch" */
		.rdi = first_page * SL_GUEST_PAGE_SIZE,
		.rsi = (first_page + npages) * SL_GUEST_PAGE_SIZE,
		.rdx = stride * SL_GUEST_PAGE_SIZE,
	};
	ret = sl_sys_ioctl(vmm->sys, v->fd, KVM_SET_REGS, &r);
	if (ret < 0)
		return sl_err(&vmm->err, ret, "vmm: touch: KVM_SET_REGS: %s", strerror(-ret));
	v->run->immediate_exit = 0;
	for (;;) {
		ret = sl_sys_ioctl(vmm->sys, v->fd, KVM_RUN, NULL);
		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret < 0)
			return sl_err(&vmm->err, ret, "vmm: touch: KVM_RUN: %s", strerror(-ret));
		if (v->run->exit_reason == KVM_EXIT_HLT)
			break;
		if (v->run->exit_reason == KVM_EXIT_DIRTY_RING_FULL && vmm->ring) {
			ret = sl_dirty_kvm_ring_drain(vmm->ring, 0);
			if (ret < 0)
				return sl_err(&vmm->err, ret, "vmm: touch: draining the ring: %s", strerror(-ret));
			continue;
		}
		if (v->run->exit_reason == KVM_EXIT_MMIO && vmm_mmio_to_ram(vmm, v->run) == 0)
			continue;
		if (v->run->exit_reason == KVM_EXIT_MMIO)
			return sl_err(&vmm->err, -EIO, "vmm: touch: access to 0x%llx outside RAM",
				      (unsigned long long)v->run->mmio.phys_addr);
		return sl_err(&vmm->err, -EIO, "vmm: touch: unexpected exit reason %u", v->run->exit_reason);
	}
	return (int64_t)SL_DIV_ROUND_UP(npages, stride);
}
