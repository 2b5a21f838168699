// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_wire.c - the frame codec: length-prefix checks at every boundary,
 * encode/decode round trips, the LIMIT (-E2BIG) versus PROTOCOL (-EPROTO)
 * split, peeking at a request id, and varints identical to nanopb's.
 *
 * Frames that the encoder could never produce (65 argv entries, a 600-byte
 * string) are written byte by byte with the small builder below, which does
 * not use wire.c, so the codec is not checked against itself.
 */
// TEST_SRCS: user/common/wire.c user/common/utf8.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pb_encode.h>

#include "pb_bytes.h"
#include "common/wire.h"

/* Big structs live here, not on the test's stack. */
static ctld_Request req_in, req_out;
static ctld_Message msg_in, msg_out;
static uint8_t frame[WIRE_MAX_ENCODED];

static struct bytes bld, inner;

/* A Request{id, run{argv: nargs strings of arglen 'a's}} body in bld. */
static void build_run(uint64_t id, size_t nargs, size_t arglen)
{
	static char arg[1024];

	assert_true(arglen <= sizeof(arg));
	memset(arg, 'a', arglen);
	inner.len = 0;
	for (size_t i = 0; i < nargs; i++)
		put_len_field(&inner, ctld_Run_argv_tag, arg, arglen);
	bld.len = 0;
	put_tag(&bld, ctld_Request_id_tag, PB_WT_VARINT);
	put_varint(&bld, id);
	put_len_field(&bld, ctld_Request_run_tag, inner.buf, inner.len);
}

/* ---- wire_frame_check */

/* A whole frame in the buffer is reported with its exact header and body sizes. */
static void wire_frame_check_complete(void **state)
{
	const uint8_t buf[] = { 3, 'a', 'b', 'c', 0x99 };
	size_t hdr = 0, body = 0;

	(void)state;
	assert_int_equal(wire_frame_check(buf, 4, 100, &hdr, &body), 1);
	assert_int_equal(hdr, 1);
	assert_int_equal(body, 3);
	/* Trailing bytes of the next frame do not matter. */
	assert_int_equal(wire_frame_check(buf, sizeof(buf), 100, &hdr, &body), 1);
	assert_int_equal(body, 3);
}

/* A body that has not fully arrived means "read more", never a decode of half a message. */
static void wire_frame_check_partial(void **state)
{
	const uint8_t buf[] = { 3, 'a', 'b' };
	size_t hdr = 0, body = 0;

	(void)state;
	assert_int_equal(wire_frame_check(buf, 1, 100, &hdr, &body), 0);
	assert_int_equal(wire_frame_check(buf, 3, 100, &hdr, &body), 0);
}

/* No bytes at all is simply "need more". */
static void wire_frame_check_empty(void **state)
{
	size_t hdr = 0, body = 0;

	(void)state;
	assert_int_equal(wire_frame_check((const uint8_t *)"", 0, 100, &hdr, &body), 0);
}

/* A zero-length body is a complete frame (e.g. an all-default message). */
static void wire_frame_check_zero_body(void **state)
{
	const uint8_t buf[] = { 0 };
	size_t hdr = 9, body = 9;

	(void)state;
	assert_int_equal(wire_frame_check(buf, 1, 100, &hdr, &body), 1);
	assert_int_equal(hdr, 1);
	assert_int_equal(body, 0);
}

/* The length prefix itself may arrive one byte per read; each prefix of it waits. */
static void wire_frame_check_split_prefix(void **state)
{
	static uint8_t buf[3 + 300];
	size_t hdr = 0, body = 0;

	(void)state;
	buf[0] = 0xac; /* 300 = 0xac 0x02 */
	buf[1] = 0x02;
	assert_int_equal(wire_frame_check(buf, 1, 1000, &hdr, &body), 0);
	assert_int_equal(wire_frame_check(buf, 2, 1000, &hdr, &body), 0);
	assert_int_equal(wire_frame_check(buf, 2 + 299, 1000, &hdr, &body), 0);
	assert_int_equal(wire_frame_check(buf, 2 + 300, 1000, &hdr, &body), 1);
	assert_int_equal(hdr, 2);
	assert_int_equal(body, 300);
}

