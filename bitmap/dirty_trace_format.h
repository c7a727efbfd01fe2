/* SPDX-License-Identifier: MIT */
/*
 * dirty_trace_format.h — the on-disk layout of a sluice dirty trace
 * (normative text: docs/dirty-sources.md, "Trace files"). All integers are
 * little-endian; offsets in bytes.
 *
 * File header (64 bytes, at offset 0):
 *   0  magic "SLDTRACE"        8  u32 version (1)     12 u32 header_size (64)
 *   16 u32 page_size           20 u32 flags (bit 0: finalized)
 *   24 u64 record_count        32 u32 region_count    36 u32 reserved (0)
 *   40 u64 created_unix_ns     48 u64 reserved (0)    56 u64 XXH64(bytes 0..55, seed 0)
 * record_count and region_count are valid only when finalized (set by close).
 *
 * Record (48-byte header, then comp_len bytes), repeated to the end of file:
 *   0  magic "SLRC"            4  u32 region_id       8  u64 t_ns
 *   16 u64 npages              24 u64 ndirty (bits set)
 *   32 u32 comp_len            36 u32 reserved (0)
 *   40 u64 XXH64(header bytes 0..39 then the payload, seed 0)
 *   payload: one zstd frame whose content is the bitmap, SL_DIV_ROUND_UP(
 *   npages, 64) little-endian u64 words, bit n of word w = page w*64+n, bits
 *   past npages zero.
 */
#ifndef SL_DIRTY_TRACE_FORMAT_H
#define SL_DIRTY_TRACE_FORMAT_H

#include <stdint.h>
#include <string.h>

#define SL_TRACE_MAGIC "SLDTRACE"
#define SL_TRACE_VERSION 1u
#define SL_TRACE_HDR_SIZE 64u
#define SL_TRACE_HDR_HASHED 56u
#define SL_TRACE_FLAG_FINALIZED (1u << 0)

#define SL_TRACE_REC_MAGIC "SLRC"
#define SL_TRACE_REC_SIZE 48u
#define SL_TRACE_REC_HASHED 40u

/* Largest region a record may hold: 2^34 pages (64 TiB of 4 KiB pages, a
 * 2 GiB bitmap), which keeps a compressed frame's length within a u32. */
#define SL_TRACE_MAX_NPAGES (UINT64_C(1) << 34)

/* zstd level: 1 is the fastest; dirty bitmaps are mostly runs of zeros or
 * ones and compress well at any level. */
#define SL_TRACE_ZSTD_LEVEL 1

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "trace payload bitmaps are written as native little-endian words");

static inline void sl_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void sl_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t sl_get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static inline uint64_t sl_get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif /* SL_DIRTY_TRACE_FORMAT_H */
