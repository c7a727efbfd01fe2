/* SPDX-License-Identifier: MIT */
/*
 * test_policy_sweep.c — `sluice sweep` plumbing, against a fake run command
 * (SLUICE_SWEEP_RUN_CMD): the argv each run gets, the order of runs, the
 * JSON array and table it builds, failures, --stop-on-error, --repeat, and
 * the gnuplot plot (when gnuplot is installed). A sweep over the real
 * `sluice run` is an e2e matter.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

static char dir[64];
static char sluice[512];
static char logpath[128];

/* downtime = limit / 10 (+ .5), total = 1000 + limit; limit 666 fails. */
static const char fake[] =
	"#!/bin/sh\n"
	"echo \"$@\" >> \"$SWEEP_FAKE_LOG\"\n"
	"lim=300\n"
	"while [ $# -gt 0 ]; do\n"
	"  case \"$1\" in --downtime-limit) lim=${2%ms}; shift;; esac\n"
	"  shift\n"
	"done\n"
	"if [ \"$lim\" = 666 ]; then echo '{\"error\":\"boom\",\"verified\":false}'; exit 1; fi\n"
	"echo 'a line that is not JSON'\n"
	"printf '{\"workload\":\"synthetic\",\"verified\":true,\"downtime_ms\":%s.5,"
	"\"e2e_downtime_ms\":%s.75,\"total_ms\":%s,\"iterations\":[{},{},{}],"
	"\"transferred_bytes\":2097152,\"channels\":2}\\n' $((lim/10)) $((lim/10)) $((1000+lim))\n";

static int setup(void **state)
{
	const char *b = getenv("SL_BUILD_DIR");
	char path[128];
	FILE *f;

	(void)state;
	if (!b)
		return -1;
	snprintf(sluice, sizeof(sluice), "%s/engine/sluice", b);
	snprintf(dir, sizeof(dir), "/tmp/sl-sweep-test-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/fake-run", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(fake, f);
	fclose(f);
	chmod(path, 0755);
	snprintf(logpath, sizeof(logpath), "%s/args.log", dir);
	setenv("SLUICE_SWEEP_RUN_CMD", path, 1);
	setenv("SWEEP_FAKE_LOG", logpath, 1);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Runs `sluice sweep ARGS` (stderr dropped); returns its exit code and
 * the stdout text (malloc'd) in *out. */
static int sweep(const char *args, char **out)
{
	char cmd[1024], buf[4096];
	size_t len = 0, cap = 1 << 16;
	FILE *p;
	int st;

	unlink(logpath);
	snprintf(cmd, sizeof(cmd), "'%s' sweep %s 2>/dev/null", sluice, args);
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

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = calloc(1, 1 << 16);

	assert_non_null(s);
	if (f) {
		size_t n = fread(s, 1, (1 << 16) - 1, f);

		s[n] = '\0';
		fclose(f);
	}
	return s;
}

static struct json_object *get(struct json_object *o, const char *k)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, k, &v));
	return v;
}

static void test_json_and_argv(void **state)
{
	char *out, *log;
	struct json_object *arr, *r;

	(void)state;
	assert_int_equal(sweep("--json --param downtime-limit=30ms,100ms,666ms "
			       "--param channels=1,4 -- --workload synthetic --mem 64M", &out), 1);
	log = slurp(logpath);
	assert_string_equal(log,
		"run --json --workload synthetic --mem 64M --downtime-limit 30ms --channels 1\n"
		"run --json --workload synthetic --mem 64M --downtime-limit 30ms --channels 4\n"
		"run --json --workload synthetic --mem 64M --downtime-limit 100ms --channels 1\n"
		"run --json --workload synthetic --mem 64M --downtime-limit 100ms --channels 4\n"
		"run --json --workload synthetic --mem 64M --downtime-limit 666ms --channels 1\n"
		"run --json --workload synthetic --mem 64M --downtime-limit 666ms --channels 4\n");
	free(log);

	arr = json_tokener_parse(out);
	assert_non_null(arr);
	assert_int_equal(json_object_get_type(arr), json_type_array);
	assert_int_equal(json_object_array_length(arr), 6);
	r = json_object_array_get_idx(arr, 3);
	assert_string_equal(json_object_get_string(get(get(r, "params"), "downtime-limit")), "100ms");
	assert_string_equal(json_object_get_string(get(get(r, "params"), "channels")), "4");
	assert_int_equal(json_object_get_int(get(r, "exit_code")), 0);
	assert_true(json_object_get_boolean(get(r, "ok")));
	assert_int_equal(json_object_get_int(get(r, "repeat")), 1);
	assert_true(json_object_get_double(get(get(r, "result"), "downtime_ms")) == 10.5);
	assert_true(json_object_get_double(get(get(r, "result"), "total_ms")) == 1100.0);
	assert_false(json_object_object_get_ex(r, "error", NULL));
	r = json_object_array_get_idx(arr, 5);
	assert_int_equal(json_object_get_int(get(r, "exit_code")), 1);
	assert_false(json_object_get_boolean(get(r, "ok")));
	assert_string_equal(json_object_get_string(get(r, "error")), "boom");
	json_object_put(arr);
	free(out);
}

