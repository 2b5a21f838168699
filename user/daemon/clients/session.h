/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * session.h - one connected client: framing, the Hello handshake, the write
 * queue with its limits, per-client output drop accounting, deadlines, and
 * the hand-off of each decoded request to the dispatcher.
 *
 * Other modules never hold a session pointer: they keep the session id and
 * call session_queue()/reply functions, which quietly do nothing for a
 * session that is gone. That is what makes "a client vanished mid-request"
 * harmless everywhere.
 */
#ifndef CTLD_SESSION_H
#define CTLD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctld.pb.h"

struct loop;
struct tls_conn;

struct session_config {
	size_t max_frame;         /* largest request body accepted */
	size_t queue_soft_limit;  /* beyond this, Output for the client is dropped (and counted) */
	size_t queue_hard_limit;  /* beyond this, the client is disconnected */
	uint32_t hello_timeout_ms;/* connect (and TLS handshake) to Hello */
	uint32_t frame_timeout_ms;/* first byte of a frame to its last */
	uint32_t max_clients;
	uint32_t max_pending;     /* deferred replies (WriteStdin) outstanding per client */
};

void session_config_defaults(struct session_config *cfg);

/* Where a request came from; handlers answer through it exactly once. */
struct request_ctx {
	uint64_t session;
	uint64_t id;
	uid_t peer_uid;  /* SO_PEERCRED uid on the unix socket, (uid_t)-1 on TCP */
	bool replied;
	bool deferred;   /* the handler will answer later with a pending_reply */
};

typedef void (*request_handler_fn)(struct request_ctx *ctx, const ctld_Request *req);
typedef void (*session_gone_fn)(uint64_t session);

int session_init(struct loop *loop, const struct session_config *cfg, request_handler_fn handler,
		 session_gone_fn gone);
void session_shutdown(void);
/* Shutdown: stop reading from every client and close each once flushed. */
void session_close_all_after_flush(void);

/* Takes ownership of a connected, non-blocking fd. tls may be NULL (plain). */
int session_accept(int fd, const char *peer, uid_t peer_uid, struct tls_conn *tls);
unsigned session_count(void);
unsigned session_max_clients(void);
bool session_exists(uint64_t session);
const char *session_peer(uint64_t session);
uint64_t session_protocol_errors(void);
uint64_t session_output_dropped_bytes(void);
/* True when the session already has max_pending deferred replies outstanding. */
bool session_pending_full(uint64_t session);

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

/* Encodes msg into a buffer owned by session.c, valid until the next call. */
int frame_encode(const ctld_Message *msg, struct frame *f);
/* Queues f to a session. 0, -ENOENT (gone) or -ENOBUFS (dropped, counted). */
int session_queue(uint64_t session, const struct frame *f);
/* Encodes and queues one control message (never dropped). */
int session_send(uint64_t session, const ctld_Message *msg);
/* Sends ev (an Event) to one session. */
int session_send_event(uint64_t session, const ctld_Event *ev);

/* Reply helpers. reply_begin() returns a zeroed Reply to fill, reply_send()
 * sends it; no other reply may be started in between. */
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

#endif
