/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * daemon.h - the daemon's modules put together: each initialised in order
 * with its part of the options, the kernel's records wired to the modules
 * they are about, and everything shut down in reverse. main() adds the
 * process-wide parts (signals, listeners, the shutdown policy); the fuzzer
 * uses this as it is.
 */
#ifndef CTLD_DAEMON_H
#define CTLD_DAEMON_H

struct loop;
struct options;

/* 0 or -errno. The BPF side never fails the daemon (it says why it is off). */
int daemon_init(struct loop *loop, const struct options *o);
/* Stops the jobs (killing their trees) unless that happened already. */
void daemon_stop_jobs(void);
void daemon_shutdown(void);

#endif
