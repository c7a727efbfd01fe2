/* SPDX-License-Identifier: MIT */
/*
 * vfio_legacy.c — adapts the SIMULATED v1 region device to the v2 backend
 * interface. v2 states map to v1 device_state bits (RUNNING=1, PRE_COPY =
 * RUNNING|SAVING, STOP_COPY = SAVING, STOP = 0, RESUMING = 4); the v2 data
 * stream is produced by QEMU 5.2's legacy save loop (read pending_bytes;
 * while > 0 read data_offset, read data_size, read that many bytes at
 * data_offset) and consumed by its load loop (write the bytes at
 * data_offset, then write data_size).
 *
 * The region has no fd of its own: the "data fd" handed out is an eventfd
 * that only names the session (so ownership and closing work as for v2);
 * the device set reads and writes it through ops->read / ops->write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sl_vfio.h"
#include "vfio_legacy_internal.h"

struct legacy {
	struct sl_vfio_backend be;
	struct legacy_region *r;
	enum sl_vfio_state state;
	enum sl_vfio_state fail_from, fail_to;
	uint64_t left, at;   /* staged bytes not yet handed out, and where */
};

static struct legacy *to_l(struct sl_vfio_backend *be)
{
	return (struct legacy *)be;
}

static uint32_t v1_bits(enum sl_vfio_state s)
{
	switch (s) {
	case SL_VFIO_RUNNING: return LEGACY_RUNNING;
	case SL_VFIO_PRE_COPY: return LEGACY_RUNNING | LEGACY_SAVING;
	case SL_VFIO_STOP_COPY: return LEGACY_SAVING;
	case SL_VFIO_RESUMING: return LEGACY_RESUMING;
	default: return 0;
	}
}

static int l_set_state(struct sl_vfio_backend *be, enum sl_vfio_state to, int *data_fd)
{
	struct legacy *l = to_l(be);
	enum sl_vfio_state from = l->state;
	uint32_t bits = v1_bits(to);
	bool opens;
	int ret;

	*data_fd = -1;
	if (!sl_vfio_arc_valid(from, to, be->caps))
		return sl_err(&be->err, -EINVAL, "%s: %s->%s is not a single arc", be->name,
			      sl_vfio_state_name(from), sl_vfio_state_name(to));
	if (l->fail_from != l->fail_to && from == l->fail_from && to == l->fail_to)
		return sl_err(&be->err, -EIO, "%s: injected failure on %s->%s", be->name,
			      sl_vfio_state_name(from), sl_vfio_state_name(to));
	opens = (from == SL_VFIO_RUNNING && to == SL_VFIO_PRE_COPY) ||
		(from == SL_VFIO_STOP && (to == SL_VFIO_STOP_COPY || to == SL_VFIO_RESUMING));
	if (opens) {
		/* Setting SAVING (or RESUMING) starts a new v1 session. */
		*data_fd = eventfd(0, EFD_CLOEXEC);
		if (*data_fd < 0)
			return sl_err(&be->err, -errno, "%s: eventfd: %s", be->name, strerror(errno));
	}
	ret = legacy_region_write(l->r, LEGACY_OFF_STATE, &bits, 4);
	if (ret < 0) {
		if (from == SL_VFIO_RESUMING)
			l->state = SL_VFIO_ERROR; /* v1 error state (SAVING|RESUMING) */
		if (*data_fd >= 0) {
			close(*data_fd);
			*data_fd = -1;
		}
		return sl_err(&be->err, ret, "%s: v1 device_state %u->%u failed: %s", be->name,
			      v1_bits(from), bits,
			      from == SL_VFIO_RESUMING ? "device rejected the state" : strerror(-ret));
	}
	if (opens)
		l->left = 0;
	l->state = to;
	return 0;
}

static int l_get_state(struct sl_vfio_backend *be, enum sl_vfio_state *s)
{
	*s = to_l(be)->state;
	return 0;
}

static int l_reset(struct sl_vfio_backend *be)
{
	legacy_region_reset(to_l(be)->r);
	to_l(be)->state = SL_VFIO_RUNNING;
	to_l(be)->left = 0;
	return 0;
}

static int l_precopy_info(struct sl_vfio_backend *be, int fd, uint64_t *initial, uint64_t *dirty)
{
	struct legacy *l = to_l(be);
	uint64_t pending;
	int ret;

	(void)fd;
	if (l->state != SL_VFIO_PRE_COPY)
		return -EINVAL;
	ret = legacy_region_read(l->r, LEGACY_OFF_PENDING, &pending, 8);
	if (ret < 0)
		return ret;
	*initial = pending + l->left; /* v1 had one figure: all of it is "initial" */
	*dirty = 0;
	return 0;
}

