/* SPDX-License-Identifier: MIT */
/*
 * test_vmm.c — the mini-VMM on real KVM: the guest runs and its pass
 * counter advances; stop parks every vCPU (nothing changes while stopped)
 * and resume continues; vCPU state + memory move to a second VM that
 * continues the guest with consistent page records; the dirty-rate limit
 * slows the guest; a dirty ring that fills is drained by the vCPU loop;
 * the verifier catches stale, misplaced and torn pages; each KVM dirty
 * source reports exactly the pages a one-pass guest wrote; kernel failures
 * injected through the sl_sys seam come back as clear errors; touch dirties
 * exactly the pages asked, above 4 GiB too. Skips (77) only without /dev/kvm.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

#include <cmocka.h>

#include "sl_dirty.h"
#include "sl_vmm.h"

#define MIB (1ull << 20)

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static struct sl_vmm_config base_cfg(uint64_t mem, unsigned nvcpus)
{
	struct sl_vmm_config c = {
		.size = sizeof(c),
		.mem_bytes = mem,
		.nvcpus = nvcpus,
		.dirty_mode = SL_VMM_DIRTY_BITMAP,
		.work = { .wss_start = 2 * MIB, .wss_bytes = 8 * MIB, .pattern = SL_GUEST_SEQUENTIAL },
	};
	return c;
}

static struct sl_vmm *new_vmm(const struct sl_vmm_config *c)
{
	struct sl_errbuf eb = { { 0 } };
	struct sl_vmm *vmm = NULL;
	int ret = sl_vmm_new(c, &vmm, &eb);
	if (ret < 0)
		fprintf(stderr, "sl_vmm_new: %d %s\n", ret, eb.msg);
	assert_int_equal(ret, 0);
	assert_non_null(vmm);
	return vmm;
}

/* Waits until the guest completed `target` passes; fails after timeout. */
static void wait_passes(struct sl_vmm *vmm, uint64_t target, unsigned timeout_ms)
{
	uint64_t t0 = sl_now_ns();
	while (sl_vmm_guest_passes(vmm) < target) {
		if (sl_now_ns() - t0 > timeout_ms * 1000000ull) {
			struct sl_vmm_stats st;
			sl_vmm_get_stats(vmm, &st);
			fprintf(stderr, "timeout: passes %llu < %llu (exits %llu, guest error %u, %s)\n",
				(unsigned long long)sl_vmm_guest_passes(vmm), (unsigned long long)target,
				(unsigned long long)st.exits, st.guest_error, sl_vmm_last_error(vmm));
			fail();
		}
		sleep_ms(1);
	}
}

static void assert_consistent(struct sl_vmm *vmm, uint32_t min_pass)
{
	struct sl_vmm_verify v;
	int ret = sl_vmm_verify(vmm, &v);
	if (ret)
		fprintf(stderr, "verify: %d: %s\n", ret, v.why);
	assert_int_equal(ret, 0);
	assert_int_equal(v.bad_pages, 0);
	assert_true(v.pass_min >= min_pass);
}

static void test_guest_runs(void **state)
{
	(void)state;
	struct sl_vmm_config c = base_cfg(32 * MIB, 1);
	struct sl_vmm *vmm = new_vmm(&c);

	assert_int_equal(sl_vmm_guest_passes(vmm), 0);
	assert_int_equal(sl_vmm_start(vmm), 0);
	assert_int_equal(sl_vmm_start(vmm), -EALREADY);
	wait_passes(vmm, 3, 10000);
	assert_int_equal(sl_vmm_stop(vmm), 0);
	assert_true(sl_vmm_is_stopped(vmm));

	struct sl_vmm_stats st;
	sl_vmm_get_stats(vmm, &st);
	assert_int_equal(st.guest_error, 0);
	assert_true(st.pass_exits >= 3);
	/* 8 MiB = 2048 pages per pass, reported every 256. */
	assert_true(st.progress_pages >= 3 * 2048);
	assert_consistent(vmm, 3);
	sl_vmm_free(&vmm);
	assert_null(vmm);
}

