/* SPDX-License-Identifier: MIT */
/*
 * fuzz_wire.c — libFuzzer target for the packet and handshake decoders.
 *
 * The input is read the way a receiver reads a channel: header after header
 * (common part, then the full header, then the payload is skipped), with the
 * page size taken from the first byte. Every decoded header is re-encoded
 * and must give the same bytes; handshake messages are decoded from the
 * same input. Any read past the input, crash or mismatch is a finding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sl_wire_challenge c;
	struct sl_wire_hello h;
	struct sl_wire_verdict v;
	struct sl_errbuf eb;
	uint32_t page_size;
	size_t off;

	if (size < 1)
		return 0;
	/* 512 B .. 64 KiB, plus one invalid size now and then. */
	page_size = data[0] == 0xff ? 3000u : 512u << (data[0] % 8);
	data++;
	size--;

	sl_wire_decode_challenge(data, size, &c, &eb);
	sl_wire_decode_hello(data, size, &h, &eb);
	if (sl_wire_decode_verdict_fixed(data, size, &v, &eb) == 0 &&
	    size >= SL_VERDICT_FIXED_LEN + v.reason_len)
		sl_wire_verdict_set_reason(&v, data + SL_VERDICT_FIXED_LEN, v.reason_len);

	for (off = 0; off < size;) {
		struct sl_wire_range ranges[SL_PKT_MAX_RANGES];
		uint8_t again[SL_PKT_MAX_HDR];
		struct sl_pkt p;

		if (sl_wire_decode_common(data + off, size - off, &p, &eb))
			break;
		if (p.hdr_len > size - off)
			break;
		if (sl_wire_decode_header(data + off, p.hdr_len, page_size, &p, &eb))
			break;
		if (p.type == SL_PKT_RAM || p.type == SL_PKT_ZERO)
			for (uint32_t i = 0; i < p.u.ram.nranges; i++)
				ranges[i] = sl_wire_get_range(&p, i);
		int hl = sl_wire_encode_header(&p, ranges, again, sizeof(again));

		if (hl != p.hdr_len || memcmp(again, data + off, (size_t)hl))
			abort(); /* decode(encode(x)) must be the identity */
		off += p.hdr_len;
		if (p.payload_len > size - off)
			break;
		off += p.payload_len;
	}
	return 0;
}
