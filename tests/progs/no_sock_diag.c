// SPDX-License-Identifier: BSD-2-Clause
/*
 * no_sock_diag.c - an LD_PRELOAD library for tests: a process that loads it
 * behaves as on a kernel whose inet_diag/tcp_diag modules cannot be
 * loaded. A NETLINK_SOCK_DIAG socket is handed out as a socket that
 * refuses every request (one end of an AF_UNIX datagram pair whose other
 * end is closed), so every sock_diag query fails, the way a dump fails with
 * ENOENT there. Nothing else changes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

int socket(int domain, int type, int protocol)
{
	static int (*real)(int, int, int);
	int sv[2];

	if (!real)
		real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	if (domain != AF_NETLINK || protocol != NETLINK_SOCK_DIAG)
		return real(domain, type, protocol);
	if (socketpair(AF_UNIX, SOCK_DGRAM | (type & (SOCK_CLOEXEC | SOCK_NONBLOCK)), 0, sv) < 0)
		return -1;
	close(sv[1]);
	return sv[0];
}
