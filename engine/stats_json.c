/* SPDX-License-Identifier: MIT */
/*
 * stats_json.c — sl_migration_stats and sl_iter_record to and from json-c.
 *
 * Field lists are tables (key, offset, kind) so that writing and reading
 * can never disagree about a key. Times are stored in ns and written as
 * milliseconds (double); reading rounds back to the nearest ns.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include <json-c/json.h>

#include "sl_stats.h"

enum field_kind { F_U64, F_U32, F_MS, F_STR };

struct field {
	const char *key;
	size_t off;
	enum field_kind kind;
};

#define STF(key, member, kind) { key, offsetof(struct sl_migration_stats, member), kind }
static const struct field stats_fields[] = {
	STF("downtime_ms", downtime_ns, F_MS),
	STF("e2e_downtime_ms", e2e_downtime_ns, F_MS),
	STF("total_ms", total_ns, F_MS),
	STF("setup_ms", setup_ns, F_MS),
	STF("iteration_count", iterations, F_U32),
	STF("transferred_bytes", transferred_bytes, F_U64),
	STF("remaining_bytes", remaining_bytes, F_U64),
	STF("total_bytes", total_bytes, F_U64),
	STF("zero_pages", zero_pages, F_U64),
	STF("normal_pages", normal_pages, F_U64),
	STF("page_size", page_size, F_U64),
	STF("dirty_pages_rate", dirty_pages_rate, F_U64),
	STF("throughput_bps", throughput_bps, F_U64),
	STF("dirty_sync_count", dirty_sync_count, F_U64),
	STF("precopy_bytes", precopy_bytes, F_U64),
	STF("downtime_bytes", downtime_bytes, F_U64),
	STF("kernel_copied_bytes", kernel_copied_bytes, F_U64),
	STF("device_bytes", device_bytes, F_U64),
	STF("channels", channels, F_U32),
	STF("downtime_limit_ms", downtime_limit_ns, F_MS),
	STF("bandwidth_limit_bps", bandwidth_limit_bps, F_U64),
	STF("policy", policy, F_STR),
	STF("zero_copy_mode", zero_copy_mode, F_STR),
	STF("outcome", outcome, F_STR),
};

#define BDF(key, member) { key, offsetof(struct sl_downtime_breakdown, member), F_MS }
static const struct field breakdown_fields[] = {
	BDF("final_sync_ms", final_sync_ns),
	BDF("final_ram_ms", final_ram_ns),
	BDF("device_ms", device_ns),
	BDF("state_ms", state_ns),
	BDF("dest_load_ms", dest_load_ns),
	BDF("resume_ms", resume_ns),
};

#define ITF(key, member, kind) { key, offsetof(struct sl_iter_record, member), kind }
static const struct field iter_fields[] = {
	ITF("index", index, F_U32),
	ITF("dirty_bytes", dirty_bytes, F_U64),
	ITF("sent_bytes", sent_bytes, F_U64),
	ITF("device_sent_bytes", device_sent_bytes, F_U64),
	ITF("zero_pages", zero_pages, F_U64),
	ITF("normal_pages", normal_pages, F_U64),
	ITF("sync_ms", sync_ns, F_MS),
	ITF("scan_ms", scan_ns, F_MS),
	ITF("send_ms", send_ns, F_MS),
	ITF("duration_ms", duration_ns, F_MS),
	ITF("bandwidth_bps", bandwidth_bps, F_U64),
	ITF("dirty_rate_bps", dirty_rate_bps, F_U64),
	ITF("pending_bytes", pending_bytes, F_U64),
	ITF("device_pending_bytes", device_pending_bytes, F_U64),
	ITF("predicted_downtime_ms", predicted_downtime_ns, F_MS),
};

/* Milliseconds with exactly the ns precision we have ("12.345678", "300.0"),
 * not the 17 digits a double prints by default. */
static struct json_object *new_ms(uint64_t ns)
{
	char buf[40];
	size_t n;

	snprintf(buf, sizeof(buf), "%" PRIu64 ".%06" PRIu64, ns / 1000000, ns % 1000000);
	n = strlen(buf);
	while (n > 2 && buf[n - 1] == '0' && buf[n - 2] != '.')
		buf[--n] = '\0';
	return json_object_new_double_s((double)ns / 1e6, buf);
}

