// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_clock.c - a daemon's clock offset from Ping round trips
 * (client/clock.c): the midpoint estimate, its ± half-round-trip bound, the
 * tightest sample winning, negative offsets, and samples that cannot be
 * used (our clock went back, a daemon that sends no time).
 */
// TEST_SRCS: user/client/clock.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "client/clock.h"

static void test_midpoint_and_bound(void **state)
{
	struct clock_offset c = { 0 };

	(void)state;
	/* sent at 1000, answered at 1200 ours; the daemon said 5100 */
	assert_true(clock_offset_add(&c, 1000, 1200, 5100));
	assert_int_equal(c.offset_ns, 4000);
	assert_int_equal(c.uncertainty_ns, 100);
	assert_int_equal(clock_offset_to_local(&c, 5100), 1100);
	/* a slower round trip does not replace the estimate, but is the latest */
	assert_true(clock_offset_add(&c, 2000, 3000, 6600));
	assert_int_equal(c.offset_ns, 4000);
	assert_int_equal(c.last_offset_ns, 4100);
	assert_int_equal(c.last_uncertainty_ns, 500);
	/* a tighter one does */
	assert_true(clock_offset_add(&c, 4000, 4020, 8005));
	assert_int_equal(c.offset_ns, 3995);
	assert_int_equal(c.uncertainty_ns, 10);
	assert_int_equal(c.samples, 3);
}

static void test_daemon_behind_us(void **state)
{
	struct clock_offset c = { 0 };

	(void)state;
	assert_true(clock_offset_add(&c, 10000, 10100, 7050));
	assert_int_equal(c.offset_ns, -3000);
	assert_int_equal(clock_offset_to_local(&c, 7050), 10050);
}

static void test_unusable_samples(void **state)
{
	struct clock_offset c = { 0 };

	(void)state;
	assert_false(clock_offset_add(&c, 2000, 1000, 5000)); /* our clock went back */
	assert_false(clock_offset_add(&c, 1000, 2000, 0));    /* no daemon time */
	assert_int_equal(c.samples, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_midpoint_and_bound),
		cmocka_unit_test(test_daemon_behind_us),
		cmocka_unit_test(test_unusable_samples),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
