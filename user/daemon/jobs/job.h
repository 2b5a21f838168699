/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * job.h - one job, as the files of daemon/jobs/ share it (nothing outside
 * jobs/ includes this; they use jobs.h). Each group of fields says which
 * file owns it; the files are layered, each using only those above it:
 *
 *   job_table.c    the table: allocation, lookup by id and by pid, eviction
 *   job_clients.c  clients attached to a job, and the events they are sent
 *   job_output.c   stdout/stderr pipes, the backlog for late attachers, stdin
 *   job_exit.c     reaping, the kernel's exit record, finishing
 *   job_cgroup.c   the job's own cgroup (max_procs, exact kill)
 *   jobs.c         the requests (Run, Signal, List, Attach, ...)
 */
#ifndef CTLD_JOB_H
#define CTLD_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "ctld.pb.h"
#include "daemon/core/loop.h"
#include "daemon/core/outq.h"
#include "daemon/jobs/proc_tree.h"
#include "spawner/spawn.h"

struct request_ctx;
struct backlog_chunk;
struct stdin_wait;
struct readiness;

struct attached {
	uint64_t session;
	bool output; /* wants Output events, not only the terminal event */
};

struct job {
	/* job_table.c */
	uint64_t id;
	struct job *prev, *next; /* all jobs, oldest first */
	ctld_JobState state;
	char name[sizeof(((ctld_JobInfo *)0)->name)];
	char command[sizeof(((ctld_JobInfo *)0)->command)];
	uint64_t owner; /* the session that started it */
	bool kill_on_disconnect;
	bool wait_tree;	  /* Run.wait_tree: over when the whole tree is, pipes closed */
	bool follow_tree; /* Run.ready: over when the whole tree is (pipes aside) */
	struct loop_timer timeout;
	bool timed_out;
	struct loop_timer escalate; /* Signal.grace_ms: SIGKILL what is left */
	bool escalated;
	int exec_errno;
	char exec_text[sizeof(((ctld_ExecFailed *)0)->text)];
	uint64_t start_mono_ns, start_real_ns;
	/* the record a later daemon instance adopts the job by (job_records.h) */
	struct loop_timer record_timer;
	bool recorded;
	bool adopted;        /* started by an earlier instance (job_adopt.c) */
	struct loop_timer end_poll; /* adopted without a pidfd: looks for its end */
	bool status_unknown; /* adopted, and how it ended could not be learnt */
	/* handed over by an upgrade with kill_on_disconnect: its owner must
	 * attach again before this fires (job_handover.c) */
	struct loop_timer reclaim;

	struct readiness *ready; /* readiness.c: Run.ready, or NULL */

	/* the process tree; pid and pidfd set at spawn, reaped by job_exit.c */
	struct proc_tree_root tree;
	uint32_t descendants; /* live, by the kernel's fork and exit records */

	/* job_exit.c: the exit, from waitid() and from the kernel (BPF) */
	bool main_done;   /* wait_tree: the main process is reaped, the tree goes on */
	bool tree_waited; /* wait_tree: the job ended with its tree (at end_mono_ns) */
	bool checking;    /* inside job_tree_changed() */
	bool counted_finished; /* job_table_finished() was called */
	uint64_t end_mono_ns;
	int exit_code, signal;
	bool core;
	struct rusage ru;
	bool kernel_exit;
	int kernel_status;
	uint64_t kernel_exit_ns;

	/* job_output.c */
	int out_fd[2];
	uint64_t out_offset[2];
	bool pipes_held;          /* handed over to descendants when the job ended */
	uint64_t discarded_bytes; /* what they wrote into them afterwards */
	struct backlog_chunk *bl_head, *bl_tail;
	size_t bl_bytes;
	uint64_t bl_dropped[2];
	bool had_stdin;
	int stdin_fd;
	struct outq stdin_q;
	uint64_t stdin_written, stdin_queued;
	bool stdin_eof_requested;
	struct stdin_wait *waits;
	size_t nwaits;

	/* job_clients.c */
	struct attached *clients;
	size_t nclients;

	/* job_cgroup.c (tree.cgroup: it has one now) */
	bool had_cgroup;
	uint32_t max_procs;
	uint64_t procs_peak; /* pids.peak, kept when the group goes */
};

/* ------------------------------------------------------------ job_table.c */

/* id: from job_ids_next() (the table does not choose ids). */
struct job *job_new(uint64_t id, const char *name, const char *command, uint64_t owner,
		    bool kill_on_disconnect, loop_timer_fn on_timeout);
/* Makes a spawned job findable (by id, and by pid until reaped). 0 or -ENOMEM. */
int job_table_add(struct job *j);
/* Forgets and frees a job that could not be added (or at shutdown). */
void job_free(struct job *j);
struct job *job_by_id(uint64_t id);
struct job *job_by_pid(pid_t pid);
/* The newest job whose main pid is root_pid (kernel records before the
 * job id was set carry only that). */
struct job *job_by_root_pid(pid_t root_pid);
void job_table_forget_pid(struct job *j);
struct job *job_first(void);
/* The job stopped running: count it, and forget the oldest finished jobs
 * beyond keep_finished (possibly j itself: do not touch it afterwards). */
void job_table_finished(struct job *j);
void job_table_init(struct loop *loop, uint32_t keep_finished);
void job_table_shutdown(void);
unsigned job_table_running(void);
uint64_t job_table_started(void);

