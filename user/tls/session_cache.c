// SPDX-License-Identifier: BSD-2-Clause
/*
 * session_cache.c - ctl's TLS 1.3 session tickets on disk (see
 * session_cache.h and docs/design.md "TLS session resumption").
 *
 * Every ctl is a fresh process, so OpenSSL's in-memory client cache never
 * gets a second use; this keeps the daemon's ticket in a file per peer
 * instead. A resumed handshake skips what dominates a full one in OpenSSL
 * 3.0: decoding the peer certificate, verifying its chain and the
 * CertificateVerify signature, signing our own.
 *
 * A ticket file holds the session's resumption secret: whoever can use it
 * talks to that daemon as us until the ticket expires. So each file is
 * sealed (AES-256-GCM) with a key derived from the client's private key, and
 * bound (as additional data) to the peer, the client certificate and the
 * trusted CAs: a copied file opens only for someone who also holds the key
 * file, and a session is never used under another identity or trust. Files
 * that do not open, are too big, are not ours or private, or hold an expired
 * or non-TLS-1.3 session are ignored: the handshake is then a full one, as
 * without a cache, and its ticket replaces the file.
 *
 * Bounded: one slot file per peer, named by 14 bits of the peer's digest
 * (at most 16384 files of at most FILE_MAX bytes; two peers sharing a slot
 * take turns, costing a full handshake). Written to a temporary file and
 * renamed, so a reader never sees half a file.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "tls/session_cache.h"

#define MAGIC "CTLDTLS1"
#define MAGIC_LEN 8
#define NONCE_LEN 12
#define TAG_LEN 16
#define HEADER_LEN (MAGIC_LEN + NONCE_LEN + TAG_LEN)
#define FILE_MAX 4096 /* a session with the daemon's certificate is ~1.3 KiB */
#define SLOT_BITS 14

static void slot_name(const char *peer, char *name, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(peer, strlen(peer), md, &mdlen, EVP_sha256(), NULL);
	snprintf(name, len, "s-%04x", ((unsigned)md[0] << 8 | md[1]) & ((1u << SLOT_BITS) - 1));
}

static int derive_seal_key(struct session_cache *sc, SSL_CTX *s)
{
	static const char label[] = "ctld-bpf tls session cache seal v1";
	EVP_PKEY *pkey = SSL_CTX_get0_privatekey(s);
	unsigned char *der = NULL;
	unsigned int len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int n = pkey ? i2d_PrivateKey(pkey, &der) : -1;
	int ok = md && n > 0 && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(md, label, sizeof(label)) && EVP_DigestUpdate(md, der, n) &&
		 EVP_DigestFinal_ex(md, sc->seal_key, &len);

	if (der)
		OPENSSL_clear_free(der, n);
	EVP_MD_CTX_free(md);
	return ok && len == SESSION_CACHE_KEY_LEN ? 0 : -EINVAL;
}

/* Feeds the SHA-256 of cert (DER) into md. */
static int digest_cert(EVP_MD_CTX *md, const X509 *cert)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	return cert && X509_digest(cert, EVP_sha256(), d, &len) && EVP_DigestUpdate(md, d, len);
}

static int derive_identity(struct session_cache *sc, SSL_CTX *s)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(s));
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
		 digest_cert(md, SSL_CTX_get0_certificate(s));

	for (int i = 0; ok && i < sk_X509_OBJECT_num(objs); i++) {
		X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (ca)
			ok = digest_cert(md, ca);
	}
	ok = ok && EVP_DigestFinal_ex(md, sc->identity, &len);
	EVP_MD_CTX_free(md);
	return ok && len == SESSION_CACHE_KEY_LEN ? 0 : -EINVAL;
}

/* The file or directory is ours and nobody else can read or change it. */
static bool is_private(const struct stat *st)
{
	return st->st_uid == geteuid() && !(st->st_mode & 077);
}

int session_cache_open(struct session_cache *sc, const char *dir, SSL_CTX *s, char *err,
		       size_t errlen)
{
	struct stat st;

	sc->dirfd = -1;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -errno;
	}
	sc->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (sc->dirfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (fstat(sc->dirfd, &st) || !is_private(&st)) {
		snprintf(err, errlen, "%s is not a private directory of this user (mode 0700)", dir);
		session_cache_close(sc);
		return -EPERM;
	}
	if (derive_seal_key(sc, s) || derive_identity(sc, s)) {
		snprintf(err, errlen, "cannot derive the session cache keys");
		session_cache_close(sc);
		return -EINVAL;
	}
	return 0;
}

void session_cache_close(struct session_cache *sc)
{
	if (sc->dirfd >= 0)
		close(sc->dirfd);
	sc->dirfd = -1;
	OPENSSL_cleanse(sc->seal_key, sizeof(sc->seal_key));
}

