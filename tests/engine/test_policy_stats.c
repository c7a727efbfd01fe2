/* SPDX-License-Identifier: MIT */
/*
 * test_policy_stats.c — the stats structs the policies read: iteration
 * array growth, deep copy, JSON keys and round trip, the readable report.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "sl_stats.h"

static void fill(struct sl_migration_stats *st, size_t iters)
{
	sl_stats_init(st);
	st->transferred_bytes = 600000000;
	st->remaining_bytes = 0;
	st->total_bytes = 536870912;
	st->zero_pages = 1000;
	st->normal_pages = 146000;
	st->page_size = 4096;
	st->dirty_pages_rate = 25000;
	st->throughput_bps = 950000000;
	st->dirty_sync_count = (uint64_t)iters + 1;
	st->precopy_bytes = 590000000;
	st->downtime_bytes = 10000000;
	st->kernel_copied_bytes = 600000000;
	st->device_bytes = 4096;
	st->setup_ns = 2500000;
	st->total_ns = 812345678;
	st->downtime_ns = 12345678;
	st->e2e_downtime_ns = 14000000;
	st->breakdown = (struct sl_downtime_breakdown){ 1000000, 9000000, 500000,
							 200000, 300000, 1000000 };
	st->channels = 4;
	st->downtime_limit_ns = 300000000;
	st->bandwidth_limit_bps = 1000000000;
	snprintf(st->policy, sizeof(st->policy), "threshold");
	snprintf(st->zero_copy_mode, sizeof(st->zero_copy_mode), "send_zc");
	snprintf(st->outcome, sizeof(st->outcome), "completed");
	for (size_t i = 0; i < iters; i++) {
		struct sl_iter_record r = {
			.index = (uint32_t)i + 1,
			.dirty_bytes = 1000000 * (i + 1),
			.sent_bytes = 2000000 * (i + 1),
			.zero_pages = i,
			.normal_pages = 10 * i,
			.sync_ns = 1000 + i,
			.scan_ns = 2000 + i,
			.send_ns = 3000000 + i,
			.duration_ns = 3100000 + i,
			.bandwidth_bps = 900000000,
			.dirty_rate_bps = 50000000 + i,
			.pending_bytes = 4096 * i,
			.device_pending_bytes = 8192,
			.predicted_downtime_ns = 123456 + i,
		};
		assert_int_equal(sl_stats_add_iter(st, &r), 0);
	}
}

static void test_iterations_and_copy(void **state)
{
	struct sl_migration_stats a, b;

	(void)state;
	fill(&a, 40); /* grows past the first allocation */
	assert_int_equal(a.n_iter, 40);
	assert_int_equal(a.iterations, 40);
	assert_int_equal(a.iter[39].index, 40);
	assert_int_equal(a.iter[39].dirty_bytes, 40000000);
	assert_int_equal(sl_stats_add_iter(&a, NULL), -EINVAL);

	sl_stats_init(&b);
	assert_int_equal(sl_stats_copy(&b, &a), 0);
	assert_ptr_not_equal(b.iter, a.iter);
	assert_int_equal(b.n_iter, 40);
	assert_memory_equal(b.iter, a.iter, 40 * sizeof(*a.iter));
	assert_int_equal(b.downtime_ns, a.downtime_ns);
	assert_string_equal(b.policy, "threshold");
	assert_int_equal(sl_stats_copy(&b, &b), -EINVAL);
	sl_stats_exit(&a);
	assert_null(a.iter);
	assert_int_equal(a.n_iter, 0);
	assert_int_equal(a.size, sizeof(a));
	/* b survives a's release */
	assert_int_equal(b.iter[0].sent_bytes, 2000000);
	sl_stats_exit(&b);
	sl_stats_exit(NULL);
}

static double get_d(struct json_object *o, const char *k)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, k, &v));
	return json_object_get_double(v);
}

static int64_t get_i(struct json_object *o, const char *k)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, k, &v));
	assert_int_equal(json_object_get_type(v), json_type_int);
	return json_object_get_int64(v);
}

