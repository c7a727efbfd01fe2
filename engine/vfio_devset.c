/* SPDX-License-Identifier: MIT */
/*
 * vfio_devset.c — the devices of one migration, moved together: members,
 * the phase ordering (every device reaches a P2P state before any stops;
 * resume in reverse) and the way back to RUNNING after a failure. The
 * source data path is in vfio_devset_save.c, the destination loaders in
 * vfio_devset_load.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vfio_devset_internal.h"

bool devset_has(const struct devset_member *m, uint32_t cap)
{
	return (sl_vfio_dev_backend(m->dev)->caps & cap) == cap;
}

const char *devset_name(const struct devset_member *m)
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
	if (!ds->cfg.precopy_budget_ms)
		ds->cfg.precopy_budget_ms = 50;
	if (!ds->cfg.precopy_poll_ms)
		ds->cfg.precopy_poll_ms = 5;
	*out = ds;
	return 0;
}

void devset_stop_loaders(struct sl_devset *ds)
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
	devset_stop_loaders(ds);
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

bool devset_loaders_running(const struct sl_devset *ds)
{
	for (unsigned i = 0; i < ds->n; i++)
		if (ds->m[i].loader_running)
			return true;
	return false;
}

int sl_devset_add(struct sl_devset *ds, struct sl_vfio_backend *be)
{
	struct sl_vfio_dev *d;
	struct devset_member *m;
	int ret;

	if (!ds || !be) {
		sl_vfio_backend_free(&be);
		return -EINVAL;
	}
	if (devset_loaders_running(ds)) {
		sl_vfio_backend_free(&be);
		return sl_err(&ds->err, -EBUSY, "cannot add a device while loading device state");
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
int devset_fail_dev(struct sl_devset *ds, struct devset_member *m, int ret)
{
	return sl_err(&ds->err, ret, "%s", sl_vfio_dev_last_error(m->dev));
}

int sl_devset_abort_to_running(struct sl_devset *ds)
{
	int first = 0;

	if (!ds)
		return -EINVAL;
	devset_stop_loaders(ds);
	/* Reverse of the stop order: leave the stopped states, then P2P, then run. */
	for (unsigned k = ds->n; k-- > 0;) {
		struct devset_member *m = &ds->m[k];
		enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

		/* Aborting a resume needs a reset; so does ERROR. */
		if (s == SL_VFIO_RESUMING || s == SL_VFIO_ERROR)
			sl_vfio_dev_reset(m->dev);
		else if (s == SL_VFIO_STOP_COPY)
			sl_vfio_dev_set_state(m->dev, SL_VFIO_STOP);
	}
	for (unsigned k = ds->n; k-- > 0;) {
		struct devset_member *m = &ds->m[k];
		enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

		if (devset_has(m, SL_VFIO_CAP_P2P) && (s == SL_VFIO_STOP || s == SL_VFIO_PRE_COPY_P2P))
			sl_vfio_dev_set_state(m->dev, SL_VFIO_RUNNING_P2P);
	}
	for (unsigned k = ds->n; k-- > 0;) {
		struct devset_member *m = &ds->m[k];

		if (sl_vfio_dev_state(m->dev) != SL_VFIO_RUNNING &&
		    sl_vfio_dev_set_state(m->dev, SL_VFIO_RUNNING) < 0 &&
		    sl_vfio_dev_state(m->dev) != SL_VFIO_RUNNING)
			sl_vfio_dev_reset(m->dev);
		if (sl_vfio_dev_state(m->dev) != SL_VFIO_RUNNING && !first)
			first = sl_err(&ds->err, -EIO, "%s: could not be returned to RUNNING (%s)",
				       devset_name(m), sl_vfio_state_name(sl_vfio_dev_state(m->dev)));
		m->eof = false;
	}
	return first;
}

/* Moves every member to the state chosen by pick() (or leaves it when pick
 * returns its current state). On a failure, everything goes back to RUNNING
 * and the first error (naming the arc) is returned. */
int devset_phase(struct sl_devset *ds, enum sl_vfio_state (*pick)(struct devset_member *m), bool reverse)
{
	for (unsigned k = 0; k < ds->n; k++) {
		struct devset_member *m = &ds->m[reverse ? ds->n - 1 - k : k];
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

enum sl_vfio_state devset_pick_precopy(struct devset_member *m)
{
	enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

	return s == SL_VFIO_RUNNING && devset_has(m, SL_VFIO_CAP_PRE_COPY) ? SL_VFIO_PRE_COPY : s;
}

enum sl_vfio_state devset_pick_p2p(struct devset_member *m)
{
	enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

	if (!devset_has(m, SL_VFIO_CAP_P2P))
		return s;
	if (s == SL_VFIO_PRE_COPY)
		return SL_VFIO_PRE_COPY_P2P;
	if (s == SL_VFIO_RUNNING)
		return SL_VFIO_RUNNING_P2P;
	return s;
}

enum sl_vfio_state devset_pick_stopcopy(struct devset_member *m)
{
	(void)m;
	return SL_VFIO_STOP_COPY;
}

enum sl_vfio_state devset_pick_stop(struct devset_member *m)
{
	(void)m;
	return SL_VFIO_STOP;
}

enum sl_vfio_state devset_pick_resuming(struct devset_member *m)
{
	(void)m;
	return SL_VFIO_RESUMING;
}

enum sl_vfio_state devset_pick_p2p_from_stop(struct devset_member *m)
{
	enum sl_vfio_state s = sl_vfio_dev_state(m->dev);

	return s == SL_VFIO_STOP && devset_has(m, SL_VFIO_CAP_P2P) ? SL_VFIO_RUNNING_P2P : s;
}

enum sl_vfio_state devset_pick_running(struct devset_member *m)
{
	(void)m;
	return SL_VFIO_RUNNING;
}

/* ---- source ------------------------------------------------------------------- */
