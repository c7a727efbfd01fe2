/* SPDX-License-Identifier: MIT */
/*
 * sl_sender.h — the source side of the transport: N channels (sockets) to one
 * receiver, page data sent without a user-space copy.
 *
 * Modes (chosen at sl_sender_new, reported in stats):
 *   SL_ZC_URING  io_uring IORING_OP_SEND_ZC from guest RAM registered as fixed
 *                buffers (<= 1 GiB pieces); headers from a registered slab;
 *                the SQEs of one packet are linked; a buffer is reused only
 *                after its notification; kernel copies counted through
 *                IORING_SEND_ZC_REPORT_USAGE.
 *   SL_ZC_MSG    sendmsg(MSG_ZEROCOPY) with error-queue completions.
 *   SL_ZC_OFF    plain writev (the kernel copies into socket buffers).
 *   SL_ZC_AUTO   OFF for unix sockets and loopback addresses (the kernel
 *                copies zero-copy sends on loopback anyway, and the copy
 *                path is faster there: docs/results.md); otherwise URING if
 *                the kernel has SEND_ZC, else MSG.
 * In every mode page bytes are never memcpy'd in user space
 * (stats.user_copied_bytes stays 0).
 *
 * Channels are address-affine: RAM is cut into granules (granule_bytes,
 * default 2 MiB, region-relative) and granule g always travels on channel
 * g % nchannels, so a newer copy of a page never overtakes an older one
 * (proof in docs/wire-format.md).
 *
 * Threading: one thread drives a sender (all calls except
 * sl_sender_cancel, sl_sender_get_stats and sl_sender_last_error, which any
 * thread may call). Each channel has its own
 * worker thread that owns its socket and ring.
 *
 * Errors: negative errno; sl_sender_last_error() has the text, naming the
 * channel, generation and bytes sent when a peer dies. After an error every
 * further call returns the same error.
 */
#ifndef SL_SENDER_H
#define SL_SENDER_H

#include <stddef.h>
#include <sched.h>
#include <stdint.h>

#include "sl_bitmap.h" /* struct sl_range */
#include "sl_common.h"

enum sl_zc_mode { SL_ZC_AUTO, SL_ZC_URING, SL_ZC_MSG, SL_ZC_OFF };

#define SL_SENDER_MAX_CHANNELS 64 /* the wire's limit (SL_MAX_CHANNELS) */

struct sl_sender_config {
	size_t size;              /* sizeof(struct sl_sender_config) */
	const char *url;          /* tcp:HOST:PORT or unix:PATH of the receiver */
	unsigned nchannels;       /* 1..SL_SENDER_MAX_CHANNELS (64); 0 = 1 */
	const uint8_t *psk;       /* pre-shared key for the HMAC proof (required, >= 1 byte) */
	size_t psk_len;
	enum sl_zc_mode zc;       /* SL_ZC_AUTO picks the best available */
	uint64_t bandwidth_bps;   /* bytes per second, shared by all channels; 0 = unlimited */
	uint64_t granule_bytes;   /* channel affinity unit; power of two >= page_size; 0 = 2 MiB */
	uint32_t page_size;       /* power of two, 512..1 MiB; 0 = 4096 */
	const uint8_t *session_id;/* 16 bytes, or NULL = random */
	int timeout_ms;           /* connect/handshake/peer-silence limit; <= 0 = 30000 */
	sl_log_fn log;            /* optional */
	void *log_ctx;
	/* Optional: nchannels CPU sets, channel i's worker is pinned to
	 * channel_cpus[i] (the engine's NUMA placement). NULL = unpinned. A set
	 * the kernel refuses is logged and the worker runs unpinned. */
	const cpu_set_t *channel_cpus;
};

struct sl_sender;

#define SL_SENDER_MAX_STAT_CHANNELS 64
struct sl_sender_stats {
	uint64_t bytes;               /* all bytes written to sockets (headers + payload) */
	uint64_t page_bytes;          /* RAM payload bytes */
	uint64_t pages;               /* RAM pages sent */
	uint64_t zero_pages;          /* pages announced by ZERO packets */
	uint64_t device_bytes;        /* DEVICE payload bytes */
	uint64_t packets;
	uint64_t kernel_copied_bytes; /* payload bytes the kernel copied (all of them in OFF mode) */
	uint64_t user_copied_bytes;   /* page bytes memcpy'd in user space: 0 by design */
	uint64_t zc_notifications;    /* zero-copy completions seen */
	uint64_t throttle_ns;         /* time spent waiting for bandwidth tokens */
	enum sl_zc_mode mode;         /* the mode actually used (never AUTO) */
	unsigned nchannels;
	uint64_t channel_bytes[SL_SENDER_MAX_STAT_CHANNELS];
};

struct sl_resumed_info {
	int status;      /* 0, or the negative errno the receiver's complete() returned */
	char msg[1025];  /* text the receiver sent back (NUL-terminated) */
};

/*
 * Connects every channel and authenticates it (HMAC-SHA256 of the receiver's
 * nonce under the PSK). Returns 0 and *out, or -errno with text in eb:
 * -EINVAL bad config, -ECONNREFUSED/-ENOENT address, -EACCES the receiver
 * refused (reason text from the receiver in eb), -EOPNOTSUPP the requested
 * zero-copy mode is unavailable, -ETIMEDOUT.
 */
int sl_sender_new(const struct sl_sender_config *cfg, struct sl_sender **out,
		  struct sl_errbuf *eb);

