// SPDX-License-Identifier: BSD-2-Clause
/*
 * tls.c - TLS on demand: the tls.h calls, forwarded to ctld-tls.so.
 *
 * OpenSSL is 1.7 MiB resident and a few milliseconds of relocations at every
 * start, yet most daemons and nearly every ctl command never use it (unix
 * socket, loopback TCP). So nothing here links it: the first tls_ctx_new()
 * dlopen()s the project's own module (user/tls/), found like ctld-spawner
 * (next to the executable, else CTLD_LIBEXECDIR), and every later call goes
 * through the table it exports. A tls_conn exists only after a tls_ctx did,
 * so the other calls always find the table loaded. The module stays loaded
 * until exit: contexts and connections hold its code.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "common/companion.h"
#include "common/tls.h"
#include "common/tls_ops.h"
#include "common/util.h"

static const struct tls_ops *ops;

static int load_module(char *err, size_t errlen)
{
	char path[PATH_MAX];
	const struct tls_ops *found;
	void *handle;

	if (ops)
		return 0;
	if (companion_find(CTLD_TLS_MODULE, R_OK, path, sizeof(path)))
		return errorf(err, errlen, -ENOENT,
			      "TLS support is not installed (no " CTLD_TLS_MODULE
			      " next to the program or in " CTLD_LIBEXECDIR ")");
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle)
		return errorf(err, errlen, -ENOEXEC, "cannot load %s: %s", path, dlerror());
	found = dlsym(handle, CTLD_TLS_SYMBOL);
	if (!found || found->abi != CTLD_TLS_ABI) {
		dlclose(handle);
		return errorf(err, errlen, -ENOEXEC, "%s: %s", path,
			      found ? "built for another version of ctld-bpf"
				    : "not a ctld-bpf TLS module");
	}
	ops = found;
	return 0;
}

int tls_ctx_new(enum tls_role role, const char *cert, const char *key, const char *ca,
		struct tls_ctx **out, char *err, size_t errlen)
{
	int ret = load_module(err, errlen);

	return ret ? ret : ops->ctx_new(role, cert, key, ca, out, err, errlen);
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx)
		ops->ctx_free(ctx);
}

int tls_ctx_set_session_cache(struct tls_ctx *ctx, const char *dir, char *err, size_t errlen)
{
	return ops->ctx_set_session_cache(ctx, dir, err, errlen);
}

int tls_conn_new(struct tls_ctx *ctx, int fd, const char *server_name, const char *peer,
		 struct tls_conn **out)
{
	return ops->conn_new(ctx, fd, server_name, peer, out);
}

void tls_conn_free(struct tls_conn *c)
{
	if (c)
		ops->conn_free(c);
}

int tls_conn_handshake(struct tls_conn *c)
{
	return ops->conn_handshake(c);
}

ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
	return ops->conn_read(c, buf, len);
}

ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
	return ops->conn_write(c, buf, len);
}

bool tls_conn_wants_write(const struct tls_conn *c)
{
	return ops->conn_wants_write(c);
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return ops->conn_error(c);
}

const char *tls_conn_peer_subject(const struct tls_conn *c)
{
	return ops->conn_peer_subject(c);
}

bool tls_conn_resumed(const struct tls_conn *c)
{
	return ops->conn_resumed(c);
}
