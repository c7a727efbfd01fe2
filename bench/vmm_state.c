/* SPDX-License-Identifier: MIT */
/*
 * vmm_state.c — vCPU register state: the guest's initial 32-bit protected
 * mode state, and save/restore of every vCPU to an opaque blob.
 *
 * Blob layout (native endianness, same build on both ends — it's the state
 * of KVM structs, not a wire format): a header, then per vCPU: kvm_regs,
 * kvm_sregs, kvm_xcrs, kvm_vcpu_events, a count and array of MSRs, and the
 * XSAVE area (KVM_GET_XSAVE2 size when the kernel has it).
 * There is no in-kernel irqchip (no LAPIC, PIC or PIT state to move): the
 * guest runs with interrupts off.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm_internal.h"

#define STATE_MAGIC 0x534C5653u /* "SLVS" */
#define STATE_VERSION 1u
#define STATE_MAX_MSRS 16u

/* MSRs a 32-bit or 64-bit guest without a LAPIC may have changed; those the
 * CPU lacks are skipped at save time. */
static const uint32_t saved_msrs[] = {
	0x00000010, /* IA32_TSC */
	0x00000174, /* IA32_SYSENTER_CS */
	0x00000175, /* IA32_SYSENTER_ESP */
	0x00000176, /* IA32_SYSENTER_EIP */
	0x00000277, /* IA32_PAT */
	0x000001a0, /* IA32_MISC_ENABLE */
	0xc0000081, /* STAR */
	0xc0000082, /* LSTAR */
	0xc0000083, /* CSTAR */
	0xc0000084, /* SFMASK */
	0xc0000102, /* KERNEL_GS_BASE */
	0xc0000103, /* TSC_AUX */
};

struct state_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t nvcpus;
	uint32_t xsave_bytes;
	uint32_t vcpu_bytes;
	uint32_t reserved;
};

struct vcpu_fixed {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events events;
	uint32_t nmsrs;
	uint32_t pad;
	struct kvm_msr_entry msrs[STATE_MAX_MSRS];
	/* then xsave_bytes of struct kvm_xsave */
};

struct msrs_buf {
	struct kvm_msrs hdr;
	struct kvm_msr_entry e[STATE_MAX_MSRS];
};

static int vcpu_ioctl(struct sl_vmm *vmm, struct vmm_vcpu *v, unsigned long req, void *arg)
{
	return sl_sys_ioctl(vmm->sys, v->fd, req, arg);
}

static void flat_seg(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffffu;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->db = 1; /* 32-bit */
	s->s = 1;  /* code/data */
	s->l = 0;
	s->g = 1;  /* 4 KiB granularity */
}

int vmm_vcpu_set_flat32(struct sl_vmm *vmm, struct vmm_vcpu *v)
{
	struct kvm_sregs sregs;
	int ret = vcpu_ioctl(vmm, v, KVM_GET_SREGS, &sregs);

	if (ret < 0)
		return sl_err(&vmm->err, ret, "vmm: KVM_GET_SREGS vCPU %u: %s", v->idx, strerror(-ret));
	flat_seg(&sregs.cs, 0x08, 0xb); /* execute/read, accessed */
	flat_seg(&sregs.ds, 0x10, 0x3); /* read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = 0x11; /* PE | ET: protected mode, no paging */
	sregs.cr4 = 0;
	sregs.efer = 0;
	ret = vcpu_ioctl(vmm, v, KVM_SET_SREGS, &sregs);
	if (ret < 0)
		return sl_err(&vmm->err, ret, "vmm: KVM_SET_SREGS vCPU %u: %s", v->idx, strerror(-ret));
	return 0;
}

int vmm_vcpu_init_regs(struct sl_vmm *vmm, struct vmm_vcpu *v)
{
	int ret = vmm_vcpu_set_flat32(vmm, v);
	if (ret < 0)
		return ret;
	/* The guest's entry contract: EAX = "SLVM", ECX = vCPU index,
	 * parameters at SL_GUEST_PARAM_GPA (see bench/guest/boot.S). */
	struct kvm_regs regs = {
		.rip = vmm->entry,
		.rflags = 0x2,
		.rax = SL_GUEST_VMM_MAGIC,
		.rbx = SL_GUEST_PARAM_GPA,
		.rcx = v->idx,
	};
	ret = vcpu_ioctl(vmm, v, KVM_SET_REGS, &regs);
	if (ret < 0)
		return sl_err(&vmm->err, ret, "vmm: KVM_SET_REGS vCPU %u: %s", v->idx, strerror(-ret));
	return 0;
}

