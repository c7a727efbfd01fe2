/* SPDX-License-Identifier: MIT */
/*
 * sl_vfio.h — VFIO device migration: the kernel's v2 state machine, one
 * backend interface (real VFIO, SIMULATED device, SIMULATED legacy region
 * device), a per-device driver that steps arcs and recovers from failures,
 * and the device set the migration engine calls.
 *
 * States, capability bits and the combination-transition rule follow the
 * kernel (include/uapi/linux/vfio.h, drivers/vfio/vfio_main.c
 * vfio_mig_get_next_state); docs/devices.md explains the design.
 *
 * Errors: negative errno; every object keeps the last error's text, which
 * names the device and the failed arc ("dev0 (simulated): arc STOP_COPY->STOP
 * failed: Input/output error; now STOP_COPY; unwound to RUNNING").
 *
 * Threading: a device set is driven by one thread (the engine's migration
 * thread, or the receiver's control thread). Internally the destination side
 * runs one loader thread per device; the callbacks it calls are documented
 * below. Backends are only called by the device set's thread and its
 * loaders, never concurrently for the same device.
 */
#ifndef SL_VFIO_H
#define SL_VFIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sl_common.h"
#include "sl_sys.h"

/* ---- states and capabilities (values = the kernel's) ---------------------- */

enum sl_vfio_state {
	SL_VFIO_ERROR = 0,
	SL_VFIO_STOP = 1,
	SL_VFIO_RUNNING = 2,
	SL_VFIO_STOP_COPY = 3,
	SL_VFIO_RESUMING = 4,
	SL_VFIO_RUNNING_P2P = 5,
	SL_VFIO_PRE_COPY = 6,
	SL_VFIO_PRE_COPY_P2P = 7,
};
#define SL_VFIO_NSTATES 8

/* VFIO_DEVICE_FEATURE_MIGRATION flags. STOP_COPY is mandatory. */
#define SL_VFIO_CAP_STOP_COPY (1u << 0)
#define SL_VFIO_CAP_P2P (1u << 1)
#define SL_VFIO_CAP_PRE_COPY (1u << 2)
#define SL_VFIO_CAP_MASK (SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P | SL_VFIO_CAP_PRE_COPY)

/* "STOP_COPY", ...; "INVALID" for out-of-range values. Never NULL. */
SL_EXPORT const char *sl_vfio_state_name(enum sl_vfio_state s);
/* Parses a state name (case-insensitive). 0 or -EINVAL. */
SL_EXPORT int sl_vfio_state_parse(const char *name, enum sl_vfio_state *out);

/* True when a device with `caps` has state s (ERROR is never a valid state
 * to be in or to request). */
SL_EXPORT bool sl_vfio_state_supported(enum sl_vfio_state s, uint32_t caps);

/*
 * The kernel's vfio_mig_get_next_state(): the next single arc on the way from
 * cur to requested for a device with `caps`, skipping states the device
 * lacks. Returns 0 and *next (== requested when cur == requested), or
 * -EINVAL when cur or requested is out of range or unsupported, caps lack
 * STOP_COPY, or no path exists (e.g. STOP_COPY -> PRE_COPY).
 */
SL_EXPORT int sl_vfio_next_state(enum sl_vfio_state cur, enum sl_vfio_state requested,
				 uint32_t caps, enum sl_vfio_state *next);

/* True when cur->next is one arc a driver with `caps` implements. */
SL_EXPORT bool sl_vfio_arc_valid(enum sl_vfio_state cur, enum sl_vfio_state next, uint32_t caps);

/* States that own a data fd: the saving group and RESUMING. */
SL_EXPORT bool sl_vfio_state_saving(enum sl_vfio_state s); /* PRE_COPY, PRE_COPY_P2P, STOP_COPY */

/* ---- backend interface ----------------------------------------------------- */

struct sl_vfio_backend;

