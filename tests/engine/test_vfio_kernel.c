/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_kernel.c — the real VFIO backend (engine/vfio_kernel.c) through
 * the sl_sys seam against a fake kernel that follows the documented uAPI:
 * VFIO_DEVICE_FEATURE MIGRATION / MIG_DEVICE_STATE (combination transitions
 * walked by the "kernel", data fds opened by RUNNING->PRE_COPY,
 * STOP->STOP_COPY, STOP->RESUMING), MIG_DATA_SIZE, VFIO_MIG_GET_PRECOPY_INFO
 * on the data fd (EINVAL outside PRE_COPY), ENOMSG at the end of available
 * PRE_COPY data (or 0, as the mtty sample driver does), read() == 0 at the
 * end of STOP_COPY, validation when leaving RESUMING, failed arcs that
 * leave the device part-way or in ERROR, and VFIO_DEVICE_RESET.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "sl_kernel_compat.h"
#include "sl_vfio.h"
#include "test_vfio_wire.h"

#define DEV_FD 500
#define CONTAINER_FD 501
#define GROUP_FD 502
#define STREAM (300u << 10)
#define INITIAL (100u << 10)

struct fake {
	struct sl_sys sys;
	uint32_t caps;
	enum sl_vfio_state state;
	bool migration; /* the device supports migration */
	bool mtty;      /* PRE_COPY end of data: read() returns 0, not ENOMSG */
	enum sl_vfio_state fail_from, fail_to, fail_into;
	int data_fd;    /* the open session's fd (a real eventfd, never read) */
	bool resuming;
	uint8_t src[STREAM];
	size_t pos;
	uint8_t got[STREAM + 16];
	size_t got_len;
	unsigned resets, arcs, enomsg, zero_reads;
	bool group_viable, group_set, iommu_set;
	unsigned closes;
	char arc_log[512];
};

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

static void end_session(struct fake *f)
{
	f->data_fd = -1; /* the owner closes its fd; the kernel forgets it */
	f->resuming = false;
}

/* One driver arc. */
static int do_arc(struct fake *f, enum sl_vfio_state to)
{
	enum sl_vfio_state from = f->state;
	char a[48];

	snprintf(a, sizeof(a), "%s>%s ", sl_vfio_state_name(from), sl_vfio_state_name(to));
	strncat(f->arc_log, a, sizeof(f->arc_log) - strlen(f->arc_log) - 1);
	if (from == f->fail_from && to == f->fail_to && from != to) {
		f->state = f->fail_into;
		if (!sl_vfio_state_saving(f->state) && f->state != SL_VFIO_RESUMING)
			end_session(f);
		return -EIO;
	}
	f->arcs++;
	if ((from == SL_VFIO_RUNNING && to == SL_VFIO_PRE_COPY) ||
	    (from == SL_VFIO_RUNNING_P2P && to == SL_VFIO_PRE_COPY_P2P) ||
	    (from == SL_VFIO_STOP && to == SL_VFIO_STOP_COPY)) {
		f->data_fd = eventfd(0, EFD_CLOEXEC);
		f->pos = 0;
	} else if (from == SL_VFIO_STOP && to == SL_VFIO_RESUMING) {
		f->data_fd = eventfd(0, EFD_CLOEXEC);
		f->resuming = true;
		f->got_len = 0;
	} else if (from == SL_VFIO_RESUMING) {
		/* The driver validates what it was given. */
		if (f->got_len != STREAM || memcmp(f->got, f->src, STREAM)) {
			f->state = SL_VFIO_ERROR;
			end_session(f);
			return -EIO;
		}
		end_session(f);
	} else if (!sl_vfio_state_saving(to)) {
		end_session(f);
	}
	f->state = to;
	return 0;
}

static int fake_open(void *ctx, const char *path, int flags, mode_t mode)
{
	(void)ctx;
	(void)flags;
	(void)mode;
	if (!strcmp(path, "/dev/vfio/vfio"))
		return CONTAINER_FD;
	if (!strcmp(path, "/dev/vfio/7"))
		return GROUP_FD;
	errno = ENOENT;
	return -1;
}

static int fake_close(void *ctx, int fd)
{
	struct fake *f = ctx;

	if (fd == DEV_FD || fd == CONTAINER_FD || fd == GROUP_FD) {
		f->closes++;
		return 0;
	}
	return close(fd);
}

