// SPDX-License-Identifier: BSD-2-Clause
/*
 * spawn.c - clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD) spawner.
 *
 * Why not fork(): copying a big parent's page tables costs milliseconds; why
 * not posix_spawn(): it cannot switch users, set rlimits or hand back a pidfd
 * (glibc 2.36). This is what posix_spawn does inside, with those steps added.
 *
 * The child shares the parent's memory and runs on its own small stack until
 * execve; it calls only async-signal-safe system calls. A failure (errno and
 * the step) is written into the shared argument struct, which the parent
 * reads once the child has exec'd or exited (vfork semantics). Where clone
 * degrades to fork (valgrind), writes to "shared" memory would be lost: a
 * probe at the first spawn finds out, and there failures go back through a
 * CLOEXEC pipe that a successful exec closes (five more system calls per
 * spawn, so only where needed). Credentials
 * are changed with raw syscalls: glibc's setuid() would try to broadcast to
 * other threads of the (shared) process.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawner/spawn.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

#define CHILD_STACK_SIZE (64 * 1024)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* What a failing child reports. The pointers are to string literals and to
 * the request, valid at the same address in the parent in both cases. */
struct child_failure {
	int err;
	const char *step;
	const char *what;
};

struct child_args {
	const struct spawn_request *req;
	int max_fd;     /* the highest fd that may be open, for the close-on-exec sweep */
	sigset_t mask;  /* the mask the program starts with (empty) */
	int report_fd;  /* write end of the CLOEXEC failure pipe, or -1: shared memory */
	struct child_failure failure; /* written by the child when memory is shared */
};

static _Noreturn void child_fail(struct child_args *a, const char *step, const char *what)
{
	struct child_failure f;

	memset(&f, 0, sizeof(f)); /* padding included: it may go through write() */
	f.err = errno;
	f.step = step;
	f.what = what;
	if (a->report_fd >= 0)
		(void)!write(a->report_fd, &f, sizeof(f));
	else
		a->failure = f;
	_exit(127);
}

static void child_stdio(struct child_args *a)
{
	const struct spawn_request *r = a->req;

	for (int i = 0; i < 3; i++) {
		int fd = r->stdio[i];

		if (fd < 0 && r->stdio_path[i]) {
			int flags = i == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_APPEND;

			fd = open(r->stdio_path[i], flags | O_CLOEXEC | O_NOCTTY, 0644);
			if (fd < 0)
				child_fail(a, i == 0 ? "open stdin" : "open output file",
					   r->stdio_path[i]);
		}
		if (fd < 0)
			continue;
		if (fd == i) {
			/* dup2 onto itself keeps CLOEXEC: clear it by hand */
			if (fcntl(fd, F_SETFD, 0) < 0)
				child_fail(a, "fcntl", NULL);
		} else if (dup2(fd, i) < 0) {
			child_fail(a, "dup2", NULL);
		}
	}
}

static void child_credentials(struct child_args *a)
{
	const struct spawn_request *r = a->req;

	if (!r->set_ids)
		return;
	if (syscall(SYS_setgroups, r->ngroups, r->groups) < 0)
		child_fail(a, "setgroups", NULL);
	if (syscall(SYS_setresgid, r->gid, r->gid, r->gid) < 0)
		child_fail(a, "setgid", NULL);
	if (syscall(SYS_setresuid, r->uid, r->uid, r->uid) < 0)
		child_fail(a, "setuid", NULL);
}

/* The kernel's struct sigaction for rt_sigaction(2). */
struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	unsigned long mask;
};

/* Every disposition back to default: ignored ones would survive exec. Raw
 * rt_sigaction, because glibc refuses its internal signals 32 and 33, which a
 * parent (GNU make, for one) may have left ignored. */
static void child_reset_signals(void)
{
	struct kernel_sigaction dfl = { .handler = SIG_DFL };

	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(dfl.mask));
}

/* No descriptor but 0, 1 and 2 reaches the program, whatever the daemon
 * (or whoever started it) had open: close_range() marks the rest
 * close-on-exec in one call (Linux 5.11); older kernels get a sweep. The
 * child's fd table is its own (no CLONE_FILES), so the parent is untouched. */
static void child_close_descriptors(const struct child_args *a)
{
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	for (int fd = 3; fd <= a->max_fd; fd++)
		fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static int child_main(void *arg)
{
	struct child_args *a = arg;
	const struct spawn_request *r = a->req;
	int exec_err = ENOENT;

	/* First: nothing of the job may run, or fork, outside its cgroup. */
	if (r->join_cgroup && write(r->cgroup_fd, "0", 1) != 1)
		child_fail(a, "join cgroup", NULL);
	child_reset_signals();
	child_close_descriptors(a);
	if (setsid() < 0)
		child_fail(a, "setsid", NULL);
	if (r->set_umask)
		umask(r->umask);
	for (size_t i = 0; i < r->nrlimits; i++)
		if (setrlimit(r->rlimits[i].resource, &r->rlimits[i].limit) < 0)
			child_fail(a, "setrlimit", NULL);
	child_credentials(a);
	/* Output files and cwd are reached with the job's own rights. */
	child_stdio(a);
	if (chdir(r->cwd ? r->cwd : "/") < 0)
		child_fail(a, "chdir", r->cwd ? r->cwd : "/");
	sigprocmask(SIG_SETMASK, &a->mask, NULL);
	for (size_t i = 0; i < r->ncandidates; i++) {
		execve(r->candidates[i], r->argv, r->envp);
		/* Keep looking on "not here"; remember "here but not allowed". */
		if (errno == EACCES)
			exec_err = EACCES;
		else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP &&
			 errno != ENAMETOOLONG)
			exec_err = errno;
		if (exec_err != ENOENT && exec_err != EACCES)
			break;
	}
	errno = exec_err;
	child_fail(a, "execve", r->argv[0]);
}

