/* SPDX-License-Identifier: MIT */
/*
 * cmd_sweep.c — `sluice sweep`: run `sluice run --json` over a list of
 * parameter values (the cartesian product when several --param are
 * given), collect the results into a table / a JSON array, and plot
 * downtime and total time against the first parameter with gnuplot.
 *
 * Each run is a separate process: this same executable (/proc/self/exe),
 * so a sweep measures exactly what `sluice run` measures. Tests point
 * SLUICE_SWEEP_RUN_CMD at a fake run command to check the plumbing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "sl_policy.h"

#define MAX_PARAMS 4
#define MAX_VALUES 64
#define MAX_RUNS 4096
#define MAX_OUTPUT (64u << 20)

enum pkind { P_DURATION, P_SIZE, P_RATE, P_UINT, P_NAME };

struct pdef {
	const char *name;    /* also the `sluice run` option, without "--" */
	enum pkind kind;
	const char *unit;    /* of the plotted x value */
};

static const struct pdef pdefs[] = {
	{ "downtime-limit", P_DURATION, "ms" },
	{ "channels", P_UINT, "" },
	{ "bandwidth", P_RATE, "MB/s" },
	{ "wss", P_SIZE, "MiB" },
	{ "dirty-rate", P_RATE, "MB/s" },
	{ "policy", P_NAME, "" },
	{ "mem", P_SIZE, "MiB" },
	{ "pattern", P_NAME, "" },
	{ "workload", P_NAME, "" },
	{ "zero-copy", P_NAME, "" },
	{ "stall-action", P_NAME, "" },
	{ "max-iterations", P_UINT, "" },
	{ "vcpus", P_UINT, "" },
	{ "dirty-log", P_NAME, "" },
};

struct param {
	const struct pdef *def;
	char *values[MAX_VALUES];
	double x[MAX_VALUES];    /* numeric value for the plot (NAN: category) */
	size_t n;
};

struct sweep {
	struct param p[MAX_PARAMS];
	size_t np;
	uint64_t repeat;
	char **extra;            /* run arguments after "--" */
	int n_extra;
	bool json, quiet, stop_on_error;
	const char *plot;
	struct json_object *results; /* array */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice sweep --param NAME=V1,V2,... [--param ...] [--repeat N]\n"
		"                    [--json] [--plot FILE.png|.svg] [--stop-on-error]\n"
		"                    [--quiet] [-- RUN-OPTIONS...]\n"
		"\n"
		"Runs `sluice run --json RUN-OPTIONS --NAME V` for every value (every\n"
		"combination when several --param are given), each run a separate\n"
		"process, and reports downtime and total time per value.\n"
		"\n"
		"  --param NAME=LIST   NAME is a `sluice run` option: downtime-limit,\n"
		"                      channels, bandwidth, wss, dirty-rate, policy, mem,\n"
		"                      pattern, workload, zero-copy, stall-action,\n"
		"                      max-iterations, vcpus, dirty-log\n"
		"  --repeat N          runs per combination (default 1)\n"
		"  --json              print one JSON array: {params, repeat, exit_code,\n"
		"                      ok, result: <the run's JSON object>} per run\n"
		"  --plot FILE         draw downtime (source and end to end) and total\n"
		"                      time against the first parameter (gnuplot; png or svg\n"
		"                      by the file's extension; means over repeats)\n"
		"  --stop-on-error     stop at the first run that does not exit 0\n"
		"  --quiet             no per-run line on stderr\n"
		"\n"
		"example:\n"
		"  sluice sweep --param downtime-limit=30ms,100ms,300ms --plot dt.png \\\n"
		"      -- --workload synthetic --mem 256M --bandwidth 1G\n"
		"\n"
		"Exit: 0 all runs exited 0; 1 some run failed (the others are still\n"
		"reported); 2 bad usage; 4 --plot asked but gnuplot is missing.\n");
}

/* ---- parameters -------------------------------------------------------- */

