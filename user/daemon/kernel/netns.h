/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * netns.h - network namespaces a watch can name: resolved to their inode
 * (what the kernel programs see as sk->net->ns.inum), and given a sock_diag
 * socket and the /proc/net/tcp tables opened inside them, to ask who
 * listens there. Handles are shared and reference counted.
 */
#ifndef CTLD_NETNS_H
#define CTLD_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/kernel/procnet.h"

struct netns {
	uint64_t ino;
	int diag_fd;       /* NETLINK_SOCK_DIAG socket living in this namespace, or -1 */
	struct procnet pn; /* its /proc/net/tcp[6], the fallback */
	bool diag_broken;  /* sock_diag failed here once: the fallback is used */
	unsigned refs;
	struct netns *next;
};

/* spec: "" (the daemon's own), a path (/proc/PID/ns/net, /run/netns/X), or
 * a name under /run/netns. 0 or -errno with a readable reason in err. */
int netns_get(const char *spec, struct netns **out, char *err, size_t errlen);
/* Another reference to a handle held already; returns ns. */
struct netns *netns_ref(struct netns *ns);
void netns_put(struct netns *ns);
/* Calls fn for every namespace in use; fn may release (netns_put) the one
 * it is given. */
void netns_for_each(void (*fn)(struct netns *ns, void *ctx), void *ctx);
void netns_shutdown(void);

/* TCP listeners of family (0: both) on port (0: any) in the namespace: a
 * sock_diag dump, or /proc/net/tcp[6] where sock_diag cannot answer (the
 * inet_diag/tcp_diag modules missing). Count (only max stored) or -errno. */
int netns_listeners(struct netns *ns, int family, uint16_t port, struct tcp_listener *out,
		    size_t max);

#endif
