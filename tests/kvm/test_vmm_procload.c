/* SPDX-License-Identifier: MIT */
/*
 * test_vmm_procload.c — the process workload (bench/sl_procload.h): the
 * pages written are exactly the working set (checked twice: by residency,
 * mincore, and by the userfaultfd-WP + PAGEMAP_SCAN dirty source), stop
 * parks every thread (nothing is written while stopped, the next scan is
 * empty), resume continues, page records verify, the rate limit slows the
 * threads, bad configs are refused. Needs no KVM; lives with the workloads.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sl_dirty.h"
#include "sl_procload.h"

#define PAGE 4096ull
#define MIB (1ull << 20)

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static struct sl_procload *new_pl(const struct sl_procload_config *c)
{
	struct sl_errbuf eb = { { 0 } };
	struct sl_procload *pl = NULL;
	int ret = sl_procload_new(c, &pl, &eb);
	if (ret)
		fprintf(stderr, "sl_procload_new: %d %s\n", ret, eb.msg);
	assert_int_equal(ret, 0);
	return pl;
}

static void wait_passes(struct sl_procload *pl, uint64_t target)
{
	uint64_t t0 = sl_now_ns();
	while (sl_procload_passes(pl) < target) {
		assert_true(sl_now_ns() - t0 < 10000000000ull);
		sleep_ms(1);
	}
}

static uint64_t popcount_bm(const uint64_t *bm, uint64_t words)
{
	uint64_t n = 0;
	for (uint64_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

/* 64 MiB region, working set 8 MiB at offset 4 MiB, 3 threads, 2 passes. */
static void exact_pages(enum sl_guest_pattern pat)
{
	const uint64_t bytes = 64 * MIB, ws0 = 4 * MIB, wsn = 8 * MIB, npages = bytes / PAGE;
	struct sl_procload_config c = {
		.size = sizeof(c), .bytes = bytes, .nthreads = 3, .wss_start = ws0,
		.wss_bytes = wsn, .pattern = pat, .stride_pages = 5, .seed = 3, .max_passes = 2,
	};
	struct sl_procload *pl = new_pl(&c);
	void *mem;
	uint64_t len;
	assert_int_equal(sl_procload_mem(pl, &mem, &len), 0);
	assert_int_equal(len, bytes);

	/* Track with the userfaultfd source when this kernel has it. */
	struct sl_errbuf eb = { { 0 } };
	struct sl_dirty_source *src = NULL;
	bool uffd = sl_dirty_uffd_probe(&eb) == 0;
	if (uffd) {
		struct sl_dirty_uffd_config uc = { .size = sizeof(uc), .addr = mem, .npages = npages };
		assert_int_equal(sl_dirty_uffd_new(&uc, &src, &eb), 0);
		assert_int_equal(sl_dirty_start(src), 0);
	} else {
		fprintf(stderr, "uffd part skipped: %s\n", eb.msg);
	}

	assert_int_equal(sl_procload_start(pl), 0);
	wait_passes(pl, 2);
	struct sl_procload_stats st;
	uint64_t t0 = sl_now_ns();
	do {
		sl_procload_get_stats(pl, &st);
		sleep_ms(1);
	} while (st.finished < 3 && sl_now_ns() - t0 < 5000000000ull);
	assert_int_equal(st.finished, 3);
	assert_int_equal(st.pages_written, 2 * wsn / PAGE);
	assert_int_equal(sl_procload_stop(pl), 0);

	/* Residency: exactly the working set is populated. */
	unsigned char *vec = malloc(npages);
	assert_non_null(vec);
	assert_int_equal(mincore(mem, bytes, vec), 0);
	for (uint64_t p = 0; p < npages; p++) {
		bool in_ws = p >= ws0 / PAGE && p < (ws0 + wsn) / PAGE;
		if ((vec[p] & 1) != in_ws)
			fail_msg("page %llu resident=%d, in working set=%d", (unsigned long long)p,
				 vec[p] & 1, in_ws);
	}
	free(vec);

	if (uffd) {
		uint64_t words = (npages + 63) / 64;
		uint64_t *bm = calloc(words, 8);
		assert_non_null(bm);
		int64_t n = sl_dirty_sync(src, bm);
		assert_int_equal(n, (int64_t)(wsn / PAGE));
		assert_int_equal(popcount_bm(bm, words), wsn / PAGE);
		for (uint64_t p = ws0 / PAGE; p < (ws0 + wsn) / PAGE; p++)
			assert_true(bm[p / 64] >> (p % 64) & 1);
		memset(bm, 0, words * 8);
		assert_int_equal(sl_dirty_sync(src, bm), 0); /* re-protected, nothing new */
		free(bm);
		sl_dirty_free(&src);
	}

	struct sl_vmm_verify v;
	assert_int_equal(sl_procload_verify(pl, &v), 0);
	assert_int_equal(v.pass_min, 2);
	assert_int_equal(v.pass_max, 2);
	assert_int_equal(v.pages, wsn / PAGE);
	sl_procload_free(&pl);
	assert_null(pl);
}

static void test_exact_pages_sequential(void **state)
{
	(void)state;
	exact_pages(SL_GUEST_SEQUENTIAL);
}

static void test_exact_pages_random(void **state)
{
	(void)state;
	exact_pages(SL_GUEST_RANDOM);
}

static void test_exact_pages_stride(void **state)
{
	(void)state;
	exact_pages(SL_GUEST_STRIDE);
}

