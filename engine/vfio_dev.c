/* SPDX-License-Identifier: MIT */
/*
 * vfio_dev.c — one device's state machine driver: walks arcs for backends
 * that take single arcs, lets the kernel walk combination transitions, and
 * recovers from a failed arc (read the state back, then unwind or reset).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sl_vfio.h"

struct sl_vfio_dev {
	struct sl_vfio_backend *be;
	enum sl_vfio_fail_policy policy;
	enum sl_vfio_state state;
	int data_fd;
	uint64_t arcs;
	struct sl_errbuf err;
};

void sl_vfio_backend_free(struct sl_vfio_backend **be)
{
	if (!be || !*be)
		return;
	(*be)->ops->destroy(*be);
	*be = NULL;
}

int sl_vfio_dev_new(struct sl_vfio_backend *be, enum sl_vfio_fail_policy policy,
		    struct sl_vfio_dev **out)
{
	struct sl_vfio_dev *d;
	enum sl_vfio_state s;
	int ret;

	if (!be || !out || !be->ops || !(be->caps & SL_VFIO_CAP_STOP_COPY) ||
	    (be->caps & ~SL_VFIO_CAP_MASK) || (policy != SL_VFIO_UNWIND && policy != SL_VFIO_RESET))
		return -EINVAL;
	ret = be->ops->get_state(be, &s);
	if (ret < 0)
		return ret;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->be = be;
	d->policy = policy;
	d->state = s;
	d->data_fd = -1;
	*out = d;
	return 0;
}

static void close_data_fd(struct sl_vfio_dev *d)
{
	if (d->data_fd >= 0)
		close(d->data_fd);
	d->data_fd = -1;
}

void sl_vfio_dev_free(struct sl_vfio_dev **d)
{
	if (!d || !*d)
		return;
	close_data_fd(*d);
	sl_vfio_backend_free(&(*d)->be);
	free(*d);
	*d = NULL;
}

/* A new state was reached: keep a freshly opened data fd, drop the old one
 * when the device left the states that own one. */
static void adopt(struct sl_vfio_dev *d, enum sl_vfio_state s, int fd)
{
	if (fd >= 0 && fd != d->data_fd) {
		close_data_fd(d);
		d->data_fd = fd;
	} else if (!sl_vfio_state_saving(s) && s != SL_VFIO_RESUMING) {
		close_data_fd(d);
	}
	d->state = s;
}

/* Moves without recovery; on failure arc_from and arc_to name the arc. */
static int walk(struct sl_vfio_dev *d, enum sl_vfio_state target, enum sl_vfio_state *arc_from,
		enum sl_vfio_state *arc_to)
{
	struct sl_vfio_backend *be = d->be;
	enum sl_vfio_state n;
	int fd, ret;

	if (be->combination) {
		ret = sl_vfio_next_state(d->state, target, be->caps, &n);
		*arc_from = d->state;
		*arc_to = ret == 0 ? n : target;
		if (ret < 0)
			return ret;
		fd = -1;
		ret = be->ops->set_state(be, target, &fd);
		if (ret < 0)
			return ret;
		adopt(d, target, fd);
		d->arcs++;
		return 0;
	}
	while (d->state != target) {
		*arc_from = d->state;
		*arc_to = target;
		ret = sl_vfio_next_state(d->state, target, be->caps, &n);
		if (ret < 0)
			return ret;
		*arc_to = n;
		fd = -1;
		ret = be->ops->set_state(be, n, &fd);
		if (ret < 0)
			return ret;
		adopt(d, n, fd);
		d->arcs++;
	}
	return 0;
}

static int do_reset(struct sl_vfio_dev *d)
{
	int ret = d->be->ops->reset(d->be);

	close_data_fd(d);
	if (ret == 0)
		d->state = SL_VFIO_RUNNING;
	else if (d->be->ops->get_state(d->be, &d->state) < 0)
		d->state = SL_VFIO_ERROR;
	return ret;
}

