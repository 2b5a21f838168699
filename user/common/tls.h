/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tls.h - mutual TLS 1.3 over non-blocking sockets (OpenSSL, loaded on
 * demand: see tls.c), for the daemon's TCP listeners and for the CLI. A tls_ctx holds certificate, key and CA; a
 * tls_conn wraps one connected fd. All I/O calls return -EAGAIN when the
 * socket is not ready; tls_conn_wants_write() then says whether to wait for
 * EPOLLOUT instead of EPOLLIN (TLS may need to write while reading).
 */
#ifndef CTLD_TLS_H
#define CTLD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/tls_types.h"

/* Loads cert, key and CA (all PEM files). Peers must present a certificate
 * signed by the CA. err[errlen] gets a readable reason on failure. */
int tls_ctx_new(enum tls_role role, const char *cert, const char *key, const char *ca,
		struct tls_ctx **out, char *err, size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);
/* Client contexts: keep the daemons' session tickets in dir (created 0700;
 * it must be private to this user), so later processes resume. */
int tls_ctx_set_session_cache(struct tls_ctx *ctx, const char *dir, char *err, size_t errlen);

/* Wraps fd (not owned: the caller closes it after tls_conn_free). Clients
 * pass the daemon's name (sent as SNI unless an address) and peer, the
 * "host:port" its cached session is kept under (NULL: none). */
int tls_conn_new(struct tls_ctx *ctx, int fd, const char *server_name, const char *peer,
		 struct tls_conn **out);
void tls_conn_free(struct tls_conn *c);

/* 0 when the handshake is complete, -EAGAIN to be called again, -EPROTO on failure. */
int tls_conn_handshake(struct tls_conn *c);
/* > 0 bytes, 0 on orderly close, -EAGAIN, -EPROTO / -errno. */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len);
ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len);
bool tls_conn_wants_write(const struct tls_conn *c);
/* Readable reason for the last failure and the peer certificate's subject. */
const char *tls_conn_error(const struct tls_conn *c);
const char *tls_conn_peer_subject(const struct tls_conn *c);
/* Whether the handshake resumed an earlier session (no certificates sent;
 * the peer subject is the one that session was made with). */
bool tls_conn_resumed(const struct tls_conn *c);

#endif
