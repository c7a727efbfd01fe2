/* SPDX-License-Identifier: MIT */
/*
 * session_scan.c — dirty-log sync and the parallel bitmap scan.
 *
 * Each region's bitmap is cut into jobs of SL_SCAN_CHUNK_PAGES pages (whole
 * words). Jobs are posted round-robin to the worker pool; a worker turns its
 * slice into ranges and zeroes the slice (the bits are now "taken"). Only the
 * session thread touches the bitmaps otherwise (sync ORs into them between
 * scans), so no bit is shared while workers run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

int64_t sl_session_sync_all(struct sl_session *s, uint64_t *sync_ns)
{
	uint64_t t0 = sl_now_ns();
	int64_t total = 0;

	for (size_t i = 0; i < s->nregions; i++) {
		struct sl_region *r = &s->regions[i];
		int64_t n = sl_dirty_sync(r->dirty, r->bitmap);

		if (n < 0)
			return sl_err(&s->err, (int)n, "dirty-log sync (%s) of %s: %s",
				      sl_dirty_name(r->dirty), r->name, sl_dirty_last_error(r->dirty));
		n = sl_bitmap_count(r->bitmap, r->npages);
		if (n < 0)
			return sl_err(&s->err, (int)n, "bitmap count of %s failed", r->name);
		total += n;
	}
	s->stats.dirty_sync_count++;
	if (sync_ns)
		*sync_ns = sl_now_ns() - t0;
	return total;
}

static int grow(struct sl_scan_job *j)
{
	size_t cap = j->cap ? j->cap * 2 : 256;
	struct sl_range *n = realloc(j->ranges, cap * sizeof(*n));

	if (!n)
		return -ENOMEM;
	j->ranges = n;
	j->cap = cap;
	return 0;
}

/* Runs on a worker: ranges of this job's bitmap slice (region-relative
 * pages), then zeroes the slice. */
static int scan_job(struct sl_worker *w, void *arg)
{
	struct sl_scan_job *j = arg;
	struct sl_region *r = j->region;
	uint64_t *words = r->bitmap + j->first_page / 64;
	struct sl_scan_opts opts = { .size = sizeof(opts), .gap = SL_SCAN_GAP_PAGES, .max_len = 0 };
	struct sl_scan_cursor cur;
	int64_t cnt;

	(void)w;
	j->n = 0;
	cnt = sl_bitmap_count(words, j->npages);
	if (cnt < 0)
		return (int)cnt;
	j->dirty_pages = (uint64_t)cnt;
	if (!cnt)
		return 0;
	sl_scan_cursor_init(&cur);
	for (;;) {
		size_t room;
		ssize_t got;

		if (j->n == j->cap && grow(j) < 0)
			return j->err = -ENOMEM;
		room = j->cap - j->n;
		got = sl_bitmap_scan(words, j->npages, j->first_page, &opts, &cur,
				     j->ranges + j->n, room);
		if (got < 0)
			return j->err = (int)got;
		j->n += (size_t)got;
		if ((size_t)got < room || sl_scan_cursor_done(&cur))
			break;
	}
	memset(words, 0, sl_bitmap_words(j->npages) * sizeof(uint64_t));
	return 0;
}

int sl_session_scan_setup(struct sl_session *s)
{
	struct sl_workers_config wc;
	struct sl_errbuf eb = { { 0 } };
	size_t n = 0, k = 0;
	int ret;

	for (size_t i = 0; i < s->nregions; i++)
		n += SL_DIV_ROUND_UP(s->regions[i].npages, SL_SCAN_CHUNK_PAGES);
	s->jobs = calloc(n, sizeof(*s->jobs));
	if (!s->jobs)
		return sl_err(&s->err, -ENOMEM, "scan: out of memory");
	for (size_t i = 0; i < s->nregions; i++) {
		struct sl_region *r = &s->regions[i];

		for (uint64_t p = 0; p < r->npages; p += SL_SCAN_CHUNK_PAGES) {
			s->jobs[k].region = r;
			s->jobs[k].first_page = p;
			s->jobs[k].npages = SL_MIN(SL_SCAN_CHUNK_PAGES, r->npages - p);
			k++;
		}
	}
	s->njobs = n;
	/* One job needs no pool: scan inline (a small guest's bitmap is a few
	 * KiB; a thread hop would cost more than the scan). */
	if (n > 1 && s->cfg.scan_workers > 1) {
		struct sl_region_node *rn = calloc(s->nregions, sizeof(*rn));
		uint32_t nw = (uint32_t)SL_MIN((size_t)s->cfg.scan_workers, n);

		if (!rn)
			return sl_err(&s->err, -ENOMEM, "scan: out of memory");
		/* Scanners go to the NUMA nodes that hold the RAM they scan. */
		for (size_t i = 0; i < s->nregions; i++) {
			rn[i].node = sl_numa_node_of(s->regions[i].host, s->regions[i].length);
			rn[i].bytes = s->regions[i].length;
			s->regions[i].node = rn[i].node;
		}
		ret = sl_placement_plan_host(rn, s->nregions, nw, 0, &s->plan, &eb);
		free(rn);
		if (ret < 0) {
			/* No topology (containers, odd machines): unpinned workers. */
			sl_session_log(s, SL_LOG_INFO, "scan workers unpinned: %s", eb.msg);
			memset(&s->plan, 0, sizeof(s->plan));
		}
		memset(&wc, 0, sizeof(wc));
		wc.size = sizeof(wc);
		wc.plan = s->plan.n_workers ? &s->plan : NULL;
		wc.n_workers = nw;
		wc.log = s->cfg.log;
		wc.log_ctx = s->cfg.log_ctx;
		ret = sl_workers_new(&wc, &s->workers, &eb);
		if (ret < 0)
			return sl_err(&s->err, ret, "scan workers: %s", eb.msg);
	}
	return 0;
}

/* A scanner on the node holding the job's memory, round-robin among them;
 * any scanner when the node is unknown or has none. */
static uint32_t pick_worker(struct sl_session *s, const struct sl_scan_job *j, size_t k)
{
	uint32_t idx[64], n = 0;

	if (s->plan.n_workers && j->region->node >= 0)
		n = sl_placement_scanners_on_node(&s->plan, j->region->node, idx, SL_ARRAY_SIZE(idx));
	if (n)
		return idx[k % SL_MIN(n, (uint32_t)SL_ARRAY_SIZE(idx))];
	return (uint32_t)(k % sl_workers_count(s->workers));
}

void sl_session_scan_teardown(struct sl_session *s)
{
	sl_workers_free(&s->workers);
	sl_placement_release(&s->plan);
	for (size_t i = 0; i < s->njobs; i++)
		free(s->jobs[i].ranges);
	free(s->jobs);
	s->jobs = NULL;
	s->njobs = 0;
	free(s->zero_buf);
	free(s->data_buf);
	s->zero_buf = s->data_buf = NULL;
	s->split_cap = 0;
}

int sl_session_scan_all(struct sl_session *s)
{
	int ret = 0;

	if (!s->workers) {
		for (size_t i = 0; i < s->njobs && !ret; i++)
			ret = scan_job(NULL, &s->jobs[i]);
	} else {
		for (size_t i = 0; i < s->njobs; i++) {
			ret = sl_workers_post(s->workers, pick_worker(s, &s->jobs[i], i), scan_job,
					      &s->jobs[i]);
			if (ret < 0)
				break;
		}
		{
			int w = sl_workers_wait(s->workers);

			if (!ret)
				ret = w;
		}
	}
	if (ret < 0)
		return sl_err(&s->err, ret, "bitmap scan failed: %s", strerror(-ret));
	return 0;
}
