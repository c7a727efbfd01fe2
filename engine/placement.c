/* SPDX-License-Identifier: MIT */
/*
 * placement.c — the placement plan: a pure function of the topology
 * description, the regions' NUMA nodes and the worker counts.
 *
 * 1. Each node with cores gets a weight: the bytes of RAM on it, plus an
 *    even share of RAM whose node is unknown and of RAM on nodes without
 *    cores (memory-only nodes). No RAM at all → equal weights.
 * 2. Scanners are shared out by weight (largest remainder; ties go to the
 *    node with fewer workers so far, then the lower index), then channels
 *    the same way, so that one scanner and one channel on two equal nodes
 *    land on different nodes.
 * 3. On a node, workers take its cores in order, scanners first; when
 *    there are more workers than cores they wrap round and share.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "sl_placement.h"

#define MAX_WORKERS 4096

void sl_topo_desc_release(struct sl_topo_desc *d)
{
	if (!d)
		return;
	free(d->nodes);
	free(d->cores);
	free(d->pus);
	memset(d, 0, sizeof(*d));
}

void sl_placement_release(struct sl_placement *p)
{
	if (!p)
		return;
	free(p->workers);
	memset(p, 0, sizeof(*p));
}

static int check_topo(const struct sl_topo_desc *t, struct sl_errbuf *eb)
{
	if (!t || !t->n_nodes || !t->n_cores || !t->n_pus || !t->nodes ||
	    !t->cores || !t->pus)
		return sl_err(eb, -EINVAL, "placement: the topology has no NUMA node, core or CPU");
	for (uint32_t i = 0; i < t->n_nodes; i++) {
		const struct sl_topo_node *n = &t->nodes[i];

		if (n->first_core > t->n_cores || n->n_cores > t->n_cores - n->first_core)
			return sl_err(eb, -EINVAL, "placement: node %" PRIu32 " has a bad core range", i);
	}
	for (uint32_t i = 0; i < t->n_cores; i++) {
		const struct sl_topo_core *c = &t->cores[i];

		if (!c->n_pus || c->first_pu > t->n_pus || c->n_pus > t->n_pus - c->first_pu ||
		    c->node >= t->n_nodes)
			return sl_err(eb, -EINVAL, "placement: core %" PRIu32 " has a bad CPU range or node", i);
	}
	return 0;
}

static int node_idx_of(const struct sl_topo_desc *t, int32_t os)
{
	for (uint32_t i = 0; i < t->n_nodes; i++)
		if (t->nodes[i].os_index == os)
			return (int)i;
	return -1;
}

/* Shares n workers out over the nodes by weight (largest remainder). */
static void share_out(const struct sl_topo_desc *t, const unsigned __int128 *w,
		      unsigned __int128 wsum, uint32_t n, const uint32_t *load,
		      uint32_t *out)
{
	uint32_t given = 0;
	unsigned __int128 *rem = calloc(t->n_nodes, sizeof(*rem));

	for (uint32_t i = 0; i < t->n_nodes; i++) {
		unsigned __int128 q = w[i] * n;

		out[i] = wsum ? (uint32_t)(q / wsum) : 0;
		if (rem)
			rem[i] = wsum ? q % wsum : 0;
		given += out[i];
	}
	while (given < n) {
		int best = -1;

		for (uint32_t i = 0; i < t->n_nodes; i++) {
			if (!t->nodes[i].n_cores || !w[i])
				continue;
			if (best < 0) {
				best = (int)i;
				continue;
			}
			unsigned __int128 rb = rem ? rem[best] : 0, ri = rem ? rem[i] : 0;
			uint32_t lb = load[best] + out[best], li = load[i] + out[i];

			if (ri > rb || (ri == rb && li < lb))
				best = (int)i;
		}
		out[best]++;
		if (rem)
			rem[best] = 0;
		given++;
	}
	free(rem);
}

static void place_on_core(const struct sl_topo_desc *t, struct sl_worker_place *w,
			  uint32_t node_idx, uint32_t core)
{
	const struct sl_topo_core *c = &t->cores[core];

	w->node_idx = node_idx;
	w->node = t->nodes[node_idx].os_index;
	w->core = core;
	w->first_cpu = t->pus[c->first_pu].os_index;
	CPU_ZERO(&w->cpus);
	for (uint32_t k = 0; k < c->n_pus; k++) {
		uint32_t cpu = t->pus[c->first_pu + k].os_index;

		if (cpu < CPU_SETSIZE)
			CPU_SET(cpu, &w->cpus);
	}
}

