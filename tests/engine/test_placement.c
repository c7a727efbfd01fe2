/* SPDX-License-Identifier: MIT */
/*
 * test_placement.c — the placement plan on hwloc synthetic topologies
 * (machines we don't have) and on this machine; topology discovery;
 * which node holds memory.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "sl_placement.h"

#define GIB (1024ull * 1024 * 1024)

static void load(const char *synthetic, struct sl_topo_desc *d)
{
	struct sl_topology_config cfg = { .size = sizeof(cfg), .synthetic = synthetic };
	struct sl_topology *t = NULL;
	struct sl_errbuf eb = { { 0 } };

	assert_int_equal(sl_topology_new(&cfg, &t, &eb), 0);
	assert_int_equal(sl_topology_is_synthetic(t), synthetic != NULL);
	assert_int_equal(sl_topology_describe(t, d), 0);
	sl_topology_free(&t);
	assert_null(t);
}

static void test_describe_synthetic(void **state)
{
	struct sl_topo_desc d;

	(void)state;
	load("pack:2 numa:2 core:4 pu:1", &d);
	assert_int_equal(d.n_packages, 2);
	assert_int_equal(d.n_nodes, 4);
	assert_int_equal(d.n_cores, 16);
	assert_int_equal(d.n_pus, 16);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(d.nodes[i].os_index, i);
		assert_int_equal(d.nodes[i].first_core, 4 * i);
		assert_int_equal(d.nodes[i].n_cores, 4);
		assert_int_equal(d.nodes[i].memory_bytes, GIB);
	}
	for (uint32_t c = 0; c < 16; c++) {
		assert_int_equal(d.cores[c].node, c / 4);
		assert_int_equal(d.cores[c].package, c / 8);
		assert_int_equal(d.cores[c].n_pus, 1);
		assert_int_equal(d.pus[d.cores[c].first_pu].os_index, c);
		assert_int_equal(d.pus[c].core, c);
	}
	sl_topo_desc_release(&d);
	assert_null(d.nodes);

	/* SMT: two PUs per core */
	load("numa:2 core:2 pu:2", &d);
	assert_int_equal(d.n_nodes, 2);
	assert_int_equal(d.n_cores, 4);
	assert_int_equal(d.n_pus, 8);
	assert_int_equal(d.cores[1].first_pu, 2);
	assert_int_equal(d.cores[1].n_pus, 2);
	assert_int_equal(d.pus[3].os_index, 3);
	assert_int_equal(d.cores[3].node, 1);
	sl_topo_desc_release(&d);
}

static void check_worker(const struct sl_placement *p, uint32_t i,
			 enum sl_worker_role role, uint32_t index, int32_t node,
			 uint32_t core, bool shares)
{
	const struct sl_worker_place *w = &p->workers[i];

	assert_int_equal(w->role, role);
	assert_int_equal(w->index, index);
	assert_int_equal(w->node, node);
	assert_int_equal(w->core, core);
	assert_int_equal(w->shares_core, shares);
}

