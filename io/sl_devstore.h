/* SPDX-License-Identifier: MIT */
/*
 * sl_devstore.h — reassembly of indexed device-state packets.
 *
 * Device packets (device id, index 0, 1, 2, ...) may arrive out of order on
 * different channels. Producers (receiver channel threads) put them here;
 * one consumer per device (the loader) takes them strictly in index order.
 *
 * Memory cap: buffered bytes never exceed `cap`, except that the packet the
 * device's consumer needs next is always admitted. A producer whose packet
 * does not fit waits. If every producer is waiting and none of them holds
 * an index a consumer needs, no progress is possible: that is a protocol
 * error and both sides get -ENOBUFS.
 *
 * Threading: all functions are thread-safe; one consumer per device.
 */
#ifndef SL_DEVSTORE_H
#define SL_DEVSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "sl_common.h"

struct sl_devstore;

/* Packet flag marking a device's last packet (same value as the wire's
 * SL_DEV_FLAG_LAST); other flag bits are passed through untouched. */
#define SL_DEVSTORE_LAST_FLAG 1u

/* cap: bytes buffered at most (0 = 256 MiB). 0 or -ENOMEM. */
int sl_devstore_new(uint64_t cap, struct sl_devstore **out);
/* Frees buffered packets and the store; *st = NULL. Safe on NULL. */
void sl_devstore_free(struct sl_devstore **st);

/* Drops everything, clears errors and per-device progress (new session).
 * Must not race with put/next. nproducers = threads that will call put. */
void sl_devstore_reset(struct sl_devstore *st, unsigned nproducers);

/*
 * Copies a packet in (device data is not page data). Blocks while the cap is
 * full, up to timeout_ms (< 0 = forever). Returns 0, -EINVAL (index already
 * seen/consumed, index after the device's LAST packet, a second LAST),
 * -ENOBUFS (deadlock at the cap, see above), -ETIMEDOUT, -ECANCELED
 * (sl_devstore_abort), -ENOMEM.
 */
int sl_devstore_put(struct sl_devstore *st, uint32_t device_id, uint64_t index, uint32_t flags,
		    const void *buf, size_t len, int timeout_ms);

/* A producer is done (its channel finished); counts for deadlock detection. */
void sl_devstore_producer_done(struct sl_devstore *st);

/*
 * Blocks for device_id's next index (timeout_ms < 0 = forever). On 0 the
 * caller owns *buf (*len bytes, may be 0 with a non-NULL *buf) until
 * sl_devstore_release(). Returns -ENODATA after the device's LAST packet was
 * handed out, -ENOBUFS (deadlock at the cap), -ETIMEDOUT, -ECANCELED, or
 * -EPIPE when every producer is done and the index never came.
 */
int sl_devstore_next(struct sl_devstore *st, uint32_t device_id, void **buf, size_t *len,
		     uint32_t *flags, int timeout_ms);

/* Returns a buffer from sl_devstore_next; frees its share of the cap. */
void sl_devstore_release(struct sl_devstore *st, void *buf);

/* Wakes every waiter with -ECANCELED until the next reset. */
void sl_devstore_abort(struct sl_devstore *st);

/* Bytes currently buffered (including handed-out, unreleased buffers). */
uint64_t sl_devstore_used(struct sl_devstore *st);

#endif /* SL_DEVSTORE_H */
