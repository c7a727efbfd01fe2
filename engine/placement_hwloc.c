/* SPDX-License-Identifier: MIT */
/*
 * placement_hwloc.c — topology discovery with hwloc, turned into the plain
 * sl_topo_desc the planner reads. Works the same on this machine and on a
 * synthetic topology ("pack:2 numa:2 core:4 pu:1"), which is how the plan
 * is tested for machines we don't have.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hwloc.h>

#include "sl_placement.h"

struct sl_topology {
	hwloc_topology_t topo;
	bool synthetic;
};

int sl_topology_new(const struct sl_topology_config *cfg, struct sl_topology **out,
		    struct sl_errbuf *eb)
{
	struct sl_errbuf local;
	struct sl_topology *t;

	if (!eb)
		eb = &local;
	if (!out)
		return sl_err(eb, -EINVAL, "topology: no output pointer");
	*out = NULL;
	if (cfg && cfg->size < sizeof(*cfg))
		return sl_err(eb, -EINVAL, "topology: config size field not set");
	t = calloc(1, sizeof(*t));
	if (!t)
		return sl_err(eb, -ENOMEM, "topology: out of memory");
	if (hwloc_topology_init(&t->topo) < 0) {
		free(t);
		return sl_err(eb, -ENOMEM, "topology: hwloc_topology_init failed");
	}
	if (cfg && cfg->synthetic) {
		if (hwloc_topology_set_synthetic(t->topo, cfg->synthetic) < 0) {
			hwloc_topology_destroy(t->topo);
			free(t);
			return sl_err(eb, -EINVAL, "topology: hwloc rejects the synthetic description '%s'",
				      cfg->synthetic);
		}
		t->synthetic = true;
	}
	if (hwloc_topology_load(t->topo) < 0) {
		hwloc_topology_destroy(t->topo);
		free(t);
		return sl_err(eb, -EIO, "topology: hwloc could not load the topology");
	}
	*out = t;
	return 0;
}

void sl_topology_free(struct sl_topology **t)
{
	if (!t || !*t)
		return;
	hwloc_topology_destroy((*t)->topo);
	free(*t);
	*t = NULL;
}

bool sl_topology_is_synthetic(const struct sl_topology *t)
{
	return t && t->synthetic;
}

/* The NUMA node (logical index) whose cpuset holds this core, or 0. */
static unsigned node_of_core(hwloc_topology_t topo, hwloc_obj_t core)
{
	int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);

	for (int i = 0; i < n; i++) {
		hwloc_obj_t nd = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)i);

		if (nd && nd->cpuset && hwloc_bitmap_isincluded(core->cpuset, nd->cpuset))
			return (unsigned)i;
	}
	return 0;
}

int sl_topology_describe(const struct sl_topology *t, struct sl_topo_desc *d)
{
	hwloc_topology_t topo;
	hwloc_obj_type_t core_type = HWLOC_OBJ_CORE;
	int n_nodes, n_cores, n_pus, n_pack;
	unsigned *core_node = NULL;
	uint32_t ci = 0, pi = 0;

	if (!t || !d)
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	topo = t->topo;
	n_nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
	n_cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
	n_pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
	n_pack = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
	if (n_cores <= 0) { /* no core level: each PU is its own core */
		core_type = HWLOC_OBJ_PU;
		n_cores = n_pus;
	}
	if (n_nodes <= 0)
		n_nodes = 1;
	if (n_cores <= 0 || n_pus <= 0)
		return -EINVAL;
	d->n_packages = n_pack > 0 ? (uint32_t)n_pack : 1;
	d->nodes = calloc((size_t)n_nodes, sizeof(*d->nodes));
	d->cores = calloc((size_t)n_cores, sizeof(*d->cores));
	d->pus = calloc((size_t)n_pus, sizeof(*d->pus));
	core_node = calloc((size_t)n_cores, sizeof(*core_node));
	if (!d->nodes || !d->cores || !d->pus || !core_node) {
		free(core_node);
		sl_topo_desc_release(d);
		return -ENOMEM;
	}
	d->n_nodes = (uint32_t)n_nodes;
	for (int i = 0; i < n_nodes; i++) {
		hwloc_obj_t nd = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)i);

		d->nodes[i].os_index = nd ? (int32_t)nd->os_index : 0;
		d->nodes[i].memory_bytes = nd && nd->attr ? nd->attr->numanode.local_memory
						: hwloc_get_root_obj(topo)->total_memory;
	}
	for (int c = 0; c < n_cores; c++) {
		hwloc_obj_t co = hwloc_get_obj_by_type(topo, core_type, (unsigned)c);

		core_node[c] = co ? node_of_core(topo, co) : 0;
	}
	/* Cores grouped by node (topology order inside a node), PUs by core. */
	for (uint32_t nd = 0; nd < d->n_nodes; nd++) {
		d->nodes[nd].first_core = ci;
		for (int c = 0; c < n_cores; c++) {
			hwloc_obj_t co = hwloc_get_obj_by_type(topo, core_type, (unsigned)c);
			hwloc_obj_t pk, pu = NULL;
			struct sl_topo_core *dc;

			if (!co || core_node[c] != nd)
				continue;
			dc = &d->cores[ci];
			dc->node = nd;
			pk = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, co);
			dc->package = pk ? pk->logical_index : 0;
			dc->first_pu = pi;
			while ((pu = hwloc_get_next_obj_inside_cpuset_by_type(
					topo, co->cpuset, HWLOC_OBJ_PU, pu)) && pi < (uint32_t)n_pus) {
				d->pus[pi].os_index = pu->os_index;
				d->pus[pi].core = ci;
				pi++;
				dc->n_pus++;
			}
			ci++;
			d->nodes[nd].n_cores++;
		}
	}
	free(core_node);
	d->n_cores = ci;
	d->n_pus = pi;
	return 0;
}

int sl_placement_plan_host(const struct sl_region_node *regions, size_t n_regions,
			   uint32_t n_scan, uint32_t n_channel, struct sl_placement *out,
			   struct sl_errbuf *eb)
{
	struct sl_topology_config cfg = { .size = sizeof(cfg) };
	struct sl_topology *t = NULL;
	struct sl_topo_desc d;
	int err;

	if (out)
		memset(out, 0, sizeof(*out));
	err = sl_topology_new(&cfg, &t, eb);
	if (err)
		return err;
	err = sl_topology_describe(t, &d);
	sl_topology_free(&t);
	if (err)
		return eb ? sl_err(eb, err, "topology: cannot describe this machine") : err;
	err = sl_placement_plan(&d, regions, n_regions, n_scan, n_channel, out, eb);
	sl_topo_desc_release(&d);
	return err;
}