/* max_body is inclusive: exactly max_body is accepted, one more is -EMSGSIZE. */
static void wire_frame_check_max_body_boundary(void **state)
{
	uint8_t buf[3] = { 0xe8, 0x07 }; /* 1000 */
	size_t hdr = 0, body = 0;

	(void)state;
	assert_int_equal(wire_frame_check(buf, 2, 1000, &hdr, &body), 0);
	assert_int_equal(hdr, 2);
	assert_int_equal(body, 1000);
	buf[0] = 0xe9; /* 1001 */
	assert_int_equal(wire_frame_check(buf, 2, 1000, &hdr, &body), -EMSGSIZE);
	/* Known to be too big before the body arrives: the prefix alone is enough. */
	assert_int_equal(wire_frame_check(buf, 2, 0, &hdr, &body), -EMSGSIZE);
}

/* A 10th varint byte may only be 0 or 1 (bit 63); anything else is not a uint64. */
static void wire_frame_check_bad_tenth_byte(void **state)
{
	uint8_t buf[10];
	size_t hdr = 0, body = 0;

	(void)state;
	memset(buf, 0x80, 9);
	buf[9] = 0x02;
	assert_int_equal(wire_frame_check(buf, 10, SIZE_MAX, &hdr, &body), -EPROTO);
	buf[9] = 0x7f;
	assert_int_equal(wire_frame_check(buf, 10, SIZE_MAX, &hdr, &body), -EPROTO);
	/* 0x01 is valid (2^63) and merely too large for any sane limit. */
	buf[9] = 0x01;
	assert_int_equal(wire_frame_check(buf, 10, WIRE_DEFAULT_MAX_FRAME, &hdr, &body),
			 -EMSGSIZE);
}

/* Ten continuation bytes can never end a valid varint: -EPROTO, not "need more". */
static void wire_frame_check_unterminated_varint(void **state)
{
	uint8_t buf[11];
	size_t hdr = 0, body = 0;

	(void)state;
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(wire_frame_check(buf, 9, SIZE_MAX, &hdr, &body), 0);
	assert_int_equal(wire_frame_check(buf, 10, SIZE_MAX, &hdr, &body), -EPROTO);
	assert_int_equal(wire_frame_check(buf, 11, SIZE_MAX, &hdr, &body), -EPROTO);
}

/* ---- encode / decode */

/* A Run with argv and env survives encode -> frame_check -> decode unchanged. */
static void wire_roundtrip_run_request(void **state)
{
	size_t len = 0, hdr = 0, body = 0;
	const char *why = NULL;

	(void)state;
	memset(&req_out, 0, sizeof(req_out));
	req_out.id = 0x123456789aULL;
	req_out.which_body = ctld_Request_run_tag;
	req_out.body.run.argv_count = 3;
	strcpy(req_out.body.run.argv[0], "sh");
	strcpy(req_out.body.run.argv[1], "-c");
	memset(req_out.body.run.argv[2], 'x', 511); /* the longest entry allowed */
	req_out.body.run.env_count = 2;
	strcpy(req_out.body.run.env[0], "A=1");
	strcpy(req_out.body.run.env[1], "EMPTY=");
	strcpy(req_out.body.run.cwd, "/tmp");
	req_out.body.run.timeout_ms = 1500;
	req_out.body.run.has_umask = true;
	req_out.body.run.umask = 0;

	assert_int_equal(wire_encode(ctld_Request_fields, &req_out, frame, sizeof(frame), &len), 0);
	assert_int_equal(wire_frame_check(frame, len, WIRE_DEFAULT_MAX_FRAME, &hdr, &body), 1);
	assert_int_equal(hdr + body, len);
	memset(&req_in, 0x5a, sizeof(req_in));
	assert_int_equal(wire_decode(ctld_Request_fields, frame + hdr, body, &req_in, &why), 0);
	assert_int_equal(req_in.id, 0x123456789aULL);
	assert_int_equal(req_in.which_body, ctld_Request_run_tag);
	assert_int_equal(req_in.body.run.argv_count, 3);
	assert_string_equal(req_in.body.run.argv[0], "sh");
	assert_string_equal(req_in.body.run.argv[1], "-c");
	assert_string_equal(req_in.body.run.argv[2], req_out.body.run.argv[2]);
	assert_int_equal(req_in.body.run.env_count, 2);
	assert_string_equal(req_in.body.run.env[0], "A=1");
	assert_string_equal(req_in.body.run.env[1], "EMPTY=");
	assert_string_equal(req_in.body.run.cwd, "/tmp");
	assert_int_equal(req_in.body.run.timeout_ms, 1500);
	assert_true(req_in.body.run.has_umask);
	assert_int_equal(req_in.body.run.umask, 0);
	/* Decode overwrites: fields absent on the wire come back zeroed, not 0x5a. */
	assert_string_equal(req_in.body.run.name, "");
	assert_false(req_in.body.run.clean_env);
}

