/* SPDX-License-Identifier: MIT */
/* main.c — `sluice`: git-style subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sl_config.h"

static struct sl_cli_command *commands;

void sl_cli_register(struct sl_cli_command *cmd)
{
	/* Keep the list sorted by name so --help reads well. */
	struct sl_cli_command **pp = &commands;

	while (*pp && strcmp((*pp)->name, cmd->name) < 0)
		pp = &(*pp)->next;
	cmd->next = *pp;
	*pp = cmd;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sluice <command> [options]\n"
		"\n"
		"sluice %s: fast live migration of virtual machines — dirty-page\n"
		"harvesting, SIMD range scanning, VFIO device state and zero-copy\n"
		"multi-channel streaming.\n"
		"\n"
		"commands:\n",
		SL_VERSION);
	for (struct sl_cli_command *c = commands; c; c = c->next)
		fprintf(f, "  %-16s %s\n", c->name, c->summary);
	fprintf(f, "\n'sluice <command> --help' describes a command's options.\n"
		   "Exit codes: 0 ok, 1 failed (source kept running), 2 usage, "
		   "3 verification failed, 4 unsupported here.\n");
}

/* Matches "bench scan" against argv[1] argv[2], or "run" against argv[1]. */
static struct sl_cli_command *lookup(int argc, char **argv, int *words)
{
	struct sl_cli_command *best = NULL;

	for (struct sl_cli_command *c = commands; c; c = c->next) {
		const char *sp = strchr(c->name, ' ');

		if (!sp) {
			if (!strcmp(c->name, argv[1]) && !best) {
				best = c;
				*words = 1;
			}
		} else if (argc > 2 && !strncmp(c->name, argv[1], sp - c->name) &&
			   argv[1][sp - c->name] == '\0' && !strcmp(sp + 1, argv[2])) {
			*words = 2;
			return c;
		}
	}
	return best;
}

static int group_help(const char *group)
{
	size_t n = strlen(group);
	int found = 0;

	for (struct sl_cli_command *c = commands; c; c = c->next) {
		if (!strncmp(c->name, group, n) && c->name[n] == ' ') {
			if (!found)
				printf("usage: sluice %s <what> [options]\n\n", group);
			printf("  %-16s %s\n", c->name, c->summary);
			found = 1;
		}
	}
	return found;
}

int main(int argc, char **argv)
{
	struct sl_cli_command *cmd;
	int words = 0;

	if (argc < 2) {
		usage(stderr);
		return SL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return SL_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("sluice %s\n", SL_VERSION);
		return SL_EXIT_OK;
	}
	cmd = lookup(argc, argv, &words);
	if (!cmd) {
		if (group_help(argv[1]))
			return argc > 2 && strcmp(argv[2], "--help") ? SL_EXIT_USAGE : SL_EXIT_OK;
		fprintf(stderr, "sluice: unknown command '%s' (see 'sluice --help')\n", argv[1]);
		return SL_EXIT_USAGE;
	}
	/* Hand the command an argv whose [0] is its full name, getopt-style. */
	argv[words] = (char *)cmd->name;
	return cmd->main(argc - words, argv + words);
}