static void test_table_repeat_stop(void **state)
{
	char *out, *log;

	(void)state;
	assert_int_equal(sweep("--param downtime-limit=30ms,300ms --repeat 2", &out), 0);
	assert_non_null(strstr(out, "downtime-limit"));
	assert_non_null(strstr(out, "downtime ms"));
	/* 300ms, second repeat: downtime 30.5, e2e 30.75, total 1300, 3 iters, 2 MiB */
	assert_non_null(strstr(out, "300ms              2    0      yes        30.50        30.75     1300.00      3         2.00"));
	free(out);
	log = slurp(logpath);
	assert_string_equal(log,
		"run --json --downtime-limit 30ms\n"
		"run --json --downtime-limit 30ms\n"
		"run --json --downtime-limit 300ms\n"
		"run --json --downtime-limit 300ms\n");
	free(log);

	/* the failing value first: --stop-on-error ends the sweep there */
	assert_int_equal(sweep("--stop-on-error --param downtime-limit=666ms,30ms", &out), 1);
	assert_non_null(strstr(out, "error: boom"));
	free(out);
	log = slurp(logpath);
	assert_string_equal(log, "run --json --downtime-limit 666ms\n");
	free(log);
}

static void test_usage_errors(void **state)
{
	char *out;

	(void)state;
	assert_int_equal(sweep("", &out), 2);
	free(out);
	assert_int_equal(sweep("--param nonsense=1,2", &out), 2);
	free(out);
	assert_int_equal(sweep("--param downtime-limit=fast", &out), 2);
	free(out);
	assert_int_equal(sweep("--param policy=threshold,qemu", &out), 2);
	free(out);
	assert_int_equal(sweep("--param channels=1 --param channels=2", &out), 2);
	free(out);
	assert_int_equal(sweep("--param channels=1 -- --json", &out), 2);
	free(out);
	/* nothing ran */
	assert_int_equal(access(logpath, F_OK), -1);
}

static void test_plot(void **state)
{
	char *out, path[128], args[256];
	unsigned char magic[8] = { 0 };
	FILE *f;

	(void)state;
	if (system("gnuplot -e 'set terminal' >/dev/null 2>&1") != 0) {
		/* gnuplot missing: --plot must say so with exit 4 */
		snprintf(args, sizeof(args), "--param downtime-limit=30ms --plot %s/p.png", dir);
		assert_int_equal(sweep(args, &out), 4);
		free(out);
		skip();
	}
	snprintf(path, sizeof(path), "%s/p.png", dir);
	snprintf(args, sizeof(args), "--param downtime-limit=30ms,100ms,300ms --param policy=threshold,ramp --plot %s", path);
	assert_int_equal(sweep(args, &out), 0);
	free(out);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(magic, 1, 8, f), 8);
	fclose(f);
	assert_memory_equal(magic, "\x89PNG\r\n\x1a\n", 8);

	/* every run failed: nothing to plot is an error, not a gnuplot crash */
	snprintf(args, sizeof(args), "--param downtime-limit=666ms --plot %s/none.png", dir);
	assert_int_equal(sweep(args, &out), 1);
	free(out);
	snprintf(path, sizeof(path), "%s/none.png", dir);
	assert_int_equal(access(path, F_OK), -1);

	/* a category on the x axis, svg by extension */
	snprintf(path, sizeof(path), "%s/p.svg", dir);
	snprintf(args, sizeof(args), "--param policy=threshold,predictive,ramp --plot %s", path);
	assert_int_equal(sweep(args, &out), 0);
	free(out);
	out = slurp(path);
	assert_non_null(strstr(out, "<svg"));
	assert_non_null(strstr(out, "predictive"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_and_argv),
		cmocka_unit_test(test_table_repeat_stop),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_plot),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
