/* SPDX-License-Identifier: MIT */
/*
 * test_dirty_uffd.c — userfaultfd WP_ASYNC + PAGEMAP_SCAN source: against
 * the real kernel in this process (exact pages after known writes, empty
 * after re-protect, more regions than one result vector, unpopulated pages
 * not reported), and against the fake kernel for the failure paths (old
 * kernels, no permission, no PAGEMAP_SCAN).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_kernel.h"
#include "sl_dirty.h"
#include "sl_kernel_compat.h"

#define NPAGES 256

static long psz;
static bool have_uffd;

static struct sl_dirty_source *real_src(void *mem, uint64_t npages, uint64_t vec_len)
{
	struct sl_dirty_uffd_config cfg = {
		.size = sizeof(cfg), .addr = mem, .npages = npages, .vec_len = vec_len,
	};
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb;

	assert_int_equal(sl_dirty_uffd_new(&cfg, &src, &eb), 0);
	return src;
}

static void test_real_exact_pages(void **state)
{
	static const uint64_t pages[] = {0, 1, 2, 10, 64, 200, NPAGES - 1};
	uint64_t bm[NPAGES / 64] = {0};
	struct sl_dirty_source *src;
	struct sl_dirty_counters c;
	char *mem;

	(void)state;
	if (!have_uffd)
		skip();
	mem = mmap(NULL, NPAGES * (size_t)psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	memset(mem + 5 * psz, 1, 3 * (size_t)psz); /* before start: not reported */
	src = real_src(mem, NPAGES, 0);
	assert_int_equal(sl_dirty_caps(src), SL_DIRTY_CAP_RANGES);
	assert_int_equal(sl_dirty_start(src), 0);
	for (size_t i = 0; i < SL_ARRAY_SIZE(pages); i++)
		mem[pages[i] * (uint64_t)psz + 17] = (char)i;
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(pages));
	fk_assert_pages(bm, NPAGES, pages, SL_ARRAY_SIZE(pages));
	/* The scan re-protected them: idle -> empty. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	fk_assert_pages(bm, NPAGES, NULL, 0);
	/* Reads do not count; a second write after re-protect does. */
	assert_int_equal(mem[10 * psz + 17], 3);
	mem[10 * psz] = 9;
	assert_int_equal(sl_dirty_sync(src, bm), 1);
	assert_int_equal(bm[0], UINT64_C(1) << 10);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.syncs, 3);
	assert_int_equal(c.pages_found, SL_ARRAY_SIZE(pages) + 1);
	assert_true(c.sync_ns > 0);
	assert_int_equal(sl_dirty_stop(src), 0);
	sl_dirty_free(&src);
	munmap(mem, NPAGES * (size_t)psz);
}

