/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * spawn.h - start one program the way a careful posix_spawn() would, plus the
 * steps posix_spawn cannot do (user/group switch, rlimits, umask, output
 * files opened as the target user), and get a pidfd for it with no race.
 *
 * The parent is suspended until the child has exec'd or failed (vfork
 * semantics), so when spawn_process() returns, either the program runs or
 * result->err says which step failed with which errno. The program gets no
 * descriptor but 0, 1 and 2.
 */
#ifndef CTLD_SPAWN_H
#define CTLD_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

#define SPAWN_MAX_CANDIDATES 64

struct spawn_rlimit {
	int resource;
	struct rlimit limit;
};

struct spawn_request {
	char *const *argv;
	char *const *envp;
	const char *cwd;                 /* chdir here (after dropping privileges) */
	/* Paths to execve in order (PATH search result); see spawn_find_program(). */
	const char *candidates[SPAWN_MAX_CANDIDATES];
	size_t ncandidates;
	int stdio[3];                    /* fds to become 0, 1, 2; -1 = open path below */
	const char *stdio_path[3];       /* opened in the child, as the target user */
	bool set_ids;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t ngroups;
	const struct spawn_rlimit *rlimits;
	size_t nrlimits;
	bool set_umask;
	mode_t umask;
	/* The child's first step: write "0" to this cgroup.procs, joining
	 * the job's cgroup before any of its code runs (daemon/kernel/cgroup.h). */
	bool join_cgroup;
	int cgroup_fd;
};

struct spawn_result {
	pid_t pid;      /* > 0 whenever a child was created, even if exec failed */
	int pidfd;      /* CLOEXEC pidfd of the child, or -1 */
	int err;        /* errno of the failed step, 0 when the program runs */
	const char *step;   /* "execve", "chdir", "setuid", ... when err != 0 */
	const char *what;   /* the path or value involved, when err != 0 */
};

/* Fills req->candidates from argv0 and PATH (NULL = a default). Returns 0,
 * -ENAMETOOLONG, or -ENOMEM; paths are allocated into *storage (free it). */
int spawn_find_program(struct spawn_request *req, const char *argv0, const char *path,
		       char **storage);

/* Finds out once how the spawner must report failures (see spawn.c); called
 * at start-up, before the kernel programs track the daemon's children, so
 * the probe child is nobody's business. Safe to skip: the first spawn asks. */
void spawn_init(void);

/* 0 when a child was created (check result->err), -errno when clone failed. */
int spawn_process(const struct spawn_request *req, struct spawn_result *result);
/* The same with more clone flags: CLONE_PARENT makes the child our parent's
 * child (the spawner helper starts jobs for the daemon that way). */
int spawn_process_flags(const struct spawn_request *req, struct spawn_result *result, int extra);
/* Tries clone(CLONE_PARENT) with a child that exits at once: returns its
 * pid (our parent must reap it), or -errno where the kernel (or valgrind)
 * does not do it properly. */
pid_t spawn_probe_parent(void);

#endif
