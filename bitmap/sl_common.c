/* SPDX-License-Identifier: MIT */
#include "sl_common.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int sl_parse_scaled(const char *s, int allow_rate, uint64_t *out)
{
	char *end;
	unsigned long long v;
	double frac = 0;
	uint64_t mul = 1;

	if (!s || !*s || !isdigit((unsigned char)*s) || !out)
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == '.') {
		char *fend;

		frac = strtod(end, &fend);
		end = fend;
	}
	switch (toupper((unsigned char)*end)) {
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	default: break;
	}
	if (mul > 1 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (allow_rate && !strcmp(end, "/s"))
		end += 2;
	if (*end || v > UINT64_MAX / mul)
		return -EINVAL;
	*out = v * mul + (uint64_t)(frac * (double)mul);
	return 0;
}
