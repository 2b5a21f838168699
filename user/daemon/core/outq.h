/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * outq.h - a FIFO of bytes in fixed-size chunks: what is waiting to be
 * written to a client socket or to a job's stdin pipe. Bounds are the
 * caller's policy; the queue only counts.
 */
#ifndef CTLD_OUTQ_H
#define CTLD_OUTQ_H

#include <stddef.h>
#include <sys/uio.h>

struct outq_chunk;

struct outq {
	struct outq_chunk *head, *tail;
	size_t bytes;
};

void outq_init(struct outq *q);
void outq_clear(struct outq *q);
/* Copies data to the tail. 0 or -ENOMEM (nothing appended then). */
int outq_append(struct outq *q, const void *data, size_t len);
/* Fills up to max iovecs with the queued bytes, oldest first; returns the count. */
int outq_iov(const struct outq *q, struct iovec *iov, int max);
/* Drops the first n bytes (n <= q->bytes). */
void outq_consume(struct outq *q, size_t n);

#endif
