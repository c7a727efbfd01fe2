/* SPDX-License-Identifier: MIT */
/*
 * sl_stats.h — what a migration measured: one record per precopy iteration
 * and the totals of the whole migration (at least as rich as QEMU's
 * `query-migrate` RAM section), plus their JSON form and a readable report.
 *
 * Who fills what: the source session fills struct sl_migration_stats and
 * appends one struct sl_iter_record per iteration (sl_stats_add_iter); the
 * receiver fills its own copy with the fields it knows. The convergence
 * policies (sl_policy.h) read the iteration records. The CLI prints them
 * (sl_stats_report) or serialises them (sl_stats_to_json).
 *
 * Units: bytes, nanoseconds, bytes per second — everywhere, no exceptions.
 * JSON uses the same units except times in milliseconds (keys end in _ms,
 * as doubles), because that is what people read.
 *
 * Threading: a stats struct is plain data owned by one thread at a time.
 */
#ifndef SL_STATS_H
#define SL_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sl_common.h"

struct json_object;

/* One precopy iteration: sync every dirty source, scan, send. */
struct sl_iter_record {
	uint32_t index;               /* 1-based iteration number */
	uint64_t dirty_bytes;         /* dirty RAM this iteration set out to
	                                 send, as found by the sync before it
	                                 (the first iteration: all of RAM) */
	uint64_t sent_bytes;          /* payload bytes sent (RAM + device) */
	uint64_t device_sent_bytes;   /* of which device state */
	uint64_t zero_pages;          /* pages sent as "zero" (no payload) */
	uint64_t normal_pages;        /* pages sent with payload */
	uint64_t sync_ns;             /* harvesting dirty logs */
	uint64_t scan_ns;             /* bitmap scan + range planning */
	uint64_t send_ns;             /* sending (until the last byte was queued
	                                 and completed) */
	uint64_t duration_ns;         /* wall time of the whole iteration */
	uint64_t bandwidth_bps;       /* measured: sent_bytes / send time */
	uint64_t dirty_rate_bps;      /* measured: bytes the sync ending this
	                                 iteration found dirty / time since the
	                                 previous sync (0 = not measured) */
	uint64_t pending_bytes;       /* RAM still to send when the iteration
	                                 ended (policy input; estimate allowed) */
	uint64_t device_pending_bytes;/* devices: initial + dirty + stop-copy */
	uint64_t predicted_downtime_ns; /* what stopping now would cost:
	                                   (pending + device) / bandwidth */
};

/* Downtime phases; they sum (with small gaps) to the end-to-end downtime. */
struct sl_downtime_breakdown {
	uint64_t final_sync_ns;   /* last dirty-log sync after the stop */
	uint64_t final_ram_ns;    /* sending the final dirty RAM */
	uint64_t device_ns;       /* device STOP_COPY to EOF */
	uint64_t state_ns;        /* CPU/config state + COMPLETE */
	uint64_t dest_load_ns;    /* destination: loading device/CPU state */
	uint64_t resume_ns;       /* destination: resume until RESUMED arrives */
};

#define SL_STATS_NAME_MAX 32

struct sl_migration_stats {
	size_t size;                    /* sizeof(struct sl_migration_stats) */

	/* RAM section (names follow QEMU's query-migrate where one exists). */
	uint64_t transferred_bytes;     /* all payload bytes sent, RAM + device */
	uint64_t remaining_bytes;       /* RAM still dirty (0 after completion) */
	uint64_t total_bytes;           /* registered guest RAM */
	uint64_t zero_pages;            /* "duplicate" in QEMU */
	uint64_t normal_pages;
	uint64_t page_size;             /* bytes per page of the above counts */
	uint64_t dirty_pages_rate;      /* pages per second, last iteration */
	uint64_t throughput_bps;        /* transferred / total time (bytes/s) */
	uint64_t dirty_sync_count;      /* syncs done, the final one included */
	uint64_t precopy_bytes;         /* sent while the VM ran */
	uint64_t downtime_bytes;        /* sent while the VM was stopped */
	uint64_t kernel_copied_bytes;   /* zero-copy sends the kernel copied */
	uint64_t device_bytes;          /* device state bytes (all phases) */

	/* Times. */
	uint64_t setup_ns;              /* connect + handshake + registration */
	uint64_t total_ns;              /* setup start → RESUMED received */
	uint64_t downtime_ns;           /* source: stop → COMPLETE sent (QEMU) */
	uint64_t e2e_downtime_ns;       /* stop → RESUMED received */
	struct sl_downtime_breakdown breakdown;

