// SPDX-License-Identifier: BSD-2-Clause
/*
 * job_adopt.c - the jobs of an earlier daemon instance, found again at
 * start-up from their records (job_records.h) after that instance died
 * (kill -9, a crash) and left them running under init.
 *
 * A record's process is the job only if the boot and the kernel's start
 * time of the pid still match; its pidfd is opened before that check, so
 * what is adopted is exactly the process that was checked. An adopted job
 * is listed (JobInfo.adopted), can be signalled, killed (its tree: below it
 * and in its session, and with eBPF everything it forks from now on) and
 * waited for. It is not our child: its end comes from its pidfd (where
 * pidfds are missing, valgrind, from its start time looked up every
 * END_POLL_NS: the pid is then named by pid and start time), its exit
 * status from the kernel's exit record (with eBPF; without, it is unknown),
 * and its output since the crash is lost (its pipes died with the daemon).
 * A job whose process is gone ended while no daemon ran: it is remembered
 * as finished with an unknown status, so a client that waits for it learns
 * that rather than "no such job".
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/jobs/job.h"
#include "daemon/jobs/job_records.h"
#include "daemon/jobs/jobs.h"
#include "daemon/jobs/proc_tree.h"
#include "daemon/kernel/bpf_events.h"

#define END_POLL_NS (100 * NSEC_PER_MSEC)

static struct {
	struct loop *loop;
	char boot_id[BOOT_ID_LEN + 1];
	unsigned adopted, ended, forgotten;
} A;

static void no_timeout(struct loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
}

static struct job *job_of_record(const struct job_record *r)
{
	struct job *j = job_new(r->id, r->name, r->command, 0, false, no_timeout);

	if (!j)
		return NULL;
	j->adopted = true;
	j->recorded = true; /* its record is removed when it finishes */
	j->start_real_ns = r->start_real_ns;
	j->start_mono_ns = r->start_mono_ns;
	j->tree.pid = r->pid;
	j->tree.adopted = true;
	j->tree.starttime = r->starttime;
	return j;
}

/* The main process ended: how, the kernel's exit record says (if any). */
static void main_ended(struct job *j)
{
	int n;

	bpf_events_poll(); /* the exit record is written before the pidfd wakes */
	job_main_gone(j);
	if (j->kernel_exit)
		jobs_decode_status(j->kernel_status, &j->exit_code, &j->signal, &j->core);
	else
		j->status_unknown = true;
	if ((n = proc_tree_count(&j->tree)) >= 0)
		j->descendants = (uint32_t)n;
	log_info("adopted job %llu (pid %d) exited: %s", (unsigned long long)j->id, j->tree.pid,
		 j->status_unknown ? "status unknown (no eBPF exit record)" : "status from the kernel");
	j->state = ctld_JobState_JOB_EXITED;
	job_finished(j);
}

static void pidfd_readable(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)events;
	loop_fd_del(loop, fd);
	main_ended(ctx);
}

static void poll_for_end(struct loop *loop, void *ctx)
{
	struct job *j = ctx;
	uint64_t t;

	if (proc_starttime(j->tree.pid, &t) == 0 && t == j->tree.starttime)
		loop_timer_arm_in(loop, &j->end_poll, END_POLL_NS);
	else
		main_ended(j);
}

/* Its end: from the pidfd, or (none) from its start time, polled. */
static int watch_end(struct job *j)
{
	if (j->tree.pidfd >= 0)
		return loop_fd_add(A.loop, j->tree.pidfd, EPOLLIN, pidfd_readable, j);
	loop_timer_init(&j->end_poll, poll_for_end, j);
	loop_timer_arm_in(A.loop, &j->end_poll, END_POLL_NS);
	return 0;
}

static void adopt_running(const struct job_record *r, int pidfd)
{
	struct job *j = job_of_record(r);
	int n;

	if (!j || job_table_add(j)) {
		log_err("job %llu (pid %d): out of memory: not adopted", (unsigned long long)r->id,
			r->pid);
		if (j)
			job_free(j);
		if (pidfd >= 0)
			close(pidfd);
		return;
	}
	j->tree.pidfd = pidfd;
	n = proc_tree_adopt(&j->tree);
	j->descendants = n > 0 ? (uint32_t)n : 0;
	if (watch_end(j))
		log_err("job %llu: cannot watch its pidfd: its end will not be noticed",
			(unsigned long long)j->id);
	A.adopted++;
	log_info("adopted job %llu (pid %d, %s) of an earlier daemon instance, %u more "
		 "processes in its tree; its output since then is lost",
		 (unsigned long long)j->id, j->tree.pid, j->name, j->descendants);
}

/* Remembered as finished (status unknown), for clients that wait for it. */
static void ended_while_down(const struct job_record *r)
{
	struct job *j = job_of_record(r);

	A.ended++;
	log_info("job %llu (pid %d, %s) ended while no daemon was running: its status is lost",
		 (unsigned long long)r->id, r->pid, r->name);
	if (!j || job_table_add(j)) {
		if (j)
			job_free(j);
		job_record_remove(r->id);
		return;
	}
	job_table_forget_pid(j);
	j->tree.reaped = true;
	j->status_unknown = true;
	j->end_mono_ns = j->start_mono_ns;
	j->state = ctld_JobState_JOB_EXITED;
	job_finished(j);
}

static void visit_record(const struct job_record *r, uint64_t file_id, void *ctx)
{
	uint64_t ticks = 0;
	int pidfd;

	(void)ctx;
	/* handed over by an upgrade: the job is ours already, its record stays */
	if (r && job_by_id(r->id) && job_by_id(r->id)->tree.pid == r->pid)
		return;
	if (!r || strcmp(r->boot_id, A.boot_id) != 0 || job_by_id(r->id)) {
		A.forgotten++;
		log_info("job record %llu: %s: removed", (unsigned long long)file_id,
			 !r ? "not a valid record" : job_by_id(r->id) ? "a duplicate"
								   : "from an earlier boot");
		job_record_remove(file_id);
		return;
	}
	/* pidfd first: what is checked below is what the pidfd names (where
	 * there are no pidfds, pid and start time name it) */
	pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
	if ((pidfd >= 0 || errno == ENOSYS) && proc_starttime(r->pid, &ticks) == 0 &&
	    ticks == r->starttime) {
		adopt_running(r, pidfd);
		return;
	}
	if (pidfd >= 0)
		close(pidfd);
	ended_while_down(r);
}

void jobs_adopt_earlier(struct loop *loop)
{
	A.loop = loop;
	if (!job_records_enabled())
		return;
	if (boot_id_read(A.boot_id)) {
		log_warn("no boot id: the jobs of an earlier daemon instance are not adopted");
		return;
	}
	job_records_each(visit_record, NULL);
	if (A.adopted || A.ended || A.forgotten)
		log_info("earlier instance: %u jobs adopted, %u ended meanwhile, %u records dropped",
			 A.adopted, A.ended, A.forgotten);
}
