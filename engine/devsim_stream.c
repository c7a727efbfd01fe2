/* SPDX-License-Identifier: MIT */
/*
 * devsim_stream.c — the SIMULATED device's stream: records
 * {u32 magic, u32 type, u64 offset, u32 len, u32 0} + payload, DATA records
 * of state chunks and an END record carrying the XXH3-64 of every byte
 * before it. Saving builds them (initial chunks first, then re-dirtied ones;
 * in STOP_COPY everything left, then END); resuming parses and checks them.
 */
#include <stdio.h>
#include <string.h>

#include "devsim_internal.h"

static void put_rec(struct devsim *s, uint32_t type, uint64_t off, const void *p, uint32_t len)
{
	uint8_t *o = s->out;
	uint32_t magic = REC_MAGIC, zero = 0;

	memcpy(o, &magic, 4);
	memcpy(o + 4, &type, 4);
	memcpy(o + 8, &off, 8);
	memcpy(o + 16, &len, 4);
	memcpy(o + 20, &zero, 4);
	/* Stopped, the state cannot change under the write: send it from
	 * where it lies. Running, copy it (the device may rewrite it). */
	if (s->state == SL_VFIO_STOP_COPY && type == REC_DATA && !s->cfg.corrupt_stream) {
		s->pay = p;
	} else {
		s->pay = NULL;
		memcpy(o + REC_HDR, p, len);
	}
	s->out_len = REC_HDR + len;
	s->out_off = 0;
}

/* Builds the next record into s->out (lock held). false: nothing to send now. */
bool devsim_build_next(struct devsim *s)
{
	bool stopcopy = s->state == SL_VFIO_STOP_COPY;
	uint64_t limit = stopcopy ? s->nchunks : s->pre_chunks;

	if (s->end_built)
		return false;
	/* Initial (never sent) chunks first, in order. */
	for (; s->scan_pos < limit; s->scan_pos++) {
		uint64_t c = s->scan_pos;
		if (!s->sent[c]) {
			put_rec(s, REC_DATA, c * s->chunk, s->mem + c * s->chunk,
				(uint32_t)chunk_len(s, c));
			s->sent[c] = 1;
			s->dirty[c] = 0;
			s->scan_pos++;
			goto built;
		}
	}
	for (uint64_t c = 0; c < limit; c++) {
		if (s->dirty[c]) {
			put_rec(s, REC_DATA, c * s->chunk, s->mem + c * s->chunk,
				(uint32_t)chunk_len(s, c));
			s->dirty[c] = 0;
			goto built;
		}
	}
	if (!stopcopy)
		return false;
	{
		uint64_t h = XXH3_64bits_digest(s->hs);
		put_rec(s, REC_END, s->cfg.state_bytes, &h, 8);
		s->end_built = true;
	}
built:
	if (!s->end_built) {
		if (s->pay) {
			XXH3_64bits_update(s->hs, s->out, REC_HDR);
			XXH3_64bits_update(s->hs, s->pay, s->out_len - REC_HDR);
		} else {
			XXH3_64bits_update(s->hs, s->out, s->out_len);
		}
		/* Test hook: the bytes differ from what the checksum covers. */
		if (s->cfg.corrupt_stream && !s->corrupt_done) {
			s->out[REC_HDR] ^= 0x5a;
			s->corrupt_done = true;
		}
	}
	return true;
}

/* ---- resume-side parser ---------------------------------------------------- */

void devsim_load_fail(struct devsim *s, const char *why)
{
	if (!s->load_bad)
		snprintf(s->load_err, sizeof(s->load_err), "%s", why);
	s->load_bad = true;
}

void devsim_parse(struct devsim *s, const uint8_t *p, size_t n)
{
	while (n && !s->load_bad) {
		if (s->hdr_fill < REC_HDR) {
			size_t k = SL_MIN(n, REC_HDR - s->hdr_fill);
			uint32_t magic;

			memcpy(s->hdr + s->hdr_fill, p, k);
			s->hdr_fill += k;
			p += k;
			n -= k;
			if (s->hdr_fill < REC_HDR)
				return;
			if (s->end_seen)
				return devsim_load_fail(s, "data after the end record");
			memcpy(&magic, s->hdr, 4);
			memcpy(&s->cur_type, s->hdr + 4, 4);
			memcpy(&s->cur_off, s->hdr + 8, 8);
			memcpy(&s->cur_len, s->hdr + 16, 4);
			s->cur_done = 0;
			if (magic != REC_MAGIC)
				return devsim_load_fail(s, "bad record magic");
			if (s->cur_type == REC_DATA) {
				if (s->cur_off % s->chunk || s->cur_len == 0 ||
				    s->cur_off + s->cur_len > s->cfg.state_bytes ||
				    s->cur_len != chunk_len(s, s->cur_off / s->chunk))
					return devsim_load_fail(s, "record outside the device state");
				XXH3_64bits_update(s->ls, s->hdr, REC_HDR);
			} else if (s->cur_type == REC_END) {
				if (s->cur_len != 8 || s->cur_off != s->cfg.state_bytes)
					return devsim_load_fail(s, "bad end record");
			} else {
				return devsim_load_fail(s, "unknown record type");
			}
			continue;
		}
		size_t k = SL_MIN(n, (size_t)(s->cur_len - s->cur_done));
		if (s->cur_type == REC_DATA) {
			memcpy(s->mem + s->cur_off + s->cur_done, p, k);
			XXH3_64bits_update(s->ls, p, k);
		} else {
			memcpy(s->end_hash + s->cur_done, p, k);
		}
		s->cur_done += k;
		p += k;
		n -= k;
		if (s->cur_done == s->cur_len) {
			if (s->cur_type == REC_DATA) {
				s->loaded[s->cur_off / s->chunk] = 1;
			} else {
				uint64_t want, got = XXH3_64bits_digest(s->ls);
				memcpy(&want, s->end_hash, 8);
				if (want != got)
					return devsim_load_fail(s, "stream checksum mismatch");
				s->end_seen = true;
			}
			s->hdr_fill = 0;
		}
	}
}
