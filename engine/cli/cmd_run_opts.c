/* SPDX-License-Identifier: MIT */
/* cmd_run_opts.c — the scenario options shared by run, send and receive. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_run.h"
#include "sl_dirty.h"

const char *run_workload_name(enum run_workload w)
{
	switch (w) {
	case RUN_WL_KVM: return "kvm";
	case RUN_WL_PROC: return "proc";
	case RUN_WL_SYNTHETIC: return "synthetic";
	}
	return "?";
}

static bool kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

void run_opts_default(struct run_opts *o)
{
	struct sl_errbuf eb;

	memset(o, 0, sizeof(*o));
	/* The real thing where the machine allows it: KVM, else a process
	 * tracked by userfaultfd, else the simulated (synthetic) workload. */
	o->workload = kvm_usable() ? RUN_WL_KVM
		: sl_dirty_uffd_probe(&eb) == 0 ? RUN_WL_PROC : RUN_WL_SYNTHETIC;
	o->mem = 512ull << 20;
	o->wss = 256ull << 20;
	snprintf(o->pattern, sizeof(o->pattern), "sequential");
	o->vcpus = 1;
	snprintf(o->dirty_log, sizeof(o->dirty_log), "manual");
	o->channels = 2;
	o->downtime_limit_ns = 300ull * 1000000ull;
	o->policy = SL_POLICY_PREDICTIVE; /* measured: docs/results.md, "Migration" */
	o->stall = SL_STALL_FAIL;
	o->max_iterations = 30;
	o->zc = SL_ZERO_COPY_AUTO;
	o->verify = true;
	o->warmup_ns = 500ull * 1000000ull;
	o->timeout_ns = 10ull * 1000000000ull;
	o->seed = 1;
	o->ready_fd = -1;
}

