/* SPDX-License-Identifier: MIT */
/* sl_wire.c — encode/decode of handshake messages and packet headers
 * (normative layout: docs/wire-format.md). */
#include "sl_wire.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <xxhash.h>

/* ---- handshake ----------------------------------------------------------- */

static void put_msg_head(uint8_t *out, uint16_t version, uint16_t msg)
{
	sl_put_be32(out, SL_WIRE_MAGIC);
	sl_put_be16(out + 4, version);
	sl_put_be16(out + 6, msg);
}

static int check_msg_head(const uint8_t *in, size_t len, size_t need, uint16_t msg,
			  const char *what, struct sl_errbuf *eb)
{
	if (len < need)
		return sl_err(eb, -EINVAL, "%s: %zu bytes, need %zu", what, len, need);
	if (sl_get_be32(in) != SL_WIRE_MAGIC)
		return sl_err(eb, -EPROTO, "%s: bad magic 0x%08x (not a sluice peer)", what,
			      sl_get_be32(in));
	if (sl_get_be16(in + 6) != msg)
		return sl_err(eb, -EPROTO, "%s: unexpected message type %u", what,
			      sl_get_be16(in + 6));
	return 0;
}

void sl_wire_encode_challenge(const struct sl_wire_challenge *c, uint8_t out[SL_CHALLENGE_LEN])
{
	memset(out, 0, SL_CHALLENGE_LEN);
	put_msg_head(out, c->version, SL_MSG_CHALLENGE);
	sl_put_be32(out + 8, c->caps);
	memcpy(out + 16, c->nonce, SL_NONCE_LEN);
}

int sl_wire_decode_challenge(const uint8_t *in, size_t len, struct sl_wire_challenge *c,
			     struct sl_errbuf *eb)
{
	int ret = check_msg_head(in, len, SL_CHALLENGE_LEN, SL_MSG_CHALLENGE, "challenge", eb);

	if (ret)
		return ret;
	if (sl_get_be32(in + 12))
		return sl_err(eb, -EINVAL, "challenge: reserved field not zero");
	c->version = sl_get_be16(in + 4);
	c->caps = sl_get_be32(in + 8);
	memcpy(c->nonce, in + 16, SL_NONCE_LEN);
	return 0;
}

void sl_wire_encode_hello(const struct sl_wire_hello *h, uint8_t out[SL_HELLO_LEN])
{
	memset(out, 0, SL_HELLO_LEN);
	put_msg_head(out, h->version, SL_MSG_HELLO);
	sl_put_be32(out + 8, h->caps);
	sl_put_be32(out + 12, h->page_size);
	memcpy(out + 16, h->session_id, SL_SESSION_ID_LEN);
	sl_put_be16(out + 32, h->channel_index);
	sl_put_be16(out + 34, h->channel_count);
	sl_put_be64(out + 40, h->granule_bytes);
	memcpy(out + 48, h->hmac, SL_HMAC_LEN);
}

int sl_wire_decode_hello(const uint8_t *in, size_t len, struct sl_wire_hello *h,
			 struct sl_errbuf *eb)
{
	int ret = check_msg_head(in, len, SL_HELLO_LEN, SL_MSG_HELLO, "hello", eb);

	if (ret)
		return ret;
	if (sl_get_be32(in + 36))
		return sl_err(eb, -EINVAL, "hello: reserved field not zero");
	h->version = sl_get_be16(in + 4);
	h->caps = sl_get_be32(in + 8);
	h->page_size = sl_get_be32(in + 12);
	memcpy(h->session_id, in + 16, SL_SESSION_ID_LEN);
	h->channel_index = sl_get_be16(in + 32);
	h->channel_count = sl_get_be16(in + 34);
	h->granule_bytes = sl_get_be64(in + 40);
	memcpy(h->hmac, in + 48, SL_HMAC_LEN);
	return 0;
}

size_t sl_wire_encode_verdict(const struct sl_wire_verdict *v,
			      uint8_t out[SL_VERDICT_FIXED_LEN + SL_VERDICT_REASON_MAX])
{
	size_t n = SL_MIN((size_t)v->reason_len, (size_t)SL_VERDICT_REASON_MAX);

	memset(out, 0, SL_VERDICT_FIXED_LEN);
	put_msg_head(out, v->version, SL_MSG_VERDICT);
	sl_put_be32(out + 8, v->status);
	sl_put_be16(out + 12, (uint16_t)n);
	memcpy(out + SL_VERDICT_FIXED_LEN, v->reason, n);
	return SL_VERDICT_FIXED_LEN + n;
}

int sl_wire_decode_verdict_fixed(const uint8_t *in, size_t len, struct sl_wire_verdict *v,
				 struct sl_errbuf *eb)
{
	int ret = check_msg_head(in, len, SL_VERDICT_FIXED_LEN, SL_MSG_VERDICT, "verdict", eb);

