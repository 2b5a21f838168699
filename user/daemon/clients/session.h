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
	uint32_t max_clients;     /* authenticated clients, on the unix socket and on TCP each */
	uint32_t max_unauthenticated;            /* TCP connections before their Hello */
	uint32_t max_unauthenticated_per_source; /* the same, from one address */
	uint32_t max_pending;     /* deferred replies (WriteStdin) outstanding per client */
};

/* How the listener knows who connected. */
enum peer_kind {
	PEER_UNIX,     /* the unix socket: the uid was checked with SO_PEERCRED */
	PEER_LOCAL,    /* plain TCP on loopback: the socket owner's uid was checked */
	PEER_STRANGER, /* TLS (or --insecure) TCP: unknown until its handshake and Hello */
};

struct peer {
	enum peer_kind kind;
	uid_t uid;       /* PEER_UNIX, PEER_LOCAL; (uid_t)-1 for a stranger */
	char name[64];   /* for the log: "tcp 10.1.2.3:4567", "unix uid=0 pid=12" */
	char source[48]; /* who, without the port: the key of the stranger budget and log limits */
};

void session_config_defaults(struct session_config *cfg);

typedef void (*request_handler_fn)(struct request_ctx *ctx, const ctld_Request *req);
typedef void (*session_gone_fn)(uint64_t session);

int session_init(struct loop *loop, const struct session_config *cfg, request_handler_fn handler,
		 session_gone_fn gone);
void session_shutdown(void);
/* Shutdown: stop reading from every client and close each once flushed. */
void session_close_all_after_flush(void);
/* The same, each client that said Hello getting `last` first (NULL: none). */
struct frame;
void session_close_all_with(const struct frame *last, const char *why);

/* Takes ownership of a connected, non-blocking fd (on success). tls may be
 * NULL (plain). A unix or local peer counts as a client at once: -EUSERS
 * when max_clients of its kind are connected. A stranger joins the budget
 * of unauthenticated connections, evicting the oldest waiting one when it
 * is full; it counts as a client once its Hello is accepted. */
int session_accept(int fd, const struct peer *peer, struct tls_conn *tls);
/* Every connection, authenticated or not. */
unsigned session_count(void);
/* TCP connections waiting for their handshake or Hello; how many were evicted. */
unsigned session_unauthenticated(void);
uint64_t session_evicted(void);
bool session_exists(uint64_t session);
const char *session_peer(uint64_t session);
uint64_t session_protocol_errors(void);
/* TLS handshakes completed since start: full ones, resumed ones. */
uint64_t session_tls_handshakes(bool resumed);
uint64_t session_output_dropped_bytes(void);
/* True when the session already has max_pending deferred replies outstanding. */
bool session_pending_full(uint64_t session);

/* Queues f to a session (reply.c's sink). 0, -ENOENT (gone) or -ENOBUFS
 * (dropped and counted, or the client was disconnected). */
int session_queue(uint64_t session, const struct frame *f);

#endif
