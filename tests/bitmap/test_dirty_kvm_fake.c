/* SPDX-License-Identifier: MIT */
/*
 * test_dirty_kvm_fake.c — the generic source layer and the KVM bitmap and
 * dirty-ring sources against the fake kernel (error paths included; the
 * real-KVM tests are in tests/kvm/).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_kernel.h"
#include "sl_dirty.h"
#include "sl_kernel_compat.h"

#define WORDS (FK_PAGES / 64)

static struct sl_dirty_source *kvm_bitmap(struct fake_kernel *fk, bool manual, uint32_t slot)
{
	struct sl_dirty_kvm_bitmap_config cfg = {
		.size = sizeof(cfg), .sys = &fk->sys, .vm_fd = FK_VM_FD,
		.slot = slot, .npages = FK_PAGES, .manual_protect = manual,
	};
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb;

	assert_int_equal(sl_dirty_kvm_bitmap_new(&cfg, &src, &eb), 0);
	return src;
}

static void test_bitmap_exact_pages(void **state)
{
	static const uint64_t pages[] = {0, 5, 63, 64, 2000, FK_PAGES - 1};
	struct fake_kernel fk;
	struct sl_dirty_source *src;
	struct sl_dirty_counters c;
	uint64_t bm[WORDS] = {0};

	(void)state;
	fk_init(&fk);
	src = kvm_bitmap(&fk, false, FK_SLOT);
	assert_int_equal(sl_dirty_kind(src), SL_DIRTY_KVM_BITMAP);
	assert_string_equal(sl_dirty_name(src), "kvm-bitmap");
	assert_int_equal(sl_dirty_caps(src), 0);
	assert_int_equal(sl_dirty_npages(src), FK_PAGES);
	assert_int_equal(sl_dirty_sync(src, bm), -EINVAL); /* before start */
	fk_write(&fk, 7); /* before start: dropped by start's GET */
	assert_int_equal(sl_dirty_start(src), 0);
	assert_int_equal(sl_dirty_start(src), -EALREADY);
	for (size_t i = 0; i < SL_ARRAY_SIZE(pages); i++)
		fk_write(&fk, pages[i]);
	assert_int_equal(sl_dirty_sync(src, bm), (int64_t)SL_ARRAY_SIZE(pages));
	fk_assert_pages(bm, FK_PAGES, pages, SL_ARRAY_SIZE(pages));
	/* GET re-protected: the next sync is empty, bm untouched. */
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	fk_assert_pages(bm, FK_PAGES, pages, SL_ARRAY_SIZE(pages));
	/* Not manual: clear is a no-op without an ioctl. */
	assert_int_equal(sl_dirty_clear(src, 0, 64), 0);
	assert_int_equal(fk.kvm_clears, 0);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.syncs, 2);
	assert_int_equal(c.pages_found, SL_ARRAY_SIZE(pages));
	assert_int_equal(c.last_pages, 0);
	assert_int_equal(c.errors, 0);
	assert_int_equal(sl_dirty_stop(src), 0);
	assert_int_equal(sl_dirty_sync(src, bm), -EINVAL); /* after stop */
	sl_dirty_free(&src);
	assert_null(src);
	sl_dirty_free(&src); /* NULL is fine */
	fk_exit(&fk);
}

