/* SPDX-License-Identifier: MIT */
/*
 * test_workers.c — the worker pool: messages run on their worker in FIFO
 * order, errors come back through wait, pinning follows the plan (and
 * falls back when the plan names CPUs this machine lacks), buffers live on
 * the worker's node.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sl_workers.h"

/* Each worker's own state: what it has seen, in order. */
struct wstate {
	uint32_t seen[256];
	uint32_t n;
	uint32_t owner; /* the worker index that ran the messages */
};

static int record(struct sl_worker *w, void *arg)
{
	struct wstate *s = sl_worker_state(w);

	s->seen[s->n++] = (uint32_t)(uintptr_t)arg;
	s->owner = sl_worker_index(w);
	return 0;
}

static int fail_eio(struct sl_worker *w, void *arg)
{
	(void)w;
	(void)arg;
	return -EIO;
}

static int note_index(struct sl_worker *w, void *arg)
{
	uint32_t *slots = arg;

	slots[sl_worker_index(w)] = sl_worker_index(w) + 100;
	return 0;
}

static void test_fifo_and_ownership(void **state)
{
	struct sl_workers_config cfg = { .size = sizeof(cfg), .n_workers = 3,
					 .queue_depth = 2 };
	struct sl_workers *pool = NULL;
	struct wstate st[3];

	(void)state;
	memset(st, 0, sizeof(st));
	assert_int_equal(sl_workers_new(&cfg, &pool, NULL), 0);
	assert_int_equal(sl_workers_count(pool), 3);
	for (uint32_t i = 0; i < 3; i++) {
		sl_worker_set_state(sl_workers_get(pool, i), &st[i]);
		assert_int_equal(sl_worker_node(sl_workers_get(pool, i)), -1);
		assert_false(sl_worker_pinned(sl_workers_get(pool, i)));
		assert_int_equal(sl_worker_last_cpu(sl_workers_get(pool, i)), -1);
	}
	/* 3 × 200 messages through queues of 2: posting blocks, order holds */
	for (uint32_t k = 0; k < 200; k++)
		for (uint32_t i = 0; i < 3; i++)
			assert_int_equal(sl_workers_post(pool, i, record, (void *)(uintptr_t)(k * 3 + i)), 0);
	assert_int_equal(sl_workers_wait(pool), 0);
	for (uint32_t i = 0; i < 3; i++) {
		assert_int_equal(st[i].n, 200);
		assert_int_equal(st[i].owner, i);
		for (uint32_t k = 0; k < 200; k++)
			assert_int_equal(st[i].seen[k], k * 3 + i);
		assert_int_equal(sl_worker_done(sl_workers_get(pool, i)), 200);
		assert_true(sl_worker_last_cpu(sl_workers_get(pool, i)) >= 0);
	}
	sl_workers_free(&pool);
	assert_null(pool);
}

static void test_errors_and_run_all(void **state)
{
	struct sl_workers_config cfg = { .size = sizeof(cfg), .n_workers = 4 };
	struct sl_workers *pool = NULL;
	uint32_t slots[4] = { 0 };
	struct sl_errbuf eb = { { 0 } };

	(void)state;
	assert_int_equal(sl_workers_new(&cfg, &pool, &eb), 0);
	assert_int_equal(sl_workers_post(pool, 2, fail_eio, NULL), 0);
	assert_int_equal(sl_workers_wait(pool), -EIO);
	assert_int_equal(sl_workers_wait(pool), 0); /* reported once */
	assert_int_equal(sl_workers_run_all(pool, note_index, slots), 0);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(slots[i], i + 100);
	assert_int_equal(sl_workers_run_all(pool, fail_eio, NULL), -EIO);
	assert_int_equal(sl_workers_post(pool, 4, note_index, slots), -EINVAL);
	assert_int_equal(sl_workers_post(pool, 0, NULL, slots), -EINVAL);
	assert_null(sl_workers_get(pool, 4));
	sl_workers_free(&pool);
	sl_workers_free(&pool); /* NULL is fine */

	cfg.n_workers = 0;
	assert_int_equal(sl_workers_new(&cfg, &pool, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "workers"));
	cfg.n_workers = 1000;
	assert_int_equal(sl_workers_new(&cfg, &pool, &eb), -EINVAL);
	cfg.n_workers = 1;
	cfg.size = 0;
	assert_int_equal(sl_workers_new(&cfg, &pool, &eb), -EINVAL);
	assert_null(pool);
}

