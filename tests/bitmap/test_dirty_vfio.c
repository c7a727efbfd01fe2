/* SPDX-License-Identifier: MIT */
/*
 * test_dirty_vfio.c — VFIO type1 dirty pages, VFIO device DMA logging and
 * iommufd HWPT dirty tracking against the fake kernel: exact pages,
 * read-and-clear, zeroed buffers, the kernel's argument checks, E2BIG, and
 * "any error means the whole range is dirty".
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_kernel.h"
#include "sl_dirty.h"
#include "sl_kernel_compat.h"

#define WORDS (FK_PAGES / 64)

static const uint64_t some[] = {0, 1, 2, 64, 1000, FK_PAGES - 1};

struct log_capture {
	int warnings;
	char last[256];
};

static void capture_log(void *ctx, enum sl_log_level level, const char *msg)
{
	struct log_capture *lc = ctx;

	if (level == SL_LOG_WARNING)
		lc->warnings++;
	snprintf(lc->last, sizeof(lc->last), "%s", msg);
}

static void write_some(struct fake_kernel *fk)
{
	for (size_t i = 0; i < SL_ARRAY_SIZE(some); i++)
		fk_write(fk, some[i]);
}

static void all_set(const uint64_t *bm)
{
	for (unsigned w = 0; w < WORDS; w++)
		assert_int_equal(bm[w], UINT64_MAX);
}

/* ---- type1 -------------------------------------------------------------- */

static struct sl_dirty_source *type1(struct fake_kernel *fk, uint64_t npages, uint64_t pgsize)
{
	struct sl_dirty_vfio_type1_config cfg = {
		.size = sizeof(cfg), .sys = &fk->sys, .container_fd = FK_CONTAINER_FD,
		.iova = FK_BASE, .npages = npages, .pgsize = pgsize,
	};
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb;

	assert_int_equal(sl_dirty_vfio_type1_new(&cfg, &src, &eb), 0);
	return src;
}

static void test_type1_exact_read_and_clear(void **state)
{
	struct fake_kernel fk;
	struct sl_dirty_source *src;
	struct sl_dirty_counters c;
	uint64_t bm[WORDS] = {0};

	(void)state;
	fk_init(&fk);
	src = type1(&fk, FK_PAGES, FK_PAGE);
	assert_int_equal(sl_dirty_kind(src), SL_DIRTY_VFIO_TYPE1);
	fk.t1_tracking = true;
	fk_write(&fk, 33); /* before START: START resets the log */
	assert_int_equal(sl_dirty_start(src), 0);
	assert_true(fk.t1_tracking);
	write_some(&fk);
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(some));
	fk_assert_pages(bm, FK_PAGES, some, SL_ARRAY_SIZE(some));
	/* Read and cleared; the fake ORs into the buffer, so a source that
	 * reused a dirty buffer would report the old pages again here. */
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	fk_assert_pages(bm, FK_PAGES, NULL, 0);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.errors, 0);
	assert_int_equal(sl_dirty_stop(src), 0);
	assert_false(fk.t1_tracking);
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_type1_errors_mark_all_dirty(void **state)
{
	struct fake_kernel fk;
	struct sl_dirty_source *src;
	struct sl_dirty_counters c;
	struct log_capture lc = {0};
	uint64_t bm[WORDS];
	static const uint64_t p5[] = {5};

	(void)state;
	fk_init(&fk);
	/* pgsize must be the IOMMU's smallest page size: GET fails EINVAL. */
	src = type1(&fk, FK_PAGES / 2, 2 * FK_PAGE);
	sl_dirty_set_log(src, capture_log, &lc);
	assert_int_equal(sl_dirty_start(src), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES / 2);
	for (unsigned w = 0; w < WORDS / 2; w++)
		assert_int_equal(bm[w], UINT64_MAX);
	for (unsigned w = WORDS / 2; w < WORDS; w++)
		assert_int_equal(bm[w], 0);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.errors, 1);
	assert_int_equal(lc.warnings, 1);
	assert_non_null(strstr(sl_dirty_last_error(src), "whole range"));
	sl_dirty_free(&src);

	/* A range that is not exactly the DMA mapping also fails -> all dirty. */
	src = type1(&fk, FK_PAGES - 64, FK_PAGE);
	assert_int_equal(sl_dirty_start(src), 0);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES - 64);
	sl_dirty_free(&src);

	/* A transient failure: everything dirty once, then exact again. */
	src = type1(&fk, FK_PAGES, FK_PAGE);
	assert_int_equal(sl_dirty_start(src), 0);
	fk_fail(&fk, VFIO_IOMMU_DIRTY_PAGES, EIO, 1);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES);
	all_set(bm);
	fk_write(&fk, 5);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 1);
	fk_assert_pages(bm, FK_PAGES, p5, 1);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.errors, 1);
	assert_int_equal(c.syncs, 2);
	/* START failing is a start error with the reason. */
	sl_dirty_free(&src);
	src = type1(&fk, FK_PAGES, FK_PAGE);
	fk_fail(&fk, VFIO_IOMMU_DIRTY_PAGES, ENOTTY, 1);
	assert_int_equal(sl_dirty_start(src), -ENOTTY);
	assert_non_null(strstr(sl_dirty_last_error(src), "START"));
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_type1_config(void **state)
{
	struct sl_dirty_vfio_type1_config cfg = {
		.size = sizeof(cfg), .container_fd = FK_CONTAINER_FD, .iova = FK_BASE,
		.npages = 16, .pgsize = 4096,
	};
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb;

	(void)state;
	cfg.pgsize = 6000;
	assert_int_equal(sl_dirty_vfio_type1_new(&cfg, &src, &eb), -EINVAL);
	cfg.pgsize = 4096;
	cfg.iova = FK_BASE + 100;
	assert_int_equal(sl_dirty_vfio_type1_new(&cfg, &src, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "aligned"));
	cfg.iova = UINT64_MAX - 4095;
	assert_int_equal(sl_dirty_vfio_type1_new(&cfg, &src, &eb), -EINVAL); /* wraps */
	cfg.iova = FK_BASE;
	cfg.npages = 0;
	assert_int_equal(sl_dirty_vfio_type1_new(&cfg, &src, &eb), -EINVAL);
	cfg.npages = 16;
	cfg.container_fd = -1;
	assert_int_equal(sl_dirty_vfio_type1_new(&cfg, &src, &eb), -EINVAL);
	assert_null(src);
}