static int value_x(const struct pdef *d, const char *v, double *x)
{
	uint64_t u;

	switch (d->kind) {
	case P_DURATION:
		if (sl_cli_parse_duration(v, &u) || !u)
			return -EINVAL;
		*x = (double)u / 1e6;
		return 0;
	case P_SIZE:
		if (sl_cli_parse_size(v, &u))
			return -EINVAL;
		*x = (double)u / (1024.0 * 1024.0);
		return 0;
	case P_RATE:
		if (sl_cli_parse_rate(v, &u))
			return -EINVAL;
		*x = (double)u / 1e6;
		return 0;
	case P_UINT:
		if (sl_cli_parse_uint(v, 0, UINT32_MAX, &u))
			return -EINVAL;
		*x = (double)u;
		return 0;
	case P_NAME:
		if (!*v || strchr(v, '"') || strchr(v, '\'') || strchr(v, '\\'))
			return -EINVAL;
		if (!strcmp(d->name, "policy")) {
			enum sl_policy_kind k;

			if (sl_policy_kind_from_name(v, &k) || k == SL_POLICY_CUSTOM)
				return -EINVAL;
		}
		*x = NAN;
		return 0;
	}
	return -EINVAL;
}

static int parse_param(struct sweep *s, const char *cmd, const char *arg)
{
	const char *eq = strchr(arg, '=');
	struct param *p;
	char *list, *save = NULL, *tok;

	if (!eq || eq == arg)
		return sl_cli_usage_error(cmd, "--param wants NAME=V1,V2,..., not '%s'", arg);
	if (s->np == MAX_PARAMS)
		return sl_cli_usage_error(cmd, "at most %d --param options", MAX_PARAMS);
	p = &s->p[s->np];
	for (size_t i = 0; i < SL_ARRAY_SIZE(pdefs); i++)
		if (strlen(pdefs[i].name) == (size_t)(eq - arg) &&
		    !strncmp(pdefs[i].name, arg, (size_t)(eq - arg)))
			p->def = &pdefs[i];
	if (!p->def)
		return sl_cli_usage_error(cmd, "--param: unknown parameter '%.*s'",
					  (int)(eq - arg), arg);
	for (size_t i = 0; i < s->np; i++)
		if (s->p[i].def == p->def)
			return sl_cli_usage_error(cmd, "--param %s given twice", p->def->name);
	list = strdup(eq + 1);
	if (!list)
		return SL_EXIT_FAILED;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (p->n == MAX_VALUES) {
			free(list);
			return sl_cli_usage_error(cmd, "--param %s: at most %d values", p->def->name, MAX_VALUES);
		}
		if (value_x(p->def, tok, &p->x[p->n])) {
			int r = sl_cli_usage_error(cmd, "--param %s: bad value '%s'", p->def->name, tok);

			free(list);
			return r;
		}
		p->values[p->n] = strdup(tok);
		if (!p->values[p->n]) {
			free(list);
			return SL_EXIT_FAILED;
		}
		p->n++;
	}
	free(list);
	if (!p->n)
		return sl_cli_usage_error(cmd, "--param %s: no values", p->def->name);
	s->np++;
	return 0;
}

/* ---- running one `sluice run` ----------------------------------------- */

/* The command to run: SLUICE_SWEEP_RUN_CMD (tests: a fake `sluice`) or this
 * very executable. */
static const char *run_exe(void)
{
	const char *e = getenv("SLUICE_SWEEP_RUN_CMD");

	return e && *e ? e : "/proc/self/exe";
}

/* Spawns argv, collects its stdout (stderr passes through). Returns 0 and
 * sets *status (exit code, or 128 + signal), or -errno. */
static int spawn_collect(char **argv, char **out, size_t *out_len, int *status)
{
	int fds[2], st;
	pid_t pid;
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		free(buf);
		return -errno;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int e = -errno;

		close(fds[0]);
		close(fds[1]);
		free(buf);
		return e;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execv(argv[0], argv);
		fprintf(stderr, "sluice sweep: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nb = cap >= MAX_OUTPUT ? NULL : realloc(buf, cap * 2);

			if (!nb)
				break; /* keep what we have; the JSON will not parse */
			buf = nb;
			cap *= 2;
		}
		n = read(fds[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			free(buf);
			return -errno;
		}
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return 0;
}

/* The last top-level JSON object in the text (a run prints one). */
static struct json_object *parse_result(const char *text)
{
	const char *p = strchr(text, '{');

	while (p) {
		struct json_object *o = json_tokener_parse(p);

		if (o && json_object_get_type(o) == json_type_object)
			return o;
		json_object_put(o);
		p = strchr(p + 1, '\n');
		p = p ? strchr(p, '{') : NULL;
	}
	return NULL;
}

static double jnum(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v) || !v)
		return NAN;
	if (json_object_get_type(v) == json_type_array)
		return (double)json_object_array_length(v);
	if (json_object_get_type(v) != json_type_int && json_object_get_type(v) != json_type_double)
		return NAN;
	return json_object_get_double(v);
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

