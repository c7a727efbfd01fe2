/* SPDX-License-Identifier: MIT */
/*
 * cli.h — the sluice command line: subcommand registration and the small
 * helpers every subcommand shares (unit parsing, JSON, progress line).
 *
 * Each subcommand lives in its own cmd_*.c file and registers itself with
 * SL_CLI_COMMAND, so adding one never touches main.c. Names may have two
 * words ("bench scan"); the dispatcher matches the longest name.
 */
#ifndef SL_CLI_H
#define SL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes: documented in docs/cli.md. */
enum sl_exit {
	SL_EXIT_OK = 0,            /* migrated (and verified, if asked) */
	SL_EXIT_FAILED = 1,        /* migration or command failed; source kept running */
	SL_EXIT_USAGE = 2,         /* bad command line */
	SL_EXIT_VERIFY = 3,        /* migrated, but destination verification failed */
	SL_EXIT_UNSUPPORTED = 4,   /* this machine lacks what the command needs */
};

struct sl_cli_command {
	const char *name;    /* "run", "bench scan" */
	const char *summary; /* one line for `sluice --help` */
	/* argv[0] is the command name; getopt-ready. Returns an enum sl_exit. */
	int (*main)(int argc, char **argv);
	struct sl_cli_command *next;
};

void sl_cli_register(struct sl_cli_command *cmd);

#define SL_CLI_COMMAND(ident, cmdname, cmdsummary, fn)                      \
	static struct sl_cli_command ident##_cmd = {                       \
		.name = cmdname, .summary = cmdsummary, .main = fn };      \
	__attribute__((constructor)) static void ident##_register(void)    \
	{                                                                  \
		sl_cli_register(&ident##_cmd);                             \
	}

/* ---- parsing: each returns 0 or -EINVAL ---------------------------------- */

/* "4096", "64K", "512M", "2G", "1T" (binary units; "KiB"/"MiB" also accepted). */
int sl_cli_parse_size(const char *s, uint64_t *out);
/* Rate in bytes/s: "1G", "100M/s", "0" or "unlimited" = 0 (no limit). */
int sl_cli_parse_rate(const char *s, uint64_t *out);
/* Duration: "300ms", "2s", "500us", bare number = milliseconds. Out in ns. */
int sl_cli_parse_duration(const char *s, uint64_t *out_ns);
/* Unsigned integer with bounds. */
int sl_cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* Prints "sluice CMD: msg" to stderr and returns SL_EXIT_USAGE. */
int sl_cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Human formatting into a caller buffer; returns buf. */
const char *sl_cli_fmt_bytes(uint64_t bytes, char *buf, size_t len);

/* ---- progress line (only when stdout is a terminal) ---------------------- */
struct sl_cli_progress {
	bool enabled;
	uint64_t start_ns;
	uint64_t last_ns;
};
void sl_cli_progress_init(struct sl_cli_progress *p, bool quiet);
/* Rewrites one status line: "label  iter N  12.3 GiB  1.2 GB/s  ETA 3s". */
void sl_cli_progress_update(struct sl_cli_progress *p, const char *label,
			    uint64_t iteration, uint64_t done_bytes,
			    uint64_t total_bytes);
void sl_cli_progress_done(struct sl_cli_progress *p);

#endif /* SL_CLI_H */