static int fake_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct fake *f = ctx;
	int ret = 0;

	if (fd == CONTAINER_FD && req == VFIO_GET_API_VERSION)
		return VFIO_API_VERSION;
	if (fd == GROUP_FD && req == VFIO_GROUP_GET_STATUS) {
		struct vfio_group_status *gs = arg;
		gs->flags = f->group_viable ? VFIO_GROUP_FLAGS_VIABLE : 0;
		return 0;
	}
	if (fd == GROUP_FD && req == VFIO_GROUP_SET_CONTAINER && *(int *)arg == CONTAINER_FD) {
		f->group_set = true;
		return 0;
	}
	if (fd == CONTAINER_FD && req == VFIO_SET_IOMMU && f->group_set &&
	    (uintptr_t)arg == VFIO_TYPE1v2_IOMMU) {
		f->iommu_set = true;
		return 0;
	}
	if (fd == GROUP_FD && req == VFIO_GROUP_GET_DEVICE_FD) {
		if (f->iommu_set && !strcmp(arg, "0000:3b:00.1"))
			return DEV_FD;
		errno = f->iommu_set ? ENODEV : EINVAL;
		return -1;
	}

	if (fd == DEV_FD && req == VFIO_DEVICE_RESET) {
		f->resets++;
		f->state = SL_VFIO_RUNNING;
		end_session(f);
		return 0;
	}
	if (fd == DEV_FD && req == VFIO_DEVICE_FEATURE) {
		struct vfio_device_feature *h = arg;
		uint32_t feat = h->flags & VFIO_DEVICE_FEATURE_MASK;
		bool get = h->flags & VFIO_DEVICE_FEATURE_GET, set = h->flags & VFIO_DEVICE_FEATURE_SET;

		if (!f->migration) {
			ret = -ENOTTY;
		} else if (feat == VFIO_DEVICE_FEATURE_MIGRATION && get &&
			   h->argsz >= sizeof(*h) + 8) {
			uint64_t fl = f->caps;
			memcpy(h->data, &fl, 8);
		} else if (feat == VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE &&
			   h->argsz >= sizeof(*h) + sizeof(struct vfio_device_feature_mig_state)) {
			struct vfio_device_feature_mig_state *ms = (void *)h->data;
			if (get) {
				ms->device_state = f->state;
				ms->data_fd = -1;
			} else if (set) {
				enum sl_vfio_state target = ms->device_state, n;
				int before = f->data_fd;
				/* The kernel core walks the arcs (vfio_mig_get_next_state). */
				while (ret == 0 && f->state != target) {
					ret = sl_vfio_next_state(f->state, target, f->caps, &n);
					if (ret == 0)
						ret = do_arc(f, n);
				}
				/* A fd is returned only by the call that opened it. */
				ms->data_fd = ret == 0 && f->data_fd != before ? f->data_fd : -1;
			}
		} else if (feat == VFIO_DEVICE_FEATURE_MIG_DATA_SIZE && get) {
			uint64_t left = STREAM - f->pos;
			memcpy(h->data, &left, 8);
		} else {
			ret = -ENOTTY;
		}
	} else if (fd == f->data_fd && fd >= 0 && req == VFIO_MIG_GET_PRECOPY_INFO) {
		struct vfio_precopy_info *pi = arg;
		if (f->state != SL_VFIO_PRE_COPY && f->state != SL_VFIO_PRE_COPY_P2P)
			ret = -EINVAL;
		else {
			pi->initial_bytes = f->pos >= INITIAL ? 0 : INITIAL - f->pos;
			pi->dirty_bytes = 0;
		}
	} else {
		ret = -ENOTTY;
	}
	if (ret < 0) {
		errno = -ret;
		return -1;
	}
	return 0;
}

static ssize_t fake_read(void *ctx, int fd, void *buf, size_t len)
{
	struct fake *f = ctx;
	size_t limit;

	if (fd != f->data_fd || fd < 0 || !sl_vfio_state_saving(f->state)) {
		errno = EINVAL;
		return -1;
	}
	limit = f->state == SL_VFIO_STOP_COPY ? STREAM : INITIAL;
	if (f->pos >= limit) {
		if (f->state == SL_VFIO_STOP_COPY)
			return 0;
		if (f->mtty) {
			f->zero_reads++;
			return 0;
		}
		f->enomsg++;
		errno = ENOMSG;
		return -1;
	}
	len = SL_MIN(len, limit - f->pos);
	len = SL_MIN(len, (size_t)40000); /* drivers hand out odd-sized pieces */
	memcpy(buf, f->src + f->pos, len);
	f->pos += len;
	return (ssize_t)len;
}

