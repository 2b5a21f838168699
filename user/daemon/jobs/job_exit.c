// SPDX-License-Identifier: BSD-2-Clause
/*
 * job_exit.c - how a job ends.
 *
 * When is a job over? Its main process has exited AND been reaped here
 * (waitid is the authority on the status; the kernel's BPF exit record only
 * gives the time and a cross-check) AND everything it wrote before exiting
 * has been read from its pipes. Only then is `Exited` sent, after its final
 * output, so no output ever follows Exited.
 *
 * The daemon is a child subreaper: orphaned descendants of jobs are
 * re-parented here and reaped too, so no zombie is ever left behind.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/jobs/job.h"
#include "daemon/jobs/jobs.h"
#include "daemon/jobs/readiness.h"
#include "daemon/jobs/spawner.h"
#include "daemon/kernel/bpf_events.h"
#include "daemon/kernel/cgroup.h"

static struct {
	uint64_t orphans_reaped;
	uint64_t exit_mismatches;
	uint64_t exits_checked;
} X;

void jobs_decode_status(int status, int *exit_code, int *signal, bool *core)
{
	*signal = status & 0x7f;
	*core = (status & 0x80) != 0;
	*exit_code = *signal ? 0 : (status >> 8) & 0xff;
}

void job_finished(struct job *j)
{
	job_cgroup_release(j, false); /* removed now if its processes are gone */
	job_stdin_close(j, EPIPE, "the job has exited");
	job_send_terminal(j, 0);
	/* Attachments end with the terminal event; later ones get a replay. */
	job_detach_all(j);
	job_table_finished(j);
}

static void check_kernel_status(struct job *j)
{
	int code, sig;
	bool core;

	if (!j->kernel_exit)
		return;
	X.exits_checked++;
	jobs_decode_status(j->kernel_status, &code, &sig, &core);
	if (code != j->exit_code || sig != j->signal || core != j->core) {
		X.exit_mismatches++;
		log_warn("job %llu: kernel exit status %#x (code %d sig %d) differs from waitid "
			 "(code %d sig %d)",
			 (unsigned long long)j->id, j->kernel_status, code, sig, j->exit_code,
			 j->signal);
	}
}

void job_main_gone(struct job *j)
{
	job_table_forget_pid(j);
	j->tree.reaped = true;
	/* A gone process's pidfd only refers to a dead process; finished jobs
	 * are kept for a while and must not pin a descriptor each. */
	if (j->tree.pidfd >= 0)
		close(j->tree.pidfd);
	j->tree.pidfd = -1;
	j->end_mono_ns = now_monotonic_ns();
}

static void job_reaped(struct job *j, const siginfo_t *si, const struct rusage *ru)
{
	int n;

	job_main_gone(j);
	j->ru = *ru;
	j->exit_code = si->si_code == CLD_EXITED ? si->si_status : 0;
	j->signal = si->si_code == CLD_EXITED ? 0 : si->si_status;
	j->core = si->si_code == CLD_DUMPED;
	if (j->state != ctld_JobState_JOB_RUNNING)
		return; /* exec failed: its terminal event is already out */
	check_kernel_status(j);
	/* Exited says what is really alive, not what the records said so far
	 * (a tree just killed is not alive anymore). Without eBPF that means
	 * reading its cgroup (cheap), or /proc where descendants may matter:
	 * the job waits for them, or someone still holds its output. */
	if ((bpf_events_enabled() || j->tree.cgroup || j->wait_tree || j->follow_tree ||
	     job_output_has_writers(j)) &&
	    (n = proc_tree_count(&j->tree)) >= 0)
		j->descendants = (uint32_t)n;
	log_debug("job %llu (pid %d) exited: code %d signal %d", (unsigned long long)j->id,
		  j->tree.pid, j->exit_code, j->signal);
	if (j->wait_tree || j->follow_tree) {
		j->main_done = true;
		job_tree_changed(j);
		return;
	}
	/* The rest of its output, then Exited. */
	job_output_finish(j);
	j->state = ctld_JobState_JOB_EXITED;
	job_finished(j);
}

/* The tree as the kernel shows it; without eBPF, as /proc does, and a
 * process that left that (setsid and a double fork) but still holds the
 * job's output is of the tree too. */
static bool tree_gone(struct job *j)
{
	int n = proc_tree_count(&j->tree);

	if (n > 0)
		j->descendants = (uint32_t)n;
	/* A cgroup of its own knows exactly (without eBPF, /proc does not). */
	if (job_cgroup_busy(j))
		return false;
	if (j->tree.cgroup && !bpf_events_enabled())
		return true;
	return n <= 0 && (bpf_events_enabled() || !job_output_has_writers(j));
}

