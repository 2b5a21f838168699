// SPDX-License-Identifier: BSD-2-Clause
/*
 * log_limit.c - rate limits for what peers can make the daemon say.
 *
 * A refused connection costs the peer one connect(); if each also cost the
 * daemon a log line, a connect/close loop would have it write hundreds of
 * thousands of lines a second, and spend its CPU formatting them. So such
 * messages are limited per cause and source: per call site (its format
 * string) and the peer's address. Each pair prints at most LIMIT_BURST
 * lines in a window of LIMIT_WINDOW_S seconds, opened by its first
 * message; the rest are counted, and when the window ends one line says
 * how many were suppressed and quotes the last of them. All limited
 * messages together print at most GLOBAL_BURST lines per window, so many
 * sources cannot flood the log either.
 *
 * Pairs live in a small fixed table; a pair that finds no free slot is
 * held to the global cap alone, and what that cap holds back is counted in
 * one "from many sources" line. So a window writes at most GLOBAL_BURST
 * lines plus one summary per slot plus one.
 */
#include <stdio.h>
#include <string.h>

#include "daemon/core/log_limit.h"
#include "daemon/core/loop.h"
#include "common/util.h"

#define LIMIT_SLOTS 64
#define LIMIT_BURST 10
#define GLOBAL_BURST 100
#define LIMIT_WINDOW_S 2

struct limit_slot {
	const char *site; /* the format string: one per call site */
	char source[64];
	enum log_level level;
	uint64_t window_end; /* 0: the slot is free */
	unsigned printed;
	uint64_t suppressed;
	char last[256]; /* the last suppressed message, for the summary */
};

static struct {
	struct limit_slot slots[LIMIT_SLOTS];
	uint64_t window_end; /* of the global cap; 0: no window open */
	unsigned printed;
	uint64_t suppressed; /* held back by the global cap, no slot to count them in */
	uint64_t total_suppressed;
	struct loop *loop;
	struct loop_timer timer;
} R;

static void end_windows(uint64_t now)
{
	for (size_t i = 0; i < LIMIT_SLOTS; i++) {
		struct limit_slot *s = &R.slots[i];

		if (!s->window_end || s->window_end > now)
			continue;
		if (s->suppressed)
			log_msg(s->level, "suppressed %llu similar messages in %d s; the last: %s",
				(unsigned long long)s->suppressed, LIMIT_WINDOW_S, s->last);
		s->window_end = 0;
		s->suppressed = 0;
	}
	if (R.window_end && R.window_end <= now) {
		if (R.suppressed)
			log_msg(LOG_WARN, "suppressed %llu messages from many sources in %d s",
				(unsigned long long)R.suppressed, LIMIT_WINDOW_S);
		R.window_end = 0;
		R.printed = 0;
		R.suppressed = 0;
	}
}

/* The timer is armed only while a window has something to sum up. */
static void arm_timer(void)
{
	uint64_t first = R.suppressed ? R.window_end : UINT64_MAX;

	if (!R.loop)
		return;
	for (size_t i = 0; i < LIMIT_SLOTS; i++)
		if (R.slots[i].suppressed && R.slots[i].window_end < first)
			first = R.slots[i].window_end;
	if (first == UINT64_MAX)
		loop_timer_disarm(R.loop, &R.timer);
	else if (!loop_timer_armed(&R.timer) || R.timer.deadline_ns != first)
		loop_timer_arm(R.loop, &R.timer, first);
}

static void on_timer(struct loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
	end_windows(now_monotonic_ns());
	arm_timer();
}

static struct limit_slot *find_slot(const char *site, const char *source, uint64_t now)
{
	struct limit_slot *free_slot = NULL;

	for (size_t i = 0; i < LIMIT_SLOTS; i++) {
		struct limit_slot *s = &R.slots[i];

		if (!s->window_end) {
			if (!free_slot)
				free_slot = s;
		} else if (s->site == site &&
			   strncmp(s->source, source, sizeof(s->source) - 1) == 0) {
			return s;
		}
	}
	if (free_slot) {
		free_slot->site = site;
		copy_str(free_slot->source, sizeof(free_slot->source), source);
		free_slot->window_end = now + LIMIT_WINDOW_S * NSEC_PER_SEC;
		free_slot->printed = 0;
		free_slot->suppressed = 0;
	}
	return free_slot;
}

void log_vlimited(enum log_level level, const char *source, const char *fmt, va_list ap)
{
	struct limit_slot *slot;
	char text[1024];
	uint64_t now;

	if (level > log_get_level())
		return;
	now = now_monotonic_ns();
	end_windows(now);
	if (!R.window_end)
		R.window_end = now + LIMIT_WINDOW_S * NSEC_PER_SEC;
	slot = find_slot(fmt, source ? source : "", now);
	vsnprintf(text, sizeof(text), fmt, ap);
	if ((slot && slot->printed >= LIMIT_BURST) || R.printed >= GLOBAL_BURST) {
		R.total_suppressed++;
		if (slot) {
			slot->suppressed++;
			slot->level = level;
			copy_str(slot->last, sizeof(slot->last), text);
		} else {
			R.suppressed++;
		}
		arm_timer();
		return;
	}
	if (slot)
		slot->printed++;
	R.printed++;
	log_msg(level, "%s", text);
}

void log_limited(enum log_level level, const char *source, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlimited(level, source, fmt, ap);
	va_end(ap);
}

void log_limit_attach(struct loop *loop)
{
	if (R.loop)
		loop_timer_disarm(R.loop, &R.timer);
	R.loop = loop;
	if (!loop) {
		end_windows(UINT64_MAX);
		return;
	}
	loop_timer_init(&R.timer, on_timer, NULL);
	arm_timer();
}

uint64_t log_suppressed_lines(void)
{
	return R.total_suppressed;
}
