/* SPDX-License-Identifier: MIT */
/*
 * sluice.h — the public API of libsluice (engine).
 *
 * A VMM registers guest RAM regions, their dirty-log sources and its VFIO
 * devices with a source session, gives VM operations (stop, resume, save
 * state), connects the channels and migrates. The destination registers its
 * (zero-filled) RAM with a receiver ("dest"), gives load/resume callbacks and
 * runs. See docs/api.md for a complete example and docs/engine.md for the
 * theory of operation.
 *
 * Errors: every function returns 0 (or a count) or a negative errno; the
 * text of the last error is in sl_session_last_error() / sl_dest_last_error().
 * The library never prints and never exits; messages go to the log callback.
 *
 * Threading: a session (and a dest) is driven by one thread. The only calls
 * allowed from other threads are sl_session_cancel() and sl_dest_cancel().
 * VM callbacks run on the driving thread.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sl_common.h"
#include "sl_dirty.h"
#include "sl_policy.h"
#include "sl_stats.h"

/* The library version, "MAJOR.MINOR.PATCH". */
SL_EXPORT const char *sl_version(void);

/* ==== source session ==================================================== */

/* How page data leaves: io_uring SEND_ZC, MSG_ZEROCOPY, plain writev, or
 * the best the kernel offers (reported in stats.zero_copy_mode). */
enum sl_zero_copy {
	SL_ZERO_COPY_AUTO = 0,
	SL_ZERO_COPY_URING = 1,
	SL_ZERO_COPY_MSG = 2,
	SL_ZERO_COPY_OFF = 3,
};

struct sl_session_config {
	size_t size;                  /* sizeof(struct sl_session_config) */
	unsigned channels;            /* TCP connections, 1..64; 0 → 2 */
	uint64_t downtime_limit_ns;   /* 0 → 300 ms */
	uint64_t bandwidth_bps;       /* shared cap in bytes/s while the VM runs (lifted when it
				       * stops, as QEMU does); 0 = unlimited */
	/* Convergence policy; NULL → threshold with the limit above. A
	 * policy config's downtime_limit_ns / bandwidth_bps of 0 inherit
	 * the session's values. */
	const struct sl_policy_config *policy;
	enum sl_zero_copy zero_copy;
	const uint8_t *psk;           /* pre-shared key (required, 1..4096 bytes) */
	size_t psk_len;
	uint64_t peer_timeout_ns;     /* peer silence / connect limit; 0 → 10 s */
	unsigned scan_workers;        /* parallel bitmap scanners; 0 → online CPUs (max 8) */
	uint32_t page_size;           /* 0 → 4096 */
	sl_log_fn log;                /* optional */
	void *log_ctx;
};

/* One guest RAM region. The dirty source tracks exactly this region
 * (npages = length / page_size) and is started by the session (at connect)
 * unless it already runs. The session does not own the source. */
struct sl_ram_config {
	size_t size;                  /* sizeof(struct sl_ram_config) */
	void *host;                   /* page-aligned mapping in this process */
	uint64_t gpa;                 /* guest-physical address (informational) */
	uint64_t length;              /* bytes, a multiple of the page size */
	struct sl_dirty_source *dirty;
	const char *name;             /* for messages; may be NULL */
};

/* What the engine asks of the VMM. stop and resume are required. */
struct sl_vm_ops {
	size_t size;                  /* sizeof(struct sl_vm_ops) */
	/* Stops every vCPU (after it returns no guest write may happen
	 * except through devices, which the engine stops next). */
	int (*stop)(void *vmm);
	/* Resumes the vCPUs: after a failed or cancelled switchover. */
	int (*resume)(void *vmm);
	/* CPU/config state, written into buf (cap bytes). Returns its length,
	 * or -ENOSPC when cap is too small (the engine retries with a larger
	 * buffer, up to 64 MiB), or another -errno. Optional (no state). */
	ssize_t (*save_state)(void *vmm, void *buf, size_t cap);
	/* Optional: the policy asked to slow the guest down to pct percent
	 * of its CPU time taken away (0 = unthrottle). */
	void (*throttle)(void *vmm, unsigned pct);
	/* Optional: called after every precopy iteration (progress). */
	void (*iteration_done)(void *vmm, const struct sl_iter_record *rec);
};