bool job_tree_alive(struct job *j)
{
	return !j->tree.reaped || !tree_gone(j);
}

void job_signal_tree(struct job *j, int sig)
{
	proc_tree_signal(&j->tree, sig);
	if (!bpf_events_enabled() && !j->tree.cgroup)
		job_output_signal_holders(j, sig);
}

/* What the end of a tree (or a pipe) means for a job whose main process
 * is gone: a readiness verdict, or (true) the job's end. */
static bool tree_changed(struct job *j)
{
	job_output_drain(j);
	if (readiness_pending(j)) {
		/* `sh -c 'server &'`, a server that daemonizes: its tree may
		 * still become ready; once it is gone (and what it wrote is
		 * read), it cannot. */
		if (tree_gone(j))
			readiness_job_ended(j); /* its decision calls back later */
		return false;
	}
	if (!tree_gone(j) || (j->wait_tree && job_output_open(j)))
		return false;
	if (!j->wait_tree)
		job_output_finish(j); /* pipes someone else holds: discarded */
	return true;
}

void job_tree_changed(struct job *j)
{
	bool ended;

	if (!j->main_done || j->state != ctld_JobState_JOB_RUNNING || j->checking)
		return;
	/* reading or finishing its pipes may close one, which calls back
	 * here: the outer call decides */
	j->checking = true;
	ended = tree_changed(j);
	j->checking = false;
	if (!ended)
		return;
	j->descendants = 0;
	j->tree_waited = true;
	j->end_mono_ns = now_monotonic_ns();
	j->state = ctld_JobState_JOB_EXITED;
	log_debug("job %llu: ended with its tree", (unsigned long long)j->id);
	job_finished(j); /* may free j */
}

/* An orphan was reaped: a wait_tree job may have lost its last process,
 * and a finished job's cgroup its last member. */
static void trees_changed(void)
{
	for (struct job *j = job_first(), *next; j; j = next) {
		next = j->next; /* job_tree_changed may free j */
		if (j->main_done && j->state == ctld_JobState_JOB_RUNNING)
			job_tree_changed(j);
		else if (j->state != ctld_JobState_JOB_RUNNING)
			job_cgroup_release(j, false);
	}
	cgroup_retry_forgotten();
}

bool jobs_reap_children(void)
{
	/* The kernel's exit records first: a job's exit time and status
	 * cross-check are then known when it is reaped. */
	bpf_events_poll();
	for (;;) {
		siginfo_t si;
		struct rusage ru;
		struct job *j;

		memset(&si, 0, sizeof(si));
		/* raw waitid: the glibc wrapper has no rusage argument */
		if (syscall(SYS_waitid, P_ALL, 0, &si, WEXITED | WNOHANG, &ru) < 0)
			return errno != ECHILD;
		if (si.si_pid == 0)
			return true; /* children left, none has exited */
		j = job_by_pid(si.si_pid);
		if (j) {
			job_reaped(j, &si, &ru);
		} else if (si.si_pid == spawner_job_parent()) {
			spawner_reaped(si.si_pid);
		} else {
			X.orphans_reaped++;
			log_debug("reaped adopted orphan pid %d", si.si_pid);
			trees_changed();
		}
	}
}

/* ------------------------------------------------------------ kernel records */

/* The job a kernel record belongs to. The job id is 0 when the process
 * forked or exited before the daemon wrote it into the map; then the root
 * pid decides, newest job first (an older job with a recycled pid is long
 * gone). */
static struct job *record_job(const struct proc_event *ev)
{
	if (ev->job)
		return job_by_id(ev->job);
	return job_by_root_pid(ev->root_pid);
}

void jobs_kernel_exit(const struct proc_event *ev)
{
	struct job *j = record_job(ev);

	if (!j)
		return;
	if (ev->pid != j->tree.pid) {
		if (j->descendants)
			j->descendants--;
		if (j->main_done)
			job_tree_changed(j);
		return;
	}
	if (j->kernel_exit)
		return;
	j->kernel_exit = true;
	j->kernel_status = ev->status;
	j->kernel_exit_ns = ev->time_ns;
	if (j->tree.reaped)
		check_kernel_status(j);
}

void jobs_kernel_fork(const struct proc_event *ev)
{
	struct job *j = record_job(ev);

	if (j && ev->pid != j->tree.pid)
		j->descendants++;
}

void jobs_recount_descendants(void)
{
	for (struct job *j = job_first(); j; j = j->next) {
		int n = proc_tree_count(&j->tree);

		if (n >= 0)
			j->descendants = (uint32_t)n;
	}
}

void job_exit_fill_stats(ctld_StatsReply *st)
{
	st->exit_mismatches = X.exit_mismatches;
	st->exits_checked = X.exits_checked;
	st->orphans_reaped = X.orphans_reaped;
}
