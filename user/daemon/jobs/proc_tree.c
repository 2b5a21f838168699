// SPDX-License-Identifier: BSD-2-Clause
/*
 * proc_tree.c - signalling and counting a job's processes.
 *
 * With BPF, the kernel's `tracked` map knows every process of a job from
 * its fork: each is opened as a pidfd first and its membership checked in
 * the map after, so a pid recycled in between is never signalled.
 *
 * Without BPF, a job's tree is what /proc shows: the descendants of its
 * main process (/proc/PID/task/TID/children), and orphans of the job that
 * moved to the subreaper (us) with what is below them, told by the job's
 * session, which they keep. Each is held by a pidfd, all *before* anything
 * is signalled. A session's id is not reused while the session has
 * members, so it names the job even after its main process was reaped.
 * Processes that left both the job's session and its ancestry (setsid and
 * a double fork) escape; see docs/design.md. A job with a cgroup of its
 * own is signalled through that instead: exact in both modes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/jobs/proc_tree.h"
#include "daemon/kernel/bpf_events.h"
#include "daemon/kernel/cgroup.h"

#define MAX_TREE_PIDS 4096

static struct {
	const struct proc_tree_ops *ops;
} T;

void proc_tree_init(const struct proc_tree_ops *ops)
{
	T.ops = ops;
}

static int send_signal_pidfd(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int proc_starttime(pid_t pid, uint64_t *ticks)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	/* comm may hold spaces and ')': the fields start after the last ')' */
	if (!(p = strrchr(buf, ')')) || !p[1])
		return -EBADMSG;
	/* field 3 (state) is the first after ')': a zombie has exited */
	if (p[2] == 'Z' || p[2] == 'X')
		return -ESRCH;
	/* starttime is field 22 */
	for (int field = 2; field < 22; field++)
		if (!(p = strchr(p + 1, ' ')))
			return -EBADMSG;
	return sscanf(p + 1, "%" SCNu64, ticks) == 1 ? 0 : -EBADMSG;
}

static int kill_pid(pid_t pid, int sig)
{
	return kill(pid, sig) < 0 ? -errno : 0;
}

/* Without a pidfd, an adopted process is named by pid and start time. */
static bool same_process(pid_t pid, uint64_t starttime)
{
	uint64_t t;

	return proc_starttime(pid, &t) == 0 && t == starttime;
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

	if (err == -ENOSYS && root->adopted)
		err = !root->reaped && same_process(root->pid, root->starttime) ? kill_pid(root->pid, sig)
									       : -ESRCH;
	else if (err == -ENOSYS)
		err = root->reaped ? -ESRCH : kill_pid(root->pid, sig);
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

static int count_from_proc(const struct proc_tree_root *root);

int proc_tree_count(const struct proc_tree_root *root)
{
	static pid_t pids[MAX_TREE_PIDS];
	int n, count = 0;

	if (!bpf_events_enabled())
		return count_from_proc(root);
	n = bpf_events_job_pids(root->job, root->pid, pids, MAX_TREE_PIDS);
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

/* Appends the pids in one /proc/PID/task/TID/children file to out. */
static size_t read_children_file(const char *path, pid_t *out, size_t n, size_t max)
{
	static char buf[65536]; /* 8 bytes a pid: thousands of children */
	ssize_t len;
	char *p, *end;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return n;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[len > 0 ? len : 0] = '\0';
	for (p = buf; n < max; p = end) {
		long child = strtol(p, &end, 10);

		if (end == p)
			break;
		out[n++] = (pid_t)child;
	}
	return n;
}

/* The direct children of pid (of all its threads). */
static size_t list_children(pid_t pid, pid_t *out, size_t max)
{
	char path[320];
	DIR *tasks;
	struct dirent *de;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (!(tasks = opendir(path)))
		return 0;
	while ((de = readdir(tasks))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children", pid, de->d_name);
		n = read_children_file(path, out, n, max);
	}
	closedir(tasks);
	return n;
}

static void hold(struct held_pids *h, pid_t pid, int fd)
{
	h->pid[h->n] = pid;
	h->fd[h->n++] = fd;
}

static void hold_descendants(pid_t pid, struct held_pids *h, int depth)
{
	pid_t kids[256];
	size_t n;

	if (depth > 64)
		return;
	n = list_children(pid, kids, ARRAY_SIZE(kids));
	for (size_t i = 0; i < n && h->n < MAX_TREE_PIDS; i++) {
		hold(h, kids[i], (int)syscall(SYS_pidfd_open, kids[i], 0));
		hold_descendants(kids[i], h, depth + 1);
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

/* ppid and session of pid from /proc/PID/stat; false when it is gone. */
static bool parent_and_session(pid_t pid, pid_t *ppid, pid_t *sid)
{
	char path[64], buf[512], *p;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "re")))
		return false;
	n = fgets(buf, sizeof(buf), f) ? 1 : 0;
	fclose(f);
	/* after the command name, which may hold anything: ") S ppid pgrp sid" */
	if (!n || !(p = strrchr(buf, ')')))
		return false;
	return sscanf(p + 1, " %*c %d %*d %d", ppid, sid) == 2;
}

static bool in_session(pid_t pid, pid_t sid)
{
	pid_t ppid, s;

	return parent_and_session(pid, &ppid, &s) && s == sid;
}

/* Orphans of the job: when a parent dies its children move to the
 * subreaper (us), out of the walk below the main process, but keep the
 * job's session. They are our children that are neither a job's main
 * process nor the helper; each is held with what is below it (its session
 * checked again once its pidfd is open: the pidfd names that process,
 * whatever becomes of the pid). */
static void hold_adopted(const struct proc_tree_root *root, struct held_pids *h)
{
	static pid_t kids[MAX_TREE_PIDS];
	size_t n = list_children(getpid(), kids, MAX_TREE_PIDS);

	for (size_t i = 0; i < n && h->n < MAX_TREE_PIDS; i++) {
		pid_t pid = kids[i];
		int fd;

		if (pid == root->pid || (T.ops && T.ops->is_job_or_helper(pid)) ||
		    !in_session(pid, root->pid))
			continue;
		fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd >= 0 && !in_session(pid, root->pid)) {
			close(fd);
			continue;
		}
		hold(h, pid, fd);
		hold_descendants(pid, h, 1);
	}
}