static int put_fields(struct json_object *o, const void *base,
		      const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = (const char *)base + f[i].off;
		struct json_object *v = NULL;
		uint64_t u;
		uint32_t u32;

		switch (f[i].kind) {
		case F_U64:
			memcpy(&u, p, sizeof(u));
			/* json-c stores int64; counters never reach 2^63. */
			v = json_object_new_int64((int64_t)(u > INT64_MAX ? INT64_MAX : u));
			break;
		case F_U32:
			memcpy(&u32, p, sizeof(u32));
			v = json_object_new_int64(u32);
			break;
		case F_MS:
			memcpy(&u, p, sizeof(u));
			v = new_ms(u);
			break;
		case F_STR:
			v = json_object_new_string(p);
			break;
		}
		if (!v || json_object_object_add(o, f[i].key, v)) {
			json_object_put(v);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Reads the fields present in o; wrong types are -EINVAL. */
static int get_fields(const struct json_object *o, void *base,
		      const struct field *f, size_t n, size_t str_max,
		      struct sl_errbuf *eb)
{
	for (size_t i = 0; i < n; i++) {
		char *p = (char *)base + f[i].off;
		struct json_object *v;
		uint64_t u;
		uint32_t u32;
		double d;

		if (!json_object_object_get_ex(o, f[i].key, &v) || !v)
			continue;
		enum json_type t = json_object_get_type(v);

		if (f[i].kind == F_STR) {
			if (t != json_type_string)
				goto bad;
			snprintf(p, str_max, "%s", json_object_get_string(v));
			continue;
		}
		if (t != json_type_int && t != json_type_double)
			goto bad;
		d = json_object_get_double(v);
		if (!isfinite(d) || d < 0)
			goto bad;
		switch (f[i].kind) {
		case F_U64:
			u = t == json_type_int ? (uint64_t)json_object_get_int64(v)
					       : (uint64_t)llround(d);
			memcpy(p, &u, sizeof(u));
			break;
		case F_U32:
			if (d > UINT32_MAX)
				goto bad;
			u32 = (uint32_t)llround(d);
			memcpy(p, &u32, sizeof(u32));
			break;
		case F_MS:
			if (d > 1.8e13) /* > UINT64_MAX ns */
				goto bad;
			u = (uint64_t)llround(d * 1e6);
			memcpy(p, &u, sizeof(u));
			break;
		case F_STR:
			break;
		}
		continue;
bad:
		return sl_err(eb, -EINVAL, "stats JSON: key '%s' has a wrong type or value",
			      f[i].key);
	}
	return 0;
}

struct json_object *sl_iter_record_to_json(const struct sl_iter_record *r)
{
	struct json_object *o;

	if (!r)
		return NULL;
	o = json_object_new_object();
	if (!o)
		return NULL;
	if (put_fields(o, r, iter_fields, SL_ARRAY_SIZE(iter_fields))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int sl_stats_to_json(const struct sl_migration_stats *st, struct json_object **out)
{
	struct json_object *o, *bd = NULL, *arr = NULL;

	if (!st || !out || (st->n_iter && !st->iter))
		return -EINVAL;
	*out = NULL;
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	if (put_fields(o, st, stats_fields, SL_ARRAY_SIZE(stats_fields)))
		goto nomem;
	bd = json_object_new_object();
	if (!bd || put_fields(bd, &st->breakdown, breakdown_fields,
			      SL_ARRAY_SIZE(breakdown_fields)))
		goto nomem;
	if (json_object_object_add(o, "downtime_breakdown", bd))
		goto nomem;
	bd = NULL;
	arr = json_object_new_array();
	if (!arr)
		goto nomem;
	for (size_t i = 0; i < st->n_iter; i++) {
		struct json_object *r = sl_iter_record_to_json(&st->iter[i]);

		if (!r || json_object_array_add(arr, r)) {
			json_object_put(r);
			goto nomem;
		}
	}
	if (json_object_object_add(o, "iterations", arr))
		goto nomem;
	*out = o;
	return 0;
nomem:
	json_object_put(arr);
	json_object_put(bd);
	json_object_put(o);
	return -ENOMEM;
}

int sl_stats_from_json(const struct json_object *obj,
		       struct sl_migration_stats *st, struct sl_errbuf *eb)
{
	struct sl_errbuf local;
	struct json_object *v;
	int err;

	if (!eb)
		eb = &local;
	if (!st)
		return -EINVAL;
	sl_stats_exit(st);
	if (!obj || json_object_get_type(obj) != json_type_object)
		return sl_err(eb, -EINVAL, "stats JSON: not an object");
	err = get_fields(obj, st, stats_fields, SL_ARRAY_SIZE(stats_fields),
			 SL_STATS_NAME_MAX, eb);
	if (err)
		goto fail;
	if (json_object_object_get_ex(obj, "downtime_breakdown", &v) && v) {
		if (json_object_get_type(v) != json_type_object) {
			err = sl_err(eb, -EINVAL, "stats JSON: downtime_breakdown is not an object");
			goto fail;
		}
		err = get_fields(v, &st->breakdown, breakdown_fields,
				 SL_ARRAY_SIZE(breakdown_fields), 0, eb);
		if (err)
			goto fail;
	}
	if (json_object_object_get_ex(obj, "iterations", &v) && v) {
		size_t n;

		if (json_object_get_type(v) != json_type_array) {
			err = sl_err(eb, -EINVAL, "stats JSON: iterations is not an array");
			goto fail;
		}
		n = json_object_array_length(v);
		for (size_t i = 0; i < n; i++) {
			struct json_object *r = json_object_array_get_idx(v, i);
			struct sl_iter_record rec = { 0 };

			if (!r || json_object_get_type(r) != json_type_object) {
				err = sl_err(eb, -EINVAL, "stats JSON: iteration %zu is not an object", i);
				goto fail;
			}
			err = get_fields(r, &rec, iter_fields,
					 SL_ARRAY_SIZE(iter_fields), 0, eb);
			if (err)
				goto fail;
			err = sl_stats_add_iter(st, &rec);
			if (err)
				goto fail;
		}
	}
	return 0;
fail:
	sl_stats_exit(st);
	return err;
}
