// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_session.c - client sessions driven for real: a socketpair, the real
 * loop, the real session code, and a fake request handler. The test plays
 * the client on the other end, writing frames and reading replies while it
 * turns the loop with loop_run_once().
 *
 * Covered: the Hello handshake, LIMIT versus PROTOCOL, frame size and frame
 * and Hello timeouts (slowloris), input split at any byte, backpressure, the
 * soft limit (Output dropped, then OutputDropped) and the hard limit
 * (disconnect), deferred replies outliving their session, reply formatting,
 * and the "gone" hook running exactly once per session.
 *
 * The handler_without_reply test makes session.c log "bug: request 11 got no
 * reply" on stderr: that line is expected.
 */
// TEST_SRCS: user/daemon/clients/session.c user/daemon/clients/session_input.c
// TEST_SRCS: user/daemon/clients/sendq.c user/daemon/clients/reply.c user/common/stream.c
// TEST_SRCS: user/daemon/core/idmap.c user/daemon/core/outq.c user/daemon/core/loop.c
// TEST_SRCS: user/common/util.c user/common/wire.c user/common/utf8.c user/common/bytebuf.c
// TEST_SRCS: user/daemon/core/log.c user/daemon/core/log_limit.c user/common/tls.c
// TEST_SRCS: user/daemon/clients/preauth.c
// TEST_SRCS: user/daemon/core/log.c user/common/tls.c user/daemon/core/outbudget.c
// TEST_SRCS: user/common/companion.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/core/outbudget.h"
#include "pb_bytes.h"
#include "daemon/clients/reply.h"
#include "daemon/clients/session.h"
#include "common/util.h"
#include "common/wire.h"

#define PEER_UID 1000
static const struct peer test_peer = {
	.kind = PEER_UNIX, .uid = PEER_UID, .name = "test-peer", .source = "unix uid=1000"
};
#define OUTPUT_CHUNK 16384

enum handler_mode {
	H_OK,         /* reply_ok */
	H_DEFER,      /* reply_defer, answered later by the test */
	H_ERROR,      /* reply_error with a formatted text */
	H_LONG_ERROR, /* reply_error with a text longer than Error.text */
	H_NONE,       /* no reply at all (a handler bug) */
};

static struct {
	struct loop *loop;
	struct session_config cfg;
	int client;   /* the test's end of the socketpair */
	uint64_t sid; /* the session under test */
	uint8_t in[256 * 1024];
	size_t in_len;
	bool eof;
	enum handler_mode mode;
	int handled; /* handler calls, Hello included */
	uint64_t last_id, last_session;
	pb_size_t last_body;
	uid_t last_uid;
	struct pending_reply pending;
	int gone; /* gone hook calls */
	uint64_t gone_id;
} H;

/* Big structs and buffers live here, not on the stack. */
static ctld_Request req;
static ctld_Message msg, out_msg;
static uint8_t wbuf[WIRE_MAX_ENCODED];

/* ------------------------------------------------------------ fake modules */

static void handler(struct request_ctx *ctx, const ctld_Request *r)
{
	char long_text[400];
	ctld_Reply *reply;

	H.handled++;
	H.last_id = ctx->id;
	H.last_session = ctx->session;
	H.last_body = r->which_body;
	H.last_uid = ctx->peer_uid;
	if (r->which_body == ctld_Request_hello_tag) {
		reply = reply_begin(ctx);
		reply->which_result = ctld_Reply_hello_tag;
		reply->result.hello.protocol_version = CTLD_PROTOCOL_VERSION;
		reply_send(ctx);
		return;
	}
	switch (H.mode) {
	case H_OK:
		reply_ok(ctx);
		break;
	case H_DEFER:
		H.pending = reply_defer(ctx);
		break;
	case H_ERROR:
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, ENOENT, "job %llu not found (%s)", 5ULL,
			    "gone");
		break;
	case H_LONG_ERROR:
		memset(long_text, 'e', sizeof(long_text) - 1);
		long_text[sizeof(long_text) - 1] = '\0';
		reply_error(ctx, ctld_ErrorCode_SYSTEM, EIO, "%s!", long_text);
		break;
	case H_NONE:
		break;
	}
}

static void gone_hook(uint64_t session)
{
	H.gone++;
	H.gone_id = session;
}

/* ------------------------------------------------------------ harness */

static int session_test_setup(void **state)
{
	(void)state;
	memset(&H, 0, sizeof(H));
	H.client = -1;
	session_config_defaults(&H.cfg);
	return 0;
}

static int session_test_teardown(void **state)
{
	(void)state;
	if (H.loop) {
		session_shutdown();
		outbudget_shutdown();
		loop_free(H.loop);
	}
	if (H.client >= 0)
		close(H.client);
	return 0;
}

/* Starts the session module with H.cfg and accepts one client. sndbuf > 0 shrinks the
 * daemon side's socket buffer so its output queue fills quickly. */
static void start(int sndbuf)
{
	int sv[2];

	assert_int_equal(loop_new(&H.loop), 0);
	assert_int_equal(session_init(H.loop, &H.cfg, handler, gone_hook), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	if (sndbuf > 0)
		assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)),
				 0);
	H.client = sv[1];
	assert_int_equal(session_accept(sv[0], &test_peer, NULL), 0);
	assert_int_equal(session_count(), 1);
	H.sid = 1; /* session_init restarts ids at 1 */
	assert_true(session_exists(H.sid));
}