static int do_run(struct sweep *s, const size_t *ix, uint64_t rep, size_t nrun, size_t total)
{
	char *argv[8 + 2 * MAX_PARAMS + 256];
	int ac = 0, status = -1, err;
	char *out = NULL;
	size_t out_len = 0;
	struct json_object *rec, *params, *result = NULL;

	argv[ac++] = (char *)run_exe();
	argv[ac++] = "run";
	argv[ac++] = "--json";
	for (int i = 0; i < s->n_extra; i++)
		argv[ac++] = s->extra[i];
	for (size_t i = 0; i < s->np; i++) {
		static char opt[MAX_PARAMS][40];

		snprintf(opt[i], sizeof(opt[i]), "--%s", s->p[i].def->name);
		argv[ac++] = opt[i];
		argv[ac++] = s->p[i].values[ix[i]];
	}
	argv[ac] = NULL;

	if (!s->quiet) {
		fprintf(stderr, "sweep: run %zu/%zu:", nrun, total);
		for (size_t i = 0; i < s->np; i++)
			fprintf(stderr, " %s=%s", s->p[i].def->name, s->p[i].values[ix[i]]);
		if (s->repeat > 1)
			fprintf(stderr, " (repeat %" PRIu64 ")", rep + 1);
		fprintf(stderr, "\n");
	}
	err = spawn_collect(argv, &out, &out_len, &status);
	if (err) {
		fprintf(stderr, "sluice sweep: cannot start %s: %s\n", argv[0], strerror(-err));
		return err;
	}
	result = parse_result(out);
	rec = json_object_new_object();
	params = json_object_new_object();
	if (!rec || !params) {
		json_object_put(rec);
		json_object_put(params);
		json_object_put(result);
		free(out);
		return -ENOMEM;
	}
	for (size_t i = 0; i < s->np; i++)
		json_object_object_add(params, s->p[i].def->name,
				       json_object_new_string(s->p[i].values[ix[i]]));
	json_object_object_add(rec, "params", params);
	json_object_object_add(rec, "repeat", json_object_new_int64((int64_t)rep + 1));
	json_object_object_add(rec, "exit_code", json_object_new_int(status));
	json_object_object_add(rec, "ok", json_object_new_boolean(status == 0 && result));
	if (!result) {
		char msg[160];

		snprintf(msg, sizeof(msg), "the run printed no JSON object (exit %d, %zu bytes of output)",
			 status, out_len);
		json_object_object_add(rec, "error", json_object_new_string(msg));
	} else if (jstr(result, "error") && *jstr(result, "error")) {
		json_object_object_add(rec, "error", json_object_new_string(jstr(result, "error")));
	}
	json_object_object_add(rec, "result", result);
	json_object_array_add(s->results, rec);
	free(out);
	return status;
}

/* ---- output -------------------------------------------------------------- */

/* One right-aligned table cell; "-" for a figure the run did not report. */
static void cell(double v, int width, int prec)
{
	if (isnan(v))
		printf(" %*s", width, "-");
	else
		printf(" %*.*f", width, prec, v);
}

static void print_table(const struct sweep *s)
{
	size_t n = json_object_array_length(s->results);

	for (size_t i = 0; i < s->np; i++)
		printf("%-16s ", s->p[i].def->name);
	printf("%3s %4s %8s %12s %12s %11s %6s %12s\n", "rep", "exit", "verified",
	       "downtime ms", "e2e dt ms", "total ms", "iters", "sent MiB");
	for (size_t r = 0; r < n; r++) {
		struct json_object *rec = json_object_array_get_idx(s->results, r), *params, *res, *v;
		const char *err = jstr(rec, "error");

		json_object_object_get_ex(rec, "params", &params);
		json_object_object_get_ex(rec, "result", &res);
		for (size_t i = 0; i < s->np; i++)
			printf("%-16s ", jstr(params, s->p[i].def->name));
		printf("%3d %4d %8s", (int)jnum(rec, "repeat"), (int)jnum(rec, "exit_code"),
		       res && json_object_object_get_ex(res, "verified", &v) && v
			       ? (json_object_get_boolean(v) ? "yes" : "NO") : "-");
		cell(jnum(res, "downtime_ms"), 12, 2);
		cell(jnum(res, "e2e_downtime_ms"), 12, 2);
		cell(jnum(res, "total_ms"), 11, 2);
		cell(jnum(res, "iterations"), 6, 0);
		cell(jnum(res, "transferred_bytes") / (1024.0 * 1024.0), 12, 2);
		printf("\n");
		if (err && *err)
			printf("    error: %s\n", err);
	}
}

