// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_loop.c - the epoll loop and its timer heap: timers fire once, in
 * deadline order, and can be disarmed or re-armed from anywhere (including
 * other timers' callbacks); fd callbacks get the events epoll reported, and
 * an fd deleted in the middle of a batch never sees its stale event.
 */
// TEST_SRCS: user/daemon/core/loop.c user/common/util.c
// TEST_WRAPS:
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/core/loop.h"
#include "common/util.h"

#define MAX_TIMERS 1000

struct tmr {
	struct loop_timer t;
	int idx;
	int fired;
	struct tmr *other; /* armed, disarmed or re-armed by this one's callback */
	uint64_t other_deadline;
};

static struct {
	struct loop *loop;
	struct tmr tm[MAX_TIMERS];
	int order[MAX_TIMERS * 2];
	int nfired;
	int pipes[4][2];
} T;

static int loop_setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	for (int i = 0; i < 4; i++)
		T.pipes[i][0] = T.pipes[i][1] = -1;
	return loop_new(&T.loop);
}

static int loop_teardown(void **state)
{
	(void)state;
	loop_free(T.loop);
	for (int i = 0; i < 4; i++) {
		if (T.pipes[i][0] >= 0)
			close(T.pipes[i][0]);
		if (T.pipes[i][1] >= 0)
			close(T.pipes[i][1]);
	}
	return 0;
}

static void record(struct loop *loop, void *ctx)
{
	struct tmr *m = ctx;

	(void)loop;
	assert_false(loop_timer_armed(&m->t)); /* disarmed before its callback runs */
	m->fired++;
	T.order[T.nfired++] = m->idx;
}

static void arm_other(struct loop *loop, void *ctx)
{
	struct tmr *m = ctx;

	record(loop, ctx);
	loop_timer_arm(loop, &m->other->t, m->other_deadline);
}

static void disarm_other(struct loop *loop, void *ctx)
{
	struct tmr *m = ctx;

	record(loop, ctx);
	loop_timer_disarm(loop, &m->other->t);
}

static void init_timers(int n, loop_timer_fn fn)
{
	for (int i = 0; i < n; i++) {
		T.tm[i].idx = i;
		loop_timer_init(&T.tm[i].t, fn, &T.tm[i]);
	}
}

/* A timer that was never armed (or init'ed) reports not armed; disarming it is a no-op. */
static void loop_timer_init_state(void **state)
{
	(void)state;
	init_timers(1, record);
	assert_false(loop_timer_armed(&T.tm[0].t));
	loop_timer_disarm(T.loop, &T.tm[0].t);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.nfired, 0);
}

/* Due timers fire in deadline order, not arming order, each exactly once. */
static void loop_timers_deadline_order(void **state)
{
	uint64_t base = now_monotonic_ns() - NSEC_PER_SEC;

	(void)state;
	init_timers(3, record);
	loop_timer_arm(T.loop, &T.tm[0].t, base + 3);
	loop_timer_arm(T.loop, &T.tm[1].t, base + 1);
	loop_timer_arm(T.loop, &T.tm[2].t, base + 2);
	assert_true(loop_timer_armed(&T.tm[0].t));
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.nfired, 3);
	assert_int_equal(T.order[0], 1);
	assert_int_equal(T.order[1], 2);
	assert_int_equal(T.order[2], 0);
	for (int i = 0; i < 3; i++)
		assert_false(loop_timer_armed(&T.tm[i].t));
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.nfired, 3); /* one-shot */
}

/* A timer in the future does not fire early; a blocking round waits for it. */
static void loop_timer_waits_for_deadline(void **state)
{
	uint64_t start = now_monotonic_ns();

	(void)state;
	init_timers(1, record);
	loop_timer_arm_in(T.loop, &T.tm[0].t, 30 * NSEC_PER_MSEC);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.nfired, 0);
	for (int round = 0; round < 10 && !T.nfired; round++)
		assert_int_equal(loop_run_once(T.loop, -1), 0);
	assert_int_equal(T.nfired, 1);
	assert_true(now_monotonic_ns() - start >= 30 * NSEC_PER_MSEC);
	assert_true(now_monotonic_ns() - start < 2 * NSEC_PER_SEC);
}

