/* SPDX-License-Identifier: MIT */
/*
 * e2e_util.h — runs the real `sluice` binary (build/engine/sluice) as a
 * separate process, captures its stdout, and reads its --json report.
 */
#ifndef SL_E2E_UTIL_H
#define SL_E2E_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

struct e2e_run {
	int exit_code;            /* exit status, or 128 + signal */
	char out[1 << 18];        /* stdout */
	char err[1 << 14];        /* stderr */
	struct json_object *json; /* parsed stdout (NULL if it is not JSON) */
};

/* Path of the sluice binary (from SL_BUILD_DIR). */
const char *e2e_sluice(void);

/* Runs sluice with argv (NULL-terminated, without the program name),
 * killing it after timeout_s. Returns 0 or -errno (could not run). */
int e2e_exec(const char *const *args, int timeout_s, struct e2e_run *r);
void e2e_run_release(struct e2e_run *r);
/* cmocka group setup: *state = one struct e2e_run shared by the group's tests. */
int e2e_group_setup(void **state);
/* cmocka group teardown: releases the struct e2e_run in *state, so a test
 * that failed before its own release leaks nothing. */
int e2e_group_teardown(void **state);

/* JSON accessors on r->json (path "a.b.0.c" walks objects and arrays). */
bool e2e_bool(const struct e2e_run *r, const char *path);
int64_t e2e_int(const struct e2e_run *r, const char *path);
double e2e_double(const struct e2e_run *r, const char *path);
const char *e2e_str(const struct e2e_run *r, const char *path);
size_t e2e_array_len(const struct e2e_run *r, const char *path);
bool e2e_has(const struct e2e_run *r, const char *path);

/* cmocka assertions of a verified kvm run with `channels` channels: exit 0,
 * hashes equal, guest running on, page records consistent, JSON shape. */
void e2e_check_kvm_verified(struct e2e_run *r, int channels);

/* True when /dev/kvm can be opened (else tests exit 77). */
bool e2e_have_kvm(void);
/* True when userfaultfd WP_ASYNC + PAGEMAP_SCAN work (the proc workload). */
bool e2e_have_uffd(void);

#endif /* SL_E2E_UTIL_H */