/* ---- DMA logging -------------------------------------------------------- */

static int dma_log(struct fake_kernel *fk, uint32_t nranges, const struct sl_dirty_iova_range *r,
		   struct sl_dirty_source **src, struct sl_errbuf *eb)
{
	struct sl_dirty_vfio_dma_log_config cfg = {
		.size = sizeof(cfg), .sys = &fk->sys, .device_fd = FK_DEVICE_FD, .iova = FK_BASE,
		.npages = FK_PAGES, .page_size = FK_PAGE, .nranges = nranges, .ranges = r,
	};

	return sl_dirty_vfio_dma_log_new(&cfg, src, eb);
}

static void test_dma_log_exact(void **state)
{
	struct fake_kernel fk;
	struct sl_dirty_source *src = NULL;
	uint64_t bm[WORDS] = {0};

	(void)state;
	fk_init(&fk);
	assert_int_equal(dma_log(&fk, 0, NULL, &src, NULL), 0);
	assert_int_equal(sl_dirty_kind(src), SL_DIRTY_VFIO_DMA_LOG);
	assert_int_equal(sl_dirty_start(src), 0);
	assert_true(fk.dl_started);
	assert_int_equal(fk.dl_nranges, 1);
	assert_int_equal(fk.dl_range_len[0], (uint64_t)FK_PAGES * FK_PAGE);
	write_some(&fk);
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(some));
	fk_assert_pages(bm, FK_PAGES, some, SL_ARRAY_SIZE(some));
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0); /* read and cleared */
	fk_assert_pages(bm, FK_PAGES, NULL, 0);
	assert_int_equal(sl_dirty_stop(src), 0);
	assert_false(fk.dl_started);
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_dma_log_ranges_and_page_size(void **state)
{
	const struct sl_dirty_iova_range r[] = {
		{FK_BASE + 100 * FK_PAGE, 50 * FK_PAGE},
		{FK_BASE + 1000 * FK_PAGE, 10 * FK_PAGE},
	};
	static const uint64_t want[] = {100, 149, 1005};
	struct fake_kernel fk;
	struct sl_dirty_source *src = NULL;
	struct log_capture lc = {0};
	uint64_t bm[WORDS] = {0};

	(void)state;
	fk_init(&fk);
	fk.dl_chosen_pgsize = 2u << 20; /* the driver tracks 2 MiB pages */
	assert_int_equal(dma_log(&fk, 2, r, &src, NULL), 0);
	sl_dirty_set_log(src, capture_log, &lc);
	assert_int_equal(sl_dirty_start(src), 0);
	assert_non_null(strstr(lc.last, "2097152"));
	assert_int_equal(fk.dl_nranges, 2);
	fk_write(&fk, 100);
	fk_write(&fk, 149);
	fk_write(&fk, 150); /* outside the logged ranges: the device never sees it */
	fk_write(&fk, 1005);
	fk_write(&fk, 99);
	assert_int_equal(sl_dirty_sync(src, bm), 3);
	fk_assert_pages(bm, FK_PAGES, want, 3);
	assert_int_equal(fk.dl_reports, 2); /* one REPORT per range */
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_dma_log_start_errors(void **state)
{
	struct sl_dirty_iova_range *many;
	struct sl_dirty_iova_range bad[2];
	struct fake_kernel fk;
	struct sl_dirty_source *src = NULL, *second = NULL;
	struct sl_errbuf eb;

	(void)state;
	fk_init(&fk);
	/* More ranges than one kernel page holds: E2BIG from START. */
	many = calloc(FK_DMA_LOG_MAX_RANGES + 1, sizeof(*many));
	assert_non_null(many);
	for (unsigned i = 0; i <= FK_DMA_LOG_MAX_RANGES; i++) {
		many[i].iova = FK_BASE + 2ull * i * FK_PAGE;
		many[i].length = FK_PAGE;
	}
	assert_int_equal(dma_log(&fk, FK_DMA_LOG_MAX_RANGES + 1, many, &src, &eb), 0);
	assert_int_equal(sl_dirty_start(src), -E2BIG);
	assert_non_null(strstr(sl_dirty_last_error(src), "too many ranges"));
	sl_dirty_free(&src);
	/* Exactly the limit works. */
	assert_int_equal(dma_log(&fk, FK_DMA_LOG_MAX_RANGES, many, &src, &eb), 0);
	assert_int_equal(sl_dirty_start(src), 0);
	/* A second START on the same device: EBUSY, said clearly. */
	assert_int_equal(dma_log(&fk, 0, NULL, &second, &eb), 0);
	assert_int_equal(sl_dirty_start(second), -EBUSY);
	assert_non_null(strstr(sl_dirty_last_error(second), "already started"));
	sl_dirty_free(&second);
	sl_dirty_free(&src);
	free(many);

	/* Config checks: overlap, misalignment, outside the region, NULL. */
	bad[0].iova = FK_BASE;
	bad[0].length = 4 * FK_PAGE;
	bad[1].iova = FK_BASE + 3 * FK_PAGE;
	bad[1].length = FK_PAGE;
	assert_int_equal(dma_log(&fk, 2, bad, &src, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "overlap"));
	bad[1].iova = FK_BASE + 4 * FK_PAGE + 1;
	assert_int_equal(dma_log(&fk, 2, bad, &src, &eb), -EINVAL);
	bad[1].iova = FK_BASE + (uint64_t)FK_PAGES * FK_PAGE;
	assert_int_equal(dma_log(&fk, 2, bad, &src, &eb), -EINVAL);
	assert_int_equal(dma_log(&fk, 2, NULL, &src, &eb), -EINVAL);
	assert_null(src);

	/* A device without DMA logging. */
	fk.dl_supported = false;
	assert_int_equal(dma_log(&fk, 0, NULL, &src, &eb), 0);
	assert_int_equal(sl_dirty_start(src), -ENOTTY);
	assert_non_null(strstr(sl_dirty_last_error(src), "no DMA logging"));
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_dma_log_report_error_restarts(void **state)
{
	struct fake_kernel fk;
	struct sl_dirty_source *src = NULL;
	struct sl_dirty_counters c;
	struct log_capture lc = {0};
	uint64_t bm[WORDS];
	static const uint64_t p9[] = {9};

	(void)state;
	fk_init(&fk);
	assert_int_equal(dma_log(&fk, 0, NULL, &src, NULL), 0);
	sl_dirty_set_log(src, capture_log, &lc);
	assert_int_equal(sl_dirty_start(src), 0);
	fk_write(&fk, 3);
	fk_fail(&fk, VFIO_DEVICE_FEATURE, EIO, 1);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES);
	all_set(bm);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.errors, 1);
	assert_true(lc.warnings >= 1);
	assert_non_null(strstr(sl_dirty_last_error(src), "whole range"));
	/* The uAPI's recovery: logging restarted (STOP + START). */
	assert_int_equal(fk.dl_stops, 1);
	assert_int_equal(fk.dl_starts, 2);
	assert_true(fk.dl_started);
	fk_write(&fk, 9);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 1);
	fk_assert_pages(bm, FK_PAGES, p9, 1);
	/* Logging gone behind our back: every REPORT fails -> all dirty. */
	fk.dl_supported = false;
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES);
	all_set(bm);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.errors, 2);
	sl_dirty_free(&src);
	fk_exit(&fk);
}

