/* SPDX-License-Identifier: MIT */
/*
 * qmp.h — a minimal QEMU Machine Protocol client, for driving QEMU's own
 * migration side by side with sluice (`sluice bench qemu`). CLI-only: the
 * library never talks to QEMU.
 */
#ifndef SL_CLI_QMP_H
#define SL_CLI_QMP_H

#include <json-c/json.h>

struct qmp;

/* Connects to a QMP unix socket, retrying until timeout_ms (QEMU may still be
 * starting), reads the greeting and negotiates capabilities. 0 or -errno. */
int qmp_open(const char *path, int timeout_ms, struct qmp **out);
void qmp_close(struct qmp **q);

/* Runs one command (args may be NULL; ownership of args passes to qmp_exec).
 * On success *ret (if non-NULL) receives a new reference to "return".
 * On a QMP error returns -EIO and copies QEMU's error text into err. */
int qmp_exec(struct qmp *q, const char *cmd, json_object *args, json_object **ret,
	     char *err, size_t errlen);

#endif /* SL_CLI_QMP_H */
