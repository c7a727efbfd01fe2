/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_legacy.c — the SIMULATED v1 region device behind the v2 adapter:
 * region protocol rules (pending_bytes / data_offset / data_size), a round
 * trip through the device set with and without PRE_COPY, a legacy source
 * feeding a legacy destination with a small staging area (many chunks), a
 * corrupted image failing the leave-RESUMING arc, and the spec parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sl_vfio.h"
#include "test_vfio_wire.h"
#include "vfio_legacy_internal.h"

static struct sl_vfio_backend *mk(const char *name, uint64_t state, uint64_t data, uint64_t seed)
{
	struct sl_legacy_config c = { .size = sizeof(c), .name = name, .state_bytes = state,
				      .region_data = data, .seed = seed };
	struct sl_vfio_backend *be = NULL;

	assert_int_equal(sl_vfio_legacy_new(&c, &be, NULL), 0);
	assert_int_equal(be->caps, SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_PRE_COPY);
	return be;
}

/* The v1 save loop by hand on the region. */
static void test_region_protocol(void **st)
{
	struct legacy_region *r = NULL, *d = NULL;
	uint64_t pending, off, size, total = 0;
	uint32_t s;
	uint8_t buf[4096];

	(void)st;
	assert_int_equal(legacy_region_new(10000, 4096, 1, &r), 0);
	assert_int_equal(legacy_region_new(10000, 4096, 2, &d), 0);
	assert_true(legacy_region_hash(r) != legacy_region_hash(d));
	/* Not saving: pending is 0 and data_offset is refused. */
	assert_int_equal(legacy_region_read(r, LEGACY_OFF_PENDING, &pending, 8), 0);
	assert_int_equal(pending, 0);
	assert_int_equal(legacy_region_read(r, LEGACY_OFF_DATA_OFFSET, &off, 8), -EINVAL);
	s = LEGACY_SAVING;
	assert_int_equal(legacy_region_write(r, LEGACY_OFF_STATE, &s, 4), 0);
	s = LEGACY_RESUMING;
	assert_int_equal(legacy_region_write(d, LEGACY_OFF_STATE, &s, 4), 0);
	for (;;) {
		assert_int_equal(legacy_region_read(r, LEGACY_OFF_PENDING, &pending, 8), 0);
		if (!pending)
			break;
		assert_int_equal(legacy_region_read(r, LEGACY_OFF_DATA_OFFSET, &off, 8), 0);
		assert_int_equal(legacy_region_read(r, LEGACY_OFF_DATA_SIZE, &size, 8), 0);
		assert_int_equal(off, LEGACY_DATA_OFF);
		assert_true(size > 0 && size <= 4096);
		assert_int_equal(legacy_region_read(r, off, buf, size), 0);
		assert_int_equal(legacy_region_write(d, LEGACY_DATA_OFF, buf, size), 0);
		assert_int_equal(legacy_region_write(d, LEGACY_OFF_DATA_SIZE, &size, 8), 0);
		total += size;
	}
	assert_int_equal(total, 10000 + 24);
	s = 0;
	assert_int_equal(legacy_region_write(d, LEGACY_OFF_STATE, &s, 4), 0);
	assert_int_equal(legacy_region_hash(r), legacy_region_hash(d));
	/* Out-of-range access and the invalid SAVING|RESUMING request. */
	assert_int_equal(legacy_region_read(r, 4096 + 4000, buf, 200), -EINVAL);
	s = LEGACY_SAVING | LEGACY_RESUMING;
	assert_int_equal(legacy_region_write(r, LEGACY_OFF_STATE, &s, 4), -EINVAL);
	legacy_region_free(&r);
	legacy_region_free(&d);
	assert_null(r);
}

static void round_trip(unsigned n, bool precopy, uint64_t state, uint64_t data)
{
	struct wire w;
	struct sl_devset *src = NULL, *dst = NULL;
	struct sl_devset_sink sink = { .send = wire_send, .flush = wire_flush, .ctx = &w };
	struct sl_devset_source so = { .next = wire_next, .release = wire_release, .ctx = &w };
	char name[16];

	wire_init(&w, 11);
	assert_int_equal(sl_devset_new(NULL, &src), 0);
	assert_int_equal(sl_devset_new(NULL, &dst), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "leg%u", i);
		sl_devset_add(src, mk(name, state, data, i + 1));
		sl_devset_add(dst, mk(name, state, data, i + 50));
	}
	assert_int_equal(sl_devset_set_sink(src, &sink), 0);
	assert_int_equal(sl_devset_resume_start(dst, &so), 0);
	if (precopy) {
		struct sl_devset_pending p;
		assert_int_equal(sl_devset_precopy_start(src), 0);
		assert_int_equal(sl_devset_pending(src, &p), 0);
		assert_int_equal(p.initial_bytes, n * (state + 24));
		assert_int_equal(p.switchover_bytes, n * (state + 24));
		assert_int_equal(sl_devset_precopy_read(src, 0), (int64_t)(n * (state + 24)));
		assert_int_equal(sl_devset_pending(src, &p), 0);
		assert_true(p.initial_done);
	}
	assert_int_equal(sl_devset_stop(src), 0);
	int64_t sc = sl_devset_stopcopy_read_all(src);
	assert_int_equal(sc, precopy ? 0 : (int64_t)(n * (state + 24)));
	assert_int_equal(sl_devset_resume_finish(dst), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(sl_vfio_legacy_state_hash(sl_vfio_dev_backend(sl_devset_dev(dst, i))),
				 sl_vfio_legacy_state_hash(sl_vfio_dev_backend(sl_devset_dev(src, i))));
	assert_int_equal(sl_devset_resume_run(dst), 0);
	assert_int_equal(sl_devset_complete(src), 0);
	sl_devset_free(&src);
	sl_devset_free(&dst);
	wire_exit(&w);
}

