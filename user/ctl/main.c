// SPDX-License-Identifier: BSD-2-Clause
/*
 * ctl.c - the ctl command: main(), the poll loop that drives one daemon
 * connection per target, the commands, and their output.
 *
 * Each command is a small state machine per host, fed by that host's replies
 * and events: begin() queues the first request behind Hello (no extra round
 * trip), on_reply()/on_event() move it on, host_finish() ends it with an exit
 * status. Hosts share one poll() loop with the signal pipe and, for run,
 * ctl's stdin. Errors are values; only main() exits.
 *
 * Job output is written as it arrives with plain, blocking write(2) calls:
 * a slow reader of ctl's stdout slows ctl down, and the daemon then drops
 * output for ctl (reported as OutputDropped) instead of queueing without
 * bound. With several hosts, output is cut into whole lines, each prefixed
 * with its host, so lines of different hosts never mix.
 *
 * Winding up: a host that must still tell its daemon something before ctl
 * exits (Detach after start, SIGTERM to a job whose output nobody reads
 * anymore, SIGKILL after a --wait-port timeout) is "finishing": it ignores
 * events and ends with its final status once that request is answered.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ctl/args.h"
#include "client/client.h"
#include "ctl/json.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/wire.h"

#define EXIT_FAILURE_REPLY 1
#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69
#define EXIT_PROTOCOL 76
#define EXIT_TIMEOUT 124
#define EXIT_NOEXEC 127
#define EXIT_BROKEN_PIPE (128 + SIGPIPE)

#define STDIN_CHUNK sizeof(((ctld_WriteStdin *)0)->data.bytes)
#define STDIN_IN_FLIGHT 4 /* WriteStdin requests awaiting their reply, per host */
#define MAX_PENDING 16
#define LINE_BUF 4096 /* a longer line is cut (multi-host output only) */

enum req_kind {
	REQ_NONE,
	REQ_RUN,
	REQ_WATCH,
	REQ_SIGNAL, /* ctl's own: forwarded Ctrl-C, SIGTERM on EPIPE, SIGKILL on timeout */
	REQ_DETACH,
	REQ_STDIN,
	REQ_ATTACH,
	REQ_KILL, /* the kill command */
	REQ_LIST,
	REQ_STATS,
	REQ_WATCHES,
};

struct pending {
	uint64_t id;
	enum req_kind kind;
};

struct linebuf {
	char buf[LINE_BUF];
	size_t len;
};

struct host {
	const struct cli_target *target;
	struct ctld_conn conn;
	char prefix[sizeof(((struct cli_target *)0)->name) + 2]; /* "HOST:PORT: " or "" */
	struct linebuf lines[2];				   /* partial stdout/stderr lines */
	struct pending pending[MAX_PENDING];
	int pfd; /* index in the poll array, or -1 */
	uint64_t job, watch;
	int pending_signal; /* to send once the job id is known */
	unsigned stdin_in_flight;
	bool stdin_done;
	bool finishing;
	int final_status;
	bool done;
	int status;
	unsigned watches_listed; /* pages of `watches` printed */
	ctld_JobInfo *jobs; /* list */
	size_t njobs;
};

static struct {
	struct cli_args args;
	struct host *hosts;
	size_t nhosts;
	bool multi;
	struct tls_ctx *tls;
	int sig_pipe[2];
	unsigned nsignals;    /* handled so far */
	unsigned quit_after;  /* this many signals end ctl (2 for run: the first is forwarded) */
	int forwarded_signal; /* a job killed by it needs no message */
	bool stdin_forward, stdin_eof;
	bool stdout_failed;
	struct json_line json;
	ctld_Message msg;
	ctld_Request req;
	uint8_t stdin_buf[STDIN_CHUNK];
} G = { .sig_pipe = { -1, -1 } };

static volatile sig_atomic_t signals_caught;

static void stdout_failed(int err);

/* ------------------------------------------------------------ output */

/* Writes everything, or fails; a signal aborts a blocked write only when it is
 * the one that ends ctl (the loop will see it). */
