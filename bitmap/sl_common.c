/* SPDX-License-Identifier: MIT */
#include "sl_common.h"

#include <stdio.h>
#include <time.h>

int sl_verr(struct sl_errbuf *eb, int err, const char *fmt, va_list ap)
{
	if (eb)
		vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
	return err;
}

int sl_err(struct sl_errbuf *eb, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sl_verr(eb, err, fmt, ap);
	va_end(ap);
	return err;
}

uint64_t sl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
