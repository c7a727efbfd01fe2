/* SPDX-License-Identifier: MIT */
/*
 * sl_receiver.c — accept a session's channels, validate every header, place
 * page payloads straight into registered memory (readv into the final
 * address), reassemble device packets, run complete(), answer RESUMED.
 */
#include "sl_receiver.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_io_internal.h"
#include "sl_url.h"
#include "sl_wire.h"

#define DEFAULT_TIMEOUT_MS 30000
#define MAX_REGIONS 256

struct region {
	uint32_t id;
	uint8_t *host;
	uint64_t npages;
	uint64_t *written; /* one bit per page, set once a RAM packet placed it */
};

struct sl_receiver {
	struct sl_url url;
	int listen_fd;
	uint8_t *psk;
	size_t psk_len;
	int timeout_ms;
	uint32_t page_size;
	unsigned page_shift;
	sl_log_fn log;
	void *log_ctx;
	struct region regions[MAX_REGIONS];
	unsigned nregions;
	struct sl_devstore *devstore;
	struct sl_receiver_stats stats; /* updated with __atomic adds */
	int cancelled;                  /* __atomic */
	/* The running session, for cancel(): fds under lock. */
	pthread_mutex_t lock;
	int chan_fds[SL_MAX_CHANNELS];
	unsigned nchan_fds;
	/* Receiver -> sender messages (ACK, RESUMED) on channel 0: writers from
	 * any thread are serialised here and numbered by ctl_seq. */
	pthread_mutex_t ctl_lock;
	int ctl_fd;
	uint64_t ctl_seq;
};

struct session;

struct channel {
	struct session *ss;
	unsigned idx;
	int fd;
	pthread_t thread;
	bool started;
	bool completed;
	uint64_t bytes;       /* read from the socket */
	uint32_t generation;
	uint64_t gen_packets, gen_bytes;     /* since the last ITERATION END */
	uint64_t total_packets, total_bytes; /* whole channel, for COMPLETE */
	uint8_t hdr[SL_PKT_MAX_HDR];
	struct iovec iov[SL_PKT_MAX_RANGES];
};

struct session {
	struct sl_receiver *r;
	const struct sl_receiver_ops *ops;
	void *ctx;
	unsigned nch;
	uint64_t granule_bytes;
	struct channel ch[SL_MAX_CHANNELS];
	pthread_mutex_t lock;
	int error;                 /* first error, under lock */
	struct sl_errbuf err;
	/* ITERATION END barrier: generation -> channels that reported it. */
	struct { uint32_t gen; unsigned count; } iter[SL_MAX_CHANNELS * 2];
	unsigned niter;
};

static void stat_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

/* ---- setup --------------------------------------------------------------- */

int sl_receiver_new(const struct sl_receiver_config *cfg, struct sl_receiver **out,
		    struct sl_errbuf *eb)
{
	struct sl_receiver *r;
	int ret;

	if (!cfg || !out || cfg->size < sizeof(*cfg))
		return sl_err(eb, -EINVAL, "receiver: bad config (size field)");
	if (!cfg->psk || !cfg->psk_len)
		return sl_err(eb, -EINVAL, "receiver: a pre-shared key is required");
	if (cfg->page_size && (cfg->page_size < 512 || cfg->page_size > (1u << 20) ||
			       (cfg->page_size & (cfg->page_size - 1))))
		return sl_err(eb, -EINVAL, "receiver: bad page size %u", cfg->page_size);
	r = calloc(1, sizeof(*r));
	if (!r)
		return sl_err(eb, -ENOMEM, "receiver: out of memory");
	r->listen_fd = -1;
	r->ctl_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->ctl_lock, NULL);
	r->page_size = cfg->page_size ? cfg->page_size : 4096;
	r->page_shift = (unsigned)__builtin_ctz(r->page_size);
	r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
	r->log = cfg->log;
	r->log_ctx = cfg->log_ctx;
	r->psk = malloc(cfg->psk_len);
	if (!r->psk) {
		ret = sl_err(eb, -ENOMEM, "receiver: out of memory");
		goto fail;
	}
	memcpy(r->psk, cfg->psk, cfg->psk_len);
	r->psk_len = cfg->psk_len;
	ret = sl_devstore_new(cfg->device_mem_cap, &r->devstore);
	if (ret) {
		sl_err(eb, ret, "receiver: out of memory");
		goto fail;
	}
	ret = sl_url_parse(cfg->url, &r->url, eb);
	if (ret)
		goto fail;
	ret = sl_url_listen(&r->url, SL_MAX_CHANNELS, eb);
	if (ret < 0)
		goto fail;
	r->listen_fd = ret;
	/* Accepted sockets inherit the buffer sizes. */
	sl_io_prepare_socket(r->listen_fd, 0);
	*out = r;
	return 0;