static int write_iov(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n = writev(fd, iov, cnt);

		if (n < 0) {
			if (errno == EINTR && (unsigned)signals_caught < G.quit_after)
				continue;
			return -errno;
		}
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int write_line(int fd, const char *prefix, const void *a, size_t alen, const void *b,
		      size_t blen)
{
	struct iovec iov[3] = { { (void *)prefix, strlen(prefix) },
				{ (void *)a, alen },
				{ (void *)b, blen } };

	return write_iov(fd, iov, 3);
}

/* Multi-host output: whole lines, each with the host prefix. */
static int emit_lines(struct host *h, int fd, const char *p, size_t len)
{
	struct linebuf *lb = &h->lines[fd == STDERR_FILENO];
	int err = 0;

	while (len && !err) {
		const char *nl = memchr(p, '\n', len);
		size_t seg = nl ? (size_t)(nl - p) + 1 : len;

		if (!nl && lb->len + seg <= sizeof(lb->buf)) {
			memcpy(lb->buf + lb->len, p, seg);
			lb->len += seg;
			return 0;
		}
		if (!nl) { /* too long: cut it here */
			seg = sizeof(lb->buf) - lb->len;
			err = write_line(fd, h->prefix, lb->buf, lb->len, p, seg);
			err = err ? err : write_line(fd, "", "\n", 1, NULL, 0);
		} else {
			err = write_line(fd, h->prefix, lb->buf, lb->len, p, seg);
		}
		lb->len = 0;
		p += seg;
		len -= seg;
	}
	return err;
}

/*
 * Job output and results: to fd 1 or 2, prefixed by host when there are
 * several (h NULL: never prefixed, e.g. JSON lines). A failure on stdout
 * winds everything up (stdout_failed); on stderr it is ignored.
 */
static int emit(struct host *h, int fd, const void *data, size_t len)
{
	int err;

	if (fd == STDOUT_FILENO && G.stdout_failed)
		return -EPIPE;
	if (G.multi && h)
		err = emit_lines(h, fd, data, len);
	else
		err = write_line(fd, "", data, len, NULL, 0);
	if (err == -EINTR) /* ctl is being interrupted: drop it */
		return 0;
	if (err && fd == STDOUT_FILENO) {
		stdout_failed(err);
		return err;
	}
	return 0;
}

static void flush_lines(struct host *h)
{
	for (int s = 0; s < 2; s++) {
		if (h->lines[s].len)
			emit(h, s ? STDERR_FILENO : STDOUT_FILENO, "\n", 1);
		h->lines[s].len = 0;
	}
}

/* A message from ctl itself: "ctl: [HOST:PORT: ]text" on stderr. */
static void say(const struct host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const struct host *h, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n = snprintf(line, sizeof(line), "ctl: %s", G.multi && h ? h->prefix : "");
	size_t len;

	va_start(ap, fmt);
	len = vformat_line(line, sizeof(line), n < 0 ? 0 : (size_t)n, fmt, ap);
	va_end(ap);
	write_line(STDERR_FILENO, "", line, len, NULL, 0);
}

/* Text from the daemon, made safe for a terminal: control bytes become '?'. */
static const char *clean(const char *s, char *buf, size_t cap)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < cap; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

static void fmt_ms(uint32_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%ums", ms);
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "%uh", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%um", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%us", ms / 1000);
	else
		snprintf(buf, len, "%.3gs", ms / 1000.0);
}

static struct json_line *jbegin(const char *event)
{
	json_begin(&G.json);
	if (event)
		json_add_str(&G.json, "event", event);
	return &G.json;
}

static void jend(struct host *h)
{
	if (G.multi)
		json_add_str(&G.json, "host", h->target->name);
	if (json_end(&G.json)) {
		say(h, "out of memory for a JSON line");
		return;
	}
	emit(NULL, STDOUT_FILENO, G.json.buf, G.json.len);
}

static const char *stream_name(ctld_Stream s)
{
	return s == ctld_Stream_STDERR ? "stderr" : "stdout";
}

/* ------------------------------------------------------------ host state */

