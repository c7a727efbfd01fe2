/* SPDX-License-Identifier: MIT */
/*
 * test_devsim.c — the SIMULATED device through the device set, end to end in
 * one process: source devices -> sink (pointer-only until flush, shuffled
 * batches) -> destination loaders -> RESUMING fds -> validation. Checks the
 * restored state's hash equals the source's at switchover, with and
 * without PRE_COPY, one and several devices; failure injection on every arc
 * of the source and destination paths (devices end RUNNING, the error names
 * the arc); a corrupt and a short stream fail the leave-RESUMING step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sl_dirty.h"
#include "sl_vfio.h"
#include "test_vfio_wire.h"

#define ALL SL_VFIO_CAP_MASK
#define MiB (1ull << 20)

struct rig {
	struct wire w;
	struct sl_devset *src, *dst;
	unsigned n;
	uint64_t src_hash[WIRE_MAXDEV];
	char cfg_seen[WIRE_MAXDEV][32];
};

static ssize_t get_config(void *ctx, uint32_t dev, void *buf, size_t cap)
{
	(void)ctx;
	return snprintf(buf, cap, "config-of-%u", dev) + 1;
}

static int load_config(void *ctx, uint32_t dev, const void *buf, size_t len)
{
	struct rig *r = ctx;

	if (len > sizeof(r->cfg_seen[0]))
		return -EINVAL;
	memcpy(r->cfg_seen[dev], buf, len);
	return 0;
}

static struct sl_vfio_backend *mk(const char *name, uint32_t caps, uint64_t state, uint64_t pre,
				  uint64_t rate, uint64_t seed)
{
	struct sl_devsim_config c = {
		.size = sizeof(c), .name = name, .caps = caps, .state_bytes = state,
		.precopy_bytes = pre, .dirty_rate = rate, .chunk_bytes = 64 << 10, .seed = seed,
	};
	struct sl_vfio_backend *be = NULL;
	struct sl_errbuf eb;

	assert_int_equal(sl_devsim_new(&c, &be, &eb), 0);
	return be;
}

static void rig_init(struct rig *r, unsigned n, uint32_t caps, uint64_t state, uint64_t pre)
{
	struct sl_devset_config c = {
		.size = sizeof(c), .nbufs = 4, .get_config = get_config,
		.load_config = load_config, .cb_ctx = r, .loader_timeout_ms = 3000,
	};
	struct sl_devset_sink sink = { .send = wire_send, .flush = wire_flush, .ctx = &r->w };
	char name[16];

	memset(r, 0, sizeof(*r));
	wire_init(&r->w, 42 + n);
	r->n = n;
	c.cb_ctx = r;
	assert_int_equal(sl_devset_new(&c, &r->src), 0);
	assert_int_equal(sl_devset_new(&c, &r->dst), 0);
	assert_int_equal(sl_devset_set_sink(r->src, &sink), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "dev%u", i);
		assert_int_equal(sl_devset_add(r->src, mk(name, caps, state, pre, pre ? 8 * MiB : 0, i + 1)),
				 (int)i);
		assert_int_equal(sl_devset_add(r->dst, mk(name, caps, state, pre, 0, 100 + i)), (int)i);
	}
}

static void rig_exit(struct rig *r)
{
	sl_devset_free(&r->src);
	sl_devset_free(&r->dst);
	assert_null(r->src);
	wire_exit(&r->w);
}

static void all_in(struct sl_devset *ds, enum sl_vfio_state s)
{
	for (unsigned i = 0; i < sl_devset_count(ds); i++)
		assert_int_equal(sl_vfio_dev_state(sl_devset_dev(ds, i)), s);
}

static struct sl_devset_source wire_source(struct rig *r)
{
	return (struct sl_devset_source){ .next = wire_next, .release = wire_release, .ctx = &r->w };
}

/* Runs precopy until every PRE_COPY device reported initial_bytes == 0. */
static void run_precopy(struct rig *r)
{
	struct sl_devset_pending p;
	int rounds = 0;

	assert_int_equal(sl_devset_precopy_start(r->src), 0);
	do {
		assert_true(sl_devset_precopy_read(r->src, 0) >= 0);
		assert_int_equal(sl_devset_pending(r->src, &p), 0);
		if (!p.initial_done)
			usleep(1000);
	} while (!p.initial_done && ++rounds < 5000);
	assert_true(p.initial_done);
	assert_int_equal(p.initial_bytes, 0);
	/* The destination loads the initial data before switchover (ack). */
	for (int i = 0; i < 3000 && !sl_devset_initial_loaded(r->dst); i++)
		usleep(1000);
	assert_true(sl_devset_initial_loaded(r->dst));
}

