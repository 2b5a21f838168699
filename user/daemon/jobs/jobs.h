/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * jobs.h - the job table: starting programs, their pipes and output backlog,
 * stdin, signals, reaping, attach/detach, listing, and the one terminal event
 * (ExecFailed or Exited) every job ends with.
 */
#ifndef CTLD_JOBS_H
#define CTLD_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "ctld.pb.h"

struct loop;
struct request_ctx;

struct jobs_config {
	uint32_t max_jobs;       /* running at once */
	uint32_t keep_finished;  /* finished jobs remembered for wait/attach/list */
	size_t backlog_bytes;    /* recent output kept per job for Attach */
	/* RLIMIT_NOFILE jobs start with: the daemon raises its own soft limit,
	 * jobs keep the one it was started with (select() users care). */
	bool has_child_nofile;
	struct rlimit child_nofile;
};

void jobs_config_defaults(struct jobs_config *cfg);
int jobs_init(struct loop *loop, const struct jobs_config *cfg);
/* Kills every running job's tree (SIGKILL), reaps, frees. */
void jobs_shutdown(void);

void jobs_handle_run(struct request_ctx *ctx, const ctld_Run *run);
void jobs_handle_signal(struct request_ctx *ctx, const ctld_Signal *sig);
void jobs_handle_list(struct request_ctx *ctx, const ctld_List *list);
void jobs_handle_attach(struct request_ctx *ctx, const ctld_Attach *attach);
void jobs_handle_detach(struct request_ctx *ctx, const ctld_Detach *detach);
void jobs_handle_write_stdin(struct request_ctx *ctx, const ctld_WriteStdin *w);

/* A client went away: forget its attachments, kill its kill_on_disconnect jobs. */
void jobs_client_gone(uint64_t session);
/* SIGCHLD: reap every child that has exited (jobs and adopted orphans).
 * Returns false once the daemon has no children at all. */
bool jobs_reap_children(void);

/* From the kernel (bpf_events.c): a tracked process exited / forked.
 * root_pid is the job's main pid; time_ns is CLOCK_MONOTONIC. */
void jobs_kernel_exit(pid_t pid, pid_t root_pid, uint64_t job_id, int status, uint64_t time_ns);
void jobs_kernel_fork(pid_t parent, pid_t child, pid_t root_pid, uint64_t job_id);

void jobs_fill_stats(ctld_StatsReply *st);
unsigned jobs_running(void);

/* Decodes a kernel/waitpid status into exit code, signal, core flag. */
void jobs_decode_status(int status, int *exit_code, int *signal, bool *core);

#endif