int sl_placement_plan(const struct sl_topo_desc *topo,
		      const struct sl_region_node *regions, size_t n_regions,
		      uint32_t n_scan, uint32_t n_channel,
		      struct sl_placement *out, struct sl_errbuf *eb)
{
	struct sl_errbuf local;
	unsigned __int128 *w = NULL, wsum = 0, spread = 0;
	uint32_t *scan_n = NULL, *chan_n = NULL, *zero = NULL, *used = NULL;
	uint32_t with_cores = 0, total = n_scan + n_channel, wi = 0;
	int err;

	if (!eb)
		eb = &local;
	if (!out)
		return sl_err(eb, -EINVAL, "placement: no output");
	memset(out, 0, sizeof(*out));
	err = check_topo(topo, eb);
	if (err)
		return err;
	if (!total || total > MAX_WORKERS || n_scan > MAX_WORKERS || n_channel > MAX_WORKERS)
		return sl_err(eb, -EINVAL, "placement: %" PRIu32 " scanners + %" PRIu32
			      " channels: want 1..%d workers", n_scan, n_channel, MAX_WORKERS);
	if (n_regions && !regions)
		return sl_err(eb, -EINVAL, "placement: regions missing");

	w = calloc(topo->n_nodes, sizeof(*w));
	scan_n = calloc(topo->n_nodes, sizeof(*scan_n));
	chan_n = calloc(topo->n_nodes, sizeof(*chan_n));
	zero = calloc(topo->n_nodes, sizeof(*zero));
	used = calloc(topo->n_cores, sizeof(*used));
	out->workers = calloc(total, sizeof(*out->workers));
	if (!w || !scan_n || !chan_n || !zero || !used || !out->workers) {
		err = sl_err(eb, -ENOMEM, "placement: out of memory");
		goto out;
	}

	for (uint32_t i = 0; i < topo->n_nodes; i++)
		with_cores += topo->nodes[i].n_cores ? 1 : 0;
	if (!with_cores) {
		err = sl_err(eb, -EINVAL, "placement: no NUMA node has cores");
		goto out;
	}
	for (size_t r = 0; r < n_regions; r++) {
		int ni;

		if (regions[r].node < 0) {
			spread += regions[r].bytes;
			continue;
		}
		ni = node_idx_of(topo, regions[r].node);
		if (ni < 0) {
			err = sl_err(eb, -EINVAL, "placement: region %zu is on node %" PRId32
				     ", which the topology does not have", r, regions[r].node);
			goto out;
		}
		if (topo->nodes[ni].n_cores)
			w[ni] += regions[r].bytes;
		else
			spread += regions[r].bytes; /* memory-only node */
	}
	for (uint32_t i = 0, k = 0; i < topo->n_nodes; i++) {
		if (!topo->nodes[i].n_cores)
			continue;
		/* an even share; the remainder goes to the first nodes, so no
		 * byte is lost and the result stays exact */
		w[i] += spread / with_cores + (k++ < spread % with_cores ? 1 : 0);
		wsum += w[i];
	}
	if (!wsum) {
		for (uint32_t i = 0; i < topo->n_nodes; i++)
			w[i] = topo->nodes[i].n_cores ? 1 : 0;
		wsum = with_cores;
	}

	share_out(topo, w, wsum, n_scan, zero, scan_n);
	share_out(topo, w, wsum, n_channel, scan_n, chan_n);

	out->n_scan = n_scan;
	out->n_channel = n_channel;
	out->n_workers = total;
	/* scanners, node by node */
	for (int role = 0; role < 2; role++) {
		uint32_t idx = 0;

		for (uint32_t i = 0; i < topo->n_nodes; i++) {
			const struct sl_topo_node *nd = &topo->nodes[i];
			uint32_t cnt = role ? chan_n[i] : scan_n[i];
			uint32_t before = role ? scan_n[i] : 0;

			for (uint32_t k = 0; k < cnt; k++) {
				struct sl_worker_place *x = &out->workers[wi++];
				uint32_t core = nd->first_core + (before + k) % nd->n_cores;

				x->role = role ? SL_WORKER_CHANNEL : SL_WORKER_SCAN;
				x->index = idx++;
				place_on_core(topo, x, i, core);
				used[core]++;
			}
		}
	}
	for (uint32_t i = 0; i < total; i++)
		out->workers[i].shares_core = used[out->workers[i].core] > 1;
	err = 0;
out:
	if (err)
		sl_placement_release(out);
	free(w);
	free(scan_n);
	free(chan_n);
	free(zero);
	free(used);
	return err;
}

uint32_t sl_placement_scanners_on_node(const struct sl_placement *p, int32_t node,
				       uint32_t *idx, uint32_t max)
{
	uint32_t n = 0;

	if (!p)
		return 0;
	for (uint32_t i = 0; i < p->n_workers; i++) {
		const struct sl_worker_place *w = &p->workers[i];

		if (w->role != SL_WORKER_SCAN || (node >= 0 && w->node != node))
			continue;
		if (idx && n < max)
			idx[n] = i;
		n++;
	}
	return n;
}