static void test_bitmap_manual_protect(void **state)
{
	struct fake_kernel fk;
	struct sl_dirty_source *src;
	struct sl_dirty_counters c;
	struct sl_errbuf eb;
	uint64_t bm[WORDS];
	static const uint64_t p70[] = {70};

	(void)state;
	fk_init(&fk);
	assert_int_equal(sl_kvm_enable_manual_protect(&fk.sys, FK_VM_FD, true, &eb), 0);
	assert_true(fk.kvm_manual);
	src = kvm_bitmap(&fk, true, FK_SLOT);
	assert_int_equal(sl_dirty_caps(src), SL_DIRTY_CAP_MANUAL_CLEAR);
	assert_int_equal(sl_dirty_start(src), 0);
	/* INITIALLY_SET: everything starts dirty, and GET does not re-protect. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES);
	/* Alignment rules. */
	assert_int_equal(sl_dirty_clear(src, 1, 64), -EINVAL);
	assert_non_null(strstr(sl_dirty_last_error(src), "64-page"));
	assert_int_equal(sl_dirty_clear(src, 64, 10), -EINVAL);
	assert_int_equal(sl_dirty_clear(src, FK_PAGES - 6, 6), -EINVAL);
	assert_int_equal(sl_dirty_clear(src, 0, FK_PAGES + 64), -EINVAL);
	assert_int_equal(fk.kvm_clears, 0);
	/* Clear in 64-page-aligned chunks; the last ends at the slot's end. */
	for (uint64_t first = 0; first < FK_PAGES; first += 1024)
		assert_int_equal(sl_dirty_clear(src, first, 1024), 0);
	assert_int_equal(fk.kvm_clears, 4);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0); /* idle after clear: empty */
	fk_write(&fk, 70);
	assert_int_equal(sl_dirty_sync(src, bm), 1);
	fk_assert_pages(bm, FK_PAGES, p70, 1);
	/* A page written after the last GET must survive a clear of its
	 * chunk: the clear re-arms only what that GET reported (page 70). */
	fk_write(&fk, 71);
	assert_int_equal(sl_dirty_clear(src, 64, 64), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 1);
	assert_int_equal(bm[1], UINT64_C(1) << (71 - 64));
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.clear_calls, 5);
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_bitmap_odd_size_and_tail(void **state)
{
	struct fake_kernel fk;
	struct sl_dirty_kvm_bitmap_config cfg;
	struct sl_dirty_source *src = NULL;
	uint64_t bm[2] = {0, 0};
	static const uint64_t pages[] = {0, 99};

	(void)state;
	fk_init(&fk);
	fk.kvm_npages = 100;
	fk.kvm_manual = true;
	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.sys = &fk.sys;
	cfg.vm_fd = FK_VM_FD;
	cfg.slot = FK_SLOT;
	cfg.npages = 100;
	cfg.manual_protect = true;
	assert_int_equal(sl_dirty_kvm_bitmap_new(&cfg, &src, NULL), 0);
	assert_int_equal(sl_dirty_start(src), 0);
	fk_write(&fk, 0);
	fk_write(&fk, 99);
	assert_int_equal(sl_dirty_sync(src, bm), 2);
	fk_assert_pages(bm, 128, pages, 2);
	/* The slot's last partial chunk: 64..99 is legal because it ends the slot. */
	assert_int_equal(sl_dirty_clear(src, 64, 36), 0);
	assert_int_equal(sl_dirty_clear(src, 64, 35), -EINVAL);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 1);
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_bitmap_errors(void **state)
{
	struct fake_kernel fk;
	struct sl_dirty_kvm_bitmap_config cfg;
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb;
	uint64_t bm[WORDS];

	(void)state;
	fk_init(&fk);
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(sl_dirty_kvm_bitmap_new(NULL, &src, &eb), -EINVAL);
	assert_int_equal(sl_dirty_kvm_bitmap_new(&cfg, &src, &eb), -EINVAL); /* size 0 */
	assert_non_null(strstr(eb.msg, "size"));
	cfg.size = sizeof(cfg);
	cfg.sys = &fk.sys;
	cfg.vm_fd = FK_VM_FD;
	assert_int_equal(sl_dirty_kvm_bitmap_new(&cfg, &src, &eb), -EINVAL); /* npages 0 */
	cfg.npages = FK_PAGES;
	cfg.vm_fd = -1;
	assert_int_equal(sl_dirty_kvm_bitmap_new(&cfg, &src, &eb), -EINVAL);
	assert_null(src);
	assert_int_equal(sl_dirty_start(NULL), -EINVAL);
	assert_int_equal(sl_dirty_sync(NULL, bm), -EINVAL);

	/* Wrong slot: start says why. */
	src = kvm_bitmap(&fk, false, FK_SLOT + 1);
	assert_int_equal(sl_dirty_start(src), -ENOENT);
	assert_non_null(strstr(sl_dirty_last_error(src), "LOG_DIRTY_PAGES"));
	sl_dirty_free(&src);
	/* A VM with the dirty ring on refuses the bitmap ioctls. */
	fk.kvm_ring_mode = true;
	src = kvm_bitmap(&fk, false, FK_SLOT);
	assert_int_equal(sl_dirty_start(src), -ENXIO);
	assert_non_null(strstr(sl_dirty_last_error(src), "dirty ring"));
	sl_dirty_free(&src);
	fk.kvm_ring_mode = false;
	/* GET failing mid-run is an error (KVM's log is not lost by a failed GET). */
	src = kvm_bitmap(&fk, false, FK_SLOT);
	assert_int_equal(sl_dirty_start(src), 0);
	fk_fail(&fk, KVM_GET_DIRTY_LOG, EFAULT, 1);
	assert_int_equal(sl_dirty_sync(src, bm), -EFAULT);
	assert_non_null(strstr(sl_dirty_last_error(src), "KVM_GET_DIRTY_LOG"));
	sl_dirty_free(&src);
	/* CLEAR failing is reported. */
	src = kvm_bitmap(&fk, true, FK_SLOT);
	assert_int_equal(sl_dirty_start(src), 0);
	fk_fail(&fk, KVM_CLEAR_DIRTY_LOG, EINVAL, 1);
	assert_int_equal(sl_dirty_clear(src, 0, 64), -EINVAL);
	assert_non_null(strstr(sl_dirty_last_error(src), "MANUAL_DIRTY_LOG_PROTECT2"));
	sl_dirty_free(&src);
	fk_exit(&fk);
}