/* max_wait_ms caps the wait even when the next timer is far away. */
static void loop_run_once_max_wait(void **state)
{
	uint64_t start = now_monotonic_ns();

	(void)state;
	init_timers(1, record);
	loop_timer_arm_in(T.loop, &T.tm[0].t, 60 * NSEC_PER_SEC);
	assert_int_equal(loop_run_once(T.loop, 20), 0);
	assert_int_equal(T.nfired, 0);
	assert_true(now_monotonic_ns() - start < NSEC_PER_SEC);
	assert_true(loop_timer_armed(&T.tm[0].t));
	loop_timer_disarm(T.loop, &T.tm[0].t);
}

/* A disarmed timer never fires; re-arming moves it instead of adding a second entry. */
static void loop_timer_disarm_rearm(void **state)
{
	uint64_t past = now_monotonic_ns() - NSEC_PER_SEC;

	(void)state;
	init_timers(2, record);
	loop_timer_arm(T.loop, &T.tm[0].t, past);
	loop_timer_arm(T.loop, &T.tm[1].t, past + 1);
	loop_timer_disarm(T.loop, &T.tm[0].t);
	assert_false(loop_timer_armed(&T.tm[0].t));
	loop_timer_disarm(T.loop, &T.tm[0].t); /* twice is harmless */
	/* re-arm tm[1] into the future, then back into the past: it fires once */
	loop_timer_arm_in(T.loop, &T.tm[1].t, 60 * NSEC_PER_SEC);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.nfired, 0);
	loop_timer_arm(T.loop, &T.tm[1].t, past);
	loop_timer_arm(T.loop, &T.tm[1].t, past);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.nfired, 1);
	assert_int_equal(T.order[0], 1);
	assert_int_equal(T.tm[0].fired, 0);
	/* and a disarmed timer can be armed again */
	loop_timer_arm(T.loop, &T.tm[0].t, past);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.tm[0].fired, 1);
}

/* A callback may arm another (due) timer; it fires in the same round, after its arm-er. */
static void loop_timer_callback_arms_timer(void **state)
{
	uint64_t past = now_monotonic_ns() - NSEC_PER_SEC;

	(void)state;
	init_timers(3, record);
	T.tm[0].t.fn = arm_other;
	T.tm[0].other = &T.tm[1];
	T.tm[0].other_deadline = 0;
	T.tm[1].t.fn = arm_other; /* and tm[1] re-arms tm[0] in the future */
	T.tm[1].other = &T.tm[0];
	T.tm[1].other_deadline = now_monotonic_ns() + 60 * NSEC_PER_SEC;
	loop_timer_arm(T.loop, &T.tm[0].t, past);
	loop_timer_arm(T.loop, &T.tm[2].t, past + 5);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.nfired, 3);
	assert_int_equal(T.order[0], 0);
	assert_int_equal(T.order[1], 1); /* deadline 0 sorts before tm[2] */
	assert_int_equal(T.order[2], 2);
	assert_true(loop_timer_armed(&T.tm[0].t));
	assert_int_equal(T.tm[0].fired, 1);
	loop_timer_disarm(T.loop, &T.tm[0].t);
}

/* A callback that disarms another due timer prevents it from firing in this round. */
static void loop_timer_callback_disarms_timer(void **state)
{
	uint64_t past = now_monotonic_ns() - NSEC_PER_SEC;

	(void)state;
	init_timers(4, record);
	T.tm[0].t.fn = disarm_other;
	T.tm[0].other = &T.tm[2];
	for (int i = 0; i < 4; i++)
		loop_timer_arm(T.loop, &T.tm[i].t, past + (uint64_t)i);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.nfired, 3);
	assert_int_equal(T.order[0], 0);
	assert_int_equal(T.order[1], 1);
	assert_int_equal(T.order[2], 3);
	assert_int_equal(T.tm[2].fired, 0);
	assert_false(loop_timer_armed(&T.tm[2].t));
}