static void round_trip(unsigned n, uint32_t caps, uint64_t state, uint64_t pre)
{
	struct rig r;
	struct sl_devset_source src;

	rig_init(&r, n, caps, state, pre);
	src = wire_source(&r);
	assert_int_equal(sl_devset_resume_start(r.dst, &src), 0);
	all_in(r.dst, SL_VFIO_RESUMING);
	if (caps & SL_VFIO_CAP_PRE_COPY) {
		run_precopy(&r);
		all_in(r.src, SL_VFIO_PRE_COPY);
	}
	assert_int_equal(sl_devset_stop(r.src), 0);
	all_in(r.src, SL_VFIO_STOP_COPY);
	for (unsigned i = 0; i < n; i++)
		r.src_hash[i] = sl_devsim_state_hash(sl_vfio_dev_backend(sl_devset_dev(r.src, i)));
	int64_t sc = sl_devset_stopcopy_read_all(r.src);
	assert_true(sc > 0);
	assert_int_equal(sl_devset_resume_finish(r.dst), 0);
	all_in(r.dst, SL_VFIO_STOP);
	for (unsigned i = 0; i < n; i++) {
		struct sl_devset_dev_stats ss, ds;
		assert_int_equal(sl_devset_stats(r.src, i, &ss), 0);
		assert_int_equal(sl_devset_stats(r.dst, i, &ds), 0);
		assert_true(ds.verified);
		assert_int_equal(ds.result, 0);
		assert_int_equal(ds.loaded_bytes, ss.precopy_bytes + ss.stopcopy_bytes);
		if (pre)
			assert_true(ss.precopy_bytes >= pre);
		else
			assert_int_equal(ss.precopy_bytes, 0);
		assert_true(ss.stopcopy_bytes > 0);
		assert_int_equal(sl_devsim_state_hash(sl_vfio_dev_backend(sl_devset_dev(r.dst, i))),
				 r.src_hash[i]);
		assert_int_equal(sl_devsim_loaded_hash(sl_vfio_dev_backend(sl_devset_dev(r.dst, i))),
				 r.src_hash[i]);
		char want[32];
		snprintf(want, sizeof(want), "config-of-%u", i);
		assert_string_equal(r.cfg_seen[i], want);
	}
	assert_int_equal(sl_devset_resume_run(r.dst), 0);
	all_in(r.dst, SL_VFIO_RUNNING);
	assert_int_equal(sl_devset_complete(r.src), 0);
	all_in(r.src, SL_VFIO_STOP);
	assert_true(r.w.flushes > 0);
	rig_exit(&r);
}

static void test_one_no_precopy(void **st)
{
	(void)st;
	round_trip(1, SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P, 4 * MiB, 0);
}

static void test_one_no_p2p_no_precopy(void **st)
{
	(void)st;
	round_trip(1, SL_VFIO_CAP_STOP_COPY, 3 * MiB + 1000, 0);
}

/* Source rewriting its state fast while precopy runs, destination device
 * running afterwards: the state loaded equals the state at STOP_COPY, and
 * the running destination moves on from there. */
