/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * inotify_set.h - the daemon's one inotify instance, shared: the kernel
 * gives one watch descriptor per inode, so users of one file or directory
 * share it, each wd with the list of its users (an id and a role); the
 * last one to go removes it. Masks are only ever added to (IN_MASK_ADD),
 * so a user never takes bits away from another. Each record read is handed
 * to every user of its wd.
 */
#ifndef CTLD_INOTIFY_SET_H
#define CTLD_INOTIFY_SET_H

#include <stdint.h>

struct loop;

struct inotify_set_ops {
	/* A record for one user of wd. name is NULL when the record names no
	 * entry. The handler may add and release watches (its own or others'). */
	void (*record)(uint64_t user, int role, int wd, uint32_t mask, const char *name);
	/* The kernel dropped wd (IN_IGNORED) and user still held it after its
	 * record: forget it (it is gone, do not release it). */
	void (*lost)(uint64_t user, int role, int wd);
	/* The queue overflowed: records were lost, for every user. */
	void (*overflow)(void);
};

/* If the kernel refuses an instance (fs.inotify.max_user_instances) the
 * set is off: inotify_set_unavailable() says why and adds fail with it.
 * Returns 0 or -errno for errors that are the daemon's own. */
int inotify_set_init(struct loop *loop, const struct inotify_set_ops *ops);
void inotify_set_shutdown(void);
/* 0 when the set works, else the errno that turned it off. */
int inotify_set_unavailable(void);

/* Adds (or joins) the kernel watch on the inode at path for (user, role).
 * Returns the wd or -errno. */
int inotify_set_add(const char *path, uint32_t mask, uint64_t user, int role);
void inotify_set_release(int wd, uint64_t user, int role);

#endif
