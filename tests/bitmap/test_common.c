/* SPDX-License-Identifier: MIT */
/* test_common.c — the helpers every module shares (bitmap/sl_common.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sl_common.h"

static uint64_t parsed(const char *s, int rate)
{
	uint64_t v = 0xdead;

	assert_int_equal(sl_parse_scaled(s, rate, &v), 0);
	return v;
}

static void test_sizes(void **state)
{
	(void)state;
	assert_int_equal(parsed("0", 0), 0);
	assert_int_equal(parsed("4096", 0), 4096);
	assert_int_equal(parsed("64K", 0), 64ull << 10);
	assert_int_equal(parsed("512m", 0), 512ull << 20);
	assert_int_equal(parsed("512MiB", 0), 512ull << 20);
	assert_int_equal(parsed("2G", 0), 2ull << 30);
	assert_int_equal(parsed("1.5G", 0), 3ull << 29);
	assert_int_equal(parsed("1T", 0), 1ull << 40);
	assert_int_equal(parsed("100B", 0), 100);
	assert_int_equal(parsed("20M/s", 1), 20ull << 20);
	assert_int_equal(parsed("16777215T", 0), 16777215ull << 40);
}

static void test_rejects(void **state)
{
	static const char *const bad[] = {
		"", "-1", "G", "12X", "1G/s", "1.2.3K", "16777216T", "18446744073709551616", " 1",
	};
	uint64_t v = 7;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sl_parse_scaled(bad[i], 0, &v), -EINVAL);
	assert_int_equal(sl_parse_scaled(NULL, 0, &v), -EINVAL);
	assert_int_equal(sl_parse_scaled("1", 0, NULL), -EINVAL);
	assert_int_equal(sl_parse_scaled("5M/s/s", 1, &v), -EINVAL);
	assert_int_equal(v, 7); /* untouched on failure */
}

static void test_errbuf(void **state)
{
	struct sl_errbuf eb;
	char longer[400];

	(void)state;
	assert_int_equal(sl_err(&eb, -EIO, "channel %d: %s", 3, "gone"), -EIO);
	assert_string_equal(eb.msg, "channel 3: gone");
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(sl_err(&eb, -E2BIG, "%s", longer), -E2BIG);
	assert_int_equal(strlen(eb.msg), SL_ERRMSG_MAX - 1); /* truncated, terminated */
	assert_int_equal(sl_err(NULL, -EINVAL, "no buffer"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_errbuf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