static void pump(int ms)
{
	uint64_t end = now_monotonic_ns() + (uint64_t)ms * NSEC_PER_MSEC;

	while (now_monotonic_ns() < end)
		assert_int_equal(loop_run_once(H.loop, 2), 0);
}

static void send_bytes(const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = write(H.client, p, len);

		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			assert_int_equal(loop_run_once(H.loop, 5), 0);
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
}

static size_t encode_request(const ctld_Request *r)
{
	size_t len = 0;

	assert_int_equal(wire_encode(ctld_Request_fields, r, wbuf, sizeof(wbuf), &len), 0);
	return len;
}

static void send_request(const ctld_Request *r)
{
	send_bytes(wbuf, encode_request(r));
}

static void send_simple(uint64_t id, pb_size_t body)
{
	memset(&req, 0, sizeof(req));
	req.id = id;
	req.which_body = body;
	send_request(&req);
}

static void send_hello_version(uint64_t id, uint32_t version)
{
	memset(&req, 0, sizeof(req));
	req.id = id;
	req.which_body = ctld_Request_hello_tag;
	req.body.hello.protocol_version = version;
	strcpy(req.body.hello.client, "test_session");
	send_request(&req);
}

/* Reads one Message from the client end, turning the loop meanwhile.
 * 0, -EPIPE when the daemon closed the connection, -ETIMEDOUT. */
static int recv_msg(ctld_Message *m, int timeout_ms)
{
	uint64_t deadline = now_monotonic_ns() + (uint64_t)timeout_ms * NSEC_PER_MSEC;

	for (;;) {
		size_t hdr = 0, body = 0;
		int ret = wire_frame_check(H.in, H.in_len, WIRE_MAX_ENCODED, &hdr, &body);
		ssize_t n;

		assert_true(ret >= 0);
		if (ret == 1) {
			ret = wire_decode(ctld_Message_fields, H.in + hdr, body, m, NULL);
			assert_int_equal(ret, 0);
			memmove(H.in, H.in + hdr + body, H.in_len - hdr - body);
			H.in_len -= hdr + body;
			return 0;
		}
		if (H.eof)
			return -EPIPE;
		n = read(H.client, H.in + H.in_len, sizeof(H.in) - H.in_len);
		if (n > 0) {
			H.in_len += (size_t)n;
			continue;
		}
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			H.eof = true;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		if (now_monotonic_ns() > deadline)
			return -ETIMEDOUT;
		assert_int_equal(loop_run_once(H.loop, 5), 0);
	}
}

/* Receives a Reply to `id` and checks its error code (OK = no error). */
static ctld_Reply *expect_reply(uint64_t id, ctld_ErrorCode code)
{
	assert_int_equal(recv_msg(&msg, 2000), 0);
	assert_int_equal(msg.which_kind, ctld_Message_reply_tag);
	assert_int_equal(msg.kind.reply.id, id);
	if (code == ctld_ErrorCode_OK) {
		assert_true(!msg.kind.reply.has_error ||
			    msg.kind.reply.error.code == ctld_ErrorCode_OK);
	} else {
		assert_true(msg.kind.reply.has_error);
		assert_int_equal(msg.kind.reply.error.code, code);
	}
	return &msg.kind.reply;
}

/* The daemon closes the connection (nothing more arrives), and the session is forgotten. */
static void expect_closed(void)
{
	assert_int_equal(recv_msg(&msg, 3000), -EPIPE);
	pump(10); /* let the reaper run */
	assert_false(session_exists(H.sid));
	assert_int_equal(session_count(), 0);
	assert_int_equal(H.gone, 1);
	assert_int_equal(H.gone_id, H.sid);
}

static void hello(void)
{
	ctld_Reply *r;

	send_hello_version(1, CTLD_PROTOCOL_VERSION);
	r = expect_reply(1, ctld_ErrorCode_OK);
	assert_int_equal(r->which_result, ctld_Reply_hello_tag);
	assert_int_equal(H.last_body, ctld_Request_hello_tag);
}

/* Fills the stack below the caller with 0x01 bytes, so that code reading an uninitialised
 * local in the next call sees a large recognisable value (0x0101...) rather than whatever
 * small number happened to be left there. */
static __attribute__((noinline)) void poison_stack(void)
{
	volatile uint8_t area[32 * 1024];

	for (size_t i = 0; i < sizeof(area); i++)
		area[i] = 1;
}

/* ---- frames the encoder cannot produce (tests/pb_bytes.h) */

static struct bytes inner, body, frame;

/* frame = varint(body.len) + body */
static void make_frame(void)
{
	frame.len = 0;
	put_varint(&frame, body.len);
	assert_true(frame.len + body.len <= sizeof(frame.buf));
	memcpy(frame.buf + frame.len, body.buf, body.len);
	frame.len += body.len;
}

/* A Request{id, run{argv: 65 x "a"}}: well-formed, but over ctld.options' 64 entries. */
static void build_oversize_run(uint64_t id)
{
	inner.len = 0;
	for (int i = 0; i < 65; i++)
		put_len_field(&inner, ctld_Run_argv_tag, "a", 1);
	body.len = 0;
	put_varint(&body, ctld_Request_id_tag << 3 | PB_WT_VARINT);
	put_varint(&body, id);
	put_len_field(&body, ctld_Request_run_tag, inner.buf, inner.len);
	make_frame();
}

