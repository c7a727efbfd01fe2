/* SPDX-License-Identifier: MIT */
/*
 * sl_placement.h — where the worker threads run: topology discovery
 * (hwloc), which NUMA node holds a piece of memory (libnuma move_pages),
 * and the placement plan.
 *
 * The plan is a pure function of (topology description, the regions'
 * NUMA nodes and sizes, worker counts): scanner workers go to the nodes
 * that hold the RAM they scan, in proportion to the bytes on each node;
 * channel workers (which read all of RAM, granule by granule) are spread
 * over the nodes in proportion to the bytes too. Within a node each worker
 * gets its own core while cores last (scanners first, then channels), then
 * they share cores round-robin. A region whose node is unknown (-1) counts
 * as spread evenly over all nodes. docs/tuning.md shows examples.
 *
 * Threading: a topology is read-only after sl_topology_new and may be used
 * from any thread; plans are plain data.
 */
#ifndef SL_PLACEMENT_H
#define SL_PLACEMENT_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_common.h"

struct json_object;

/* ---- topology description (plain data; input of the plan) --------------- */

struct sl_topo_pu {
	uint32_t os_index;   /* the CPU number the kernel uses (affinity) */
	uint32_t core;       /* index into sl_topo_desc.cores */
};

struct sl_topo_core {
	uint32_t node;       /* index into sl_topo_desc.nodes */
	uint32_t package;    /* package (socket) logical index */
	uint32_t first_pu;   /* this core's PUs: pus[first_pu .. +n_pus) */
	uint32_t n_pus;
};

struct sl_topo_node {
	int32_t os_index;    /* the kernel's NUMA node number (libnuma) */
	uint64_t memory_bytes;
	uint32_t first_core; /* this node's cores: cores[first_core .. +n_cores) */
	uint32_t n_cores;
};

/* Nodes, cores and PUs in topology order; each node's cores and each
 * core's PUs are contiguous. A machine without NUMA has one node. */
struct sl_topo_desc {
	uint32_t n_packages;
	struct sl_topo_node *nodes;
	uint32_t n_nodes;
	struct sl_topo_core *cores;
	uint32_t n_cores;
	struct sl_topo_pu *pus;
	uint32_t n_pus;
};

/* Frees the arrays and zeroes *d. NULL is ignored. */
SL_EXPORT void sl_topo_desc_release(struct sl_topo_desc *d);

/* ---- discovery (hwloc) ---------------------------------------------------- */

struct sl_topology_config {
	size_t size;           /* sizeof(struct sl_topology_config) */
	/* hwloc synthetic description, e.g. "pack:2 numa:2 core:4 pu:1"
	 * (hwloc_topology_set_synthetic); NULL → this machine. */
	const char *synthetic;
};

struct sl_topology;

/* Loads the topology. Returns 0, -EINVAL (bad synthetic string; text in eb
 * if eb), -ENOMEM, or -EIO (hwloc failed to load). */
SL_EXPORT int sl_topology_new(const struct sl_topology_config *cfg,
			      struct sl_topology **out, struct sl_errbuf *eb);
SL_EXPORT void sl_topology_free(struct sl_topology **t);

/* Fills *out (caller releases with sl_topo_desc_release). PUs with no
 * NUMA node (should not happen) go to node 0. Returns 0 or -ENOMEM. */
SL_EXPORT int sl_topology_describe(const struct sl_topology *t,
				   struct sl_topo_desc *out);

/* True when loaded from a synthetic description. */
SL_EXPORT bool sl_topology_is_synthetic(const struct sl_topology *t);

/* ---- memory location (libnuma) ------------------------------------------ */

/* The NUMA node holding most of [addr, addr+len): samples up to 64 pages
 * with move_pages(2). Returns the node (>= 0), -1 when no sampled page is
 * present yet (not faulted in), 0 when the system has no NUMA support
 * (numa_available() < 0: all memory is "node 0"), or -EINVAL (NULL/zero
 * length). */
SL_EXPORT int sl_numa_node_of(const void *addr, size_t len);

/* True when libnuma reports NUMA support (numa_available() >= 0). */
SL_EXPORT bool sl_numa_available(void);

/* ---- the plan ------------------------------------------------------------ */

enum sl_worker_role {
	SL_WORKER_SCAN = 0,     /* scans dirty bitmaps of RAM on its node */
	SL_WORKER_CHANNEL = 1,  /* drives one channel */
};

struct sl_region_node {
	int32_t node;           /* kernel node number, -1 = unknown */
	uint64_t bytes;
};

struct sl_worker_place {
	enum sl_worker_role role;
	uint32_t index;         /* index within its role (channel number) */
	int32_t node;           /* kernel node number (sl_topo_node.os_index) */
	uint32_t node_idx;      /* index into sl_topo_desc.nodes */
	uint32_t core;          /* index into sl_topo_desc.cores */
	uint32_t first_cpu;     /* OS index of the core's first PU */
	cpu_set_t cpus;         /* the core's PUs (affinity mask) */
	bool shares_core;       /* more workers than cores on that node */
};

struct sl_placement {
	struct sl_worker_place *workers; /* scanners first, then channels */
	uint32_t n_workers;
	uint32_t n_scan;
	uint32_t n_channel;
};

/* Plans n_scan + n_channel workers. regions may be NULL when n_regions is
 * 0 (all memory unknown → spread evenly). Returns 0, -EINVAL (topology
 * with no node/core/PU, n_scan + n_channel == 0 or > 4096, a region on a
 * node the topology lacks — text in eb if eb) or -ENOMEM. Deterministic:
 * the same inputs give the same plan. */
SL_EXPORT int sl_placement_plan(const struct sl_topo_desc *topo,
				const struct sl_region_node *regions,
				size_t n_regions, uint32_t n_scan,
				uint32_t n_channel, struct sl_placement *out,
				struct sl_errbuf *eb);

/* Convenience for a session: loads this machine's topology (hwloc) and
 * plans on it. Fill regions[i].node with sl_numa_node_of(host_ptr, len).
 * Returns like sl_placement_plan, or sl_topology_new's errors. */
SL_EXPORT int sl_placement_plan_host(const struct sl_region_node *regions,
				     size_t n_regions, uint32_t n_scan,
				     uint32_t n_channel, struct sl_placement *out,
				     struct sl_errbuf *eb);

/* Frees the worker array and zeroes *p. NULL is ignored. */
SL_EXPORT void sl_placement_release(struct sl_placement *p);

/* Scanner workers on the kernel node `node` (-1: all scanners): writes up
 * to max indices (into plan->workers) and returns how many there are. */
SL_EXPORT uint32_t sl_placement_scanners_on_node(const struct sl_placement *p,
						 int32_t node, uint32_t *idx,
						 uint32_t max);

/* "0-3,8" style list of a worker's CPUs into buf; returns buf. */
SL_EXPORT const char *sl_placement_cpus_str(const struct sl_worker_place *w,
					    char *buf, size_t len);

/* JSON: {"nodes":[{"node","memory_bytes","cores":[{"core","package",
 * "cpus":[..]}]}], "packages", "n_cores", "n_pus"} and
 * {"workers":[{"role","index","node","core","cpus","shares_core"}]}.
 * Return NULL on -ENOMEM. */
SL_EXPORT struct json_object *sl_topo_desc_to_json(const struct sl_topo_desc *d);
SL_EXPORT struct json_object *sl_placement_to_json(const struct sl_placement *p);

#endif /* SL_PLACEMENT_H */
