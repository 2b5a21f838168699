/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tls_ops.h - the contract between common/tls.c (the loader every program
 * links) and ctld-tls.so (user/tls/, the only code that links OpenSSL): the
 * module exports one table under CTLD_TLS_SYMBOL, whose functions do what
 * tls.h says of their namesakes. CTLD_TLS_ABI changes whenever the table
 * does, so a binary never calls into a module built for another layout.
 */
#ifndef CTLD_TLS_OPS_H
#define CTLD_TLS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/tls_types.h"

#define CTLD_TLS_ABI 2
#define CTLD_TLS_MODULE "ctld-tls.so"
#define CTLD_TLS_SYMBOL "ctld_tls_ops"

struct tls_ops {
	unsigned abi;
	int (*ctx_new)(enum tls_role role, const char *cert, const char *key, const char *ca,
		       struct tls_ctx **out, char *err, size_t errlen);
	void (*ctx_free)(struct tls_ctx *ctx);
	int (*ctx_set_session_cache)(struct tls_ctx *ctx, const char *dir, char *err,
				     size_t errlen);
	int (*conn_new)(struct tls_ctx *ctx, int fd, const char *server_name, const char *peer,
			struct tls_conn **out);
	void (*conn_free)(struct tls_conn *c);
	int (*conn_handshake)(struct tls_conn *c);
	ssize_t (*conn_read)(struct tls_conn *c, void *buf, size_t len);
	ssize_t (*conn_write)(struct tls_conn *c, const void *buf, size_t len);
	bool (*conn_wants_write)(const struct tls_conn *c);
	const char *(*conn_error)(const struct tls_conn *c);
	const char *(*conn_peer_subject)(const struct tls_conn *c);
	bool (*conn_resumed)(const struct tls_conn *c);
};

#endif