/* gnuplot's terminal for the file: svg by extension, else pngcairo, png. */
static const char *pick_terminal(const char *file, char *why, size_t whylen)
{
	char *argv[] = { "gnuplot", "-e", "set terminal", NULL };
	bool has_png = false, has_pngcairo = false, has_svg = false;
	int fds[2], st;
	pid_t pid;
	FILE *f;
	char line[256];
	const char *ext = strrchr(file, '.');

	if (pipe2(fds, O_CLOEXEC) < 0)
		return NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return NULL;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, STDIN_FILENO);
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO); /* gnuplot lists terminals on stderr */
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		char name[64];

		if (sscanf(line, " %63s", name) != 1)
			continue;
		has_png |= !strcmp(name, "png");
		has_pngcairo |= !strcmp(name, "pngcairo");
		has_svg |= !strcmp(name, "svg");
	}
	if (f)
		fclose(f);
	else
		close(fds[0]);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 127) {
		snprintf(why, whylen, "gnuplot is not installed (apt-get install gnuplot-nox)");
		return NULL;
	}
	if (ext && !strcmp(ext, ".svg")) {
		if (has_svg)
			return "svg size 900,600 dynamic";
		snprintf(why, whylen, "this gnuplot has no svg terminal");
		return NULL;
	}
	if (has_pngcairo)
		return "pngcairo size 900,600";
	if (has_png)
		return "png size 900,600";
	snprintf(why, whylen, "this gnuplot has neither pngcairo nor png; try --plot FILE.svg");
	return NULL;
}

/* Writes the data file: one block per series (the values of the params
 * after the first), one line per value of the first param: label x
 * downtime e2e total (means over runs that reported them). */
static int write_plot_data(const struct sweep *s, FILE *f, size_t *n_series)
{
	size_t series = 1, n = json_object_array_length(s->results);

	for (size_t i = 1; i < s->np; i++)
		series *= s->p[i].n;
	*n_series = series;
	for (size_t k = 0; k < series; k++) {
		size_t rest[MAX_PARAMS] = { 0 }, kk = k;

		for (size_t i = s->np; i-- > 1;) {
			rest[i] = kk % s->p[i].n;
			kk /= s->p[i].n;
		}
		fprintf(f, "# series %zu\n", k);
		for (size_t v = 0; v < s->p[0].n; v++) {
			double sum[3] = { 0, 0, 0 };
			int cnt[3] = { 0, 0, 0 };
			static const char *keys[3] = { "downtime_ms", "e2e_downtime_ms", "total_ms" };

			for (size_t r = 0; r < n; r++) {
				struct json_object *rec = json_object_array_get_idx(s->results, r), *params, *res;
				bool match = true;

				json_object_object_get_ex(rec, "params", &params);
				json_object_object_get_ex(rec, "result", &res);
				match = !strcmp(jstr(params, s->p[0].def->name), s->p[0].values[v]);
				for (size_t i = 1; match && i < s->np; i++)
					match = !strcmp(jstr(params, s->p[i].def->name), s->p[i].values[rest[i]]);
				if (!match || !res)
					continue;
				for (int c = 0; c < 3; c++) {
					double x = jnum(res, keys[c]);

					if (!isnan(x)) {
						sum[c] += x;
						cnt[c]++;
					}
				}
			}
			fprintf(f, "\"%s\" %.6g", s->p[0].values[v], isnan(s->p[0].x[v]) ? (double)v : s->p[0].x[v]);
			for (int c = 0; c < 3; c++) {
				if (cnt[c])
					fprintf(f, " %.6f", sum[c] / cnt[c]);
				else
					fprintf(f, " NaN");
			}
			fprintf(f, "\n");
		}
		fprintf(f, "\n\n");
	}
	return ferror(f) ? -EIO : 0;
}