static void test_guest_multi_vcpu_patterns(void **state)
{
	(void)state;
	static const enum sl_guest_pattern pats[] = { SL_GUEST_RANDOM, SL_GUEST_STRIDE };
	for (size_t i = 0; i < 2; i++) {
		struct sl_vmm_config c = base_cfg(32 * MIB, 3);
		c.work.pattern = pats[i];
		c.work.stride_pages = 7;
		c.work.seed = 42;
		struct sl_vmm *vmm = new_vmm(&c);
		assert_int_equal(sl_vmm_start(vmm), 0);
		wait_passes(vmm, 2, 10000);
		assert_int_equal(sl_vmm_stop(vmm), 0);
		assert_consistent(vmm, 2);
		sl_vmm_free(&vmm);
	}
}

static void test_guest_max_passes_halts(void **state)
{
	(void)state;
	struct sl_vmm_config c = base_cfg(16 * MIB, 2);
	c.work.max_passes = 4;
	struct sl_vmm *vmm = new_vmm(&c);
	assert_int_equal(sl_vmm_start(vmm), 0);
	wait_passes(vmm, 4, 10000);
	struct sl_vmm_stats st;
	uint64_t t0 = sl_now_ns();
	do {
		sleep_ms(1);
		sl_vmm_get_stats(vmm, &st);
	} while (st.halted_vcpus < 2 && sl_now_ns() - t0 < 5000000000ull);
	assert_int_equal(st.halted_vcpus, 2);
	assert_int_equal(sl_vmm_guest_passes(vmm), 4);
	assert_int_equal(sl_vmm_stop(vmm), 0); /* halted vCPUs count as parked */
	struct sl_vmm_verify v;
	assert_int_equal(sl_vmm_verify(vmm, &v), 0);
	assert_int_equal(v.pass_min, 4);
	assert_int_equal(v.pass_max, 4);
	sl_vmm_free(&vmm);
}

static void test_stop_resume(void **state)
{
	(void)state;
	struct sl_vmm_config c = base_cfg(32 * MIB, 2);
	struct sl_vmm *vmm = new_vmm(&c);
	void *mem;
	uint64_t len;

	assert_int_equal(sl_vmm_mem(vmm, &mem, &len), 0);
	assert_int_equal(len, 32 * MIB);
	assert_int_equal(sl_vmm_start(vmm), 0);
	wait_passes(vmm, 1, 10000);

	for (int round = 0; round < 3; round++) {
		assert_int_equal(sl_vmm_stop(vmm), 0);
		assert_int_equal(sl_vmm_stop(vmm), 0); /* idempotent */
		/* Parked: neither the status block nor any page changes. */
		uint8_t *snap = malloc(len);
		assert_non_null(snap);
		memcpy(snap, mem, len);
		struct sl_vmm_stats a, b;
		sl_vmm_get_stats(vmm, &a);
		sleep_ms(50);
		sl_vmm_get_stats(vmm, &b);
		assert_memory_equal(snap, mem, len);
		assert_int_equal(a.progress_pages, b.progress_pages);
		free(snap);
		assert_consistent(vmm, 1);

		uint64_t p = sl_vmm_guest_passes(vmm);
		assert_int_equal(sl_vmm_resume(vmm), 0);
		wait_passes(vmm, p + 1, 10000);
	}
	sl_vmm_free(&vmm); /* frees while running: joins the threads */
}

/* Source runs, stops; state + memory go to an incoming VM that continues. */
static void migrate_and_continue(enum sl_vmm_dirty_mode mode, unsigned nvcpus,
				 enum sl_guest_pattern pat)
{
	struct sl_vmm_config c = base_cfg(32 * MIB, nvcpus);
	c.dirty_mode = mode;
	c.work.pattern = pat;
	c.work.seed = 7;
	struct sl_vmm *src = new_vmm(&c);
	assert_int_equal(sl_vmm_start(src), 0);
	wait_passes(src, 2, 10000);
	assert_int_equal(sl_vmm_stop(src), 0);

