/* SPDX-License-Identifier: MIT */
/*
 * sl_sender.c — connecting channels, cutting ranges into address-affine
 * packets, per-channel queues and workers, flush/complete/RESUMED.
 * The three send paths live in sl_send_plain.c, sl_send_msgzc.c and
 * sl_send_uring.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_io_internal.h"
#include "sl_sender_internal.h"
#include "sl_url.h"

#define DEFAULT_TIMEOUT_MS 30000

static const char *const mode_names[] = {
	[SL_ZC_AUTO] = "auto", [SL_ZC_URING] = "uring", [SL_ZC_MSG] = "msg", [SL_ZC_OFF] = "off",
};

const char *sl_sender_mode_name(enum sl_zc_mode mode)
{
	return (unsigned)mode < SL_ARRAY_SIZE(mode_names) ? mode_names[mode] : NULL;
}

int sl_sender_mode_parse(const char *name, enum sl_zc_mode *mode)
{
	for (unsigned i = 0; name && i < SL_ARRAY_SIZE(mode_names); i++)
		if (!strcmp(name, mode_names[i])) {
			*mode = (enum sl_zc_mode)i;
			return 0;
		}
	return -EINVAL;
}

bool sl_sender_is_cancelled(const struct sl_sender *s)
{
	return __atomic_load_n(&s->cancelled, __ATOMIC_SEQ_CST);
}

int sl_sender_fail(struct sl_sender *s, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->lock);
	if (!s->error) {
		s->error = err;
		va_start(ap, fmt);
		vsnprintf(s->errtext, sizeof(s->errtext), fmt, ap);
		va_end(ap);
		sl_io_log(s->log, s->log_ctx, SL_LOG_ERR, "%s", s->errtext);
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return err;
}

static int current_error(struct sl_sender *s)
{
	int e;

	pthread_mutex_lock(&s->lock);
	e = s->error;
	pthread_mutex_unlock(&s->lock);
	return e;
}

const char *sl_sender_last_error(const struct sl_sender *s)
{
	return s->errtext;
}

void sl_sender_item_done(struct sl_channel *c, struct sl_item *it)
{
	struct sl_sender *s = c->s;

	free(it->owned);
	it->owned = NULL;
	it->nseg = 0;
	it->payload_len = 0;
	it->pages = 0;
	it->pending = 0;
	it->sent = false;
	pthread_mutex_lock(&s->lock);
	it->next = c->free_list;
	c->free_list = it;
	c->nfree++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* ---- worker -------------------------------------------------------------- */

static void count_sent(struct sl_channel *c, const struct sl_item *it)
{
	struct sl_sender *s = c->s;
	uint64_t b = it->hdr_len + it->payload_len;

	sl_stat_add(&s->stats.bytes, b);
	sl_stat_add(&s->stats.packets, 1);
	if (c->idx < SL_SENDER_MAX_STAT_CHANNELS)
		sl_stat_add(&s->stats.channel_bytes[c->idx], b);
	if (it->type == SL_PKT_RAM) {
		sl_stat_add(&s->stats.page_bytes, it->payload_len);
		sl_stat_add(&s->stats.pages, it->pages);
	} else if (it->type == SL_PKT_ZERO) {
		sl_stat_add(&s->stats.zero_pages, it->pages);
	} else if (it->type == SL_PKT_DEVICE) {
		sl_stat_add(&s->stats.device_bytes, it->payload_len);
	}
	if (s->mode == SL_ZC_OFF)
		sl_stat_add(&s->stats.kernel_copied_bytes, it->payload_len);
}