/* ------------------------------------------------------------ job_clients.c */

int job_attach(struct job *j, uint64_t session, bool output);
struct attached *job_find_client(struct job *j, uint64_t session);
void job_detach_at(struct job *j, size_t i);
void job_detach_all(struct job *j);
/* Sends the scratch event (reply.h) to the job's clients; Output only to
 * those that want it, and droppable for slow ones. */
void job_broadcast(struct job *j, bool is_output, int stream, size_t payload);
void job_send_launched(struct job *j);
/* The terminal event (ExecFailed or Exited) to one session, or with
 * session 0 to every attached client. */
void job_send_terminal(struct job *j, uint64_t session);

/* ------------------------------------------------------------ job_exit.c */

/* The job's whole tree: proc_tree_signal(), and without eBPF also the
 * processes that hold its output pipes. */
void job_signal_tree(struct job *j, int sig);
/* Its main process or any process of its tree still lives. */
bool job_tree_alive(struct job *j);

/* ------------------------------------------------------------ job_output.c */

struct job_output_hooks {
	/* the last output pipe of a job reached EOF */
	void (*pipes_closed)(struct job *j);
	/* the job wrote this (readiness log lines) */
	void (*output)(struct job *j, int stream, const uint8_t *data, size_t len);
};

void job_output_init(struct loop *loop, size_t backlog_bytes, const struct job_output_hooks *hooks);
/* Creates the pipes a run needs; child_ends[0..2] get the job's ends (-1
 * where a stream goes to a file or /dev/null). 0 or -errno. */
int job_output_pipes(struct job *j, bool want_stdin, const bool want_out[2], int child_ends[3]);
/* The daemon's ends join the loop. */
void job_output_start(struct job *j);
/* The main process is gone: reads what is left in the pipes; what a
 * descendant writes later is read and discarded (no SIGPIPE from us). */
void job_output_finish(struct job *j);
/* Reads what the pipes hold now (a pipe at EOF is closed), nothing more. */
void job_output_drain(struct job *j);
bool job_output_open(const struct job *j);
/* Without eBPF, a process that left the tree /proc shows (setsid and a
 * double fork) but kept the job's stdout or stderr is told by that: */
bool job_output_held_by(const struct job *j, pid_t pid);
/* someone still holds a write end of its pipes (no hang-up yet) */
bool job_output_has_writers(const struct job *j);
/* signals every process that does (pidfd-held, re-checked) */
void job_output_signal_holders(const struct job *j, int sig);
void job_output_close(struct job *j);
void job_backlog_send(struct job *j, uint64_t session);
/* Upgrades in place (job_handover.c): the backlog chunk by chunk, taking
 * one back, and whether stdin has bytes or replies still owed. */
typedef void (*job_backlog_fn)(const struct job *j, int stream, uint64_t offset,
			       const uint8_t *data, size_t len, void *ctx);
void job_backlog_each(const struct job *j, job_backlog_fn fn, void *ctx);
void job_backlog_import(struct job *j, int stream, uint64_t offset, const uint8_t *data,
			size_t len);
bool job_stdin_busy(const struct job *j);
void job_stdin_close(struct job *j, int err, const char *why);
void job_stdin_write(struct request_ctx *ctx, struct job *j, const ctld_WriteStdin *req);
uint64_t job_output_late_bytes(void);

/* ------------------------------------------------------------ job_exit.c */

/* The job can no longer run (exec failed, or it exited): its terminal
 * event goes out and its attachments end. j may be freed. */
void job_finished(struct job *j);
/* The main process is gone (reaped, or an adopted one ended): no longer
 * findable by pid, its pidfd closed, the end time taken. */
void job_main_gone(struct job *j);
/* The tree or the pipes of a job whose main process is gone changed, or
 * its readiness was decided: it ends once nothing keeps it. */
void job_tree_changed(struct job *j);
void job_exit_fill_stats(ctld_StatsReply *st);

/* ------------------------------------------------------------ jobs.c */

/* A job as Run makes one (its timeout and escalation wired); NULL without
 * memory. */
struct job *jobs_new_job(uint64_t id, const char *name, const char *command, uint64_t owner,
			 bool kill_on_disconnect);

/* ------------------------------------------------------------ job_handover.c */

/* A client attached: after an upgrade it becomes the owner of a
 * kill_on_disconnect job whose owner has not come back yet. */
void job_reclaimed(struct job *j, uint64_t session);

/* ------------------------------------------------------------ job_cgroup.c */

/* Before the spawn: a cgroup for the job if it asks for max_procs (then
 * it is an error, with the reason in err, when there can be none) or
 * `every` job gets one where possible; sr then joins it. 0 or -errno. */
int job_cgroup_make(struct job *j, const ctld_Run *run, bool every, struct spawn_request *sr,
		    char *err, size_t errlen);
/* After the spawn: the descriptor sr held for the child is closed. */
void job_cgroup_spawned(struct spawn_request *sr);
/* The job ended (or, with forget, is being forgotten): its group goes once
 * empty; a forgotten busy group is removed when its last process is. */
void job_cgroup_release(struct job *j, bool forget);
/* A process of the job is still in its group. */
bool job_cgroup_busy(const struct job *j);
void job_cgroup_fill_info(const struct job *j, ctld_JobInfo *info);

#endif
