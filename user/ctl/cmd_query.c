// SPDX-License-Identifier: BSD-2-Clause
/*
 * cmd_query.c - list (jobs, paged), stats (one table of counters, human or
 * --json) and watches (every watch of the daemon, paged).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "ctl/ctl.h"
#include "ctl/output.h"

static void send_list_watches(struct host *h, uint64_t after)
{
	request(ctld_Request_list_watches_tag)->body.list_watches.after_watch = after;
	host_send(h, REQ_WATCHES);
}

static void send_list(struct host *h, uint64_t after)
{
	ctld_List *l = &request(ctld_Request_list_tag)->body.list;

	l->after_job = after;
	l->running_only = G.args.running_only;
	host_send(h, REQ_LIST);
}

static const char *state_name(ctld_JobState s, bool json)
{
	switch (s) {
	case ctld_JobState_JOB_RUNNING:
		return "running";
	case ctld_JobState_JOB_EXITED:
		return "exited";
	default:
		return json ? "exec_failed" : "failed";
	}
}

static void json_jobs(struct host *h)
{
	for (size_t i = 0; i < h->njobs; i++) {
		const ctld_JobInfo *ji = &h->jobs[i];
		struct json_line *j = jbegin(NULL);

		json_add_u64(j, "job", ji->job);
		json_add_u64(j, "pid", ji->pid);
		json_add_str(j, "name", ji->name);
		json_add_str(j, "state", state_name(ji->state, true));
		json_add_str(j, "command", ji->command);
		json_add_u64(j, "start_time_ns", ji->start_time_ns);
		json_add_i64(j, "exit_code", ji->exit_code);
		json_add_i64(j, "signal", ji->signal);
		json_add_u64(j, "descendants", ji->descendants);
		json_add_u64(j, "clients", ji->clients);
		if (ji->discarded_bytes)
			json_add_u64(j, "discarded_bytes", ji->discarded_bytes);
		if (ji->adopted)
			json_add_bool(j, "adopted", true);
		if (ji->status_unknown)
			json_add_bool(j, "status_unknown", true);
		if (ji->max_procs)
			json_add_u64(j, "max_procs", ji->max_procs);
		if (ji->cgroup)
			json_add_u64(j, "procs_peak", ji->procs_peak);
		jend(h);
	}
}

static void job_exit_text(const ctld_JobInfo *ji, char *buf, size_t len)
{
	const char *sig = signal_name(ji->signal);

	if (ji->state != ctld_JobState_JOB_EXITED)
		snprintf(buf, len, ji->adopted ? "adopted" : "-");
	else if (ji->status_unknown)
		snprintf(buf, len, "unknown");
	else if (ji->signal && sig)
		snprintf(buf, len, "SIG%s", sig);
	else if (ji->signal)
		snprintf(buf, len, "SIG%d", ji->signal);
	else
		snprintf(buf, len, "%d", ji->exit_code);
}

static void job_start_text(const ctld_JobInfo *ji, char *buf, size_t len)
{
	time_t t = (time_t)(ji->start_time_ns / NSEC_PER_SEC);
	struct tm tm;

	if (!ji->start_time_ns || !localtime_r(&t, &tm) || !strftime(buf, len, "%H:%M:%S", &tm))
		snprintf(buf, len, "-");
}

static void print_jobs(struct host *h)
{
	int wjob = 3, wpid = 3, wname = 4;
	char *text = NULL, name[sizeof(h->jobs->name)], cmd[sizeof(h->jobs->command)];
	char started[16], exit_text[24];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		say(h, "out of memory");
		return;
	}
	for (size_t i = 0; i < h->njobs; i++) {
		int n = snprintf(NULL, 0, "%llu", (unsigned long long)h->jobs[i].job);

		wjob = n > wjob ? n : wjob;
		n = snprintf(NULL, 0, "%u", h->jobs[i].pid);
		wpid = n > wpid ? n : wpid;
		n = (int)strlen(h->jobs[i].name);
		wname = n > wname ? n : wname;
	}
	fprintf(f, "%-*s %-*s %-7s %-*s %-8s %-7s %s\n", wjob, "JOB", wpid, "PID", "STATE", wname,
		"NAME", "STARTED", "EXIT", "COMMAND");
	for (size_t i = 0; i < h->njobs; i++) {
		const ctld_JobInfo *ji = &h->jobs[i];

		job_exit_text(ji, exit_text, sizeof(exit_text));
		job_start_text(ji, started, sizeof(started));
		fprintf(f, "%-*llu %-*u %-7s %-*s %-8s %-7s %s\n", wjob,
			(unsigned long long)ji->job, wpid, ji->pid, state_name(ji->state, false),
			wname, clean(ji->name, name, sizeof(name)), started, exit_text,
			clean(ji->command, cmd, sizeof(cmd)));
	}
	if (fclose(f) == 0)
		emit(h, STDOUT_FILENO, text, len);
	free(text);
}

static void on_list_reply(struct host *h, const ctld_ListReply *lr)
{
	ctld_JobInfo *grown;

	if (lr->jobs_count) {
		grown = realloc(h->jobs, (h->njobs + lr->jobs_count) * sizeof(*grown));
		if (!grown) {
			say(h, "out of memory for the job list");
			host_finish(h, EXIT_FAILURE_REPLY);
			return;
		}
		h->jobs = grown;
		memcpy(h->jobs + h->njobs, lr->jobs, lr->jobs_count * sizeof(*grown));
		h->njobs += lr->jobs_count;
	}
	if (lr->more && lr->jobs_count) {
		send_list(h, lr->jobs[lr->jobs_count - 1].job);
		return;
	}
	if (G.args.json)
		json_jobs(h);
	else
		print_jobs(h);
	host_finish(h, 0);
}


/* The numeric Stats fields, in the order both printers show them. */
struct stat_field {
	const char *name;
	size_t offset;
	size_t size;
};
#define STAT_FIELD(f) { #f, offsetof(ctld_StatsReply, f), sizeof(((ctld_StatsReply *)0)->f) }
static const struct stat_field stat_fields[] = {
	STAT_FIELD(clients),	       STAT_FIELD(jobs_running),   STAT_FIELD(jobs_started),
	STAT_FIELD(port_watches),      STAT_FIELD(file_watches),   STAT_FIELD(ring_events),
	STAT_FIELD(ring_received),     STAT_FIELD(ring_drops),	   STAT_FIELD(exits_checked),
	STAT_FIELD(exit_mismatches),   STAT_FIELD(tracked_processes), STAT_FIELD(orphans_reaped),
	STAT_FIELD(output_dropped_bytes), STAT_FIELD(protocol_errors), STAT_FIELD(rss_kb),
	STAT_FIELD(spawner_pid),       STAT_FIELD(unauthenticated), STAT_FIELD(unauthenticated_evicted),
	STAT_FIELD(log_lines_dropped), STAT_FIELD(log_lines_suppressed),
	STAT_FIELD(spawner_pid),       STAT_FIELD(output_budget),  STAT_FIELD(output_held),
	STAT_FIELD(output_held_peak),  STAT_FIELD(output_budget_dropped_bytes),
	STAT_FIELD(heap_trims),	       STAT_FIELD(tls_full_handshakes),
	STAT_FIELD(tls_resumed_handshakes),
};

