/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * port_monitor.h - who is listening on {network namespace, TCP port}, kept
 * current for every subscriber: client port watches (watch_port.c) and job
 * readiness conditions use it, each with its own filter on top.
 *
 * For each port someone subscribed to, the monitor holds the set of
 * listening sockets. It learns of changes from the kernel programs
 * (listen() results from an fexit, or LISTEN candidates confirmed with
 * sock_diag where trampolines are refused; CLOSE records) or, without
 * BPF, from a sock_diag poll; after lost kernel records it re-reads the
 * truth with a dump. Subscribers hear every change through their ops.
 */
#ifndef CTLD_PORT_MONITOR_H
#define CTLD_PORT_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/kernel/tcp_listener.h"

struct loop;
struct netns;
struct port_interest;
struct port_sub;

struct port_sub_ops {
	/* l listens on the port. already: it was there before the subscriber
	 * (reported by port_monitor_replay); then time_ns is 0. */
	void (*listening)(struct port_sub *sub, const struct tcp_listener *l, bool already);
	/* A listener reported by `listening` is gone. */
	void (*closed)(struct port_sub *sub, const struct tcp_listener *l);
	/* A socket entered LISTEN and left it before it ever listened: its
	 * listen() failed (EADDRINUSE). May be NULL. */
	void (*listen_failed)(struct port_sub *sub, const struct tcp_listener *l);
};

/* Lives inside the subscriber's own struct. */
struct port_sub {
	const struct port_sub_ops *ops;
	void *ctx;
	struct port_interest *interest; /* private to port_monitor.c */
	struct port_sub *next;
};

/* poll_interval_ms: the sock_diag poll period when the kernel programs are off. */
void port_monitor_init(struct loop *loop, uint32_t poll_interval_ms);
void port_monitor_shutdown(void);

/*
 * Starts following {ns, port} for sub (the subscriber's ops and ctx are set
 * by the caller). The kernel learns of the port first, then the current
 * listeners are read, so no listen() can fall in between. Nothing is
 * reported yet: call port_monitor_replay() once the subscriber is ready to
 * hear about them. 0, or -errno with a reason in err[errlen].
 */
int port_monitor_subscribe(struct port_sub *sub, struct netns *ns, uint16_t port, char *err,
			   size_t errlen);
/* Reports every current listener to sub as `already`. Returns false if a
 * callback ended the subscription. */
bool port_monitor_replay(struct port_sub *sub);
void port_monitor_unsubscribe(struct port_sub *sub);
unsigned port_monitor_interests(void);

/* From the kernel programs (main() wires bpf_events' ops to these). */
void port_monitor_kernel_listen(const struct tcp_listener *l);
void port_monitor_kernel_close(const struct tcp_listener *l);
/* From the fexit on listen(): err 0, a listener (no confirmation needed),
 * or listen()'s errno: a failed listen(), with the process that tried. */
void port_monitor_kernel_listen_done(const struct tcp_listener *l, int err);
/* Kernel records may have been lost: re-read every watched port. */
void port_monitor_resync(void);
/* Without the kernel programs: poll now, not at the next tick (a decision
 * that must not depend on where the 20 ms period stands). */
void port_monitor_poll_now(void);

#endif
