// SPDX-License-Identifier: BSD-2-Clause
/*
 * sockdiag.c - listening TCP sockets via NETLINK_SOCK_DIAG, and socket owners
 * via /proc/PID/fd. The kernel filters by state (LISTEN) and, for listeners,
 * by source port, so a dump returns only what was asked for.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/kernel/sockdiag.h"
#include "common/util.h"

int sockdiag_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);

	return fd < 0 ? -errno : fd;
}

static int send_dump(int fd, int family, uint16_t port, uint32_t seq)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = seq },
		.req = { .sdiag_family = (uint8_t)family, .sdiag_protocol = IPPROTO_TCP,
			 .idiag_states = 1u << TCP_LISTEN },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	msg.req.id.idiag_sport = htons(port);
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	return 0;
}

/* Reads one datagram; the kernel answers a dump at once, so waiting is short. */
static ssize_t recv_reply(int fd, void *buf, size_t len)
{
	for (int tries = 0; tries < 100; tries++) {
		ssize_t n = recv(fd, buf, len, 0);
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		poll(&p, 1, 10);
	}
	return -ETIMEDOUT;
}

static void store(const struct inet_diag_msg *m, struct tcp_listener *out)
{
	memset(out, 0, sizeof(*out));
	out->sock_ino = m->idiag_inode;
	out->port = ntohs(m->id.idiag_sport);
	out->family = m->idiag_family;
	memcpy(out->addr, m->id.idiag_src, m->idiag_family == AF_INET ? 4 : 16);
}

/* Collects one family's dump; returns the running count or -errno. */
static int collect(int fd, int family, uint16_t port, struct tcp_listener *out, size_t max,
		   int count)
{
	static uint32_t seq;
	char buf[32768];
	int err;

	if ((err = send_dump(fd, family, port, ++seq)))
		return err;
	for (;;) {
		ssize_t n = recv_reply(fd, buf, sizeof(buf));
		struct nlmsghdr *h;

		if (n < 0)
			return (int)n;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return count;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				return e->error ? e->error : -EPROTO;
			}
			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				continue;
			if ((size_t)count < max)
				store(NLMSG_DATA(h), &out[count]);
			count++;
		}
	}
}

int sockdiag_listeners(int fd, int family, uint16_t port, struct tcp_listener *out, size_t max)
{
	int count = 0;

	if (family != AF_INET6)
		count = collect(fd, AF_INET, port, out, max, count);
	if (count >= 0 && family != AF_INET)
		count = collect(fd, AF_INET6, port, out, max, count);
	return count;
}

int sockdiag_tcp_peer_uid(int fd, const struct sockaddr_storage *local,
			  const struct sockaddr_storage *peer, uid_t *uid)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 1 },
		.req = { .sdiag_family = (uint8_t)peer->ss_family, .sdiag_protocol = IPPROTO_TCP,
			 .idiag_states = ~0u },
	};
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	char buf[8192];
	struct nlmsghdr *h;
	ssize_t n;

	/* An exact lookup (no NLM_F_DUMP) of the peer's own socket. */
	tcp_endpoint_of(peer, (uint8_t *)msg.req.id.idiag_src, &msg.req.id.idiag_sport);
	tcp_endpoint_of(local, (uint8_t *)msg.req.id.idiag_dst, &msg.req.id.idiag_dport);
	msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	n = recv_reply(fd, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	h = (struct nlmsghdr *)buf;
	if (!NLMSG_OK(h, (size_t)n))
		return -EPROTO;
	if (h->nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(h);

		return e->error ? e->error : -ENOENT;
	}
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return -EPROTO;
	/* A client that connects, sends and closes before we looked may be
	 * in TIME_WAIT already: a mini-socket that keeps no owner, reported
	 * with uid 0 as if root owned it (its timer is 3, "TIME_WAIT", which
	 * no full socket reports). A socket its owner closed that is not
	 * there yet (FIN_WAIT1) still carries the owner's uid. */
	if (((struct inet_diag_msg *)NLMSG_DATA(h))->idiag_timer == 3)
		return -ENOTCONN;
	*uid = ((struct inet_diag_msg *)NLMSG_DATA(h))->idiag_uid;
	return 0;
}

static void read_comm(const char *pid, char comm[CTLD_COMM_LEN])
{
	char path[64];
	FILE *f;

	comm[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%.20s/comm", pid);
	if ((f = fopen(path, "re"))) {
		if (fgets(comm, CTLD_COMM_LEN, f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
}

/* The sockets of one process that are wanted and not owned yet: gives them
 * this pid. Returns how many it found. */
static size_t claim_sockets(const char *pid, struct tcp_listener **want, size_t n)
{
	char path[64], link[64];
	struct dirent *de;
	size_t found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%.20s/fd", pid);
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d))) {
		ssize_t len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		unsigned long long ino;

		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%llu]", &ino) != 1)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (want[i]->pid == 0 && want[i]->sock_ino == ino) {
				want[i]->pid = (pid_t)atoi(pid);
				read_comm(pid, want[i]->comm);
				found++;
			}
		}
	}
	closedir(d);
	return found;
}

size_t sockdiag_find_owners(struct tcp_listener **want, size_t n)
{
	struct dirent *de;
	size_t missing = 0, found = 0;
	DIR *proc;

	for (size_t i = 0; i < n; i++)
		missing += want[i]->pid == 0;
	if (!missing || !(proc = opendir("/proc")))
		return 0;
	while (found < missing && (de = readdir(proc)))
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
			found += claim_sockets(de->d_name, want, n);
	closedir(proc);
	return found;
}
