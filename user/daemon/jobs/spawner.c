// SPDX-License-Identifier: BSD-2-Clause
/*
 * spawner.c - the daemon's side of the spawner helper: starting the
 * ctld-spawner program, handing it requests, and falling back to spawning
 * in-process when there is no helper (see spawner.h, spawner/channel.h).
 *
 * The helper lives as long as the daemon (PR_SET_PDEATHSIG, and EOF on its
 * socket); if it dies anyway, jobs are spawned in-process from then on.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/jobs/spawner.h"
#include "daemon/kernel/bpf_events.h"
#include "spawner/channel.h"

#ifndef CTLD_LIBEXECDIR
#define CTLD_LIBEXECDIR "/usr/libexec/ctld-bpf"
#endif
#define HELPER_NAME "ctld-spawner"
#define READY_TIMEOUT_MS 5000
#define ANSWER_TIMEOUT_MS 10000

static struct {
	struct channel_region *region;
	int sock;   /* the daemon's end, -1 without a helper */
	pid_t pid;  /* the helper */
	char status[PATH_MAX + 96];
} SP = { .sock = -1, .status = "jobs are spawned by the daemon itself" };

/* ------------------------------------------------------------ packing */

static void *take(struct channel_region *r, size_t n, size_t align)
{
	size_t at = (r->used + align - 1) & ~(align - 1);

	if (at + n > CHANNEL_STORAGE_BYTES)
		return NULL;
	r->used = at + n;
	return r->storage + at;
}

static const char *copy_string(struct channel_region *r, const char *s)
{
	char *p;

	if (!s)
		return NULL;
	p = take(r, strlen(s) + 1, 1);
	if (p)
		strcpy(p, s);
	return p;
}

/* A NULL-terminated string array, copied; NULL when it does not fit. */
static char **copy_vector(struct channel_region *r, char *const *v, bool *ok)
{
	size_t n = 0;
	char **out;

	while (v && v[n])
		n++;
	if (!(out = take(r, (n + 1) * sizeof(*out), sizeof(void *)))) {
		*ok = false;
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (!(out[i] = (char *)copy_string(r, v[i])))
			*ok = false;
	out[n] = NULL;
	return out;
}

/* The request, deep-copied into the region; -E2BIG when it is too big. */
static int pack(struct channel_region *r, const struct spawn_request *req)
{
	struct spawn_request *c = &r->req;
	bool ok = true;

	r->used = 0;
	*c = *req;
	c->argv = copy_vector(r, req->argv, &ok);
	c->envp = copy_vector(r, req->envp, &ok);
	if (req->cwd && !(c->cwd = copy_string(r, req->cwd)))
		ok = false;
	for (size_t i = 0; i < req->ncandidates; i++)
		if (!(c->candidates[i] = copy_string(r, req->candidates[i])))
			ok = false;
	for (int i = 0; i < 3; i++) {
		if (req->stdio_path[i] && !(c->stdio_path[i] = copy_string(r, req->stdio_path[i])))
			ok = false;
		r->passed[i] = req->stdio[i] >= 0;
		c->stdio[i] = -1;
	}
	c->cgroup_fd = -1; /* the helper's number for it is set there */
	if (req->ngroups) {
		gid_t *g = take(r, req->ngroups * sizeof(*g), sizeof(gid_t));

		if (g)
			memcpy(g, req->groups, req->ngroups * sizeof(*g));
		c->groups = g;
		ok &= g != NULL;
	}
	if (req->nrlimits) {
		struct spawn_rlimit *rl = take(r, req->nrlimits * sizeof(*rl), 16);

		if (rl)
			memcpy(rl, req->rlimits, req->nrlimits * sizeof(*rl));
		c->rlimits = rl;
		ok &= rl != NULL;
	}
	return ok ? 0 : -E2BIG;
}

/* ------------------------------------------------------------ the daemon's side */

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

/* ------------------------------------------------------------ starting the helper */

static void helper_gone(const char *why)
{
	if (SP.sock < 0)
		return;
	bpf_events_set_job_parent(getpid());
	log_warn("spawner helper (pid %d) %s: jobs are spawned by the daemon itself from now on",
		 SP.pid, why);
	close(SP.sock);
	SP.sock = -1;
	snprintf(SP.status, sizeof(SP.status), "jobs are spawned by the daemon itself (%s)", why);
}

/* ctld-spawner next to our own executable (a build tree), else where an
 * install under any prefix puts it relative to the daemon
 * (PREFIX/sbin/ctld-bpf and PREFIX/libexec/ctld-bpf/ctld-spawner, see
 * packaging/install.sh), so a staged or relocated tree finds its own helper,
 * else in CTLD_LIBEXECDIR. */
static int find_helper(char *path, size_t size)
{
	static const char *const beside_exe[] = { "", "/../libexec/ctld-bpf" };
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			*slash = '\0';
			for (size_t i = 0; i < ARRAY_SIZE(beside_exe); i++) {
				if (snprintf(path, size, "%s%s/" HELPER_NAME, self, beside_exe[i]) <
					    (int)size &&
				    access(path, X_OK) == 0)
					return 0;
			}
		}
	}
	snprintf(path, size, CTLD_LIBEXECDIR "/" HELPER_NAME);
	return access(path, X_OK) == 0 ? 0 : -ENOENT;
}

/* In the forked child: the socket and the region on their fixed numbers,
 * nothing else of ours, then the helper program. Signals a terminal sends
 * to the daemon's process group are the daemon's. */