	void *blob = NULL;
	size_t blen = 0;
	assert_int_equal(sl_vmm_save_state(src, &blob, &blen), 0);
	assert_non_null(blob);
	void *smem, *dmem;
	uint64_t slen, dlen;
	assert_int_equal(sl_vmm_mem(src, &smem, &slen), 0);
	uint64_t src_passes = sl_vmm_guest_passes(src);

	struct sl_vmm_config d = base_cfg(32 * MIB, nvcpus);
	d.dirty_mode = SL_VMM_DIRTY_NONE;
	d.incoming = true;
	struct sl_vmm *dst = new_vmm(&d);
	assert_int_equal(sl_vmm_start(dst), -EINVAL); /* no state yet */
	assert_int_equal(sl_vmm_mem(dst, &dmem, &dlen), 0);
	assert_int_equal(dlen, slen);
	memcpy(dmem, smem, slen);
	assert_int_equal(sl_vmm_restore_state(dst, blob, blen), 0);
	assert_consistent(dst, 2);
	assert_int_equal(sl_vmm_guest_passes(dst), src_passes);

	/* The source stays parked; only the destination runs now. */
	assert_int_equal(sl_vmm_start(dst), 0);
	wait_passes(dst, src_passes + 2, 10000);
	assert_int_equal(sl_vmm_stop(dst), 0);
	assert_consistent(dst, (uint32_t)src_passes + 2);
	assert_int_equal(sl_vmm_guest_passes(src), src_passes);

	/* And the round trip of the state itself: save on dst, the blob has
	 * the same shape. */
	void *blob2 = NULL;
	size_t blen2 = 0;
	assert_int_equal(sl_vmm_save_state(dst, &blob2, &blen2), 0);
	assert_int_equal(blen2, blen);
	free(blob2);
	free(blob);
	sl_vmm_free(&dst);
	sl_vmm_free(&src);
}

static void test_migrate_bitmap(void **state)
{
	(void)state;
	migrate_and_continue(SL_VMM_DIRTY_BITMAP, 1, SL_GUEST_SEQUENTIAL);
}

static void test_migrate_manual_multi(void **state)
{
	(void)state;
	migrate_and_continue(SL_VMM_DIRTY_BITMAP_MANUAL, 2, SL_GUEST_RANDOM);
}

static void test_migrate_ring(void **state)
{
	(void)state;
	migrate_and_continue(SL_VMM_DIRTY_RING, 2, SL_GUEST_STRIDE);
}

/* Page writes the guest makes in `ms` of running. */
static uint64_t pages_in(uint64_t limit, unsigned ms)
{
	struct sl_vmm_config c = base_cfg(32 * MIB, 1);
	c.dirty_rate_limit = limit;
	c.work.report_pages = 64;
	struct sl_vmm *vmm = new_vmm(&c);
	struct sl_vmm_stats st;
	assert_int_equal(sl_vmm_start(vmm), 0);
	sleep_ms(ms);
	assert_int_equal(sl_vmm_stop(vmm), 0);
	sl_vmm_get_stats(vmm, &st);
	sl_vmm_free(&vmm);
	return st.progress_pages;
}

static void test_rate_limit(void **state)
{
	(void)state;
	uint64_t unlimited = pages_in(0, 300);
	uint64_t limited = pages_in(500, 300); /* ~150 + the first report */
	fprintf(stderr, "rate: unlimited %llu pages, limited(500/s) %llu pages in 300 ms\n",
		(unsigned long long)unlimited, (unsigned long long)limited);
	assert_true(limited > 0);
	assert_true(limited * 4 < unlimited);
	/* Never above the budget by more than the first report plus one. */
	assert_true(limited <= 500 * 300 / 1000 + 2 * 64 + 64);
}

