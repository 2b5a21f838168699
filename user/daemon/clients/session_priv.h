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
#include "daemon/clients/sendq.h"
#include "daemon/clients/session.h"
#include "daemon/core/idmap.h"
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
	uint64_t dropped_bytes;
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
/* session_input.c */
void session_read_input(struct session *s);
void session_handshake(struct session *s);

#endif
