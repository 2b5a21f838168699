/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * session_cache.h - ctl's TLS 1.3 session tickets on disk, so the next ctl
 * process resumes instead of paying for a full handshake (certificate
 * parsing and two signatures on each side). Part of ctld-tls.so.
 */
#ifndef CTLD_TLS_SESSION_CACHE_H
#define CTLD_TLS_SESSION_CACHE_H

#include <stddef.h>

#include <openssl/ssl.h>

#define SESSION_CACHE_KEY_LEN 32

struct session_cache {
	int dirfd; /* -1: no cache */
	/* Seals the files: derived from the client's private key, so a copied
	 * file is useless without the key it belongs with. */
	unsigned char seal_key[SESSION_CACHE_KEY_LEN];
	/* Digest of the client certificate and the trusted CAs: a session is
	 * used only with the identity and trust it was made under. */
	unsigned char identity[SESSION_CACHE_KEY_LEN];
};

/* Opens (creating, mode 0700) dir for the client context s. The directory must
 * belong to the caller and be private. */
int session_cache_open(struct session_cache *sc, const char *dir, SSL_CTX *s, char *err,
		       size_t errlen);
void session_cache_close(struct session_cache *sc);

/* The cached session for peer ("host:port"), or NULL when there is none that
 * is intact, ours and still valid. The caller frees it. */
SSL_SESSION *session_cache_load(const struct session_cache *sc, const char *peer);
/* Replaces peer's cached session; failures only cost the next run a full handshake. */
void session_cache_store(const struct session_cache *sc, const char *peer, SSL_SESSION *sess);

#endif
