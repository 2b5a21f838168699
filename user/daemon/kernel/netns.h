/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * netns.h - network namespaces a watch can name: resolved to their inode
 * (what the kernel programs see as sk->net->ns.inum) and given a sock_diag
 * socket created inside them. Handles are shared and reference counted.
 */
#ifndef CTLD_NETNS_H
#define CTLD_NETNS_H

#include <stddef.h>
#include <stdint.h>

struct netns {
	uint64_t ino;
	int diag_fd; /* NETLINK_SOCK_DIAG socket living in this namespace */
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

#endif
