// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_proc_tree.c - a job's process tree with real processes. Without BPF
 * the tree is walked in /proc before anything is signalled, so a member
 * that left the job's process group still dies with it. With BPF (the
 * kernel's tracked map is faked below) only processes the map still lists
 * for the job are signalled: a pid the map no longer has (it exited and
 * may have been recycled) is left alone. Counting needs the map.
 *
 * The test is a child subreaper, so grandchildren come back to it and every
 * process it starts is reaped.
 */
// TEST_SRCS: user/daemon/jobs/proc_tree.c user/daemon/kernel/cgroup.c
// TEST_SRCS: user/daemon/kernel/cgroup_find.c user/daemon/core/log.c user/common/util.c user/daemon/core/loop.c user/daemon/core/log_limit.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/jobs/proc_tree.h"
#include "daemon/kernel/bpf_events.h"

#define JOB 42

static struct {
	bool bpf;
	pid_t members[8]; /* the fake tracked map: pids of job JOB */
	int nmembers;
	pid_t forgotten; /* listed, but gone from the map by the time it is checked */
	uint64_t claimed_job;
	pid_t claimed_pid;
	pid_t tracked[8];
	int ntracked;
} T;

/* ------------------------------------------------------------ fakes */

bool bpf_events_enabled(void)
{
	return T.bpf;
}

int bpf_events_set_job(pid_t pid, uint64_t job)
{
	T.claimed_pid = pid;
	T.claimed_job = job;
	return T.bpf ? 0 : -EOPNOTSUPP;
}

int bpf_events_job_pids(uint64_t job, pid_t root, pid_t *pids, size_t max)
{
	(void)root;
	if (!T.bpf)
		return -EOPNOTSUPP;
	assert_int_equal(job, JOB);
	for (int i = 0; i < T.nmembers && (size_t)i < max; i++)
		pids[i] = T.members[i];
	return T.nmembers;
}

int bpf_events_track(pid_t pid, uint64_t job, pid_t root)
{
	assert_int_equal(job, JOB);
	assert_true(root > 0);
	if (!T.bpf)
		return -EOPNOTSUPP;
	if (T.ntracked < 8)
		T.tracked[T.ntracked++] = pid;
	return 0;
}

bool bpf_events_pid_in_job(pid_t pid, uint64_t job, pid_t root)
{
	(void)root;
	if (job != JOB || pid == T.forgotten)
		return false;
	for (int i = 0; i < T.nmembers; i++)
		if (T.members[i] == pid)
			return true;
	return false;
}

/* ------------------------------------------------------------ helpers */

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	return prctl(PR_SET_CHILD_SUBREAPER, 1);
}

/* A job's main process: its own session, like the spawner makes it. It
 * forks a child that leaves the process group (setpgid), then both sleep.
 * The child's pid comes back through a pipe. */
static pid_t start_job(pid_t *child)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		pid_t c;

		setsid();
		c = fork();
		if (c == 0) {
			setpgid(0, 0);
			pause();
			_exit(0);
		}
		(void)!write(p[1], &c, sizeof(c));
		pause();
		_exit(0);
	}
	assert_int_equal(read(p[0], child, sizeof(*child)), sizeof(*child));
	close(p[0]);
	close(p[1]);
	for (int i = 0; i < 200 && getpgid(*child) != *child; i++)
		usleep(1000); /* until it has left the group */
	return pid;
}

static struct proc_tree_root root_of(pid_t pid)
{
	return (struct proc_tree_root){ .job = JOB, .pid = pid,
					.pidfd = (int)syscall(SYS_pidfd_open, pid, 0) };
}

/* Reaps pid (a child or an adopted grandchild); returns the signal that
 * killed it, or 0 when it is still alive after 2 s. */
static int killed_by(pid_t pid)
{
	int status;

	for (int i = 0; i < 2000; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
		usleep(1000);
	}
	return 0;
}

static void cleanup(pid_t a, pid_t b)
{
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
}

/* ------------------------------------------------------------ tests */

/* Without BPF: the group and everything below the main process in /proc,
 * found before anyone dies, so the child that left the group dies too. */
