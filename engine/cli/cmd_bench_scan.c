/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench_scan.c — `sluice bench scan`: bitmap → ranges on 64 and 512 GiB
 * guests (2 and 16 MiB bitmaps), six patterns, against two baselines run in
 * the same process on the same bitmap: the floor (an AVX2 OR-reduction,
 * the cost of reading the bitmap) and the word-run method (ctz on w and ~w
 * per word, what Cloud Hypervisor uses). Best of --reps repetitions.
 *
 * Both scanners write into the same caller buffer of --batch ranges and are
 * called again through their cursor until done, as an engine consuming
 * ranges in batches would; the buffer stays in cache for both.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "sl_bitmap.h"
#include "sl_common.h"

#define PAGE_SHIFT 12
#define MAX_SIZES 8

enum pattern { P_EMPTY, P_RANDOM01, P_RANDOM10, P_RANDOM50, P_RUNS32, P_FULL, P_COUNT };

static const char *const pattern_names[P_COUNT] = {
	"empty", "random0.1", "random10", "random50", "runs32", "full",
};

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Each bit set with probability thr / 65536. */
static void fill_bernoulli(uint64_t *w, uint64_t nwords, uint64_t thr)
{
	for (uint64_t i = 0; i < nwords; i++) {
		uint64_t v = 0;

		for (int b = 0; b < 64; b += 4) {
			uint64_t r = rnd();

			for (int q = 0; q < 4; q++)
				v |= (uint64_t)(((r >> (16 * q)) & 0xffff) < thr) << (b + q);
		}
		w[i] = v;
	}
}

static void fill_pattern(uint64_t *w, uint64_t npages, enum pattern p)
{
	uint64_t nwords = sl_bitmap_words(npages);

	memset(w, 0, nwords * 8);
	switch (p) {
	case P_EMPTY:
		break;
	case P_RANDOM01:
		for (uint64_t i = 0; i < npages / 1000; i++) {
			uint64_t b = rnd() % npages;

			w[b / 64] |= 1ull << (b % 64);
		}
		break;
	case P_RANDOM10:
		fill_bernoulli(w, nwords, 6554); /* 10.0 % */
		break;
	case P_RANDOM50:
		for (uint64_t i = 0; i < nwords; i++)
			w[i] = rnd();
		break;
	case P_RUNS32:
		/* 10 % of pages in runs of 32 at random (unaligned) places. */
		for (uint64_t i = 0; i < npages / 320; i++)
			sl_bitmap_set_range(w, npages, rnd() % (npages - 32), 32);
		break;
	case P_FULL:
		memset(w, 0xff, nwords * 8);
		break;
	case P_COUNT:
		break;
	}
}

/*
 * The calling thread's CPU time. The machines are shared: wall-clock time
 * also counts the slices the scheduler gave to other processes, which on a
 * 2-core box with a dozen busy neighbours dwarfs a 3 ms scan. Best of N
 * thread-CPU times is the stable figure; all three methods use it.
 */
static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct scan_result {
	uint64_t ranges, pages, check;
	uint64_t ns;
};

typedef ssize_t (*scan_fn)(const uint64_t *, uint64_t, struct sl_scan_cursor *,
			   struct sl_range *, size_t);

static ssize_t run_engine(const uint64_t *w, uint64_t npages, struct sl_scan_cursor *c,
			  struct sl_range *out, size_t cap)
{
	return sl_bitmap_scan(w, npages, 0, NULL, c, out, cap);
}

static ssize_t run_wordrun(const uint64_t *w, uint64_t npages, struct sl_scan_cursor *c,
			   struct sl_range *out, size_t cap)
{
	return sl_bitmap_scan_wordrun(w, npages, 0, c, out, cap);
}

/* One whole scan, batch by batch; the pages sum and a checksum of the
 * ranges keep the compiler honest and let us compare the two methods. */
