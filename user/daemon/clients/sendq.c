// SPDX-License-Identifier: BSD-2-Clause
/*
 * sendq.c - a client's output queue and its drop accounting (see sendq.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "daemon/clients/sendq.h"
#include "daemon/core/outbudget.h"

void sendq_init(struct sendq *q, size_t soft_limit, size_t hard_limit)
{
	memset(q, 0, sizeof(*q));
	outq_init(&q->out);
	q->soft_limit = soft_limit;
	q->hard_limit = hard_limit;
}

void sendq_clear(struct sendq *q)
{
	outbudget_release(q->out.bytes);
	outq_clear(&q->out);
	free(q->drops);
	q->drops = NULL;
	q->ndrops = 0;
	q->dropping = false;
}

bool sendq_full(const struct sendq *q)
{
	return q->out.bytes > q->soft_limit;
}

int sendq_iov(const struct sendq *q, struct iovec *iov, int max)
{
	return outq_iov(&q->out, iov, max);
}

static void note_drop(struct sendq *q, uint64_t job, int stream, size_t bytes)
{
	struct drop_note *grown;

	for (size_t i = 0; i < q->ndrops; i++) {
		if (q->drops[i].job == job && q->drops[i].stream == stream) {
			q->drops[i].bytes += bytes;
			return;
		}
	}
	grown = realloc(q->drops, (q->ndrops + 1) * sizeof(*grown));
	if (!grown)
		return; /* the bytes are still counted in the daemon's total */
	q->drops = grown;
	q->drops[q->ndrops++] = (struct drop_note){ .job = job, .stream = stream, .bytes = bytes };
}

static enum sendq_result append(struct sendq *q, const uint8_t *data, size_t len)
{
	if (q->out.bytes + len > q->hard_limit || outq_append(&q->out, data, len))
		return SENDQ_OVERFLOW;
	outbudget_charge(len);
	return SENDQ_QUEUED;
}

/* Queues the OutputDropped markers, then lets Output through again.
 * Encoded into a buffer of its own: the caller's frame may live in the
 * shared one. */
static enum sendq_result report_drops(struct sendq *q)
{
	ctld_Message msg = ctld_Message_init_zero;
	uint8_t buf[64];
	size_t len;

	_Static_assert(ctld_OutputDropped_size + 16 <= sizeof(buf), "drop marker buffer");
	msg.which_kind = ctld_Message_event_tag;
	msg.kind.event.which_kind = ctld_Event_output_dropped_tag;
	for (size_t i = 0; i < q->ndrops; i++) {
		ctld_OutputDropped *d = &msg.kind.event.kind.output_dropped;

		d->job = q->drops[i].job;
		d->stream = (ctld_Stream)q->drops[i].stream;
		d->bytes = q->drops[i].bytes;
		d->reason = ctld_DropReason_DROP_SLOW_CLIENT;
		if (wire_encode(ctld_Message_fields, &msg, buf, sizeof(buf), &len) == 0 &&
		    append(q, buf, len) != SENDQ_QUEUED)
			return SENDQ_OVERFLOW;
	}
	q->ndrops = 0;
	q->dropping = false;
	return SENDQ_QUEUED;
}

/* Output over the daemon's budget: dropped unless the queue is empty, in
 * which case the frame goes to the socket at once (and at most that one
 * frame stays if the socket is full), so a reader that keeps up loses
 * nothing to the others. */
static bool over_budget(const struct sendq *q, const struct frame *f)
{
	return q->out.bytes && !outbudget_may_queue(q->out.bytes, f->len);
}

/* Output starts being dropped: until the queue has drained to half of what
 * it holds now (at most half the soft limit), so the gap is one gap. */
static void start_dropping(struct sendq *q, bool for_budget)
{
	size_t half = q->out.bytes / 2;

	q->dropping = true;
	q->budget_drops = for_budget;
	q->resume_at = half < q->soft_limit / 2 ? half : q->soft_limit / 2;
}

enum sendq_result sendq_push(struct sendq *q, const struct frame *f)
{
	if (f->droppable && !q->dropping) {
		if (q->out.bytes + f->len > q->soft_limit)
			start_dropping(q, false);
		else if (over_budget(q, f))
			start_dropping(q, true);
	}
	if (f->droppable && q->dropping) {
		if (q->budget_drops)
			outbudget_dropped(f->payload);
		note_drop(q, f->job, f->stream, f->payload);
		return SENDQ_DROPPED;
	}
	if (!f->droppable && q->ndrops && report_drops(q) != SENDQ_QUEUED)
		return SENDQ_OVERFLOW;
	return append(q, f->data, f->len);
}

enum sendq_result sendq_written(struct sendq *q, size_t n)
{
	outq_consume(&q->out, n);
	outbudget_release(n);
	if (q->dropping && q->out.bytes <= q->resume_at)
		return report_drops(q);
	return SENDQ_QUEUED;
}