/* 1000 random timers, a third disarmed, every 7th re-armed (some after disarm), fire sorted. */
static void loop_timer_heap_random(void **state)
{
	uint64_t base = now_monotonic_ns() - 10 * NSEC_PER_SEC;
	unsigned seed = 12345;
	int expected = 0;

	(void)state;
	init_timers(MAX_TIMERS, record);
	for (int i = 0; i < MAX_TIMERS; i++)
		loop_timer_arm(T.loop, &T.tm[i].t, base + (uint64_t)(rand_r(&seed) % 1000000));
	for (int i = 0; i < MAX_TIMERS; i += 3)
		loop_timer_disarm(T.loop, &T.tm[i].t);
	for (int i = 1; i < MAX_TIMERS; i += 7) /* re-arm in place: may move up or down */
		loop_timer_arm(T.loop, &T.tm[i].t, base + (uint64_t)(rand_r(&seed) % 1000000));
	for (int i = 0; i < MAX_TIMERS; i++)
		expected += i % 3 != 0 || i % 7 == 1;
	for (int i = 0; i < MAX_TIMERS; i++)
		assert_int_equal(loop_timer_armed(&T.tm[i].t), i % 3 != 0 || i % 7 == 1);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(T.nfired, expected);
	for (int k = 1; k < T.nfired; k++)
		assert_true(T.tm[T.order[k - 1]].t.deadline_ns <= T.tm[T.order[k]].t.deadline_ns);
	for (int i = 0; i < MAX_TIMERS; i++) {
		assert_int_equal(T.tm[i].fired, i % 3 != 0 || i % 7 == 1);
		assert_false(loop_timer_armed(&T.tm[i].t));
	}
}

/* 20000 random arms, re-arms and disarms of 200 timers (in the heap's
 * interior as often as at its root), with a few firing rounds in between:
 * the heap's links stay consistent, nothing fires twice or early, and what
 * is left fires sorted. Deadlines repeat, so ties are exercised too. */
static void loop_timer_heap_churn(void **state)
{
	uint64_t now = now_monotonic_ns(), past = now - NSEC_PER_SEC;
	unsigned seed = 777;
	bool armed[200] = { false };

	(void)state;
	init_timers(200, record);
	for (int op = 0; op < 20000; op++) {
		int i = (int)(rand_r(&seed) % 200);

		if (rand_r(&seed) % 3 == 0) {
			loop_timer_disarm(T.loop, &T.tm[i].t);
			armed[i] = false;
		} else {
			/* half in the past (due), half far in the future */
			uint64_t d = rand_r(&seed) % 2 ? past + rand_r(&seed) % 50
						      : now + 3600 * NSEC_PER_SEC + rand_r(&seed) % 50;

			loop_timer_arm(T.loop, &T.tm[i].t, d);
			armed[i] = true;
		}
		if (op % 5000 == 4999) {
			T.nfired = 0;
			assert_int_equal(loop_run_once(T.loop, 0), 0);
			for (int k = 1; k < T.nfired; k++)
				assert_true(T.tm[T.order[k - 1]].t.deadline_ns <=
					    T.tm[T.order[k]].t.deadline_ns);
			for (int k = 0; k < T.nfired; k++) {
				assert_true(armed[T.order[k]]);
				assert_true(T.tm[T.order[k]].t.deadline_ns <= now);
				armed[T.order[k]] = false;
			}
		}
		for (int k = 0; k < 200; k += 37)
			assert_int_equal(loop_timer_armed(&T.tm[k].t), armed[k]);
	}
	for (int i = 0; i < 200; i++)
		assert_int_equal(loop_timer_armed(&T.tm[i].t), armed[i]);
}

/* ---- fds */

struct fdrec {
	int calls;
	int fd;
	uint32_t events;
	void *ctx;
};

static struct fdrec fdrec[4];

static void on_fd(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct fdrec *r = &fdrec[(intptr_t)ctx];

	(void)loop;
	r->calls++;
	r->fd = fd;
	r->events = events;
	r->ctx = ctx;
}

