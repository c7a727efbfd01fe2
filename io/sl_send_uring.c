/* SPDX-License-Identifier: MIT */
/*
 * sl_send_uring.c — io_uring IORING_OP_SEND_ZC from registered buffers.
 *
 * Each channel owns a ring whose fixed-buffer table holds the header slab
 * (slot 0) and every region cut into <= 1 GiB pieces. A batch of packets
 * becomes one chain of linked SEND_ZC SQEs (header, then its page segments,
 * then the next packet...): linked requests run one after another, so the
 * bytes reach the socket in order. Only one chain is in flight per socket;
 * unlinked requests on one stream socket could interleave.
 *
 * Every SEND_ZC posts a completion (bytes sent, IORING_CQE_F_MORE when a
 * notification will follow) and later a notification (IORING_CQE_F_NOTIF)
 * when the kernel no longer references the buffer; with
 * IORING_SEND_ZC_REPORT_USAGE the notification's res carries
 * IORING_NOTIF_USAGE_ZC_COPIED when the kernel copied after all (loopback
 * always does). A packet's header slot is reused only after its
 * notifications.
 *
 * MSG_WAITALL makes io_uring retry short sends itself; if a send still ends
 * short, the rest of the chain is cancelled (-ECANCELED) and we resubmit the
 * remainder, in order, as a new chain.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "sl_kernel_compat.h"
#include "sl_sender_internal.h"

#define RING_ENTRIES 1024
#define CHAIN_MAX 1000

/* user_data: item index | payload flag | length. */
#define UD_IDX_SHIFT 48
#define UD_PAYLOAD (1ull << 47)
#define UD_LEN_MASK ((1ull << 40) - 1)

struct zc_sqe {
	struct sl_item *it;
	uint8_t *ptr;
	uint64_t len;
	int buf_index;   /* -1: not a registered buffer */
	bool payload;
};

int sl_uring_probe(void)
{
	struct io_uring ring;
	struct io_uring_probe *pr;
	int ret = io_uring_queue_init(4, &ring, 0);

	if (ret)
		return ret;
	pr = io_uring_get_probe_ring(&ring);
	ret = (pr && io_uring_opcode_supported(pr, IORING_OP_SEND_ZC)) ? 0 : -EOPNOTSUPP;
	if (pr)
		io_uring_free_probe(pr);
	io_uring_queue_exit(&ring);
	return ret;
}

int sl_uring_setup(struct sl_channel *c)
{
	struct iovec slab = { c->slab, SL_ITEMS_PER_CHANNEL * SL_HDR_SLOT };
	int ret = io_uring_queue_init(RING_ENTRIES, &c->ring, 0);

	if (ret)
		return ret;
	c->ring_ok = true;
	ret = io_uring_register_buffers_sparse(&c->ring, SL_MAX_FIXED);
	if (ret)
		return ret;
	ret = io_uring_register_buffers_update_tag(&c->ring, 0, &slab, NULL, 1);
	return ret < 0 ? ret : 0;
}

void sl_uring_teardown(struct sl_channel *c)
{
	io_uring_queue_exit(&c->ring);
	c->ring_ok = false;
}

