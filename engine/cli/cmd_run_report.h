/* SPDX-License-Identifier: MIT */
/* cmd_run_report.h — verdict, readable report and JSON of run/send. */
#ifndef SL_CMD_RUN_REPORT_H
#define SL_CMD_RUN_REPORT_H

#include "cmd_run.h"

struct json_object;

/* What the destination process said about itself (sluice receive --json). */
struct run_dest_view {
	bool known;             /* its report was read */
	bool ok;
	bool guest_check;
	bool guest_running;
	uint64_t progress_at_resume, progress_after;
	bool pages_checked, pages_ok;
	unsigned ndevices;
	uint64_t dev_hash[RUN_MAX_DEVICES];
	char why[200];
	char error[SL_ERRMSG_MAX];
};

struct run_verdict {
	bool migrated;
	bool verified;
	bool hash_checked, hash_ok;
	bool guest_checked, guest_ok;
	bool pages_checked, pages_ok;
	bool devices_checked, devices_ok; /* simulated devices' state hashes */
	int exit_code;          /* enum sl_exit */
};

void run_verdict(const struct run_opts *o, const struct run_result *res,
		 const struct run_dest_view *dv, struct run_verdict *v);
void run_print_scenario(FILE *f, const struct run_opts *o, const char *dest);
void run_print_report(FILE *f, const struct run_opts *o, const struct run_result *res,
		      const struct run_dest_view *dv, const struct run_verdict *v);
/* The --json object (caller puts it). */
struct json_object *run_json(const struct run_opts *o, const struct run_result *res,
			     const struct run_dest_view *dv, const struct run_verdict *v);

#endif /* SL_CMD_RUN_REPORT_H */
