/* SPDX-License-Identifier: MIT */
/*
 * devsim_internal.h — the SIMULATED device's parts: devsim.c (the device
 * thread, arcs, construction), devsim_stream.c (its stream records: the
 * saving builder and the resuming parser), devsim_dma.c (DMA into guest RAM
 * and its DMA log, also as an sl_sys view).
 */
#ifndef SL_DEVSIM_INTERNAL_H
#define SL_DEVSIM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <xxhash.h>

#include "sl_vfio.h"

#define REC_MAGIC 0x56444c53u /* "SLDV" */
#define REC_DATA 1u
#define REC_END 2u
#define REC_HDR 24u

enum mode { M_NONE, M_SAVE, M_LOAD, M_DRAIN };

struct devsim {
	struct sl_vfio_backend be;
	struct sl_devsim_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_started;
	int kick_fd; /* eventfd: wakes the thread out of poll() */
	bool quit;
	uint64_t cmd_seq, ack_seq;

	enum sl_vfio_state state;
	enum mode mode;
	uint8_t *mem; /* device state */
	uint64_t nchunks, pre_chunks, chunk;
	uint8_t *sent, *dirty, *loaded; /* one byte per chunk */
	uint64_t rng;
	uint64_t last_ns, dirt_carry, dma_carry, mutations;
	uint64_t loaded_hash; /* state hash when RESUMING was last left successfully */

	/* saving session */
	int wfd;           /* our end of the data pipe */
	int rfd_peer;      /* caller's end, for FIONREAD (not owned) */
	uint64_t written;  /* stream bytes written to the pipe */
	uint64_t init_total; /* stream bytes of initial data (from session start) */
	uint64_t scan_pos;
	bool end_built, corrupt_done;
	XXH3_state_t *hs;
	uint8_t *out;
	size_t out_len, out_off;
	const uint8_t *pay; /* STOP_COPY: payload written straight from the state */

	/* resuming session */
	int rfd;
	uint8_t hdr[REC_HDR];
	size_t hdr_fill;
	uint32_t cur_type, cur_len;
	uint64_t cur_off, cur_done;
	uint8_t end_hash[8];
	bool end_seen, load_bad;
	char load_err[96];
	XXH3_state_t *ls;
	uint8_t *inbuf;

	/* DMA logging */
	bool dma_logging;
	uint64_t dma_page;
	uint64_t *dma_bits;
	struct sl_sys sys;
};

static inline struct devsim *to_sim(struct sl_vfio_backend *be)
{
	return (struct devsim *)be;
}

static inline uint64_t chunk_len(struct devsim *s, uint64_t c)
{
	return SL_MIN(s->chunk, s->cfg.state_bytes - c * s->chunk);
}

bool devsim_is(const struct sl_vfio_backend *be);
/* Applies the device's own activity (state rewrites, DMA) since the last
 * call; lock held. */
void devsim_advance(struct devsim *s);
/* Builds the next saving record into s->out (lock held); false: nothing now. */
bool devsim_build_next(struct devsim *s);
/* Feeds resuming bytes to the parser (lock held). */
void devsim_parse(struct devsim *s, const uint8_t *p, size_t n);
void devsim_load_fail(struct devsim *s, const char *why);
void devsim_sys_init(struct devsim *s);

#endif