/* A Stats request padded with an unknown field so its length prefix takes two bytes. */
static void build_padded_stats(uint64_t id)
{
	static const uint8_t pad[300];

	body.len = 0;
	put_varint(&body, ctld_Request_id_tag << 3 | PB_WT_VARINT);
	put_varint(&body, id);
	put_len_field(&body, ctld_Request_stats_tag, "", 0);
	put_len_field(&body, 1000, pad, sizeof(pad)); /* unknown fields are skipped */
	make_frame();
	assert_true(frame.buf[0] & 0x80);
}

/* Encodes an Output event of OUTPUT_CHUNK bytes into a frame (in session.c's buffer). */
static void output_frame(struct frame *f, uint64_t offset, bool droppable)
{
	ctld_Output *o = &out_msg.kind.event.kind.output;

	memset(&out_msg, 0, sizeof(out_msg));
	out_msg.which_kind = ctld_Message_event_tag;
	out_msg.kind.event.which_kind = ctld_Event_output_tag;
	o->job = 5;
	o->stream = ctld_Stream_STDERR;
	o->offset = offset;
	o->data.size = OUTPUT_CHUNK;
	memset(o->data.bytes, (int)(offset / OUTPUT_CHUNK) + 'A', OUTPUT_CHUNK);
	assert_int_equal(frame_encode(&out_msg, f), 0);
	f->droppable = droppable;
	f->job = 5;
	f->stream = ctld_Stream_STDERR;
	f->payload = OUTPUT_CHUNK;
}

static void expect_output(uint64_t offset)
{
	const ctld_Output *o = &msg.kind.event.kind.output;

	assert_int_equal(recv_msg(&msg, 2000), 0);
	assert_int_equal(msg.which_kind, ctld_Message_event_tag);
	assert_int_equal(msg.kind.event.which_kind, ctld_Event_output_tag);
	assert_int_equal(o->job, 5);
	assert_int_equal(o->offset, offset);
	assert_int_equal(o->data.size, OUTPUT_CHUNK);
	assert_int_equal(o->data.bytes[0], (int)(offset / OUTPUT_CHUNK) + 'A');
	assert_int_equal(o->data.bytes[OUTPUT_CHUNK - 1], (int)(offset / OUTPUT_CHUNK) + 'A');
}

/* ------------------------------------------------------------ handshake */

/* After Hello, a request reaches the handler with its id, session and peer uid. */
static void session_request_reaches_handler(void **state)
{
	(void)state;
	start(0);
	hello();
	assert_int_equal(H.handled, 1);
	send_simple(42, ctld_Request_stats_tag);
	expect_reply(42, ctld_ErrorCode_OK);
	assert_int_equal(H.handled, 2);
	assert_int_equal(H.last_id, 42);
	assert_int_equal(H.last_body, ctld_Request_stats_tag);
	assert_int_equal(H.last_session, H.sid);
	assert_int_equal(H.last_uid, PEER_UID);
	assert_int_equal(session_protocol_errors(), 0);
	assert_string_equal(session_peer(H.sid), "#1 test-peer");
	assert_int_equal(H.gone, 0);
}

/* Several frames in one write are all handled, in order. */
static void session_pipelined_requests(void **state)
{
	size_t len;
	static uint8_t all[4096];
	size_t total = 0;

	(void)state;
	start(0);
	hello();
	for (uint64_t id = 10; id < 20; id++) {
		memset(&req, 0, sizeof(req));
		req.id = id;
		req.which_body = ctld_Request_list_tag;
		len = encode_request(&req);
		memcpy(all + total, wbuf, len);
		total += len;
	}
	send_bytes(all, total);
	for (uint64_t id = 10; id < 20; id++)
		expect_reply(id, ctld_ErrorCode_OK);
	assert_int_equal(H.handled, 11);
}

/* The first request must be Hello: anything else gets NEED_HELLO and the client is closed. */
static void session_need_hello(void **state)
{
	(void)state;
	start(0);
	send_simple(7, ctld_Request_stats_tag);
	expect_reply(7, ctld_ErrorCode_NEED_HELLO);
	expect_closed();
	assert_int_equal(H.handled, 0);
	assert_int_equal(session_protocol_errors(), 1);
}

/* A Hello with another protocol version gets BAD_VERSION naming both, then a close. */
static void session_bad_version(void **state)
{
	ctld_Reply *r;

	(void)state;
	start(0);
	send_hello_version(3, 2);
	r = expect_reply(3, ctld_ErrorCode_BAD_VERSION);
	assert_string_equal(r->error.text,
			    "protocol version 2 is not supported; this daemon speaks 1");
	expect_closed();
	assert_int_equal(H.handled, 0);
}

/* A second Hello is a BAD_REQUEST, not a reason to drop the client. */
static void session_second_hello(void **state)
{
	ctld_Reply *r;

	(void)state;
	start(0);
	hello();
	send_hello_version(5, CTLD_PROTOCOL_VERSION);
	r = expect_reply(5, ctld_ErrorCode_BAD_REQUEST);
	assert_string_equal(r->error.text, "Hello was already sent");
	send_simple(6, ctld_Request_stats_tag);
	expect_reply(6, ctld_ErrorCode_OK);
	assert_int_equal(H.handled, 2);
}

/* ------------------------------------------------------------ bad input */