/* ---- iommufd ------------------------------------------------------------ */

static struct sl_dirty_source *iommufd(struct fake_kernel *fk, uint32_t hwpt, uint64_t iova,
				       uint64_t npages)
{
	struct sl_dirty_iommufd_config cfg = {
		.size = sizeof(cfg), .sys = &fk->sys, .iommufd = FK_IOMMUFD, .hwpt_id = hwpt,
		.iova = iova, .npages = npages, .page_size = FK_PAGE,
	};
	struct sl_dirty_source *src = NULL;

	assert_int_equal(sl_dirty_iommufd_new(&cfg, &src, NULL), 0);
	return src;
}

static void test_iommufd_exact(void **state)
{
	static const uint64_t sub[] = {0, 936}; /* pages 64 and 1000 of the window */
	struct fake_kernel fk;
	struct sl_dirty_source *src;
	uint64_t bm[WORDS] = {0};

	(void)state;
	fk_init(&fk);
	fk.io_tracking = true;
	fk_write(&fk, 77); /* enabling clears what was logged before */
	src = iommufd(&fk, FK_HWPT_ID, FK_BASE, FK_PAGES);
	assert_int_equal(sl_dirty_kind(src), SL_DIRTY_IOMMUFD);
	assert_int_equal(sl_dirty_start(src), 0);
	write_some(&fk);
	assert_int_equal(sl_dirty_sync(src, bm), SL_ARRAY_SIZE(some));
	fk_assert_pages(bm, FK_PAGES, some, SL_ARRAY_SIZE(some));
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 0);
	assert_int_equal(sl_dirty_stop(src), 0);
	assert_false(fk.io_tracking);
	sl_dirty_free(&src);

	/* A region that starts inside the window: bit 0 = its first page. */
	src = iommufd(&fk, FK_HWPT_ID, FK_BASE + 64 * FK_PAGE, 1000);
	assert_int_equal(sl_dirty_start(src), 0);
	write_some(&fk);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), 2);
	fk_assert_pages(bm, 1000, sub, 2);
	sl_dirty_free(&src);
	fk_exit(&fk);
}

