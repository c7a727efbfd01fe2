/* SPDX-License-Identifier: MIT */
/* sl_send_plain.c — the fallback path: one sendmsg (writev semantics) per
 * packet, header and pages gathered from where they are (the kernel copies
 * them into socket buffers; user space copies nothing). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "sl_sender_internal.h"

/* Sends iov[0..n) completely; short writes advance the iovec and retry. */
static int send_all(struct sl_channel *c, struct iovec *iov, int n, int flags)
{
	struct sl_sender *s = c->s;

	while (n > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL | flags);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (sl_sender_is_cancelled(s))
				return -ECANCELED;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return sl_sender_fail(s, -ETIMEDOUT,
						      SL_CH_FMT "peer stopped reading for %d ms",
						      SL_CH_ARGS(c), s->timeout_ms);
			return sl_sender_fail(s, -errno, SL_CH_FMT "peer gone: %s", SL_CH_ARGS(c),
					      strerror(errno));
		}
		c->bytes_sent += (uint64_t)k;
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
	return 0;
}

int sl_plain_send(struct sl_channel *c, struct sl_item *it)
{
	struct iovec iov[SL_MAX_SEGS + 1];
	int ret;

	iov[0] = (struct iovec){ it->hdr, it->hdr_len };
	memcpy(&iov[1], it->seg, it->nseg * sizeof(struct iovec));
	ret = send_all(c, iov, (int)it->nseg + 1, 0);
	sl_item_release(c, it);
	return ret;
}
