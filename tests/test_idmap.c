// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_idmap.c - the id -> pointer hash every module uses to refer to
 * sessions, jobs and watches: basic operations, the reserved ids, growth,
 * tombstones, and iteration with deletion (how sessions and jobs are torn
 * down).
 */
// TEST_SRCS: user/daemon/core/idmap.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/core/idmap.h"

#define VAL(id) ((void *)(uintptr_t)((id) * 16 + 8))

static int map_setup(void **state)
{
	struct idmap *m = malloc(sizeof(*m));

	if (!m)
		return -1;
	idmap_init(m);
	*state = m;
	return 0;
}

static int map_teardown(void **state)
{
	idmap_free(*state);
	free(*state);
	return 0;
}

/* Live entries counted by walking the table, to cross-check m->count. */
static size_t walk_count(const struct idmap *m)
{
	uint64_t id;
	void *val;
	size_t n = 0;

	for (size_t it = 0; idmap_next(m, &it, &id, &val);) {
		assert_ptr_equal(val, VAL(id));
		n++;
	}
	return n;
}

/* An empty map answers every lookup with NULL without having a table yet. */
static void idmap_empty(void **state)
{
	struct idmap *m = *state;
	size_t it = 0;
	uint64_t id;
	void *val;

	assert_null(idmap_get(m, 1));
	assert_null(idmap_del(m, 1));
	assert_int_equal(idmap_next(m, &it, &id, &val), 0);
	assert_int_equal(m->count, 0);
}

/* put/get/del do what they say, and del returns the value it removed. */
static void idmap_put_get_del(void **state)
{
	struct idmap *m = *state;

	assert_int_equal(idmap_put(m, 7, VAL(7)), 0);
	assert_int_equal(idmap_put(m, 9, VAL(9)), 0);
	assert_int_equal(m->count, 2);
	assert_ptr_equal(idmap_get(m, 7), VAL(7));
	assert_ptr_equal(idmap_get(m, 9), VAL(9));
	assert_null(idmap_get(m, 8));
	assert_ptr_equal(idmap_del(m, 7), VAL(7));
	assert_null(idmap_get(m, 7));
	assert_null(idmap_del(m, 7));
	assert_ptr_equal(idmap_get(m, 9), VAL(9));
	assert_int_equal(m->count, 1);
}

/* Putting an existing id replaces its value without adding an entry. */
static void idmap_replace(void **state)
{
	struct idmap *m = *state;
	int other;

	assert_int_equal(idmap_put(m, 42, VAL(42)), 0);
	assert_int_equal(idmap_put(m, 42, &other), 0);
	assert_int_equal(m->count, 1);
	assert_ptr_equal(idmap_get(m, 42), &other);
	assert_ptr_equal(idmap_del(m, 42), &other);
	assert_int_equal(m->count, 0);
}

/* 0 and UINT64_MAX are the table's empty/deleted markers: refused, never found. */
static void idmap_reserved_ids(void **state)
{
	struct idmap *m = *state;

	assert_int_equal(idmap_put(m, 0, VAL(1)), -EINVAL);
	assert_int_equal(idmap_put(m, UINT64_MAX, VAL(1)), -EINVAL);
	assert_int_equal(idmap_put(m, 1, VAL(1)), 0);
	assert_int_equal(idmap_put(m, UINT64_MAX - 1, VAL(2)), 0);
	assert_null(idmap_get(m, 0));
	assert_null(idmap_get(m, UINT64_MAX));
	assert_null(idmap_del(m, 0));
	assert_null(idmap_del(m, UINT64_MAX));
	assert_ptr_equal(idmap_get(m, UINT64_MAX - 1), VAL(2));
	assert_int_equal(m->count, 2);
}

/* 100k ids survive many rehashes, stay findable, and the table stays under 70% load. */
static void idmap_growth(void **state)
{
	struct idmap *m = *state;
	const uint64_t n = 100000;

	for (uint64_t id = 1; id <= n; id++)
		assert_int_equal(idmap_put(m, id * 3, VAL(id * 3)), 0);
	assert_int_equal(m->count, n);
	assert_true(m->cap >= n);
	assert_true(m->used * 10 < m->cap * 7);
	assert_int_equal(m->cap & (m->cap - 1), 0); /* power of two */
	for (uint64_t id = 1; id <= n; id++) {
		assert_ptr_equal(idmap_get(m, id * 3), VAL(id * 3));
		assert_null(idmap_get(m, id * 3 + 1));
	}
	assert_int_equal(walk_count(m), n);
}