static void test_busy_device(void **st)
{
	(void)st;
	for (int round = 0; round < 3; round++) {
		struct rig r;
		struct sl_devset_source src;

		rig_init(&r, 1, ALL, 4 * MiB, 3 * MiB);
		sl_devset_free(&r.dst);
		struct sl_devset_config c = { .size = sizeof(c), .loader_timeout_ms = 3000 };
		assert_int_equal(sl_devset_new(&c, &r.dst), 0);
		assert_int_equal(sl_devset_add(r.dst, mk("dev0", ALL, 4 * MiB, 3 * MiB, 64 * MiB, 7)), 0);
		src = wire_source(&r);
		assert_int_equal(sl_devset_resume_start(r.dst, &src), 0);
		run_precopy(&r);
		for (int i = 0; i < 20; i++) { /* let the device dirty some more */
			usleep(1000);
			assert_true(sl_devset_precopy_read(r.src, 0) >= 0);
		}
		assert_int_equal(sl_devset_stop(r.src), 0);
		uint64_t h = sl_devsim_state_hash(sl_vfio_dev_backend(sl_devset_dev(r.src, 0)));
		assert_true(sl_devset_stopcopy_read_all(r.src) > 0);
		assert_int_equal(sl_devset_resume_finish(r.dst), 0);
		struct sl_vfio_backend *d = sl_vfio_dev_backend(sl_devset_dev(r.dst, 0));
		assert_int_equal(sl_devsim_loaded_hash(d), h);
		assert_int_equal(sl_devset_resume_run(r.dst), 0);
		usleep(5000);
		struct sl_devset_pending p;
		assert_int_equal(sl_devset_pending(r.dst, &p), 0); /* the device's clock runs */
		assert_int_equal(sl_devsim_loaded_hash(d), h);
		assert_true(sl_devsim_state_hash(d) != h);
		rig_exit(&r);
	}
}

static void test_one_precopy(void **st)
{
	(void)st;
	round_trip(1, ALL, 4 * MiB, 3 * MiB);
}

static void test_three_precopy(void **st)
{
	(void)st;
	round_trip(3, ALL, 2 * MiB, 1 * MiB + 4096);
}

static void test_three_precopy_no_p2p(void **st)
{
	(void)st;
	round_trip(3, SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_PRE_COPY, 2 * MiB, 2 * MiB);
}

/* ---- failure injection ------------------------------------------------------- */

struct arc { enum sl_vfio_state from, to; };

static void expect_arc_error(const char *msg, struct arc a)
{
	char want[64];

	snprintf(want, sizeof(want), "arc %s->%s failed", sl_vfio_state_name(a.from),
		 sl_vfio_state_name(a.to));
	if (!strstr(msg, want))
		fail_msg("error '%s' does not name '%s'", msg, want);
	assert_non_null(strstr(msg, "dev1"));
}

/* Source path: the arc fails on dev1 of 2; every device ends RUNNING. */
static void source_fail(uint32_t caps, struct arc a, bool to_error)
{
	struct rig r;
	int ret;

	rig_init(&r, 2, caps, 1 * MiB, (caps & SL_VFIO_CAP_PRE_COPY) ? 512 << 10 : 0);
	sl_devsim_inject(sl_vfio_dev_backend(sl_devset_dev(r.src, 1)), a.from, a.to, to_error);
	ret = sl_devset_precopy_start(r.src);
	if (ret == 0) {
		if (caps & SL_VFIO_CAP_PRE_COPY)
			assert_true(sl_devset_precopy_read(r.src, 0) >= 0);
		ret = sl_devset_stop(r.src);
	}
	assert_int_equal(ret, -EIO);
	expect_arc_error(sl_devset_last_error(r.src), a);
	all_in(r.src, SL_VFIO_RUNNING);
	/* The device works again afterwards: a clean migration can follow. */
	sl_devsim_inject(sl_vfio_dev_backend(sl_devset_dev(r.src, 1)), SL_VFIO_STOP, SL_VFIO_STOP,
			 false);
	assert_int_equal(sl_devset_stop(r.src), 0);
	assert_true(sl_devset_stopcopy_read_all(r.src) > 0);
	assert_int_equal(sl_devset_abort_to_running(r.src), 0);
	all_in(r.src, SL_VFIO_RUNNING);
	rig_exit(&r);
}

