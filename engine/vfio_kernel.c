/* SPDX-License-Identifier: MIT */
/*
 * vfio_kernel.c — the real VFIO backend: a device fd (iommufd cdev or from a
 * group) driven with VFIO_DEVICE_FEATURE (MIGRATION, MIG_DEVICE_STATE,
 * MIG_DATA_SIZE), VFIO_MIG_GET_PRECOPY_INFO on the data fd and
 * VFIO_DEVICE_RESET. Every call goes through the sl_sys seam, so tests run
 * this file unchanged against a fake kernel. The kernel walks combination
 * transitions itself (combination = true).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_kernel_compat.h"
#include "sl_vfio.h"

struct vkern {
	struct sl_vfio_backend be;
	const struct sl_sys *sys;
	int fd;
	bool own_fd;
	int iommufd;
	int container, group; /* legacy group path: /dev/vfio/vfio and /dev/vfio/N */
};

static struct vkern *to_k(struct sl_vfio_backend *be)
{
	return (struct vkern *)be;
}

/* VFIO_DEVICE_FEATURE with `len` bytes of payload in/out. */
static int feature(struct vkern *k, uint32_t flags, void *data, size_t len)
{
	uint64_t buf[8]; /* header (8 B) + the largest payload used here */
	struct vfio_device_feature *f = (void *)buf;
	int ret;

	if (sizeof(*f) + len > sizeof(buf))
		return -EINVAL;
	memset(buf, 0, sizeof(buf));
	f->argsz = (uint32_t)(sizeof(*f) + len);
	f->flags = flags;
	memcpy(f->data, data, len);
	ret = sl_sys_ioctl(k->sys, k->fd, VFIO_DEVICE_FEATURE, f);
	if (ret >= 0)
		memcpy(data, f->data, len);
	return ret < 0 ? ret : 0;
}

static int k_set_state(struct sl_vfio_backend *be, enum sl_vfio_state s, int *data_fd)
{
	struct vfio_device_feature_mig_state st = { .device_state = (uint32_t)s, .data_fd = -1 };
	int ret;

	*data_fd = -1;
	ret = feature(to_k(be), VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
		      &st, sizeof(st));
	if (ret < 0)
		return sl_err(&be->err, ret, "%s: VFIO_DEVICE_FEATURE SET MIG_DEVICE_STATE %s: %s",
			      be->name, sl_vfio_state_name(s), strerror(-ret));
	*data_fd = st.data_fd; /* a new fd when the arc opened a data session */
	return 0;
}

static int k_get_state(struct sl_vfio_backend *be, enum sl_vfio_state *s)
{
	struct vfio_device_feature_mig_state st = { .data_fd = -1 };
	int ret = feature(to_k(be), VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
			  &st, sizeof(st));

	if (ret < 0)
		return ret;
	if (st.device_state >= SL_VFIO_NSTATES)
		return -EPROTO;
	*s = (enum sl_vfio_state)st.device_state;
	return 0;
}

static int k_reset(struct sl_vfio_backend *be)
{
	int ret = sl_sys_ioctl(to_k(be)->sys, to_k(be)->fd, VFIO_DEVICE_RESET, NULL);

	return ret < 0 ? ret : 0;
}

static int k_precopy_info(struct sl_vfio_backend *be, int data_fd, uint64_t *initial,
			  uint64_t *dirty)
{
	struct vfio_precopy_info info = { .argsz = sizeof(info) };
	int ret = sl_sys_ioctl(to_k(be)->sys, data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info);

	if (ret < 0)
		return ret;
	*initial = info.initial_bytes;
	*dirty = info.dirty_bytes;
	return 0;
}

static int k_data_size(struct sl_vfio_backend *be, uint64_t *len)
{
	struct vfio_device_feature_mig_data_size ds = { 0 };
	int ret = feature(to_k(be), VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &ds,
			  sizeof(ds));

	if (ret < 0)
		return ret;
	*len = ds.stop_copy_length;
	return 0;
}

