/* SPDX-License-Identifier: MIT */
/*
 * test_qemu_vfio.c — QEMU VFIO section framing and multifd device-state
 * packets against hex test vectors written from QEMU's definitions
 * (hw/vfio/migration.c markers, migration/multifd.h MultiFDPacketDeviceState_t,
 * hw/vfio/migration-multifd.c VFIODeviceStatePacket).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sl_qemu_vfio.h"

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;
	unsigned v;

	while (*h) {
		if (*h == ' ') {
			h++;
			continue;
		}
		assert_int_equal(sscanf(h, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
		h += 2;
	}
	return n;
}

/* A precopy iteration: DATA_STATE 3 "ABC", INIT_DATA_SENT, END_OF_STATE. */
static const char *vec_iter =
	"ffffffffef100004 0000000000000003 414243 ffffffffef100005 ffffffffef100001";
/* Stop-and-copy: CONFIG_STATE {01 02 03} END, DATA 2 {aa bb}, END. */
static const char *vec_stop =
	"ffffffffef100002 010203 ffffffffef100001 ffffffffef100004 0000000000000002 aabb "
	"ffffffffef100001";

static void test_section_encode(void **st)
{
	uint8_t out[128], want[128];
	struct sl_qemu_buf b = { .p = out, .cap = sizeof(out) };
	size_t n;

	(void)st;
	assert_int_equal(sl_qemu_vfio_put_data(&b, "ABC", 3), 0);
	assert_int_equal(sl_qemu_vfio_put_marker(&b, SL_QEMU_VFIO_INIT_DATA_SENT), 0);
	assert_int_equal(sl_qemu_vfio_put_marker(&b, SL_QEMU_VFIO_END_OF_STATE), 0);
	n = unhex(vec_iter, want);
	assert_int_equal(b.len, n);
	assert_memory_equal(out, want, n);

	b.len = 0;
	assert_int_equal(sl_qemu_vfio_put_config(&b, "\x01\x02\x03", 3), 0);
	assert_int_equal(sl_qemu_vfio_put_data(&b, "\xaa\xbb", 2), 0);
	assert_int_equal(sl_qemu_vfio_put_marker(&b, SL_QEMU_VFIO_END_OF_STATE), 0);
	n = unhex(vec_stop, want);
	assert_int_equal(b.len, n);
	assert_memory_equal(out, want, n);

	/* No room: nothing written. */
	struct sl_qemu_buf small = { .p = out, .cap = 10 };
	assert_int_equal(sl_qemu_vfio_put_data(&small, "ABC", 3), -ENOSPC);
	assert_int_equal(small.len, 0);
	assert_int_equal(sl_qemu_vfio_put_marker(NULL, 1), -EINVAL);
}

static void test_section_decode(void **st)
{
	uint8_t in[128];
	size_t n = unhex(vec_stop, in);
	struct sl_qemu_vfio_dec d;
	struct sl_qemu_vfio_item it;

	(void)st;
	sl_qemu_vfio_dec_init(&d, in, n);
	assert_int_equal(sl_qemu_vfio_next(&d, &it, 1 << 20), 1);
	assert_int_equal(it.kind, SL_QEMU_ITEM_CONFIG);
	assert_int_equal(it.len, 3);
	assert_memory_equal(it.data, "\x01\x02\x03", 3);
	assert_int_equal(sl_qemu_vfio_next(&d, &it, 1 << 20), 1);
	assert_int_equal(it.kind, SL_QEMU_ITEM_DATA);
	assert_int_equal(it.len, 2);
	assert_memory_equal(it.data, "\xaa\xbb", 2);
	assert_int_equal(sl_qemu_vfio_next(&d, &it, 1 << 20), 1);
	assert_int_equal(it.kind, SL_QEMU_ITEM_MARKER);
	assert_true(it.marker == SL_QEMU_VFIO_END_OF_STATE);
	assert_int_equal(sl_qemu_vfio_next(&d, &it, 1 << 20), 0);

	/* Every truncation point asks for more bytes, never misparses. */
	for (size_t cut = 1; cut < n; cut++) {
		sl_qemu_vfio_dec_init(&d, in, cut);
		int r;
		while ((r = sl_qemu_vfio_next(&d, &it, 1 << 20)) == 1)
			;
		assert_true(r == -EAGAIN || (r == 0 && (cut == 19 || cut == 37)));
	}
	/* A size beyond the cap and an unknown marker are errors. */
	n = unhex(vec_iter, in);
	sl_qemu_vfio_dec_init(&d, in, n);
	assert_int_equal(sl_qemu_vfio_next(&d, &it, 2), -EINVAL);
	memcpy(in, "\xff\xff\xff\xff\xef\x10\x00\x09", 8);
	sl_qemu_vfio_dec_init(&d, in, n);
	assert_int_equal(sl_qemu_vfio_next(&d, &it, 1 << 20), -EINVAL);
}