static void test_source_arcs(void **st)
{
	const struct arc full[] = {
		{ SL_VFIO_RUNNING, SL_VFIO_PRE_COPY },
		{ SL_VFIO_PRE_COPY, SL_VFIO_PRE_COPY_P2P },
		{ SL_VFIO_PRE_COPY_P2P, SL_VFIO_STOP_COPY },
	};
	const struct arc p2p[] = {
		{ SL_VFIO_RUNNING, SL_VFIO_RUNNING_P2P },
		{ SL_VFIO_RUNNING_P2P, SL_VFIO_STOP },
		{ SL_VFIO_STOP, SL_VFIO_STOP_COPY },
	};
	const struct arc plain[] = {
		{ SL_VFIO_RUNNING, SL_VFIO_STOP },
		{ SL_VFIO_STOP, SL_VFIO_STOP_COPY },
	};
	const struct arc pre_only[] = {
		{ SL_VFIO_RUNNING, SL_VFIO_PRE_COPY },
		{ SL_VFIO_PRE_COPY, SL_VFIO_STOP_COPY },
	};

	(void)st;
	for (size_t i = 0; i < SL_ARRAY_SIZE(full); i++) {
		source_fail(ALL, full[i], false);
		source_fail(ALL, full[i], true); /* the device falls into ERROR: reset */
	}
	for (size_t i = 0; i < SL_ARRAY_SIZE(p2p); i++)
		source_fail(SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P, p2p[i], false);
	for (size_t i = 0; i < SL_ARRAY_SIZE(plain); i++)
		source_fail(SL_VFIO_CAP_STOP_COPY, plain[i], false);
	for (size_t i = 0; i < SL_ARRAY_SIZE(pre_only); i++)
		source_fail(SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_PRE_COPY, pre_only[i], true);
}

/* Destination path: resume_start / resume_finish / resume_run. */
static void dest_fail(uint32_t caps, struct arc a)
{
	struct rig r;
	struct sl_devset_source src;
	int ret;

	rig_init(&r, 2, caps, 1 * MiB, 0);
	src = wire_source(&r);
	sl_devsim_inject(sl_vfio_dev_backend(sl_devset_dev(r.dst, 1)), a.from, a.to, false);
	ret = sl_devset_resume_start(r.dst, &src);
	if (ret == 0) {
		assert_int_equal(sl_devset_stop(r.src), 0);
		assert_true(sl_devset_stopcopy_read_all(r.src) > 0);
		ret = sl_devset_resume_finish(r.dst);
		if (ret == 0)
			ret = sl_devset_resume_run(r.dst);
	}
	assert_int_equal(ret, -EIO);
	expect_arc_error(sl_devset_last_error(r.dst), a);
	all_in(r.dst, SL_VFIO_RUNNING);
	rig_exit(&r);
}

static void test_dest_arcs(void **st)
{
	const struct arc p2p[] = {
		{ SL_VFIO_RUNNING, SL_VFIO_RUNNING_P2P }, { SL_VFIO_RUNNING_P2P, SL_VFIO_STOP },
		{ SL_VFIO_STOP, SL_VFIO_RESUMING },      { SL_VFIO_RESUMING, SL_VFIO_STOP },
		{ SL_VFIO_STOP, SL_VFIO_RUNNING_P2P },   { SL_VFIO_RUNNING_P2P, SL_VFIO_RUNNING },
	};
	const struct arc plain[] = {
		{ SL_VFIO_RUNNING, SL_VFIO_STOP }, { SL_VFIO_STOP, SL_VFIO_RESUMING },
		{ SL_VFIO_RESUMING, SL_VFIO_STOP }, { SL_VFIO_STOP, SL_VFIO_RUNNING },
	};

	(void)st;
	for (size_t i = 0; i < SL_ARRAY_SIZE(p2p); i++)
		dest_fail(SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P, p2p[i]);
	for (size_t i = 0; i < SL_ARRAY_SIZE(plain); i++)
		dest_fail(SL_VFIO_CAP_STOP_COPY, plain[i]);
}