/* The largest Output (32 KiB of binary data) fits WIRE_MAX_ENCODED and comes back intact. */
static void wire_roundtrip_output_message(void **state)
{
	ctld_Output *o = &msg_out.kind.event.kind.output;
	size_t len = 0, hdr = 0, body = 0;

	(void)state;
	memset(&msg_out, 0, sizeof(msg_out));
	msg_out.which_kind = ctld_Message_event_tag;
	msg_out.kind.event.which_kind = ctld_Event_output_tag;
	o->job = 77;
	o->stream = ctld_Stream_STDERR;
	o->offset = 1ULL << 40;
	o->data.size = sizeof(o->data.bytes);
	assert_int_equal(o->data.size, 32768);
	for (size_t i = 0; i < o->data.size; i++)
		o->data.bytes[i] = (uint8_t)(i * 7 + (i >> 8));

	assert_int_equal(wire_encode(ctld_Message_fields, &msg_out, frame, sizeof(frame), &len), 0);
	assert_true(len <= WIRE_MAX_ENCODED);
	assert_int_equal(wire_frame_check(frame, len, WIRE_MAX_ENCODED, &hdr, &body), 1);
	assert_int_equal(hdr, 3); /* a ~32 KiB body needs a 3-byte prefix */
	assert_int_equal(wire_decode(ctld_Message_fields, frame + hdr, body, &msg_in, NULL), 0);
	assert_int_equal(msg_in.which_kind, ctld_Message_event_tag);
	assert_int_equal(msg_in.kind.event.which_kind, ctld_Event_output_tag);
	assert_int_equal(msg_in.kind.event.kind.output.job, 77);
	assert_int_equal(msg_in.kind.event.kind.output.stream, ctld_Stream_STDERR);
	assert_int_equal(msg_in.kind.event.kind.output.offset, 1ULL << 40);
	assert_int_equal(msg_in.kind.event.kind.output.data.size, 32768);
	assert_memory_equal(msg_in.kind.event.kind.output.data.bytes, o->data.bytes, 32768);
}

/* An output buffer that is too small fails cleanly with -ENOSPC. */
static void wire_encode_too_small(void **state)
{
	uint8_t small[8];
	size_t len = 0;

	(void)state;
	memset(&req_out, 0, sizeof(req_out));
	req_out.id = 1;
	req_out.which_body = ctld_Request_hello_tag;
	req_out.body.hello.protocol_version = 1;
	strcpy(req_out.body.hello.client, "a client name longer than eight bytes");
	assert_int_equal(wire_encode(ctld_Request_fields, &req_out, small, sizeof(small), &len),
			 -ENOSPC);
}

/* Bytes that are not a protobuf message are PROTOCOL errors, with a reason. */
static void wire_decode_garbage(void **state)
{
	const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff };
	/* field 3 (run), length 50, but only 2 bytes follow */
	const uint8_t truncated[] = { 0x1a, 50, 0x0a, 0x00 };
	const char *why = NULL;

	(void)state;
	assert_int_equal(wire_decode(ctld_Request_fields, garbage, sizeof(garbage), &req_in, &why),
			 -EPROTO);
	assert_non_null(why);
	why = NULL;
	assert_int_equal(
		wire_decode(ctld_Request_fields, truncated, sizeof(truncated), &req_in, &why),
		-EPROTO);
	assert_non_null(why);
}

/* 64 argv entries is the bound and decodes; 65 is well-formed but over it: -E2BIG (LIMIT). */
static void wire_decode_too_many_argv(void **state)
{
	const char *why = NULL;

	(void)state;
	build_run(5, 64, 1);
	assert_int_equal(wire_decode(ctld_Request_fields, bld.buf, bld.len, &req_in, &why), 0);
	assert_int_equal(req_in.body.run.argv_count, 64);
	build_run(5, 65, 1);
	assert_int_equal(wire_decode(ctld_Request_fields, bld.buf, bld.len, &req_in, &why), -E2BIG);
	assert_non_null(why);
}

