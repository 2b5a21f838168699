// SPDX-License-Identifier: BSD-2-Clause
/*
 * session.c - client connections: read, frame, decode, dispatch, write.
 *
 * Life of a session:
 *   HANDSHAKE (TLS only) -> HELLO -> READY -> [CLOSING: flush, then close] -> gone
 *
 * Who counts where (the lock-out rules):
 * - A unix-socket peer (SO_PEERCRED) or a plain loopback TCP peer (its
 *   socket's owner) is known at accept and takes a client slot at once;
 *   the unix socket and TCP have max_clients slots each, so TCP clients
 *   can never keep root out of the unix socket.
 * - A TLS (or --insecure) peer is a stranger until its Hello: it waits in
 *   a budget of its own (preauth.c: a total and a per-address share, the
 *   oldest evicted for a newcomer) and takes a TCP client slot only with
 *   its Hello. So a flood of idle connections evicts itself, never a
 *   client, and never fills the client slots.
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/stream.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/wire.h"
#include "daemon/clients/reply.h"
#include "daemon/clients/session_priv.h"
#include "daemon/core/log.h"
#include "daemon/core/log_limit.h"

struct sessions SS;

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
		.max_unauthenticated = 64,
		.max_unauthenticated_per_source = 8,
		.max_pending = 64,
	};
}

/* ------------------------------------------------------------ lifetime */

void session_log(const struct session *s, enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > log_get_level())
		return;
	va_start(ap, fmt);
	if (s->said_hello)
		log_vmsg(level, fmt, ap);
	else
		log_vlimited(level, s->source, fmt, ap);
	va_end(ap);
}

static unsigned *client_slots(const struct session *s)
{
	return &SS.clients[s->kind == PEER_UNIX ? 0 : 1];
}

int session_admit(struct session *s)
{
	if (s->counted)
		return 0;
	if (*client_slots(s) >= SS.cfg.max_clients)
		return -EUSERS;
	if (s->unauthenticated)
		preauth_remove(&SS.strangers, &s->waiting);
	s->unauthenticated = false;
	s->counted = true;
	++*client_slots(s);
	return 0;
}

/* Makes room in the strangers' budget for one more from source. */
static void evict_for(const char *source)
{
	const char *limit = NULL;
	struct preauth_entry *victim = preauth_victim(&SS.strangers, source, &limit);
	struct session *s;

	if (!victim)
		return;
	s = (struct session *)((char *)victim - offsetof(struct session, waiting));
	SS.evicted++;
	session_log(s, LOG_INFO,
		    "client %s: evicted before its Hello: the %s budget of unauthenticated "
		    "connections is full (oldest goes first)",
		    s->peer, limit);
	session_kill(s, NULL);
}

static void reap_dead(struct loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
	while (SS.dead) {
		struct session *s = SS.dead;

		SS.dead = s->next_dead;
		if (SS.gone)
			SS.gone(s->id);
		sendq_clear(&s->out);
		bytebuf_free(&s->in);
		free(s);
	}
}

/* Closes the connection now; the struct and the gone hook wait for the reaper. */
void session_kill(struct session *s, const char *why)
{
	if (s->state == ST_DEAD)
		return;
	if (why)
		session_log(s, LOG_INFO, "client %s: closing: %s", s->peer, why);
	s->state = ST_DEAD;
	if (s->unauthenticated)
		preauth_remove(&SS.strangers, &s->waiting);
	if (s->counted)
		--*client_slots(s);
	s->unauthenticated = s->counted = false;
	loop_timer_disarm(SS.loop, &s->deadline);
	loop_fd_del(SS.loop, s->fd);
	if (s->tls)
		tls_conn_free(s->tls);
	s->tls = NULL;
	close(s->fd);
	s->fd = -1;
	idmap_del(&SS.by_id, s->id);
	s->next_dead = SS.dead;
	SS.dead = s;
	loop_timer_arm(SS.loop, &SS.reaper, 0);
}

void session_update_mask(struct session *s)
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
	if (mask != s->mask && loop_fd_set_mask(SS.loop, s->fd, mask) == 0)
		s->mask = mask;
}

void session_close_after_flush(struct session *s, const char *why)
{
	if (s->state == ST_DEAD || s->state == ST_CLOSING)
		return;
	session_log(s, LOG_INFO, "client %s: %s", s->peer, why);
	s->state = ST_CLOSING;
	if (!sendq_bytes(&s->out)) {
		session_kill(s, NULL);
		return;
	}
	loop_timer_arm_in(SS.loop, &s->deadline, CLOSE_FLUSH_MS * NSEC_PER_MSEC);
	session_update_mask(s);
}

static void deadline_expired(struct loop *loop, void *ctx)
{
	struct session *s = ctx;

	(void)loop;
	switch (s->state) {
	case ST_HANDSHAKE:
	case ST_HELLO:
		SS.protocol_errors++;
		session_kill(s, "no Hello within the handshake timeout");
		break;
	case ST_READY:
		SS.protocol_errors++;
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
	memset(&SS, 0, sizeof(SS));
	SS.loop = loop;
	SS.cfg = *cfg;
	SS.handler = handler;
	SS.gone = gone;
	SS.next_id = 1;
	idmap_init(&SS.by_id);
	preauth_init(&SS.strangers, cfg->max_unauthenticated, cfg->max_unauthenticated_per_source);
	loop_timer_init(&SS.reaper, reap_dead, NULL);
	loop_set_before_wait(loop, flush_due_sessions, NULL);
	reply_init(&sink);
	return 0;
}

void session_close_all_after_flush(void)
{
	session_close_all_with(NULL, "daemon is shutting down");
}

void session_close_all_with(const struct frame *last, const char *why)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&SS.by_id, &it, &id, &value);) {
		struct session *s = value;

		if (last && s->state == ST_READY)
			session_queue(s->id, last);
		session_close_after_flush(s, why);
	}
}

