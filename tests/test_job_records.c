// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_job_records.c - the kernel's records about job processes, as the
 * job table takes them (the calls bpf_events' ops make, with the record
 * structs filled in here): forks and exits of descendants move the count
 * List shows, records that carry job 0 (before the daemon set the id) are
 * matched by root pid to the newest job, the main process's exit record is
 * kept for the cross-check, records of unknown jobs change nothing, and
 * after lost records the count is taken from the tree again. The reply
 * layer and the tree are fakes.
 */
// TEST_SRCS: user/daemon/jobs/job_table.c user/daemon/jobs/job_exit.c
// TEST_SRCS: user/daemon/jobs/job_clients.c user/daemon/jobs/job_output.c
// TEST_SRCS: user/daemon/core/idmap.c user/daemon/core/loop.c user/daemon/core/outq.c
// TEST_SRCS: user/daemon/core/log.c user/common/util.c user/daemon/jobs/job_records.c
// TEST_SRCS: user/daemon/core/log.c user/common/util.c user/daemon/core/outbudget.c
// TEST_SRCS: user/daemon/jobs/job_cgroup.c user/daemon/kernel/cgroup.c
// TEST_SRCS: user/daemon/kernel/cgroup_find.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/clients/reply.h"
#include "daemon/core/log.h"
#include "daemon/jobs/job.h"
#include "daemon/jobs/jobs.h"
#include "daemon/jobs/readiness.h"
#include "daemon/jobs/spawner.h"
#include "daemon/kernel/bpf_events.h"

static struct {
	struct loop *loop;
	int tree_count; /* what proc_tree_count() answers */
	int polls;
	ctld_Event event;
} T;

/* ------------------------------------------------------------ fakes */

ctld_Event *event_begin(pb_size_t which)
{
	memset(&T.event, 0, sizeof(T.event));
	T.event.which_kind = which;
	return &T.event;
}

int event_send(uint64_t session)
{
	(void)session;
	return 0;
}

int event_encode(struct frame *f)
{
	*f = (struct frame){ .data = (const uint8_t *)"", .len = 0 };
	return 0;
}

int frame_send(uint64_t session, const struct frame *f)
{
	(void)session;
	(void)f;
	return 0;
}

void reply_error(struct request_ctx *ctx, ctld_ErrorCode code, int sys_errno, const char *fmt, ...)
{
	(void)ctx;
	(void)code;
	(void)sys_errno;
	(void)fmt;
}

struct pending_reply reply_defer(struct request_ctx *ctx)
{
	return (struct pending_reply){ .session = ctx->session, .id = ctx->id };
}

void pending_reply_ok(struct pending_reply *p)
{
	(void)p;
}

void pending_reply_error(struct pending_reply *p, ctld_ErrorCode code, int sys_errno,
			 const char *fmt, ...)
{
	(void)p;
	(void)code;
	(void)sys_errno;
	(void)fmt;
}

bool reply_pending_full(uint64_t session)
{
	(void)session;
	return false;
}

int proc_starttime(pid_t pid, uint64_t *ticks)
{
	(void)pid;
	(void)ticks;
	return -ESRCH; /* no state directory here: no record is ever written */
}

int proc_tree_count(const struct proc_tree_root *root)
{
	(void)root;
	return T.tree_count;
}

void proc_tree_signal(const struct proc_tree_root *root, int sig)
{
	(void)root;
	(void)sig;
}

void bpf_events_poll(void)
{
	T.polls++;
}

bool bpf_events_enabled(void)
{
	return true;
}

bool readiness_pending(const struct job *j)
{
	(void)j;
	return false;
}

void readiness_job_ended(struct job *j)
{
	(void)j;
}

void readiness_free(struct job *j)
{
	(void)j;
}

pid_t spawner_job_parent(void)
{
	return getpid();
}

void spawner_reaped(pid_t pid)
{
	(void)pid;
}

/* ------------------------------------------------------------ helpers */

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	log_set_level(LOG_ERR);
	if (loop_new(&T.loop))
		return -1;
	job_table_init(T.loop, 16);
	job_output_init(T.loop, 0, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	job_table_shutdown();
	loop_free(T.loop);
	return 0;
}

