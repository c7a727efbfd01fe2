/* SPDX-License-Identifier: MIT */
/*
 * sl_sys.h — the one seam between sluice and the kernel.
 *
 * Every module that issues ioctls or opens/maps kernel objects (KVM, VFIO,
 * iommufd, userfaultfd, pagemap) calls through a `const struct sl_sys *`
 * rather than libc directly. Production code passes sl_sys_default(); unit
 * tests pass a table whose entries implement a fake kernel that follows the
 * documented behaviour, so the real logic runs against it unchanged.
 *
 * All entries follow the libc contract of the call they stand for (return
 * -1 and set errno on failure); callers convert to negative errno.
 */
#ifndef SL_SYS_H
#define SL_SYS_H

#include <stddef.h>
#include <sys/types.h>

struct sl_sys {
	void *ctx; /* for fakes; NULL in the default table */
	int (*open)(void *ctx, const char *path, int flags, mode_t mode);
	int (*close)(void *ctx, int fd);
	int (*ioctl)(void *ctx, int fd, unsigned long req, void *arg);
	void *(*mmap)(void *ctx, void *addr, size_t len, int prot, int flags, int fd, off_t off);
	int (*munmap)(void *ctx, void *addr, size_t len);
	ssize_t (*read)(void *ctx, int fd, void *buf, size_t len);
	ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len);
	long (*syscall6)(void *ctx, long nr, long a, long b, long c, long d, long e, long f);
};

/* The real kernel. Never NULL; the table is static and read-only. */
const struct sl_sys *sl_sys_default(void);

/* Convenience wrappers that return negative errno instead of -1/errno. */
int sl_sys_ioctl(const struct sl_sys *sys, int fd, unsigned long req, void *arg);
int sl_sys_open(const struct sl_sys *sys, const char *path, int flags);
void sl_sys_close(const struct sl_sys *sys, int *fd);

#endif /* SL_SYS_H */
