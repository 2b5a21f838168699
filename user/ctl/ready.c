// SPDX-License-Identifier: BSD-2-Clause
/*
 * ready.c - what ctl says about readiness (run/start --wait-port,
 * --wait-log, --wait-file): the Ready event as one line on stderr ("job 3
 * is ready after 412.3 ms: port 6379 by pid 1234 (redis-server) at
 * +412.3 ms"), NotReady as the daemon's reason and what became of the job,
 * both as --json lines, and the exit status each outcome gives.
 *
 * The kind of each condition is not in the events (they list conditions in
 * Run.ready's order): ctl takes it from the request it sent.
 */
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "ctl/ctl.h"
#include "ctl/output.h"

static const char *kind_name(const ctld_ReadyCondition *c)
{
	switch (c->which_kind) {
	case ctld_ReadyCondition_port_tag:
		return "port";
	case ctld_ReadyCondition_log_tag:
		return "log";
	default:
		return "file";
	}
}

int not_ready_status(const ctld_NotReady *nr)
{
	switch (nr->reason) {
	case ctld_NotReadyReason_NOT_READY_EXITED:
		/* the job's own status, as for any run; one that exited 0 was
		 * still not ready, and ctl must not say success */
		if (nr->signal)
			return 128 + nr->signal;
		return nr->exit_code ? nr->exit_code & 0xff : EXIT_NOT_READY;
	case ctld_NotReadyReason_NOT_READY_TIMEOUT:
		return EXIT_TIMEOUT;
	case ctld_NotReadyReason_NOT_READY_PORT_TAKEN:
		return EXIT_PORT_TAKEN;
	case ctld_NotReadyReason_NOT_READY_LISTEN_FAILED:
		return EXIT_LISTEN_FAILED;
	case ctld_NotReadyReason_NOT_READY_FILE_ERROR:
		return EXIT_FILE_ERROR;
	default:
		return EXIT_NOT_READY;
	}
}

static const char *reason_name(ctld_NotReadyReason reason)
{
	static const char *const names[] = { "exited", "timeout", "port_taken", "listen_failed",
					     "file_error" };

	return (size_t)reason < ARRAY_SIZE(names) ? names[reason] : "unknown";
}

/* ------------------------------------------------------------ --json */

static void json_conditions(struct json_line *j, const ctld_ConditionState *cs, pb_size_t n)
{
	const ctld_Run *run = &G.args.run;

	json_open(j, "conditions", '[');
	for (pb_size_t i = 0; i < n; i++) {
		const ctld_ConditionState *c = &cs[i];
		const ctld_ReadyCondition *rc = i < run->ready_count ? &run->ready[i] : NULL;

		json_open(j, NULL, '{');
		json_add_str(j, "kind", rc ? kind_name(rc) : "unknown");
		json_add_bool(j, "met", c->met);
		if (c->met) {
			json_add_u64(j, "time_ns", c->time_ns);
			json_add_u64(j, "after_exec_ns", c->after_exec_ns);
		}
		if (rc && rc->which_kind == ctld_ReadyCondition_port_tag) {
			json_add_u64(j, "port", c->port);
			json_add_str(j, "addr", c->addr);
			if (c->met) {
				json_add_u64(j, "pid", c->pid);
				json_add_str(j, "comm", c->comm);
			}
		} else if (rc && rc->which_kind == ctld_ReadyCondition_log_tag) {
			json_add_str(j, "regex", rc->kind.log.regex);
			if (c->met) {
				json_add_str(j, "line", c->line);
				json_add_str(j, "stream", stream_name(c->stream));
			}
		} else if (rc) {
			json_add_str(j, "path", c->path);
			if (c->met)
				json_add_u64(j, "size", c->size);
		}
		json_close(j, '}');
	}
	json_close(j, ']');
}

static void json_ready(struct host *h, const ctld_Ready *rd)
{
	struct json_line *j = jbegin("ready");

	json_add_u64(j, "job", rd->job);
	json_add_u64(j, "time_to_ready_ns", rd->time_to_ready_ns);
	json_conditions(j, rd->conditions, rd->conditions_count);
	jend(h);
}