static int where(struct sl_worker *w, void *arg)
{
	int *cpu = arg;

	cpu[sl_worker_index(w)] = sched_getcpu();
	return 0;
}

static void test_pinned_on_this_machine(void **state)
{
	struct sl_topology_config tcfg = { .size = sizeof(tcfg) };
	struct sl_topology *t = NULL;
	struct sl_topo_desc d;
	struct sl_placement plan;
	struct sl_workers *pool = NULL;
	struct sl_workers_config cfg = { .size = sizeof(cfg), .plan = &plan,
					 .buf_bytes = 1 << 20 };
	int cpu[4] = { -1, -1, -1, -1 };

	(void)state;
	assert_int_equal(sl_topology_new(&tcfg, &t, NULL), 0);
	assert_int_equal(sl_topology_describe(t, &d), 0);
	assert_int_equal(sl_placement_plan(&d, NULL, 0, 2, 2, &plan, NULL), 0);
	assert_int_equal(sl_workers_new(&cfg, &pool, NULL), 0);
	assert_int_equal(sl_workers_count(pool), 4);
	assert_int_equal(sl_workers_run_all(pool, where, cpu), 0);
	for (uint32_t i = 0; i < 4; i++) {
		struct sl_worker *w = sl_workers_get(pool, i);
		size_t len = 0;
		char *buf = sl_worker_buf(w, &len);

		/* this machine's CPUs are all allowed to us: pinning works */
		assert_true(sl_worker_pinned(w));
		assert_true(CPU_ISSET(cpu[i], &plan.workers[i].cpus));
		assert_int_equal(sl_worker_node(w), plan.workers[i].node);
		assert_non_null(buf);
		assert_int_equal(len, 1 << 20);
		memset(buf, 7, len);
		assert_int_equal(sl_worker_buf_on_node(w), sl_numa_available());
		assert_int_equal(sl_numa_node_of(buf, len), plan.workers[i].node);
	}
	sl_workers_free(&pool);
	sl_placement_release(&plan);
	sl_topo_desc_release(&d);
	sl_topology_free(&t);
}

/* Called from the worker threads (the log contract): count atomically. */
static void count_log(void *ctx, enum sl_log_level level, const char *msg)
{
	atomic_int *n = ctx;

	assert_int_equal(level, SL_LOG_WARNING);
	assert_non_null(strstr(msg, "unpinned"));
	atomic_fetch_add(n, 1);
}