static void test_round_trip(void **st) { (void)st; round_trip(1, false, 1 << 20, 0); }
static void test_round_trip_precopy(void **st) { (void)st; round_trip(2, true, 300000, 8192); }

/* A failed arc on the adapter is reported like any other backend's. */
static void test_fail_arc(void **st)
{
	struct sl_legacy_config c = { .size = sizeof(c), .state_bytes = 5000,
				      .fail_from = SL_VFIO_STOP, .fail_to = SL_VFIO_STOP_COPY };
	struct sl_vfio_backend *be = NULL;
	struct sl_devset *ds = NULL;

	(void)st;
	assert_int_equal(sl_vfio_legacy_new(&c, &be, NULL), 0);
	assert_int_equal(sl_devset_new(NULL, &ds), 0);
	assert_int_equal(sl_devset_add(ds, be), 0);
	assert_int_equal(sl_devset_stop(ds), -EIO);
	assert_non_null(strstr(sl_devset_last_error(ds), "arc STOP->STOP_COPY failed"));
	assert_int_equal(sl_vfio_dev_state(sl_devset_dev(ds, 0)), SL_VFIO_RUNNING);
	sl_devset_free(&ds);
}

static void test_spec(void **st)
{
	struct sl_vfio_backend *be = NULL;
	struct sl_errbuf eb;

	(void)st;
	assert_int_equal(sl_vfio_spec_new("legacy:state=64K,data=8K", "l0", &be, &eb), 0);
	assert_string_equal(be->ops->kind, "legacy-simulated");
	assert_string_equal(be->name, "l0");
	struct sl_dirty_source *src = NULL;
	assert_int_equal(sl_vfio_dma_log_new(be, 0, 16, 4096, &src, &eb), -EOPNOTSUPP);
	assert_null(src);
	sl_vfio_backend_free(&be);
	assert_int_equal(sl_vfio_spec_new("sim:state=1M,precopy=512K,dirty-rate=2M/s", "s0", &be,
					  &eb), 0);
	assert_string_equal(be->ops->kind, "simulated");
	assert_int_equal(be->caps, SL_VFIO_CAP_MASK);
	sl_vfio_backend_free(&be);
	assert_int_equal(sl_vfio_spec_new("sim:state=1M,caps=p2p", "s1", &be, &eb), 0);
	assert_int_equal(be->caps, SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P);
	sl_vfio_backend_free(&be);
	assert_int_equal(sl_vfio_spec_new("sim:state=1M,fail=STOP_COPY>STOP,fail-error", "s2", &be,
					  &eb), 0);
	sl_vfio_backend_free(&be);
	/* Errors are clear and never crash. */
	assert_int_equal(sl_vfio_spec_new("sim:precopy=1M", "x", &be, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "state=SIZE is required"));
	assert_int_equal(sl_vfio_spec_new("sim:state=1M,bogus=3", "x", &be, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "unknown key 'bogus'"));
	assert_int_equal(sl_vfio_spec_new("sim:state=12Q", "x", &be, &eb), -EINVAL);
	assert_int_equal(sl_vfio_spec_new("sim:state=1M,precopy=2M", "x", &be, &eb), -EINVAL);
	assert_int_equal(sl_vfio_spec_new("sim:state=1M,fail=STOP>STOP", "x", &be, &eb), -EINVAL);
	assert_int_equal(sl_vfio_spec_new("gpu:foo", "x", &be, &eb), -EINVAL);
	assert_int_equal(sl_vfio_spec_new("vfio:", "x", &be, &eb), -EINVAL);
	assert_int_equal(sl_vfio_spec_new("vfio:/nonexistent/vfio0", "x", &be, &eb), -ENOENT);
	assert_int_equal(sl_vfio_spec_new(NULL, "x", &be, &eb), -EINVAL);
	assert_null(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_region_protocol),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_round_trip_precopy),
		cmocka_unit_test(test_fail_arc),
		cmocka_unit_test(test_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