/* A well-formed request over a bound gets LIMIT under its own id; the session stays. */
static void session_limit_keeps_session(void **state)
{
	ctld_Reply *r;

	(void)state;
	start(0);
	hello();
	build_oversize_run(9);
	send_bytes(frame.buf, frame.len);
	r = expect_reply(9, ctld_ErrorCode_LIMIT);
	assert_non_null(strstr(r->error.text, "request exceeds a protocol limit"));
	assert_int_equal(H.handled, 1); /* the handler never saw it */
	send_simple(10, ctld_Request_stats_tag);
	expect_reply(10, ctld_ErrorCode_OK);
	assert_true(session_exists(H.sid));
	assert_int_equal(session_protocol_errors(), 0);
}

/* Bytes that do not decode get PROTOCOL (under the id, if one can be read) and a close. */
static void session_garbage_closes(void **state)
{
	const uint8_t garbage[] = { 4, 0x08, 0x2a, 0xff, 0xff }; /* id 42, then junk */
	ctld_Reply *r;

	(void)state;
	start(0);
	hello();
	send_bytes(garbage, sizeof(garbage));
	r = expect_reply(42, ctld_ErrorCode_PROTOCOL);
	assert_non_null(strstr(r->error.text, "request does not decode"));
	expect_closed();
	assert_int_equal(session_protocol_errors(), 1);
}

/* An announced frame larger than max_frame is refused from its prefix alone. */
static void session_oversize_frame_closes(void **state)
{
	const uint8_t prefix[] = { 0x88, 0x27, 1, 2, 3 }; /* 5000 bytes announced */
	ctld_Reply *r;

	(void)state;
	H.cfg.max_frame = 1024;
	start(0);
	hello();
	send_bytes(prefix, sizeof(prefix));
	poison_stack();
	assert_int_equal(loop_run_once(H.loop, 100), 0);
	r = expect_reply(0, ctld_ErrorCode_PROTOCOL);
	assert_string_equal(r->error.text, "frame of 5000 bytes exceeds the 1024-byte limit");
	expect_closed();
}

/* A length prefix that is not a varint gets PROTOCOL and a close. */
static void session_bad_prefix_closes(void **state)
{
	uint8_t junk[12];
	ctld_Reply *r;

	(void)state;
	memset(junk, 0xff, sizeof(junk));
	start(0);
	hello();
	send_bytes(junk, sizeof(junk));
	r = expect_reply(0, ctld_ErrorCode_PROTOCOL);
	assert_string_equal(r->error.text, "malformed frame length prefix");
	expect_closed();
}

/* A handler that forgets to answer still produces exactly one INTERNAL reply. */
static void session_handler_without_reply(void **state)
{
	ctld_Reply *r;

	(void)state;
	start(0);
	hello();
	H.mode = H_NONE;
	send_simple(11, ctld_Request_stats_tag);
	r = expect_reply(11, ctld_ErrorCode_INTERNAL);
	assert_string_equal(r->error.text, "internal error: no reply");
	assert_int_equal(recv_msg(&msg, 50), -ETIMEDOUT); /* and nothing else */
}

/* ------------------------------------------------------------ split input, timeouts */

/* A frame whose two-byte length prefix arrives one byte at a time is still handled. */
static void session_split_length_prefix(void **state)
{
	(void)state;
	H.cfg.frame_timeout_ms = 5000;
	start(0);
	hello();
	build_padded_stats(77);
	send_bytes(frame.buf, 1);
	poison_stack();
	assert_int_equal(loop_run_once(H.loop, 100), 0);
	pump(20);
	assert_true(session_exists(H.sid));
	send_bytes(frame.buf + 1, frame.len - 1);
	expect_reply(77, ctld_ErrorCode_OK);
	assert_int_equal(H.last_id, 77);
	assert_true(session_exists(H.sid));
}

/* A conversation fed one byte per loop round comes out exactly as if sent at once. */
static void session_byte_at_a_time(void **state)
{
	static uint8_t all[2048];
	size_t total = 0, len;

	(void)state;
	start(0);
	memset(&req, 0, sizeof(req));
	req.id = 1;
	req.which_body = ctld_Request_hello_tag;
	req.body.hello.protocol_version = CTLD_PROTOCOL_VERSION;
	len = encode_request(&req);
	memcpy(all, wbuf, len);
	total = len;
	build_padded_stats(2);
	memcpy(all + total, frame.buf, frame.len);
	total += frame.len;
	memset(&req, 0, sizeof(req));
	req.id = 3;
	req.which_body = ctld_Request_list_tag;
	len = encode_request(&req);
	memcpy(all + total, wbuf, len);
	total += len;
	for (size_t i = 0; i < total; i++) {
		send_bytes(all + i, 1);
		assert_int_equal(loop_run_once(H.loop, 0), 0);
	}
	expect_reply(1, ctld_ErrorCode_OK);
	expect_reply(2, ctld_ErrorCode_OK);
	expect_reply(3, ctld_ErrorCode_OK);
	assert_int_equal(H.handled, 3);
	assert_true(session_exists(H.sid));
}

