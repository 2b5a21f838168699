// SPDX-License-Identifier: BSD-2-Clause
/*
 * procnet.c - /proc/net/tcp[6] as a fallback for sock_diag (see procnet.h).
 *
 * The kernel prints an address as the 32-bit words it stores, in network
 * order, formatted as host integers (%08X), and the port in host order.
 * Copying each parsed word back into memory gives the network-order bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/kernel/procnet.h"

#define READ_CHUNK 65536

void procnet_open(struct procnet *pn)
{
	pn->fd[0] = open("/proc/thread-self/net/tcp", O_RDONLY | O_CLOEXEC);
	pn->fd[1] = open("/proc/thread-self/net/tcp6", O_RDONLY | O_CLOEXEC);
}

void procnet_close(struct procnet *pn)
{
	for (int i = 0; i < 2; i++) {
		if (pn->fd[i] >= 0)
			close(pn->fd[i]);
		pn->fd[i] = -1;
	}
}

static int parse_address(const char *text, int words, uint8_t *addr, uint16_t *port)
{
	char *end;

	for (int i = 0; i < words; i++) {
		char word[9];
		uint32_t v;

		memcpy(word, text + 8 * i, 8);
		word[8] = '\0';
		v = (uint32_t)strtoul(word, &end, 16);
		if (*end)
			return -EINVAL;
		memcpy(addr + 4 * i, &v, 4);
	}
	if (text[8 * words] != ':')
		return -EINVAL;
	*port = (uint16_t)strtoul(text + 8 * words + 1, &end, 16);
	return end == text + 8 * words + 1 ? -EINVAL : 0;
}

int procnet_parse_line(const char *line, uint16_t family, struct procnet_entry *e)
{
	char local[64], remote[64];
	unsigned state, timer, uid;
	unsigned long long ino;
	int words = family == AF_INET6 ? 4 : 1;

	memset(e, 0, sizeof(*e));
	if (sscanf(line, " %*d: %63s %63s %x %*s %x:%*s %*s %u %*d %llu", local, remote, &state,
		   &timer, &uid, &ino) != 6 ||
	    strlen(local) != (size_t)(8 * words + 5) || strlen(remote) != (size_t)(8 * words + 5))
		return -EINVAL;
	if (parse_address(local, words, e->local, &e->local_port) ||
	    parse_address(remote, words, e->remote, &e->remote_port))
		return -EINVAL;
	e->family = family;
	e->state = (uint8_t)state;
	e->timer = (uint8_t)timer;
	e->uid = (uid_t)uid;
	e->ino = ino;
	return 0;
}

/* Calls fn for each entry of one table; stops early when fn returns false.
 * 0, or -errno when the table cannot be read. */
static int each_entry(int fd, uint16_t family, bool (*fn)(const struct procnet_entry *, void *),
		      void *ctx)
{
	static char buf[READ_CHUNK + 1];
	size_t have = 0;
	bool first = true;

	if (fd < 0)
		return -ENOENT;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + have, READ_CHUNK - have);
		char *line = buf, *nl;

		if (n < 0)
			return -errno;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = strchr(line, '\n'))) {
			struct procnet_entry e;

			*nl = '\0';
			if (!first && procnet_parse_line(line, family, &e) == 0 && !fn(&e, ctx))
				return 0;
			first = false; /* the header */
			line = nl + 1;
		}
		have = strlen(line);
		memmove(buf, line, have);
		if (n == 0 || have == READ_CHUNK)
			return 0;
	}
}

struct listener_scan {
	uint16_t port;
	struct tcp_listener *out;
	size_t max;
	int n;
};

static bool collect_listener(const struct procnet_entry *e, void *ctx)
{
	struct listener_scan *s = ctx;

	if (e->state != TCP_LISTEN || (s->port && e->local_port != s->port))
		return true;
	if ((size_t)s->n < s->max) {
		struct tcp_listener *l = &s->out[s->n];

		memset(l, 0, sizeof(*l));
		l->sock_ino = e->ino;
		l->port = e->local_port;
		l->family = e->family;
		memcpy(l->addr, e->local, sizeof(l->addr));
	}
	s->n++;
	return true;
}

int procnet_listeners(const struct procnet *pn, int family, uint16_t port,
		      struct tcp_listener *out, size_t max)
{
	struct listener_scan s = { .port = port, .out = out, .max = max };
	int err;

	if (family != AF_INET6 && (err = each_entry(pn->fd[0], AF_INET, collect_listener, &s)))
		return err;
	if (family != AF_INET && pn->fd[1] >= 0 &&
	    (err = each_entry(pn->fd[1], AF_INET6, collect_listener, &s)))
		return err;
	return s.n;
}

struct peer_scan {
	uint8_t local[16], peer[16];
	uint16_t local_port, peer_port;
	bool found;
	bool time_wait; /* its uid is the kernel's placeholder, not its owner's */
	uid_t uid;
};

static bool match_peer(const struct procnet_entry *e, void *ctx)
{
	struct peer_scan *s = ctx;

	if (e->local_port != s->peer_port || e->remote_port != s->local_port ||
	    memcmp(e->local, s->peer, sizeof(s->peer)) || memcmp(e->remote, s->local, sizeof(s->local)))
		return true;
	s->found = true;
	s->time_wait = e->timer == 3;
	s->uid = e->uid;
	return false;
}

static void endpoint(const struct sockaddr_storage *sa, uint8_t addr[16], uint16_t *port)
{
	tcp_endpoint_of(sa, addr, port);
	*port = ntohs(*port);
}

int procnet_peer_uid(const struct procnet *pn, const struct sockaddr_storage *local,
		     const struct sockaddr_storage *peer, uid_t *uid)
{
	struct peer_scan s = { 0 };
	int err;

	endpoint(local, s.local, &s.local_port);
	endpoint(peer, s.peer, &s.peer_port);
	err = each_entry(pn->fd[peer->ss_family == AF_INET6], peer->ss_family, match_peer, &s);
	if (err)
		return err;
	if (!s.found)
		return -ENOENT;
	if (s.time_wait)
		return -ENOTCONN;
	*uid = s.uid;
	return 0;
}
