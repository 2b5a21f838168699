// SPDX-License-Identifier: BSD-2-Clause
/*
 * listener.c - listening sockets and accept().
 *
 * The unix socket is the local root-only door: created with mode 0600 in a
 * directory that only root (or the daemon's user) can change, so it cannot be
 * swapped for another file, and every peer's uid is checked with SO_PEERCRED.
 * Plain TCP on loopback is held to the same rule: the local user behind each
 * connection is found with sock_diag and must be root (or the daemon's user).
 * TCP on a non-loopback address requires TLS (or --insecure, loudly); with
 * TLS, the client certificate is the identity.
 *
 * Accepted TCP connections get keepalive probes and TCP_USER_TIMEOUT
 * (--tcp-keepalive): a client that vanished behind a partition or with its
 * machine stops acknowledging, the kernel ends the connection, and the
 * session goes like any other: its watches end, its kill-on-disconnect jobs
 * are killed, its slot and queue are freed.
 *
 * The listener tells session.c what kind of peer it has (see there for
 * who counts where): a unix or plain loopback peer is known at accept, a
 * TLS peer is a stranger until its Hello and never refused here for lack
 * of room (the oldest stranger is evicted instead).
 *
 * accept() runs until EAGAIN; when the daemon is out of file descriptors it
 * uses a reserved fd to accept the connection, tell the client why, and close
 * it, so a full fd table is an error for the client, not a busy loop. On a
 * TLS listener a refusal is a close and nothing else: the peer expects a
 * TLS handshake, never a plain-text frame. Every refusal is logged through
 * log_limit.h, so a connect/close loop costs a few system calls, not a line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/clients/listener.h"
#include "daemon/core/handover.h"
#include "daemon/core/log.h"
#include "daemon/core/log_limit.h"
#include "daemon/core/loop.h"
#include "daemon/clients/session.h"
#include "daemon/kernel/procnet.h"
#include "daemon/kernel/sockdiag.h"
#include "common/keepalive.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/wire.h"

#define MAX_LISTENERS 16

struct listener {
	int fd;
	char spec[LISTENER_SPEC_MAX]; /* "unix:PATH" or "tcp:ADDR:PORT" as given */
	bool is_unix;
	bool loopback; /* plain TCP on loopback: peers are local users, check them */
	struct tls_ctx *tls;
};

static struct {
	struct loop *loop;
	struct listener listeners[MAX_LISTENERS];
	size_t count;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int spare_fd; /* kept open to accept-and-refuse when out of fds */
	int diag_fd;  /* sock_diag, to find the local user behind a loopback peer */
	struct procnet pn; /* /proc/net/tcp[6], the same where sock_diag cannot */
	uint32_t tcp_keepalive_ms;
} L = { .spare_fd = -1, .diag_fd = -1, .pn = { { -1, -1 } } };

static void on_accept(struct loop *loop, int fd, uint32_t events, void *ctx);

int listener_init(struct loop *loop, uint32_t tcp_keepalive_ms)
{
	L.loop = loop;
	L.tcp_keepalive_ms = tcp_keepalive_ms;
	L.count = 0;
	L.unix_path[0] = '\0';
	L.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return L.spare_fd < 0 ? -errno : 0;
}

static int add_listener(const char *spec, int fd, bool is_unix, bool loopback,
			struct tls_ctx *tls)
{
	int err;

	if (L.count == MAX_LISTENERS)
		return -ENOSPC;
	L.listeners[L.count] =
		(struct listener){ .fd = fd, .is_unix = is_unix, .loopback = loopback, .tls = tls };
	copy_str(L.listeners[L.count].spec, sizeof(L.listeners[L.count].spec), spec);
	err = loop_fd_add(L.loop, fd, EPOLLIN, on_accept, &L.listeners[L.count]);
	if (err)
		return err;
	L.count++;
	return 0;
}

/* ------------------------------------------------------------ upgrades */

/* The record a listener is handed to the next image by (handover.h). */
struct listener_record {
	char spec[LISTENER_SPEC_MAX];
	int32_t fd;
};

/* The listening socket the previous image served spec on, or -1. */
static int inherited(const char *spec)
{
	const void *data;
	uint16_t version;
	size_t it = 0, len;

	while (handover_next(&it, HANDOVER_LISTENER, &version, &data, &len)) {
		struct listener_record r;

		if (version != 1 || len != sizeof(r))
			continue;
		memcpy(&r, data, sizeof(r));
		r.spec[sizeof(r.spec) - 1] = '\0';
		if (strcmp(r.spec, spec) == 0 && handover_claim_fd(r.fd)) {
			log_info("upgrade: serving %s on the socket handed over", spec);
			return r.fd;
		}
	}
	return -1;
}