static int l_data_size(struct sl_vfio_backend *be, uint64_t *len)
{
	struct legacy *l = to_l(be);
	uint64_t pending = 0;

	if (sl_vfio_state_saving(l->state)) {
		int ret = legacy_region_read(l->r, LEGACY_OFF_PENDING, &pending, 8);
		if (ret < 0)
			return ret;
		*len = pending + l->left;
	} else {
		*len = 24 + legacy_region_size(l->r); /* upper bound: image <= state + 24 */
	}
	return 0;
}

static ssize_t l_read(struct sl_vfio_backend *be, int fd, void *buf, size_t len)
{
	struct legacy *l = to_l(be);
	uint64_t pending, off, size;
	int ret;

	(void)fd;
	if (!sl_vfio_state_saving(l->state))
		return -EINVAL;
	if (!l->left) {
		ret = legacy_region_read(l->r, LEGACY_OFF_PENDING, &pending, 8);
		if (ret < 0)
			return ret;
		if (!pending) /* v2: nothing now in PRE_COPY, the end in STOP_COPY */
			return l->state == SL_VFIO_STOP_COPY ? 0 : -ENOMSG;
		ret = legacy_region_read(l->r, LEGACY_OFF_DATA_OFFSET, &off, 8);
		if (ret == 0)
			ret = legacy_region_read(l->r, LEGACY_OFF_DATA_SIZE, &size, 8);
		if (ret < 0)
			return ret;
		l->at = off;
		l->left = size;
	}
	size_t n = (size_t)SL_MIN((uint64_t)len, l->left);
	ret = legacy_region_read(l->r, l->at, buf, n);
	if (ret < 0)
		return ret;
	l->at += n;
	l->left -= n;
	return (ssize_t)n;
}

static ssize_t l_write(struct sl_vfio_backend *be, int fd, const void *buf, size_t len)
{
	struct legacy *l = to_l(be);
	const uint8_t *p = buf;
	uint64_t room = legacy_region_size(l->r) - LEGACY_DATA_OFF, done = 0;

	(void)fd;
	if (l->state != SL_VFIO_RESUMING)
		return -EINVAL;
	while (done < len) {
		uint64_t n = SL_MIN(room, len - done);
		int ret = legacy_region_write(l->r, LEGACY_DATA_OFF, p + done, n);
		if (ret == 0)
			ret = legacy_region_write(l->r, LEGACY_OFF_DATA_SIZE, &n, 8);
		if (ret < 0)
			return ret;
		done += n;
	}
	return (ssize_t)done;
}

static void l_destroy(struct sl_vfio_backend *be)
{
	legacy_region_free(&to_l(be)->r);
	free(be);
}

static const struct sl_vfio_backend_ops legacy_ops = {
	.kind = "legacy-simulated",
	.set_state = l_set_state,
	.get_state = l_get_state,
	.reset = l_reset,
	.precopy_info = l_precopy_info,
	.data_size = l_data_size,
	.read = l_read,
	.write = l_write,
	.destroy = l_destroy,
};

int sl_vfio_legacy_new(const struct sl_legacy_config *cfg, struct sl_vfio_backend **out,
		       struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct legacy *l;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!cfg || !out || cfg->size < sizeof(*cfg) || !cfg->state_bytes ||
	    (cfg->region_data && cfg->region_data < 4096))
		return sl_err(eb, -EINVAL, "legacy device: need state > 0 and data area >= 4 KiB");
	l = calloc(1, sizeof(*l));
	if (!l)
		return sl_err(eb, -ENOMEM, "legacy device: out of memory");
	ret = legacy_region_new(cfg->state_bytes, cfg->region_data ? cfg->region_data : 256u << 10,
				cfg->seed, &l->r);
	if (ret < 0) {
		free(l);
		return sl_err(eb, ret, "legacy device: %s", strerror(-ret));
	}
	l->be.ops = &legacy_ops;
	l->be.caps = SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_PRE_COPY;
	l->be.combination = false;
	snprintf(l->be.name, sizeof(l->be.name), "%s", cfg->name ? cfg->name : "legacy");
	l->state = SL_VFIO_RUNNING;
	l->fail_from = cfg->fail_from;
	l->fail_to = cfg->fail_to;
	*out = &l->be;
	return 0;
}

uint64_t sl_vfio_legacy_state_hash(struct sl_vfio_backend *be)
{
	if (!be || be->ops != &legacy_ops)
		return 0;
	return legacy_region_hash(to_l(be)->r);
}
