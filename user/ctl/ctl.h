/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ctl.h - what the files of ctl/ share: the command line as parsed, one
 * struct host per target daemon, and the per-command table.
 *
 *   main.c       main(), set-up, the poll() loop, signals
 *   host.c       one daemon connection per target: requests in flight,
 *                replies matched to them, how a host ends
 *   output.c     writing job output and messages (host prefixes, --json)
 *   cmd_run.c    run, start, wait, attach, kill (jobs and their events)
 *   ready.c      what run/start --wait-* say when the job is ready or not
 *   cmd_watch.c  watch-port, watch-file
 *   cmd_query.c  list, stats, watches
 *   cmd_files.c  put, get (files_put.c, files_get.c; files.h)
 *
 * Each command is a small state machine per host: begin() queues its first
 * request behind Hello (no extra round trip), on_reply()/on_event() move
 * it on, host_finish() ends it with an exit status. Errors are values;
 * only main() exits.
 */
#ifndef CTLD_CTL_H
#define CTLD_CTL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client.h"
#include "ctl/args.h"
#include "ctl/json.h"

#define EXIT_FAILURE_REPLY 1
#define EXIT_USAGE 64
#define EXIT_UNAVAILABLE 69
#define EXIT_PROTOCOL 76
/* readiness (--wait-port/-log/-file) failed: why */
#define EXIT_PORT_TAKEN 120    /* someone else holds the port */
#define EXIT_LISTEN_FAILED 121 /* the job's listen() failed */
#define EXIT_FILE_ERROR 122    /* a --wait-file cannot be watched */
#define EXIT_NOT_READY 123     /* the job ended before it was ready */
#define EXIT_TIMEOUT 124
#define EXIT_STATUS_UNKNOWN 125 /* an adopted job ended; how is not known */
#define EXIT_NOEXEC 127
#define EXIT_BROKEN_PIPE (128 + SIGPIPE)

#define STDIN_CHUNK sizeof(((ctld_WriteStdin *)0)->data.bytes)
#define MAX_PENDING 16
/* After SIGTERM/SIGHUP: how long ctl waits for the jobs before it leaves
 * (help.c and the README say 2s). */
#define CTL_LEAVE_GRACE_MS 2000
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
	REQ_PUT,	 /* put: PutFile */
	REQ_PUT_DATA,
	REQ_PUT_ABORT,	 /* put: a resumed transfer whose start is not LOCAL's */
	REQ_GET,	 /* get: GetFile */
	REQ_FILE_CREDIT, /* get: GetCredit, its answer (even NOT_FOUND) needs nothing */
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
	bool signal_answered; /* the daemon replied to a forwarded signal */
	int not_ready;	    /* the exit status NotReady gave, once the job ends */
	ctld_NotReady *ended_early; /* NotReady{EXITED}, told with the job's end */
	unsigned stdin_in_flight;
	bool stdin_done;
	bool finishing;
	int final_status;
	bool done;
	int status;
	unsigned watches_listed; /* pages of `watches` printed */
	ctld_JobInfo *jobs;	 /* list */
	size_t njobs;
	struct xfer *xfer;	 /* put, get */
};

/* What every command is made of (see the top of this file). */
struct command {
	void (*begin)(struct host *h);
	/* a successful reply to a request of this command */
	void (*on_reply)(struct host *h, enum req_kind kind, const ctld_Reply *r);
	void (*on_event)(struct host *h, const ctld_Event *ev);
	/* What ctl waits for on this host, for a message ("job 3 was running") */
	void (*doing)(const struct host *h, char *buf, size_t len);
	/* the host is done (ok or not): leave nothing half-made behind */
	void (*finished)(struct host *h);
};

extern const struct command cmd_run, cmd_watch, cmd_query, cmd_files;

/* The state of this ctl run. */
struct ctl {
	struct cli_args args;
	const struct command *cmd;
	struct host *hosts;
	size_t nhosts;
	bool multi;
	struct tls_ctx *tls;
	unsigned nsignals;    /* handled so far */
	unsigned quit_after;  /* this many signals end ctl (2 for run: the first is forwarded) */
	int forwarded_signal; /* a job killed by it needs no message */
	bool stdin_forward, stdin_eof;
	bool stdout_failed;
	struct json_line json;
	ctld_Request req;
};

extern struct ctl G;
/* Signals caught and not yet handled (set by the handler). */
extern volatile sig_atomic_t signals_caught;

/* ------------------------------------------------------------ host.c */

void host_start(struct host *h);
void host_io(struct host *h, short revents, uint64_t now);
void host_finish(struct host *h, int status);
/* One last request before ending with `status`: the host ignores events
 * and ends once that request is answered (Detach after start, SIGTERM to a
 * job whose output nobody reads, SIGKILL after a timeout). */
void host_wind_up(struct host *h, int status);
bool host_running(const struct host *h);
/* Clears G.req for a request of this kind and returns it. */
ctld_Request *request(pb_size_t which);
/* Sends G.req and remembers what its reply will answer. 0 or -errno (the
 * host is finished then). */
int host_send(struct host *h, enum req_kind kind);

/* ------------------------------------------------------------ cmd_run.c */

void send_signal(struct host *h, int sig);
bool stdin_wanted(void);
void forward_stdin(void);
/* Nobody reads ctl's stdout anymore: stop jobs whose output goes there. */
void stdout_failed(int err);

/* ------------------------------------------------------------ ready.c */

void print_ready(struct host *h, const ctld_Ready *rd);
void print_not_ready(struct host *h, const ctld_NotReady *nr);
/* The exit status of ctl when readiness failed for this reason. */
/* ctl's exit status for a NotReady: the reason's code; for a job that
 * ended first, its own status (EXIT_NOT_READY when that was 0). */
int not_ready_status(const ctld_NotReady *nr);

#endif
