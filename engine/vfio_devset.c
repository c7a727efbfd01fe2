/* SPDX-License-Identifier: MIT */
/*
 * vfio_devset.c — the devices of one migration, moved together: the phase
 * ordering (every device reaches a P2P state before any stops; resume in
 * reverse), PRE_COPY reads, the STOP_COPY read to end of stream spread as
 * indexed packets, and on the destination one loader thread per device
 * writing packets in index order into the RESUMING fd.
 *
 * Data path: buffers come from one sl_datafd pool (io_uring, registered);
 * a filled buffer goes to sink.send() as is (no copy) and returns to the
 * pool only after sink.flush().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_datafd.h"
#include "sl_vfio.h"

#define CONFIG_MAX (64u << 10)

struct member {
	struct sl_vfio_dev *dev;
	uint32_t id;
	uint64_t next_index;
	bool init_flagged;   /* source: INIT_DONE sent */
	bool eof;
	bool plain_read;     /* the fd refused RWF_NOWAIT: PRE_COPY reads use read(2) */
	uint8_t *config;     /* LAST packet's payload; valid until flush */
	struct sl_devset_dev_stats st;
	/* destination */
	pthread_t loader;
	bool loader_running;
	int loader_err;
	char loader_msg[160];
	atomic_bool init_loaded;
	struct sl_devset *ds;
};

struct sl_devset {
	struct sl_devset_config cfg;
	struct member *m;
	unsigned n;
	struct sl_errbuf err;
	/* source data path */
	struct sl_datafd_reader *rd;
	struct sl_devset_sink sink;
	unsigned *free_bufs;
	unsigned nfree;
	/* destination */
	struct sl_devset_source src;
	atomic_bool cancel;
};

static bool has(const struct member *m, uint32_t cap)
{
	return (sl_vfio_dev_backend(m->dev)->caps & cap) == cap;
}

static const char *name_of(const struct member *m)
{
	return sl_vfio_dev_backend(m->dev)->name;
}

int sl_devset_new(const struct sl_devset_config *cfg, struct sl_devset **out)
{
	struct sl_devset *ds;

	if (!out || (cfg && cfg->size < sizeof(*cfg)))
		return -EINVAL;
	ds = calloc(1, sizeof(*ds));
	if (!ds)
		return -ENOMEM;
	if (cfg) {
		ds->cfg = *cfg;
	} else {
		ds->cfg.size = sizeof(ds->cfg);
	}
	if (ds->cfg.policy != SL_VFIO_UNWIND && ds->cfg.policy != SL_VFIO_RESET) {
		free(ds);
		return -EINVAL;
	}
	if (!ds->cfg.buf_max)
		ds->cfg.buf_max = 1u << 20;
	if (!ds->cfg.buf_min)
		ds->cfg.buf_min = 64u << 10;
	if (ds->cfg.buf_min > ds->cfg.buf_max || ds->cfg.buf_max > (64u << 20)) {
		free(ds);
		return -EINVAL;
	}
	if (!ds->cfg.nbufs)
		ds->cfg.nbufs = 4;
	if (!ds->cfg.loader_timeout_ms)
		ds->cfg.loader_timeout_ms = 30000;
	if (!ds->cfg.precopy_budget_ms)
		ds->cfg.precopy_budget_ms = 50;
	if (!ds->cfg.precopy_poll_ms)
		ds->cfg.precopy_poll_ms = 5;
	*out = ds;
	return 0;
}

static void stop_loaders(struct sl_devset *ds)
{
	atomic_store(&ds->cancel, true);
	for (unsigned i = 0; i < ds->n; i++) {
		if (ds->m[i].loader_running) {
			pthread_join(ds->m[i].loader, NULL);
			ds->m[i].loader_running = false;
		}
	}
	atomic_store(&ds->cancel, false);
}

void sl_devset_free(struct sl_devset **pds)
{
	struct sl_devset *ds;

	if (!pds || !*pds)
		return;
	ds = *pds;
	stop_loaders(ds);
	for (unsigned i = 0; i < ds->n; i++) {
		sl_vfio_dev_free(&ds->m[i].dev);
		free(ds->m[i].config);
	}
	free(ds->m);
	sl_datafd_reader_free(&ds->rd);
	free(ds->free_bufs);
	free(ds);
	*pds = NULL;
}

