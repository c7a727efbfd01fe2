/* SPDX-License-Identifier: MIT */
/* e2e_util.c — run the sluice binary and read its report. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "e2e_util.h"
#include "sl_dirty.h"

const char *e2e_sluice(void)
{
	static char path[1024];
	const char *b = getenv("SL_BUILD_DIR");

	snprintf(path, sizeof(path), "%s/engine/sluice", b ? b : "build");
	return path;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int e2e_exec(const char *const *args, int timeout_s, struct e2e_run *r)
{
	const char *argv[64];
	int out[2], err[2], n = 0, status = 0;
	size_t got_out = 0, got_err = 0;
	uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000;
	pid_t pid;

	e2e_run_release(r); /* a previous test may have failed before releasing */
	memset(r, 0, sizeof(*r));
	argv[n++] = "sluice";
	for (; args[n - 1] && n < 63; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(e2e_sluice(), (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	/* poll() ignores negative fds, so a closed pipe just drops out. */
	while (out[0] >= 0 || err[0] >= 0) {
		struct pollfd p[2] = { { .fd = out[0], .events = POLLIN }, { .fd = err[0], .events = POLLIN } };
		int left = (int)(deadline > now_ms() ? deadline - now_ms() : 0);

		if (left == 0 || poll(p, 2, left) <= 0) {
			kill(pid, SIGKILL);
			fprintf(stderr, "e2e: sluice timed out after %d s\n", timeout_s);
			break;
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &err[0] : &out[0];
			char *buf = i ? r->err : r->out;
			size_t *got = i ? &got_err : &got_out;
			size_t cap = i ? sizeof(r->err) : sizeof(r->out);
			ssize_t k;

			if (*fd < 0 || !p[i].revents)
				continue;
			k = *got + 1 < cap ? read(*fd, buf + *got, cap - 1 - *got) : 0;
			if (k <= 0) {
				close(*fd);
				*fd = -1;
			} else {
				*got += (size_t)k;
			}
		}
	}
	if (out[0] >= 0)
		close(out[0]);
	if (err[0] >= 0)
		close(err[0]);
	waitpid(pid, &status, 0);
	r->out[got_out] = 0;
	r->err[got_err] = 0;
	r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->json = json_tokener_parse(r->out);
	if (r->exit_code != 0)
		fprintf(stderr, "e2e: sluice exited %d; stderr:\n%s\n", r->exit_code, r->err);
	return 0;
}

void e2e_run_release(struct e2e_run *r)
{
	if (r->json)
		json_object_put(r->json);
	r->json = NULL;
}

int e2e_group_setup(void **state)
{
	static struct e2e_run group_run;

	*state = &group_run;
	return 0;
}

int e2e_group_teardown(void **state)
{
	if (state && *state)
		e2e_run_release(*state);
	return 0;
}

static struct json_object *walk(const struct e2e_run *r, const char *path)
{
	struct json_object *o = r->json;
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok && o; tok = strtok_r(NULL, ".", &save)) {
		struct json_object *n = NULL;

		if (json_object_is_type(o, json_type_array)) {
			/* "iterations.0.sent_bytes": a number indexes an array */
			n = json_object_array_get_idx(o, (size_t)strtoul(tok, NULL, 10));
			if (!n)
				return NULL;
		} else if (!json_object_object_get_ex(o, tok, &n)) {
			return NULL;
		}
		o = n;
	}
	return o;
}

bool e2e_has(const struct e2e_run *r, const char *path)
{
	return walk(r, path) != NULL;
}

bool e2e_bool(const struct e2e_run *r, const char *path)
{
	struct json_object *o = walk(r, path);

	return o && json_object_get_boolean(o);
}

int64_t e2e_int(const struct e2e_run *r, const char *path)
{
	struct json_object *o = walk(r, path);

	return o ? json_object_get_int64(o) : -1;
}

double e2e_double(const struct e2e_run *r, const char *path)
{
	struct json_object *o = walk(r, path);

	return o ? json_object_get_double(o) : -1.0;
}

const char *e2e_str(const struct e2e_run *r, const char *path)
{
	struct json_object *o = walk(r, path);

	return o ? json_object_get_string(o) : "";
}

size_t e2e_array_len(const struct e2e_run *r, const char *path)
{
	struct json_object *o = walk(r, path);

	return o && json_object_is_type(o, json_type_array) ? json_object_array_length(o) : 0;
}

bool e2e_have_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

bool e2e_have_uffd(void)
{
	struct sl_errbuf eb;

	return sl_dirty_uffd_probe(&eb) == 0;
}

/* The checks every verified KVM migration must pass. */
void e2e_check_kvm_verified(struct e2e_run *r, int channels)
{
	assert_int_equal(r->exit_code, 0);
	assert_non_null(r->json);
	assert_string_equal(e2e_str(r, "workload"), "kvm");
	assert_true(e2e_bool(r, "verified"));
	assert_string_equal(e2e_str(r, "outcome"), "completed");
	assert_true(e2e_bool(r, "verification.hash_equal"));
	assert_string_equal(e2e_str(r, "verification.source_hash"), e2e_str(r, "verification.dest_hash"));
	assert_true(e2e_bool(r, "verification.guest_checked"));
	assert_true(e2e_bool(r, "verification.guest_running"));
	assert_true(e2e_int(r, "verification.progress_after") > e2e_int(r, "verification.progress_at_resume"));
	assert_true(e2e_bool(r, "verification.pages_checked"));
	assert_true(e2e_bool(r, "verification.pages_ok"));
	assert_int_equal(e2e_int(r, "channels"), channels);
	assert_true(e2e_array_len(r, "iterations") >= 1);
	assert_int_equal((int64_t)e2e_array_len(r, "iterations"), e2e_int(r, "iteration_count"));
	assert_true(e2e_double(r, "downtime_ms") > 0);
	assert_true(e2e_double(r, "e2e_downtime_ms") >= e2e_double(r, "downtime_ms") * 0.99);
	assert_true(e2e_double(r, "total_ms") > e2e_double(r, "downtime_ms"));
	/* Everything sent at least once: the guest's RAM (zero pages as ZERO). */
	assert_true(e2e_int(r, "transferred_bytes") + e2e_int(r, "zero_pages") * 4096 >= 64ll << 20);
}

