/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cgroup_find.h - where the daemon's cgroup is in the pids hierarchy, read
 * from the texts of /proc/self/mountinfo and /proc/self/cgroup: the cgroup
 * v2 mount, the cgroup v1 mount that carries the pids controller, and the
 * directory of the daemon's own cgroup below either. Text in, paths out: no
 * I/O here, so every rule is unit-tested (tests/test_cgroup_find.c).
 */
#ifndef CTLD_CGROUP_FIND_H
#define CTLD_CGROUP_FIND_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

enum cgroup_kind { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };

struct cgroup_mount {
	enum cgroup_kind kind; /* CGROUP_NONE: no such mount */
	char point[PATH_MAX];  /* where it is mounted */
	char root[PATH_MAX];   /* the cgroup shown there ("/" unless a part is bind-mounted) */
};

/* The first cgroup2 mount, and the first cgroup v1 mount with the pids
 * controller, of mountinfo (either may be missing: kind CGROUP_NONE). */
void cgroup_find_mounts(const char *mountinfo, struct cgroup_mount *v2, struct cgroup_mount *v1);

/* The daemon's cgroup in the hierarchy of kind, as /proc/self/cgroup
 * says ("0::/a/b" for v2, "N:...,pids,...:/a/b" for v1). 0, -ENOENT when
 * that hierarchy has no line, -ENAMETOOLONG. */
int cgroup_find_path(const char *proc_cgroup, enum cgroup_kind kind, char *path, size_t len);

/* The directory of cgroup `path` under mount m. -EXDEV when the cgroup is
 * outside the part of the hierarchy mounted there, -ENAMETOOLONG. */
int cgroup_find_dir(const struct cgroup_mount *m, const char *path, char *dir, size_t len);

/* Whether a space-separated list (cgroup.controllers, subtree_control)
 * names the controller. */
bool cgroup_find_word(const char *list, const char *word);

#endif
