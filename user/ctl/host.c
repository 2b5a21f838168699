// SPDX-License-Identifier: BSD-2-Clause
/*
 * host.c - one daemon connection per target: connecting, requests in
 * flight and the replies that answer them, and how a host ends.
 *
 * Winding up: a host that must still tell its daemon something before ctl
 * exits (Detach after start, SIGTERM to a job whose output nobody reads
 * anymore, SIGKILL after a timeout) is "finishing": it ignores events and
 * ends with its final status once that request is answered.
 *
 * Upgrades: a daemon that upgrades in place says so (Upgrading) before it
 * closes the connection; the host connects again and the command picks up
 * where it was (cmd_run attaches to its job again and skips the output it
 * has shown, by offset).
 *
 * Liveness: every connection pings a daemon that has been quiet and gives
 * up on one that stays silent for --liveness (client.h). Such a host ends
 * with EXIT_UNAVAILABLE and a message naming the node and what ctl was
 * waiting for there; the other hosts go on.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "ctl/ctl.h"
#include "ctl/output.h"
#include "ctl/timeline.h"

/* Upgrades in place one ctl run follows on a host (a bound, not a policy). */
#define MAX_RECONNECTS 16

static ctld_Message msg; /* the message being handled (large: not on the stack) */

void host_finish(struct host *h, int status)
{
	if (h->done)
		return;
	flush_lines(h);
	h->done = true;
	if (G.cmd && G.cmd->finished)
		G.cmd->finished(h);
	h->status = status;
	/* closing the connection detaches from the job (and ends watches) */
	ctld_conn_close(&h->conn);
	free(h->lines);
	h->lines = NULL;
	free(h->jobs);
	h->jobs = NULL;
	free(h->ended_early);
	h->ended_early = NULL;
}

void host_wind_up(struct host *h, int status)
{
	h->finishing = true;
	h->final_status = status;
}

bool host_running(const struct host *h)
{
	return h->started && !h->done && !h->finishing;
}

/* For --summary: "unreachable (connection refused)" (glibc's text, lower case). */
static void note_unreachable(struct host *h, int err)
{
	const char *desc = err < 0 ? strerrordesc_np(-err) : NULL;
	int n = snprintf(h->failure, sizeof(h->failure), "unreachable (%s)", desc ? desc : "?");

	if (n > 13)
		h->failure[13] = (char)tolower((unsigned char)h->failure[13]);
}

/* The daemon answered once, then went silent: which node, for how long,
 * and what ctl was waiting for there. */
static void went_silent(struct host *h, uint64_t silent_ms)
{
	char silence[32], doing[160] = "";

	if (silent_ms < 10000)
		snprintf(silence, sizeof(silence), "%.1f s", (double)silent_ms / 1000);
	else
		snprintf(silence, sizeof(silence), "%llu s", (unsigned long long)silent_ms / 1000);
	if (G.cmd->doing)
		G.cmd->doing(h, doing, sizeof(doing));
	say(NULL, "%s %s: no answer for %s (liveness)%s%s", h->target->is_unix ? "daemon" : "node",
	    h->target->name, silence, doing[0] ? "; " : "", doing);
	host_finish(h, EXIT_UNAVAILABLE);
}

static int connect_target(struct host *h)
{
	const struct cli_target *t = h->target;

	struct clock_offset clock = h->conn.clock; /* measured before a reconnect */

	ctld_conn_init(&h->conn, "ctl " CTLD_VERSION);
	h->conn.clock = clock;
	ctld_conn_set_liveness(&h->conn, G.args.liveness_ms);
	if (timeline_enabled())
		ctld_conn_sample_clock(&h->conn, TIMELINE_CLOCK_PERIOD_MS);
	if (t->is_unix)
		return ctld_conn_connect_unix(&h->conn, t->path, G.args.connect_timeout_ms);
	return ctld_conn_connect_tcp(&h->conn, t->host, t->port, G.tls, G.args.connect_timeout_ms);
}

/* The daemon upgraded in place and closed the connection: its listening
 * sockets were handed to the new image, so a new connection waits in
 * their queue until that image accepts it. A daemon that went away
 * instead refuses at once: that is the usual error. */
static int reconnect(struct host *h)
{
	h->upgrading = false;
	if (!G.cmd->reconnected || h->reconnects++ >= MAX_RECONNECTS)
		return -1;
	ctld_conn_close(&h->conn);
	memset(h->pending, 0, sizeof(h->pending));
	h->stdin_in_flight = 0;
	if (connect_target(h))
		return -1;
	return G.cmd->reconnected(h);
}