	/* Settings in force (so a JSON record stands alone). */
	uint32_t channels;
	uint64_t downtime_limit_ns;
	uint64_t bandwidth_limit_bps;   /* 0 = unlimited */
	char policy[SL_STATS_NAME_MAX];        /* "threshold", "predictive", "ramp" */
	char zero_copy_mode[SL_STATS_NAME_MAX];/* "send_zc", "msg_zerocopy", "copy" */
	char outcome[SL_STATS_NAME_MAX];       /* "completed", "failed", "cancelled" */

	/* Iterations: owned array, appended with sl_stats_add_iter. */
	uint32_t iterations;            /* precopy iterations done */
	struct sl_iter_record *iter;    /* iter[0 .. n_iter) */
	size_t n_iter;
	size_t cap_iter;                /* internal */
};

/* Zeroes *st and sets st->size. Never fails. */
SL_EXPORT void sl_stats_init(struct sl_migration_stats *st);

/* Frees the iteration array and re-initialises *st. Safe on an
 * initialised or zeroed struct; NULL is ignored. */
SL_EXPORT void sl_stats_exit(struct sl_migration_stats *st);

/* Appends a copy of *rec (rec->index is kept as given) and sets
 * st->iterations = n_iter. Returns 0, -EINVAL (NULL args) or -ENOMEM. */
SL_EXPORT int sl_stats_add_iter(struct sl_migration_stats *st,
				const struct sl_iter_record *rec);

/* Deep copy (iteration array included); dst must be initialised or zeroed
 * and is overwritten. Returns 0, -EINVAL or -ENOMEM (dst left empty). */
SL_EXPORT int sl_stats_copy(struct sl_migration_stats *dst,
			    const struct sl_migration_stats *src);

/* ---- JSON (json-c) --------------------------------------------------------
 * Keys (stable; `sluice run --json` embeds them at top level):
 *   downtime_ms, e2e_downtime_ms, downtime_breakdown{final_sync_ms,
 *   final_ram_ms, device_ms, state_ms, dest_load_ms, resume_ms}, total_ms,
 *   setup_ms, iterations (array of iteration objects), iteration_count,
 *   transferred_bytes, remaining_bytes, total_bytes, zero_pages,
 *   normal_pages, page_size, dirty_pages_rate, throughput_bps,
 *   dirty_sync_count, precopy_bytes, downtime_bytes, kernel_copied_bytes,
 *   device_bytes, channels, downtime_limit_ms, bandwidth_limit_bps, policy,
 *   zero_copy_mode, outcome.
 * Iteration object keys: index, dirty_bytes, sent_bytes, device_sent_bytes,
 *   zero_pages, normal_pages, sync_ms, scan_ms, send_ms, duration_ms,
 *   bandwidth_bps, dirty_rate_bps, pending_bytes, device_pending_bytes,
 *   predicted_downtime_ms.
 * The caller adds its own keys (workload, verified, ...) to the object.
 */

/* New json object holding *st. Returns 0, -EINVAL or -ENOMEM; the caller
 * owns *out (json_object_put). */
SL_EXPORT int sl_stats_to_json(const struct sl_migration_stats *st,
			       struct json_object **out);

/* Reads the keys above back (unknown keys ignored, missing ones left 0).
 * st must be initialised; it is reset first. Returns 0, -EINVAL (not an
 * object / a key of the wrong type, text in eb) or -ENOMEM. */
SL_EXPORT int sl_stats_from_json(const struct json_object *obj,
				 struct sl_migration_stats *st,
				 struct sl_errbuf *eb);

/* One iteration as JSON. Returns NULL on -ENOMEM. */
SL_EXPORT struct json_object *sl_iter_record_to_json(const struct sl_iter_record *r);

/* ---- readable report -------------------------------------------------------
 * Writes the iteration table, the downtime breakdown and the totals to f
 * (the caller's stream: the library itself never prints on its own).
 * Returns 0 or -EIO when writing failed. */
SL_EXPORT int sl_stats_report(FILE *f, const struct sl_migration_stats *st);

/* Only the iteration table (header + one line per record). */
SL_EXPORT int sl_stats_report_iterations(FILE *f,
					 const struct sl_iter_record *r,
					 size_t n);

#endif /* SL_STATS_H */
