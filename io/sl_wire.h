/* SPDX-License-Identifier: MIT */
/*
 * sl_wire.h — the sluice wire format: handshake messages and packet headers,
 * encoded and decoded to/from big-endian bytes. docs/wire-format.md is the
 * normative spec; this header mirrors it (sizes, offsets, limits).
 *
 * Everything here is pure: no sockets, no allocation, thread-safe. Decoders
 * validate lengths, reserved fields and the header checksum and return
 * -EINVAL (or -EBADMSG for a checksum mismatch, -EPROTO for a bad magic or
 * version) with a reason in eb; they never read past the given length.
 */
#ifndef SL_WIRE_H
#define SL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_common.h"

#define SL_WIRE_MAGIC 0x534C5543u   /* "SLUC" */
#define SL_WIRE_VERSION 1u

/* ---- handshake ----------------------------------------------------------- */

enum sl_wire_msg {
	SL_MSG_CHALLENGE = 1, /* receiver -> sender: nonce */
	SL_MSG_HELLO = 2,     /* sender -> receiver: identity + HMAC proof */
	SL_MSG_VERDICT = 3,   /* receiver -> sender: accept, or refusal + reason */
};

/* Capability bits (HELLO.caps and CHALLENGE.caps). */
#define SL_CAP_HDR_XXH32 (1u << 0)  /* packet headers carry XXH32 (mandatory in v1) */
#define SL_CAP_ZEROCOPY (1u << 1)   /* sender transmits page data zero-copy (informational) */
#define SL_CAP_KNOWN (SL_CAP_HDR_XXH32 | SL_CAP_ZEROCOPY)

#define SL_NONCE_LEN 32
#define SL_HMAC_LEN 32
#define SL_SESSION_ID_LEN 16
#define SL_MAX_CHANNELS 64
#define SL_VERDICT_REASON_MAX 240

#define SL_CHALLENGE_LEN 48
struct sl_wire_challenge {
	uint16_t version;
	uint32_t caps;
	uint8_t nonce[SL_NONCE_LEN];
};

#define SL_HELLO_LEN 80
#define SL_HELLO_SIGNED_LEN 48 /* bytes [0,48) of HELLO are covered by the HMAC */
struct sl_wire_hello {
	uint16_t version;
	uint32_t caps;
	uint32_t page_size;
	uint8_t session_id[SL_SESSION_ID_LEN];
	uint16_t channel_index;
	uint16_t channel_count;
	uint64_t granule_bytes;
	uint8_t hmac[SL_HMAC_LEN];
};

#define SL_VERDICT_FIXED_LEN 16
struct sl_wire_verdict {
	uint16_t version;
	uint32_t status; /* 0 = accepted, else a positive errno */
	uint16_t reason_len;
	char reason[SL_VERDICT_REASON_MAX + 1]; /* NUL-terminated after decode */
};

/* Encoders write exactly the message's length into out (caller sizes it). */
void sl_wire_encode_challenge(const struct sl_wire_challenge *c, uint8_t out[SL_CHALLENGE_LEN]);
void sl_wire_encode_hello(const struct sl_wire_hello *h, uint8_t out[SL_HELLO_LEN]);
/* Returns the encoded length: SL_VERDICT_FIXED_LEN + reason_len. */
size_t sl_wire_encode_verdict(const struct sl_wire_verdict *v,
			      uint8_t out[SL_VERDICT_FIXED_LEN + SL_VERDICT_REASON_MAX]);

/* Decoders: 0, or -EPROTO (magic/message type), -EINVAL (reserved bits,
 * field ranges). A version mismatch is NOT a decode error: the caller
 * compares the version and refuses with a reason. */
int sl_wire_decode_challenge(const uint8_t *in, size_t len, struct sl_wire_challenge *c,
			     struct sl_errbuf *eb);
int sl_wire_decode_hello(const uint8_t *in, size_t len, struct sl_wire_hello *h,
			 struct sl_errbuf *eb);
/* Decodes the fixed part; *reason_len_out tells how many reason bytes follow
 * (<= SL_VERDICT_REASON_MAX). Use sl_wire_verdict_set_reason() after reading them. */
int sl_wire_decode_verdict_fixed(const uint8_t *in, size_t len, struct sl_wire_verdict *v,
				 struct sl_errbuf *eb);
void sl_wire_verdict_set_reason(struct sl_wire_verdict *v, const uint8_t *text, size_t len);

/* HMAC-SHA256(psk, nonce || hello[0, SL_HELLO_SIGNED_LEN)) via OpenSSL
 * libcrypto. Returns 0 or -EIO. */
int sl_wire_hello_mac(const uint8_t *psk, size_t psk_len, const uint8_t nonce[SL_NONCE_LEN],
		      const uint8_t hello_bytes[SL_HELLO_LEN], uint8_t mac[SL_HMAC_LEN]);
/* Constant-time comparison of two MACs. */
bool sl_wire_mac_equal(const uint8_t a[SL_HMAC_LEN], const uint8_t b[SL_HMAC_LEN]);

/* ---- packets ------------------------------------------------------------- */

enum sl_pkt_type {
	SL_PKT_RAM = 1,            /* region id + ranges, then the pages back-to-back */
	SL_PKT_ZERO = 2,           /* region id + ranges whose pages are all zero; no payload */
	SL_PKT_DEVICE = 3,         /* device id, index, flags; payload = state bytes */
	SL_PKT_STATE = 4,          /* kind; payload = CPU/config blob */
	SL_PKT_ITERATION_END = 5,  /* per channel: packets and bytes in this generation */
	SL_PKT_COMPLETE = 6,       /* per channel: totals; last packet of the channel */
	SL_PKT_RESUMED = 7,        /* receiver -> sender on channel 0: status + text */
	SL_PKT_ERROR = 8,          /* either direction: code + reason text */
	SL_PKT_ACK = 9,            /* receiver -> sender on channel 0, during the session */
	SL_PKT_TYPE_MAX = 9,
};