/* AES-256-GCM over data[len] in place; the additional data names the peer,
 * our certificate and our CAs. Returns 0 when sealed / opened and authentic. */
static int seal_or_open(const struct session_cache *sc, const char *peer, unsigned char *nonce,
		 unsigned char *tag, unsigned char *data, int len, int enc)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int out = 0, fin = 0;
	int ok = x && EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, sc->seal_key, nonce, enc) &&
		 EVP_CipherUpdate(x, NULL, &out, (const unsigned char *)MAGIC, MAGIC_LEN) &&
		 EVP_CipherUpdate(x, NULL, &out, sc->identity, SESSION_CACHE_KEY_LEN) &&
		 EVP_CipherUpdate(x, NULL, &out, (const unsigned char *)peer, (int)strlen(peer)) &&
		 EVP_CipherUpdate(x, data, &out, data, len) &&
		 (enc || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag)) &&
		 EVP_CipherFinal_ex(x, data + out, &fin) &&
		 (!enc || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag));

	EVP_CIPHER_CTX_free(x);
	return ok ? 0 : -EBADMSG;
}

/* Reads a private regular file of at most FILE_MAX bytes; its length or -1. */
static ssize_t read_slot(int dirfd, const char *name, unsigned char *buf)
{
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	ssize_t n = -1;

	if (fd < 0)
		return -1;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && is_private(&st) &&
	    st.st_size > HEADER_LEN && st.st_size <= FILE_MAX &&
	    read(fd, buf, FILE_MAX) == st.st_size)
		n = st.st_size;
	close(fd);
	return n;
}

static bool still_valid(const SSL_SESSION *sess)
{
	return SSL_SESSION_is_resumable(sess) &&
	       SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION &&
	       SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) > time(NULL);
}

SSL_SESSION *session_cache_load(const struct session_cache *sc, const char *peer)
{
	unsigned char buf[FILE_MAX];
	const unsigned char *der = buf + HEADER_LEN;
	SSL_SESSION *sess = NULL;
	char name[16];
	ssize_t n;

	if (sc->dirfd < 0)
		return NULL;
	slot_name(peer, name, sizeof(name));
	n = read_slot(sc->dirfd, name, buf);
	if (n < 0)
		return NULL;
	if (!memcmp(buf, MAGIC, MAGIC_LEN) &&
	    !seal_or_open(sc, peer, buf + MAGIC_LEN, buf + MAGIC_LEN + NONCE_LEN, buf + HEADER_LEN,
		   (int)(n - HEADER_LEN), 0))
		sess = d2i_SSL_SESSION(NULL, &der, n - HEADER_LEN);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (sess && still_valid(sess))
		return sess;
	SSL_SESSION_free(sess);
	/* Another peer's (a shared slot), another identity's, damaged or old:
	 * a full handshake follows and stores a fresh one. */
	return NULL;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes buf[len] to a temporary file and renames it over the slot. */
static void replace_slot(int dirfd, const char *name, const unsigned char *buf, size_t len)
{
	char tmp[48];
	int fd, ok;

	snprintf(tmp, sizeof(tmp), ".%s.%d", name, (int)getpid());
	unlinkat(dirfd, tmp, 0); /* left by a ctl that died with our pid */
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
		    0600);
	if (fd < 0)
		return;
	ok = !write_all(fd, buf, len);
	ok = !close(fd) && ok;
	if (!ok || renameat(dirfd, tmp, dirfd, name))
		unlinkat(dirfd, tmp, 0);
}

void session_cache_store(const struct session_cache *sc, const char *peer, SSL_SESSION *sess)
{
	unsigned char buf[FILE_MAX];
	unsigned char *der = buf + HEADER_LEN;
	char name[16];
	int n;

	if (sc->dirfd < 0 || !still_valid(sess))
		return;
	n = i2d_SSL_SESSION(sess, NULL);
	if (n <= 0 || n > FILE_MAX - HEADER_LEN)
		return;
	memcpy(buf, MAGIC, MAGIC_LEN);
	if (i2d_SSL_SESSION(sess, &der) != n || RAND_bytes(buf + MAGIC_LEN, NONCE_LEN) != 1 ||
	    seal_or_open(sc, peer, buf + MAGIC_LEN, buf + MAGIC_LEN + NONCE_LEN, buf + HEADER_LEN, n, 1)) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return;
	}
	slot_name(peer, name, sizeof(name));
	replace_slot(sc->dirfd, name, buf, (size_t)HEADER_LEN + n);
	OPENSSL_cleanse(buf, sizeof(buf));
}
