/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * client.h - a client connection to ctld-bpf, for ctl and the benchmark
 * harness: non-blocking connect (unix socket, or TCP with optional mutual
 * TLS), the Hello exchange, requests encoded into an output buffer, and
 * messages decoded from complete frames of an input buffer.
 *
 * The connection never blocks and never polls by itself; the caller owns the
 * poll() loop, so one thread can drive any number of connections:
 *
 *	struct ctld_conn c;
 *	ctld_conn_init(&c, "mytool 1.0");
 *	ctld_conn_connect_unix(&c, "/run/ctld-bpf.sock", 5000); // queues Hello
 *	ctld_conn_send(&c, &request, &id);                      // may be queued at once
 *	for (;;) {
 *		struct pollfd p = { c.fd, ctld_conn_poll_events(&c), 0 };
 *		poll(&p, 1, ctld_conn_poll_timeout(&c, now_monotonic_ns()));
 *		if ((err = ctld_conn_io(&c, p.revents, now_monotonic_ns())))
 *			break;                                  // ctld_conn_error(&c) says why
 *		while ((ret = ctld_conn_next(&c, &msg)) > 0)
 *			handle(&msg);                           // Replies and Events, in order
 *		if (ret < 0)
 *			break;                                  // closed, or garbage
 *	}
 *	ctld_conn_close(&c);
 *
 * ctld_conn_call() is a blocking convenience for one request at a time.
 * Requests sent before the Hello reply are queued behind Hello (the daemon
 * handles a connection's requests in order), which saves a round trip. The
 * Hello reply itself is consumed here: ctld_conn_next() never returns it;
 * ctld_conn_ready() and c.hello tell the outcome.
 *
 * Liveness (ctld_conn_set_liveness): a connection that has heard nothing
 * from its daemon for a third of the period sends a Ping, and ends with
 * -ETIMEDOUT when the daemon stays silent for the whole period (rule in
 * liveness.h); the Pong is consumed here, like the Hello reply. TCP
 * sockets then also get keepalive and TCP_USER_TIMEOUT of that period.
 *
 * Errors are -errno values; ctld_conn_error() has readable text. Failures
 * before the daemon answered (nothing listening, connect timeout, no such
 * socket) are distinguished from the others by ctld_conn_reached(), a
 * daemon that went silent afterwards by ctld_conn_silent_ms().
 */
#ifndef CTLD_CLIENT_H
#define CTLD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/liveness.h"
#include "common/bytebuf.h"
#include "client/clock.h"
#include "ctld.pb.h"

struct tls_ctx;
struct tls_conn;
struct addrinfo;

/* Largest frame accepted from a daemon: anything larger is a protocol error. */
#define CTLD_CLIENT_MAX_FRAME (2u << 20)

enum ctld_conn_state {
	CTLD_CONN_IDLE,	      /* initialized, not connected */
	CTLD_CONN_CONNECTING, /* TCP connect in progress */
	CTLD_CONN_TLS,	      /* TLS handshake in progress */
	CTLD_CONN_HELLO,      /* Hello sent, its reply not yet read */
	CTLD_CONN_READY,
	CTLD_CONN_CLOSED, /* failed or closed; see error */
};

struct ctld_conn {
	int fd;
	enum ctld_conn_state state;
	struct tls_conn *tls;
	struct tls_ctx *tls_ctx; /* not owned */
	struct bytebuf in;  /* bytes read, not yet decoded */
	struct bytebuf out; /* requests encoded, not yet written */
	uint64_t next_id;
	uint64_t hello_id;
	char target[300]; /* "/run/ctld-bpf.sock" or "host:port", for messages */
	char tls_name[256]; /* TCP host name, sent as TLS server name */
	char client_name[64];
	uint32_t timeout_ms;
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; connect + TLS + Hello must finish by then */
	bool peer_closed;     /* read returned EOF: deliver what is buffered, then end */
	bool write_closed;    /* write failed with EPIPE: the reason is in the input */
	bool reached;	      /* the daemon's end accepted us (connected) */
	int err;	      /* -errno once CLOSED */
	struct addrinfo *addrs;	 /* TCP: addresses still to try */
	struct addrinfo *addr;	 /* TCP: the one being tried */
	uint32_t liveness_ms;	 /* 0: wait for the daemon for ever */
	struct liveness live;	 /* once READY */
	uint64_t ping_id;	 /* the Ping awaiting its Pong; 0: none */
	uint64_t silent_ns;	 /* closed because the daemon was silent this long */
	uint64_t clock_period_ns; /* ctld_conn_sample_clock(); 0: only liveness Pings */
	uint64_t clock_next_ns;	  /* CLOCK_MONOTONIC: the next clock sample is due */
	uint64_t ping_sent_real_ns; /* CLOCK_REALTIME of the outstanding Ping */
	struct clock_offset clock; /* the daemon's clock against ours (clock.h) */
	ctld_HelloReply hello;	 /* valid once READY */
	ctld_ErrorCode hello_error; /* code of an Error answering Hello, else OK */
	char error[320];
};

void ctld_conn_init(struct ctld_conn *c, const char *client_name);

/* Before connecting: give up on a daemon silent for period_ms (0: never). */
void ctld_conn_set_liveness(struct ctld_conn *c, uint32_t period_ms);
/* Before connecting: measure the daemon's clock (c->clock) with a few Pings
 * once connected, then one every period_ms (timelines). */
void ctld_conn_sample_clock(struct ctld_conn *c, uint32_t period_ms);

/*
 * Start connecting; Hello is queued before anything else. Returns 0 when the
 * attempt is under way (or done), else -errno with ctld_conn_error() set:
 * -ENOENT (no such socket), -ECONNREFUSED, -EINVAL (bad address), ...
 * timeout_ms bounds connect + TLS handshake + Hello reply.
 * tls (may be NULL) must outlive the connection.
 */
int ctld_conn_connect_unix(struct ctld_conn *c, const char *path, uint32_t timeout_ms);
int ctld_conn_connect_tcp(struct ctld_conn *c, const char *host, const char *port,
			  struct tls_ctx *tls, uint32_t timeout_ms);

/* POLLIN/POLLOUT this connection waits for (0 when closed). */
short ctld_conn_poll_events(const struct ctld_conn *c);
/* Milliseconds until the connect deadline or the next liveness step (-1:
 * none), for poll(). */
int ctld_conn_poll_timeout(const struct ctld_conn *c, uint64_t now_ns);

/*
 * Makes progress after poll(): finishes connecting, does the TLS handshake,
 * writes queued requests, reads what arrived, sends a liveness Ping when
 * one is due. Call it even with revents 0 when poll timed out: it checks
 * the deadlines. 0 or -errno (the connection
 * is then CLOSED): -ETIMEDOUT, -ECONNREFUSED, -EPROTO (TLS), -ECONNRESET...
 */
int ctld_conn_io(struct ctld_conn *c, short revents, uint64_t now_ns);

/*
 * Queues a request (its id is assigned here and stored in req->id and *id)
 * and writes it at once when the socket allows. 0, -ENOMEM, -ENOSPC (does
 * not encode), -ENOTCONN (closed).
 */
int ctld_conn_send(struct ctld_conn *c, ctld_Request *req, uint64_t *id);

/*
 * Decodes the next complete message. 1: *msg is filled; 0: need more bytes;
 * < 0: the connection is finished (CLOSED): -ECONNRESET the daemon closed it
 * cleanly between frames, -EPROTO it sent garbage or closed in the middle of
 * a frame, -EMSGSIZE a frame above CTLD_CLIENT_MAX_FRAME, -EREMOTEIO the
 * daemon answered Hello with an Error (hello_error says which).
 */
int ctld_conn_next(struct ctld_conn *c, ctld_Message *msg);

/* Blocking: sends req and waits for its Reply (events meanwhile go to
 * on_event, which may be NULL). 0, or -errno (-ETIMEDOUT after timeout_ms). */
int ctld_conn_call(struct ctld_conn *c, ctld_Request *req, ctld_Message *reply,
		   uint32_t timeout_ms, void (*on_event)(const ctld_Event *ev, void *ctx),
		   void *ctx);

bool ctld_conn_ready(const struct ctld_conn *c);
/* Whether a connection was ever established (vs "nobody answers"). */
bool ctld_conn_reached(const struct ctld_conn *c);
/* When the connection ended because an answering daemon went silent
 * (liveness, or the kernel's TCP timeouts): for how long; else 0. */
uint64_t ctld_conn_silent_ms(const struct ctld_conn *c);
const char *ctld_conn_error(const struct ctld_conn *c);
/* Closes the socket and frees the buffers; the struct can be connected again. */
void ctld_conn_close(struct ctld_conn *c);

/* "NOT_FOUND", "BAD_VERSION", ... for an ErrorCode. */
const char *ctld_error_code_name(ctld_ErrorCode code);

#endif