static void series_title(const struct sweep *s, size_t k, char *buf, size_t len)
{
	size_t rest[MAX_PARAMS] = { 0 }, pos = 0;

	buf[0] = '\0';
	for (size_t i = s->np; i-- > 1;) {
		rest[i] = k % s->p[i].n;
		k /= s->p[i].n;
	}
	for (size_t i = 1; i < s->np && pos < len; i++) {
		int w = snprintf(buf + pos, len - pos, "%s%s=%s", pos ? " " : "",
				 s->p[i].def->name, s->p[i].values[rest[i]]);
		if (w < 0)
			break;
		pos += (size_t)w;
	}
}

static bool has_points(const struct sweep *s)
{
	size_t n = json_object_array_length(s->results);

	for (size_t r = 0; r < n; r++) {
		struct json_object *res = NULL;

		json_object_object_get_ex(json_object_array_get_idx(s->results, r), "result", &res);
		if (!isnan(jnum(res, "downtime_ms")) || !isnan(jnum(res, "total_ms")))
			return true;
	}
	return false;
}

static int make_plot(const struct sweep *s)
{
	char why[160] = "", dir[] = "/tmp/sluice-sweep-XXXXXX", data[64], script[64], title[200];
	const struct param *p0 = &s->p[0];
	const char *term = pick_terminal(s->plot, why, sizeof(why));
	bool category = isnan(p0->x[0]);
	size_t series;
	FILE *f;
	int err, st;
	pid_t pid;

	if (!term) {
		fprintf(stderr, "sluice sweep: cannot plot: %s\n", why[0] ? why : "gnuplot failed");
		return SL_EXIT_UNSUPPORTED;
	}
	if (!has_points(s)) {
		fprintf(stderr, "sluice sweep: nothing to plot: no run reported downtime_ms or total_ms\n");
		return SL_EXIT_FAILED;
	}
	if (!mkdtemp(dir)) {
		fprintf(stderr, "sluice sweep: cannot make a temporary directory: %s\n", strerror(errno));
		return SL_EXIT_FAILED;
	}
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(script, sizeof(script), "%s/plot.gp", dir);
	f = fopen(data, "w");
	if (!f)
		goto io_fail;
	err = write_plot_data(s, f, &series);
	if (fclose(f) || err)
		goto io_fail;
	f = fopen(script, "w");
	if (!f)
		goto io_fail;
	fprintf(f, "set terminal %s\n", term);
	fprintf(f, "set output '%s'\n", s->plot);
	fprintf(f, "set title 'sluice sweep: downtime and total time vs %s'\n", p0->def->name);
	fprintf(f, "set xlabel '%s%s%s%s'\n", p0->def->name, p0->def->unit[0] ? " (" : "",
		p0->def->unit, p0->def->unit[0] ? ")" : "");
	fprintf(f, "set ylabel 'downtime (ms)'\nset y2label 'total time (ms)'\n");
	fprintf(f, "set ytics nomirror\nset y2tics\nset grid\nset key outside bottom center horizontal\n");
	fprintf(f, "set datafile missing 'NaN'\nset yrange [0:*]\nset y2range [0:*]\n");
	if (category)
		fprintf(f, "set xrange [-0.5:%zu.5]\n", p0->n - 1);
	else
		fprintf(f, "set offsets graph 0.05, graph 0.05, 0, 0\n");
	fprintf(f, "plot ");
	for (size_t k = 0; k < series; k++) {
		const char *xcol = category ? "2:%d:xtic(1)" : "2:%d";
		char using[32];

		series_title(s, k, title, sizeof(title));
		for (int c = 3; c <= 5; c++) {
			static const char *what[] = { "downtime (source)", "downtime (end to end)", "total time" };

			snprintf(using, sizeof(using), xcol, c);
			fprintf(f, "%s'%s' index %zu using %s with linespoints %s title '%s%s%s'",
				(k || c > 3) ? ", \\\n     " : "", data, k, using,
				c == 5 ? "axes x1y2 dashtype 2" : "axes x1y1", what[c - 3],
				title[0] ? ", " : "", title);
		}
	}
	fprintf(f, "\n");
	if (fclose(f))
		goto io_fail;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", script, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "sluice sweep: gnuplot failed on %s (kept for inspection)\n", script);
		return SL_EXIT_FAILED;
	}
	unlink(data);
	unlink(script);
	rmdir(dir);
	if (!s->quiet)
		fprintf(stderr, "sweep: plot written to %s (gnuplot terminal %s)\n", s->plot, term);
	return SL_EXIT_OK;
