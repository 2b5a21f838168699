// SPDX-License-Identifier: BSD-2-Clause
/*
 * session.c - client connections: read, frame, decode, dispatch, write.
 *
 * Life of a session:
 *   HANDSHAKE (TLS only) -> HELLO -> READY -> [CLOSING: flush, then close] -> gone
 *
 * Rules this file enforces for the whole daemon:
 * - A peer's bytes are decoded only as complete frames no larger than
 *   max_frame; a frame must complete within frame_timeout_ms and Hello must
 *   come within hello_timeout_ms (slowloris clients are dropped).
 * - Garbage (bad length prefix, bytes that do not decode, a request before
 *   Hello, a wrong protocol version) gets an Error reply if possible, then
 *   only that client is closed. A well-formed request that exceeds a bound of
 *   ctld.options is answered with LIMIT and the client stays.
 * - Writes never block: frames go to the client's sendq (see sendq.h for
 *   the soft and hard limits). Control messages are written once per loop
 *   round (a Run's reply and its Launched leave in one write, and the
 *   client wakes once); Output at once. While the queue is over the soft
 *   limit the client's requests are not read either.
 * - Closing is deferred to a zero-delay timer, so a module broadcasting to
 *   many sessions never sees one vanish in the middle of its loop; the
 *   "session gone" hook runs from there.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/bytebuf.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/wire.h"
#include "daemon/clients/reply.h"
#include "daemon/clients/sendq.h"
#include "daemon/clients/session.h"
#include "daemon/core/idmap.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"

#define READ_CHUNK (64 * 1024)
#define INBUF_MIN (16 * 1024)
#define CLOSE_FLUSH_MS 2000

enum session_state { ST_HANDSHAKE, ST_HELLO, ST_READY, ST_CLOSING, ST_DEAD };

struct session {
	uint64_t id;
	int fd;
	enum session_state state;
	struct tls_conn *tls;
	uid_t peer_uid;
	char peer[80];
	struct bytebuf in;
	struct sendq out;
	uint32_t mask;
	struct loop_timer deadline; /* hello, partial frame, or close flush, by state */
	bool write_broken; /* the peer cannot receive anymore; requests still count */
	bool flush_due;    /* listed in S.flush_ids: write before the loop waits */
	unsigned pending;
	struct session *next_dead;
};

static struct {
	struct loop *loop;
	struct session_config cfg;
	request_handler_fn handler;
	session_gone_fn gone;
	struct idmap sessions;
	uint64_t next_id;
	uint64_t protocol_errors;
	uint64_t dropped_bytes;
	struct session *dead; /* killed, waiting for the reaper */
	struct loop_timer reaper;
	uint64_t *flush_ids;  /* sessions with queued output, by id (they may die) */
	size_t nflush, flush_cap;
	ctld_Request request;
} S;

static void session_io(struct loop *loop, int fd, uint32_t events, void *ctx);
static void flush_output(struct session *s);
static void flush_due_sessions(struct loop *loop, void *ctx);

void session_config_defaults(struct session_config *cfg)
{
	*cfg = (struct session_config){
		.max_frame = WIRE_DEFAULT_MAX_FRAME,
		.queue_soft_limit = 32u << 20,
		.queue_hard_limit = 40u << 20,
		.hello_timeout_ms = 10000,
		.frame_timeout_ms = 10000,
		.max_clients = 1024,
		.max_pending = 64,
	};
}

/* ------------------------------------------------------------ lifetime */

static void reap_dead(struct loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
	while (S.dead) {
		struct session *s = S.dead;

		S.dead = s->next_dead;
		if (S.gone)
			S.gone(s->id);
		sendq_clear(&s->out);
		bytebuf_free(&s->in);
		free(s);
	}
}

/* Closes the connection now; the struct and the gone hook wait for the reaper. */
static void session_kill(struct session *s, const char *why)
{
	if (s->state == ST_DEAD)
		return;
	if (why)
		log_info("client %s: closing: %s", s->peer, why);
	s->state = ST_DEAD;
	loop_timer_disarm(S.loop, &s->deadline);
	loop_fd_del(S.loop, s->fd);
	if (s->tls)
		tls_conn_free(s->tls);
	s->tls = NULL;
	close(s->fd);
	s->fd = -1;
	idmap_del(&S.sessions, s->id);
	s->next_dead = S.dead;
	S.dead = s;
	loop_timer_arm(S.loop, &S.reaper, 0);
}