static void test_real_more_regions_than_vector(void **state)
{
	uint64_t bm[NPAGES / 64] = {0};
	uint64_t want[NPAGES / 2 + 8];
	size_t n = 0;
	struct sl_dirty_source *src;
	char *mem;

	(void)state;
	if (!have_uffd)
		skip();
	mem = mmap(NULL, NPAGES * (size_t)psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	src = real_src(mem, NPAGES, 3); /* 3 regions per PAGEMAP_SCAN call */
	assert_int_equal(sl_dirty_start(src), 0);
	/* Every even page of the first 200 (100 separate regions), plus one
	 * run of 8 pages that must come back as one coalesced region. */
	for (uint64_t p = 0; p < 200; p += 2) {
		mem[p * (uint64_t)psz] = 1;
		want[n++] = p;
	}
	for (uint64_t p = 240; p < 248; p++) {
		mem[p * (uint64_t)psz] = 1;
		want[n++] = p;
	}
	assert_int_equal(sl_dirty_sync(src, bm), (int64_t)n);
	fk_assert_pages(bm, NPAGES, want, n);
	/* 101 regions / 3 per call: the scan restarted from walk_end. */
	assert_true(sl_dirty_uffd_scans(src) >= 34);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	sl_dirty_free(&src);
	munmap(mem, NPAGES * (size_t)psz);
}

static void test_probe(void **state)
{
	struct sl_errbuf eb;
	int ret;

	(void)state;
	ret = sl_dirty_uffd_probe(&eb);
	if (!have_uffd) {
		/* It must say why. */
		assert_true(ret < 0);
		assert_true(strlen(eb.msg) > 10);
		skip();
	}
	assert_int_equal(ret, 0);
}

/* ---- fake kernel: the same logic, failure paths ---------------------------- */

static struct sl_dirty_source *fake_src(struct fake_kernel *fk, uint64_t vec_len)
{
	struct sl_dirty_uffd_config cfg = {
		.size = sizeof(cfg), .sys = &fk->sys, .addr = (void *)(uintptr_t)FK_BASE,
		.npages = FK_PAGES, .page_size = FK_PAGE, .vec_len = vec_len,
	};
	struct sl_dirty_source *src = NULL;

	assert_int_equal(sl_dirty_uffd_new(&cfg, &src, NULL), 0);
	return src;
}

static void test_fake_scan_restart(void **state)
{
	static const uint64_t pages[] = {0, 2, 4, 5, 6, 100, 4000, FK_PAGES - 1};
	struct fake_kernel fk;
	struct sl_dirty_source *src;
	uint64_t bm[FK_PAGES / 64] = {0};

	(void)state;
	fk_init(&fk);
	src = fake_src(&fk, 1);
	fk_write(&fk, 9); /* before start: the initial WRITEPROTECT arms it */
	assert_int_equal(sl_dirty_start(src), 0);
	assert_true(fk.uffd_registered);
	for (size_t i = 0; i < SL_ARRAY_SIZE(pages); i++)
		fk_write(&fk, pages[i]);
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(pages));
	fk_assert_pages(bm, FK_PAGES, pages, SL_ARRAY_SIZE(pages));
	/* 6 regions with a one-entry vector: one call each (the last region
	 * ends the range, so no empty final call). */
	assert_int_equal(fk.pm_scans, 6);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	assert_int_equal(sl_dirty_stop(src), 0);
	assert_false(fk.uffd_open);
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_fake_old_kernel(void **state)
{
	struct fake_kernel fk;
	struct sl_dirty_source *src;
	uint64_t bm[FK_PAGES / 64];

	(void)state;
	fk_init(&fk);
	/* Before 6.7: no WP_ASYNC. */
	fk.uffd_features = UFFD_FEATURE_WP_UNPOPULATED;
	src = fake_src(&fk, 0);
	assert_int_equal(sl_dirty_start(src), -EINVAL);
	assert_non_null(strstr(sl_dirty_last_error(src), "6.7"));
	assert_false(fk.uffd_open); /* closed again */
	sl_dirty_free(&src);
	fk_exit(&fk);
	/* userfaultfd not permitted. */
	fk_init(&fk);
	fk.uffd_errno = EPERM;
	src = fake_src(&fk, 0);
	assert_int_equal(sl_dirty_start(src), -EPERM);
	assert_non_null(strstr(sl_dirty_last_error(src), "unprivileged_userfaultfd"));
	sl_dirty_free(&src);
	fk_exit(&fk);
	/* No PAGEMAP_SCAN: the first sync fails loudly, never reports nothing. */
	fk_init(&fk);
	fk.pagemap_scan_supported = false;
	src = fake_src(&fk, 0);
	assert_int_equal(sl_dirty_start(src), 0);
	assert_int_equal(sl_dirty_sync(src, bm), -ENOTTY);
	assert_non_null(strstr(sl_dirty_last_error(src), "PAGEMAP_SCAN"));
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_fake_config(void **state)
{
	struct sl_dirty_uffd_config cfg = {
		.size = sizeof(cfg), .addr = (void *)(uintptr_t)(FK_BASE + 8), .npages = 4,
		.page_size = 4096,
	};
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb;

	(void)state;
	assert_int_equal(sl_dirty_uffd_new(&cfg, &src, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "page-aligned"));
	cfg.addr = NULL;
	assert_int_equal(sl_dirty_uffd_new(&cfg, &src, &eb), -EINVAL);
	cfg.addr = (void *)(uintptr_t)FK_BASE;
	cfg.npages = 0;
	assert_int_equal(sl_dirty_uffd_new(&cfg, &src, &eb), -EINVAL);
	cfg.npages = 4;
	cfg.page_size = 1000;
	assert_int_equal(sl_dirty_uffd_new(&cfg, &src, &eb), -EINVAL);
	assert_null(src);
	/* The version-1 struct (without vec_len) is still accepted. */
	cfg.page_size = 4096;
	cfg.size = offsetof(struct sl_dirty_uffd_config, vec_len);
	assert_int_equal(sl_dirty_uffd_new(&cfg, &src, &eb), 0);
	sl_dirty_free(&src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_real_exact_pages),
		cmocka_unit_test(test_real_more_regions_than_vector),
		cmocka_unit_test(test_fake_scan_restart),
		cmocka_unit_test(test_fake_old_kernel),
		cmocka_unit_test(test_fake_config),
	};
	struct sl_errbuf eb;
	int ret;

	psz = sysconf(_SC_PAGESIZE);
	ret = sl_dirty_uffd_probe(&eb);
	have_uffd = ret == 0;
	if (!have_uffd)
		fprintf(stderr, "userfaultfd WP_ASYNC + PAGEMAP_SCAN unavailable, real-kernel cases skipped: %s\n",
			eb.msg);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
