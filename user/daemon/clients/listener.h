/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * listener.h - the daemon's listening sockets: one unix socket (mode 0600,
 * root/owner only by SO_PEERCRED) and any number of TCP addresses (IPv4 or
 * IPv6, optionally TLS). Accepted connections become sessions.
 */
#ifndef CTLD_LISTENER_H
#define CTLD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct handover;
struct loop;
struct tls_ctx;

#define LISTENER_SPEC_MAX 256

/* tcp_keepalive_ms: accepted TCP clients that acknowledge nothing for this
 * long are dropped by the kernel (keepalive.h); 0 leaves the kernel's
 * defaults. */
int listener_init(struct loop *loop, uint32_t tcp_keepalive_ms);
/* Creates and listens on a unix socket at path; refuses unsafe directories and
 * a path another daemon is serving. err gets a readable reason. */
int listener_add_unix(const char *path, char *err, size_t errlen);
/* "127.0.0.1:7878", "[::1]:7878", "0.0.0.0:0". tls may be NULL. Non-loopback
 * addresses need tls unless insecure. *port_out gets the bound port. */
int listener_add_tcp(const char *addr_port, struct tls_ctx *tls, bool insecure,
		     uint16_t *port_out, char *err, size_t errlen);
/* Upgrades in place (daemon/upgrade.h): listener_pause() stops and
 * resumes accepting; listener_handover() hands every listening socket to
 * the next image, where listener_add_*() find it by its address and serve
 * it instead of binding (the unix socket is never unlinked, so no client
 * finds it missing). */
void listener_pause(bool paused);
int listener_handover(struct handover *h);
/* Closes all listeners and removes the unix socket file. */
void listener_shutdown(void);

#endif
