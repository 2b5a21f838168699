// SPDX-License-Identifier: BSD-2-Clause
/*
 * proc_tree.c - signalling and counting a job's processes.
 *
 * With BPF, the kernel's `tracked` map knows every process of a job from
 * its fork: each is opened as a pidfd first and its membership checked in
 * the map after, so a pid recycled in between is never signalled.
 *
 * Without BPF, descendants are found through /proc/PID/task/TID/children,
 * each held by a pidfd, all *before* anything is signalled: a dead
 * parent's children move to the subreaper (us), out of the walk. Processes
 * that left both the job's process group and its ancestry (setsid and a
 * double fork) escape this walk; see docs/design.md.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/jobs/proc_tree.h"
#include "daemon/kernel/bpf_events.h"

#define MAX_TREE_PIDS 4096

static int send_signal_pidfd(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

void proc_tree_claim(pid_t pid, uint64_t job)
{
	bpf_events_set_job(pid, job);
}

/* The main process, through its pidfd; with plain kill() where pidfds are
 * unavailable (valgrind does not know the syscalls), which is just as safe
 * while the child is unreaped: its pid cannot have been reused. */
int proc_tree_signal_main(const struct proc_tree_root *root, int sig)
{
	int err = root->pidfd >= 0 ? send_signal_pidfd(root->pidfd, sig) : -ENOSYS;

	if (err == -ENOSYS)
		err = root->reaped ? -ESRCH : kill(root->pid, sig) < 0 ? -errno : 0;
	return err;
}

/* ------------------------------------------------------------ with BPF */

/* One tracked descendant: a pidfd opened first and the map checked after. */
static void signal_tracked(const struct proc_tree_root *root, pid_t pid, int sig)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd >= 0) {
		if (bpf_events_pid_in_job(pid, root->job, root->pid))
			send_signal_pidfd(fd, sig);
		close(fd);
	} else if (errno == ENOSYS && bpf_events_pid_in_job(pid, root->job, root->pid)) {
		kill(pid, sig); /* no pidfds here: best effort */
	}
}

static void signal_tracked_tree(const struct proc_tree_root *root, int sig)
{
	static pid_t pids[MAX_TREE_PIDS];
	int n = bpf_events_job_pids(root->job, root->pid, pids, MAX_TREE_PIDS);

	for (int i = 0; i < n && i < MAX_TREE_PIDS; i++)
		if (pids[i] != root->pid)
			signal_tracked(root, pids[i], sig);
}

/* Exited, or sure to be: a zombie, or SIGKILL pending (a tree kill that
 * has not been acted on yet). Such a process is not counted as alive. */
static bool dying(pid_t pid)
{
	char path[64], line[256], *p;
	bool dead = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (!(f = fopen(path, "re")))
		return true;
	while (!dead && fgets(line, sizeof(line), f)) {
		if (strncmp(line, "State:", 6) == 0) {
			for (p = line + 6; *p == ' ' || *p == '\t'; p++)
				;
			dead = *p == 'Z' || *p == 'X';
		} else if (strncmp(line, "SigPnd:", 7) == 0 || strncmp(line, "ShdPnd:", 7) == 0) {
			unsigned long long mask = strtoull(line + 7, NULL, 16);

			dead = mask & (1ULL << (SIGKILL - 1));
		}
	}
	fclose(f);
	return dead;
}

int proc_tree_count(const struct proc_tree_root *root)
{
	static pid_t pids[MAX_TREE_PIDS];
	int n = bpf_events_job_pids(root->job, root->pid, pids, MAX_TREE_PIDS), count = 0;

	if (n < 0)
		return n;
	/* the kernel forgets a process at its exit: the main process is in
	 * the map exactly while it runs */
	for (int i = 0; i < n; i++)
		count += i >= MAX_TREE_PIDS || (pids[i] != root->pid && !dying(pids[i]));
	return count;
}

/* ------------------------------------------------------------ with /proc */

/* Processes found below a pid, each held by a pidfd opened before anything
 * is signalled; a held pidfd cannot name a recycled pid. */
struct held_pids {
	pid_t pid[MAX_TREE_PIDS];
	int fd[MAX_TREE_PIDS]; /* -1 where pidfds are unavailable (valgrind) */
	size_t n;
};

/* The children of one task, from /proc/PID/task/TID/children. */
static void hold_children_of_task(pid_t pid, const char *tid, struct held_pids *h, int depth);

static void hold_descendants(pid_t pid, struct held_pids *h, int depth)
{
	char path[64];
	DIR *tasks;
	struct dirent *de;

	if (depth > 64)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	tasks = opendir(path);
	if (!tasks)
		return;
	while ((de = readdir(tasks)))
		if (de->d_name[0] != '.')
			hold_children_of_task(pid, de->d_name, h, depth);
	closedir(tasks);
}

static void hold_children_of_task(pid_t pid, const char *tid, struct held_pids *h, int depth)
{
	char cpath[320], buf[4096], *p, *end;
	FILE *f;

	snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", pid, tid);
	f = fopen(cpath, "re");
	if (!f)
		return;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	for (p = buf; h->n < MAX_TREE_PIDS; p = end) {
		long child = strtol(p, &end, 10);

		if (end == p)
			break;
		h->pid[h->n] = (pid_t)child;
		h->fd[h->n++] = (int)syscall(SYS_pidfd_open, (pid_t)child, 0);
		hold_descendants((pid_t)child, h, depth + 1);
	}
}

static void signal_held(struct held_pids *h, int sig)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->fd[i] >= 0) {
			send_signal_pidfd(h->fd[i], sig);
			close(h->fd[i]);
		} else {
			kill(h->pid[i], sig); /* no pidfds here: best effort */
		}
	}
	h->n = 0;
}

/* ------------------------------------------------------------ the tree */

void proc_tree_signal(const struct proc_tree_root *root, int sig)
{
	static struct held_pids held;

	if (!root->reaped) {
		/* Without BPF, descendants that left the group are found through
		 * /proc, before anyone dies (best effort). */
		if (!bpf_events_enabled())
			hold_descendants(root->pid, &held, 0);
		/* While the main process is unreaped its pid, hence its process
		 * group id (setsid), cannot be reused: both are safe targets. */
		kill(-root->pid, sig);
		proc_tree_signal_main(root, sig);
		signal_held(&held, sig);
	}
	if (bpf_events_enabled())
		signal_tracked_tree(root, sig);
}

void proc_tree_kill_strays(void)
{
	static struct held_pids rest;

	hold_descendants(getpid(), &rest, 0);
	signal_held(&rest, SIGKILL);
}
