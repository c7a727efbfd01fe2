/* SPDX-License-Identifier: MIT */
/*
 * test_wire.c — the wire format against its spec: reads the hex test vectors
 * from docs/wire-format.md (SL_SOURCE_DIR), decodes each, checks its fields,
 * re-encodes and compares every byte; round trips of random headers; every
 * decoder rejection.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sl_wire.h"

static char *spec;

static int load_spec(void **state)
{
	const char *dir = getenv("SL_SOURCE_DIR");
	char path[1024];
	FILE *f;
	long n;

	(void)state;
	snprintf(path, sizeof(path), "%s/docs/wire-format.md", dir ? dir : "..");
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return -1;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	spec = calloc(1, (size_t)n + 1);
	if (fread(spec, 1, (size_t)n, f) != (size_t)n)
		return -1;
	fclose(f);
	return 0;
}

static int free_spec(void **state)
{
	(void)state;
	free(spec);
	return 0;
}

/* The bytes of the "```hex NAME" block. */
static size_t vector(const char *name, uint8_t *out, size_t cap)
{
	char tag[64];
	const char *p, *end;
	size_t n = 0;

	snprintf(tag, sizeof(tag), "```hex %s\n", name);
	p = strstr(spec, tag);
	assert_non_null(p);
	p += strlen(tag);
	end = strstr(p, "```");
	assert_non_null(end);
	while (p < end) {
		unsigned v;

		if (*p == ' ' || *p == '\n') {
			p++;
			continue;
		}
		assert_int_equal(sscanf(p, "%2x", &v), 1);
		assert_true(n < cap);
		out[n++] = (uint8_t)v;
		p += 2;
	}
	return n;
}

static void test_vector_challenge(void **state)
{
	uint8_t in[256], out[SL_CHALLENGE_LEN];
	struct sl_wire_challenge c;
	struct sl_errbuf eb;
	size_t n = vector("challenge", in, sizeof(in));

	(void)state;
	assert_int_equal(n, SL_CHALLENGE_LEN);
	assert_int_equal(sl_wire_decode_challenge(in, n, &c, &eb), 0);
	assert_int_equal(c.version, 1);
	assert_int_equal(c.caps, 3);
	for (int i = 0; i < 32; i++)
		assert_int_equal(c.nonce[i], i);
	sl_wire_encode_challenge(&c, out);
	assert_memory_equal(in, out, n);
}

static void test_vector_hello(void **state)
{
	uint8_t in[256], out[SL_HELLO_LEN], mac[SL_HMAC_LEN], nonce[SL_NONCE_LEN];
	struct sl_wire_hello h;
	struct sl_errbuf eb;
	size_t n = vector("hello", in, sizeof(in));

	(void)state;
	assert_int_equal(n, SL_HELLO_LEN);
	assert_int_equal(sl_wire_decode_hello(in, n, &h, &eb), 0);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.caps, 3);
	assert_int_equal(h.page_size, 4096);
	for (int i = 0; i < 16; i++)
		assert_int_equal(h.session_id[i], 0xa0 + i);
	assert_int_equal(h.channel_index, 1);
	assert_int_equal(h.channel_count, 4);
	assert_int_equal(h.granule_bytes, 2 << 20);
	for (int i = 0; i < 32; i++)
		nonce[i] = (uint8_t)i;
	assert_int_equal(sl_wire_hello_mac((const uint8_t *)"sluice-test-vector-key", 22, nonce, in, mac), 0);
	assert_true(sl_wire_mac_equal(mac, h.hmac));
	mac[31] ^= 1;
	assert_false(sl_wire_mac_equal(mac, h.hmac));
	sl_wire_encode_hello(&h, out);
	assert_memory_equal(in, out, n);
}

