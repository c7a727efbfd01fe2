/* SPDX-License-Identifier: MIT */
/*
 * test_bitmap_harvest.c — sl_bitmap_harvest: exact single-thread results
 * (out is OR'ed, count, bits past npages untouched), and the race: a writer
 * thread sets each page of a random set exactly once with an atomic OR while
 * the harvester runs; at every point harvested and still-set are disjoint,
 * and at the end harvested ∪ still-set = everything written, with the
 * counts adding up to exactly the pages written.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sl_bitmap.h"

static uint64_t rng_state = 0xfeedfacecafebeefull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static void test_harvest_exact(void **state)
{
	uint64_t shared[4], out[4], s0[4], o0[4];

	(void)state;
	for (int it = 0; it < 2000; it++) {
		uint64_t npages = rnd() % (4 * 64 + 1), want = 0;
		int64_t got;

		for (int i = 0; i < 4; i++) {
			shared[i] = s0[i] = rnd() & (it % 3 ? rnd() : ~0ull);
			out[i] = o0[i] = rnd() & rnd();
		}
		got = sl_bitmap_harvest(shared, out, npages);
		for (uint64_t i = 0; i < 4 * 64; i++) {
			uint64_t m = 1ull << (i % 64);
			int sb = !!(s0[i / 64] & m), ob = !!(o0[i / 64] & m);

			if (i < npages) {
				want += (uint64_t)sb;
				assert_int_equal(!!(shared[i / 64] & m), 0);
				assert_int_equal(!!(out[i / 64] & m), sb | ob);
			} else {
				assert_int_equal(!!(shared[i / 64] & m), sb);
				assert_int_equal(!!(out[i / 64] & m), ob);
			}
		}
		assert_int_equal(got, want);
	}
	assert_int_equal(sl_bitmap_harvest(NULL, out, 1), -EINVAL);
	assert_int_equal(sl_bitmap_harvest(shared, NULL, 1), -EINVAL);
	assert_int_equal(sl_bitmap_harvest(shared, shared, 1), -EINVAL);
	assert_int_equal(sl_bitmap_harvest(NULL, NULL, 0), 0);
}

#define NPAGES (1u << 20) /* 4 GiB of guest, 128 KiB of bitmap */
#define NWRITES 400000u

struct writer {
	uint64_t *shared;
	const uint32_t *pages;
	int done;
};

static void *writer_main(void *arg)
{
	struct writer *wr = arg;

	for (uint32_t i = 0; i < NWRITES; i++) {
		uint32_t p = wr->pages[i];

		__atomic_fetch_or(&wr->shared[p / 64], 1ull << (p % 64), __ATOMIC_RELEASE);
	}
	__atomic_store_n(&wr->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_harvest_concurrent(void **state)
{
	const uint64_t nw = sl_bitmap_words(NPAGES);
	uint64_t *shared = calloc(nw, 8), *out = calloc(nw, 8), *written = calloc(nw, 8);
	uint32_t *pages = malloc(NPAGES * sizeof(*pages));
	struct writer wr = { .shared = shared };
	pthread_t th;
	int64_t total = 0, n;
	unsigned rounds = 0;

	(void)state;
	assert_non_null(shared);
	assert_non_null(out);
	assert_non_null(written);
	assert_non_null(pages);
	/* A random permutation: each page written at most once, so a page
	 * harvested twice would show up as a count above NWRITES. */
	for (uint32_t i = 0; i < NPAGES; i++)
		pages[i] = i;
	for (uint32_t i = NPAGES - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rnd() % (i + 1)), t = pages[i];

		pages[i] = pages[j];
		pages[j] = t;
	}
	for (uint32_t i = 0; i < NWRITES; i++)
		written[pages[i] / 64] |= 1ull << (pages[i] % 64);
	wr.pages = pages;

	assert_int_equal(pthread_create(&th, NULL, writer_main, &wr), 0);
	while (!__atomic_load_n(&wr.done, __ATOMIC_ACQUIRE)) {
		n = sl_bitmap_harvest(shared, out, NPAGES);
		assert_true(n >= 0);
		total += n;
		rounds++;
	}
	assert_int_equal(pthread_join(th, NULL), 0);

	/* Writer done: harvested ∪ still-set = written, and disjoint. */
	for (uint64_t i = 0; i < nw; i++) {
		assert_int_equal(out[i] & shared[i], 0);
		assert_int_equal(out[i] | shared[i], written[i]);
	}
	assert_int_equal(total, sl_bitmap_count(out, NPAGES));
	n = sl_bitmap_harvest(shared, out, NPAGES);
	total += n;
	assert_int_equal(total, NWRITES);
	assert_memory_equal(out, written, nw * 8);
	assert_int_equal(sl_bitmap_count(shared, NPAGES), 0);
	/* Nothing left: another harvest finds nothing. */
	assert_int_equal(sl_bitmap_harvest(shared, out, NPAGES), 0);
	print_message("[          ] %u harvest rounds raced the writer\n", rounds);

	free(shared);
	free(out);
	free(written);
	free(pages);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_harvest_exact),
		cmocka_unit_test(test_harvest_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