void session_shutdown(void)
{
	uint64_t id;
	void *value;

	if (!SS.loop)
		return; /* start-up failed before session_init (a bad TLS setup) */
	for (size_t it = 0; idmap_next(&SS.by_id, &it, &id, &value);)
		session_kill(value, NULL);
	reap_dead(SS.loop, NULL);
	loop_timer_disarm(SS.loop, &SS.reaper);
	loop_set_before_wait(SS.loop, NULL, NULL);
	idmap_free(&SS.by_id);
	free(SS.flush_ids);
	SS.flush_ids = NULL;
	SS.nflush = SS.flush_cap = 0;
}

int session_accept(int fd, const struct peer *peer, struct tls_conn *tls)
{
	struct session *s;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->tls = tls;
	s->peer_uid = peer->uid;
	s->kind = peer->kind;
	s->state = tls ? ST_HANDSHAKE : ST_HELLO;
	s->mask = EPOLLIN;
	copy_str(s->source, sizeof(s->source), peer->source);
	if (peer->kind != PEER_STRANGER && (err = session_admit(s)))
		goto fail;
	s->id = SS.next_id++;
	snprintf(s->peer, sizeof(s->peer), "#%llu %s", (unsigned long long)s->id, peer->name);
	sendq_init(&s->out, SS.cfg.queue_soft_limit, SS.cfg.queue_hard_limit);
	loop_timer_init(&s->deadline, deadline_expired, s);
	if ((err = idmap_put(&SS.by_id, s->id, s)))
		goto fail;
	if ((err = loop_fd_add(SS.loop, fd, EPOLLIN, session_io, s))) {
		idmap_del(&SS.by_id, s->id);
		goto fail;
	}
	if (peer->kind == PEER_STRANGER) {
		evict_for(s->source);
		preauth_add(&SS.strangers, &s->waiting, s->source);
		s->unauthenticated = true;
	}
	loop_timer_arm_in(SS.loop, &s->deadline, SS.cfg.hello_timeout_ms * NSEC_PER_MSEC);
	session_log(s, LOG_DEBUG, "client %s: connected", s->peer);
	return 0;
fail:
	if (s->counted)
		--*client_slots(s);
	free(s);
	return err;
}

unsigned session_unauthenticated(void)
{
	return SS.strangers.count;
}

uint64_t session_evicted(void)
{
	return SS.evicted;
}

unsigned session_count(void)
{
	return (unsigned)SS.by_id.count;
}

bool session_exists(uint64_t session)
{
	return idmap_get(&SS.by_id, session) != NULL;
}

const char *session_peer(uint64_t session)
{
	struct session *s = idmap_get(&SS.by_id, session);

	return s ? s->peer : "(gone)";
}

uint64_t session_protocol_errors(void)
{
	return SS.protocol_errors;
}

uint64_t session_tls_handshakes(bool resumed)
{
	return SS.tls_handshakes[resumed];
}

uint64_t session_output_dropped_bytes(void)
{
	return SS.dropped_bytes;
}

bool session_pending_full(uint64_t session)
{
	struct session *s = idmap_get(&SS.by_id, session);

	return s && s->pending >= SS.cfg.max_pending;
}

static void pending_add(uint64_t session, int delta)
{
	struct session *s = idmap_get(&SS.by_id, session);

	if (s && (delta > 0 || s->pending))
		s->pending += (unsigned)delta;
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
	if (SS.nflush == SS.flush_cap) {
		size_t cap = SS.flush_cap ? SS.flush_cap * 2 : 64;
		uint64_t *grown = realloc(SS.flush_ids, cap * sizeof(*grown));

		if (!grown) {
			flush_output(s); /* no room to defer: write now */
			return;
		}
		SS.flush_ids = grown;
		SS.flush_cap = cap;
	}
	SS.flush_ids[SS.nflush++] = s->id;
	s->flush_due = true;
}

static void flush_due_sessions(struct loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
	/* flush_output may queue more (drop markers): loop by index */
	for (size_t i = 0; i < SS.nflush; i++) {
		struct session *s = idmap_get(&SS.by_id, SS.flush_ids[i]);

		if (!s)
			continue; /* closed meanwhile */
		s->flush_due = false;
		flush_output(s);
	}
	SS.nflush = 0;
}

int session_queue(uint64_t session, const struct frame *f)
{
	struct session *s = idmap_get(&SS.by_id, session);

	if (!s || s->state == ST_DEAD || s->write_broken)
		return -ENOENT;
	switch (sendq_push(&s->out, f)) {
	case SENDQ_DROPPED:
		SS.dropped_bytes += f->payload;
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
	session_log(s, LOG_DEBUG, "client %s: cannot write (%s); finishing its requests", s->peer,
		    strerror((int)-err));
	s->write_broken = true;
	sendq_clear(&s->out);
	session_update_mask(s);
}

static void flush_output(struct session *s)
{
	while (sendq_bytes(&s->out) && s->state != ST_DEAD) {
		struct iovec iov[16];
		int cnt = sendq_iov(&s->out, iov, 16);
		ssize_t n = stream_writev(s->fd, s->tls, iov, cnt);

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
	session_update_mask(s);
}

static void session_io(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct session *s = ctx;

	(void)loop;
	(void)fd;
	if (s->state == ST_HANDSHAKE) {
		session_handshake(s);
		return;
	}
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		flush_output(s);
	if (s->state != ST_DEAD && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		session_read_input(s);
	if (s->state != ST_DEAD)
		session_update_mask(s);
}