static void tree_without_bpf_reaches_group_leavers(void **state)
{
	pid_t child, pid = start_job(&child);
	struct proc_tree_root r = root_of(pid);

	(void)state;
	assert_int_equal(proc_tree_count(&r), 1); /* the child that left the group */
	proc_tree_signal(&r, SIGKILL);
	assert_int_equal(killed_by(pid), SIGKILL);
	assert_int_equal(killed_by(child), SIGKILL);
	close(r.pidfd);
}

/* With BPF: members the map lists are signalled, through pidfds; one the
 * map forgot between listing and signalling is left alone. */
static void tree_with_bpf_checks_membership(void **state)
{
	pid_t child, pid = start_job(&child);
	struct proc_tree_root r = root_of(pid);

	(void)state;
	T.bpf = true;
	T.members[T.nmembers++] = pid;
	T.members[T.nmembers++] = child;
	assert_int_equal(proc_tree_count(&r), 1);
	T.forgotten = child;
	proc_tree_signal(&r, SIGTERM); /* the group and the main process only */
	assert_int_equal(killed_by(pid), SIGTERM);
	assert_int_equal(kill(child, 0), 0); /* alive: outside the group, "not" in the map */
	r.reaped = true;
	T.forgotten = 0;
	T.nmembers = 0;
	T.members[T.nmembers++] = child; /* the main process left the map at its exit */
	assert_int_equal(proc_tree_count(&r), 1);
	proc_tree_signal(&r, SIGKILL); /* reaped: only what the map lists */
	assert_int_equal(killed_by(child), SIGKILL);
	close(r.pidfd);
	cleanup(pid, child);
}

/* main_only: the main process and nothing else; after reaping, ESRCH. */
static void tree_main_only(void **state)
{
	pid_t child, pid = start_job(&child);
	struct proc_tree_root r = root_of(pid);

	(void)state;
	assert_int_equal(proc_tree_signal_main(&r, SIGKILL), 0);
	assert_int_equal(killed_by(pid), SIGKILL);
	assert_int_equal(kill(child, 0), 0);
	close(r.pidfd);
	r.pidfd = -1;
	r.reaped = true;
	assert_int_equal(proc_tree_signal_main(&r, SIGKILL), -ESRCH);
	proc_tree_claim(pid, JOB);
	assert_int_equal(T.claimed_pid, pid);
	assert_int_equal(T.claimed_job, JOB);
	cleanup(pid, child);
}

/* A job of an earlier daemon instance: its tree is what is below it and
 * in its session, each counted once; with BPF each becomes tracked. */
static void tree_adopted(void **state)
{
	pid_t child, pid = start_job(&child);
	struct proc_tree_root r = root_of(pid);

	(void)state;
	r.adopted = true;
	assert_int_equal(proc_tree_count(&r), 1); /* below it and in its session: once */
	T.bpf = true;
	assert_int_equal(proc_tree_adopt(&r), 1);
	assert_int_equal(T.ntracked, 2);
	assert_int_equal(T.tracked[0], pid);
	assert_int_equal(T.tracked[1], child);
	T.bpf = false;
	proc_tree_signal(&r, SIGKILL);
	assert_int_equal(killed_by(pid), SIGKILL);
	assert_int_equal(killed_by(child), SIGKILL);
	close(r.pidfd);
}

static void starttime_of_this_process(void **state)
{
	uint64_t a = 0, b = 0;

	(void)state;
	assert_int_equal(proc_starttime(getpid(), &a), 0);
	assert_true(a > 0);
	assert_int_equal(proc_starttime(getpid(), &b), 0);
	assert_int_equal(a, b);
	assert_int_equal(proc_starttime(getppid(), &b), 0);
	assert_true(b <= a);
	assert_int_equal(proc_starttime(0x7ffffffe, &b), -ESRCH);
}

#define TC(f) cmocka_unit_test_setup_teardown(f, setup, NULL)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TC(tree_without_bpf_reaches_group_leavers),
		TC(tree_with_bpf_checks_membership),
		TC(tree_main_only),
		TC(tree_adopted),
		TC(starttime_of_this_process),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
