/* SPDX-License-Identifier: MIT */
/*
 * test_placement_cli.c — `sluice topology`: the plan it prints (JSON) for a
 * synthetic machine and given regions, and its usage errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <json-c/json.h>

static char sluice[512];

static int setup(void **state)
{
	const char *b = getenv("SL_BUILD_DIR");

	(void)state;
	if (!b)
		return -1;
	snprintf(sluice, sizeof(sluice), "%s/engine/sluice", b);
	return 0;
}

static int topology(const char *args, char **out)
{
	char cmd[1024], buf[4096];
	size_t len = 0, cap = 1 << 18;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' topology %s 2>/dev/null", sluice, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	*out = calloc(1, cap);
	assert_non_null(*out);
	while (fgets(buf, sizeof(buf), p)) {
		size_t n = strlen(buf);

		assert_true(len + n < cap);
		memcpy(*out + len, buf, n + 1);
		len += n;
	}
	st = pclose(p);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static struct json_object *get(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, k, &v));
	return v;
}

static void test_json_plan(void **state)
{
	char *out;
	struct json_object *o, *w;
	const struct { const char *role; int node, core; const char *cpus; } want[] = {
		{ "scan", 0, 0, "0" }, { "scan", 0, 1, "1" }, { "scan", 0, 2, "2" },
		{ "scan", 2, 8, "8" }, { "channel", 0, 3, "3" }, { "channel", 2, 9, "9" },
	};

	(void)state;
	assert_int_equal(topology("--json --synthetic 'pack:2 numa:2 core:4 pu:1' "
				  "--scanners 4 --channels 2 --region 0:3G --region 2:1G", &out), 0);
	o = json_tokener_parse(out);
	assert_non_null(o);
	assert_string_equal(json_object_get_string(get(o, "synthetic")), "pack:2 numa:2 core:4 pu:1");
	assert_int_equal(json_object_get_int(get(get(o, "topology"), "n_nodes")), 4);
	assert_int_equal(json_object_get_int(get(get(o, "topology"), "n_cores")), 16);
	w = get(get(o, "plan"), "workers");
	assert_int_equal(json_object_array_length(w), 6);
	for (size_t i = 0; i < 6; i++) {
		struct json_object *x = json_object_array_get_idx(w, i);

		assert_string_equal(json_object_get_string(get(x, "role")), want[i].role);
		assert_int_equal(json_object_get_int(get(x, "node")), want[i].node);
		assert_int_equal(json_object_get_int(get(x, "core")), want[i].core);
		assert_string_equal(json_object_get_string(get(x, "cpus")), want[i].cpus);
	}
	json_object_put(o);
	free(out);
}

static void test_text_and_errors(void **state)
{
	char *out;

	(void)state;
	assert_int_equal(topology("", &out), 0);
	assert_non_null(strstr(out, "Topology (this machine)"));
	assert_non_null(strstr(out, "Placement (2 scanner(s), 2 channel(s))"));
	free(out);
	assert_int_equal(topology("--synthetic 'numa:2 core:2 pu:2' --scanners 1 --channels 1", &out), 0);
	assert_non_null(strstr(out, "2 NUMA node(s), 4 core(s), 8 CPU(s)"));
	assert_non_null(strstr(out, "channel      0     1     2  4-5"));
	free(out);
	assert_int_equal(topology("--synthetic 'no such thing'", &out), 2);
	free(out);
	assert_int_equal(topology("--region 9:1G", &out), 2);
	free(out);
	assert_int_equal(topology("--region 0", &out), 2);
	free(out);
	assert_int_equal(topology("--scanners 0 --channels 0", &out), 2);
	free(out);
	assert_int_equal(topology("--help", &out), 0);
	assert_non_null(strstr(out, "usage: sluice topology"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_plan),
		cmocka_unit_test(test_text_and_errors),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