static void host_finish(struct host *h, int status)
{
	if (h->done)
		return;
	flush_lines(h);
	h->done = true;
	h->status = status;
	/* closing the connection detaches from the job (and ends watches) */
	ctld_conn_close(&h->conn);
	free(h->jobs);
	h->jobs = NULL;
}

/* One last request before ending with `status`: see "Winding up" above. */
static void host_wind_up(struct host *h, int status)
{
	h->finishing = true;
	h->final_status = status;
}

static bool running(const struct host *h)
{
	return !h->done && !h->finishing;
}

/* The connection ended: say why, with the exit status that tells it. */
static void conn_failed(struct host *h, int err)
{
	const struct cli_target *t = h->target;

	if (h->done)
		return;
	if (h->finishing) {
		host_finish(h, h->final_status);
		return;
	}
	if (err == -EREMOTEIO) { /* the daemon refused Hello */
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

/* Sends G.req and remembers what its reply will answer. */
static int host_send(struct host *h, enum req_kind kind)
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

static ctld_Request *request(pb_size_t which)
{
	memset(&G.req, 0, sizeof(G.req));
	G.req.which_body = which;
	return &G.req;
}

static void send_signal(struct host *h, int sig)
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

static void send_watch_port(struct host *h)
{
	request(ctld_Request_watch_port_tag)->body.watch_port = G.args.watch_port;
	host_send(h, REQ_WATCH);
}

static void send_run(struct host *h)
{
	ctld_Run *r = &request(ctld_Request_run_tag)->body.run;

	*r = G.args.run;
	r->stdin_pipe = G.stdin_forward;
	host_send(h, REQ_RUN);
}

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

/* Nobody reads ctl's stdout anymore: stop jobs whose output goes there. */
static void stdout_failed(int err)
{
	int status = err == -EPIPE ? EXIT_BROKEN_PIPE : EXIT_FAILURE_REPLY;

	if (G.stdout_failed)
		return;
	G.stdout_failed = true;
	if (err != -EPIPE)
		say(NULL, "cannot write to stdout: %s", strerror(-err));
	for (size_t i = 0; i < G.nhosts; i++) {
		struct host *h = &G.hosts[i];

		if (!running(h))
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
	return running(h) && !h->stdin_done;
}

/* Read stdin only when every host can take the next chunk: all get the same. */
static bool stdin_wanted(void)
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

static void forward_stdin(void)
{
	ssize_t n = read(STDIN_FILENO, G.stdin_buf, sizeof(G.stdin_buf));

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
		memcpy(w->data.bytes, G.stdin_buf, w->data.size);
		h->stdin_done = G.stdin_eof;
		if (host_send(h, REQ_STDIN) == 0)
			h->stdin_in_flight++;
	}
}

/* ------------------------------------------------------------ job events */

static int exit_status(const ctld_Exited *e)
{
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
	jend(h);
}

static void on_exited(struct host *h, const ctld_Exited *e)
{
	const char *sig = signal_name(e->signal);
	char dur[32];

	if (G.args.json)
		json_exited(h, e);
	if (G.args.cmd == CLI_RUN && G.args.wait_port && !e->timed_out)
		say(h, "job %llu ended before listening on port %u", (unsigned long long)e->job,
		    G.args.wait_port);
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
	if (G.args.cmd == CLI_START)
		return; /* started in the background: `ctl attach` shows it */
	if (!G.args.json) {
		emit(h, o->stream == ctld_Stream_STDERR ? STDERR_FILENO : STDOUT_FILENO,
		     o->data.bytes, o->data.size);
		return;
	}
	json_add_u64(jbegin("output"), "job", o->job);
	json_add_str(&G.json, "stream", stream_name(o->stream));
	json_add_u64(&G.json, "offset", o->offset);
	json_add_data(&G.json, o->data.bytes, o->data.size);
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

static void on_launched(struct host *h, const ctld_Launched *l)
{
	char id[24];

	if (G.args.json) {
		struct json_line *j = jbegin("launched");

		json_add_u64(j, "job", l->job);
		json_add_u64(j, "pid", l->pid);
		jend(h);
	}
	if (G.args.cmd != CLI_START || G.args.wait_port)
		return;
	/* start: it runs; hand it over to the background */
	if (!G.args.json)
		emit(h, STDOUT_FILENO, id, (size_t)snprintf(id, sizeof(id), "%llu\n",
							     (unsigned long long)l->job));
	host_wind_up(h, 0);
	send_detach(h);
}

/* ------------------------------------------------------------ watch events */

static void json_port_listening(struct host *h, const ctld_PortListening *p)
{
	struct json_line *j = jbegin("port_listening");

	json_add_u64(j, "watch", p->watch);
	json_add_u64(j, "port", p->port);
	json_add_str(j, "addr", p->addr);
	json_add_u64(j, "pid", p->pid);
	json_add_str(j, "comm", p->comm);
	if (p->already)
		json_add_bool(j, "already", true);
	if (p->time_ns)
		json_add_u64(j, "time_ns", p->time_ns);
	if (h->job)
		json_add_u64(j, "job", h->job);
	jend(h);
}

/* run/start --wait-port: the job (presumably) listens: leave it running. */
static void job_listening(struct host *h, const ctld_PortListening *p)
{
	char comm[sizeof(p->comm)], id[24];

	if (p->already)
		say(h, "warning: port %u was already open before the job started (pid %u, %s)",
		    p->port, p->pid, clean(p->comm, comm, sizeof(comm)));
	else
		say(h, "job %llu is listening on port %u (pid %u, %s)", (unsigned long long)h->job,
		    p->port, p->pid, clean(p->comm, comm, sizeof(comm)));
	if (G.args.json)
		json_port_listening(h, p);
	else
		emit(h, STDOUT_FILENO, id,
		     (size_t)snprintf(id, sizeof(id), "%llu\n", (unsigned long long)h->job));
	host_wind_up(h, 0);
	send_detach(h);
}

static void on_port_listening(struct host *h, const ctld_PortListening *p)
{
	char comm[sizeof(p->comm)], addr[sizeof(p->addr)], line[160];

	if (p->watch != h->watch)
		return;
	if (G.args.cmd != CLI_WATCH_PORT) {
		job_listening(h, p);
		return;
	}
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
	const bool port = G.args.cmd != CLI_WATCH_FILE;
	char dur[32];

	if (t->watch != h->watch)
		return;
	if (G.args.json) {
		json_add_u64(jbegin("watch_timeout"), "watch", t->watch);
		jend(h);
	}
	fmt_ms(port ? G.args.watch_port.timeout_ms : G.args.watch_file.timeout_ms, dur,
	       sizeof(dur));
	if (G.args.cmd == CLI_WATCH_FILE) {
		say(h, "no event for %s within %s", G.args.watch_file.path, dur);
	} else if (G.args.cmd == CLI_WATCH_PORT) {
		say(h, "nothing listened on port %u within %s", G.args.watch_port.port, dur);
	} else {
		say(h, "nothing listened on port %u within %s; killing job %llu",
		    G.args.watch_port.port, dur, (unsigned long long)h->job);
		host_wind_up(h, EXIT_TIMEOUT);
		send_signal(h, SIGKILL);
		return;
	}
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

/* ------------------------------------------------------------ list, stats */

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
		jend(h);
	}
}

static void job_exit_text(const ctld_JobInfo *ji, char *buf, size_t len)
{
	const char *sig = signal_name(ji->signal);

	if (ji->state != ctld_JobState_JOB_EXITED)
		snprintf(buf, len, "-");
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
	char *text = NULL, status[sizeof(s->bpf_status)], name[sizeof(s->programs[0].name)];
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		say(h, "out of memory");
		return;
	}
	fprintf(f, "bpf: %s\n", s->bpf ? "on" : "off");
	if (s->bpf_status[0])
		fprintf(f, "bpf_status: %s\n", clean(s->bpf_status, status, sizeof(status)));
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

/* ------------------------------------------------------------ replies */

static void on_command_reply(struct host *h, enum req_kind kind, const ctld_Reply *r)
{
	switch (kind) {
	case REQ_WATCH:
		h->watch = r->result.watch.watch;
		if (G.args.cmd == CLI_RUN || G.args.cmd == CLI_START)
			send_run(h); /* the watch is in place: now start the job */
		break;
	case REQ_RUN:
		h->job = r->result.run.job;
		if (h->pending_signal)
			send_signal(h, h->pending_signal);
		h->pending_signal = 0;
		break;
	case REQ_KILL:
		host_finish(h, 0);
		break;
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
	default: /* REQ_ATTACH: the events follow */
		break;
	}
}

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
	if (kind == REQ_STDIN) {
		h->stdin_in_flight--;
		h->stdin_done |= failed; /* the job closed its stdin or ended: stop feeding it */
		return;
	}
	if ((kind == REQ_SIGNAL || kind == REQ_DETACH) && h->finishing) {
		host_finish(h, h->final_status);
		return;
	}
	if (kind == REQ_SIGNAL)
		return; /* a forwarded Ctrl-C to a job that may have just ended */
	if (failed) {
		say(h, "%s: %s", ctld_error_code_name(r->error.code),
		    clean(r->error.text, text, sizeof(text)));
		host_finish(h, EXIT_FAILURE_REPLY);
		return;
	}
	on_command_reply(h, kind, r);
}

/* ------------------------------------------------------------ commands */

static void begin(struct host *h)
{
	switch (G.args.cmd) {
	case CLI_RUN:
	case CLI_START:
		if (G.args.wait_port)
			send_watch_port(h); /* watch first, so no listen() can be missed */
		else
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
	case CLI_KILL: {
		ctld_Signal *s = &request(ctld_Request_signal_tag)->body.signal;

		s->job = G.args.job;
		s->signal = G.args.signal ? G.args.signal : SIGTERM;
		s->main_only = G.args.main_only;
		host_send(h, REQ_KILL);
		break;
	}
	case CLI_LIST:
		send_list(h, 0);
		break;
	case CLI_STATS:
		request(ctld_Request_stats_tag);
		host_send(h, REQ_STATS);
		break;
	case CLI_WATCHES:
		send_list_watches(h, 0);
		break;
	case CLI_WATCH_PORT:
		send_watch_port(h);
		break;
	case CLI_WATCH_FILE:
		request(ctld_Request_watch_file_tag)->body.watch_file = G.args.watch_file;
		host_send(h, REQ_WATCH);
		break;
	default:
		host_finish(h, EXIT_USAGE);
	}
}

static void on_message(struct host *h, const ctld_Message *m)
{
	if (m->which_kind == ctld_Message_reply_tag)
		on_reply(h, &m->kind.reply);
	else if (m->which_kind == ctld_Message_event_tag && !h->finishing)
		on_event(h, &m->kind.event);
}

static void host_start(struct host *h)
{
	const struct cli_target *t = h->target;
	int err;

	ctld_conn_init(&h->conn, "ctl " CTLD_VERSION);
	if (t->is_unix)
		err = ctld_conn_connect_unix(&h->conn, t->path, G.args.connect_timeout_ms);
	else
		err = ctld_conn_connect_tcp(&h->conn, t->host, t->port, G.tls,
					    G.args.connect_timeout_ms);
	if (err) {
		conn_failed(h, err);
		return;
	}
	begin(h);
}

static void host_io(struct host *h, short revents, uint64_t now)
{
	int ret = ctld_conn_io(&h->conn, revents, now);

	if (ret) {
		conn_failed(h, ret);
		return;
	}
	while (!h->done && (ret = ctld_conn_next(&h->conn, &G.msg)) > 0)
		on_message(h, &G.msg);
	if (!h->done && ret < 0)
		conn_failed(h, ret);
}

/* ------------------------------------------------------------ signals */

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	signals_caught++;
	(void)!write(G.sig_pipe[1], &b, 1);
	errno = saved;
}

