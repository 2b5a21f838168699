// SPDX-License-Identifier: BSD-2-Clause
/*
 * job_table.c - every job the daemon remembers: running ones, and the last
 * keep_finished finished ones (for wait, attach and list). Looked up by id,
 * and by main pid until that pid is reaped (after which it may be reused).
 * A job that runs for RECORD_AFTER_NS gets a record in the state directory
 * (job_records.h), removed when it finishes, so that a daemon started after
 * a crash can adopt it. Shorter jobs never cost a file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/idmap.h"
#include "daemon/core/log.h"
#include "daemon/jobs/job.h"
#include "daemon/jobs/job_records.h"
#include "daemon/jobs/readiness.h"

#define RECORD_AFTER_NS (100 * NSEC_PER_MSEC)

static struct {
	struct loop *loop;
	char boot_id[BOOT_ID_LEN + 1]; /* empty: records are not written */
	uint32_t keep_finished;
	struct idmap by_id;
	struct idmap by_pid; /* unreaped main pids -> job */
	struct job *first, *last;
	unsigned running, finished;
	uint64_t started;
} T;

void job_table_init(struct loop *loop, uint32_t keep_finished)
{
	memset(&T, 0, sizeof(T));
	T.loop = loop;
	T.keep_finished = keep_finished;
	if (job_records_enabled() && boot_id_read(T.boot_id))
		log_warn("no boot id: jobs get no records, a daemon after a crash cannot adopt them");
	idmap_init(&T.by_id);
	idmap_init(&T.by_pid);
}

unsigned job_table_running(void)
{
	return T.running;
}

uint64_t job_table_started(void)
{
	return T.started;
}

static void record_due(struct loop *loop, void *ctx)
{
	struct job *j = ctx;
	struct job_record r = { .id = j->id, .pid = j->tree.pid,
				.start_real_ns = j->start_real_ns, .start_mono_ns = j->start_mono_ns };
	int err;

	(void)loop;
	if (j->state != ctld_JobState_JOB_RUNNING || j->tree.reaped ||
	    proc_starttime(j->tree.pid, &r.starttime))
		return;
	copy_str(r.boot_id, sizeof(r.boot_id), T.boot_id);
	copy_str(r.name, sizeof(r.name), j->name);
	copy_str(r.command, sizeof(r.command), j->command);
	if ((err = job_record_save(&r)))
		log_warn("job %llu: cannot write its record: %s (a daemon after a crash cannot "
			 "adopt it)", (unsigned long long)j->id, strerror(-err));
	else
		j->recorded = true;
}

struct job *job_new(uint64_t id, const char *name, const char *command, uint64_t owner,
		    bool kill_on_disconnect, loop_timer_fn on_timeout)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->id = id;
	j->tree = (struct proc_tree_root){ .job = j->id, .pid = -1, .pidfd = -1 };
	j->out_fd[0] = j->out_fd[1] = j->stdin_fd = -1;
	j->state = ctld_JobState_JOB_RUNNING;
	j->owner = owner;
	j->kill_on_disconnect = kill_on_disconnect;
	copy_str(j->name, sizeof(j->name), name);
	copy_str(j->command, sizeof(j->command), command);
	outq_init(&j->stdin_q);
	loop_timer_init(&j->timeout, on_timeout, j);
	loop_timer_init(&j->record_timer, record_due, j);
	return j;
}

int job_table_add(struct job *j)
{
	if (idmap_put(&T.by_id, j->id, j))
		return -ENOMEM;
	if (idmap_put(&T.by_pid, (uint64_t)j->tree.pid, j)) {
		idmap_del(&T.by_id, j->id);
		return -ENOMEM;
	}
	j->prev = T.last;
	if (T.last)
		T.last->next = j;
	else
		T.first = j;
	T.last = j;
	T.running++;
	T.started++;
	if (T.boot_id[0] && !j->recorded)
		loop_timer_arm_in(T.loop, &j->record_timer, RECORD_AFTER_NS);
	return 0;
}

static void unlink_job(struct job *j)
{
	if (!idmap_get(&T.by_id, j->id))
		return; /* never added */
	if (j->prev)
		j->prev->next = j->next;
	else
		T.first = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		T.last = j->prev;
	idmap_del(&T.by_id, j->id);
	if (!j->tree.reaped)
		idmap_del(&T.by_pid, (uint64_t)j->tree.pid);
}

void job_free(struct job *j)
{
	unlink_job(j);
	readiness_free(j);
	job_output_close(j);
	if (j->tree.pidfd >= 0 && j->adopted)
		loop_fd_del(T.loop, j->tree.pidfd); /* job_adopt.c watches it */
	if (j->tree.pidfd >= 0)
		close(j->tree.pidfd);
	loop_timer_disarm(T.loop, &j->timeout);
	loop_timer_disarm(T.loop, &j->escalate);
	loop_timer_disarm(T.loop, &j->record_timer);
	loop_timer_disarm(T.loop, &j->end_poll);
	loop_timer_disarm(T.loop, &j->reclaim);
	job_detach_all(j);
	job_cgroup_release(j, true);
	free(j);
}

struct job *job_by_id(uint64_t id)
{
	return idmap_get(&T.by_id, id);
}

struct job *job_by_pid(pid_t pid)
{
	return idmap_get(&T.by_pid, (uint64_t)pid);
}

struct job *job_by_root_pid(pid_t root_pid)
{
	for (struct job *j = T.last; j; j = j->prev)
		if (j->tree.pid == root_pid)
			return j;
	return NULL;
}

void job_table_forget_pid(struct job *j)
{
	idmap_del(&T.by_pid, (uint64_t)j->tree.pid);
}

struct job *job_first(void)
{
	return T.first;
}

static void forget_record(struct job *j)
{
	loop_timer_disarm(T.loop, &j->record_timer);
	if (j->recorded)
		job_record_remove(j->id);
	j->recorded = false;
}

void job_table_finished(struct job *j)
{
	loop_timer_disarm(T.loop, &j->timeout);
	forget_record(j); /* its terminal event is out: nothing to adopt */
	if (j->counted_finished) {
		log_err("bug: job %llu finished twice", (unsigned long long)j->id);
		return;
	}
	j->counted_finished = true;
	T.running--;
	T.finished++;
	for (struct job *k = T.first; k && T.finished > T.keep_finished;) {
		struct job *next = k->next;

		if (k->state != ctld_JobState_JOB_RUNNING && k->tree.reaped) {
			job_free(k);
			T.finished--;
		}
		k = next;
	}
}

void job_table_shutdown(void)
{
	/* A clean stop has killed every tree: no record must outlive it. */
	while (T.first) {
		forget_record(T.first);
		job_free(T.first);
	}
	idmap_free(&T.by_id);
	idmap_free(&T.by_pid);
}
