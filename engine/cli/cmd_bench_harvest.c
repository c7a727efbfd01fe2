/* SPDX-License-Identifier: MIT */
/*
 * cmd_bench_harvest.c — `sluice bench harvest`: what one dirty-log sync
 * costs per GiB of guest memory, for each real source, beside a
 * fetch-and-clear (sl_bitmap_harvest) of a same-sized bitmap in user memory
 * holding the same dirty bits, run right after it in the same process.
 *
 *   kvm-get     KVM_GET_DIRTY_LOG (fetch + re-protect) of one memslot
 *   kvm-clear   with MANUAL_DIRTY_LOG_PROTECT2: GET (no re-protect), then
 *               KVM_CLEAR_DIRTY_LOG of the whole slot in 1 GiB chunks
 *   kvm-ring    the dirty ring: harvest + KVM_RESET_DIRTY_RINGS, reported
 *               per million entries
 *   pagemap     userfaultfd-WP + PAGEMAP_SCAN over this process's memory
 *
 * Memory is mapped MAP_NORESERVE: only the dirtied pages (one in --stride)
 * are ever populated, so 16 GiB costs 16 GiB / stride of RAM. Guest pages
 * are dirtied by the guest itself (sl_vmm_touch: KVM logs only guest
 * writes); process pages by this process. The dirtying is not timed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"
#include "sl_bitmap.h"
#include "sl_common.h"
#include "sl_dirty.h"
#include "sl_vmm.h"

#define GIB (1ull << 30)
#define PAGE 4096ull
#define MAX_SIZES 8
#define MAX_ROUNDS 32
#define RING_ENTRIES 65536u
#define RING_FILL 60000u   /* entries per round: below the ring's soft limit */
#define CLEAR_CHUNK (GIB / PAGE)

enum src_kind { S_GET, S_CLEAR, S_RING, S_PAGEMAP, S_COUNT };
static const char *const src_names[S_COUNT] = { "kvm-get", "kvm-clear", "kvm-ring", "pagemap" };

struct result {
	uint64_t gib;
	enum src_kind kind;
	uint64_t dirty;        /* pages found by the source per round */
	uint64_t ns;           /* median sync (+ clear) time */
	uint64_t clear_ns;     /* kvm-clear: the CLEAR part of ns */
	uint64_t base_ns;      /* median sl_bitmap_harvest of the same bits */
	int err;               /* 0, or -errno: the source could not run */
	char why[160];
};

