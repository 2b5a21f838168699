/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ctl.h - what the files of ctl/ share: the command line as parsed, one
 * struct host per target daemon, and the per-command table.
 *
 *   main.c       main(), set-up, the poll() loop (--fanout), signals
 *   args.c ...   the command line (args.h; targets.c: -H, nodeset.c: node sets)
 *   host.c       one daemon connection per target: requests in flight,
 *                replies matched to them, how a host ends
 *   output.c     writing job output and messages (host prefixes, --json)
 *   gather.c     what -b and --summary print at the end (node sets folded)
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
/* -b keeps this much of each node's stdout; beyond it ctl says so */
#define GATHER_MAX (64 * 1024)
/* fds ctl keeps for itself (stdio, signal pipe, TLS, ...) beside --fanout */
#define CTL_RESERVED_FDS 16

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
	struct linebuf *lines; /* [2]: partial stdout/stderr lines, while connected */
	struct pending pending[MAX_PENDING];
	int pfd; /* index in the poll array, or -1 */
	bool started; /* --fanout: hosts wait their turn */
	char failure[64]; /* how the host failed, for --summary ("unreachable (...)") */
	char *gathered;	     /* -b: its stdout so far (at most GATHER_MAX) */
	size_t gathered_len;
	bool gather_cut;
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
	/* the daemon said it upgrades in place (Upgrading): when the connection
	 * ends, connect again and go on (command.reconnected) */
	bool upgrading;
	unsigned reconnects;
	uint64_t seen[2]; /* stdout/stderr bytes shown: output again after a reconnect is skipped */
	bool ready_told;  /* Ready/NotReady shown (an Attach replays it) */
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
	/* connected again after the daemon upgraded in place: pick up where it
	 * was (NULL: the connection ending is an error as usual). 0, or -1
	 * when it cannot (then it is the usual error). */
	int (*reconnected)(struct host *h);
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
	size_t next_host;   /* --fanout: the next host to start */
	bool stop_starting; /* ctl is leaving: hosts not started never will be */
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

/* ------------------------------------------------------------ main.c */

/* --fanout: hosts that never got their turn end with `status` and never
 * start (ctl is leaving: a signal, or nobody reads its stdout). */
void skip_waiting_hosts(int status);

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

/* ------------------------------------------------------------ gather.c */

/* -b: keeps the host's stdout (up to GATHER_MAX) for gather_print(). */
int gather_add(struct host *h, const void *data, size_t len);
/* -b: each distinct output once, headed by the folded node set that gave it. */
void gather_print(void);
/* --summary: the table of node sets per exit status on stderr. */
void summary_print(void);
/* The largest status of any host (--summary). */
int summary_status(void);

/* ------------------------------------------------------------ session_dir.c */

/* Gives tls the ticket cache --tls-session-cache (option; NULL: the default)
 * names; "none", or a cache that cannot be used, leaves it without one. */
void session_dir_use(struct tls_ctx *tls, const char *option);

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
