// SPDX-License-Identifier: BSD-2-Clause
/*
 * file_access.c - see file_access.h. Filesystem ids rather than effective
 * ids: they govern file access only, so the daemon keeps its power to
 * signal and to come back to root, and the capabilities that bypass file
 * permissions drop while they are not 0. Raw setgroups: glibc's would
 * change every thread's groups with a signal dance; only this one acts.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/files/file_access.h"

/* The groups the daemon had before entering, put back on leaving. */
static struct {
	gid_t groups[FILE_ACCESS_MAX_GROUPS];
	int ngroups;
} saved;

int file_user_resolve(const char *name, struct file_user *u, char *err, size_t errlen)
{
	char buf[4096];
	struct passwd pw, *pwp = NULL;
	int ngroups = FILE_ACCESS_MAX_GROUPS;
	bool numeric;
	long num;

	*u = (struct file_user){ .set = false };
	if (!name[0])
		return 0;
	numeric = parse_long(name, 0, 0x7fffffff, &num) == 0;
	if (numeric)
		getpwuid_r((uid_t)num, &pw, buf, sizeof(buf), &pwp);
	else
		getpwnam_r(name, &pw, buf, sizeof(buf), &pwp);
	if (!pwp && !numeric) {
		snprintf(err, errlen, "no such user: %s", name);
		return -ENOENT;
	}
	u->set = true;
	u->uid = pwp ? pwp->pw_uid : (uid_t)num;
	u->gid = pwp ? pwp->pw_gid : (gid_t)num;
	if (pwp && getgrouplist(pwp->pw_name, pwp->pw_gid, u->groups, &ngroups) < 0) {
		snprintf(err, errlen, "user %s has more than %d groups", name,
			 FILE_ACCESS_MAX_GROUPS);
		return -E2BIG;
	}
	u->ngroups = pwp ? (size_t)ngroups : 0;
	return 0;
}

int file_user_enter(const struct file_user *u)
{
	if (!u->set)
		return 0;
	saved.ngroups = getgroups(FILE_ACCESS_MAX_GROUPS, saved.groups);
	if (saved.ngroups < 0)
		return -errno;
	if (syscall(SYS_setgroups, u->ngroups, u->groups) < 0)
		return -errno;
	setfsgid(u->gid);
	setfsuid(u->uid);
	/* setfsuid reports no error: read the ids back (-1 changes nothing) */
	if ((uid_t)setfsuid((uid_t)-1) != u->uid || (gid_t)setfsgid((gid_t)-1) != u->gid) {
		file_user_leave(u);
		return -EPERM;
	}
	return 0;
}

void file_user_leave(const struct file_user *u)
{
	if (!u->set)
		return;
	setfsuid(geteuid());
	setfsgid(getegid());
	syscall(SYS_setgroups, (size_t)saved.ngroups, saved.groups);
}

int file_path_check(const char *path, char *err, size_t errlen)
{
	const char *last = strrchr(path, '/');

	if (path[0] != '/') {
		snprintf(err, errlen, "the path must be absolute: \"%.200s\"", path);
		return -EINVAL;
	}
	last++;
	if (!last[0] || !strcmp(last, ".") || !strcmp(last, "..")) {
		snprintf(err, errlen, "the path must name a file (not end in /, . or ..): \"%.200s\"",
			 path);
		return -EINVAL;
	}
	return 0;
}

ctld_ErrorCode file_errno_code(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return ctld_ErrorCode_NOT_FOUND;
	case EACCES:
	case EPERM:
	case EROFS:
		return ctld_ErrorCode_PERMISSION;
	default:
		return ctld_ErrorCode_SYSTEM;
	}
}
