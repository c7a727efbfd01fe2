/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_wire.h — an in-memory stand-in for the transport in device-set
 * tests. The sink keeps only the POINTERS given to send() and copies the
 * bytes at flush() — so a buffer the device set reused before flush shows
 * up as corrupt data. Each flushed batch is shuffled before it is appended,
 * so the destination's source (next/release) must reassemble by index.
 */
#ifndef TEST_VFIO_WIRE_H
#define TEST_VFIO_WIRE_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WIRE_MAXDEV 8

struct wire_pkt {
	uint32_t dev, flags;
	uint64_t idx;
	uint8_t *data;
	size_t len;
	bool taken;
};

struct wire {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct wire_pkt *pkts;
	size_t n, cap;
	struct wire_pkt pend[4096];
	const void *pend_buf[4096];
	size_t npend;
	uint64_t next_idx[WIRE_MAXDEV];
	bool last_taken[WIRE_MAXDEV];
	uint64_t rng;
	uint64_t flushes, sent_bytes;
	int64_t drop_idx;  /* drop this index of device 0 (short stream); -1 = none */
	int fail_send_after; /* fail send() after this many packets; -1 = never */
	uint64_t packets;
};

static inline void wire_init(struct wire *w, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->rng = seed | 1;
	w->drop_idx = -1;
	w->fail_send_after = -1;
}

static inline void wire_exit(struct wire *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->pkts[i].data);
	free(w->pkts);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
}

static inline int wire_send(void *ctx, uint32_t dev, uint64_t index, uint32_t flags,
			    const void *buf, size_t len)
{
	struct wire *w = ctx;

	if (w->fail_send_after >= 0 && w->packets >= (uint64_t)w->fail_send_after)
		return -ECONNRESET;
	if (w->npend == 4096 || dev >= WIRE_MAXDEV)
		return -ENOBUFS;
	w->pend[w->npend] = (struct wire_pkt){ .dev = dev, .flags = flags, .idx = index, .len = len };
	w->pend_buf[w->npend++] = buf;
	w->packets++;
	return 0;
}

static inline uint64_t wire_rand(struct wire *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static inline int wire_flush(void *ctx)
{
	struct wire *w = ctx;

	pthread_mutex_lock(&w->lock);
	size_t start = w->n;
	for (size_t i = 0; i < w->npend; i++) {
		struct wire_pkt p = w->pend[i];
		if (p.dev == 0 && w->drop_idx >= 0 && p.idx == (uint64_t)w->drop_idx)
			continue;
		p.data = malloc(p.len ? p.len : 1);
		if (p.len)
			memcpy(p.data, w->pend_buf[i], p.len); /* copied only now */
		w->sent_bytes += p.len;
		if (w->n == w->cap) {
			w->cap = w->cap ? 2 * w->cap : 256;
			w->pkts = realloc(w->pkts, w->cap * sizeof(*w->pkts));
		}
		w->pkts[w->n] = p;
		w->n++;
	}
	/* Shuffle this batch: packets arrive out of order, as over several channels. */
	for (size_t i = w->n; i > start + 1; i--) {
		size_t j = start + wire_rand(w) % (i - start);
		struct wire_pkt t = w->pkts[i - 1];
		w->pkts[i - 1] = w->pkts[j];
		w->pkts[j] = t;
	}
	w->npend = 0;
	w->flushes++;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static inline int wire_next(void *ctx, uint32_t dev, const void **buf, size_t *len,
			    uint32_t *flags, int timeout_ms)
{
	struct wire *w = ctx;
	struct timespec ts;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (w->last_taken[dev]) {
			ret = -ENODATA;
			break;
		}
		size_t i;
		for (i = 0; i < w->n; i++)
			if (!w->pkts[i].taken && w->pkts[i].dev == dev &&
			    w->pkts[i].idx == w->next_idx[dev])
				break;
		if (i < w->n) {
			w->pkts[i].taken = true;
			*buf = w->pkts[i].data;
			*len = w->pkts[i].len;
			*flags = w->pkts[i].flags;
			w->next_idx[dev]++;
			if (w->pkts[i].flags & 1u)
				w->last_taken[dev] = true;
			break;
		}
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return ret;
}

static inline void wire_release(void *ctx, uint32_t dev, const void *buf)
{
	(void)ctx;
	(void)dev;
	(void)buf; /* freed in wire_exit */
}

#endif