static uint64_t stat_value(const ctld_StatsReply *s, const struct stat_field *f)
{
	const char *p = (const char *)s + f->offset;
	uint32_t v32;
	uint64_t v64;

	if (f->size == sizeof(v32)) {
		memcpy(&v32, p, sizeof(v32));
		return v32;
	}
	memcpy(&v64, p, sizeof(v64));
	return v64;
}

static void json_stats(struct host *h, const ctld_StatsReply *s)
{
	struct json_line *j = jbegin(NULL);

	json_add_bool(j, "bpf", s->bpf);
	json_add_str(j, "bpf_status", s->bpf_status);
	json_add_str(j, "spawner", s->spawner);
	json_add_str(j, "listen_confirmation", s->listen_confirmation);
	json_add_str(j, "kernel_features", s->kernel_features);
	json_add_u64(j, "uptime_ns", s->uptime_ns);
	for (size_t i = 0; i < ARRAY_SIZE(stat_fields); i++)
		json_add_u64(j, stat_fields[i].name, stat_value(s, &stat_fields[i]));
	json_open(j, "programs", '[');
	for (pb_size_t i = 0; i < s->programs_count; i++) {
		json_open(j, NULL, '{');
		json_add_str(j, "name", s->programs[i].name);
		json_add_u64(j, "run_count", s->programs[i].run_count);
		json_add_u64(j, "run_time_ns", s->programs[i].run_time_ns);
		json_close(j, '}');
	}
	json_close(j, ']');
	jend(h);
}