static void test_vector_verdicts(void **state)
{
	uint8_t in[512], out[SL_VERDICT_FIXED_LEN + SL_VERDICT_REASON_MAX];
	struct sl_wire_verdict v;
	struct sl_errbuf eb;
	size_t n;

	(void)state;
	n = vector("verdict-accept", in, sizeof(in));
	assert_int_equal(n, 16);
	assert_int_equal(sl_wire_decode_verdict_fixed(in, n, &v, &eb), 0);
	assert_int_equal(v.status, 0);
	assert_int_equal(v.reason_len, 0);
	sl_wire_verdict_set_reason(&v, in + 16, 0);
	assert_int_equal(sl_wire_encode_verdict(&v, out), n);
	assert_memory_equal(in, out, n);

	n = vector("verdict-refuse", in, sizeof(in));
	assert_int_equal(sl_wire_decode_verdict_fixed(in, n, &v, &eb), 0);
	assert_int_equal(v.status, EACCES);
	assert_int_equal(v.reason_len, 9);
	assert_int_equal(n, 16 + 9);
	sl_wire_verdict_set_reason(&v, in + 16, v.reason_len);
	assert_string_equal(v.reason, "wrong key");
	assert_int_equal(sl_wire_encode_verdict(&v, out), n);
	assert_memory_equal(in, out, n);
}

/* Decodes a packet vector and re-encodes it from the decoded fields. */
static void roundtrip_vector(const char *name, struct sl_pkt *p)
{
	uint8_t in[4096], out[4096];
	struct sl_wire_range ranges[SL_PKT_MAX_RANGES];
	struct sl_errbuf eb;
	size_t n = vector(name, in, sizeof(in));
	int hl;

	assert_int_equal(sl_wire_decode_header(in, n, 4096, p, &eb), 0);
	assert_int_equal(p->hdr_len, n);
	if (p->type == SL_PKT_RAM || p->type == SL_PKT_ZERO)
		for (uint32_t i = 0; i < p->u.ram.nranges; i++)
			ranges[i] = sl_wire_get_range(p, i);
	hl = sl_wire_encode_header(p, ranges, out, sizeof(out));
	assert_int_equal(hl, (int)n);
	assert_memory_equal(in, out, n);
}