	if (ret)
		return ret;
	v->version = sl_get_be16(in + 4);
	v->status = sl_get_be32(in + 8);
	v->reason_len = sl_get_be16(in + 12);
	v->reason[0] = '\0';
	if (v->reason_len > SL_VERDICT_REASON_MAX)
		return sl_err(eb, -EINVAL, "verdict: reason of %u bytes (max %u)", v->reason_len,
			      SL_VERDICT_REASON_MAX);
	if (sl_get_be16(in + 14))
		return sl_err(eb, -EINVAL, "verdict: reserved field not zero");
	return 0;
}

void sl_wire_verdict_set_reason(struct sl_wire_verdict *v, const uint8_t *text, size_t len)
{
	size_t i;

	len = SL_MIN(len, (size_t)SL_VERDICT_REASON_MAX);
	/* The reason ends up in logs: keep it printable. */
	for (i = 0; i < len; i++)
		v->reason[i] = (text[i] >= 0x20 && text[i] < 0x7f) ? (char)text[i] : '?';
	v->reason[len] = '\0';
	v->reason_len = (uint16_t)len;
}

int sl_wire_hello_mac(const uint8_t *psk, size_t psk_len, const uint8_t nonce[SL_NONCE_LEN],
		      const uint8_t hello_bytes[SL_HELLO_LEN], uint8_t mac[SL_HMAC_LEN])
{
	uint8_t msg[SL_NONCE_LEN + SL_HELLO_SIGNED_LEN];
	unsigned int maclen = 0;

	memcpy(msg, nonce, SL_NONCE_LEN);
	memcpy(msg + SL_NONCE_LEN, hello_bytes, SL_HELLO_SIGNED_LEN);
	if (!HMAC(EVP_sha256(), psk, (int)psk_len, msg, sizeof(msg), mac, &maclen) ||
	    maclen != SL_HMAC_LEN)
		return -EIO;
	return 0;
}

bool sl_wire_mac_equal(const uint8_t a[SL_HMAC_LEN], const uint8_t b[SL_HMAC_LEN])
{
	return CRYPTO_memcmp(a, b, SL_HMAC_LEN) == 0;
}

/* ---- packets ------------------------------------------------------------- */

static const char *const type_names[] = {
	[SL_PKT_RAM] = "RAM", [SL_PKT_ZERO] = "ZERO", [SL_PKT_DEVICE] = "DEVICE",
	[SL_PKT_STATE] = "STATE", [SL_PKT_ITERATION_END] = "ITERATION_END",
	[SL_PKT_COMPLETE] = "COMPLETE", [SL_PKT_RESUMED] = "RESUMED", [SL_PKT_ERROR] = "ERROR",
	[SL_PKT_ACK] = "ACK",
};

const char *sl_wire_type_name(uint8_t type)
{
	if (type >= 1 && type <= SL_PKT_TYPE_MAX)
		return type_names[type];
	return "unknown";
}

size_t sl_wire_header_len(uint8_t type, uint32_t nranges)
{
	switch (type) {
	case SL_PKT_RAM:
	case SL_PKT_ZERO:
		return SL_PKT_COMMON_LEN + 8 + (size_t)nranges * SL_PKT_RANGE_LEN;
	case SL_PKT_DEVICE:
	case SL_PKT_ITERATION_END:
	case SL_PKT_COMPLETE:
	case SL_PKT_ACK:
		return SL_PKT_COMMON_LEN + 16;
	case SL_PKT_STATE:
	case SL_PKT_RESUMED:
	case SL_PKT_ERROR:
		return SL_PKT_COMMON_LEN + 8;
	default:
		return 0;
	}
}

static uint64_t max_payload(uint8_t type)
{
	switch (type) {
	case SL_PKT_RAM:
		return SL_PKT_MAX_RAM_PAYLOAD;
	case SL_PKT_DEVICE:
	case SL_PKT_STATE:
		return SL_PKT_MAX_BLOB_PAYLOAD;
	case SL_PKT_RESUMED:
	case SL_PKT_ERROR:
		return SL_PKT_MAX_TEXT_PAYLOAD;
	default:
		return 0;
	}
}

uint32_t sl_wire_header_checksum(const uint8_t *hdr, size_t hdr_len)
{
	uint8_t tmp[SL_PKT_MAX_HDR];

	/* Hash the header as if bytes [4,8) (the checksum field) were zero. */
	if (hdr_len < 8 || hdr_len > sizeof(tmp))
		return 0;
	memcpy(tmp, hdr, hdr_len);
	memset(tmp + 4, 0, 4);
	return XXH32(tmp, hdr_len, 0);
}

