/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sockdiag.h - NETLINK_SOCK_DIAG queries: which TCP sockets are listening
 * (on a port, in the namespace the netlink socket was created in), and which
 * process owns a socket inode. One dump costs ~17 us, a /proc/net/tcp parse
 * ~1.7 ms: this is the only way the daemon looks at existing sockets.
 */
#ifndef CTLD_SOCKDIAG_H
#define CTLD_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "daemon/kernel/tcp_listener.h"

/* A NETLINK_SOCK_DIAG socket (CLOEXEC) in the caller's current netns, or -errno. */
int sockdiag_open(void);
/* Lists TCP listeners of family (AF_INET, AF_INET6, or 0 for both) on port
 * (0 = all): sock_ino, port, family and addr of each (the rest stays 0).
 * Returns the number found (only the first max are stored) or -errno. */
int sockdiag_listeners(int fd, int family, uint16_t port, struct tcp_listener *out, size_t max);
/* The uid owning the peer end of a TCP connection on this host: the socket
 * whose source is `peer` and destination `local` (both AF_INET or AF_INET6,
 * from getpeername/getsockname). 0 or -errno (-ENOENT: not a local peer;
 * -ENOTCONN: it is in TIME_WAIT, and who owned it is no longer known). */
int sockdiag_tcp_peer_uid(int fd, const struct sockaddr_storage *local,
			  const struct sockaddr_storage *peer, uid_t *uid);
/* Fills in pid and comm of every listener in want[0..n) whose pid is 0: a
 * process holding its socket inode. One pass over /proc for all of them
 * (it ends once all are found): a dump's new listeners are looked up
 * together, before short-lived ones are gone. Returns how many it found. */
size_t sockdiag_find_owners(struct tcp_listener **want, size_t n);

#endif