int sl_devset_add(struct sl_devset *ds, struct sl_vfio_backend *be)
{
	struct sl_vfio_dev *d;
	struct member *m;
	int ret;

	if (!ds || !be) {
		sl_vfio_backend_free(&be);
		return -EINVAL;
	}
	ret = sl_vfio_dev_new(be, ds->cfg.policy, &d);
	if (ret < 0) {
		sl_err(&ds->err, ret, "%s: cannot add device: %s", be->name, strerror(-ret));
		sl_vfio_backend_free(&be);
		return ret;
	}
	m = realloc(ds->m, (ds->n + 1) * sizeof(*m));
	if (!m) {
		sl_vfio_dev_free(&d);
		return -ENOMEM;
	}
	ds->m = m;
	for (unsigned i = 0; i < ds->n; i++)
		ds->m[i].ds = ds;
	memset(&ds->m[ds->n], 0, sizeof(ds->m[ds->n]));
	ds->m[ds->n].dev = d;
	ds->m[ds->n].id = ds->n;
	ds->m[ds->n].ds = ds;
	return (int)ds->n++;
}

unsigned sl_devset_count(const struct sl_devset *ds)
{
	return ds ? ds->n : 0;
}

struct sl_vfio_dev *sl_devset_dev(struct sl_devset *ds, uint32_t id)
{
	return ds && id < ds->n ? ds->m[id].dev : NULL;
}

const char *sl_devset_last_error(const struct sl_devset *ds)
{
	return ds ? ds->err.msg : "";
}

int sl_devset_stats(const struct sl_devset *ds, uint32_t id, struct sl_devset_dev_stats *out)
{
	if (!ds || !out || id >= ds->n)
		return -EINVAL;
	*out = ds->m[id].st;
	out->state = sl_vfio_dev_state(ds->m[id].dev);
	out->initial_done = ds->m[id].st.initial_done || atomic_load(&ds->m[id].init_loaded);
	return 0;
}

/* ---- phase moves -------------------------------------------------------------- */

/* Keeps the first error's text; later ones only if none yet. */
static int fail_dev(struct sl_devset *ds, struct member *m, int ret)
{
	return sl_err(&ds->err, ret, "%s", sl_vfio_dev_last_error(m->dev));
}

int sl_devset_abort_to_running(struct sl_devset *ds)
{
	int first = 0;

	if (!ds)
		return -EINVAL;
	stop_loaders(ds);
	/* Reverse of the stop order: leave the stopped states, then P2P, then run. */
	for (unsigned k = ds->n; k-- > 0;) {
		struct member *m = &ds->m[k];
		enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

		/* Aborting a resume needs a reset; so does ERROR. */
		if (s == SL_VFIO_RESUMING || s == SL_VFIO_ERROR)
			sl_vfio_dev_reset(m->dev);
		else if (s == SL_VFIO_STOP_COPY)
			sl_vfio_dev_set_state(m->dev, SL_VFIO_STOP);
	}
	for (unsigned k = ds->n; k-- > 0;) {
		struct member *m = &ds->m[k];
		enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

		if (has(m, SL_VFIO_CAP_P2P) && (s == SL_VFIO_STOP || s == SL_VFIO_PRE_COPY_P2P))
			sl_vfio_dev_set_state(m->dev, SL_VFIO_RUNNING_P2P);
	}
	for (unsigned k = ds->n; k-- > 0;) {
		struct member *m = &ds->m[k];

		if (sl_vfio_dev_state(m->dev) != SL_VFIO_RUNNING &&
		    sl_vfio_dev_set_state(m->dev, SL_VFIO_RUNNING) < 0 &&
		    sl_vfio_dev_state(m->dev) != SL_VFIO_RUNNING)
			sl_vfio_dev_reset(m->dev);
		if (sl_vfio_dev_state(m->dev) != SL_VFIO_RUNNING && !first)
			first = sl_err(&ds->err, -EIO, "%s: could not be returned to RUNNING (%s)",
				       name_of(m), sl_vfio_state_name(sl_vfio_dev_state(m->dev)));
		m->eof = false;
	}
	return first;
}

/* Moves every member to the state chosen by pick() (or leaves it when pick
 * returns its current state). On a failure, everything goes back to RUNNING
 * and the first error (naming the arc) is returned. */
