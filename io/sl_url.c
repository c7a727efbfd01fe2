/* SPDX-License-Identifier: MIT */
#include "sl_url.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse_tcp(const char *hp, struct sl_url *url, struct sl_errbuf *eb)
{
	char host[256];
	const char *port;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	int ret;

	if (hp[0] == '[') {
		const char *end = strchr(hp, ']');

		if (!end || end[1] != ':' || (size_t)(end - hp - 1) >= sizeof(host))
			return sl_err(eb, -EINVAL, "bad address '%s': expected tcp:[IPV6]:PORT", hp);
		memcpy(host, hp + 1, end - hp - 1);
		host[end - hp - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(hp, ':');

		if (!colon || (size_t)(colon - hp) >= sizeof(host))
			return sl_err(eb, -EINVAL, "bad address '%s': expected tcp:HOST:PORT", hp);
		memcpy(host, hp, colon - hp);
		host[colon - hp] = '\0';
		port = colon + 1;
	}
	char *endp;
	long p = strtol(port, &endp, 10);

	if (!*port || *endp || p < 0 || p > 65535)
		return sl_err(eb, -EINVAL, "bad port '%s' in '%s'", port, hp);
	hints.ai_flags = AI_NUMERICSERV | (host[0] ? 0 : AI_PASSIVE);
	ret = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (ret || !res)
		return sl_err(eb, -ENOENT, "cannot resolve '%s': %s", host, gai_strerror(ret));
	memcpy(&url->addr, res->ai_addr, res->ai_addrlen);
	url->addrlen = res->ai_addrlen;
	url->family = res->ai_family;
	freeaddrinfo(res);
	snprintf(url->text, sizeof(url->text), "tcp:%s", hp);
	return 0;
}

int sl_url_parse(const char *text, struct sl_url *url, struct sl_errbuf *eb)
{
	if (!text || !url)
		return sl_err(eb, -EINVAL, "no address given");
	memset(url, 0, sizeof(*url));
	if (!strncmp(text, "tcp:", 4))
		return parse_tcp(text + 4, url, eb);
	if (!strncmp(text, "unix:", 5)) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&url->addr;
		size_t n = strlen(text + 5);

		if (n == 0 || n >= sizeof(sun->sun_path))
			return sl_err(eb, -EINVAL, "bad unix socket path in '%s'", text);
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, text + 5, n + 1);
		url->addrlen = sizeof(*sun);
		url->family = AF_UNIX;
		snprintf(url->text, sizeof(url->text), "%s", text);
		return 0;
	}
	return sl_err(eb, -EINVAL, "bad address '%s': expected tcp:HOST:PORT or unix:PATH", text);
}

int sl_url_listen(const struct sl_url *url, int backlog, struct sl_errbuf *eb)
{
	int one = 1, fd, err;

	fd = socket(url->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sl_err(eb, -errno, "socket for %s: %s", url->text, strerror(errno));
	if (url->family == AF_UNIX)
		unlink(((const struct sockaddr_un *)&url->addr)->sun_path);
	else
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&url->addr, url->addrlen) < 0 ||
	    listen(fd, backlog) < 0) {
		err = -errno;
		close(fd);
		return sl_err(eb, err, "listen on %s: %s", url->text, strerror(-err));
	}
	return fd;
}

int sl_url_connect(const struct sl_url *url, struct sl_errbuf *eb)
{
	int one = 1, fd, err;

	fd = socket(url->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sl_err(eb, -errno, "socket for %s: %s", url->text, strerror(errno));
	if (connect(fd, (const struct sockaddr *)&url->addr, url->addrlen) < 0) {
		err = -errno;
		close(fd);
		return sl_err(eb, err, "connect to %s: %s", url->text, strerror(-err));
	}
	if (url->family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int sl_url_bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}
