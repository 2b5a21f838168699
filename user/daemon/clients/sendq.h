/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sendq.h - one client's queue of encoded frames waiting for its socket,
 * with the daemon's backpressure policy:
 *
 * - Output frames beyond the soft limit, or beyond what the daemon's
 *   output budget lets this queue hold (outbudget.h; never while the queue
 *   is empty), are dropped for that client and counted per job and stream;
 *   an OutputDropped{bytes} marker is queued before the next control
 *   message, or once the queue has drained to half of what it held when
 *   dropping began, so it always sits exactly where the gap is.
 * - Anything beyond the hard limit (only control messages can get there)
 *   means the client cannot keep up at all: the caller disconnects it.
 *
 * No sockets here: session.c writes what sendq_iov() shows and reports the
 * bytes written with sendq_written().
 */
#ifndef CTLD_SENDQ_H
#define CTLD_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "daemon/clients/reply.h"
#include "daemon/core/outq.h"

struct drop_note {
	uint64_t job;
	int stream;
	uint64_t bytes;
};

struct sendq {
	struct outq out;
	size_t soft_limit, hard_limit;
	struct drop_note *drops; /* gaps not yet reported, per job and stream */
	size_t ndrops;
	bool dropping; /* Output is being dropped until the markers are queued */
	bool budget_drops; /* because of the daemon's output budget (outbudget.h) */
	size_t resume_at;  /* the markers are queued once the queue is down to this */
};

enum sendq_result {
	SENDQ_QUEUED,
	SENDQ_DROPPED,   /* droppable and over the soft limit: counted, will be reported */
	SENDQ_OVERFLOW,  /* over the hard limit, or out of memory: disconnect */
};

void sendq_init(struct sendq *q, size_t soft_limit, size_t hard_limit);
void sendq_clear(struct sendq *q);
enum sendq_result sendq_push(struct sendq *q, const struct frame *f);
/* True while reading the client's requests should pause (over the soft limit). */
bool sendq_full(const struct sendq *q);
static inline size_t sendq_bytes(const struct sendq *q)
{
	return q->out.bytes;
}
int sendq_iov(const struct sendq *q, struct iovec *iov, int max);
/* n bytes were written. Returns SENDQ_OVERFLOW when the drop markers that
 * may now be due do not fit. */
enum sendq_result sendq_written(struct sendq *q, size_t n);

#endif
