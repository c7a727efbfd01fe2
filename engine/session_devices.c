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

/* ---- source: device packets → sender ---------------------------------- */

static int sink_send(void *ctx, uint32_t dev, uint64_t index, uint32_t flags, const void *buf,
		     size_t len)
{
	struct sl_session *s = ctx;
	int ret;

	/* Wire format v1 carries LAST and CONFIG only; INIT_DONE (the
	 * destination's switchover-ack hint) is dropped until the wire gets a
	 * bit for it. The source-side policy does not depend on it: it waits
	 * for the source's own initial_bytes to reach 0. */
	flags &= SL_VFIO_PKT_LAST | SL_VFIO_PKT_CONFIG;
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
