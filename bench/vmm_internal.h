/* SPDX-License-Identifier: MIT */
/* vmm_internal.h — what the mini-VMM's files (vmm_*.c) share. Not public. */
#ifndef SL_VMM_INTERNAL_H
#define SL_VMM_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>

#include "sl_vmm.h"

#define VMM_MAX_SLOTS 512

struct vmm_vcpu {
	struct sl_vmm *vmm;
	unsigned idx;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	/* Owned by the vCPU thread. */
	uint64_t rate_t0_ns;
	uint64_t rate_pages;
	unsigned empty_drains; /* consecutive DIRTY_RING_FULL exits with nothing harvested */
};

struct sl_vmm {
	const struct sl_sys *sys;
	struct sl_vmm_config cfg;
	int kvm_fd;
	int vm_fd;
	size_t run_size;
	long page_size;

	uint8_t *mem;
	uint64_t mem_bytes;
	struct sl_vmm_slot slots[VMM_MAX_SLOTS];
	unsigned nslots;

	unsigned nvcpus;
	struct vmm_vcpu *vcpus;
	int *vcpu_fds;
	uint32_t entry;                 /* guest entry point */

	bool manual_protect;
	bool ring_acq_rel;
	uint32_t ring_entries;
	struct sl_kvm_ring *ring;

	/* Control state, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;             /* CLOCK_MONOTONIC; any state change */
	bool started;
	bool stop_req;
	bool quit;
	bool state_loaded;               /* incoming: restore_state done */
	unsigned parked;                 /* vCPU threads parked or finished */
	unsigned finished;               /* vCPU threads done for good (halt/failure) */

	_Atomic uint64_t rate_limit;     /* pages/s, all vCPUs */

	/* Statistics (relaxed atomics, written by vCPU threads). */
	_Atomic uint64_t st_exits, st_progress, st_pass_exits, st_sleep_ns;
	_Atomic uint64_t st_ring_full, st_ring_drained, st_kicks;
	_Atomic unsigned st_halted;
	_Atomic uint32_t st_guest_error;

	struct sl_errbuf err;
};

/* vmm_run.c */
int vmm_threads_start(struct sl_vmm *vmm);
void vmm_threads_quit(struct sl_vmm *vmm);
void vmm_log(struct sl_vmm *vmm, enum sl_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* vmm_guest.c: loads the ELF into memory, writes the parameter block. */
int vmm_guest_load(struct sl_vmm *vmm, struct sl_errbuf *eb);
/* Fills a parameter block from the config (validated). */
int vmm_guest_params(const struct sl_vmm_config *cfg, uint64_t mem_bytes,
		     struct sl_guest_params *p, struct sl_errbuf *eb);

/* vmm_state.c: vCPU 0.. initial register state for the guest's entry. */
int vmm_vcpu_init_regs(struct sl_vmm *vmm, struct vmm_vcpu *v);
int vmm_vcpu_set_flat32(struct sl_vmm *vmm, struct vmm_vcpu *v);
/* Completes an MMIO exit that hit RAM (KVM keeps the xAPIC page at
 * 0xfee00000 even without an irqchip): 0, or -EFAULT outside RAM. */
int vmm_mmio_to_ram(struct sl_vmm *vmm, struct kvm_run *run);

#endif /* SL_VMM_INTERNAL_H */
