/* SPDX-License-Identifier: MIT */
/*
 * test_kvm_dirty.c — the KVM dirty-log sources against real KVM.
 *
 * Each case builds a VM here: a memslot with KVM_MEM_LOG_DIRTY_PAGES over
 * anonymous memory, one vCPU in flat 32-bit protected mode (set up through
 * KVM_SET_SREGS, no firmware) running a few bytes of generated code at guest
 * page 0 that writes a known set of pages and HLTs. The code page is only
 * read, so the dirty set is exactly the pages written.
 * Exits 77 only when /dev/kvm is missing.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "sl_dirty.h"
#include "sl_kernel_compat.h"

#define SLOT 0
#define PAGE 4096u
#define MAX_VCPUS 2

struct vm {
	int kvm_fd, vm_fd;
	unsigned nvcpus;
	int vcpu_fd[MAX_VCPUS];
	struct kvm_run *run[MAX_VCPUS];
	size_t run_size;
	uint8_t *mem;
	uint64_t npages;
	struct sl_kvm_ring *ring;
	uint32_t ring_entries;
};

static void check(int ret, const char *what)
{
	if (ret < 0)
		fail_msg("%s: %s", what, strerror(errno));
}

static void vcpu_create(struct vm *vm, unsigned v);

/* manual: MANUAL_PROTECT2 with INITIALLY_SET; ring_entries: dirty ring on. */
static void vm_create_n(struct vm *vm, uint64_t npages, bool manual, uint32_t ring_entries,
			unsigned nvcpus)
{
	struct kvm_userspace_memory_region mr;
	struct sl_errbuf eb;

	assert_true(nvcpus >= 1 && nvcpus <= MAX_VCPUS);
	memset(vm, 0, sizeof(*vm));
	vm->npages = npages;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	check(vm->kvm_fd, "open /dev/kvm");
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	check(vm->vm_fd, "KVM_CREATE_VM");
	check(ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul), "KVM_SET_TSS_ADDR");
	if (ring_entries) {
		struct kvm_enable_cap cap;
		int max = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
		uint32_t capnr = KVM_CAP_DIRTY_LOG_RING_ACQ_REL;

		if (max <= 0) {
			capnr = KVM_CAP_DIRTY_LOG_RING;
			max = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
		}
		if (max <= 0)
			fail_msg("KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)");
		memset(&cap, 0, sizeof(cap));
		cap.cap = capnr;
		cap.args[0] = ring_entries * sizeof(struct kvm_dirty_gfn);
		check(ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap), "KVM_ENABLE_CAP(DIRTY_LOG_RING)");
		vm->ring_entries = ring_entries;
	}
	if (manual)
		assert_int_equal(sl_kvm_enable_manual_protect(NULL, vm->vm_fd, true, &eb), 0);
	vm->mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	assert_true(vm->mem != MAP_FAILED);
	memset(&mr, 0, sizeof(mr));
	mr.slot = SLOT;
	mr.flags = KVM_MEM_LOG_DIRTY_PAGES;
	mr.guest_phys_addr = 0;
	mr.memory_size = npages * PAGE;
	mr.userspace_addr = (uintptr_t)vm->mem;
	check(ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr), "KVM_SET_USER_MEMORY_REGION");
	vm->nvcpus = nvcpus;
	for (unsigned v = 0; v < nvcpus; v++)
		vcpu_create(vm, v);

	if (ring_entries) {
		struct sl_kvm_ring_config rc = {
			.size = sizeof(rc), .vm_fd = vm->vm_fd, .nvcpus = vm->nvcpus, .vcpu_fds = vm->vcpu_fd,
			.ring_entries = ring_entries,
		};

		if (sl_kvm_ring_new(&rc, &vm->ring, &eb) < 0)
			fail_msg("%s", eb.msg);
	}
}