static void test_plan_follows_memory(void **state)
{
	struct sl_topo_desc d;
	struct sl_placement p;
	/* 3 GiB on node 0, 1 GiB on node 2 */
	const struct sl_region_node regions[] = { { 0, 2 * GIB }, { 2, GIB }, { 0, GIB } };
	uint32_t idx[8];
	char buf[64];

	(void)state;
	load("pack:2 numa:2 core:4 pu:1", &d);
	assert_int_equal(sl_placement_plan(&d, regions, 3, 4, 4, &p, NULL), 0);
	assert_int_equal(p.n_workers, 8);
	assert_int_equal(p.n_scan, 4);
	assert_int_equal(p.n_channel, 4);
	/* scanners 3:1 like the memory, each on its own core */
	check_worker(&p, 0, SL_WORKER_SCAN, 0, 0, 0, true);
	check_worker(&p, 1, SL_WORKER_SCAN, 1, 0, 1, true);
	check_worker(&p, 2, SL_WORKER_SCAN, 2, 0, 2, false);
	check_worker(&p, 3, SL_WORKER_SCAN, 3, 2, 8, false);
	/* channels 3:1 too, after the scanners' cores, wrapping on node 0 */
	check_worker(&p, 4, SL_WORKER_CHANNEL, 0, 0, 3, false);
	check_worker(&p, 5, SL_WORKER_CHANNEL, 1, 0, 0, true);
	check_worker(&p, 6, SL_WORKER_CHANNEL, 2, 0, 1, true);
	check_worker(&p, 7, SL_WORKER_CHANNEL, 3, 2, 9, false);
	assert_true(CPU_ISSET(9, &p.workers[7].cpus));
	assert_int_equal(CPU_COUNT(&p.workers[7].cpus), 1);
	assert_int_equal(p.workers[7].first_cpu, 9);
	assert_string_equal(sl_placement_cpus_str(&p.workers[7], buf, sizeof(buf)), "9");

	assert_int_equal(sl_placement_scanners_on_node(&p, 0, idx, 8), 3);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[2], 2);
	assert_int_equal(sl_placement_scanners_on_node(&p, 2, idx, 8), 1);
	assert_int_equal(idx[0], 3);
	assert_int_equal(sl_placement_scanners_on_node(&p, 1, idx, 8), 0);
	assert_int_equal(sl_placement_scanners_on_node(&p, -1, NULL, 0), 4);
	sl_placement_release(&p);
	assert_null(p.workers);

	/* memory of unknown node: spread, one scanner per node */
	const struct sl_region_node unknown[] = { { -1, 4 * GIB } };
	assert_int_equal(sl_placement_plan(&d, unknown, 1, 4, 0, &p, NULL), 0);
	for (uint32_t i = 0; i < 4; i++)
		check_worker(&p, i, SL_WORKER_SCAN, i, (int32_t)i, 4 * i, false);
	sl_placement_release(&p);

	/* no regions: equal weights; channels go where scanners are not */
	assert_int_equal(sl_placement_plan(&d, NULL, 0, 2, 2, &p, NULL), 0);
	check_worker(&p, 0, SL_WORKER_SCAN, 0, 0, 0, false);
	check_worker(&p, 1, SL_WORKER_SCAN, 1, 1, 4, false);
	check_worker(&p, 2, SL_WORKER_CHANNEL, 0, 2, 8, false);
	check_worker(&p, 3, SL_WORKER_CHANNEL, 1, 3, 12, false);
	sl_placement_release(&p);

	/* deterministic */
	struct sl_placement p2;
	assert_int_equal(sl_placement_plan(&d, regions, 3, 5, 3, &p, NULL), 0);
	assert_int_equal(sl_placement_plan(&d, regions, 3, 5, 3, &p2, NULL), 0);
	assert_memory_equal(p.workers, p2.workers, 8 * sizeof(*p.workers));
	sl_placement_release(&p);
	sl_placement_release(&p2);
	sl_topo_desc_release(&d);
}

static void test_plan_smt_and_ties(void **state)
{
	struct sl_topo_desc d;
	struct sl_placement p;
	const struct sl_region_node regions[] = { { 0, GIB }, { 1, GIB } };
	char buf[64];

	(void)state;
	load("numa:2 core:2 pu:2", &d);
	/* one scanner, one channel, equal memory: different nodes */
	assert_int_equal(sl_placement_plan(&d, regions, 2, 1, 1, &p, NULL), 0);
	check_worker(&p, 0, SL_WORKER_SCAN, 0, 0, 0, false);
	check_worker(&p, 1, SL_WORKER_CHANNEL, 0, 1, 2, false);
	assert_string_equal(sl_placement_cpus_str(&p.workers[0], buf, sizeof(buf)), "0-1");
	assert_string_equal(sl_placement_cpus_str(&p.workers[1], buf, sizeof(buf)), "4-5");
	sl_placement_release(&p);

	/* more workers than cores: they share */
	assert_int_equal(sl_placement_plan(&d, regions, 2, 6, 0, &p, NULL), 0);
	check_worker(&p, 0, SL_WORKER_SCAN, 0, 0, 0, true);
	check_worker(&p, 1, SL_WORKER_SCAN, 1, 0, 1, false);
	check_worker(&p, 2, SL_WORKER_SCAN, 2, 0, 0, true);
	check_worker(&p, 3, SL_WORKER_SCAN, 3, 1, 2, true);
	check_worker(&p, 5, SL_WORKER_SCAN, 5, 1, 2, true);
	sl_placement_release(&p);
	sl_topo_desc_release(&d);
}

static void test_plan_errors(void **state)
{
	struct sl_topo_desc d, empty = { 0 };
	struct sl_placement p;
	struct sl_errbuf eb = { { 0 } };
	const struct sl_region_node bad[] = { { 7, GIB } };
	struct sl_topology_config cfg = { .size = sizeof(cfg), .synthetic = "flux:3 capacitor" };
	struct sl_topology *t = NULL;

	(void)state;
	load("pack:2 numa:2 core:4 pu:1", &d);
	assert_int_equal(sl_placement_plan(&d, bad, 1, 1, 1, &p, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "node 7"));
	assert_null(p.workers);
	assert_int_equal(sl_placement_plan(&d, NULL, 0, 0, 0, &p, &eb), -EINVAL);
	assert_int_equal(sl_placement_plan(&d, NULL, 0, 5000, 0, &p, &eb), -EINVAL);
	assert_int_equal(sl_placement_plan(&d, NULL, 2, 1, 0, &p, &eb), -EINVAL);
	assert_int_equal(sl_placement_plan(&empty, NULL, 0, 1, 0, &p, &eb), -EINVAL);
	assert_int_equal(sl_placement_plan(&d, NULL, 0, 1, 0, NULL, &eb), -EINVAL);
	d.cores[3].node = 99; /* corrupt description */
	assert_int_equal(sl_placement_plan(&d, NULL, 0, 1, 0, &p, &eb), -EINVAL);
	sl_topo_desc_release(&d);

	assert_int_equal(sl_topology_new(&cfg, &t, &eb), -EINVAL);
	assert_null(t);
	assert_non_null(strstr(eb.msg, "flux:3"));
}