struct sl_vfio_backend_ops {
	const char *kind; /* "vfio", "simulated", "legacy-simulated" */
	/* Moves the device to `s`. Backends with `combination` accept any
	 * reachable state (the kernel walks the arcs); the others get exactly
	 * one arc. When the move opens a data session (RUNNING->PRE_COPY,
	 * RUNNING_P2P->PRE_COPY_P2P, STOP->STOP_COPY, STOP->RESUMING) *data_fd
	 * receives a new fd the caller owns; otherwise it is set to -1.
	 * 0 or -errno (the device may then be anywhere on the path). */
	int (*set_state)(struct sl_vfio_backend *be, enum sl_vfio_state s, int *data_fd);
	int (*get_state)(struct sl_vfio_backend *be, enum sl_vfio_state *s);
	/* VFIO_DEVICE_RESET: the device returns to RUNNING, data fds end. */
	int (*reset)(struct sl_vfio_backend *be);
	/* VFIO_MIG_GET_PRECOPY_INFO on data_fd; only in PRE_COPY(_P2P), else -EINVAL. */
	int (*precopy_info)(struct sl_vfio_backend *be, int data_fd, uint64_t *initial_bytes,
			    uint64_t *dirty_bytes);
	/* VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: estimated STOP_COPY length; -ENOTTY if absent. */
	int (*data_size)(struct sl_vfio_backend *be, uint64_t *stop_copy_bytes);
	/* Data fd I/O. read: bytes, 0, or -errno (-ENOMSG/-EAGAIN = nothing
	 * now in PRE_COPY). NULL means "a real kernel fd": the device set
	 * reads it with io_uring (sl_datafd) and writes it with write(2). */
	ssize_t (*read)(struct sl_vfio_backend *be, int fd, void *buf, size_t len);
	ssize_t (*write)(struct sl_vfio_backend *be, int fd, const void *buf, size_t len);
	void (*destroy)(struct sl_vfio_backend *be);
};

/* Every backend embeds this as its first member. */
struct sl_vfio_backend {
	const struct sl_vfio_backend_ops *ops;
	uint32_t caps;        /* SL_VFIO_CAP_* */
	bool combination;     /* set_state walks combination transitions itself */
	char name[48];        /* "dev0", "0000:3b:00.1" */
	struct sl_errbuf err; /* the backend's last error text */
};

/* Destroys any backend (closing what it owns), sets *be = NULL. Safe on NULL. */
SL_EXPORT void sl_vfio_backend_free(struct sl_vfio_backend **be);

/* ---- backend 1: the real kernel (iommufd cdev or group device fd) --------- */

struct sl_vfio_kernel_config {
	size_t size;
	const struct sl_sys *sys; /* NULL = the real kernel */
	const char *name;         /* for messages; NULL = path or "vfio" */
	/* Either an already-open device fd (the VMM's; not closed by sluice) ... */
	int device_fd;            /* < 0: use path */
	/* ... or a cdev path /dev/vfio/devices/vfioN, opened and bound to
	 * iommufd (/dev/iommu) here, or a group /dev/vfio/N with the device's
	 * name in group_device (container + type1v2 + GET_DEVICE_FD here). */
	const char *path;
	const char *group_device;
};
/* Probes VFIO_DEVICE_FEATURE_MIGRATION. -EOPNOTSUPP: the device has no
 * migration support; -ENOENT/-EACCES opening; -EINVAL bad config. */
SL_EXPORT int sl_vfio_kernel_new(const struct sl_vfio_kernel_config *cfg,
				 struct sl_vfio_backend **out, struct sl_errbuf *eb);
/* The device fd (for DMA logging: sl_dirty_vfio_dma_log_new); -1 when be is
 * not a kernel backend. */
SL_EXPORT int sl_vfio_kernel_device_fd(const struct sl_vfio_backend *be);
/* The seam the backend uses (NULL when be is not a kernel backend). */
SL_EXPORT const struct sl_sys *sl_vfio_kernel_sys(const struct sl_vfio_backend *be);

/* The device's DMA writes into guest RAM [iova, iova + npages * page_size)
 * as a dirty-log source (bitmap/sl_dirty.h, VFIO_DEVICE_FEATURE_DMA_LOGGING):
 * works on kernel backends and on the simulated device. -EOPNOTSUPP for
 * other backends, else sl_dirty_vfio_dma_log_new's result. */
