/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.h — what `sluice run`, `sluice send` and `sluice receive` share:
 * the scenario options, the workload glue (the mini-VMM, the process
 * dirtier and the synthetic source, seen as a VMM would register them), the
 * source side of a migration and the destination side.
 */
#ifndef SL_CMD_RUN_H
#define SL_CMD_RUN_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "sluice.h"

enum run_workload { RUN_WL_KVM, RUN_WL_PROC, RUN_WL_SYNTHETIC };

#define RUN_MAX_DEVICES 8

/* Failure injection for tests (sluice run --fault). */
enum run_fault {
	RUN_FAULT_NONE,
	RUN_FAULT_KILL_DEST_PRECOPY,   /* SIGKILL the destination after iteration 1 */
	RUN_FAULT_KILL_DEST_STOPCOPY,  /* SIGKILL the destination right after the VM stops */
	RUN_FAULT_STALL_DEST,          /* SIGSTOP the destination (silent peer) after iteration 1 */
	RUN_FAULT_WRONG_KEY,           /* the source uses a different key */
	RUN_FAULT_DEST_REFUSE_STATE,   /* the destination's load_state fails */
};

struct run_opts {
	enum run_workload workload;
	bool workload_set;
	uint64_t mem;               /* guest RAM bytes */
	uint64_t wss;               /* working set bytes */
	char pattern[16];
	uint64_t dirty_rate;        /* bytes/s written by the workload; 0 = unlimited */
	unsigned vcpus;
	char dirty_log[16];         /* kvm: "manual", "bitmap", "ring" */
	unsigned channels;
	uint64_t bandwidth;         /* bytes/s, 0 = unlimited */
	uint64_t downtime_limit_ns;
	enum sl_policy_kind policy;
	enum sl_stall_action stall;
	uint32_t max_iterations;
	enum sl_zero_copy zc;
	bool zc_set;                /* --zero-copy given */
	bool verify;
	bool json;
	bool quiet;
	uint64_t warmup_ns;         /* let the workload run before migrating */
	uint64_t timeout_ns;        /* peer silence */
	uint64_t seed;
	const char *psk_file;
	const char *url;            /* send: --to; receive: --listen */
	enum run_fault fault;
	const char *devices[RUN_MAX_DEVICES]; /* --device SPEC (sl_vfio_spec_new) */
	unsigned ndevices;
	bool netns;                 /* run: two network namespaces + veth */
	uint64_t link_rate;         /* run --netns: tc tbf rate, bytes/s (0 = none) */
	int ready_fd;               /* receive: write "PORT\n" here once listening */
};

/* Defaults of the main scenario (docs/cli.md). */
void run_opts_default(struct run_opts *o);

/* Long options common to run/send/receive; each command appends its own. */
#define RUN_COMMON_LONGOPTS                                         \
	{ "workload", required_argument, NULL, 'w' },               \
	{ "mem", required_argument, NULL, 'm' },                    \
	{ "wss", required_argument, NULL, 'W' },                    \
	{ "pattern", required_argument, NULL, 'P' },                \
	{ "dirty-rate", required_argument, NULL, 'r' },             \
	{ "vcpus", required_argument, NULL, 1001 },                 \
	{ "dirty-log", required_argument, NULL, 1002 },             \
	{ "channels", required_argument, NULL, 'c' },               \
	{ "bandwidth", required_argument, NULL, 'b' },              \
	{ "downtime-limit", required_argument, NULL, 'd' },         \
	{ "policy", required_argument, NULL, 'p' },                 \
	{ "stall-action", required_argument, NULL, 1003 },          \
	{ "max-iterations", required_argument, NULL, 1004 },        \
	{ "zero-copy", required_argument, NULL, 'z' },              \
	{ "verify", no_argument, NULL, 1005 },                      \
	{ "no-verify", no_argument, NULL, 1006 },                   \
	{ "json", no_argument, NULL, 'j' },                         \
	{ "quiet", no_argument, NULL, 'q' },                        \
	{ "warmup", required_argument, NULL, 1007 },                \
	{ "timeout", required_argument, NULL, 1008 },               \
	{ "seed", required_argument, NULL, 1009 },                  \
	{ "psk-file", required_argument, NULL, 'k' },               \
	{ "device", required_argument, NULL, 1010 },                \
	{ "help", no_argument, NULL, 'h' }

/* Handles one common option. Returns 0 (handled), 1 (not a common option)
 * or SL_EXIT_USAGE after printing the error. */