/* Stops workers, closes sockets and rings, frees, sets *s = NULL. Safe on NULL. */
void sl_sender_free(struct sl_sender **s);

/*
 * Registers [host, host+len) as region region_id (len a multiple of the page
 * size; host page-aligned). In URING mode the memory is registered as fixed
 * buffers (<= 1 GiB pieces). Call before sending; the memory must outlive
 * the sender. Returns 0, -EINVAL, -EEXIST (id taken), -ENOMEM, or the
 * io_uring registration error (e.g. -ENOMEM for RLIMIT_MEMLOCK).
 */
int sl_sender_add_region(struct sl_sender *s, uint32_t region_id, void *host, uint64_t len);

/*
 * Queues pages [first, first+npages) of each range (region-relative page
 * numbers), split by granule onto channel granule % nchannels. Does not copy:
 * the kernel reads page contents when the data leaves, so writes after this
 * call may or may not be seen (clear-before-copy makes that safe). generation
 * = iteration number, non-decreasing across calls. May block while channel
 * queues are full. Returns 0, -EINVAL (unknown region, range outside it,
 * generation going back), -ECANCELED, or a channel's error.
 */
int sl_sender_send_ranges(struct sl_sender *s, uint32_t region_id, const struct sl_range *r,
			  size_t n, uint32_t generation);

/* Same for pages known to be all zero: ZERO packets, no payload. */
int sl_sender_send_zero_ranges(struct sl_sender *s, uint32_t region_id,
			       const struct sl_range *r, size_t n, uint32_t generation);

/*
 * One DEVICE packet (device_id, index, flags = SL_DEV_FLAG_*) on `channel`
 * (< 0: the sender picks the least loaded). No copy: buf must stay valid and
 * unchanged until sl_sender_flush() returns. len <= SL_PKT_MAX_BLOB_PAYLOAD.
 * The generation is the last one used for ranges.
 */
int sl_sender_send_device(struct sl_sender *s, uint32_t device_id, uint64_t index,
			  uint32_t flags, const void *buf, size_t len, int channel);

/* A STATE blob (CPU/config state) on channel 0. Copies buf (small). */
int sl_sender_send_state(struct sl_sender *s, uint32_t kind, const void *buf, size_t len);

/* ITERATION END for `generation` on every channel (packets and bytes each
 * channel sent in that generation). */
int sl_sender_iteration_end(struct sl_sender *s, uint32_t generation);

/* Blocks until everything queued is on the wire and every zero-copy buffer
 * has been released by the kernel. 0 or a channel error / -ECANCELED. */
int sl_sender_flush(struct sl_sender *s);

/* Flushes, then COMPLETE on every channel (its totals) and flushes again. */
int sl_sender_complete(struct sl_sender *s);

/*
 * After sl_sender_complete: waits up to timeout_ms (<= 0: config timeout) for
 * the receiver's RESUMED (or ERROR) packet on channel 0. Returns 0 when the
 * receiver resumed (info->status == 0), the receiver's negative status when
 * its complete() failed (text in info->msg and last_error), -EPROTO for an
 * ERROR packet or bad data, -ETIMEDOUT, -ECONNRESET.
 */
int sl_sender_wait_resumed(struct sl_sender *s, int timeout_ms, struct sl_resumed_info *info);

/*
 * Changes the shared bandwidth limit from now on (bytes/s, 0 = unlimited).
 * The engine lifts the limit when the VM stops, as QEMU does: max-bandwidth
 * bounds the live phase's impact on the link; the stopped VM's last pages
 * go as fast as the link allows. Any thread; returns 0 or -EINVAL.
 */
int sl_sender_set_bandwidth(struct sl_sender *s, uint64_t bandwidth_bps);

/* An acknowledgement the receiver sent during the session (wire ACK). */
struct sl_ack {
	uint32_t kind;  /* SL_ACK_DEVICE_INIT_LOADED */
	uint32_t id;    /* device id */
	uint64_t value; /* kind-specific; 0 for DEVICE_INIT_LOADED */
};

/*
 * Reads the next acknowledgement from channel 0, waiting up to timeout_ms
 * (0 = just look). Returns 1 with *ack filled, 0 when none arrived, or
 * -errno: -ECONNRESET when the receiver went away (early detection of a dead
 * destination during precopy), -EPROTO for an ERROR from the receiver or a
 * packet out of place. Call from the thread that drives the session (not
 * concurrently with sl_sender_wait_resumed); ACKs still in flight when
 * wait_resumed runs are skipped there.
 */
int sl_sender_next_ack(struct sl_sender *s, int timeout_ms, struct sl_ack *ack);

/* Snapshot of the counters (relaxed atomic loads); any time, any thread. */
void sl_sender_get_stats(const struct sl_sender *s, struct sl_sender_stats *st);

/* "auto", "uring", "msg", "off"; NULL for an unknown value. */
const char *sl_sender_mode_name(enum sl_zc_mode mode);
/* Parses the names above; -EINVAL otherwise. */
int sl_sender_mode_parse(const char *name, enum sl_zc_mode *mode);

/* Text of the last error ("" if none). Valid until the next call. */
const char *sl_sender_last_error(const struct sl_sender *s);

/* Any thread: makes blocked and later calls return -ECANCELED (shuts the
 * sockets down). Returns 0. */
int sl_sender_cancel(struct sl_sender *s);

#endif /* SL_SENDER_H */
