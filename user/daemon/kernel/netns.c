// SPDX-License-Identifier: BSD-2-Clause
/*
 * netns.c - resolving and entering network namespaces.
 *
 * A netlink socket belongs to the namespace it was created in, so the daemon
 * (single-threaded) steps into a namespace with setns(), creates its
 * sock_diag socket there, and steps back at once. Nothing else runs in
 * between, so no other socket can be created in the wrong namespace.
 */

#include <errno.h>
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

/* Creates a sock_diag socket inside the namespace open at nsfd. */
static int diag_socket_in(int nsfd, bool is_self)
{
	int self, fd, err;

	if (is_self)
		return sockdiag_open();
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		err = -errno;
		close(self);
		return err;
	}
	fd = sockdiag_open();
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Cannot happen for root; if it did, every later socket would be
		 * created in the wrong namespace, which is worse than dying. */
		perror("ctld-bpf: setns back to the daemon's namespace");
		abort();
	}
	close(self);
	return fd;
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
	ns->diag_fd = diag_socket_in(nsfd, st.st_ino == self_st.st_ino);
	close(nsfd);
	if (ns->diag_fd < 0) {
		ret = ns->diag_fd;
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
	close(ns->diag_fd);
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
		close(ns->diag_fd);
		free(ns);
	}
}