/* A corrupted stream: the destination device rejects it when leaving RESUMING. */
static void test_corrupt_stream(void **st)
{
	struct rig r;
	struct sl_devset_source src;
	struct sl_devsim_config c = { .size = sizeof(c), .name = "dev1", .state_bytes = 1 * MiB,
				      .seed = 9, .corrupt_stream = true };
	struct sl_vfio_backend *be = NULL;
	struct sl_devset_dev_stats s;

	(void)st;
	rig_init(&r, 1, ALL, 1 * MiB, 0);
	assert_int_equal(sl_devsim_new(&c, &be, NULL), 0);
	assert_int_equal(sl_devset_add(r.src, be), 1);
	assert_int_equal(sl_devset_add(r.dst, mk("dev1", ALL, 1 * MiB, 0, 0, 77)), 1);
	src = wire_source(&r);
	assert_int_equal(sl_devset_resume_start(r.dst, &src), 0);
	assert_int_equal(sl_devset_stop(r.src), 0);
	assert_true(sl_devset_stopcopy_read_all(r.src) > 0);
	assert_int_equal(sl_devset_resume_finish(r.dst), -EIO);
	expect_arc_error(sl_devset_last_error(r.dst), (struct arc){ SL_VFIO_RESUMING, SL_VFIO_STOP });
	assert_non_null(strstr(sl_devset_last_error(r.dst), "checksum"));
	assert_int_equal(sl_devset_stats(r.dst, 1, &s), 0);
	assert_false(s.verified);
	assert_int_equal(s.result, -EIO);
	assert_int_equal(sl_devset_stats(r.dst, 0, &s), 0);
	assert_true(s.verified); /* the good device validated */
	all_in(r.dst, SL_VFIO_RUNNING);
	rig_exit(&r);
}

/* A packet never arrives: the loader times out naming the missing index. */
static void test_short_stream(void **st)
{
	struct rig r;
	struct sl_devset_source src;

	(void)st;
	rig_init(&r, 1, ALL, 1 * MiB, 0);
	r.w.drop_idx = 2;
	sl_devset_free(&r.dst);
	struct sl_devset_config c = { .size = sizeof(c), .loader_timeout_ms = 300 };
	assert_int_equal(sl_devset_new(&c, &r.dst), 0);
	assert_int_equal(sl_devset_add(r.dst, mk("dev0", ALL, 1 * MiB, 0, 0, 5)), 0);
	src = wire_source(&r);
	assert_int_equal(sl_devset_resume_start(r.dst, &src), 0);
	assert_int_equal(sl_devset_stop(r.src), 0);
	assert_true(sl_devset_stopcopy_read_all(r.src) > 0);
	assert_int_equal(sl_devset_resume_finish(r.dst), -ETIMEDOUT);
	assert_non_null(strstr(sl_devset_last_error(r.dst), "no device packet 2"));
	all_in(r.dst, SL_VFIO_RUNNING);
	rig_exit(&r);
}

/* The transport fails mid-STOP_COPY: the engine aborts, devices run again. */
static void test_send_failure(void **st)
{
	struct rig r;

	(void)st;
	rig_init(&r, 2, ALL, 2 * MiB, 0);
	r.w.fail_send_after = 5;
	assert_int_equal(sl_devset_stop(r.src), 0);
	assert_int_equal(sl_devset_stopcopy_read_all(r.src), -ECONNRESET);
	assert_non_null(strstr(sl_devset_last_error(r.src), "sending device packet"));
	assert_int_equal(sl_devset_abort_to_running(r.src), 0);
	all_in(r.src, SL_VFIO_RUNNING);
	rig_exit(&r);
}