/* What the destination reported in its RESUMED acknowledgement. */
struct sl_dest_report {
	bool valid;                   /* the destination sent a parsable report */
	uint64_t load_ns;             /* destination: loading device + CPU state */
	uint64_t resume_ns;           /* destination: its resume callback */
	bool has_hash;                /* destination hashed its RAM (verify) */
	uint64_t ram_hash;            /* XXH3-64 over all regions, in id order */
	uint64_t hash_ns;             /* time spent hashing (excluded from downtime) */
};

struct sl_session;
struct sl_devset;

/* Creates a session (no I/O yet). Returns 0, -EINVAL (bad config; the text
 * goes to eb when eb != NULL, as there is no session to ask yet) or -ENOMEM. */
SL_EXPORT int sl_session_new(const struct sl_session_config *cfg,
			     struct sl_session **out, struct sl_errbuf *eb);

/* Frees; stops the dirty sources it started; *s = NULL. Safe on NULL. Not
 * while another thread still drives the session. */
SL_EXPORT void sl_session_free(struct sl_session **s);

/* Registers a RAM region (before connect). Returns its region id (>= 0),
 * -EINVAL (unaligned, zero length, source size mismatch), -EBUSY (already
 * connected) or -ENOMEM. */
SL_EXPORT int sl_session_add_ram(struct sl_session *s, const struct sl_ram_config *ram);

/* Registers a set of VFIO (or simulated) migration devices (engine/sl_vfio.h, sl_devset_*).
 * The session drives them: PRE_COPY during precopy, STOP_COPY during the
 * switchover, back to RUNNING after a failure. Not owned. 0, -EINVAL, -EBUSY. */
SL_EXPORT int sl_session_add_devices(struct sl_session *s, struct sl_devset *set);

/* VM callbacks; ops is copied. 0 or -EINVAL (stop/resume missing). */
SL_EXPORT int sl_session_set_vm_ops(struct sl_session *s, const struct sl_vm_ops *ops,
				    void *vmm);

/* Connects and authenticates every channel, registers the regions with the
 * transport and starts the dirty sources. Returns 0, -EINVAL, -ECONNREFUSED,
 * -EACCES (wrong key: the receiver's reason in last_error), -ETIMEDOUT, ... */
SL_EXPORT int sl_session_connect(struct sl_session *s, const char *url);

/* One precopy iteration: scan what the last sync found (in parallel on the
 * worker pool for large guests), clear-then-send it batch by batch, read
 * device precopy data, flush, sync every source, record, and ask the
 * policy. Returns 1 when the policy says switch over now, 0 to keep
 * iterating, or -errno: -ECANCELED (sl_session_cancel), -ETIMEDOUT (peer
 * silent), -ECONNRESET / -EPIPE (peer gone), -ERANGE (the policy gave up:
 * its advice is in last_error). The VM keeps running in every case. The
 * iteration record is in the stats (sl_session_get_stats) and is handed to
 * ops.iteration_done. */
SL_EXPORT int sl_session_iterate(struct sl_session *s);

/* Stops the VM and completes the migration: final sync, final RAM, device
 * stop-and-copy, CPU/config state, COMPLETE, waits for RESUMED. On success
 * the VM stays stopped (it now runs on the destination). On failure the VM
 * and its devices are resumed here and the error is returned: -ECONNRESET,
 * -ETIMEDOUT, -ECANCELED, -EPIPE, or the destination's error. */
SL_EXPORT int sl_session_switchover(struct sl_session *s);

/* connect must have succeeded. Iterates until the policy says switch over,
 * then switches over. stats (may be NULL) receives a copy of the stats
 * (sl_stats_init it first; sl_stats_exit it after), also on failure. */
SL_EXPORT int sl_session_migrate(struct sl_session *s, struct sl_migration_stats *stats);

/* Any thread: makes the running and all later calls fail with -ECANCELED
 * (the VM is resumed if it was stopped). Returns 0. */
SL_EXPORT int sl_session_cancel(struct sl_session *s);

