/* SPDX-License-Identifier: MIT */
/*
 * vfio_devset_internal.h — what the device set's three files share:
 * vfio_devset.c (members, phases, abort), vfio_devset_save.c (source data
 * path) and vfio_devset_load.c (destination loaders).
 */
#ifndef SL_VFIO_DEVSET_INTERNAL_H
#define SL_VFIO_DEVSET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sl_datafd.h"
#include "sl_vfio.h"

#define CONFIG_MAX (64u << 10)

struct sl_devset;

struct devset_member {
	struct sl_vfio_dev *dev;
	uint32_t id;
	uint64_t next_index;
	bool init_flagged;   /* source: INIT_DONE sent */
	bool eof;
	bool plain_read;     /* the fd refused RWF_NOWAIT: PRE_COPY reads use read(2) */
	uint8_t *config;     /* LAST packet's payload; valid until flush */
	struct sl_devset_dev_stats st;
	/* destination */
	pthread_t loader;
	bool loader_running;
	int loader_err;
	char loader_msg[160];
	atomic_bool init_loaded;
	struct sl_devset *ds;
};

struct sl_devset {
	struct sl_devset_config cfg;
	struct devset_member *m;
	unsigned n;
	struct sl_errbuf err;
	/* source data path */
	struct sl_datafd_reader *rd;
	struct sl_devset_sink sink;
	unsigned *free_bufs;
	unsigned nfree;
	/* destination */
	struct sl_devset_source src;
	atomic_bool cancel;
};

bool devset_has(const struct devset_member *m, uint32_t cap);
const char *devset_name(const struct devset_member *m);
int devset_fail_dev(struct sl_devset *ds, struct devset_member *m, int ret);
/* Moves every member to pick(member) (members in reverse order if asked);
 * on a failure everything returns to RUNNING and the arc's error is kept. */
int devset_phase(struct sl_devset *ds, enum sl_vfio_state (*pick)(struct devset_member *m), bool reverse);
enum sl_vfio_state devset_pick_precopy(struct devset_member *m);
enum sl_vfio_state devset_pick_p2p(struct devset_member *m);
enum sl_vfio_state devset_pick_stopcopy(struct devset_member *m);
enum sl_vfio_state devset_pick_stop(struct devset_member *m);
enum sl_vfio_state devset_pick_resuming(struct devset_member *m);
enum sl_vfio_state devset_pick_p2p_from_stop(struct devset_member *m);
enum sl_vfio_state devset_pick_running(struct devset_member *m);
void devset_stop_loaders(struct sl_devset *ds);
bool devset_loaders_running(const struct sl_devset *ds);

#endif
