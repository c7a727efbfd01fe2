/* SPDX-License-Identifier: MIT */
/*
 * session_watchdog.c — a peer that stops answering must not hang the
 * source. Socket timeouts cover blocking reads and writes, but zero-copy
 * sends (io_uring SEND_ZC, MSG_ZEROCOPY) wait for completions that never
 * come when the receiver stops reading. So while the session thread is
 * inside a transport call, this thread watches the transport's counters
 * (atomic, readable from any thread); when nothing moved for the peer
 * timeout it cancels the sender, and the blocked call returns. The session
 * then reports -ETIMEDOUT ("peer silent"), not a hang.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "engine_internal.h"

#define TICK_NS 50000000ull /* 50 ms */

static uint64_t progress_mark(struct sl_session *s)
{
	struct sl_sender_stats st;

	sl_sender_get_stats(s->sender, &st);
	return st.bytes + st.zc_notifications + st.packets;
}

static void *watchdog_main(void *arg)
{
	struct sl_session *s = arg;
	uint64_t last_mark = 0, last_change = sl_now_ns();

	pthread_mutex_lock(&s->wd_lock);
	while (!s->wd_stop) {
		struct timespec ts;
		uint64_t now, busy, mark;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)TICK_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->wd_cond, &s->wd_lock, &ts);
		if (s->wd_stop)
			break;
		/* Read busy_since BEFORE the clock: the session thread may enter a
		 * transport call at any moment, and a busy_since later than `now`
		 * would make the unsigned difference below wrap to "silent for
		 * centuries" and cancel a healthy transfer. */
		busy = atomic_load(&s->wd_busy_since);
		mark = progress_mark(s);
		now = sl_now_ns();
		if (mark != last_mark) {
			last_mark = mark;
			last_change = now;
		}
		if (!busy || atomic_load(&s->wd_fired))
			continue;
		if (now - SL_MAX(busy, last_change) > s->cfg.peer_timeout_ns) {
			atomic_store(&s->wd_fired, true);
			sl_sender_cancel(s->sender);
		}
	}
	pthread_mutex_unlock(&s->wd_lock);
	return NULL;
}

int sl_session_watchdog_start(struct sl_session *s)
{
	int ret;

	pthread_mutex_init(&s->wd_lock, NULL);
	pthread_cond_init(&s->wd_cond, NULL);
	atomic_init(&s->wd_busy_since, 0);
	atomic_init(&s->wd_fired, false);
	s->wd_stop = false;
	ret = pthread_create(&s->wd_thread, NULL, watchdog_main, s);
	if (ret) {
		pthread_cond_destroy(&s->wd_cond);
		pthread_mutex_destroy(&s->wd_lock);
		return sl_err(&s->err, -ret, "cannot start the peer-silence watchdog: %s", strerror(ret));
	}
	s->wd_running = true;
	return 0;
}

void sl_session_watchdog_stop(struct sl_session *s)
{
	if (!s->wd_running)
		return;
	pthread_mutex_lock(&s->wd_lock);
	s->wd_stop = true;
	pthread_cond_signal(&s->wd_cond);
	pthread_mutex_unlock(&s->wd_lock);
	pthread_join(s->wd_thread, NULL);
	pthread_cond_destroy(&s->wd_cond);
	pthread_mutex_destroy(&s->wd_lock);
	s->wd_running = false;
}

void sl_session_busy(struct sl_session *s, bool busy)
{
	atomic_store(&s->wd_busy_since, busy ? sl_now_ns() : 0);
}

int sl_session_transport_err(struct sl_session *s, int err)
{
	if (err == -ECANCELED && atomic_load(&s->wd_fired) && !atomic_load(&s->cancelled))
		return -ETIMEDOUT;
	return err;
}

const char *sl_session_transport_msg(struct sl_session *s)
{
	static const char silent[] = "the destination stopped answering (no transfer progress within the peer timeout)";

	if (atomic_load(&s->wd_fired) && !atomic_load(&s->cancelled))
		return silent;
	return sl_sender_last_error(s->sender);
}
