// SPDX-License-Identifier: BSD-2-Clause
/*
 * cmd_watch.c - watch-port (until a listener is there) and watch-file
 * (until the first event, or every event with --follow).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "ctl/ctl.h"
#include "ctl/output.h"

static void on_port_listening(struct host *h, const ctld_PortListening *p)
{
	char comm[sizeof(p->comm)], addr[sizeof(p->addr)], line[160];

	if (p->watch != h->watch)
		return;
	if (G.args.json) {
		json_port_listening(h, p);
	} else {
		int n = snprintf(line, sizeof(line), "port %u is listening: pid %u (%s) on %s\n",
				 p->port, p->pid, clean(p->comm, comm, sizeof(comm)),
				 clean(p->addr, addr, sizeof(addr)));

		emit(h, STDOUT_FILENO, line, (size_t)n);
	}
	host_finish(h, 0);
}

static void on_watch_timeout(struct host *h, const ctld_WatchTimeout *t)
{
	bool file = G.args.cmd == CLI_WATCH_FILE;
	char dur[32];

	if (t->watch != h->watch)
		return;
	if (G.args.json) {
		json_add_u64(jbegin("watch_timeout"), "watch", t->watch);
		jend(h);
	}
	fmt_ms(file ? G.args.watch_file.timeout_ms : G.args.watch_port.timeout_ms, dur,
	       sizeof(dur));
	if (file)
		say(h, "no event for %s within %s", G.args.watch_file.path, dur);
	else
		say(h, "nothing listened on port %u within %s", G.args.watch_port.port, dur);
	host_finish(h, EXIT_TIMEOUT);
}

static void on_file_event(struct host *h, const ctld_FileEvent *f)
{
	const char *kind = cli_file_event_name(f->kind);
	char path[sizeof(f->path)], line[sizeof(path) + 64];

	if (f->watch != h->watch)
		return;
	if (G.args.json) {
		struct json_line *j = jbegin("file_event");

		json_add_u64(j, "watch", f->watch);
		json_add_str(j, "path", f->path);
		json_add_str(j, "kind", kind);
		json_add_u64(j, "size", f->size);
		jend(h);
	} else {
		emit(h, STDOUT_FILENO, line,
		     (size_t)snprintf(line, sizeof(line), "%s: %s (size %llu)\n",
				      clean(f->path, path, sizeof(path)), kind,
				      (unsigned long long)f->size));
	}
	if (f->kind == ctld_FileEventKind_FILE_OVERFLOW)
		say(h, "the daemon's event queue overflowed: events were lost");
	if (!G.args.follow)
		host_finish(h, 0);
}

static void begin(struct host *h)
{
	if (G.args.cmd == CLI_WATCH_FILE)
		request(ctld_Request_watch_file_tag)->body.watch_file = G.args.watch_file;
	else
		request(ctld_Request_watch_port_tag)->body.watch_port = G.args.watch_port;
	host_send(h, REQ_WATCH);
}

static void on_reply(struct host *h, enum req_kind kind, const ctld_Reply *r)
{
	if (kind == REQ_WATCH)
		h->watch = r->result.watch.watch;
}

static void on_event(struct host *h, const ctld_Event *ev)
{
	switch (ev->which_kind) {
	case ctld_Event_port_listening_tag:
		on_port_listening(h, &ev->kind.port_listening);
		break;
	case ctld_Event_watch_timeout_tag:
		on_watch_timeout(h, &ev->kind.watch_timeout);
		break;
	case ctld_Event_file_event_tag:
		on_file_event(h, &ev->kind.file_event);
		break;
	default: /* PortClosed, or a kind newer than ctl */
		break;
	}
}

static void doing(const struct host *h, char *buf, size_t len)
{
	char path[sizeof(G.args.watch_file.path)];

	(void)h;
	if (G.args.cmd == CLI_WATCH_FILE)
		snprintf(buf, len, "ctl was watching %.100s",
			 clean(G.args.watch_file.path, path, sizeof(path)));
	else
		snprintf(buf, len, "ctl was watching port %u", G.args.watch_port.port);
}

const struct command cmd_watch = {
	.begin = begin, .on_reply = on_reply, .on_event = on_event, .doing = doing
};
