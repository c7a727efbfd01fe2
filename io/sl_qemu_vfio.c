/* SPDX-License-Identifier: MIT */
/* sl_qemu_vfio.c — QEMU VFIO section framing and multifd device-state packets. */
#include "sl_qemu_vfio.h"

#include <endian.h>
#include <stdbool.h>
#include <errno.h>
#include <string.h>

static int put(struct sl_qemu_buf *b, const void *p, size_t n)
{
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static void put64(struct sl_qemu_buf *b, uint64_t v)
{
	v = htobe64(v);
	put(b, &v, 8);
}

static bool room(const struct sl_qemu_buf *b, size_t n)
{
	return b->len <= b->cap && n <= b->cap - b->len;
}

int sl_qemu_vfio_put_marker(struct sl_qemu_buf *b, uint64_t marker)
{
	if (!b || !b->p)
		return -EINVAL;
	if (!room(b, 8))
		return -ENOSPC;
	put64(b, marker);
	return 0;
}

int sl_qemu_vfio_put_data(struct sl_qemu_buf *b, const void *data, size_t len)
{
	if (!b || !b->p || (len && !data))
		return -EINVAL;
	if (len > SIZE_MAX - 16 || !room(b, 16 + len))
		return -ENOSPC;
	put64(b, SL_QEMU_VFIO_DATA_STATE);
	put64(b, len);
	if (len)
		put(b, data, len);
	return 0;
}

int sl_qemu_vfio_put_config(struct sl_qemu_buf *b, const void *cfg, size_t len)
{
	if (!b || !b->p || (len && !cfg))
		return -EINVAL;
	if (len > SIZE_MAX - 16 || !room(b, 16 + len))
		return -ENOSPC;
	put64(b, SL_QEMU_VFIO_CONFIG_STATE);
	if (len)
		put(b, cfg, len);
	put64(b, SL_QEMU_VFIO_END_OF_STATE);
	return 0;
}

void sl_qemu_vfio_dec_init(struct sl_qemu_vfio_dec *d, const void *buf, size_t len)
{
	d->p = buf;
	d->len = len;
	d->off = 0;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return be64toh(v);
}

int sl_qemu_vfio_next(struct sl_qemu_vfio_dec *d, struct sl_qemu_vfio_item *it, size_t max_chunk)
{
	size_t left;
	uint64_t m;

	if (!d || !it)
		return -EINVAL;
	if (d->off == d->len)
		return 0;
	left = d->len - d->off;
	if (left < 8)
		return -EAGAIN;
	m = get64(d->p + d->off);
	memset(it, 0, sizeof(*it));
	it->marker = m;
	switch (m) {
	case SL_QEMU_VFIO_END_OF_STATE:
	case SL_QEMU_VFIO_SETUP_STATE:
	case SL_QEMU_VFIO_INIT_DATA_SENT:
	case SL_QEMU_VFIO_CONFIG_LOAD_READY:
		it->kind = SL_QEMU_ITEM_MARKER;
		d->off += 8;
		return 1;
	case SL_QEMU_VFIO_DATA_STATE: {
		if (left < 16)
			return -EAGAIN;
		uint64_t n = get64(d->p + d->off + 8);
		if (n > max_chunk)
			return -EINVAL;
		if (n > left - 16)
			return -EAGAIN;
		it->kind = SL_QEMU_ITEM_DATA;
		it->data = d->p + d->off + 16;
		it->len = (size_t)n;
		d->off += 16 + (size_t)n;
		return 1;
	}
	case SL_QEMU_VFIO_CONFIG_STATE: {
		const uint8_t *body = d->p + d->off + 8;
		size_t blen = left - 8;
		for (size_t i = 0; i + 8 <= blen; i++) {
			if (body[i] == 0xff && get64(body + i) == SL_QEMU_VFIO_END_OF_STATE) {
				if (i > max_chunk)
					return -EINVAL;
				it->kind = SL_QEMU_ITEM_CONFIG;
				it->data = body;
				it->len = i;
				d->off += 8 + i + 8;
				return 1;
			}
		}
		return blen > max_chunk + 8 ? -EINVAL : -EAGAIN;
	}
	default:
		return -EINVAL;
	}
}

static void w32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
}

static uint32_t r32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return be32toh(v);
}

ssize_t sl_qemu_multifd_encode(void *buf, size_t cap, const char *idstr, uint32_t instance_id,
			       uint32_t idx, uint32_t flags, const void *data, size_t len)
{
	uint8_t *p = buf;
	size_t idlen, total;

	if (!buf || !idstr || (len && !data))
		return -EINVAL;
	idlen = strlen(idstr);
	if (idlen > 255 || len > UINT32_MAX - SL_QEMU_VFIO_PKT_HDR_LEN)
		return -EINVAL;
	total = SL_QEMU_MULTIFD_DEV_HDR_LEN + SL_QEMU_VFIO_PKT_HDR_LEN + len;
	if (cap < total)
		return -ENOSPC;
	w32(p, SL_QEMU_MULTIFD_MAGIC);
	w32(p + 4, SL_QEMU_MULTIFD_VERSION);
	w32(p + 8, SL_QEMU_MULTIFD_FLAG_DEVICE_STATE);
	memset(p + 12, 0, 256);
	memcpy(p + 12, idstr, idlen);
	w32(p + 268, instance_id);
	w32(p + 272, (uint32_t)(SL_QEMU_VFIO_PKT_HDR_LEN + len));
	p += SL_QEMU_MULTIFD_DEV_HDR_LEN;
	w32(p, SL_QEMU_VFIO_PKT_VERSION);
	w32(p + 4, idx);
	w32(p + 8, flags);
	if (len)
		memcpy(p + 12, data, len);
	return (ssize_t)total;
}

ssize_t sl_qemu_multifd_decode(const void *buf, size_t len, struct sl_qemu_devstate_pkt *out)
{
	const uint8_t *p = buf;
	uint32_t next;

	if (!buf || !out)
		return -EINVAL;
	if (len < SL_QEMU_MULTIFD_DEV_HDR_LEN)
		return -EAGAIN;
	if (r32(p) != SL_QEMU_MULTIFD_MAGIC || r32(p + 4) != SL_QEMU_MULTIFD_VERSION ||
	    !(r32(p + 8) & SL_QEMU_MULTIFD_FLAG_DEVICE_STATE))
		return -EPROTO;
	next = r32(p + 272);
	if (next < SL_QEMU_VFIO_PKT_HDR_LEN)
		return -EPROTO;
	if (len - SL_QEMU_MULTIFD_DEV_HDR_LEN < next)
		return -EAGAIN;
	const uint8_t *v = p + SL_QEMU_MULTIFD_DEV_HDR_LEN;
	if (r32(v) != SL_QEMU_VFIO_PKT_VERSION)
		return -EPROTO;
	memcpy(out->idstr, p + 12, 256);
	out->idstr[256] = 0;
	out->mf_flags = r32(p + 8);
	out->instance_id = r32(p + 268);
	out->idx = r32(v + 4);
	out->flags = r32(v + 8);
	out->data = v + 12;
	out->len = next - SL_QEMU_VFIO_PKT_HDR_LEN;
	return (ssize_t)(SL_QEMU_MULTIFD_DEV_HDR_LEN + next);
}