/* The connection ended: say why, with the exit status that tells it. */
static void conn_failed(struct host *h, int err)
{
	const struct cli_target *t = h->target;
	uint64_t silent_ms = ctld_conn_silent_ms(&h->conn);

	if (h->done)
		return;
	if (h->finishing) {
		host_finish(h, h->final_status);
		return;
	}
	if (h->upgrading && reconnect(h) == 0)
		return;
	if (silent_ms) {
		copy_str(h->failure, sizeof(h->failure), "silent (liveness)");
		went_silent(h, silent_ms);
	} else if (err == -EREMOTEIO) { /* the daemon refused Hello */
		say(h, "%s", ctld_conn_error(&h->conn));
		host_finish(h, EXIT_FAILURE_REPLY);
	} else if (!ctld_conn_reached(&h->conn) || err == -ETIMEDOUT) {
		note_unreachable(h, err);
		say(NULL, "%s%s", ctld_conn_error(&h->conn),
		    t->is_unix && (err == -ENOENT || err == -ECONNREFUSED)
			    ? " (is ctld-bpf running? -S or $CTLD_SOCKET name its socket)"
			    : "");
		host_finish(h, EXIT_UNAVAILABLE);
	} else {
		say(NULL, "%s", ctld_conn_error(&h->conn));
		host_finish(h, EXIT_PROTOCOL);
	}
}

static struct pending *pending_slot(struct host *h, uint64_t id)
{
	for (size_t i = 0; i < MAX_PENDING; i++)
		if (h->pending[i].id == id)
			return &h->pending[i];
	return NULL;
}

ctld_Request *request(pb_size_t which)
{
	memset(&G.req, 0, sizeof(G.req));
	G.req.which_body = which;
	return &G.req;
}

int host_send(struct host *h, enum req_kind kind)
{
	struct pending *slot = pending_slot(h, 0);
	uint64_t id;
	int err;

	if (!slot) {
		say(h, "too many requests in flight");
		host_finish(h, EXIT_PROTOCOL);
		return -ENOSPC;
	}
	if ((err = ctld_conn_send(&h->conn, &G.req, &id))) {
		if (h->conn.state == CTLD_CONN_CLOSED)
			conn_failed(h, err);
		else {
			say(h, "cannot send a request: %s", strerror(-err));
			host_finish(h, EXIT_PROTOCOL);
		}
		return err;
	}
	*slot = (struct pending){ .id = id, .kind = kind };
	return 0;
}

/* ------------------------------------------------------------ replies */

static void on_reply(struct host *h, const ctld_Reply *r)
{
	struct pending *p = r->id ? pending_slot(h, r->id) : NULL;
	bool failed = r->has_error && r->error.code != ctld_ErrorCode_OK;
	enum req_kind kind;
	char text[sizeof(r->error.text)];

	if (!p && failed) { /* id 0: the daemon refuses the stream itself, then closes */
		say(h, "%s: %s", ctld_error_code_name(r->error.code),
		    clean(r->error.text, text, sizeof(text)));
		host_finish(h, EXIT_PROTOCOL);
		return;
	}
	if (!p) {
		say(NULL, "%s answered request %llu, which ctl never sent", h->target->name,
		    (unsigned long long)r->id);
		host_finish(h, EXIT_PROTOCOL);
		return;
	}
	kind = p->kind;
	*p = (struct pending){ .id = 0 };
	if (kind == REQ_FILE_CREDIT) /* the transfer may have ended since: nothing to do */
		return;
	if (kind == REQ_STDIN) {
		h->stdin_in_flight--;
		h->stdin_done |= failed; /* the job closed its stdin or ended: stop feeding it */
		return;
	}
	if ((kind == REQ_SIGNAL || kind == REQ_DETACH) && h->finishing) {
		host_finish(h, h->final_status);
		return;
	}
	if (kind == REQ_SIGNAL) {
		h->signal_answered = true; /* (it may have just ended: NOT_FOUND) */
		return;
	}
	if (failed) {
		say(h, "%s: %s", ctld_error_code_name(r->error.code),
		    clean(r->error.text, text, sizeof(text)));
		host_finish(h, EXIT_FAILURE_REPLY);
		return;
	}
	if (G.cmd->on_reply)
		G.cmd->on_reply(h, kind, r);
}

static void on_message(struct host *h, const ctld_Message *m)
{
	if (m->which_kind == ctld_Message_event_tag &&
	    m->kind.event.which_kind == ctld_Event_upgrading_tag) {
		h->upgrading = true; /* the connection ends next: see reconnect() */
		return;
	}
	if (m->which_kind == ctld_Message_event_tag)
		timeline_event((size_t)(h - G.hosts), &m->kind.event);
	if (m->which_kind == ctld_Message_reply_tag)
		on_reply(h, &m->kind.reply);
	else if (m->which_kind == ctld_Message_event_tag && !h->finishing && G.cmd->on_event)
		G.cmd->on_event(h, &m->kind.event);
}

/* ------------------------------------------------------------ the connection */

void host_start(struct host *h)
{
	int err;

	h->started = true;
	ctld_conn_init(&h->conn, "ctl " CTLD_VERSION); /* host_finish() closes it */
	if (G.multi && !(h->lines = calloc(2, sizeof(*h->lines)))) {
		say(h, "out of memory");
		host_finish(h, EXIT_FAILURE_REPLY);
		return;
	}
	if ((err = connect_target(h))) {
		conn_failed(h, err);
		return;
	}
	G.cmd->begin(h);
}

void host_io(struct host *h, short revents, uint64_t now)
{
	int ret = ctld_conn_io(&h->conn, revents, now);

	if (ret) {
		conn_failed(h, ret);
		return;
	}
	while (!h->done && (ret = ctld_conn_next(&h->conn, &msg)) > 0)
		on_message(h, &msg);
	if (!h->done && ret < 0)
		conn_failed(h, ret);
}
