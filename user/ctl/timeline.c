// SPDX-License-Identifier: BSD-2-Clause
/*
 * timeline.c - see timeline.h. The file is written with json.h's line
 * builder: one trace event per line inside {"traceEvents": [...]}, which
 * both chrome://tracing and ui.perfetto.dev read.
 *
 * Times: an event's own daemon time (Launched/Exited/Ready/... time_ns,
 * CLOCK_REALTIME of that node) is moved to ctl's clock by the node's
 * measured offset; an event without one (NotReady, PortClosed,
 * WatchTimeout) gets the time ctl received it, and says so ("time":
 * "received"). Timestamps are microseconds since the earliest event.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "ctl/json.h"
#include "ctl/timeline.h"

struct tl_event {
	uint64_t job, watch;
	uint64_t daemon_ns; /* 0: the daemon gave no time */
	uint64_t local_ns;  /* CLOCK_REALTIME when ctl received it */
	uint32_t node, pid, port;
	int32_t code, sig;
	pb_size_t kind;
	bool flag; /* Exited.timed_out, PortListening.already */
	char text[64];
};

struct tl_name {
	uint32_t node;
	uint64_t job;
	char name[64];
};

static struct {
	FILE *f;
	struct tl_event *ev;
	size_t n, cap;
	uint64_t dropped;
	struct tl_name *names;
	size_t nnames, names_cap;
	struct json_line j;
} T;

bool timeline_enabled(void)
{
	return T.f != NULL;
}

int timeline_open(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || !(T.f = fdopen(fd, "w"))) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return errorf(err, errlen, -e, "--timeline %s: %s", path, strerror(e));
	}
	return 0;
}

static struct tl_event *new_event(size_t node, pb_size_t kind)
{
	struct tl_event *e;

	if (T.n == T.cap) {
		size_t cap = T.cap ? T.cap * 2 : 256;
		struct tl_event *ev;

		if (cap > TIMELINE_MAX_EVENTS || !(ev = realloc(T.ev, cap * sizeof(*ev)))) {
			T.dropped++;
			return NULL;
		}
		T.ev = ev;
		T.cap = cap;
	}
	e = &T.ev[T.n++];
	*e = (struct tl_event){ .node = (uint32_t)node, .kind = kind,
				.local_ns = now_realtime_ns() };
	return e;
}

void timeline_job_name(size_t node, uint64_t job, const char *name)
{
	struct tl_name *nm;

	if (!T.f)
		return;
	if (T.nnames == T.names_cap) {
		size_t cap = T.names_cap ? T.names_cap * 2 : 16;

		if (cap > TIMELINE_MAX_EVENTS || !(nm = realloc(T.names, cap * sizeof(*nm))))
			return;
		T.names = nm;
		T.names_cap = cap;
	}
	nm = &T.names[T.nnames++];
	*nm = (struct tl_name){ .node = (uint32_t)node, .job = job };
	copy_str(nm->name, sizeof(nm->name), name);
}

static void fill(struct tl_event *e, const ctld_Event *ev)
{
	switch (ev->which_kind) {
	case ctld_Event_launched_tag:
		e->job = ev->kind.launched.job, e->pid = ev->kind.launched.pid;
		e->daemon_ns = ev->kind.launched.time_ns;
		break;
	case ctld_Event_exited_tag:
		e->job = ev->kind.exited.job, e->pid = ev->kind.exited.pid;
		e->code = ev->kind.exited.exit_code, e->sig = ev->kind.exited.signal;
		e->flag = ev->kind.exited.timed_out, e->daemon_ns = ev->kind.exited.time_ns;
		break;
	case ctld_Event_exec_failed_tag:
		e->job = ev->kind.exec_failed.job, e->code = ev->kind.exec_failed.sys_errno;
		e->daemon_ns = ev->kind.exec_failed.time_ns;
		break;
	case ctld_Event_ready_tag:
		e->job = ev->kind.ready.job, e->daemon_ns = ev->kind.ready.time_ns;
		e->code = (int32_t)(ev->kind.ready.time_to_ready_ns / 1000);
		break;
	case ctld_Event_not_ready_tag:
		e->job = ev->kind.not_ready.job;
		copy_str(e->text, sizeof(e->text), ev->kind.not_ready.text);
		break;
	case ctld_Event_port_listening_tag:
		e->watch = ev->kind.port_listening.watch, e->port = ev->kind.port_listening.port;
		e->pid = ev->kind.port_listening.pid, e->flag = ev->kind.port_listening.already;
		e->daemon_ns = ev->kind.port_listening.time_ns;
		copy_str(e->text, sizeof(e->text), ev->kind.port_listening.addr);
		break;
	case ctld_Event_port_closed_tag:
		e->watch = ev->kind.port_closed.watch, e->port = ev->kind.port_closed.port;
		e->pid = ev->kind.port_closed.pid;
		copy_str(e->text, sizeof(e->text), ev->kind.port_closed.addr);
		break;
	case ctld_Event_file_event_tag: {
		const char *p = strrchr(ev->kind.file_event.path, '/');

		e->watch = ev->kind.file_event.watch, e->code = (int32_t)ev->kind.file_event.kind;
		e->daemon_ns = ev->kind.file_event.time_ns;
		copy_str(e->text, sizeof(e->text), p ? p + 1 : ev->kind.file_event.path);
		break;
	}
	default: /* WatchTimeout */
		e->watch = ev->kind.watch_timeout.watch;
	}
}

