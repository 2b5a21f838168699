/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * procnet.h - TCP sockets from /proc/net/tcp and /proc/net/tcp6, for when
 * sock_diag cannot answer (on Debian kernels inet_diag and tcp_diag are
 * modules, and a node may not be able to load them). About 100 times
 * slower than a sock_diag dump (a whole table is formatted and parsed),
 * so only a fallback: a kernel-reported listener must never be dropped
 * because the fast check failed.
 */
#ifndef CTLD_PROCNET_H
#define CTLD_PROCNET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "daemon/kernel/tcp_listener.h"

/* The tables of one network namespace: opened while inside it (an open
 * /proc/net file keeps showing the namespace it was opened in). */
struct procnet {
	int fd[2]; /* tcp, tcp6; -1 when missing */
};

/* Opens the tables of the calling thread's current namespace. */
void procnet_open(struct procnet *pn);
void procnet_close(struct procnet *pn);

/* Like sockdiag_listeners(): listeners of family (0: both) on port (0:
 * any). Returns the count (only max stored) or -errno. */
int procnet_listeners(const struct procnet *pn, int family, uint16_t port,
		      struct tcp_listener *out, size_t max);
/* The uid owning the socket connected from `peer` to `local`. 0, -ENOENT,
 * or -ENOTCONN when it is in TIME_WAIT (its row says uid 0, whoever it was). */
int procnet_peer_uid(const struct procnet *pn, const struct sockaddr_storage *local,
		     const struct sockaddr_storage *peer, uid_t *uid);

/* Parses one line of /proc/net/tcp[6]: 0 and the fields, or -EINVAL. */
struct procnet_entry {
	uint16_t family;
	uint8_t local[16], remote[16];
	uint16_t local_port, remote_port;
	uint8_t state;
	uint8_t timer; /* 3: a TIME_WAIT mini-socket, whose uid column reads 0 */
	uid_t uid;
	uint64_t ino;
};
int procnet_parse_line(const char *line, uint16_t family, struct procnet_entry *e);

#endif
