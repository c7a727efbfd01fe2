/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_devstore.c — the device set against the transport's real
 * reassembly store (io/sl_devstore.h), as the engine plugs them together:
 * source packets are spread over 4 concurrent "channel" threads that put()
 * them into a store with a small memory cap (2 MiB, far below the 12 MiB of
 * state), while the destination's loaders take them in index order.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sl_devstore.h"
#include "sl_vfio.h"

#define NCH 4
#define MAXPEND 1024

struct pend {
	uint32_t dev, flags;
	uint64_t idx;
	const void *buf;
	size_t len;
};

struct chan_sink {
	struct sl_devstore *st;
	struct pend p[MAXPEND];
	unsigned chan[MAXPEND];
	size_t n;
	uint64_t rng;
	int err;
};

struct chan_arg {
	struct chan_sink *cs;
	unsigned ch;
	int ret;
};

static int cs_send(void *ctx, uint32_t dev, uint64_t index, uint32_t flags, const void *buf,
		   size_t len)
{
	struct chan_sink *cs = ctx;

	if (cs->n == MAXPEND)
		return -ENOBUFS;
	cs->p[cs->n++] = (struct pend){ dev, flags, index, buf, len };
	return 0;
}

static void *chan_main(void *arg)
{
	struct chan_arg *a = arg;

	for (size_t i = 0; i < a->cs->n && a->ret == 0; i++) {
		struct pend *p = &a->cs->p[i];
		if (a->cs->chan[i] != a->ch)
			continue;
		a->ret = sl_devstore_put(a->cs->st, p->dev, p->idx, p->flags, p->buf, p->len, 10000);
	}
	return NULL;
}

/* The "transport": each buffer goes out on a random channel; a channel
 * keeps send order (TCP), the four channel threads race each other, so
 * packets reach the store out of order. flush returns when every put()
 * copied its packet. */
static int cs_flush(void *ctx)
{
	struct chan_sink *cs = ctx;
	pthread_t t[NCH];
	struct chan_arg a[NCH];
	int ret = 0;

	for (size_t i = 0; i < cs->n; i++) {
		cs->rng = cs->rng * 6364136223846793005ull + 1442695040888963407ull;
		cs->chan[i] = (unsigned)(cs->rng >> 33) % NCH;
	}
	for (unsigned c = 0; c < NCH; c++) {
		a[c] = (struct chan_arg){ cs, c, 0 };
		pthread_create(&t[c], NULL, chan_main, &a[c]);
	}
	for (unsigned c = 0; c < NCH; c++) {
		pthread_join(t[c], NULL);
		if (a[c].ret && !ret)
			ret = a[c].ret;
	}
	cs->n = 0;
	return ret;
}

static int st_next(void *ctx, uint32_t dev, const void **buf, size_t *len, uint32_t *flags,
		   int timeout_ms)
{
	void *b = NULL;
	int ret = sl_devstore_next(ctx, dev, &b, len, flags, timeout_ms);

	*buf = b;
	return ret;
}

static void st_release(void *ctx, uint32_t dev, const void *buf)
{
	(void)dev;
	sl_devstore_release(ctx, (void *)buf);
}

static struct sl_vfio_backend *mk(const char *name, uint64_t state, uint64_t pre, uint64_t seed)
{
	struct sl_devsim_config c = { .size = sizeof(c), .name = name, .state_bytes = state,
				      .precopy_bytes = pre, .dirty_rate = pre ? 4u << 20 : 0,
				      .chunk_bytes = 32 << 10, .seed = seed };
	struct sl_vfio_backend *be = NULL;

	assert_int_equal(sl_devsim_new(&c, &be, NULL), 0);
	return be;
}

static void test_through_devstore(void **state)
{
	struct chan_sink cs = { .rng = 99 };
	struct sl_devset *src = NULL, *dst = NULL;
	struct sl_devset_config cfg = { .size = sizeof(cfg), .buf_max = 256 << 10 };
	const uint64_t sizes[3] = { 6u << 20, 4u << 20, 2u << 20 };
	uint64_t hash[3];

	(void)state;
	assert_int_equal(sl_devstore_new(2u << 20, &cs.st), 0);
	sl_devstore_reset(cs.st, NCH);
	assert_int_equal(sl_devset_new(&cfg, &src), 0);
	assert_int_equal(sl_devset_new(&cfg, &dst), 0);
	for (unsigned i = 0; i < 3; i++) {
		char name[8];
		snprintf(name, sizeof(name), "d%u", i);
		assert_int_equal(sl_devset_add(src, mk(name, sizes[i], i == 0 ? 3u << 20 : 0, i + 1)),
				 (int)i);
		assert_int_equal(sl_devset_add(dst, mk(name, sizes[i], i == 0 ? 3u << 20 : 0, 50 + i)),
				 (int)i);
	}
	struct sl_devset_sink sink = { .send = cs_send, .flush = cs_flush, .ctx = &cs };
	struct sl_devset_source so = { .next = st_next, .release = st_release, .ctx = cs.st };
	assert_int_equal(sl_devset_set_sink(src, &sink), 0);
	assert_int_equal(sl_devset_resume_start(dst, &so), 0);

	struct sl_devset_pending p;
	assert_int_equal(sl_devset_precopy_start(src), 0);
	for (int i = 0; i < 2000; i++) {
		int64_t n = sl_devset_precopy_read(src, 0);
		if (n < 0)
			fail_msg("precopy_read: %s", sl_devset_last_error(src));
		assert_int_equal(sl_devset_pending(src, &p), 0);
		if (p.initial_done)
			break;
	}
	assert_true(p.initial_done);
	assert_int_equal(sl_devset_stop(src), 0);
	for (unsigned i = 0; i < 3; i++)
		hash[i] = sl_devsim_state_hash(sl_vfio_dev_backend(sl_devset_dev(src, i)));
	assert_true(sl_devset_stopcopy_read_all(src) > 0);
	assert_int_equal(sl_devset_resume_finish(dst), 0);
	for (unsigned i = 0; i < 3; i++) {
		struct sl_devset_dev_stats st;
		assert_int_equal(sl_devsim_state_hash(sl_vfio_dev_backend(sl_devset_dev(dst, i))),
				 hash[i]);
		assert_int_equal(sl_devset_stats(dst, i, &st), 0);
		assert_true(st.verified);
	}
	assert_true(sl_devset_initial_loaded(dst));
	assert_true(sl_devstore_used(cs.st) <= (2u << 20));
	for (unsigned c = 0; c < NCH; c++)
		sl_devstore_producer_done(cs.st);
	assert_int_equal(sl_devset_resume_run(dst), 0);
	sl_devset_free(&src);
	sl_devset_free(&dst);
	sl_devstore_free(&cs.st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_through_devstore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
