// SPDX-License-Identifier: BSD-2-Clause
/*
 * tls_openssl.c - mutual TLS 1.3 with OpenSSL on non-blocking sockets: the
 * ctld-tls.so module, loaded by common/tls.c only when TLS is configured, so
 * the daemon and ctl map OpenSSL (1.7 MiB resident) only when they use it.
 * Everything is static but the one table (tls_ops.h) the loader looks up.
 *
 * Both sides load a certificate, its key and the CA that signed the peer;
 * verification is mandatory in both directions (SSL_VERIFY_PEER |
 * SSL_VERIFY_FAIL_IF_NO_PEER_CERT) and only TLS 1.3 is offered. Identity is
 * "holds a certificate from our CA": the CA is the access list, as with
 * Docker's --tlsverify. The client does not check a host name because nodes
 * of a testbed are addressed by IP; it checks the chain.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/tls_ops.h"

struct tls_ctx {
	SSL_CTX *ssl_ctx;
};

struct tls_conn {
	SSL *ssl;
	bool wants_write;
	char error[160];
	char subject[160];
};

static void last_error(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[120] = "unknown error";

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(buf, len, "%s: %s", what, reason);
	ERR_clear_error();
}

static void ossl_ctx_free(struct tls_ctx *ctx);

static int ossl_ctx_new(enum tls_role role, const char *cert, const char *key, const char *ca,
		struct tls_ctx **out, char *err, size_t errlen)
{
	struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
	SSL_CTX *s;

	if (!ctx) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s = SSL_CTX_new(role == TLS_SERVER ? TLS_server_method() : TLS_client_method());
	if (!s) {
		last_error(err, errlen, "SSL_CTX_new");
		free(ctx);
		return -ENOMEM;
	}
	ctx->ssl_ctx = s;
	SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION);
	SSL_CTX_set_mode(s, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(s, cert) != 1) {
		last_error(err, errlen, cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(s, key, SSL_FILETYPE_PEM) != 1) {
		last_error(err, errlen, key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(s) != 1) {
		last_error(err, errlen, "certificate and key do not match");
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(s, ca, NULL) != 1) {
		last_error(err, errlen, ca);
		goto fail;
	}
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	*out = ctx;
	return 0;
fail:
	ossl_ctx_free(ctx);
	return -EINVAL;
}

static void ossl_ctx_free(struct tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

static int ossl_conn_new(struct tls_ctx *ctx, int fd, const char *server_name,
			 struct tls_conn **out)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->ssl = SSL_new(ctx->ssl_ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
		SSL_free(c->ssl);
		free(c);
		return -ENOMEM;
	}
	if (server_name) {
		unsigned char ip[16];

		/* SNI carries host names only (RFC 6066); nodes addressed by IP send none */
		if (inet_pton(AF_INET, server_name, ip) != 1 &&
		    inet_pton(AF_INET6, server_name, ip) != 1)
			SSL_set_tlsext_host_name(c->ssl, server_name);
		SSL_set_connect_state(c->ssl);
	} else {
		SSL_set_accept_state(c->ssl);
	}
	*out = c;
	return 0;
}

static void ossl_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	/* Best-effort close_notify; the socket is non-blocking, never wait. */
	if (SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	SSL_free(c->ssl);
	free(c);
}

/* Maps an OpenSSL result to 0 / -EAGAIN / -EPROTO and remembers why. */
static int map_result(struct tls_conn *c, int ret, const char *what)
{
	int e = SSL_get_error(c->ssl, ret);

	c->wants_write = false;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		c->wants_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == EPIPE || errno == ECONNRESET) {
			snprintf(c->error, sizeof(c->error), "%s: peer went away", what);
			return -ECONNRESET;
		}
		if (errno == ETIMEDOUT) { /* keepalive / TCP_USER_TIMEOUT: the peer is gone */
			snprintf(c->error, sizeof(c->error), "%s: %s", what, strerror(ETIMEDOUT));
			return -ETIMEDOUT;
		}
		/* fall through */
	default: {
		long verify = SSL_get_verify_result(c->ssl);

		if (verify != X509_V_OK)
			snprintf(c->error, sizeof(c->error), "%s: peer certificate: %s", what,
				 X509_verify_cert_error_string(verify));
		else
			last_error(c->error, sizeof(c->error), what);
		ERR_clear_error();
		return -EPROTO;
	}
	}
}

static int ossl_conn_handshake(struct tls_conn *c)
{
	int ret = SSL_do_handshake(c->ssl);
	X509 *peer;

	if (ret != 1) {
		ret = map_result(c, ret, "handshake");
		return ret == 0 ? -EPROTO : ret;
	}
	c->wants_write = false;
	peer = SSL_get_peer_certificate(c->ssl);
	if (peer) {
		X509_NAME_oneline(X509_get_subject_name(peer), c->subject, sizeof(c->subject));
		X509_free(peer);
	}
	return 0;
}

static ssize_t ossl_conn_read(struct tls_conn *c, void *buf, size_t len)
{
	int n = SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

	if (n > 0) {
		c->wants_write = false;
		return n;
	}
	return map_result(c, n, "read");
}

static ssize_t ossl_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
	int n = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

	if (n > 0) {
		c->wants_write = false;
		return n;
	}
	n = map_result(c, n, "write");
	return n == 0 ? -EPIPE : n;
}

static bool ossl_conn_wants_write(const struct tls_conn *c)
{
	return c->wants_write;
}

static const char *ossl_conn_error(const struct tls_conn *c)
{
	return c->error[0] ? c->error : "unknown error";
}

static const char *ossl_conn_peer_subject(const struct tls_conn *c)
{
	return c->subject[0] ? c->subject : "(none)";
}

__attribute__((visibility("default"))) const struct tls_ops ctld_tls_ops = {
	.abi = CTLD_TLS_ABI,
	.ctx_new = ossl_ctx_new,
	.ctx_free = ossl_ctx_free,
	.conn_new = ossl_conn_new,
	.conn_free = ossl_conn_free,
	.conn_handshake = ossl_conn_handshake,
	.conn_read = ossl_conn_read,
	.conn_write = ossl_conn_write,
	.conn_wants_write = ossl_conn_wants_write,
	.conn_error = ossl_conn_error,
	.conn_peer_subject = ossl_conn_peer_subject,
};