static int send_items(struct sl_channel *c, struct sl_item **batch, unsigned n)
{
	struct sl_sender *s = c->s;
	uint64_t total = 0;
	int ret = 0;

	for (unsigned i = 0; i < n; i++)
		total += batch[i]->hdr_len + batch[i]->payload_len;
	sl_stat_add(&s->stats.throttle_ns, sl_bucket_take(&s->bucket, total, &s->cancelled));
	/* Count before sending: a sent item may be released (and reused) at once. */
	for (unsigned i = 0; i < n; i++) {
		c->cur_gen = SL_MAX(c->cur_gen, batch[i]->generation);
		count_sent(c, batch[i]);
	}
	switch (s->mode) {
	case SL_ZC_URING:
		ret = sl_uring_send_batch(c, batch, n);
		break;
	case SL_ZC_MSG:
		for (unsigned i = 0; i < n && !ret; i++)
			ret = sl_msgzc_send(c, batch[i]);
		break;
	default:
		for (unsigned i = 0; i < n && !ret; i++)
			ret = sl_plain_send(c, batch[i]);
		break;
	}
	return ret;
}

#define BATCH_MAX 16

static void *worker_main(void *arg)
{
	struct sl_channel *c = arg;
	struct sl_sender *s = c->s;
	struct sl_item *batch[BATCH_MAX];

	for (;;) {
		unsigned n = 0;
		bool failed;

		pthread_mutex_lock(&s->lock);
		while (!c->q_head && !s->stopping && (!c->outstanding || s->error))
			pthread_cond_wait(&s->cond, &s->lock);
		failed = s->error != 0;
		if (s->stopping && !c->q_head && (!c->outstanding || failed)) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		while (c->q_head && n < (s->mode == SL_ZC_URING ? BATCH_MAX : 1)) {
			batch[n++] = c->q_head;
			c->q_head = c->q_head->next;
		}
		if (!c->q_head)
			c->q_tail = NULL;
		pthread_mutex_unlock(&s->lock);

		if (failed) {
			/* A dead sender sends nothing more; free what was queued so
			 * nobody waits for it. */
			for (unsigned i = 0; i < n; i++)
				sl_sender_item_done(c, batch[i]);
			continue;
		}
		if (n) {
			c->outstanding += n;
			if (send_items(c, batch, n))
				continue;
		} else if (s->mode == SL_ZC_URING) {
			sl_uring_reap(c, 2);
		} else if (s->mode == SL_ZC_MSG) {
			sl_msgzc_reap(c, 2);
		}
	}
	return NULL;
}

/* ---- setup --------------------------------------------------------------- */