/* Iteration visits every live entry exactly once and skips deleted ones. */
static void idmap_iterate_each_once(void **state)
{
	struct idmap *m = *state;
	enum { N = 5000 };
	static unsigned char seen[N + 1];
	uint64_t id;
	void *val;
	size_t visits = 0;

	memset(seen, 0, sizeof(seen));
	for (uint64_t i = 1; i <= N; i++)
		assert_int_equal(idmap_put(m, i, VAL(i)), 0);
	for (uint64_t i = 2; i <= N; i += 2)
		assert_ptr_equal(idmap_del(m, i), VAL(i));
	for (size_t it = 0; idmap_next(m, &it, &id, &val);) {
		assert_in_range(id, 1, N);
		assert_ptr_equal(val, VAL(id));
		seen[id]++;
		visits++;
	}
	assert_int_equal(visits, N / 2);
	for (uint64_t i = 1; i <= N; i++)
		assert_int_equal(seen[i], i % 2 ? 1 : 0);
}

/* Deleting the current entry while iterating (how everything is torn down) is safe. */
static void idmap_delete_during_iteration(void **state)
{
	struct idmap *m = *state;
	enum { N = 3000 };
	uint64_t id;
	void *val;
	size_t visits = 0;

	for (uint64_t i = 1; i <= N; i++)
		assert_int_equal(idmap_put(m, i * 1000003, VAL(i * 1000003)), 0);
	for (size_t it = 0; idmap_next(m, &it, &id, &val);) {
		assert_ptr_equal(idmap_del(m, id), val);
		visits++;
	}
	assert_int_equal(visits, N);
	assert_int_equal(m->count, 0);
	assert_int_equal(walk_count(m), 0);
	for (uint64_t i = 1; i <= N; i++)
		assert_null(idmap_get(m, i * 1000003));
}

/* The slot an id lands in when it is alone in a fresh 16-slot table. */
static size_t home_slot(uint64_t id)
{
	struct idmap t;
	size_t slot = SIZE_MAX;

	idmap_init(&t);
	assert_int_equal(idmap_put(&t, id, VAL(id)), 0);
	assert_int_equal(t.cap, 16);
	for (size_t i = 0; i < t.cap; i++)
		if (t.keys[i] == id)
			slot = i;
	idmap_free(&t);
	return slot;
}

/* A slot freed by del is reused, and ids probing past a tombstone are neither lost
 * nor stored twice. */
static void idmap_tombstone_reuse(void **state)
{
	struct idmap *m = *state;
	uint64_t a = 1, b = 2;
	size_t used;

	while (home_slot(b) != home_slot(a)) /* find two ids that collide */
		b++;
	assert_int_equal(idmap_put(m, a, VAL(a)), 0);
	assert_int_equal(idmap_put(m, b, VAL(b)), 0);
	used = m->used;
	assert_ptr_equal(idmap_del(m, a), VAL(a)); /* a's slot becomes a tombstone before b */
	assert_ptr_equal(idmap_get(m, b), VAL(b));
	assert_int_equal(idmap_put(m, b, VAL(b)), 0); /* replace, must not land in a's slot */
	assert_int_equal(m->count, 1);
	assert_int_equal(walk_count(m), 1);
	assert_ptr_equal(idmap_del(m, b), VAL(b));
	assert_null(idmap_get(m, b));
	/* re-adding a takes its tombstone: no new slot is used */
	assert_int_equal(idmap_put(m, a, VAL(a)), 0);
	assert_int_equal(m->used, used);
	assert_int_equal(m->count, 1);
	assert_ptr_equal(idmap_get(m, a), VAL(a));
	assert_int_equal(walk_count(m), 1);
}

/* Endless put/del of fresh ids with few live ones never fills the table with tombstones. */
static void idmap_churn(void **state)
{
	struct idmap *m = *state;

	for (uint64_t id = 1; id <= 200000; id++) {
		assert_int_equal(idmap_put(m, id, VAL(id)), 0);
		if (id > 3)
			assert_ptr_equal(idmap_del(m, id - 3), VAL(id - 3));
	}
	assert_int_equal(m->count, 3);
	assert_true(m->cap <= 64);
	assert_true(m->used * 10 < m->cap * 7);
	assert_null(idmap_get(m, 12345)); /* a miss terminates: some slot is still empty */
	assert_ptr_equal(idmap_get(m, 200000), VAL(200000));
	assert_int_equal(walk_count(m), 3);
}

/* idmap_free leaves a usable empty map. */
static void idmap_free_reuse(void **state)
{
	struct idmap *m = *state;

	assert_int_equal(idmap_put(m, 1, VAL(1)), 0);
	idmap_free(m);
	assert_int_equal(m->count, 0);
	assert_null(idmap_get(m, 1));
	assert_int_equal(idmap_put(m, 2, VAL(2)), 0);
	assert_ptr_equal(idmap_get(m, 2), VAL(2));
}

#define T(name) cmocka_unit_test_setup_teardown(name, map_setup, map_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(idmap_empty),
		T(idmap_put_get_del),
		T(idmap_replace),
		T(idmap_reserved_ids),
		T(idmap_growth),
		T(idmap_iterate_each_once),
		T(idmap_delete_during_iteration),
		T(idmap_tombstone_reuse),
		T(idmap_churn),
		T(idmap_free_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