static void update_mask(struct session *s)
{
	uint32_t mask = 0;

	if (s->state == ST_DEAD)
		return;
	if (s->state != ST_CLOSING && !sendq_full(&s->out))
		mask |= EPOLLIN;
	/* EPOLLOUT only once a write came up short: output merely queued in
	 * this round is written before the loop waits anyway. */
	if ((sendq_bytes(&s->out) && !s->flush_due) || (s->tls && tls_conn_wants_write(s->tls)))
		mask |= EPOLLOUT;
	if (!mask)
		mask = EPOLLIN; /* closing with nothing to send: the reaper is on its way */
	if (mask != s->mask && loop_fd_set_mask(S.loop, s->fd, mask) == 0)
		s->mask = mask;
}

/* Stop reading, send what is queued (an Error reply, usually), then close. */
static void session_close_after_flush(struct session *s, const char *why)
{
	if (s->state == ST_DEAD || s->state == ST_CLOSING)
		return;
	log_info("client %s: %s", s->peer, why);
	s->state = ST_CLOSING;
	if (!sendq_bytes(&s->out)) {
		session_kill(s, NULL);
		return;
	}
	loop_timer_arm_in(S.loop, &s->deadline, CLOSE_FLUSH_MS * NSEC_PER_MSEC);
	update_mask(s);
}

static void deadline_expired(struct loop *loop, void *ctx)
{
	struct session *s = ctx;

	(void)loop;
	switch (s->state) {
	case ST_HANDSHAKE:
	case ST_HELLO:
		S.protocol_errors++;
		session_kill(s, "no Hello within the handshake timeout");
		break;
	case ST_READY:
		S.protocol_errors++;
		session_kill(s, "a frame did not complete within the frame timeout");
		break;
	default:
		session_kill(s, "could not flush before closing");
	}
}

static void pending_add(uint64_t session, int delta);

static const struct reply_sink sink = {
	.queue = session_queue,
	.peer = session_peer,
	.pending = pending_add,
	.pending_full = session_pending_full,
};

int session_init(struct loop *loop, const struct session_config *cfg, request_handler_fn handler,
		 session_gone_fn gone)
{
	memset(&S, 0, sizeof(S));
	S.loop = loop;
	S.cfg = *cfg;
	S.handler = handler;
	S.gone = gone;
	S.next_id = 1;
	idmap_init(&S.sessions);
	loop_timer_init(&S.reaper, reap_dead, NULL);
	loop_set_before_wait(loop, flush_due_sessions, NULL);
	reply_init(&sink);
	return 0;
}

void session_close_all_after_flush(void)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&S.sessions, &it, &id, &value);)
		session_close_after_flush(value, "daemon is shutting down");
}

void session_shutdown(void)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&S.sessions, &it, &id, &value);)
		session_kill(value, NULL);
	reap_dead(S.loop, NULL);
	loop_timer_disarm(S.loop, &S.reaper);
	loop_set_before_wait(S.loop, NULL, NULL);
	idmap_free(&S.sessions);
	free(S.flush_ids);
	S.flush_ids = NULL;
	S.nflush = S.flush_cap = 0;
}

int session_accept(int fd, const char *peer, uid_t peer_uid, struct tls_conn *tls)
{
	struct session *s;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->id = S.next_id++;
	s->fd = fd;
	s->tls = tls;
	s->peer_uid = peer_uid;
	s->state = tls ? ST_HANDSHAKE : ST_HELLO;
	s->mask = EPOLLIN;
	snprintf(s->peer, sizeof(s->peer), "#%llu %s", (unsigned long long)s->id, peer);
	sendq_init(&s->out, S.cfg.queue_soft_limit, S.cfg.queue_hard_limit);
	loop_timer_init(&s->deadline, deadline_expired, s);
	if ((err = idmap_put(&S.sessions, s->id, s)))
		goto fail;
	if ((err = loop_fd_add(S.loop, fd, EPOLLIN, session_io, s))) {
		idmap_del(&S.sessions, s->id);
		goto fail;
	}
	loop_timer_arm_in(S.loop, &s->deadline, S.cfg.hello_timeout_ms * NSEC_PER_MSEC);
	log_debug("client %s: connected", s->peer);
	return 0;
fail:
	free(s);
	return err;
}

unsigned session_max_clients(void)
{
	return S.cfg.max_clients;
}

unsigned session_count(void)
{
	return (unsigned)S.sessions.count;
}

bool session_exists(uint64_t session)
{
	return idmap_get(&S.sessions, session) != NULL;
}