int run_parse_common(const char *cmd, int c, const char *arg, struct run_opts *o)
{
	uint64_t v;

	switch (c) {
	case 'w':
		if (!strcmp(arg, "kvm"))
			o->workload = RUN_WL_KVM;
		else if (!strcmp(arg, "proc"))
			o->workload = RUN_WL_PROC;
		else if (!strcmp(arg, "synthetic"))
			o->workload = RUN_WL_SYNTHETIC;
		else
			return sl_cli_usage_error(cmd, "--workload %s: expected kvm, proc or synthetic", arg);
		o->workload_set = true;
		return 0;
	case 'm':
		if (sl_cli_parse_size(arg, &o->mem) < 0 || !o->mem)
			return sl_cli_usage_error(cmd, "--mem %s: expected a size like 512M or 2G", arg);
		return 0;
	case 'W':
		if (sl_cli_parse_size(arg, &o->wss) < 0)
			return sl_cli_usage_error(cmd, "--wss %s: expected a size like 256M", arg);
		return 0;
	case 'P':
		if (!strcmp(arg, "seq"))
			arg = "sequential"; /* the short name sluice bench qemu uses */
		if (strcmp(arg, "sequential") && strcmp(arg, "random") && strcmp(arg, "stride") &&
		    strcmp(arg, "uniform") && strcmp(arg, "hotcold") && strcmp(arg, "zipf"))
			return sl_cli_usage_error(cmd, "--pattern %s: expected sequential, random, stride "
					     "(kvm, proc) or uniform, hotcold, zipf (synthetic)", arg);
		snprintf(o->pattern, sizeof(o->pattern), "%s", arg);
		return 0;
	case 'r':
		if (sl_cli_parse_rate(arg, &o->dirty_rate) < 0)
			return sl_cli_usage_error(cmd, "--dirty-rate %s: expected bytes/s like 200M or unlimited", arg);
		return 0;
	case 1001:
		if (sl_cli_parse_uint(arg, 1, 32, &v) < 0)
			return sl_cli_usage_error(cmd, "--vcpus %s: expected 1..32", arg);
		o->vcpus = (unsigned)v;
		return 0;
	case 1002:
		if (strcmp(arg, "manual") && strcmp(arg, "bitmap") && strcmp(arg, "ring"))
			return sl_cli_usage_error(cmd, "--dirty-log %s: expected manual, bitmap or ring", arg);
		snprintf(o->dirty_log, sizeof(o->dirty_log), "%s", arg);
		return 0;
	case 'c':
		if (sl_cli_parse_uint(arg, 1, 64, &v) < 0)
			return sl_cli_usage_error(cmd, "--channels %s: expected 1..64", arg);
		o->channels = (unsigned)v;
		return 0;
	case 'b':
		if (sl_cli_parse_rate(arg, &o->bandwidth) < 0)
			return sl_cli_usage_error(cmd, "--bandwidth %s: expected bytes/s like 1G or unlimited", arg);
		return 0;
	case 'd':
		if (sl_cli_parse_duration(arg, &o->downtime_limit_ns) < 0 || !o->downtime_limit_ns)
			return sl_cli_usage_error(cmd, "--downtime-limit %s: expected a duration like 300ms", arg);
		return 0;
	case 'p':
		if (sl_policy_kind_from_name(arg, &o->policy) < 0 || o->policy == SL_POLICY_CUSTOM)
			return sl_cli_usage_error(cmd, "--policy %s: expected threshold, predictive or ramp", arg);
		return 0;
	case 1003:
		if (sl_stall_action_from_name(arg, &o->stall) < 0)
			return sl_cli_usage_error(cmd, "--stall-action %s: expected fail, continue or throttle", arg);
		return 0;
	case 1004:
		if (sl_cli_parse_uint(arg, 1, 100000, &v) < 0)
			return sl_cli_usage_error(cmd, "--max-iterations %s: expected 1..100000", arg);
		o->max_iterations = (uint32_t)v;
		return 0;
	case 'z':
		if (!strcmp(arg, "auto"))
			o->zc = SL_ZERO_COPY_AUTO;
		else if (!strcmp(arg, "uring") || !strcmp(arg, "send_zc"))
			o->zc = SL_ZERO_COPY_URING;
		else if (!strcmp(arg, "msg") || !strcmp(arg, "msg_zerocopy"))
			o->zc = SL_ZERO_COPY_MSG;
		else if (!strcmp(arg, "off") || !strcmp(arg, "copy"))
			o->zc = SL_ZERO_COPY_OFF;
		else
			return sl_cli_usage_error(cmd, "--zero-copy %s: expected auto, uring, msg or off", arg);
		o->zc_set = true;
		return 0;
	case 1005:
		o->verify = true;
		return 0;
	case 1006:
		o->verify = false;
		return 0;
	case 'j':
		o->json = true;
		return 0;
	case 'q':
		o->quiet = true;
		return 0;
	case 1007:
		if (sl_cli_parse_duration(arg, &o->warmup_ns) < 0)
			return sl_cli_usage_error(cmd, "--warmup %s: expected a duration like 500ms", arg);
		return 0;
	case 1008:
		if (sl_cli_parse_duration(arg, &o->timeout_ns) < 0 || o->timeout_ns < 1000000ull)
			return sl_cli_usage_error(cmd, "--timeout %s: expected a duration >= 1ms like 10s", arg);
		return 0;
	case 1009:
		if (sl_cli_parse_uint(arg, 0, UINT32_MAX, &o->seed) < 0)
			return sl_cli_usage_error(cmd, "--seed %s: expected 0..4294967295", arg);
		return 0;
	case 'k':
		o->psk_file = arg;
		return 0;
	case 1010:
		if (o->ndevices == RUN_MAX_DEVICES)
			return sl_cli_usage_error(cmd, "--device: at most %d devices", RUN_MAX_DEVICES);
		o->devices[o->ndevices++] = arg;
		return 0;
	default:
		return 1;
	}
}

