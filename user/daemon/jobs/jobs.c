// SPDX-License-Identifier: BSD-2-Clause
/*
 * jobs.c - the job requests: Run (a Run request becomes a spawn request in
 * run_spec.c, a process in spawn.c, a job in the table), Signal (the whole
 * tree unless main_only), List, Attach, Detach, WriteStdin; clients that go
 * away; timeouts; shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/utf8.h"
#include "common/util.h"
#include "daemon/clients/reply.h"
#include "daemon/core/log.h"
#include "daemon/jobs/job.h"
#include "daemon/jobs/job_ids.h"
#include "daemon/jobs/job_records.h"
#include "daemon/jobs/jobs.h"
#include "daemon/jobs/proc_tree.h"
#include "daemon/jobs/readiness.h"
#include "daemon/jobs/run_spec.h"
#include "daemon/jobs/spawner.h"
#include "daemon/kernel/bpf_events.h"
#include "spawner/spawn.h"
#include "daemon/kernel/cgroup.h"

static struct {
	struct loop *loop;
	struct jobs_config cfg;
	int devnull;
} J = { .devnull = -1 };

void jobs_config_defaults(struct jobs_config *cfg)
{
	*cfg = (struct jobs_config){
		.max_jobs = 4096,
		.keep_finished = 256,
		.backlog_bytes = 64 * 1024,
		.state_dir = "/var/lib/ctld-bpf",
		.port_taken_grace_ms = 3000,
	};
}

static bool is_job_or_helper(pid_t pid)
{
	return job_by_pid(pid) || pid == spawner_job_parent();
}

int jobs_init(struct loop *loop, const struct jobs_config *cfg)
{
	static const struct proc_tree_ops tree_ops = { .is_job_or_helper = is_job_or_helper };
	char why[400];
	int err;

	if ((err = job_ids_open(cfg->state_dir, why, sizeof(why))) ||
	    (err = job_records_open(cfg->state_dir, why, sizeof(why)))) {
		log_err("%s", why);
		return err;
	}
	J.loop = loop;
	J.cfg = *cfg;
	job_table_init(loop, cfg->keep_finished);
	static const struct job_output_hooks hooks = { .pipes_closed = job_tree_changed,
						       .output = readiness_output };

	job_output_init(loop, cfg->backlog_bytes, &hooks);
	readiness_init(loop, cfg->port_taken_grace_ms, job_tree_changed);
	proc_tree_init(&tree_ops);
	spawn_init();
	J.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	return J.devnull < 0 ? -errno : 0;
}

unsigned jobs_running(void)
{
	return job_table_running();
}

/* A job id this instance does not know: why not, for the error message. */
static const char *unknown_id_reason(uint64_t id, char *buf, size_t len)
{
	if (id < job_ids_first())
		snprintf(buf, len,
			 ": it was started by an earlier instance of the daemon (this one's "
			 "jobs start at %llu)", (unsigned long long)job_ids_first());
	else if (id >= job_ids_peek())
		snprintf(buf, len, ": no job with this id was started yet");
	else
		snprintf(buf, len, ": it has finished and was forgotten (the daemon keeps the last "
			 "%u finished jobs)", J.cfg.keep_finished);
	return buf;
}

static struct job *find_or_reply(struct request_ctx *ctx, uint64_t id)
{
	struct job *j = job_by_id(id);
	char why[160];

	if (!j)
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "no job %llu%s", (unsigned long long)id,
			    unknown_id_reason(id, why, sizeof(why)));
	return j;
}

/* ------------------------------------------------------------ run */

static void timeout_fired(struct loop *loop, void *ctx)
{
	struct job *j = ctx;

	(void)loop;
	if (j->state != ctld_JobState_JOB_RUNNING)
		return;
	log_info("job %llu: timeout, killing its tree", (unsigned long long)j->id);
	j->timed_out = true;
	job_signal_tree(j, SIGKILL);
}

/* Signal.grace_ms ran out: the tree did not end on the signal. */
static void escalate_fired(struct loop *loop, void *ctx)
{
	struct job *j = ctx;

	(void)loop;
	if (!job_tree_alive(j))
		return;
	log_info("job %llu: still running after its grace period, sending SIGKILL",
		 (unsigned long long)j->id);
	j->escalated = true;
	job_signal_tree(j, SIGKILL);
}

struct job *jobs_new_job(uint64_t id, const char *name, const char *command, uint64_t owner,
			 bool kill_on_disconnect)
{
	struct job *j = job_new(id, name, command, owner, kill_on_disconnect, timeout_fired);

	if (j)
		loop_timer_init(&j->escalate, escalate_fired, j);
	return j;
}

/* Pipes, then the process. 0 when a child was created (exec may still have
 * failed: j->exec_errno), or -errno with err filled. */