void timeline_event(size_t node, const ctld_Event *ev)
{
	struct tl_event *e;

	if (!T.f || ev->which_kind == ctld_Event_output_tag ||
	    ev->which_kind == ctld_Event_output_dropped_tag ||
	    ev->which_kind == ctld_Event_upgrading_tag)
		return;
	if ((e = new_event(node, ev->which_kind)))
		fill(e, ev);
}

/* ------------------------------------------------------------ writing */

static uint64_t local_time(const struct tl_event *e, const struct clock_offset *clocks)
{
	return e->daemon_ns ? clock_offset_to_local(&clocks[e->node], e->daemon_ns) : e->local_ns;
}

static const char *job_name(uint32_t node, uint64_t job, char *buf, size_t len)
{
	for (size_t i = 0; i < T.nnames; i++)
		if (T.names[i].node == node && T.names[i].job == job)
			return T.names[i].name;
	snprintf(buf, len, "job %" PRIu64, job);
	return buf;
}

/* Starts one trace event: its kind, row and time. */
static void begin(const char *name, char ph, uint32_t node, uint64_t tid, uint64_t ts_us)
{
	char p[2] = { ph, 0 };

	json_begin(&T.j);
	json_add_str(&T.j, "name", name);
	json_add_str(&T.j, "ph", p);
	json_add_u64(&T.j, "pid", node + 1);
	json_add_u64(&T.j, "tid", tid);
	json_add_u64(&T.j, "ts", ts_us);
	if (ph == 'i')
		json_add_str(&T.j, "s", "t");
}

static bool first_line;

static void end_line(void)
{
	if (json_end(&T.j))
		return;
	fputs(first_line ? "\n" : ",\n", T.f);
	first_line = false;
	fwrite(T.j.buf, 1, T.j.len - 1, T.f); /* without its '\n' */
}

static void event_name(const struct tl_event *e, char *buf, size_t len)
{
	switch (e->kind) {
	case ctld_Event_exited_tag:
		if (e->sig)
			snprintf(buf, len, "killed by signal %d%s", e->sig, e->flag ? " (timeout)" : "");
		else
			snprintf(buf, len, "exit %d", e->code);
		break;
	case ctld_Event_exec_failed_tag:
		snprintf(buf, len, "exec failed: %s", strerror(e->code));
		break;
	case ctld_Event_ready_tag:
		snprintf(buf, len, "ready");
		break;
	case ctld_Event_not_ready_tag:
		snprintf(buf, len, "not ready: %s", e->text);
		break;
	case ctld_Event_port_listening_tag:
		snprintf(buf, len, "listen %s:%u%s", e->text, e->port, e->flag ? " (already)" : "");
		break;
	case ctld_Event_port_closed_tag:
		snprintf(buf, len, "closed %s:%u", e->text, e->port);
		break;
	case ctld_Event_file_event_tag:
		snprintf(buf, len, "file %s", e->text);
		break;
	default:
		snprintf(buf, len, "watch %" PRIu64 " timed out", e->watch);
	}
}

