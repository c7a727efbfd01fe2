/* SPDX-License-Identifier: MIT */
/* cmd_run_netns.h — two network namespaces + veth (+ tc tbf) for `sluice run --netns`. */
#ifndef SL_CMD_RUN_NETNS_H
#define SL_CMD_RUN_NETNS_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_common.h"

#define RUN_NETNS_SRC_IP "10.199.0.1"
#define RUN_NETNS_DST_IP "10.199.0.2"

struct run_netns {
	char src[32], dst[32];       /* namespace names (ip netns) */
	char src_if[16], dst_if[16]; /* the veth ends */
	bool have_src, have_dst;
};

/* Creates both namespaces, the veth pair and (link_rate > 0, bytes/s) a tbf
 * qdisc on each end. On failure everything made is removed; -EPERM with the
 * failing command in eb. */
int run_netns_setup(struct run_netns *n, uint64_t link_rate, struct sl_errbuf *eb);
/* Moves the calling thread into namespace `name` (threads it creates later
 * inherit it). */
int run_netns_enter(const char *name, struct sl_errbuf *eb);
/* Deletes what setup made. Safe to call twice. */
void run_netns_teardown(struct run_netns *n);

#endif /* SL_CMD_RUN_NETNS_H */
