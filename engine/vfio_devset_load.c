/* SPDX-License-Identifier: MIT */
/*
 * vfio_devset_load.c — the device set's destination side: every device to
 * RESUMING, one loader thread per device writing packets in index order
 * into its RESUMING fd, then leaving RESUMING (the driver's validation)
 * and resuming in reverse phase order.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "vfio_devset_internal.h"

static void *loader_main(void *arg)
{
	struct devset_member *m = arg;
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
			if (ds->cfg.loader_timeout_ms > 0 &&
			    waited >= (uint64_t)ds->cfg.loader_timeout_ms) {
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
								   ds->cfg.loader_timeout_ms > 0
									   ? ds->cfg.loader_timeout_ms
									   : -1);
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
	if (devset_loaders_running(ds))
		return sl_err(&ds->err, -EBUSY, "device state is already being loaded");
	ds->src = *src;
	ret = devset_phase(ds, devset_pick_p2p, false);
	if (ret == 0)
		ret = devset_phase(ds, devset_pick_stop, false);
	if (ret == 0)
		ret = devset_phase(ds, devset_pick_resuming, false);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < ds->n; i++) {
		struct devset_member *m = &ds->m[i];

		m->loader_err = 0;
		m->loader_msg[0] = 0;
		atomic_store(&m->init_loaded, false);
		memset(&m->st, 0, sizeof(m->st));
		if (pthread_create(&m->loader, NULL, loader_main, m) != 0) {
			sl_devset_abort_to_running(ds);
			return sl_err(&ds->err, -EAGAIN, "%s: cannot start its loader thread",
				      devset_name(m));
		}
		m->loader_running = true;
	}
	return 0;
}

int sl_devset_set_initial_loaded_cb(struct sl_devset *ds, void (*fn)(void *ctx, uint32_t dev),
				    void *ctx)
{
	if (!ds)
		return -EINVAL;
	if (devset_loaders_running(ds))
		return sl_err(&ds->err, -EBUSY, "device state is already being loaded");
	ds->cfg.initial_loaded = fn;
	ds->cfg.cb_ctx = ctx;
	return 0;
}

bool sl_devset_initial_loaded(const struct sl_devset *ds)
{
	if (!ds)
		return false;
	for (unsigned i = 0; i < ds->n; i++)
		if (devset_has(&ds->m[i], SL_VFIO_CAP_PRE_COPY) && !atomic_load(&ds->m[i].init_loaded))
			return false;
	return true;
}

int sl_devset_resume_finish(struct sl_devset *ds)
{
	int first = 0;
	char msg[SL_ERRMSG_MAX] = "";

	if (!ds)
		return -EINVAL;
	for (unsigned i = 0; i < ds->n; i++)
		if (sl_vfio_dev_state(ds->m[i].dev) != SL_VFIO_RESUMING && !ds->m[i].loader_running)
			return sl_err(&ds->err, -EINVAL, "%s: not RESUMING (%s): call resume_start first",
				      devset_name(&ds->m[i]),
				      sl_vfio_state_name(sl_vfio_dev_state(ds->m[i].dev)));
	for (unsigned i = 0; i < ds->n; i++) {
		struct devset_member *m = &ds->m[i];

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
			struct devset_member *m = &ds->m[i];
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
	ret = devset_phase(ds, devset_pick_p2p_from_stop, true);
	if (ret == 0)
		ret = devset_phase(ds, devset_pick_running, true);
	return ret;
}