static ssize_t k_read(struct sl_vfio_backend *be, int fd, void *buf, size_t len)
{
	const struct sl_sys *sys = to_k(be)->sys;
	ssize_t n = sys->read(sys->ctx, fd, buf, len);

	return n < 0 ? -errno : n;
}

static ssize_t k_write(struct sl_vfio_backend *be, int fd, const void *buf, size_t len)
{
	const struct sl_sys *sys = to_k(be)->sys;
	const uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = sys->write(sys->ctx, fd, p + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static void k_destroy(struct sl_vfio_backend *be)
{
	struct vkern *k = to_k(be);

	if (k->own_fd)
		sl_sys_close(k->sys, &k->fd);
	if (k->iommufd >= 0)
		sl_sys_close(k->sys, &k->iommufd);
	if (k->group >= 0)
		sl_sys_close(k->sys, &k->group);
	if (k->container >= 0)
		sl_sys_close(k->sys, &k->container);
	free(k);
}

/* Through a fake kernel the data fd is not a kernel object: read it through
 * the seam. With the real kernel it is: the device set reads it with io_uring. */
static const struct sl_vfio_backend_ops kernel_ops = {
	.kind = "vfio",
	.set_state = k_set_state,
	.get_state = k_get_state,
	.reset = k_reset,
	.precopy_info = k_precopy_info,
	.data_size = k_data_size,
	.read = NULL,
	.write = NULL,
	.destroy = k_destroy,
};

static const struct sl_vfio_backend_ops kernel_seam_ops = {
	.kind = "vfio",
	.set_state = k_set_state,
	.get_state = k_get_state,
	.reset = k_reset,
	.precopy_info = k_precopy_info,
	.data_size = k_data_size,
	.read = k_read,
	.write = k_write,
	.destroy = k_destroy,
};

/* /dev/vfio/N (a group), not a cdev under /dev/vfio/devices/ nor the container. */
static bool is_group_path(const char *p)
{
	return !strncmp(p, "/dev/vfio/", 10) && strncmp(p, "/dev/vfio/devices/", 18) != 0 &&
	       strcmp(p, "/dev/vfio/vfio") != 0;
}

/* The group way: container, group (must be viable), type1v2 IOMMU, then the
 * device fd by name. */
static int open_group(struct vkern *k, const struct sl_vfio_kernel_config *cfg,
		      struct sl_errbuf *eb)
{
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	int ret;

	if (!cfg->group_device || !cfg->group_device[0])
		return sl_err(eb, -EINVAL,
			      "vfio: %s is a group: name the device in it (e.g. 0000:3b:00.1)",
			      cfg->path);
	k->container = sl_sys_open(k->sys, "/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (k->container < 0)
		return sl_err(eb, k->container, "vfio: open /dev/vfio/vfio: %s",
			      strerror(-k->container));
	ret = sl_sys_ioctl(k->sys, k->container, VFIO_GET_API_VERSION, NULL);
	if (ret != VFIO_API_VERSION)
		return sl_err(eb, -EOPNOTSUPP, "vfio: unknown VFIO API version %d", ret);
	k->group = sl_sys_open(k->sys, cfg->path, O_RDWR | O_CLOEXEC);
	if (k->group < 0)
		return sl_err(eb, k->group, "vfio: open %s: %s", cfg->path, strerror(-k->group));
	ret = sl_sys_ioctl(k->sys, k->group, VFIO_GROUP_GET_STATUS, &gs);
	if (ret < 0)
		return sl_err(eb, ret, "vfio: %s: VFIO_GROUP_GET_STATUS: %s", cfg->path,
			      strerror(-ret));
	if (!(gs.flags & VFIO_GROUP_FLAGS_VIABLE))
		return sl_err(eb, -EPERM,
			      "vfio: group %s is not viable (bind every device in it to vfio-pci)",
			      cfg->path);
	ret = sl_sys_ioctl(k->sys, k->group, VFIO_GROUP_SET_CONTAINER, &k->container);
	if (ret == 0)
		ret = sl_sys_ioctl(k->sys, k->container, VFIO_SET_IOMMU,
				   (void *)(uintptr_t)VFIO_TYPE1v2_IOMMU);
	if (ret < 0)
		return sl_err(eb, ret, "vfio: %s: attaching the group to a type1v2 container: %s",
			      cfg->path, strerror(-ret));
	ret = sl_sys_ioctl(k->sys, k->group, VFIO_GROUP_GET_DEVICE_FD, (void *)cfg->group_device);
	if (ret < 0)
		return sl_err(eb, ret, "vfio: %s: VFIO_GROUP_GET_DEVICE_FD %s: %s", cfg->path,
			      cfg->group_device, strerror(-ret));
	k->fd = ret;
	k->own_fd = true;
	return 0;
}

int sl_vfio_kernel_new(const struct sl_vfio_kernel_config *cfg, struct sl_vfio_backend **out,
		       struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct vkern *k;
	uint64_t mflags = 0;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!cfg || !out || cfg->size < sizeof(*cfg) || (cfg->device_fd < 0 && !cfg->path))
		return sl_err(eb, -EINVAL, "vfio: need a device fd or a path");
	k = calloc(1, sizeof(*k));
	if (!k)
		return sl_err(eb, -ENOMEM, "vfio: out of memory");
	k->sys = cfg->sys ? cfg->sys : sl_sys_default();
	k->be.ops = k->sys == sl_sys_default() ? &kernel_ops : &kernel_seam_ops;
	k->be.combination = true;
	k->iommufd = -1;
	snprintf(k->be.name, sizeof(k->be.name), "%s",
		 cfg->name ? cfg->name : cfg->path ? cfg->path : "vfio");
	k->container = k->group = -1;
	if (cfg->device_fd >= 0) {
		k->fd = cfg->device_fd;
	} else if (cfg->group_device || is_group_path(cfg->path)) {
		ret = open_group(k, cfg, eb);
		if (ret < 0) {
			k_destroy(&k->be);
			return ret;
		}
	} else {
		k->fd = sl_sys_open(k->sys, cfg->path, O_RDWR | O_CLOEXEC);
		if (k->fd < 0) {
			ret = k->fd;
			free(k);
			return sl_err(eb, ret, "vfio: open %s: %s", cfg->path, strerror(-ret));
		}
		k->own_fd = true;
		/* A cdev must be bound to an iommufd before any other ioctl. */
		if (!strncmp(cfg->path, "/dev/vfio/devices/", 18)) {
			struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };

			k->iommufd = sl_sys_open(k->sys, "/dev/iommu", O_RDWR | O_CLOEXEC);
			if (k->iommufd < 0) {
				ret = k->iommufd;
				k_destroy(&k->be);
				return sl_err(eb, ret, "vfio: open /dev/iommu: %s", strerror(-ret));
			}
			bind.iommufd = k->iommufd;
			ret = sl_sys_ioctl(k->sys, k->fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
			if (ret < 0) {
				k_destroy(&k->be);
				return sl_err(eb, ret, "vfio: %s: VFIO_DEVICE_BIND_IOMMUFD: %s",
					      cfg->path, strerror(-ret));
			}
		}
	}
	ret = feature(k, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, &mflags,
		      sizeof(mflags));
	if (ret < 0 || !(mflags & VFIO_MIGRATION_STOP_COPY)) {
		k_destroy(&k->be);
		return sl_err(eb, -EOPNOTSUPP, "vfio: %s has no migration support (%s)",
			      cfg->name ? cfg->name : cfg->path ? cfg->path : "device",
			      ret < 0 ? strerror(-ret) : "no STOP_COPY");
	}
	k->be.caps = (uint32_t)(mflags & SL_VFIO_CAP_MASK);
	*out = &k->be;
	return 0;
}

int sl_vfio_kernel_device_fd(const struct sl_vfio_backend *be)
{
	if (!be || (be->ops != &kernel_ops && be->ops != &kernel_seam_ops))
		return -1;
	return ((const struct vkern *)be)->fd;
}

const struct sl_sys *sl_vfio_kernel_sys(const struct sl_vfio_backend *be)
{
	if (!be || (be->ops != &kernel_ops && be->ops != &kernel_seam_ops))
		return NULL;
	return ((const struct vkern *)be)->sys;
}
