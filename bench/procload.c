/* SPDX-License-Identifier: MIT */
/*
 * procload.c — the process workload (sl_procload.h): dirtier threads that
 * write the guest's page record over a working set in this process.
 *
 * Stop: the control thread sets stop_req; each thread checks it after every
 * page (a relaxed load, cheap next to a page write) and parks on the
 * condition variable. The writes it made happen-before its parked++ under
 * the mutex, so once stop returns the caller sees the final region.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "sl_procload.h"

#define PAGE 4096ull
#define MAX_PAGES (1ull << 31)
#define RATE_SLACK_NS 100000000ull

struct pl_thread {
	struct sl_procload *pl;
	unsigned idx;
	pthread_t thread;
	bool started;
	_Atomic uint32_t pass, pos, passes_done;
};

struct sl_procload {
	struct sl_procload_config cfg;
	uint8_t *mem;
	bool own_mem;
	struct sl_guest_params params;
	struct pl_thread *threads;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	bool started;
	bool quit;
	_Atomic bool stop_req;
	unsigned parked; /* parked or finished */
	unsigned finished;

	_Atomic uint64_t rate_limit;
	_Atomic uint64_t st_pages, st_sleep_ns;
	struct sl_errbuf err;
};

/* Parks if asked. Returns false when the thread must exit. */
static bool checkpoint(struct pl_thread *t)
{
	struct sl_procload *pl = t->pl;
	bool keep = true;

	if (!atomic_load_explicit(&pl->stop_req, memory_order_relaxed))
		return true;
	pthread_mutex_lock(&pl->lock);
	pl->parked++;
	pthread_cond_broadcast(&pl->cond);
	while (atomic_load(&pl->stop_req) && !pl->quit)
		pthread_cond_wait(&pl->cond, &pl->lock);
	pl->parked--;
	keep = !pl->quit;
	pthread_mutex_unlock(&pl->lock);
	return keep;
}

