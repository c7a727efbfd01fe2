/* SPDX-License-Identifier: MIT */
/* cli_util.c — unit parsing, messages and the terminal progress line. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "sl_common.h"

int sl_cli_parse_size(const char *s, uint64_t *out)
{
	return sl_parse_scaled(s, 0, out);
}

int sl_cli_parse_rate(const char *s, uint64_t *out)
{
	if (s && (!strcmp(s, "unlimited") || !strcmp(s, "0"))) {
		*out = 0;
		return 0;
	}
	return sl_parse_scaled(s, 1, out);
}

int sl_cli_parse_duration(const char *s, uint64_t *out_ns)
{
	char *end;
	double v;

	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -EINVAL;
	v = strtod(s, &end);
	if (!strcmp(end, "") || !strcmp(end, "ms"))
		v *= 1e6;
	else if (!strcmp(end, "s"))
		v *= 1e9;
	else if (!strcmp(end, "us"))
		v *= 1e3;
	else if (!strcmp(end, "ns"))
		;
	else if (!strcmp(end, "min"))
		v *= 60e9;
	else
		return -EINVAL;
	if (v < 0 || v > 1e18)
		return -EINVAL;
	*out_ns = (uint64_t)v;
	return 0;
}

int sl_cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int sl_cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "sluice %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'sluice %s --help')\n", cmd);
	return SL_EXIT_USAGE;
}

const char *sl_cli_fmt_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < SL_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

void sl_cli_progress_init(struct sl_cli_progress *p, bool quiet)
{
	p->enabled = !quiet && isatty(STDOUT_FILENO);
	p->start_ns = p->last_ns = sl_now_ns();
}

void sl_cli_progress_update(struct sl_cli_progress *p, const char *label,
			    uint64_t iteration, uint64_t done_bytes,
			    uint64_t total_bytes)
{
	uint64_t now = sl_now_ns();
	double secs, rate;
	char done[32], eta[32] = "";

	if (!p->enabled || now - p->last_ns < 100000000ull)
		return; /* at most 10 updates a second */
	p->last_ns = now;
	secs = (double)(now - p->start_ns) / 1e9;
	rate = secs > 0 ? (double)done_bytes / secs : 0;
	if (total_bytes > done_bytes && rate > 0)
		snprintf(eta, sizeof(eta), "  ETA %.1fs", (double)(total_bytes - done_bytes) / rate);
	printf("\r\033[K%s  iter %llu  %s  %.2f GB/s%s", label,
	       (unsigned long long)iteration, sl_cli_fmt_bytes(done_bytes, done, sizeof(done)),
	       rate / 1e9, eta);
	fflush(stdout);
}

void sl_cli_progress_done(struct sl_cli_progress *p)
{
	if (p->enabled) {
		printf("\r\033[K");
		fflush(stdout);
	}
}