/* A frame left half-sent is dropped after frame_timeout_ms; the gone hook runs once. */
static void session_frame_timeout(void **state)
{
	const uint8_t partial[] = { 100, 0x08, 0x01, 0x6a };
	uint64_t start_ns;

	(void)state;
	H.cfg.frame_timeout_ms = 50;
	start(0);
	hello();
	start_ns = now_monotonic_ns();
	send_bytes(partial, sizeof(partial));
	expect_closed();
	assert_true(now_monotonic_ns() - start_ns >= 50 * NSEC_PER_MSEC);
	assert_int_equal(session_protocol_errors(), 1);
	pump(100);
	assert_int_equal(H.gone, 1);
}

/* Trickling bytes does not extend the frame deadline (slowloris). */
static void session_frame_timeout_trickle(void **state)
{
	static const uint8_t zeros[200];
	const uint8_t prefix[] = { 0xc8, 0x01 }; /* 200 */
	uint64_t start_ns;
	int sent = 0;

	(void)state;
	H.cfg.frame_timeout_ms = 100;
	start(0);
	hello();
	start_ns = now_monotonic_ns();
	send_bytes(prefix, sizeof(prefix));
	while (session_exists(H.sid) && sent < 200) {
		if (write(H.client, zeros + sent, 1) == 1)
			sent++;
		pump(10);
	}
	assert_false(session_exists(H.sid));
	assert_true(sent < 100);
	assert_true(now_monotonic_ns() - start_ns >= 100 * NSEC_PER_MSEC);
	assert_int_equal(H.gone, 1);
}

/* A client that never says Hello is dropped after hello_timeout_ms. */
static void session_hello_timeout(void **state)
{
	uint64_t start_ns = now_monotonic_ns();

	(void)state;
	H.cfg.hello_timeout_ms = 50;
	start(0);
	expect_closed();
	assert_true(now_monotonic_ns() - start_ns >= 50 * NSEC_PER_MSEC);
	assert_int_equal(H.handled, 0);
	assert_int_equal(session_protocol_errors(), 1);
}

/* Hello completes in time: the Hello deadline no longer applies. */
static void session_hello_disarms_timeout(void **state)
{
	(void)state;
	H.cfg.hello_timeout_ms = 50;
	start(0);
	hello();
	pump(120);
	assert_true(session_exists(H.sid));
	assert_int_equal(H.gone, 0);
}

/* The peer closing the connection ends the session quietly; gone runs once. */
static void session_peer_closes(void **state)
{
	(void)state;
	start(0);
	hello();
	close(H.client);
	H.client = -1;
	pump(20);
	assert_false(session_exists(H.sid));
	assert_int_equal(H.gone, 1);
	assert_int_equal(H.gone_id, H.sid);
	assert_int_equal(session_protocol_errors(), 0);
}

/* ------------------------------------------------------------ who counts where */

/* Accepts one more peer of this kind; returns the test's end of its socketpair. */
static int accept_peer(enum peer_kind kind, const char *source, int expect)
{
	struct peer p = { .kind = kind, .uid = kind == PEER_STRANGER ? (uid_t)-1 : 0 };
	int sv[2];

	snprintf(p.name, sizeof(p.name), "test %s", source);
	copy_str(p.source, sizeof(p.source), source);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(session_accept(sv[0], &p, NULL), expect);
	if (expect) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	return sv[1];
}

/* The daemon closed its end of fd (EOF, nothing sent before). */
static bool closed_quietly(int fd)
{
	char c;

	pump(5);
	return read(fd, &c, 1) == 0;
}

/* Strangers wait in a budget of their own; a newcomer evicts the oldest of
 * its source when that source has its share, else the oldest of all. */
static void session_strangers_evict_oldest(void **state)
{
	int a1, a2, a3, b1, c1;

	(void)state;
	H.cfg.max_unauthenticated = 4;
	H.cfg.max_unauthenticated_per_source = 2;
	assert_int_equal(loop_new(&H.loop), 0);
	assert_int_equal(session_init(H.loop, &H.cfg, handler, gone_hook), 0);
	a1 = accept_peer(PEER_STRANGER, "10.0.0.1", 0);
	b1 = accept_peer(PEER_STRANGER, "10.0.0.2", 0);
	a2 = accept_peer(PEER_STRANGER, "10.0.0.1", 0);
	assert_int_equal(session_unauthenticated(), 3);
	a3 = accept_peer(PEER_STRANGER, "10.0.0.1", 0); /* 10.0.0.1 has its 2: a1 goes */
	assert_true(closed_quietly(a1));
	assert_false(closed_quietly(b1));
	assert_int_equal(session_unauthenticated(), 3);
	c1 = accept_peer(PEER_STRANGER, "10.0.0.3", 0); /* room for 4 */
	assert_int_equal(session_unauthenticated(), 4);
	close(accept_peer(PEER_STRANGER, "10.0.0.4", 0)); /* full: the oldest of all, b1, goes */
	assert_true(closed_quietly(b1));
	assert_false(closed_quietly(a2) || closed_quietly(a3) || closed_quietly(c1));
	assert_int_equal(session_evicted(), 2);
	/* known peers never touch the budget */
	close(accept_peer(PEER_UNIX, "unix uid=0", 0));
	close(accept_peer(PEER_LOCAL, "127.0.0.1", 0));
	assert_false(closed_quietly(a2));
	pump(10);
	assert_int_equal(session_unauthenticated(), 3); /* 10.0.0.4 closed by the test */
	close(a1);
	close(a2);
	close(a3);
	close(b1);
	close(c1);
}