struct opts {
	uint64_t sizes[MAX_SIZES];
	unsigned nsizes;
	uint64_t stride;
	unsigned rounds;
	bool json;
	bool want[S_COUNT];
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

/* The in-run baseline: fetch-and-clear of a user-memory bitmap holding
 * `bits`. Timed alone; the copy that arms it is not. */
static uint64_t baseline_ns(const uint64_t *bits, uint64_t npages, uint64_t *shared, uint64_t *out)
{
	uint64_t words = sl_bitmap_words(npages);
	memcpy(shared, bits, words * 8);
	memset(out, 0, words * 8);
	uint64_t t0 = sl_now_ns();
	int64_t n = sl_bitmap_harvest(shared, out, npages);
	uint64_t t = sl_now_ns() - t0;
	return n < 0 ? 0 : t;
}

struct bufs {
	uint64_t *bm, *shared, *out;
};

static int bufs_alloc(struct bufs *b, uint64_t npages)
{
	size_t bytes = sl_bitmap_words(npages) * 8;
	b->bm = calloc(1, bytes);
	b->shared = calloc(1, bytes);
	b->out = calloc(1, bytes);
	return b->bm && b->shared && b->out ? 0 : -ENOMEM;
}

static void bufs_free(struct bufs *b)
{
	free(b->bm);
	free(b->shared);
	free(b->out);
}

static int fail(struct result *r, int err, const char *fmt, const char *detail)
{
	r->err = err;
	snprintf(r->why, sizeof(r->why), fmt, detail);
	return err;
}

/* One KVM source (get / clear / ring) over a VM of `gib` GiB. */
static int run_kvm(const struct opts *o, struct result *r)
{
	struct sl_vmm_config vc = {
		.size = sizeof(vc),
		.mem_bytes = r->gib * GIB,
		.nvcpus = 1,
		.incoming = true, /* no guest: sl_vmm_touch dirties the pages */
		.dirty_mode = r->kind == S_GET     ? SL_VMM_DIRTY_BITMAP
			      : r->kind == S_CLEAR ? SL_VMM_DIRTY_BITMAP_MANUAL
						   : SL_VMM_DIRTY_RING,
		.ring_entries = RING_ENTRIES,
	};
	struct sl_errbuf eb = { { 0 } };
	struct sl_vmm *vmm = NULL;
	struct sl_dirty_source *src = NULL;
	struct sl_vmm_info info;
	struct bufs b = { 0 };
	uint64_t t[MAX_ROUNDS], tc[MAX_ROUNDS], tb[MAX_ROUNDS];
	int ret = sl_vmm_new(&vc, &vmm, &eb);

	if (ret < 0)
		return fail(r, ret, "%s", eb.msg);
	sl_vmm_get_info(vmm, &info);
	uint64_t npages = info.slots[0].npages;
	uint64_t first = sl_vmm_touch_first_page(vmm);
	uint64_t stride = o->stride;
	if (r->kind == S_RING) /* keep a round inside the ring: no full exits */
		stride = SL_MAX(stride, SL_DIV_ROUND_UP(npages - first, RING_FILL));
	if (bufs_alloc(&b, npages) < 0) {
		ret = fail(r, -ENOMEM, "%s", "out of memory");
		goto out;
	}
	if (r->kind == S_RING) {
		struct sl_dirty_kvm_ring_config rc = {
			.size = sizeof(rc), .ring = info.ring, .slot = 0, .npages = npages };
		ret = sl_dirty_kvm_ring_new(&rc, &src, &eb);
	} else {
		struct sl_dirty_kvm_bitmap_config kc = {
			.size = sizeof(kc), .vm_fd = info.vm_fd, .slot = 0, .npages = npages,
			.manual_protect = r->kind == S_CLEAR };
		ret = sl_dirty_kvm_bitmap_new(&kc, &src, &eb);
	}
	if (ret < 0 || (ret = sl_dirty_start(src)) < 0) {
		fail(r, ret, "%s", src ? sl_dirty_last_error(src) : eb.msg);
		goto out;
	}
	for (unsigned i = 0; i < o->rounds; i++) {
		int64_t w = sl_vmm_touch(vmm, first, npages - first, stride);
		if (w < 0) {
			ret = fail(r, (int)w, "%s", sl_vmm_last_error(vmm));
			goto out;
		}
		memset(b.bm, 0, sl_bitmap_words(npages) * 8);
		uint64_t t0 = sl_now_ns();
		int64_t n = sl_dirty_sync(src, b.bm);
		uint64_t t1 = sl_now_ns();
		if (n < 0) {
			ret = fail(r, (int)n, "%s", sl_dirty_last_error(src));
			goto out;
		}
		tc[i] = 0;
		if (r->kind == S_CLEAR) {
			for (uint64_t p = 0; p < npages; p += CLEAR_CHUNK) {
				ret = sl_dirty_clear(src, p, SL_MIN(CLEAR_CHUNK, npages - p));
				if (ret < 0) {
					fail(r, ret, "%s", sl_dirty_last_error(src));
					goto out;
				}
			}
			tc[i] = sl_now_ns() - t1;
		}
		t[i] = t1 - t0 + tc[i];
		tb[i] = baseline_ns(b.bm, npages, b.shared, b.out);
		r->dirty = (uint64_t)n;
	}
	r->ns = median(t, o->rounds);
	r->clear_ns = median(tc, o->rounds);
	r->base_ns = median(tb, o->rounds);
	ret = 0;
out:
	sl_dirty_free(&src);
	sl_vmm_free(&vmm);
	bufs_free(&b);
	return ret;
}

/* userfaultfd-WP + PAGEMAP_SCAN over an anonymous region of this process. */
static int run_pagemap(const struct opts *o, struct result *r)
{
	uint64_t bytes = r->gib * GIB, npages = bytes / PAGE;
	struct sl_errbuf eb = { { 0 } };
	struct sl_dirty_source *src = NULL;
	struct bufs b = { 0 };
	uint64_t t[MAX_ROUNDS], tb[MAX_ROUNDS];
	int ret = sl_dirty_uffd_probe(&eb);

	if (ret < 0)
		return fail(r, ret, "%s", eb.msg);
	uint8_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		return fail(r, -errno, "mmap: %s", strerror(errno));
	if (bufs_alloc(&b, npages) < 0) {
		ret = fail(r, -ENOMEM, "%s", "out of memory");
		goto out;
	}
	struct sl_dirty_uffd_config uc = { .size = sizeof(uc), .addr = mem, .npages = npages };
	ret = sl_dirty_uffd_new(&uc, &src, &eb);
	if (ret < 0 || (ret = sl_dirty_start(src)) < 0) {
		fail(r, ret, "%s", src ? sl_dirty_last_error(src) : eb.msg);
		goto out;
	}
	for (unsigned i = 0; i < o->rounds; i++) {
		for (uint64_t p = 0; p < npages; p += o->stride)
			mem[p * PAGE] = (uint8_t)(i + 1);
		memset(b.bm, 0, sl_bitmap_words(npages) * 8);
		uint64_t t0 = sl_now_ns();
		int64_t n = sl_dirty_sync(src, b.bm);
		t[i] = sl_now_ns() - t0;
		if (n < 0) {
			ret = fail(r, (int)n, "%s", sl_dirty_last_error(src));
			goto out;
		}
		tb[i] = baseline_ns(b.bm, npages, b.shared, b.out);
		r->dirty = (uint64_t)n;
	}
	r->ns = median(t, o->rounds);
	r->base_ns = median(tb, o->rounds);
	ret = 0;
out:
	sl_dirty_free(&src);
	munmap(mem, bytes);
	bufs_free(&b);
	return ret;
}

static double per_unit_ms(const struct result *r, uint64_t ns)
{
	/* Ring cost scales with entries, the others with memory size. */
	if (r->kind == S_RING)
		return r->dirty ? (double)ns / 1e6 * 1e6 / (double)r->dirty : 0;
	return (double)ns / 1e6 / (double)r->gib;
}

static void print_text(const struct opts *o, const struct result *res, unsigned n)
{
	printf("dirty harvest: one sync per round, median of %u rounds, 1 dirty page in %llu\n",
	       o->rounds, (unsigned long long)o->stride);
	printf("baseline: sl_bitmap_harvest (fetch-and-clear) of a same-sized user bitmap, same bits\n\n");
	printf("%5s  %-10s %10s %12s %14s %14s %8s\n", "GiB", "source", "dirty", "sync ms",
	       "ms/GiB|/1M e.", "baseline ms", "ratio");
	for (unsigned i = 0; i < n; i++) {
		const struct result *r = &res[i];
		if (r->err) {
			printf("%5llu  %-10s unavailable: %s\n", (unsigned long long)r->gib,
			       src_names[r->kind], r->why);
			continue;
		}
		printf("%5llu  %-10s %10llu %12.3f %14.3f %14.3f %8.1f", (unsigned long long)r->gib,
		       src_names[r->kind], (unsigned long long)r->dirty, (double)r->ns / 1e6,
		       per_unit_ms(r, r->ns), (double)r->base_ns / 1e6,
		       r->base_ns ? (double)r->ns / (double)r->base_ns : 0.0);
		if (r->kind == S_CLEAR)
			printf("   (clear %.3f ms)", (double)r->clear_ns / 1e6);
		if (r->kind == S_RING)
			printf("   (per 1M entries)");
		printf("\n");
	}
}

static void print_json(const struct opts *o, const struct result *res, unsigned n)
{
	json_object *root = json_object_new_object();
	json_object *arr = json_object_new_array();
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	json_object_object_add(root, "benchmark", json_object_new_string("harvest"));
	json_object_object_add(root, "host", json_object_new_string(host));
	json_object_object_add(root, "cpus", json_object_new_int((int)sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_object_add(root, "stride", json_object_new_int64((int64_t)o->stride));
	json_object_object_add(root, "rounds", json_object_new_int((int)o->rounds));
	for (unsigned i = 0; i < n; i++) {
		const struct result *r = &res[i];
		json_object *e = json_object_new_object();
		json_object_object_add(e, "gib", json_object_new_int64((int64_t)r->gib));
		json_object_object_add(e, "source", json_object_new_string(src_names[r->kind]));
		if (r->err) {
			json_object_object_add(e, "error", json_object_new_string(r->why));
		} else {
			json_object_object_add(e, "dirty_pages", json_object_new_int64((int64_t)r->dirty));
			json_object_object_add(e, "sync_ns", json_object_new_int64((int64_t)r->ns));
			if (r->kind == S_CLEAR)
				json_object_object_add(e, "clear_ns", json_object_new_int64((int64_t)r->clear_ns));
			json_object_object_add(e, r->kind == S_RING ? "ms_per_million_entries" : "ms_per_gib",
					       json_object_new_double(per_unit_ms(r, r->ns)));
			json_object_object_add(e, "baseline_ns", json_object_new_int64((int64_t)r->base_ns));
			json_object_object_add(e, "ratio_to_baseline",
					       json_object_new_double(r->base_ns ? (double)r->ns / (double)r->base_ns
										 : 0.0));
		}
		json_object_array_add(arr, e);
	}
	json_object_object_add(root, "results", arr);
	printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
	json_object_put(root);
}

static void usage(void)
{
	printf("usage: sluice bench harvest [--sizes 1,4,16] [--sources LIST] [--stride N]\n"
	       "                            [--rounds N] [--json]\n\n"
	       "Times one dirty-log sync per round for each source, for guests of each size\n"
	       "(GiB), beside a fetch-and-clear of a same-sized bitmap in user memory with\n"
	       "the same bits (same run), and prints the ratio.\n\n"
	       "  --sizes LIST    guest sizes in GiB (default 1,4,16; at most %d, each 1..256)\n"
	       "  --sources LIST  of kvm-get,kvm-clear,kvm-ring,pagemap (default all)\n"
	       "  --stride N      dirty one page in N (default 64; the ring uses a larger\n"
	       "                  stride if needed to stay under %u entries per round)\n"
	       "  --rounds N      rounds per measurement, median reported (default 3, max %d)\n"
	       "  --json          machine-readable output\n",
	       MAX_SIZES, RING_FILL, MAX_ROUNDS);
}

static int parse_sizes(const char *s, struct opts *o)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", s);
	o->nsizes = 0;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		uint64_t v;
		if (o->nsizes == MAX_SIZES || sl_cli_parse_uint(t, 1, 256, &v) < 0)
			return -EINVAL;
		o->sizes[o->nsizes++] = v;
	}
	return o->nsizes ? 0 : -EINVAL;
}

static int parse_sources(const char *s, struct opts *o)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", s);
	memset(o->want, 0, sizeof(o->want));
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int k = -1;
		for (int i = 0; i < S_COUNT; i++)
			if (!strcmp(t, src_names[i]))
				k = i;
		if (k < 0)
			return -EINVAL;
		o->want[k] = true;
	}
	for (int i = 0; i < S_COUNT; i++)
		if (o->want[i])
			return 0;
	return -EINVAL;
}