struct sl_dirty_source;
SL_EXPORT int sl_vfio_dma_log_new(struct sl_vfio_backend *be, uint64_t iova, uint64_t npages,
				  uint64_t page_size, struct sl_dirty_source **out,
				  struct sl_errbuf *eb);

/* ---- backend 2: the SIMULATED device (engine/devsim.c) -------------------- */

struct sl_devsim_config {
	size_t size;
	const char *name;         /* NULL = "sim" */
	uint32_t caps;            /* 0 = STOP_COPY|P2P|PRE_COPY */
	uint64_t state_bytes;     /* device state size; > 0 */
	uint64_t precopy_bytes;   /* initial bytes readable in PRE_COPY (<= state_bytes) */
	uint64_t dirty_rate;      /* bytes/s of device state rewritten while running */
	uint64_t chunk_bytes;     /* stream record / dirty granule; 0 = 64 KiB */
	uint64_t seed;            /* content seed */
	/* Optional DMA into guest RAM while running (reported by the DMA log). */
	void *guest_ram;
	uint64_t guest_bytes;
	uint64_t dma_rate;        /* bytes/s written into guest_ram */
	/* Failure injection: the arc from->to fails with -EIO, leaving the
	 * device at `from` (or in ERROR when fail_to_error). fail_from ==
	 * fail_to disables it. */
	enum sl_vfio_state fail_from, fail_to;
	bool fail_to_error;
	/* Corrupt the saved stream (one byte flipped) to test validation. */
	bool corrupt_stream;
};
SL_EXPORT int sl_devsim_new(const struct sl_devsim_config *cfg, struct sl_vfio_backend **out,
			    struct sl_errbuf *eb);
/* XXH3-64 of the device's current state (for verification after a restore). */
SL_EXPORT uint64_t sl_devsim_state_hash(struct sl_vfio_backend *be);
/* The state hash at the moment the device last left RESUMING successfully
 * (0 if never): compare this with the source's hash at STOP_COPY — once the
 * destination device runs, its state moves on (dirty_rate), as a real one's. */
SL_EXPORT uint64_t sl_devsim_loaded_hash(struct sl_vfio_backend *be);
/* Changes the injected failure at run time (same meaning as in the config). */
SL_EXPORT void sl_devsim_inject(struct sl_vfio_backend *be, enum sl_vfio_state from,
				enum sl_vfio_state to, bool to_error);
/* DMA logging over the guest RAM (VFIO_DEVICE_FEATURE_DMA_LOGGING semantics:
 * report reads and clears). page_size a power of two. */
SL_EXPORT int sl_devsim_dma_log_start(struct sl_vfio_backend *be, uint64_t page_size);
SL_EXPORT int sl_devsim_dma_log_report(struct sl_vfio_backend *be, uint64_t iova, uint64_t length,
				       uint64_t *bitmap);
SL_EXPORT int sl_devsim_dma_log_stop(struct sl_vfio_backend *be);
/* An sl_sys whose ioctl implements VFIO_DEVICE_FEATURE_DMA_LOGGING_* on
 * fd SL_DEVSIM_DMA_FD for this device, so sl_dirty_vfio_dma_log_new() runs
 * unchanged on the simulated device. Valid while the device lives. */
#define SL_DEVSIM_DMA_FD 1000
SL_EXPORT const struct sl_sys *sl_devsim_sys(struct sl_vfio_backend *be);

/* ---- backend 3: SIMULATED legacy (v1 region) device + adapter ------------- */

struct sl_legacy_config {
	size_t size;
	const char *name;        /* NULL = "legacy" */
	uint64_t state_bytes;    /* > 0 */
	uint64_t region_data;    /* staging area in the region; 0 = 256 KiB */
	uint64_t seed;
	enum sl_vfio_state fail_from, fail_to; /* as for devsim */
};
/* A SIMULATED v1 migration region device (device_state bits, pending_bytes,
 * data_offset, data_size) behind the v2 stream interface (STOP_COPY|PRE_COPY). */