/* Unwind policy on a single device: a failed arc goes back where it was. */
static void test_dev_unwind_and_reset(void **st)
{
	struct sl_vfio_dev *d;
	struct sl_vfio_backend *be = mk("solo", ALL, 1 * MiB, 0, 0, 3);

	(void)st;
	assert_int_equal(sl_vfio_dev_new(be, SL_VFIO_UNWIND, &d), 0);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_STOP), 0);
	assert_int_equal(sl_vfio_dev_state(d), SL_VFIO_STOP);
	assert_int_equal(sl_vfio_dev_arcs(d), 2); /* RUNNING -> RUNNING_P2P -> STOP */
	sl_devsim_inject(be, SL_VFIO_STOP, SL_VFIO_STOP_COPY, false);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_STOP_COPY), -EIO);
	assert_int_equal(sl_vfio_dev_state(d), SL_VFIO_STOP);
	assert_non_null(strstr(sl_vfio_dev_last_error(d), "arc STOP->STOP_COPY failed"));
	assert_non_null(strstr(sl_vfio_dev_last_error(d), "unwound to STOP"));
	/* Failing into ERROR: only a reset helps. */
	sl_devsim_inject(be, SL_VFIO_STOP, SL_VFIO_RESUMING, true);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_RESUMING), -EIO);
	assert_int_equal(sl_vfio_dev_state(d), SL_VFIO_RUNNING);
	assert_non_null(strstr(sl_vfio_dev_last_error(d), "device was in ERROR; reset to RUNNING"));
	assert_int_equal(sl_vfio_dev_data_fd(d), -1);
	/* STOP_COPY -> PRE_COPY has no path. */
	sl_devsim_inject(be, SL_VFIO_STOP, SL_VFIO_STOP, false);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_STOP_COPY), 0);
	assert_true(sl_vfio_dev_data_fd(d) >= 0);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_PRE_COPY), -EINVAL);
	assert_int_equal(sl_vfio_dev_set_state(d, SL_VFIO_ERROR), -EINVAL);
	sl_vfio_dev_free(&d);
	assert_null(d);
}

/* Freeing mid-stream: the device still writes into a closed pipe (EPIPE,
 * no SIGPIPE), the loaders waiting for packets are cancelled. */
static void test_free_mid_stream(void **st)
{
	struct rig r;
	struct sl_devset_source src;

	(void)st;
	rig_init(&r, 2, ALL, 8 * MiB, 0);
	src = wire_source(&r);
	assert_int_equal(sl_devset_resume_start(r.dst, &src), 0);
	assert_int_equal(sl_devset_stop(r.src), 0);
	usleep(20000); /* the devices fill their pipes and block */
	rig_exit(&r);
}

/* DMA writes into guest RAM are reported by the DMA log (read-and-clear). */
static void test_dma_log(void **st)
{
	static uint8_t ram[256 << 10] __attribute__((aligned(4096)));
	uint64_t bits[1] = { 0 }, again[1] = { 0 };
	struct sl_devsim_config c = { .size = sizeof(c), .state_bytes = 64 << 10,
				      .guest_ram = ram, .guest_bytes = sizeof(ram),
				      .dma_rate = 400 << 20 };
	struct sl_vfio_backend *be = NULL;
	uint8_t before[sizeof(ram)];

	(void)st;
	assert_int_equal(sl_devsim_new(&c, &be, NULL), 0);
	assert_int_equal(sl_devsim_dma_log_start(be, 4096), 0);
	memcpy(before, ram, sizeof(ram));
	usleep(20000);
	assert_int_equal(sl_devsim_dma_log_report(be, 0, sizeof(ram), bits), 0);
	assert_true(bits[0] != 0);
	/* Every page that changed is reported. */
	for (unsigned p = 0; p < sizeof(ram) / 4096; p++)
		if (memcmp(before + p * 4096, ram + p * 4096, 4096))
			assert_true(bits[0] & (1ull << p));
	assert_int_equal(sl_devsim_dma_log_stop(be), 0);
	assert_int_equal(sl_devsim_dma_log_report(be, 0, sizeof(ram), again), -EINVAL);
	assert_int_equal(sl_devsim_dma_log_start(be, 3000), -EINVAL);
	sl_vfio_backend_free(&be);
}