int sl_vfio_dev_reset(struct sl_vfio_dev *d)
{
	int ret;

	if (!d)
		return -EINVAL;
	ret = do_reset(d);
	if (ret < 0)
		return sl_err(&d->err, ret, "%s (%s): reset failed: %s", d->be->name,
			      d->be->ops->kind, strerror(-ret));
	return 0;
}

int sl_vfio_dev_set_state(struct sl_vfio_dev *d, enum sl_vfio_state target)
{
	enum sl_vfio_state orig, from = SL_VFIO_ERROR, to = SL_VFIO_ERROR, now, f2, t2;
	char recov[96];
	int ret, r2;

	if (!d)
		return -EINVAL;
	if (!sl_vfio_state_supported(target, d->be->caps))
		return sl_err(&d->err, -EINVAL, "%s (%s): state %s is not supported by the device",
			      d->be->name, d->be->ops->kind, sl_vfio_state_name(target));
	if (d->state == target)
		return 0;
	if (sl_vfio_next_state(d->state, target, d->be->caps, &now) < 0)
		return sl_err(&d->err, -EINVAL, "%s (%s): no path %s->%s", d->be->name,
			      d->be->ops->kind, sl_vfio_state_name(d->state),
			      sl_vfio_state_name(target));
	orig = d->state;
	d->be->err.msg[0] = 0;
	ret = walk(d, target, &from, &to);
	if (ret == 0)
		return 0;

	/* The device may be anywhere along the path: ask it. */
	if (d->be->ops->get_state(d->be, &now) < 0)
		now = SL_VFIO_ERROR;
	if (d->be->combination && now != SL_VFIO_ERROR) {
		/* The kernel stopped at `now`; its next arc is the one that failed. */
		from = now;
		if (sl_vfio_next_state(now, target, d->be->caps, &to) < 0)
			to = target;
	}
	adopt(d, now, -1);
	if (now == SL_VFIO_ERROR || d->state == SL_VFIO_ERROR)
		close_data_fd(d);

	if (d->policy == SL_VFIO_UNWIND && now != SL_VFIO_ERROR) {
		r2 = walk(d, orig, &f2, &t2);
		if (r2 == 0) {
			snprintf(recov, sizeof(recov), "unwound to %s", sl_vfio_state_name(orig));
		} else {
			r2 = do_reset(d);
			snprintf(recov, sizeof(recov), "unwind arc %s->%s failed, %s",
				 sl_vfio_state_name(f2), sl_vfio_state_name(t2),
				 r2 == 0 ? "reset to RUNNING" : "reset failed");
		}
	} else {
		r2 = do_reset(d);
		snprintf(recov, sizeof(recov), "%s", r2 == 0 ? "reset to RUNNING" : "reset failed");
	}
	return sl_err(&d->err, ret, "%s (%s): arc %s->%s failed: %s%s%s%s; device was in %s; %s",
		      d->be->name, d->be->ops->kind, sl_vfio_state_name(from),
		      sl_vfio_state_name(to), strerror(-ret), d->be->err.msg[0] ? " (" : "",
		      d->be->err.msg, d->be->err.msg[0] ? ")" : "", sl_vfio_state_name(now), recov);
}

enum sl_vfio_state sl_vfio_dev_state(const struct sl_vfio_dev *d)
{
	return d ? d->state : SL_VFIO_ERROR;
}

int sl_vfio_dev_data_fd(const struct sl_vfio_dev *d)
{
	return d ? d->data_fd : -1;
}

struct sl_vfio_backend *sl_vfio_dev_backend(struct sl_vfio_dev *d)
{
	return d ? d->be : NULL;
}

const char *sl_vfio_dev_last_error(const struct sl_vfio_dev *d)
{
	return d ? d->err.msg : "";
}

uint64_t sl_vfio_dev_arcs(const struct sl_vfio_dev *d)
{
	return d ? d->arcs : 0;
}
