/* SPDX-License-Identifier: MIT */
#include "sl_sys.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int real_open(void *ctx, const char *path, int flags, mode_t mode)
{
	(void)ctx;
	return open(path, flags, mode);
}

static int real_close(void *ctx, int fd)
{
	(void)ctx;
	return close(fd);
}

static int real_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	(void)ctx;
	return ioctl(fd, req, arg);
}

static void *real_mmap(void *ctx, void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	(void)ctx;
	return mmap(addr, len, prot, flags, fd, off);
}

static int real_munmap(void *ctx, void *addr, size_t len)
{
	(void)ctx;
	return munmap(addr, len);
}

static ssize_t real_read(void *ctx, int fd, void *buf, size_t len)
{
	(void)ctx;
	return read(fd, buf, len);
}

static ssize_t real_write(void *ctx, int fd, const void *buf, size_t len)
{
	(void)ctx;
	return write(fd, buf, len);
}

static long real_syscall6(void *ctx, long nr, long a, long b, long c, long d, long e, long f)
{
	(void)ctx;
	return syscall(nr, a, b, c, d, e, f);
}

static const struct sl_sys real_sys = {
	.ctx = NULL,
	.open = real_open,
	.close = real_close,
	.ioctl = real_ioctl,
	.mmap = real_mmap,
	.munmap = real_munmap,
	.read = real_read,
	.write = real_write,
	.syscall6 = real_syscall6,
};

const struct sl_sys *sl_sys_default(void)
{
	return &real_sys;
}

int sl_sys_ioctl(const struct sl_sys *sys, int fd, unsigned long req, void *arg)
{
	int ret = sys->ioctl(sys->ctx, fd, req, arg);

	return ret < 0 ? -errno : ret;
}

int sl_sys_open(const struct sl_sys *sys, const char *path, int flags)
{
	int ret = sys->open(sys->ctx, path, flags | O_CLOEXEC, 0);

	return ret < 0 ? -errno : ret;
}

void sl_sys_close(const struct sl_sys *sys, int *fd)
{
	if (fd && *fd >= 0) {
		sys->close(sys->ctx, *fd);
		*fd = -1;
	}
}