/* A 511-byte argv entry fits (512 with the NUL); 512 and 600 bytes are -E2BIG. */
static void wire_decode_argv_entry_too_long(void **state)
{
	const char *why = NULL;

	(void)state;
	build_run(6, 1, 511);
	assert_int_equal(wire_decode(ctld_Request_fields, bld.buf, bld.len, &req_in, &why), 0);
	assert_int_equal(strlen(req_in.body.run.argv[0]), 511);
	build_run(6, 1, 512);
	assert_int_equal(wire_decode(ctld_Request_fields, bld.buf, bld.len, &req_in, &why), -E2BIG);
	build_run(6, 1, 600);
	assert_int_equal(wire_decode(ctld_Request_fields, bld.buf, bld.len, &req_in, &why), -E2BIG);
}

/* WriteStdin data one byte over 32 KiB is a bound error too ("bytes overflow"). */
static void wire_decode_bytes_too_long(void **state)
{
	static uint8_t data[32769];

	(void)state;
	inner.len = 0;
	put_len_field(&inner, ctld_WriteStdin_data_tag, data, sizeof(data));
	bld.len = 0;
	put_len_field(&bld, ctld_Request_write_stdin_tag, inner.buf, inner.len);
	assert_int_equal(wire_decode(ctld_Request_fields, bld.buf, bld.len, &req_in, NULL), -E2BIG);
	inner.len = 0;
	put_len_field(&inner, ctld_WriteStdin_data_tag, data, sizeof(data) - 1);
	bld.len = 0;
	put_len_field(&bld, ctld_Request_write_stdin_tag, inner.buf, inner.len);
	assert_int_equal(wire_decode(ctld_Request_fields, bld.buf, bld.len, &req_in, NULL), 0);
	assert_int_equal(req_in.body.write_stdin.data.size, 32768);
}

/* ---- wire_peek_request_id */

/* The id is found even when what follows it would not decode. */
static void wire_peek_id_before_garbage(void **state)
{
	uint64_t id = 0;

	(void)state;
	bld.len = 0;
	put_tag(&bld, ctld_Request_id_tag, PB_WT_VARINT);
	put_varint(&bld, 4242);
	put_byte(&bld, 0xff);
	put_byte(&bld, 0xff);
	assert_int_equal(wire_peek_request_id(bld.buf, bld.len, &id), 0);
	assert_int_equal(id, 4242);
}

/* An oversized Run before the id is skipped, so a LIMIT reply can name the request. */
static void wire_peek_id_after_oversized_field(void **state)
{
	uint64_t id = 0;

	(void)state;
	build_run(1, 65, 600);
	/* move the id after the run: rebuild as run first, id last */
	bld.len = 0;
	put_len_field(&bld, ctld_Request_run_tag, inner.buf, inner.len);
	put_tag(&bld, ctld_Request_id_tag, PB_WT_VARINT);
	put_varint(&bld, UINT64_MAX);
	assert_int_equal(wire_decode(ctld_Request_fields, bld.buf, bld.len, &req_in, NULL), -E2BIG);
	assert_int_equal(wire_peek_request_id(bld.buf, bld.len, &id), 0);
	assert_int_equal(id, UINT64_MAX);
}

/* No id field (or an id of the wrong wire type) is -EPROTO, and *id is left alone. */
static void wire_peek_id_absent(void **state)
{
	uint64_t id = 99;

	(void)state;
	build_run(1, 2, 3);
	bld.len = 0;
	put_len_field(&bld, ctld_Request_run_tag, inner.buf, inner.len);
	assert_int_equal(wire_peek_request_id(bld.buf, bld.len, &id), -EPROTO);
	assert_int_equal(wire_peek_request_id(bld.buf, 0, &id), -EPROTO);
	bld.len = 0;
	put_len_field(&bld, ctld_Request_id_tag, "12345678", 8); /* id as bytes: not an id */
	assert_int_equal(wire_peek_request_id(bld.buf, bld.len, &id), -EPROTO);
	assert_int_equal(id, 99);
}

/* ---- length prefixes as nanopb (and every protobuf library) writes them */

