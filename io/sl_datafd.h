/* SPDX-License-Identifier: MIT */
/*
 * sl_datafd.h — reading and writing VFIO migration data fds.
 *
 * Reader: one io_uring with a pool of buffers registered as fixed buffers
 * (IORING_OP_READ_FIXED). The caller submits reads on any number of data
 * fds (one in flight per fd: the stream is ordered), reaps completions and
 * hands the filled buffer to the transport, which sends it without a
 * user-space copy. Data fds are streams: reads use the file position
 * (offset -1). Results pass through unchanged: bytes, 0 (end of stream, or
 * "nothing now" in PRE_COPY on drivers like mtty), -ENOMSG / -EAGAIN
 * (nothing now), -errno.
 * When the buffers cannot be registered (RLIMIT_MEMLOCK) the reader falls
 * back to plain IORING_OP_READ into the same buffers and says so.
 *
 * Writer: sl_datafd_write_all() for the RESUMING fd, handling short writes,
 * EINTR and EAGAIN (poll) until every byte is in.
 *
 * Splice: sl_datafd_splice() moves bytes fd -> pipe -> socket inside the
 * kernel; measured against the reader in `sluice bench device`.
 *
 * Threading: a reader is used by one thread.
 */
#ifndef SL_DATAFD_H
#define SL_DATAFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sl_common.h"

struct sl_datafd_reader;

struct sl_datafd_reader_config {
	size_t size;       /* sizeof(struct sl_datafd_reader_config) */
	unsigned nbufs;    /* buffers in the pool, 1..1024 */
	size_t buf_size;   /* bytes each, 4 KiB .. 64 MiB, rounded up to 4 KiB */
	unsigned entries;  /* ring size; 0 = nbufs rounded to a power of two */
};

/* 0, -EINVAL (bad config), -ENOMEM, or io_uring_queue_init's error. */
int sl_datafd_reader_new(const struct sl_datafd_reader_config *cfg,
			 struct sl_datafd_reader **out, struct sl_errbuf *eb);
void sl_datafd_reader_free(struct sl_datafd_reader **r);

void *sl_datafd_buf(struct sl_datafd_reader *r, unsigned idx);
size_t sl_datafd_buf_size(const struct sl_datafd_reader *r);
unsigned sl_datafd_nbufs(const struct sl_datafd_reader *r);
/* True when the buffers are registered (READ_FIXED is used). */
bool sl_datafd_registered(const struct sl_datafd_reader *r);

/* Queues a read of up to len bytes from fd into buffer idx; user comes back
 * with the completion. Submitted at the next reap. nowait: RWF_NOWAIT, the
 * read completes with -EAGAIN instead of waiting for data (io_uring waits
 * on pollable files even when they are O_NONBLOCK); files that cannot do
 * it complete with -EOPNOTSUPP. 0 or -EINVAL/-EBUSY (ring full). */
int sl_datafd_submit_read(struct sl_datafd_reader *r, int fd, unsigned idx, size_t len,
			  uint64_t user, bool nowait);
/* Queues a write of len bytes of buffer idx to fd (a socket or pipe). */
int sl_datafd_submit_write(struct sl_datafd_reader *r, int fd, unsigned idx, size_t off,
			   size_t len, uint64_t user);
/* Queues a send(MSG_WAITALL) of len bytes of buffer idx to a stream socket:
 * the kernel retries short sends itself, so one completion covers it all. */
int sl_datafd_submit_send(struct sl_datafd_reader *r, int sockfd, unsigned idx, size_t off,
			  size_t len, uint64_t user);
/* Submits what is queued without waiting. 0 or -errno. */
int sl_datafd_flush_submit(struct sl_datafd_reader *r);
/* Submits what is queued and waits for one completion (timeout_ms < 0:
 * forever). 0 with *user and *res, -ETIMEDOUT, or -errno. */
int sl_datafd_reap(struct sl_datafd_reader *r, uint64_t *user, int *res, int timeout_ms);

/* Writes all len bytes to fd (blocking or not): 0, or -errno
 * (-ETIMEDOUT when no progress for timeout_ms; < 0 = no limit). */
int sl_datafd_write_all(int fd, const void *buf, size_t len, int timeout_ms);

/* Moves up to len bytes from in_fd to out_fd through pipe (a pipe pair the
 * caller made; pipefd[0] read end) with splice(2). Returns bytes moved (0 =
 * end of in_fd) or -errno. in_fd may itself be a pipe, then pipefd may be NULL. */
ssize_t sl_datafd_splice(int in_fd, int out_fd, size_t len, const int *pipefd);

#endif /* SL_DATAFD_H */
