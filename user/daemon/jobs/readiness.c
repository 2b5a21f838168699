// SPDX-License-Identifier: BSD-2-Clause
/*
 * readiness.c - a job's readiness: its conditions, when they became true,
 * and the one Ready or NotReady that ends it (see readiness.h).
 *
 * Times are CLOCK_MONOTONIC inside (the kernel's LISTEN transition, the
 * read of the matching output, the inotify event) and reported as both
 * CLOCK_REALTIME and "after exec". What follows a decision (killing the
 * tree, letting the job end) runs from a zero-delay timer, never inside
 * the port or file callback that decided it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/clients/reply.h"
#include "daemon/core/log.h"
#include "daemon/jobs/job.h"
#include "daemon/jobs/ready_priv.h"
#include "daemon/jobs/readiness.h"

static struct {
	struct loop *loop;
	void (*resolved)(struct job *j);
	/* A port held by someone else while the job runs without listening:
	 * the job gets --port-taken-grace (3 s: nginx retries bind for 2.5 s)
	 * to show what it makes of it (exit, retry, listen elsewhere) before
	 * NotReady{PORT_TAKEN}. */
	uint64_t port_taken_grace_ns;
} RD;

void readiness_init(struct loop *loop, uint32_t port_taken_grace_ms,
		    void (*resolved)(struct job *j))
{
	RD.loop = loop;
	RD.resolved = resolved;
	RD.port_taken_grace_ns = (uint64_t)port_taken_grace_ms * NSEC_PER_MSEC;
}

bool ready_waiting(const struct readiness *r)
{
	return r && r->state == ctld_ReadyState_READY_WAITING;
}

bool readiness_pending(const struct job *j)
{
	return ready_waiting(j->ready);
}

/* ------------------------------------------------------------ the decision */

static void fill_states(struct readiness *r, ctld_ConditionState *out, pb_size_t *count)
{
	for (size_t i = 0; i < r->ncond; i++)
		out[i] = r->cond[i].state;
	*count = (pb_size_t)r->ncond;
}

/* Sends the scratch event to the job's clients and keeps it for later ones. */
static void broadcast_final(struct readiness *r)
{
	struct frame f;

	if (event_encode(&f) == 0 && (r->final = malloc(f.len))) {
		memcpy(r->final, f.data, f.len);
		r->final_len = f.len;
	}
	job_broadcast(r->job, false, 0, 0);
}

static void after_decision(struct loop *loop, void *ctx)
{
	struct readiness *r = ctx;
	struct job *j = r->job;

	(void)loop;
	for (size_t i = 0; i < r->ncond; i++)
		ready_cond_stop(&r->cond[i]);
	RD.resolved(j);
}

static void decided(struct readiness *r, ctld_ReadyState state)
{
	r->state = state;
	loop_timer_disarm(RD.loop, &r->timer);
	loop_timer_disarm(RD.loop, &r->grace);
	loop_timer_arm(RD.loop, &r->after, 0);
}

static void send_ready(struct readiness *r)
{
	ctld_Ready *rd = &event_begin(ctld_Event_ready_tag)->kind.ready;

	rd->job = r->job->id;
	rd->time_to_ready_ns = r->time_to_ready_ns;
	rd->time_ns = monotonic_to_realtime_ns(r->exec_ns + r->time_to_ready_ns);
	fill_states(r, rd->conditions, &rd->conditions_count);
	broadcast_final(r);
	log_info("job %llu: ready after %.1f ms", (unsigned long long)r->job->id,
		 r->time_to_ready_ns / 1e6);
	decided(r, ctld_ReadyState_READY_DONE);
}

static bool job_running(const struct job *j)
{
	return j->state == ctld_JobState_JOB_RUNNING && !j->main_done;
}

/* The stderr kept, from its first whole line (at most READY_TAIL bytes). */
static void stderr_tail(const struct readiness *r, ctld_NotReady *nr)
{
	const uint8_t *p = r->tail, *nl;
	size_t len = r->tail_len;

	if (len == sizeof(r->tail) && (nl = memchr(p, '\n', len)) && nl + 1 < p + len) {
		len -= (size_t)(nl + 1 - p);
		p = nl + 1;
	}
	memcpy(nr->stderr_tail.bytes, p, len);
	nr->stderr_tail.size = (pb_size_t)len;
}