/* wire_frame_check must read back every length prefix nanopb can write. */
static void wire_frame_check_reads_nanopb_varints(void **state)
{
	const uint64_t values[] = { 0, 1, 127, 128, 300, 16383, 16384, 1ULL << 32,
				    (1ULL << 63) - 1, 1ULL << 63, UINT64_MAX };
	const size_t lengths[] = { 1, 1, 1, 2, 2, 2, 3, 5, 9, 10, 10 };

	(void)state;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint8_t theirs[WIRE_VARINT_MAX + 2];
		pb_ostream_t os = pb_ostream_from_buffer(theirs, sizeof(theirs));
		size_t n, hdr = 0, body = 0;

		assert_true(pb_encode_varint(&os, values[i]));
		n = os.bytes_written;
		assert_int_equal(n, lengths[i]);
		assert_int_equal(wire_frame_check(theirs, n, SIZE_MAX, &hdr, &body),
				 values[i] == 0 ? 1 : 0);
		assert_int_equal(hdr, n);
		assert_int_equal(body, (size_t)values[i]);
	}
}

/* Every string the daemon sends becomes valid UTF-8 (bad bytes -> '?'):
 * top level, inside submessages, in repeated submessages, in the active
 * oneof member; bytes fields and valid multi-byte text are left alone. */
static void wire_sanitize_every_string(void **state)
{
	static ctld_Message m;
	ctld_ListReply *lr;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.which_kind = ctld_Message_reply_tag;
	m.kind.reply.has_error = true;
	strcpy(m.kind.reply.error.text, "bad \xff byte");
	m.kind.reply.which_result = ctld_Reply_list_tag;
	lr = &m.kind.reply.result.list;
	lr->jobs_count = 2;
	strcpy(lr->jobs[0].command, "caf\xc3\xa9 ok");
	strcpy(lr->jobs[1].command, "\xc3(\xed\xa0\x80");
	strcpy(lr->jobs[1].name, "n\x80");
	lr->jobs[1].command_bytes.size = 2;
	memcpy(lr->jobs[1].command_bytes.bytes, "\xff\xfe", 2);
	assert_int_equal(wire_sanitize_strings(ctld_Message_fields, &m), 6);
	assert_string_equal(m.kind.reply.error.text, "bad ? byte");
	assert_string_equal(lr->jobs[0].command, "caf\xc3\xa9 ok");
	assert_string_equal(lr->jobs[1].command, "?(???");
	assert_string_equal(lr->jobs[1].name, "n?");
	assert_memory_equal(lr->jobs[1].command_bytes.bytes, "\xff\xfe", 2);

	memset(&m, 0, sizeof(m));
	m.which_kind = ctld_Message_event_tag;
	m.kind.event.which_kind = ctld_Event_exec_failed_tag;
	strcpy(m.kind.event.kind.exec_failed.text, "execve \xfe: No such file");
	assert_int_equal(wire_sanitize_strings(ctld_Message_fields, &m), 1);
	assert_string_equal(m.kind.event.kind.exec_failed.text, "execve ?: No such file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wire_frame_check_complete),
		cmocka_unit_test(wire_frame_check_partial),
		cmocka_unit_test(wire_frame_check_empty),
		cmocka_unit_test(wire_frame_check_zero_body),
		cmocka_unit_test(wire_frame_check_split_prefix),
		cmocka_unit_test(wire_frame_check_max_body_boundary),
		cmocka_unit_test(wire_frame_check_bad_tenth_byte),
		cmocka_unit_test(wire_frame_check_unterminated_varint),
		cmocka_unit_test(wire_roundtrip_run_request),
		cmocka_unit_test(wire_roundtrip_output_message),
		cmocka_unit_test(wire_encode_too_small),
		cmocka_unit_test(wire_decode_garbage),
		cmocka_unit_test(wire_decode_too_many_argv),
		cmocka_unit_test(wire_decode_argv_entry_too_long),
		cmocka_unit_test(wire_decode_bytes_too_long),
		cmocka_unit_test(wire_peek_id_before_garbage),
		cmocka_unit_test(wire_peek_id_after_oversized_field),
		cmocka_unit_test(wire_peek_id_absent),
		cmocka_unit_test(wire_frame_check_reads_nanopb_varints),
		cmocka_unit_test(wire_sanitize_every_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
