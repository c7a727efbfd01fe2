/* SPDX-License-Identifier: MIT */
/*
 * workers.c — the NUMA-pinned worker pool (sl_workers.h).
 *
 * Each worker has a small bounded ring of messages guarded by its own
 * mutex; only the owner thread posts, only the worker pops. The pool keeps
 * one completion counter (posted/completed under the pool lock) so
 * sl_workers_wait() is a plain condition wait. A worker's buffer is
 * allocated on its node with numa_alloc_onnode (plain malloc when the
 * system has no NUMA support or the worker has no node).
 */
#include <errno.h>
#include <numa.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_workers.h"

#define MAX_WORKERS 256

struct msg {
	sl_work_fn fn;
	void *arg;
};

struct sl_worker {
	struct sl_workers *pool;
	uint32_t idx;
	int32_t node;
	bool want_pin;
	cpu_set_t cpus;
	bool pinned;
	void *buf;
	size_t buf_len;
	bool buf_on_node;
	void *state;
	uint64_t done;
	int last_cpu;

	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t nonempty;
	pthread_cond_t nonfull;
	struct msg *ring;
	uint32_t depth, head, count;
	bool stop;
};

struct sl_workers {
	struct sl_worker *w;
	uint32_t n;
	bool manual;            /* no threads: the owner runs the messages */
	sl_log_fn log;
	void *log_ctx;

	pthread_mutex_t mu;     /* guards the fields below */
	pthread_cond_t cv;
	uint32_t ready;
	uint64_t posted;
	uint64_t completed;
	int first_err;
};

static void logf_(struct sl_workers *p, enum sl_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(struct sl_workers *p, enum sl_log_level lvl, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	if (!p->log)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->log(p->log_ctx, lvl, buf);
}

static void run_msg(struct sl_worker *w, const struct msg *m)
{
	struct sl_workers *p = w->pool;
	int err = m->fn(w, m->arg);

	w->done++;
	w->last_cpu = sched_getcpu();
	pthread_mutex_lock(&p->mu);
	p->completed++;
	if (err && !p->first_err)
		p->first_err = err;
	if (p->completed == p->posted)
		pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg)
{
	struct sl_worker *w = arg;
	struct sl_workers *p = w->pool;

	if (w->want_pin) {
		int e = pthread_setaffinity_np(pthread_self(), sizeof(w->cpus), &w->cpus);

		w->pinned = e == 0;
		if (e)
			logf_(p, SL_LOG_WARNING, "worker %u: cannot pin to its planned CPUs (%s); running unpinned",
			      w->idx, strerror(e));
	}
	pthread_mutex_lock(&p->mu);
	p->ready++;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);

	for (;;) {
		struct msg m;

		pthread_mutex_lock(&w->mu);
		while (!w->count && !w->stop)
			pthread_cond_wait(&w->nonempty, &w->mu);
		if (!w->count) {
			pthread_mutex_unlock(&w->mu);
			break;
		}
		m = w->ring[w->head];
		w->head = (w->head + 1) % w->depth;
		w->count--;
		pthread_cond_signal(&w->nonfull);
		pthread_mutex_unlock(&w->mu);

		run_msg(w, &m);
	}
	return NULL;
}

static void free_buf(struct sl_worker *w)
{
	if (!w->buf)
		return;
	if (w->buf_on_node)
		numa_free(w->buf, w->buf_len);
	else
		free(w->buf);
	w->buf = NULL;
}

static int alloc_buf(struct sl_worker *w, size_t len)
{
	w->buf_len = len;
	if (!len)
		return 0;
	/* Only nodes this machine has (a synthetic plan may name others). */
	if (w->node >= 0 && numa_available() >= 0 && w->node <= numa_max_node() &&
	    numa_bitmask_isbitset(numa_all_nodes_ptr, (unsigned)w->node)) {
		w->buf = numa_alloc_onnode(len, w->node);
		if (w->buf) {
			w->buf_on_node = true;
			return 0;
		}
	}
	w->buf = malloc(len);
	return w->buf ? 0 : -ENOMEM;
}

void sl_workers_free(struct sl_workers **pp)
{
	struct sl_workers *p;

	if (!pp || !*pp)
		return;
	p = *pp;
	for (uint32_t i = 0; i < p->n; i++) {
		struct sl_worker *w = &p->w[i];

		if (!w->started)
			continue;
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->nonempty);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	for (uint32_t i = 0; i < p->n; i++) {
		struct sl_worker *w = &p->w[i];

		free_buf(w);
		free(w->ring);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->nonempty);
		pthread_cond_destroy(&w->nonfull);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->w);
	free(p);
	*pp = NULL;
}

int sl_workers_new(const struct sl_workers_config *cfg, struct sl_workers **out,
		   struct sl_errbuf *eb)
{
	struct sl_errbuf local;
	struct sl_workers *p;
	uint32_t n, depth;
	int err = 0;

	if (!eb)
		eb = &local;
	if (!out)
		return sl_err(eb, -EINVAL, "workers: no output pointer");
	*out = NULL;
	if (!cfg || cfg->size < sizeof(*cfg))
		return sl_err(eb, -EINVAL, "workers: config missing or its size field is not set");
	n = cfg->plan ? cfg->plan->n_workers : cfg->n_workers;
	if (!n || n > MAX_WORKERS || (cfg->plan && !cfg->plan->workers))
		return sl_err(eb, -EINVAL, "workers: want 1..%d workers, got %u", MAX_WORKERS, n);
	depth = cfg->queue_depth ? cfg->queue_depth : 64;
	if (depth > 65536)
		return sl_err(eb, -EINVAL, "workers: queue depth %u is above 65536", depth);

