/* SPDX-License-Identifier: MIT */
/*
 * sluice.h — the public API of libsluice (engine).
 *
 * A VMM registers guest RAM regions, their dirty-log sources and its VFIO
 * devices with a source session, gives VM operations (stop, resume, save
 * state), connects the channels and migrates. See docs/api.md.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include "sl_common.h"

/* The library version, "MAJOR.MINOR.PATCH". */
const char *sl_version(void);

#endif /* SLUICE_H */
