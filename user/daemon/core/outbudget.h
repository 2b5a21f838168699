/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * outbudget.h - one budget for the job output the daemon holds in memory:
 * every client's send queue and every job's backlog, together. Each queue
 * has its own bound (--client-queue); this bounds their sum
 * (--output-budget), so a crowd of stalled clients cannot grow the daemon
 * without limit. The holders say what they keep and free, and ask before
 * keeping more:
 *
 * - A client queue may grow while the total stays within the budget; in
 *   the budget's top quarter only while it holds less than 1/64 of the
 *   budget. So the clients holding the most lose output first, and one
 *   holding little (a reader that keeps up) still gets its own. (A queue
 *   that is empty is the caller's exception: see sendq.h.)
 * - A job's backlog (recent output for clients that attach later) is kept
 *   only while the total is within half the budget: live clients first.
 *
 * What the holders drop because of the budget they report as usual
 * (OutputDropped); what clients lost to it is also counted here.
 *
 * After a burst the freed heap goes back to the kernel: once the total has
 * fallen to a quarter of its peak since the last trim, and that peak was
 * at least TRIM_MIN_PEAK, malloc_trim(0) runs from a timer, at most once a
 * second (freed 64 KiB chunks in the middle of the heap are otherwise kept
 * by malloc for good: 41 MiB after a burst that peaked at 200).
 */
#ifndef CTLD_OUTBUDGET_H
#define CTLD_OUTBUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OUTBUDGET_DEFAULT (64u << 20)

struct loop;

struct outbudget_stats {
	size_t limit;
	size_t held;           /* queued for clients + kept in backlogs, now */
	size_t peak;           /* the most held at once since start-up */
	uint64_t dropped;      /* output bytes clients lost to the budget */
	uint64_t trims;        /* malloc_trim calls */
};

/* Until this is called nothing is limited and nothing is trimmed. */
void outbudget_init(struct loop *loop, size_t limit);
void outbudget_shutdown(void);

void outbudget_charge(size_t n);
void outbudget_release(size_t n);
/* May a client queue holding `held` bytes take n more? */
bool outbudget_may_queue(size_t held, size_t n);
/* May a job's backlog keep n more bytes? */
bool outbudget_may_keep(size_t n);
/* n bytes of output were dropped for a client because the budget said no. */
void outbudget_dropped(size_t n);

void outbudget_get_stats(struct outbudget_stats *st);

#endif
