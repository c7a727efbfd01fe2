/* SPDX-License-Identifier: MIT */
/*
 * session_devices.c — plugs a VFIO device set (sl_vfio.h) into the
 * transport: on the source its packets go out through the sender (no copy:
 * the device set keeps each buffer until flush); on the destination the
 * loaders pull packets from the receiver's reassembly store.
 */
#include <errno.h>

#include "engine_internal.h"
#include "sl_devstore.h"
#include "sl_vfio.h"
#include "sl_wire.h" /* SL_ACK_* */

/* ---- source: device packets → sender ---------------------------------- */

static int sink_send(void *ctx, uint32_t dev, uint64_t index, uint32_t flags, const void *buf,
		     size_t len)
{
	struct sl_session *s = ctx;
	int ret;

	/* INIT_DONE: the device's initial PRE_COPY data ends with this packet;
	 * the switchover then waits for the destination's ACK that it loaded
	 * it (QEMU's switchover-ack). Same bit values on the wire. */
	if ((flags & SL_VFIO_PKT_INIT_DONE) && dev < SL_ACK_MAX_DEVICES)
		s->dev_init_sent[dev] = true;
	sl_session_busy(s, true);
	ret = sl_sender_send_device(s->sender, dev, index, flags, buf, len, -1);
	sl_session_busy(s, false);
	return sl_session_transport_err(s, ret);
}

static int sink_flush(void *ctx)
{
	struct sl_session *s = ctx;
	int ret;

	sl_session_busy(s, true);
	ret = sl_sender_flush(s->sender);
	sl_session_busy(s, false);
	return sl_session_transport_err(s, ret);
}

int sl_session_poll_acks(struct sl_session *s)
{
	struct sl_ack ack;
	int ret;

	while ((ret = sl_sender_next_ack(s->sender, 0, &ack)) == 1) {
		if (ack.kind == SL_ACK_DEVICE_INIT_LOADED && ack.id < SL_ACK_MAX_DEVICES) {
			s->dev_acked[ack.id] = true;
			sl_session_log(s, SL_LOG_INFO, "destination loaded device %u's initial data",
				       ack.id);
		}
	}
	if (ret < 0)
		return sl_err(&s->err, ret, "the destination went away: %s", sl_sender_last_error(s->sender));
	return 0;
}

bool sl_session_acks_pending(struct sl_session *s)
{
	for (unsigned i = 0; i < SL_ACK_MAX_DEVICES; i++)
		if (s->dev_init_sent[i] && !s->dev_acked[i])
			return true;
	return false;
}

int sl_session_devices_attach(struct sl_session *s)
{
	struct sl_devset_sink sink = { .send = sink_send, .flush = sink_flush, .ctx = s };

	return sl_devset_set_sink(s->devices, &sink);
}

/* ---- destination: reassembly store → loaders ---------------------------- */

static int source_next(void *ctx, uint32_t dev, const void **buf, size_t *len, uint32_t *flags,
		       int timeout_ms)
{
	void *b = NULL;
	int ret = sl_devstore_next(ctx, dev, &b, len, flags, timeout_ms);

	*buf = b;
	return ret;
}

static void source_release(void *ctx, uint32_t dev, const void *buf)
{
	(void)dev;
	sl_devstore_release(ctx, (void *)buf);
}

int sl_dest_devices_start(struct sl_devset *set, struct sl_devstore *store)
{
	struct sl_devset_source src = {
		.next = source_next,
		.release = source_release,
		.ctx = store,
	};

	return sl_devset_resume_start(set, &src);
}