/* One vCPU in flat 32-bit protected mode. */
static void vcpu_create(struct vm *vm, unsigned v)
{
	struct kvm_sregs sregs;
	struct kvm_segment seg;
	int mmap_size;

	vm->vcpu_fd[v] = ioctl(vm->vm_fd, KVM_CREATE_VCPU, v);
	check(vm->vcpu_fd[v], "KVM_CREATE_VCPU");
	mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	check(mmap_size, "KVM_GET_VCPU_MMAP_SIZE");
	vm->run_size = (size_t)mmap_size;
	vm->run[v] = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd[v], 0);
	assert_true(vm->run[v] != MAP_FAILED);

	/* Flat 32-bit protected mode: 4 GiB code and data segments, no paging. */
	check(ioctl(vm->vcpu_fd[v], KVM_GET_SREGS, &sregs), "KVM_GET_SREGS");
	memset(&seg, 0, sizeof(seg));
	seg.base = 0;
	seg.limit = 0xffffffff;
	seg.present = 1;
	seg.s = 1;
	seg.db = 1;
	seg.g = 1;
	seg.selector = 0x10;
	seg.type = 3; /* data, read/write, accessed */
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
	seg.selector = 0x8;
	seg.type = 11; /* code, execute/read, accessed */
	sregs.cs = seg;
	/* A valid TR and an unusable LDT: without them VMX refuses the state
	 * and KVM would emulate every guest instruction instead of running it. */
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.limit = 0x67;
	sregs.tr.selector = 0x18;
	sregs.tr.type = 11; /* 32-bit busy TSS */
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.unusable = 1;
	sregs.cr0 |= 1; /* PE */
	check(ioctl(vm->vcpu_fd[v], KVM_SET_SREGS, &sregs), "KVM_SET_SREGS");
}

static void vm_create(struct vm *vm, uint64_t npages, bool manual, uint32_t ring_entries)
{
	vm_create_n(vm, npages, manual, ring_entries, 1);
}

static void vm_destroy(struct vm *vm)
{
	sl_kvm_ring_free(&vm->ring);
	for (unsigned v = 0; v < vm->nvcpus; v++) {
		munmap(vm->run[v], vm->run_size);
		close(vm->vcpu_fd[v]);
	}
	close(vm->vm_fd);
	close(vm->kvm_fd);
	munmap(vm->mem, vm->npages * PAGE);
}

/* Guest code at code_page: "mov al, 1; mov [page*4096 + 8], al" per page; hlt. */
static void load_writes_at(struct vm *vm, uint64_t code_page, const uint64_t *pages, size_t n)
{
	uint8_t *c = vm->mem + code_page * PAGE;

	assert_true(2 + n * 5 + 1 <= PAGE);
	*c++ = 0xb0; /* mov al, imm8 */
	*c++ = 0x01;
	for (size_t i = 0; i < n; i++) {
		uint32_t addr = (uint32_t)(pages[i] * PAGE + 8);

		assert_true(pages[i] != code_page && pages[i] < vm->npages); /* code is only read */
		*c++ = 0xa2; /* mov moffs32, al */
		memcpy(c, &addr, 4);
		c += 4;
	}
	*c = 0xf4; /* hlt */
}

static void load_writes(struct vm *vm, const uint64_t *pages, size_t n)
{
	load_writes_at(vm, 0, pages, n);
}

/* Guest code: write one byte to each of pages [first, first + count) in a
 * loop, with an OUT to port 0x80 after each write. The OUT is a userspace
 * exit, after which KVM checks for a soft-full ring before re-entering. With
 * hardware-assisted guests that check happens on every VM exit anyway; on
 * this machine (nested, kvm_pvm) the 32-bit guest runs in KVM's instruction
 * emulator, which otherwise keeps pushing until the ring overflows (KVM
 * WARNs in kvm_dirty_ring_push and entries are overwritten). */
static void load_sweep(struct vm *vm, uint32_t first, uint32_t count)
{
	uint8_t code[] = {
		0xbf, 0, 0, 0, 0,             /* mov edi, first * 4096 */
		0xb9, 0, 0, 0, 0,             /* mov ecx, count */
		0xc6, 0x07, 0x01,             /* loop: mov byte [edi], 1 */
		0xe6, 0x80,                   /* out 0x80, al */
		0x81, 0xc7, 0x00, 0x10, 0, 0, /* add edi, 4096 */
		0x49,                         /* dec ecx */
		0x75, 0xf2,                   /* jnz loop */
		0xf4,                         /* hlt */
	};
	uint32_t addr = first * PAGE;

	assert_true(first > 0 && first + count <= vm->npages);
	memcpy(&code[1], &addr, 4);
	memcpy(&code[6], &count, 4);
	memcpy(vm->mem, code, sizeof(code));
}

/* Runs vCPU v from code_page until HLT; drains its ring on DIRTY_RING_FULL.
 * Returns how many times the ring filled. */
