/* SPDX-License-Identifier: MIT */
/*
 * vmm_run.c — the mini-VMM's vCPU threads: the KVM_RUN loop, I/O exits from
 * the guest, the dirty-rate limit, the dirty-ring-full exit, and stop/resume.
 *
 * Stop protocol: the control thread sets stop_req, then for each vCPU sets
 * kvm_run.immediate_exit and sends kick_signal to its thread. A vCPU inside
 * KVM_RUN returns -EINTR on the signal; one about to enter returns at once
 * because of immediate_exit. Before parking, a vCPU re-enters KVM_RUN once
 * with immediate_exit set: KVM completes a pending I/O instruction (its
 * state is not visible to userspace otherwise) and returns without running
 * guest code, so saved state is consistent (Documentation/virt/kvm/api.rst,
 * "immediate_exit").
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sl_dirty.h"
#include "vmm_internal.h"

#ifndef KVM_EXIT_DIRTY_RING_FULL
#define KVM_EXIT_DIRTY_RING_FULL 31
#endif

/* Falling behind the rate by more than this resets the budget, so a vCPU
 * that was parked does not burst to catch up. */
#define RATE_SLACK_NS 100000000ull

void vmm_log(struct sl_vmm *vmm, enum sl_log_level level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!vmm->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	vmm->cfg.log(vmm->cfg.log_ctx, level, msg);
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return -EINTR */
}