int sl_wire_encode_header(const struct sl_pkt *p, const struct sl_wire_range *ranges,
			  uint8_t *out, size_t out_len)
{
	uint32_t nr = 0;
	size_t hl;

	if (p->type == SL_PKT_RAM || p->type == SL_PKT_ZERO) {
		nr = p->u.ram.nranges;
		if (nr == 0 || nr > SL_PKT_MAX_RANGES)
			return -EINVAL;
	}
	hl = sl_wire_header_len(p->type, nr);
	if (!hl || hl > out_len || p->payload_len > max_payload(p->type))
		return -EINVAL;
	memset(out, 0, hl);
	out[0] = p->type;
	out[1] = p->flags;
	sl_put_be16(out + 2, (uint16_t)hl);
	sl_put_be64(out + 8, p->payload_len);
	sl_put_be64(out + 16, p->seq);
	sl_put_be32(out + 24, p->generation);
	switch (p->type) {
	case SL_PKT_RAM:
	case SL_PKT_ZERO:
		sl_put_be32(out + 32, p->u.ram.region_id);
		sl_put_be32(out + 36, nr);
		for (uint32_t i = 0; i < nr; i++) {
			sl_put_be64(out + 40 + i * SL_PKT_RANGE_LEN, ranges[i].first);
			sl_put_be64(out + 48 + i * SL_PKT_RANGE_LEN, ranges[i].npages);
		}
		break;
	case SL_PKT_DEVICE:
		sl_put_be32(out + 32, p->u.dev.device_id);
		sl_put_be32(out + 36, p->u.dev.flags);
		sl_put_be64(out + 40, p->u.dev.index);
		break;
	case SL_PKT_STATE:
		sl_put_be32(out + 32, p->u.state.kind);
		break;
	case SL_PKT_ITERATION_END:
	case SL_PKT_COMPLETE:
		sl_put_be64(out + 32, p->u.count.packets);
		sl_put_be64(out + 40, p->u.count.bytes);
		break;
	case SL_PKT_RESUMED:
		sl_put_be32(out + 32, (uint32_t)p->u.resumed.status);
		break;
	case SL_PKT_ERROR:
		sl_put_be32(out + 32, p->u.error.code);
		break;
	case SL_PKT_ACK:
		sl_put_be32(out + 32, p->u.ack.kind);
		sl_put_be32(out + 36, p->u.ack.id);
		sl_put_be64(out + 40, p->u.ack.value);
		break;
	}
	sl_put_be32(out + 4, sl_wire_header_checksum(out, hl));
	return (int)hl;
}

int sl_wire_decode_common(const uint8_t *in, size_t len, struct sl_pkt *p, struct sl_errbuf *eb)
{
	uint8_t type;
	size_t hl;

	if (len < SL_PKT_COMMON_LEN)
		return sl_err(eb, -EINVAL, "packet header truncated: %zu bytes", len);
	type = in[0];
	if (type < 1 || type > SL_PKT_TYPE_MAX)
		return sl_err(eb, -EINVAL, "unknown packet type %u", type);
	if (in[1] != 0)
		return sl_err(eb, -EINVAL, "%s packet: unknown header flags 0x%02x",
			      sl_wire_type_name(type), in[1]);
	memset(p, 0, sizeof(*p));
	p->type = type;
	p->hdr_len = sl_get_be16(in + 2);
	p->payload_len = sl_get_be64(in + 8);
	p->seq = sl_get_be64(in + 16);
	p->generation = sl_get_be32(in + 24);
	if (sl_get_be32(in + 28))
		return sl_err(eb, -EINVAL, "%s packet: reserved field not zero", sl_wire_type_name(type));
	hl = p->hdr_len;
	if (type == SL_PKT_RAM || type == SL_PKT_ZERO) {
		if (hl < sl_wire_header_len(type, 1) || hl > SL_PKT_MAX_HDR ||
		    (hl - SL_PKT_COMMON_LEN - 8) % SL_PKT_RANGE_LEN)
			return sl_err(eb, -EINVAL, "%s packet: bad header length %zu",
				      sl_wire_type_name(type), hl);
	} else if (hl != sl_wire_header_len(type, 0)) {
		return sl_err(eb, -EINVAL, "%s packet: bad header length %zu",
			      sl_wire_type_name(type), hl);
	}
	if (p->payload_len > max_payload(type))
		return sl_err(eb, -EINVAL, "%s packet: payload of %llu bytes (max %llu)",
			      sl_wire_type_name(type), (unsigned long long)p->payload_len,
			      (unsigned long long)max_payload(type));
	return 0;
}

int sl_wire_decode_header(const uint8_t *in, size_t len, uint32_t page_size,
			  struct sl_pkt *p, struct sl_errbuf *eb)
{
	uint32_t want, got;
	int ret;

