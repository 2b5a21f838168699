// SPDX-License-Identifier: BSD-2-Clause
/*
 * spawner.c - the helper process that starts jobs (see spawner.h).
 *
 *   daemon                               helper ("ctld-spawner")
 *   pack the request into the region
 *   send 'S' + stdio fds (SCM_RIGHTS) --> stdio fds into the request
 *                                        clone(VM|VFORK|PARENT) + exec
 *   wait (poll, bounded)             <-- 'R' + the job's pidfd
 *   read the result from the region
 *
 * The helper lives as long as the daemon (PR_SET_PDEATHSIG, and EOF on its
 * socket); if it dies anyway, jobs are spawned in-process from then on.
 */
#include <errno.h>
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

#define REGION_BYTES (256 * 1024)
#define STORAGE_BYTES (REGION_BYTES - 4096)
#define ANSWER_TIMEOUT_MS 10000
#define HELPER_FD 3

/* Shared between the daemon and the helper, at the same address in both. */
struct region {
	struct spawn_request req; /* its pointers point into storage[] */
	struct spawn_result res;
	bool passed[3]; /* which stdio fds come with the message, in order */
	int clone_err;  /* -errno when the helper could not create a process */
	size_t used;
	_Alignas(16) char storage[STORAGE_BYTES];
};

static struct {
	struct region *region;
	int sock;   /* the daemon's end, -1 without a helper */
	pid_t pid;  /* the helper */
	char status[96];
} SP = { .sock = -1, .status = "jobs are spawned by the daemon itself" };

/* ------------------------------------------------------------ packing */

static void *take(struct region *r, size_t n, size_t align)
{
	size_t at = (r->used + align - 1) & ~(align - 1);

	if (at + n > sizeof(r->storage))
		return NULL;
	r->used = at + n;
	return r->storage + at;
}

static const char *copy_string(struct region *r, const char *s)
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
static char **copy_vector(struct region *r, char *const *v, bool *ok)
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
static int pack(struct region *r, const struct spawn_request *req)
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

/* ------------------------------------------------------------ messages */

/* One byte, with up to 3 descriptors. */
static int send_with_fds(int sock, char tag, const int *fds, int nfds)
{
	char control[CMSG_SPACE(3 * sizeof(int))] = { 0 };
	struct iovec iov = { &tag, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds) {
		struct cmsghdr *cm;

		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

/* Receives one message: its tag, and up to max descriptors (CLOEXEC).
 * Returns the number of descriptors, or -errno (-EPIPE at EOF). */
static int recv_with_fds(int sock, char *tag, int *fds, int max)
{
	char control[CMSG_SPACE(3 * sizeof(int))];
	struct iovec iov = { tag, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	int count = 0;

	if (n <= 0)
		return n == 0 ? -EPIPE : -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (count < max)
				fds[count++] = fd;
			else
				close(fd);
		}
	}
	return count;
}

/* ------------------------------------------------------------ the helper */

static void helper_setup(int sock)
{
	prctl(PR_SET_NAME, "ctld-spawner");
	/* It ends with the daemon: by signal if the daemon dies, by EOF when
	 * the daemon closes its socket. Other signals are the daemon's. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	/* Nothing of the daemon's but the socket: jobs inherit no stray fd. */
	if (sock != HELPER_FD) {
		dup2(sock, HELPER_FD);
		close(sock);
	}
	if (syscall(SYS_close_range, HELPER_FD + 1, ~0U, 0) < 0)
		for (int fd = HELPER_FD + 1; fd < 1024; fd++)
			close(fd);
}

static _Noreturn void helper_main(int sock, pid_t daemon)
{
	struct region *r = SP.region;
	pid_t probe;

	helper_setup(sock);
	if (getppid() != daemon)
		_exit(1); /* the daemon died before PDEATHSIG was set */
	spawn_init();
	probe = spawn_probe_parent();
	r->res.pid = probe;
	if (send_with_fds(HELPER_FD, probe > 0 ? 'Y' : 'N', NULL, 0) || probe <= 0)
		_exit(0);
	for (;;) {
		int fds[3], nfds, k = 0, pidfd;
		char tag;

		nfds = recv_with_fds(HELPER_FD, &tag, fds, 3);
		if (nfds < 0 || tag != 'S')
			_exit(0);
		for (int i = 0; i < 3; i++)
			r->req.stdio[i] = r->passed[i] && k < nfds ? fds[k++] : -1;
		r->clone_err = spawn_process_flags(&r->req, &r->res, CLONE_PARENT);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		pidfd = r->res.pidfd;
		if (send_with_fds(HELPER_FD, 'R', &pidfd, pidfd >= 0 ? 1 : 0))
			_exit(0);
		if (pidfd >= 0)
			close(pidfd);
	}
}

/* ------------------------------------------------------------ the daemon's side */

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

static int wait_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	return n > 0 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

/* The helper's first word: whether CLONE_PARENT works (its probe child,
 * which is ours, is reaped here). */
static int helper_ready(void)
{
	char tag = 0;
	int err;

	if ((err = wait_readable(SP.sock, 5000)) || (err = recv_with_fds(SP.sock, &tag, NULL, 0)) < 0)
		return err;
	if (SP.region->res.pid > 0)
		waitpid(SP.region->res.pid, NULL, 0);
	return tag == 'Y' ? 0 : -ENOSYS;
}

int spawner_start(void)
{
	int sv[2], err;
	pid_t daemon = getpid();

	SP.region = mmap(NULL, sizeof(*SP.region), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (SP.region == MAP_FAILED) {
		SP.region = NULL;
		return -errno;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	SP.pid = fork();
	if (SP.pid == 0) {
		close(sv[0]);
		helper_main(sv[1], daemon);
	}
	err = SP.pid < 0 ? -errno : 0;
	close(sv[1]);
	SP.sock = sv[0];
	if (!err)
		err = helper_ready();
	if (err) {
		spawner_stop();
		snprintf(SP.status, sizeof(SP.status),
			 "jobs are spawned by the daemon itself (no helper: %s)", strerror(-err));
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
		munmap(SP.region, sizeof(*SP.region));
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
	struct region *r = SP.region;
	int fds[3], nfds = 0, pidfd = -1, err;
	char tag = 0;

	if (SP.sock < 0)
		return spawn_process(req, res);
	if ((err = pack(r, req)))
		return err;
	for (int i = 0; i < 3; i++)
		if (req->stdio[i] >= 0)
			fds[nfds++] = req->stdio[i];
	if ((err = send_with_fds(SP.sock, 'S', fds, nfds)) ||
	    (err = wait_readable(SP.sock, ANSWER_TIMEOUT_MS)) ||
	    (err = recv_with_fds(SP.sock, &tag, &pidfd, 1)) < 0 || tag != 'R') {
		helper_gone(err == -ETIMEDOUT ? "did not answer" : "went away");
		return spawn_process(req, res);
	}
	if (r->clone_err) {
		if (err == 1)
			close(pidfd);
		return r->clone_err;
	}
	*res = r->res;
	res->pidfd = err == 1 ? pidfd : -1;
	/* Where the pidfd did not come (valgrind): ours to open, the child is
	 * ours and unreaped, so its pid cannot have been reused. */
	if (res->pidfd < 0)
		res->pidfd = (int)syscall(SYS_pidfd_open, res->pid, 0);
	return 0;
}