static int time_scan(scan_fn fn, const uint64_t *w, uint64_t npages, struct sl_range *out,
		     size_t cap, bool verify, struct scan_result *r)
{
	struct sl_scan_cursor c;
	uint64_t t0 = cpu_ns();

	r->ranges = r->pages = r->check = 0;
	sl_scan_cursor_init(&c);
	while (!sl_scan_cursor_done(&c)) {
		ssize_t n = fn(w, npages, &c, out, cap);

		if (n < 0)
			return (int)n;
		/* Only the untimed first pass reads the ranges back. */
		for (ssize_t i = 0; verify && i < n; i++) {
			r->pages += out[i].npages;
			r->check ^= out[i].first * 0x9e3779b97f4a7c15ull;
		}
		r->ranges += (uint64_t)n;
	}
	r->ns = cpu_ns() - t0;
	return 0;
}

struct row {
	const char *pattern;
	uint64_t guest_gib, ranges, pages;
	double ms, floor_ms, wordrun_ms;
};

static double ms_of(uint64_t ns)
{
	return (double)ns / 1e6;
}

static int bench_one(uint64_t *w, uint64_t npages, enum pattern p, unsigned reps,
		     struct sl_range *out, size_t cap, struct row *row)
{
	uint64_t best = UINT64_MAX, best_floor = UINT64_MAX, best_wr = UINT64_MAX;
	struct scan_result a = { 0 }, b = { 0 };
	volatile uint64_t sink = 0;

	fill_pattern(w, npages, p);
	/* Untimed check pass: both methods must give the same ranges. */
	if (time_scan(run_engine, w, npages, out, cap, true, &a) ||
	    time_scan(run_wordrun, w, npages, out, cap, true, &b))
		return -EINVAL;
	if (a.ranges != b.ranges || a.pages != b.pages || a.check != b.check)
		return -EPROTO; /* the two methods disagree: a bug, say so */
	row->pages = a.pages;
	for (unsigned i = 0; i < reps; i++) {
		uint64_t t0 = cpu_ns();
		int ret;

		sink = sink + sl_bitmap_floor_or(w, sl_bitmap_words(npages));
		best_floor = SL_MIN(best_floor, cpu_ns() - t0);
		ret = time_scan(run_engine, w, npages, out, cap, false, &a);
		if (ret)
			return ret;
		best = SL_MIN(best, a.ns);
		ret = time_scan(run_wordrun, w, npages, out, cap, false, &b);
		if (ret)
			return ret;
		best_wr = SL_MIN(best_wr, b.ns);
		if (a.ranges != b.ranges)
			return -EPROTO;
	}
	(void)sink;
	row->pattern = pattern_names[p];
	row->ranges = a.ranges;
	row->ms = ms_of(best);
	row->floor_ms = ms_of(best_floor);
	row->wordrun_ms = ms_of(best_wr);
	return 0;
}

static struct json_object *jnum(double v, const char *fmt)
{
	char buf[64];

	snprintf(buf, sizeof(buf), fmt, v);
	return json_object_new_double_s(v, buf);
}

static void cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && colon) {
			snprintf(buf, len, "%s", colon + 2);
			buf[strcspn(buf, "\n")] = 0;
			break;
		}
	}
	fclose(f);
}

static int parse_sizes(const char *s, uint64_t *sizes, unsigned *n)
{
	char tmp[256], *save = NULL;

	if (strlen(s) >= sizeof(tmp))
		return -EINVAL;
	snprintf(tmp, sizeof(tmp), "%s", s);
	*n = 0;
	for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n == MAX_SIZES || sl_cli_parse_uint(tok, 1, 4096, &sizes[*n]))
			return -EINVAL;
		(*n)++;
	}
	return *n ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice bench scan [--json] [--reps N] [--sizes 64,512] [--batch N]\n"
		"                         [--isa scalar|avx2|avx512]\n"
		"\n"
		"Times bitmap -> ranges (sl_bitmap_scan) for guests of the given sizes in\n"
		"GiB (4 KiB pages; 64 GiB = a 2 MiB bitmap) on the patterns empty,\n"
		"random0.1, random10, random50, runs32 (10 %% of pages in runs of 32) and\n"
		"full, against two baselines on the same bitmap in the same run: floor_ms\n"
		"(AVX2 OR-reduction: the memory-read floor) and wordrun_ms (ctz on w and\n"
		"~w per word). Best of N repetitions (default 5) of the thread's CPU time\n"
		"(the machines are shared). Both scanners fill the same buffer of --batch\n"
		"ranges (default 4096) and resume via their cursor.\n"
		"\n"
		"  --json        print one JSON object {\"benchmark\":\"scan\",\"results\":[...]}\n"
		"  --reps N      repetitions, best kept (1..1000)\n"
		"  --sizes LIST  guest sizes in GiB, comma-separated (default 64,512)\n"
		"  --batch N     ranges per call (1..1048576)\n"
		"  --isa NAME    force a code path (default: the best this CPU has)\n");
}

