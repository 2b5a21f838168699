// SPDX-License-Identifier: BSD-2-Clause
/*
 * job_handover.c - jobs across an upgrade in place (daemon/upgrade.h): the
 * old image writes every job it started into the handover (handover.h),
 * with the descriptors that make it a job: its pidfd, the read ends of its
 * output pipes, the write end of its stdin, and its recent output (the
 * backlog); the new image, the same process, makes the same jobs again.
 *
 * What makes this simple is that the pid does not change: the jobs stay
 * our children, so waitid, their rusage and their exit status need nothing
 * new, and the output the jobs write meanwhile waits in their pipes. What
 * does not survive is the kernel programs (they are loaded again, and each
 * running job's tree is put back into `tracked` from /proc, as for an
 * adopted job) and the client connections (clients reconnect and attach
 * again; Output.offset tells them where they were).
 *
 * Jobs adopted from an earlier instance's records are not handed over:
 * they are not our children, and the new image adopts them again from
 * their records, as after a crash. A job with kill_on_disconnect loses its
 * owner's connection at the upgrade: the first client that attaches to it
 * within RECLAIM_NS becomes its owner; if none does, it is killed, as if
 * its owner had gone.
 *
 * Some states are not worth carrying and briefly hold the upgrade back
 * (jobs_handover_blocker): readiness still undecided, stdin bytes not yet
 * written, a job whose main process ended while its tree goes on.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/handover.h"
#include "daemon/core/log.h"
#include "daemon/jobs/job.h"
#include "daemon/jobs/jobs.h"
#include "daemon/jobs/proc_tree.h"
#include "daemon/jobs/readiness.h"
#include "daemon/kernel/cgroup.h"

#define JOB_RECORD_VERSION 1
#define RECLAIM_NS (10 * NSEC_PER_SEC)

/* One job, as the next image makes it again. Only this program reads it
 * (the same build, or a newer one that knows version 1's layout). */
struct job_state {
	uint64_t id;
	char name[sizeof(((struct job *)0)->name)];
	char command[sizeof(((struct job *)0)->command)];
	int32_t state;
	uint8_t kill_on_disconnect, wait_tree, follow_tree, timed_out, escalated, recorded;
	uint8_t adopted, status_unknown, core, kernel_exit, pipes_held, had_stdin;
	uint8_t stdin_eof_requested, had_cgroup, tree_cgroup, tree_reaped;
	int32_t exec_errno;
	char exec_text[sizeof(((struct job *)0)->exec_text)];
	uint64_t start_mono_ns, start_real_ns, end_mono_ns;
	uint64_t timeout_at_ns, escalate_at_ns; /* CLOCK_MONOTONIC; 0: not armed */
	int32_t pid, pidfd;
	uint64_t starttime;
	uint32_t descendants, max_procs;
	int32_t exit_code, signal, kernel_status;
	uint64_t kernel_exit_ns, procs_peak;
	struct rusage ru;
	int32_t out_fd[2], stdin_fd;
	uint64_t out_offset[2], discarded_bytes, bl_dropped[2], stdin_written;
	int32_t ready_state;
	uint64_t time_to_ready_ns;
	uint32_t ready_final_len; /* the Ready/NotReady frame follows the struct */
};

/* job_state is written by hand from struct job, so a field added there is
 * easily forgotten here. A new size stops the build until someone has
 * decided whether the field must survive an upgrade (fill_state and
 * set_fields) and then updated the number. x86-64 only: the layout
 * differs elsewhere, and one architecture is enough to catch the change. */
#if defined(__x86_64__)
_Static_assert(sizeof(struct job) == 1376,
	       "struct job changed: carry the new field in job_state (or decide it needs none), "
	       "then update this size");
#endif

/* A chunk of backlog; its bytes follow. */
struct backlog_state {
	uint64_t job, offset;
	uint32_t stream, len;
};

static struct {
	struct loop *loop;
	bool handing_over;
	unsigned restored;
} H;

/* ------------------------------------------------------------ old image */

