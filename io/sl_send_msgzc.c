/* SPDX-License-Identifier: MIT */
/*
 * sl_send_msgzc.c — sendmsg(MSG_ZEROCOPY): the kernel pins the pages instead
 * of copying them and later reports, on the socket's error queue, which send
 * calls (a 32-bit counter per successful call, in [lo, hi] ranges) it has
 * released and whether it had to copy after all (SO_EE_CODE_ZEROCOPY_COPIED,
 * always the case on loopback). A packet's header slot and pages are reused
 * only after every call that carried them has been reported.
 */
#include <errno.h>
#include <time.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "sl_sender_internal.h"

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

int sl_msgzc_setup(struct sl_channel *c)
{
	int one = 1;

	if (setsockopt(c->fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

static void complete_id(struct sl_channel *c, uint32_t id, bool copied)
{
	struct sl_zc_rec *rec = &c->zc[id % SL_ZC_RECS];
	struct sl_item *it = rec->item;

	if (!it)
		return;
	rec->item = NULL;
	c->zc_done_id++;
	sl_stat_add(&c->s->stats.zc_notifications, 1);
	if (copied)
		sl_stat_add(&c->s->stats.kernel_copied_bytes, rec->payload_bytes);
	if (--it->pending == 0 && it->sent)
		sl_item_release(c, it);
}

/* Drains the error queue without blocking. 0 or a channel error. */
static int drain_errqueue(struct sl_channel *c)
{
	for (;;) {
		char control[128];
		struct msghdr mh = { .msg_control = control, .msg_controllen = sizeof(control) };
		struct cmsghdr *cm;
		ssize_t n = recvmsg(c->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return sl_sender_fail(c->s, -errno, SL_CH_FMT "reading the error queue: %s",
					      SL_CH_ARGS(c), strerror(errno));
		}
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			struct sock_extended_err serr;

			if (!((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
			      (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR)))
				continue;
			memcpy(&serr, CMSG_DATA(cm), sizeof(serr));
			if (serr.ee_origin != SO_EE_ORIGIN_ZEROCOPY) {
				if (serr.ee_errno)
					return sl_sender_fail(c->s, -(int)serr.ee_errno,
							      SL_CH_FMT "socket error: %s", SL_CH_ARGS(c),
							      strerror((int)serr.ee_errno));
				continue;
			}
			bool copied = serr.ee_code & SO_EE_CODE_ZEROCOPY_COPIED;

			for (uint32_t id = serr.ee_info;; id++) {
				complete_id(c, id, copied);
				if (id == serr.ee_data)
					break;
			}
		}
	}
}

int sl_msgzc_reap(struct sl_channel *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = 0 };

	/* POLLERR is reported whenever the error queue holds something. */
	if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	return drain_errqueue(c);
}

int sl_msgzc_send(struct sl_channel *c, struct sl_item *it)
{
	struct sl_sender *s = c->s;
	struct iovec iov_store[SL_MAX_SEGS + 1], *iov = iov_store;
	int n = (int)it->nseg + 1;
	uint64_t hdr_left = it->hdr_len;
	uint64_t idle_since = 0;

	iov[0] = (struct iovec){ it->hdr, it->hdr_len };
	memcpy(&iov[1], it->seg, it->nseg * sizeof(struct iovec));
	it->pending = 0;
	it->sent = false;
	while (n > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t k;

		/* Never let the id records wrap over unreported calls. */
		while (c->zc_next_id - c->zc_done_id >= SL_ZC_RECS) {
			int ret = sl_msgzc_reap(c, 10);

			if (ret)
				return ret;
			if (sl_sender_is_cancelled(s))
				return -ECANCELED;
		}
		k = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_ZEROCOPY);
		if (k < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			if (sl_sender_is_cancelled(s))
				return -ECANCELED;
			if (e == ENOBUFS) {
				/* optmem full of pending notifications: reap, retry,
				 * but not forever. */
				uint64_t now = sl_now_ns();

				if (!idle_since)
					idle_since = now;
				if (now - idle_since > (uint64_t)s->timeout_ms * 1000000ull)
					return sl_sender_fail(s, -ETIMEDOUT,
							      SL_CH_FMT "no zero-copy completions for %d ms",
							      SL_CH_ARGS(c), s->timeout_ms);
				int ret = sl_msgzc_reap(c, 1);

				if (ret)
					return ret;
				continue;
			}
			if (e == EAGAIN || e == EWOULDBLOCK)
				return sl_sender_fail(s, -ETIMEDOUT,
						      SL_CH_FMT "peer stopped reading for %d ms",
						      SL_CH_ARGS(c), s->timeout_ms);
			return sl_sender_fail(s, -e, SL_CH_FMT "peer gone: %s", SL_CH_ARGS(c),
					      strerror(e));
		}
		idle_since = 0;
		if (k > 0) {
			struct sl_zc_rec *rec = &c->zc[c->zc_next_id % SL_ZC_RECS];
			uint64_t h = SL_MIN((uint64_t)k, hdr_left);

			hdr_left -= h;
			rec->item = it;
			rec->bytes = (uint64_t)k;
			rec->payload_bytes = (uint64_t)k - h;
			it->pending++;
			c->zc_next_id++;
			c->bytes_sent += (uint64_t)k;
		}
		while (n > 0 && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	it->sent = true;
	if (it->pending == 0)
		sl_item_release(c, it);
	/* Opportunistic: keep the error queue short. */
	return drain_errqueue(c);
}