static int run_vcpu_to_hlt(struct vm *vm, unsigned v, uint64_t code_page)
{
	struct kvm_regs regs;
	int fulls = 0;

	memset(&regs, 0, sizeof(regs));
	regs.rip = code_page * PAGE;
	regs.rflags = 2;
	check(ioctl(vm->vcpu_fd[v], KVM_SET_REGS, &regs), "KVM_SET_REGS");
	for (;;) {
		if (ioctl(vm->vcpu_fd[v], KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fail_msg("KVM_RUN: %s", strerror(errno));
		}
		switch (vm->run[v]->exit_reason) {
		case KVM_EXIT_HLT:
			return fulls;
		case KVM_EXIT_IO:
			break; /* load_sweep's progress marker */
		case KVM_EXIT_DIRTY_RING_FULL:
			assert_non_null(vm->ring);
			{
				int dn = sl_dirty_kvm_ring_drain(vm->ring, v);

				if (dn <= 0)
					fail_msg("drain after DIRTY_RING_FULL returned %d (full #%d)", dn, fulls + 1);
			}
			fulls++;
			break;
		default:
			fail_msg("unexpected exit reason %u", vm->run[v]->exit_reason);
		}
	}
}

static int run_to_hlt(struct vm *vm)
{
	return run_vcpu_to_hlt(vm, 0, 0);
}

static struct sl_dirty_source *bitmap_src(struct vm *vm, bool manual)
{
	struct sl_dirty_kvm_bitmap_config cfg = {
		.size = sizeof(cfg), .vm_fd = vm->vm_fd, .slot = SLOT, .npages = vm->npages,
		.manual_protect = manual,
	};
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb;

	if (sl_dirty_kvm_bitmap_new(&cfg, &src, &eb) < 0)
		fail_msg("%s", eb.msg);
	if (sl_dirty_start(src) < 0)
		fail_msg("%s", sl_dirty_last_error(src));
	return src;
}

static void assert_exact(const uint64_t *bm, uint64_t npages, const uint64_t *pages, size_t n)
{
	uint64_t count = 0;

	for (size_t i = 0; i < n; i++)
		if (!(bm[pages[i] / 64] & (UINT64_C(1) << (pages[i] % 64))))
			fail_msg("page %llu written by the guest but not reported", (unsigned long long)pages[i]);
	for (uint64_t p = 0; p < npages; p++)
		if (bm[p / 64] & (UINT64_C(1) << (p % 64)))
			count++;
	if (count != n)
		fail_msg("%llu pages reported, the guest wrote %zu", (unsigned long long)count, n);
}

#define NPAGES 512
static const uint64_t written[] = {1, 5, 63, 64, 65, 300, NPAGES - 1};

static void test_bitmap_exact(void **state)
{
	struct vm vm;
	struct sl_dirty_source *src;
	uint64_t bm[NPAGES / 64] = {0};

	(void)state;
	vm_create(&vm, NPAGES, false, 0);
	src = bitmap_src(&vm, false);
	load_writes(&vm, written, SL_ARRAY_SIZE(written));
	run_to_hlt(&vm);
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(written));
	assert_exact(bm, NPAGES, written, SL_ARRAY_SIZE(written));
	/* GET re-protected: an idle guest (HLT only) dirties nothing. */
	load_writes(&vm, NULL, 0);
	run_to_hlt(&vm);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	sl_dirty_free(&src);
	vm_destroy(&vm);
}

/* KVM cannot be asked a slot's size: a config that understates it must
 * fail cleanly (KVM's bitmap copy hits the guard page), not overrun memory. */
static void test_bitmap_slot_larger_than_config(void **state)
{
	struct sl_dirty_kvm_bitmap_config cfg;
	struct sl_dirty_source *src = NULL;
	struct vm vm;

	(void)state;
	vm_create(&vm, NPAGES, false, 0);
	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.vm_fd = vm.vm_fd;
	cfg.slot = SLOT;
	cfg.npages = NPAGES - 64;
	assert_int_equal(sl_dirty_kvm_bitmap_new(&cfg, &src, NULL), 0);
	assert_int_equal(sl_dirty_start(src), -EFAULT);
	assert_non_null(strstr(sl_dirty_last_error(src), "larger than the configured npages"));
	sl_dirty_free(&src);
	vm_destroy(&vm);
}