static void rate_wait(struct pl_thread *t, uint64_t *t0, uint64_t *done, uint64_t pages)
{
	struct sl_procload *pl = t->pl;
	uint64_t limit = atomic_load_explicit(&pl->rate_limit, memory_order_relaxed);
	uint64_t now = sl_now_ns();

	if (!limit) {
		*t0 = now;
		*done = 0;
		return;
	}
	*done += pages;
	double per_thread = (double)limit / pl->cfg.nthreads;
	uint64_t due = *t0 + (uint64_t)((double)*done * 1e9 / per_thread);
	if (*t0 == 0 || now > due + RATE_SLACK_NS) {
		*t0 = now;
		*done = 0;
		return;
	}
	if (now >= due)
		return;
	struct timespec ts = { .tv_sec = (time_t)(due / 1000000000ull),
			       .tv_nsec = (long)(due % 1000000000ull) };
	pthread_mutex_lock(&pl->lock);
	while (!atomic_load(&pl->stop_req) && !pl->quit &&
	       atomic_load_explicit(&pl->rate_limit, memory_order_relaxed) == limit && sl_now_ns() < due)
		if (pthread_cond_timedwait(&pl->cond, &pl->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&pl->lock);
	atomic_fetch_add_explicit(&pl->st_sleep_ns, sl_now_ns() - now, memory_order_relaxed);
}

static void *dirtier(void *arg)
{
	struct pl_thread *t = arg;
	struct sl_procload *pl = t->pl;
	const struct sl_guest_params *p = &pl->params;
	uint32_t first, n, since = 0;
	uint64_t rate_t0 = 0, rate_done = 0;
	bool run = true;

	sl_guest_share(p, t->idx, &first, &n);
	for (uint32_t pass = 1; run; pass++) {
		struct sl_guest_order o;
		sl_guest_order_begin(&o, n, p->pattern, p->stride, p->seed, pass);
		atomic_store_explicit(&t->pass, pass, memory_order_relaxed);
		atomic_store_explicit(&t->pos, 0, memory_order_relaxed);
		for (uint32_t i = 0; i < n && run; i++) {
			uint32_t page = first + sl_guest_order_next(&o);
			uint32_t *w = (uint32_t *)(pl->mem + (uint64_t)page * PAGE);
			/* Relaxed atomics: a migration may read the page while
			 * we write it, as it would a guest's. */
			__atomic_store_n(&w[SL_GUEST_REC_TAG], page, __ATOMIC_RELAXED);
			__atomic_store_n(&w[SL_GUEST_REC_PASS], pass, __ATOMIC_RELAXED);
			__atomic_store_n(&w[SL_GUEST_REC_PASS_END], pass, __ATOMIC_RELAXED);
			atomic_store_explicit(&t->pos, i + 1, memory_order_relaxed);
			if (++since == p->report_pages) {
				atomic_fetch_add_explicit(&pl->st_pages, since, memory_order_relaxed);
				since = 0;
				rate_wait(t, &rate_t0, &rate_done, p->report_pages);
			}
			run = checkpoint(t);
			if (!run)
				break;
		}
		if (!run)
			break;
		atomic_store_explicit(&t->passes_done, pass, memory_order_relaxed);
		if (p->max_passes && pass >= p->max_passes)
			break;
	}
	atomic_fetch_add_explicit(&pl->st_pages, since, memory_order_relaxed);
	pthread_mutex_lock(&pl->lock);
	if (run) { /* finished its passes: counts as parked from now on */
		pl->finished++;
		pl->parked++;
		pthread_cond_broadcast(&pl->cond);
	}
	pthread_mutex_unlock(&pl->lock);
	return NULL;
}

SL_EXPORT int sl_procload_new(const struct sl_procload_config *cfg, struct sl_procload **out,
			      struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct sl_procload *pl;

	if (!eb)
		eb = &dummy;
	if (!out)
		return sl_err(eb, -EINVAL, "procload: out is NULL");
	*out = NULL;
	if (!cfg || cfg->size < sizeof(*cfg))
		return sl_err(eb, -EINVAL, "procload: config missing or its size field is too small");
	if (!cfg->bytes || cfg->bytes % PAGE || cfg->bytes / PAGE > MAX_PAGES)
		return sl_err(eb, -EINVAL, "procload: bytes %llu must be whole pages, at most 8 TiB",
			      (unsigned long long)cfg->bytes);
	if ((uintptr_t)cfg->mem % PAGE)
		return sl_err(eb, -EINVAL, "procload: mem must be page aligned");
	if (cfg->nthreads < 1 || cfg->nthreads > SL_GUEST_MAX_VCPUS)
		return sl_err(eb, -EINVAL, "procload: nthreads %u must be in 1..%u", cfg->nthreads,
			      SL_GUEST_MAX_VCPUS);
	uint64_t wss = cfg->wss_bytes ? cfg->wss_bytes : cfg->bytes - SL_MIN(cfg->wss_start, cfg->bytes);
	if (cfg->wss_start % PAGE || wss % PAGE || cfg->wss_start >= cfg->bytes ||
	    wss > cfg->bytes - cfg->wss_start || wss / PAGE < cfg->nthreads)
		return sl_err(eb, -EINVAL,
			      "procload: working set %llu+%llu must be whole pages inside the region, "
			      "at least one per thread",
			      (unsigned long long)cfg->wss_start, (unsigned long long)wss);
	if ((unsigned)cfg->pattern > SL_GUEST_STRIDE)
		return sl_err(eb, -EINVAL, "procload: unknown pattern %d", (int)cfg->pattern);

	pl = calloc(1, sizeof(*pl));
	if (!pl)
		return sl_err(eb, -ENOMEM, "procload: out of memory");
	pl->cfg = *cfg;
	pl->threads = calloc(cfg->nthreads, sizeof(*pl->threads));
	if (!pl->threads) {
		free(pl);
		return sl_err(eb, -ENOMEM, "procload: out of memory");
	}
	if (cfg->mem) {
		pl->mem = cfg->mem;
	} else {
		void *m = mmap(NULL, cfg->bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (m == MAP_FAILED) {
			int e = errno;
			free(pl->threads);
			free(pl);
			return sl_err(eb, -e, "procload: mapping %llu bytes: %s",
				      (unsigned long long)cfg->bytes, strerror(e));
		}
		pl->mem = m;
		pl->own_mem = true;
	}
	struct sl_guest_params *p = &pl->params;
	p->magic = SL_GUEST_PARAM_MAGIC;
	p->version = SL_GUEST_PARAM_VERSION;
	p->nvcpus = cfg->nthreads;
	p->pattern = (uint32_t)cfg->pattern;
	p->wss_first_page = (uint32_t)(cfg->wss_start / PAGE);
	p->wss_pages = (uint32_t)(wss / PAGE);
	p->stride = cfg->stride_pages ? cfg->stride_pages : 16;
	p->report_pages = cfg->report_pages ? cfg->report_pages : 64;
	p->seed = cfg->seed;
	p->max_passes = cfg->max_passes;
	atomic_store(&pl->rate_limit, cfg->rate_limit);
	pthread_mutex_init(&pl->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pl->cond, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < cfg->nthreads; i++) {
		pl->threads[i].pl = pl;
		pl->threads[i].idx = i;
	}
	*out = pl;
	return 0;
}

SL_EXPORT void sl_procload_free(struct sl_procload **plp)
{
	struct sl_procload *pl;

	if (!plp || !*plp)
		return;
	pl = *plp;
	pthread_mutex_lock(&pl->lock);
	pl->quit = true;
	pthread_cond_broadcast(&pl->cond);
	pthread_mutex_unlock(&pl->lock);
	atomic_store(&pl->stop_req, true); /* every thread reaches a checkpoint and exits */
	for (unsigned i = 0; i < pl->cfg.nthreads; i++)
		if (pl->threads[i].started)
			pthread_join(pl->threads[i].thread, NULL);
	if (pl->own_mem)
		munmap(pl->mem, pl->cfg.bytes);
	pthread_cond_destroy(&pl->cond);
	pthread_mutex_destroy(&pl->lock);
	free(pl->threads);
	free(pl);
	*plp = NULL;
}

SL_EXPORT int sl_procload_start(struct sl_procload *pl)
{
	if (!pl)
		return -EINVAL;
	pthread_mutex_lock(&pl->lock);
	if (pl->started) {
		pthread_mutex_unlock(&pl->lock);
		return -EALREADY;
	}
	pl->started = true;
	pthread_mutex_unlock(&pl->lock);
	for (unsigned i = 0; i < pl->cfg.nthreads; i++) {
		int ret = pthread_create(&pl->threads[i].thread, NULL, dirtier, &pl->threads[i]);
		if (ret) {
			pthread_mutex_lock(&pl->lock);
			pl->quit = true;
			pthread_mutex_unlock(&pl->lock);
			atomic_store(&pl->stop_req, true);
			return sl_err(&pl->err, -ret, "procload: starting thread %u: %s", i, strerror(ret));
		}
		pl->threads[i].started = true;
	}
	return 0;
}

SL_EXPORT int sl_procload_stop(struct sl_procload *pl)
{
	if (!pl)
		return -EINVAL;
	pthread_mutex_lock(&pl->lock);
	if (!pl->started) {
		pthread_mutex_unlock(&pl->lock);
		return 0;
	}
	atomic_store(&pl->stop_req, true);
	pthread_cond_broadcast(&pl->cond); /* wakes rate-limit sleepers */
	while (pl->parked < pl->cfg.nthreads)
		pthread_cond_wait(&pl->cond, &pl->lock);
	pthread_mutex_unlock(&pl->lock);
	return 0;
}

SL_EXPORT int sl_procload_resume(struct sl_procload *pl)
{
	if (!pl)
		return -EINVAL;
	pthread_mutex_lock(&pl->lock);
	if (!pl->started) {
		pthread_mutex_unlock(&pl->lock);
		return sl_err(&pl->err, -EINVAL, "procload: resume before start");
	}
	atomic_store(&pl->stop_req, false);
	pthread_cond_broadcast(&pl->cond);
	pthread_mutex_unlock(&pl->lock);
	return 0;
}

SL_EXPORT int sl_procload_mem(struct sl_procload *pl, void **ptr, uint64_t *len)
{
	if (!pl || !ptr || !len)
		return -EINVAL;
	*ptr = pl->mem;
	*len = pl->cfg.bytes;
	return 0;
}

SL_EXPORT uint64_t sl_procload_passes(const struct sl_procload *pl)
{
	uint64_t min = UINT64_MAX;

	if (!pl)
		return 0;
	for (unsigned i = 0; i < pl->cfg.nthreads; i++)
		min = SL_MIN(min, (uint64_t)atomic_load_explicit(
					  &((struct sl_procload *)pl)->threads[i].passes_done,
					  memory_order_relaxed));
	return min;
}

SL_EXPORT void sl_procload_get_stats(const struct sl_procload *cpl, struct sl_procload_stats *out)
{
	struct sl_procload *pl = (struct sl_procload *)cpl; /* atomics and the lock */

	memset(out, 0, sizeof(*out));
	if (!pl)
		return;
	out->pages_written = atomic_load_explicit(&pl->st_pages, memory_order_relaxed);
	out->rate_sleep_ns = atomic_load_explicit(&pl->st_sleep_ns, memory_order_relaxed);
	pthread_mutex_lock(&pl->lock);
	out->finished = pl->finished;
	pthread_mutex_unlock(&pl->lock);
}

SL_EXPORT void sl_procload_set_rate_limit(struct sl_procload *pl, uint64_t pages_per_sec)
{
	if (!pl)
		return;
	atomic_store(&pl->rate_limit, pages_per_sec);
	pthread_mutex_lock(&pl->lock);
	pthread_cond_broadcast(&pl->cond);
	pthread_mutex_unlock(&pl->lock);
}

SL_EXPORT void sl_procload_params(const struct sl_procload *cpl, struct sl_guest_params *p,
				  struct sl_guest_status *status)
{
	struct sl_procload *pl = (struct sl_procload *)cpl;

	if (!pl)
		return;
	if (p)
		*p = pl->params;
	if (status) {
		for (unsigned i = 0; i < pl->cfg.nthreads; i++) {
			status[i].pass = atomic_load(&pl->threads[i].pass);
			status[i].pos = atomic_load(&pl->threads[i].pos);
			status[i].passes_done = atomic_load(&pl->threads[i].passes_done);
			status[i].reserved = 0;
		}
	}
}

SL_EXPORT int sl_procload_verify(struct sl_procload *pl, struct sl_vmm_verify *out)
{
	struct sl_guest_status st[SL_GUEST_MAX_VCPUS];
	struct sl_guest_params p;

	if (!pl || !out)
		return -EINVAL;
	sl_procload_params(pl, &p, st);
	return sl_vmm_verify_pages(pl->mem, pl->cfg.bytes / PAGE, &p, st, out);
}

SL_EXPORT const char *sl_procload_last_error(const struct sl_procload *pl)
{
	return pl ? pl->err.msg : "procload: NULL";
}