static _Noreturn void exec_helper(const char *path, int sock, int memfd, pid_t daemon)
{
	char pid_arg[24], region_arg[24];
	char *argv[] = { HELPER_NAME, pid_arg, region_arg, NULL };
	char *envp[] = { NULL };
	sigset_t none;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Out of the way first: either may already sit on the other's number. */
	sock = fcntl(sock, F_DUPFD, CHANNEL_REGION_FD + 1);
	memfd = fcntl(memfd, F_DUPFD, CHANNEL_REGION_FD + 1);
	if (sock < 0 || memfd < 0 || dup2(sock, CHANNEL_SOCK_FD) < 0 ||
	    dup2(memfd, CHANNEL_REGION_FD) < 0)
		_exit(127);
	if (syscall(SYS_close_range, CHANNEL_REGION_FD + 1, ~0U, 0) < 0)
		for (int fd = CHANNEL_REGION_FD + 1; fd < 1024; fd++)
			close(fd);
	snprintf(pid_arg, sizeof(pid_arg), "%d", (int)daemon);
	snprintf(region_arg, sizeof(region_arg), "%lx", (unsigned long)(uintptr_t)SP.region);
	execve(path, argv, envp);
	_exit(127);
}

/* The helper's first word: whether CLONE_PARENT works (its probe child,
 * which is ours, is reaped here). */
static int helper_ready(void)
{
	char tag = 0;
	int err;

	if ((err = wait_readable(SP.sock, READY_TIMEOUT_MS)) ||
	    (err = channel_recv(SP.sock, &tag, NULL, 0)) < 0)
		return err;
	if (SP.region->probe > 0)
		waitpid(SP.region->probe, NULL, 0);
	return tag == 'Y' ? 0 : -ENOSYS;
}

static int map_region(int *memfd)
{
	void *p;

	*memfd = memfd_create("ctld-spawn-region", MFD_CLOEXEC);
	if (*memfd < 0)
		return -errno;
	if (ftruncate(*memfd, CHANNEL_REGION_BYTES) < 0)
		return -errno;
	p = mmap(NULL, CHANNEL_REGION_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, *memfd, 0);
	if (p == MAP_FAILED)
		return -errno;
	SP.region = p;
	return 0;
}

static int fork_helper(const char *path)
{
	int sv[2] = { -1, -1 }, memfd = -1, err;
	pid_t daemon = getpid();

	if ((err = map_region(&memfd)))
		goto out;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		err = -errno;
		goto out;
	}
	SP.pid = fork();
	if (SP.pid == 0)
		exec_helper(path, sv[1], memfd, daemon);
	err = SP.pid < 0 ? -errno : 0;
	SP.sock = sv[0];
	sv[0] = -1;
	if (!err)
		err = helper_ready();
out:
	if (memfd >= 0)
		close(memfd);
	for (int i = 0; i < 2; i++)
		if (sv[i] >= 0)
			close(sv[i]);
	return err;
}

int spawner_start(void)
{
	char path[PATH_MAX];
	int err;

	if ((err = find_helper(path, sizeof(path)))) {
		snprintf(SP.status, sizeof(SP.status),
			 "jobs are spawned by the daemon itself (no " HELPER_NAME
			 " next to the daemon or in " CTLD_LIBEXECDIR ")");
		return err;
	}
	if ((err = fork_helper(path))) {
		spawner_stop();
		snprintf(SP.status, sizeof(SP.status),
			 "jobs are spawned by the daemon itself (%s: %s)", path,
			 err == -EPIPE ? "it ended at once" : strerror(-err));
		return err;
	}
	snprintf(SP.status, sizeof(SP.status), "spawner helper pid %d", SP.pid);
	return 0;
}

void spawner_stop(void)
{
	if (SP.sock >= 0)
		close(SP.sock); /* EOF: the helper exits */
	SP.sock = -1;
	if (SP.pid > 0)
		waitpid(SP.pid, NULL, 0);
	SP.pid = 0;
	if (SP.region)
		munmap(SP.region, CHANNEL_REGION_BYTES);
	SP.region = NULL;
}

pid_t spawner_job_parent(void)
{
	return SP.sock >= 0 ? SP.pid : getpid();
}

const char *spawner_status(void)
{
	return SP.status;
}

void spawner_reaped(pid_t pid)
{
	if (SP.pid > 0 && pid == SP.pid) {
		helper_gone("exited");
		SP.pid = 0;
	}
}

int spawner_spawn(const struct spawn_request *req, struct spawn_result *res)
{
	struct channel_region *r = SP.region;
	int fds[CHANNEL_MAX_FDS], nfds = 0, pidfd = -1, err;
	char tag = 0;

	if (SP.sock < 0)
		return spawn_process(req, res);
	if ((err = pack(r, req)))
		return err;
	for (int i = 0; i < 3; i++)
		if (req->stdio[i] >= 0)
			fds[nfds++] = req->stdio[i];
	if (req->join_cgroup)
		fds[nfds++] = req->cgroup_fd;
	if ((err = channel_send(SP.sock, 'S', fds, nfds)) ||
	    (err = wait_readable(SP.sock, ANSWER_TIMEOUT_MS)) ||
	    (err = channel_recv(SP.sock, &tag, &pidfd, 1)) < 0 || tag != 'R') {
		helper_gone(err == -ETIMEDOUT ? "did not answer" : "went away");
		return spawn_process(req, res);
	}
	if (r->clone_err) {
		if (err == 1)
			close(pidfd);
		return r->clone_err;
	}
	*res = r->res;
	res->step = r->step[0] ? r->step : NULL;
	res->what = r->what[0] ? r->what : NULL;
	res->pidfd = err == 1 ? pidfd : -1;
	/* Where the pidfd did not come (valgrind): ours to open, the child is
	 * ours and unreaped, so its pid cannot have been reused. */
	if (res->pidfd < 0)
		res->pidfd = (int)syscall(SYS_pidfd_open, res->pid, 0);
	return 0;
}