static void test_bitmap_manual_clear(void **state)
{
	static const uint64_t again[] = {2, 64, 400};
	static const uint64_t after[] = {3};
	static const uint64_t after_all[] = {3, 64, 400};
	struct vm vm;
	struct sl_dirty_source *src;
	struct sl_dirty_counters c;
	uint64_t bm[NPAGES / 64];

	(void)state;
	vm_create(&vm, NPAGES, true, 0);
	src = bitmap_src(&vm, true);
	assert_int_equal(sl_dirty_caps(src), SL_DIRTY_CAP_MANUAL_CLEAR);
	/* INITIALLY_SET: every page starts dirty, and GET does not clear. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), NPAGES);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), NPAGES);
	/* Clear-before-copy in 64-page chunks, misaligned refused. */
	assert_int_equal(sl_dirty_clear(src, 32, 64), -EINVAL);
	for (uint64_t first = 0; first < NPAGES; first += 128)
		assert_int_equal(sl_dirty_clear(src, first, 128), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	/* The guest writes: exactly those, and they stay until cleared. */
	load_writes(&vm, written, SL_ARRAY_SIZE(written));
	run_to_hlt(&vm);
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(written));
	assert_exact(bm, NPAGES, written, SL_ARRAY_SIZE(written));
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(written));
	/* Clear, idle guest -> next sync empty. */
	assert_int_equal(sl_dirty_clear(src, 0, NPAGES), 0);
	load_writes(&vm, NULL, 0);
	run_to_hlt(&vm);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	/* Re-armed pages are caught again; clearing one chunk leaves the rest. */
	load_writes(&vm, again, SL_ARRAY_SIZE(again));
	run_to_hlt(&vm);
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(again));
	assert_exact(bm, NPAGES, again, SL_ARRAY_SIZE(again));
	assert_int_equal(sl_dirty_clear(src, 0, 64), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 2);
	assert_exact(bm, NPAGES, again + 1, 2);
	/* A write after the last GET survives a clear of its chunk: the
	 * clear re-arms only the pages that GET reported. */
	load_writes(&vm, after, 1);
	run_to_hlt(&vm);
	assert_int_equal(sl_dirty_clear(src, 0, 64), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 3);
	assert_exact(bm, NPAGES, after_all, 3);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.clear_calls, 4 + 1 + 1 + 1);
	sl_dirty_free(&src);
	vm_destroy(&vm);
}

static struct sl_dirty_source *ring_src(struct vm *vm)
{
	struct sl_dirty_kvm_ring_config cfg = {
		.size = sizeof(cfg), .ring = vm->ring, .slot = SLOT, .npages = vm->npages,
	};
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb;

	if (sl_dirty_kvm_ring_new(&cfg, &src, &eb) < 0)
		fail_msg("%s", eb.msg);
	if (sl_dirty_start(src) < 0)
		fail_msg("%s", sl_dirty_last_error(src));
	return src;
}

static void test_ring_exact(void **state)
{
	struct vm vm;
	struct sl_dirty_source *src;
	uint64_t bm[NPAGES / 64] = {0};

	(void)state;
	vm_create(&vm, NPAGES, false, 4096);
	src = ring_src(&vm);
	load_writes(&vm, written, SL_ARRAY_SIZE(written));
	assert_int_equal(run_to_hlt(&vm), 0);
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(written));
	assert_exact(bm, NPAGES, written, SL_ARRAY_SIZE(written));
	/* Entries were reset and pages re-protected: writing the same pages
	 * again produces new entries. */
	run_to_hlt(&vm);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(written));
	assert_exact(bm, NPAGES, written, SL_ARRAY_SIZE(written));
	load_writes(&vm, NULL, 0);
	run_to_hlt(&vm);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	assert_int_equal(sl_kvm_ring_unclaimed(vm.ring), 0);
	sl_dirty_free(&src);
	vm_destroy(&vm);
}

static void test_ring_full_drained(void **state)
{
	enum { BIG = 8192, FIRST = 16, COUNT = 6000 };
	struct vm vm;
	struct sl_dirty_source *src;
	uint64_t *bm = calloc(BIG / 64, sizeof(uint64_t));
	int fulls;

	(void)state;
	assert_non_null(bm);
	/* The smallest ring KVM accepts with PML reserve is still far below
	 * 6000 entries: the vCPU must exit DIRTY_RING_FULL and be drained. */
	vm_create(&vm, BIG, false, 1024);
	src = ring_src(&vm);
	load_sweep(&vm, FIRST, COUNT);
	fulls = run_to_hlt(&vm);
	assert_true(fulls >= COUNT / 1024);
	assert_int_equal(sl_dirty_sync(src, bm), COUNT);
	for (uint64_t p = 0; p < BIG; p++) {
		bool set = bm[p / 64] & (UINT64_C(1) << (p % 64));

		if (set != (p >= FIRST && p < FIRST + COUNT))
			fail_msg("page %llu: reported %d", (unsigned long long)p, set);
	}
	print_message("ring of 1024 entries filled %d times for %d pages\n", fulls, COUNT);
	sl_dirty_free(&src);
	vm_destroy(&vm);
	free(bm);
}

