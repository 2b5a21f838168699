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
 * Liveness: every connection pings a daemon that has been quiet and gives
 * up on one that stays silent for --liveness (client.h). Such a host ends
 * with EXIT_UNAVAILABLE and a message naming the node and what ctl was
 * waiting for there; the other hosts go on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"
#include "ctl/output.h"

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
	return !h->done && !h->finishing;
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
	if (silent_ms) {
		went_silent(h, silent_ms);
	} else if (err == -EREMOTEIO) { /* the daemon refused Hello */
		say(h, "%s", ctld_conn_error(&h->conn));
		host_finish(h, EXIT_FAILURE_REPLY);
	} else if (!ctld_conn_reached(&h->conn) || err == -ETIMEDOUT) {
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
	if (m->which_kind == ctld_Message_reply_tag)
		on_reply(h, &m->kind.reply);
	else if (m->which_kind == ctld_Message_event_tag && !h->finishing && G.cmd->on_event)
		G.cmd->on_event(h, &m->kind.event);
}

/* ------------------------------------------------------------ the connection */

void host_start(struct host *h)
{
	const struct cli_target *t = h->target;
	int err;

	ctld_conn_init(&h->conn, "ctl " CTLD_VERSION);
	ctld_conn_set_liveness(&h->conn, G.args.liveness_ms);
	if (t->is_unix)
		err = ctld_conn_connect_unix(&h->conn, t->path, G.args.connect_timeout_ms);
	else
		err = ctld_conn_connect_tcp(&h->conn, t->host, t->port, G.tls,
					    G.args.connect_timeout_ms);
	if (err) {
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