static void test_pin_fallback(void **state)
{
	struct sl_topology_config tcfg = { .size = sizeof(tcfg),
					   .synthetic = "numa:2 core:2 pu:1" };
	struct sl_topology *t = NULL;
	struct sl_topo_desc d;
	struct sl_placement plan;
	struct sl_workers *pool = NULL;
	atomic_int logs = 0;
	struct sl_workers_config cfg = { .size = sizeof(cfg), .plan = &plan,
					 .buf_bytes = 4096, .log = count_log,
					 .log_ctx = &logs };
	uint32_t slots[4] = { 0 };
	cpu_set_t allowed;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
	assert_int_equal(sl_topology_new(&tcfg, &t, NULL), 0);
	assert_int_equal(sl_topology_describe(t, &d), 0);
	assert_int_equal(sl_placement_plan(&d, NULL, 0, 4, 0, &plan, NULL), 0);
	/* worker 3 is planned on CPU 3 of node 1 */
	assert_int_equal(plan.workers[3].first_cpu, 3);
	assert_int_equal(sl_workers_new(&cfg, &pool, NULL), 0);
	int expect_logs = 0;
	for (uint32_t i = 0; i < 4; i++) {
		bool possible = CPU_ISSET(plan.workers[i].first_cpu, &allowed);

		assert_int_equal(sl_worker_pinned(sl_workers_get(pool, i)), possible);
		expect_logs += possible ? 0 : 1;
	}
	assert_int_equal(atomic_load(&logs), expect_logs);
	/* still works unpinned; node-1 buffer on a one-node machine: malloc */
	assert_int_equal(sl_workers_run_all(pool, note_index, slots), 0);
	assert_int_equal(slots[3], 103);
	if (sl_numa_available() && !CPU_ISSET(3, &allowed))
		assert_false(sl_worker_buf_on_node(sl_workers_get(pool, 3)));
	assert_non_null(sl_worker_buf(sl_workers_get(pool, 3), NULL));
	sl_workers_free(&pool);

	cfg.no_pin = true;
	atomic_store(&logs, 0);
	assert_int_equal(sl_workers_new(&cfg, &pool, NULL), 0);
	assert_false(sl_worker_pinned(sl_workers_get(pool, 0)));
	assert_int_equal(atomic_load(&logs), 0);
	sl_workers_free(&pool);
	sl_placement_release(&plan);
	sl_topo_desc_release(&d);
	sl_topology_free(&t);
}

/* Manual mode: one global log shows exactly what ran when. */
static uint32_t order[64];
static uint32_t n_order;

static int log_order(struct sl_worker *w, void *arg)
{
	order[n_order++] = sl_worker_index(w) * 100 + (uint32_t)(uintptr_t)arg;
	return (uintptr_t)arg == 99 ? -EIO : 0;
}

static void test_manual_stepping(void **state)
{
	struct sl_workers_config cfg = { .size = sizeof(cfg), .n_workers = 2,
					 .queue_depth = 3, .manual = true };
	struct sl_workers *pool = NULL;

	(void)state;
	n_order = 0;
	assert_int_equal(sl_workers_new(&cfg, &pool, NULL), 0);
	for (uintptr_t k = 1; k <= 3; k++)
		assert_int_equal(sl_workers_post(pool, 0, log_order, (void *)k), 0);
	assert_int_equal(sl_workers_post(pool, 0, log_order, (void *)4), -EAGAIN);
	assert_int_equal(sl_workers_post(pool, 1, log_order, (void *)1), 0);
	assert_int_equal(sl_workers_post(pool, 1, log_order, (void *)99), 0);
	assert_int_equal(n_order, 0); /* nothing runs by itself */

	assert_int_equal(sl_workers_poll(pool, 1), 1);
	assert_int_equal(n_order, 1);
	assert_int_equal(order[0], 101);
	assert_int_equal(sl_worker_done(sl_workers_get(pool, 1)), 1);
	assert_int_equal(sl_worker_done(sl_workers_get(pool, 0)), 0);

	/* wait: round robin, one message per worker per round */
	assert_int_equal(sl_workers_wait(pool), -EIO);
	assert_int_equal(n_order, 5);
	assert_int_equal(order[1], 1);
	assert_int_equal(order[2], 199);
	assert_int_equal(order[3], 2);
	assert_int_equal(order[4], 3);
	assert_int_equal(sl_workers_poll(pool, 0), 0);
	assert_int_equal(sl_workers_poll(pool, 2), -EINVAL);
	assert_int_equal(sl_workers_wait(pool), 0);
	sl_workers_free(&pool);

	/* poll is for manual pools only */
	cfg.manual = false;
	assert_int_equal(sl_workers_new(&cfg, &pool, NULL), 0);
	assert_int_equal(sl_workers_poll(pool, 0), -EINVAL);
	sl_workers_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fifo_and_ownership),
		cmocka_unit_test(test_errors_and_run_all),
		cmocka_unit_test(test_pinned_on_this_machine),
		cmocka_unit_test(test_pin_fallback),
		cmocka_unit_test(test_manual_stepping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