static void write_event(const struct tl_event *e, const struct clock_offset *clocks,
			uint64_t base)
{
	uint64_t ts = (local_time(e, clocks) - base) / 1000;
	uint64_t tid = e->job ? e->job : 0;
	char name[128], jn[32];

	if (e->kind == ctld_Event_launched_tag) {
		begin(job_name(e->node, e->job, jn, sizeof(jn)), 'B', e->node, tid, ts);
		json_open(&T.j, "args", '{');
		json_add_u64(&T.j, "pid", e->pid);
		json_close(&T.j, '}');
		end_line();
		return;
	}
	event_name(e, name, sizeof(name));
	begin(name, 'i', e->node, tid, ts);
	json_open(&T.j, "args", '{');
	if (e->daemon_ns)
		json_add_u64(&T.j, "node_time_ns", e->daemon_ns);
	else
		json_add_str(&T.j, "time", "received");
	json_add_u64(&T.j, "uncertainty_us", e->daemon_ns ? clocks[e->node].uncertainty_ns / 1000 : 0);
	if (e->pid)
		json_add_u64(&T.j, "pid", e->pid);
	if (e->kind == ctld_Event_ready_tag)
		json_add_u64(&T.j, "time_to_ready_us", (uint64_t)e->code);
	json_close(&T.j, '}');
	end_line();
	if (e->kind == ctld_Event_exited_tag || e->kind == ctld_Event_exec_failed_tag) {
		begin(job_name(e->node, e->job, jn, sizeof(jn)), 'E', e->node, tid, ts);
		end_line();
	}
}

static void write_rows(const char *const *nodes, const struct clock_offset *clocks, size_t n)
{
	char label[96];

	for (size_t i = 0; i < n; i++) {
		begin("process_name", 'M', (uint32_t)i, 0, 0);
		json_open(&T.j, "args", '{');
		json_add_str(&T.j, "name", nodes[i]);
		json_close(&T.j, '}');
		end_line();
		snprintf(label, sizeof(label), "clock %+.3f ms ± %.3f ms (%u samples)",
			 (double)clocks[i].offset_ns / 1e6, (double)clocks[i].uncertainty_ns / 1e6,
			 clocks[i].samples);
		begin("process_labels", 'M', (uint32_t)i, 0, 0);
		json_open(&T.j, "args", '{');
		json_add_str(&T.j, "labels", label);
		json_close(&T.j, '}');
		end_line();
	}
	for (size_t i = 0; i < T.nnames; i++) {
		begin("thread_name", 'M', T.names[i].node, T.names[i].job, 0);
		json_open(&T.j, "args", '{');
		json_add_str(&T.j, "name", T.names[i].name);
		json_close(&T.j, '}');
		end_line();
	}
}

static void write_other(const char *const *nodes, const struct clock_offset *clocks, size_t n,
			uint64_t base)
{
	json_begin(&T.j);
	json_add_str(&T.j, "tool", "ctl " CTLD_VERSION);
	json_add_str(&T.j, "clock_sync", "Ping round trips: offset = node clock - ctl clock, "
					 "within +- half the best round trip");
	json_add_u64(&T.j, "base_realtime_ns", base);
	json_add_u64(&T.j, "dropped_events", T.dropped);
	json_open(&T.j, "nodes", '[');
	for (size_t i = 0; i < n; i++) {
		json_open(&T.j, NULL, '{');
		json_add_str(&T.j, "name", nodes[i]);
		json_add_u64(&T.j, "pid", i + 1);
		json_add_i64(&T.j, "offset_ns", clocks[i].offset_ns);
		json_add_u64(&T.j, "uncertainty_ns", clocks[i].uncertainty_ns);
		json_add_i64(&T.j, "last_offset_ns", clocks[i].last_offset_ns);
		json_add_u64(&T.j, "samples", clocks[i].samples);
		json_close(&T.j, '}');
	}
	json_close(&T.j, ']');
	if (!json_end(&T.j))
		fwrite(T.j.buf, 1, T.j.len - 1, T.f);
}

int timeline_write(const char *const *nodes, const struct clock_offset *clocks, size_t n,
		   char *err, size_t errlen)
{
	uint64_t base = UINT64_MAX;
	int ret = 0;

	if (!T.f)
		return 0;
	for (size_t i = 0; i < T.n; i++) {
		uint64_t t = T.ev[i].node < n ? local_time(&T.ev[i], clocks) : UINT64_MAX;

		base = t < base ? t : base;
	}
	if (base == UINT64_MAX)
		base = now_realtime_ns();
	first_line = true;
	fputs("{\"displayTimeUnit\": \"ms\", \"traceEvents\": [", T.f);
	write_rows(nodes, clocks, n);
	for (size_t i = 0; i < T.n; i++)
		if (T.ev[i].node < n)
			write_event(&T.ev[i], clocks, base);
	fputs("\n],\n\"otherData\": ", T.f);
	write_other(nodes, clocks, n, base);
	fputs("}\n", T.f);
	if (ferror(T.f) | (fclose(T.f) != 0))
		ret = errorf(err, errlen, -EIO, "--timeline: writing the file failed");
	T.f = NULL;
	free(T.ev);
	free(T.names);
	json_free(&T.j);
	memset(&T, 0, sizeof(T));
	return ret;
}
