// SPDX-License-Identifier: BSD-2-Clause
/*
 * keepalive.c - TCP keepalive and TCP_USER_TIMEOUT on a socket.
 *
 * Without them a peer that vanished behind a partition is noticed late or
 * never: with data in flight only after the kernel's retransmissions give
 * up (tcp_retries2, 15 minutes or more), and on an idle connection not at
 * all. Keepalive alone does not help the first case (probes are sent only
 * while nothing is unacknowledged), TCP_USER_TIMEOUT alone not the second
 * (nothing is sent), so both are set: the user timeout also decides when
 * unanswered probes end the connection (tcp(7)).
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "common/keepalive.h"

#define KEEPALIVE_PROBES 4 /* idle T/3 + 4 probes T/6 apart = T */

static int at_least_one_second(uint32_t ms)
{
	return ms < 2000 ? 1 : (int)(ms / 1000);
}

int tcp_keepalive_set(int fd, uint32_t timeout_ms)
{
	int on = 1, idle = at_least_one_second(timeout_ms / 3);
	int interval = at_least_one_second(timeout_ms / 6), probes = KEEPALIVE_PROBES;
	unsigned int user_timeout = timeout_ms;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout)) < 0)
		return -errno;
	return 0;
}
