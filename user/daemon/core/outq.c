// SPDX-License-Identifier: BSD-2-Clause
/*
 * outq.c - chunked byte FIFO. Chunks are 64 KiB so a frame is rarely split
 * and a writev() of a few iovecs drains a lot at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/outq.h"

#define CHUNK_SIZE (64 * 1024)

struct outq_chunk {
	struct outq_chunk *next;
	size_t start, end; /* live bytes are data[start..end) */
	unsigned char data[CHUNK_SIZE];
};

void outq_init(struct outq *q)
{
	*q = (struct outq){ 0 };
}

void outq_clear(struct outq *q)
{
	struct outq_chunk *c = q->head;

	while (c) {
		struct outq_chunk *next = c->next;

		free(c);
		c = next;
	}
	outq_init(q);
}

int outq_append(struct outq *q, const void *data, size_t len)
{
	const unsigned char *p = data;
	struct outq_chunk *first_new = NULL, *last = q->tail;
	size_t room = last ? CHUNK_SIZE - last->end : 0;
	size_t in_tail = len < room ? len : room;
	size_t rest = len - in_tail;

	/* Allocate every chunk needed first, so a failure leaves q untouched. */
	for (struct outq_chunk **link = &first_new; rest;) {
		size_t n = rest < CHUNK_SIZE ? rest : CHUNK_SIZE;
		struct outq_chunk *c = malloc(sizeof(*c));

		if (!c) {
			while (first_new) {
				c = first_new->next;
				free(first_new);
				first_new = c;
			}
			return -ENOMEM;
		}
		c->next = NULL;
		c->start = 0;
		c->end = n;
		memcpy(c->data, p + in_tail + (len - in_tail - rest), n);
		*link = c;
		link = &c->next;
		rest -= n;
	}
	if (in_tail) {
		memcpy(last->data + last->end, p, in_tail);
		last->end += in_tail;
	}
	if (first_new) {
		if (last)
			last->next = first_new;
		else
			q->head = first_new;
		while (first_new->next)
			first_new = first_new->next;
		q->tail = first_new;
	}
	q->bytes += len;
	return 0;
}

int outq_iov(const struct outq *q, struct iovec *iov, int max)
{
	int n = 0;

	for (const struct outq_chunk *c = q->head; c && n < max; c = c->next) {
		if (c->end == c->start)
			continue;
		iov[n].iov_base = (void *)(c->data + c->start);
		iov[n].iov_len = c->end - c->start;
		n++;
	}
	return n;
}

void outq_consume(struct outq *q, size_t n)
{
	q->bytes -= n;
	while (n && q->head) {
		struct outq_chunk *c = q->head;
		size_t avail = c->end - c->start;

		if (n < avail) {
			c->start += n;
			return;
		}
		n -= avail;
		q->head = c->next;
		free(c);
	}
	if (!q->head)
		q->tail = NULL;
}
