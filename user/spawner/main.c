// SPDX-License-Identifier: BSD-2-Clause
/*
 * main.c - ctld-spawner, the small static program that starts every job
 * for the daemon (see channel.h for why it exists and how it is started).
 *
 *   daemon                               ctld-spawner
 *   pack the request into the region
 *   send 'S' + stdio fds (SCM_RIGHTS) --> stdio (and cgroup) fds into the request
 *                                        clone(VM|VFORK|PARENT) + exec
 *   wait (poll, bounded)             <-- 'R' + the job's pidfd
 *   read the result from the region
 *
 * It lives as long as the daemon: PR_SET_PDEATHSIG (set before the exec,
 * kept across it) if the daemon dies, EOF on its socket when the daemon
 * stops. It is not meant to be run by hand.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spawner/channel.h"

static void copy_text(char *dst, const char *src)
{
	snprintf(dst, CHANNEL_TEXT, "%s", src ? src : "");
}

/* The region at the daemon's address, or NULL. */
static struct channel_region *map_region(const char *address)
{
	char *end;
	uintptr_t at = (uintptr_t)strtoull(address, &end, 16);
	void *p;

	if (*end || !at)
		return NULL;
	p = mmap((void *)at, CHANNEL_REGION_BYTES, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED_NOREPLACE, CHANNEL_REGION_FD, 0);
	close(CHANNEL_REGION_FD);
	if (p == MAP_FAILED)
		return NULL;
	if (p != (void *)at) { /* a kernel that ignores MAP_FIXED_NOREPLACE */
		munmap(p, CHANNEL_REGION_BYTES);
		return NULL;
	}
	return p;
}

static void spawn_one(struct channel_region *r, const int *fds, int nfds)
{
	int k = 0;

	for (int i = 0; i < 3; i++)
		r->req.stdio[i] = r->passed[i] && k < nfds ? fds[k++] : -1;
	if (r->req.join_cgroup) {
		if (k == nfds) { /* the daemon sent none: do not write into fd -1 */
			r->clone_err = -EBADF;
			return;
		}
		r->req.cgroup_fd = fds[k];
	}
	r->clone_err = spawn_process_flags(&r->req, &r->res, CLONE_PARENT);
	/* Our strings are at our addresses: the daemon reads the copies. */
	copy_text(r->step, r->res.step);
	copy_text(r->what, r->res.what);
	r->res.step = NULL;
	r->res.what = NULL;
}

int main(int argc, char **argv)
{
	struct channel_region *r;
	pid_t probe;

	if (argc != 3 || getppid() != (pid_t)atol(argv[1])) {
		fprintf(stderr, "ctld-spawner: started by the ctld-bpf daemon only\n");
		return 64; /* or the daemon died before PDEATHSIG was set */
	}
	if (!(r = map_region(argv[2]))) {
		channel_send(CHANNEL_SOCK_FD, 'N', NULL, 0);
		return 1;
	}
	spawn_init();
	probe = spawn_probe_parent();
	r->probe = probe;
	if (channel_send(CHANNEL_SOCK_FD, probe > 0 ? 'Y' : 'N', NULL, 0) || probe <= 0)
		return 0;
	for (;;) {
		int fds[CHANNEL_MAX_FDS], nfds, pidfd;
		char tag;

		nfds = channel_recv(CHANNEL_SOCK_FD, &tag, fds, CHANNEL_MAX_FDS);
		if (nfds < 0 || tag != 'S')
			return 0;
		spawn_one(r, fds, nfds);
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		pidfd = r->res.pidfd;
		if (channel_send(CHANNEL_SOCK_FD, 'R', &pidfd, pidfd >= 0 ? 1 : 0))
			return 0;
		if (pidfd >= 0)
			close(pidfd);
	}
}
