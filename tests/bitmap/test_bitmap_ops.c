/* SPDX-License-Identifier: MIT */
/*
 * test_bitmap_ops.c — count, OR, AND-NOT, set/clear range, ranges back to a
 * bitmap (round trip through the scan), the ISA switch and SL_BITMAP_ISA,
 * and -EINVAL on bad arguments. Bits past npages must never change.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sl_bitmap.h"

static uint64_t rng_state = 0x1234567887654321ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static int bit(const uint64_t *w, uint64_t i)
{
	return (w[i / 64] >> (i % 64)) & 1;
}

static const enum sl_isa isas[] = { SL_ISA_SCALAR, SL_ISA_AVX2, SL_ISA_AVX512 };

/* Must run first: the environment variable is read at the first call. */
static void test_env_picks_isa(void **state)
{
	(void)state;
	assert_int_equal(sl_bitmap_isa(), SL_ISA_SCALAR); /* main() set scalar */
	assert_string_equal(sl_isa_name(SL_ISA_SCALAR), "scalar");
	assert_string_equal(sl_isa_name(SL_ISA_AVX2), "avx2");
	assert_string_equal(sl_isa_name(SL_ISA_AVX512), "avx512");
	assert_true(sl_bitmap_isa_supported(SL_ISA_SCALAR));
	assert_int_equal(sl_bitmap_force_isa((enum sl_isa)-1), -EINVAL);
	for (size_t i = 0; i < 3; i++) {
		int ret = sl_bitmap_force_isa(isas[i]);

		if (sl_bitmap_isa_supported(isas[i])) {
			assert_int_equal(ret, 0);
			assert_int_equal(sl_bitmap_isa(), isas[i]);
		} else {
			assert_int_equal(ret, -ENOTSUP);
			print_message("[          ] %s: not on this CPU, skipped\n", sl_isa_name(isas[i]));
		}
	}
}

static void test_count(void **state)
{
	uint64_t w[40];

	(void)state;
	for (size_t k = 0; k < 3; k++) {
		if (sl_bitmap_force_isa(isas[k]))
			continue;
		for (int it = 0; it < 200; it++) {
			uint64_t npages = rnd() % (40 * 64 + 1), want = 0;

			for (size_t i = 0; i < 40; i++)
				w[i] = rnd() & rnd();
			for (uint64_t i = 0; i < npages; i++)
				want += (uint64_t)bit(w, i);
			assert_int_equal(sl_bitmap_count(w, npages), want);
		}
		memset(w, 0xff, sizeof(w));
		assert_int_equal(sl_bitmap_count(w, 40 * 64), 40 * 64);
		assert_int_equal(sl_bitmap_count(w, 77), 77);
	}
	assert_int_equal(sl_bitmap_count(NULL, 0), 0);
	assert_int_equal(sl_bitmap_count(NULL, 1), -EINVAL);
}

static void test_or_andnot(void **state)
{
	uint64_t a[3], b[3], orig[3];

	(void)state;
	for (int it = 0; it < 500; it++) {
		uint64_t npages = rnd() % (3 * 64 + 1);

		for (int i = 0; i < 3; i++) {
			a[i] = orig[i] = rnd();
			b[i] = rnd();
		}
		assert_int_equal(sl_bitmap_or(a, b, npages), 0);
		for (uint64_t i = 0; i < 3 * 64; i++)
			assert_int_equal(bit(a, i), i < npages ? bit(orig, i) | bit(b, i) : bit(orig, i));
		memcpy(a, orig, sizeof(a));
		assert_int_equal(sl_bitmap_andnot(a, b, npages), 0);
		for (uint64_t i = 0; i < 3 * 64; i++)
			assert_int_equal(bit(a, i), i < npages ? bit(orig, i) & !bit(b, i) : bit(orig, i));
	}
	assert_int_equal(sl_bitmap_or(NULL, b, 1), -EINVAL);
	assert_int_equal(sl_bitmap_or(a, NULL, 1), -EINVAL);
	assert_int_equal(sl_bitmap_andnot(NULL, b, 1), -EINVAL);
	assert_int_equal(sl_bitmap_andnot(a, NULL, 1), -EINVAL);
	assert_int_equal(sl_bitmap_or(NULL, NULL, 0), 0);
}

