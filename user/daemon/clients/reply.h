/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reply.h - what request handlers and event sources use to talk to clients:
 * replies (exactly one per request, now or deferred), events, and encoded
 * frames that can go to many clients. Handlers include this, never
 * session.h; session.c plugs itself in underneath (reply_init) as the sink
 * that queues frames on connections.
 *
 * Clients are named by session id, never by pointer: sending to a session
 * that is gone quietly does nothing, which makes "a client vanished
 * mid-request" harmless everywhere.
 */
#ifndef CTLD_REPLY_H
#define CTLD_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctld.pb.h"

/* Where a request came from; handlers answer through it exactly once. */
struct request_ctx {
	uint64_t session;
	uint64_t id;
	uid_t peer_uid; /* SO_PEERCRED uid on the unix socket, (uid_t)-1 on TCP */
	bool replied;
	bool deferred; /* the handler will answer later with a pending_reply */
};

/* An encoded frame that can be queued to any number of sessions. */
struct frame {
	const uint8_t *data;
	size_t len;
	/* Output frames may be dropped for a slow client; the drop is reported
	 * later as OutputDropped{job, stream, bytes}. */
	bool droppable;
	uint64_t job;
	int stream;
	size_t payload;
};

/* How frames reach connections (session.c). */
struct reply_sink {
	/* 0, -ENOENT (session gone) or -ENOBUFS (dropped, counted) */
	int (*queue)(uint64_t session, const struct frame *f);
	const char *(*peer)(uint64_t session);
	/* deferred replies outstanding: +1 when deferred, -1 when answered */
	void (*pending)(uint64_t session, int delta);
	bool (*pending_full)(uint64_t session);
};

void reply_init(const struct reply_sink *sink);

/* Encodes msg into a buffer owned by reply.c, valid until the next call.
 * Its strings are made valid UTF-8 first (in place; see wire.h). */
int frame_encode(ctld_Message *msg, struct frame *f);
int frame_send(uint64_t session, const struct frame *f);

/* Events: event_begin() clears the one scratch Event and selects its kind;
 * fill it, then event_send() it to one session (never dropped) or
 * event_encode() it once for many. No other event may begin in between. */
ctld_Event *event_begin(pb_size_t which);
int event_send(uint64_t session);
int event_encode(struct frame *f);

/* Replies. reply_begin() returns a zeroed Reply to fill, reply_send() sends
 * it; no other reply may be started in between. */
ctld_Reply *reply_begin(struct request_ctx *ctx);
void reply_send(struct request_ctx *ctx);
void reply_ok(struct request_ctx *ctx);
void reply_error(struct request_ctx *ctx, ctld_ErrorCode code, int sys_errno, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* A reply owed later (deferred by the handler). */
struct pending_reply {
	uint64_t session, id;
};
struct pending_reply reply_defer(struct request_ctx *ctx);
void pending_reply_ok(struct pending_reply *p);
void pending_reply_error(struct pending_reply *p, ctld_ErrorCode code, int sys_errno,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* True when the session already has as many deferred replies as allowed. */
bool reply_pending_full(uint64_t session);

/* "#12 unix uid=0 pid=812", or "(gone)". */
const char *reply_peer_name(uint64_t session);

#endif