const char *session_peer(uint64_t session)
{
	struct session *s = idmap_get(&S.sessions, session);

	return s ? s->peer : "(gone)";
}

uint64_t session_protocol_errors(void)
{
	return S.protocol_errors;
}

uint64_t session_output_dropped_bytes(void)
{
	return S.dropped_bytes;
}

bool session_pending_full(uint64_t session)
{
	struct session *s = idmap_get(&S.sessions, session);

	return s && s->pending >= S.cfg.max_pending;
}

static void pending_add(uint64_t session, int delta)
{
	struct session *s = idmap_get(&S.sessions, session);

	if (s && (delta > 0 || s->pending))
		s->pending += (unsigned)delta;
}

/* ------------------------------------------------------------ transport */

static ssize_t io_read(struct session *s, void *buf, size_t len)
{
	ssize_t n;

	if (s->tls)
		return tls_conn_read(s->tls, buf, len);
	n = read(s->fd, buf, len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n;
}

static ssize_t io_write(struct session *s)
{
	struct iovec iov[16];
	int n = sendq_iov(&s->out, iov, s->tls ? 1 : 16);
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	ssize_t w;

	if (s->tls)
		return tls_conn_write(s->tls, iov[0].iov_base, iov[0].iov_len);
	/* MSG_NOSIGNAL: a vanished peer is EPIPE here, never SIGPIPE. */
	w = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
	if (w < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return w;
}

/* ------------------------------------------------------------ output */

/* Control messages are written when the loop is about to wait, so what a
 * client is sent during one round (a Run's reply and Launched) leaves in
 * one write and wakes it once. Output goes to the socket at once, so the
 * kernel's socket buffer absorbs bursts before our queue (and its drop
 * limit) has to. */
static void flush_soon(struct session *s, bool now)
{
	if (s->state == ST_HANDSHAKE)
		return;
	if (now) {
		flush_output(s);
		return;
	}
	if (s->flush_due)
		return;
	if (S.nflush == S.flush_cap) {
		size_t cap = S.flush_cap ? S.flush_cap * 2 : 64;
		uint64_t *grown = realloc(S.flush_ids, cap * sizeof(*grown));

		if (!grown) {
			flush_output(s); /* no room to defer: write now */
			return;
		}
		S.flush_ids = grown;
		S.flush_cap = cap;
	}
	S.flush_ids[S.nflush++] = s->id;
	s->flush_due = true;
}

static void flush_due_sessions(struct loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
	/* flush_output may queue more (drop markers): loop by index */
	for (size_t i = 0; i < S.nflush; i++) {
		struct session *s = idmap_get(&S.sessions, S.flush_ids[i]);

		if (!s)
			continue; /* closed meanwhile */
		s->flush_due = false;
		flush_output(s);
	}
	S.nflush = 0;
}

int session_queue(uint64_t session, const struct frame *f)
{
	struct session *s = idmap_get(&S.sessions, session);

	if (!s || s->state == ST_DEAD || s->write_broken)
		return -ENOENT;
	switch (sendq_push(&s->out, f)) {
	case SENDQ_DROPPED:
		S.dropped_bytes += f->payload;
		return -ENOBUFS;
	case SENDQ_OVERFLOW:
		session_kill(s, "client is not reading: output queue over the hard limit");
		return -ENOBUFS;
	case SENDQ_QUEUED:
		break;
	}
	flush_soon(s, f->droppable);
	return 0;
}

/* The peer can no longer receive. Requests it already sent still run (a
 * Run pipelined right behind Hello must not depend on whether the Hello
 * reply could be written): drop the output and keep reading until EOF. */
static void write_failed(struct session *s, ssize_t err)
{
	if (s->state != ST_HELLO && s->state != ST_READY) {
		session_kill(s, err == -EPIPE || err == -ECONNRESET ? "peer went away"
								    : "write failed");
		return;
	}
	log_debug("client %s: cannot write (%s); finishing its requests", s->peer,
		  strerror((int)-err));
	s->write_broken = true;
	sendq_clear(&s->out);
	update_mask(s);
}

static void flush_output(struct session *s)
{
	while (sendq_bytes(&s->out) && s->state != ST_DEAD) {
		ssize_t n = io_write(s);

		if (n == -EAGAIN)
			break;
		if (n <= 0) {
			write_failed(s, n);
			return;
		}
		if (sendq_written(&s->out, (size_t)n) == SENDQ_OVERFLOW) {
			session_kill(s, "out of memory for the output queue");
			return;
		}
	}
	if (s->state == ST_DEAD)
		return;
	if (s->state == ST_CLOSING && !sendq_bytes(&s->out)) {
		session_kill(s, NULL);
		return;
	}
	update_mask(s);
}

/* ------------------------------------------------------------ input */

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
	S.protocol_errors++;
	reply_error(&ctx, ctld_ErrorCode_PROTOCOL, 0, "%s", text);
	session_close_after_flush(s, text);
}

static void hello_check(struct session *s, struct request_ctx *ctx, const ctld_Request *req)
{
	if (req->which_body != ctld_Request_hello_tag) {
		S.protocol_errors++;
		reply_error(ctx, ctld_ErrorCode_NEED_HELLO, 0, "the first request must be Hello");
		session_close_after_flush(s, "first request was not Hello");
		return;
	}
	if (req->body.hello.protocol_version != CTLD_PROTOCOL_VERSION) {
		S.protocol_errors++;
		reply_error(ctx, ctld_ErrorCode_BAD_VERSION, 0,
			    "protocol version %u is not supported; this daemon speaks %d",
			    req->body.hello.protocol_version, CTLD_PROTOCOL_VERSION);
		session_close_after_flush(s, "protocol version mismatch");
		return;
	}
	s->state = ST_READY;
	loop_timer_disarm(S.loop, &s->deadline);
	log_debug("client %s: hello from \"%s\"", s->peer, req->body.hello.client);
	S.handler(ctx, req);
}

static void handle_frame(struct session *s, const uint8_t *body, size_t len)
{
	struct request_ctx ctx = { .session = s->id, .peer_uid = s->peer_uid };
	const char *why = NULL;
	int err = wire_decode(ctld_Request_fields, body, len, &S.request, &why);

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
	ctx.id = S.request.id;
	if (s->state == ST_HELLO) {
		hello_check(s, &ctx, &S.request);
	} else if (S.request.which_body == ctld_Request_hello_tag) {
		reply_error(&ctx, ctld_ErrorCode_BAD_REQUEST, 0, "Hello was already sent");
	} else {
		S.handler(&ctx, &S.request);
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
		int ret = wire_frame_check(bytebuf_head(&s->in), s->in.len, S.cfg.max_frame, &hdr,
					   &body);

		if (ret == -EMSGSIZE) {
			protocol_error(s, 0, "frame of %zu bytes exceeds the %zu-byte limit", body,
				       S.cfg.max_frame);
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
				loop_timer_arm_in(S.loop, &s->deadline,
						  S.cfg.frame_timeout_ms * NSEC_PER_MSEC);
			return;
		}
		if (s->state == ST_READY)
			loop_timer_disarm(S.loop, &s->deadline);
		/* Consumed before it is handled (the bytes stay where they are
		 * until the next read): the handler may close the session. */
		frame = bytebuf_head(&s->in) + hdr;
		bytebuf_consume(&s->in, hdr + body);
		handle_frame(s, frame, body);
	}
	bytebuf_shrink(&s->in, 4 * INBUF_MIN); /* give back the memory of a big frame */
}

static void read_input(struct session *s)
{
	size_t budget = 4 * READ_CHUNK; /* fairness between clients */

	while (s->state == ST_HELLO || s->state == ST_READY) {
		ssize_t n;

		if (bytebuf_reserve(&s->in, READ_CHUNK, INBUF_MIN) < 0) {
			session_kill(s, "out of memory for the input buffer");
			return;
		}
		n = io_read(s, bytebuf_tail(&s->in), bytebuf_space(&s->in));
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			if (n < 0 && n != -ECONNRESET)
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

static void do_handshake(struct session *s)
{
	int err = tls_conn_handshake(s->tls);

	if (err == -EAGAIN) {
		update_mask(s);
		return;
	}
	if (err) {
		S.protocol_errors++;
		log_warn("client %s: TLS handshake failed: %s", s->peer, tls_conn_error(s->tls));
		session_kill(s, NULL);
		return;
	}
	log_info("client %s: TLS peer %s", s->peer, tls_conn_peer_subject(s->tls));
	s->state = ST_HELLO;
	update_mask(s);
	read_input(s); /* TLS may already hold decrypted bytes */
}

static void session_io(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct session *s = ctx;

	(void)loop;
	(void)fd;
	if (s->state == ST_HANDSHAKE) {
		do_handshake(s);
		return;
	}
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		flush_output(s);
	if (s->state != ST_DEAD && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		read_input(s);
	if (s->state != ST_DEAD)
		update_mask(s);
}