/* A small ring (1024 entries; a pass writes 2048 pages) keeps the guest
 * running only if the vCPU loop drains it (on progress exits and on
 * KVM_EXIT_DIRTY_RING_FULL); the pages stay consistent. */
static void test_small_dirty_ring_is_drained(void **state)
{
	(void)state;
	struct sl_vmm_config c = base_cfg(32 * MIB, 1);
	c.dirty_mode = SL_VMM_DIRTY_RING;
	c.ring_entries = 1024;
	struct sl_vmm *vmm = new_vmm(&c);
	struct sl_vmm_info info;
	assert_int_equal(sl_vmm_get_info(vmm, &info), 0);
	assert_non_null(info.ring);
	assert_ptr_equal(info.ring, sl_vmm_dirty_ring(vmm));
	assert_int_equal(info.ring_entries, 1024);
	assert_int_equal(sl_vmm_start(vmm), 0);
	wait_passes(vmm, 3, 15000);
	assert_int_equal(sl_vmm_stop(vmm), 0);
	struct sl_vmm_stats st;
	sl_vmm_get_stats(vmm, &st);
	/* 3 passes of 2048 pages went through a 1024-entry ring. */
	assert_true(st.ring_drained >= 3 * 2048);
	assert_consistent(vmm, 3);
	sl_vmm_free(&vmm);
}

/* The guest writes a known set of pages (one pass over 4 MiB at 4 MiB, then
 * halts); each KVM source reports exactly that set above 2 MiB (below it:
 * only the guest's stack and status pages); once the guest is idle, the
 * next sync (after a clear, for manual protect) is empty. */
static void known_pages(enum sl_vmm_dirty_mode mode)
{
	const uint64_t ws0 = 4 * MIB / 4096, wsn = 4 * MIB / 4096;
	struct sl_vmm_config c = base_cfg(16 * MIB, 1);
	c.dirty_mode = mode;
	c.work.wss_start = ws0 * 4096;
	c.work.wss_bytes = wsn * 4096;
	c.work.pattern = SL_GUEST_RANDOM;
	c.work.max_passes = 1;
	struct sl_vmm *vmm = new_vmm(&c);
	struct sl_vmm_info info;
	struct sl_errbuf eb = { { 0 } };
	struct sl_dirty_source *src = NULL;
	assert_int_equal(sl_vmm_get_info(vmm, &info), 0);
	uint64_t npages = info.slots[0].npages;
	if (mode == SL_VMM_DIRTY_RING) {
		struct sl_dirty_kvm_ring_config rc = {
			.size = sizeof(rc), .ring = info.ring, .slot = info.slots[0].id, .npages = npages };
		assert_int_equal(sl_dirty_kvm_ring_new(&rc, &src, &eb), 0);
	} else {
		struct sl_dirty_kvm_bitmap_config kc = {
			.size = sizeof(kc), .vm_fd = info.vm_fd, .slot = info.slots[0].id,
			.npages = npages, .manual_protect = mode == SL_VMM_DIRTY_BITMAP_MANUAL };
		assert_int_equal(sl_dirty_kvm_bitmap_new(&kc, &src, &eb), 0);
	}
	assert_int_equal(sl_dirty_start(src), 0);
	assert_int_equal(sl_vmm_start(vmm), 0);
	wait_passes(vmm, 1, 10000);
	struct sl_vmm_stats st;
	uint64_t t0 = sl_now_ns();
	do {
		sleep_ms(1);
		sl_vmm_get_stats(vmm, &st);
	} while (st.halted_vcpus < 1 && sl_now_ns() - t0 < 5000000000ull);
	assert_int_equal(st.halted_vcpus, 1);
	assert_int_equal(sl_vmm_stop(vmm), 0);

	uint64_t words = (npages + 63) / 64;
	uint64_t *bm = calloc(words, 8);
	assert_non_null(bm);
	int64_t n = sl_dirty_sync(src, bm);
	assert_true(n >= (int64_t)wsn);
	uint64_t low = 0;
	for (uint64_t p = 0; p < npages; p++) {
		bool dirty = bm[p / 64] >> (p % 64) & 1;
		if (p < 2 * MIB / 4096) {
			low += dirty;
			continue;
		}
		if (dirty != (p >= ws0 && p < ws0 + wsn))
			fail_msg("page %llu dirty=%d", (unsigned long long)p, dirty);
	}
	/* Below 2 MiB the guest writes only its status page and its stack. */
	assert_true(bm[SL_GUEST_STATUS_GPA / 4096 / 64] >> (SL_GUEST_STATUS_GPA / 4096 % 64) & 1);
	assert_true(low >= 2 && low <= 3);
	assert_int_equal(n, (int64_t)(wsn + low));

	if (mode == SL_VMM_DIRTY_BITMAP_MANUAL)
		assert_int_equal(sl_dirty_clear(src, 0, npages), 0);
	memset(bm, 0, words * 8);
	assert_int_equal(sl_dirty_sync(src, bm), 0); /* idle guest: nothing new */
	for (uint64_t w = 0; w < words; w++)
		assert_int_equal(bm[w], 0);
	free(bm);
	sl_dirty_free(&src);
	sl_vmm_free(&vmm);
}

