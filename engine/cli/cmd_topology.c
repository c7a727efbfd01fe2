/* SPDX-License-Identifier: MIT */
/*
 * cmd_topology.c — `sluice topology`: the machine's (or a synthetic)
 * NUMA topology and the placement plan the engine would use for the given
 * worker counts and memory layout.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli.h"
#include "sl_placement.h"

#define MAX_REGIONS 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice topology [--json] [--synthetic STR] [--scanners N]\n"
		"                       [--channels N] [--region NODE:SIZE]...\n"
		"\n"
		"Prints the NUMA topology (hwloc) and the placement plan: on which\n"
		"node and core each scanner and channel worker would run.\n"
		"\n"
		"  --synthetic STR     an hwloc synthetic topology instead of this\n"
		"                      machine, e.g. \"pack:2 numa:2 core:4 pu:1\"\n"
		"  --scanners N        scanner workers (default 2)\n"
		"  --channels N        channel workers (default 2)\n"
		"  --region NODE:SIZE  guest RAM on NUMA node NODE (-1 = unknown),\n"
		"                      e.g. 0:3G; repeatable (default: no regions,\n"
		"                      workers spread evenly)\n"
		"  --json              print one JSON object {topology, plan}\n");
}

static int parse_region(const char *s, struct sl_region_node *r)
{
	const char *colon = strchr(s, ':');
	char *end;
	long node;
	uint64_t size;

	if (!colon)
		return -EINVAL;
	errno = 0;
	node = strtol(s, &end, 10);
	if (errno || end != colon || node < -1 || node > INT32_MAX)
		return -EINVAL;
	if (sl_cli_parse_size(colon + 1, &size))
		return -EINVAL;
	r->node = (int32_t)node;
	r->bytes = size;
	return 0;
}

static void print_text(const struct sl_topo_desc *d, const struct sl_placement *p,
		       bool synthetic, const char *synth)
{
	char buf[256], sz[32];

	printf("Topology (%s): %" PRIu32 " package(s), %" PRIu32 " NUMA node(s), %" PRIu32
	       " core(s), %" PRIu32 " CPU(s)\n",
	       synthetic ? synth : "this machine", d->n_packages, d->n_nodes,
	       d->n_cores, d->n_pus);
	for (uint32_t i = 0; i < d->n_nodes; i++) {
		const struct sl_topo_node *n = &d->nodes[i];

		printf("  node %" PRId32 ": %s, %" PRIu32 " core(s)", n->os_index,
		       sl_cli_fmt_bytes(n->memory_bytes, sz, sizeof(sz)), n->n_cores);
		for (uint32_t c = 0; c < n->n_cores; c++) {
			const struct sl_topo_core *co = &d->cores[n->first_core + c];

			printf("%s core %" PRIu32 " [pkg %" PRIu32 ", cpu", c ? "," : ":",
			       n->first_core + c, co->package);
			for (uint32_t k = 0; k < co->n_pus; k++)
				printf(" %" PRIu32, d->pus[co->first_pu + k].os_index);
			printf("]");
		}
		printf("\n");
	}
	printf("\nPlacement (%" PRIu32 " scanner(s), %" PRIu32 " channel(s)):\n",
	       p->n_scan, p->n_channel);
	printf("  %-8s %5s %5s %5s  %-12s %s\n", "role", "index", "node", "core", "cpus", "");
	for (uint32_t i = 0; i < p->n_workers; i++) {
		const struct sl_worker_place *w = &p->workers[i];

		printf("  %-8s %5" PRIu32 " %5" PRId32 " %5" PRIu32 "  %-12s %s\n",
		       w->role == SL_WORKER_SCAN ? "scan" : "channel", w->index, w->node,
		       w->core, sl_placement_cpus_str(w, buf, sizeof(buf)),
		       w->shares_core ? "(shares its core)" : "");
	}
}

static int cmd_topology(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "synthetic", required_argument, NULL, 's' },
		{ "scanners", required_argument, NULL, 'S' },
		{ "channels", required_argument, NULL, 'c' },
		{ "region", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sl_region_node regions[MAX_REGIONS];
	size_t n_regions = 0;
	uint64_t n_scan = 2, n_chan = 2;
	const char *synthetic = NULL;
	bool json = false;
	struct sl_topology_config tcfg = { .size = sizeof(tcfg) };
	struct sl_topology *t = NULL;
	struct sl_topo_desc d = { 0 };
	struct sl_placement p = { 0 };
	struct sl_errbuf eb = { { 0 } };
	int c, err, ret = SL_EXIT_FAILED;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 's':
			synthetic = optarg;
			break;
		case 'S':
			if (sl_cli_parse_uint(optarg, 0, 4096, &n_scan))
				return sl_cli_usage_error(argv[0], "--scanners wants 0..4096, not '%s'", optarg);
			break;
		case 'c':
			if (sl_cli_parse_uint(optarg, 0, 4096, &n_chan))
				return sl_cli_usage_error(argv[0], "--channels wants 0..4096, not '%s'", optarg);
			break;
		case 'r':
			if (n_regions == MAX_REGIONS)
				return sl_cli_usage_error(argv[0], "at most %d --region options", MAX_REGIONS);
			if (parse_region(optarg, &regions[n_regions]))
				return sl_cli_usage_error(argv[0], "--region wants NODE:SIZE (e.g. 0:2G), not '%s'",
							  optarg);
			n_regions++;
			break;
		case 'h':
			usage(stdout);
			return SL_EXIT_OK;
		default:
			usage(stderr);
			return SL_EXIT_USAGE;
		}
	}
	if (optind < argc)
		return sl_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
	if (!n_scan && !n_chan)
		return sl_cli_usage_error(argv[0], "nothing to place: --scanners and --channels are both 0");

	tcfg.synthetic = synthetic;
	err = sl_topology_new(&tcfg, &t, &eb);
	if (err) {
		fprintf(stderr, "sluice topology: %s\n", eb.msg);
		return err == -EINVAL ? SL_EXIT_USAGE : SL_EXIT_FAILED;
	}
	err = sl_topology_describe(t, &d);
	if (err) {
		fprintf(stderr, "sluice topology: cannot describe the topology: %s\n", strerror(-err));
		goto out;
	}
	err = sl_placement_plan(&d, regions, n_regions, (uint32_t)n_scan, (uint32_t)n_chan, &p, &eb);
	if (err) {
		fprintf(stderr, "sluice topology: %s\n", eb.msg);
		ret = err == -EINVAL ? SL_EXIT_USAGE : SL_EXIT_FAILED;
		goto out;
	}
	if (json) {
		struct json_object *o = json_object_new_object();
		struct json_object *jt = sl_topo_desc_to_json(&d);
		struct json_object *jp = sl_placement_to_json(&p);

		if (!o || !jt || !jp) {
			json_object_put(o);
			json_object_put(jt);
			json_object_put(jp);
			fprintf(stderr, "sluice topology: out of memory\n");
			goto out;
		}
		json_object_object_add(o, "synthetic", synthetic ? json_object_new_string(synthetic) : NULL);
		json_object_object_add(o, "numa_available", json_object_new_boolean(sl_numa_available()));
		json_object_object_add(o, "topology", jt);
		json_object_object_add(o, "plan", jp);
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	} else {
		print_text(&d, &p, synthetic != NULL, synthetic);
	}
	ret = SL_EXIT_OK;
out:
	sl_placement_release(&p);
	sl_topo_desc_release(&d);
	sl_topology_free(&t);
	return ret;
}

SL_CLI_COMMAND(topology, "topology", "print the NUMA topology and the worker placement plan",
	       cmd_topology)