/* Copies the current stats into *out (initialised by sl_stats_init). */
SL_EXPORT int sl_session_get_stats(struct sl_session *s, struct sl_migration_stats *out);

/* The destination's report (valid after a successful switchover). */
SL_EXPORT void sl_session_dest_report(const struct sl_session *s, struct sl_dest_report *out);

/* XXH3-64 over every registered region, in region-id order: compare with
 * the destination's hash. Only meaningful while the VM is stopped. */
SL_EXPORT uint64_t sl_session_ram_hash(const struct sl_session *s);

/* Text of the last error, "" if none. Valid until the next call. */
SL_EXPORT const char *sl_session_last_error(const struct sl_session *s);

/* ==== destination (receiver) ============================================ */

struct sl_dest_config {
	size_t size;                  /* sizeof(struct sl_dest_config) */
	const char *listen;           /* "tcp:0.0.0.0:4444", "tcp:127.0.0.1:0", "unix:/path" */
	const uint8_t *psk;           /* pre-shared key (required) */
	size_t psk_len;
	uint64_t peer_timeout_ns;     /* peer silence limit; 0 → 10 s */
	uint32_t page_size;           /* 0 → 4096 */
	/* Hash all RAM (XXH3-64) after the last byte arrived and before
	 * resuming, and report it in RESUMED (verification; its time is
	 * reported apart and left out of the downtime figures). */
	bool hash_ram;
	sl_log_fn log;
	void *log_ctx;
};

/* Destination VM callbacks. All optional except resume. */
struct sl_dest_ops {
	size_t size;                  /* sizeof(struct sl_dest_ops) */
	/* The CPU/config state blob of `kind` (after all RAM arrived). */
	int (*load_state)(void *vmm, uint32_t kind, const void *buf, size_t len);
	/* Run the VM. After it returns 0 RESUMED is sent to the source. */
	int (*resume)(void *vmm);
};

struct sl_dest;

/* Listens at cfg->listen. 0, -EINVAL, -EADDRINUSE, -ENOMEM (text in eb). */
SL_EXPORT int sl_dest_new(const struct sl_dest_config *cfg, struct sl_dest **out,
			  struct sl_errbuf *eb);
SL_EXPORT void sl_dest_free(struct sl_dest **d);
/* The bound TCP port (after listening on port 0). */
SL_EXPORT int sl_dest_port(const struct sl_dest *d);
/* Registers zero-filled destination RAM; regions must be added in the same
 * order (same ids) as on the source. Returns the region id or -errno. */
SL_EXPORT int sl_dest_add_ram(struct sl_dest *d, const struct sl_ram_config *ram);
/* Registers destination devices (resume_start/loaders/resume_finish). */
SL_EXPORT int sl_dest_add_devices(struct sl_dest *d, struct sl_devset *set);
SL_EXPORT int sl_dest_set_ops(struct sl_dest *d, const struct sl_dest_ops *ops, void *vmm);

/* Accepts one migration and runs it to the end: pages placed, state loaded,
 * VM resumed, RESUMED sent. Returns 0, or -errno (the partial VM must be
 * discarded by the caller): -EACCES wrong key, -ECONNRESET source gone,
 * -ETIMEDOUT source silent, -EPROTO bad stream, -ECANCELED. */
SL_EXPORT int sl_dest_run(struct sl_dest *d);

/* Any thread: makes sl_dest_run return -ECANCELED. */
SL_EXPORT int sl_dest_cancel(struct sl_dest *d);

/* The destination's own stats: transferred/zero/normal pages, setup,
 * total, dest_load and resume times. */
SL_EXPORT int sl_dest_get_stats(struct sl_dest *d, struct sl_migration_stats *out);
/* Its view of the same report it sent back (hash etc.). */
SL_EXPORT void sl_dest_report(const struct sl_dest *d, struct sl_dest_report *out);
SL_EXPORT const char *sl_dest_last_error(const struct sl_dest *d);

/* XXH3-64 of regions in order: the hash both ends compute. */
SL_EXPORT uint64_t sl_ram_hash(void *const *hosts, const uint64_t *lengths, size_t n);

#endif /* SLUICE_H */