static bool is_loopback(const struct sl_url *url)
{
	if (url->family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&url->addr;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (url->family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&url->addr;
		const uint8_t *a = in6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && a[12] == 127;
	}
	return false;
}

static int resolve_mode(enum sl_zc_mode want, const struct sl_url *url, enum sl_zc_mode *out,
			struct sl_errbuf *eb)
{
	bool inet = url->family != AF_UNIX;
	int ret;

	switch (want) {
	case SL_ZC_OFF:
		*out = SL_ZC_OFF;
		return 0;
	case SL_ZC_URING:
		if (!inet)
			return sl_err(eb, -EOPNOTSUPP,
				      "zero-copy 'uring' needs a TCP address (unix sockets do not do SEND_ZC)");
		ret = sl_uring_probe();
		if (ret)
			return sl_err(eb, -EOPNOTSUPP, "io_uring SEND_ZC unavailable: %s",
				      strerror(-ret));
		*out = SL_ZC_URING;
		return 0;
	case SL_ZC_MSG:
		if (!inet)
			return sl_err(eb, -EOPNOTSUPP,
				      "zero-copy 'msg' needs a TCP address (unix sockets do not do MSG_ZEROCOPY)");
		*out = SL_ZC_MSG;
		return 0;
	case SL_ZC_AUTO:
		/* Loopback copies every zero-copy send anyway and the copy paths
		 * are faster there (docs/results.md, Transport): plain writev. */
		if (!inet || is_loopback(url))
			*out = SL_ZC_OFF;
		else
			*out = sl_uring_probe() == 0 ? SL_ZC_URING : SL_ZC_MSG;
		return 0;
	}
	return sl_err(eb, -EINVAL, "unknown zero-copy mode %d", (int)want);
}

static int channel_setup(struct sl_sender *s, struct sl_channel *c, struct sl_errbuf *eb)
{
	int ret;

	if (posix_memalign((void **)&c->slab, 4096, SL_ITEMS_PER_CHANNEL * SL_HDR_SLOT))
		return sl_err(eb, -ENOMEM, "out of memory for header slab");
	for (unsigned i = 0; i < SL_ITEMS_PER_CHANNEL; i++) {
		struct sl_item *it = &c->items[i];

		it->index = i;
		it->hdr = c->slab + (size_t)i * SL_HDR_SLOT;
		it->next = c->free_list;
		c->free_list = it;
	}
	c->nfree = SL_ITEMS_PER_CHANNEL;
	if (s->mode == SL_ZC_URING) {
		ret = sl_uring_setup(c);
		if (ret)
			return sl_err(eb, ret, "channel %u: io_uring setup: %s", c->idx, strerror(-ret));
	} else if (s->mode == SL_ZC_MSG) {
		ret = sl_msgzc_setup(c);
		if (ret)
			return sl_err(eb, ret, "channel %u: SO_ZEROCOPY: %s", c->idx, strerror(-ret));
	}
	return 0;
}

int sl_sender_new(const struct sl_sender_config *cfg, struct sl_sender **out,
		  struct sl_errbuf *eb)
{
	uint8_t sid[SL_SESSION_ID_LEN];
	struct sl_sender *s;
	struct sl_url url;
	uint64_t granule;
	int ret;

	if (!cfg || !out || cfg->size < sizeof(*cfg))
		return sl_err(eb, -EINVAL, "sender: bad config (size field)");
	if (!cfg->psk || !cfg->psk_len)
		return sl_err(eb, -EINVAL, "sender: a pre-shared key is required");
	if (cfg->nchannels > SL_MAX_CHANNELS)
		return sl_err(eb, -EINVAL, "sender: %u channels (max %d)", cfg->nchannels,
			      SL_MAX_CHANNELS);
	uint32_t ps = cfg->page_size ? cfg->page_size : 4096;

	if (ps < 512 || ps > (1u << 20) || (ps & (ps - 1)))
		return sl_err(eb, -EINVAL, "sender: bad page size %u", ps);
	granule = cfg->granule_bytes ? cfg->granule_bytes : (2u << 20);
	if (granule < ps || (granule & (granule - 1)) || granule > (1ull << 40))
		return sl_err(eb, -EINVAL, "sender: granule %llu is not a power of two >= the page size",
			      (unsigned long long)granule);
	ret = sl_url_parse(cfg->url, &url, eb);
	if (ret)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return sl_err(eb, -ENOMEM, "sender: out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	sl_bucket_init(&s->bucket, cfg->bandwidth_bps);
	s->nch = cfg->nchannels ? cfg->nchannels : 1;
	s->page_size = ps;
	s->page_shift = (unsigned)__builtin_ctz(ps);
	s->granule_pages = granule >> s->page_shift;
	s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
	s->log = cfg->log;
	s->log_ctx = cfg->log_ctx;
	s->nfixed = 1; /* slot 0: the header slab */
	for (unsigned i = 0; i < SL_MAX_CHANNELS; i++)
		s->ch[i].fd = -1;
	ret = resolve_mode(cfg->zc, &url, &s->mode, eb);
	if (ret)
		goto fail;
	s->stats.mode = s->mode;
	s->stats.nchannels = s->nch;
	if (cfg->session_id)
		memcpy(sid, cfg->session_id, sizeof(sid));
	else if (getrandom(sid, sizeof(sid), 0) != (ssize_t)sizeof(sid)) {
		ret = sl_err(eb, -EIO, "no random bytes for the session id");
		goto fail;
	}
	for (unsigned i = 0; i < s->nch; i++) {
		struct sl_channel *c = &s->ch[i];
		struct sl_wire_hello h = {
			.version = SL_WIRE_VERSION,
			.caps = SL_CAP_HDR_XXH32 | (s->mode != SL_ZC_OFF ? SL_CAP_ZEROCOPY : 0),
			.page_size = ps, .channel_index = (uint16_t)i,
			.channel_count = (uint16_t)s->nch, .granule_bytes = granule,
		};

		memcpy(h.session_id, sid, sizeof(sid));
		c->s = s;
		c->idx = i;
		ret = sl_url_connect(&url, eb);
		if (ret < 0)
			goto fail;
		c->fd = ret;
		sl_io_prepare_socket(c->fd, s->timeout_ms);
		ret = sl_hs_client(c->fd, cfg->psk, cfg->psk_len, &h, eb);
		if (ret)
			goto fail;
		ret = channel_setup(s, c, eb);
		if (ret)
			goto fail;
	}
	for (unsigned i = 0; i < s->nch; i++) {
		if (pthread_create(&s->ch[i].thread, NULL, worker_main, &s->ch[i])) {
			ret = sl_err(eb, -EAGAIN, "cannot start channel %u's thread", i);
			goto fail;
		}
		s->ch[i].thread_started = true;
		if (cfg->channel_cpus) {
			int err = pthread_setaffinity_np(s->ch[i].thread, sizeof(cpu_set_t),
							 &cfg->channel_cpus[i]);

			if (err)
				sl_io_log(s->log, s->log_ctx, SL_LOG_WARNING,
					  "channel %u: pinning refused (%s); running unpinned", i,
					  strerror(err));
		}
	}
	sl_io_log(s->log, s->log_ctx, SL_LOG_INFO, "sender: %u channel(s) to %s, mode %s", s->nch,
		  url.text, sl_sender_mode_name(s->mode));
	*out = s;
	return 0;
fail:
	sl_sender_free(&s);
	return ret;
}

void sl_sender_free(struct sl_sender **ps)
{
	struct sl_sender *s = ps ? *ps : NULL;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->nch; i++) {
		struct sl_channel *c = &s->ch[i];

		if (c->thread_started)
			pthread_join(c->thread, NULL);
		if (c->ring_ok)
			sl_uring_teardown(c);
		if (c->fd >= 0)
			close(c->fd);
		for (unsigned k = 0; k < SL_ITEMS_PER_CHANNEL; k++)
			free(c->items[k].owned);
		free(c->slab);
	}
	sl_bucket_destroy(&s->bucket);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
	*ps = NULL;
}

int sl_sender_add_region(struct sl_sender *s, uint32_t region_id, void *host, uint64_t len)
{
	struct sl_region_s *rg;
	int ret;

	if (!host || !len || (len & (s->page_size - 1)) || ((uintptr_t)host & (s->page_size - 1)))
		return -EINVAL;
	for (unsigned i = 0; i < s->nregions; i++)
		if (s->regions[i].id == region_id)
			return -EEXIST;
	if (s->nregions == SL_ARRAY_SIZE(s->regions))
		return -ENOSPC;
	rg = &s->regions[s->nregions];
	rg->id = region_id;
	rg->host = host;
	rg->len = len;
	rg->npages = len >> s->page_shift;
	rg->npieces = (unsigned)SL_DIV_ROUND_UP(len, SL_FIXED_PIECE);
	rg->fixed_base = s->nfixed;
	if (s->mode == SL_ZC_URING) {
		if (s->nfixed + rg->npieces > SL_MAX_FIXED)
			return -ENOSPC;
		for (unsigned i = 0; i < s->nch; i++) {
			ret = sl_uring_register_region(&s->ch[i], rg);
			if (ret)
				return sl_sender_fail(s, ret, "channel %u: registering region %u (%llu bytes) as fixed buffers: %s",
						      i, region_id, (unsigned long long)len, strerror(-ret));
		}
		s->nfixed += rg->npieces;
	}
	s->nregions++;
	return 0;
}

/* ---- queueing (driving thread) ------------------------------------------- */

static int check_usable(struct sl_sender *s)
{
	int e = current_error(s);

	if (e)
		return e;
	return sl_sender_is_cancelled(s) ? -ECANCELED : 0;
}

static struct sl_item *get_item(struct sl_channel *c, int *err)
{
	struct sl_sender *s = c->s;
	struct sl_item *it = NULL;

	pthread_mutex_lock(&s->lock);
	while (!c->free_list && !s->error)
		pthread_cond_wait(&s->cond, &s->lock);
	if (s->error) {
		*err = s->error;
	} else {
		it = c->free_list;
		c->free_list = it->next;
		c->nfree--;
		it->next = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	return it;
}

/* Encodes the header (seq, counters) and hands the item to the worker. */
static int enqueue(struct sl_channel *c, struct sl_item *it, struct sl_pkt *p,
		   const struct sl_wire_range *ranges)
{
	struct sl_sender *s = c->s;
	int hl;

	p->seq = c->seq++;
	p->payload_len = it->payload_len;
	hl = sl_wire_encode_header(p, ranges, it->hdr, SL_HDR_SLOT);
	if (hl < 0) {
		sl_sender_item_done(c, it);
		return sl_sender_fail(s, -EINVAL, "channel %u: cannot encode a %s header", c->idx,
				      sl_wire_type_name(p->type));
	}
	it->hdr_len = (uint32_t)hl;
	it->type = p->type;
	it->generation = p->generation;
	if (p->type != SL_PKT_ITERATION_END && p->type != SL_PKT_COMPLETE) {
		c->gen_packets++;
		c->gen_bytes += it->payload_len;
		c->total_packets++;
		c->total_bytes += it->payload_len;
	}
	pthread_mutex_lock(&s->lock);
	if (c->q_tail)
		c->q_tail->next = it;
	else
		c->q_head = it;
	c->q_tail = it;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int finish_build(struct sl_channel *c)
{
	struct sl_item *it = c->build;
	struct sl_pkt p = { .type = it ? it->type : 0 };

	if (!it)
		return 0;
	c->build = NULL;
	p.generation = it->generation;
	p.u.ram.region_id = c->build_region;
	p.u.ram.nranges = c->build_nranges;
	return enqueue(c, it, &p, c->build_ranges);
}

/* Adds pages [first, first+n) of rg (all inside one granule) to channel c's
 * packet under construction. */
static int add_piece(struct sl_sender *s, struct sl_channel *c, uint8_t type,
		     struct sl_region_s *rg, uint64_t first, uint64_t n, uint32_t gen)
{
	struct sl_item *it = c->build;
	uint64_t bytes = n << s->page_shift;
	int err = 0;

	if (it && (it->type != type || c->build_region != rg->id || it->generation != gen ||
		   c->build_nranges == SL_PKT_MAX_RANGES ||
		   (type == SL_PKT_RAM && it->payload_len + bytes > SL_PKT_TARGET_PAYLOAD))) {
		err = finish_build(c);
		if (err)
			return err;
		it = NULL;
	}
	if (!it) {
		it = get_item(c, &err);
		if (!it)
			return err;
		it->type = type;
		it->generation = gen;
		c->build = it;
		c->build_region = rg->id;
		c->build_nranges = 0;
	}
	struct sl_wire_range *last = c->build_nranges ? &c->build_ranges[c->build_nranges - 1] : NULL;

	if (last && last->first + last->npages == first &&
	    last->first / s->granule_pages == first / s->granule_pages)
		last->npages += n;
	else
		c->build_ranges[c->build_nranges++] = (struct sl_wire_range){ first, n };
	it->pages += n;
	if (type == SL_PKT_RAM) {
		uint8_t *p = rg->host + (first << s->page_shift);
		struct iovec *lv = it->nseg ? &it->seg[it->nseg - 1] : NULL;

		/* Back-to-back pages are one segment: fewer SQEs/iovecs. */
		if (lv && (uint8_t *)lv->iov_base + lv->iov_len == p)
			lv->iov_len += bytes;
		else
			it->seg[it->nseg++] = (struct iovec){ p, bytes };
		it->payload_len += bytes;
	}
	return 0;
}

static int queue_ranges(struct sl_sender *s, uint8_t type, uint32_t region_id,
			const struct sl_range *r, size_t n, uint32_t gen)
{
	struct sl_region_s *rg = NULL;
	uint64_t maxpiece = type == SL_PKT_RAM ? SL_PKT_TARGET_PAYLOAD >> s->page_shift : UINT64_MAX;
	int ret = check_usable(s);

	if (ret)
		return ret;
	for (unsigned i = 0; i < s->nregions; i++)
		if (s->regions[i].id == region_id)
			rg = &s->regions[i];
	if (!rg || (n && !r))
		return -EINVAL;
	if (gen < s->generation)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (r[i].first >= rg->npages || r[i].npages > rg->npages - r[i].first)
			return -EINVAL;
	s->generation = gen;
	for (size_t i = 0; i < n; i++) {
		uint64_t p = r[i].first, end = r[i].first + r[i].npages;

		while (p < end) {
			uint64_t g = p / s->granule_pages;
			uint64_t stop = SL_MIN(end, (g + 1) * s->granule_pages);
			uint64_t cnt = SL_MIN(stop - p, maxpiece);

			ret = add_piece(s, &s->ch[g % s->nch], type, rg, p, cnt, gen);
			if (ret)
				return ret;
			p += cnt;
		}
	}
	for (unsigned i = 0; i < s->nch; i++) {
		ret = finish_build(&s->ch[i]);
		if (ret)
			return ret;
	}
	return 0;
}

int sl_sender_send_ranges(struct sl_sender *s, uint32_t region_id, const struct sl_range *r,
			  size_t n, uint32_t generation)
{
	return queue_ranges(s, SL_PKT_RAM, region_id, r, n, generation);
}

int sl_sender_send_zero_ranges(struct sl_sender *s, uint32_t region_id,
			       const struct sl_range *r, size_t n, uint32_t generation)
{
	return queue_ranges(s, SL_PKT_ZERO, region_id, r, n, generation);
}

int sl_sender_send_device(struct sl_sender *s, uint32_t device_id, uint64_t index,
			  uint32_t flags, const void *buf, size_t len, int channel)
{
	struct sl_pkt p = { .type = SL_PKT_DEVICE };
	struct sl_channel *c;
	struct sl_item *it;
	int ret = check_usable(s);

	if (ret)
		return ret;
	if ((len && !buf) || len > SL_PKT_MAX_BLOB_PAYLOAD || channel >= (int)s->nch ||
	    (flags & ~SL_DEV_FLAGS_KNOWN))
		return -EINVAL;
	if (channel < 0) {
		/* Least loaded: the channel with most free items. */
		unsigned best = 0, most = 0;

		pthread_mutex_lock(&s->lock);
		for (unsigned i = 0; i < s->nch; i++)
			if (s->ch[i].nfree > most) {
				most = s->ch[i].nfree;
				best = i;
			}
		pthread_mutex_unlock(&s->lock);
		channel = (int)best;
	}
	c = &s->ch[channel];
	it = get_item(c, &ret);
	if (!it)
		return ret;
	if (len)
		it->seg[it->nseg++] = (struct iovec){ (void *)buf, len };
	it->payload_len = len;
	p.generation = s->generation;
	p.u.dev.device_id = device_id;
	p.u.dev.flags = flags;
	p.u.dev.index = index;
	return enqueue(c, it, &p, NULL);
}

int sl_sender_send_state(struct sl_sender *s, uint32_t kind, const void *buf, size_t len)
{
	struct sl_pkt p = { .type = SL_PKT_STATE };
	struct sl_channel *c = &s->ch[0];
	struct sl_item *it;
	int ret = check_usable(s);

	if (ret)
		return ret;
	if ((len && !buf) || len > SL_PKT_MAX_BLOB_PAYLOAD)
		return -EINVAL;
	it = get_item(c, &ret);
	if (!it)
		return ret;
	if (len) {
		it->owned = malloc(len);
		if (!it->owned) {
			sl_sender_item_done(c, it);
			return -ENOMEM;
		}
		memcpy(it->owned, buf, len);
		it->seg[it->nseg++] = (struct iovec){ it->owned, len };
	}
	it->payload_len = len;
	p.generation = s->generation;
	p.u.state.kind = kind;
	return enqueue(c, it, &p, NULL);
}

static int queue_counts(struct sl_sender *s, uint8_t type, uint32_t gen)
{
	int ret = check_usable(s);

	if (ret)
		return ret;
	for (unsigned i = 0; i < s->nch; i++) {
		struct sl_channel *c = &s->ch[i];
		struct sl_pkt p = { .type = type, .generation = gen };
		struct sl_item *it = get_item(c, &ret);

		if (!it)
			return ret;
		if (type == SL_PKT_ITERATION_END) {
			p.u.count.packets = c->gen_packets;
			p.u.count.bytes = c->gen_bytes;
			c->gen_packets = c->gen_bytes = 0;
		} else {
			p.u.count.packets = c->total_packets;
			p.u.count.bytes = c->total_bytes;
		}
		ret = enqueue(c, it, &p, NULL);
		if (ret)
			return ret;
	}
	return 0;
}

int sl_sender_iteration_end(struct sl_sender *s, uint32_t generation)
{
	if (generation < s->generation)
		return -EINVAL;
	s->generation = generation;
	return queue_counts(s, SL_PKT_ITERATION_END, generation);
}

int sl_sender_flush(struct sl_sender *s)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		bool idle = true;

		if (s->error || sl_sender_is_cancelled(s))
			break;
		for (unsigned i = 0; i < s->nch && idle; i++)
			idle = !s->ch[i].q_head && s->ch[i].nfree == SL_ITEMS_PER_CHANNEL;
		if (idle)
			break;
		pthread_cond_wait(&s->cond, &s->lock);
	}
	ret = s->error ? s->error : (sl_sender_is_cancelled(s) ? -ECANCELED : 0);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int sl_sender_complete(struct sl_sender *s)
{
	int ret = sl_sender_flush(s);

	if (!ret)
		ret = queue_counts(s, SL_PKT_COMPLETE, s->generation);
	if (!ret)
		ret = sl_sender_flush(s);
	return ret;
}

/*
 * Reads one receiver -> sender packet from channel 0 (ACK, RESUMED or ERROR)
 * with its text payload. Checks the header, the type and the back-channel
 * sequence number. `what` names the wait for messages.
 */
static int read_back_packet(struct sl_sender *s, int timeout_ms, const char *what,
			    struct sl_pkt *p, char text[SL_PKT_MAX_TEXT_PAYLOAD + 1])
{
	struct sl_channel *c = &s->ch[0];
	uint8_t hdr[SL_PKT_MAX_HDR];
	struct sl_errbuf eb;
	ssize_t n;
	int ret = 0;

	sl_io_prepare_socket(c->fd, timeout_ms > 0 ? timeout_ms : s->timeout_ms);
	n = sl_io_read_full(c->fd, hdr, SL_PKT_COMMON_LEN);
	if (n == SL_PKT_COMMON_LEN && !(ret = sl_wire_decode_common(hdr, SL_PKT_COMMON_LEN, p, &eb))) {
		n = sl_io_read_full(c->fd, hdr + SL_PKT_COMMON_LEN, p->hdr_len - SL_PKT_COMMON_LEN);
		if (n == p->hdr_len - SL_PKT_COMMON_LEN)
			ret = sl_wire_decode_header(hdr, p->hdr_len, s->page_size, p, &eb);
		else
			n = n < 0 ? n : -ECONNRESET;
	} else if (n >= 0 && n < SL_PKT_COMMON_LEN && !ret) {
		n = -ECONNRESET;
	}
	if (n < 0)
		return sl_sender_fail(s, (int)n, "channel 0: %s: %s", what,
				      n == -ETIMEDOUT ? "receiver silent" :
				      n == -ECONNRESET ? "receiver closed the connection" :
				      strerror((int)-n));
	if (ret)
		return sl_sender_fail(s, ret, "channel 0: bad answer from the receiver: %s", eb.msg);
	if (p->type != SL_PKT_RESUMED && p->type != SL_PKT_ERROR && p->type != SL_PKT_ACK)
		return sl_sender_fail(s, -EPROTO, "channel 0: receiver sent %s, which only travels "
				      "the other way", sl_wire_type_name(p->type));
	if (p->type != SL_PKT_ERROR && p->seq != s->back_seq)
		return sl_sender_fail(s, -EPROTO, "channel 0: receiver's packet seq %llu, expected %llu",
				      (unsigned long long)p->seq, (unsigned long long)s->back_seq);
	s->back_seq++;
	n = p->payload_len ? sl_io_read_full(c->fd, text, p->payload_len) : 0;
	if (n != (ssize_t)p->payload_len)
		return sl_sender_fail(s, -ECONNRESET, "channel 0: %s text cut short",
				      sl_wire_type_name(p->type));
	text[p->payload_len] = '\0';
	for (size_t i = 0; i < p->payload_len; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f)
			text[i] = '?';
	if (p->type == SL_PKT_ERROR)
		return sl_sender_fail(s, -EPROTO, "receiver reported an error: %s", text);
	return 0;
}

int sl_sender_set_bandwidth(struct sl_sender *s, uint64_t bandwidth_bps)
{
	if (!s)
		return -EINVAL;
	sl_bucket_set_rate(&s->bucket, bandwidth_bps);
	return 0;
}

int sl_sender_next_ack(struct sl_sender *s, int timeout_ms, struct sl_ack *ack)
{
	char text[SL_PKT_MAX_TEXT_PAYLOAD + 1];
	struct pollfd pfd = { .fd = s->ch[0].fd, .events = POLLIN };
	struct sl_pkt p;
	int ret = check_usable(s);

	if (ret)
		return ret;
	if (!ack)
		return -EINVAL;
	ret = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	if (ret == 0)
		return 0;
	/* Readable: an ACK, an ERROR, or the receiver going away (EOF). */
	ret = read_back_packet(s, s->timeout_ms, "reading an acknowledgement", &p, text);
	if (ret)
		return ret;
	if (p.type != SL_PKT_ACK)
		return sl_sender_fail(s, -EPROTO, "channel 0: receiver sent %s before COMPLETE",
				      sl_wire_type_name(p.type));
	ack->kind = p.u.ack.kind;
	ack->id = p.u.ack.id;
	ack->value = p.u.ack.value;
	return 1;
}

int sl_sender_wait_resumed(struct sl_sender *s, int timeout_ms, struct sl_resumed_info *info)
{
	char text[SL_PKT_MAX_TEXT_PAYLOAD + 1];
	struct sl_pkt p = { 0 };
	int ret;

	info->status = 0;
	info->msg[0] = '\0';
	ret = check_usable(s);
	if (ret)
		return ret;
	do { /* acknowledgements still in flight are too late to matter: skip them */
		ret = read_back_packet(s, timeout_ms, "waiting for RESUMED", &p, text);
		if (ret) {
			if (p.type == SL_PKT_ERROR) {
				info->status = p.u.error.code ? -(int)p.u.error.code : -EPROTO;
				snprintf(info->msg, sizeof(info->msg), "%s", text);
			}
			return ret;
		}
	} while (p.type == SL_PKT_ACK);
	snprintf(info->msg, sizeof(info->msg), "%s", text);
	info->status = p.u.resumed.status;
	if (info->status)
		return sl_sender_fail(s, info->status, "receiver could not resume: %s",
				      text[0] ? text : strerror(-info->status));
	return 0;
}

void sl_sender_get_stats(const struct sl_sender *s, struct sl_sender_stats *st)
{
	const uint64_t *src = (const uint64_t *)&s->stats;
	uint64_t *dst = (uint64_t *)st;

	memcpy(st, &s->stats, sizeof(*st));
	for (size_t i = 0; i < offsetof(struct sl_sender_stats, mode) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	for (unsigned i = 0; i < SL_SENDER_MAX_STAT_CHANNELS; i++)
		st->channel_bytes[i] = __atomic_load_n(&s->stats.channel_bytes[i], __ATOMIC_RELAXED);
}

int sl_sender_cancel(struct sl_sender *s)
{
	__atomic_store_n(&s->cancelled, 1, __ATOMIC_SEQ_CST);
	sl_sender_fail(s, -ECANCELED, "cancelled");
	for (unsigned i = 0; i < s->nch; i++)
		if (s->ch[i].fd >= 0)
			shutdown(s->ch[i].fd, SHUT_RDWR);
	return 0;
}
