/* SPDX-License-Identifier: MIT */
/*
 * cmd_run_netns.c — `sluice run --netns`: two network namespaces joined by
 * a veth pair stand for two hosts; `--link-rate` puts a tc token-bucket
 * (tbf) on both ends. Built with iproute2 (`ip`, `tc`), so it needs root.
 * The source enters its namespace with setns(2) before it creates any
 * socket or thread of the migration; the destination process enters the
 * other right after fork, before it execs `sluice receive`.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd_run_netns.h"

static int run_cmd(const char *const *argv, struct sl_errbuf *eb)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return sl_err(eb, -errno, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "sluice run --netns: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return sl_err(eb, -errno, "waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		char cmd[256] = "";

		for (const char *const *a = argv; *a; a++)
			snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s", a == argv ? "" : " ", *a);
		return sl_err(eb, -EPERM, "`%s` failed (exit %d): --netns needs root and iproute2", cmd,
			      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	return 0;
}

#define RUN(eb, ...)                                                      \
	do {                                                              \
		const char *const argv_[] = { __VA_ARGS__, NULL };        \
		int r_ = run_cmd(argv_, eb);                              \
		if (r_ < 0)                                               \
			return r_;                                        \
	} while (0)

static int add_tbf(const char *ns, const char *dev, uint64_t rate, struct sl_errbuf *eb)
{
	char bits[32], burst[32];

	snprintf(bits, sizeof(bits), "%llubit", (unsigned long long)(rate * 8));
	/* A burst of 10 ms of traffic (>= 64 KiB): smaller starves fast links. */
	snprintf(burst, sizeof(burst), "%llu", (unsigned long long)SL_MAX(rate / 100, 65536ull));
	RUN(eb, "tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", bits, "burst", burst,
	    "latency", "200ms");
	return 0;
}

static int build(struct run_netns *n, uint64_t link_rate, struct sl_errbuf *eb)
{
	RUN(eb, "ip", "netns", "add", n->src);
	n->have_src = true;
	RUN(eb, "ip", "netns", "add", n->dst);
	n->have_dst = true;
	RUN(eb, "ip", "link", "add", n->src_if, "type", "veth", "peer", "name", n->dst_if);
	RUN(eb, "ip", "link", "set", n->src_if, "netns", n->src);
	RUN(eb, "ip", "link", "set", n->dst_if, "netns", n->dst);
	RUN(eb, "ip", "-n", n->src, "addr", "add", RUN_NETNS_SRC_IP "/24", "dev", n->src_if);
	RUN(eb, "ip", "-n", n->dst, "addr", "add", RUN_NETNS_DST_IP "/24", "dev", n->dst_if);
	RUN(eb, "ip", "-n", n->src, "link", "set", "lo", "up");
	RUN(eb, "ip", "-n", n->dst, "link", "set", "lo", "up");
	RUN(eb, "ip", "-n", n->src, "link", "set", n->src_if, "up");
	RUN(eb, "ip", "-n", n->dst, "link", "set", n->dst_if, "up");
	if (link_rate) {
		int ret = add_tbf(n->src, n->src_if, link_rate, eb);

		if (ret < 0)
			return ret;
		ret = add_tbf(n->dst, n->dst_if, link_rate, eb);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int run_netns_setup(struct run_netns *n, uint64_t link_rate, struct sl_errbuf *eb)
{
	int pid = (int)getpid(), ret;

	memset(n, 0, sizeof(*n));
	snprintf(n->src, sizeof(n->src), "sluice-src-%d", pid);
	snprintf(n->dst, sizeof(n->dst), "sluice-dst-%d", pid);
	/* Interface names: at most 15 characters. */
	snprintf(n->src_if, sizeof(n->src_if), "sls%d", pid % 10000000);
	snprintf(n->dst_if, sizeof(n->dst_if), "sld%d", pid % 10000000);
	ret = build(n, link_rate, eb);
	if (ret < 0)
		run_netns_teardown(n);
	return ret;
}

int run_netns_enter(const char *name, struct sl_errbuf *eb)
{
	char path[128];
	int fd, ret;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return sl_err(eb, -errno, "cannot open %s: %s", path, strerror(errno));
	ret = setns(fd, CLONE_NEWNET);
	close(fd);
	if (ret < 0)
		return sl_err(eb, -errno, "setns %s: %s", name, strerror(errno));
	return 0;
}

void run_netns_teardown(struct run_netns *n)
{
	struct sl_errbuf eb;

	/* Deleting a namespace destroys the veth end inside it (and its peer). */
	if (n->have_dst) {
		const char *const a[] = { "ip", "netns", "del", n->dst, NULL };

		run_cmd(a, &eb);
		n->have_dst = false;
	}
	if (n->have_src) {
		const char *const a[] = { "ip", "netns", "del", n->src, NULL };

		run_cmd(a, &eb);
		n->have_src = false;
	}
}