static void make_pipes(int n)
{
	memset(fdrec, 0, sizeof(fdrec));
	for (int i = 0; i < n; i++)
		assert_int_equal(pipe2(T.pipes[i], O_NONBLOCK | O_CLOEXEC), 0);
}

/* A readable pipe calls its callback with EPOLLIN, its fd and its ctx; an idle one does not. */
static void loop_fd_readable(void **state)
{
	(void)state;
	make_pipes(2);
	assert_int_equal(loop_fd_add(T.loop, T.pipes[0][0], EPOLLIN, on_fd, (void *)0), 0);
	assert_int_equal(loop_fd_add(T.loop, T.pipes[1][0], EPOLLIN, on_fd, (void *)1), 0);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(fdrec[0].calls, 0);
	assert_int_equal(write(T.pipes[0][1], "x", 1), 1);
	assert_int_equal(loop_run_once(T.loop, 1000), 0);
	assert_int_equal(fdrec[0].calls, 1);
	assert_int_equal(fdrec[0].fd, T.pipes[0][0]);
	assert_true(fdrec[0].events & EPOLLIN);
	assert_ptr_equal(fdrec[0].ctx, (void *)0);
	assert_int_equal(fdrec[1].calls, 0);
	/* level-triggered: unread data calls again */
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(fdrec[0].calls, 2);
}

/* A hang-up is delivered to the same callback (EPOLLHUP), without asking for it. */
static void loop_fd_hangup(void **state)
{
	(void)state;
	make_pipes(1);
	assert_int_equal(loop_fd_add(T.loop, T.pipes[0][0], EPOLLIN, on_fd, (void *)0), 0);
	close(T.pipes[0][1]);
	T.pipes[0][1] = -1;
	assert_int_equal(loop_run_once(T.loop, 1000), 0);
	assert_int_equal(fdrec[0].calls, 1);
	assert_true(fdrec[0].events & EPOLLHUP);
}

/* Masks can switch to EPOLLOUT and back; bad fds and duplicates are refused. */
static void loop_fd_mask_and_errors(void **state)
{
	(void)state;
	make_pipes(1);
	assert_int_equal(loop_fd_add(T.loop, T.pipes[0][1], EPOLLIN, on_fd, (void *)0), 0);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(fdrec[0].calls, 0);
	assert_int_equal(loop_fd_set_mask(T.loop, T.pipes[0][1], EPOLLOUT), 0);
	assert_int_equal(loop_run_once(T.loop, 1000), 0);
	assert_int_equal(fdrec[0].calls, 1);
	assert_true(fdrec[0].events & EPOLLOUT);
	assert_int_equal(loop_fd_set_mask(T.loop, T.pipes[0][1], EPOLLIN), 0);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(fdrec[0].calls, 1);

	assert_int_equal(loop_fd_add(T.loop, T.pipes[0][1], EPOLLIN, on_fd, NULL), -EEXIST);
	assert_int_equal(loop_fd_add(T.loop, -1, EPOLLIN, on_fd, NULL), -EINVAL);
	assert_int_equal(loop_fd_add(T.loop, T.pipes[0][0], 0, on_fd, NULL), -EINVAL);
	assert_int_equal(loop_fd_add(T.loop, T.pipes[0][0], EPOLLIN, NULL, NULL), -EINVAL);
	assert_int_equal(loop_fd_set_mask(T.loop, T.pipes[0][0], EPOLLIN), -EINVAL);
	assert_int_equal(loop_fd_set_mask(T.loop, 100000, EPOLLIN), -EINVAL);
	loop_fd_del(T.loop, 100000); /* unknown fds are ignored */
	loop_fd_del(T.loop, -1);
}

/* fd numbers beyond the initial table (64) grow it and still dispatch. */
static void loop_fd_high_number(void **state)
{
	int high;

	(void)state;
	make_pipes(1);
	high = fcntl(T.pipes[0][0], F_DUPFD_CLOEXEC, 500);
	assert_true(high >= 500);
	assert_int_equal(loop_fd_add(T.loop, high, EPOLLIN, on_fd, (void *)0), 0);
	assert_int_equal(write(T.pipes[0][1], "x", 1), 1);
	assert_int_equal(loop_run_once(T.loop, 1000), 0);
	assert_int_equal(fdrec[0].calls, 1);
	assert_int_equal(fdrec[0].fd, high);
	loop_fd_del(T.loop, high);
	close(high);
}

