/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * args.h - ctl's command line, parsed into one struct with no I/O: no
 * printing, no getenv, no file system. main() hands in the environment values
 * it read and prints what comes back, so every rule here is unit-testable
 * (tests/test_args.c). args.c has the option table, values.c the value
 * parsers, help.c the texts.
 */
#ifndef CTLD_CLI_ARGS_H
#define CTLD_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctld.pb.h"
#include "ctl/nodeset.h"

#define CLI_DEFAULT_SOCKET "/run/ctld-bpf.sock"
#define CLI_DEFAULT_PORT "7878"
#define CLI_MAX_TARGETS NODESET_MAX
#define CLI_DEFAULT_FANOUT 64 /* as clush */
#define CLI_MAX_FANOUT 4096
#define CLI_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define CLI_DEFAULT_LIVENESS_MS 30000
#define CLI_MIN_LIVENESS_MS 100

enum cli_cmd {
	CLI_NONE = 0,
	CLI_HELP, /* help text of help_for (CLI_NONE: the tool's); exit 0 */
	CLI_VERSION,
	CLI_RUN,
	CLI_START,
	CLI_WAIT,
	CLI_ATTACH,
	CLI_KILL,
	CLI_LIST,
	CLI_STATS,
	CLI_WATCH_PORT,
	CLI_WATCH_FILE,
	CLI_WATCHES,
	CLI_PUT,
	CLI_GET,
	CLI_NCMDS,
};

/* Whether run forwards ctl's stdin: AUTO means "when it is not a terminal". */
enum cli_stdin { CLI_STDIN_AUTO, CLI_STDIN_ON, CLI_STDIN_OFF };

struct cli_target {
	bool is_unix;
	char path[108]; /* unix: sizeof(sun_path) */
	char host[256]; /* tcp: name or address, without brackets */
	char port[8];
	char name[300]; /* "path" or "host:port" ("[v6]:port"): messages, prefixes, JSON */
};

struct cli_args {
	struct cli_target *targets; /* allocated: cli_args_free() */
	size_t ntargets;
	bool json;
	uint32_t fanout; /* at most this many connections at once */
	bool gather;	 /* -b: identical outputs once, headed by their node set */
	bool summary;	 /* --summary: a table of node sets per status; the largest wins */
	const char *timeline; /* --timeline FILE: every node's events on one time axis */
	const char *tls_cert, *tls_key, *tls_ca;
	const char *tls_session_cache; /* a directory, "none", or NULL: the default */
	uint32_t connect_timeout_ms;
	uint32_t liveness_ms; /* give up on a daemon silent this long; 0: never */

	enum cli_cmd cmd;
	enum cli_cmd help_for;

	/* run, start: the request as it will be sent (cwd may still be filled in) */
	ctld_Run run;
	enum cli_stdin stdin_mode;
	/* --wait-port/-log/-file are in run.ready; then --timeout bounds the wait */
	/* wait, attach, kill */
	uint64_t job;
	bool no_backlog;
	int signal;
	bool main_only;
	uint32_t grace_ms; /* kill --grace: SIGKILL what is left after it */
	/* list */
	bool running_only;
	/* watch-port (and run --wait-port), watch-file */
	ctld_WatchPort watch_port;
	ctld_WatchFile watch_file;
	bool follow;
	/* put LOCAL REMOTE, get REMOTE LOCALDIR (run.user: --user) */
	const char *local, *remote;
};

/* The environment variables ctl reads (NULL when unset). */
struct cli_env {
	const char *socket;   /* $CTLD_SOCKET, $CTLD_HOST: the target when the */
	const char *host;     /* command line names none */
	const char *liveness; /* $CTLD_LIVENESS: --liveness unless given */
	/* -H @FILE: the file's text (allocated, the caller frees), or -errno
	 * with a reason; NULL: @FILE is refused */
	int (*read_file)(const char *path, char **text, char *err, size_t errlen);
};

/*
 * Parses argv[0..argc) (argv[0] is the program name) into *a, with the
 * defaults env gives. Returns 0, or -EINVAL for a usage error with a
 * reason in err[errlen] ("ctl: " is not included) and a->cmd set to the
 * command whose usage should be shown (CLI_NONE: the tool's). argv may be
 * permuted (getopt).
 */
int cli_parse(int argc, char **argv, const struct cli_env *env, struct cli_args *a, char *err,
	      size_t errlen);

/* Frees what cli_parse() allocated (the targets); a->targets is NULL after. */
void cli_args_free(struct cli_args *a);

/* The pieces cli_parse() is made of; each returns 0 or -EINVAL with err filled. */

/* A node set: "a:1,b:2,[::1]:3", "node[1-8]:7979", "node1" (port 7878);
 * appends each node once, in the order given, to out[*n] (at most max). */
int cli_parse_targets(const char *list, struct cli_target *out, size_t max, size_t *n,
		      char *err, size_t errlen);
/* Each name of ns once, in order, as a target: out[*n] (at most max). */
int cli_targets_of(struct nodeset *ns, struct cli_target *out, size_t max, size_t *n,
		   char *err, size_t errlen);
/* KEY=VALUE with a non-empty key; VALUE may be empty or contain '='. */
int cli_check_env(const char *kv, char *err, size_t errlen);
/* RES=SOFT[:HARD]; values are numbers (K/M/G suffixes) or "unlimited". */
int cli_parse_rlimit(const char *spec, ctld_Rlimit *out, char *err, size_t errlen);
/* "created,modified,closed_write,deleted,moved,attrib" -> FileEventKind bits. */
int cli_parse_events(const char *list, uint32_t *kinds, char *err, size_t errlen);
/* A job id: a decimal number >= 1. */
int cli_parse_job(const char *text, uint64_t *job, char *err, size_t errlen);
/* A TCP port: 1..65535. */
int cli_parse_port(const char *text, uint16_t *port, char *err, size_t errlen);
/* --wait-port PORT[@ADDR] (an IPv4 or IPv6 address, no brackets). */
int cli_parse_ready_port(const char *text, ctld_PortCondition *pc, char *err, size_t errlen);

/* Copies an option value into a bounded protocol field (what names it in
 * the message), or says it is too long. */
int cli_set_str(char *dst, size_t cap, const char *val, const char *what, char *err,
		size_t errlen);
/* "250ms", "10s", ... (0 is refused). */
int cli_parse_timeout(const char *text, uint32_t *ms, char *err, size_t errlen);
/* --liveness: a duration of at least CLI_MIN_LIVENESS_MS, or 0 / "off". */
int cli_parse_liveness(const char *text, uint32_t *ms, char *err, size_t errlen);
/* An octal umask, 0..0777. */
int cli_parse_umask(const char *text, uint32_t *mask, char *err, size_t errlen);

/* dir + "/" + path unless path is absolute; false when it does not fit. */
bool cli_join_path(const char *dir, const char *path, char *out, size_t cap);

/* Texts for main(): the command's name, its one-line usage, its full help. */
const char *cli_cmd_name(enum cli_cmd cmd);
const char *cli_usage(enum cli_cmd cmd);
const char *cli_help(enum cli_cmd cmd);
/* "created", "size_reached", ... for one FileEventKind bit; "unknown" otherwise. */
const char *cli_file_event_name(uint32_t kind);

#endif