static void test_set_clear_range(void **state)
{
	uint64_t w[6], orig[6];
	const uint64_t npages = 5 * 64 + 9;

	(void)state;
	for (int it = 0; it < 3000; it++) {
		uint64_t first = rnd() % (npages + 1), n = rnd() % (npages - first + 1);
		int set = (int)(rnd() & 1);

		for (int i = 0; i < 6; i++)
			w[i] = orig[i] = rnd();
		assert_int_equal(set ? sl_bitmap_set_range(w, npages, first, n)
				     : sl_bitmap_clear_range(w, npages, first, n), 0);
		for (uint64_t i = 0; i < 6 * 64; i++)
			assert_int_equal(bit(w, i), i >= first && i < first + n ? set : bit(orig, i));
	}
	assert_int_equal(sl_bitmap_set_range(w, npages, npages, 0), 0);
	assert_int_equal(sl_bitmap_set_range(w, npages, npages, 1), -EINVAL);
	assert_int_equal(sl_bitmap_set_range(w, npages, 1, npages), -EINVAL);
	assert_int_equal(sl_bitmap_clear_range(w, npages, 5, UINT64_MAX), -EINVAL);
	assert_int_equal(sl_bitmap_clear_range(w, npages, UINT64_MAX, 2), -EINVAL);
	assert_int_equal(sl_bitmap_set_range(NULL, npages, 0, 1), -EINVAL);
}

/* Bitmap → ranges → bitmap gives back the same bits, on every path. */
static void test_from_ranges_round_trip(void **state)
{
	enum { NW = 300 };
	uint64_t *w = calloc(NW, 8), *back = calloc(NW, 8);
	struct sl_range *r = malloc(NW * 64 * sizeof(*r));
	const uint64_t base = 1ull << 40;

	(void)state;
	assert_non_null(w);
	assert_non_null(back);
	assert_non_null(r);
	for (size_t k = 0; k < 3; k++) {
		if (sl_bitmap_force_isa(isas[k]))
			continue;
		for (int it = 0; it < 20; it++) {
			uint64_t npages = NW * 64 - rnd() % 64;
			struct sl_scan_cursor c;
			ssize_t n;

			for (size_t i = 0; i < NW; i++)
				w[i] = it % 2 ? rnd() & rnd() & rnd() : ~(rnd() & rnd());
			memset(back, 0, NW * 8);
			sl_scan_cursor_init(&c);
			n = sl_bitmap_scan(w, npages, base, NULL, &c, r, NW * 64);
			assert_true(n > 0 && sl_scan_cursor_done(&c));
			assert_int_equal(sl_bitmap_from_ranges(back, npages, base, r, (size_t)n), 0);
			for (uint64_t i = 0; i < NW * 64; i++)
				assert_int_equal(bit(back, i), i < npages ? bit(w, i) : 0);
			assert_int_equal(sl_bitmap_count(back, npages), sl_bitmap_count(w, npages));
		}
	}
	/* A bad range anywhere leaves the bitmap untouched. */
	{
		struct sl_range bad[3] = { { base, 4 }, { base + 10, 2 }, { base - 1, 1 } };

		memset(back, 0, NW * 8);
		assert_int_equal(sl_bitmap_from_ranges(back, 64, base, bad, 3), -EINVAL);
		bad[2] = (struct sl_range){ base + 60, 5 };
		assert_int_equal(sl_bitmap_from_ranges(back, 64, base, bad, 3), -EINVAL);
		bad[2] = (struct sl_range){ base + 60, UINT64_MAX };
		assert_int_equal(sl_bitmap_from_ranges(back, 64, base, bad, 3), -EINVAL);
		assert_int_equal(sl_bitmap_count(back, 64), 0);
		bad[2] = (struct sl_range){ base + 60, 4 };
		assert_int_equal(sl_bitmap_from_ranges(back, 64, base, bad, 3), 0);
		assert_int_equal(back[0], 0xfull | (0x3ull << 10) | (0xfull << 60));
		assert_int_equal(sl_bitmap_from_ranges(back, 64, base, NULL, 1), -EINVAL);
		assert_int_equal(sl_bitmap_from_ranges(back, 64, UINT64_MAX - 10, bad, 0), -EINVAL);
	}
	free(w);
	free(back);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_env_picks_isa),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_or_andnot),
		cmocka_unit_test(test_set_clear_range),
		cmocka_unit_test(test_from_ranges_round_trip),
	};

	/* Read once, at the library's first call: the first test checks it. */
	setenv("SL_BITMAP_ISA", "scalar", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