int sl_uring_register_region(struct sl_channel *c, struct sl_region_s *rg)
{
	for (unsigned i = 0; i < rg->npieces; i++) {
		uint64_t off = (uint64_t)i * SL_FIXED_PIECE;
		struct iovec iov = { rg->host + off, SL_MIN(SL_FIXED_PIECE, rg->len - off) };
		int ret = io_uring_register_buffers_update_tag(&c->ring, rg->fixed_base + i, &iov,
							       NULL, 1);

		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Which registered piece holds p (a RAM segment), or NULL. */
static struct sl_region_s *find_region(struct sl_sender *s, const uint8_t *p)
{
	for (unsigned i = 0; i < s->nregions; i++) {
		struct sl_region_s *rg = &s->regions[i];

		if (p >= rg->host && p < rg->host + rg->len)
			return rg;
	}
	return NULL;
}

static void on_notif(struct sl_channel *c, const struct io_uring_cqe *cqe)
{
	struct sl_item *it = &c->items[cqe->user_data >> UD_IDX_SHIFT];

	sl_stat_add(&c->s->stats.zc_notifications, 1);
	if ((cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) && (cqe->user_data & UD_PAYLOAD))
		sl_stat_add(&c->s->stats.kernel_copied_bytes, cqe->user_data & UD_LEN_MASK);
	if (--it->pending == 0 && it->sent)
		sl_item_release(c, it);
}

static int wait_cqe(struct sl_channel *c, struct io_uring_cqe **cqe, int timeout_ms)
{
	struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
					.tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
	int ret;

	do
		ret = io_uring_wait_cqe_timeout(&c->ring, cqe, &ts);
	while (ret == -EINTR);
	return ret;
}

int sl_uring_reap(struct sl_channel *c, int timeout_ms)
{
	struct io_uring_cqe *cqe;
	int ret = wait_cqe(c, &cqe, timeout_ms);

	if (ret)
		return ret == -ETIME ? 0 : ret;
	do {
		if (cqe->flags & IORING_CQE_F_NOTIF)
			on_notif(c, cqe);
		io_uring_cqe_seen(&c->ring, cqe);
	} while (io_uring_peek_cqe(&c->ring, &cqe) == 0);
	return 0;
}

static void prep(struct sl_channel *c, struct io_uring_sqe *sqe, const struct zc_sqe *z, bool link)
{
	unsigned zcf = IORING_SEND_ZC_REPORT_USAGE;

	if (z->buf_index >= 0)
		io_uring_prep_send_zc_fixed(sqe, c->fd, z->ptr, z->len, MSG_WAITALL | MSG_NOSIGNAL,
					    zcf, (unsigned)z->buf_index);
	else
		io_uring_prep_send_zc(sqe, c->fd, z->ptr, z->len, MSG_WAITALL | MSG_NOSIGNAL, zcf);
	if (link)
		sqe->flags |= IOSQE_IO_LINK;
	sqe->user_data = (uint64_t)z->it->index << UD_IDX_SHIFT |
			 (z->payload ? UD_PAYLOAD : 0) | (z->len & UD_LEN_MASK);
}

/* Runs chain[0..n) to completion (resubmitting after a short send). */
static int run_chain(struct sl_channel *c, struct zc_sqe *chain, unsigned n)
{
	struct sl_sender *s = c->s;

	while (n) {
		unsigned done = 0, restart = n;
		int err = 0;

		for (unsigned i = 0; i < n; i++)
			prep(c, io_uring_get_sqe(&c->ring), &chain[i], i + 1 < n);
		int ret = io_uring_submit(&c->ring);

		if (ret < 0)
			return sl_sender_fail(s, ret, SL_CH_FMT "io_uring submit: %s", SL_CH_ARGS(c),
					      strerror(-ret));
		/* Linked requests complete in order: the k-th send completion
		 * belongs to chain[k]. */
		while (done < n) {
			struct io_uring_cqe *cqe;

			ret = wait_cqe(c, &cqe, s->timeout_ms);
			if (ret == -ETIME) {
				/* Give the kernel a moment to cancel, then report. */
				shutdown(c->fd, SHUT_RDWR);
				return sl_sender_fail(s, sl_sender_is_cancelled(s) ? -ECANCELED : -ETIMEDOUT,
						      SL_CH_FMT "peer stopped reading for %d ms",
						      SL_CH_ARGS(c), s->timeout_ms);
			}
			if (ret)
				return sl_sender_fail(s, ret, SL_CH_FMT "io_uring wait: %s",
						      SL_CH_ARGS(c), strerror(-ret));
			if (cqe->flags & IORING_CQE_F_NOTIF) {
				on_notif(c, cqe);
				io_uring_cqe_seen(&c->ring, cqe);
				continue;
			}
			struct zc_sqe *z = &chain[done];
			int res = cqe->res;

			if (cqe->flags & IORING_CQE_F_MORE)
				z->it->pending++;
			io_uring_cqe_seen(&c->ring, cqe);
			if (res > 0) {
				c->bytes_sent += (uint64_t)res;
			}
			if (restart == n && !err) {
				if (res >= 0 && (uint64_t)res < z->len) {
					/* Short send: the rest of this and every later
					 * entry go again, in order. */
					z->ptr += res;
					z->len -= (uint64_t)res;
					restart = done;
				} else if (res < 0) {
					err = res;
				}
			}
			done++;
		}
		if (err) {
			if (sl_sender_is_cancelled(s))
				return -ECANCELED;
			return sl_sender_fail(s, err, SL_CH_FMT "peer gone: %s", SL_CH_ARGS(c),
					      strerror(-err));
		}
		chain += restart;
		n -= restart;
	}
	return 0;
}

/* Appends item it's SQEs (header, then page segments split at piece
 * boundaries) to chain. Returns the new count. */
static unsigned add_item(struct sl_channel *c, struct sl_item *it, struct zc_sqe *chain, unsigned n)
{
	struct sl_sender *s = c->s;

	chain[n++] = (struct zc_sqe){ it, it->hdr, it->hdr_len, 0, false };
	for (unsigned i = 0; i < it->nseg; i++) {
		uint8_t *p = it->seg[i].iov_base;
		uint64_t left = it->seg[i].iov_len;
		struct sl_region_s *rg = it->type == SL_PKT_RAM ? find_region(s, p) : NULL;

		while (left) {
			uint64_t len = left;
			int idx = -1;

			if (rg) {
				uint64_t off = (uint64_t)(p - rg->host);
				uint64_t piece = off / SL_FIXED_PIECE;

				len = SL_MIN(left, (piece + 1) * SL_FIXED_PIECE - off);
				idx = (int)(rg->fixed_base + piece);
			}
			chain[n++] = (struct zc_sqe){ it, p, len, idx, true };
			p += len;
			left -= len;
		}
	}
	return n;
}

int sl_uring_send_batch(struct sl_channel *c, struct sl_item **items, unsigned nitems)
{
	static __thread struct zc_sqe chain[CHAIN_MAX + SL_MAX_SEGS * 2 + 2];
	unsigned n = 0, first = 0;
	int ret = 0;

	for (unsigned i = 0; i < nitems; i++) {
		struct sl_item *it = items[i];

		it->pending = 0;
		it->sent = false;
		/* Worst case per item: header + every segment split once. */
		if (n && n + 1 + it->nseg * 2 > CHAIN_MAX) {
			ret = run_chain(c, chain, n);
			if (ret)
				goto out;
			for (unsigned k = first; k < i; k++)
				items[k]->sent = true;
			for (unsigned k = first; k < i; k++)
				if (items[k]->pending == 0)
					sl_item_release(c, items[k]);
			first = i;
			n = 0;
		}
		n = add_item(c, it, chain, n);
	}
	ret = run_chain(c, chain, n);
	if (ret)
		goto out;
	for (unsigned k = first; k < nitems; k++)
		items[k]->sent = true;
	for (unsigned k = first; k < nitems; k++)
		if (items[k]->pending == 0)
			sl_item_release(c, items[k]);
	return 0;
out:
	/* The channel is dead: hand the unreleased items back so nothing waits. */
	for (unsigned k = first; k < nitems; k++)
		sl_item_release(c, items[k]);
	return ret;
}
