// SPDX-License-Identifier: BSD-2-Clause
/*
 * idmap.c - open-addressing hash from uint64 ids to pointers, linear probing,
 * tombstones on delete, resized at 70% load. Small and predictable.
 */
#include <errno.h>
#include <stdlib.h>

#include "daemon/core/idmap.h"

#define EMPTY 0
#define DELETED UINT64_MAX

static size_t slot_of(uint64_t id, size_t cap)
{
	/* splitmix64 finaliser: sequential ids spread over the table */
	id ^= id >> 30;
	id *= 0xbf58476d1ce4e5b9ULL;
	id ^= id >> 27;
	id *= 0x94d049bb133111ebULL;
	id ^= id >> 31;
	return (size_t)id & (cap - 1);
}

void idmap_init(struct idmap *m)
{
	*m = (struct idmap){ 0 };
}

void idmap_free(struct idmap *m)
{
	free(m->keys);
	free(m->values);
	idmap_init(m);
}

static int rehash(struct idmap *m, size_t cap)
{
	struct idmap bigger = { .cap = cap };

	bigger.keys = calloc(cap, sizeof(*bigger.keys));
	bigger.values = calloc(cap, sizeof(*bigger.values));
	if (!bigger.keys || !bigger.values) {
		free(bigger.keys);
		free(bigger.values);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++) {
		size_t s;

		if (m->keys[i] == EMPTY || m->keys[i] == DELETED)
			continue;
		s = slot_of(m->keys[i], cap);
		while (bigger.keys[s] != EMPTY)
			s = (s + 1) & (cap - 1);
		bigger.keys[s] = m->keys[i];
		bigger.values[s] = m->values[i];
		bigger.count++;
	}
	bigger.used = bigger.count;
	free(m->keys);
	free(m->values);
	*m = bigger;
	return 0;
}

static size_t find_slot(const struct idmap *m, uint64_t id)
{
	size_t s = slot_of(id, m->cap);

	while (m->keys[s] != EMPTY) {
		if (m->keys[s] == id)
			return s;
		s = (s + 1) & (m->cap - 1);
	}
	return SIZE_MAX;
}

int idmap_put(struct idmap *m, uint64_t id, void *value)
{
	size_t s, tomb = SIZE_MAX;
	int err;

	if (id == EMPTY || id == DELETED)
		return -EINVAL;
	if ((m->used + 1) * 10 >= m->cap * 7) {
		size_t cap = m->cap ? m->cap : 16;

		while ((m->count + 1) * 10 >= cap * 5)
			cap *= 2;
		if ((err = rehash(m, cap)))
			return err;
	}
	s = slot_of(id, m->cap);
	while (m->keys[s] != EMPTY) {
		if (m->keys[s] == id) {
			m->values[s] = value;
			return 0;
		}
		if (m->keys[s] == DELETED && tomb == SIZE_MAX)
			tomb = s;
		s = (s + 1) & (m->cap - 1);
	}
	if (tomb != SIZE_MAX)
		s = tomb;
	else
		m->used++;
	m->keys[s] = id;
	m->values[s] = value;
	m->count++;
	return 0;
}

void *idmap_get(const struct idmap *m, uint64_t id)
{
	size_t s;

	if (!m->cap || id == EMPTY || id == DELETED)
		return NULL;
	s = find_slot(m, id);
	return s == SIZE_MAX ? NULL : m->values[s];
}

void *idmap_del(struct idmap *m, uint64_t id)
{
	size_t s;
	void *value;

	if (!m->cap || id == EMPTY || id == DELETED)
		return NULL;
	s = find_slot(m, id);
	if (s == SIZE_MAX)
		return NULL;
	value = m->values[s];
	m->keys[s] = DELETED;
	m->values[s] = NULL;
	m->count--;
	return value;
}

int idmap_next(const struct idmap *m, size_t *it, uint64_t *id, void **value)
{
	while (*it < m->cap) {
		size_t s = (*it)++;

		if (m->keys[s] != EMPTY && m->keys[s] != DELETED) {
			*id = m->keys[s];
			*value = m->values[s];
			return 1;
		}
	}
	return 0;
}
