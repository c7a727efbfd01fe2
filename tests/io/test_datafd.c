/* SPDX-License-Identifier: MIT */
/*
 * test_datafd.c — the data fd reader (io_uring into registered buffers),
 * the RESUMING writer and the splice path, on real pipes and sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "sl_datafd.h"

#define TOTAL (8u << 20)

static uint8_t pat(uint64_t i)
{
	return (uint8_t)(i * 2654435761u >> 13);
}

struct prod {
	int fd;
	size_t total;
};

static void *producer(void *arg)
{
	struct prod *p = arg;
	uint8_t *buf = malloc(100000);

	for (size_t off = 0; off < p->total;) {
		size_t n = SL_MIN((size_t)100000, p->total - off);
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(off + i);
		assert_int_equal(sl_datafd_write_all(p->fd, buf, n, 5000), 0);
		off += n;
	}
	close(p->fd);
	free(buf);
	return NULL;
}

static void test_reader_pipe(void **st)
{
	struct sl_datafd_reader_config c = { .size = sizeof(c), .nbufs = 4, .buf_size = 200000 };
	struct sl_datafd_reader *r = NULL;
	int p[2];
	pthread_t t;
	struct prod pr;
	uint64_t got = 0, user;
	int res;
	unsigned idx = 0;

	(void)st;
	assert_int_equal(sl_datafd_reader_new(&c, &r, NULL), 0);
	assert_int_equal(sl_datafd_buf_size(r), 200704); /* rounded up to 4 KiB */
	assert_int_equal(sl_datafd_nbufs(r), 4);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pr.fd = p[1];
	pr.total = TOTAL;
	assert_int_equal(pthread_create(&t, NULL, producer, &pr), 0);
	for (;;) {
		assert_int_equal(sl_datafd_submit_read(r, p[0], idx, sl_datafd_buf_size(r), 77 + idx,
						       false), 0);
		assert_int_equal(sl_datafd_reap(r, &user, &res, 10000), 0);
		assert_int_equal(user, 77 + idx);
		assert_true(res >= 0);
		if (res == 0)
			break;
		const uint8_t *b = sl_datafd_buf(r, idx);
		for (int i = 0; i < res; i++)
			if (b[i] != pat(got + (uint64_t)i))
				fail_msg("byte %llu differs", (unsigned long long)(got + (uint64_t)i));
		got += (uint64_t)res;
		idx = (idx + 1) % 4;
	}
	assert_int_equal(got, TOTAL);
	pthread_join(t, NULL);
	close(p[0]);
	sl_datafd_reader_free(&r);
	assert_null(r);
}