	if (!page_size || (page_size & (page_size - 1)))
		return sl_err(eb, -EINVAL, "page size %u is not a power of two", page_size);
	ret = sl_wire_decode_common(in, len, p, eb);
	if (ret)
		return ret;
	if (len < p->hdr_len)
		return sl_err(eb, -EINVAL, "%s packet: header truncated (%zu of %u bytes)",
			      sl_wire_type_name(p->type), len, p->hdr_len);
	want = sl_get_be32(in + 4);
	got = sl_wire_header_checksum(in, p->hdr_len);
	if (want != got)
		return sl_err(eb, -EBADMSG, "%s packet seq %llu: header checksum 0x%08x, expected 0x%08x",
			      sl_wire_type_name(p->type), (unsigned long long)p->seq, got, want);
	switch (p->type) {
	case SL_PKT_RAM:
	case SL_PKT_ZERO: {
		uint64_t total = 0;

		p->u.ram.region_id = sl_get_be32(in + 32);
		p->u.ram.nranges = sl_get_be32(in + 36);
		p->u.ram.ranges = in + 40;
		if (sl_wire_header_len(p->type, p->u.ram.nranges) != p->hdr_len)
			return sl_err(eb, -EINVAL, "%s packet: %u ranges do not fill a %u-byte header",
				      sl_wire_type_name(p->type), p->u.ram.nranges, p->hdr_len);
		for (uint32_t i = 0; i < p->u.ram.nranges; i++) {
			struct sl_wire_range rg = sl_wire_get_range(p, i);

			/* 2^52 pages of 4 KiB is 2^64 bytes: anything larger cannot be a region. */
			if (rg.npages == 0 || rg.first >= (1ull << 52) || rg.npages > (1ull << 52) ||
			    rg.first + rg.npages > (1ull << 52))
				return sl_err(eb, -EINVAL, "%s packet: bad range %u (%llu+%llu)",
					      sl_wire_type_name(p->type), i,
					      (unsigned long long)rg.first,
					      (unsigned long long)rg.npages);
			total += rg.npages;
			if (total > (1ull << 52))
				return sl_err(eb, -EINVAL, "%s packet: too many pages",
					      sl_wire_type_name(p->type));
		}
		if (p->type == SL_PKT_RAM && (total > SL_PKT_MAX_RAM_PAYLOAD / page_size ||
					      total * page_size != p->payload_len))
			return sl_err(eb, -EINVAL, "RAM packet: payload %llu bytes != %llu pages x %u",
				      (unsigned long long)p->payload_len, (unsigned long long)total,
				      page_size);
		break;
	}
	case SL_PKT_DEVICE:
		p->u.dev.device_id = sl_get_be32(in + 32);
		p->u.dev.flags = sl_get_be32(in + 36);
		p->u.dev.index = sl_get_be64(in + 40);
		if (p->u.dev.flags & ~SL_DEV_FLAGS_KNOWN)
			return sl_err(eb, -EINVAL, "DEVICE packet: unknown flags 0x%x", p->u.dev.flags);
		break;
	case SL_PKT_STATE:
		p->u.state.kind = sl_get_be32(in + 32);
		if (sl_get_be32(in + 36))
			return sl_err(eb, -EINVAL, "STATE packet: reserved field not zero");
		break;
	case SL_PKT_ITERATION_END:
	case SL_PKT_COMPLETE:
		p->u.count.packets = sl_get_be64(in + 32);
		p->u.count.bytes = sl_get_be64(in + 40);
		break;
	case SL_PKT_RESUMED:
		p->u.resumed.status = (int32_t)sl_get_be32(in + 32);
		if (sl_get_be32(in + 36) || p->u.resumed.status > 0 || p->u.resumed.status < -4095)
			return sl_err(eb, -EINVAL, "RESUMED packet: bad status field");
		break;
	case SL_PKT_ERROR:
		p->u.error.code = sl_get_be32(in + 32);
		if (sl_get_be32(in + 36) || p->u.error.code > 4095)
			return sl_err(eb, -EINVAL, "ERROR packet: bad code field");
		break;
	case SL_PKT_ACK:
		p->u.ack.kind = sl_get_be32(in + 32);
		p->u.ack.id = sl_get_be32(in + 36);
		p->u.ack.value = sl_get_be64(in + 40);
		if (p->u.ack.kind != SL_ACK_DEVICE_INIT_LOADED)
			return sl_err(eb, -EINVAL, "ACK packet: unknown kind %u", p->u.ack.kind);
		break;
	}
	return 0;
}

struct sl_wire_range sl_wire_get_range(const struct sl_pkt *p, uint32_t i)
{
	struct sl_wire_range r = {
		.first = sl_get_be64(p->u.ram.ranges + (size_t)i * SL_PKT_RANGE_LEN),
		.npages = sl_get_be64(p->u.ram.ranges + (size_t)i * SL_PKT_RANGE_LEN + 8),
	};
	return r;
}
