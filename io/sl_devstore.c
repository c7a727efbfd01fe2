/* SPDX-License-Identifier: MIT */
/* sl_devstore.c — device-packet reassembly: per-device index-ordered lists
 * under one mutex (device packets are few and large; contention is low). */
#include "sl_devstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct entry {
	struct entry *next; /* sorted by index within the device */
	uint64_t index;
	uint32_t flags;
	size_t len;
	uint64_t charge; /* bytes counted against the cap */
	unsigned char data[];
};

struct device {
	struct device *next;
	uint32_t id;
	uint64_t next_index; /* the consumer's next */
	bool last_seen;
	uint64_t last_index;
	bool max_valid;
	uint64_t max_index; /* highest index put so far */
	bool finished;      /* LAST handed out */
	struct entry *head;
};

/* A producer waiting for room, with the packet it holds. */
struct waiter {
	struct waiter *next;
	uint32_t device_id;
	uint64_t index;
};

struct sl_devstore {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t cap;
	uint64_t used;        /* buffered + handed out */
	uint64_t handed_out;  /* bytes of buffers the consumers hold */
	unsigned nproducers, nwaiting, ndone;
	int error;            /* sticky: -ENOBUFS or -ECANCELED */
	struct device *devs;
	struct waiter *waiters;
};

