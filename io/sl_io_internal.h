/* SPDX-License-Identifier: MIT */
/*
 * sl_io_internal.h — what only io/ shares: blocking socket helpers with
 * timeouts, and the two halves of the per-channel handshake.
 */
#ifndef SL_IO_INTERNAL_H
#define SL_IO_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "sl_common.h"
#include "sl_wire.h"

/* Socket buffers we ask for (the kernel caps them at net.core.*mem_max). */
#define SL_IO_SOCKBUF (4 << 20)

/* SO_RCVTIMEO/SO_SNDTIMEO (ms <= 0: none) and large buffers. 0 or -errno. */
int sl_io_prepare_socket(int fd, int timeout_ms);

/*
 * Reads until len bytes or EOF. Returns the bytes read (< len only at EOF),
 * -ETIMEDOUT when the socket timeout expired, or -errno. EINTR is retried.
 */
ssize_t sl_io_read_full(int fd, void *buf, size_t len);

/* Same, scattering into iov (modified: advanced as data arrives). */
ssize_t sl_io_readv_full(int fd, struct iovec *iov, int iovcnt);

/* Writes all of buf (MSG_NOSIGNAL). 0, -ETIMEDOUT, -EPIPE, -errno. */
int sl_io_write_full(int fd, const void *buf, size_t len);

/* Encodes and writes one packet with a small payload (copied into one send). */
int sl_io_send_small_packet(int fd, struct sl_pkt *p, const void *payload, size_t len);

/* Receiver half: sends a CHALLENGE, reads and checks the HELLO (magic,
 * version, MAC, caps, page size, channel fields). On a failure it sends the
 * refusal itself and returns -errno with the reason in eb (-EACCES bad MAC,
 * -EPROTONOSUPPORT version, -EINVAL fields, -EPROTO not sluice). */
int sl_hs_server_begin(int fd, const uint8_t *psk, size_t psk_len, uint32_t page_size,
		       struct sl_wire_hello *hello, struct sl_errbuf *eb);

/* Receiver: sends the verdict (status 0 = accept, else positive errno + reason). */
int sl_hs_server_verdict(int fd, uint32_t status, const char *reason);

/* Sender half: reads the CHALLENGE, sends the HELLO with its MAC (h->hmac is
 * computed here), reads the VERDICT. 0, or -errno: -EACCES etc. (the
 * receiver's status) with "receiver refused channel N: <reason>". */
int sl_hs_client(int fd, const uint8_t *psk, size_t psk_len, struct sl_wire_hello *h,
		 struct sl_errbuf *eb);

void sl_io_log(sl_log_fn fn, void *ctx, enum sl_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif /* SL_IO_INTERNAL_H */