static int install_kick_handler(int sig)
{
	struct sigaction old, sa;

	if (sigaction(sig, NULL, &old) < 0)
		return -errno;
	if (!(old.sa_flags & SA_SIGINFO) && (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = kick_handler;
		sigemptyset(&sa.sa_mask);
		if (sigaction(sig, &sa, NULL) < 0)
			return -errno;
	}
	return 0;
}

static void timespec_at(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* Called with `pages` the guest just reported: sleeps (interruptibly by
 * stop/quit/rate change) until the per-vCPU budget allows them. */
static void rate_limit(struct vmm_vcpu *v, uint64_t pages)
{
	struct sl_vmm *vmm = v->vmm;
	uint64_t limit = atomic_load_explicit(&vmm->rate_limit, memory_order_relaxed);
	uint64_t now = sl_now_ns();

	if (!limit) {
		v->rate_t0_ns = now;
		v->rate_pages = 0;
		return;
	}
	double per_vcpu = (double)limit / vmm->nvcpus;
	v->rate_pages += pages;
	uint64_t due = v->rate_t0_ns + (uint64_t)((double)v->rate_pages * 1e9 / per_vcpu);
	if (now > due + RATE_SLACK_NS || v->rate_t0_ns == 0) {
		v->rate_t0_ns = now;
		v->rate_pages = 0;
		return;
	}
	if (now >= due)
		return;
	struct timespec ts;
	timespec_at(&ts, due);
	pthread_mutex_lock(&vmm->lock);
	while (!vmm->stop_req && !vmm->quit &&
	       atomic_load_explicit(&vmm->rate_limit, memory_order_relaxed) == limit &&
	       sl_now_ns() < due) {
		if (pthread_cond_timedwait(&vmm->cond, &vmm->lock, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&vmm->lock);
	atomic_fetch_add_explicit(&vmm->st_sleep_ns, sl_now_ns() - now, memory_order_relaxed);
}

/* Returns 0, or -errno when the vCPU cannot go on. */
static int handle_io(struct vmm_vcpu *v)
{
	struct sl_vmm *vmm = v->vmm;
	struct kvm_run *run = v->run;
	const uint8_t *data = (const uint8_t *)run + run->io.data_offset;
	uint32_t val = 0;

	if (run->io.direction != KVM_EXIT_IO_OUT) {
		/* IN from an absent device reads all ones, as on real hardware. */
		memset((uint8_t *)run + run->io.data_offset, 0xff, (size_t)run->io.size * run->io.count);
		return 0;
	}
	if (run->io.size == 4)
		memcpy(&val, data, 4);
	switch (run->io.port) {
	case SL_GUEST_PORT_PROGRESS:
		atomic_fetch_add_explicit(&vmm->st_progress, val, memory_order_relaxed);
		/* Drain the ring while we are out anyway: KVM reserves only 64
		 * entries beyond the soft-full mark, and a KVM that emulates
		 * guest writes (PVM, as on this project's machines) pushes
		 * an entry per emulated write and can overrun that before it
		 * exits with DIRTY_RING_FULL, silently overwriting entries. */
		if (vmm->ring) {
			int n = sl_dirty_kvm_ring_drain(vmm->ring, v->idx);
			if (n < 0)
				return n;
			atomic_fetch_add_explicit(&vmm->st_ring_drained, (uint64_t)n,
						  memory_order_relaxed);
		}
		rate_limit(v, val);
		break;
	case SL_GUEST_PORT_PASS:
		atomic_fetch_add_explicit(&vmm->st_pass_exits, 1, memory_order_relaxed);
		break;
	case SL_GUEST_PORT_ERROR:
		atomic_store(&vmm->st_guest_error, val);
		vmm_log(vmm, SL_LOG_ERR, "vmm: vCPU %u: guest reported error %u", v->idx, val);
		break;
	default:
		break; /* debugcon text and anything else: ignored */
	}
	return 0;
}

int vmm_mmio_to_ram(struct sl_vmm *vmm, struct kvm_run *run)
{
	uint64_t a = run->mmio.phys_addr;
	uint32_t len = run->mmio.len;

	if (len > sizeof(run->mmio.data) || a >= vmm->mem_bytes || len > vmm->mem_bytes - a)
		return -EFAULT;
	/* Done by the VMM, this write is invisible to KVM's dirty log; it
	 * only happens for the one xAPIC page. */
	if (run->mmio.is_write)
		memcpy(vmm->mem + a, run->mmio.data, len);
	else
		memcpy(run->mmio.data, vmm->mem + a, len);
	return 0;
}

/* Parks the calling vCPU thread until resume or quit. Lock held on entry
 * and exit. */
static void park(struct vmm_vcpu *v)
{
	struct sl_vmm *vmm = v->vmm;

	vmm->parked++;
	pthread_cond_broadcast(&vmm->cond);
	while (vmm->stop_req && !vmm->quit)
		pthread_cond_wait(&vmm->cond, &vmm->lock);
	vmm->parked--;
	v->rate_t0_ns = 0; /* restart the rate budget after a pause */
}

/* Completes a pending I/O or MMIO instruction without running guest code. */
static void complete_pending(struct vmm_vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	(void)sl_sys_ioctl(v->vmm->sys, v->fd, KVM_RUN, NULL);
}

static void finish(struct vmm_vcpu *v, bool halted)
{
	struct sl_vmm *vmm = v->vmm;

	pthread_mutex_lock(&vmm->lock);
	vmm->finished++;
	vmm->parked++;
	if (halted)
		atomic_fetch_add(&vmm->st_halted, 1);
	pthread_cond_broadcast(&vmm->cond);
	while (!vmm->quit)
		pthread_cond_wait(&vmm->cond, &vmm->lock);
	pthread_mutex_unlock(&vmm->lock);
}

static void *vcpu_thread(void *arg)
{
	struct vmm_vcpu *v = arg;
	struct sl_vmm *vmm = v->vmm;
	struct kvm_run *run = v->run;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, vmm->cfg.kick_signal);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	for (;;) {
		pthread_mutex_lock(&vmm->lock);
		if (vmm->stop_req || vmm->quit) {
			pthread_mutex_unlock(&vmm->lock);
			complete_pending(v);
			if (vmm->cfg.dirty_mode == SL_VMM_DIRTY_RING && vmm->ring)
				(void)sl_dirty_kvm_ring_drain(vmm->ring, v->idx);
			pthread_mutex_lock(&vmm->lock);
			if (vmm->quit) {
				pthread_mutex_unlock(&vmm->lock);
				return NULL;
			}
			park(v);
			if (vmm->quit) {
				pthread_mutex_unlock(&vmm->lock);
				return NULL;
			}
			__atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
			pthread_mutex_unlock(&vmm->lock);
			continue;
		}
		pthread_mutex_unlock(&vmm->lock);

		int ret = sl_sys_ioctl(vmm->sys, v->fd, KVM_RUN, NULL);
		atomic_fetch_add_explicit(&vmm->st_exits, 1, memory_order_relaxed);
		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret < 0) {
			pthread_mutex_lock(&vmm->lock);
			sl_err(&vmm->err, ret, "vmm: vCPU %u: KVM_RUN: %s", v->idx, strerror(-ret));
			pthread_mutex_unlock(&vmm->lock);
			vmm_log(vmm, SL_LOG_ERR, "vmm: vCPU %u: KVM_RUN: %s", v->idx, strerror(-ret));
			finish(v, false);
			return NULL;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			ret = handle_io(v);
			if (ret < 0) {
				pthread_mutex_lock(&vmm->lock);
				sl_err(&vmm->err, ret, "vmm: vCPU %u: draining the dirty ring: %s", v->idx,
				       strerror(-ret));
				pthread_mutex_unlock(&vmm->lock);
				finish(v, false);
				return NULL;
			}
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_MMIO:
			if (vmm_mmio_to_ram(vmm, run) == 0)
				break;
			pthread_mutex_lock(&vmm->lock);
			sl_err(&vmm->err, -EFAULT, "vmm: vCPU %u: access to 0x%llx outside RAM", v->idx,
			       (unsigned long long)run->mmio.phys_addr);
			pthread_mutex_unlock(&vmm->lock);
			finish(v, false);
			return NULL;
		case KVM_EXIT_HLT:
			vmm_log(vmm, SL_LOG_INFO, "vmm: vCPU %u halted", v->idx);
			finish(v, true);
			return NULL;
		case KVM_EXIT_DIRTY_RING_FULL:
			atomic_fetch_add_explicit(&vmm->st_ring_full, 1, memory_order_relaxed);
			ret = vmm->ring ? sl_dirty_kvm_ring_drain(vmm->ring, v->idx) : -ENXIO;
			/* KVM says full but nothing is there to harvest: entries
			 * were overwritten (the ring was overrun) and KVM's and
			 * our indices no longer meet. Say so instead of spinning. */
			if (ret == 0 && ++v->empty_drains >= 1000)
				ret = -EOVERFLOW;
			else if (ret > 0)
				v->empty_drains = 0;
			if (ret < 0) {
				pthread_mutex_lock(&vmm->lock);
				sl_err(&vmm->err, ret, "vmm: vCPU %u: draining a full dirty ring: %s",
				       v->idx, strerror(-ret));
				pthread_mutex_unlock(&vmm->lock);
				finish(v, false);
				return NULL;
			}
			atomic_fetch_add_explicit(&vmm->st_ring_drained, (uint64_t)ret,
						  memory_order_relaxed);
			break;
		default:
			pthread_mutex_lock(&vmm->lock);
			sl_err(&vmm->err, -EIO, "vmm: vCPU %u: unexpected exit reason %u", v->idx,
			       run->exit_reason);
			pthread_mutex_unlock(&vmm->lock);
			vmm_log(vmm, SL_LOG_ERR, "vmm: vCPU %u: unexpected exit reason %u", v->idx,
				run->exit_reason);
			finish(v, false);
			return NULL;
		}
	}
}

static void kick_all(struct sl_vmm *vmm)
{
	for (unsigned i = 0; i < vmm->nvcpus; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];
		if (!v->thread_started)
			continue;
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thread, vmm->cfg.kick_signal);
		atomic_fetch_add_explicit(&vmm->st_kicks, 1, memory_order_relaxed);
	}
}