/* max_clients counts authenticated clients, the unix socket and TCP apart:
 * a stranger's Hello over the limit is answered LIMIT and closed. */
static void session_client_slots(void **state)
{
	int tcp1, tcp2, unix1;

	(void)state;
	H.cfg.max_clients = 1;
	assert_int_equal(loop_new(&H.loop), 0);
	assert_int_equal(session_init(H.loop, &H.cfg, handler, gone_hook), 0);
	tcp1 = accept_peer(PEER_STRANGER, "10.0.0.1", 0);
	tcp2 = accept_peer(PEER_STRANGER, "10.0.0.2", 0);
	H.client = tcp1;
	hello();
	assert_int_equal(session_unauthenticated(), 1);
	H.client = tcp2;
	send_hello_version(7, CTLD_PROTOCOL_VERSION);
	assert_string_equal(expect_reply(7, ctld_ErrorCode_LIMIT)->error.text, "too many clients");
	assert_int_equal(recv_msg(&msg, 3000), -EPIPE);
	H.client = -1;
	assert_int_equal(session_unauthenticated(), 0);
	/* TCP is full; the unix socket has its own slot, and only one */
	unix1 = accept_peer(PEER_UNIX, "unix uid=0", 0);
	accept_peer(PEER_UNIX, "unix uid=0", -EUSERS);
	accept_peer(PEER_LOCAL, "127.0.0.1", -EUSERS);
	close(tcp1);
	pump(20); /* tcp1 goes: its slot is free */
	close(accept_peer(PEER_LOCAL, "127.0.0.1", 0));
	close(tcp2);
	close(unix1);
}

/* ------------------------------------------------------------ output limits */

/* Output beyond the soft limit is dropped and counted; once the reader drains, it gets
 * OutputDropped{job, stream, bytes}, and output flows again. */
static void session_soft_limit_drops_output(void **state)
{
	const ctld_OutputDropped *d = &msg.kind.event.kind.output_dropped;
	struct frame f;
	int queued = 0, dropped = 0;

	(void)state;
	H.cfg.queue_soft_limit = 64 * 1024;
	H.cfg.queue_hard_limit = 1024 * 1024;
	start(4096);
	hello();
	for (int i = 0; i < 20; i++) {
		int ret;

		output_frame(&f, (uint64_t)i * OUTPUT_CHUNK, true);
		ret = session_queue(H.sid, &f);
		if (ret == 0) {
			assert_int_equal(dropped, 0); /* once dropping, every Output is dropped */
			queued++;
		} else {
			assert_int_equal(ret, -ENOBUFS);
			dropped++;
		}
	}
	assert_true(queued >= 4);
	assert_true(dropped > 0);
	assert_int_equal(session_output_dropped_bytes(), (uint64_t)dropped * OUTPUT_CHUNK);
	assert_true(session_exists(H.sid));

	for (int i = 0; i < queued; i++)
		expect_output((uint64_t)i * OUTPUT_CHUNK);
	assert_int_equal(recv_msg(&msg, 2000), 0);
	assert_int_equal(msg.which_kind, ctld_Message_event_tag);
	assert_int_equal(msg.kind.event.which_kind, ctld_Event_output_dropped_tag);
	assert_int_equal(d->job, 5);
	assert_int_equal(d->stream, ctld_Stream_STDERR);
	assert_int_equal(d->bytes, (uint64_t)dropped * OUTPUT_CHUNK);
	assert_int_equal(d->reason, ctld_DropReason_DROP_SLOW_CLIENT);

	/* reported once, and output is delivered again */
	output_frame(&f, 100 * OUTPUT_CHUNK, true);
	assert_int_equal(session_queue(H.sid, &f), 0);
	expect_output(100 * OUTPUT_CHUNK);
	assert_int_equal(recv_msg(&msg, 50), -ETIMEDOUT);
	assert_true(session_exists(H.sid));
}

/* The daemon's output budget drops a client's Output long before its own queue limit, with
 * the same OutputDropped report of exactly what it lost; an empty queue is never refused. */
static void session_budget_drops_output(void **state)
{
	const ctld_OutputDropped *d = &msg.kind.event.kind.output_dropped;
	struct outbudget_stats st;
	struct frame f;
	int queued = 0, dropped = 0;

	(void)state;
	start(4096);
	hello();
	outbudget_init(H.loop, 1u << 20);
	for (int i = 0; i < 80; i++) {
		output_frame(&f, (uint64_t)i * OUTPUT_CHUNK, true);
		if (session_queue(H.sid, &f) == 0) {
			assert_int_equal(dropped, 0);
			queued++;
		} else {
			dropped++;
		}
	}
	assert_true(queued >= 2);
	assert_true(dropped > 0);
	/* 80 frames are 1.25 MiB: far below the 32 MiB queue limit */
	assert_true((size_t)queued * OUTPUT_CHUNK < H.cfg.queue_soft_limit / 16);
	outbudget_get_stats(&st);
	assert_true(st.held <= (1u << 20));
	assert_int_equal(st.dropped, (uint64_t)dropped * OUTPUT_CHUNK);
	assert_int_equal(session_output_dropped_bytes(), (uint64_t)dropped * OUTPUT_CHUNK);

	for (int i = 0; i < queued; i++)
		expect_output((uint64_t)i * OUTPUT_CHUNK);
	assert_int_equal(recv_msg(&msg, 2000), 0);
	assert_int_equal(msg.kind.event.which_kind, ctld_Event_output_dropped_tag);
	assert_int_equal(d->job, 5);
	assert_int_equal(d->bytes, (uint64_t)dropped * OUTPUT_CHUNK);
	assert_int_equal(d->reason, ctld_DropReason_DROP_SLOW_CLIENT);
	/* drained: the next Output goes through */
	output_frame(&f, 100 * OUTPUT_CHUNK, true);
	assert_int_equal(session_queue(H.sid, &f), 0);
	expect_output(100 * OUTPUT_CHUNK);
	outbudget_get_stats(&st);
	assert_int_equal(st.held, 0);
}

