// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_preauth.c - the budget of unauthenticated connections: who is the
 * victim when a newcomer needs room (the oldest of its source when that
 * source has its share, else the oldest of all, none while there is room),
 * and the list staying in order of arrival as entries leave from anywhere.
 */
// TEST_SRCS: user/daemon/clients/preauth.c
// TEST_WRAPS:
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/clients/preauth.h"

/* Room until a limit; then the oldest of the source, or of all. */
static void preauth_victims(void **state)
{
	struct preauth p;
	struct preauth_entry e[6];
	const char *limit = NULL;

	(void)state;
	preauth_init(&p, 4, 2);
	assert_null(preauth_victim(&p, "a", &limit));
	preauth_add(&p, &e[0], "a");
	preauth_add(&p, &e[1], "b");
	preauth_add(&p, &e[2], "a");
	assert_int_equal(preauth_count_from(&p, "a"), 2);
	assert_ptr_equal(preauth_victim(&p, "a", &limit), &e[0]); /* a has its share */
	assert_string_equal(limit, "per source");
	assert_null(preauth_victim(&p, "c", &limit));
	preauth_add(&p, &e[3], "c");
	assert_ptr_equal(preauth_victim(&p, "d", &limit), &e[0]); /* full: the oldest of all */
	assert_string_equal(limit, "total");
	assert_ptr_equal(preauth_victim(&p, "b", &limit), &e[0]);
	preauth_remove(&p, &e[0]);
	assert_ptr_equal(preauth_victim(&p, "a", &limit), NULL); /* a: 1, total: 3 */
	preauth_add(&p, &e[4], "d");
	assert_ptr_equal(preauth_victim(&p, "a", &limit), &e[1]); /* b is the oldest now */
	preauth_remove(&p, &e[3]); /* from the middle */
	preauth_remove(&p, &e[4]); /* the newest */
	assert_int_equal(p.count, 2);
	assert_ptr_equal(p.oldest, &e[1]);
	assert_ptr_equal(p.newest, &e[2]);
	preauth_remove(&p, &e[1]);
	preauth_remove(&p, &e[2]);
	assert_null(p.oldest);
	assert_null(p.newest);
	assert_int_equal(p.count, 0);
}

/* A share of one: each newcomer replaces the one waiting from its source. */
static void preauth_share_of_one(void **state)
{
	struct preauth p;
	struct preauth_entry e[2];
	const char *limit = NULL;

	(void)state;
	preauth_init(&p, 64, 1);
	preauth_add(&p, &e[0], "10.0.0.1");
	assert_null(preauth_victim(&p, "10.0.0.2", &limit));
	assert_ptr_equal(preauth_victim(&p, "10.0.0.1", &limit), &e[0]);
	preauth_remove(&p, &e[0]);
	preauth_add(&p, &e[1], "10.0.0.1");
	assert_int_equal(preauth_count_from(&p, "10.0.0.1"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(preauth_victims),
		cmocka_unit_test(preauth_share_of_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
