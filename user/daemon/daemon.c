// SPDX-License-Identifier: BSD-2-Clause
/*
 * daemon.c - see daemon.h.
 */
#include <stdbool.h>

#include "daemon/clients/session.h"
#include "daemon/core/outbudget.h"
#include "daemon/daemon.h"
#include "daemon/dispatch.h"
#include "daemon/files/file_transfers.h"
#include "daemon/jobs/jobs.h"
#include "daemon/jobs/spawner.h"
#include "daemon/kernel/bpf_events.h"
#include "daemon/kernel/cgroup.h"
#include "daemon/kernel/netns.h"
#include "daemon/options.h"
#include "daemon/watch/file_follow.h"
#include "daemon/watch/port_monitor.h"
#include "daemon/watch/watch_file.h"
#include "daemon/watch/watch_port.h"
#include "daemon/watch/watch_registry.h"

/* Where the kernel's records go: the lower module reports upward through
 * this table, so bpf_events.c knows nothing of jobs or watches. */
static void on_process_exited(const struct proc_event *ev, void *ctx)
{
	(void)ctx;
	jobs_kernel_exit(ev);
}

static void on_process_forked(const struct proc_event *ev, void *ctx)
{
	(void)ctx;
	jobs_kernel_fork(ev);
}

static void on_listen_started(const struct tcp_listener *l, void *ctx)
{
	(void)ctx;
	port_monitor_kernel_listen(l);
}

static void on_listen_stopped(const struct tcp_listener *l, void *ctx)
{
	(void)ctx;
	port_monitor_kernel_close(l);
}

static void on_listen_done(const struct tcp_listener *l, int err, void *ctx)
{
	(void)ctx;
	port_monitor_kernel_listen_done(l, err);
}

/* Lost records: re-read what they were about, so no client waits forever
 * for a LISTEN that was dropped and no descendant count stays wrong. */
static void on_records_lost(uint64_t lost_total, void *ctx)
{
	(void)lost_total;
	(void)ctx;
	port_monitor_resync();
	jobs_recount_descendants();
}

static const struct bpf_events_ops kernel_ops = {
	.process_exited = on_process_exited,
	.process_forked = on_process_forked,
	.listen_started = on_listen_started,
	.listen_stopped = on_listen_stopped,
	.listen_done = on_listen_done,
	.records_lost = on_records_lost,
};

static bool jobs_stopped;

int daemon_init(struct loop *loop, const struct options *o)
{
	struct bpf_events_config bpf = o->bpf;
	int err;

	dispatch_init(o->session.max_frame);
	outbudget_init(loop, o->output_budget);
	cgroups_init(o->cgroup_root);
	if ((err = session_init(loop, &o->session, dispatch_request, dispatch_session_gone)) ||
	    (err = jobs_init(loop, &o->jobs)) || (err = file_follow_init(loop)))
		return err;
	watch_registry_init(o->max_watches);
	port_monitor_init(loop, o->poll_interval_ms);
	watch_port_init(loop);
	watch_file_init(loop);
	/* after jobs_init: its spawner probe child is nobody's business */
	bpf.job_parent = spawner_job_parent();
	bpf_events_init(loop, &bpf, &kernel_ops);
	/* an upgrade's jobs first: their records are not an earlier instance's */
	jobs_restore_handed_over(loop);
	jobs_adopt_earlier(loop);
	return 0;
}

void daemon_stop_jobs(void)
{
	if (jobs_stopped)
		return;
	jobs_stopped = true;
	jobs_shutdown();
}

void daemon_shutdown(void)
{
	daemon_stop_jobs();
	session_shutdown();
	transfers_shutdown(); /* after the sessions: no chunk can come any more */
	watch_registry_shutdown();
	port_monitor_shutdown();
	file_follow_shutdown();
	netns_shutdown();
	bpf_events_shutdown();
	spawner_stop();
	cgroups_shutdown(); /* after the jobs: their groups are empty by then */
	outbudget_shutdown();
}

