/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * proc_tree.h - a job's process tree: its main process and every process
 * below it, found through the kernel's `tracked` map when the BPF programs
 * run, or through /proc (children lists, the job's session) when they do not. Callers never
 * ask which: they name the job's root and get the tree.
 *
 * Nothing here ever signals a process that is not (or no longer) in the
 * tree: each is held by a pidfd, and its membership re-checked, before it
 * is signalled. A job with a cgroup of its own is signalled through it.
 */
#ifndef CTLD_PROC_TREE_H
#define CTLD_PROC_TREE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What names a tree: the job and its main process. */
struct proc_tree_root {
	uint64_t job;
	pid_t pid;
	int pidfd;   /* -1 where pidfds are unavailable (valgrind) or after reaping */
	bool reaped; /* the main process is gone: its pid and group id may be reused */
	/* Started by an earlier daemon instance: not our child, so its pid may
	 * be reused the moment it exits (only its pidfd is safe), and its
	 * orphans went to init, not to us (found by session in all of /proc). */
	bool adopted;
	uint64_t starttime; /* adopted: the kernel's start time of pid (job_records.h) */
	bool cgroup; /* the job has a cgroup of its own (kernel/cgroup.h, named by job) */
};

/* What proc_tree asks of the jobs (without BPF, orphans of a job are told
 * from the jobs' own main processes and the spawner helper). */
struct proc_tree_ops {
	bool (*is_job_or_helper)(pid_t pid);
};

void proc_tree_init(const struct proc_tree_ops *ops);

/* pid's start time in clock ticks after boot (/proc/PID/stat field 22):
 * with the boot, what tells a process from a later one with the same pid.
 * 0 or -errno (-ESRCH: gone, or a zombie). */
int proc_starttime(pid_t pid, uint64_t *ticks);

/* The kernel tracks the daemon's children from their fork on, under job 0;
 * this tells it which job the process is (no-op without BPF). */
void proc_tree_claim(pid_t pid, uint64_t job);

/* Signals the whole tree: the process group first (one atomic signal to
 * the main process and every member, so no shell sees its children die
 * before it is told), then the main process, then every other descendant:
 * with a cgroup every process in it (exact, whatever they did to leave the
 * session or the ancestry), else those BPF or /proc show. */
void proc_tree_signal(const struct proc_tree_root *root, int sig);
/* Only the main process. 0 or -errno (-ESRCH once reaped). */
int proc_tree_signal_main(const struct proc_tree_root *root, int sig);
/* Live descendants (not counting the main process, nor processes that are
 * dying: zombies, or SIGKILL pending). Without BPF: those in the job's
 * cgroup, or without one those /proc shows, the main process's descendants
 * and the job's orphans we adopted. */
int proc_tree_count(const struct proc_tree_root *root);

/* Is pid the main process or one of its descendants? With BPF the
 * tracked map says; without, the job's cgroup if it has one, else: its
 * parents in /proc lead to the main process, or it is still in the job's
 * session (orphans move to the daemon, but keep their session unless they
 * left it with setsid). */
bool proc_tree_contains(const struct proc_tree_root *root, pid_t pid);

/* SIGKILLs whatever else is still below the daemon: orphans of jobs that
 * were forgotten, which the subreaper adopted (shutdown). */
void proc_tree_kill_strays(void);

/* An adopted root's tree as /proc shows it now (below it, and its session)
 * becomes the kernel's to follow (with BPF). The number of processes
 * besides the root. */
int proc_tree_adopt(const struct proc_tree_root *root);

#endif