static int start_process(struct job *j, const ctld_Run *run, struct run_spec *spec, char *err,
			 size_t errlen)
{
	const bool want_out[2] = { !run->stdout_path[0], !run->stderr_path[0] };
	struct spawn_result res;
	int child_ends[3], ret;

	if ((ret = job_output_pipes(j, run->stdin_pipe, want_out, child_ends))) {
		snprintf(err, errlen, "failed to create pipes: %s", strerror(-ret));
		goto out;
	}
	for (int i = 0; i < 3; i++)
		if (!spec->sr.stdio_path[i])
			spec->sr.stdio[i] = child_ends[i] >= 0 ? child_ends[i] : J.devnull;
	j->start_mono_ns = now_monotonic_ns();
	j->start_real_ns = now_realtime_ns();
	if ((ret = spawner_spawn(&spec->sr, &res))) {
		snprintf(err, errlen, "failed to create a process: %s", strerror(-ret));
		goto out;
	}
	j->tree.pid = res.pid;
	j->tree.pidfd = res.pidfd;
	if (res.err) {
		j->exec_errno = res.err;
		snprintf(j->exec_text, sizeof(j->exec_text), "%s%s%s: %s", res.step,
			 res.what ? " " : "", res.what ? res.what : "", strerror(res.err));
	}
out:
	for (int i = 0; i < 3; i++)
		if (child_ends[i] >= 0)
			close(child_ends[i]);
	return ret;
}

/* A spawned job that cannot be tracked: do not leave an uncontrolled
 * process behind (the reaper collects it as an orphan). */
static void abandon(struct job *j)
{
	kill(-j->tree.pid, SIGKILL);
	proc_tree_signal_main(&j->tree, SIGKILL);
	job_free(j);
}

static int spawn_job(struct job *j, const ctld_Run *run, struct run_spec *spec, char *err,
		     size_t errlen)
{
	int ret = start_process(j, run, spec, err, errlen);

	if (ret == -EMFILE || ret == -ENFILE) {
		/* finished-but-unreaped jobs still hold their pipes: reap, retry */
		jobs_reap_children();
		job_output_close(j);
		ret = start_process(j, run, spec, err, errlen);
	}
	return ret;
}

static void reply_run(struct request_ctx *ctx, uint64_t job)
{
	ctld_Reply *r = reply_begin(ctx);

	r->which_result = ctld_Reply_run_tag;
	r->result.run.job = job;
	reply_send(ctx);
}

static void launched(struct job *j, const ctld_Run *run)
{
	if (j->exec_errno) {
		log_info("job %llu: %s", (unsigned long long)j->id, j->exec_text);
		j->state = ctld_JobState_JOB_EXEC_FAILED;
		job_output_close(j);
		readiness_job_ended(j);
		job_finished(j);
		return;
	}
	log_debug("job %llu: started pid %d: %s", (unsigned long long)j->id, j->tree.pid,
		  j->command);
	job_output_start(j);
	job_send_launched(j);
	readiness_launched(j);
	if (run->timeout_ms)
		loop_timer_arm(J.loop, &j->timeout,
			       j->start_mono_ns + (uint64_t)run->timeout_ms * NSEC_PER_MSEC);
}

/* Without eBPF a cgroup is the only exact handle on a tree (a process that
 * left the session and the ancestry is found by nothing else); with eBPF
 * the kernel's tracked map is one already, and a group per job costs a
 * cgroup migration per spawn (docs/design.md, "Process limits and exact
 * kill"). */
static bool every_job_a_cgroup(void)
{
	return J.cfg.cgroups == JOBS_CGROUPS_ALL ||
	       (J.cfg.cgroups == JOBS_CGROUPS_AUTO && !bpf_events_enabled());
}

