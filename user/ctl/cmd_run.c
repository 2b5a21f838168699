// SPDX-License-Identifier: BSD-2-Clause
/*
 * cmd_run.c - the job commands: run (start a job and stay with it, like
 * running the program itself: output, stdin, signals, its exit status),
 * start (start it in the background: print its id), wait and attach (an
 * existing job), kill (signal its tree). run/start --wait-port, --wait-log,
 * --wait-file send the conditions with the Run and hand the job over (print
 * its id, exit 0) once the daemon says it is ready.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "ctl/ctl.h"
#include "ctl/output.h"
#include "ctl/timeline.h"

#define STDIN_IN_FLIGHT 4 /* WriteStdin requests awaiting their reply, per host */

static uint8_t stdin_buf[STDIN_CHUNK];

void send_signal(struct host *h, int sig)
{
	ctld_Signal *s;

	if (!h->job) {
		h->pending_signal = sig; /* sent when the Run reply names the job */
		return;
	}
	s = &request(ctld_Request_signal_tag)->body.signal;
	s->job = h->job;
	s->signal = sig;
	host_send(h, REQ_SIGNAL);
}

static void send_detach(struct host *h)
{
	request(ctld_Request_detach_tag)->body.detach.job = h->job;
	host_send(h, REQ_DETACH);
}

static void send_run(struct host *h)
{
	ctld_Run *r = &request(ctld_Request_run_tag)->body.run;

	*r = G.args.run;
	r->stdin_pipe = G.stdin_forward;
	host_send(h, REQ_RUN);
}

void stdout_failed(int err)
{
	int status = err == -EPIPE ? EXIT_BROKEN_PIPE : EXIT_FAILURE_REPLY;

	if (G.stdout_failed)
		return;
	G.stdout_failed = true;
	if (err != -EPIPE)
		say(NULL, "cannot write to stdout: %s", strerror(-err));
	skip_waiting_hosts(status);
	for (size_t i = 0; i < G.nhosts; i++) {
		struct host *h = &G.hosts[i];

		if (!host_running(h))
			continue;
		if (G.args.cmd != CLI_RUN) {
			host_finish(h, status);
			continue;
		}
		host_wind_up(h, status);
		send_signal(h, SIGTERM);
	}
}

/* ------------------------------------------------------------ stdin */

static bool takes_stdin(const struct host *h)
{
	return host_running(h) && !h->stdin_done;
}

/* Read stdin only when every host can take the next chunk: all get the same. */
bool stdin_wanted(void)
{
	bool any = false;

	if (!G.stdin_forward || G.stdin_eof)
		return false;
	for (size_t i = 0; i < G.nhosts; i++) {
		const struct host *h = &G.hosts[i];

		if (!takes_stdin(h))
			continue;
		if (!h->job || h->stdin_in_flight >= STDIN_IN_FLIGHT)
			return false;
		any = true;
	}
	return any;
}

