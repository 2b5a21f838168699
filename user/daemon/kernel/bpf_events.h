/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bpf_events.h - the kernel side inside the event loop: the ring buffer,
 * whose records go up through the ops table the daemon's main() hands in,
 * and the maps other modules change at run time (tracked processes,
 * watched ports).
 *
 * When BPF is off (--no-bpf, not root, no BTF, load failure) every function
 * here is safe to call and reports -EOPNOTSUPP / false; callers then use the
 * fallbacks (waitid for exits, sock_diag polling for ports).
 */
#ifndef CTLD_BPF_EVENTS_H
#define CTLD_BPF_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctld.pb.h"
#include "daemon/kernel/features.h"
#include "daemon/kernel/tcp_listener.h"

struct loop;

struct bpf_events_config {
	bool disabled;        /* --no-bpf */
	const char *pin_dir;  /* default /sys/fs/bpf/ctld */
	pid_t job_parent;     /* the process whose children are jobs */
	enum listen_confirm listen_confirm; /* --listen-confirm */
};

/* Where kernel records go. Each is called from bpf_events_poll(), one record
 * at a time, in the order the kernel submitted them. */
struct bpf_events_ops {
	void (*process_exited)(const struct proc_event *ev, void *ctx);
	void (*process_forked)(const struct proc_event *ev, void *ctx);
	/* A socket on a watched port entered LISTEN: a candidate, since a
	 * listen() that fails (EADDRINUSE) enters LISTEN and leaves it again. */
	void (*listen_started)(const struct tcp_listener *l, void *ctx);
	void (*listen_stopped)(const struct tcp_listener *l, void *ctx);
	/* fexit: listen() on a watched port returned; err 0 (it listens, no
	 * confirmation needed) or its errno (EADDRINUSE: l names the process). */
	void (*listen_done)(const struct tcp_listener *l, int err, void *ctx);
	/* Records were lost (ring buffer full): lost_total so far. */
	void (*records_lost)(uint64_t lost_total, void *ctx);
	void *ctx;
};

/* The kernel's BTF fetched and its parse for libbpf started (kernel_btf.h),
 * so that the parse runs during the rest of the daemon's set-up: called as
 * early as main() can, before bpf_events_init(). Nothing with --no-bpf or
 * when not root. */
void bpf_events_prefetch(const struct bpf_events_config *cfg);

/* Tries to bring BPF up; never fails the daemon: on error it logs loudly and
 * stays off. Returns true when BPF is on. ops must outlive the module. */
bool bpf_events_init(struct loop *loop, const struct bpf_events_config *cfg,
		     const struct bpf_events_ops *ops);
void bpf_events_shutdown(void);
bool bpf_events_enabled(void);
/* "on", or why it is off. */
const char *bpf_events_status(void);
/* How LISTEN candidates are confirmed: "fexit", "sock_diag ...", or, with
 * BPF off, how ports are polled. */
const char *bpf_events_listen_confirmation(void);

/* Drains the ring buffer now. Fork and exit records do not wake the daemon
 * by themselves; whoever is about to act on them (reaping, List, Signal,
 * Stats) calls this first. */
void bpf_events_poll(void);

/* The process whose children are jobs changed (the spawner helper went). */
void bpf_events_set_job_parent(pid_t pid);

/* Tracked processes (map `tracked`): the job parent's children are added by
 * the kernel at fork; this records which job a root pid belongs to. */
int bpf_events_set_job(pid_t pid, uint64_t job);
/* Adds a running process that is not the daemon's child (a job adopted
 * from an earlier instance) to job's tree; its forks and exit are tracked
 * from now on. 0, -EEXIST, or -EOPNOTSUPP. */
int bpf_events_track(pid_t pid, uint64_t job, pid_t root);
/* Fills pids[] with live tracked processes of a job (root = its main pid, for
 * descendants forked before the job id was set); returns the count (may
 * exceed max: only max are stored) or -EOPNOTSUPP. */
int bpf_events_job_pids(uint64_t job, pid_t root, pid_t *pids, size_t max);
/* True if pid is still tracked for job (used right before signalling). */
bool bpf_events_pid_in_job(pid_t pid, uint64_t job, pid_t root);

/* Watched ports (map `watched_ports`): reference-counted per {netns, port}. */
int bpf_events_watch_port(uint64_t netns_ino, uint16_t port);
int bpf_events_unwatch_port(uint64_t netns_ino, uint16_t port);

void bpf_events_fill_stats(ctld_StatsReply *st);

#endif
