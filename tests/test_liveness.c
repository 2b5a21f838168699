// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_liveness.c - when a client pings a quiet daemon and when it gives
 * up on a silent one (user/client/liveness.c), with a fake clock: a Ping
 * after a third of the period, giving up after the whole period of
 * silence, any byte resetting the count, a Ping that could only go out
 * late still getting its two thirds, and 0 meaning never.
 */
// TEST_SRCS: user/client/liveness.c
// TEST_WRAPS:
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "client/liveness.h"

#define MS 1000000ULL
#define T0 (1000 * MS) /* a monotonic clock is never near 0 */

static struct liveness L;

/* Quiet for a third of the period: ping; silent for all of it: give up. */
static void liveness_ping_then_dead(void **state)
{
	(void)state;
	liveness_start(&L, 3000, T0);
	assert_int_equal(liveness_due(&L, T0 + 999 * MS), LIVENESS_QUIET);
	assert_int_equal(liveness_wait_ns(&L, T0), 1000 * MS);
	assert_int_equal(liveness_due(&L, T0 + 1000 * MS), LIVENESS_PING);
	liveness_pinged(&L, T0 + 1000 * MS);
	assert_int_equal(liveness_due(&L, T0 + 2999 * MS), LIVENESS_QUIET);
	assert_int_equal(liveness_wait_ns(&L, T0 + 2000 * MS), 1000 * MS);
	assert_int_equal(liveness_due(&L, T0 + 3000 * MS), LIVENESS_DEAD);
	assert_int_equal(liveness_silence_ns(&L, T0 + 3000 * MS), 3000 * MS);
}

/* The Pong (or any byte) starts the count again: a live daemon is never given up. */
static void liveness_answer_resets(void **state)
{
	uint64_t heard = T0;

	(void)state;
	liveness_start(&L, 3000, T0);
	for (int i = 0; i < 60; i++) { /* a minute of Ping, Pong 5 ms later */
		uint64_t ping_at = heard + 1000 * MS;

		assert_int_equal(liveness_due(&L, ping_at - MS), LIVENESS_QUIET);
		assert_int_equal(liveness_due(&L, ping_at), LIVENESS_PING);
		liveness_pinged(&L, ping_at);
		heard = ping_at + 5 * MS;
		liveness_heard(&L, heard);
		liveness_answered(&L);
	}
}

/* Output that keeps coming counts even while the Pong does not (the daemon
 * does not read requests of a client that reads too slowly). */
static void liveness_output_is_enough(void **state)
{
	(void)state;
	liveness_start(&L, 3000, T0);
	liveness_pinged(&L, T0 + 1000 * MS);
	for (uint64_t t = T0 + 1500 * MS; t < T0 + 30000 * MS; t += 1500 * MS) {
		assert_int_equal(liveness_due(&L, t), LIVENESS_QUIET);
		liveness_heard(&L, t);
	}
}

/* A Ping sent late (ctl was blocked writing to a stalled stdout, or was
 * stopped) is not a verdict on the daemon: it gets two thirds of the
 * period from when it went out. */
static void liveness_late_ping_gets_its_time(void **state)
{
	(void)state;
	liveness_start(&L, 3000, T0);
	liveness_pinged(&L, T0 + 60000 * MS);
	assert_int_equal(liveness_due(&L, T0 + 61999 * MS), LIVENESS_QUIET);
	assert_int_equal(liveness_due(&L, T0 + 62000 * MS), LIVENESS_DEAD);
}

/* Period 0: no Ping, never dead, no poll timeout. */
static void liveness_off(void **state)
{
	(void)state;
	liveness_start(&L, 0, T0);
	assert_int_equal(liveness_due(&L, T0 + 3600000 * MS), LIVENESS_QUIET);
	assert_true(liveness_wait_ns(&L, T0) == UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(liveness_ping_then_dead),
		cmocka_unit_test(liveness_answer_resets),
		cmocka_unit_test(liveness_output_is_enough),
		cmocka_unit_test(liveness_late_ping_gets_its_time),
		cmocka_unit_test(liveness_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
