/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * wire.h - the frame codec: protobuf's delimited convention (a varint length,
 * then the message) on top of nanopb. The single place where bytes from a
 * peer become structs; everything else sees decoded, bounded messages.
 */
#ifndef CTLD_WIRE_H
#define CTLD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <pb.h>

#include "ctld.pb.h"

#define CTLD_PROTOCOL_VERSION 1
#define WIRE_VARINT_MAX 10
/* Default largest frame body the daemon accepts (--max-frame). */
#define WIRE_DEFAULT_MAX_FRAME (1024 * 1024)
/* Largest encoded frame either side ever produces. */
#define WIRE_MAX_ENCODED                                                                           \
	((ctld_Request_size > ctld_Message_size ? ctld_Request_size : ctld_Message_size) +         \
	 WIRE_VARINT_MAX)

/*
 * Looks for one complete frame at the start of buf[len].
 * Returns 1 and sets *header_len and *body_len when it is all there, 0 when more
 * bytes are needed, -EMSGSIZE when the announced body exceeds max_body, and
 * -EPROTO when the length prefix is not a valid varint. Both outputs are
 * always written (0 while the prefix is incomplete; the announced size with
 * -EMSGSIZE).
 */
int wire_frame_check(const uint8_t *buf, size_t len, size_t max_body, size_t *header_len,
		     size_t *body_len);

/* Encodes msg as a delimited frame into out[cap]; *len gets its size. 0 or -errno. */
int wire_encode(const pb_msgdesc_t *fields, const void *msg, uint8_t *out, size_t cap,
		size_t *len);

/*
 * Decodes a frame body into msg (which is overwritten). Returns 0, -E2BIG when
 * the message is well-formed but exceeds a bound of ctld.options, or -EPROTO
 * when the bytes are not a valid message. *why (if non-NULL) explains.
 */
int wire_decode(const pb_msgdesc_t *fields, const uint8_t *body, size_t len, void *msg,
		const char **why);

/* Makes every string field of msg (submessages, repeated fields, the
 * active oneof member) valid UTF-8, replacing bad bytes with '?': protobuf
 * decoders refuse a whole message for one bad string, and argv, comm or
 * paths can hold any bytes. Returns how many bytes were replaced. */
size_t wire_sanitize_strings(const pb_msgdesc_t *fields, void *msg);

/* Reads Request.id from a body whose full decode failed, so the error reply
 * can still name the request. Returns 0 or -EPROTO. */
int wire_peek_request_id(const uint8_t *body, size_t len, uint64_t *id);

#endif
