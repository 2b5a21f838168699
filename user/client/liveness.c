// SPDX-License-Identifier: BSD-2-Clause
/*
 * liveness.c - the Ping schedule and the give-up deadline of a client
 * connection (see liveness.h). No I/O, no clock of its own.
 */
#include "client/liveness.h"

#define NSEC_PER_MSEC 1000000ULL

void liveness_start(struct liveness *l, uint32_t period_ms, uint64_t now_ns)
{
	*l = (struct liveness){ .period_ns = period_ms * NSEC_PER_MSEC, .heard_ns = now_ns };
}

void liveness_heard(struct liveness *l, uint64_t now_ns)
{
	l->heard_ns = now_ns;
}

void liveness_pinged(struct liveness *l, uint64_t now_ns)
{
	l->ping_ns = now_ns;
}

void liveness_answered(struct liveness *l)
{
	l->ping_ns = 0;
}

/* When the next thing is due: the Ping, or (one is out) giving up. */
static uint64_t next_deadline(const struct liveness *l)
{
	uint64_t third = l->period_ns / 3, since;

	if (!l->ping_ns)
		return l->heard_ns + third;
	since = l->ping_ns > l->heard_ns ? l->ping_ns : l->heard_ns;
	return since + (l->period_ns - third);
}

enum liveness_due liveness_due(const struct liveness *l, uint64_t now_ns)
{
	if (!l->period_ns || now_ns < next_deadline(l))
		return LIVENESS_QUIET;
	return l->ping_ns ? LIVENESS_DEAD : LIVENESS_PING;
}

uint64_t liveness_wait_ns(const struct liveness *l, uint64_t now_ns)
{
	uint64_t deadline;

	if (!l->period_ns)
		return UINT64_MAX;
	deadline = next_deadline(l);
	return deadline > now_ns ? deadline - now_ns : 0;
}

uint64_t liveness_silence_ns(const struct liveness *l, uint64_t now_ns)
{
	return now_ns > l->heard_ns ? now_ns - l->heard_ns : 0;
}
