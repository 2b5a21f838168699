// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_outbudget.c - the output memory budget: who may hold more (client
 * queues up to the budget, in its top quarter only those holding little;
 * backlogs within half), the counters Stats shows, and giving the heap
 * back after a burst: malloc_trim (wrapped and counted here) from a timer
 * once the total falls to a quarter of its peak, never for a small peak,
 * at most once a second.
 */
// TEST_SRCS: user/daemon/core/outbudget.c user/daemon/core/loop.c user/daemon/core/log.c
// TEST_SRCS: user/common/util.c
// TEST_WRAPS: malloc_trim
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/core/outbudget.h"

#define MIB (1u << 20)

static struct {
	struct loop *loop;
	int trims; /* malloc_trim calls */
} H;

int __wrap_malloc_trim(size_t pad);
int __wrap_malloc_trim(size_t pad)
{
	assert_int_equal(pad, 0);
	H.trims++;
	return 1;
}

static int setup(void **state)
{
	(void)state;
	H.trims = 0;
	assert_int_equal(loop_new(&H.loop), 0);
	return 0;
}

static int teardown(void **state)
{
	struct outbudget_stats st;

	(void)state;
	outbudget_get_stats(&st);
	outbudget_release(st.held);
	outbudget_shutdown();
	loop_free(H.loop);
	return 0;
}

static void pump(int ms)
{
	uint64_t end = now_monotonic_ns() + (uint64_t)ms * NSEC_PER_MSEC;

	while (now_monotonic_ns() < end)
		assert_int_equal(loop_run_once(H.loop, 5), 0);
}

/* Before init (unit tests of other modules, start-up) nothing is refused. */
static void outbudget_unlimited_before_init(void **state)
{
	(void)state;
	outbudget_charge(SIZE_MAX / 2);
	assert_true(outbudget_may_queue(SIZE_MAX / 4, 1 << 30));
	assert_true(outbudget_may_keep(1 << 30));
}

/* Up to 3/4 of the budget anyone may queue; beyond that only queues that
 * hold under 1/64 of it; beyond the budget nobody. */
static void outbudget_queue_rules(void **state)
{
	struct outbudget_stats st;

	(void)state;
	outbudget_init(H.loop, 64 * MIB);
	outbudget_charge(47 * MIB);
	assert_true(outbudget_may_queue(10 * MIB, MIB));
	assert_false(outbudget_may_queue(10 * MIB, MIB + 1)); /* past 48 MiB */
	outbudget_charge(MIB); /* 48 MiB: in the top quarter from here */
	assert_false(outbudget_may_queue(10 * MIB, 1));
	assert_true(outbudget_may_queue(0, MIB)); /* holds little */
	assert_true(outbudget_may_queue(512 * 1024, 512 * 1024));
	assert_false(outbudget_may_queue(512 * 1024, 512 * 1024 + 1));
	outbudget_charge(16 * MIB - 1024); /* 1 KiB left */
	assert_true(outbudget_may_queue(0, 1024));
	assert_false(outbudget_may_queue(0, 1025));
	assert_false(outbudget_may_queue(0, SIZE_MAX)); /* no overflow in the check */
	outbudget_get_stats(&st);
	assert_int_equal(st.limit, 64 * MIB);
	assert_int_equal(st.held, 64 * MIB - 1024);
	assert_int_equal(st.peak, 64 * MIB - 1024);
}

/* Backlogs are kept only within half the budget. */
static void outbudget_backlog_rule(void **state)
{
	(void)state;
	outbudget_init(H.loop, 64 * MIB);
	outbudget_charge(31 * MIB);
	assert_true(outbudget_may_keep(MIB));
	assert_false(outbudget_may_keep(MIB + 1));
	outbudget_release(31 * MIB);
	assert_true(outbudget_may_keep(32 * MIB));
}

/* Stats: limit, what is held now and at most, what clients lost to it. */
static void outbudget_counts(void **state)
{
	struct outbudget_stats st;

	(void)state;
	outbudget_init(H.loop, 8 * MIB);
	outbudget_charge(3000);
	outbudget_charge(5000);
	outbudget_release(6000);
	outbudget_dropped(700);
	outbudget_dropped(300);
	outbudget_release(99999); /* more than held: clamps, never wraps */
	outbudget_get_stats(&st);
	assert_int_equal(st.held, 0);
	assert_int_equal(st.peak, 8000);
	assert_int_equal(st.dropped, 1000);
	assert_int_equal(st.trims, 0);
}

/* After a burst the heap is trimmed once the total is down to a quarter of
 * its peak, from the loop (not inside the free), and not again for the
 * same peak. */
static void outbudget_trims_after_a_burst(void **state)
{
	struct outbudget_stats st;

	(void)state;
	outbudget_init(H.loop, 64 * MIB);
	outbudget_charge(40 * MIB);
	outbudget_release(20 * MIB);
	pump(20);
	assert_int_equal(H.trims, 0); /* 20 of 40: not yet */
	outbudget_release(10 * MIB);
	assert_int_equal(H.trims, 0); /* due, but from a timer */
	pump(20);
	assert_int_equal(H.trims, 1);
	outbudget_get_stats(&st);
	assert_int_equal(st.trims, 1);
	outbudget_charge(MIB);
	outbudget_release(MIB);
	pump(20);
	assert_int_equal(H.trims, 1); /* the peak is now 10 MiB; 10 MiB held */
}

/* A small peak is not worth a trim. */
static void outbudget_small_peak_not_trimmed(void **state)
{
	(void)state;
	outbudget_init(H.loop, 64 * MIB);
	outbudget_charge(3 * MIB);
	outbudget_release(3 * MIB);
	pump(30);
	assert_int_equal(H.trims, 0);
}

/* Two bursts within a second: the second trim waits for the second to pass. */
static void outbudget_trims_at_most_once_a_second(void **state)
{
	uint64_t t0;

	(void)state;
	outbudget_init(H.loop, 64 * MIB);
	outbudget_charge(40 * MIB);
	outbudget_release(40 * MIB);
	pump(20);
	assert_int_equal(H.trims, 1);
	t0 = now_monotonic_ns();
	outbudget_charge(40 * MIB);
	outbudget_release(40 * MIB);
	pump(300);
	assert_int_equal(H.trims, 1);
	while (H.trims == 1 && now_monotonic_ns() - t0 < 3 * NSEC_PER_SEC)
		pump(20);
	assert_int_equal(H.trims, 2);
	assert_true(now_monotonic_ns() - t0 >= 600 * NSEC_PER_MSEC);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(outbudget_unlimited_before_init),
		T(outbudget_queue_rules),
		T(outbudget_backlog_rule),
		T(outbudget_counts),
		T(outbudget_trims_after_a_burst),
		T(outbudget_small_peak_not_trimmed),
		T(outbudget_trims_at_most_once_a_second),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