/* Drops are reported before the next control message (e.g. Exited), even while the queue is
 * still full, so the marker sits exactly where the gap is. */
static void session_drop_marker_precedes_control(void **state)
{
	ctld_Event *ev;
	struct frame f;
	int queued = 0, dropped = 0;

	(void)state;
	H.cfg.queue_soft_limit = 64 * 1024;
	H.cfg.queue_hard_limit = 1024 * 1024;
	start(4096);
	hello();
	for (int i = 0; i < 12; i++) {
		output_frame(&f, (uint64_t)i * OUTPUT_CHUNK, true);
		if (session_queue(H.sid, &f) == 0)
			queued++;
		else
			dropped++;
	}
	assert_true(dropped > 0);
	ev = event_begin(ctld_Event_exited_tag);
	ev->kind.exited.job = 5;
	ev->kind.exited.exit_code = 3;
	assert_int_equal(event_send(H.sid), 0);

	for (int i = 0; i < queued; i++)
		expect_output((uint64_t)i * OUTPUT_CHUNK);
	assert_int_equal(recv_msg(&msg, 2000), 0);
	assert_int_equal(msg.kind.event.which_kind, ctld_Event_output_dropped_tag);
	assert_int_equal(msg.kind.event.kind.output_dropped.bytes, (uint64_t)dropped * OUTPUT_CHUNK);
	assert_int_equal(recv_msg(&msg, 2000), 0);
	assert_int_equal(msg.kind.event.which_kind, ctld_Event_exited_tag);
	assert_int_equal(msg.kind.event.kind.exited.job, 5);
	assert_int_equal(msg.kind.event.kind.exited.exit_code, 3);
	assert_int_equal(recv_msg(&msg, 50), -ETIMEDOUT); /* the marker is not repeated */
}

/* While the queue is over the soft limit the client's requests wait; they are read
 * once it drains (a client that does not read cannot make the daemon work). */
static void session_backpressure_stops_reading(void **state)
{
	struct frame f;
	int queued;

	(void)state;
	H.cfg.queue_soft_limit = 64 * 1024;
	H.cfg.queue_hard_limit = 1024 * 1024;
	start(4096);
	hello();
	for (queued = 0; queued < 8; queued++) {
		output_frame(&f, (uint64_t)queued * OUTPUT_CHUNK, false); /* not droppable */
		assert_int_equal(session_queue(H.sid, &f), 0);
	}
	send_simple(30, ctld_Request_stats_tag);
	pump(50);
	assert_int_equal(H.handled, 1); /* only the Hello */
	for (int i = 0; i < queued; i++)
		expect_output((uint64_t)i * OUTPUT_CHUNK);
	expect_reply(30, ctld_ErrorCode_OK);
	assert_int_equal(H.handled, 2);
}

/* Queueing past the hard limit disconnects the client; later sends see -ENOENT. */
static void session_hard_limit_disconnects(void **state)
{
	struct frame f;
	int ret = 0, queued = 0;

	(void)state;
	H.cfg.queue_soft_limit = 64 * 1024;
	H.cfg.queue_hard_limit = 128 * 1024;
	start(4096);
	hello();
	for (int i = 0; i < 100 && ret == 0; i++) {
		output_frame(&f, (uint64_t)i * OUTPUT_CHUNK, false);
		ret = session_queue(H.sid, &f);
		queued += ret == 0;
	}
	assert_int_equal(ret, -ENOBUFS);
	assert_true(queued >= 128 * 1024 / (OUTPUT_CHUNK + 32) - 1);
	assert_false(session_exists(H.sid));
	output_frame(&f, 0, false);
	assert_int_equal(session_queue(H.sid, &f), -ENOENT);
	/* whatever reached the socket is readable, then the connection ends */
	for (int i = 0; i < 200 && recv_msg(&msg, 2000) == 0; i++)
		assert_int_equal(msg.which_kind, ctld_Message_event_tag);
	assert_true(H.eof);
	pump(10);
	assert_int_equal(H.gone, 1);
	assert_int_equal(H.gone_id, H.sid);
}

/* ------------------------------------------------------------ replies */

/* reply_error formats its text and carries code and errno to the client. */
static void session_reply_error_format(void **state)
{
	ctld_Reply *r;

	(void)state;
	start(0);
	hello();
	H.mode = H_ERROR;
	send_simple(12, ctld_Request_stats_tag);
	r = expect_reply(12, ctld_ErrorCode_NOT_FOUND);
	assert_string_equal(r->error.text, "job 5 not found (gone)");
	assert_int_equal(r->error.sys_errno, ENOENT);
}