static void test_stop_parks(void **state)
{
	(void)state;
	const uint64_t bytes = 16 * MIB, npages = bytes / PAGE;
	struct sl_procload_config c = {
		.size = sizeof(c), .bytes = bytes, .nthreads = 2, .pattern = SL_GUEST_RANDOM,
	};
	struct sl_procload *pl = new_pl(&c);
	void *mem;
	uint64_t len;
	assert_int_equal(sl_procload_mem(pl, &mem, &len), 0);
	struct sl_errbuf eb = { { 0 } };
	struct sl_dirty_source *src = NULL;
	bool uffd = sl_dirty_uffd_probe(&eb) == 0;
	uint64_t words = (npages + 63) / 64;
	uint64_t *bm = calloc(words, 8);
	assert_non_null(bm);
	if (uffd) {
		struct sl_dirty_uffd_config uc = { .size = sizeof(uc), .addr = mem, .npages = npages };
		assert_int_equal(sl_dirty_uffd_new(&uc, &src, &eb), 0);
		assert_int_equal(sl_dirty_start(src), 0);
	}
	assert_int_equal(sl_procload_start(pl), 0);
	assert_int_equal(sl_procload_start(pl), -EALREADY);
	wait_passes(pl, 1);
	uint8_t *snap = malloc(bytes);
	assert_non_null(snap);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(sl_procload_stop(pl), 0);
		if (uffd)
			assert_true(sl_dirty_sync(src, bm) > 0); /* what ran before the stop */
		memcpy(snap, mem, bytes);
		uint64_t passes = sl_procload_passes(pl);
		sleep_ms(50);
		assert_memory_equal(snap, mem, bytes);
		assert_int_equal(sl_procload_passes(pl), passes);
		if (uffd) {
			memset(bm, 0, words * 8);
			assert_int_equal(sl_dirty_sync(src, bm), 0); /* parked: nothing written */
		}
		struct sl_vmm_verify v;
		int ret = sl_procload_verify(pl, &v);
		if (ret)
			fprintf(stderr, "verify: %s\n", v.why);
		assert_int_equal(ret, 0);
		assert_int_equal(sl_procload_resume(pl), 0);
		wait_passes(pl, passes + 1);
	}
	free(snap);
	free(bm);
	sl_dirty_free(&src);
	sl_procload_free(&pl); /* while running */
}

/* Pages written while running for about ms; *elapsed_ns gets the real time
 * from start to stop (a loaded machine may sleep longer than asked). */
static uint64_t pages_in(uint64_t limit, unsigned ms, uint64_t *elapsed_ns)
{
	struct sl_procload_config c = {
		.size = sizeof(c), .bytes = 8 * MIB, .nthreads = 1, .rate_limit = limit,
	};
	struct sl_procload *pl = new_pl(&c);
	struct sl_procload_stats st;
	uint64_t t0 = sl_now_ns();
	assert_int_equal(sl_procload_start(pl), 0);
	sleep_ms(ms);
	assert_int_equal(sl_procload_stop(pl), 0);
	*elapsed_ns = sl_now_ns() - t0;
	sl_procload_get_stats(pl, &st);
	sl_procload_free(&pl);
	return st.pages_written;
}

static void test_rate_limit(void **state)
{
	(void)state;
	uint64_t t_unl, t_lim;
	uint64_t unlimited = pages_in(0, 200, &t_unl);
	uint64_t limited = pages_in(5000, 200, &t_lim); /* ~1000 expected */
	/* The budget is the rate over the time the workload really ran, plus one
	 * reporting interval per thread and a little slack; compare rates, not
	 * counts, since either window may have stretched on a busy machine. */
	double lim_rate = (double)limited * 1e9 / (double)t_lim;
	double unl_rate = (double)unlimited * 1e9 / (double)t_unl;
	fprintf(stderr, "rate: unlimited %.0f pages/s, limited(5000/s) %.0f pages/s\n",
		unl_rate, lim_rate);
	assert_true(limited > 0);
	assert_true(lim_rate * 4 < unl_rate);
	assert_true((double)limited <= 5000.0 * (double)t_lim / 1e9 + 2 * 64 + 500);
}

static void test_bad_config(void **state)
{
	(void)state;
	struct sl_procload *pl = NULL;
	struct sl_procload_config c = { .size = sizeof(c), .bytes = MIB, .nthreads = 1 };
	struct sl_errbuf eb;

	c.bytes = MIB + 1;
	assert_int_equal(sl_procload_new(&c, &pl, &eb), -EINVAL);
	c.bytes = MIB;
	c.nthreads = 0;
	assert_int_equal(sl_procload_new(&c, &pl, &eb), -EINVAL);
	c.nthreads = 1;
	c.wss_start = MIB;
	assert_int_equal(sl_procload_new(&c, &pl, &eb), -EINVAL);
	c.wss_start = 4096;
	c.wss_bytes = MIB;
	assert_int_equal(sl_procload_new(&c, &pl, &eb), -EINVAL);
	c.wss_bytes = 0;
	c.pattern = (enum sl_guest_pattern)9;
	assert_int_equal(sl_procload_new(&c, &pl, &eb), -EINVAL);
	c.pattern = SL_GUEST_SEQUENTIAL;
	c.size = 4;
	assert_int_equal(sl_procload_new(&c, &pl, &eb), -EINVAL);
	assert_null(pl);
	c.size = sizeof(c);
	pl = new_pl(&c);
	assert_int_equal(sl_procload_resume(pl), -EINVAL);
	assert_int_equal(sl_procload_stop(pl), 0); /* not started: nothing to park */
	sl_procload_free(&pl);
	sl_procload_free(&pl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_pages_sequential),
		cmocka_unit_test(test_exact_pages_random),
		cmocka_unit_test(test_exact_pages_stride),
		cmocka_unit_test(test_stop_parks),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