/* ---- dirty ring ---------------------------------------------------------- */

static struct sl_kvm_ring *new_ring(struct fake_kernel *fk)
{
	static const int fds[] = {FK_VCPU_FD0, FK_VCPU_FD0 + 1};
	struct sl_kvm_ring_config cfg = {
		.size = sizeof(cfg), .sys = &fk->sys, .vm_fd = FK_VM_FD, .nvcpus = 2,
		.vcpu_fds = fds, .ring_entries = fk->ring_entries, .page_size = 4096,
	};
	struct sl_kvm_ring *ring = NULL;
	struct sl_errbuf eb;

	fk->kvm_ring_mode = true;
	assert_int_equal(sl_kvm_ring_new(&cfg, &ring, &eb), 0);
	return ring;
}

static struct sl_dirty_source *ring_src(struct sl_kvm_ring *ring, uint32_t slot, uint64_t npages)
{
	struct sl_dirty_kvm_ring_config cfg = {
		.size = sizeof(cfg), .ring = ring, .slot = slot, .npages = npages,
	};
	struct sl_dirty_source *src = NULL;

	assert_int_equal(sl_dirty_kvm_ring_new(&cfg, &src, NULL), 0);
	return src;
}

static void test_ring_dispatch(void **state)
{
	static const uint64_t want3[] = {1, 2, 3, 100, 4095};
	static const uint64_t want5[] = {9};
	struct fake_kernel fk;
	struct sl_kvm_ring *ring;
	struct sl_dirty_source *s3, *s5;
	uint64_t bm3[WORDS] = {0}, bm5[1] = {0};

	(void)state;
	fk_init(&fk);
	ring = new_ring(&fk);
	s3 = ring_src(ring, FK_SLOT, FK_PAGES);
	s5 = ring_src(ring, 5, 10);
	assert_int_equal(sl_dirty_kind(s3), SL_DIRTY_KVM_RING);
	assert_true(fk_ring_push(&fk, 0, FK_SLOT, 50)); /* before start: dropped */
	assert_int_equal(sl_dirty_start(s3), 0);
	assert_int_equal(sl_dirty_start(s5), 0);
	assert_int_equal(fk.ring_entries_reset, 1);
	assert_true(fk_ring_push(&fk, 0, FK_SLOT, 1));
	assert_true(fk_ring_push(&fk, 0, FK_SLOT, 2));
	assert_true(fk_ring_push(&fk, 1, FK_SLOT, 3));
	assert_true(fk_ring_push(&fk, 1, FK_SLOT, 100));
	assert_true(fk_ring_push(&fk, 1, FK_SLOT, 2)); /* same page twice: one bit */
	assert_true(fk_ring_push(&fk, 0, FK_SLOT, 4095));
	assert_true(fk_ring_push(&fk, 1, 5, 9));
	assert_true(fk_ring_push(&fk, 0, 9, 1));         /* no source for slot 9 */
	assert_true(fk_ring_push(&fk, 0, FK_SLOT, FK_PAGES)); /* beyond the slot */
	assert_int_equal(sl_dirty_sync(s3, bm3), SL_ARRAY_SIZE(want3));
	fk_assert_pages(bm3, FK_PAGES, want3, SL_ARRAY_SIZE(want3));
	/* Every harvested entry was reset by KVM_RESET_DIRTY_RINGS in that sync. */
	assert_int_equal(fk.ring_entries_reset, 1 + 9);
	assert_int_equal(fk.ring_write[0] - fk.ring_reset[0], 0);
	assert_int_equal(fk.ring_write[1] - fk.ring_reset[1], 0);
	assert_int_equal(sl_kvm_ring_unclaimed(ring), 1 + 2);
	/* Slot 5's entry was harvested by s3's sync and kept for s5. */
	assert_int_equal(sl_dirty_sync(s5, bm5), 1);
	fk_assert_pages(bm5, 10, want5, 1);
	memset(bm3, 0, sizeof(bm3));
	assert_int_equal(sl_dirty_sync(s3, bm3), 0);
	assert_int_equal(sl_dirty_sync(s5, bm5), 0);
	sl_dirty_free(&s3);
	sl_dirty_free(&s5);
	sl_kvm_ring_free(&ring);
	assert_null(ring);
	fk_exit(&fk);
}