static void json_not_ready(struct host *h, const ctld_NotReady *nr)
{
	struct json_line *j = jbegin("not_ready");

	json_add_u64(j, "job", nr->job);
	json_add_str(j, "reason", reason_name(nr->reason));
	json_add_str(j, "text", nr->text);
	json_add_bool(j, "job_running", nr->job_running);
	json_add_bool(j, "killed", nr->killed);
	if (!nr->job_running) {
		json_add_i64(j, "exit_code", nr->exit_code);
		if (nr->signal)
			json_add_i64(j, "signal", nr->signal);
	}
	if (nr->port)
		json_add_u64(j, "port", nr->port);
	if (nr->holder_pid) {
		json_add_u64(j, "holder_pid", nr->holder_pid);
		json_add_str(j, "holder_comm", nr->holder_comm);
		json_add_str(j, "holder_addr", nr->holder_addr);
		json_add_u64(j, "holder_netns", nr->holder_netns);
	}
	if (nr->failed_pid) {
		json_add_u64(j, "failed_pid", nr->failed_pid);
		json_add_str(j, "failed_comm", nr->failed_comm);
	}
	if (nr->sys_errno) {
		json_add_i64(j, "errno", nr->sys_errno);
		json_add_str(j, "path", nr->path);
	}
	if (nr->stderr_tail.size) {
		json_open(j, "stderr_tail", '{');
		json_add_data(j, nr->stderr_tail.bytes, nr->stderr_tail.size);
		json_close(j, '}');
	}
	json_conditions(j, nr->conditions, nr->conditions_count);
	jend(h);
}

/* ------------------------------------------------------------ text */

/* "port 6379 by pid 1234 (redis-server) at +412.3 ms" */
static size_t describe_met(const ctld_ReadyCondition *rc, const ctld_ConditionState *c,
			   char *out, size_t cap)
{
	char a[64], b[sizeof(c->line)];
	double ms = (double)c->after_exec_ns / 1e6;

	switch (rc->which_kind) {
	case ctld_ReadyCondition_port_tag:
		return (size_t)snprintf(out, cap, "port %u on %s by pid %u (%s) at +%.1f ms",
					c->port, clean(c->addr, a, sizeof(a)), c->pid,
					clean(c->comm, b, sizeof(b)), ms);
	case ctld_ReadyCondition_log_tag:
		return (size_t)snprintf(out, cap, "%s line \"%.120s\" at +%.1f ms",
					stream_name(c->stream), clean(c->line, b, sizeof(b)), ms);
	default:
		return (size_t)snprintf(out, cap, "file %s (%llu bytes) at +%.1f ms",
					clean(c->path, b, sizeof(b)), (unsigned long long)c->size,
					ms);
	}
}

void print_ready(struct host *h, const ctld_Ready *rd)
{
	const ctld_Run *run = &G.args.run;
	char text[1024];
	size_t used = 0;
	const char *sep = "";

	if (G.args.json) {
		json_ready(h, rd);
		return;
	}
	for (pb_size_t i = 0; i < rd->conditions_count && i < run->ready_count; i++) {
		if (!rd->conditions[i].met || used >= sizeof(text))
			continue;
		used += (size_t)snprintf(text + used, sizeof(text) - used, "%s", sep);
		if (used < sizeof(text))
			used += describe_met(&run->ready[i], &rd->conditions[i], text + used,
					     sizeof(text) - used);
		sep = "; ";
	}
	if (used >= sizeof(text))
		used = sizeof(text) - 1;
	text[used] = '\0';
	say(h, "job %llu is ready after %.1f ms: %s", (unsigned long long)rd->job,
	    (double)rd->time_to_ready_ns / 1e6, text);
}

/* The job's last stderr lines, indented: start showed none of its output. */
static void print_tail(struct host *h, const ctld_NotReady *nr)
{
	const uint8_t *p = nr->stderr_tail.bytes, *end = p + nr->stderr_tail.size;

	if (G.args.cmd != CLI_START || p == end)
		return;
	say(h, "the job's last lines of stderr:");
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		emit(h, STDERR_FILENO, "  | ", 4);
		emit(h, STDERR_FILENO, p, len);
		emit(h, STDERR_FILENO, "\n", 1);
		p += len + (nl != NULL);
	}
}

void print_not_ready(struct host *h, const ctld_NotReady *nr)
{
	char text[sizeof(nr->text)], fate[64] = "";
	const char *sig = signal_name(nr->signal);

	if (G.args.json) {
		json_not_ready(h, nr);
		return;
	}
	if (nr->killed)
		snprintf(fate, sizeof(fate), "; the job was killed");
	else if (nr->job_running)
		snprintf(fate, sizeof(fate), "; the job keeps running");
	else if (nr->reason != ctld_NotReadyReason_NOT_READY_EXITED && nr->signal)
		snprintf(fate, sizeof(fate), "; the job was killed by SIG%s", sig ? sig : "?");
	else if (nr->reason != ctld_NotReadyReason_NOT_READY_EXITED)
		snprintf(fate, sizeof(fate), "; the job exited with status %d", nr->exit_code);
	say(h, "job %llu is not ready: %s%s", (unsigned long long)nr->job,
	    clean(nr->text, text, sizeof(text)), fate);
	print_tail(h, nr);
}
