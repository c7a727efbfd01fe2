/* SPDX-License-Identifier: MIT */
/*
 * sl_workers.h — the NUMA-pinned worker pool.
 *
 * Each worker is one thread pinned to the CPUs its placement gives it
 * (sl_placement.h), with its own scratch buffer allocated on its NUMA node
 * and its own user state. Work reaches a worker only by message: a small
 * bounded queue per worker; the worker runs the message's function with
 * its own struct sl_worker. No locks are shared between workers, and a
 * worker's state is touched only by that worker (and by the owner between
 * sl_workers_wait() calls, when the queues are empty).
 *
 * Typical use (parallel scan):
 *     sl_workers_new(&cfg, &pool, &eb);
 *     for (i = 0; i < n; i++) sl_workers_post(pool, i, scan_part, &job[i]);
 *     err = sl_workers_wait(pool);      // first non-zero result, or 0
 * or sl_workers_run_all(pool, fn, arg) to run fn once on every worker.
 *
 * Threading: post/wait/run_all/free are called by one owner thread (the
 * session). The work functions run on the worker threads.
 */
#ifndef SL_WORKERS_H
#define SL_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_common.h"
#include "sl_placement.h"

struct sl_worker;
struct sl_workers;

/* A message's function: runs on the worker's thread. Returns 0 or a
 * negative errno; the first non-zero result is what sl_workers_wait
 * returns. */
typedef int (*sl_work_fn)(struct sl_worker *w, void *arg);

struct sl_workers_config {
	size_t size;                /* sizeof(struct sl_workers_config) */
	/* Placement of each worker: n_workers = plan->n_workers, worker i is
	 * plan->workers[i]. NULL → n_workers unpinned workers, node -1.
	 * Copied: the plan may be released once sl_workers_new returns. */
	const struct sl_placement *plan;
	uint32_t n_workers;         /* used only when plan == NULL; 1..256 */
	uint32_t queue_depth;       /* messages per worker; 0 → 64 */
	size_t buf_bytes;           /* per-worker scratch buffer on its node;
	                               0 = none */
	bool no_pin;                /* true: don't set CPU affinity */
	/* true: no threads. Messages queue up and run on the owner's thread,
	 * one at a time, when it calls sl_workers_poll() or sl_workers_wait()
	 * — so tests can step workers deterministically (SPDK's
	 * poll_threads()). No pinning; buffers are still placed. */
	bool manual;
	sl_log_fn log;              /* optional: pinning fallbacks, etc. */
	void *log_ctx;
};

/* Starts the workers. Pinning that the kernel refuses (CPU not in this
 * process's allowed set, e.g. in a container) is logged and the worker runs
 * unpinned (sl_worker_pinned() says which). Returns 0, -EINVAL (bad
 * config; text in eb if eb), -ENOMEM, or -EAGAIN (thread creation). */
SL_EXPORT int sl_workers_new(const struct sl_workers_config *cfg,
			     struct sl_workers **out, struct sl_errbuf *eb);

/* Stops (after each worker finished its queue) and joins the workers, then
 * frees buffers. NULL / *pool NULL are ignored. */
SL_EXPORT void sl_workers_free(struct sl_workers **pool);

SL_EXPORT uint32_t sl_workers_count(const struct sl_workers *pool);

/* Queues fn(worker, arg) on worker `idx`. Blocks while that worker's queue
 * is full (manual mode: returns -EAGAIN instead). Returns 0 or -EINVAL
 * (idx out of range, fn NULL). */
SL_EXPORT int sl_workers_post(struct sl_workers *pool, uint32_t idx,
			      sl_work_fn fn, void *arg);

/* Waits until every message posted so far has run (manual mode: runs them,
 * round-robin over the workers, one message each per round). Returns 0 or
 * the first non-zero result of those messages (then resets it). */
SL_EXPORT int sl_workers_wait(struct sl_workers *pool);

/* Manual mode only: runs the oldest queued message of worker `idx` on the
 * calling thread. Returns 1 if one ran, 0 if its queue was empty, -EINVAL
 * (bad idx, or the pool has threads). The message's result is kept for
 * sl_workers_wait. */
SL_EXPORT int sl_workers_poll(struct sl_workers *pool, uint32_t idx);

/* Posts fn(worker_i, arg) to every worker and waits; returns like wait. */
SL_EXPORT int sl_workers_run_all(struct sl_workers *pool, sl_work_fn fn,
				 void *arg);

/* Worker `idx` (for reading its state between waits), NULL if out of range. */
SL_EXPORT struct sl_worker *sl_workers_get(struct sl_workers *pool, uint32_t idx);

/* ---- per-worker accessors (from its work functions, or the owner between
 * waits) ---- */
SL_EXPORT uint32_t sl_worker_index(const struct sl_worker *w);
/* Kernel NUMA node the worker was placed on, -1 if none. */
SL_EXPORT int32_t sl_worker_node(const struct sl_worker *w);
/* True when its CPU affinity was set as planned. */
SL_EXPORT bool sl_worker_pinned(const struct sl_worker *w);
/* The scratch buffer (NULL if buf_bytes was 0) and its size. */
SL_EXPORT void *sl_worker_buf(struct sl_worker *w, size_t *len);
/* True when the buffer came from numa_alloc_onnode (false: malloc). */
SL_EXPORT bool sl_worker_buf_on_node(const struct sl_worker *w);
/* A user pointer the worker keeps (its own state): owner sets it between
 * waits, or the worker's functions set it. */
SL_EXPORT void *sl_worker_state(const struct sl_worker *w);
SL_EXPORT void sl_worker_set_state(struct sl_worker *w, void *state);
/* Messages this worker has run (for tests and stats). */
SL_EXPORT uint64_t sl_worker_done(const struct sl_worker *w);
/* The CPU the worker ran its last message on (sched_getcpu), -1 before. */
SL_EXPORT int sl_worker_last_cpu(const struct sl_worker *w);

#endif /* SL_WORKERS_H */