const char *jobs_handover_blocker(char *buf, size_t len)
{
	for (struct job *j = job_first(); j; j = j->next) {
		const char *why = NULL;

		if (j->state != ctld_JobState_JOB_RUNNING || j->adopted)
			continue;
		if (readiness_pending(j))
			why = "waits for its readiness conditions";
		else if (job_stdin_busy(j))
			why = "has stdin bytes not yet written";
		else if (j->tree.reaped)
			why = "ended, and its tree is still running";
		if (why) {
			snprintf(buf, len, "job %llu %s", (unsigned long long)j->id, why);
			return buf;
		}
	}
	return NULL;
}

void jobs_handover_prepare(bool on)
{
	H.handing_over = on;
}

bool jobs_handing_over(void)
{
	return H.handing_over;
}

static uint64_t deadline_of(const struct loop_timer *t)
{
	return loop_timer_armed(t) ? t->deadline_ns : 0;
}

static void fill_state(const struct job *j, struct job_state *s)
{
	struct readiness_export re;

	*s = (struct job_state){ .id = j->id, .state = j->state,
				 .kill_on_disconnect = j->kill_on_disconnect,
				 .wait_tree = j->wait_tree, .follow_tree = j->follow_tree,
				 .timed_out = j->timed_out, .escalated = j->escalated,
				 .recorded = j->recorded, .adopted = j->adopted,
				 .status_unknown = j->status_unknown, .core = j->core,
				 .kernel_exit = j->kernel_exit, .pipes_held = j->pipes_held,
				 .had_stdin = j->had_stdin,
				 .stdin_eof_requested = j->stdin_eof_requested,
				 .had_cgroup = j->had_cgroup, .tree_cgroup = j->tree.cgroup,
				 .tree_reaped = j->tree.reaped, .exec_errno = j->exec_errno,
				 .start_mono_ns = j->start_mono_ns, .start_real_ns = j->start_real_ns,
				 .end_mono_ns = j->end_mono_ns,
				 .timeout_at_ns = deadline_of(&j->timeout),
				 .escalate_at_ns = deadline_of(&j->escalate), .pid = j->tree.pid,
				 .pidfd = j->tree.pidfd, .starttime = j->tree.starttime,
				 .descendants = j->descendants, .max_procs = j->max_procs,
				 .exit_code = j->exit_code, .signal = j->signal,
				 .kernel_status = j->kernel_status,
				 .kernel_exit_ns = j->kernel_exit_ns, .procs_peak = j->procs_peak,
				 .ru = j->ru, .out_fd = { j->out_fd[0], j->out_fd[1] },
				 .stdin_fd = j->stdin_fd,
				 .out_offset = { j->out_offset[0], j->out_offset[1] },
				 .discarded_bytes = j->discarded_bytes,
				 .bl_dropped = { j->bl_dropped[0], j->bl_dropped[1] },
				 .stdin_written = j->stdin_written };
	copy_str(s->name, sizeof(s->name), j->name);
	copy_str(s->command, sizeof(s->command), j->command);
	copy_str(s->exec_text, sizeof(s->exec_text), j->exec_text);
	readiness_export(j, &re);
	s->ready_state = re.state;
	s->time_to_ready_ns = re.time_to_ready_ns;
	s->ready_final_len = (uint32_t)re.final_len;
}

static int put_job(struct handover *h, const struct job *j)
{
	struct readiness_export re;
	struct job_state *s;
	int err;

	readiness_export(j, &re);
	if (!(s = malloc(sizeof(*s) + re.final_len)))
		return -ENOMEM;
	fill_state(j, s);
	if (re.final_len)
		memcpy(s + 1, re.final, re.final_len);
	err = handover_put(h, HANDOVER_JOB, JOB_RECORD_VERSION, s, sizeof(*s) + re.final_len);
	free(s);
	return err;
}

struct backlog_ctx {
	struct handover *h;
	int err;
};