fail:
	sl_receiver_free(&r);
	return ret;
}

void sl_receiver_free(struct sl_receiver **pr)
{
	struct sl_receiver *r = pr ? *pr : NULL;

	if (!r)
		return;
	if (r->listen_fd >= 0)
		close(r->listen_fd);
	for (unsigned i = 0; i < r->nregions; i++)
		free(r->regions[i].written);
	sl_devstore_free(&r->devstore);
	if (r->psk) {
		memset(r->psk, 0, r->psk_len);
		free(r->psk);
	}
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->ctl_lock);
	free(r);
	*pr = NULL;
}

int sl_receiver_port(const struct sl_receiver *r)
{
	return r->url.family == AF_UNIX ? 0 : sl_url_bound_port(r->listen_fd);
}

int sl_receiver_add_region(struct sl_receiver *r, uint32_t region_id, void *host, uint64_t len)
{
	struct region *rg;

	if (!host || !len || (len & (r->page_size - 1)) ||
	    ((uintptr_t)host & (r->page_size - 1)))
		return -EINVAL;
	for (unsigned i = 0; i < r->nregions; i++)
		if (r->regions[i].id == region_id)
			return -EEXIST;
	if (r->nregions == MAX_REGIONS)
		return -ENOSPC;
	rg = &r->regions[r->nregions];
	rg->npages = len >> r->page_shift;
	rg->written = calloc(SL_DIV_ROUND_UP(rg->npages, 64), sizeof(uint64_t));
	if (!rg->written)
		return -ENOMEM;
	rg->id = region_id;
	rg->host = host;
	r->nregions++;
	return 0;
}

struct sl_devstore *sl_receiver_devstore(struct sl_receiver *r)
{
	return r->devstore;
}

void sl_receiver_get_stats(const struct sl_receiver *r, struct sl_receiver_stats *st)
{
	const uint64_t *src = (const uint64_t *)&r->stats;
	uint64_t *dst = (uint64_t *)st;

	/* Word-wise atomic snapshot; the struct is all uint64_t but nchannels. */
	memcpy(st, &r->stats, sizeof(*st));
	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	st->nchannels = r->stats.nchannels;
}

static void shutdown_channels(struct sl_receiver *r)
{
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->nchan_fds; i++)
		if (r->chan_fds[i] >= 0)
			shutdown(r->chan_fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&r->lock);
}

int sl_receiver_cancel(struct sl_receiver *r)
{
	__atomic_store_n(&r->cancelled, 1, __ATOMIC_SEQ_CST);
	shutdown_channels(r);
	sl_devstore_abort(r->devstore);
	return 0;
}

static bool cancelled(struct sl_receiver *r)
{
	return __atomic_load_n(&r->cancelled, __ATOMIC_SEQ_CST);
}

/* ---- per-channel receive ------------------------------------------------- */

