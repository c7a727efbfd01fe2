/* SPDX-License-Identifier: MIT */
/*
 * vfio_devset_save.c — the device set's source side: PRE_COPY reads,
 * pending figures, the switchover phases and the STOP_COPY read to end of
 * stream. Buffers come from one sl_datafd pool (io_uring, registered); a
 * filled buffer goes to sink.send() as is and returns to the pool only
 * after sink.flush().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vfio_devset_internal.h"

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

static int do_send(struct sl_devset *ds, struct devset_member *m, uint32_t flags, const void *buf,
		   size_t len)
{
	int ret = ds->sink.send(ds->sink.ctx, m->id, m->next_index, flags, buf, len);

	if (ret < 0)
		return sl_err(&ds->err, ret, "%s: sending device packet %llu failed: %s",
			      devset_name(m), (unsigned long long)m->next_index, strerror(-ret));
	m->next_index++;
	m->st.packets++;
	return 0;
}

/* One synchronous read through the backend or the ring. */
static int read_one(struct sl_devset *ds, struct devset_member *m, unsigned idx, size_t len, bool nowait)
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

static void set_nonblock(struct devset_member *m, bool on)
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
	ret = devset_phase(ds, devset_pick_precopy, false);
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
		struct devset_member *m = &ds->m[i];
		struct sl_vfio_backend *be = sl_vfio_dev_backend(m->dev);
		enum sl_vfio_state s = sl_vfio_dev_state(m->dev);
		uint64_t ini = 0, dirty = 0, sc = 0;

		if (s == SL_VFIO_PRE_COPY || s == SL_VFIO_PRE_COPY_P2P) {
			int ret = be->ops->precopy_info(be, sl_vfio_dev_data_fd(m->dev), &ini, &dirty);
			if (ret < 0)
				return sl_err(&ds->err, ret, "%s: precopy info failed: %s",
					      devset_name(m), strerror(-ret));
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
		struct devset_member *m = &ds->m[i];
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
				ret = sl_err(&ds->err, res, "%s: PRE_COPY read failed: %s", devset_name(m),
					     strerror(-res));
				break;
			}
			if (!m->init_flagged) {
				ret = be->ops->precopy_info(be, sl_vfio_dev_data_fd(m->dev), &ini,
							    &dirty);
				if (ret < 0) {
					ds->free_bufs[ds->nfree++] = idx;
					sl_err(&ds->err, ret, "%s: precopy info failed: %s",
					       devset_name(m), strerror(-ret));
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
	ret = devset_phase(ds, devset_pick_p2p, false);
	if (ret < 0)
		return ret;
	ret = devset_phase(ds, devset_pick_stopcopy, false);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < ds->n; i++) {
		set_nonblock(&ds->m[i], false); /* STOP_COPY: wait for data, 0 = end */
		ds->m[i].eof = false;
	}
	return 0;
}

static int send_last(struct sl_devset *ds, struct devset_member *m)
{
	uint32_t flags = SL_VFIO_PKT_LAST;
	ssize_t clen = 0;

	if (ds->cfg.get_config) {
		if (!m->config && !(m->config = malloc(CONFIG_MAX)))
			return -ENOMEM;
		clen = ds->cfg.get_config(ds->cfg.cb_ctx, m->id, m->config, CONFIG_MAX);
		if (clen < 0)
			return sl_err(&ds->err, (int)clen, "%s: config state failed: %s",
				      devset_name(m), strerror((int)-clen));
		if (clen > (ssize_t)CONFIG_MAX)
			return sl_err(&ds->err, -EOVERFLOW, "%s: config state too large", devset_name(m));
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
				      devset_name(&ds->m[i]),
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
		struct devset_member *m = &ds->m[i];
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
						       devset_name(m), strerror(-res))
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
		struct devset_member *m = &ds->m[i];
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
		struct devset_member *m = &ds->m[(uint32_t)user];
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
					       devset_name(m), strerror(-res))
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
		struct devset_member *m = &ds->m[i];
		int ret = sl_vfio_dev_set_state(m->dev, SL_VFIO_STOP);
		if (ret < 0)
			return devset_fail_dev(ds, m, ret);
	}
	return 0;
}

/* ---- destination -------------------------------------------------------------- */