	p = calloc(1, sizeof(*p));
	if (!p)
		return sl_err(eb, -ENOMEM, "workers: out of memory");
	p->w = calloc(n, sizeof(*p->w));
	if (!p->w) {
		free(p);
		return sl_err(eb, -ENOMEM, "workers: out of memory");
	}
	p->n = n;
	p->manual = cfg->manual;
	p->log = cfg->log;
	p->log_ctx = cfg->log_ctx;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (uint32_t i = 0; i < n; i++) {
		struct sl_worker *w = &p->w[i];

		w->pool = p;
		w->idx = i;
		w->node = cfg->plan ? cfg->plan->workers[i].node : -1;
		w->want_pin = cfg->plan && !cfg->no_pin && !cfg->manual;
		if (cfg->plan)
			w->cpus = cfg->plan->workers[i].cpus;
		w->last_cpu = -1;
		w->depth = depth;
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->nonempty, NULL);
		pthread_cond_init(&w->nonfull, NULL);
		w->ring = calloc(depth, sizeof(*w->ring));
		if (!w->ring || alloc_buf(w, cfg->buf_bytes)) {
			err = sl_err(eb, -ENOMEM, "workers: out of memory for worker %u", i);
			goto fail;
		}
	}
	if (p->manual) {
		*out = p;
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		int e = pthread_create(&p->w[i].thread, NULL, worker_main, &p->w[i]);

		if (e) {
			err = sl_err(eb, -EAGAIN, "workers: cannot start worker %u: %s", i, strerror(e));
			goto fail;
		}
		p->w[i].started = true;
	}
	/* Return once every worker is pinned (or knows it is not). */
	pthread_mutex_lock(&p->mu);
	while (p->ready < n)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	*out = p;
	return 0;
fail:
	sl_workers_free(&p);
	return err;
}

uint32_t sl_workers_count(const struct sl_workers *p)
{
	return p ? p->n : 0;
}

int sl_workers_post(struct sl_workers *p, uint32_t idx, sl_work_fn fn, void *arg)
{
	struct sl_worker *w;

	if (!p || !fn || idx >= p->n)
		return -EINVAL;
	w = &p->w[idx];
	if (p->manual && w->count == w->depth)
		return -EAGAIN; /* nobody else would ever drain it */
	pthread_mutex_lock(&p->mu);
	p->posted++;
	pthread_mutex_unlock(&p->mu);

	pthread_mutex_lock(&w->mu);
	while (w->count == w->depth)
		pthread_cond_wait(&w->nonfull, &w->mu);
	w->ring[(w->head + w->count) % w->depth] = (struct msg){ fn, arg };
	w->count++;
	pthread_cond_signal(&w->nonempty);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

int sl_workers_poll(struct sl_workers *p, uint32_t idx)
{
	struct sl_worker *w;
	struct msg m;

	if (!p || !p->manual || idx >= p->n)
		return -EINVAL;
	w = &p->w[idx];
	if (!w->count)
		return 0;
	m = w->ring[w->head];
	w->head = (w->head + 1) % w->depth;
	w->count--;
	run_msg(w, &m);
	return 1;
}

int sl_workers_wait(struct sl_workers *p)
{
	int err;

	if (!p)
		return -EINVAL;
	if (p->manual) {
		bool ran = true;

		while (ran) {
			ran = false;
			for (uint32_t i = 0; i < p->n; i++)
				ran |= sl_workers_poll(p, i) == 1;
		}
	}
	pthread_mutex_lock(&p->mu);
	while (p->completed != p->posted)
		pthread_cond_wait(&p->cv, &p->mu);
	err = p->first_err;
	p->first_err = 0;
	pthread_mutex_unlock(&p->mu);
	return err;
}

int sl_workers_run_all(struct sl_workers *p, sl_work_fn fn, void *arg)
{
	if (!p || !fn)
		return -EINVAL;
	for (uint32_t i = 0; i < p->n; i++) {
		int err = sl_workers_post(p, i, fn, arg);

		if (err)
			return err;
	}
	return sl_workers_wait(p);
}

struct sl_worker *sl_workers_get(struct sl_workers *p, uint32_t idx)
{
	return p && idx < p->n ? &p->w[idx] : NULL;
}

uint32_t sl_worker_index(const struct sl_worker *w)
{
	return w ? w->idx : 0;
}

int32_t sl_worker_node(const struct sl_worker *w)
{
	return w ? w->node : -1;
}

bool sl_worker_pinned(const struct sl_worker *w)
{
	return w && w->pinned;
}

void *sl_worker_buf(struct sl_worker *w, size_t *len)
{
	if (len)
		*len = w ? w->buf_len : 0;
	return w ? w->buf : NULL;
}

bool sl_worker_buf_on_node(const struct sl_worker *w)
{
	return w && w->buf_on_node;
}

void *sl_worker_state(const struct sl_worker *w)
{
	return w ? w->state : NULL;
}

void sl_worker_set_state(struct sl_worker *w, void *state)
{
	if (w)
		w->state = state;
}

uint64_t sl_worker_done(const struct sl_worker *w)
{
	return w ? w->done : 0;
}

int sl_worker_last_cpu(const struct sl_worker *w)
{
	return w ? w->last_cpu : -1;
}
