/* SPDX-License-Identifier: MIT */
/* sl_datafd.c — io_uring reader for VFIO data fds, RESUMING writer, splice. */
#include "sl_datafd.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

struct sl_datafd_reader {
	struct io_uring ring;
	bool ring_ok;
	bool registered;
	unsigned nbufs;
	size_t buf_size;
	uint8_t *mem;
	size_t mem_len;
	unsigned queued, inflight;
};

int sl_datafd_reader_new(const struct sl_datafd_reader_config *cfg,
			 struct sl_datafd_reader **out, struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct sl_datafd_reader *r;
	struct iovec *iov;
	unsigned entries;
	int ret;

	if (!eb)
		eb = &dummy;
	if (!cfg || !out || cfg->size < sizeof(*cfg) || cfg->nbufs < 1 || cfg->nbufs > 1024 ||
	    cfg->buf_size < 4096 || cfg->buf_size > (64u << 20))
		return sl_err(eb, -EINVAL, "datafd reader: bad config");
	r = calloc(1, sizeof(*r));
	if (!r)
		return sl_err(eb, -ENOMEM, "datafd reader: out of memory");
	r->nbufs = cfg->nbufs;
	r->buf_size = (cfg->buf_size + 4095) & ~(size_t)4095;
	r->mem_len = r->buf_size * r->nbufs;
	r->mem = mmap(NULL, r->mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->mem == MAP_FAILED) {
		size_t want = r->mem_len;
		free(r);
		return sl_err(eb, -ENOMEM, "datafd reader: cannot map %zu bytes", want);
	}
	entries = cfg->entries ? cfg->entries : 1;
	if (!cfg->entries)
		while (entries < 2 * r->nbufs)
			entries <<= 1;
	ret = io_uring_queue_init(entries, &r->ring, 0);
	if (ret < 0) {
		munmap(r->mem, r->mem_len);
		free(r);
		return sl_err(eb, ret, "datafd reader: io_uring_queue_init: %s", strerror(-ret));
	}
	r->ring_ok = true;
	iov = calloc(r->nbufs, sizeof(*iov));
	if (iov) {
		for (unsigned i = 0; i < r->nbufs; i++) {
			iov[i].iov_base = r->mem + (size_t)i * r->buf_size;
			iov[i].iov_len = r->buf_size;
		}
		/* Registration pins the pages once instead of per read. It can
		 * fail under RLIMIT_MEMLOCK: plain READ into the same buffers. */
		r->registered = io_uring_register_buffers(&r->ring, iov, r->nbufs) == 0;
		free(iov);
	}
	*out = r;
	return 0;
}

void sl_datafd_reader_free(struct sl_datafd_reader **pr)
{
	struct sl_datafd_reader *r;

	if (!pr || !*pr)
		return;
	r = *pr;
	if (r->ring_ok)
		io_uring_queue_exit(&r->ring);
	munmap(r->mem, r->mem_len);
	free(r);
	*pr = NULL;
}

void *sl_datafd_buf(struct sl_datafd_reader *r, unsigned idx)
{
	return idx < r->nbufs ? r->mem + (size_t)idx * r->buf_size : NULL;
}

size_t sl_datafd_buf_size(const struct sl_datafd_reader *r)
{
	return r->buf_size;
}

unsigned sl_datafd_nbufs(const struct sl_datafd_reader *r)
{
	return r->nbufs;
}

bool sl_datafd_registered(const struct sl_datafd_reader *r)
{
	return r->registered;
}

int sl_datafd_submit_read(struct sl_datafd_reader *r, int fd, unsigned idx, size_t len,
			  uint64_t user, bool nowait)
{
	struct io_uring_sqe *sqe;

	if (!r || fd < 0 || idx >= r->nbufs || len == 0 || len > r->buf_size)
		return -EINVAL;
	sqe = io_uring_get_sqe(&r->ring);
	if (!sqe)
		return -EBUSY;
	/* offset -1: streams have no position to read at (pread -> ESPIPE). */
	if (r->registered)
		io_uring_prep_read_fixed(sqe, fd, sl_datafd_buf(r, idx), (unsigned)len,
					 (uint64_t)-1, (int)idx);
	else
		io_uring_prep_read(sqe, fd, sl_datafd_buf(r, idx), (unsigned)len, (uint64_t)-1);
	if (nowait)
		sqe->rw_flags = RWF_NOWAIT;
	io_uring_sqe_set_data64(sqe, user);
	r->queued++;
	return 0;
}