/* nowait on an empty pipe completes with -EAGAIN instead of waiting. */
static void test_reader_nowait(void **st)
{
	struct sl_datafd_reader_config c = { .size = sizeof(c), .nbufs = 1, .buf_size = 4096 };
	struct sl_datafd_reader *r = NULL;
	uint64_t user;
	int p[2], res;

	(void)st;
	assert_int_equal(sl_datafd_reader_new(&c, &r, NULL), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(sl_datafd_submit_read(r, p[0], 0, 4096, 1, true), 0);
	assert_int_equal(sl_datafd_reap(r, &user, &res, 5000), 0);
	assert_int_equal(res, -EAGAIN);
	assert_int_equal(write(p[1], "xyz", 3), 3);
	assert_int_equal(sl_datafd_submit_read(r, p[0], 0, 4096, 2, true), 0);
	assert_int_equal(sl_datafd_reap(r, &user, &res, 5000), 0);
	assert_int_equal(res, 3);
	assert_memory_equal(sl_datafd_buf(r, 0), "xyz", 3);
	/* A reap with nothing in flight times out. */
	assert_int_equal(sl_datafd_reap(r, &user, &res, 10), -ETIMEDOUT);
	/* Bad arguments. */
	assert_int_equal(sl_datafd_submit_read(r, p[0], 1, 10, 0, false), -EINVAL);
	assert_int_equal(sl_datafd_submit_read(r, p[0], 0, 8192, 0, false), -EINVAL);
	assert_int_equal(sl_datafd_submit_read(r, -1, 0, 10, 0, false), -EINVAL);
	close(p[0]);
	close(p[1]);
	sl_datafd_reader_free(&r);

	struct sl_datafd_reader_config bad = { .size = sizeof(bad), .nbufs = 0, .buf_size = 4096 };
	assert_int_equal(sl_datafd_reader_new(&bad, &r, NULL), -EINVAL);
	bad.nbufs = 1;
	bad.buf_size = 100;
	assert_int_equal(sl_datafd_reader_new(&bad, &r, NULL), -EINVAL);
	assert_null(r);
}

/* Read a pipe into a buffer and write it to a socket from the same buffer
 * (the benchmark's path), then the splice path, checking every byte. */
static void drain_check(int fd, size_t total)
{
	uint8_t *b = malloc(65536);
	size_t got = 0;
	ssize_t n;

	while ((n = read(fd, b, 65536)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(b[i], pat(got + (size_t)i));
		got += (size_t)n;
	}
	assert_int_equal(got, total);
	free(b);
}

struct drain_arg {
	int fd;
	size_t total;
};

static void *drainer(void *a)
{
	struct drain_arg *d = a;

	drain_check(d->fd, d->total);
	return NULL;
}

static void test_write_and_splice(void **st)
{
	struct sl_datafd_reader_config c = { .size = sizeof(c), .nbufs = 2, .buf_size = 1 << 16 };
	struct sl_datafd_reader *r = NULL;
	int p[2], sv[2], mid[2];
	pthread_t tp, td;
	struct prod pr;
	struct drain_arg da;
	uint64_t user;
	int res;

	(void)st;
	assert_int_equal(sl_datafd_reader_new(&c, &r, NULL), 0);
	/* io_uring read + io_uring write from the same buffer. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pr = (struct prod){ .fd = p[1], .total = 1 << 20 };
	da = (struct drain_arg){ .fd = sv[1], .total = 1 << 20 };
	pthread_create(&tp, NULL, producer, &pr);
	pthread_create(&td, NULL, drainer, &da);
	for (;;) {
		assert_int_equal(sl_datafd_submit_read(r, p[0], 0, 1 << 16, 1, false), 0);
		assert_int_equal(sl_datafd_reap(r, &user, &res, 10000), 0);
		assert_true(res >= 0);
		if (!res)
			break;
		int off = 0;
		while (off < res) {
			int w;
			assert_int_equal(sl_datafd_submit_write(r, sv[0], 0, (size_t)off,
								(size_t)(res - off), 2), 0);
			assert_int_equal(sl_datafd_reap(r, &user, &w, 10000), 0);
			assert_true(w > 0);
			off += w;
		}
	}
	shutdown(sv[0], SHUT_WR);
	pthread_join(tp, NULL);
	pthread_join(td, NULL);
	close(p[0]);
	close(sv[0]);
	close(sv[1]);

	/* splice: pipe -> socket directly, and file-like fd -> pipe -> socket. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(mid, O_CLOEXEC), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pr = (struct prod){ .fd = p[1], .total = 3 << 20 };
	da = (struct drain_arg){ .fd = sv[1], .total = 3 << 20 };
	pthread_create(&tp, NULL, producer, &pr);
	pthread_create(&td, NULL, drainer, &da);
	ssize_t n;
	bool via = false;
	while ((n = sl_datafd_splice(p[0], sv[0], 1 << 20, via ? mid : NULL)) > 0)
		via = !via;
	assert_int_equal(n, 0);
	shutdown(sv[0], SHUT_WR);
	pthread_join(tp, NULL);
	pthread_join(td, NULL);
	close(p[0]);
	close(mid[0]);
	close(mid[1]);
	close(sv[0]);
	close(sv[1]);
	sl_datafd_reader_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_pipe),
		cmocka_unit_test(test_reader_nowait),
		cmocka_unit_test(test_write_and_splice),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