int run_parse_common(const char *cmd, int c, const char *arg, struct run_opts *o);
/* Checks the combination after parsing (sizes, workload available). */
int run_opts_check(const char *cmd, struct run_opts *o);
/* The help text of the common options. */
void run_print_common_help(FILE *f);
const char *run_workload_name(enum run_workload w);

/* Reads the key file (its bytes, a trailing newline dropped). 0 or -errno. */
int run_read_psk(const char *path, uint8_t *key, size_t cap, size_t *len, struct sl_errbuf *eb);

/* ---- workloads (cmd_run_workload.c) ------------------------------------- */

struct wl_source;
struct wl_dest;

/* Creates and starts the workload, waits for warm-up. */
int wl_source_new(const struct run_opts *o, struct wl_source **out, struct sl_errbuf *eb);
void wl_source_free(struct wl_source **w);
/* Registers its RAM regions (with dirty sources) with s. */
int wl_source_register(struct wl_source *w, struct sl_session *s, struct sl_errbuf *eb);
/* Its VM operations (stop, resume, save_state) and their context. */
void wl_source_vm_ops(struct wl_source *w, struct sl_vm_ops *ops, void **vmm);
/* Progress counter (guest passes, pages written...). */
uint64_t wl_source_progress(struct wl_source *w);
/* True when the workload makes progress within wait_ns (it was resumed). */
bool wl_source_running(struct wl_source *w, uint64_t wait_ns);
/* Where its memory lives. */
uint64_t wl_source_mem_bytes(const struct wl_source *w);
/* State hashes of its simulated devices (0 for devices without one). */
unsigned wl_source_device_hashes(struct wl_source *w, uint64_t *out, unsigned max);
/* Bytes each device sent in PRE_COPY and in STOP_COPY; returns the count. */
unsigned wl_source_device_bytes(struct wl_source *w, uint64_t *precopy, uint64_t *stopcopy,
				unsigned max);

struct wl_dest_result {
	bool applicable;        /* the workload runs on the destination (kvm) */
	bool running;           /* the workload kept running on the destination */
	uint64_t progress_at_resume;
	uint64_t progress_after;
	bool pages_checked;     /* a content check ran (kvm: page records) */
	bool pages_ok;
	unsigned ndevices;
	uint64_t dev_hash[RUN_MAX_DEVICES]; /* simulated devices' state after the load */
	char why[200];          /* the first problem */
};

int wl_dest_new(const struct run_opts *o, struct wl_dest **out, struct sl_errbuf *eb);
void wl_dest_free(struct wl_dest **w);
int wl_dest_register(struct wl_dest *w, struct sl_dest *d, struct sl_errbuf *eb);
/* After a successful migration: checks the workload runs and its memory is
 * consistent. */
void wl_dest_check(struct wl_dest *w, struct wl_dest_result *out);

/* ---- the two ends (cmd_run_source.c, cmd_receive.c) --------------------- */

struct run_result {
	int err;                        /* 0 or the migration's -errno */
	char msg[SL_ERRMSG_MAX * 2];    /* the failure, one line */
	struct sl_migration_stats stats;
	struct sl_dest_report dest;
	uint64_t source_hash;
	unsigned ndevices;
	uint64_t dev_hash[RUN_MAX_DEVICES]; /* source devices' state at stop */
	uint64_t dev_precopy[RUN_MAX_DEVICES];  /* bytes read in PRE_COPY */
	uint64_t dev_stopcopy[RUN_MAX_DEVICES]; /* bytes read in STOP_COPY */
	unsigned throttle_calls;        /* the policy asked to throttle the guest */
	unsigned throttle_pct;          /* the last percentage asked */
	bool source_running_after_failure;
};

/* Hooks `sluice run` uses for progress and fault injection. */
struct run_hooks {
	void (*iteration)(void *ctx, const struct sl_iter_record *rec);
	void (*stopped)(void *ctx);     /* right after the VM stopped */
	void *ctx;
};

/* Runs the source side against url with the workload w. */
int run_source(const struct run_opts *o, struct wl_source *w, const char *url,
	       const uint8_t *psk, size_t psk_len, const struct run_hooks *hooks,
	       struct run_result *res);

/* Logs engine messages to stderr when verbose (SLUICE_LOG=debug|info). */
void run_log(void *ctx, enum sl_log_level lvl, const char *msg);

#endif /* SL_CMD_RUN_H */