static void test_vector_packets(void **state)
{
	struct sl_pkt p;
	struct sl_wire_range r;

	(void)state;
	roundtrip_vector("ram", &p);
	assert_int_equal(p.type, SL_PKT_RAM);
	assert_int_equal(p.seq, 7);
	assert_int_equal(p.generation, 3);
	assert_int_equal(p.payload_len, 16384);
	assert_int_equal(p.u.ram.region_id, 2);
	assert_int_equal(p.u.ram.nranges, 2);
	r = sl_wire_get_range(&p, 0);
	assert_int_equal(r.first, 0x200);
	assert_int_equal(r.npages, 3);
	r = sl_wire_get_range(&p, 1);
	assert_int_equal(r.first, 0x3ff);
	assert_int_equal(r.npages, 1);

	roundtrip_vector("zero", &p);
	assert_int_equal(p.type, SL_PKT_ZERO);
	assert_int_equal(p.seq, 8);
	assert_int_equal(p.payload_len, 0);
	r = sl_wire_get_range(&p, 0);
	assert_int_equal(r.first, 0x10000);
	assert_int_equal(r.npages, 0x200);

	roundtrip_vector("device", &p);
	assert_int_equal(p.type, SL_PKT_DEVICE);
	assert_int_equal(p.seq, 9);
	assert_int_equal(p.generation, 4);
	assert_int_equal(p.payload_len, 100);
	assert_int_equal(p.u.dev.device_id, 5);
	assert_int_equal(p.u.dev.flags, SL_DEV_FLAG_LAST);
	assert_int_equal(p.u.dev.index, 9);

	roundtrip_vector("state", &p);
	assert_int_equal(p.type, SL_PKT_STATE);
	assert_int_equal(p.seq, 10);
	assert_int_equal(p.u.state.kind, 1);
	assert_int_equal(p.payload_len, 512);

	roundtrip_vector("iteration-end", &p);
	assert_int_equal(p.type, SL_PKT_ITERATION_END);
	assert_int_equal(p.seq, 11);
	assert_int_equal(p.u.count.packets, 12);
	assert_int_equal(p.u.count.bytes, 0x123456);

	roundtrip_vector("complete", &p);
	assert_int_equal(p.type, SL_PKT_COMPLETE);
	assert_int_equal(p.seq, 12);
	assert_int_equal(p.u.count.packets, 40);
	assert_int_equal(p.u.count.bytes, 0x10000000);

	roundtrip_vector("resumed", &p);
	assert_int_equal(p.type, SL_PKT_RESUMED);
	assert_int_equal(p.seq, 0);
	assert_int_equal(p.generation, 4);
	assert_int_equal(p.u.resumed.status, -5);
	assert_int_equal(p.payload_len, 2);

	roundtrip_vector("error", &p);
	assert_int_equal(p.type, SL_PKT_ERROR);
	assert_int_equal(p.seq, 3);
	assert_int_equal(p.u.error.code, 22);
	assert_int_equal(p.payload_len, 10);

	roundtrip_vector("ack", &p);
	assert_int_equal(p.type, SL_PKT_ACK);
	assert_int_equal(p.seq, 1);
	assert_int_equal(p.generation, 2);
	assert_int_equal(p.u.ack.kind, SL_ACK_DEVICE_INIT_LOADED);
	assert_int_equal(p.u.ack.id, 3);
	assert_int_equal(p.u.ack.value, 0);
	assert_int_equal(p.payload_len, 0);

	roundtrip_vector("device-init-done", &p);
	assert_int_equal(p.type, SL_PKT_DEVICE);
	assert_int_equal(p.seq, 13);
	assert_int_equal(p.u.dev.device_id, 3);
	assert_int_equal(p.u.dev.flags, SL_DEV_FLAG_INIT_DONE);
	assert_int_equal(p.u.dev.index, 7);
	assert_int_equal(p.payload_len, 64);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void test_random_roundtrip(void **state)
{
	uint64_t x = 88172645463325252ull;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		struct sl_wire_range ranges[SL_PKT_MAX_RANGES];
		struct sl_pkt p = { .type = (uint8_t)(1 + rnd(&x) % SL_PKT_TYPE_MAX) }, q;
		uint8_t buf[SL_PKT_MAX_HDR], buf2[SL_PKT_MAX_HDR];
		struct sl_errbuf eb;
		uint64_t pages = 0;
		int hl;

		p.seq = rnd(&x);
		p.generation = (uint32_t)rnd(&x);
		switch (p.type) {
		case SL_PKT_RAM:
		case SL_PKT_ZERO:
			p.u.ram.region_id = (uint32_t)rnd(&x);
			p.u.ram.nranges = 1 + (uint32_t)(rnd(&x) % SL_PKT_MAX_RANGES);
			for (uint32_t i = 0; i < p.u.ram.nranges; i++) {
				ranges[i].first = rnd(&x) % (1ull << 40);
				ranges[i].npages = 1 + rnd(&x) % 100;
				pages += ranges[i].npages;
			}
			if (p.type == SL_PKT_RAM)
				p.payload_len = pages * 4096;
			break;
		case SL_PKT_DEVICE:
			p.u.dev.device_id = (uint32_t)rnd(&x);
			p.u.dev.flags = (uint32_t)(rnd(&x) & SL_DEV_FLAGS_KNOWN);
			p.u.dev.index = rnd(&x);
			p.payload_len = rnd(&x) % SL_PKT_MAX_BLOB_PAYLOAD;
			break;
		case SL_PKT_STATE:
			p.u.state.kind = (uint32_t)rnd(&x);
			p.payload_len = rnd(&x) % SL_PKT_MAX_BLOB_PAYLOAD;
			break;
		case SL_PKT_ITERATION_END:
		case SL_PKT_COMPLETE:
			p.u.count.packets = rnd(&x);
			p.u.count.bytes = rnd(&x);
			break;
		case SL_PKT_RESUMED:
			p.u.resumed.status = -(int32_t)(rnd(&x) % 4096);
			p.payload_len = rnd(&x) % SL_PKT_MAX_TEXT_PAYLOAD;
			break;
		case SL_PKT_ERROR:
			p.u.error.code = (uint32_t)(rnd(&x) % 4096);
			p.payload_len = rnd(&x) % SL_PKT_MAX_TEXT_PAYLOAD;
			break;
		case SL_PKT_ACK:
			p.u.ack.kind = SL_ACK_DEVICE_INIT_LOADED;
			p.u.ack.id = (uint32_t)rnd(&x);
			p.u.ack.value = rnd(&x);
			break;
		}
		hl = sl_wire_encode_header(&p, ranges, buf, sizeof(buf));
		if (p.type == SL_PKT_RAM && p.payload_len > SL_PKT_MAX_RAM_PAYLOAD) {
			assert_int_equal(hl, -EINVAL);
			continue;
		}
		assert_true(hl > 0);
		assert_int_equal(hl, (int)sl_wire_header_len(p.type, p.u.ram.nranges));
		assert_int_equal(sl_wire_decode_header(buf, (size_t)hl, 4096, &q, &eb), 0);
		assert_int_equal(q.type, p.type);
		assert_int_equal(q.seq, p.seq);
		assert_int_equal(q.generation, p.generation);
		assert_int_equal(q.payload_len, p.payload_len);
		if (p.type == SL_PKT_RAM || p.type == SL_PKT_ZERO)
			for (uint32_t i = 0; i < q.u.ram.nranges; i++)
				ranges[i] = sl_wire_get_range(&q, i);
		assert_int_equal(sl_wire_encode_header(&q, ranges, buf2, sizeof(buf2)), hl);
		assert_memory_equal(buf, buf2, (size_t)hl);
		/* Any single-byte change is caught (checksum or field checks). */
		size_t pos = rnd(&x) % (size_t)hl;

		buf[pos] ^= (uint8_t)(1 + rnd(&x) % 255);
		assert_true(sl_wire_decode_header(buf, (size_t)hl, 4096, &q, &eb) < 0);
	}
}