static void test_multifd_vector(void **st)
{
	uint8_t out[512], want[512];
	char hex[1200];
	size_t n;
	struct sl_qemu_devstate_pkt p;

	(void)st;
	/* Header: magic, version 1, flags DEVICE_STATE (0x40), idstr[256],
	 * instance_id 0, next_packet_size 14; packet: version 0, idx 5,
	 * flags CONFIG_STATE, data de ad. */
	strcpy(hex, "11223344 00000001 00000040 ");
	strcat(hex, "303030303a30303a30322e302f7666696f"); /* "0000:00:02.0/vfio" */
	for (int i = 0; i < 256 - 17; i++)
		strcat(hex, "00");
	strcat(hex, " 00000000 0000000e 00000000 00000005 00000001 dead");
	n = unhex(hex, want);
	assert_int_equal(n, 290);
	assert_int_equal(sl_qemu_multifd_encode(out, sizeof(out), "0000:00:02.0/vfio", 0, 5,
						SL_QEMU_VFIO_PKT_CONFIG_STATE, "\xde\xad", 2), 290);
	assert_memory_equal(out, want, 290);

	assert_int_equal(sl_qemu_multifd_decode(want, n, &p), 290);
	assert_string_equal(p.idstr, "0000:00:02.0/vfio");
	assert_int_equal(p.instance_id, 0);
	assert_int_equal(p.idx, 5);
	assert_int_equal(p.flags, SL_QEMU_VFIO_PKT_CONFIG_STATE);
	assert_int_equal(p.len, 2);
	assert_memory_equal(p.data, "\xde\xad", 2);
	assert_true(p.mf_flags & SL_QEMU_MULTIFD_FLAG_DEVICE_STATE);

	for (size_t cut = 0; cut < n; cut++)
		assert_int_equal(sl_qemu_multifd_decode(want, cut, &p), -EAGAIN);
	want[0] ^= 1; /* bad magic */
	assert_int_equal(sl_qemu_multifd_decode(want, n, &p), -EPROTO);
	want[0] ^= 1;
	want[11] = 0; /* not a device-state packet */
	assert_int_equal(sl_qemu_multifd_decode(want, n, &p), -EPROTO);
	want[11] = 0x40;
	want[276 + 3] = 1; /* VFIODeviceStatePacket version 1: unknown */
	assert_int_equal(sl_qemu_multifd_decode(want, n, &p), -EPROTO);

	char longid[300];
	memset(longid, 'a', sizeof(longid) - 1);
	longid[299] = 0;
	assert_int_equal(sl_qemu_multifd_encode(out, sizeof(out), longid, 0, 0, 0, NULL, 0), -EINVAL);
	assert_int_equal(sl_qemu_multifd_encode(out, 100, "x", 0, 0, 0, NULL, 0), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_section_encode),
		cmocka_unit_test(test_section_decode),
		cmocka_unit_test(test_multifd_vector),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
