/* SPDX-License-Identifier: MIT */
/*
 * sl_receiver.h — the destination side of the transport.
 *
 * A receiver listens on one address, accepts one session at a time (all its
 * channels, each authenticated with the PSK), validates every packet header
 * before touching memory and then receives page payloads directly into the
 * registered destination memory at their final address (recv/readv into the
 * region; no staging buffer). Device packets go into a reassembly store
 * (sl_devstore.h). After COMPLETE on every channel it runs the caller's
 * complete() and sends RESUMED back on channel 0.
 *
 * ZERO ranges: pages this receiver never wrote are skipped (destination
 * memory must be zero-filled when registered, e.g. fresh anonymous mmap);
 * pages written earlier are cleared. The "written" bitmap lives with the
 * region, across sessions.
 *
 * Device packets are buffered up to device_mem_cap: a loader must drain them
 * (sl_devstore_next on sl_receiver_devstore()) while the session runs, or
 * the channel that carries a packet that does not fit stalls and the session
 * fails (-ENOBUFS when no progress is possible, else -ETIMEDOUT).
 *
 * Threading: sl_receiver_run_session runs one worker thread per channel; the
 * ops callbacks run on those threads. sl_receiver_cancel and
 * sl_receiver_port may be called from any thread; everything else from the
 * owning thread, not while a session runs.
 */
#ifndef SL_RECEIVER_H
#define SL_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

#include "sl_common.h"
#include "sl_devstore.h"

struct sl_receiver_config {
	size_t size;              /* sizeof(struct sl_receiver_config) */
	const char *url;          /* listen address: tcp:HOST:PORT (port 0 = any) or unix:PATH */
	const uint8_t *psk;       /* pre-shared key (required) */
	size_t psk_len;
	int timeout_ms;           /* peer silence / accept limit; <= 0 = 30000 */
	uint64_t device_mem_cap;  /* bytes buffered for device reassembly; 0 = 256 MiB */
	uint32_t page_size;       /* must match the sender's; 0 = 4096 */
	sl_log_fn log;            /* optional */
	void *log_ctx;
};

struct sl_receiver;

struct sl_receiver_ops {
	/* All optional; called on receiver threads; return 0 or -errno (which
	 * aborts the session with that error). */
	int (*state)(void *ctx, uint32_t kind, const void *buf, size_t len);
	/* Once per generation, after every channel sent ITERATION END for it. */
	int (*iteration_end)(void *ctx, uint32_t generation);
	/* Runs after every channel drained (COMPLETE everywhere). Write a short
	 * text into msg (msglen bytes incl. NUL); its return value and msg are
	 * sent back to the sender in RESUMED. */
	int (*complete)(void *ctx, char *msg, size_t msglen);
};

#define SL_RECEIVER_MAX_STAT_CHANNELS 64
struct sl_receiver_stats {
	uint64_t bytes;          /* all bytes read from channel sockets */
	uint64_t page_bytes;     /* RAM payload placed */
	uint64_t pages;          /* RAM pages placed */
	uint64_t zero_pages;     /* pages named by ZERO packets */
	uint64_t zero_cleared;   /* of those, pages that had been written and were cleared */
	uint64_t device_bytes;
	uint64_t packets;
	uint64_t sessions_ok;
	uint64_t sessions_failed;
	unsigned nchannels;      /* of the last session */
	uint64_t channel_bytes[SL_RECEIVER_MAX_STAT_CHANNELS];
};

/* Parses the URL, binds and listens. 0, -EINVAL (config), -EADDRINUSE, ... */
int sl_receiver_new(const struct sl_receiver_config *cfg, struct sl_receiver **out,
		    struct sl_errbuf *eb);

/* The bound TCP port (useful after listening on port 0); 0 for unix sockets. */
int sl_receiver_port(const struct sl_receiver *r);

/* Registers destination memory [host, host+len) as region_id (page-aligned,
 * len a multiple of the page size, zero-filled). 0, -EINVAL, -EEXIST, -ENOMEM. */
int sl_receiver_add_region(struct sl_receiver *r, uint32_t region_id, void *host, uint64_t len);

/*
 * Waits for a session's first channel without a time limit (until
 * sl_receiver_cancel), then for its other channels within timeout_ms.
 * Accepts one session (all of its channels, authenticated), receives until
 * COMPLETE on every channel, runs ops->complete, sends RESUMED. Returns 0, or
 * -errno with a one-line text in eb (e.g. -EACCES bad key — the refusal is
 * also sent to the peer, -EPROTO/-EINVAL/-EBADMSG bad stream, -ECONNRESET peer
 * gone, -ETIMEDOUT peer silent, -ECANCELED). The receiver stays usable for
 * the next session after any error.
 */
int sl_receiver_run_session(struct sl_receiver *r, const struct sl_receiver_ops *ops, void *ctx,
			    struct sl_errbuf *eb);

/* The device reassembly store device packets land in (owned by r). It is
 * reset at the start of each session. */
struct sl_devstore *sl_receiver_devstore(struct sl_receiver *r);

void sl_receiver_get_stats(const struct sl_receiver *r, struct sl_receiver_stats *st);

/* Any thread: a running or later run_session returns -ECANCELED. */
int sl_receiver_cancel(struct sl_receiver *r);

/* Closes the listener and frees; *r = NULL. Safe on NULL. Not during a session. */
void sl_receiver_free(struct sl_receiver **r);

/*
 * Sends an acknowledgement to the sender on channel 0 while a session runs
 * (wire ACK; today SL_ACK_DEVICE_INIT_LOADED: device `id` has loaded its
 * initial PRE_COPY data, so the source may switch over). Any thread; writes
 * are serialised with RESUMED. Returns 0, -ENOTCONN outside a session,
 * -EINVAL for an unknown kind, or the socket's -errno.
 */
int sl_receiver_send_ack(struct sl_receiver *r, uint32_t kind, uint32_t id, uint64_t value);

#endif /* SL_RECEIVER_H */
