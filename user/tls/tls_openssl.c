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
 *
 * Resumption (docs/design.md "TLS session resumption"): the daemon issues a
 * ticket per full handshake, sealed with keys OpenSSL draws at random for each
 * SSL_CTX, so a restarted daemon (say, with a new CA) cannot open tickets it
 * issued before and does a full handshake. A resumed session carries the
 * client certificate verified by the full handshake it descends from; the
 * subject the daemon logs comes from it. ctl keeps tickets on disk
 * (session_cache.c) when given a cache directory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/tls_ops.h"
#include "tls/session_cache.h"

/*
 * How long the daemon's tickets are good for. Not OpenSSL's default (7200 s)
 * on purpose: the lifetime is the one thing in a ticket the client can see,
 * and daemons before resumption issue 7200 s tickets they cannot resume
 * (without a session id context OpenSSL fails such a handshake). So ctl
 * keeps only tickets of exactly this lifetime: it never offers an older
 * daemon a ticket.
 */
#define TICKET_LIFETIME_S 3600

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	struct session_cache cache; /* client only; dirfd -1 without a cache */
};

struct tls_conn {
	SSL *ssl;
	struct tls_ctx *ctx;
	bool wants_write;
	bool ticket_stored;
	time_t offered_time; /* when the session offered from the cache began; 0: none */
	char peer[300]; /* "host:port": the cache's key for this connection */
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

/*
 * A client resuming with a ticket younger than half its lifetime keeps it
 * (see ticket_worth_storing()), so the daemon does not make it a new one:
 * that saves a third of a resumed handshake's CPU. The other outcomes are
 * OpenSSL's defaults.
 */
static SSL_TICKET_RETURN on_ticket_decrypted(SSL *ssl, SSL_SESSION *sess,
					     const unsigned char *keyname, size_t keyname_len,
					     SSL_TICKET_STATUS status, void *arg)
{
	(void)keyname, (void)keyname_len, (void)arg;
	switch (status) {
	case SSL_TICKET_SUCCESS:
	case SSL_TICKET_SUCCESS_RENEW:
		if (time(NULL) - (time_t)SSL_SESSION_get_time(sess) < TICKET_LIFETIME_S / 2)
			SSL_set_num_tickets(ssl, 0);
		return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE
						    : SSL_TICKET_RETURN_USE_RENEW;
	case SSL_TICKET_EMPTY:
	case SSL_TICKET_NO_DECRYPT:
		return SSL_TICKET_RETURN_IGNORE_RENEW; /* a full handshake and a new ticket */
	default:
		return SSL_TICKET_RETURN_ABORT;
	}
}

/*
 * One ticket per handshake, not OpenSSL's two: ctl keeps one, and each ticket
 * costs the daemon a session encoding (with the client certificate) and a
 * seal, about a sixth of a full handshake's CPU. Resumption with client
 * verification needs a session id context; OpenSSL's server-side session
 * cache stays off (TLS 1.3 tickets are stateless, nothing to look up).
 */
static void set_server_tickets(SSL_CTX *s)
{
	static const unsigned char context[] = "ctld-bpf";

	SSL_CTX_set_session_id_context(s, context, sizeof(context) - 1);
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(s, 1);
	SSL_CTX_set_timeout(s, TICKET_LIFETIME_S);
	SSL_CTX_set_session_ticket_cb(s, NULL, on_ticket_decrypted, NULL);
}

static int conn_index(void)
{
	static int index = -1;

	if (index < 0)
		index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	return index;
}

/*
 * Whether the cached ticket should give way to the one just received: after a
 * full handshake, or when the resumed one has used half its lifetime. A
 * resumed ticket is otherwise kept as it is: TLS 1.3 tickets may be used again
 * (only 0-RTT data, which we never send, needs them single-use), and
 * rewriting the file on every run costs more than it saves (replacing a file
 * by rename makes ext4 flush it).
 */
static bool ticket_worth_storing(const struct tls_conn *c)
{
	return !SSL_session_reused(c->ssl) ||
	       time(NULL) - c->offered_time >= TICKET_LIFETIME_S / 2;
}

/* A ticket arrived (TLS 1.3 sends them after the handshake): keep the first. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_conn *c = SSL_get_ex_data(ssl, conn_index());

	if (c && c->peer[0] && !c->ticket_stored &&
	    SSL_SESSION_get_ticket_lifetime_hint(sess) == TICKET_LIFETIME_S &&
	    ticket_worth_storing(c)) {
		session_cache_store(&c->ctx->cache, c->peer, sess);
		c->ticket_stored = true;
	}
	return 0; /* not kept: OpenSSL frees it */
}

static int ossl_ctx_set_session_cache(struct tls_ctx *ctx, const char *dir, char *err,
				      size_t errlen)
{
	int ret;

	if (conn_index() < 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((ret = session_cache_open(&ctx->cache, dir, ctx->ssl_ctx, err, errlen)))
		return ret;
	SSL_CTX_set_session_cache_mode(ctx->ssl_ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx->ssl_ctx, on_new_session);
	return 0;
}

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
	ctx->cache.dirfd = -1;
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
	if (role == TLS_SERVER)
		set_server_tickets(s);
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
	session_cache_close(&ctx->cache);
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

/* Offers the cached session for c->peer, if there is a good one. */
static void offer_cached_session(struct tls_conn *c)
{
	SSL_SESSION *sess;

	if (!c->peer[0] || c->ctx->cache.dirfd < 0 ||
	    !SSL_set_ex_data(c->ssl, conn_index(), c))
		return;
	sess = session_cache_load(&c->ctx->cache, c->peer);
	if (sess && SSL_set_session(c->ssl, sess) == 1)
		c->offered_time = (time_t)SSL_SESSION_get_time(sess);
	SSL_SESSION_free(sess);
}

static int ossl_conn_new(struct tls_ctx *ctx, int fd, const char *server_name,
			 const char *peer, struct tls_conn **out)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->ctx = ctx;
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
		if (peer && strlen(peer) < sizeof(c->peer))
			snprintf(c->peer, sizeof(c->peer), "%s", peer);
		offer_cached_session(c);
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

static bool ossl_conn_resumed(const struct tls_conn *c)
{
	return SSL_session_reused(c->ssl) == 1;
}

static const char *ossl_conn_peer_subject(const struct tls_conn *c)
{
	return c->subject[0] ? c->subject : "(none)";
}

__attribute__((visibility("default"))) const struct tls_ops ctld_tls_ops = {
	.abi = CTLD_TLS_ABI,
	.ctx_new = ossl_ctx_new,
	.ctx_free = ossl_ctx_free,
	.ctx_set_session_cache = ossl_ctx_set_session_cache,
	.conn_new = ossl_conn_new,
	.conn_free = ossl_conn_free,
	.conn_handshake = ossl_conn_handshake,
	.conn_read = ossl_conn_read,
	.conn_write = ossl_conn_write,
	.conn_wants_write = ossl_conn_wants_write,
	.conn_error = ossl_conn_error,
	.conn_peer_subject = ossl_conn_peer_subject,
	.conn_resumed = ossl_conn_resumed,
};
