/* SPDX-License-Identifier: MIT */
/*
 * sl_sender_internal.h — the sender's channel, item and region structures,
 * shared by the queueing code (sl_sender.c) and the three send paths
 * (sl_send_plain.c, sl_send_msgzc.c, sl_send_uring.c).
 *
 * Flow: the driving thread builds packets into items (header in the
 * channel's header slab, payload as pointers into guest RAM) and queues them
 * on the owning channel; the channel's worker sends them with its mode and
 * returns each item to the free list once the kernel has released every byte
 * (after the zero-copy notifications).
 */
#ifndef SL_SENDER_INTERNAL_H
#define SL_SENDER_INTERNAL_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "sl_sender.h"
#include "sl_wire.h"

#define SL_ITEMS_PER_CHANNEL 64
#define SL_PKT_TARGET_PAYLOAD (4u << 20) /* RAM bytes per packet we aim for */
#define SL_HDR_SLOT 2112                 /* >= SL_PKT_MAX_HDR, 64-byte multiple */
#define SL_MAX_SEGS (SL_PKT_MAX_RANGES * 2 + 2)
#define SL_FIXED_PIECE (1ull << 30)      /* io_uring fixed buffers are <= 1 GiB */
#define SL_MAX_FIXED 1024

struct sl_sender;

struct sl_item {
	struct sl_item *next;
	unsigned index;          /* in the channel's pool */
	uint8_t *hdr;            /* slot in the header slab */
	uint32_t hdr_len;
	uint8_t type;
	uint32_t generation;
	unsigned nseg;           /* payload segments */
	struct iovec seg[SL_MAX_SEGS];
	uint64_t payload_len;
	uint64_t pages;          /* RAM pages (stats) */
	void *owned;             /* malloc'd payload copy (STATE) freed on release */
	/* in flight */
	unsigned pending;        /* zero-copy notifications still to come */
	bool sent;               /* every byte accepted by the socket */
};

struct sl_region_s {
	uint32_t id;
	uint8_t *host;
	uint64_t len;
	uint64_t npages;
	unsigned fixed_base;     /* first fixed-buffer index (URING) */
	unsigned npieces;
};

/* MSG_ZEROCOPY bookkeeping: one record per successful sendmsg call. */
#define SL_ZC_RECS 1024
struct sl_zc_rec {
	struct sl_item *item;
	uint64_t bytes;
	uint64_t payload_bytes;
};

struct sl_channel {
	struct sl_sender *s;
	unsigned idx;
	int fd;
	pthread_t thread;
	bool thread_started;

	/* Under s->lock: */
	struct sl_item *free_list;
	unsigned nfree;
	struct sl_item *q_head, *q_tail;
	bool busy;               /* worker holds items not yet released */

	/* Worker-owned: */
	struct sl_item items[SL_ITEMS_PER_CHANNEL];
	uint8_t *slab;           /* header slots, SL_ITEMS_PER_CHANNEL x SL_HDR_SLOT */
	unsigned outstanding;    /* items handed to the kernel, not yet released */
	struct io_uring ring;
	bool ring_ok;
	uint32_t zc_next_id;     /* MSG_ZEROCOPY: id of the next sendmsg */
	uint32_t zc_done_id;     /* all ids below are completed */
	struct sl_zc_rec zc[SL_ZC_RECS];
	uint64_t bytes_sent;     /* for error texts */
	uint32_t cur_gen;

	/* Driver-owned (packet building and counters for ITERATION END/COMPLETE): */
	uint64_t seq;
	uint64_t gen_packets, gen_bytes, total_packets, total_bytes;
	struct sl_item *build;   /* RAM/ZERO packet being filled */
	uint32_t build_region;
	struct sl_wire_range build_ranges[SL_PKT_MAX_RANGES];
	unsigned build_nranges;
};

struct sl_bucket {
	pthread_mutex_t lock;
	uint64_t rate;   /* bytes/s, 0 = unlimited; __atomic (read without the lock) */
	double tokens;   /* may go negative: debt paid by sleeping */
	double burst;
	uint64_t last_ns;
	unsigned epoch;  /* bumped by set_rate, wakes sleepers; __atomic */
};

struct sl_sender {
	enum sl_zc_mode mode;
	unsigned nch;
	uint32_t page_size;
	unsigned page_shift;
	uint64_t granule_pages;
	int timeout_ms;
	sl_log_fn log;
	void *log_ctx;
	struct sl_channel ch[SL_MAX_CHANNELS];
	struct sl_region_s regions[256];
	unsigned nregions;
	unsigned nfixed;         /* fixed-buffer slots used (slot 0 = header slab) */
	uint32_t generation;     /* highest generation queued */

	pthread_mutex_t lock;
	pthread_cond_t cond;     /* items freed, queue changed, errors */
	bool stopping;
	int error;               /* sticky, under lock */
	int cancelled;           /* __atomic */
	char errtext[SL_ERRMSG_MAX];

	struct sl_bucket bucket;
	struct sl_sender_stats stats; /* __atomic adds */
	bool resumed_done;
	uint64_t back_seq;       /* next seq expected from the receiver (channel 0) */
};

/* Called by a worker when an item is fully released (under no lock). */
void sl_sender_item_done(struct sl_channel *c, struct sl_item *it);
/* Records the channel's failure as the sender's error (first one wins). */
int sl_sender_fail(struct sl_sender *s, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool sl_sender_is_cancelled(const struct sl_sender *s);

/* Send paths. send_batch sends items in order (the chain is the caller's
 * order on the socket) and returns 0 or -errno (channel error already
 * recorded). reap waits up to timeout_ms for zero-copy completions and
 * releases finished items. */
int sl_plain_send(struct sl_channel *c, struct sl_item *it);
int sl_msgzc_setup(struct sl_channel *c);
int sl_msgzc_send(struct sl_channel *c, struct sl_item *it);
int sl_msgzc_reap(struct sl_channel *c, int timeout_ms);
int sl_uring_setup(struct sl_channel *c);
int sl_uring_register_region(struct sl_channel *c, struct sl_region_s *rg);
int sl_uring_send_batch(struct sl_channel *c, struct sl_item **items, unsigned n);
int sl_uring_reap(struct sl_channel *c, int timeout_ms);
void sl_uring_teardown(struct sl_channel *c);
/* Probes whether this kernel does SEND_ZC with fixed buffers (0 or -errno). */
int sl_uring_probe(void);

/* Token bucket shared by channels. */
void sl_bucket_init(struct sl_bucket *b, uint64_t rate);
/* Blocks until bytes may be sent; returns the ns slept. */
uint64_t sl_bucket_take(struct sl_bucket *b, uint64_t bytes, const int *cancelled);
/* Changes the rate from now on (0 = unlimited); debts are forgiven and
 * takers asleep on the old rate wake up. Any thread. */
void sl_bucket_set_rate(struct sl_bucket *b, uint64_t rate);
void sl_bucket_destroy(struct sl_bucket *b);

/* A worker is done with an item it was sending. */
static inline void sl_item_release(struct sl_channel *c, struct sl_item *it)
{
	c->outstanding--;
	sl_sender_item_done(c, it);
}

/* "channel 2 (generation 4, 1234 bytes sent)" prefix for error texts. */
#define SL_CH_FMT "channel %u (generation %u, %llu bytes sent): "
#define SL_CH_ARGS(c) (c)->idx, (c)->cur_gen, (unsigned long long)(c)->bytes_sent

static inline void sl_stat_add(uint64_t *c, uint64_t v)
{
	__atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

#endif /* SL_SENDER_INTERNAL_H */
