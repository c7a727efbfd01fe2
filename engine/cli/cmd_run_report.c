/* SPDX-License-Identifier: MIT */
/* cmd_run_report.c — the readable report and the JSON object of run/send. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "cmd_run_report.h"

static const char *policy_name(enum sl_policy_kind k)
{
	const char *n = sl_policy_kind_name(k);

	return n ? n : "?";
}

static const char *zc_name(enum sl_zero_copy z)
{
	switch (z) {
	case SL_ZERO_COPY_URING: return "uring";
	case SL_ZERO_COPY_MSG: return "msg";
	case SL_ZERO_COPY_OFF: return "off";
	default: return "auto";
	}
}

void run_print_scenario(FILE *f, const struct run_opts *o, const char *dest)
{
	char mem[32], wss[32], bw[32];

	fprintf(f, "sluice %s: %s workload, %s RAM, %s working set (%s), %u channel%s, bandwidth %s%s, "
		   "policy %s, downtime limit %.0f ms, zero-copy %s\n",
		dest, run_workload_name(o->workload), sl_cli_fmt_bytes(o->mem, mem, sizeof(mem)),
		sl_cli_fmt_bytes(o->wss, wss, sizeof(wss)), o->pattern, o->channels,
		o->channels == 1 ? "" : "s",
		o->bandwidth ? sl_cli_fmt_bytes(o->bandwidth, bw, sizeof(bw)) : "unlimited",
		o->bandwidth ? "/s" : "",
		policy_name(o->policy), (double)o->downtime_limit_ns / 1e6, zc_name(o->zc));
	if (o->netns) {
		char lr[32];

		fprintf(f, "  network: two namespaces joined by a veth pair%s%s%s\n",
			o->link_rate ? ", tc tbf " : "",
			o->link_rate ? sl_cli_fmt_bytes(o->link_rate, lr, sizeof(lr)) : "",
			o->link_rate ? "/s" : "");
	}
}

void run_verdict(const struct run_opts *o, const struct run_result *res,
		 const struct run_dest_view *dv, struct run_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (res->err) {
		v->exit_code = SL_EXIT_FAILED;
		return;
	}
	v->migrated = true;
	if (!o->verify) {
		v->exit_code = SL_EXIT_OK;
		return;
	}
	v->hash_checked = res->dest.has_hash;
	v->hash_ok = res->dest.has_hash && res->dest.ram_hash == res->source_hash;
	v->guest_checked = dv && dv->known && dv->guest_check;
	v->guest_ok = v->guest_checked && dv->guest_running;
	v->pages_checked = dv && dv->known && dv->pages_checked;
	v->pages_ok = v->pages_checked && dv->pages_ok;
	/* Simulated devices: their state hash on both ends (real devices
	 * report 0 and are checked by the driver when RESUMING ends). */
	if (dv && dv->known && res->ndevices) {
		v->devices_checked = false;
		v->devices_ok = dv->ndevices == res->ndevices;
		for (unsigned i = 0; i < res->ndevices && i < dv->ndevices; i++) {
			if (!res->dev_hash[i])
				continue;
			v->devices_checked = true;
			if (res->dev_hash[i] != dv->dev_hash[i])
				v->devices_ok = false;
		}
	}
	v->verified = v->hash_ok && (!v->guest_checked || v->guest_ok) && (!v->pages_checked || v->pages_ok) &&
		      (!v->devices_checked || v->devices_ok);
	v->exit_code = v->verified ? SL_EXIT_OK : SL_EXIT_VERIFY;
}

/* One device's verdict: migrated, and (simulated devices) the same state
 * hash on both ends; a real device's driver validated the stream when it
 * left RESUMING, which the migration's success already implies. */
static bool device_verified(const struct run_result *res, const struct run_dest_view *dv,
			    const struct run_verdict *v, unsigned i)
{
	if (!v->migrated)
		return false;
	if (!res->dev_hash[i])
		return true;
	return dv && dv->known && i < dv->ndevices && dv->dev_hash[i] == res->dev_hash[i];
}


void run_print_report(FILE *f, const struct run_opts *o, const struct run_result *res,
		      const struct run_dest_view *dv, const struct run_verdict *v)
{
	if (res->stats.n_iter || !res->err)
		sl_stats_report(f, &res->stats);
	if (res->throttle_calls)
		fprintf(f, "  guest throttled  %u time%s, last to %u %% of its write rate taken away\n",
			res->throttle_calls, res->throttle_calls == 1 ? "" : "s", res->throttle_pct);
	if (res->err) {
		fprintf(f, "\nresult: migration FAILED: %s\n", res->msg);
		fprintf(f, "source: %s\n", res->source_running_after_failure
			? "the VM is running on the source (nothing lost)"
			: "the VM is NOT making progress on the source");
		return;
	}
	if (!o->verify) {
		fprintf(f, "\nresult: migrated (verification off)\n");
		return;
	}
	fprintf(f, "\nverification:\n");
	if (v->hash_checked)
		fprintf(f, "  memory hash    destination %016llx, source at stop %016llx: %s\n",
			(unsigned long long)res->dest.ram_hash, (unsigned long long)res->source_hash,
			v->hash_ok ? "equal" : "DIFFERENT");
	else
		fprintf(f, "  memory hash    the destination sent no hash: NOT verified\n");
	if (v->guest_checked)
		fprintf(f, "  guest running  pass counter %llu at resume -> %llu: %s\n",
			(unsigned long long)dv->progress_at_resume, (unsigned long long)dv->progress_after,
			v->guest_ok ? "advancing on the destination" : "NOT advancing");
	if (v->pages_checked)
		fprintf(f, "  page records   %s\n", v->pages_ok ? "consistent" : "INCONSISTENT");
	if (v->devices_checked)
		fprintf(f, "  device state   %u device%s: %s\n", res->ndevices, res->ndevices == 1 ? "" : "s",
			v->devices_ok ? "state hashes equal" : "state hashes DIFFERENT");
	for (unsigned i = 0; i < res->ndevices && i < o->ndevices; i++)
		fprintf(f, "  device %-6u  %s: precopy %.1f MiB, stop-copy %.1f MiB, %s\n", i, o->devices[i],
			(double)res->dev_precopy[i] / 1048576.0, (double)res->dev_stopcopy[i] / 1048576.0,
			device_verified(res, dv, v, i) ? "verified" : "NOT verified");
	if (dv && dv->why[0])
		fprintf(f, "  problem        %s\n", dv->why);
	fprintf(f, "\nresult: %s\n", v->verified ? "migrated and verified" : "migrated, verification FAILED");
}