static int phase(struct sl_devset *ds, enum sl_vfio_state (*pick)(struct member *m), bool reverse)
{
	for (unsigned k = 0; k < ds->n; k++) {
		struct member *m = &ds->m[reverse ? ds->n - 1 - k : k];
		enum sl_vfio_state t = pick(m);
		int ret;

		if (t == sl_vfio_dev_state(m->dev))
			continue;
		ret = sl_vfio_dev_set_state(m->dev, t);
		if (ret < 0) {
			char msg[SL_ERRMSG_MAX];

			snprintf(msg, sizeof(msg), "%s", sl_vfio_dev_last_error(m->dev));
			int r2 = sl_devset_abort_to_running(ds);
			return sl_err(&ds->err, ret, "%s; %s", msg,
				      r2 == 0 ? "every device back to RUNNING"
					      : "NOT every device back to RUNNING");
		}
	}
	return 0;
}

static enum sl_vfio_state pick_precopy(struct member *m)
{
	enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

	return s == SL_VFIO_RUNNING && has(m, SL_VFIO_CAP_PRE_COPY) ? SL_VFIO_PRE_COPY : s;
}

static enum sl_vfio_state pick_p2p(struct member *m)
{
	enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

	if (!has(m, SL_VFIO_CAP_P2P))
		return s;
	if (s == SL_VFIO_PRE_COPY)
		return SL_VFIO_PRE_COPY_P2P;
	if (s == SL_VFIO_RUNNING)
		return SL_VFIO_RUNNING_P2P;
	return s;
}

static enum sl_vfio_state pick_stopcopy(struct member *m)
{
	(void)m;
	return SL_VFIO_STOP_COPY;
}

static enum sl_vfio_state pick_stop(struct member *m)
{
	(void)m;
	return SL_VFIO_STOP;
}

static enum sl_vfio_state pick_resuming(struct member *m)
{
	(void)m;
	return SL_VFIO_RESUMING;
}

static enum sl_vfio_state pick_p2p_from_stop(struct member *m)
{
	enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

	return s == SL_VFIO_STOP && has(m, SL_VFIO_CAP_P2P) ? SL_VFIO_RUNNING_P2P : s;
}

static enum sl_vfio_state pick_running(struct member *m)
{
	(void)m;
	return SL_VFIO_RUNNING;
}

/* ---- source ------------------------------------------------------------------- */

static int ensure_pool(struct sl_devset *ds)
{
	struct sl_datafd_reader_config rc = { .size = sizeof(rc) };
	uint64_t est = 0, sz;
	struct sl_errbuf eb;
	int ret;

	if (ds->rd)
		return 0;
	/* Buffer size from the devices' own data-size estimates, capped. */
	for (unsigned i = 0; i < ds->n; i++) {
		struct sl_vfio_backend *be = sl_vfio_dev_backend(ds->m[i].dev);
		uint64_t v;
		if (be->ops->data_size && be->ops->data_size(be, &v) == 0)
			est = SL_MAX(est, v);
	}
	sz = est / 16;
	sz = SL_MAX(sz, ds->cfg.buf_min);
	sz = SL_MIN(sz, ds->cfg.buf_max);
	rc.buf_size = (sz + 4095) & ~4095ull;
	rc.nbufs = ds->cfg.nbufs * (ds->n ? ds->n : 1);
	if (rc.nbufs > 1024)
		rc.nbufs = 1024;
	ret = sl_datafd_reader_new(&rc, &ds->rd, &eb);
	if (ret < 0)
		return sl_err(&ds->err, ret, "device data path: %s", eb.msg);
	ds->free_bufs = calloc(rc.nbufs, sizeof(unsigned));
	if (!ds->free_bufs)
		return -ENOMEM;
	for (unsigned i = 0; i < rc.nbufs; i++)
		ds->free_bufs[i] = rc.nbufs - 1 - i;
	ds->nfree = rc.nbufs;
	return 0;
}

static int sink_flush(struct sl_devset *ds)
{
	int ret = ds->sink.flush ? ds->sink.flush(ds->sink.ctx) : 0;

	if (ret < 0)
		return sl_err(&ds->err, ret, "device state: flush failed: %s", strerror(-ret));
	return 0;
}

/* Buffers sent since the last flush are held in `sent`; flush returns them. */
struct bufs {
	unsigned *sent;
	unsigned nsent;
};

static int take_buf(struct sl_devset *ds, struct bufs *b, unsigned *idx)
{
	if (!ds->nfree) {
		int ret = sink_flush(ds);
		if (ret < 0)
			return ret;
		for (unsigned i = 0; i < b->nsent; i++)
			ds->free_bufs[ds->nfree++] = b->sent[i];
		b->nsent = 0;
		if (!ds->nfree)
			return -ENOBUFS;
	}
	*idx = ds->free_bufs[--ds->nfree];
	return 0;
}

