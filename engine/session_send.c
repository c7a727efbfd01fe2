/* SPDX-License-Identifier: MIT */
/*
 * session_send.c — from scanned ranges to the channels.
 *
 * Ranges are taken in batches spanning at most SL_SEND_BATCH_PAGES pages.
 * For a source with manual clearing (KVM MANUAL_PROTECT2) the batch's
 * 64-page-aligned span is re-armed first, then its pages are read: a write
 * after the clear is caught by the next sync (clear-before-copy), and
 * clearing just before sending, not all at once, keeps the guest from
 * faulting on pages that are about to leave anyway.
 *
 * Each range is split into all-zero pages (a ZERO packet, no payload) and
 * the rest (sent from guest memory without a copy). The zero test reads the
 * page after the clear, so it sees what the destination must hold.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine_internal.h"

#define SPLIT_CAP 1024u

static bool page_is_zero(const void *p, size_t len)
{
	const uint64_t *w = p;

	/* Most dirty pages are not zero: look at the first line first. */
	if (w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7])
		return false;
	for (size_t i = 8; i < len / 8; i += 8) {
		uint64_t acc = w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] |
			       w[i + 6] | w[i + 7];

		if (acc)
			return false;
	}
	return true;
}

struct split {
	struct sl_session *s;
	struct sl_region *r;
	size_t nz, nd;
};

static int flush_split(struct split *sp)
{
	struct sl_session *s = sp->s;
	int ret = 0;

	sl_session_busy(s, true);
	if (sp->nz)
		ret = sl_sender_send_zero_ranges(s->sender, sp->r->id, s->zero_buf, sp->nz,
						 s->generation);
	if (!ret && sp->nd)
		ret = sl_sender_send_ranges(s->sender, sp->r->id, s->data_buf, sp->nd,
					    s->generation);
	sl_session_busy(s, false);
	sp->nz = sp->nd = 0;
	if (ret < 0) {
		ret = sl_session_transport_err(s, ret);
		return sl_err(&s->err, ret, "%s: %s", ret == -ECANCELED ? "cancelled" : "sending RAM",
			      sl_session_transport_msg(s));
	}
	return 0;
}

static int emit(struct split *sp, bool zero, uint64_t first, uint64_t n)
{
	struct sl_range *buf = zero ? sp->s->zero_buf : sp->s->data_buf;
	size_t *cnt = zero ? &sp->nz : &sp->nd;

	if (*cnt && buf[*cnt - 1].first + buf[*cnt - 1].npages == first) {
		buf[*cnt - 1].npages += n;
		return 0;
	}
	if (*cnt == sp->s->split_cap) {
		int ret = flush_split(sp);

		if (ret < 0)
			return ret;
	}
	buf[*cnt].first = first;
	buf[*cnt].npages = n;
	(*cnt)++;
	return 0;
}

static int split_range(struct split *sp, const struct sl_range *rg)
{
	size_t ps = sp->s->cfg.page_size;
	const uint8_t *base = (const uint8_t *)sp->r->host;
	uint64_t p = rg->first, end = rg->first + rg->npages;

	while (p < end) {
		bool z = page_is_zero(base + p * ps, ps);
		uint64_t q = p + 1;
		int ret;

		while (q < end && page_is_zero(base + q * ps, ps) == z)
			q++;
		ret = emit(sp, z, p, q - p);
		if (ret < 0)
			return ret;
		p = q;
	}
	return 0;
}

static int send_job(struct sl_session *s, struct sl_scan_job *j, bool clear_first)
{
	struct sl_region *r = j->region;
	struct split sp = { .s = s, .r = r };
	size_t i = 0;

	while (i < j->n) {
		uint64_t start = j->ranges[i].first, end;
		size_t k = i + 1;
		int ret;

		end = start + j->ranges[i].npages;
		while (k < j->n && j->ranges[k].first + j->ranges[k].npages - start <= SL_SEND_BATCH_PAGES) {
			end = j->ranges[k].first + j->ranges[k].npages;
			k++;
		}
		if (atomic_load(&s->cancelled))
			return sl_err(&s->err, -ECANCELED, "migration cancelled");
		if (clear_first && r->manual_clear) {
			uint64_t cs = start & ~63ull;
			uint64_t ce = SL_MIN((end + 63) & ~63ull, r->npages);

			ret = sl_dirty_clear(r->dirty, cs, ce - cs);
			if (ret < 0)
				return sl_err(&s->err, ret, "clearing the dirty log of %s [%llu, %llu): %s",
					      r->name, (unsigned long long)cs, (unsigned long long)ce,
					      sl_dirty_last_error(r->dirty));
		}
		for (; i < k; i++) {
			ret = split_range(&sp, &j->ranges[i]);
			if (ret < 0)
				return ret;
		}
		ret = flush_split(&sp);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int sl_session_send_jobs(struct sl_session *s, bool clear_first)
{
	if (!s->split_cap) {
		s->zero_buf = calloc(SPLIT_CAP, sizeof(*s->zero_buf));
		s->data_buf = calloc(SPLIT_CAP, sizeof(*s->data_buf));
		if (!s->zero_buf || !s->data_buf)
			return sl_err(&s->err, -ENOMEM, "send: out of memory");
		s->split_cap = SPLIT_CAP;
	}
	for (size_t i = 0; i < s->njobs; i++) {
		int ret = send_job(s, &s->jobs[i], clear_first);

		if (ret < 0)
			return ret;
	}
	return 0;
}
