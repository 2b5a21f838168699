/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * file_access.h - who a file request acts as and where: the user it names
 * (name or uid, as Run.user), taken on for the path operations of the
 * request only (filesystem uid/gid and supplementary groups, this thread),
 * and the rules every remote path obeys. Shared by file_put and file_get.
 */
#ifndef CTLD_FILE_ACCESS_H
#define CTLD_FILE_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ctld.pb.h"

#define FILE_ACCESS_MAX_GROUPS 64

struct file_user {
	bool set; /* false: the daemon's own rights (root) */
	uid_t uid;
	gid_t gid;
	gid_t groups[FILE_ACCESS_MAX_GROUPS];
	size_t ngroups;
};

/* name or uid ("" = the daemon's own). 0 or -errno with err filled. */
int file_user_resolve(const char *name, struct file_user *u, char *err, size_t errlen);
/* Takes on u's rights for what follows, until file_user_leave(). 0 or -errno. */
int file_user_enter(const struct file_user *u);
void file_user_leave(const struct file_user *u);

/* An absolute path that names a file: not relative, not ending in "/",
 * "." or "..". 0 or -EINVAL with err filled. */
int file_path_check(const char *path, char *err, size_t errlen);

/* The error code a failed system call on a client's file answers with:
 * NOT_FOUND for a missing file, PERMISSION for a refusal, else SYSTEM. */
ctld_ErrorCode file_errno_code(int err);

#endif
