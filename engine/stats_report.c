/* SPDX-License-Identifier: MIT */
/*
 * stats_report.c — the readable report: iteration table, downtime
 * breakdown, totals. Writes only to the caller's stream.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "sl_stats.h"

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

/* Rates in MB/s (10^6, as link speeds are quoted). */
static double mbs(uint64_t bps)
{
	return (double)bps / 1e6;
}

int sl_stats_report_iterations(FILE *f, const struct sl_iter_record *r, size_t n)
{
	if (!f || (n && !r))
		return -EINVAL;
	fprintf(f, "%4s %10s %10s %9s %8s %8s %8s %9s %10s %10s %10s %9s\n",
		"iter", "dirty MiB", "sent MiB", "zero pg", "sync ms", "scan ms",
		"send ms", "total ms", "bw MB/s", "dirty MB/s", "pend MiB",
		"pred ms");
	for (size_t i = 0; i < n; i++) {
		const struct sl_iter_record *x = &r[i];

		fprintf(f, "%4" PRIu32 " %10.2f %10.2f %9" PRIu64
			" %8.2f %8.2f %8.2f %9.2f %10.1f %10.1f %10.2f %9.2f\n",
			x->index, mib(x->dirty_bytes), mib(x->sent_bytes),
			x->zero_pages, ms(x->sync_ns), ms(x->scan_ns),
			ms(x->send_ns), ms(x->duration_ns), mbs(x->bandwidth_bps),
			mbs(x->dirty_rate_bps),
			mib(x->pending_bytes + x->device_pending_bytes),
			ms(x->predicted_downtime_ns));
	}
	return ferror(f) ? -EIO : 0;
}

int sl_stats_report(FILE *f, const struct sl_migration_stats *st)
{
	const struct sl_downtime_breakdown *b;
	int err;

	if (!f || !st)
		return -EINVAL;
	b = &st->breakdown;
	fprintf(f, "Iterations (%" PRIu32 "):\n", st->iterations);
	err = sl_stats_report_iterations(f, st->iter, st->n_iter);
	if (err)
		return err;
	fprintf(f, "\nDowntime: %.2f ms at the source (stop -> COMPLETE sent), "
		"%.2f ms end to end (stop -> RESUMED)\n",
		ms(st->downtime_ns), ms(st->e2e_downtime_ns));
	fprintf(f, "  final sync    %9.2f ms\n", ms(b->final_sync_ns));
	fprintf(f, "  final RAM     %9.2f ms\n", ms(b->final_ram_ns));
	fprintf(f, "  devices       %9.2f ms\n", ms(b->device_ns));
	fprintf(f, "  CPU/config    %9.2f ms\n", ms(b->state_ns));
	fprintf(f, "  dest load     %9.2f ms\n", ms(b->dest_load_ns));
	fprintf(f, "  resume        %9.2f ms\n", ms(b->resume_ns));
	fprintf(f, "\nTotals:\n");
	fprintf(f, "  outcome            %s\n", st->outcome[0] ? st->outcome : "-");
	fprintf(f, "  policy             %s, downtime limit %.1f ms\n",
		st->policy[0] ? st->policy : "-", ms(st->downtime_limit_ns));
	fprintf(f, "  channels           %" PRIu32 " (%s)\n", st->channels,
		st->zero_copy_mode[0] ? st->zero_copy_mode : "-");
	if (st->bandwidth_limit_bps)
		fprintf(f, "  bandwidth limit    %.1f MB/s\n", mbs(st->bandwidth_limit_bps));
	fprintf(f, "  setup time         %.2f ms\n", ms(st->setup_ns));
	fprintf(f, "  total time         %.2f ms\n", ms(st->total_ns));
	fprintf(f, "  RAM                %.2f MiB, remaining %.2f MiB\n",
		mib(st->total_bytes), mib(st->remaining_bytes));
	fprintf(f, "  transferred        %.2f MiB (precopy %.2f, downtime %.2f, devices %.2f)\n",
		mib(st->transferred_bytes), mib(st->precopy_bytes),
		mib(st->downtime_bytes), mib(st->device_bytes));
	fprintf(f, "  kernel copied      %.2f MiB\n", mib(st->kernel_copied_bytes));
	fprintf(f, "  pages              %" PRIu64 " normal, %" PRIu64 " zero (page %" PRIu64 " B)\n",
		st->normal_pages, st->zero_pages, st->page_size);
	fprintf(f, "  throughput         %.1f MB/s\n", mbs(st->throughput_bps));
	fprintf(f, "  dirty pages rate   %" PRIu64 " pages/s\n", st->dirty_pages_rate);
	fprintf(f, "  dirty syncs        %" PRIu64 "\n", st->dirty_sync_count);
	return ferror(f) ? -EIO : 0;
}
