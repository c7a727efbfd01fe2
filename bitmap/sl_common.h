/* SPDX-License-Identifier: MIT */
/*
 * sl_common.h — things every sluice module shares: the export macro, log
 * levels and the log callback type, and a small error-text buffer.
 *
 * Conventions (see docs/style in the README): functions return 0 or a count
 * on success and a negative errno on failure; the library never prints and
 * never exits; heap objects come in sl_X_new / sl_X_free(T **) pairs.
 */
#ifndef SL_COMMON_H
#define SL_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define SL_EXPORT __attribute__((visibility("default")))

#define SL_LIKELY(x) __builtin_expect(!!(x), 1)
#define SL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define SL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define SL_DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))

/* syslog(3) levels, so a VMM can forward messages unchanged. */
enum sl_log_level {
	SL_LOG_ERR = 3,
	SL_LOG_WARNING = 4,
	SL_LOG_NOTICE = 5,
	SL_LOG_INFO = 6,
	SL_LOG_DEBUG = 7,
};

/* Log callback: may be called from any sluice thread; must not block long. */
typedef void (*sl_log_fn)(void *ctx, enum sl_log_level level, const char *msg);

/*
 * The last error's text. Modules embed one and fill it next to returning a
 * negative errno, so callers can print what failed and where.
 */
#define SL_ERRMSG_MAX 256
struct sl_errbuf {
	char msg[SL_ERRMSG_MAX];
};

/* Formats into eb (truncating) and returns err unchanged (a negative errno),
 * so a failure path reads `return sl_err(&x->err, -EINVAL, "...", ...);`. */
int sl_err(struct sl_errbuf *eb, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int sl_verr(struct sl_errbuf *eb, int err, const char *fmt, va_list ap);

/* Parses a byte count with an optional binary unit: "4096", "64K", "1.5G",
 * "512MiB", "2T"; with allow_rate also a trailing "/s" ("20M/s"). Returns 0
 * or -EINVAL (malformed, negative, or overflowing 64 bits). */
int sl_parse_scaled(const char *s, int allow_rate, uint64_t *out);

/* Monotonic clock in nanoseconds. */
uint64_t sl_now_ns(void);

#endif /* SL_COMMON_H */