static void print_stats(struct host *h, const ctld_StatsReply *s)
{
	uint64_t up = s->uptime_ns / NSEC_PER_SEC;
	char *text = NULL, status[sizeof(s->kernel_features)], name[sizeof(s->programs[0].name)];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		say(h, "out of memory");
		return;
	}
	fprintf(f, "bpf: %s\n", s->bpf ? "on" : "off");
	if (s->bpf_status[0])
		fprintf(f, "bpf_status: %s\n", clean(s->bpf_status, status, sizeof(status)));
	if (s->spawner[0])
		fprintf(f, "spawner: %s\n", clean(s->spawner, status, sizeof(status)));
	if (s->listen_confirmation[0])
		fprintf(f, "listen confirmation: %s\n",
			clean(s->listen_confirmation, status, sizeof(status)));
	if (s->kernel_features[0])
		fprintf(f, "kernel features: %s\n", clean(s->kernel_features, status, sizeof(status)));
	fprintf(f, "uptime: %lluh%02llum%02llus\n", (unsigned long long)up / 3600,
		(unsigned long long)up / 60 % 60, (unsigned long long)up % 60);
	for (size_t i = 0; i < ARRAY_SIZE(stat_fields); i++)
		fprintf(f, "%s: %llu\n", stat_fields[i].name,
			(unsigned long long)stat_value(s, &stat_fields[i]));
	for (pb_size_t i = 0; i < s->programs_count; i++)
		fprintf(f, "program %s: %llu runs, %llu ns (%.0f ns/run%s)\n",
			clean(s->programs[i].name, name, sizeof(name)),
			(unsigned long long)s->programs[i].run_count,
			(unsigned long long)s->programs[i].run_time_ns,
			s->programs[i].run_count
				? (double)s->programs[i].run_time_ns / (double)s->programs[i].run_count
				: 0.0,
			s->programs[i].run_time_ns ? "" : "; timing needs kernel.bpf_stats_enabled=1");
	if (fclose(f) == 0)
		emit(h, STDOUT_FILENO, text, len);
	free(text);
}

/* ------------------------------------------------------------ watches */

/* One watch as a line (human) or an object (--json). The daemon pages the
 * list; each page is printed as it comes, lines are independent. */
static void print_watch(struct host *h, const ctld_WatchInfo *w)
{
	char peer[sizeof(w->client_peer)], path[sizeof(w->path)], what[sizeof(path) + 64];
	char line[sizeof(what) + 256];
	bool port = w->kind == ctld_WatchKind_WATCH_PORT;

	if (G.args.json) {
		struct json_line *j = jbegin(NULL);

		json_add_u64(j, "watch", w->watch);
		json_add_str(j, "kind", port ? "port" : "file");
		json_add_u64(j, "client", w->client);
		json_add_str(j, "client_peer", w->client_peer);
		if (port) {
			json_add_u64(j, "port", w->port);
			json_add_str(j, "addr", w->addr);
			json_add_u64(j, "netns", w->netns);
		} else {
			json_add_str(j, "path", w->path);
			json_add_u64(j, "kinds", w->kinds);
			if (w->has_size_threshold)
				json_add_u64(j, "size_threshold", w->size_threshold);
		}
		json_add_bool(j, "once", w->once);
		jend(h);
		return;
	}
	if (port)
		snprintf(what, sizeof(what), "%u%s%s (netns %llu)", w->port, w->addr[0] ? " on " : "",
			 w->addr, (unsigned long long)w->netns);
	else if (w->has_size_threshold)
		snprintf(what, sizeof(what), "%s (size >= %llu)", clean(w->path, path, sizeof(path)),
			 (unsigned long long)w->size_threshold);
	else
		snprintf(what, sizeof(what), "%s", clean(w->path, path, sizeof(path)));
	snprintf(line, sizeof(line), "%-5llu %-4s #%llu %s  %s%s\n", (unsigned long long)w->watch,
		 port ? "port" : "file", (unsigned long long)w->client,
		 clean(w->client_peer, peer, sizeof(peer)), what, w->once ? "  once" : "");
	emit(h, STDOUT_FILENO, line, strlen(line));
}

static void on_watches_reply(struct host *h, const ctld_WatchesReply *wr)
{
	static const char header[] = "WATCH KIND CLIENT  WHAT\n";

	if (!G.args.json && !h->watches_listed++)
		emit(h, STDOUT_FILENO, header, sizeof(header) - 1);
	for (pb_size_t i = 0; i < wr->watches_count; i++)
		print_watch(h, &wr->watches[i]);
	if (wr->more && wr->watches_count) {
		send_list_watches(h, wr->watches[wr->watches_count - 1].watch);
		return;
	}
	host_finish(h, 0);
}

static void begin(struct host *h)
{
	switch (G.args.cmd) {
	case CLI_LIST:
		send_list(h, 0);
		break;
	case CLI_STATS:
		request(ctld_Request_stats_tag);
		host_send(h, REQ_STATS);
		break;
	default: /* CLI_WATCHES */
		send_list_watches(h, 0);
	}
}

static void on_reply(struct host *h, enum req_kind kind, const ctld_Reply *r)
{
	switch (kind) {
	case REQ_LIST:
		on_list_reply(h, &r->result.list);
		break;
	case REQ_WATCHES:
		on_watches_reply(h, &r->result.watches);
		break;
	case REQ_STATS:
		if (G.args.json)
			json_stats(h, &r->result.stats);
		else
			print_stats(h, &r->result.stats);
		host_finish(h, 0);
		break;
	default:
		break;
	}
}

static void doing(const struct host *h, char *buf, size_t len)
{
	(void)h;
	snprintf(buf, len, "ctl %s was waiting for its answer", cli_cmd_name(G.args.cmd));
}

const struct command cmd_query = { .begin = begin, .on_reply = on_reply, .doing = doing };
