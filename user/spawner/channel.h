/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * channel.h - what the daemon and its spawner helper (ctld-spawner) share:
 * the request region and the one-byte messages that carry descriptors.
 *
 * The region is a memfd both map at the same address, so the pointers of
 * the packed spawn_request (into storage[]) are valid in both. The helper is
 * a separate, small, static program (not a fork of the daemon) because exec
 * records the old address space's peak RSS into the new program's: a job's
 * max RSS starts from the helper's, whatever the daemon has inherited or
 * grown to (a forked helper carried 5 MiB of the daemon's pages on some
 * machines, and ASan's shadow in the sanitizer build).
 *
 * The helper is exec'd with the socket on fd CHANNEL_SOCK_FD, the region's
 * memfd on CHANNEL_REGION_FD and argv = { "ctld-spawner", daemon pid,
 * region address } (decimal, hex).
 */
#ifndef CTLD_SPAWNER_CHANNEL_H
#define CTLD_SPAWNER_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "spawner/spawn.h"

#define CHANNEL_REGION_BYTES (256 * 1024)
#define CHANNEL_SOCK_FD 3
#define CHANNEL_REGION_FD 4
#define CHANNEL_TEXT 256
#define CHANNEL_MAX_FDS 4 /* stdin, stdout, stderr, the job's cgroup.procs */

/* Messages: helper -> daemon 'Y' (ready: CLONE_PARENT works) or 'N';
 * daemon -> helper 'S' + stdio fds, then the cgroup fd when the request
 * joins a cgroup (spawn region->req); helper -> daemon
 * 'R' + the job's pidfd (region->res and clone_err are filled in). */
struct channel_region {
	struct spawn_request req; /* its pointers point into storage[] */
	struct spawn_result res;  /* step and what are copied into the texts below */
	char step[CHANNEL_TEXT];
	char what[CHANNEL_TEXT];
	bool passed[3]; /* which stdio fds come with the message, in order */
	int clone_err;  /* -errno when the helper could not create a process */
	pid_t probe;    /* the helper's CLONE_PARENT probe child: the daemon reaps it */
	size_t used;
	_Alignas(16) char storage[];
};

#define CHANNEL_STORAGE_BYTES (CHANNEL_REGION_BYTES - sizeof(struct channel_region))

/* One byte, with up to CHANNEL_MAX_FDS descriptors. 0 or -errno. */
int channel_send(int sock, char tag, const int *fds, int nfds);
/* Receives one message: its tag, and up to max descriptors (CLOEXEC; more
 * are closed). The number of descriptors, or -errno (-EPIPE at EOF). */
int channel_recv(int sock, char *tag, int *fds, int max);

#endif