SL_EXPORT int sl_vfio_legacy_new(const struct sl_legacy_config *cfg,
				 struct sl_vfio_backend **out, struct sl_errbuf *eb);
SL_EXPORT uint64_t sl_vfio_legacy_state_hash(struct sl_vfio_backend *be);

/* ---- device spec strings (CLI) ------------------------------------------- */

/*
 * "sim:state=256M,precopy=200M,dirty-rate=20M/s[,chunk=64K,seed=N,caps=p2p+pre_copy,
 *  fail=STOP_COPY>STOP]", "legacy:state=64M", "vfio:/dev/vfio/devices/vfio0",
 * "vfio:/dev/vfio/12,device=0000:3b:00.1" (a group and the device in it).
 * Creates the backend named `name`. 0, -EINVAL (text in eb), or the backend's error.
 */
SL_EXPORT int sl_vfio_spec_new(const char *spec, const char *name, struct sl_vfio_backend **out,
			       struct sl_errbuf *eb);

/* ---- one device: arcs, recovery ------------------------------------------- */

enum sl_vfio_fail_policy {
	SL_VFIO_UNWIND = 0, /* step back to the original state; reset if that fails */
	SL_VFIO_RESET = 1,  /* VFIO_DEVICE_RESET: the device returns to RUNNING */
};

struct sl_vfio_dev;
/* Takes ownership of be. caps are checked (STOP_COPY required). */
SL_EXPORT int sl_vfio_dev_new(struct sl_vfio_backend *be, enum sl_vfio_fail_policy policy,
			      struct sl_vfio_dev **out);
SL_EXPORT void sl_vfio_dev_free(struct sl_vfio_dev **d);
/*
 * Moves to `target` (arc by arc for single-arc backends, one kernel call for
 * combination backends). On failure: reads the state back, applies the
 * policy, and returns the arc's error with text naming the arc (from->to),
 * the state found and the recovery. A data fd opened on the way is kept in
 * the device (sl_vfio_dev_data_fd); leaving the data states closes it.
 */
SL_EXPORT int sl_vfio_dev_set_state(struct sl_vfio_dev *d, enum sl_vfio_state target);
SL_EXPORT enum sl_vfio_state sl_vfio_dev_state(const struct sl_vfio_dev *d);
SL_EXPORT int sl_vfio_dev_data_fd(const struct sl_vfio_dev *d);
SL_EXPORT struct sl_vfio_backend *sl_vfio_dev_backend(struct sl_vfio_dev *d);
SL_EXPORT const char *sl_vfio_dev_last_error(const struct sl_vfio_dev *d);
/* Resets the device (-> RUNNING), closing its data fd. */
SL_EXPORT int sl_vfio_dev_reset(struct sl_vfio_dev *d);
/* Arcs taken so far (for tests and stats). */
SL_EXPORT uint64_t sl_vfio_dev_arcs(const struct sl_vfio_dev *d);

/* ---- the device set: what the engine calls -------------------------------- */

/* DEVICE packet flags: same values as io/sl_wire.h SL_DEV_FLAG_*. */
#define SL_VFIO_PKT_LAST (1u << 0)      /* the device's last packet (may be empty) */
#define SL_VFIO_PKT_CONFIG (1u << 1)    /* the last packet carries config state */
#define SL_VFIO_PKT_INIT_DONE (1u << 2) /* source's initial_bytes reached 0 with this packet */

/* Source side: where packets go. Plugs onto sl_sender_send_device /
 * sl_sender_flush. send() must not copy-or-free buf: the buffer stays valid
 * and unchanged until flush() returns. Both return 0 or -errno. Called on the
 * device set's thread only. */
struct sl_devset_sink {
	int (*send)(void *ctx, uint32_t dev, uint64_t index, uint32_t flags, const void *buf,
		    size_t len);
	int (*flush)(void *ctx); /* after it returns, every buffer sent may be reused */
	void *ctx;
};

/* Destination side: where packets come from (plugs onto sl_devstore_next /
 * sl_devstore_release). next() returns 0 with the device's next packet in
 * index order, -ENODATA after the LAST one, -ETIMEDOUT, or -errno. Called
 * from the loader threads (one per device, concurrently for different
 * devices). */
