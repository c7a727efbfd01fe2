/* SPDX-License-Identifier: MIT */
/*
 * engine_internal.h — what the source session's and the receiver's files
 * share inside the engine (not installed, not public).
 */
#ifndef SL_ENGINE_INTERNAL_H
#define SL_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sl_bitmap.h"
#include "sl_placement.h"
#include "sl_policy.h"
#include "sl_sender.h"
#include "sl_stats.h"
#include "sl_workers.h"
#include "sluice.h"

#define SL_DEFAULT_CHANNELS 2u
#define SL_DEFAULT_DOWNTIME_NS (300ull * 1000000ull)
#define SL_DEFAULT_TIMEOUT_NS (10ull * 1000000000ull)
#define SL_DEFAULT_PAGE_SIZE 4096u
#define SL_MAX_SCAN_WORKERS 8u
#define SL_STATE_MAX (64u << 20)

/* Pages one scan job covers: a multiple of 64 (whole bitmap words). */
#define SL_SCAN_CHUNK_PAGES (1ull << 20)
/* Ranges cleared-then-sent together: at most this span of pages, so the
 * clear happens just before the pages leave (clear-before-copy). */
#define SL_SEND_BATCH_PAGES 2048ull
/* Merge dirty runs separated by this many clean pages (one header less). */
#define SL_SCAN_GAP_PAGES 2ull
/* Devices tracked for the switchover acknowledgement. */
#define SL_ACK_MAX_DEVICES 64u

struct sl_region {
	uint32_t id;
	void *host;
	uint64_t gpa;
	uint64_t length;
	uint64_t npages;
	struct sl_dirty_source *dirty;
	bool manual_clear;       /* clear-before-copy chunks */
	bool started_here;       /* the session started the source */
	uint64_t *bitmap;        /* pending dirty pages, engine-owned */
	int32_t node;            /* NUMA node holding it, -1 unknown */
	char name[32];
};

/* One scan job: a slice of one region's bitmap → ranges (region-relative). */
struct sl_scan_job {
	struct sl_region *region;
	uint64_t first_page;     /* multiple of 64 */
	uint64_t npages;
	struct sl_range *ranges;
	size_t n, cap;
	uint64_t dirty_pages;    /* pages in the ranges before gap merging */
	int err;
};

enum sl_session_phase {
	SL_PHASE_NEW,
	SL_PHASE_CONNECTED,      /* iterating */
	SL_PHASE_DONE,           /* switched over: the VM runs on the destination */
	SL_PHASE_FAILED,
};

struct sl_session {
	struct sl_session_config cfg;
	uint8_t *psk;
	struct sl_policy_config policy_cfg;
	struct sl_policy *policy;
	struct sl_errbuf err;

	struct sl_region *regions;
	size_t nregions;
	uint64_t total_pages;

	struct sl_vm_ops ops;
	void *vmm;
	bool have_ops;
	struct sl_devset *devices;

	struct sl_sender *sender;
	struct sl_workers *workers;
	struct sl_placement plan;   /* where the scan workers run */
	struct sl_scan_job *jobs;
	size_t njobs;
	struct sl_range *zero_buf, *data_buf; /* batch split buffers */
	size_t split_cap;

	enum sl_session_phase phase;
	atomic_bool cancelled;
	uint32_t generation;
	uint64_t t_setup_start;
	uint64_t t_precopy_start;
	uint64_t t_last_sync;
	uint64_t pending_pages;   /* in the bitmaps, from the last sync */
	bool vm_stopped;

	struct sl_migration_stats stats;
	struct sl_dest_report dest;

	/* switchover acknowledgement: devices whose INIT_DONE packet went out,
	 * and those the destination acknowledged as loaded (wire ACK) */
	bool dev_init_sent[SL_ACK_MAX_DEVICES];
	bool dev_acked[SL_ACK_MAX_DEVICES];
	uint64_t ack_wait_start_ns; /* first iteration that waited for an ACK */
	bool ack_wait_warned;

	/* peer-silence watchdog (session_watchdog.c) */
	pthread_t wd_thread;
	pthread_mutex_t wd_lock;
	pthread_cond_t wd_cond;
	bool wd_running, wd_stop;
	atomic_uint_fast64_t wd_busy_since; /* 0 = not inside a transport call */
	atomic_bool wd_fired;
};

/* Logs through the session's callback (printf-style). */
void sl_session_log(struct sl_session *s, enum sl_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* session_scan.c: syncs every source into its bitmap (returns dirty pages,
 * or -errno), and scans all bitmaps into s->jobs in parallel (clearing the
 * bitmaps). */
int64_t sl_session_sync_all(struct sl_session *s, uint64_t *sync_ns);
int sl_session_scan_all(struct sl_session *s);
int sl_session_scan_setup(struct sl_session *s);
void sl_session_scan_teardown(struct sl_session *s);

/* session_send.c: sends every job's ranges; clear_first = clear-before-copy
 * for manual sources (precopy), false once the VM is stopped. */
int sl_session_send_jobs(struct sl_session *s, bool clear_first);

/* session_watchdog.c: cancels the sender when a transport call makes no
 * progress for the peer timeout; busy() brackets blocking transport calls;
 * transport_err/msg turn the resulting cancel into -ETIMEDOUT + text. */
int sl_session_watchdog_start(struct sl_session *s);
void sl_session_watchdog_stop(struct sl_session *s);
void sl_session_busy(struct sl_session *s, bool busy);
int sl_session_transport_err(struct sl_session *s, int err);
const char *sl_session_transport_msg(struct sl_session *s);

/* session_switchover.c */
int sl_session_fail(struct sl_session *s, int err);

/* session_devices.c: device packets to the sender (source) and from the
 * receiver's reassembly store to the loaders (destination). */
struct sl_devstore;
int sl_session_devices_attach(struct sl_session *s);
/* Reads the destination's ACKs without waiting (-errno: it went away). */
int sl_session_poll_acks(struct sl_session *s);
/* A device announced INIT_DONE and the destination has not acknowledged it. */
bool sl_session_acks_pending(struct sl_session *s);
int sl_dest_devices_start(struct sl_devset *set, struct sl_devstore *store);

/* The sender's mode as the stats name it ("send_zc", "msg_zerocopy", "copy"). */
const char *sl_zc_stats_name(enum sl_zc_mode m);

/* RESUMED text: the destination's report as a small JSON object. */
int sl_dest_report_format(const struct sl_dest_report *r, char *buf, size_t len);
int sl_dest_report_parse(const char *text, struct sl_dest_report *r);

#endif /* SL_ENGINE_INTERNAL_H */