int run_opts_check(const char *cmd, struct run_opts *o)
{
	const uint64_t mib2 = 2ull << 20;

	if (o->workload == RUN_WL_KVM) {
		if (o->mem % mib2 || o->mem < (8ull << 20))
			return sl_cli_usage_error(cmd, "--mem: the kvm guest needs a multiple of 2 MiB, >= 8 MiB");
		if (o->mem > (4ull << 30))
			return sl_cli_usage_error(cmd, "--mem: the kvm guest is 32-bit; at most 4G");
		if (o->wss + mib2 > o->mem)
			return sl_cli_usage_error(cmd, "--wss: the working set (from 2 MiB on) must fit in --mem");
		if (!strcmp(o->pattern, "uniform") || !strcmp(o->pattern, "hotcold") || !strcmp(o->pattern, "zipf"))
			return sl_cli_usage_error(cmd, "--pattern %s is for the synthetic workload", o->pattern);
	} else {
		if (o->mem % 4096)
			return sl_cli_usage_error(cmd, "--mem must be a multiple of 4 KiB");
		if (o->wss > o->mem)
			return sl_cli_usage_error(cmd, "--wss must not exceed --mem");
	}
	if (o->workload == RUN_WL_PROC && (!strcmp(o->pattern, "uniform") || !strcmp(o->pattern, "hotcold") ||
					   !strcmp(o->pattern, "zipf")))
		return sl_cli_usage_error(cmd, "--pattern %s is for the synthetic workload", o->pattern);
	if (o->workload == RUN_WL_SYNTHETIC && (!strcmp(o->pattern, "random") || !strcmp(o->pattern, "stride")))
		return sl_cli_usage_error(cmd, "--pattern %s: the synthetic workload takes sequential, uniform, hotcold or zipf",
				     o->pattern);
	return 0;
}

void run_print_common_help(FILE *f)
{
	fprintf(f,
		"workload:\n"
		"  --workload kvm|proc|synthetic  what runs and is migrated (default: kvm where /dev/kvm\n"
		"                        works, else proc where userfaultfd-WP works, else synthetic)\n"
		"  --mem SIZE            guest RAM (default 512M)\n"
		"  --wss SIZE            working set the workload rewrites (default 256M)\n"
		"  --pattern NAME        sequential|random|stride (kvm, proc); sequential|uniform|hotcold|zipf (synthetic)\n"
		"  --dirty-rate RATE     bytes/s the workload writes (default unlimited; synthetic: 256M)\n"
		"  --vcpus N             kvm vCPUs (default 1)\n"
		"  --dirty-log MODE      kvm dirty log: manual (bitmap + CLEAR, default), bitmap, ring\n"
		"  --warmup DURATION     let the workload run before migrating (default 500ms)\n"
		"  --seed N              workload seed (default 1)\n"
		"  --device SPEC         add a migration device (repeatable), e.g. SIMULATED\n"
		"                        sim:state=64M,precopy=32M,dirty-rate=8M/s or vfio:/dev/vfio/devices/vfio0\n"
		"migration:\n"
		"  --channels N          TCP channels (default 2)\n"
		"  --bandwidth RATE      cap, bytes/s (default unlimited)\n"
		"  --downtime-limit D    e.g. 300ms (default)\n"
		"  --policy NAME         predictive (default), threshold (QEMU's rule), ramp\n"
		"  --stall-action A      fail (default), continue, throttle\n"
		"  --max-iterations N    give up (with advice) after N iterations (default 30)\n"
		"  --zero-copy MODE      auto, uring, msg, off (default: auto; run: off, see docs/cli.md)\n"
		"  --timeout D           peer silence limit (default 10s)\n"
		"  --psk-file PATH       pre-shared key file (its bytes are the key)\n"
		"output:\n"
		"  --verify / --no-verify  compare destination memory with the source's at stop (default on)\n"
		"  --json                one JSON object on stdout\n"
		"  --quiet               no progress line\n"
		"  --help\n");
}

int run_read_psk(const char *path, uint8_t *key, size_t cap, size_t *len, struct sl_errbuf *eb)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return sl_err(eb, -errno, "cannot open key file %s: %s", path, strerror(errno));
	n = read(fd, key, cap);
	close(fd);
	if (n < 0)
		return sl_err(eb, -errno, "cannot read key file %s: %s", path, strerror(errno));
	while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r'))
		n--;
	if (n == 0)
		return sl_err(eb, -EINVAL, "key file %s is empty", path);
	*len = (size_t)n;
	return 0;
}

void run_log(void *ctx, enum sl_log_level lvl, const char *msg)
{
	static int level = -1;

	(void)ctx;
	if (level < 0) {
		const char *e = getenv("SLUICE_LOG");

		level = !e ? 0 : !strcmp(e, "debug") ? SL_LOG_DEBUG
			: !strcmp(e, "info") ? SL_LOG_INFO : !strcmp(e, "warning") ? SL_LOG_WARNING : 0;
	}
	if ((int)lvl <= level)
		fprintf(stderr, "sluice: %s\n", msg);
}