struct sl_devset_source {
	int (*next)(void *ctx, uint32_t dev, const void **buf, size_t *len, uint32_t *flags,
		    int timeout_ms);
	void (*release)(void *ctx, uint32_t dev, const void *buf);
	void *ctx;
};

struct sl_devset_config {
	size_t size;
	enum sl_vfio_fail_policy policy; /* per-device recovery (default UNWIND) */
	uint64_t buf_max;      /* cap on one read buffer; 0 = 1 MiB */
	uint64_t buf_min;      /* floor; 0 = 64 KiB */
	unsigned nbufs;        /* read buffers per device; 0 = 4 (cache footprint vs. flushes) */
	bool no_uring;         /* read real data fds with read(2), not io_uring */
	/* Config state (e.g. PCI config space) carried by the LAST packet:
	 * source get_config fills buf (cap bytes) and returns its length or
	 * -errno; destination load_config receives it. Both optional. */
	ssize_t (*get_config)(void *ctx, uint32_t dev, void *buf, size_t cap);
	int (*load_config)(void *ctx, uint32_t dev, const void *buf, size_t len);
	/* Destination: called (loader thread) when a device has written the
	 * packet flagged INIT_DONE: the engine acknowledges it to the source
	 * (QEMU's switchover-ack). Optional. */
	void (*initial_loaded)(void *ctx, uint32_t dev);
	void *cb_ctx;
	/* Longest wait for a device's next packet (and for the device to take
	 * a write). 0 = no limit: a long precopy may send no device data for
	 * minutes; the source ends a short stream with -EPIPE (every producer
	 * done) or -ECANCELED (aborted), which fail the loader at once. */
	int loader_timeout_ms;
	/* precopy_read: time budget per device per call (0 = 50 ms), and how
	 * long to wait for owed initial data that is not readable yet before
	 * giving up until the next call (0 = 5 ms). */
	unsigned precopy_budget_ms;
	unsigned precopy_poll_ms;
	sl_log_fn log;
	void *log_ctx;
};

struct sl_devset;

struct sl_devset_dev_stats {
	enum sl_vfio_state state;
	uint64_t precopy_bytes;   /* source: bytes read in PRE_COPY */
	uint64_t stopcopy_bytes;  /* source: bytes read in STOP_COPY */
	uint64_t packets;         /* source: packets sent */
	uint64_t loaded_bytes;    /* destination: bytes written to RESUMING */
	uint64_t stopcopy_ns;     /* source: STOP_COPY read time */
	bool initial_done;        /* source: initial_bytes reached 0 / dest: loaded */
	bool verified;            /* destination: leaving RESUMING succeeded */
	int result;               /* destination: the RESUMING->STOP result */
};

struct sl_devset_pending {
	uint64_t initial_bytes;  /* sum of PRE_COPY initial_bytes */
	uint64_t dirty_bytes;    /* sum of PRE_COPY dirty_bytes */
	uint64_t stopcopy_bytes; /* sum of MIG_DATA_SIZE estimates (0 where unknown) */
	/* What STOP_COPY would move if the switch happened now: the MIG_DATA_SIZE
	 * estimate where the device has one (it already includes what
	 * initial/dirty count), else initial + dirty. Use this, not the sum of
	 * the three fields above, as the devices' share of pending bytes. */
	uint64_t switchover_bytes;
	bool initial_done;       /* every PRE_COPY device has initial_bytes == 0 */
};

/* cfg may be NULL (defaults). 0, -EINVAL, -ENOMEM. */
SL_EXPORT int sl_devset_new(const struct sl_devset_config *cfg, struct sl_devset **out);
/* Closes fds and frees every device and its backend. Loader threads still
 * running are cancelled (their sources see timeouts) and joined. */
SL_EXPORT void sl_devset_free(struct sl_devset **ds);
/* Adds a device (takes ownership of be, also on failure). Its id is the
 * return value (0, 1, ... in order) or -errno. */