/* Records the session's first error and wakes every channel. */
static int session_fail(struct session *ss, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int session_fail(struct session *ss, int err, const char *fmt, ...)
{
	va_list ap;
	bool first;

	pthread_mutex_lock(&ss->lock);
	first = ss->error == 0;
	if (first) {
		ss->error = err;
		va_start(ap, fmt);
		sl_verr(&ss->err, err, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&ss->lock);
	if (first) {
		shutdown_channels(ss->r);
		sl_devstore_abort(ss->r->devstore);
	}
	return err;
}

static struct region *find_region(struct sl_receiver *r, uint32_t id)
{
	for (unsigned i = 0; i < r->nregions; i++)
		if (r->regions[i].id == id)
			return &r->regions[i];
	return NULL;
}

static void set_written(struct region *rg, uint64_t first, uint64_t n)
{
	while (n) {
		uint64_t w = first / 64, b = first % 64, k = SL_MIN(n, 64 - b);
		uint64_t mask = (k == 64) ? ~0ull : (((1ull << k) - 1) << b);

		/* Channels own disjoint granules, but two granules may share a
		 * word when granule < 64 pages: OR atomically. */
		__atomic_fetch_or(&rg->written[w], mask, __ATOMIC_RELAXED);
		first += k;
		n -= k;
	}
}

static bool test_written(const struct region *rg, uint64_t page)
{
	return __atomic_load_n(&rg->written[page / 64], __ATOMIC_RELAXED) >> (page % 64) & 1;
}

/* Describes where a channel is, for error texts. */
#define CH_FMT "channel %u (generation %u, %llu bytes received): "
#define CH_ARGS(c) (c)->idx, (c)->generation, (unsigned long long)(c)->bytes

static int read_or_fail(struct channel *c, void *buf, size_t len, const char *what)
{
	ssize_t n = sl_io_read_full(c->fd, buf, len);

	if (n > 0)
		c->bytes += (size_t)n;
	if (n == (ssize_t)len)
		return 0;
	if (n == -ETIMEDOUT)
		return session_fail(c->ss, -ETIMEDOUT, CH_FMT "peer silent for %d ms while reading %s",
				    CH_ARGS(c), c->ss->r->timeout_ms, what);
	if (n < 0)
		return session_fail(c->ss, (int)n, CH_FMT "reading %s: %s", CH_ARGS(c), what,
				    strerror((int)-n));
	return session_fail(c->ss, -ECONNRESET, CH_FMT "peer closed the connection in %s",
			    CH_ARGS(c), what);
}

/* Validates a RAM/ZERO packet's ranges against the region and the channel's
 * granules; fills c->iov for RAM. Touches no destination memory. */
static int check_ranges(struct channel *c, const struct sl_pkt *p, struct region **out)
{
	struct session *ss = c->ss;
	struct sl_receiver *r = ss->r;
	struct region *rg = find_region(r, p->u.ram.region_id);
	uint64_t gpages = ss->granule_bytes >> r->page_shift;

	if (!rg)
		return session_fail(ss, -EINVAL, CH_FMT "%s packet for unknown region %u", CH_ARGS(c),
				    sl_wire_type_name(p->type), p->u.ram.region_id);
	for (uint32_t i = 0; i < p->u.ram.nranges; i++) {
		struct sl_wire_range w = sl_wire_get_range(p, i);
		uint64_t g = w.first / gpages;

		if (w.first >= rg->npages || w.npages > rg->npages - w.first)
			return session_fail(ss, -EINVAL,
					    CH_FMT "%s range %llu+%llu outside region %u (%llu pages)",
					    CH_ARGS(c), sl_wire_type_name(p->type),
					    (unsigned long long)w.first, (unsigned long long)w.npages,
					    rg->id, (unsigned long long)rg->npages);
		/* Address affinity is what keeps pages ordered: enforce it. */
		if ((w.first + w.npages - 1) / gpages != g || g % ss->nch != c->idx)
			return session_fail(ss, -EINVAL,
					    CH_FMT "%s range %llu+%llu belongs to another channel",
					    CH_ARGS(c), sl_wire_type_name(p->type),
					    (unsigned long long)w.first, (unsigned long long)w.npages);
		if (p->type == SL_PKT_RAM) {
			c->iov[i].iov_base = rg->host + (w.first << r->page_shift);
			c->iov[i].iov_len = w.npages << r->page_shift;
		}
	}
	*out = rg;
	return 0;
}

static int recv_ram(struct channel *c, const struct sl_pkt *p)
{
	struct sl_receiver *r = c->ss->r;
	struct region *rg;
	ssize_t n;
	int ret = check_ranges(c, p, &rg);

	if (ret)
		return ret;
	/* Straight into the final address: no staging buffer. */
	n = sl_io_readv_full(c->fd, c->iov, (int)p->u.ram.nranges);
	if (n > 0)
		c->bytes += (size_t)n;
	if (n != (ssize_t)p->payload_len) {
		if (n == -ETIMEDOUT)
			return session_fail(c->ss, -ETIMEDOUT,
					    CH_FMT "peer silent for %d ms inside a RAM payload",
					    CH_ARGS(c), r->timeout_ms);
		return session_fail(c->ss, n < 0 ? (int)n : -ECONNRESET,
				    CH_FMT "RAM payload cut short: %s", CH_ARGS(c),
				    n < 0 ? strerror((int)-n) : "peer closed the connection");
	}
	for (uint32_t i = 0; i < p->u.ram.nranges; i++) {
		struct sl_wire_range w = sl_wire_get_range(p, i);

		set_written(rg, w.first, w.npages);
	}
	stat_add(&r->stats.page_bytes, p->payload_len);
	stat_add(&r->stats.pages, p->payload_len >> r->page_shift);
	return 0;
}

static int recv_zero(struct channel *c, const struct sl_pkt *p)
{
	struct sl_receiver *r = c->ss->r;
	struct region *rg;
	uint64_t cleared = 0, total = 0;
	int ret = check_ranges(c, p, &rg);

	if (ret)
		return ret;
	for (uint32_t i = 0; i < p->u.ram.nranges; i++) {
		struct sl_wire_range w = sl_wire_get_range(p, i);

		total += w.npages;
		/* Never-written pages are still zero from registration: skip them
		 * (and so never fault them in). Clear runs of written ones. */
		for (uint64_t pg = w.first; pg < w.first + w.npages;) {
			uint64_t end = pg;

			if (!test_written(rg, pg)) {
				pg++;
				continue;
			}
			while (end < w.first + w.npages && test_written(rg, end))
				end++;
			memset(rg->host + (pg << r->page_shift), 0, (end - pg) << r->page_shift);
			cleared += end - pg;
			pg = end;
		}
	}
	stat_add(&r->stats.zero_pages, total);
	stat_add(&r->stats.zero_cleared, cleared);
	return 0;
}

static int recv_blob(struct channel *c, const struct sl_pkt *p, void **out)
{
	void *buf = malloc(p->payload_len ? p->payload_len : 1);
	int ret;

	if (!buf)
		return session_fail(c->ss, -ENOMEM, CH_FMT "no memory for a %llu-byte %s packet",
				    CH_ARGS(c), (unsigned long long)p->payload_len,
				    sl_wire_type_name(p->type));
	ret = read_or_fail(c, buf, p->payload_len, "a packet payload");
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	return 0;
}

/* Counts this channel's ITERATION END for the generation; the last channel
 * to report it runs the callback. */
static int iteration_barrier(struct channel *c, uint32_t gen)
{
	struct session *ss = c->ss;
	bool fire = false;
	unsigned i;

	pthread_mutex_lock(&ss->lock);
	for (i = 0; i < ss->niter && ss->iter[i].gen != gen; i++)
		;
	if (i == ss->niter) {
		if (ss->niter == SL_ARRAY_SIZE(ss->iter)) {
			pthread_mutex_unlock(&ss->lock);
			return session_fail(ss, -EINVAL,
					    CH_FMT "too many generations open at once", CH_ARGS(c));
		}
		ss->iter[ss->niter].gen = gen;
		ss->iter[ss->niter].count = 0;
		ss->niter++;
	}
	if (++ss->iter[i].count == ss->nch) {
		fire = true;
		ss->iter[i] = ss->iter[--ss->niter];
	}
	pthread_mutex_unlock(&ss->lock);
	if (fire && ss->ops && ss->ops->iteration_end) {
		int ret = ss->ops->iteration_end(ss->ctx, gen);

		if (ret)
			return session_fail(ss, ret, "iteration_end callback for generation %u: %s",
					    gen, strerror(-ret));
	}
	return 0;
}

static int check_count(struct channel *c, const struct sl_pkt *p, uint64_t packets,
		       uint64_t bytes)
{
	if (p->u.count.packets != packets || p->u.count.bytes != bytes)
		return session_fail(c->ss, -EPROTO,
				    CH_FMT "%s says %llu packets/%llu bytes, received %llu/%llu",
				    CH_ARGS(c), sl_wire_type_name(p->type),
				    (unsigned long long)p->u.count.packets,
				    (unsigned long long)p->u.count.bytes,
				    (unsigned long long)packets, (unsigned long long)bytes);
	return 0;
}

/* One packet: header, validation, payload. Returns 1 after COMPLETE. */
static int channel_step(struct channel *c, uint64_t *seq)
{
	struct session *ss = c->ss;
	struct sl_receiver *r = ss->r;
	struct sl_errbuf eb;
	struct sl_pkt p;
	void *blob = NULL;
	int ret;

	ret = read_or_fail(c, c->hdr, SL_PKT_COMMON_LEN, "a packet header");
	if (ret)
		return ret;
	ret = sl_wire_decode_common(c->hdr, SL_PKT_COMMON_LEN, &p, &eb);
	if (ret)
		return session_fail(ss, ret, CH_FMT "%s", CH_ARGS(c), eb.msg);
	ret = read_or_fail(c, c->hdr + SL_PKT_COMMON_LEN, p.hdr_len - SL_PKT_COMMON_LEN,
			   "a packet header");
	if (ret)
		return ret;
	ret = sl_wire_decode_header(c->hdr, p.hdr_len, r->page_size, &p, &eb);
	if (ret)
		return session_fail(ss, ret, CH_FMT "%s", CH_ARGS(c), eb.msg);
	if (p.seq != *seq)
		return session_fail(ss, -EPROTO, CH_FMT "%s packet has sequence %llu, expected %llu",
				    CH_ARGS(c), sl_wire_type_name(p.type),
				    (unsigned long long)p.seq, (unsigned long long)*seq);
	if (p.generation < c->generation)
		return session_fail(ss, -EPROTO, CH_FMT "%s packet goes back to generation %u",
				    CH_ARGS(c), sl_wire_type_name(p.type), p.generation);
	(*seq)++;
	c->generation = p.generation;
	stat_add(&r->stats.packets, 1);

	switch (p.type) {
	case SL_PKT_RAM:
		ret = recv_ram(c, &p);
		break;
	case SL_PKT_ZERO:
		ret = recv_zero(c, &p);
		break;
	case SL_PKT_DEVICE:
		ret = recv_blob(c, &p, &blob);
		if (ret)
			break;
		ret = sl_devstore_put(r->devstore, p.u.dev.device_id, p.u.dev.index, p.u.dev.flags,
				      blob, p.payload_len, r->timeout_ms);
		if (ret)
			ret = session_fail(ss, ret, CH_FMT "device %u packet %llu: %s", CH_ARGS(c),
					   p.u.dev.device_id, (unsigned long long)p.u.dev.index,
					   ret == -EINVAL ? "duplicate or out-of-range index" :
					   ret == -ENOBUFS ? "reassembly memory cap full of later packets" :
					   strerror(-ret));
		else
			stat_add(&r->stats.device_bytes, p.payload_len);
		break;
	case SL_PKT_STATE:
		ret = recv_blob(c, &p, &blob);
		if (!ret && ss->ops && ss->ops->state) {
			ret = ss->ops->state(ss->ctx, p.u.state.kind, blob, p.payload_len);
			if (ret)
				ret = session_fail(ss, ret, "state callback (kind %u): %s",
						   p.u.state.kind, strerror(-ret));
		}
		break;
	case SL_PKT_ITERATION_END:
		ret = check_count(c, &p, c->gen_packets, c->gen_bytes);
		if (!ret)
			ret = iteration_barrier(c, p.generation);
		c->gen_packets = c->gen_bytes = 0;
		break;
	case SL_PKT_COMPLETE:
		ret = check_count(c, &p, c->total_packets, c->total_bytes);
		if (!ret)
			ret = 1;
		break;
	case SL_PKT_ERROR:
		ret = recv_blob(c, &p, &blob);
		if (!ret) {
			char text[SL_PKT_MAX_TEXT_PAYLOAD + 1];
			struct sl_wire_verdict v;

			sl_wire_verdict_set_reason(&v, blob, SL_MIN(p.payload_len, (uint64_t)SL_VERDICT_REASON_MAX));
			snprintf(text, sizeof(text), "%s", v.reason);
			ret = session_fail(ss, p.u.error.code ? -(int)p.u.error.code : -EPROTO,
					   CH_FMT "sender aborted: %s", CH_ARGS(c), text);
		}
		break;
	default: /* RESUMED goes the other way */
		ret = session_fail(ss, -EPROTO, CH_FMT "unexpected %s packet", CH_ARGS(c),
				   sl_wire_type_name(p.type));
		break;
	}
	free(blob);
	if (ret < 0)
		return ret;
	if (p.type != SL_PKT_ITERATION_END && p.type != SL_PKT_COMPLETE) {
		c->gen_packets++;
		c->gen_bytes += p.payload_len;
		c->total_packets++;
		c->total_bytes += p.payload_len;
	}
	stat_add(&r->stats.bytes, p.hdr_len + p.payload_len);
	if (c->idx < SL_RECEIVER_MAX_STAT_CHANNELS)
		stat_add(&r->stats.channel_bytes[c->idx], p.hdr_len + p.payload_len);
	return ret;
}

static void *channel_main(void *arg)
{
	struct channel *c = arg;
	uint64_t seq = 0;
	int ret;

	do {
		ret = channel_step(c, &seq);
	} while (ret == 0);
	if (ret == 1)
		c->completed = true;
	sl_devstore_producer_done(c->ss->r->devstore);
	return NULL;
}

/* ---- session ------------------------------------------------------------- */

/* Waits for a connection; -ETIMEDOUT after timeout_ms (< 0: forever), -ECANCELED. */
static int accept_one(struct sl_receiver *r, int timeout_ms)
{
	uint64_t deadline = sl_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;

	for (;;) {
		struct pollfd pfd = { .fd = r->listen_fd, .events = POLLIN };
		int n;

		if (cancelled(r))
			return -ECANCELED;
		if (timeout_ms >= 0 && sl_now_ns() >= deadline)
			return -ETIMEDOUT;
		/* Short slices so cancel() is noticed without extra fds. */
		n = poll(&pfd, 1, 100);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0) {
			int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0)
				return fd;
			if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
				return -errno;
		}
	}
}

