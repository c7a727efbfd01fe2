/* SPDX-License-Identifier: MIT */
/*
 * vfio_legacy_internal.h — the SIMULATED v1 migration region device shared
 * by vfio_legacy_sim.c (the device) and vfio_legacy.c (the v2 adapter).
 * Layout of the region's header (QEMU 5.2 / seed 000):
 *   0  u32 device_state  (RUNNING=1, SAVING=2, RESUMING=4)
 *   4  u32 reserved
 *   8  u64 pending_bytes (read: bytes left to save)
 *  16  u64 data_offset   (read: the device stages the next data there)
 *  24  u64 data_size     (read: bytes staged; write: bytes the user put there)
 * The data area starts at LEGACY_DATA_OFF.
 */
#ifndef SL_VFIO_LEGACY_INTERNAL_H
#define SL_VFIO_LEGACY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#define LEGACY_RUNNING 1u
#define LEGACY_SAVING 2u
#define LEGACY_RESUMING 4u
#define LEGACY_OFF_STATE 0
#define LEGACY_OFF_PENDING 8
#define LEGACY_OFF_DATA_OFFSET 16
#define LEGACY_OFF_DATA_SIZE 24
#define LEGACY_DATA_OFF 4096

struct legacy_region;

int legacy_region_new(uint64_t state_bytes, uint64_t data_bytes, uint64_t seed,
		      struct legacy_region **out);
void legacy_region_free(struct legacy_region **r);
/* Region accesses (like pread/pwrite on the region). 0 or -errno; writing
 * device_state that leaves RESUMING returns -EIO when the image is invalid. */
int legacy_region_read(struct legacy_region *r, uint64_t off, void *buf, size_t len);
int legacy_region_write(struct legacy_region *r, uint64_t off, const void *buf, size_t len);
/* Device reset: back to RUNNING, sessions dropped. */
void legacy_region_reset(struct legacy_region *r);
uint64_t legacy_region_hash(struct legacy_region *r);
uint64_t legacy_region_size(const struct legacy_region *r);

#endif
