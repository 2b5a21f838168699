// SPDX-License-Identifier: BSD-2-Clause
/*
 * cmd_files.c - put and get: the command table, what both directions
 * share (the node's name and %h, the progress line on a terminal) and the
 * per-host state's life. The directions are in files_put.c and
 * files_get.c; the protocol is docs/protocol.md "Files".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "ctl/files.h"
#include "ctl/output.h"

/* ------------------------------------------------------------ names */

void node_name(const struct host *h, char *buf, size_t len)
{
	const struct cli_target *t = h->target;

	if (t->is_unix) {
		if (gethostname(buf, len) < 0 || !buf[0])
			snprintf(buf, len, "localhost");
		buf[len - 1] = '\0';
	} else if (!strcmp(t->port, CLI_DEFAULT_PORT)) {
		snprintf(buf, len, "%s", t->host);
	} else {
		snprintf(buf, len, "%s:%s", t->host, t->port);
	}
}

bool expand_node(const struct host *h, const char *text, char *out, size_t len)
{
	char node[300];
	size_t n = 0;

	node_name(h, node, sizeof(node));
	for (const char *p = text; *p; p++) {
		const char *add = p[0] == '%' && p[1] == 'h' ? node : NULL;
		char one[2] = { *p, '\0' };

		if (p[0] == '%' && (p[1] == 'h' || p[1] == '%'))
			p++;
		if (!add)
			add = one;
		if (n + strlen(add) >= len)
			return false;
		memcpy(out + n, add, strlen(add));
		n += strlen(add);
	}
	out[n] = '\0';
	return true;
}

bool remote_path(const struct host *h, const char *text, char *out, size_t len)
{
	char expanded[PATH_MAX], cwd[PATH_MAX];

	if (!expand_node(h, text, expanded, sizeof(expanded)))
		return false;
	if (expanded[0] != '/' && h->target->is_unix && getcwd(cwd, sizeof(cwd)))
		return join(out, len, cwd, expanded);
	return copy_str(out, len, expanded);
}

bool join(char *out, size_t len, const char *a, const char *b)
{
	char buf[PATH_MAX + 1024]; /* out may be a */
	int n = !b[0] ? snprintf(buf, sizeof(buf), "%s", a)
		: snprintf(buf, sizeof(buf), "%s%s%s", a,
			   a[0] && a[strlen(a) - 1] == '/' ? "" : "/", b);

	return n >= 0 && (size_t)n < len && copy_str(out, len, buf);
}

/* ------------------------------------------------------------ progress */

/* One line on stderr, rewritten in place, when it is a terminal and ctl
 * prints no JSON: bytes done of those known, and the rate since the start. */
static struct {
	bool on, shown;
	uint64_t total, done, start_ns, last_ns;
} P;

static void progress_show(bool final)
{
	uint64_t now = now_monotonic_ns();
	double secs = (double)(now - P.start_ns) / 1e9, mib = 1024.0 * 1024.0;

	if (!P.on || (!final && now - P.last_ns < 200000000))
		return;
	P.last_ns = now;
	P.shown = true;
	fprintf(stderr, "\r%s: %.1f / %.1f MiB (%.1f MiB/s)%s", cli_cmd_name(G.args.cmd),
		(double)P.done / mib, (double)P.total / mib,
		secs > 0 ? (double)P.done / mib / secs : 0.0, final ? "\n" : "  ");
}

void progress_total(uint64_t bytes)
{
	P.total += bytes;
}

void progress_add(uint64_t bytes)
{
	P.done += bytes;
	progress_show(false);
}

/* ------------------------------------------------------------ the command */

static void begin(struct host *h)
{
	if (!P.start_ns) {
		P.start_ns = now_monotonic_ns();
		P.on = isatty(STDERR_FILENO) && !G.args.json;
	}
	h->xfer = calloc(1, sizeof(*h->xfer));
	if (!h->xfer) {
		say(h, "out of memory");
		host_finish(h, EXIT_FAILURE_REPLY);
		return;
	}
	h->xfer->fd = -1;
	if (G.args.cmd == CLI_PUT)
		put_begin(h);
	else
		get_begin(h);
}

static void on_reply(struct host *h, enum req_kind kind, const ctld_Reply *r)
{
	if (G.args.cmd == CLI_PUT)
		put_on_reply(h, kind, r);
	else
		get_on_reply(h, kind, r);
}

static void on_event(struct host *h, const ctld_Event *ev)
{
	if (G.args.cmd == CLI_GET)
		get_on_event(h, ev);
}

static void doing(const struct host *h, char *buf, size_t len)
{
	const struct xfer *x = h->xfer;

	if (x && x->fd >= 0)
		snprintf(buf, len, "ctl was %s %.100s (%llu of %llu bytes)",
			 G.args.cmd == CLI_PUT ? "sending" : "receiving",
			 G.args.cmd == CLI_PUT ? x->remote : x->dest, (unsigned long long)x->done,
			 (unsigned long long)x->size);
}

static void finished(struct host *h)
{
	bool all_done = true;

	if (!h->xfer)
		return;
	if (G.args.cmd == CLI_PUT)
		put_finished(h);
	else
		get_finished(h);
	free(h->xfer);
	h->xfer = NULL;
	for (size_t i = 0; i < G.nhosts; i++)
		all_done &= G.hosts[i].done;
	if (all_done && P.shown)
		progress_show(true);
}

const struct command cmd_files = { .begin = begin, .on_reply = on_reply, .on_event = on_event,
				   .doing = doing, .finished = finished };