static void test_known_pages_bitmap(void **state)
{
	(void)state;
	known_pages(SL_VMM_DIRTY_BITMAP);
}

static void test_known_pages_manual(void **state)
{
	(void)state;
	known_pages(SL_VMM_DIRTY_BITMAP_MANUAL);
}

static void test_known_pages_ring(void **state)
{
	(void)state;
	known_pages(SL_VMM_DIRTY_RING);
}

/* Kernel failures, injected through the sl_sys seam on top of real KVM:
 * each makes sl_vmm_new fail with that errno and a message naming the call,
 * and frees what it had built (ASan checks the leaks). */
struct inject {
	const struct sl_sys *real;
	unsigned long req;   /* ioctl to fail (0 = none) */
	long arg;            /* only when the ioctl's arg equals this (-1 = any) */
	int err;
	bool fail_open, fail_mmap;
};

static int inj_open(void *ctx, const char *path, int flags, mode_t mode)
{
	struct inject *in = ctx;
	if (in->fail_open) {
		errno = ENOENT;
		return -1;
	}
	return in->real->open(in->real->ctx, path, flags, mode);
}

static int inj_close(void *ctx, int fd)
{
	struct inject *in = ctx;
	return in->real->close(in->real->ctx, fd);
}

static int inj_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct inject *in = ctx;
	if (req == in->req && (in->arg == -1 || (long)(uintptr_t)arg == in->arg)) {
		if (req == KVM_CHECK_EXTENSION)
			return 0; /* "not supported" */
		errno = in->err;
		return -1;
	}
	return in->real->ioctl(in->real->ctx, fd, req, arg);
}

static void *inj_mmap(void *ctx, void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct inject *in = ctx;
	if (in->fail_mmap && fd < 0) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return in->real->mmap(in->real->ctx, addr, len, prot, flags, fd, off);
}

static int inj_munmap(void *ctx, void *addr, size_t len)
{
	struct inject *in = ctx;
	return in->real->munmap(in->real->ctx, addr, len);
}

static void expect_failure(struct inject *in, enum sl_vmm_dirty_mode mode, int err, const char *what)
{
	struct sl_sys sys = *sl_sys_default();
	sys.ctx = in;
	sys.open = inj_open;
	sys.close = inj_close;
	sys.ioctl = inj_ioctl;
	sys.mmap = inj_mmap;
	sys.munmap = inj_munmap;
	in->real = sl_sys_default();
	struct sl_vmm_config c = base_cfg(32 * MIB, 2);
	c.sys = &sys;
	c.dirty_mode = mode;
	struct sl_errbuf eb = { { 0 } };
	struct sl_vmm *vmm = (struct sl_vmm *)0x1;
	int ret = sl_vmm_new(&c, &vmm, &eb);
	if (ret != err || !strstr(eb.msg, what))
		fail_msg("want %d '%s', got %d '%s'", err, what, ret, eb.msg);
	assert_null(vmm);
}