static int victim_fd[2];

/* Whichever of the two runs first deletes the other's fd. */
static void delete_other(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	intptr_t me = (intptr_t)ctx;

	on_fd(loop, fd, events, ctx);
	loop_fd_del(loop, victim_fd[1 - me]);
}

/* An fd deleted by another callback of the same batch never sees its pending event. */
static void loop_fd_del_in_batch(void **state)
{
	(void)state;
	make_pipes(2);
	victim_fd[0] = T.pipes[0][0];
	victim_fd[1] = T.pipes[1][0];
	assert_int_equal(loop_fd_add(T.loop, victim_fd[0], EPOLLIN, delete_other, (void *)0), 0);
	assert_int_equal(loop_fd_add(T.loop, victim_fd[1], EPOLLIN, delete_other, (void *)1), 0);
	assert_int_equal(write(T.pipes[0][1], "x", 1), 1);
	assert_int_equal(write(T.pipes[1][1], "x", 1), 1);
	assert_int_equal(loop_run_once(T.loop, 1000), 0);
	assert_int_equal(fdrec[0].calls + fdrec[1].calls, 1);
	/* the survivor keeps firing, the deleted one stays silent */
	assert_int_equal(loop_run_once(T.loop, 1000), 0);
	assert_int_equal(fdrec[0].calls + fdrec[1].calls, 2);
	assert_true(fdrec[0].calls == 2 || fdrec[1].calls == 2);
}

/* A deleted fd can be registered again (the daemon reuses fd numbers constantly). */
static void loop_fd_readd(void **state)
{
	(void)state;
	make_pipes(1);
	assert_int_equal(loop_fd_add(T.loop, T.pipes[0][0], EPOLLIN, on_fd, (void *)0), 0);
	loop_fd_del(T.loop, T.pipes[0][0]);
	assert_int_equal(write(T.pipes[0][1], "x", 1), 1);
	assert_int_equal(loop_run_once(T.loop, 0), 0);
	assert_int_equal(fdrec[0].calls, 0);
	assert_int_equal(loop_fd_add(T.loop, T.pipes[0][0], EPOLLIN, on_fd, (void *)1), 0);
	assert_int_equal(loop_run_once(T.loop, 1000), 0);
	assert_int_equal(fdrec[1].calls, 1);
}

static void stop_cb(struct loop *loop, void *ctx)
{
	record(loop, ctx);
	loop_stop(loop);
}

/* loop_run returns 0 once a callback calls loop_stop, after finishing that round. */
static void loop_stop_from_timer(void **state)
{
	(void)state;
	init_timers(2, record);
	T.tm[0].t.fn = stop_cb;
	loop_timer_arm_in(T.loop, &T.tm[0].t, 5 * NSEC_PER_MSEC);
	loop_timer_arm_in(T.loop, &T.tm[1].t, 60 * NSEC_PER_SEC);
	assert_int_equal(loop_run(T.loop), 0);
	assert_int_equal(T.tm[0].fired, 1);
	assert_int_equal(T.tm[1].fired, 0);
	loop_timer_disarm(T.loop, &T.tm[1].t);
}

#define TC(name) cmocka_unit_test_setup_teardown(name, loop_setup, loop_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TC(loop_timer_init_state),
		TC(loop_timers_deadline_order),
		TC(loop_timer_waits_for_deadline),
		TC(loop_run_once_max_wait),
		TC(loop_timer_disarm_rearm),
		TC(loop_timer_callback_arms_timer),
		TC(loop_timer_callback_disarms_timer),
		TC(loop_timer_heap_random),
		TC(loop_timer_heap_churn),
		TC(loop_fd_readable),
		TC(loop_fd_hangup),
		TC(loop_fd_mask_and_errors),
		TC(loop_fd_high_number),
		TC(loop_fd_del_in_batch),
		TC(loop_fd_readd),
		TC(loop_stop_from_timer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