void forward_stdin(void)
{
	ssize_t n = read(STDIN_FILENO, stdin_buf, sizeof(stdin_buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n < 0)
		say(NULL, "cannot read stdin: %s (sending EOF to the job)", strerror(errno));
	G.stdin_eof = n <= 0;
	for (size_t i = 0; i < G.nhosts; i++) {
		struct host *h = &G.hosts[i];
		ctld_WriteStdin *w;

		if (!takes_stdin(h))
			continue;
		w = &request(ctld_Request_write_stdin_tag)->body.write_stdin;
		w->job = h->job;
		w->eof = G.stdin_eof;
		w->data.size = (pb_size_t)(n > 0 ? n : 0);
		memcpy(w->data.bytes, stdin_buf, w->data.size);
		h->stdin_done = G.stdin_eof;
		if (host_send(h, REQ_STDIN) == 0)
			h->stdin_in_flight++;
	}
}

/* ------------------------------------------------------------ job events */

static int exit_status(const ctld_Exited *e)
{
	if (e->status_unknown)
		return EXIT_STATUS_UNKNOWN;
	if (e->timed_out)
		return EXIT_TIMEOUT;
	if (e->signal)
		return 128 + e->signal;
	return e->exit_code & 0xff;
}

static void json_exited(struct host *h, const ctld_Exited *e)
{
	struct json_line *j = jbegin("exited");

	json_add_u64(j, "job", e->job);
	json_add_u64(j, "pid", e->pid);
	json_add_i64(j, "exit_code", e->exit_code);
	if (e->signal) {
		json_add_i64(j, "signal", e->signal);
		json_add_bool(j, "core_dumped", e->core_dumped);
	}
	json_add_u64(j, "user_us", e->user_us);
	json_add_u64(j, "sys_us", e->sys_us);
	json_add_u64(j, "max_rss_kb", e->max_rss_kb);
	json_add_u64(j, "wall_ns", e->wall_ns);
	if (e->timed_out)
		json_add_bool(j, "timed_out", true);
	if (e->descendants)
		json_add_u64(j, "descendants", e->descendants);
	if (e->pipes_held)
		json_add_bool(j, "pipes_held", true);
	if (e->escalated)
		json_add_bool(j, "escalated", true);
	if (e->adopted)
		json_add_bool(j, "adopted", true);
	if (e->status_unknown)
		json_add_bool(j, "status_unknown", true);
	jend(h);
}

/* kill --grace: what ended the job. */
static void killed_with_grace(struct host *h, const ctld_Exited *e)
{
	const char *sig = signal_name(e->signal), *asked = signal_name(G.args.signal ?
								    G.args.signal : SIGTERM);
	char dur[32];

	fmt_ms(G.args.grace_ms, dur, sizeof(dur));
	if (e->escalated)
		say(h, "job %llu was still running %s after SIG%s: killed with SIGKILL",
		    (unsigned long long)e->job, dur, asked ? asked : "?");
	else if (e->signal)
		say(h, "job %llu ended on SIG%s", (unsigned long long)e->job, sig ? sig : "?");
	else
		say(h, "job %llu exited with status %d", (unsigned long long)e->job, e->exit_code);
	host_finish(h, 0);
}

static void on_exited(struct host *h, const ctld_Exited *e)
{
	const char *sig = signal_name(e->signal);
	char dur[32];

	if (G.args.json)
		json_exited(h, e);
	if (G.args.cmd == CLI_KILL) {
		killed_with_grace(h, e);
		return;
	}
	if (h->not_ready) {
		/* NotReady said why (and that the job was killed for it) */
		if (h->ended_early)
			print_not_ready(h, h->ended_early);
		host_finish(h, h->not_ready);
		return;
	}
	if (e->timed_out && G.args.run.timeout_ms) {
		fmt_ms(G.args.run.timeout_ms, dur, sizeof(dur));
		say(h, "job %llu timed out after %s and was killed", (unsigned long long)e->job,
		    dur);
	} else if (e->timed_out) {
		say(h, "job %llu timed out and was killed", (unsigned long long)e->job);
	} else if (e->signal && e->signal != SIGINT && e->signal != SIGPIPE &&
		   e->signal != G.forwarded_signal) {
		/* shells say "Killed" for their own children; ctl's job is not one */
		say(h, "job %llu was killed by signal %s%s%s", (unsigned long long)e->job,
		    sig ? "SIG" : "", sig ? sig : "?", e->core_dumped ? " (core dumped)" : "");
	}
	if (e->status_unknown)
		say(h, "job %llu was started by an earlier daemon instance and ended %s: its exit "
		       "status is unknown",
		    (unsigned long long)e->job,
		    e->wall_ns ? "without an eBPF exit record" : "while no daemon was running");
	if (e->pipes_held)
		say(h, "processes of job %llu still hold its output: what they write from now on is "
		       "discarded (--wait-tree waits for them)",
		    (unsigned long long)e->job);
	host_finish(h, exit_status(e));
}

static void on_exec_failed(struct host *h, const ctld_ExecFailed *ef)
{
	const char *why = ef->text, *colon = strrchr(ef->text, ':');
	char text[sizeof(ef->text)], prog[sizeof(G.args.run.argv[0])];

	if (G.args.json) {
		struct json_line *j = jbegin("exec_failed");

		json_add_u64(j, "job", ef->job);
		json_add_i64(j, "errno", ef->sys_errno);
		json_add_str(j, "text", ef->text);
		jend(h);
	}
	/* "execve prog: No such file or directory": the reason is the last part */
	if (strncmp(why, "execve ", 7) == 0 && colon && colon[1] == ' ')
		why = colon + 2;
	if (!*why)
		why = strerror(ef->sys_errno);
	if (G.args.cmd == CLI_RUN || G.args.cmd == CLI_START)
		say(h, "cannot run '%s': %s", clean(G.args.run.argv[0], prog, sizeof(prog)),
		    clean(why, text, sizeof(text)));
	else
		say(h, "job %llu could not run: %s", (unsigned long long)ef->job,
		    clean(ef->text, text, sizeof(text)));
	host_finish(h, EXIT_NOEXEC);
}

static void on_output(struct host *h, const ctld_Output *o)
{
	int s = o->stream == ctld_Stream_STDERR;
	uint64_t skip = h->seen[s] > o->offset ? h->seen[s] - o->offset : 0;
	const uint8_t *data = o->data.bytes + (skip < o->data.size ? skip : o->data.size);
	size_t len = skip < o->data.size ? o->data.size - skip : 0;

	if (G.args.cmd == CLI_START || !len)
		return; /* in the background (`ctl attach` shows it), or shown already */
	h->seen[s] = o->offset + o->data.size;
	if (!G.args.json) {
		emit(h, s ? STDERR_FILENO : STDOUT_FILENO, data, len);
		return;
	}
	json_add_u64(jbegin("output"), "job", o->job);
	json_add_str(&G.json, "stream", stream_name(o->stream));
	json_add_u64(&G.json, "offset", o->offset + skip);
	json_add_data(&G.json, data, len);
	jend(h);
}

static void on_output_dropped(struct host *h, const ctld_OutputDropped *d)
{
	if (G.args.json) {
		struct json_line *j = jbegin("output_dropped");

		json_add_u64(j, "job", d->job);
		json_add_str(j, "stream", stream_name(d->stream));
		json_add_u64(j, "bytes", d->bytes);
		json_add_str(j, "reason",
			     d->reason == ctld_DropReason_DROP_BACKLOG ? "backlog" : "slow_client");
		jend(h);
	}
	if (d->reason == ctld_DropReason_DROP_BACKLOG)
		say(h, "%llu earlier bytes of %s are no longer kept by the daemon",
		    (unsigned long long)d->bytes, stream_name(d->stream));
	else
		say(h, "%llu bytes of %s were dropped (client too slow)",
		    (unsigned long long)d->bytes, stream_name(d->stream));
}

/* The job runs (and is ready): print its id and leave it running. */
static void hand_over(struct host *h, uint64_t job)
{
	char id[24];

	if (!G.args.json)
		emit(h, STDOUT_FILENO, id,
		     (size_t)snprintf(id, sizeof(id), "%llu\n", (unsigned long long)job));
	host_wind_up(h, 0);
	send_detach(h);
}

static void on_launched(struct host *h, const ctld_Launched *l)
{
	if (G.args.json) {
		struct json_line *j = jbegin("launched");

		json_add_u64(j, "job", l->job);
		json_add_u64(j, "pid", l->pid);
		jend(h);
	}
	if (G.args.cmd != CLI_START || G.args.run.ready_count)
		return;
	/* start: it runs; hand it over to the background */
	hand_over(h, l->job);
}

/* ------------------------------------------------------------ readiness */

/* Only for the run/start that asked: wait and attach see the job's own end. */
static bool asked_for_readiness(void)
{
	return (G.args.cmd == CLI_RUN || G.args.cmd == CLI_START) && G.args.run.ready_count;
}

static void on_ready(struct host *h, const ctld_Ready *rd)
{
	if (!asked_for_readiness() || h->ready_told)
		return;
	h->ready_told = true;
	print_ready(h, rd);
	hand_over(h, rd->job);
}

/* Said why; the job's end follows unless it keeps running. "Ended before
 * it was ready" waits for that end: a job that could not start says so
 * itself (ExecFailed), better. */
static void on_not_ready(struct host *h, const ctld_NotReady *nr)
{
	if (!asked_for_readiness() || h->ready_told)
		return;
	h->ready_told = true;
	h->not_ready = not_ready_status(nr);
	if (nr->reason == ctld_NotReadyReason_NOT_READY_EXITED && !G.args.json &&
	    (h->ended_early = malloc(sizeof(*nr)))) {
		*h->ended_early = *nr;
		return;
	}
	print_not_ready(h, nr);
	if (nr->job_running && !nr->killed) {
		host_wind_up(h, h->not_ready); /* --keep-running: it is the user's now */
		send_detach(h);
	}
}

/* ------------------------------------------------------------ the command */

static void begin(struct host *h)
{
	switch (G.args.cmd) {
	case CLI_RUN:
	case CLI_START:
		send_run(h);
		break;
	case CLI_WAIT:
	case CLI_ATTACH: {
		ctld_Attach *a = &request(ctld_Request_attach_tag)->body.attach;

		h->job = G.args.job;
		a->job = G.args.job;
		a->no_output = G.args.cmd == CLI_WAIT;
		a->no_backlog = G.args.no_backlog;
		host_send(h, REQ_ATTACH);
		break;
	}
	default: { /* CLI_KILL */
		ctld_Signal *s = &request(ctld_Request_signal_tag)->body.signal;

		s->job = G.args.job;
		s->signal = G.args.signal ? G.args.signal : SIGTERM;
		s->main_only = G.args.main_only;
		s->grace_ms = G.args.grace_ms;
		h->job = G.args.job;
		host_send(h, REQ_KILL);
	}
	}
}

/* The job's row in --timeline: its command, as far as it fits. */
static void name_job_row(const struct host *h)
{
	char name[64] = "";
	size_t used = 0;

	if (!timeline_enabled())
		return;
	for (pb_size_t i = 0; i < G.args.run.argv_count && used + 1 < sizeof(name); i++)
		used += (size_t)snprintf(name + used, sizeof(name) - used, "%s%s", i ? " " : "",
					 G.args.run.argv[i]);
	timeline_job_name((size_t)(h - G.hosts), h->job, name);
}

static void on_reply(struct host *h, enum req_kind kind, const ctld_Reply *r)
{
	switch (kind) {
	case REQ_RUN:
		h->job = r->result.run.job;
		name_job_row(h);
		if (h->pending_signal)
			send_signal(h, h->pending_signal);
		h->pending_signal = 0;
		break;
	case REQ_KILL:
		if (!G.args.grace_ms) {
			host_finish(h, 0);
			break;
		}
		/* --grace: stay until the job is gone, to say what ended it */
		request(ctld_Request_attach_tag)->body.attach =
			(ctld_Attach){ .job = h->job, .no_output = true };
		host_send(h, REQ_ATTACH);
		break;
	default: /* REQ_ATTACH: the events follow */
		/* without the backlog, what came before never counts as unseen,
		 * also not when an attach after an upgrade replays it */
		if (G.args.no_backlog && !h->reconnects) {
			h->seen[0] = r->result.attach.stdout_offset;
			h->seen[1] = r->result.attach.stderr_offset;
		}
		break;
	}
}

static void on_event(struct host *h, const ctld_Event *ev)
{
	switch (ev->which_kind) {
	case ctld_Event_launched_tag:
		on_launched(h, &ev->kind.launched);
		break;
	case ctld_Event_exec_failed_tag:
		on_exec_failed(h, &ev->kind.exec_failed);
		break;
	case ctld_Event_exited_tag:
		on_exited(h, &ev->kind.exited);
		break;
	case ctld_Event_output_tag:
		on_output(h, &ev->kind.output);
		break;
	case ctld_Event_output_dropped_tag:
		on_output_dropped(h, &ev->kind.output_dropped);
		break;
	case ctld_Event_ready_tag:
		on_ready(h, &ev->kind.ready);
		break;
	case ctld_Event_not_ready_tag:
		on_not_ready(h, &ev->kind.not_ready);
		break;
	default: /* a kind newer than ctl */
		break;
	}
}

static void doing(const struct host *h, char *buf, size_t len)
{
	unsigned long long job = h->job;
	char prog[sizeof(G.args.run.argv[0])];

	if ((G.args.cmd == CLI_RUN || G.args.cmd == CLI_START) && !job)
		snprintf(buf, len, "the Run of '%.60s' was not answered: whether it started is "
				   "unknown",
			 clean(G.args.run.argv[0], prog, sizeof(prog)));
	else if (G.args.cmd == CLI_RUN || G.args.cmd == CLI_START)
		snprintf(buf, len, "job %llu (%.60s) was running there: its state is unknown", job,
			 clean(G.args.run.argv[0], prog, sizeof(prog)));
	else if (G.args.cmd == CLI_KILL)
		snprintf(buf, len, "ctl was killing job %llu: whether it got the signal is unknown",
			 job);
	else
		snprintf(buf, len, "ctl was waiting for job %llu", job);
}

/* After an upgrade in place: attach to the job again (its backlog brings
 * what was written meanwhile; on_output skips what was shown). A Run not
 * yet answered cannot be picked up: whether it started is unknown. */
static int reconnected(struct host *h)
{
	ctld_Attach *a;

	if (!h->job)
		return -1;
	a = &request(ctld_Request_attach_tag)->body.attach;
	a->job = h->job;
	a->no_output = G.args.cmd == CLI_WAIT || G.args.cmd == CLI_START || G.args.cmd == CLI_KILL;
	return host_send(h, REQ_ATTACH) ? -1 : 0;
}

const struct command cmd_run = {
	.begin = begin, .on_reply = on_reply, .on_event = on_event, .doing = doing,
	.reconnected = reconnected
};
