/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * idmap.h - a map from 64-bit ids to pointers (open addressing).
 *
 * Modules refer to each other's objects by id (session 12, job 7), never by
 * pointer, so an object that went away is simply "not found" instead of a
 * dangling pointer. Id 0 is reserved and never stored.
 */
#ifndef CTLD_IDMAP_H
#define CTLD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
	uint64_t *keys; /* 0 = empty, UINT64_MAX = deleted */
	void **values;
	size_t cap;     /* power of two */
	size_t count;   /* live entries */
	size_t used;    /* live + deleted slots */
};

void idmap_init(struct idmap *m);
void idmap_free(struct idmap *m);
/* Inserts or replaces. 0 or -ENOMEM / -EINVAL (id 0 or UINT64_MAX). */
int idmap_put(struct idmap *m, uint64_t id, void *value);
void *idmap_get(const struct idmap *m, uint64_t id);
/* Removes and returns the value, or NULL. */
void *idmap_del(struct idmap *m, uint64_t id);

/* Iteration: for (size_t it = 0; idmap_next(m, &it, &id, &val);) ...
 * Deleting the current entry during iteration is allowed. */
int idmap_next(const struct idmap *m, size_t *it, uint64_t *id, void **value);

#endif