void jobs_handle_run(struct request_ctx *ctx, const ctld_Run *run)
{
	struct run_spec spec;
	char err[200];
	struct job *j;
	uint64_t id;
	int ret;

	if ((ret = run_spec_build(&spec, run, J.cfg.start_limits, J.cfg.nstart_limits, err,
				  sizeof(err)))) {
		reply_error(ctx, ret == -EINVAL || ret == -ENOENT ? ctld_ErrorCode_BAD_REQUEST
								  : ctld_ErrorCode_SYSTEM,
			    -ret, "%s", err);
		return;
	}
	/* A burst of pipelined Runs is handled before the loop gets to SIGCHLD:
	 * collect the jobs that already ended before calling the table full. */
	if (jobs_running() >= J.cfg.max_jobs)
		jobs_reap_children();
	if (jobs_running() >= J.cfg.max_jobs) {
		reply_error(ctx, ctld_ErrorCode_LIMIT, 0, "too many running jobs (limit %u)",
			    J.cfg.max_jobs);
		goto out;
	}
	if (!(id = job_ids_next())) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, EIO,
			    "no job id can be reserved: the state directory is not writable "
			    "(see the daemon's log)");
		goto out;
	}
	if (!(j = jobs_new_job(id, spec.name, spec.command, ctx->session,
			       run->kill_on_disconnect))) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		goto out;
	}
	j->wait_tree = run->wait_tree;
	/* A job waited on for readiness is its tree: `sh -c 'server &'` stays
	 * the job (listed, killable) while the server it left runs. */
	j->follow_tree = run->ready_count > 0;
	/* readiness watches before the job runs: no listen() of it is missed */
	if ((ret = readiness_start(j, run, err, sizeof(err)))) {
		reply_error(ctx, ret == -EINVAL ? ctld_ErrorCode_BAD_REQUEST : ctld_ErrorCode_SYSTEM,
			    -ret, "%s", err);
		job_free(j);
		goto out;
	}
	if ((ret = job_cgroup_make(j, run, every_job_a_cgroup(), &spec.sr, err, sizeof(err)))) {
		reply_error(ctx, ret == -ENOTSUP ? ctld_ErrorCode_UNSUPPORTED : ctld_ErrorCode_SYSTEM,
			    -ret, "%s", err);
		job_free(j);
		goto out;
	}
	ret = spawn_job(j, run, &spec, err, sizeof(err));
	job_cgroup_spawned(&spec.sr);
	if (ret) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, -ret, "%s", err);
		job_free(j);
		goto out;
	}
	if ((!run->detach && job_attach(j, ctx->session, true)) || job_table_add(j)) {
		abandon(j);
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		goto out;
	}
	proc_tree_claim(j->tree.pid, j->id);
	reply_run(ctx, j->id);
	launched(j, run);
out:
	run_spec_free(&spec);
}

/* ------------------------------------------------------------ signal */

/* Signal with grace_ms: a stopped tree is continued so it can act on the
 * signal, and what is left after grace_ms is killed (the earliest of
 * several deadlines holds). */
static void escalate_after(struct job *j, int sig, uint32_t grace_ms)
{
	uint64_t at = now_monotonic_ns() + (uint64_t)grace_ms * NSEC_PER_MSEC;

	if (sig != SIGKILL && sig != SIGCONT && sig != SIGSTOP)
		job_signal_tree(j, SIGCONT);
	if (!loop_timer_armed(&j->escalate) || at < j->escalate.deadline_ns)
		loop_timer_arm(J.loop, &j->escalate, at);
}

void jobs_handle_signal(struct request_ctx *ctx, const ctld_Signal *req)
{
	struct job *j = find_or_reply(ctx, req->job);
	int sig = req->signal ? req->signal : SIGTERM, err;

	if (!j)
		return;
	if (sig < 0 || sig >= NSIG) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, 0, "bad signal number %d", sig);
		return;
	}
	if (req->grace_ms && (req->main_only || sig == SIGKILL)) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EINVAL,
			    "grace_ms escalates to SIGKILL on the whole tree: not with %s",
			    req->main_only ? "main_only" : "SIGKILL itself");
		return;
	}
	/* descendants counted from every kernel record there is */
	bpf_events_poll();
	/* a job that follows its tree runs while the tree does, counted or not */
	if (j->tree.reaped && (req->main_only || (j->state != ctld_JobState_JOB_RUNNING &&
						  !j->descendants && !job_cgroup_busy(j)))) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, ESRCH, "job %llu has already exited",
			    (unsigned long long)j->id);
		return;
	}
	if (!req->main_only) {
		job_signal_tree(j, sig);
		if (req->grace_ms)
			escalate_after(j, sig, req->grace_ms);
	} else if ((err = proc_tree_signal_main(&j->tree, sig))) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, -err, "signal job %llu: %s",
			    (unsigned long long)j->id, strerror(-err));
		return;
	}
	reply_ok(ctx);
}

/* ------------------------------------------------------------ attach/detach */

void jobs_handle_attach(struct request_ctx *ctx, const ctld_Attach *req)
{
	struct job *j = find_or_reply(ctx, req->job);
	ctld_Reply *r;

	if (!j)
		return;
	if (j->state == ctld_JobState_JOB_RUNNING && job_attach(j, ctx->session, !req->no_output)) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return;
	}
	job_reclaimed(j, ctx->session);
	r = reply_begin(ctx);
	r->which_result = ctld_Reply_attach_tag;
	r->result.attach.pid = (uint32_t)j->tree.pid;
	r->result.attach.state = j->state;
	r->result.attach.stdout_offset = j->out_offset[ctld_Stream_STDOUT];
	r->result.attach.stderr_offset = j->out_offset[ctld_Stream_STDERR];
	reply_send(ctx);
	if (!req->no_output && !req->no_backlog)
		job_backlog_send(j, ctx->session);
	readiness_replay(j, ctx->session);
	if (j->state != ctld_JobState_JOB_RUNNING)
		job_send_terminal(j, ctx->session);
}