static void test_kernel_failures(void **state)
{
	(void)state;
	struct inject in;

	in = (struct inject){ .fail_open = true };
	expect_failure(&in, SL_VMM_DIRTY_BITMAP, -ENODEV, "/dev/kvm");
	in = (struct inject){ .req = KVM_CREATE_VM, .arg = -1, .err = EMFILE };
	expect_failure(&in, SL_VMM_DIRTY_BITMAP, -EMFILE, "KVM_CREATE_VM");
	in = (struct inject){ .fail_mmap = true };
	expect_failure(&in, SL_VMM_DIRTY_BITMAP, -ENOMEM, "guest RAM");
	in = (struct inject){ .req = KVM_SET_USER_MEMORY_REGION, .arg = -1, .err = EEXIST };
	expect_failure(&in, SL_VMM_DIRTY_BITMAP, -EEXIST, "memslot 0");
	in = (struct inject){ .req = KVM_CREATE_VCPU, .arg = 1, .err = EINVAL };
	expect_failure(&in, SL_VMM_DIRTY_BITMAP, -EINVAL, "KVM_CREATE_VCPU 1");
	in = (struct inject){ .req = KVM_SET_CPUID2, .arg = -1, .err = E2BIG };
	expect_failure(&in, SL_VMM_DIRTY_BITMAP, -E2BIG, "KVM_SET_CPUID2");
	in = (struct inject){ .req = KVM_SET_SREGS, .arg = -1, .err = EFAULT };
	expect_failure(&in, SL_VMM_DIRTY_BITMAP, -EFAULT, "KVM_SET_SREGS");
	in = (struct inject){ .req = KVM_CHECK_EXTENSION, .arg = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };
	expect_failure(&in, SL_VMM_DIRTY_BITMAP_MANUAL, -EOPNOTSUPP, "MANUAL_DIRTY_LOG_PROTECT2");
	/* No dirty ring capability at all. */
	in = (struct inject){ .req = KVM_CHECK_EXTENSION, .arg = -1 };
	expect_failure(&in, SL_VMM_DIRTY_RING, -EOPNOTSUPP, "dirty ring");
	in = (struct inject){ .req = KVM_ENABLE_CAP, .arg = -1, .err = EINVAL };
	expect_failure(&in, SL_VMM_DIRTY_RING, -EINVAL, "enabling the dirty ring");
}