static ssize_t fake_write(void *ctx, int fd, const void *buf, size_t len)
{
	struct fake *f = ctx;

	if (fd != f->data_fd || !f->resuming) {
		errno = EINVAL;
		return -1;
	}
	if (f->got_len + len > sizeof(f->got)) {
		errno = ENOSPC;
		return -1;
	}
	memcpy(f->got + f->got_len, buf, len);
	f->got_len += len;
	return (ssize_t)len;
}

static void fake_init(struct fake *f, uint32_t caps, uint32_t seed)
{
	memset(f, 0, sizeof(*f));
	f->sys = *sl_sys_default();
	f->sys.ctx = f;
	f->sys.ioctl = fake_ioctl;
	f->sys.read = fake_read;
	f->sys.write = fake_write;
	f->sys.open = fake_open;
	f->sys.close = fake_close;
	f->caps = caps;
	f->migration = true;
	f->state = SL_VFIO_RUNNING;
	f->data_fd = -1;
	f->fail_from = f->fail_to = SL_VFIO_STOP;
	fill(f->src, STREAM, seed);
}

static struct sl_vfio_backend *open_fake(struct fake *f, const char *name)
{
	struct sl_vfio_kernel_config c = { .size = sizeof(c), .sys = &f->sys, .device_fd = DEV_FD,
					   .name = name };
	struct sl_vfio_backend *be = NULL;
	struct sl_errbuf eb;

	assert_int_equal(sl_vfio_kernel_new(&c, &be, &eb), 0);
	assert_int_equal(be->caps, f->caps);
	assert_true(be->combination);
	assert_int_equal(sl_vfio_kernel_device_fd(be), DEV_FD);
	return be;
}

static void test_probe(void **st)
{
	struct fake f;
	struct sl_vfio_kernel_config c = { .size = sizeof(c), .sys = &f.sys, .device_fd = DEV_FD };
	struct sl_vfio_backend *be = NULL;
	struct sl_errbuf eb;

	(void)st;
	fake_init(&f, SL_VFIO_CAP_MASK, 1);
	f.migration = false;
	assert_int_equal(sl_vfio_kernel_new(&c, &be, &eb), -EOPNOTSUPP);
	assert_non_null(strstr(eb.msg, "no migration support"));
	c.device_fd = -1;
	assert_int_equal(sl_vfio_kernel_new(&c, &be, &eb), -EINVAL);
	c.path = "/nonexistent/vfio/devices/vfio9";
	assert_int_equal(sl_vfio_kernel_new(&c, &be, &eb), -ENOENT);
	assert_null(be);
}

/* Whole migration: fake-kernel source -> wire -> fake-kernel destination. */
static void round_trip(bool mtty, uint32_t caps)
{
	static struct fake fs, fd;
	struct wire w;
	struct sl_devset *src = NULL, *dst = NULL;
	struct sl_devset_sink sink = { .send = wire_send, .flush = wire_flush, .ctx = &w };
	struct sl_devset_source so = { .next = wire_next, .release = wire_release, .ctx = &w };
	struct sl_devset_pending p;

	fake_init(&fs, caps, 7);
	fake_init(&fd, caps, 7);
	fs.mtty = mtty;
	wire_init(&w, 3);
	assert_int_equal(sl_devset_new(NULL, &src), 0);
	assert_int_equal(sl_devset_new(NULL, &dst), 0);
	assert_int_equal(sl_devset_add(src, open_fake(&fs, "gpu0")), 0);
	assert_int_equal(sl_devset_add(dst, open_fake(&fd, "gpu0")), 0);
	assert_int_equal(sl_devset_set_sink(src, &sink), 0);
	assert_int_equal(sl_devset_resume_start(dst, &so), 0);
	assert_int_equal(fd.state, SL_VFIO_RESUMING);

	if (caps & SL_VFIO_CAP_PRE_COPY) {
		assert_int_equal(sl_devset_precopy_start(src), 0);
		assert_int_equal(fs.state, SL_VFIO_PRE_COPY);
		assert_int_equal(sl_devset_pending(src, &p), 0);
		assert_int_equal(p.initial_bytes, INITIAL);
		assert_int_equal(p.stopcopy_bytes, STREAM);
		assert_int_equal(p.switchover_bytes, STREAM);
		assert_false(p.initial_done);
		assert_int_equal(sl_devset_precopy_read(src, 0), INITIAL);
		/* The end of available data was seen as ENOMSG, or as 0 (mtty). */
		if (mtty)
			assert_true(fs.zero_reads >= 1);
		else
			assert_true(fs.enomsg >= 1);
		assert_int_equal(fs.state, SL_VFIO_PRE_COPY); /* a 0 in PRE_COPY is not the end */
		assert_int_equal(sl_devset_pending(src, &p), 0);
		assert_int_equal(p.initial_bytes, 0);
		assert_true(p.initial_done);
		assert_int_equal(p.switchover_bytes, STREAM - INITIAL);
		assert_int_equal(sl_devset_precopy_read(src, 0), 0);
	}
	fs.arc_log[0] = 0;
	assert_int_equal(sl_devset_stop(src), 0);
	assert_int_equal(fs.state, SL_VFIO_STOP_COPY);
	if (caps == SL_VFIO_CAP_MASK)
		assert_string_equal(fs.arc_log, "PRE_COPY>PRE_COPY_P2P PRE_COPY_P2P>STOP_COPY ");
	else if (caps == SL_VFIO_CAP_STOP_COPY)
		assert_string_equal(fs.arc_log, "RUNNING>STOP STOP>STOP_COPY ");
	int64_t sc = sl_devset_stopcopy_read_all(src);
	assert_int_equal(sc, (caps & SL_VFIO_CAP_PRE_COPY) ? STREAM - INITIAL : STREAM);
	assert_int_equal(sl_devset_resume_finish(dst), 0);
	assert_int_equal(fd.state, SL_VFIO_STOP);
	assert_int_equal(fd.got_len, STREAM);
	assert_memory_equal(fd.got, fs.src, STREAM);
	assert_int_equal(sl_devset_resume_run(dst), 0);
	assert_int_equal(fd.state, SL_VFIO_RUNNING);
	assert_int_equal(sl_devset_complete(src), 0);
	assert_int_equal(fs.state, SL_VFIO_STOP);
	sl_devset_free(&src);
	sl_devset_free(&dst);
	wire_exit(&w);
}

