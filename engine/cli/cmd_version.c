/* SPDX-License-Identifier: MIT */
/* cmd_version.c — `sluice version`: the version and the build's features. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sluice.h"

static int cmd_version(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: sluice version\n\nPrints the sluice version.\n");
		return SL_EXIT_OK;
	}
	if (argc > 1)
		return sl_cli_usage_error(argv[0], "unexpected argument '%s'", argv[1]);
	printf("sluice %s\n", sl_version());
	return SL_EXIT_OK;
}

SL_CLI_COMMAND(version, "version", "print the version", cmd_version)
