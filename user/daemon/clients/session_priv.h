/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * session_priv.h - the session struct, shared by the two halves of the
 * session layer and nothing else: session.c (lifetime, accepting, output)
 * and session_input.c (reading, framing, decoding, the Hello handshake).
 */
#ifndef CTLD_SESSION_PRIV_H
#define CTLD_SESSION_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/bytebuf.h"
#include "daemon/clients/preauth.h"
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
	enum peer_kind kind;
	char peer[80];
	char source[48];    /* the peer address without the port (struct peer) */
	bool said_hello;    /* until then, what is logged about it is rate-limited */
	bool counted;       /* holds one of SS.clients */
	bool unauthenticated; /* in SS.strangers */
	struct preauth_entry waiting; /* its place in SS.strangers */
	struct bytebuf in;
	struct sendq out;
	uint32_t mask;
	struct loop_timer deadline; /* hello, partial frame, or close flush, by state */
	bool write_broken; /* the peer cannot receive anymore; requests still count */
	bool flush_due;    /* listed in SS.flush_ids: write before the loop waits */
	unsigned pending;
	struct session *next_dead;
};

struct sessions {
	struct loop *loop;
	struct session_config cfg;
	request_handler_fn handler;
	session_gone_fn gone;
	struct idmap by_id; /* session id -> struct session */
	uint64_t next_id;
	uint64_t protocol_errors;
	uint64_t tls_handshakes[2]; /* [0] full, [1] resumed */
	uint64_t dropped_bytes;
	unsigned clients[2]; /* authenticated: [0] unix socket, [1] TCP */
	struct preauth strangers; /* TCP connections before their Hello */
	uint64_t evicted;
	struct session *dead; /* killed, waiting for the reaper */
	struct loop_timer reaper;
	uint64_t *flush_ids;  /* sessions with queued output, by id (they may die) */
	size_t nflush, flush_cap;
	ctld_Request request;
};

/* The one table of sessions (session.c). */
extern struct sessions SS;

/* session.c */
void session_kill(struct session *s, const char *why);
/* Stop reading, send what is queued (an Error reply, usually), then close. */
void session_close_after_flush(struct session *s, const char *why);
void session_update_mask(struct session *s);
/* Gives s a client slot of its kind: a known peer at accept, a stranger
 * with its Hello (it leaves the unauthenticated budget then). 0, or
 * -EUSERS when max_clients of its kind are connected. */
int session_admit(struct session *s);
/* Logs about s; before its Hello, rate-limited per message and source
 * (anyone who can connect can make the daemon say these). */
void session_log(const struct session *s, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* session_input.c */
void session_read_input(struct session *s);
void session_handshake(struct session *s);

#endif