static void close_session(struct sl_receiver *r, struct session *ss)
{
	pthread_mutex_lock(&r->ctl_lock);
	r->ctl_fd = -1;
	pthread_mutex_unlock(&r->ctl_lock);
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < ss->nch; i++)
		if (ss->ch[i].fd >= 0) {
			close(ss->ch[i].fd);
			ss->ch[i].fd = -1;
		}
	r->nchan_fds = 0;
	pthread_mutex_unlock(&r->lock);
}

/* Accepts and authenticates all channels of one session. */
static int accept_channels(struct sl_receiver *r, struct session *ss, struct sl_errbuf *eb)
{
	uint8_t session_id[SL_SESSION_ID_LEN];
	unsigned accepted = 0;

	ss->nch = 0;
	for (;;) {
		struct sl_wire_hello h;
		int fd, ret;

		/* The first channel may take as long as it likes; the rest of a
		 * session must follow within the timeout. */
		fd = accept_one(r, accepted ? r->timeout_ms : -1);
		if (fd < 0)
			return sl_err(eb, fd, "waiting for channel %u of the session: %s", accepted,
				      strerror(-fd));
		sl_io_prepare_socket(fd, r->timeout_ms);
		ret = sl_hs_server_begin(fd, r->psk, r->psk_len, r->page_size, &h, eb);
		if (ret) {
			close(fd);
			return ret;
		}
		if (!accepted) {
			memcpy(session_id, h.session_id, sizeof(session_id));
			ss->nch = h.channel_count;
			ss->granule_bytes = h.granule_bytes;
			for (unsigned i = 0; i < ss->nch; i++)
				ss->ch[i].fd = -1;
		} else if (memcmp(session_id, h.session_id, sizeof(session_id))) {
			ret = sl_err(eb, -EBUSY, "channel %u belongs to another session", h.channel_index);
		} else if (h.channel_count != ss->nch || h.granule_bytes != ss->granule_bytes) {
			ret = sl_err(eb, -EINVAL, "channel %u: channel count or granule differs from channel 0's",
				     h.channel_index);
		} else if (ss->ch[h.channel_index].fd >= 0) {
			ret = sl_err(eb, -EEXIST, "duplicate channel index %u", h.channel_index);
		}
		if (ret) {
			sl_hs_server_verdict(fd, (uint32_t)-ret, eb->msg);
			close(fd);
			return ret;
		}
		ret = sl_hs_server_verdict(fd, 0, "");
		if (ret) {
			close(fd);
			return sl_err(eb, ret, "channel %u: sending verdict: %s", h.channel_index,
				      strerror(-ret));
		}
		pthread_mutex_lock(&r->lock);
		ss->ch[h.channel_index].fd = fd;
		r->chan_fds[r->nchan_fds++] = fd;
		pthread_mutex_unlock(&r->lock);
		if (h.channel_index == 0) {
			pthread_mutex_lock(&r->ctl_lock);
			r->ctl_fd = fd;
			r->ctl_seq = 0;
			pthread_mutex_unlock(&r->ctl_lock);
		}
		if (++accepted == ss->nch)
			return 0;
	}
}