static void put_chunk(const struct job *j, int stream, uint64_t offset, const uint8_t *data,
		      size_t len, void *ctx)
{
	struct backlog_ctx *b = ctx;
	struct backlog_state bs = { .job = j->id, .offset = offset, .stream = (uint32_t)stream,
				    .len = (uint32_t)len };
	uint8_t *rec;

	if (b->err)
		return;
	if (!(rec = malloc(sizeof(bs) + len))) {
		b->err = -ENOMEM;
		return;
	}
	memcpy(rec, &bs, sizeof(bs));
	memcpy(rec + sizeof(bs), data, len);
	b->err = handover_put(b->h, HANDOVER_BACKLOG, 1, rec, sizeof(bs) + len);
	free(rec);
}

static int keep_fds(struct handover *h, const struct job *j)
{
	int err;

	if ((err = handover_keep_fd(h, j->tree.pidfd)) || (err = handover_keep_fd(h, j->out_fd[0])) ||
	    (err = handover_keep_fd(h, j->out_fd[1])))
		return err;
	return handover_keep_fd(h, j->stdin_fd);
}

int jobs_handover(struct handover *h)
{
	const char *dir = cgroups_dir();
	struct backlog_ctx b = { .h = h };
	int err;

	if (dir && (err = handover_put(h, HANDOVER_CGROUP, 1, dir, strlen(dir))))
		return err;
	for (struct job *j = job_first(); j; j = j->next) {
		/* adopted running jobs are adopted again from their records */
		if (j->adopted && j->state == ctld_JobState_JOB_RUNNING)
			continue;
		if ((err = put_job(h, j)) || (err = keep_fds(h, j)))
			return err;
		job_backlog_each(j, put_chunk, &b);
		if (b.err)
			return b.err;
	}
	return 0;
}

/* ------------------------------------------------------------ new image */

unsigned jobs_restored(void)
{
	return H.restored;
}

static void reclaim_expired(struct loop *loop, void *ctx)
{
	struct job *j = ctx;

	(void)loop;
	if (j->owner || j->state != ctld_JobState_JOB_RUNNING)
		return;
	log_info("job %llu: no client came back for it after the upgrade (kill-on-disconnect), "
		 "killing its tree", (unsigned long long)j->id);
	job_signal_tree(j, SIGKILL);
}

void job_reclaimed(struct job *j, uint64_t session)
{
	if (!loop_timer_armed(&j->reclaim) || j->owner)
		return;
	loop_timer_disarm(H.loop, &j->reclaim);
	j->owner = session;
	log_info("job %llu: session %llu is its owner again after the upgrade",
		 (unsigned long long)j->id, (unsigned long long)session);
}

static bool claim(int fd)
{
	return fd < 0 || handover_claim_fd(fd);
}

static void set_fields(struct job *j, const struct job_state *s)
{
	j->state = s->state;
	j->wait_tree = s->wait_tree, j->follow_tree = s->follow_tree;
	j->timed_out = s->timed_out, j->escalated = s->escalated;
	j->recorded = s->recorded, j->adopted = s->adopted;
	j->status_unknown = s->status_unknown, j->core = s->core;
	j->kernel_exit = s->kernel_exit, j->pipes_held = s->pipes_held;
	j->had_stdin = s->had_stdin, j->stdin_eof_requested = s->stdin_eof_requested;
	j->had_cgroup = s->had_cgroup, j->exec_errno = s->exec_errno;
	copy_str(j->exec_text, sizeof(j->exec_text), s->exec_text);
	j->start_mono_ns = s->start_mono_ns, j->start_real_ns = s->start_real_ns;
	j->end_mono_ns = s->end_mono_ns;
	j->tree.pid = s->pid, j->tree.pidfd = s->pidfd, j->tree.starttime = s->starttime;
	j->tree.cgroup = s->tree_cgroup, j->tree.reaped = s->tree_reaped;
	j->tree.adopted = s->adopted;
	j->descendants = s->descendants, j->max_procs = s->max_procs;
	j->exit_code = s->exit_code, j->signal = s->signal;
	j->kernel_status = s->kernel_status, j->kernel_exit_ns = s->kernel_exit_ns;
	j->procs_peak = s->procs_peak, j->ru = s->ru;
	j->out_fd[0] = s->out_fd[0], j->out_fd[1] = s->out_fd[1], j->stdin_fd = s->stdin_fd;
	j->out_offset[0] = s->out_offset[0], j->out_offset[1] = s->out_offset[1];
	j->discarded_bytes = s->discarded_bytes;
	j->bl_dropped[0] = s->bl_dropped[0], j->bl_dropped[1] = s->bl_dropped[1];
	j->stdin_written = s->stdin_written;
}