static void test_round_trip_enomsg(void **st) { (void)st; round_trip(false, SL_VFIO_CAP_MASK); }
static void test_round_trip_mtty(void **st) { (void)st; round_trip(true, SL_VFIO_CAP_MASK); }
static void test_round_trip_minimal(void **st) { (void)st; round_trip(false, SL_VFIO_CAP_STOP_COPY); }

/* A combination transition fails part-way: the state is read back, the
 * failed arc is named, and the device is unwound. */
static void test_failed_arc_unwind(void **st)
{
	static struct fake f;
	struct sl_vfio_dev *d;

	(void)st;
	fake_init(&f, SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P, 2);
	f.fail_from = SL_VFIO_RUNNING_P2P;
	f.fail_to = SL_VFIO_STOP;
	f.fail_into = SL_VFIO_RUNNING_P2P;
	assert_int_equal(sl_vfio_dev_new(open_fake(&f, "nic0"), SL_VFIO_UNWIND, &d), 0);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_STOP_COPY), -EIO);
	assert_non_null(strstr(sl_vfio_dev_last_error(d), "arc RUNNING_P2P->STOP failed"));
	assert_non_null(strstr(sl_vfio_dev_last_error(d), "device was in RUNNING_P2P; unwound to RUNNING"));
	assert_int_equal(f.state, SL_VFIO_RUNNING);
	assert_int_equal(sl_vfio_dev_state(d), SL_VFIO_RUNNING);
	assert_string_equal(f.arc_log, "RUNNING>RUNNING_P2P RUNNING_P2P>STOP RUNNING_P2P>RUNNING ");
	assert_int_equal(f.resets, 0);
	sl_vfio_dev_free(&d);
}

/* The device falls into ERROR: the only way out is VFIO_DEVICE_RESET. */
static void test_failed_arc_error_reset(void **st)
{
	static struct fake f;
	struct sl_vfio_dev *d;

	(void)st;
	fake_init(&f, SL_VFIO_CAP_MASK, 2);
	f.fail_from = SL_VFIO_PRE_COPY_P2P;
	f.fail_to = SL_VFIO_STOP_COPY;
	f.fail_into = SL_VFIO_ERROR;
	assert_int_equal(sl_vfio_dev_new(open_fake(&f, "gpu1"), SL_VFIO_UNWIND, &d), 0);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_PRE_COPY), 0);
	assert_true(sl_vfio_dev_data_fd(d) >= 0);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_STOP_COPY), -EIO);
	/* The kernel's GET says ERROR: the failed arc is the one the table names
	 * from the last good state. */
	assert_non_null(strstr(sl_vfio_dev_last_error(d), "device was in ERROR; reset to RUNNING"));
	assert_int_equal(f.resets, 1);
	assert_int_equal(f.state, SL_VFIO_RUNNING);
	assert_int_equal(sl_vfio_dev_data_fd(d), -1);
	sl_vfio_dev_free(&d);
}

