// SPDX-License-Identifier: BSD-2-Clause
/*
 * inotify_set.c - kernel watch descriptors shared by their users, and the
 * reading of the inotify fd (see inotify_set.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "daemon/core/idmap.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/watch/file_rules.h"
#include "daemon/watch/inotify_set.h"

/* Room for many records per read(): the largest one is 16 + NAME_MAX + 1. */
#define READ_BUF (64 * 1024)

struct kuser {
	uint64_t user;
	int role;
};

/* One kernel watch descriptor (one inode) and its users. */
struct kwatch {
	int wd;
	bool dead; /* the kernel dropped it (IN_IGNORED): no inotify_rm_watch */
	struct kuser *users;
	size_t nusers, cap;
};

static struct {
	struct loop *loop;
	const struct inotify_set_ops *ops;
	int fd; /* -1 when inotify is unavailable (init_errno says why) */
	int init_errno;
	bool closing;
	struct idmap kwatches; /* wd -> struct kwatch */
	struct kuser *snap;    /* copy of a wd's users while one record is handled */
	size_t snap_cap;
} I = { .fd = -1 };

int inotify_set_unavailable(void)
{
	return I.fd < 0 ? (I.init_errno ? I.init_errno : ENOSYS) : 0;
}

static void kwatch_free(struct kwatch *kw)
{
	if (!kw->dead && !I.closing)
		inotify_rm_watch(I.fd, kw->wd); /* EINVAL if the kernel dropped it already */
	idmap_del(&I.kwatches, (uint64_t)kw->wd);
	free(kw->users);
	free(kw);
}

static struct kwatch *kwatch_get(int wd)
{
	struct kwatch *kw = idmap_get(&I.kwatches, (uint64_t)wd);

	if (kw)
		return kw;
	kw = calloc(1, sizeof(*kw));
	if (!kw || idmap_put(&I.kwatches, (uint64_t)wd, kw)) {
		free(kw);
		return NULL;
	}
	kw->wd = wd;
	return kw;
}

int inotify_set_add(const char *path, uint32_t mask, uint64_t user, int role)
{
	int wd, err;
	struct kwatch *kw;

	if ((err = inotify_set_unavailable()))
		return -err;
	wd = inotify_add_watch(I.fd, path, mask | IN_MASK_ADD);
	if (wd < 0)
		return -errno;
	if (!(kw = kwatch_get(wd))) {
		inotify_rm_watch(I.fd, wd);
		return -ENOMEM;
	}
	if (kw->nusers == kw->cap) {
		size_t cap = kw->cap ? kw->cap * 2 : 2;
		struct kuser *users = realloc(kw->users, cap * sizeof(*users));

		if (!users) {
			if (!kw->nusers)
				kwatch_free(kw);
			return -ENOMEM;
		}
		kw->users = users;
		kw->cap = cap;
	}
	kw->users[kw->nusers++] = (struct kuser){ .user = user, .role = role };
	return wd;
}

void inotify_set_release(int wd, uint64_t user, int role)
{
	struct kwatch *kw = idmap_get(&I.kwatches, (uint64_t)wd);

	if (!kw)
		return;
	for (size_t i = 0; i < kw->nusers; i++) {
		if (kw->users[i].user == user && kw->users[i].role == role) {
			kw->users[i] = kw->users[--kw->nusers];
			break;
		}
	}
	if (!kw->nusers)
		kwatch_free(kw);
}

/* ------------------------------------------------------------ records */

static int snap_reserve(size_t n)
{
	struct kuser *s;

	if (n <= I.snap_cap)
		return 0;
	s = realloc(I.snap, n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	I.snap = s;
	I.snap_cap = n;
	return 0;
}

/* After IN_IGNORED every user has normally moved on; any user left is told
 * the wd is gone before it is forgotten. */
static void kwatch_forget(int wd)
{
	struct kwatch *kw = idmap_get(&I.kwatches, (uint64_t)wd);

	if (!kw)
		return;
	kw->dead = true;
	while (kw->nusers) {
		struct kuser u = kw->users[--kw->nusers];

		I.ops->lost(u.user, u.role, wd);
		if (!(kw = idmap_get(&I.kwatches, (uint64_t)wd)))
			return; /* released from the callback */
	}
	kwatch_free(kw);
}

static void on_record(int wd, uint32_t mask, uint32_t cookie, const char *name, void *ctx)
{
	struct kwatch *kw;
	size_t n;

	(void)cookie;
	(void)ctx;
	if (mask & IN_Q_OVERFLOW) {
		I.ops->overflow();
		return;
	}
	kw = wd > 0 ? idmap_get(&I.kwatches, (uint64_t)wd) : NULL;
	if (!kw)
		return; /* released by us; its last records were still queued */
	if (mask & IN_IGNORED)
		kw->dead = true;
	/* Handlers add and release watches: walk a copy of the users. */
	n = kw->nusers;
	if (snap_reserve(n)) {
		log_warn("out of memory handling an inotify record for wd %d", wd);
		return;
	}
	memcpy(I.snap, kw->users, n * sizeof(*I.snap));
	for (size_t i = 0; i < n; i++)
		I.ops->record(I.snap[i].user, I.snap[i].role, wd, mask, name);
	if (mask & IN_IGNORED)
		kwatch_forget(wd);
}

static void inotify_readable(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	/* Aligned like the kernel's records, though the parser does not rely on it. */
	static char buf[READ_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)loop;
	(void)events;
	(void)ctx;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN)
				log_warn("failed to read inotify events: %s", strerror(errno));
			return;
		}
		if (n == 0)
			return;
		if (file_rules_parse_records(buf, (size_t)n, on_record, NULL) < 0)
			log_warn("malformed inotify record: rest of a %zd-byte read skipped", n);
	}
}

/* ------------------------------------------------------------ life cycle */

int inotify_set_init(struct loop *loop, const struct inotify_set_ops *ops)
{
	int err;

	memset(&I, 0, sizeof(I));
	I.loop = loop;
	I.ops = ops;
	idmap_init(&I.kwatches);
	I.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (I.fd < 0) {
		I.init_errno = errno;
		log_warn("file watches are off: failed to create an inotify instance: %s%s",
			 strerror(I.init_errno),
			 I.init_errno == EMFILE ? " (fs.inotify.max_user_instances)" : "");
		return 0;
	}
	if ((err = loop_fd_add(loop, I.fd, EPOLLIN, inotify_readable, NULL))) {
		close(I.fd);
		I.fd = -1;
		return err;
	}
	return 0;
}

void inotify_set_shutdown(void)
{
	size_t it = 0;
	uint64_t id;
	void *v;

	if (!I.loop)
		return;
	I.closing = true; /* close() below drops every kernel watch at once */
	while (idmap_next(&I.kwatches, &it, &id, &v))
		kwatch_free(v);
	if (I.fd >= 0) {
		loop_fd_del(I.loop, I.fd);
		close(I.fd);
	}
	idmap_free(&I.kwatches);
	free(I.snap);
	memset(&I, 0, sizeof(I));
	I.fd = -1;
}
