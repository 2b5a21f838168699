/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cgroup.h - a cgroup of its own for a job: the one handle on a process
 * tree that no process leaves by setsid() and a double fork, and whose pids
 * controller counts every process and thread of it, a root job's too
 * (root ignores RLIMIT_NPROC).
 *
 * The groups are made in the pids hierarchy (cgroup v2 where the daemon's
 * cgroup has the pids controller, else cgroup v1's pids hierarchy) as
 * <base>/ctld-<pid>[-n]/job-<id>, where base is --cgroup-root, else the
 * daemon's own cgroup in v1 (so limits on it go on covering its jobs) and
 * its parent in v2 (no-internal-process rule: see cgroup.c). The daemon's
 * group is made when the first job needs one, named by the daemon's pid
 * (so two daemons never share one), and holds nothing but job groups. A
 * job's first process joins its group itself before it execs (spawn.c), so
 * no process of the job ever runs outside it.
 *
 * Groups are named by job id. Nothing here knows what a job is.
 */
#ifndef CTLD_CGROUP_H
#define CTLD_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* root: where the daemon's group goes; NULL: below the daemon's own
 * cgroup in the pids hierarchy; "none": no job groups. Never fails: when
 * no usable hierarchy is there, cgroup_status() says why. */
void cgroups_init(const char *root);
/* Removes every job group left (call once their processes are killed) and
 * the daemon's group. */
void cgroups_shutdown(void);
/* "pids cgroup v1 /sys/fs/cgroup/pids/ctld-812", or why there are none. */
const char *cgroups_status(void);
/* Job groups that exist now. */
unsigned cgroups_count(void);

/* Makes job-<id>, with pids.max = max_procs unless 0, and opens its
 * cgroup.procs for the job's first process to join (*procs_fd, CLOEXEC).
 * 0, or -errno with the reason in err. */
int cgroup_create(uint64_t job, uint32_t max_procs, int *procs_fd, char *err, size_t errlen);
/* Removes job-<id> if it has no process left: 0, or -EBUSY. With
 * `forget`, a group that is still busy is removed later, by
 * cgroup_retry_forgotten() or at shutdown. */
int cgroup_remove(uint64_t job, bool forget);
/* Processes of jobs that were forgotten may have ended: remove their groups. */
void cgroup_retry_forgotten(void);

/* Whether any process, or this one, is in job-<id>. */
bool cgroup_populated(uint64_t job);
bool cgroup_contains(uint64_t job, pid_t pid);
/* The processes in job-<id> (at most max), or -errno. */
int cgroup_pids(uint64_t job, pid_t *out, int max);
/* The most processes it ever held at once (pids.peak); 0 where the kernel
 * does not keep it. */
uint64_t cgroup_peak(uint64_t job);
/* Signals every process in job-<id>, each held by a pidfd and checked to
 * be in it still. SIGKILL reaches those it is forking as well: by
 * cgroup.kill where the kernel has it, else with pids.max at 0 (no fork
 * succeeds) in rounds until no new process shows. Other signals spare the
 * members of process group skip_pgid (they got it already; 0: none). */
void cgroup_signal(uint64_t job, int sig, pid_t skip_pgid);

/* Upgrades in place: the daemon's group (NULL while there is none), and
 * the next image taking it and its jobs' groups over. 0 or -errno. */
const char *cgroups_dir(void);
int cgroups_inherit_dir(const char *dir);
int cgroup_inherit(uint64_t job);

#endif