/* ACK kinds. */
#define SL_ACK_DEVICE_INIT_LOADED 1u /* device `id` loaded its initial (PRE_COPY) data:
				      * the switchover acknowledgement */

/* DEVICE packet flags (the device's own flags field, not the header flags). */
#define SL_DEV_FLAG_LAST (1u << 0)   /* the device's last packet */
#define SL_DEV_FLAG_CONFIG (1u << 1) /* carries config state (QEMU's CONFIG_STATE) */
#define SL_DEV_FLAG_INIT_DONE (1u << 2) /* source's initial_bytes reached 0 with this packet */
#define SL_DEV_FLAGS_KNOWN (SL_DEV_FLAG_LAST | SL_DEV_FLAG_CONFIG | SL_DEV_FLAG_INIT_DONE)

#define SL_PKT_COMMON_LEN 32
#define SL_PKT_RANGE_LEN 16
#define SL_PKT_MAX_RANGES 128
#define SL_PKT_MAX_HDR (SL_PKT_COMMON_LEN + 8 + SL_PKT_MAX_RANGES * SL_PKT_RANGE_LEN)
#define SL_PKT_MAX_RAM_PAYLOAD (64u << 20)    /* bytes of pages in one RAM packet */
#define SL_PKT_MAX_BLOB_PAYLOAD (64u << 20)   /* DEVICE and STATE payloads */
#define SL_PKT_MAX_TEXT_PAYLOAD 1024u         /* RESUMED and ERROR reason text */

struct sl_wire_range {
	uint64_t first;   /* page number relative to the region */
	uint64_t npages;  /* > 0 */
};

/* A decoded packet header. `ranges` points into the caller's buffer passed
 * to sl_wire_decode_header (the ranges stay big-endian there); use
 * sl_wire_get_range() to read one. */
struct sl_pkt {
	uint8_t type;
	uint8_t flags;          /* header flags: 0 in v1 */
	uint16_t hdr_len;
	uint64_t payload_len;
	uint64_t seq;
	uint32_t generation;
	union {
		struct { uint32_t region_id; uint32_t nranges; const uint8_t *ranges; } ram; /* RAM, ZERO */
		struct { uint32_t device_id; uint32_t flags; uint64_t index; } dev;
		struct { uint32_t kind; } state;
		struct { uint64_t packets; uint64_t bytes; } count; /* ITERATION_END, COMPLETE */
		struct { int32_t status; } resumed;                  /* 0 or negative errno */
		struct { uint32_t code; } error;                     /* positive errno */
		struct { uint32_t kind; uint32_t id; uint64_t value; } ack; /* SL_ACK_* */
	} u;
};

/* Header length a packet of this type has (RAM/ZERO: with nranges). */
size_t sl_wire_header_len(uint8_t type, uint32_t nranges);

/* Encodes p's header (type-specific fields from p->u, RAM/ZERO ranges from
 * `ranges`, host order) into out and fills in hdr_len and the checksum.
 * p->payload_len must already be set. Returns the header length or -EINVAL
 * (unknown type, too many ranges, out too small). */
int sl_wire_encode_header(const struct sl_pkt *p, const struct sl_wire_range *ranges,
			  uint8_t *out, size_t out_len);

/* Step 1 of decoding: the 32-byte common part. Validates type, flags, hdr_len
 * (matches the type, a multiple of 8, <= SL_PKT_MAX_HDR) and the payload
 * limit for the type, but not the checksum (which covers the whole header).
 * Returns 0 and sets p->type/flags/hdr_len/payload_len/seq/generation. */
int sl_wire_decode_common(const uint8_t *in, size_t len, struct sl_pkt *p, struct sl_errbuf *eb);

/* Step 2: the full header (in holds hdr_len bytes). Verifies the checksum
 * (-EBADMSG), the type-specific fields, and for RAM/ZERO that nranges matches
 * hdr_len, each range is non-empty and non-overflowing and — for RAM — that
 * payload_len == sum(npages) * page_size. page_size must be a power of two. */
int sl_wire_decode_header(const uint8_t *in, size_t len, uint32_t page_size,
			  struct sl_pkt *p, struct sl_errbuf *eb);

/* Range i of a decoded RAM/ZERO header (i < p->u.ram.nranges). */
struct sl_wire_range sl_wire_get_range(const struct sl_pkt *p, uint32_t i);

/* XXH32 (seed 0) over the header with its checksum field taken as zero. */
uint32_t sl_wire_header_checksum(const uint8_t *hdr, size_t hdr_len);

const char *sl_wire_type_name(uint8_t type);

/* Big-endian helpers (also used by tests and the fuzz target). */
static inline void sl_put_be16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static inline void sl_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (uint8_t)v;
}
static inline void sl_put_be64(uint8_t *p, uint64_t v)
{
	sl_put_be32(p, (uint32_t)(v >> 32));
	sl_put_be32(p + 4, (uint32_t)v);
}
static inline uint16_t sl_get_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t sl_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t sl_get_be64(const uint8_t *p)
{
	return (uint64_t)sl_get_be32(p) << 32 | sl_get_be32(p + 4);
}

#endif /* SL_WIRE_H */