static int do_send(struct sl_devset *ds, struct member *m, uint32_t flags, const void *buf,
		   size_t len)
{
	int ret = ds->sink.send(ds->sink.ctx, m->id, m->next_index, flags, buf, len);

	if (ret < 0)
		return sl_err(&ds->err, ret, "%s: sending device packet %llu failed: %s",
			      name_of(m), (unsigned long long)m->next_index, strerror(-ret));
	m->next_index++;
	m->st.packets++;
	return 0;
}

/* One synchronous read through the backend or the ring. */
static int read_one(struct sl_devset *ds, struct member *m, unsigned idx, size_t len, bool nowait)
{
	struct sl_vfio_backend *be = sl_vfio_dev_backend(m->dev);
	int fd = sl_vfio_dev_data_fd(m->dev);
	void *buf = sl_datafd_buf(ds->rd, idx);
	uint64_t user;
	int res, ret;

	if (be->ops->read) {
		ssize_t n = be->ops->read(be, fd, buf, len);
		return n < 0 ? (int)n : (int)n;
	}
	if (ds->cfg.no_uring || m->plain_read) {
		ssize_t n = read(fd, buf, len);
		return n < 0 ? -errno : (int)n;
	}
	ret = sl_datafd_submit_read(ds->rd, fd, idx, len, m->id, nowait);
	if (ret < 0)
		return ret;
	ret = sl_datafd_reap(ds->rd, &user, &res, -1);
	if (ret == 0 && res == -EOPNOTSUPP && nowait) {
		/* This fd cannot do RWF_NOWAIT: use read(2) on the O_NONBLOCK fd. */
		m->plain_read = true;
		return read_one(ds, m, idx, len, nowait);
	}
	return ret < 0 ? ret : res;
}

static void set_nonblock(struct member *m, bool on)
{
	int fd = sl_vfio_dev_data_fd(m->dev), fl;

	if (sl_vfio_dev_backend(m->dev)->ops->read || fd < 0)
		return; /* not a real fd (fake kernel) */
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

int sl_devset_set_sink(struct sl_devset *ds, const struct sl_devset_sink *sink)
{
	if (!ds || !sink || !sink->send)
		return -EINVAL;
	ds->sink = *sink;
	return 0;
}

int sl_devset_precopy_start(struct sl_devset *ds)
{
	int ret;

	if (!ds)
		return -EINVAL;
	ret = phase(ds, pick_precopy, false);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < ds->n; i++)
		set_nonblock(&ds->m[i], true);
	return 0;
}