static int setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* EPIPE from write() instead of death: ctl decides what a closed pipe means */
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(G.sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a write blocked on a stalled stdout must see a second Ctrl-C */
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return -errno;
	return 0;
}

/* run/start: the first signal goes to the jobs; the next one detaches. Other
 * commands just stop (detaching; jobs are never touched). */
static void handle_signal(int sig)
{
	bool forward = ++G.nsignals < G.quit_after;

	if (forward && sig == SIGINT)
		say(NULL, "sent SIGINT to the job; press Ctrl-C again to detach");
	for (size_t i = 0; i < G.nhosts; i++) {
		struct host *h = &G.hosts[i];

		if (!running(h))
			continue;
		if (forward) {
			G.forwarded_signal = sig;
			send_signal(h, sig);
			continue;
		}
		if (h->job && (G.args.cmd == CLI_RUN || G.args.cmd == CLI_ATTACH))
			say(h, "detached; job %llu keeps running (ctl attach %llu)",
			    (unsigned long long)h->job, (unsigned long long)h->job);
		host_finish(h, 128 + sig);
	}
}

static void read_signals(void)
{
	unsigned char sigs[16];
	ssize_t n;

	while ((n = read(G.sig_pipe[0], sigs, sizeof(sigs))) > 0)
		for (ssize_t i = 0; i < n; i++)
			handle_signal(sigs[i]);
}