/* Two vCPUs, two rings: vCPU 0 runs code at page 0, vCPU 1 at page 1; both
 * write page 10 (two entries, one page). */
static void test_ring_two_vcpus(void **state)
{
	static const uint64_t w0[] = {2, 10, 100};
	static const uint64_t w1[] = {3, 10, NPAGES - 1};
	static const uint64_t both[] = {2, 3, 10, 100, NPAGES - 1};
	struct vm vm;
	struct sl_dirty_source *src;
	uint64_t bm[NPAGES / 64] = {0};

	(void)state;
	vm_create_n(&vm, NPAGES, false, 4096, 2);
	src = ring_src(&vm);
	load_writes_at(&vm, 0, w0, SL_ARRAY_SIZE(w0));
	load_writes_at(&vm, 1, w1, SL_ARRAY_SIZE(w1));
	assert_int_equal(run_vcpu_to_hlt(&vm, 0, 0), 0);
	assert_int_equal(run_vcpu_to_hlt(&vm, 1, 1), 0);
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(both));
	assert_exact(bm, NPAGES, both, SL_ARRAY_SIZE(both));
	/* Only vCPU 1 writes now: its ring alone holds the entries. */
	assert_int_equal(run_vcpu_to_hlt(&vm, 1, 1), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(w1));
	assert_exact(bm, NPAGES, w1, SL_ARRAY_SIZE(w1));
	assert_int_equal(sl_kvm_ring_overflows(vm.ring), 0);
	sl_dirty_free(&src);
	vm_destroy(&vm);
}

struct vcpu_thread {
	struct vm *vm;
	int fulls;
	volatile int done;
};

static void *vcpu_main(void *arg)
{
	struct vcpu_thread *t = arg;

	t->fulls = run_to_hlt(t->vm);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The VMM's shape: the vCPU thread drains on DIRTY_RING_FULL while the
 * engine thread syncs at the same time. Each page is written once, so the
 * syncs together must report every page exactly once. */
static void test_ring_drain_from_vcpu_thread(void **state)
{
	enum { BIG = 8192, FIRST = 16, COUNT = 6000 };
	struct vm vm;
	struct sl_dirty_source *src;
	struct vcpu_thread t = {0};
	uint64_t *bm = calloc(BIG / 64, sizeof(uint64_t));
	int64_t total = 0, n;
	unsigned syncs = 0;
	pthread_t th;

	(void)state;
	assert_non_null(bm);
	vm_create(&vm, BIG, false, 1024);
	src = ring_src(&vm);
	load_sweep(&vm, FIRST, COUNT);
	t.vm = &vm;
	assert_int_equal(pthread_create(&th, NULL, vcpu_main, &t), 0);
	while (!__atomic_load_n(&t.done, __ATOMIC_ACQUIRE)) {
		n = sl_dirty_sync(src, bm);
		assert_true(n >= 0);
		total += n;
		syncs++;
		/* Sync every 20 ms, slower than the ring fills, so both the
		 * vCPU's drains and these syncs harvest. */
		nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
	}
	pthread_join(th, NULL);
	n = sl_dirty_sync(src, bm);
	assert_true(n >= 0);
	total += n;
	assert_int_equal(total, COUNT);
	for (uint64_t p = 0; p < BIG; p++) {
		bool set = bm[p / 64] & (UINT64_C(1) << (p % 64));

		if (set != (p >= FIRST && p < FIRST + COUNT))
			fail_msg("page %llu: reported %d", (unsigned long long)p, set);
	}
	print_message("%u concurrent syncs, %d ring-full drains\n", syncs, t.fulls);
	sl_dirty_free(&src);
	vm_destroy(&vm);
	free(bm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitmap_exact),
		cmocka_unit_test(test_bitmap_slot_larger_than_config),
		cmocka_unit_test(test_bitmap_manual_clear),
		cmocka_unit_test(test_ring_exact),
		cmocka_unit_test(test_ring_two_vcpus),
		cmocka_unit_test(test_ring_full_drained),
		cmocka_unit_test(test_ring_drain_from_vcpu_thread),
	};

	if (access("/dev/kvm", F_OK) != 0) {
		fprintf(stderr, "skipped: /dev/kvm is missing\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
