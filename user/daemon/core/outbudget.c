// SPDX-License-Identifier: BSD-2-Clause
/*
 * outbudget.c - the output memory budget and giving the heap back after a
 * burst (see outbudget.h for the rules).
 */
#include <malloc.h>
#include <stdint.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/core/outbudget.h"

/* A peak below this is not worth a trim: the heap keeps some slack anyway. */
#define TRIM_MIN_PEAK (4u << 20)
#define TRIM_INTERVAL_NS NSEC_PER_SEC

static struct {
	struct loop *loop;
	size_t limit;
	size_t held, peak;
	size_t peak_since_trim;
	uint64_t dropped, trims;
	uint64_t last_trim_ns;
	struct loop_timer trim_timer;
} B = { .limit = SIZE_MAX };

static bool trim_due(void)
{
	return B.peak_since_trim >= TRIM_MIN_PEAK && B.held <= B.peak_since_trim / 4;
}

static void trim_now(struct loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
	if (!trim_due())
		return;
	malloc_trim(0);
	B.trims++;
	B.last_trim_ns = now_monotonic_ns();
	log_debug("output held fell from %zu to %zu bytes: heap trimmed", B.peak_since_trim,
		  B.held);
	B.peak_since_trim = B.held;
}

void outbudget_init(struct loop *loop, size_t limit)
{
	B.loop = loop;
	B.limit = limit;
	B.held = B.peak = B.peak_since_trim = 0;
	B.dropped = B.trims = 0;
	B.last_trim_ns = 0;
	loop_timer_init(&B.trim_timer, trim_now, NULL);
}

void outbudget_shutdown(void)
{
	if (B.loop)
		loop_timer_disarm(B.loop, &B.trim_timer);
	B.loop = NULL;
	B.limit = SIZE_MAX;
}

void outbudget_charge(size_t n)
{
	B.held += n;
	if (B.held > B.peak)
		B.peak = B.held;
	if (B.held > B.peak_since_trim)
		B.peak_since_trim = B.held;
}

/* Not on every free: a timer, at most once per TRIM_INTERVAL_NS. */
void outbudget_release(size_t n)
{
	B.held = n < B.held ? B.held - n : 0;
	if (B.loop && trim_due() && !loop_timer_armed(&B.trim_timer)) {
		uint64_t at = B.last_trim_ns + TRIM_INTERVAL_NS, now = now_monotonic_ns();

		loop_timer_arm(B.loop, &B.trim_timer, at > now ? at : now);
	}
}

bool outbudget_may_queue(size_t held, size_t n)
{
	size_t limit = B.limit;

	if (limit == SIZE_MAX)
		return true;
	if (n > limit || B.held > limit - n)
		return false;
	/* the top quarter is for queues holding little */
	return B.held + n <= limit - limit / 4 || held + n <= limit / 64;
}

bool outbudget_may_keep(size_t n)
{
	return B.limit == SIZE_MAX || B.held + n <= B.limit / 2;
}

void outbudget_dropped(size_t n)
{
	B.dropped += n;
}

void outbudget_get_stats(struct outbudget_stats *st)
{
	*st = (struct outbudget_stats){
		.limit = B.limit == SIZE_MAX ? 0 : B.limit,
		.held = B.held,
		.peak = B.peak,
		.dropped = B.dropped,
		.trims = B.trims,
	};
}