static void send_not_ready(struct readiness *r, ctld_NotReadyReason reason, const char *text)
{
	ctld_NotReady *nr = &event_begin(ctld_Event_not_ready_tag)->kind.not_ready;
	struct job *j = r->job;

	nr->job = j->id;
	nr->reason = reason;
	copy_str(nr->text, sizeof(nr->text), text);
	fill_states(r, nr->conditions, &nr->conditions_count);
	nr->job_running = job_running(j);
	if (!nr->job_running && j->tree.reaped) {
		nr->exit_code = j->exit_code;
		nr->signal = j->signal;
	}
	stderr_tail(r, nr);
	if (r->held) {
		nr->port = r->held_port;
		nr->holder_pid = (uint32_t)r->holder.pid;
		copy_str(nr->holder_comm, sizeof(nr->holder_comm), r->holder.comm);
		nr->holder_netns = r->holder.netns;
		tcp_addr_format(r->holder.family, r->holder.addr, nr->holder_addr,
				sizeof(nr->holder_addr));
	}
	if (r->failed) {
		nr->port = r->failer.port;
		nr->failed_pid = (uint32_t)r->failer.pid;
		copy_str(nr->failed_comm, sizeof(nr->failed_comm), r->failer.comm);
	}
	nr->sys_errno = r->file_err;
	copy_str(nr->path, sizeof(nr->path), r->file_path);
	/* a job that cannot be ready is not left running, unless asked */
	nr->killed = nr->job_running && !r->keep && reason != ctld_NotReadyReason_NOT_READY_EXITED;
	if (nr->killed || (!r->keep && j->main_done))
		job_signal_tree(j, SIGKILL);
	log_info("job %llu: not ready: %s", (unsigned long long)j->id, text);
	broadcast_final(r);
	decided(r, ctld_ReadyState_READY_FAILED);
}

static void port_taken(struct readiness *r)
{
	char text[200], addr[48];

	tcp_addr_format(r->holder.family, r->holder.addr, addr, sizeof(addr));
	snprintf(text, sizeof(text), "port %u is held by pid %d (%s) on %s%s", r->held_port,
		 r->holder.pid, r->holder.comm[0] ? r->holder.comm : "?", addr,
		 r->failed ? "; the job's listen() failed" : "");
	send_not_ready(r, ctld_NotReadyReason_NOT_READY_PORT_TAKEN, text);
}

/* ------------------------------------------------------------ from the conditions */

void ready_cond_met(struct ready_cond *c, uint64_t mono_ns)
{
	struct readiness *r = c->r;
	uint64_t after = mono_ns > r->exec_ns ? mono_ns - r->exec_ns : 0;
	size_t met = 0;

	if (!ready_waiting(r) || c->met)
		return;
	c->met = true;
	c->state.met = true;
	c->state.time_ns = monotonic_to_realtime_ns(mono_ns);
	c->state.after_exec_ns = after;
	if (after > r->time_to_ready_ns)
		r->time_to_ready_ns = after;
	for (size_t i = 0; i < r->ncond; i++)
		met += r->cond[i].met;
	if (r->any || met == r->ncond)
		send_ready(r);
}

static void grace_over(struct loop *loop, void *ctx)
{
	struct readiness *r = ctx;

	(void)loop;
	if (ready_waiting(r) && r->held)
		port_taken(r);
}

void ready_port_held(struct readiness *r, const struct tcp_listener *l)
{
	if (!ready_waiting(r) || r->held)
		return;
	r->held = true;
	r->holder = *l;
	r->held_port = l->port;
	if (r->exec_ns && !loop_timer_armed(&r->grace))
		loop_timer_arm_in(RD.loop, &r->grace, RD.port_taken_grace_ns);
}

void ready_port_freed(struct readiness *r, const struct tcp_listener *l)
{
	if (ready_waiting(r) && r->held && l->sock_ino == r->holder.sock_ino) {
		r->held = false; /* the port is free again: the job may still get it */
		loop_timer_disarm(RD.loop, &r->grace);
	}
}

void ready_listen_failed(struct readiness *r, const struct tcp_listener *l)
{
	char text[160];

	if (!ready_waiting(r))
		return;
	r->failed = true;
	r->failer = *l;
	if (r->held) {
		port_taken(r);
		return;
	}
	snprintf(text, sizeof(text), "pid %d (%s) failed to listen on port %u (EADDRINUSE)",
		 l->pid, l->comm, l->port);
	send_not_ready(r, ctld_NotReadyReason_NOT_READY_LISTEN_FAILED, text);
}

