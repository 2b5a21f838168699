// SPDX-License-Identifier: BSD-2-Clause
/*
 * wire.c - delimited protobuf frames over nanopb.
 *
 * A frame is decoded only once it is complete (pb_istream_from_buffer on the
 * whole body), so a slow or malicious peer can never leave a half-filled
 * struct behind, and nanopb never reads from a socket directly.
 */
#include <errno.h>
#include <string.h>

#include <pb_common.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "common/utf8.h"
#include "common/wire.h"

int wire_frame_check(const uint8_t *buf, size_t len, size_t max_body, size_t *header_len,
		     size_t *body_len)
{
	uint64_t value = 0;

	/* Both outputs are always set: callers may use them on every return. */
	*header_len = 0;
	*body_len = 0;
	for (size_t i = 0; i < len && i < WIRE_VARINT_MAX; i++) {
		value |= (uint64_t)(buf[i] & 0x7f) << (7 * i);
		if (buf[i] & 0x80)
			continue;
		/* A 10th byte may only carry the top bit of a 64-bit value. */
		if (i == WIRE_VARINT_MAX - 1 && buf[i] > 1)
			return -EPROTO;
		*header_len = i + 1;
		*body_len = (size_t)value;
		if (value > max_body)
			return -EMSGSIZE;
		return len - *header_len >= *body_len ? 1 : 0;
	}
	return len >= WIRE_VARINT_MAX ? -EPROTO : 0;
}

int wire_encode(const pb_msgdesc_t *fields, const void *msg, uint8_t *out, size_t cap,
		size_t *len)
{
	pb_ostream_t stream = pb_ostream_from_buffer(out, cap);

	if (!pb_encode_delimited(&stream, fields, msg))
		return -ENOSPC;
	*len = stream.bytes_written;
	return 0;
}

/* nanopb reports a bound of ctld.options being exceeded with these texts. */
static int is_bound_error(const char *why)
{
	static const char *const bound_errors[] = { "array overflow", "bytes overflow",
						    "string overflow", "too many array entries" };

	for (size_t i = 0; why && i < sizeof(bound_errors) / sizeof(bound_errors[0]); i++)
		if (strcmp(why, bound_errors[i]) == 0)
			return 1;
	return 0;
}

int wire_decode(const pb_msgdesc_t *fields, const uint8_t *body, size_t len, void *msg,
		const char **why)
{
	pb_istream_t stream = pb_istream_from_buffer(body, len);
	const char *err;

	if (pb_decode(&stream, fields, msg))
		return 0;
	err = PB_GET_ERROR(&stream);
	if (why)
		*why = err;
	return is_bound_error(err) ? -E2BIG : -EPROTO;
}

int wire_peek_request_id(const uint8_t *body, size_t len, uint64_t *id)
{
	pb_istream_t stream = pb_istream_from_buffer(body, len);
	pb_wire_type_t type;
	uint32_t tag;
	bool eof;

	while (pb_decode_tag(&stream, &type, &tag, &eof)) {
		if (tag == ctld_Request_id_tag && type == PB_WT_VARINT)
			return pb_decode_varint(&stream, id) ? 0 : -EPROTO;
		if (!pb_skip_field(&stream, type))
			break;
	}
	return -EPROTO;
}

/* Is the field at iter present in its message? */
static bool field_present(const pb_field_iter_t *iter)
{
	switch (PB_HTYPE(iter->type)) {
	case PB_HTYPE_ONEOF:
		return *(const pb_size_t *)iter->pSize == iter->tag;
	case PB_HTYPE_OPTIONAL:
		return !iter->pSize || *(const bool *)iter->pSize;
	default:
		return true;
	}
}

static size_t field_count(const pb_field_iter_t *iter)
{
	if (PB_HTYPE(iter->type) == PB_HTYPE_REPEATED)
		return *(const pb_size_t *)iter->pSize;
	return 1;
}

size_t wire_sanitize_strings(const pb_msgdesc_t *fields, void *msg)
{
	pb_field_iter_t iter;
	size_t fixed = 0;

	if (!pb_field_iter_begin(&iter, fields, msg))
		return 0;
	do {
		pb_type_t ltype = PB_LTYPE(iter.type);

		if (PB_ATYPE(iter.type) != PB_ATYPE_STATIC || !field_present(&iter))
			continue;
		for (size_t i = 0; i < field_count(&iter); i++) {
			char *item = (char *)iter.pData + i * iter.data_size;

			if (ltype == PB_LTYPE_STRING)
				fixed += utf8_sanitize(item);
			else if (PB_LTYPE_IS_SUBMSG(ltype))
				fixed += wire_sanitize_strings(iter.submsg_desc, item);
		}
	} while (pb_field_iter_next(&iter));
	return fixed;
}
