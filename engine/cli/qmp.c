/* SPDX-License-Identifier: MIT */
/* qmp.c — line-oriented QMP client: one JSON object per line, events skipped. */
#include "qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct qmp {
	int fd;
	char buf[65536];
	size_t len;
};

static int read_line(struct qmp *q, char *line, size_t cap, int timeout_ms)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);

		if (nl) {
			size_t n = (size_t)(nl - q->buf) + 1;

			if (n >= cap)
				return -EMSGSIZE;
			memcpy(line, q->buf, n);
			line[n] = '\0';
			memmove(q->buf, q->buf + n, q->len - n);
			q->len -= n;
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return -EMSGSIZE;
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		int r = poll(&p, 1, timeout_ms);

		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0)
			return -errno;
		ssize_t got = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);

		if (got == 0)
			return -ECONNRESET;
		if (got < 0)
			return -errno;
		q->len += (size_t)got;
	}
}

/* Reads objects until one that is not an event. */
static int read_reply(struct qmp *q, json_object **out)
{
	static char line[65536];

	for (;;) {
		int ret = read_line(q, line, sizeof(line), 30000);

		if (ret)
			return ret;
		json_object *o = json_tokener_parse(line);

		if (!o)
			return -EBADMSG;
		if (json_object_object_get_ex(o, "event", NULL)) {
			json_object_put(o);
			continue;
		}
		*out = o;
		return 0;
	}
}

int qmp_exec(struct qmp *q, const char *cmd, json_object *args, json_object **ret,
	     char *err, size_t errlen)
{
	json_object *req = json_object_new_object(), *rep = NULL, *v;
	const char *s;
	int r;

	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", args);
	s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	/* MSG_NOSIGNAL: QEMU may already be gone (after "quit"); that is an
	 * error to return, not a SIGPIPE that kills the benchmark. */
	if (send(q->fd, s, strlen(s), MSG_NOSIGNAL) < 0 || send(q->fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		json_object_put(req);
		return -errno;
	}
	json_object_put(req);
	r = read_reply(q, &rep);
	if (r)
		return r;
	if (json_object_object_get_ex(rep, "error", &v)) {
		json_object *desc;

		if (err)
			snprintf(err, errlen, "%s",
				 json_object_object_get_ex(v, "desc", &desc) ?
				 json_object_get_string(desc) : "QMP error");
		json_object_put(rep);
		return -EIO;
	}
	if (ret) {
		*ret = json_object_object_get_ex(rep, "return", &v) ? json_object_get(v) : NULL;
	}
	json_object_put(rep);
	return 0;
}

int qmp_open(const char *path, int timeout_ms, struct qmp **out)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timespec nap = { 0, 20 * 1000 * 1000 };
	struct qmp *q;
	json_object *greeting;
	int waited = 0, ret;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0) {
			ret = -errno;
			free(q);
			return ret;
		}
		if (connect(q->fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			break;
		ret = -errno;
		close(q->fd);
		if (waited >= timeout_ms) {
			free(q);
			return ret;
		}
		nanosleep(&nap, NULL);
		waited += 20;
	}
	ret = read_reply(q, &greeting);
	if (ret == 0) {
		json_object_put(greeting);
		ret = qmp_exec(q, "qmp_capabilities", NULL, NULL, NULL, 0);
	}
	if (ret) {
		close(q->fd);
		free(q);
		return ret;
	}
	*out = q;
	return 0;
}

void qmp_close(struct qmp **q)
{
	if (q && *q) {
		close((*q)->fd);
		free(*q);
		*q = NULL;
	}
}