void ready_file_error(struct readiness *r, int err, const char *path)
{
	char text[300];

	if (!ready_waiting(r))
		return;
	r->file_err = err;
	copy_str(r->file_path, sizeof(r->file_path), path);
	snprintf(text, sizeof(text), "cannot watch %.200s: %s", path, strerror(err));
	send_not_ready(r, ctld_NotReadyReason_NOT_READY_FILE_ERROR, text);
}

/* ------------------------------------------------------------ the job's side */

static void timed_out(struct loop *loop, void *ctx)
{
	struct readiness *r = ctx;
	char text[sizeof(((ctld_NotReady *)0)->text)];
	size_t used;
	const char *sep = "";

	(void)loop;
	if (r->held) {
		port_taken(r);
		return;
	}
	used = (size_t)snprintf(text, sizeof(text), "not ready within %u ms; still missing ",
				r->timeout_ms);
	for (size_t i = 0; i < r->ncond && used < sizeof(text); i++) {
		if (r->cond[i].met)
			continue;
		used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", sep,
					 r->cond[i].desc);
		sep = r->any ? " or " : ", ";
	}
	send_not_ready(r, ctld_NotReadyReason_NOT_READY_TIMEOUT, text);
}

/* Output sent to a file never passes the daemon: no line of it can match. */
static int check_streams(const struct ready_cond *c, const ctld_Run *run, char *err,
			 size_t errlen)
{
	uint32_t piped = (run->stdout_path[0] ? 0u : 1u) | (run->stderr_path[0] ? 0u : 2u);

	if (c->kind != COND_LOG || (c->streams & piped))
		return 0;
	return errorf(err, errlen, -EINVAL,
		      "ready condition %d: the job's output goes to files (stdout_path, "
		      "stderr_path): no line of it can be matched",
		      c->index);
}

/* j's readiness in this state, its timers wired; NULL without memory. */
static struct readiness *readiness_new(struct job *j, ctld_ReadyState state)
{
	struct readiness *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->job = j;
	r->state = state;
	loop_timer_init(&r->timer, timed_out, r);
	loop_timer_init(&r->grace, grace_over, r);
	loop_timer_init(&r->after, after_decision, r);
	j->ready = r;
	return r;
}

int readiness_start(struct job *j, const ctld_Run *run, char *err, size_t errlen)
{
	struct readiness *r;
	int ret;

	j->ready = NULL;
	if (!run->ready_count)
		return 0;
	if (!(r = readiness_new(j, ctld_ReadyState_READY_WAITING)))
		return errorf(err, errlen, -ENOMEM, "out of memory");
	r->any = run->ready_any;
	r->keep = run->keep_on_not_ready;
	r->timeout_ms = run->ready_timeout_ms;
	for (pb_size_t i = 0; i < run->ready_count; i++) {
		struct ready_cond *c = &r->cond[r->ncond++];

		c->r = r;
		c->index = (int)i;
		if ((ret = ready_cond_setup(c, &run->ready[i], run->cwd[0] ? run->cwd : "/", err,
					    errlen)) ||
		    (ret = check_streams(c, run, err, errlen)) ||
		    (ret = ready_cond_arm(c, err, errlen)))
			goto fail;
	}
	return 0;
fail:
	readiness_free(j);
	return ret;
}

void readiness_launched(struct job *j)
{
	struct readiness *r = j->ready;

	if (!r)
		return;
	/* the same start as Exited.wall_ns: taken just before the spawn, so
	 * a listen() racing the spawn's return is still "after exec" */
	r->exec_ns = j->start_mono_ns;
	if (r->timeout_ms)
		loop_timer_arm(RD.loop, &r->timer,
			       r->exec_ns + (uint64_t)r->timeout_ms * NSEC_PER_MSEC);
	if (r->held)
		loop_timer_arm_in(RD.loop, &r->grace, RD.port_taken_grace_ns);
	for (size_t i = 0; i < r->ncond && ready_waiting(r); i++) {
		if (r->cond[i].arm_err)
			ready_file_error(r, -r->cond[i].arm_err, r->cond[i].path);
		else
			ready_cond_launched(&r->cond[i]);
	}
}

static void keep_tail(struct readiness *r, const uint8_t *data, size_t len)
{
	if (len >= sizeof(r->tail)) {
		memcpy(r->tail, data + len - sizeof(r->tail), sizeof(r->tail));
		r->tail_len = sizeof(r->tail);
		return;
	}
	if (r->tail_len + len > sizeof(r->tail)) {
		size_t drop = r->tail_len + len - sizeof(r->tail);

		memmove(r->tail, r->tail + drop, r->tail_len - drop);
		r->tail_len -= drop;
	}
	memcpy(r->tail + r->tail_len, data, len);
	r->tail_len += len;
}