static void test_iommufd_errors(void **state)
{
	struct fake_kernel fk;
	struct sl_dirty_source *src;
	struct sl_dirty_counters c;
	struct sl_dirty_iommufd_config cfg;
	struct sl_errbuf eb;
	uint64_t bm[WORDS];

	(void)state;
	fk_init(&fk);
	src = iommufd(&fk, FK_HWPT_NODIRTY_ID, FK_BASE, FK_PAGES);
	assert_int_equal(sl_dirty_start(src), -EOPNOTSUPP);
	assert_non_null(strstr(sl_dirty_last_error(src), "DIRTY_TRACKING"));
	sl_dirty_free(&src);
	src = iommufd(&fk, 99, FK_BASE, FK_PAGES);
	assert_int_equal(sl_dirty_start(src), -ENOENT);
	assert_non_null(strstr(sl_dirty_last_error(src), "no such HWPT"));
	sl_dirty_free(&src);

	src = iommufd(&fk, FK_HWPT_ID, FK_BASE, FK_PAGES);
	assert_int_equal(sl_dirty_start(src), 0);
	fk_write(&fk, 1);
	fk_fail(&fk, IOMMU_HWPT_GET_DIRTY_BITMAP, EFAULT, 1);
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES);
	all_set(bm);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.errors, 1);
	/* Tracking switched off underneath: GET fails EINVAL -> all dirty again. */
	fk.io_tracking = false;
	memset(bm, 0, sizeof(bm));
	assert_int_equal(sl_dirty_sync(src, bm), FK_PAGES);
	sl_dirty_get_counters(src, &c);
	assert_int_equal(c.errors, 2);
	sl_dirty_free(&src);

	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.iommufd = FK_IOMMUFD;
	cfg.iova = FK_BASE;
	cfg.npages = 8;
	cfg.page_size = 3000;
	assert_int_equal(sl_dirty_iommufd_new(&cfg, &src, &eb), -EINVAL);
	cfg.page_size = 4096;
	cfg.iova = FK_BASE + 8;
	assert_int_equal(sl_dirty_iommufd_new(&cfg, &src, &eb), -EINVAL);
	cfg.iova = FK_BASE;
	cfg.size = 8;
	assert_int_equal(sl_dirty_iommufd_new(&cfg, &src, &eb), -EINVAL);
	assert_int_equal(sl_dirty_iommufd_new(&cfg, NULL, &eb), -EINVAL);
	fk_exit(&fk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type1_exact_read_and_clear),
		cmocka_unit_test(test_type1_errors_mark_all_dirty),
		cmocka_unit_test(test_type1_config),
		cmocka_unit_test(test_dma_log_exact),
		cmocka_unit_test(test_dma_log_ranges_and_page_size),
		cmocka_unit_test(test_dma_log_start_errors),
		cmocka_unit_test(test_dma_log_report_error_restarts),
		cmocka_unit_test(test_iommufd_exact),
		cmocka_unit_test(test_iommufd_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