int vmm_threads_start(struct sl_vmm *vmm)
{
	sigset_t set, old;
	int ret = install_kick_handler(vmm->cfg.kick_signal);

	if (ret < 0)
		return sl_err(&vmm->err, ret, "vmm: installing the kick signal handler: %s",
			      strerror(-ret));
	/* Threads inherit this mask; each unblocks the kick signal itself. */
	sigfillset(&set);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	for (unsigned i = 0; i < vmm->nvcpus; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		ret = -pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (ret < 0)
			break;
		v->thread_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret < 0)
		return sl_err(&vmm->err, ret, "vmm: starting vCPU threads: %s", strerror(-ret));
	return 0;
}

void vmm_threads_quit(struct sl_vmm *vmm)
{
	if (!vmm->vcpus)
		return;
	pthread_mutex_lock(&vmm->lock);
	vmm->quit = true;
	pthread_cond_broadcast(&vmm->cond);
	pthread_mutex_unlock(&vmm->lock);
	kick_all(vmm);
	for (unsigned i = 0; i < vmm->nvcpus; i++) {
		struct vmm_vcpu *v = &vmm->vcpus[i];
		if (v->thread_started) {
			pthread_join(v->thread, NULL);
			v->thread_started = false;
		}
	}
}

SL_EXPORT int sl_vmm_start(struct sl_vmm *vmm)
{
	int ret;

	if (!vmm)
		return -EINVAL;
	pthread_mutex_lock(&vmm->lock);
	if (vmm->started) {
		pthread_mutex_unlock(&vmm->lock);
		return -EALREADY;
	}
	if (vmm->cfg.incoming && !vmm->state_loaded) {
		pthread_mutex_unlock(&vmm->lock);
		return sl_err(&vmm->err, -EINVAL, "vmm: incoming VM started before restore_state");
	}
	vmm->started = true;
	vmm->stop_req = false;
	pthread_mutex_unlock(&vmm->lock);
	ret = vmm_threads_start(vmm);
	if (ret < 0)
		vmm_threads_quit(vmm);
	return ret;
}