int sl_datafd_submit_write(struct sl_datafd_reader *r, int fd, unsigned idx, size_t off,
			   size_t len, uint64_t user)
{
	struct io_uring_sqe *sqe;

	if (!r || fd < 0 || idx >= r->nbufs || len == 0 || off + len > r->buf_size)
		return -EINVAL;
	sqe = io_uring_get_sqe(&r->ring);
	if (!sqe)
		return -EBUSY;
	if (r->registered)
		io_uring_prep_write_fixed(sqe, fd, (uint8_t *)sl_datafd_buf(r, idx) + off,
					  (unsigned)len, (uint64_t)-1, (int)idx);
	else
		io_uring_prep_write(sqe, fd, (uint8_t *)sl_datafd_buf(r, idx) + off, (unsigned)len,
				    (uint64_t)-1);
	io_uring_sqe_set_data64(sqe, user);
	r->queued++;
	return 0;
}

int sl_datafd_submit_send(struct sl_datafd_reader *r, int sockfd, unsigned idx, size_t off,
			  size_t len, uint64_t user)
{
	struct io_uring_sqe *sqe;

	if (!r || sockfd < 0 || idx >= r->nbufs || len == 0 || off + len > r->buf_size)
		return -EINVAL;
	sqe = io_uring_get_sqe(&r->ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, sockfd, (uint8_t *)sl_datafd_buf(r, idx) + off, len, MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, user);
	r->queued++;
	return 0;
}

int sl_datafd_flush_submit(struct sl_datafd_reader *r)
{
	int ret;

	if (!r)
		return -EINVAL;
	if (!r->queued)
		return 0;
	ret = io_uring_submit(&r->ring);
	if (ret < 0)
		return ret;
	r->inflight += r->queued;
	r->queued = 0;
	return 0;
}

int sl_datafd_reap(struct sl_datafd_reader *r, uint64_t *user, int *res, int timeout_ms)
{
	struct io_uring_cqe *cqe;
	int ret;

	if (!r || !user || !res)
		return -EINVAL;
	if (r->queued) {
		ret = io_uring_submit(&r->ring);
		if (ret < 0)
			return ret;
		r->inflight += r->queued;
		r->queued = 0;
	}
	if (timeout_ms < 0) {
		ret = io_uring_wait_cqe(&r->ring, &cqe);
	} else {
		struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000,
						.tv_nsec = (timeout_ms % 1000) * 1000000LL };
		ret = io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts);
		if (ret == -ETIME)
			ret = -ETIMEDOUT;
	}
	if (ret < 0)
		return ret;
	*user = io_uring_cqe_get_data64(cqe);
	*res = cqe->res;
	io_uring_cqe_seen(&r->ring, cqe);
	if (r->inflight)
		r->inflight--;
	return 0;
}

int sl_datafd_write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			int pr = poll(&pfd, 1, timeout_ms);
			if (pr == 0)
				return -ETIMEDOUT;
			if (pr < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		return n < 0 ? -errno : -EIO;
	}
	return 0;
}

ssize_t sl_datafd_splice(int in_fd, int out_fd, size_t len, const int *pipefd)
{
	ssize_t n, done = 0;

	if (!pipefd) {
		n = splice(in_fd, NULL, out_fd, NULL, len, SPLICE_F_MOVE | SPLICE_F_MORE);
		return n < 0 ? -errno : n;
	}
	n = splice(in_fd, NULL, pipefd[1], NULL, len, SPLICE_F_MOVE | SPLICE_F_MORE);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	while (done < n) {
		ssize_t m = splice(pipefd[0], NULL, out_fd, NULL, (size_t)(n - done),
				   SPLICE_F_MOVE | SPLICE_F_MORE);
		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0)
			return m < 0 ? -errno : -EIO;
		done += m;
	}
	return n;
}