static void test_ring_full_drain(void **state)
{
	struct fake_kernel fk;
	struct sl_kvm_ring *ring;
	struct sl_dirty_source *src;
	uint64_t bm[WORDS] = {0};
	uint64_t want[200];
	unsigned pushed = 0;

	(void)state;
	fk_init(&fk);
	ring = new_ring(&fk);
	src = ring_src(ring, FK_SLOT, FK_PAGES);
	assert_int_equal(sl_dirty_start(src), 0);
	/* The "guest" dirties 200 pages through a 64-entry ring: whenever it
	 * is soft-full (KVM_EXIT_DIRTY_RING_FULL) the vCPU thread drains. */
	for (unsigned p = 0; p < 200; p++) {
		want[p] = p * 7 % FK_PAGES;
		if (!fk_ring_push(&fk, 0, FK_SLOT, want[p])) {
			assert_int_equal(pushed, 64 - FK_RING_RSVD);
			assert_int_equal(sl_dirty_kvm_ring_drain(ring, 0), 64 - FK_RING_RSVD);
			pushed = 0;
			assert_true(fk_ring_push(&fk, 0, FK_SLOT, want[p]));
		}
		pushed++;
	}
	assert_int_equal(sl_dirty_kvm_ring_drain(ring, 2), -EINVAL);
	assert_int_equal(sl_dirty_sync(src, bm), 200);
	fk_assert_pages(bm, FK_PAGES, want, 200);
	assert_int_equal(fk.ring_entries_reset, 200);
	sl_dirty_free(&src);
	sl_kvm_ring_free(&ring);
	fk_exit(&fk);
}

struct drainer {
	struct sl_kvm_ring *ring;
	int total;
};

static void *drain_thread(void *arg)
{
	struct drainer *d = arg;

	for (int i = 0; i < 1000; i++) {
		int n = sl_dirty_kvm_ring_drain(d->ring, 1);

		if (n > 0)
			d->total += n;
	}
	return NULL;
}

static void test_ring_drain_concurrent_with_sync(void **state)
{
	struct fake_kernel fk;
	struct sl_kvm_ring *ring;
	struct sl_dirty_source *src;
	uint64_t bm[WORDS] = {0};
	uint64_t want[60];
	struct drainer d;
	pthread_t t;
	int64_t found = 0;

	(void)state;
	fk_init(&fk);
	ring = new_ring(&fk);
	src = ring_src(ring, FK_SLOT, FK_PAGES);
	assert_int_equal(sl_dirty_start(src), 0);
	for (unsigned i = 0; i < 60; i++) {
		want[i] = 3000 + i;
		assert_true(fk_ring_push(&fk, i % 2, FK_SLOT, want[i]));
	}
	d.ring = ring;
	d.total = 0;
	assert_int_equal(pthread_create(&t, NULL, drain_thread, &d), 0);
	for (int i = 0; i < 1000; i++) {
		int64_t n = sl_dirty_sync(src, bm);

		assert_true(n >= 0);
		found += n;
	}
	pthread_join(t, NULL);
	found += sl_dirty_sync(src, bm);
	/* No page lost or reported twice, whoever harvested it. */
	assert_int_equal(found, 60);
	fk_assert_pages(bm, FK_PAGES, want, 60);
	sl_dirty_free(&src);
	sl_kvm_ring_free(&ring);
	fk_exit(&fk);
}