int sl_devset_pending(struct sl_devset *ds, struct sl_devset_pending *out)
{
	if (!ds || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->initial_done = true;
	for (unsigned i = 0; i < ds->n; i++) {
		struct member *m = &ds->m[i];
		struct sl_vfio_backend *be = sl_vfio_dev_backend(m->dev);
		enum sl_vfio_state s = sl_vfio_dev_state(m->dev);
		uint64_t ini = 0, dirty = 0, sc = 0;

		if (s == SL_VFIO_PRE_COPY || s == SL_VFIO_PRE_COPY_P2P) {
			int ret = be->ops->precopy_info(be, sl_vfio_dev_data_fd(m->dev), &ini, &dirty);
			if (ret < 0)
				return sl_err(&ds->err, ret, "%s: precopy info failed: %s",
					      name_of(m), strerror(-ret));
			out->initial_bytes += ini;
			out->dirty_bytes += dirty;
			if (!m->init_flagged)
				out->initial_done = false;
		}
		if (be->ops->data_size && be->ops->data_size(be, &sc) == 0) {
			out->stopcopy_bytes += sc;
			out->switchover_bytes += sc;
		} else if (s == SL_VFIO_PRE_COPY || s == SL_VFIO_PRE_COPY_P2P) {
			out->switchover_bytes += ini + dirty;
		}
	}
	return 0;
}

static bool nothing_now(int res)
{
	/* PRE_COPY: ENOMSG (kernel), 0 (mtty sample), EAGAIN (non-blocking fd). */
	return res == 0 || res == -ENOMSG || res == -EAGAIN || res == -EWOULDBLOCK;
}

int64_t sl_devset_precopy_read(struct sl_devset *ds, uint64_t max_bytes)
{
	struct bufs b = { 0 };
	int64_t total = 0;
	int ret = 0;

	if (!ds || !ds->sink.send)
		return -EINVAL;
	ret = ensure_pool(ds);
	if (ret < 0)
		return ret;
	b.sent = calloc(sl_datafd_nbufs(ds->rd), sizeof(unsigned));
	if (!b.sent)
		return -ENOMEM;
	for (unsigned i = 0; i < ds->n && ret == 0; i++) {
		struct member *m = &ds->m[i];
		struct sl_vfio_backend *be = sl_vfio_dev_backend(m->dev);
		enum sl_vfio_state s = sl_vfio_dev_state(m->dev);
		/* Each device gets its share of the call's time budget. */
		uint64_t deadline = sl_now_ns() + (uint64_t)ds->cfg.precopy_budget_ms * 1000000ull;

		if (s != SL_VFIO_PRE_COPY && s != SL_VFIO_PRE_COPY_P2P)
			continue;
		for (;;) {
			uint64_t ini = 1, dirty = 0;
			unsigned idx;
			size_t len = sl_datafd_buf_size(ds->rd);
			int res;

			if ((max_bytes && (uint64_t)total >= max_bytes) || sl_now_ns() >= deadline)
				break;
			ret = take_buf(ds, &b, &idx);
			if (ret < 0)
				break;
			res = read_one(ds, m, idx, len, true);
			if (res < 0 && !nothing_now(res)) {
				ds->free_bufs[ds->nfree++] = idx;
				ret = sl_err(&ds->err, res, "%s: PRE_COPY read failed: %s", name_of(m),
					     strerror(-res));
				break;
			}
			if (!m->init_flagged) {
				ret = be->ops->precopy_info(be, sl_vfio_dev_data_fd(m->dev), &ini,
							    &dirty);
				if (ret < 0) {
					ds->free_bufs[ds->nfree++] = idx;
					sl_err(&ds->err, ret, "%s: precopy info failed: %s",
					       name_of(m), strerror(-ret));
					break;
				}
			}
			uint32_t flags = 0;
			if (!m->init_flagged && ini == 0)
				flags = SL_VFIO_PKT_INIT_DONE;
			if (nothing_now(res)) {
				ds->free_bufs[ds->nfree++] = idx;
				if (flags) { /* announce it even without data */
					ret = do_send(ds, m, flags, NULL, 0);
					m->init_flagged = m->st.initial_done = ret == 0;
					break;
				}
				/* Initial data is owed but not readable yet (a device
				 * that produces asynchronously): wait a little for it
				 * within this call's budget instead of leaving it to
				 * the next iteration. */
				uint64_t now = sl_now_ns();
				if (!m->init_flagged && ini > 0 && !be->ops->read && now < deadline) {
					uint64_t left_ms = (deadline - now) / 1000000 + 1;
					struct pollfd pfd = { .fd = sl_vfio_dev_data_fd(m->dev),
							      .events = POLLIN };
					if (poll(&pfd, 1, (int)SL_MIN(left_ms, (uint64_t)ds->cfg.precopy_poll_ms)) > 0)
						continue;
				}
				break;
			}
			ret = do_send(ds, m, flags, sl_datafd_buf(ds->rd, idx), (size_t)res);
			if (ret < 0) {
				ds->free_bufs[ds->nfree++] = idx;
				break;
			}
			b.sent[b.nsent++] = idx;
			if (flags)
				m->init_flagged = m->st.initial_done = true;
			m->st.precopy_bytes += (uint64_t)res;
			total += res;
		}
	}
	if (b.nsent) {
		int r2 = sink_flush(ds);
		for (unsigned i = 0; i < b.nsent; i++)
			ds->free_bufs[ds->nfree++] = b.sent[i];
		if (ret == 0)
			ret = r2;
	}
	free(b.sent);
	return ret < 0 ? ret : total;
}

int sl_devset_stop(struct sl_devset *ds)
{
	int ret;

	if (!ds)
		return -EINVAL;
	/* No device stops while another may still do P2P DMA into it. */
	ret = phase(ds, pick_p2p, false);
	if (ret < 0)
		return ret;
	ret = phase(ds, pick_stopcopy, false);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < ds->n; i++) {
		set_nonblock(&ds->m[i], false); /* STOP_COPY: wait for data, 0 = end */
		ds->m[i].eof = false;
	}
	return 0;
}

