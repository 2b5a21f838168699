/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jobs.h - jobs, as the rest of the daemon sees them: the requests that
 * start and control them (Run, Signal, List, Attach, Detach, WriteStdin),
 * reaping, the kernel's records about their processes, and shutdown. Every
 * job ends in exactly one terminal event (ExecFailed or Exited) to every
 * client attached to it.
 */
#ifndef CTLD_JOBS_H
#define CTLD_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "ctld.pb.h"
#include "daemon/jobs/run_spec.h"
#include "daemon/kernel/tcp_listener.h"

struct handover;
struct loop;
struct request_ctx;

/* Which jobs get a cgroup of their own (kernel/cgroup.h): every job, only
 * those with Run.max_procs, or (auto) every job without eBPF, where the
 * cgroup is the only exact handle on a tree, and only max_procs jobs with. */
enum jobs_cgroups { JOBS_CGROUPS_AUTO, JOBS_CGROUPS_ALL, JOBS_CGROUPS_LIMITED };

struct jobs_config {
	uint32_t max_jobs;       /* running at once */
	uint32_t keep_finished;  /* finished jobs remembered for wait/attach/list */
	size_t backlog_bytes;    /* recent output kept per job for Attach */
	const char *state_dir;   /* job ids (and records) that outlive the daemon; NULL: none */
	/* Limits jobs start with, as the daemon was started: it raises its own
	 * RLIMIT_NOFILE (select() users care that jobs do not get it) and
	 * libbpf raises RLIMIT_MEMLOCK on older kernels. */
	struct spawn_rlimit start_limits[RUN_SPEC_MAX_START_LIMITS];
	size_t nstart_limits;
	enum jobs_cgroups cgroups;
	/* a job that does not listen while someone else holds its port is
	 * told NotReady{PORT_TAKEN} after this long */
	uint32_t port_taken_grace_ms;
};

void jobs_config_defaults(struct jobs_config *cfg);
int jobs_init(struct loop *loop, const struct jobs_config *cfg);
/* Kills every job's tree (SIGKILL) and whatever else is below the daemon,
 * reaps (bounded), frees. */
void jobs_shutdown(void);
/* Adopts the running jobs an earlier daemon instance left (job_adopt.c);
 * after the kernel programs are up, so their trees can be followed. */
void jobs_adopt_earlier(struct loop *loop);

void jobs_handle_run(struct request_ctx *ctx, const ctld_Run *run);
void jobs_handle_signal(struct request_ctx *ctx, const ctld_Signal *sig);
void jobs_handle_list(struct request_ctx *ctx, const ctld_List *list);
void jobs_handle_attach(struct request_ctx *ctx, const ctld_Attach *attach);
void jobs_handle_detach(struct request_ctx *ctx, const ctld_Detach *detach);
void jobs_handle_write_stdin(struct request_ctx *ctx, const ctld_WriteStdin *w);

/* A client went away: forget its attachments, kill its kill_on_disconnect jobs. */
void jobs_client_gone(uint64_t session);
/* SIGCHLD: reap every child that has exited (jobs and adopted orphans),
 * after taking in the kernel's records. False once the daemon has no
 * children at all. */
bool jobs_reap_children(void);

/* The kernel's records about tracked processes (bpf_events ops). */
void jobs_kernel_exit(const struct proc_event *ev);
void jobs_kernel_fork(const struct proc_event *ev);
/* Records were lost: count every job's descendants again from the kernel. */
void jobs_recount_descendants(void);

/* Upgrades in place (job_handover.c, daemon/upgrade.h). What keeps the
 * upgrade from happening now, in buf, or NULL. */
const char *jobs_handover_blocker(char *buf, size_t len);
/* While on, a client that goes away kills none of its jobs: the upgrade
 * closes every connection, and that is not their owners leaving. */
void jobs_handover_prepare(bool on);
bool jobs_handing_over(void);
/* Every job this instance started, with its descriptors. 0 or -errno. */
int jobs_handover(struct handover *h);
/* In the new image, after the kernel programs are up and before the jobs
 * of earlier instances are adopted from their records. */
void jobs_restore_handed_over(struct loop *loop);
unsigned jobs_restored(void);

void jobs_fill_stats(ctld_StatsReply *st);
unsigned jobs_running(void);

/* Decodes a kernel/waitpid status into exit code, signal, core flag. */
void jobs_decode_status(int status, int *exit_code, int *signal, bool *core);

#endif
