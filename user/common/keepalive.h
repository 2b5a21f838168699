/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * keepalive.h - a bound on how long a TCP peer may stay silent: keepalive
 * probes and TCP_USER_TIMEOUT on one socket (ctl's connections and the
 * daemon's accepted clients).
 */
#ifndef CTLD_KEEPALIVE_H
#define CTLD_KEEPALIVE_H

#include <stdint.h>

/*
 * After this call the kernel ends the connection (ETIMEDOUT) once the peer
 * has acknowledged nothing for about timeout_ms: keepalive probes start
 * after timeout_ms/3 of idleness, one every timeout_ms/6 (at least 1 s
 * each, the kernel's unit), and TCP_USER_TIMEOUT = timeout_ms bounds both
 * the probes and data that stays unacknowledged, or unsent because the
 * peer's window stays closed. 0 or -errno.
 */
int tcp_keepalive_set(int fd, uint32_t timeout_ms);

#endif