static int send_last(struct sl_devset *ds, struct member *m)
{
	uint32_t flags = SL_VFIO_PKT_LAST;
	ssize_t clen = 0;

	if (ds->cfg.get_config) {
		if (!m->config && !(m->config = malloc(CONFIG_MAX)))
			return -ENOMEM;
		clen = ds->cfg.get_config(ds->cfg.cb_ctx, m->id, m->config, CONFIG_MAX);
		if (clen < 0)
			return sl_err(&ds->err, (int)clen, "%s: config state failed: %s",
				      name_of(m), strerror((int)-clen));
		if (clen > (ssize_t)CONFIG_MAX)
			return sl_err(&ds->err, -EOVERFLOW, "%s: config state too large", name_of(m));
		if (clen > 0)
			flags |= SL_VFIO_PKT_CONFIG;
	}
	m->eof = true;
	return do_send(ds, m, flags, clen > 0 ? m->config : NULL, (size_t)clen);
}

int64_t sl_devset_stopcopy_read_all(struct sl_devset *ds)
{
	struct bufs b = { 0 };
	int64_t total = 0;
	unsigned active = 0;
	int ret;

	if (!ds || !ds->sink.send)
		return -EINVAL;
	for (unsigned i = 0; i < ds->n; i++)
		if (sl_vfio_dev_state(ds->m[i].dev) != SL_VFIO_STOP_COPY)
			return sl_err(&ds->err, -EINVAL, "%s: not in STOP_COPY (%s)",
				      name_of(&ds->m[i]),
				      sl_vfio_state_name(sl_vfio_dev_state(ds->m[i].dev)));
	ret = ensure_pool(ds);
	if (ret < 0)
		return ret;
	b.sent = calloc(sl_datafd_nbufs(ds->rd), sizeof(unsigned));
	if (!b.sent)
		return -ENOMEM;
	uint64_t t0 = sl_now_ns();
	size_t len = sl_datafd_buf_size(ds->rd);
	bool ring = !ds->cfg.no_uring;

	/* Devices whose data is not a real fd are read synchronously. */
	for (unsigned i = 0; i < ds->n && ret == 0; i++) {
		struct member *m = &ds->m[i];
		if (!sl_vfio_dev_backend(m->dev)->ops->read && ring) {
			active++;
			continue;
		}
		while (ret == 0 && !m->eof) {
			unsigned idx;
			int res;
			ret = take_buf(ds, &b, &idx);
			if (ret < 0)
				break;
			res = read_one(ds, m, idx, len, false);
			if (res == -EINTR || res == -EAGAIN) {
				ds->free_bufs[ds->nfree++] = idx;
				continue;
			}
			if (res <= 0) {
				ds->free_bufs[ds->nfree++] = idx;
				ret = res < 0 ? sl_err(&ds->err, res, "%s: STOP_COPY read failed: %s",
						       name_of(m), strerror(-res))
					      : send_last(ds, m);
				break;
			}
			ret = do_send(ds, m, 0, sl_datafd_buf(ds->rd, idx), (size_t)res);
			if (ret < 0) {
				ds->free_bufs[ds->nfree++] = idx;
				break;
			}
			b.sent[b.nsent++] = idx;
			m->st.stopcopy_bytes += (uint64_t)res;
			total += res;
		}
		m->st.stopcopy_ns = sl_now_ns() - t0;
	}

	/* Real fds: one read in flight per device, all devices at once. */
	unsigned inflight = 0;
	for (unsigned i = 0; i < ds->n && ret == 0 && active; i++) {
		struct member *m = &ds->m[i];
		unsigned idx;
		if (sl_vfio_dev_backend(m->dev)->ops->read)
			continue;
		ret = take_buf(ds, &b, &idx);
		if (ret == 0)
			ret = sl_datafd_submit_read(ds->rd, sl_vfio_dev_data_fd(m->dev), idx, len,
						    ((uint64_t)idx << 32) | m->id, false);
		if (ret == 0)
			inflight++;
	}
	while (inflight) {
		uint64_t user;
		int res, r;

		r = sl_datafd_reap(ds->rd, &user, &res, -1);
		if (r < 0) {
			ret = ret ? ret : sl_err(&ds->err, r, "device data path: %s", strerror(-r));
			break; /* the ring is unusable; abort_to_running closes the fds */
		}
		inflight--;
		struct member *m = &ds->m[(uint32_t)user];
		unsigned idx = (unsigned)(user >> 32);

		if (ret < 0) { /* failing: just collect what is in flight */
			ds->free_bufs[ds->nfree++] = idx;
			continue;
		}
		if (res == -EINTR || res == -EAGAIN) {
			ret = sl_datafd_submit_read(ds->rd, sl_vfio_dev_data_fd(m->dev), idx, len, user,
						    false);
			if (ret == 0)
				inflight++;
			continue;
		}
		if (res <= 0) {
			ds->free_bufs[ds->nfree++] = idx;
			m->st.stopcopy_ns = sl_now_ns() - t0;
			ret = res < 0 ? sl_err(&ds->err, res, "%s: STOP_COPY read failed: %s",
					       name_of(m), strerror(-res))
				      : send_last(ds, m);
			continue;
		}
		/* Queue the next read first so the kernel fills the next buffer
		 * while this one is being sent; order holds (one read per device). */
		unsigned nidx;
		ret = take_buf(ds, &b, &nidx);
		if (ret == 0) {
			ret = sl_datafd_submit_read(ds->rd, sl_vfio_dev_data_fd(m->dev), nidx, len,
						    ((uint64_t)nidx << 32) | m->id, false);
			if (ret == 0)
				inflight++;
			else
				ds->free_bufs[ds->nfree++] = nidx;
		}
		if (ret == 0) {
			ret = sl_datafd_flush_submit(ds->rd);
		}
		if (ret == 0)
			ret = do_send(ds, m, 0, sl_datafd_buf(ds->rd, idx), (size_t)res);
		if (ret < 0) {
			ds->free_bufs[ds->nfree++] = idx;
			continue;
		}
		b.sent[b.nsent++] = idx;
		m->st.stopcopy_bytes += (uint64_t)res;
		total += res;
	}
	{
		int r2 = b.nsent || ret == 0 ? sink_flush(ds) : 0;
		for (unsigned i = 0; i < b.nsent; i++)
			ds->free_bufs[ds->nfree++] = b.sent[i];
		if (ret == 0)
			ret = r2;
	}
	free(b.sent);
	if (ret < 0 && inflight) {
		/* Reads still queued on the ring: drop the ring and its buffers
		 * (io_uring_queue_exit cancels them); the next call makes new ones. */
		sl_datafd_reader_free(&ds->rd);
		free(ds->free_bufs);
		ds->free_bufs = NULL;
		ds->nfree = 0;
	}
	return ret < 0 ? ret : total;
}