void jobs_handle_detach(struct request_ctx *ctx, const ctld_Detach *req)
{
	struct job *j = job_by_id(req->job);
	struct attached *a = j ? job_find_client(j, ctx->session) : NULL;

	if (!a) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "not attached to job %llu",
			    (unsigned long long)req->job);
		return;
	}
	job_detach_at(j, (size_t)(a - j->clients));
	reply_ok(ctx);
}

void jobs_handle_write_stdin(struct request_ctx *ctx, const ctld_WriteStdin *req)
{
	struct job *j = find_or_reply(ctx, req->job);

	if (j)
		job_stdin_write(ctx, j, req);
}

void jobs_client_gone(uint64_t session)
{
	for (struct job *j = job_first(); j; j = j->next) {
		struct attached *a = job_find_client(j, session);

		if (a)
			job_detach_at(j, (size_t)(a - j->clients));
		if (j->owner == session && j->kill_on_disconnect &&
		    j->state == ctld_JobState_JOB_RUNNING && !jobs_handing_over()) {
			log_info("job %llu: its client went away, killing its tree",
				 (unsigned long long)j->id);
			job_signal_tree(j, SIGKILL);
		}
	}
}

/* ------------------------------------------------------------ list */

static void fill_info(const struct job *j, ctld_JobInfo *info)
{
	info->job = j->id;
	info->pid = (uint32_t)j->tree.pid;
	copy_str(info->name, sizeof(info->name), j->name);
	copy_str(info->command, sizeof(info->command), j->command);
	/* The exact bytes too, when the text will have '?' for some. */
	if (!utf8_valid((const uint8_t *)j->command, strlen(j->command))) {
		info->command_bytes.size = (pb_size_t)strlen(j->command);
		memcpy(info->command_bytes.bytes, j->command, info->command_bytes.size);
	}
	info->state = j->state;
	info->start_time_ns = j->start_real_ns;
	info->exit_code = j->exit_code;
	info->signal = j->signal;
	info->descendants = j->descendants;
	info->clients = (uint32_t)j->nclients;
	info->discarded_bytes = j->discarded_bytes;
	info->adopted = j->adopted;
	info->status_unknown = j->status_unknown;
	readiness_fill_info(j, info);
	job_cgroup_fill_info(j, info);
}

void jobs_handle_list(struct request_ctx *ctx, const ctld_List *req)
{
	ctld_Reply *r;
	ctld_ListReply *lr;
	pb_size_t max;

	bpf_events_poll(); /* descendants counted from every kernel record there is */
	r = reply_begin(ctx);
	lr = &r->result.list;
	max = ARRAY_SIZE(lr->jobs);
	r->which_result = ctld_Reply_list_tag;
	for (struct job *j = job_first(); j; j = j->next) {
		if (j->id <= req->after_job)
			continue;
		if (req->running_only && j->state != ctld_JobState_JOB_RUNNING)
			continue;
		if (lr->jobs_count == max) {
			lr->more = true;
			break;
		}
		fill_info(j, &lr->jobs[lr->jobs_count++]);
	}
	reply_send(ctx);
}

/* ------------------------------------------------------------ stats, shutdown */

void jobs_fill_stats(ctld_StatsReply *st)
{
	st->jobs_running = job_table_running();
	st->jobs_started = job_table_started();
	st->spawner_pid = spawner_job_parent() != getpid() ? (uint32_t)spawner_job_parent() : 0;
	copy_str(st->spawner, sizeof(st->spawner), spawner_status());
	copy_str(st->cgroups, sizeof(st->cgroups), cgroups_status());
	st->job_cgroups = cgroups_count();
	st->jobs_handed_over = jobs_restored();
	job_exit_fill_stats(st);
}

void jobs_shutdown(void)
{
	uint64_t deadline = now_monotonic_ns() + 3 * NSEC_PER_SEC;

	/* nothing is spawned any more; the helper is not a stray to kill */
	spawner_stop();
	/* Every remembered job, finished ones too: their leftovers (a server a
	 * shell started in the background) must not outlive the daemon. */
	for (struct job *j = job_first(); j; j = j->next)
		job_signal_tree(j, SIGKILL);
	proc_tree_kill_strays();
	/* SIGKILL cannot be ignored; a process in uninterruptible sleep can
	 * still delay it, so wait a bounded time. */
	while (jobs_reap_children() && now_monotonic_ns() < deadline)
		usleep(2000);
	job_table_shutdown();
	job_ids_close();
	job_records_close();
	if (J.devnull >= 0)
		close(J.devnull);
	J.devnull = -1;
}
