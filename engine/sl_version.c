/* SPDX-License-Identifier: MIT */
#include "sl_config.h"
#include "sluice.h"

SL_EXPORT const char *sl_version(void)
{
	return SL_VERSION;
}