/* ------------------------------------------------------------ main loop */

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int poll_loop(void)
{
	struct pollfd pfd[CLI_MAX_TARGETS + 2];

	for (;;) {
		uint64_t now = now_monotonic_ns();
		int timeout = -1, stdin_slot = -1;
		size_t n = 0;
		bool active = false;

		pfd[n++] = (struct pollfd){ .fd = G.sig_pipe[0], .events = POLLIN };
		if (stdin_wanted()) {
			stdin_slot = (int)n;
			pfd[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		}
		for (size_t i = 0; i < G.nhosts; i++) {
			struct host *h = &G.hosts[i];

			h->pfd = -1;
			if (h->done)
				continue;
			active = true;
			h->pfd = (int)n;
			pfd[n++] = (struct pollfd){ .fd = h->conn.fd,
						    .events = ctld_conn_poll_events(&h->conn) };
			timeout = min_timeout(timeout, ctld_conn_poll_timeout(&h->conn, now));
		}
		if (!active)
			return 0;
		if (poll(pfd, n, timeout) < 0 && errno != EINTR)
			return -errno;
		now = now_monotonic_ns();
		if (pfd[0].revents)
			read_signals();
		if (stdin_slot >= 0 && pfd[stdin_slot].revents)
			forward_stdin();
		for (size_t i = 0; i < G.nhosts; i++)
			if (!G.hosts[i].done && G.hosts[i].pfd >= 0)
				host_io(&G.hosts[i], pfd[G.hosts[i].pfd].revents, now);
	}
}

/* ------------------------------------------------------------ setup */

/* On the unix socket the daemon shares ctl's file system: relative paths and
 * the default working directory are ctl's. Over TCP they are left as given
 * (the daemon wants absolute paths; its default directory is /). */
static int resolve_paths(char *err, size_t errlen)
{
	ctld_Run *r = &G.args.run;
	char cwd[PATH_MAX], joined[sizeof(G.args.watch_file.path)];
	bool local = G.args.targets[0].is_unix, has_cwd;

	has_cwd = local && getcwd(cwd, sizeof(cwd));
	if (G.args.cmd == CLI_WATCH_FILE && has_cwd) {
		if (!cli_join_path(cwd, G.args.watch_file.path, joined, sizeof(joined)))
			goto too_long;
		copy_str(G.args.watch_file.path, sizeof(G.args.watch_file.path), joined);
	}
	if (G.args.cmd != CLI_RUN && G.args.cmd != CLI_START)
		return 0;
	if (has_cwd && !cli_join_path(cwd, r->cwd[0] ? r->cwd : ".", joined, sizeof(r->cwd)))
		goto too_long;
	if (has_cwd)
		copy_str(r->cwd, sizeof(r->cwd), r->cwd[0] ? joined : cwd);
	else if (local && !r->cwd[0])
		say(NULL, "warning: cannot tell the current directory (%s); the job runs in /",
		    strerror(errno));
	for (int s = 0; s < 2; s++) {
		char *path = s ? r->stderr_path : r->stdout_path;

		if (!path[0] || path[0] == '/' || r->cwd[0] != '/')
			continue;
		if (!cli_join_path(r->cwd, path, joined, sizeof(r->stdout_path)))
			goto too_long;
		copy_str(path, sizeof(r->stdout_path), joined);
	}
	return 0;
too_long:
	snprintf(err, errlen, "a path is too long once made absolute");
	return -ENAMETOOLONG;
}

static int setup(char *err, size_t errlen)
{
	const struct cli_args *a = &G.args;
	bool runlike = a->cmd == CLI_RUN || a->cmd == CLI_START;
	int ret;

	if ((ret = resolve_paths(err, errlen)))
		return ret;
	if (a->tls_cert &&
	    tls_ctx_new(TLS_CLIENT, a->tls_cert, a->tls_key, a->tls_ca, &G.tls, err, errlen))
		return -EINVAL;
	G.multi = a->ntargets > 1;
	G.quit_after = runlike ? 2 : 1;
	/* start never reads stdin; run --wait-port hands the job over, so only on request */
	G.stdin_forward = a->cmd == CLI_RUN && a->stdin_mode != CLI_STDIN_OFF &&
			  (a->stdin_mode == CLI_STDIN_ON ||
			   (!a->wait_port && !isatty(STDIN_FILENO)));
	G.hosts = calloc(a->ntargets, sizeof(*G.hosts));
	if (!G.hosts) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	G.nhosts = a->ntargets;
	for (size_t i = 0; i < G.nhosts; i++) {
		G.hosts[i].target = &a->targets[i];
		G.hosts[i].pfd = -1;
		if (G.multi)
			snprintf(G.hosts[i].prefix, sizeof(G.hosts[i].prefix), "%s: ",
				 a->targets[i].name);
	}
	if ((ret = setup_signals()))
		snprintf(err, errlen, "cannot set up signal handling: %s", strerror(-ret));
	return ret;
}

/* The first host (in -H order) that failed decides, as the command line reads. */
static int overall_status(void)
{
	for (size_t i = 0; i < G.nhosts; i++)
		if (G.hosts[i].status)
			return G.hosts[i].status;
	return 0;
}

static void cleanup(void)
{
	for (size_t i = 0; i < G.nhosts; i++)
		host_finish(&G.hosts[i], G.hosts[i].status);
	free(G.hosts);
	json_free(&G.json);
	tls_ctx_free(G.tls);
	for (int i = 0; i < 2; i++)
		if (G.sig_pipe[i] >= 0)
			close(G.sig_pipe[i]);
}

static int usage_error(const char *err)
{
	fprintf(stderr, "ctl: %s\n%s", err, cli_usage(G.args.cmd));
	if (G.args.cmd == CLI_NONE)
		fprintf(stderr, "Try 'ctl --help' for more.\n");
	else
		fprintf(stderr, "Try 'ctl %s --help' for more.\n", cli_cmd_name(G.args.cmd));
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	char err[512];
	int ret;

	if (cli_parse(argc, argv, getenv("CTLD_SOCKET"), getenv("CTLD_HOST"), &G.args, err,
		      sizeof(err)))
		return usage_error(err);
	if (G.args.cmd == CLI_VERSION) {
		printf("ctl %s (protocol %d)\n", CTLD_VERSION, CTLD_PROTOCOL_VERSION);
		return 0;
	}
	if (G.args.cmd == CLI_HELP) {
		printf("%s\n%s", cli_usage(G.args.help_for), cli_help(G.args.help_for));
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if ((ret = setup(err, sizeof(err)))) {
		fprintf(stderr, "ctl: %s\n", err);
		cleanup();
		return ret == -EINVAL ? EXIT_USAGE : EXIT_FAILURE_REPLY;
	}
	for (size_t i = 0; i < G.nhosts; i++)
		host_start(&G.hosts[i]);
	if ((ret = poll_loop()))
		say(NULL, "poll failed: %s", strerror(-ret));
	ret = ret ? EXIT_FAILURE_REPLY : overall_status();
	cleanup();
	return ret;
}