int sl_devset_complete(struct sl_devset *ds)
{
	if (!ds)
		return -EINVAL;
	for (unsigned i = 0; i < ds->n; i++) {
		struct member *m = &ds->m[i];
		int ret = sl_vfio_dev_set_state(m->dev, SL_VFIO_STOP);
		if (ret < 0)
			return fail_dev(ds, m, ret);
	}
	return 0;
}

/* ---- destination -------------------------------------------------------------- */

static void *loader_main(void *arg)
{
	struct member *m = arg;
	struct sl_devset *ds = m->ds;
	struct sl_vfio_backend *be = sl_vfio_dev_backend(m->dev);
	int fd = sl_vfio_dev_data_fd(m->dev);
	uint64_t waited = 0, expect = 0;
	sigset_t set;

	/* A device that dropped its RESUMING fd gives EPIPE, not a dead process. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	for (;;) {
		const void *buf;
		size_t len;
		uint32_t flags;
		int ret;

		if (atomic_load(&ds->cancel)) {
			m->loader_err = -ECANCELED;
			snprintf(m->loader_msg, sizeof(m->loader_msg), "%s: loader cancelled",
				 be->name);
			break;
		}
		ret = ds->src.next(ds->src.ctx, m->id, &buf, &len, &flags, 100);
		if (ret == -ETIMEDOUT) {
			waited += 100;
			if (waited >= (uint64_t)ds->cfg.loader_timeout_ms) {
				m->loader_err = -ETIMEDOUT;
				snprintf(m->loader_msg, sizeof(m->loader_msg),
					 "%s: no device packet %llu within %d ms", be->name,
					 (unsigned long long)expect, ds->cfg.loader_timeout_ms);
				break;
			}
			continue;
		}
		if (ret < 0) {
			m->loader_err = ret == -ENODATA ? -EPROTO : ret;
			snprintf(m->loader_msg, sizeof(m->loader_msg),
				 "%s: device stream ended before its last packet (%s)", be->name,
				 strerror(-ret));
			break;
		}
		waited = 0;
		expect++;
		if ((flags & SL_VFIO_PKT_CONFIG) && (flags & SL_VFIO_PKT_LAST)) {
			ret = ds->cfg.load_config
				      ? ds->cfg.load_config(ds->cfg.cb_ctx, m->id, buf, len) : 0;
			if (ret < 0)
				snprintf(m->loader_msg, sizeof(m->loader_msg),
					 "%s: loading config state failed: %s", be->name,
					 strerror(-ret));
		} else if (len) {
			ret = be->ops->write ? (int)be->ops->write(be, fd, buf, len)
					     : sl_datafd_write_all(fd, buf, len,
								   ds->cfg.loader_timeout_ms);
			if (ret > 0)
				ret = 0;
			if (ret < 0)
				snprintf(m->loader_msg, sizeof(m->loader_msg),
					 "%s: writing %zu bytes to the RESUMING fd failed: %s",
					 be->name, len, strerror(-ret));
			else
				m->st.loaded_bytes += len;
		}
		if (ds->src.release)
			ds->src.release(ds->src.ctx, m->id, buf);
		if (ret < 0) {
			m->loader_err = ret;
			break;
		}
		if (flags & SL_VFIO_PKT_INIT_DONE) {
			atomic_store(&m->init_loaded, true);
			if (ds->cfg.initial_loaded)
				ds->cfg.initial_loaded(ds->cfg.cb_ctx, m->id);
		}
		if (flags & SL_VFIO_PKT_LAST)
			break;
	}
	return NULL;
}

int sl_devset_resume_start(struct sl_devset *ds, const struct sl_devset_source *src)
{
	int ret;

	if (!ds || !src || !src->next)
		return -EINVAL;
	ds->src = *src;
	ret = phase(ds, pick_p2p, false);
	if (ret == 0)
		ret = phase(ds, pick_stop, false);
	if (ret == 0)
		ret = phase(ds, pick_resuming, false);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < ds->n; i++) {
		struct member *m = &ds->m[i];

		m->loader_err = 0;
		m->loader_msg[0] = 0;
		atomic_store(&m->init_loaded, false);
		memset(&m->st, 0, sizeof(m->st));
		if (pthread_create(&m->loader, NULL, loader_main, m) != 0) {
			sl_devset_abort_to_running(ds);
			return sl_err(&ds->err, -EAGAIN, "%s: cannot start its loader thread",
				      name_of(m));
		}
		m->loader_running = true;
	}
	return 0;
}

bool sl_devset_initial_loaded(const struct sl_devset *ds)
{
	if (!ds)
		return false;
	for (unsigned i = 0; i < ds->n; i++)
		if (has(&ds->m[i], SL_VFIO_CAP_PRE_COPY) && !atomic_load(&ds->m[i].init_loaded))
			return false;
	return true;
}

int sl_devset_resume_finish(struct sl_devset *ds)
{
	int first = 0;
	char msg[SL_ERRMSG_MAX] = "";

	if (!ds)
		return -EINVAL;
	for (unsigned i = 0; i < ds->n; i++) {
		struct member *m = &ds->m[i];

		if (m->loader_running) {
			pthread_join(m->loader, NULL);
			m->loader_running = false;
		}
		if (m->loader_err && !first) {
			first = m->loader_err;
			snprintf(msg, sizeof(msg), "%s", m->loader_msg);
		}
	}
	if (!first) {
		/* Leaving RESUMING is where the driver validates the state. */
		for (unsigned i = 0; i < ds->n; i++) {
			struct member *m = &ds->m[i];
			int ret = sl_vfio_dev_set_state(m->dev, SL_VFIO_STOP);

			m->st.result = ret;
			m->st.verified = ret == 0;
			if (ret < 0 && !first) {
				first = ret;
				snprintf(msg, sizeof(msg), "%s", sl_vfio_dev_last_error(m->dev));
			}
		}
	}
	if (first) {
		sl_devset_abort_to_running(ds);
		return sl_err(&ds->err, first, "%s", msg);
	}
	return 0;
}

int sl_devset_resume_run(struct sl_devset *ds)
{
	int ret;

	if (!ds)
		return -EINVAL;
	ret = phase(ds, pick_p2p_from_stop, true);
	if (ret == 0)
		ret = phase(ds, pick_running, true);
	return ret;
}