int sl_devstore_new(uint64_t cap, struct sl_devstore **out)
{
	struct sl_devstore *st = calloc(1, sizeof(*st));
	pthread_condattr_t ca;

	if (!st)
		return -ENOMEM;
	st->cap = cap ? cap : 256ull << 20;
	pthread_mutex_init(&st->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = st;
	return 0;
}

static void drop_all(struct sl_devstore *st)
{
	struct device *d = st->devs;

	while (d) {
		struct device *dn = d->next;
		struct entry *e = d->head;

		while (e) {
			struct entry *en = e->next;

			free(e);
			e = en;
		}
		free(d);
		d = dn;
	}
	st->devs = NULL;
}

void sl_devstore_free(struct sl_devstore **pst)
{
	struct sl_devstore *st = pst ? *pst : NULL;

	if (!st)
		return;
	drop_all(st);
	pthread_cond_destroy(&st->cond);
	pthread_mutex_destroy(&st->lock);
	free(st);
	*pst = NULL;
}

void sl_devstore_reset(struct sl_devstore *st, unsigned nproducers)
{
	pthread_mutex_lock(&st->lock);
	drop_all(st);
	/* Buffers still held by a consumer of the previous session stay charged
	 * until they are released. */
	st->used = st->handed_out;
	st->nproducers = nproducers;
	st->nwaiting = st->ndone = 0;
	st->waiters = NULL;
	st->error = 0;
	pthread_mutex_unlock(&st->lock);
}

static struct device *find_dev(struct sl_devstore *st, uint32_t id, bool create)
{
	struct device *d;

	for (d = st->devs; d; d = d->next)
		if (d->id == id)
			return d;
	if (!create)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->id = id;
	d->next = st->devs;
	st->devs = d;
	return d;
}

static void deadline_after(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Some consumer can still make progress: it holds a buffer it will release,
 * the next index of some device is buffered, or a waiting producer holds it
 * (it is admitted as soon as it wakes). */
static bool consumer_can_progress(struct sl_devstore *st)
{
	if (st->handed_out)
		return true;
	for (struct device *d = st->devs; d; d = d->next) {
		if (d->head && d->head->index == d->next_index)
			return true;
		for (struct waiter *w = st->waiters; w; w = w->next)
			if (w->device_id == d->id && w->index == d->next_index)
				return true;
	}
	return false;
}

static int wait_locked(struct sl_devstore *st, const struct timespec *dl, int timeout_ms)
{
	int rc = timeout_ms < 0 ? pthread_cond_wait(&st->cond, &st->lock)
				: pthread_cond_timedwait(&st->cond, &st->lock, dl);
	return rc == ETIMEDOUT ? -ETIMEDOUT : 0;
}

int sl_devstore_put(struct sl_devstore *st, uint32_t device_id, uint64_t index, uint32_t flags,
		    const void *buf, size_t len, int timeout_ms)
{
	struct timespec dl;
	struct device *d;
	struct entry *e, **pp;
	uint64_t charge = len + sizeof(struct entry);
	int ret = 0;

	if (len && !buf)
		return -EINVAL;
	if (timeout_ms >= 0)
		deadline_after(&dl, timeout_ms);
	pthread_mutex_lock(&st->lock);
	for (;;) {
		if (st->error) {
			ret = st->error;
			goto out;
		}
		d = find_dev(st, device_id, true);
		if (!d) {
			ret = -ENOMEM;
			goto out;
		}
		if (index < d->next_index || d->finished ||
		    (d->last_seen && index > d->last_index) ||
		    ((flags & SL_DEVSTORE_LAST_FLAG) && (d->last_seen ||
		     (d->max_valid && d->max_index > index)))) {
			ret = -EINVAL;
			goto out;
		}
		for (e = d->head; e; e = e->next)
			if (e->index == index) {
				ret = -EINVAL;
				goto out;
			}
		/* The packet the consumer needs next always gets in: refusing it
		 * could only deadlock. */
		if (index == d->next_index || st->used + charge <= st->cap)
			break;
		if (st->nproducers && st->nwaiting + 1 + st->ndone >= st->nproducers &&
		    !consumer_can_progress(st)) {
			st->error = -ENOBUFS;
			pthread_cond_broadcast(&st->cond);
			ret = -ENOBUFS;
			goto out;
		}
		struct waiter me = { st->waiters, device_id, index }, **wp;

		st->waiters = &me;
		st->nwaiting++;
		ret = wait_locked(st, &dl, timeout_ms);
		st->nwaiting--;
		for (wp = &st->waiters; *wp != &me; wp = &(*wp)->next)
			;
		*wp = me.next;
		if (ret)
			goto out;
	}
	e = malloc(sizeof(*e) + len);
	if (!e) {
		ret = -ENOMEM;
		goto out;
	}
	e->index = index;
	e->flags = flags;
	e->len = len;
	e->charge = charge;
	if (len)
		memcpy(e->data, buf, len);
	for (pp = &d->head; *pp && (*pp)->index < index; pp = &(*pp)->next)
		;
	e->next = *pp;
	*pp = e;
	st->used += charge;
	if (!d->max_valid || index > d->max_index) {
		d->max_valid = true;
		d->max_index = index;
	}
	if (flags & SL_DEVSTORE_LAST_FLAG) {
		d->last_seen = true;
		d->last_index = index;
	}
	pthread_cond_broadcast(&st->cond);
out:
	pthread_mutex_unlock(&st->lock);
	return ret;
}

void sl_devstore_producer_done(struct sl_devstore *st)
{
	pthread_mutex_lock(&st->lock);
	st->ndone++;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

int sl_devstore_next(struct sl_devstore *st, uint32_t device_id, void **buf, size_t *len,
		     uint32_t *flags, int timeout_ms)
{
	struct timespec dl;
	struct device *d;
	struct entry *e;
	int ret = 0;

	if (timeout_ms >= 0)
		deadline_after(&dl, timeout_ms);
	pthread_mutex_lock(&st->lock);
	for (;;) {
		d = find_dev(st, device_id, true);
		if (!d) {
			ret = -ENOMEM;
			break;
		}
		if (d->finished) {
			ret = -ENODATA;
			break;
		}
		e = d->head;
		if (e && e->index == d->next_index) {
			d->head = e->next;
			d->next_index++;
			if (e->flags & SL_DEVSTORE_LAST_FLAG)
				d->finished = true;
			st->handed_out += e->charge;
			*buf = e->data;
			*len = e->len;
			if (flags)
				*flags = e->flags;
			break;
		}
		if (st->error) {
			ret = st->error;
			break;
		}
		if (st->nproducers && st->ndone >= st->nproducers) {
			ret = -EPIPE;
			break;
		}
		ret = wait_locked(st, &dl, timeout_ms);
		if (ret)
			break;
	}
	pthread_mutex_unlock(&st->lock);
	return ret;
}

void sl_devstore_release(struct sl_devstore *st, void *buf)
{
	struct entry *e;

	if (!buf)
		return;
	e = (struct entry *)((unsigned char *)buf - offsetof(struct entry, data));
	pthread_mutex_lock(&st->lock);
	st->handed_out -= e->charge;
	st->used -= e->charge;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	free(e);
}

void sl_devstore_abort(struct sl_devstore *st)
{
	pthread_mutex_lock(&st->lock);
	st->error = -ECANCELED;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

uint64_t sl_devstore_used(struct sl_devstore *st)
{
	uint64_t u;

	pthread_mutex_lock(&st->lock);
	u = st->used;
	pthread_mutex_unlock(&st->lock);
	return u;
}
