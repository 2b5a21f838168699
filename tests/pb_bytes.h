/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pb_bytes.h - a protobuf byte builder for unit tests, independent of
 * wire.c and nanopb's encoder: it writes frames the encoder would refuse to
 * produce (over a bound, unknown fields, garbage). Include after cmocka.h.
 */
#ifndef CTLD_TEST_PB_BYTES_H
#define CTLD_TEST_PB_BYTES_H

#include <stdint.h>
#include <string.h>

#include <pb.h>

struct bytes {
	uint8_t buf[80 * 1024];
	size_t len;
};

static inline void put_byte(struct bytes *b, uint8_t v)
{
	assert_true(b->len < sizeof(b->buf));
	b->buf[b->len++] = v;
}

static inline void put_varint(struct bytes *b, uint64_t v)
{
	while (v >= 0x80) {
		put_byte(b, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	put_byte(b, (uint8_t)v);
}

static inline void put_tag(struct bytes *b, uint32_t field, uint32_t wire_type)
{
	put_varint(b, (uint64_t)field << 3 | wire_type);
}

static inline void put_len_field(struct bytes *b, uint32_t field, const void *data, size_t len)
{
	put_tag(b, field, PB_WT_STRING);
	put_varint(b, len);
	assert_true(b->len + len <= sizeof(b->buf));
	memcpy(b->buf + b->len, data, len);
	b->len += len;
}

#endif