static void no_timeout(struct loop *loop, void *ctx)
{
	(void)loop;
	(void)ctx;
}

/* A running job with main pid `pid` (no process behind it). */
static struct job *add_job(pid_t pid)
{
	static uint64_t next_id = 1;
	struct job *j = job_new(next_id++, "t", "t", 1, false, no_timeout);

	assert_non_null(j);
	j->tree.pid = pid;
	assert_int_equal(job_table_add(j), 0);
	return j;
}

static void fork_of(uint64_t job, pid_t root, pid_t child)
{
	struct proc_event ev = { .job = job, .root_pid = root, .pid = child, .ppid = root };

	jobs_kernel_fork(&ev);
}

static void exit_of(uint64_t job, pid_t root, pid_t pid, int status)
{
	struct proc_event ev = { .job = job, .root_pid = root, .pid = pid, .status = status,
				 .time_ns = 777 };

	jobs_kernel_exit(&ev);
}

/* ------------------------------------------------------------ tests */

/* Forks and exits of descendants move the count; never below zero. */
static void records_count_descendants(void **state)
{
	struct job *j = add_job(100);

	(void)state;
	fork_of(j->id, 100, 101);
	fork_of(j->id, 100, 102);
	assert_int_equal(j->descendants, 2);
	exit_of(j->id, 100, 101, 0);
	exit_of(j->id, 100, 102, 0);
	exit_of(j->id, 100, 103, 0); /* its fork record was lost */
	assert_int_equal(j->descendants, 0);
	fork_of(j->id, 100, 100); /* the main process itself is not a descendant */
	assert_int_equal(j->descendants, 0);
}

/* Job 0: the process forked before the daemon wrote the job id; the root
 * pid names the job, the newest with it (an older one is long gone). */
static void records_job_zero_by_root_pid(void **state)
{
	struct job *old = add_job(200), *young;

	(void)state;
	old->state = ctld_JobState_JOB_EXITED;
	old->tree.reaped = true;
	job_table_forget_pid(old);
	young = add_job(200); /* the pid was recycled */
	fork_of(0, 200, 201);
	assert_int_equal(young->descendants, 1);
	assert_int_equal(old->descendants, 0);
	fork_of(0, 999, 1000); /* nobody's */
	fork_of(12345, 200, 202); /* a job id that is not (or no longer) there */
	assert_int_equal(young->descendants, 1);
}

/* The main process's exit: time and status kept, once; a second record
 * (there should be none) does not overwrite the first. */
static void records_main_exit_kept(void **state)
{
	struct job *j = add_job(300);

	(void)state;
	exit_of(j->id, 300, 300, 3 << 8);
	assert_true(j->kernel_exit);
	assert_int_equal(j->kernel_status, 3 << 8);
	assert_int_equal(j->kernel_exit_ns, 777);
	exit_of(j->id, 300, 300, 9);
	assert_int_equal(j->kernel_status, 3 << 8);
}

/* Lost records: the count comes from the tree again, for every job. */
static void records_recount_after_loss(void **state)
{
	struct job *a = add_job(400), *b = add_job(500);

	(void)state;
	fork_of(a->id, 400, 401);
	T.tree_count = 7;
	jobs_recount_descendants();
	assert_int_equal(a->descendants, 7);
	assert_int_equal(b->descendants, 7);
	T.tree_count = -EOPNOTSUPP; /* cannot count: keep what we had */
	jobs_recount_descendants();
	assert_int_equal(a->descendants, 7);
}

/* The status decoding the cross-check relies on. */
static void records_decode_status(void **state)
{
	int code, sig;
	bool core;

	(void)state;
	jobs_decode_status(3 << 8, &code, &sig, &core);
	assert_int_equal(code, 3);
	assert_int_equal(sig, 0);
	assert_false(core);
	jobs_decode_status(9, &code, &sig, &core);
	assert_int_equal(code, 0);
	assert_int_equal(sig, 9);
	jobs_decode_status(11 | 0x80, &code, &sig, &core);
	assert_int_equal(sig, 11);
	assert_true(core);
}

#define TC(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TC(records_count_descendants), TC(records_job_zero_by_root_pid),
		TC(records_main_exit_kept),    TC(records_recount_after_loss),
		TC(records_decode_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