int spawn_find_program(struct spawn_request *req, const char *argv0, const char *path,
		       char **storage)
{
	size_t namelen = strlen(argv0), pathlen, total;
	char *buf, *out;
	const char *p;

	*storage = NULL;
	req->ncandidates = 0;
	if (strchr(argv0, '/') || !*argv0) {
		req->candidates[req->ncandidates++] = argv0;
		return 0;
	}
	if (!path)
		path = DEFAULT_PATH;
	pathlen = strlen(path);
	/* each entry becomes dir + '/' + name + NUL; empty entries mean "." */
	total = pathlen + 1 + (pathlen + 1) * (namelen + 3);
	buf = malloc(total);
	if (!buf)
		return -ENOMEM;
	out = buf;
	p = path;
	for (;;) {
		const char *end = strchrnul(p, ':');
		size_t dlen = (size_t)(end - p);

		if (req->ncandidates == SPAWN_MAX_CANDIDATES)
			break;
		if (dlen == 0) {
			*out++ = '.';
		} else {
			memcpy(out, p, dlen);
			out += dlen;
		}
		*out++ = '/';
		memcpy(out, argv0, namelen + 1);
		req->candidates[req->ncandidates++] = out - (dlen ? dlen : 1) - 1;
		out += namelen + 1;
		if (!*end)
			break;
		p = end + 1;
	}
	*storage = buf;
	return 0;
}

/* Reads the child's failure report: EOF means exec succeeded. With vfork
 * semantics it is already there; with fork semantics we wait (bounded). */
static void read_failure(int fd, struct spawn_result *result)
{
	struct child_failure f;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, 10000) <= 0)
		return;
	n = read(fd, &f, sizeof(f));
	if (n == (ssize_t)sizeof(f)) {
		result->err = f.err;
		result->step = f.step;
		result->what = f.what;
	}
}

/* One stack is enough: the parent sleeps while the child uses it. */
static _Alignas(16) unsigned char child_stack[CHILD_STACK_SIZE];

/* Runs fn in a vfork-style child with all signals blocked around clone.
 * extra: more clone flags (CLONE_PARENT from the spawner helper). */
static pid_t clone_vfork(int (*fn)(void *), void *arg, int *pidfd, int extra)
{
	sigset_t all, old;
	pid_t pid;
	int err;

	/* No signal may be handled on the shared stack while the child runs. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = clone(fn, child_stack + sizeof(child_stack),
		    CLONE_VM | CLONE_VFORK | CLONE_PIDFD | extra | SIGCHLD, arg, pidfd);
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return pid;
}

static int probe_child(void *arg)
{
	*(volatile int *)arg = 1;
	_exit(0);
}

/* Does a CLONE_VM child write into our memory? Yes on Linux; no under
 * valgrind, which turns such a clone into fork. Asked once. */
static bool memory_is_shared(void)
{
	static int known = -1;
	volatile int flag = 0;
	int pidfd = -1;
	pid_t pid;

	if (known >= 0)
		return known;
	pid = clone_vfork(probe_child, (void *)&flag, &pidfd, 0);
	if (pid < 0)
		return false; /* try again next time; use the pipe meanwhile */
	waitpid(pid, NULL, __WALL);
	if (pidfd >= 0)
		close(pidfd);
	known = flag == 1;
	return known;
}

void spawn_init(void)
{
	memory_is_shared();
}

/* The highest fd number that can be open (the sweep's end where
 * close_range is missing), looked up once. */
static int highest_fd(void)
{
	static int max = -1;
	struct rlimit rl;

	if (max < 0)
		max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur
										  : 65536;
	return max;
}

pid_t spawn_probe_parent(void)
{
	int pidfd = -1;
	volatile int flag = 0;
	pid_t pid = clone_vfork(probe_child, (void *)&flag, &pidfd, CLONE_PARENT);

	if (pid < 0)
		return -errno;
	if (pidfd >= 0)
		close(pidfd);
	/* Under valgrind clone becomes fork: the flag stays 0 and the pid, if
	 * any, is not what the spawner may rely on. */
	return flag == 1 ? pid : -ENOSYS;
}

int spawn_process(const struct spawn_request *req, struct spawn_result *result)
{
	return spawn_process_flags(req, result, 0);
}

int spawn_process_flags(const struct spawn_request *req, struct spawn_result *result, int extra)
{
	struct child_args args = { .req = req, .report_fd = -1, .max_fd = highest_fd() };
	int pidfd = -1, report[2] = { -1, -1 }, err;
	pid_t pid;

	*result = (struct spawn_result){ .pid = -1, .pidfd = -1 };
	if (!memory_is_shared()) {
		if (pipe2(report, O_CLOEXEC | O_NONBLOCK) < 0)
			return -errno;
		args.report_fd = report[1];
	}
	sigemptyset(&args.mask);
	pid = clone_vfork(child_main, &args, &pidfd, extra);
	err = pid < 0 ? -errno : 0;
	if (report[1] >= 0)
		close(report[1]);
	if (err) {
		if (report[0] >= 0)
			close(report[0]);
		return err;
	}
	if (report[0] >= 0) {
		read_failure(report[0], result);
		close(report[0]);
	} else if (args.failure.err) {
		result->err = args.failure.err;
		result->step = args.failure.step;
		result->what = args.failure.what;
	}
	/* Where CLONE_PIDFD was not honoured (valgrind), open one: the child is
	 * ours and unreaped, so its pid cannot have been reused. */
	if (pidfd < 0)
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	result->pid = pid;
	result->pidfd = pidfd;
	return 0;
}