static int cmd_bench_harvest(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "sources", required_argument, NULL, 'S' },
		{ "stride", required_argument, NULL, 't' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .sizes = { 1, 4, 16 }, .nsizes = 3, .stride = 64, .rounds = 3 };
	const char *cmd = "bench harvest";
	uint64_t v;
	int c;

	for (int i = 0; i < S_COUNT; i++)
		o.want[i] = true;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_sizes(optarg, &o) < 0)
				return sl_cli_usage_error(cmd, "--sizes wants up to %d GiB values in 1..256, got '%s'",
							  MAX_SIZES, optarg);
			break;
		case 'S':
			if (parse_sources(optarg, &o) < 0)
				return sl_cli_usage_error(cmd, "--sources: unknown source in '%s'", optarg);
			break;
		case 't':
			if (sl_cli_parse_uint(optarg, 1, 1u << 20, &v) < 0)
				return sl_cli_usage_error(cmd, "--stride wants 1..1048576, got '%s'", optarg);
			o.stride = v;
			break;
		case 'r':
			if (sl_cli_parse_uint(optarg, 1, MAX_ROUNDS, &v) < 0)
				return sl_cli_usage_error(cmd, "--rounds wants 1..%d, got '%s'", MAX_ROUNDS, optarg);
			o.rounds = (unsigned)v;
			break;
		case 'j':
			o.json = true;
			break;
		case 'h':
			usage();
			return SL_EXIT_OK;
		default:
			return SL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return sl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);

	struct result res[MAX_SIZES * S_COUNT];
	unsigned n = 0, ok = 0;
	for (unsigned si = 0; si < o.nsizes; si++) {
		for (int k = 0; k < S_COUNT; k++) {
			if (!o.want[k])
				continue;
			struct result *r = &res[n++];
			memset(r, 0, sizeof(*r));
			r->gib = o.sizes[si];
			r->kind = (enum src_kind)k;
			if (!o.json)
				fprintf(stderr, "  %llu GiB %s ...\n", (unsigned long long)r->gib, src_names[k]);
			int ret = k == S_PAGEMAP ? run_pagemap(&o, r) : run_kvm(&o, r);
			if (ret == 0)
				ok++;
		}
	}
	if (o.json)
		print_json(&o, res, n);
	else
		print_text(&o, res, n);
	if (!ok) {
		fprintf(stderr, "sluice bench harvest: no source could run on this machine\n");
		return SL_EXIT_UNSUPPORTED;
	}
	return SL_EXIT_OK;
}

SL_CLI_COMMAND(bench_harvest, "bench harvest", "time dirty-log harvest per GiB for each source",
	       cmd_bench_harvest)