static int cmd_bench_scan(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "reps", required_argument, NULL, 'r' },
		{ "sizes", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "isa", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	uint64_t sizes[MAX_SIZES] = { 64, 512 }, reps = 5, batch = 4096, max_pages = 0;
	unsigned nsizes = 2, nrows = 0;
	bool json = false;
	struct row rows[MAX_SIZES * P_COUNT];
	struct sl_range *out = NULL;
	uint64_t *w = NULL;
	char cpu[128];
	int c, ret = SL_EXIT_OK;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'r':
			if (sl_cli_parse_uint(optarg, 1, 1000, &reps))
				return sl_cli_usage_error(argv[0], "bad --reps '%s' (1..1000)", optarg);
			break;
		case 's':
			if (parse_sizes(optarg, sizes, &nsizes))
				return sl_cli_usage_error(argv[0],
							  "bad --sizes '%s' (GiB list, e.g. 64,512)",
							  optarg);
			break;
		case 'b':
			if (sl_cli_parse_uint(optarg, 1, 1u << 20, &batch))
				return sl_cli_usage_error(argv[0], "bad --batch '%s' (1..1048576)",
							  optarg);
			break;
		case 'i': {
			enum sl_isa isa = SL_ISA_SCALAR;
			int r;

			if (!strcmp(optarg, "avx2"))
				isa = SL_ISA_AVX2;
			else if (!strcmp(optarg, "avx512"))
				isa = SL_ISA_AVX512;
			else if (strcmp(optarg, "scalar"))
				return sl_cli_usage_error(argv[0], "bad --isa '%s' (scalar|avx2|avx512)",
							  optarg);
			r = sl_bitmap_force_isa(isa);
			if (r == -ENOTSUP) {
				fprintf(stderr, "sluice bench scan: this CPU lacks %s\n", optarg);
				return SL_EXIT_UNSUPPORTED;
			}
			break;
		}
		case 'h':
			usage(stdout);
			return SL_EXIT_OK;
		default:
			usage(stderr);
			return SL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return sl_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);

	for (unsigned i = 0; i < nsizes; i++)
		max_pages = SL_MAX(max_pages, sizes[i] << (30 - PAGE_SHIFT));
	w = aligned_alloc(64, (sl_bitmap_words(max_pages) * 8 + 63) / 64 * 64);
	out = malloc(batch * sizeof(*out));
	if (!w || !out) {
		fprintf(stderr, "sluice bench scan: out of memory for a %llu-page bitmap\n",
			(unsigned long long)max_pages);
		ret = SL_EXIT_FAILED;
		goto done;
	}
	for (unsigned s = 0; s < nsizes; s++) {
		uint64_t npages = sizes[s] << (30 - PAGE_SHIFT);

		for (int p = 0; p < P_COUNT; p++) {
			struct row *row = &rows[nrows];
			int r = bench_one(w, npages, (enum pattern)p, (unsigned)reps, out, batch, row);

			if (r) {
				fprintf(stderr, "sluice bench scan: %s, %llu GiB: %s\n",
					pattern_names[p], (unsigned long long)sizes[s],
					r == -EPROTO ? "engine and word-run ranges differ"
						     : strerror(-r));
				ret = SL_EXIT_FAILED;
				goto done;
			}
			row->guest_gib = sizes[s];
			nrows++;
			if (isatty(STDERR_FILENO))
				fprintf(stderr, "  %-9s %4llu GiB done\n", row->pattern,
					(unsigned long long)row->guest_gib);
		}
	}

	cpu_model(cpu, sizeof(cpu));
	if (json) {
		struct json_object *root = json_object_new_object(), *arr = json_object_new_array();
		struct json_object *mach = json_object_new_object();

		json_object_object_add(root, "benchmark", json_object_new_string("scan"));
		json_object_object_add(root, "isa", json_object_new_string(sl_isa_name(sl_bitmap_isa())));
		json_object_object_add(mach, "cpu", json_object_new_string(cpu));
		json_object_object_add(mach, "avx2", json_object_new_boolean(sl_bitmap_isa_supported(SL_ISA_AVX2)));
		json_object_object_add(mach, "avx512", json_object_new_boolean(sl_bitmap_isa_supported(SL_ISA_AVX512)));
		json_object_object_add(root, "machine", mach);
		json_object_object_add(root, "reps", json_object_new_int64((int64_t)reps));
		json_object_object_add(root, "batch", json_object_new_int64((int64_t)batch));
		json_object_object_add(root, "clock", json_object_new_string("thread_cpu"));
		for (unsigned i = 0; i < nrows; i++) {
			struct row *r = &rows[i];
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "pattern", json_object_new_string(r->pattern));
			json_object_object_add(o, "guest_gib", json_object_new_int64((int64_t)r->guest_gib));
			json_object_object_add(o, "isa", json_object_new_string(sl_isa_name(sl_bitmap_isa())));
			json_object_object_add(o, "ranges", json_object_new_int64((int64_t)r->ranges));
			json_object_object_add(o, "pages", json_object_new_int64((int64_t)r->pages));
			json_object_object_add(o, "ms", jnum(r->ms, "%.4f"));
			json_object_object_add(o, "ns_per_range",
					       r->ranges ? jnum(r->ms * 1e6 / (double)r->ranges, "%.3f")
							 : NULL);
			json_object_object_add(o, "floor_ms", jnum(r->floor_ms, "%.4f"));
			json_object_object_add(o, "wordrun_ms", jnum(r->wordrun_ms, "%.4f"));
			json_object_object_add(o, "vs_floor", jnum(r->ms / r->floor_ms, "%.3f"));
			json_object_object_add(o, "speedup_vs_wordrun", jnum(r->wordrun_ms / r->ms, "%.3f"));
			json_object_array_add(arr, o);
		}
		json_object_object_add(root, "results", arr);
		printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_SPACED));
		json_object_put(root);
	} else {
		printf("sluice bench scan: isa %s, %s, best of %llu, batch %llu ranges\n",
		       sl_isa_name(sl_bitmap_isa()), cpu, (unsigned long long)reps,
		       (unsigned long long)batch);
		printf("%-10s %5s %11s %9s %8s %9s %11s %8s %8s\n", "pattern", "GiB", "ranges",
		       "ms", "ns/range", "floor_ms", "wordrun_ms", "x floor", "x faster");
		for (unsigned i = 0; i < nrows; i++) {
			struct row *r = &rows[i];
			char npr[16] = "-";

			if (r->ranges)
				snprintf(npr, sizeof(npr), "%.3f", r->ms * 1e6 / (double)r->ranges);
			printf("%-10s %5llu %11llu %9.3f %8s %9.3f %11.3f %8.2f %8.2f\n", r->pattern,
			       (unsigned long long)r->guest_gib, (unsigned long long)r->ranges, r->ms,
			       npr, r->floor_ms, r->wordrun_ms, r->ms / r->floor_ms,
			       r->wordrun_ms / r->ms);
		}
	}
done:
	free(w);
	free(out);
	return ret;
}

SL_CLI_COMMAND(bench_scan, "bench scan",
	       "time bitmap -> ranges against the read floor and the word-run method",
	       cmd_bench_scan)