/* Policy RESET: no unwinding, straight to reset. */
static void test_policy_reset(void **st)
{
	static struct fake f;
	struct sl_vfio_dev *d;

	(void)st;
	fake_init(&f, SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P, 2);
	f.fail_from = SL_VFIO_STOP;
	f.fail_to = SL_VFIO_STOP_COPY;
	f.fail_into = SL_VFIO_STOP;
	assert_int_equal(sl_vfio_dev_new(open_fake(&f, "nic1"), SL_VFIO_RESET, &d), 0);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_STOP_COPY), -EIO);
	assert_non_null(strstr(sl_vfio_dev_last_error(d), "arc STOP->STOP_COPY failed"));
	assert_non_null(strstr(sl_vfio_dev_last_error(d), "reset to RUNNING"));
	assert_int_equal(f.resets, 1);
	assert_int_equal(f.state, SL_VFIO_RUNNING);
	sl_vfio_dev_free(&d);
}

/* Bad data: the destination driver refuses to leave RESUMING. */
static void test_resume_validation_fails(void **st)
{
	static struct fake f;
	struct sl_vfio_dev *d;
	struct sl_vfio_backend *be;

	(void)st;
	fake_init(&f, SL_VFIO_CAP_STOP_COPY, 4);
	be = open_fake(&f, "gpu2");
	assert_int_equal(sl_vfio_dev_new(be, SL_VFIO_UNWIND, &d), 0);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_RESUMING), 0);
	assert_int_equal(be->ops->write(be, sl_vfio_dev_data_fd(d), "short", 5), 5);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_STOP), -EIO);
	assert_non_null(strstr(sl_vfio_dev_last_error(d), "arc RESUMING->STOP failed"));
	assert_int_equal(f.resets, 1);
	assert_int_equal(sl_vfio_dev_state(d), SL_VFIO_RUNNING);
	/* Precopy info outside PRE_COPY is EINVAL, as the kernel says. */
	uint64_t a, b;
	assert_int_equal(be->ops->precopy_info(be, 12345, &a, &b), -ENOTTY);
	sl_vfio_dev_free(&d);
}

/* The group way: container, viable group, type1v2, device fd by name. */
static void test_group_path(void **st)
{
	static struct fake f;
	struct sl_vfio_kernel_config c = { .size = sizeof(c), .device_fd = -1,
					   .path = "/dev/vfio/7", .group_device = "0000:3b:00.1" };
	struct sl_vfio_backend *be = NULL;
	struct sl_errbuf eb;

	(void)st;
	fake_init(&f, SL_VFIO_CAP_MASK, 3);
	c.sys = &f.sys;
	/* Not viable: refused with the reason. */
	assert_int_equal(sl_vfio_kernel_new(&c, &be, &eb), -EPERM);
	assert_non_null(strstr(eb.msg, "not viable"));
	assert_int_equal(f.closes, 2); /* container and group closed again */
	f.group_viable = true;
	c.group_device = NULL;
	assert_int_equal(sl_vfio_kernel_new(&c, &be, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "name the device"));
	c.group_device = "0000:99:00.0";
	assert_int_equal(sl_vfio_kernel_new(&c, &be, &eb), -ENODEV);
	c.group_device = "0000:3b:00.1";
	f.closes = 0;
	assert_int_equal(sl_vfio_kernel_new(&c, &be, &eb), 0);
	assert_true(f.group_set && f.iommu_set);
	assert_int_equal(sl_vfio_kernel_device_fd(be), DEV_FD);
	assert_int_equal(be->caps, SL_VFIO_CAP_MASK);
	sl_vfio_backend_free(&be);
	assert_int_equal(f.closes, 3); /* device, group, container */
	/* The spec string form, against the real kernel: no such group here. */
	assert_true(sl_vfio_spec_new("vfio:/dev/vfio/424242,device=0000:3b:00.1", "g", &be, &eb) < 0);
	assert_int_equal(sl_vfio_spec_new("vfio:/dev/vfio/7,dev=x", "g", &be, &eb), -EINVAL);
	assert_null(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_round_trip_enomsg),
		cmocka_unit_test(test_round_trip_mtty),
		cmocka_unit_test(test_round_trip_minimal),
		cmocka_unit_test(test_failed_arc_unwind),
		cmocka_unit_test(test_failed_arc_error_reset),
		cmocka_unit_test(test_policy_reset),
		cmocka_unit_test(test_resume_validation_fails),
		cmocka_unit_test(test_group_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