const char *sl_placement_cpus_str(const struct sl_worker_place *w, char *buf, size_t len)
{
	size_t pos = 0;

	if (!buf || !len)
		return buf;
	buf[0] = '\0';
	if (!w)
		return buf;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		int e;

		if (!CPU_ISSET(c, &w->cpus))
			continue;
		for (e = c; e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &w->cpus); e++)
			;
		int k = e > c ? snprintf(buf + pos, len - pos, "%s%d-%d", pos ? "," : "", c, e)
			      : snprintf(buf + pos, len - pos, "%s%d", pos ? "," : "", c);
		if (k < 0 || (size_t)k >= len - pos)
			break;
		pos += (size_t)k;
		c = e;
	}
	return buf;
}

/* ---- JSON ------------------------------------------------------------------ */

static int add(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, k, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int push(struct json_object *a, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_array_add(a, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

struct json_object *sl_topo_desc_to_json(const struct sl_topo_desc *d)
{
	struct json_object *o = json_object_new_object(), *nodes = json_object_new_array();
	int err = (!o || !nodes) ? -ENOMEM : 0;

	if (!d)
		err = -EINVAL;
	for (uint32_t i = 0; !err && i < d->n_nodes; i++) {
		const struct sl_topo_node *n = &d->nodes[i];
		struct json_object *jn = json_object_new_object(), *cores = json_object_new_array();

		err = (!jn || !cores) ? -ENOMEM : 0;
		for (uint32_t c = 0; !err && c < n->n_cores; c++) {
			const struct sl_topo_core *co = &d->cores[n->first_core + c];
			struct json_object *jc = json_object_new_object(), *cpus = json_object_new_array();

			err = (!jc || !cpus) ? -ENOMEM : 0;
			for (uint32_t k = 0; !err && k < co->n_pus; k++)
				err = push(cpus, json_object_new_int64(d->pus[co->first_pu + k].os_index));
			if (!err)
				err = add(jc, "core", json_object_new_int64(n->first_core + c));
			if (!err)
				err = add(jc, "package", json_object_new_int64(co->package));
			if (!err) {
				err = add(jc, "cpus", cpus);
				cpus = NULL;
			}
			json_object_put(cpus);
			if (!err)
				err = push(cores, jc);
			else
				json_object_put(jc);
		}
		if (!err)
			err = add(jn, "node", json_object_new_int64(n->os_index));
		if (!err)
			err = add(jn, "memory_bytes", json_object_new_int64((int64_t)n->memory_bytes));
		if (!err) {
			err = add(jn, "cores", cores);
			cores = NULL;
		}
		json_object_put(cores);
		if (!err)
			err = push(nodes, jn);
		else
			json_object_put(jn);
	}
	if (!err)
		err = add(o, "packages", json_object_new_int64(d->n_packages));
	if (!err)
		err = add(o, "n_nodes", json_object_new_int64(d->n_nodes));
	if (!err)
		err = add(o, "n_cores", json_object_new_int64(d->n_cores));
	if (!err)
		err = add(o, "n_pus", json_object_new_int64(d->n_pus));
	if (!err) {
		err = add(o, "nodes", nodes);
		nodes = NULL;
	}
	json_object_put(nodes);
	if (err) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct json_object *sl_placement_to_json(const struct sl_placement *p)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	int err = (!o || !arr) ? -ENOMEM : 0;
	char buf[256];

	if (!p)
		err = -EINVAL;
	for (uint32_t i = 0; !err && i < p->n_workers; i++) {
		const struct sl_worker_place *w = &p->workers[i];
		struct json_object *jw = json_object_new_object();

		err = jw ? 0 : -ENOMEM;
		if (!err)
			err = add(jw, "role", json_object_new_string(
					  w->role == SL_WORKER_SCAN ? "scan" : "channel"));
		if (!err)
			err = add(jw, "index", json_object_new_int64(w->index));
		if (!err)
			err = add(jw, "node", json_object_new_int64(w->node));
		if (!err)
			err = add(jw, "core", json_object_new_int64(w->core));
		if (!err)
			err = add(jw, "cpus", json_object_new_string(
					  sl_placement_cpus_str(w, buf, sizeof(buf))));
		if (!err)
			err = add(jw, "shares_core", json_object_new_boolean(w->shares_core));
		if (!err)
			err = push(arr, jw);
		else
			json_object_put(jw);
	}
	if (!err) {
		err = add(o, "workers", arr);
		arr = NULL;
	}
	json_object_put(arr);
	if (err) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