/* The sources module's VFIO DMA-log source runs unchanged on the simulated
 * device through its sl_sys view (feature ioctls on SL_DEVSIM_DMA_FD). */
static void test_dma_log_as_dirty_source(void **st)
{
	static uint8_t ram[512 << 10] __attribute__((aligned(4096)));
	const uint64_t npages = sizeof(ram) / 4096;
	uint64_t bitmap[2] = { 0, 0 };
	struct sl_devsim_config c = { .size = sizeof(c), .state_bytes = 64 << 10,
				      .guest_ram = ram, .guest_bytes = sizeof(ram),
				      .dma_rate = 200 << 20 };
	struct sl_vfio_backend *be = NULL;
	struct sl_dirty_source *src = NULL;
	struct sl_errbuf eb;
	static uint8_t before[sizeof(ram)];

	(void)st;
	assert_int_equal(sl_devsim_new(&c, &be, NULL), 0);
	assert_int_equal(sl_vfio_dma_log_new(be, 0, npages, 4096, &src, &eb), 0);
	assert_string_equal(sl_dirty_name(src), "vfio-dma-log");
	assert_int_equal(sl_dirty_start(src), 0);
	memcpy(before, ram, sizeof(ram));
	usleep(20000);
	int64_t n = sl_dirty_sync(src, bitmap);
	assert_true(n > 0);
	uint64_t changed = 0;
	for (unsigned p = 0; p < npages; p++) {
		if (memcmp(before + p * 4096, ram + p * 4096, 4096)) {
			changed++;
			assert_true(bitmap[p / 64] & (1ull << (p % 64)));
		}
	}
	assert_true(changed > 0);
	assert_int_equal(sl_dirty_stop(src), 0);
	sl_dirty_free(&src);
	sl_vfio_backend_free(&be);
}

static void test_bad_config(void **st)
{
	struct sl_devsim_config c = { .size = sizeof(c) };
	struct sl_vfio_backend *be = NULL;
	struct sl_errbuf eb;

	(void)st;
	assert_int_equal(sl_devsim_new(&c, &be, &eb), -EINVAL);
	c.state_bytes = 4096;
	c.precopy_bytes = 8192;
	assert_int_equal(sl_devsim_new(&c, &be, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "precopy"));
	assert_null(be);
	assert_int_equal(sl_devset_add(NULL, NULL), -EINVAL);

	/* Calls out of order are refused, not crashes. */
	struct rig r;
	rig_init(&r, 1, ALL, 1 << 20, 0);
	assert_int_equal(sl_devset_resume_finish(r.dst), -EINVAL);
	assert_non_null(strstr(sl_devset_last_error(r.dst), "not RESUMING"));
	assert_int_equal(sl_devset_stopcopy_read_all(r.src), -EINVAL);
	struct sl_devset_source src = wire_source(&r);
	assert_int_equal(sl_devset_resume_start(r.dst, &src), 0);
	assert_int_equal(sl_devset_resume_start(r.dst, &src), -EBUSY);
	assert_int_equal(sl_devset_add(r.dst, mk("late", ALL, 1 << 20, 0, 0, 1)), -EBUSY);
	rig_exit(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_no_precopy),
		cmocka_unit_test(test_one_no_p2p_no_precopy),
		cmocka_unit_test(test_one_precopy),
		cmocka_unit_test(test_busy_device),
		cmocka_unit_test(test_three_precopy),
		cmocka_unit_test(test_three_precopy_no_p2p),
		cmocka_unit_test(test_source_arcs),
		cmocka_unit_test(test_dest_arcs),
		cmocka_unit_test(test_corrupt_stream),
		cmocka_unit_test(test_short_stream),
		cmocka_unit_test(test_send_failure),
		cmocka_unit_test(test_dev_unwind_and_reset),
		cmocka_unit_test(test_free_mid_stream),
		cmocka_unit_test(test_dma_log),
		cmocka_unit_test(test_dma_log_as_dirty_source),
		cmocka_unit_test(test_bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
