/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_qemu.c — sluice producing and consuming QEMU's VFIO device
 * stream: a simulated device's packets are written as QEMU's section
 * framing (precopy iterations DATA_STATE.. [INIT_DATA_SENT] END_OF_STATE,
 * then the stop-and-copy data, END_OF_STATE, CONFIG_STATE .. END_OF_STATE)
 * or as multifd device-state packets, decoded again and loaded into a
 * destination device, whose state must equal the source's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sl_qemu_vfio.h"
#include "sl_vfio.h"
#include "test_vfio_wire.h"

#define STREAM_CAP (16u << 20)
#define IDSTR "0000:00:02.0/vfio"

struct qsink {
	uint8_t *buf; /* the QEMU stream being produced */
	struct sl_qemu_buf b;
	bool multifd;
	size_t iter_start; /* where the current precopy iteration began */
	int err;
};

static int q_send(void *ctx, uint32_t dev, uint64_t index, uint32_t flags, const void *data,
		  size_t len)
{
	struct qsink *q = ctx;
	int ret = 0;

	(void)dev;
	if (q->multifd) {
		uint32_t qf = (flags & SL_VFIO_PKT_CONFIG) ? SL_QEMU_VFIO_PKT_CONFIG_STATE : 0;
		ssize_t n;
		if (!len && !(flags & SL_VFIO_PKT_LAST))
			return 0; /* INIT_DONE markers have no multifd form */
		n = sl_qemu_multifd_encode(q->b.p + q->b.len, q->b.cap - q->b.len, IDSTR, 0,
					   (uint32_t)index, qf, data, len);
		if (n < 0)
			return (int)n;
		q->b.len += (size_t)n;
		return 0;
	}
	if (flags & SL_VFIO_PKT_CONFIG) {
		/* Stop-and-copy data ends, then the device's config section. */
		ret = sl_qemu_vfio_put_marker(&q->b, SL_QEMU_VFIO_END_OF_STATE);
		if (ret == 0)
			ret = sl_qemu_vfio_put_config(&q->b, data, len);
		return ret;
	}
	if (len)
		ret = sl_qemu_vfio_put_data(&q->b, data, len);
	if (ret == 0 && (flags & SL_VFIO_PKT_INIT_DONE))
		ret = sl_qemu_vfio_put_marker(&q->b, SL_QEMU_VFIO_INIT_DATA_SENT);
	return ret;
}

/* The sink copies at send time, so buffers are free at once. Iterations are
 * not flushes: a flush only says buffers may be reused. */
static int q_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

/* After each precopy round that produced anything: QEMU's END_OF_STATE. */
static void end_iteration(struct qsink *q)
{
	if (q->b.len != q->iter_start) {
		assert_int_equal(sl_qemu_vfio_put_marker(&q->b, SL_QEMU_VFIO_END_OF_STATE), 0);
		q->iter_start = q->b.len;
	}
}

static ssize_t get_config(void *ctx, uint32_t dev, void *buf, size_t cap)
{
	(void)ctx;
	(void)dev;
	return snprintf(buf, cap, "pci-config-space") + 1;
}

static int load_config(void *ctx, uint32_t dev, const void *buf, size_t len)
{
	(void)dev;
	memcpy(ctx, buf, SL_MIN(len, (size_t)32));
	return 0;
}

static struct sl_vfio_backend *mk(uint64_t pre, uint64_t seed)
{
	struct sl_devsim_config c = { .size = sizeof(c), .name = "vfio0", .state_bytes = 2u << 20,
				      .precopy_bytes = pre, .chunk_bytes = 16 << 10, .seed = seed };
	struct sl_vfio_backend *be = NULL;

	if (!pre)
		c.caps = SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P;
	assert_int_equal(sl_devsim_new(&c, &be, NULL), 0);
	return be;
}