/* A text longer than Error.text is truncated to 255 bytes, not dropped or overflowed. */
static void session_reply_error_truncated(void **state)
{
	ctld_Reply *r;

	(void)state;
	start(0);
	hello();
	H.mode = H_LONG_ERROR;
	send_simple(13, ctld_Request_stats_tag);
	r = expect_reply(13, ctld_ErrorCode_SYSTEM);
	assert_int_equal(strlen(r->error.text), 255);
	assert_int_equal(r->error.text[254], 'e');
	assert_int_equal(r->error.sys_errno, EIO);
	assert_true(session_exists(H.sid));
}

/* A deferred reply counts against max_pending and arrives when the owner answers. */
static void session_deferred_reply(void **state)
{
	ctld_Reply *r;

	(void)state;
	H.cfg.max_pending = 1;
	start(0);
	hello();
	H.mode = H_DEFER;
	send_simple(20, ctld_Request_write_stdin_tag);
	pump(20);
	assert_int_equal(H.last_id, 20);
	assert_true(session_pending_full(H.sid));
	assert_int_equal(recv_msg(&msg, 30), -ETIMEDOUT); /* no reply yet */
	pending_reply_error(&H.pending, ctld_ErrorCode_SYSTEM, EPIPE, "stdin %s", "closed");
	r = expect_reply(20, ctld_ErrorCode_SYSTEM);
	assert_string_equal(r->error.text, "stdin closed");
	assert_int_equal(r->error.sys_errno, EPIPE);
	assert_false(session_pending_full(H.sid));
}

/* Answering a deferred request after its client went away does nothing (and no harm). */
static void session_pending_reply_after_gone(void **state)
{
	struct pending_reply copy;

	(void)state;
	H.cfg.max_pending = 1;
	start(0);
	hello();
	H.mode = H_DEFER;
	send_simple(21, ctld_Request_write_stdin_tag);
	pump(20);
	assert_true(session_pending_full(H.sid));
	close(H.client);
	H.client = -1;
	pump(20);
	assert_int_equal(H.gone, 1);
	assert_false(session_exists(H.sid));
	copy = H.pending;
	pending_reply_ok(&H.pending);
	pending_reply_error(&copy, ctld_ErrorCode_SYSTEM, EIO, "late %d", 1);
	assert_false(session_pending_full(H.sid));
	event_begin(ctld_Event_launched_tag);
	assert_int_equal(event_send(H.sid), -ENOENT);
	assert_int_equal(H.gone, 1);
}

/* session_close_all_after_flush delivers what is queued, then closes every client. */
static void session_close_all_flushes(void **state)
{
	struct frame f;

	(void)state;
	H.cfg.queue_soft_limit = 64 * 1024;
	start(4096);
	hello();
	for (int i = 0; i < 3; i++) {
		output_frame(&f, (uint64_t)i * OUTPUT_CHUNK, false);
		assert_int_equal(session_queue(H.sid, &f), 0);
	}
	session_close_all_after_flush();
	for (int i = 0; i < 3; i++)
		expect_output((uint64_t)i * OUTPUT_CHUNK);
	expect_closed();
}

/* A closing client that never reads cannot hold its session (or a shutdown) forever: it is
 * dropped once the flush deadline (2 s in session.c) passes. */
static void session_close_flush_deadline(void **state)
{
	struct frame f;
	uint64_t start_ns;

	(void)state;
	H.cfg.queue_soft_limit = 64 * 1024;
	H.cfg.queue_hard_limit = 1024 * 1024;
	start(4096);
	hello();
	for (int i = 0; i < 4; i++) {
		output_frame(&f, (uint64_t)i * OUTPUT_CHUNK, false);
		assert_int_equal(session_queue(H.sid, &f), 0);
	}
	start_ns = now_monotonic_ns();
	session_close_all_after_flush();
	pump(300);
	assert_true(session_exists(H.sid)); /* still trying to flush */
	while (H.gone == 0 && now_monotonic_ns() - start_ns < 5 * NSEC_PER_SEC)
		pump(20);
	assert_int_equal(H.gone, 1);
	assert_false(session_exists(H.sid));
	assert_true(now_monotonic_ns() - start_ns >= 1900 * NSEC_PER_MSEC);
}

#define T(name) cmocka_unit_test_setup_teardown(name, session_test_setup, session_test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(session_request_reaches_handler),
		T(session_pipelined_requests),
		T(session_need_hello),
		T(session_bad_version),
		T(session_second_hello),
		T(session_limit_keeps_session),
		T(session_garbage_closes),
		T(session_oversize_frame_closes),
		T(session_bad_prefix_closes),
		T(session_handler_without_reply),
		T(session_split_length_prefix),
		T(session_byte_at_a_time),
		T(session_frame_timeout),
		T(session_frame_timeout_trickle),
		T(session_hello_timeout),
		T(session_hello_disarms_timeout),
		T(session_peer_closes),
		T(session_strangers_evict_oldest),
		T(session_client_slots),
		T(session_soft_limit_drops_output),
		T(session_budget_drops_output),
		T(session_drop_marker_precedes_control),
		T(session_backpressure_stops_reading),
		T(session_hard_limit_disconnects),
		T(session_reply_error_format),
		T(session_reply_error_truncated),
		T(session_deferred_reply),
		T(session_pending_reply_after_gone),
		T(session_close_all_flushes),
		T(session_close_flush_deadline),
	};

	log_set_level(LOG_WARN);
	alarm(300); /* a hang is a failure, not a stuck CI job */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
