/* SPDX-License-Identifier: MIT */
/* stats.c — the migration stats struct's lifetime and its iteration array. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sl_stats.h"

void sl_stats_init(struct sl_migration_stats *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
}

void sl_stats_exit(struct sl_migration_stats *st)
{
	if (!st)
		return;
	free(st->iter);
	sl_stats_init(st);
}

int sl_stats_add_iter(struct sl_migration_stats *st,
		      const struct sl_iter_record *rec)
{
	if (!st || !rec)
		return -EINVAL;
	if (st->n_iter == st->cap_iter) {
		size_t cap = st->cap_iter ? st->cap_iter * 2 : 16;
		struct sl_iter_record *n = realloc(st->iter, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		st->iter = n;
		st->cap_iter = cap;
	}
	st->iter[st->n_iter++] = *rec;
	st->iterations = (uint32_t)st->n_iter;
	return 0;
}

int sl_stats_copy(struct sl_migration_stats *dst,
		  const struct sl_migration_stats *src)
{
	struct sl_iter_record *it = NULL;

	if (!dst || !src || dst == src)
		return -EINVAL;
	if (src->n_iter) {
		it = malloc(src->n_iter * sizeof(*it));
		if (!it) {
			sl_stats_exit(dst);
			return -ENOMEM;
		}
		memcpy(it, src->iter, src->n_iter * sizeof(*it));
	}
	free(dst->iter);
	*dst = *src;
	dst->size = sizeof(*dst);
	dst->iter = it;
	dst->cap_iter = src->n_iter;
	return 0;
}
