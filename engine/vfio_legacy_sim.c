/* SPDX-License-Identifier: MIT */
/*
 * vfio_legacy_sim.c — a SIMULATED VFIO v1 migration region device (the
 * protocol no kernel driver ever shipped; seeds 000/001). It exists to test
 * the legacy adapter. Its save image is
 *   u64 magic, u64 state_bytes, state bytes, u64 XXH64(state)
 * and leaving RESUMING validates that image before applying it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sl_common.h"
#include "vfio_legacy_internal.h"

#define IMG_MAGIC 0x534c4c4547314d47ull

struct legacy_region {
	uint32_t device_state;
	uint64_t state_bytes, data_bytes;
	uint8_t *state;
	uint8_t *img;       /* save image, or the image being loaded */
	uint64_t img_len, pos;
	uint64_t staged;    /* bytes staged in the data area */
	uint8_t *data;      /* the region's data area */
};

uint64_t legacy_region_size(const struct legacy_region *r)
{
	return LEGACY_DATA_OFF + r->data_bytes;
}

int legacy_region_new(uint64_t state_bytes, uint64_t data_bytes, uint64_t seed,
		      struct legacy_region **out)
{
	struct legacy_region *r;
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 77;

	if (!state_bytes || data_bytes < 4096 || !out)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->state_bytes = state_bytes;
	r->data_bytes = data_bytes;
	r->img_len = 24 + state_bytes;
	r->state = malloc(state_bytes);
	r->img = malloc(r->img_len);
	r->data = malloc(data_bytes);
	if (!r->state || !r->img || !r->data) {
		legacy_region_free(&r);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < state_bytes; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		r->state[i] = (uint8_t)x;
	}
	r->device_state = LEGACY_RUNNING;
	*out = r;
	return 0;
}

void legacy_region_free(struct legacy_region **pr)
{
	if (!pr || !*pr)
		return;
	free((*pr)->state);
	free((*pr)->img);
	free((*pr)->data);
	free(*pr);
	*pr = NULL;
}

void legacy_region_reset(struct legacy_region *r)
{
	r->device_state = LEGACY_RUNNING;
	r->pos = 0;
	r->staged = 0;
}

uint64_t legacy_region_hash(struct legacy_region *r)
{
	return XXH64(r->state, r->state_bytes, 0);
}

static void build_image(struct legacy_region *r)
{
	uint64_t magic = IMG_MAGIC, h = XXH64(r->state, r->state_bytes, 0);

	memcpy(r->img, &magic, 8);
	memcpy(r->img + 8, &r->state_bytes, 8);
	memcpy(r->img + 16, r->state, r->state_bytes);
	memcpy(r->img + 16 + r->state_bytes, &h, 8);
	r->pos = 0;
	r->staged = 0;
}

static int validate_image(struct legacy_region *r)
{
	uint64_t magic, size, h;

	if (r->pos != r->img_len)
		return -EIO; /* short */
	memcpy(&magic, r->img, 8);
	memcpy(&size, r->img + 8, 8);
	memcpy(&h, r->img + 16 + r->state_bytes, 8);
	if (magic != IMG_MAGIC || size != r->state_bytes ||
	    h != XXH64(r->img + 16, r->state_bytes, 0))
		return -EIO;
	memcpy(r->state, r->img + 16, r->state_bytes);
	return 0;
}

int legacy_region_read(struct legacy_region *r, uint64_t off, void *buf, size_t len)
{
	uint64_t v;

	if (!r || !buf || off + len < off || off + len > legacy_region_size(r))
		return -EINVAL;
	if (off >= LEGACY_DATA_OFF) {
		memcpy(buf, r->data + (off - LEGACY_DATA_OFF), len);
		return 0;
	}
	bool saving = r->device_state & LEGACY_SAVING;
	switch (off) {
	case LEGACY_OFF_STATE:
		if (len != 4)
			return -EINVAL;
		memcpy(buf, &r->device_state, 4);
		return 0;
	case LEGACY_OFF_PENDING:
		v = saving ? r->img_len - r->pos : 0;
		break;
	case LEGACY_OFF_DATA_OFFSET:
		if (!saving)
			return -EINVAL;
		/* Reading data_offset makes the device stage the next data. */
		r->staged = SL_MIN(r->data_bytes, r->img_len - r->pos);
		memcpy(r->data, r->img + r->pos, r->staged);
		r->pos += r->staged;
		v = LEGACY_DATA_OFF;
		break;
	case LEGACY_OFF_DATA_SIZE:
		v = r->staged;
		break;
	default:
		return -EINVAL;
	}
	if (len != 8)
		return -EINVAL;
	memcpy(buf, &v, 8);
	return 0;
}

int legacy_region_write(struct legacy_region *r, uint64_t off, const void *buf, size_t len)
{
	uint64_t v;
	uint32_t ns;

	if (!r || !buf || off + len < off || off + len > legacy_region_size(r))
		return -EINVAL;
	if (off >= LEGACY_DATA_OFF) {
		if (!(r->device_state & LEGACY_RESUMING))
			return -EINVAL;
		memcpy(r->data + (off - LEGACY_DATA_OFF), buf, len);
		return 0;
	}
	if (off == LEGACY_OFF_STATE && len == 4) {
		memcpy(&ns, buf, 4);
		if (ns > 7 || ns == (LEGACY_SAVING | LEGACY_RESUMING) || ns == 5 || ns == 7)
			return -EINVAL;
		if ((r->device_state & LEGACY_RESUMING) && !(ns & LEGACY_RESUMING)) {
			int ret = validate_image(r);
			if (ret < 0) {
				/* v1's error state: SAVING|RESUMING. */
				r->device_state = LEGACY_SAVING | LEGACY_RESUMING;
				return ret;
			}
		}
		if ((ns & LEGACY_SAVING) && !(r->device_state & LEGACY_SAVING))
			build_image(r);
		if ((ns & LEGACY_RESUMING) && !(r->device_state & LEGACY_RESUMING)) {
			r->pos = 0;
			r->staged = 0;
		}
		r->device_state = ns;
		return 0;
	}
	if (off == LEGACY_OFF_DATA_SIZE && len == 8) {
		if (!(r->device_state & LEGACY_RESUMING))
			return -EINVAL;
		memcpy(&v, buf, 8);
		/* Writing data_size hands the device that many bytes of the data area. */
		if (v > r->data_bytes || r->pos + v > r->img_len)
			return -EINVAL;
		memcpy(r->img + r->pos, r->data, v);
		r->pos += v;
		return 0;
	}
	return -EINVAL;
}