static uint32_t xsave_bytes(struct sl_vmm *vmm)
{
	int n = sl_sys_ioctl(vmm->sys, vmm->vm_fd, KVM_CHECK_EXTENSION, (void *)(uintptr_t)KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? (uint32_t)n : (uint32_t)sizeof(struct kvm_xsave);
}

static bool busy(struct sl_vmm *vmm)
{
	bool b;
	pthread_mutex_lock(&vmm->lock);
	b = vmm->started && !(vmm->stop_req && vmm->parked == vmm->nvcpus);
	pthread_mutex_unlock(&vmm->lock);
	return b;
}

static int save_vcpu(struct sl_vmm *vmm, struct vmm_vcpu *v, uint8_t *out, uint32_t xbytes)
{
	struct vcpu_fixed *f = (struct vcpu_fixed *)out;
	struct kvm_xsave *xs = (struct kvm_xsave *)(out + sizeof(*f));
	bool xsave2 = xbytes > sizeof(struct kvm_xsave);
	int ret;

	if ((ret = vcpu_ioctl(vmm, v, KVM_GET_REGS, &f->regs)) < 0 ||
	    (ret = vcpu_ioctl(vmm, v, KVM_GET_SREGS, &f->sregs)) < 0 ||
	    (ret = vcpu_ioctl(vmm, v, KVM_GET_XCRS, &f->xcrs)) < 0 ||
	    (ret = vcpu_ioctl(vmm, v, KVM_GET_VCPU_EVENTS, &f->events)) < 0 ||
	    (ret = vcpu_ioctl(vmm, v, xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xs)) < 0)
		return sl_err(&vmm->err, ret, "vmm: saving vCPU %u: %s", v->idx, strerror(-ret));
	f->nmsrs = 0;
	for (size_t i = 0; i < SL_ARRAY_SIZE(saved_msrs); i++) {
		struct msrs_buf mb = { .hdr.nmsrs = 1 };
		mb.e[0].index = saved_msrs[i];
		/* KVM_GET_MSRS returns how many it read: 0 = this CPU lacks it. */
		if (vcpu_ioctl(vmm, v, KVM_GET_MSRS, &mb) == 1)
			f->msrs[f->nmsrs++] = mb.e[0];
	}
	return 0;
}

SL_EXPORT int sl_vmm_save_state(struct sl_vmm *vmm, void **blob, size_t *len)
{
	if (!vmm || !blob || !len)
		return -EINVAL;
	if (busy(vmm))
		return sl_err(&vmm->err, -EBUSY, "vmm: save_state while vCPUs run (stop first)");
	uint32_t xbytes = xsave_bytes(vmm);
	uint32_t per = (uint32_t)sizeof(struct vcpu_fixed) + xbytes;
	size_t total = sizeof(struct state_hdr) + (size_t)per * vmm->nvcpus;
	uint8_t *b = calloc(1, total);
	if (!b)
		return sl_err(&vmm->err, -ENOMEM, "vmm: out of memory");
	struct state_hdr *h = (struct state_hdr *)b;
	h->magic = STATE_MAGIC;
	h->version = STATE_VERSION;
	h->nvcpus = vmm->nvcpus;
	h->xsave_bytes = xbytes;
	h->vcpu_bytes = per;
	for (unsigned i = 0; i < vmm->nvcpus; i++) {
		int ret = save_vcpu(vmm, &vmm->vcpus[i], b + sizeof(*h) + (size_t)per * i, xbytes);
		if (ret < 0) {
			free(b);
			return ret;
		}
	}
	*blob = b;
	*len = total;
	return 0;
}

static int restore_vcpu(struct sl_vmm *vmm, struct vmm_vcpu *v, const uint8_t *in, uint32_t xbytes)
{
	struct vcpu_fixed f;
	int ret;

	memcpy(&f, in, sizeof(f));
	if (f.nmsrs > STATE_MAX_MSRS)
		return sl_err(&vmm->err, -EINVAL, "vmm: state blob: vCPU %u has %u MSRs", v->idx, f.nmsrs);
	/* KVM_SET_XSAVE reads the XSAVE2 size when the kernel supports it, so
	 * hand it a buffer of at least that much. */
	uint32_t here = xsave_bytes(vmm);
	if (here != xbytes)
		return sl_err(&vmm->err, -EINVAL, "vmm: state blob: XSAVE area %u bytes, this host %u",
			      xbytes, here);
	struct kvm_xsave *xs = malloc(xbytes);
	if (!xs)
		return sl_err(&vmm->err, -ENOMEM, "vmm: out of memory");
	memcpy(xs, in + sizeof(f), xbytes);
	struct msrs_buf mb = { .hdr.nmsrs = f.nmsrs };
	memcpy(mb.e, f.msrs, sizeof(f.msrs[0]) * f.nmsrs);

	if ((ret = vcpu_ioctl(vmm, v, KVM_SET_SREGS, &f.sregs)) < 0 ||
	    (ret = vcpu_ioctl(vmm, v, KVM_SET_REGS, &f.regs)) < 0 ||
	    (ret = vcpu_ioctl(vmm, v, KVM_SET_XCRS, &f.xcrs)) < 0 ||
	    (ret = vcpu_ioctl(vmm, v, KVM_SET_XSAVE, xs)) < 0 ||
	    (ret = vcpu_ioctl(vmm, v, KVM_SET_VCPU_EVENTS, &f.events)) < 0) {
		free(xs);
		return sl_err(&vmm->err, ret, "vmm: restoring vCPU %u: %s", v->idx, strerror(-ret));
	}
	free(xs);
	ret = vcpu_ioctl(vmm, v, KVM_SET_MSRS, &mb);
	if (ret != (int)f.nmsrs)
		return sl_err(&vmm->err, ret < 0 ? ret : -EIO,
			      "vmm: restoring vCPU %u: KVM_SET_MSRS set %d of %u", v->idx, ret, f.nmsrs);
	return 0;
}

SL_EXPORT int sl_vmm_restore_state(struct sl_vmm *vmm, const void *blob, size_t len)
{
	struct state_hdr h;

	if (!vmm || !blob)
		return -EINVAL;
	if (busy(vmm))
		return sl_err(&vmm->err, -EBUSY, "vmm: restore_state while vCPUs run (stop first)");
	if (len < sizeof(h))
		return sl_err(&vmm->err, -EINVAL, "vmm: state blob too short (%zu bytes)", len);
	memcpy(&h, blob, sizeof(h));
	if (h.magic != STATE_MAGIC || h.version != STATE_VERSION)
		return sl_err(&vmm->err, -EINVAL, "vmm: not a state blob (magic 0x%x version %u)", h.magic,
			      h.version);
	if (h.nvcpus != vmm->nvcpus)
		return sl_err(&vmm->err, -EINVAL, "vmm: state blob has %u vCPUs, this VM %u", h.nvcpus,
			      vmm->nvcpus);
	if (h.xsave_bytes < sizeof(struct kvm_xsave) || h.xsave_bytes > (1u << 20) ||
	    h.vcpu_bytes != sizeof(struct vcpu_fixed) + h.xsave_bytes ||
	    len != sizeof(h) + (size_t)h.vcpu_bytes * h.nvcpus)
		return sl_err(&vmm->err, -EINVAL, "vmm: state blob sizes inconsistent (%zu bytes)", len);
	for (unsigned i = 0; i < vmm->nvcpus; i++) {
		int ret = restore_vcpu(vmm, &vmm->vcpus[i],
				       (const uint8_t *)blob + sizeof(h) + (size_t)h.vcpu_bytes * i,
				       h.xsave_bytes);
		if (ret < 0)
			return ret;
	}
	pthread_mutex_lock(&vmm->lock);
	vmm->state_loaded = true;
	pthread_mutex_unlock(&vmm->lock);
	return 0;
}