static void test_json_keys_and_round_trip(void **state)
{
	struct sl_migration_stats st, back;
	struct json_object *o = NULL, *v, *it, *parsed;
	struct sl_errbuf eb = { { 0 } };
	const char *text;

	(void)state;
	fill(&st, 3);
	assert_int_equal(sl_stats_to_json(&st, &o), 0);
	/* the keys `sluice run --json` promises */
	assert_true(get_d(o, "downtime_ms") == 12.345678);
	assert_true(get_d(o, "e2e_downtime_ms") == 14.0);
	assert_true(get_d(o, "total_ms") == 812.345678);
	assert_true(get_d(o, "setup_ms") == 2.5);
	assert_true(get_d(o, "downtime_limit_ms") == 300.0);
	assert_int_equal(get_i(o, "transferred_bytes"), 600000000);
	assert_int_equal(get_i(o, "zero_pages"), 1000);
	assert_int_equal(get_i(o, "channels"), 4);
	assert_int_equal(get_i(o, "kernel_copied_bytes"), 600000000);
	assert_int_equal(get_i(o, "iteration_count"), 3);
	assert_true(json_object_object_get_ex(o, "policy", &v));
	assert_string_equal(json_object_get_string(v), "threshold");
	assert_true(json_object_object_get_ex(o, "zero_copy_mode", &v));
	assert_string_equal(json_object_get_string(v), "send_zc");
	assert_true(json_object_object_get_ex(o, "downtime_breakdown", &v));
	assert_true(get_d(v, "final_ram_ms") == 9.0);
	assert_true(get_d(v, "dest_load_ms") == 0.3);
	assert_true(json_object_object_get_ex(o, "iterations", &v));
	assert_int_equal(json_object_array_length(v), 3);
	it = json_object_array_get_idx(v, 2);
	assert_int_equal(get_i(it, "index"), 3);
	assert_int_equal(get_i(it, "dirty_bytes"), 3000000);
	assert_int_equal(get_i(it, "bandwidth_bps"), 900000000);
	assert_true(get_d(it, "send_ms") == 3.000002);

	/* text round trip: exact back to the ns */
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	parsed = json_tokener_parse(text);
	assert_non_null(parsed);
	sl_stats_init(&back);
	assert_int_equal(sl_stats_from_json(parsed, &back, &eb), 0);
	assert_int_equal(back.n_iter, 3);
	assert_memory_equal(back.iter, st.iter, 3 * sizeof(*st.iter));
	assert_memory_equal(&back.breakdown, &st.breakdown, sizeof(st.breakdown));
	assert_int_equal(back.downtime_ns, st.downtime_ns);
	assert_int_equal(back.total_ns, st.total_ns);
	assert_int_equal(back.dirty_sync_count, 4);
	assert_string_equal(back.outcome, "completed");
	json_object_put(parsed);
	json_object_put(o);

	/* wrong types are refused with the key named */
	parsed = json_tokener_parse("{\"downtime_ms\": \"fast\"}");
	assert_int_equal(sl_stats_from_json(parsed, &back, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "downtime_ms"));
	json_object_put(parsed);
	parsed = json_tokener_parse("{\"iterations\": [1, 2]}");
	assert_int_equal(sl_stats_from_json(parsed, &back, &eb), -EINVAL);
	assert_int_equal(back.n_iter, 0);
	json_object_put(parsed);
	parsed = json_tokener_parse("[1]");
	assert_int_equal(sl_stats_from_json(parsed, &back, &eb), -EINVAL);
	json_object_put(parsed);
	parsed = json_tokener_parse("{\"zero_pages\": -4}");
	assert_int_equal(sl_stats_from_json(parsed, &back, &eb), -EINVAL);
	json_object_put(parsed);
	assert_int_equal(sl_stats_to_json(NULL, &o), -EINVAL);
	sl_stats_exit(&back);
	sl_stats_exit(&st);
}

static void test_report(void **state)
{
	struct sl_migration_stats st;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	fill(&st, 2);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(sl_stats_report(f, &st), 0);
	fclose(f);
	assert_non_null(strstr(buf, "Iterations (2):"));
	assert_non_null(strstr(buf, "dirty MiB"));
	/* iteration 2: 2 MB dirty = 1.91 MiB, 4 MB sent = 3.81 MiB */
	assert_non_null(strstr(buf, "   2       1.91       3.81"));
	assert_non_null(strstr(buf, "Downtime: 12.35 ms at the source"));
	assert_non_null(strstr(buf, "14.00 ms end to end"));
	assert_non_null(strstr(buf, "  final RAM          9.00 ms"));
	assert_non_null(strstr(buf, "  policy             threshold, downtime limit 300.0 ms"));
	assert_non_null(strstr(buf, "  channels           4 (send_zc)"));
	assert_non_null(strstr(buf, "146000 normal, 1000 zero"));
	free(buf);
	assert_int_equal(sl_stats_report(NULL, &st), -EINVAL);
	sl_stats_exit(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_iterations_and_copy),
		cmocka_unit_test(test_json_keys_and_round_trip),
		cmocka_unit_test(test_report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