static void test_ring_errors(void **state)
{
	static const int fds[] = {FK_VCPU_FD0, FK_VCPU_FD0 + 1};
	struct fake_kernel fk;
	struct sl_kvm_ring_config cfg;
	struct sl_kvm_ring *ring = NULL;
	struct sl_dirty_source *src = NULL;
	struct sl_dirty_kvm_ring_config scfg;
	struct sl_errbuf eb;
	uint64_t bm[WORDS];

	(void)state;
	fk_init(&fk);
	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.sys = &fk.sys;
	cfg.vm_fd = FK_VM_FD;
	cfg.nvcpus = 2;
	cfg.vcpu_fds = fds;
	cfg.ring_entries = 100; /* not a power of two */
	assert_int_equal(sl_kvm_ring_new(&cfg, &ring, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "power of two"));
	cfg.ring_entries = 512; /* not the size KVM was given: mmap fails */
	assert_int_equal(sl_kvm_ring_new(&cfg, &ring, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "mmap"));
	assert_null(ring);
	cfg.ring_entries = 64;
	cfg.nvcpus = 0;
	assert_int_equal(sl_kvm_ring_new(&cfg, &ring, &eb), -EINVAL);
	cfg.nvcpus = 2;
	assert_int_equal(sl_kvm_ring_new(&cfg, &ring, &eb), 0);

	memset(&scfg, 0, sizeof(scfg));
	scfg.size = sizeof(scfg);
	scfg.slot = FK_SLOT;
	scfg.npages = FK_PAGES;
	assert_int_equal(sl_dirty_kvm_ring_new(&scfg, &src, &eb), -EINVAL); /* no ring */
	scfg.ring = ring;
	assert_int_equal(sl_dirty_kvm_ring_new(&scfg, &src, &eb), 0);
	{
		struct sl_dirty_source *dup = NULL;

		assert_int_equal(sl_dirty_kvm_ring_new(&scfg, &dup, &eb), -EEXIST);
		assert_null(dup);
	}
	assert_int_equal(sl_dirty_start(src), 0);
	/* A failed reset is an error: pages would stay unprotected. */
	assert_true(fk_ring_push(&fk, 0, FK_SLOT, 1));
	fk_fail(&fk, KVM_RESET_DIRTY_RINGS, EIO, 1);
	assert_int_equal(sl_dirty_sync(src, bm), -EIO);
	assert_non_null(strstr(sl_dirty_last_error(src), "KVM_RESET_DIRTY_RINGS"));
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 1); /* the entry was kept */
	/* Freeing the ring first leaves the source failing cleanly. */
	sl_kvm_ring_free(&ring);
	assert_int_equal(sl_dirty_sync(src, bm), -ENODEV);
	sl_dirty_free(&src);
	fk_exit(&fk);
}

/* KVM overran the ring (it WARNs and overwrites; seen with emulated
 * guests): the source must report the whole slot, find KVM's position again
 * and let KVM's reset walk pass the skipped entries, so the guest runs on. */
static void test_ring_overrun(void **state)
{
	static const uint64_t p7[] = {7};
	struct fake_kernel fk;
	struct sl_kvm_ring *ring;
	struct sl_dirty_source *src;
	struct sl_dirty_counters c;
	uint64_t bm[WORDS];

	(void)state;
	fk_init(&fk);
	ring = new_ring(&fk);
	src = ring_src(ring, FK_SLOT, FK_PAGES);
	assert_int_equal(sl_dirty_start(src), 0);
	fk.ring_overrun = true;
	for (uint64_t g = 0; g < 64 + 10; g++)
		assert_true(fk_ring_push(&fk, 0, FK_SLOT, g)); /* 10 entries overwritten */
	assert_int_equal(sl_dirty_kvm_ring_drain(ring, 0), 64);
	assert_int_equal(sl_kvm_ring_overflows(ring), 1);
	/* KVM's reset stopped where its next lap begins; it writes on from 74. */
	assert_int_equal(fk.ring_reset[0], 64);
	assert_true(fk_ring_push(&fk, 0, FK_SLOT, 100));
	/* vCPU: "ring full" -> drain finds nothing at its index -> resync. */
	assert_int_equal(sl_dirty_kvm_ring_drain(ring, 0), 1);
	assert_int_equal(sl_kvm_ring_overflows(ring), 2);
	assert_int_equal(fk.ring_reset[0], fk.ring_write[0]); /* KVM's walk got through */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES); /* pages may be lost: all dirty */
	for (unsigned w = 0; w < WORDS; w++)
		assert_int_equal(bm[w], UINT64_MAX);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.errors, 1);
	assert_non_null(strstr(sl_dirty_last_error(src), "overran"));
	/* Back to normal. */
	assert_true(fk_ring_push(&fk, 0, FK_SLOT, 7));
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 1);
	fk_assert_pages(bm, FK_PAGES, p7, 1);
	assert_int_equal(fk.ring_reset[0], fk.ring_write[0]);
	sl_dirty_free(&src);
	sl_kvm_ring_free(&ring);
	fk_exit(&fk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitmap_exact_pages),
		cmocka_unit_test(test_bitmap_manual_protect),
		cmocka_unit_test(test_bitmap_odd_size_and_tail),
		cmocka_unit_test(test_bitmap_errors),
		cmocka_unit_test(test_ring_dispatch),
		cmocka_unit_test(test_ring_full_drain),
		cmocka_unit_test(test_ring_drain_concurrent_with_sync),
		cmocka_unit_test(test_ring_errors),
		cmocka_unit_test(test_ring_overrun),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