static void test_info_slots(void **state)
{
	(void)state;
	struct sl_vmm_config c = base_cfg(48 * MIB, 2);
	c.slot_bytes = 16 * MIB;
	c.dirty_mode = SL_VMM_DIRTY_BITMAP_MANUAL;
	struct sl_vmm *vmm = new_vmm(&c);
	struct sl_vmm_info info;
	void *mem;
	uint64_t len;
	assert_int_equal(sl_vmm_get_info(vmm, &info), 0);
	assert_int_equal(sl_vmm_mem(vmm, &mem, &len), 0);
	assert_true(info.vm_fd >= 0);
	assert_int_equal(info.nvcpus, 2);
	assert_true(info.vcpu_fds[0] >= 0 && info.vcpu_fds[1] >= 0);
	assert_int_equal(info.nslots, 3);
	assert_true(info.manual_protect);
	assert_false(info.initially_set);
	assert_null(info.ring);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(info.slots[i].id, i);
		assert_int_equal(info.slots[i].gpa, i * 16 * MIB);
		assert_int_equal(info.slots[i].npages, 16 * MIB / 4096);
		assert_ptr_equal(info.slots[i].host, (uint8_t *)mem + i * 16 * MIB);
	}
	sl_vmm_free(&vmm);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct sl_vmm *vmm = (struct sl_vmm *)0x1;
	struct sl_errbuf eb;
	struct sl_vmm_config c;

	c = base_cfg(32 * MIB + 4096, 1);
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -EINVAL);
	assert_null(vmm);
	c = base_cfg(32 * MIB, 0);
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -EINVAL);
	c = base_cfg(32 * MIB, SL_GUEST_MAX_VCPUS + 1);
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -EINVAL);
	c = base_cfg(32 * MIB, 1);
	c.work.wss_start = 1 * MIB; /* would overwrite the guest image */
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -EINVAL);
	c = base_cfg(32 * MIB, 1);
	c.work.wss_bytes = 31 * MIB; /* past the end of RAM */
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -EINVAL);
	c = base_cfg(32 * MIB, 1);
	c.dirty_mode = SL_VMM_DIRTY_RING;
	c.ring_entries = 1000;
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -EINVAL);
	c = base_cfg(32 * MIB, 1);
	c.initially_set = true;
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -EINVAL);
	c = base_cfg(32 * MIB, 1);
	c.size = 8;
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -EINVAL);
	c = base_cfg(32 * MIB, 1);
	static const uint8_t junk[64] = { 0x7f, 'E', 'L', 'F' };
	c.guest_elf = junk;
	c.guest_elf_len = sizeof(junk);
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -ENOEXEC);
	c = base_cfg(32 * MIB, 1);
	c.guest_path = "/nonexistent/guest.elf";
	assert_int_equal(sl_vmm_new(&c, &vmm, &eb), -ENOENT);

	/* Malformed state blobs. */
	c = base_cfg(32 * MIB, 1);
	c.incoming = true;
	vmm = new_vmm(&c);
	uint8_t bad[64] = { 0 };
	assert_int_equal(sl_vmm_restore_state(vmm, bad, sizeof(bad)), -EINVAL);
	assert_int_equal(sl_vmm_restore_state(vmm, bad, 3), -EINVAL);
	void *blob;
	size_t blen;
	assert_int_equal(sl_vmm_save_state(vmm, &blob, &blen), 0);
	assert_int_equal(sl_vmm_restore_state(vmm, blob, blen - 1), -EINVAL);
	struct sl_vmm_config c2 = base_cfg(32 * MIB, 2);
	c2.incoming = true;
	struct sl_vmm *two = new_vmm(&c2);
	assert_int_equal(sl_vmm_restore_state(two, blob, blen), -EINVAL); /* vCPU count */
	free(blob);
	sl_vmm_free(&two);
	assert_int_equal(sl_vmm_resume(vmm), -EINVAL); /* never started */
	sl_vmm_free(&vmm);
	sl_vmm_free(&vmm); /* NULL-safe */
}

static void test_verify_detects_damage(void **state)
{
	(void)state;
	struct sl_vmm_config c = base_cfg(32 * MIB, 2);
	c.work.pattern = SL_GUEST_RANDOM;
	struct sl_vmm *vmm = new_vmm(&c);
	assert_int_equal(sl_vmm_start(vmm), 0);
	wait_passes(vmm, 3, 10000);
	assert_int_equal(sl_vmm_stop(vmm), 0);
	void *mem;
	uint64_t len;
	assert_int_equal(sl_vmm_mem(vmm, &mem, &len), 0);
	uint8_t *img = malloc(len);
	assert_non_null(img);
	struct sl_vmm_verify v;
	uint32_t *page;
	const uint64_t victim = 2 * MIB / 4096 + 100;

	/* A page two passes stale (as if one send was lost). */
	memcpy(img, mem, len);
	assert_int_equal(sl_vmm_verify_image(img, len, &v), 0);
	page = (uint32_t *)(img + victim * 4096);
	page[1] -= 2;
	page[1023] -= 2;
	assert_int_equal(sl_vmm_verify_image(img, len, &v), -EBADMSG);
	assert_int_equal(v.first_bad, victim);
	/* A page placed at the wrong address. */
	memcpy(img, mem, len);
	memcpy(img + victim * 4096, img + (victim + 1) * 4096, 4096);
	assert_int_equal(sl_vmm_verify_image(img, len, &v), -EBADMSG);
	/* A torn page. */
	memcpy(img, mem, len);
	page = (uint32_t *)(img + victim * 4096);
	page[1023] += 1;
	assert_int_equal(sl_vmm_verify_image(img, len, &v), -EBADMSG);
	assert_int_equal(v.first_bad, victim);
	/* Half-written (start word new, end word old) away from the point
	 * where the writer stopped. */
	memcpy(img, mem, len);
	page = (uint32_t *)(img + victim * 4096);
	page[1023] -= 1;
	assert_int_equal(sl_vmm_verify_image(img, len, &v), -EBADMSG);
	/* No parameter block. */
	memset(img + SL_GUEST_PARAM_GPA, 0, 64);
	assert_int_equal(sl_vmm_verify_image(img, len, &v), -EBADMSG);
	free(img);
	sl_vmm_free(&vmm);
}