static void migrate(bool multifd)
{
	struct qsink q = { .multifd = multifd };
	struct sl_devset_config cfg = { .size = sizeof(cfg), .get_config = get_config };
	struct sl_devset *src = NULL, *dst = NULL;
	struct wire w;
	char cfg_seen[32] = "";
	uint64_t hash;

	q.buf = malloc(STREAM_CAP);
	q.b = (struct sl_qemu_buf){ .p = q.buf, .cap = STREAM_CAP };
	assert_int_equal(sl_devset_new(&cfg, &src), 0);
	assert_int_equal(sl_devset_add(src, mk(multifd ? 0 : 1u << 20, 1)), 0);
	struct sl_devset_sink sink = { .send = q_send, .flush = q_flush, .ctx = &q };
	assert_int_equal(sl_devset_set_sink(src, &sink), 0);
	if (!multifd) {
		struct sl_devset_pending p;
		assert_int_equal(sl_devset_precopy_start(src), 0);
		for (int i = 0; i < 1000; i++) {
			assert_true(sl_devset_precopy_read(src, 0) >= 0);
			end_iteration(&q);
			assert_int_equal(sl_devset_pending(src, &p), 0);
			if (p.initial_done)
				break;
		}
		assert_true(p.initial_done);
	}
	assert_int_equal(sl_devset_stop(src), 0);
	hash = sl_devsim_state_hash(sl_vfio_dev_backend(sl_devset_dev(src, 0)));
	assert_true(sl_devset_stopcopy_read_all(src) > 0);
	sl_devset_free(&src);

	/* Consume: decode the QEMU stream into packets for the destination. */
	wire_init(&w, 5);
	uint64_t idx = 0;
	unsigned iterations = 0, init_markers = 0;
	if (multifd) {
		size_t off = 0;
		while (off < q.b.len) {
			struct sl_qemu_devstate_pkt pk;
			ssize_t n = sl_qemu_multifd_decode(q.buf + off, q.b.len - off, &pk);
			assert_true(n > 0);
			assert_string_equal(pk.idstr, IDSTR);
			assert_int_equal(pk.idx, idx);
			uint32_t fl = pk.flags & SL_QEMU_VFIO_PKT_CONFIG_STATE
					      ? SL_VFIO_PKT_CONFIG | SL_VFIO_PKT_LAST : 0;
			assert_int_equal(wire_send(&w, 0, idx++, fl, pk.data, pk.len), 0);
			off += (size_t)n;
		}
	} else {
		struct sl_qemu_vfio_dec d;
		struct sl_qemu_vfio_item it;
		int r;
		sl_qemu_vfio_dec_init(&d, q.buf, q.b.len);
		while ((r = sl_qemu_vfio_next(&d, &it, 64u << 20)) == 1) {
			if (it.kind == SL_QEMU_ITEM_DATA) {
				assert_int_equal(wire_send(&w, 0, idx++, 0, it.data, it.len), 0);
			} else if (it.kind == SL_QEMU_ITEM_CONFIG) {
				assert_int_equal(wire_send(&w, 0, idx++,
							   SL_VFIO_PKT_CONFIG | SL_VFIO_PKT_LAST,
							   it.data, it.len), 0);
			} else if (it.marker == SL_QEMU_VFIO_INIT_DATA_SENT) {
				init_markers++;
				assert_int_equal(wire_send(&w, 0, idx++, SL_VFIO_PKT_INIT_DONE, NULL, 0), 0);
			} else {
				assert_true(it.marker == SL_QEMU_VFIO_END_OF_STATE);
				iterations++;
			}
		}
		assert_int_equal(r, 0);
		assert_int_equal(init_markers, 1);
		/* The stream ends exactly as QEMU's: data, END, CONFIG body END. */
		const char *cfgtxt = "pci-config-space";
		size_t cl = strlen(cfgtxt) + 1;
		assert_true(q.b.len > 24 + cl);
		const uint8_t *tail = q.buf + q.b.len - (8 + 8 + cl + 8);
		assert_memory_equal(tail, "\xff\xff\xff\xff\xef\x10\x00\x01", 8);
		assert_memory_equal(tail + 8, "\xff\xff\xff\xff\xef\x10\x00\x02", 8);
		assert_memory_equal(tail + 16, cfgtxt, cl);
		assert_memory_equal(tail + 16 + cl, "\xff\xff\xff\xff\xef\x10\x00\x01", 8);
		assert_true(iterations >= 2); /* precopy iteration(s) + stop-and-copy */
	}
	assert_int_equal(wire_flush(&w), 0);

	struct sl_devset_config dcfg = { .size = sizeof(dcfg), .load_config = load_config,
					 .cb_ctx = cfg_seen };
	assert_int_equal(sl_devset_new(&dcfg, &dst), 0);
	assert_int_equal(sl_devset_add(dst, mk(multifd ? 0 : 1u << 20, 9)), 0);
	struct sl_devset_source so = { .next = wire_next, .release = wire_release, .ctx = &w };
	assert_int_equal(sl_devset_resume_start(dst, &so), 0);
	assert_int_equal(sl_devset_resume_finish(dst), 0);
	assert_int_equal(sl_devsim_state_hash(sl_vfio_dev_backend(sl_devset_dev(dst, 0))), hash);
	assert_string_equal(cfg_seen, "pci-config-space");
	if (!multifd)
		assert_true(sl_devset_initial_loaded(dst));
	sl_devset_free(&dst);
	wire_exit(&w);
	free(q.buf);
}

static void test_section_stream(void **st) { (void)st; migrate(false); }
static void test_multifd_stream(void **st) { (void)st; migrate(true); }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_section_stream),
		cmocka_unit_test(test_multifd_stream),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