io_fail:
	fprintf(stderr, "sluice sweep: cannot write the plot files in %s: %s\n", dir, strerror(errno));
	return SL_EXIT_FAILED;
}

/* ---- the command ---------------------------------------------------------- */

static void sweep_free(struct sweep *s)
{
	for (size_t i = 0; i < s->np + (s->np < MAX_PARAMS ? 1 : 0); i++)
		for (size_t v = 0; v < s->p[i].n; v++)
			free(s->p[i].values[v]);
	json_object_put(s->results);
}

static int cmd_sweep(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "param", required_argument, NULL, 'p' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'P' },
		{ "stop-on-error", no_argument, NULL, 's' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sweep s = { .repeat = 1 };
	size_t ix[MAX_PARAMS] = { 0 }, total = 1, nrun = 0;
	int c, ret = SL_EXIT_OK;
	bool any_failed = false, done = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			ret = parse_param(&s, argv[0], optarg);
			if (ret)
				goto out;
			break;
		case 'r':
			if (sl_cli_parse_uint(optarg, 1, 1000, &s.repeat)) {
				ret = sl_cli_usage_error(argv[0], "--repeat wants 1..1000, not '%s'", optarg);
				goto out;
			}
			break;
		case 'j':
			s.json = true;
			break;
		case 'P':
			s.plot = optarg;
			break;
		case 's':
			s.stop_on_error = true;
			break;
		case 'q':
			s.quiet = true;
			break;
		case 'h':
			usage(stdout);
			goto out;
		default:
			usage(stderr);
			ret = SL_EXIT_USAGE;
			goto out;
		}
	}
	s.extra = argv + optind;
	s.n_extra = argc - optind;
	if (s.n_extra > 200) {
		ret = sl_cli_usage_error(argv[0], "too many run options after --");
		goto out;
	}
	for (int i = 0; i < s.n_extra; i++) {
		if (!strcmp(s.extra[i], "--json")) {
			ret = sl_cli_usage_error(argv[0], "--json after -- is implied; put it before -- to get JSON from the sweep");
			goto out;
		}
	}
	if (!s.np) {
		ret = sl_cli_usage_error(argv[0], "nothing to sweep: give at least one --param NAME=V1,V2,...");
		goto out;
	}
	if (s.plot && (strchr(s.plot, '\'') || !*s.plot)) {
		ret = sl_cli_usage_error(argv[0], "--plot: the file name must not contain a quote");
		goto out;
	}
	for (size_t i = 0; i < s.np; i++)
		total *= s.p[i].n;
	total *= s.repeat;
	if (total > MAX_RUNS) {
		ret = sl_cli_usage_error(argv[0], "%zu runs: more than %d; sweep fewer values", total, MAX_RUNS);
		goto out;
	}
	s.results = json_object_new_array();
	if (!s.results) {
		ret = SL_EXIT_FAILED;
		goto out;
	}

	/* odometer over the parameter values, first parameter slowest */
	while (!done) {
		for (uint64_t rep = 0; rep < s.repeat; rep++) {
			int st = do_run(&s, ix, rep, ++nrun, total);

			if (st < 0) {
				ret = SL_EXIT_FAILED;
				goto out;
			}
			if (st) {
				any_failed = true;
				if (s.stop_on_error) {
					fprintf(stderr, "sluice sweep: run %zu exited %d; stopping (--stop-on-error)\n",
						nrun, st);
					done = true;
					break;
				}
			}
		}
		for (size_t i = s.np; !done && i-- > 0;) {
			if (++ix[i] < s.p[i].n)
				break;
			ix[i] = 0;
			if (i == 0)
				done = true;
		}
	}

	if (s.json)
		printf("%s\n", json_object_to_json_string_ext(s.results, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	else
		print_table(&s);
	ret = any_failed ? SL_EXIT_FAILED : SL_EXIT_OK;
	if (s.plot) {
		int pr = make_plot(&s);

		if (pr)
			ret = pr;
	}
out:
	sweep_free(&s);
	return ret;
}

SL_CLI_COMMAND(sweep, "sweep", "run `sluice run` over a parameter list; table, JSON, plot",
	       cmd_sweep)
