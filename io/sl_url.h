/* SPDX-License-Identifier: MIT */
/*
 * sl_url.h — migration endpoint addresses: "tcp:HOST:PORT" (IPv4, IPv6 as
 * tcp:[::1]:4444, or a host name) and "unix:PATH".
 */
#ifndef SL_URL_H
#define SL_URL_H

#include <sys/socket.h>
#include <sys/un.h>

#include "sl_common.h"

struct sl_url {
	int family; /* AF_INET, AF_INET6 or AF_UNIX */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[128]; /* normalised form, for messages */
};

/*
 * Parses and resolves text into url. Returns 0, or -EINVAL for a malformed
 * address (message in eb), -ENOENT when a host name does not resolve.
 */
int sl_url_parse(const char *text, struct sl_url *url, struct sl_errbuf *eb);

/* Creates a listening socket (SO_REUSEADDR; unlinks a stale unix path).
 * Returns the fd or negative errno. */
int sl_url_listen(const struct sl_url *url, int backlog, struct sl_errbuf *eb);

/* Connects a blocking stream socket. Returns the fd or negative errno. */
int sl_url_connect(const struct sl_url *url, struct sl_errbuf *eb);

/* After listening on port 0: the port the kernel chose (0 for unix). */
int sl_url_bound_port(int fd);

#endif /* SL_URL_H */