SL_EXPORT int sl_devset_add(struct sl_devset *ds, struct sl_vfio_backend *be);
SL_EXPORT unsigned sl_devset_count(const struct sl_devset *ds);
SL_EXPORT struct sl_vfio_dev *sl_devset_dev(struct sl_devset *ds, uint32_t id);
SL_EXPORT const char *sl_devset_last_error(const struct sl_devset *ds);
SL_EXPORT int sl_devset_stats(const struct sl_devset *ds, uint32_t id,
			      struct sl_devset_dev_stats *out);

/* -- source -- */
/* Sets where packets go (copied). Before precopy_read / stopcopy_read_all. */
SL_EXPORT int sl_devset_set_sink(struct sl_devset *ds, const struct sl_devset_sink *sink);
/* RUNNING -> PRE_COPY for every device that has it (others stay RUNNING).
 * On failure every device is returned to RUNNING and the error names the arc. */
SL_EXPORT int sl_devset_precopy_start(struct sl_devset *ds);
/* Current pending figures (precopy info + data-size estimates). */
SL_EXPORT int sl_devset_pending(struct sl_devset *ds, struct sl_devset_pending *out);
/* Reads what PRE_COPY devices have now (ENOMSG / 0 / EAGAIN = nothing now),
 * up to max_bytes in total (0 = no limit) and within cfg.precopy_budget_ms
 * per device; while initial data is owed but not readable it waits up to
 * cfg.precopy_poll_ms for it. Sends each buffer and flushes once at the end
 * (and whenever the buffers run out). Returns bytes sent (>= 0) or -errno
 * (the engine then calls abort_to_running). */
SL_EXPORT int64_t sl_devset_precopy_read(struct sl_devset *ds, uint64_t max_bytes);
/* Switchover: every device -> RUNNING_P2P / PRE_COPY_P2P (where P2P exists)
 * first, then every device -> STOP_COPY. Call after the vCPUs are stopped.
 * On failure every device is returned to RUNNING (reverse order). */
SL_EXPORT int sl_devset_stop(struct sl_devset *ds);
/* Reads every device's STOP_COPY stream to its end (devices concurrently,
 * io_uring on real fds), sending indexed packets (index continues after
 * the precopy packets); each device ends with a LAST packet (CONFIG when
 * get_config gives data). Flushes before returning. bytes or -errno. */
SL_EXPORT int64_t sl_devset_stopcopy_read_all(struct sl_devset *ds);
/* After the destination resumed: every device STOP_COPY -> STOP. */
SL_EXPORT int sl_devset_complete(struct sl_devset *ds);
/* Migration failed: every device back to RUNNING (P2P first, reverse order;
 * reset where stepping fails). Returns 0 when all are RUNNING. */
SL_EXPORT int sl_devset_abort_to_running(struct sl_devset *ds);

/* -- destination -- */
/* Every device -> STOP (P2P first) -> RESUMING, then starts one loader
 * thread per device writing packets from `src` in index order into the
 * RESUMING fd. */
SL_EXPORT int sl_devset_resume_start(struct sl_devset *ds, const struct sl_devset_source *src);
/* Sets (or replaces) cfg.initial_loaded, for an engine that receives the
 * set already made: called on a loader thread right after a device wrote its
 * INIT_DONE packet. Returns 0, or -EBUSY while loaders run. */
SL_EXPORT int sl_devset_set_initial_loaded_cb(struct sl_devset *ds,
					      void (*fn)(void *ctx, uint32_t dev), void *ctx);
/* True once every device that announced INIT_DONE has loaded it (switchover-ack). */
SL_EXPORT bool sl_devset_initial_loaded(const struct sl_devset *ds);
/* Waits for every loader to reach the LAST packet, then moves every device
 * RESUMING -> STOP (the driver validates what it got). Returns 0, or the
 * first failure with text naming device and arc; per-device results in
 * stats (.verified, .result). On failure every device is reset to RUNNING. */
SL_EXPORT int sl_devset_resume_finish(struct sl_devset *ds);
/* STOP -> RUNNING_P2P for all, then -> RUNNING for all. */
SL_EXPORT int sl_devset_resume_run(struct sl_devset *ds);

#endif /* SL_VFIO_H */
