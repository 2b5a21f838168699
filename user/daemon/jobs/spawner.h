/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * spawner.h - a small helper process that starts every job.
 *
 * Why: exec records the old address space's peak RSS into the new
 * program's accounting, so a job started straight from the daemon (a vfork
 * child shares the daemon's memory) reported the daemon's peak as its own
 * max RSS: 5.7 MiB for /bin/true, 39 MiB for every job once the daemon had
 * buffered output for a slow client. The helper is a separate small static
 * program, ctld-spawner (user/spawner/), started first thing; it starts jobs
 * with clone(CLONE_VM | CLONE_VFORK | CLONE_PARENT), so a job is still the
 * daemon's child (waitid, SIGCHLD, rusage) but its accounting starts from
 * the helper's few hundred KiB. (A forked copy of the daemon was used
 * before: on some machines it carried 5 MiB of the daemon's pages, and
 * ASan's shadow in the sanitizer build, into every job's max RSS.)
 *
 * The request travels through a shared memory region (the spawn_request
 * with its strings, at the same address in both processes) and the stdio
 * descriptors through SCM_RIGHTS; the daemon waits for the answer, as it
 * would for a vfork child. Where the helper cannot be used (not installed,
 * or no CLONE_PARENT) jobs are spawned from the daemon itself, and
 * spawner_status() says why.
 */
#ifndef CTLD_SPAWNER_H
#define CTLD_SPAWNER_H

#include <stdbool.h>
#include <sys/types.h>

#include "spawner/spawn.h"

/* Starts the helper; call before the daemon blocks signals.
 * 0, or -errno: jobs are then spawned in-process. It does not wait for the
 * helper to be ready: that happens while the daemon loads its BPF programs. */
int spawner_start(void);
/* Waits for the started helper's first word (once; spawning a job also
 * does), then tells the BPF programs whose children are jobs. 0, or -errno:
 * jobs are spawned in-process from now on. */
int spawner_await(void);
void spawner_stop(void);
/* The process whose children are jobs: the helper's pid, or ours; 0 while
 * the helper is starting (spawner_await). */
pid_t spawner_job_parent(void);
/* "helper pid N" or why jobs are spawned in-process. */
const char *spawner_status(void);

/* The daemon reaped pid: if it was the helper, jobs are spawned in-process
 * from now on. */
void spawner_reaped(pid_t pid);

/* spawn_process() through the helper (or in-process, see above). */
int spawner_spawn(const struct spawn_request *req, struct spawn_result *res);

#endif