/* A running job goes on where the old image left it. */
static void resume(struct job *j, const struct job_state *s)
{
	int n;

	job_output_start(j);
	if (s->timeout_at_ns)
		loop_timer_arm(H.loop, &j->timeout, s->timeout_at_ns);
	if (s->escalate_at_ns)
		loop_timer_arm(H.loop, &j->escalate, s->escalate_at_ns);
	if (j->tree.cgroup && cgroup_inherit(j->id))
		j->tree.cgroup = false;
	/* the kernel programs are new: their tracked map starts empty */
	if ((n = proc_tree_adopt(&j->tree)) >= 0)
		j->descendants = (uint32_t)n;
	if (j->kill_on_disconnect) {
		loop_timer_init(&j->reclaim, reclaim_expired, j);
		loop_timer_arm_in(H.loop, &j->reclaim, RECLAIM_NS);
	}
}

static void restore_job(const struct job_state *s, const uint8_t *final)
{
	struct readiness_export re = { .state = s->ready_state,
				       .time_to_ready_ns = s->time_to_ready_ns,
				       .final = final, .final_len = s->ready_final_len };
	struct job *j;

	if (!claim(s->pidfd) || !claim(s->out_fd[0]) || !claim(s->out_fd[1]) ||
	    !claim(s->stdin_fd)) {
		log_err("upgrade: job %llu names descriptors that were not handed over: not "
			"restored", (unsigned long long)s->id);
		return;
	}
	j = jobs_new_job(s->id, s->name, s->command, 0, s->kill_on_disconnect);
	if (j)
		set_fields(j, s);
	if (!j || readiness_import(j, &re) || job_table_add(j)) {
		log_err("upgrade: job %llu: out of memory: not restored", (unsigned long long)s->id);
		if (j)
			job_free(j); /* closes what set_fields gave it */
		return;
	}
	H.restored++;
	if (s->state == ctld_JobState_JOB_RUNNING) {
		resume(j, s);
		return;
	}
	job_table_forget_pid(j);
	job_finished(j);
}

static void restore_backlog(const uint8_t *data, size_t len)
{
	struct backlog_state bs;
	struct job *j;

	if (len < sizeof(bs))
		return;
	memcpy(&bs, data, sizeof(bs));
	if (bs.len != len - sizeof(bs) || bs.stream > 1 || !(j = job_by_id(bs.job)))
		return;
	job_backlog_import(j, (int)bs.stream, bs.offset, data + sizeof(bs), bs.len);
}

void jobs_restore_handed_over(struct loop *loop)
{
	const void *data;
	uint16_t version;
	size_t it = 0, len, skipped = 0;

	H.loop = loop;
	if (!handover_loaded())
		return;
	if (handover_next(&it, HANDOVER_CGROUP, &version, &data, &len) && version == 1 &&
	    len < 4096) {
		char dir[4096];

		memcpy(dir, data, len);
		dir[len] = '\0';
		if (cgroups_inherit_dir(dir))
			log_warn("upgrade: the job cgroups in %s are not usable", dir);
	}
	for (it = 0; handover_next(&it, HANDOVER_JOB, &version, &data, &len);) {
		struct job_state s;

		if (version != JOB_RECORD_VERSION || len < sizeof(s)) {
			skipped++;
			continue;
		}
		memcpy(&s, data, sizeof(s));
		if (s.ready_final_len != len - sizeof(s) || job_by_id(s.id)) {
			skipped++;
			continue;
		}
		restore_job(&s, (const uint8_t *)data + sizeof(s));
	}
	for (it = 0; handover_next(&it, HANDOVER_BACKLOG, &version, &data, &len);)
		if (version == 1)
			restore_backlog(data, len);
	log_info("upgrade: %u job(s) handed over%s", H.restored,
		 skipped ? ", some records unreadable (their jobs are adopted from job records)"
			 : "");
}
