/* SPDX-License-Identifier: MIT */
/*
 * test_bitmap_exhaustive.c — sl_bitmap_scan on every 16-bit pattern at every
 * bit offset of a word, on empty and full backgrounds, on every ISA path
 * this CPU has (the others are reported as skipped).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sl_bitmap.h"

struct ranges {
	struct sl_range *r;
	size_t n;
};

static void push(struct ranges *rs, uint64_t first, uint64_t npages)
{
	assert_true(rs->n < 80);
	rs->r[rs->n].first = first;
	rs->r[rs->n].npages = npages;
	rs->n++;
}

static void expect_equal(const struct ranges *got, const struct ranges *want, const char *what)
{
	/* The quick check first: this runs millions of times under ASan. */
	if (got->n == want->n && !memcmp(got->r, want->r, got->n * sizeof(*got->r)))
		return;
	if (got->n != want->n)
		fail_msg("%s: %zu ranges, expected %zu", what, got->n, want->n);
	for (size_t i = 0; i < got->n; i++) {
		if (got->r[i].first != want->r[i].first || got->r[i].npages != want->r[i].npages)
			fail_msg("%s: range %zu is (%llu,+%llu), expected (%llu,+%llu)", what, i,
				 (unsigned long long)got->r[i].first,
				 (unsigned long long)got->r[i].npages,
				 (unsigned long long)want->r[i].first,
				 (unsigned long long)want->r[i].npages);
	}
}

/* Expected ranges when exactly the sorted pages pos[0..n) differ from the
 * background (bg 0: they are the set pages; bg 1: they are the holes). */
static void expected_from_positions(const uint64_t *pos, size_t n, int bg, uint64_t npages,
				    uint64_t base, struct ranges *out)
{
	out->n = 0;
	if (!bg) {
		for (size_t i = 0; i < n;) {
			size_t j = i + 1;

			while (j < n && pos[j] == pos[j - 1] + 1)
				j++;
			push(out, base + pos[i], pos[j - 1] - pos[i] + 1);
			i = j;
		}
		return;
	}
	for (size_t i = 0; i <= n; i++) {
		uint64_t from = i ? pos[i - 1] + 1 : 0, to = i < n ? pos[i] : npages;

		if (to > from)
			push(out, base + from, to - from);
	}
}

/* Every 16-bit pattern at every bit offset of a word, on an empty (and, for
 * every 4th pattern, a full) background, in a bitmap with a partial last
 * word, on every ISA path the CPU has. Each scan holds eight placements two
 * words apart (offset off + 8q in word 1 + 2q, q = 0..7), so 8 scans cover
 * the 64 offsets; those at offsets > 48 cross a word boundary (words 3/4,
 * 7/8, 11/12 and 15/16 are 256-bit block boundaries for AVX2, 7/8 and 15/16
 * for AVX-512), and the full background carries runs across skipped blocks.
 * Expected ranges are computed from the
 * placed bit positions, not from the bitmap. */
static void test_exhaustive16(void **state)
{
	enum { NW = 17 };
	const uint64_t npages = 16 * 64 + 17;
	static const enum sl_isa isas[] = { SL_ISA_SCALAR, SL_ISA_AVX2, SL_ISA_AVX512 };
	uint64_t w[NW], pos[128];
	struct sl_range want_buf[80];
	struct ranges got = { 0 }, want = { want_buf, 0 };
	unsigned tested = 0;

	(void)state;
	for (int bg = 0; bg < 2; bg++) {
		for (uint32_t pat = 0; pat < 65536; pat++) {
			/* The full background (runs carried across skipped
			 * blocks) takes every 4th pattern, to stay fast under
			 * ASan; the empty one takes them all. */
			if (bg && pat % 4)
				continue;
			for (unsigned off = 0; off < 8; off++) {
				size_t n = 0;

				memset(w, bg ? 0xff : 0, sizeof(w));
				for (unsigned q = 0; q < 8; q++) {
					uint64_t at = (1 + 2 * q) * 64 + off + 8 * q;

					for (unsigned b = 0; b < 16; b++) {
						uint64_t i = at + b;

						if ((pat >> b) & 1) {
							w[i / 64] ^= 1ull << (i % 64);
							pos[n++] = i;
						}
					}
				}
				expected_from_positions(pos, n, bg, npages, 1000, &want);
				for (size_t k = 0; k < sizeof(isas) / sizeof(isas[0]); k++) {
					if (sl_bitmap_force_isa(isas[k]))
						continue; /* this CPU lacks it */
					/* One call: at most 65 ranges, all fit. */
					struct sl_scan_cursor c;
					struct sl_range out[600]; /* room for the block paths */
					ssize_t m;

					sl_scan_cursor_init(&c);
					m = sl_bitmap_scan(w, npages, 1000, NULL, &c, out, 600);
					assert_true(sl_scan_cursor_done(&c));
					got.r = out;
					got.n = (size_t)m;
					expect_equal(&got, &want, sl_isa_name(isas[k]));
					got.r = NULL;
					tested |= 1u << k;
				}
			}
		}
	}
	for (size_t k = 0; k < sizeof(isas) / sizeof(isas[0]); k++)
		print_message("[          ] %s: %s\n", sl_isa_name(isas[k]),
			      tested & (1u << k) ? "tested" : "SKIPPED (CPU lacks it)");
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exhaustive16),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
