// SPDX-License-Identifier: BSD-2-Clause
/*
 * job_clients.c - who is attached to a job, and what they are sent: the
 * job's Launched, Output (only to those that asked for it) and its one
 * terminal event, ExecFailed or Exited. Attachments end with the terminal
 * event; a client attaching to a finished job gets it replayed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/clients/reply.h"
#include "daemon/jobs/job.h"

int job_attach(struct job *j, uint64_t session, bool output)
{
	struct attached *a = job_find_client(j, session), *grown;

	if (a) {
		a->output = output;
		return 0;
	}
	grown = realloc(j->clients, (j->nclients + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	j->clients = grown;
	j->clients[j->nclients++] = (struct attached){ .session = session, .output = output };
	return 0;
}

struct attached *job_find_client(struct job *j, uint64_t session)
{
	for (size_t i = 0; i < j->nclients; i++)
		if (j->clients[i].session == session)
			return &j->clients[i];
	return NULL;
}

void job_detach_at(struct job *j, size_t i)
{
	j->clients[i] = j->clients[--j->nclients];
}

void job_detach_all(struct job *j)
{
	free(j->clients);
	j->clients = NULL;
	j->nclients = 0;
}

void job_broadcast(struct job *j, bool is_output, int stream, size_t payload)
{
	struct frame f;

	if (!j->nclients || event_encode(&f))
		return;
	f.droppable = is_output;
	f.job = j->id;
	f.stream = stream;
	f.payload = payload;
	for (size_t i = 0; i < j->nclients;) {
		if (is_output && !j->clients[i].output) {
			i++;
			continue;
		}
		if (frame_send(j->clients[i].session, &f) == -ENOENT) {
			job_detach_at(j, i);
			continue;
		}
		i++;
	}
}

void job_send_launched(struct job *j)
{
	ctld_Launched *l = &event_begin(ctld_Event_launched_tag)->kind.launched;

	l->job = j->id;
	l->pid = (uint32_t)j->tree.pid;
	l->time_ns = j->start_real_ns;
	job_broadcast(j, false, 0, 0);
}

static void fill_exited(const struct job *j, ctld_Exited *e)
{
	uint64_t end = j->kernel_exit && !j->tree_waited ? j->kernel_exit_ns : j->end_mono_ns;

	e->job = j->id;
	e->pid = (uint32_t)j->tree.pid;
	e->exit_code = j->exit_code;
	e->signal = j->signal;
	e->core_dumped = j->core;
	e->user_us = (uint64_t)j->ru.ru_utime.tv_sec * 1000000 + (uint64_t)j->ru.ru_utime.tv_usec;
	e->sys_us = (uint64_t)j->ru.ru_stime.tv_sec * 1000000 + (uint64_t)j->ru.ru_stime.tv_usec;
	e->max_rss_kb = (uint64_t)j->ru.ru_maxrss;
	e->wall_ns = end > j->start_mono_ns ? end - j->start_mono_ns : 0;
	e->timed_out = j->timed_out;
	e->escalated = j->escalated;
	e->descendants = j->descendants;
	e->pipes_held = j->pipes_held;
	e->adopted = j->adopted;
	e->status_unknown = j->status_unknown;
	e->time_ns = end ? monotonic_to_realtime_ns(end) : 0;
}

void job_send_terminal(struct job *j, uint64_t session)
{
	if (j->state == ctld_JobState_JOB_EXEC_FAILED) {
		ctld_ExecFailed *ef = &event_begin(ctld_Event_exec_failed_tag)->kind.exec_failed;

		ef->job = j->id;
		ef->sys_errno = j->exec_errno;
		ef->time_ns = j->start_real_ns;
		copy_str(ef->text, sizeof(ef->text), j->exec_text);
	} else {
		fill_exited(j, &event_begin(ctld_Event_exited_tag)->kind.exited);
	}
	if (session)
		event_send(session);
	else
		job_broadcast(j, false, 0, 0);
}