int listener_handover(struct handover *h)
{
	int err;

	for (size_t i = 0; i < L.count; i++) {
		struct listener_record r = { .fd = L.listeners[i].fd };

		copy_str(r.spec, sizeof(r.spec), L.listeners[i].spec);
		if ((err = handover_put(h, HANDOVER_LISTENER, 1, &r, sizeof(r))) ||
		    (err = handover_keep_fd(h, r.fd)))
			return err;
	}
	return 0;
}

void listener_pause(bool paused)
{
	for (size_t i = 0; i < L.count; i++) {
		struct listener *l = &L.listeners[i];
		int err;

		if (paused)
			loop_fd_del(L.loop, l->fd);
		else if ((err = loop_fd_add(L.loop, l->fd, EPOLLIN, on_accept, l)))
			log_err("%s: cannot accept again: %s", l->spec, strerror(-err));
	}
}

/* ------------------------------------------------------------ unix socket */

/* The directory holding the socket must not be changeable by other users:
 * owned by root or us, and not group/other-writable unless sticky (/tmp). */
static int check_socket_dir(const char *path, char *err, size_t errlen)
{
	char copy[sizeof(L.unix_path)];
	struct stat st;
	const char *dir;

	copy_str(copy, sizeof(copy), path);
	dir = dirname(copy);
	if (lstat(dir, &st) < 0) {
		snprintf(err, errlen, "socket directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "socket directory %s is not a directory (symlinks refused)",
			 dir);
		return -ENOTDIR;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen, "socket directory %s is owned by uid %u, not root", dir,
			 st.st_uid);
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen, "socket directory %s is writable by others", dir);
		return -EPERM;
	}
	return 0;
}

/* A socket file left at path: refuse if a daemon answers there, else remove it. */
static int clear_stale_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, ret;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid())) {
		snprintf(err, errlen, "%s exists and is not our socket; not touching it", path);
		return -EEXIST;
	}
	copy_str(sa.sun_path, sizeof(sa.sun_path), path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (ret == 0) {
		snprintf(err, errlen, "another daemon is serving %s", path);
		return -EADDRINUSE;
	}
	log_info("removing stale socket %s", path);
	return unlink(path) < 0 ? -errno : 0;
}

