/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * upgrade.h - upgrading in place: on SIGUSR2 the daemon executes its
 * program file again (the path it was started from, so a newly installed
 * binary is what runs), in the same process, handing over its listening
 * sockets and its jobs with their pipes (handover.h), so jobs, their
 * output streams and their ids survive; clients get an Upgrading event,
 * are disconnected, and reconnect.
 *
 * The steps: refuse while a job is in a state that is not handed over
 * (jobs_handover_blocker); stop accepting; tell every client and close it
 * once that is sent (at most UPGRADE_FLUSH_NS); take in the kernel's last
 * records and reap; write the handover; stop the spawner helper; exec. If
 * the exec fails the old image goes on: descriptors get FD_CLOEXEC back, a
 * new helper starts, listeners accept again.
 */
#ifndef CTLD_UPGRADE_H
#define CTLD_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

/* Remembers the program file and the command line to execute again. The
 * first image, or the next one (then what it took over is counted). */
int upgrade_init(struct loop *loop, char **argv);
/* SIGUSR2. */
void upgrade_request(void);
/* The daemon is stopping: an upgrade waiting to happen does not. */
void upgrade_cancel(void);
bool upgrade_in_progress(void);
/* Upgrades in place this process has been through. */
uint32_t upgrade_count(void);

#endif