SL_EXPORT int sl_vmm_stop(struct sl_vmm *vmm)
{
	if (!vmm)
		return -EINVAL;
	pthread_mutex_lock(&vmm->lock);
	if (!vmm->started) {
		pthread_mutex_unlock(&vmm->lock);
		return 0; /* nothing runs */
	}
	vmm->stop_req = true;
	pthread_cond_broadcast(&vmm->cond); /* wakes vCPUs sleeping for the rate limit */
	pthread_mutex_unlock(&vmm->lock);
	for (;;) {
		kick_all(vmm);
		pthread_mutex_lock(&vmm->lock);
		/* Re-kick every 10 ms: a vCPU can only miss the first kick if it
		 * was between the check and KVM_RUN, which immediate_exit
		 * covers, but a retry costs nothing and bounds any surprise. */
		struct timespec ts;
		timespec_at(&ts, sl_now_ns() + 10000000ull);
		while (vmm->parked < vmm->nvcpus) {
			if (pthread_cond_timedwait(&vmm->cond, &vmm->lock, &ts) == ETIMEDOUT)
				break;
		}
		bool all = vmm->parked == vmm->nvcpus;
		pthread_mutex_unlock(&vmm->lock);
		if (all)
			return 0;
	}
}

SL_EXPORT int sl_vmm_resume(struct sl_vmm *vmm)
{
	if (!vmm)
		return -EINVAL;
	pthread_mutex_lock(&vmm->lock);
	if (!vmm->started) {
		pthread_mutex_unlock(&vmm->lock);
		return sl_err(&vmm->err, -EINVAL, "vmm: resume before start");
	}
	vmm->stop_req = false;
	pthread_cond_broadcast(&vmm->cond);
	pthread_mutex_unlock(&vmm->lock);
	return 0;
}

SL_EXPORT bool sl_vmm_is_stopped(const struct sl_vmm *vmm)
{
	struct sl_vmm *m = (struct sl_vmm *)vmm;
	bool stopped;

	if (!m)
		return true;
	pthread_mutex_lock(&m->lock);
	stopped = !m->started || (m->stop_req && m->parked == m->nvcpus);
	pthread_mutex_unlock(&m->lock);
	return stopped;
}
