/* SPDX-License-Identifier: MIT */
/* sl_ratelimit.c — a token bucket shared by all channels of a sender (like
 * QEMU's max-bandwidth): each packet takes its bytes; when the bucket is in
 * debt the taker sleeps until the debt is paid. The burst is ~10 ms of rate
 * so the link rate holds even over short intervals. */
#include <errno.h>
#include <time.h>

#include "sl_sender_internal.h"

void sl_bucket_init(struct sl_bucket *b, uint64_t rate)
{
	pthread_mutex_init(&b->lock, NULL);
	b->rate = rate;
	b->burst = rate ? SL_MAX((double)rate / 100.0, 65536.0) : 0;
	b->tokens = b->burst;
	b->last_ns = sl_now_ns();
}

void sl_bucket_destroy(struct sl_bucket *b)
{
	pthread_mutex_destroy(&b->lock);
}

void sl_bucket_set_rate(struct sl_bucket *b, uint64_t rate)
{
	pthread_mutex_lock(&b->lock);
	__atomic_store_n(&b->rate, rate, __ATOMIC_RELAXED);
	b->burst = rate ? SL_MAX((double)rate / 100.0, 65536.0) : 0;
	b->tokens = b->burst;
	b->last_ns = sl_now_ns();
	__atomic_add_fetch(&b->epoch, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&b->lock);
}

uint64_t sl_bucket_take(struct sl_bucket *b, uint64_t bytes, const int *cancelled)
{
	uint64_t now, slept = 0, rate;
	unsigned epoch;
	double debt;

	if (!__atomic_load_n(&b->rate, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&b->lock);
	rate = b->rate;
	if (!rate) { /* lifted while we waited for the lock */
		pthread_mutex_unlock(&b->lock);
		return 0;
	}
	epoch = b->epoch;
	now = sl_now_ns();
	b->tokens += (double)(now - b->last_ns) * (double)rate / 1e9;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	b->last_ns = now;
	b->tokens -= (double)bytes;
	debt = -b->tokens;
	pthread_mutex_unlock(&b->lock);
	if (debt <= 0)
		return 0;
	/* Sleep in slices so a cancel is noticed. */
	uint64_t wait_ns = (uint64_t)(debt * 1e9 / (double)rate);
	uint64_t end = now + wait_ns;

	while (!__atomic_load_n(cancelled, __ATOMIC_RELAXED) &&
	       __atomic_load_n(&b->epoch, __ATOMIC_ACQUIRE) == epoch) {
		uint64_t t = sl_now_ns();
		struct timespec ts;

		if (t >= end)
			break;
		/* Slices of at most 5 ms: a cancel or a new rate is seen soon. */
		uint64_t d = SL_MIN(end - t, (uint64_t)5000000);
		ts.tv_sec = (time_t)(d / 1000000000ull);
		ts.tv_nsec = (long)(d % 1000000000ull);
		nanosleep(&ts, NULL);
	}
	slept = sl_now_ns() - now;
	return slept;
}
