// SPDX-License-Identifier: BSD-2-Clause
/*
 * bytebuf.c - see bytebuf.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytebuf.h"

void bytebuf_free(struct bytebuf *b)
{
	free(b->data);
	*b = (struct bytebuf){ 0 };
}

int bytebuf_reserve(struct bytebuf *b, size_t room, size_t min_cap)
{
	size_t want;
	uint8_t *grown;

	if (b->start + b->len + room <= b->cap)
		return 0;
	if (b->len + room <= b->cap) {
		memmove(b->data, b->data + b->start, b->len);
		b->start = 0;
		return 0;
	}
	want = b->cap > min_cap ? b->cap : (min_cap ? min_cap : 1);
	while (want < b->len + room)
		want *= 2;
	if (b->start) {
		memmove(b->data, b->data + b->start, b->len);
		b->start = 0;
	}
	grown = realloc(b->data, want);
	if (!grown)
		return -ENOMEM;
	b->data = grown;
	b->cap = want;
	return 0;
}

void bytebuf_filled(struct bytebuf *b, size_t n)
{
	b->len += n;
}

void bytebuf_consume(struct bytebuf *b, size_t n)
{
	b->start += n;
	b->len -= n;
	if (!b->len)
		b->start = 0;
}

void bytebuf_shrink(struct bytebuf *b, size_t keep)
{
	if (!b->len && b->cap > keep)
		bytebuf_free(b);
}