static void test_this_machine(void **state)
{
	struct sl_topo_desc d;
	struct sl_placement p;
	cpu_set_t allowed;
	uint32_t cores = 0;
	char *mem;
	int node;

	(void)state;
	load(NULL, &d);
	assert_true(d.n_nodes >= 1);
	assert_true(d.n_cores >= 1);
	assert_true(d.n_pus >= d.n_cores);
	for (uint32_t i = 0; i < d.n_nodes; i++)
		cores += d.nodes[i].n_cores;
	assert_int_equal(cores, d.n_cores);
	assert_int_equal(sched_getaffinity(0, sizeof(allowed), &allowed), 0);

	/* RAM on the node that holds a buffer we touched */
	mem = malloc(1 << 20);
	assert_non_null(mem);
	memset(mem, 1, 1 << 20);
	node = sl_numa_node_of(mem, 1 << 20);
	assert_true(node >= 0);
	const struct sl_region_node regions[] = { { node, 1 << 20 } };

	assert_int_equal(sl_placement_plan(&d, regions, 1, 2, 2, &p, NULL), 0);
	assert_int_equal(p.n_workers, 4);
	for (uint32_t i = 0; i < 4; i++) {
		cpu_set_t both;

		assert_int_equal(p.workers[i].node, node);
		CPU_AND(&both, &p.workers[i].cpus, &allowed);
		assert_true(CPU_EQUAL(&both, &p.workers[i].cpus));
	}
	/* scanners get distinct cores while cores last */
	if (d.nodes[p.workers[0].node_idx].n_cores >= 2)
		assert_int_not_equal(p.workers[0].core, p.workers[1].core);

	/* the one-call form gives the same plan */
	struct sl_placement h;

	assert_int_equal(sl_placement_plan_host(regions, 1, 2, 2, &h, NULL), 0);
	assert_int_equal(h.n_workers, 4);
	assert_memory_equal(h.workers, p.workers, 4 * sizeof(*h.workers));
	sl_placement_release(&h);
	sl_placement_release(&p);
	free(mem);
	sl_topo_desc_release(&d);
}

static void test_numa_node_of(void **state)
{
	size_t len = 16 * 4096;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	assert_true(m != MAP_FAILED);
	assert_int_equal(sl_numa_node_of(NULL, 10), -EINVAL);
	assert_int_equal(sl_numa_node_of(m, 0), -EINVAL);
	/* nothing faulted in yet: unknown (-1); without NUMA support: 0 */
	assert_int_equal(sl_numa_node_of(m, len), sl_numa_available() ? -1 : 0);
	memset(m, 1, len);
	assert_true(sl_numa_node_of(m, len) >= 0);
	assert_true(sl_numa_node_of(m + 100, 10) >= 0);
	munmap(m, len);
}

static void test_json(void **state)
{
	struct sl_topo_desc d;
	struct sl_placement p;
	struct json_object *o, *v, *w;

	(void)state;
	load("pack:2 numa:2 core:4 pu:1", &d);
	o = sl_topo_desc_to_json(&d);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "nodes", &v));
	assert_int_equal(json_object_array_length(v), 4);
	w = json_object_array_get_idx(v, 3);
	assert_true(json_object_object_get_ex(w, "node", &v));
	assert_int_equal(json_object_get_int(v), 3);
	assert_true(json_object_object_get_ex(w, "cores", &v));
	assert_int_equal(json_object_array_length(v), 4);
	assert_true(json_object_object_get_ex(o, "packages", &v));
	assert_int_equal(json_object_get_int(v), 2);
	json_object_put(o);

	assert_int_equal(sl_placement_plan(&d, NULL, 0, 1, 2, &p, NULL), 0);
	o = sl_placement_to_json(&p);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "workers", &v));
	assert_int_equal(json_object_array_length(v), 3);
	w = json_object_array_get_idx(v, 2);
	assert_true(json_object_object_get_ex(w, "role", &v));
	assert_string_equal(json_object_get_string(v), "channel");
	assert_true(json_object_object_get_ex(w, "cpus", &v));
	assert_string_equal(json_object_get_string(v), "8");
	json_object_put(o);
	sl_placement_release(&p);
	sl_topo_desc_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_describe_synthetic),
		cmocka_unit_test(test_plan_follows_memory),
		cmocka_unit_test(test_plan_smt_and_ties),
		cmocka_unit_test(test_plan_errors),
		cmocka_unit_test(test_this_machine),
		cmocka_unit_test(test_numa_node_of),
		cmocka_unit_test(test_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
