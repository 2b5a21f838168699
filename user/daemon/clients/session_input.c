// SPDX-License-Identifier: BSD-2-Clause
/*
 * session_input.c - what a client sends: bytes read (bounded per wake-up,
 * for fairness), cut into frames no larger than max_frame, each decoded
 * only once complete and within frame_timeout_ms of its first byte, the
 * Hello checked, and every request handed to the dispatcher, which must
 * answer it exactly once.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/stream.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/wire.h"
#include "daemon/clients/reply.h"
#include "daemon/clients/session_priv.h"
#include "daemon/core/log.h"

/* Answers with PROTOCOL and closes: the stream can no longer be trusted. */
static void protocol_error(struct session *s, uint64_t id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void protocol_error(struct session *s, uint64_t id, const char *fmt, ...)
{
	struct request_ctx ctx = { .session = s->id, .id = id };
	char text[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	SS.protocol_errors++;
	reply_error(&ctx, ctld_ErrorCode_PROTOCOL, 0, "%s", text);
	session_close_after_flush(s, text);
}

static void hello_check(struct session *s, struct request_ctx *ctx, const ctld_Request *req)
{
	if (req->which_body != ctld_Request_hello_tag) {
		SS.protocol_errors++;
		reply_error(ctx, ctld_ErrorCode_NEED_HELLO, 0, "the first request must be Hello");
		session_close_after_flush(s, "first request was not Hello");
		return;
	}
	if (req->body.hello.protocol_version != CTLD_PROTOCOL_VERSION) {
		SS.protocol_errors++;
		reply_error(ctx, ctld_ErrorCode_BAD_VERSION, 0,
			    "protocol version %u is not supported; this daemon speaks %d",
			    req->body.hello.protocol_version, CTLD_PROTOCOL_VERSION);
		session_close_after_flush(s, "protocol version mismatch");
		return;
	}
	if (session_admit(s)) {
		reply_error(ctx, ctld_ErrorCode_LIMIT, 0, "too many clients");
		session_close_after_flush(s, "refused: client limit reached");
		return;
	}
	s->state = ST_READY;
	s->said_hello = true;
	loop_timer_disarm(SS.loop, &s->deadline);
	log_debug("client %s: hello from \"%s\"", s->peer, req->body.hello.client);
	SS.handler(ctx, req);
}

static void handle_frame(struct session *s, const uint8_t *body, size_t len)
{
	struct request_ctx ctx = { .session = s->id, .peer_uid = s->peer_uid };
	const char *why = NULL;
	int err = wire_decode(ctld_Request_fields, body, len, &SS.request, &why);

	if (err) {
		uint64_t id = 0;

		wire_peek_request_id(body, len, &id);
		ctx.id = id;
		if (err == -E2BIG && s->state == ST_READY) {
			reply_error(&ctx, ctld_ErrorCode_LIMIT, 0,
				    "request exceeds a protocol limit (%s); see docs/protocol.md",
				    why);
			return;
		}
		protocol_error(s, id, "request does not decode: %s", why ? why : "?");
		return;
	}
	ctx.id = SS.request.id;
	if (s->state == ST_HELLO) {
		hello_check(s, &ctx, &SS.request);
	} else if (SS.request.which_body == ctld_Request_hello_tag) {
		reply_error(&ctx, ctld_ErrorCode_BAD_REQUEST, 0, "Hello was already sent");
	} else {
		SS.handler(&ctx, &SS.request);
	}
	if (!ctx.replied && !ctx.deferred) {
		log_err("bug: request %llu got no reply", (unsigned long long)ctx.id);
		reply_error(&ctx, ctld_ErrorCode_INTERNAL, 0, "internal error: no reply");
	}
}

/* Handles every complete frame in the input buffer. */
static void process_input(struct session *s)
{
	while (s->in.len && (s->state == ST_HELLO || s->state == ST_READY)) {
		const uint8_t *frame;
		size_t hdr = 0, body = 0;
		int ret = wire_frame_check(bytebuf_head(&s->in), s->in.len, SS.cfg.max_frame, &hdr,
					   &body);

		if (ret == -EMSGSIZE) {
			protocol_error(s, 0, "frame of %zu bytes exceeds the %zu-byte limit", body,
				       SS.cfg.max_frame);
			return;
		}
		if (ret < 0) {
			protocol_error(s, 0, "malformed frame length prefix");
			return;
		}
		if (ret == 0) {
			/* Partial frame: make sure it can fit, and start its clock. */
			if (hdr + body > s->in.len &&
			    bytebuf_reserve(&s->in, hdr + body - s->in.len, INBUF_MIN) < 0) {
				session_kill(s, "out of memory for the input buffer");
				return;
			}
			if (s->state == ST_READY && !loop_timer_armed(&s->deadline))
				loop_timer_arm_in(SS.loop, &s->deadline,
						  SS.cfg.frame_timeout_ms * NSEC_PER_MSEC);
			return;
		}
		if (s->state == ST_READY)
			loop_timer_disarm(SS.loop, &s->deadline);
		/* Consumed before it is handled (the bytes stay where they are
		 * until the next read): the handler may close the session. */
		frame = bytebuf_head(&s->in) + hdr;
		bytebuf_consume(&s->in, hdr + body);
		handle_frame(s, frame, body);
	}
	bytebuf_shrink(&s->in, 4 * INBUF_MIN); /* give back the memory of a big frame */
}

void session_read_input(struct session *s)
{
	size_t budget = 4 * READ_CHUNK; /* fairness between clients */

	while (s->state == ST_HELLO || s->state == ST_READY) {
		ssize_t n;

		if (bytebuf_reserve(&s->in, READ_CHUNK, INBUF_MIN) < 0) {
			session_kill(s, "out of memory for the input buffer");
			return;
		}
		n = stream_read(s->fd, s->tls, bytebuf_tail(&s->in), bytebuf_space(&s->in));
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			if (n == -ETIMEDOUT) /* --tcp-keepalive: unreachable, or not reading */
				session_kill(s, "the peer acknowledged nothing for too long");
			else if (n < 0 && n != -ECONNRESET)
				session_kill(s, "read failed");
			else if (s->in.len)
				session_kill(s, "peer closed in the middle of a frame");
			else
				session_close_after_flush(s, "peer closed the connection");
			return;
		}
		bytebuf_filled(&s->in, (size_t)n);
		process_input(s);
		if (!s->tls && (size_t)n < READ_CHUNK)
			return; /* level-triggered: epoll will call again */
		if ((size_t)n >= budget)
			return;
		budget -= (size_t)n;
		if (sendq_full(&s->out))
			return; /* not reading its replies: stop taking requests */
	}
}

void session_handshake(struct session *s)
{
	int err = tls_conn_handshake(s->tls);
	bool resumed;

	if (err == -EAGAIN) {
		session_update_mask(s);
		return;
	}
	if (err) {
		SS.protocol_errors++;
		session_log(s, LOG_WARN, "client %s: TLS handshake failed: %s", s->peer,
			    tls_conn_error(s->tls));
		session_kill(s, NULL);
		return;
	}
	resumed = tls_conn_resumed(s->tls);
	SS.tls_handshakes[resumed]++;
	session_log(s, LOG_INFO, "client %s: TLS peer %s (%s handshake)", s->peer,
		    tls_conn_peer_subject(s->tls), resumed ? "resumed" : "full");
	s->state = ST_HELLO;
	session_update_mask(s);
	session_read_input(s); /* TLS may already hold decrypted bytes */
}