static void send_error_all(struct session *ss)
{
	for (unsigned i = 0; i < ss->nch; i++) {
		struct sl_pkt p = { .type = SL_PKT_ERROR, .u.error.code = (uint32_t)-ss->error };

		if (ss->ch[i].fd >= 0)
			sl_io_send_small_packet(ss->ch[i].fd, &p, ss->err.msg,
						strnlen(ss->err.msg, sizeof(ss->err.msg)));
	}
}

int sl_receiver_run_session(struct sl_receiver *r, const struct sl_receiver_ops *ops, void *ctx,
			    struct sl_errbuf *eb)
{
	struct session *ss;
	int ret;

	if (cancelled(r))
		return sl_err(eb, -ECANCELED, "receiver cancelled");
	ss = calloc(1, sizeof(*ss));
	if (!ss)
		return sl_err(eb, -ENOMEM, "receiver: out of memory");
	ss->r = r;
	ss->ops = ops;
	ss->ctx = ctx;
	pthread_mutex_init(&ss->lock, NULL);
	ret = accept_channels(r, ss, eb);
	if (ret)
		goto out;
	r->stats.nchannels = ss->nch;
	sl_devstore_reset(r->devstore, ss->nch);
	for (unsigned i = 0; i < ss->nch; i++) {
		struct channel *c = &ss->ch[i];

		c->ss = ss;
		c->idx = i;
		if (pthread_create(&c->thread, NULL, channel_main, c)) {
			session_fail(ss, -EAGAIN, "cannot start a thread for channel %u", i);
			break;
		}
		c->started = true;
	}
	for (unsigned i = 0; i < ss->nch; i++)
		if (ss->ch[i].started)
			pthread_join(ss->ch[i].thread, NULL);
	if (cancelled(r) && !ss->error)
		session_fail(ss, -ECANCELED, "receiver cancelled");
	if (ss->error) {
		ret = sl_err(eb, ss->error, "%s", ss->err.msg);
		send_error_all(ss);
		goto out;
	}
	/* Every channel drained (COMPLETE everywhere): finish and answer. */
	{
		char msg[SL_PKT_MAX_TEXT_PAYLOAD] = "";
		struct sl_pkt p = { .type = SL_PKT_RESUMED };
		int status = 0, sret;

		if (ops && ops->complete)
			status = ops->complete(ctx, msg, sizeof(msg));
		if (status > 0 || status < -4095)
			status = -EINVAL;
		msg[sizeof(msg) - 1] = '\0';
		p.u.resumed.status = status;
		p.generation = ss->ch[0].generation;
		pthread_mutex_lock(&r->ctl_lock);
		p.seq = r->ctl_seq++;
		sret = sl_io_send_small_packet(ss->ch[0].fd, &p, msg, strlen(msg));
		pthread_mutex_unlock(&r->ctl_lock);
		if (status)
			ret = sl_err(eb, status, "complete callback failed: %s", msg[0] ? msg : strerror(-status));
		else if (sret)
			ret = sl_err(eb, sret, "channel 0: sending RESUMED: %s", strerror(-sret));
	}
out:
	if (ret) {
		stat_add(&r->stats.sessions_failed, 1);
		sl_io_log(r->log, r->log_ctx, SL_LOG_ERR, "session failed: %s", eb->msg);
	} else {
		stat_add(&r->stats.sessions_ok, 1);
	}
	close_session(r, ss);
	pthread_mutex_destroy(&ss->lock);
	free(ss);
	return ret;
}

int sl_receiver_send_ack(struct sl_receiver *r, uint32_t kind, uint32_t id, uint64_t value)
{
	struct sl_pkt p = { .type = SL_PKT_ACK };
	int ret;

	if (!r || kind != SL_ACK_DEVICE_INIT_LOADED)
		return -EINVAL;
	p.u.ack.kind = kind;
	p.u.ack.id = id;
	p.u.ack.value = value;
	pthread_mutex_lock(&r->ctl_lock);
	if (r->ctl_fd < 0) {
		ret = -ENOTCONN;
	} else {
		p.seq = r->ctl_seq++;
		ret = sl_io_send_small_packet(r->ctl_fd, &p, NULL, 0);
	}
	pthread_mutex_unlock(&r->ctl_lock);
	return ret;
}