/* 6 GiB VM (lazily mapped): touch every 512th page from 1 GiB + 1 page to
 * 6 GiB, then the KVM dirty log must show exactly those pages. (+1 page: the
 * stride then misses 0xfee00000, the xAPIC page KVM turns into MMIO exits
 * that the VMM completes itself, unlogged.) */
static void test_touch_above_4g(void **state)
{
	(void)state;
	const uint64_t gib = 1ull << 30;
	struct sl_vmm_config c = base_cfg(6 * gib, 1);
	c.incoming = true;
	struct sl_vmm *vmm = new_vmm(&c);
	struct sl_vmm_info info;
	assert_int_equal(sl_vmm_get_info(vmm, &info), 0);
	uint64_t npages = info.slots[0].npages;
	uint64_t words = (npages + 63) / 64;
	uint64_t *bm = calloc(words, 8);
	assert_non_null(bm);
	struct kvm_dirty_log dl = { .slot = 0, .dirty_bitmap = bm };
	assert_int_equal(ioctl(info.vm_fd, KVM_GET_DIRTY_LOG, &dl), 0); /* start clean */

	const uint64_t first = gib / 4096 + 1, n = 5 * gib / 4096 - 1, stride = 512;
	assert_int_equal(sl_vmm_touch(vmm, first, n, stride), (int64_t)((n + stride - 1) / stride));
	memset(bm, 0, words * 8);
	assert_int_equal(ioctl(info.vm_fd, KVM_GET_DIRTY_LOG, &dl), 0);
	uint64_t found = 0, wrong = 0;
	for (uint64_t p = 0; p < npages; p++) {
		if (!(bm[p / 64] >> (p % 64) & 1))
			continue;
		found++;
		if (p < first || p >= first + n || (p - first) % stride)
			wrong++;
	}
	assert_int_equal(wrong, 0);
	assert_int_equal(found, (n + stride - 1) / stride);
	assert_int_equal(sl_vmm_touch_first_page(vmm), 16 + 6);
	assert_int_equal(sl_vmm_touch(vmm, 0, 10, 1), -EINVAL); /* page tables live there */
	free(bm);
	sl_vmm_free(&vmm);
}

int main(void)
{
	if (access("/dev/kvm", F_OK) != 0) {
		fprintf(stderr, "skipped: /dev/kvm is missing\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_runs),
		cmocka_unit_test(test_guest_multi_vcpu_patterns),
		cmocka_unit_test(test_guest_max_passes_halts),
		cmocka_unit_test(test_stop_resume),
		cmocka_unit_test(test_migrate_bitmap),
		cmocka_unit_test(test_migrate_manual_multi),
		cmocka_unit_test(test_migrate_ring),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_small_dirty_ring_is_drained),
		cmocka_unit_test(test_known_pages_bitmap),
		cmocka_unit_test(test_known_pages_manual),
		cmocka_unit_test(test_known_pages_ring),
		cmocka_unit_test(test_kernel_failures),
		cmocka_unit_test(test_info_slots),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_verify_detects_damage),
		cmocka_unit_test(test_touch_above_4g),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
