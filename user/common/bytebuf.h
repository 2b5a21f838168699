/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bytebuf.h - a growable byte buffer with a read position: bytes are added
 * at the tail and consumed from the head. The daemon's and the client
 * library's input buffers (and the client's output) are bytebufs; the
 * caller decides how large they may grow.
 */
#ifndef CTLD_BYTEBUF_H
#define CTLD_BYTEBUF_H

#include <stddef.h>
#include <stdint.h>

struct bytebuf {
	uint8_t *data; /* unconsumed bytes: data[start .. start + len) */
	size_t start, len, cap;
};

void bytebuf_free(struct bytebuf *b);
/* Makes room for `room` more bytes after the unconsumed ones: moves them to
 * the front if that is enough, else grows the buffer (doubling, from at
 * least min_cap). 0 or -ENOMEM (the buffer is unchanged then). */
int bytebuf_reserve(struct bytebuf *b, size_t room, size_t min_cap);
/* n bytes were written at bytebuf_tail(). */
void bytebuf_filled(struct bytebuf *b, size_t n);
/* The first n unconsumed bytes are done with. */
void bytebuf_consume(struct bytebuf *b, size_t n);
/* Frees the memory of an empty buffer larger than keep (after a big frame). */
void bytebuf_shrink(struct bytebuf *b, size_t keep);

static inline const uint8_t *bytebuf_head(const struct bytebuf *b)
{
	return b->data + b->start;
}

static inline uint8_t *bytebuf_tail(struct bytebuf *b)
{
	return b->data + b->start + b->len;
}

static inline size_t bytebuf_space(const struct bytebuf *b)
{
	return b->cap - b->start - b->len;
}

#endif
