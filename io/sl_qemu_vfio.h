/* SPDX-License-Identifier: MIT */
/*
 * sl_qemu_vfio.h — QEMU's VFIO device-state formats, so sluice can produce
 * and consume QEMU's stream:
 *
 * 1. The VFIO section framing in QEMU's main migration stream (hw/vfio/
 *    migration.c; all be64): markers END_OF_STATE 0xffffffffef100001,
 *    CONFIG_STATE ..02, SETUP_STATE ..03, DATA_STATE ..04 (followed by a
 *    be64 size and that many bytes), INIT_DATA_SENT ..05, CONFIG_LOAD_READY
 *    ..06. A precopy iteration is DATA_STATE size bytes [INIT_DATA_SENT]
 *    END_OF_STATE; config is CONFIG_STATE <vmstate> END_OF_STATE.
 * 2. Multifd device-state packets (migration/multifd.h, hw/vfio/
 *    migration-multifd.c): a MultiFDPacketDeviceState_t header {be32 magic
 *    0x11223344, be32 version 1, be32 flags (DEVICE_STATE = 0x40), char
 *    idstr[256], be32 instance_id, be32 next_packet_size} followed by a
 *    VFIODeviceStatePacket {be32 version 0, be32 idx, be32 flags
 *    (CONFIG_STATE = 1), data[]}.
 *
 * All functions are pure (no I/O, no allocation) and thread-safe.
 */
#ifndef SL_QEMU_VFIO_H
#define SL_QEMU_VFIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SL_QEMU_VFIO_END_OF_STATE 0xffffffffef100001ull
#define SL_QEMU_VFIO_CONFIG_STATE 0xffffffffef100002ull
#define SL_QEMU_VFIO_SETUP_STATE 0xffffffffef100003ull
#define SL_QEMU_VFIO_DATA_STATE 0xffffffffef100004ull
#define SL_QEMU_VFIO_INIT_DATA_SENT 0xffffffffef100005ull
#define SL_QEMU_VFIO_CONFIG_LOAD_READY 0xffffffffef100006ull

/* ---- section framing: writer into a caller buffer ------------------------ */
struct sl_qemu_buf {
	uint8_t *p;
	size_t len; /* bytes written so far */
	size_t cap;
};
/* Each returns 0 or -ENOSPC (nothing written) / -EINVAL. */
int sl_qemu_vfio_put_marker(struct sl_qemu_buf *b, uint64_t marker);
/* DATA_STATE, be64 len, bytes. */
int sl_qemu_vfio_put_data(struct sl_qemu_buf *b, const void *data, size_t len);
/* CONFIG_STATE, bytes, END_OF_STATE. */
int sl_qemu_vfio_put_config(struct sl_qemu_buf *b, const void *cfg, size_t len);

/* ---- section framing: decoder ------------------------------------------- */
enum sl_qemu_vfio_item_kind {
	SL_QEMU_ITEM_MARKER = 1, /* a bare marker (END_OF_STATE, SETUP, INIT_DATA_SENT, ...) */
	SL_QEMU_ITEM_DATA = 2,   /* DATA_STATE chunk: data/len */
	SL_QEMU_ITEM_CONFIG = 3, /* CONFIG_STATE body up to (excluding) END_OF_STATE */
};
struct sl_qemu_vfio_item {
	enum sl_qemu_vfio_item_kind kind;
	uint64_t marker;
	const uint8_t *data;
	size_t len;
};
struct sl_qemu_vfio_dec {
	const uint8_t *p;
	size_t len;
	size_t off;
};
void sl_qemu_vfio_dec_init(struct sl_qemu_vfio_dec *d, const void *buf, size_t len);
/* 1 and *it, 0 at the end of the buffer, -EAGAIN when the buffer ends inside
 * an item (give more bytes), -EINVAL for an unknown marker or a size beyond
 * max_chunk. CONFIG bodies are delimited by the END_OF_STATE pattern (QEMU
 * does not length-prefix them). */
int sl_qemu_vfio_next(struct sl_qemu_vfio_dec *d, struct sl_qemu_vfio_item *it, size_t max_chunk);

/* ---- multifd device-state packets ---------------------------------------- */
#define SL_QEMU_MULTIFD_MAGIC 0x11223344u
#define SL_QEMU_MULTIFD_VERSION 1u
#define SL_QEMU_MULTIFD_FLAG_SYNC (1u << 0)
#define SL_QEMU_MULTIFD_FLAG_DEVICE_STATE (32u << 1)
#define SL_QEMU_MULTIFD_DEV_HDR_LEN 276u /* 12 + 256 + 4 + 4 */
#define SL_QEMU_VFIO_PKT_HDR_LEN 12u
#define SL_QEMU_VFIO_PKT_VERSION 0u
#define SL_QEMU_VFIO_PKT_CONFIG_STATE 1u

struct sl_qemu_devstate_pkt {
	char idstr[257];      /* NUL-terminated */
	uint32_t instance_id;
	uint32_t mf_flags;    /* multifd header flags (DEVICE_STATE set) */
	uint32_t idx;
	uint32_t flags;       /* SL_QEMU_VFIO_PKT_CONFIG_STATE */
	const uint8_t *data;
	size_t len;
};
/* Encodes one packet; returns its size, or -ENOSPC / -EINVAL (idstr > 255
 * chars, len too large for be32). */
ssize_t sl_qemu_multifd_encode(void *buf, size_t cap, const char *idstr, uint32_t instance_id,
			       uint32_t idx, uint32_t flags, const void *data, size_t len);
/* Decodes one packet from the start of buf: bytes consumed, -EAGAIN (need
 * more), -EPROTO (bad magic/version/flags). out->data points into buf. */
ssize_t sl_qemu_multifd_decode(const void *buf, size_t len, struct sl_qemu_devstate_pkt *out);

#endif /* SL_QEMU_VFIO_H */