int listener_add_unix(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old_umask;
	int fd, ret;

	char spec[LISTENER_SPEC_MAX];

	if (!copy_str(sa.sun_path, sizeof(sa.sun_path), path)) {
		snprintf(err, errlen, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	snprintf(spec, sizeof(spec), "unix:%s", path);
	if ((ret = check_socket_dir(path, err, errlen)))
		return ret;
	/* upgraded in place: the socket is the one the old image served */
	if ((fd = inherited(spec)) >= 0)
		goto have_fd;
	if ((ret = clear_stale_socket(path, err, errlen)))
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	/* umask makes the socket 0600 from birth: no window with a wider mode. */
	old_umask = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_umask);
	if (ret < 0 || listen(fd, SOMAXCONN) < 0)
		goto fail;
have_fd:
	copy_str(L.unix_path, sizeof(L.unix_path), path);
	if ((ret = add_listener(spec, fd, true, false, NULL))) {
		close(fd);
		snprintf(err, errlen, "failed to watch %s: %s", path, strerror(-ret));
		return ret;
	}
	return 0;
fail:
	ret = -errno;
	snprintf(err, errlen, "failed to listen on %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}

/* ------------------------------------------------------------ TCP */

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

static int bound_port(int fd, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

int listener_add_tcp(const char *addr_port, struct tls_ctx *tls, bool insecure,
		     uint16_t *port_out, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	char host[64], port[16], spec[LISTENER_SPEC_MAX];
	int fd = -1, one = 1, ret;

	if (split_host_port(addr_port, host, sizeof(host), port, sizeof(port))) {
		snprintf(err, errlen, "bad listen address '%s' (want ADDR:PORT or [ADDR6]:PORT)",
			 addr_port);
		return -EINVAL;
	}
	if ((ret = getaddrinfo(host, port, &hints, &ai))) {
		snprintf(err, errlen, "bad listen address '%s': %s", addr_port, gai_strerror(ret));
		return -EINVAL;
	}
	if (!is_loopback(ai->ai_addr) && !tls && !insecure) {
		snprintf(err, errlen,
			 "refusing to listen on non-loopback %s without TLS "
			 "(give --tls-cert/--tls-key/--tls-ca, or --insecure)",
			 addr_port);
		ret = -EPERM;
		goto out;
	}
	if (!is_loopback(ai->ai_addr) && !tls)
		log_warn("INSECURE: anyone who can reach %s can run commands as root", addr_port);
	snprintf(spec, sizeof(spec), "tcp:%s", addr_port);
	if ((fd = inherited(spec)) >= 0)
		goto have_fd;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto sys_fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0)
		goto sys_fail;
have_fd:
	if (!tls && is_loopback(ai->ai_addr) && L.pn.fd[0] < 0)
		procnet_open(&L.pn);
	if (!tls && is_loopback(ai->ai_addr) && L.diag_fd < 0 &&
	    (L.diag_fd = sockdiag_open()) < 0 && L.pn.fd[0] < 0) {
		ret = L.diag_fd;
		snprintf(err, errlen, "sock_diag (to check local TCP peers): %s", strerror(-ret));
		goto out;
	}
	if ((ret = bound_port(fd, port_out)) ||
	    (ret = add_listener(spec, fd, false, !tls && is_loopback(ai->ai_addr), tls))) {
		snprintf(err, errlen, "failed to set up %s: %s", addr_port, strerror(-ret));
		goto out;
	}
	fd = -1;
	ret = 0;
	goto out;
sys_fail:
	ret = -errno;
	snprintf(err, errlen, "failed to listen on %s: %s", addr_port, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return ret;
}

/* ------------------------------------------------------------ accept */

/* Refuses a fresh connection: one Error frame, best effort, then close.
 * A TLS listener's peers expect a TLS handshake, and a plain-text frame
 * there is garbage to them ("wrong version number"): they are only closed,
 * as is a peer that closed its end already (text NULL): nobody would read
 * the frame. */
static void refuse(const struct listener *l, int fd, ctld_ErrorCode code, const char *text)
{
	ctld_Message msg = ctld_Message_init_zero;
	uint8_t buf[512];
	size_t len;

	if (!l->tls && text) {
		msg.which_kind = ctld_Message_reply_tag;
		msg.kind.reply.has_error = true;
		msg.kind.reply.error.code = code;
		copy_str(msg.kind.reply.error.text, sizeof(msg.kind.reply.error.text), text);
		if (wire_encode(ctld_Message_fields, &msg, buf, sizeof(buf), &len) == 0)
			(void)!send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	close(fd);
}

static void accept_without_fds(const struct listener *l)
{
	int fd;

	if (L.spare_fd < 0)
		return;
	close(L.spare_fd);
	fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0) {
		log_limited(LOG_WARN, "", "out of file descriptors: refusing a client");
		refuse(l, fd, ctld_ErrorCode_LIMIT, "daemon is out of file descriptors");
	}
	L.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Plain TCP on loopback would let any local user in: find the user who owns
 * the connecting socket (an exact sock_diag lookup) and treat it like a
 * unix-socket peer. Fails closed: unknown means refused. */
static int loopback_peer_uid(int fd, const struct sockaddr_storage *peer, uid_t *uid)
{
	struct sockaddr_storage local;
	socklen_t ll = sizeof(local);

	if (getsockname(fd, (struct sockaddr *)&local, &ll) < 0)
		return -errno;
	/* sock_diag first; /proc/net/tcp where it cannot answer (the
	 * inet_diag/tcp_diag modules missing). A socket it found in
	 * TIME_WAIT is an answer: the whole table would only say the same. */
	if (L.diag_fd >= 0) {
		int err = sockdiag_tcp_peer_uid(L.diag_fd, &local, peer, uid);

		if (err == 0 || err == -ENOTCONN)
			return err;
	}
	return procnet_peer_uid(&L.pn, &local, peer, uid);
}

static void describe_unix_peer(int fd, struct peer *p)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
		p->uid = cred.uid;
		snprintf(p->name, sizeof(p->name), "unix uid=%u pid=%d", cred.uid, cred.pid);
		snprintf(p->source, sizeof(p->source), "unix uid=%u", cred.uid);
	} else {
		snprintf(p->name, sizeof(p->name), "unix uid=?");
		snprintf(p->source, sizeof(p->source), "unix uid=?");
	}
}

/* The peer's address as text, an IPv4-mapped IPv6 address as IPv4 (one
 * host is one source); ss gets the raw address (AF_UNSPEC if unknown). */
static void describe_tcp_peer(int fd, struct sockaddr_storage *ss, struct peer *p)
{
	const struct sockaddr_in6 *in6 = (const void *)ss;
	const struct sockaddr_in *in = (const void *)ss;
	socklen_t sl = sizeof(*ss);
	int family = AF_INET;
	const void *addr;
	uint16_t port;

	if (getpeername(fd, (struct sockaddr *)ss, &sl) < 0 ||
	    (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)) {
		ss->ss_family = AF_UNSPEC;
		snprintf(p->source, sizeof(p->source), "?");
		snprintf(p->name, sizeof(p->name), "tcp ?");
		return;
	}
	if (ss->ss_family == AF_INET) {
		addr = &in->sin_addr;
		port = ntohs(in->sin_port);
	} else {
		port = ntohs(in6->sin6_port);
		addr = &in6->sin6_addr.s6_addr[12];
		if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			family = AF_INET6;
			addr = &in6->sin6_addr;
		}
	}
	inet_ntop(family, addr, p->source, sizeof(p->source));
	snprintf(p->name, sizeof(p->name), family == AF_INET6 ? "tcp [%s]:%u" : "tcp %s:%u",
		 p->source, port);
}

/* Who connected, as far as the listener can tell; 0, or the refusal to send. */
static int identify(const struct listener *l, int fd, struct peer *p, const char **why)
{
	struct sockaddr_storage ss;
	int err;

	*p = (struct peer){ .uid = (uid_t)-1 };
	if (l->is_unix) {
		p->kind = PEER_UNIX;
		describe_unix_peer(fd, p);
	} else {
		p->kind = l->loopback ? PEER_LOCAL : PEER_STRANGER;
		describe_tcp_peer(fd, &ss, p);
	}
	if (l->loopback && (err = loopback_peer_uid(fd, &ss, &p->uid))) {
		log_limited(LOG_WARN, p->source,
			    "refusing %s: cannot tell which local user connected: %s", p->name,
			    err == -ENOTCONN ? "it closed its socket first" : strerror(-err));
		*why = err == -ENOTCONN ? NULL : "cannot identify the local user";
		return ctld_ErrorCode_PERMISSION;
	}
	if (p->kind != PEER_STRANGER && p->uid != 0 && p->uid != geteuid()) {
		/* the uid is the source: one local user's loop is one cause */
		snprintf(p->source, sizeof(p->source), "uid %u", p->uid);
		log_limited(LOG_WARN, p->source,
			    "refusing %s (uid %u): only root may use this daemon without TLS", p->name,
			    p->uid);
		*why = "only root may use this daemon (use TLS for other users)";
		return ctld_ErrorCode_PERMISSION;
	}
	return 0;
}

static void accept_one(struct listener *l, int fd)
{
	struct tls_conn *tls = NULL;
	const char *why = NULL;
	struct peer peer;
	int one = 1, err, code;

	if ((code = identify(l, fd, &peer, &why))) {
		refuse(l, fd, code, why);
		return;
	}
	if (!l->is_unix)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!l->is_unix && L.tcp_keepalive_ms && (err = tcp_keepalive_set(fd, L.tcp_keepalive_ms)))
		log_limited(LOG_WARN, peer.source, "client %s: cannot set TCP keepalive: %s",
			    peer.name, strerror(-err));
	if (l->tls && (err = tls_conn_new(l->tls, fd, NULL, NULL, &tls))) {
		log_limited(LOG_WARN, peer.source, "refusing %s: TLS setup failed: %s", peer.name,
			    strerror(-err));
		close(fd);
		return;
	}
	if (!(err = session_accept(fd, &peer, tls)))
		return;
	if (tls)
		tls_conn_free(tls);
	if (err == -EUSERS) {
		log_limited(LOG_WARN, peer.source, "refusing %s: client limit reached", peer.name);
		refuse(l, fd, ctld_ErrorCode_LIMIT, "too many clients");
		return;
	}
	log_limited(LOG_WARN, peer.source, "refusing %s: %s", peer.name, strerror(-err));
	refuse(l, fd, ctld_ErrorCode_INTERNAL, "daemon could not accept the connection");
}

static void on_accept(struct loop *loop, int lfd, uint32_t events, void *ctx)
{
	struct listener *l = ctx;

	(void)loop;
	(void)events;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_without_fds(l);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_limited(LOG_WARN, "", "accept failed: %s", strerror(errno));
			return;
		}
		accept_one(l, fd);
	}
}

void listener_shutdown(void)
{
	for (size_t i = 0; i < L.count; i++) {
		loop_fd_del(L.loop, L.listeners[i].fd);
		close(L.listeners[i].fd);
	}
	L.count = 0;
	if (L.unix_path[0])
		unlink(L.unix_path);
	L.unix_path[0] = '\0';
	if (L.spare_fd >= 0)
		close(L.spare_fd);
	L.spare_fd = -1;
	if (L.diag_fd >= 0)
		close(L.diag_fd);
	L.diag_fd = -1;
	procnet_close(&L.pn);
}
