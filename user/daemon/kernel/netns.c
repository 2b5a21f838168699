// SPDX-License-Identifier: BSD-2-Clause
/*
 * netns.c - resolving and entering network namespaces.
 *
 * A netlink socket belongs to the namespace it was created in, and an open
 * /proc/net file shows the namespace it was opened in: both are opened by a
 * short-lived thread that setns() into the namespace (a thread's namespace
 * is its own), so the daemon's thread never leaves its namespace.
 */

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/core/log.h"
#include "daemon/kernel/netns.h"
#include "daemon/kernel/sockdiag.h"

static struct netns *all;

static int open_spec(const char *spec, char *err, size_t errlen)
{
	char path[320];
	int fd;

	if (!spec[0])
		snprintf(path, sizeof(path), "/proc/self/ns/net");
	else if (strchr(spec, '/'))
		snprintf(path, sizeof(path), "%s", spec);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", spec);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "network namespace %s: %s", path, strerror(errno));
		return -errno;
	}
	if (ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		snprintf(err, errlen, "%s is not a network namespace", path);
		close(fd);
		return -EINVAL;
	}
	return fd;
}

struct opener {
	int nsfd;
	struct netns *ns;
	int err;
};

/* In a thread of its own: setns() changes only the calling thread's
 * namespace, so the daemon's own thread never leaves its namespace and
 * nothing else can be created in the wrong one. */
static void *open_inside(void *arg)
{
	struct opener *o = arg;

	if (o->nsfd >= 0 && setns(o->nsfd, CLONE_NEWNET) < 0) {
		o->err = -errno;
		return NULL;
	}
	o->ns->diag_fd = sockdiag_open();
	procnet_open(&o->ns->pn);
	return NULL;
}

/* The sock_diag socket and /proc/net tables of the namespace at nsfd
 * (-1: our own). A namespace without sock_diag still works (the tables). */
static int open_handles(int nsfd, struct netns *ns)
{
	struct opener o = { .nsfd = nsfd, .ns = ns };
	pthread_t t;
	int err;

	ns->diag_fd = -1;
	ns->pn.fd[0] = ns->pn.fd[1] = -1;
	if (nsfd < 0) {
		open_inside(&o);
	} else {
		if ((err = pthread_create(&t, NULL, open_inside, &o)))
			return -err;
		pthread_join(t, NULL);
	}
	if (o.err)
		return o.err;
	if (ns->diag_fd < 0 && ns->pn.fd[0] < 0)
		return ns->diag_fd;
	if (ns->diag_fd < 0)
		ns->diag_broken = true;
	return 0;
}

int netns_get(const char *spec, struct netns **out, char *err, size_t errlen)
{
	struct stat st, self_st;
	struct netns *ns;
	int nsfd, ret;

	if ((nsfd = open_spec(spec, err, errlen)) < 0)
		return nsfd;
	if (fstat(nsfd, &st) < 0 || stat("/proc/self/ns/net", &self_st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "stat of a network namespace failed: %s", strerror(errno));
		close(nsfd);
		return ret;
	}
	for (ns = all; ns; ns = ns->next) {
		if (ns->ino == st.st_ino) {
			ns->refs++;
			close(nsfd);
			*out = ns;
			return 0;
		}
	}
	ns = calloc(1, sizeof(*ns));
	if (!ns) {
		close(nsfd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ns->ino = st.st_ino;
	ns->refs = 1;
	ret = open_handles(st.st_ino == self_st.st_ino ? -1 : nsfd, ns);
	close(nsfd);
	if (ret) {
		snprintf(err, errlen, "sock_diag in namespace %s: %s", spec[0] ? spec : "(self)",
			 strerror(-ret));
		free(ns);
		return ret;
	}
	ns->next = all;
	all = ns;
	*out = ns;
	return 0;
}

struct netns *netns_ref(struct netns *ns)
{
	ns->refs++;
	return ns;
}

void netns_put(struct netns *ns)
{
	struct netns **link;

	if (!ns || --ns->refs)
		return;
	for (link = &all; *link; link = &(*link)->next) {
		if (*link == ns) {
			*link = ns->next;
			break;
		}
	}
	if (ns->diag_fd >= 0)
		close(ns->diag_fd);
	procnet_close(&ns->pn);
	free(ns);
}

void netns_for_each(void (*fn)(struct netns *ns, void *ctx), void *ctx)
{
	struct netns *next;

	/* fn may release the namespace it is given (a watch on it ended),
	 * never another one: take the next before calling. */
	for (struct netns *ns = all; ns; ns = next) {
		next = ns->next;
		fn(ns, ctx);
	}
}

void netns_shutdown(void)
{
	while (all) {
		struct netns *ns = all;

		all = ns->next;
		if (ns->diag_fd >= 0)
			close(ns->diag_fd);
		procnet_close(&ns->pn);
		free(ns);
	}
}

int netns_listeners(struct netns *ns, int family, uint16_t port, struct tcp_listener *out,
		    size_t max)
{
	int n = -EOPNOTSUPP;

	if (!ns->diag_broken && ns->diag_fd >= 0) {
		n = sockdiag_listeners(ns->diag_fd, family, port, out, max);
		if (n >= 0)
			return n;
		/* inet_diag/tcp_diag missing (ENOENT), or anything else: fall
		 * back, and stay there for this namespace */
		log_warn("sock_diag dump in network namespace %llu failed: %s; reading "
			 "/proc/net/tcp instead from now on",
			 (unsigned long long)ns->ino, strerror(-n));
		ns->diag_broken = true;
	}
	return procnet_listeners(&ns->pn, family, port, out, max);
}