/* Lines split across reads are joined; a line longer than READY_LINE_MAX
 * is matched on its first READY_LINE_MAX bytes. */
static void feed_lines(struct readiness *r, int stream, const uint8_t *data, size_t len,
		       uint64_t now)
{
	char *line = r->line[stream];
	size_t *n = &r->line_len[stream];

	for (size_t i = 0; i < len && ready_waiting(r); i++) {
		bool end = data[i] == '\n';

		if (!end && *n < READY_LINE_MAX) {
			line[(*n)++] = (char)data[i];
			if (*n < READY_LINE_MAX)
				continue;
		}
		if (!end && r->line_cut[stream])
			continue; /* the rest of an over-long line */
		line[*n] = '\0';
		for (size_t k = 0; k < r->ncond && ready_waiting(r); k++)
			ready_cond_line(&r->cond[k], stream, line, now);
		r->line_cut[stream] = !end;
		*n = 0;
	}
}

void readiness_output(struct job *j, int stream, const uint8_t *data, size_t len)
{
	struct readiness *r = j->ready;

	if (!ready_waiting(r))
		return;
	if (stream == 1)
		keep_tail(r, data, len);
	feed_lines(r, stream, data, len, now_monotonic_ns());
}

void readiness_job_ended(struct job *j)
{
	struct readiness *r = j->ready;
	char text[200];
	const char *sig;

	if (!ready_waiting(r))
		return;
	/* a last line without its newline still counts */
	for (int s = 0; s < 2 && ready_waiting(r); s++)
		if (r->line_len[s])
			feed_lines(r, s, (const uint8_t *)"\n", 1, now_monotonic_ns());
	if (!r->held)
		ready_conds_look_for_holders(r); /* a holder it finds is told in r->held */
	if (!ready_waiting(r))
		return;
	if (r->held) {
		port_taken(r);
		return;
	}
	sig = signal_name(j->signal);
	if (j->state == ctld_JobState_JOB_EXEC_FAILED)
		snprintf(text, sizeof(text), "the job could not start: %.150s", j->exec_text);
	else if (j->signal)
		snprintf(text, sizeof(text), "the job was killed by SIG%s before it was ready",
			 sig ? sig : "?");
	else
		snprintf(text, sizeof(text), "the job exited with status %d before it was ready",
			 j->exit_code);
	send_not_ready(r, ctld_NotReadyReason_NOT_READY_EXITED, text);
}

void readiness_fill_info(const struct job *j, ctld_JobInfo *info)
{
	if (!j->ready)
		return;
	info->ready = j->ready->state;
	if (j->ready->state == ctld_ReadyState_READY_DONE)
		info->time_to_ready_ns = j->ready->time_to_ready_ns;
}

void readiness_replay(const struct job *j, uint64_t session)
{
	struct frame f;

	if (!j->ready || !j->ready->final)
		return;
	f = (struct frame){ .data = j->ready->final, .len = j->ready->final_len };
	frame_send(session, &f);
}

void readiness_free(struct job *j)
{
	struct readiness *r = j->ready;

	if (!r)
		return;
	for (size_t i = 0; i < r->ncond; i++)
		ready_cond_stop(&r->cond[i]);
	loop_timer_disarm(RD.loop, &r->timer);
	loop_timer_disarm(RD.loop, &r->grace);
	loop_timer_disarm(RD.loop, &r->after);
	free(r->final);
	free(r);
	j->ready = NULL;
}

/* ------------------------------------------------------------ upgrades */

void readiness_export(const struct job *j, struct readiness_export *out)
{
	*out = (struct readiness_export){ 0 };
	if (!j->ready)
		return;
	out->state = j->ready->state;
	out->time_to_ready_ns = j->ready->time_to_ready_ns;
	out->final = j->ready->final;
	out->final_len = j->ready->final_len;
}

int readiness_import(struct job *j, const struct readiness_export *in)
{
	struct readiness *r;

	if (in->state == ctld_ReadyState_READY_NONE)
		return 0;
	if (!(r = readiness_new(j, in->state)))
		return -ENOMEM;
	r->time_to_ready_ns = in->time_to_ready_ns;
	if (in->final_len && (r->final = malloc(in->final_len))) {
		memcpy(r->final, in->final, in->final_len);
		r->final_len = in->final_len;
	}
	return 0;
}
