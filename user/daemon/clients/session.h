/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * session.h - connected clients: framing, the Hello handshake, deadlines,
 * writing their sendq, and the hand-off of each decoded request to the
 * dispatcher. Request handlers answer through reply.h, which this module
 * serves; only main(), the listener and the dispatcher include this.
 */
#ifndef CTLD_SESSION_H
#define CTLD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctld.pb.h"
#include "daemon/clients/reply.h"

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

/* Queues f to a session (reply.c's sink). 0, -ENOENT (gone) or -ENOBUFS
 * (dropped and counted, or the client was disconnected). */
int session_queue(uint64_t session, const struct frame *f);

#endif