/* Encodes p, lets `mutate` edit the bytes, re-checksums, expects err. */
static void expect_reject(struct sl_pkt *p, const struct sl_wire_range *ranges, size_t off,
			  const uint8_t *bytes, size_t nbytes, int err, const char *text)
{
	uint8_t buf[SL_PKT_MAX_HDR];
	struct sl_errbuf eb;
	struct sl_pkt q;
	int hl = sl_wire_encode_header(p, ranges, buf, sizeof(buf));

	assert_true(hl > 0);
	memcpy(buf + off, bytes, nbytes);
	sl_put_be32(buf + 4, sl_wire_header_checksum(buf, (size_t)hl));
	assert_int_equal(sl_wire_decode_header(buf, (size_t)hl, 4096, &q, &eb), err);
	assert_non_null(strstr(eb.msg, text));
}

static void test_rejections(void **state)
{
	struct sl_wire_range r1 = { 10, 2 };
	struct sl_pkt ram = { .type = SL_PKT_RAM, .payload_len = 8192 };
	struct sl_pkt dev = { .type = SL_PKT_DEVICE, .payload_len = 10 };
	uint8_t b1[1], b4[4], b8[8], buf[SL_PKT_MAX_HDR];
	struct sl_errbuf eb;
	struct sl_pkt q;

	(void)state;
	ram.u.ram.nranges = 1;
	b1[0] = 10;
	expect_reject(&ram, &r1, 0, b1, 1, -EINVAL, "unknown packet type 10");
	b1[0] = 0;
	expect_reject(&ram, &r1, 0, b1, 1, -EINVAL, "unknown packet type 0");
	b1[0] = 1;
	expect_reject(&ram, &r1, 1, b1, 1, -EINVAL, "unknown header flags");
	sl_put_be32(b4, 1);
	expect_reject(&ram, &r1, 28, b4, 4, -EINVAL, "reserved field not zero");
	sl_put_be64(b8, 8192 + 4096);
	expect_reject(&ram, &r1, 8, b8, 8, -EINVAL, "payload 12288 bytes != 2 pages x 4096");
	sl_put_be64(b8, 0);
	expect_reject(&ram, &r1, 48, b8, 8, -EINVAL, "bad range 0");
	sl_put_be64(b8, ~0ull);
	expect_reject(&ram, &r1, 40, b8, 8, -EINVAL, "bad range 0");
	sl_put_be32(b4, 2);
	expect_reject(&ram, &r1, 36, b4, 4, -EINVAL, "2 ranges do not fill a 56-byte header");
	{
		uint8_t hl[2];

		sl_put_be16(hl, 41);
		expect_reject(&ram, &r1, 2, hl, 2, -EINVAL, "bad header length 41");
		sl_put_be16(hl, 40);
		expect_reject(&dev, NULL, 2, hl, 2, -EINVAL, "bad header length 40");
	}
	sl_put_be32(b4, 8);
	expect_reject(&dev, NULL, 36, b4, 4, -EINVAL, "unknown flags 0x8");
	{
		struct sl_pkt a = { .type = SL_PKT_ACK };

		a.u.ack.kind = SL_ACK_DEVICE_INIT_LOADED;
		sl_put_be32(b4, 7);
		expect_reject(&a, NULL, 32, b4, 4, -EINVAL, "ACK packet: unknown kind 7");
	}
	sl_put_be64(b8, (uint64_t)SL_PKT_MAX_BLOB_PAYLOAD + 1);
	expect_reject(&dev, NULL, 8, b8, 8, -EINVAL, "DEVICE packet: payload of");
	{
		struct sl_pkt z = { .type = SL_PKT_ZERO };

		z.u.ram.nranges = 1;
		sl_put_be64(b8, 1);
		expect_reject(&z, &r1, 8, b8, 8, -EINVAL, "ZERO packet: payload of 1 bytes (max 0)");
	}
	{
		struct sl_pkt rs = { .type = SL_PKT_RESUMED };

		sl_put_be32(b4, 5);
		expect_reject(&rs, NULL, 32, b4, 4, -EINVAL, "RESUMED packet: bad status");
	}
	/* Checksum: flip one bit without fixing it. */
	assert_int_equal(sl_wire_encode_header(&ram, &r1, buf, sizeof(buf)), 56);
	buf[45] ^= 0x10;
	assert_int_equal(sl_wire_decode_header(buf, 56, 4096, &q, &eb), -EBADMSG);
	assert_non_null(strstr(eb.msg, "header checksum"));
	/* Truncated input never reads past the given length. */
	assert_int_equal(sl_wire_encode_header(&ram, &r1, buf, sizeof(buf)), 56);
	assert_int_equal(sl_wire_decode_header(buf, 31, 4096, &q, &eb), -EINVAL);
	assert_int_equal(sl_wire_decode_header(buf, 55, 4096, &q, &eb), -EINVAL);
	assert_int_equal(sl_wire_decode_header(buf, 56, 4000, &q, &eb), -EINVAL);
	/* Encoder refuses what the decoder would refuse. */
	ram.u.ram.nranges = 0;
	assert_int_equal(sl_wire_encode_header(&ram, &r1, buf, sizeof(buf)), -EINVAL);
	ram.u.ram.nranges = SL_PKT_MAX_RANGES + 1;
	assert_int_equal(sl_wire_encode_header(&ram, &r1, buf, sizeof(buf)), -EINVAL);
	ram.u.ram.nranges = 1;
	assert_int_equal(sl_wire_encode_header(&ram, &r1, buf, 40), -EINVAL);
	/* Handshake messages. */
	{
		uint8_t h[SL_HELLO_LEN] = { 0 };
		struct sl_wire_hello hh;

		assert_int_equal(sl_wire_decode_hello(h, sizeof(h), &hh, &eb), -EPROTO);
		assert_non_null(strstr(eb.msg, "bad magic"));
		sl_put_be32(h, SL_WIRE_MAGIC);
		sl_put_be16(h + 6, SL_MSG_CHALLENGE);
		assert_int_equal(sl_wire_decode_hello(h, sizeof(h), &hh, &eb), -EPROTO);
		sl_put_be16(h + 6, SL_MSG_HELLO);
		assert_int_equal(sl_wire_decode_hello(h, sizeof(h) - 1, &hh, &eb), -EINVAL);
		sl_put_be32(h + 36, 1);
		assert_int_equal(sl_wire_decode_hello(h, sizeof(h), &hh, &eb), -EINVAL);
		sl_put_be32(h + 36, 0);
		sl_put_be16(h + 4, 7); /* another version decodes: the caller refuses it */
		assert_int_equal(sl_wire_decode_hello(h, sizeof(h), &hh, &eb), 0);
		assert_int_equal(hh.version, 7);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(sl_wire_type_name(SL_PKT_RAM), "RAM");
	assert_string_equal(sl_wire_type_name(SL_PKT_ITERATION_END), "ITERATION_END");
	assert_string_equal(sl_wire_type_name(0), "unknown");
	assert_string_equal(sl_wire_type_name(200), "unknown");
	assert_int_equal(sl_wire_header_len(SL_PKT_RAM, 128), SL_PKT_MAX_HDR);
	assert_int_equal(sl_wire_header_len(SL_PKT_DEVICE, 0), 48);
	assert_int_equal(sl_wire_header_len(99, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_challenge),
		cmocka_unit_test(test_vector_hello),
		cmocka_unit_test(test_vector_verdicts),
		cmocka_unit_test(test_vector_packets),
		cmocka_unit_test(test_random_roundtrip),
		cmocka_unit_test(test_rejections),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, load_spec, free_spec);
}