static bool is_held(const struct held_pids *h, pid_t pid)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->pid[i] == pid)
			return true;
	return false;
}

/* Every other process of an adopted root's session, wherever it is in
 * the process tree (its orphans went to init). Costs a walk of /proc. */
static void hold_session(const struct proc_tree_root *root, struct held_pids *h)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) && h->n < MAX_TREE_PIDS) {
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
		int fd;

		if (pid <= 0 || pid == root->pid || is_held(h, pid) || !in_session(pid, root->pid))
			continue;
		fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd >= 0 && !in_session(pid, root->pid))
			close(fd);
		else
			hold(h, pid, fd);
	}
	closedir(d);
}

/* The tree as /proc shows it, held: below the main process, and orphans. */
static void hold_tree(const struct proc_tree_root *root, struct held_pids *h)
{
	if (!root->reaped)
		hold_descendants(root->pid, h, 0);
	if (root->adopted)
		hold_session(root, h);
	else
		hold_adopted(root, h);
}

static void release_held(struct held_pids *h)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->fd[i] >= 0)
			close(h->fd[i]);
	h->n = 0;
}

bool proc_tree_contains(const struct proc_tree_root *root, pid_t pid)
{
	pid_t ppid, sid, at = pid;

	if (pid <= 0)
		return false;
	if (pid == root->pid)
		return !root->reaped; /* once reaped, the pid may be someone else's */
	if (bpf_events_enabled())
		return bpf_events_pid_in_job(pid, root->job, root->pid);
	if (root->cgroup)
		return cgroup_contains(root->job, pid);
	for (int depth = 0; depth < 64 && parent_and_session(at, &ppid, &sid); depth++) {
		if (depth == 0 && sid == root->pid)
			return true; /* the job's session (its main pid names it) */
		if (ppid == root->pid)
			return !root->reaped;
		if (ppid <= 1 || ppid == getpid())
			return false;
		at = ppid;
	}
	return false;
}

/* ------------------------------------------------------------ the tree */

static int count_from_proc(const struct proc_tree_root *root)
{
	static struct held_pids held;
	static pid_t members[MAX_TREE_PIDS];
	int count = 0, n;

	if (root->cgroup && (n = cgroup_pids(root->job, members, MAX_TREE_PIDS)) >= 0) {
		for (int i = 0; i < n; i++)
			count += members[i] != root->pid && !dying(members[i]);
		return count;
	}

	hold_tree(root, &held);
	for (size_t i = 0; i < held.n; i++)
		count += !dying(held.pid[i]);
	release_held(&held);
	return count;
}

void proc_tree_signal(const struct proc_tree_root *root, int sig)
{
	static struct held_pids held;

	if (root->cgroup) {
		/* the group first, as below; then the cgroup is the tree */
		if (!root->reaped) {
			kill(-root->pid, sig);
			proc_tree_signal_main(root, sig);
		}
		cgroup_signal(root->job, sig, root->reaped ? 0 : root->pid);
		return;
	}
	/* Without BPF, the tree is found through /proc before anyone dies. */
	if (!bpf_events_enabled())
		hold_tree(root, &held);
	if (!root->reaped) {
		/* While the main process is unreaped its pid, hence its process
		 * group id (setsid), cannot be reused: both are safe targets
		 * (not for an adopted one: init reaps it, at any moment). */
		if (!root->adopted)
			kill(-root->pid, sig);
		proc_tree_signal_main(root, sig);
	}
	signal_held(&held, sig);
	if (bpf_events_enabled())
		signal_tracked_tree(root, sig);
}

void proc_tree_kill_strays(void)
{
	static struct held_pids rest;
	static pid_t kids[MAX_TREE_PIDS];
	size_t n = list_children(getpid(), kids, MAX_TREE_PIDS);

	for (size_t i = 0; i < n && rest.n < MAX_TREE_PIDS; i++) {
		hold(&rest, kids[i], (int)syscall(SYS_pidfd_open, kids[i], 0));
		hold_descendants(kids[i], &rest, 1);
	}
	signal_held(&rest, SIGKILL);
}

int proc_tree_adopt(const struct proc_tree_root *root)
{
	static struct held_pids held;
	int count = 0;

	hold_tree(root, &held);
	if (bpf_events_enabled())
		bpf_events_track(root->pid, root->job, root->pid);
	for (size_t i = 0; i < held.n; i++) {
		if (bpf_events_enabled())
			bpf_events_track(held.pid[i], root->job, root->pid);
		count += !dying(held.pid[i]);
	}
	release_held(&held);
	return count;
}
