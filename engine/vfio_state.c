/* SPDX-License-Identifier: MIT */
/*
 * vfio_state.c — the VFIO v2 migration state machine as data: the kernel's
 * combination-transition table (drivers/vfio/vfio_main.c,
 * vfio_mig_get_next_state) and the capabilities each state needs.
 */
#include <errno.h>
#include <strings.h>

#include "sl_vfio.h"

#define ST SL_VFIO_STOP
#define RU SL_VFIO_RUNNING
#define SC SL_VFIO_STOP_COPY
#define RE SL_VFIO_RESUMING
#define RP SL_VFIO_RUNNING_P2P
#define PC SL_VFIO_PRE_COPY
#define PP SL_VFIO_PRE_COPY_P2P
#define ER SL_VFIO_ERROR

/* next_arc[cur][requested]: the next single arc on the kernel's path. */
static const unsigned char next_arc[SL_VFIO_NSTATES][SL_VFIO_NSTATES] = {
	/*        to: ER  ST  RU  SC  RE  RP  PC  PP */
	[ST] = { ER, ST, RP, SC, RE, RP, RP, RP },
	[RU] = { ER, RP, RU, RP, RP, RP, PC, RP },
	[SC] = { ER, ST, ST, SC, ST, ST, ER, ER },
	[RE] = { ER, ST, ST, ST, RE, ST, ST, ST },
	[RP] = { ER, ST, RU, ST, ST, RP, RU, PP },
	[PC] = { ER, RU, RU, PP, RU, RU, PC, PP },
	[PP] = { ER, RP, RP, SC, RP, RP, PC, PP },
	[ER] = { ER, ER, ER, ER, ER, ER, ER, ER },
};

/* Capabilities a device needs to have each state. ERROR: never. */
static const uint32_t state_caps[SL_VFIO_NSTATES] = {
	[ER] = ~0u,
	[ST] = SL_VFIO_CAP_STOP_COPY,
	[RU] = SL_VFIO_CAP_STOP_COPY,
	[SC] = SL_VFIO_CAP_STOP_COPY,
	[RE] = SL_VFIO_CAP_STOP_COPY,
	[RP] = SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P,
	[PC] = SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_PRE_COPY,
	[PP] = SL_VFIO_CAP_STOP_COPY | SL_VFIO_CAP_P2P | SL_VFIO_CAP_PRE_COPY,
};

static const char *const state_names[SL_VFIO_NSTATES] = {
	"ERROR", "STOP", "RUNNING", "STOP_COPY", "RESUMING", "RUNNING_P2P", "PRE_COPY",
	"PRE_COPY_P2P",
};

const char *sl_vfio_state_name(enum sl_vfio_state s)
{
	if ((unsigned)s >= SL_VFIO_NSTATES)
		return "INVALID";
	return state_names[s];
}

int sl_vfio_state_parse(const char *name, enum sl_vfio_state *out)
{
	if (!name || !out)
		return -EINVAL;
	for (unsigned i = 0; i < SL_VFIO_NSTATES; i++) {
		if (!strcasecmp(name, state_names[i])) {
			*out = (enum sl_vfio_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool sl_vfio_state_supported(enum sl_vfio_state s, uint32_t caps)
{
	if ((unsigned)s >= SL_VFIO_NSTATES)
		return false;
	return (state_caps[s] & caps) == state_caps[s];
}

int sl_vfio_next_state(enum sl_vfio_state cur, enum sl_vfio_state requested, uint32_t caps,
		       enum sl_vfio_state *next)
{
	if (!next || !sl_vfio_state_supported(cur, caps) ||
	    !sl_vfio_state_supported(requested, caps))
		return -EINVAL;
	/* Arcs through states the device lacks are skipped: the driver sees
	 * one arc from cur to the next state it does have. Terminates: every
	 * path in the table reaches `requested` or ERROR within 3 steps. */
	enum sl_vfio_state n = (enum sl_vfio_state)next_arc[cur][requested];
	while (!sl_vfio_state_supported(n, caps) && n != SL_VFIO_ERROR)
		n = (enum sl_vfio_state)next_arc[n][requested];
	if (n == SL_VFIO_ERROR)
		return -EINVAL;
	*next = n;
	return 0;
}

bool sl_vfio_arc_valid(enum sl_vfio_state cur, enum sl_vfio_state next, uint32_t caps)
{
	enum sl_vfio_state n;

	if (cur == next)
		return false;
	/* An arc is valid iff the kernel would take it directly. */
	return sl_vfio_next_state(cur, next, caps, &n) == 0 && n == next;
}

bool sl_vfio_state_saving(enum sl_vfio_state s)
{
	return s == SL_VFIO_PRE_COPY || s == SL_VFIO_PRE_COPY_P2P || s == SL_VFIO_STOP_COPY;
}