static struct json_object *devices_json(const struct run_opts *o, const struct run_result *res,
					const struct run_dest_view *dv, const struct run_verdict *v)
{
	struct json_object *arr = json_object_new_array();

	for (unsigned i = 0; i < o->ndevices; i++) {
		struct json_object *d = json_object_new_object();
		bool known = i < res->ndevices;

		json_object_object_add(d, "id", json_object_new_int((int)i));
		json_object_object_add(d, "spec", json_object_new_string(o->devices[i]));
		json_object_object_add(d, "bytes_precopy",
				       json_object_new_int64(known ? (int64_t)res->dev_precopy[i] : 0));
		json_object_object_add(d, "bytes_stopcopy",
				       json_object_new_int64(known ? (int64_t)res->dev_stopcopy[i] : 0));
		json_object_object_add(d, "verified",
				       json_object_new_boolean(o->verify && known && device_verified(res, dv, v, i)));
		json_object_array_add(arr, d);
	}
	return arr;
}

struct json_object *run_json(const struct run_opts *o, const struct run_result *res,
			     const struct run_dest_view *dv, const struct run_verdict *v)
{
	struct json_object *j = NULL, *ver;
	char hash[24];

	if (sl_stats_to_json(&res->stats, &j) < 0 || !j)
		j = json_object_new_object();
	if (!j)
		return NULL;
	json_object_object_add(j, "workload", json_object_new_string(run_workload_name(o->workload)));
	json_object_object_add(j, "verified", json_object_new_boolean(v->verified));
	json_object_object_add(j, "migrated", json_object_new_boolean(v->migrated));
	json_object_object_add(j, "error", json_object_new_string(res->err ? res->msg : ""));
	json_object_object_add(j, "exit_code", json_object_new_int(v->exit_code));
	json_object_object_add(j, "mem_bytes", json_object_new_int64((int64_t)o->mem));
	json_object_object_add(j, "wss_bytes", json_object_new_int64((int64_t)o->wss));
	json_object_object_add(j, "pattern", json_object_new_string(o->pattern));
	json_object_object_add(j, "dirty_rate_bps", json_object_new_int64((int64_t)o->dirty_rate));
	json_object_object_add(j, "netns", json_object_new_boolean(o->netns));
	json_object_object_add(j, "throttle_calls", json_object_new_int((int)res->throttle_calls));
	json_object_object_add(j, "throttle_pct", json_object_new_int((int)res->throttle_pct));
	json_object_object_add(j, "link_rate_bps", json_object_new_int64((int64_t)o->link_rate));
	if (res->err)
		json_object_object_add(j, "source_running",
				       json_object_new_boolean(res->source_running_after_failure));
	ver = json_object_new_object();
	json_object_object_add(ver, "enabled", json_object_new_boolean(o->verify));
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)res->source_hash);
	json_object_object_add(ver, "source_hash", json_object_new_string(hash));
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)res->dest.ram_hash);
	json_object_object_add(ver, "dest_hash", json_object_new_string(hash));
	json_object_object_add(ver, "hash_equal", json_object_new_boolean(v->hash_ok));
	json_object_object_add(ver, "guest_checked", json_object_new_boolean(v->guest_checked));
	json_object_object_add(ver, "guest_running", json_object_new_boolean(v->guest_ok));
	if (dv && dv->known) {
		json_object_object_add(ver, "progress_at_resume", json_object_new_int64((int64_t)dv->progress_at_resume));
		json_object_object_add(ver, "progress_after", json_object_new_int64((int64_t)dv->progress_after));
	}
	json_object_object_add(ver, "pages_checked", json_object_new_boolean(v->pages_checked));
	json_object_object_add(ver, "pages_ok", json_object_new_boolean(v->pages_ok));
	json_object_object_add(ver, "devices_checked", json_object_new_boolean(v->devices_checked));
	json_object_object_add(ver, "devices_ok", json_object_new_boolean(v->devices_ok));
	json_object_object_add(j, "devices", devices_json(o, res, dv, v));
	json_object_object_add(ver, "dest_hash_ms", json_object_new_double((double)res->dest.hash_ns / 1e6));
	json_object_object_add(ver, "why", json_object_new_string(dv && dv->why[0] ? dv->why : ""));
	json_object_object_add(j, "verification", ver);
	return j;
}
