// SPDX-License-Identifier: BSD-2-Clause
/*
 * cli_args.c - ctl's command line: the option table, the parsers for every
 * option value, and the help texts.
 *
 * One table lists every option with the commands that accept it, and one
 * switch applies a value, so `--timeout` or `--json` mean the same thing
 * wherever they appear. Global options (-S, -H, --json, TLS) are accepted
 * both before and after the command name. Every bound of proto/ctld.options
 * is checked here, so an over-long argument is a usage error (64) naming the
 * option, not a LIMIT error from the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl/args.h"
#include "common/util.h"

#define C(cmd) (1u << (cmd))
#define RUNLIKE (C(CLI_RUN) | C(CLI_START))
#define ALL_CMDS (~0u)
#define MAX_OPTS 48

enum opt_id {
	OPT_SOCKET = 'S', OPT_HOST = 'H', OPT_HELP = 'h', OPT_CWD = 'C', OPT_ENV = 'e',
	OPT_TIMEOUT = 't', OPT_SIGNAL = 's', OPT_RUNNING = 'r', OPT_FOLLOW = 'f',
	OPT_JSON = 256, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_CONNECT_TIMEOUT, OPT_VERSION,
	OPT_NAME, OPT_CLEAN_ENV, OPT_STDOUT, OPT_STDERR, OPT_USER, OPT_GROUP, OPT_RLIMIT,
	OPT_UMASK, OPT_STDIN, OPT_NO_STDIN, OPT_KILL_ON_DISCONNECT, OPT_WAIT_PORT,
	OPT_NO_BACKLOG, OPT_MAIN_ONLY, OPT_ADDR, OPT_NETNS, OPT_SIZE, OPT_EVENTS,
};

struct opt_def {
	const char *name;
	int id; /* a printable id doubles as the short option */
	int has_arg;
	unsigned cmds; /* commands accepting it; CLI_NONE = before the command */
};

static const struct opt_def opt_defs[] = {
	{ "socket", OPT_SOCKET, required_argument, ALL_CMDS },
	{ "host", OPT_HOST, required_argument, ALL_CMDS },
	{ "json", OPT_JSON, no_argument, ALL_CMDS },
	{ "tls-cert", OPT_TLS_CERT, required_argument, ALL_CMDS },
	{ "tls-key", OPT_TLS_KEY, required_argument, ALL_CMDS },
	{ "tls-ca", OPT_TLS_CA, required_argument, ALL_CMDS },
	{ "connect-timeout", OPT_CONNECT_TIMEOUT, required_argument, ALL_CMDS },
	{ "help", OPT_HELP, no_argument, ALL_CMDS },
	{ "version", OPT_VERSION, no_argument, C(CLI_NONE) },
	{ "name", OPT_NAME, required_argument, RUNLIKE },
	{ "cwd", OPT_CWD, required_argument, RUNLIKE },
	{ "env", OPT_ENV, required_argument, RUNLIKE },
	{ "clean-env", OPT_CLEAN_ENV, no_argument, RUNLIKE },
	{ "timeout", OPT_TIMEOUT, required_argument,
	  RUNLIKE | C(CLI_WATCH_PORT) | C(CLI_WATCH_FILE) },
	{ "stdout", OPT_STDOUT, required_argument, RUNLIKE },
	{ "stderr", OPT_STDERR, required_argument, RUNLIKE },
	{ "user", OPT_USER, required_argument, RUNLIKE },
	{ "group", OPT_GROUP, required_argument, RUNLIKE },
	{ "rlimit", OPT_RLIMIT, required_argument, RUNLIKE },
	{ "umask", OPT_UMASK, required_argument, RUNLIKE },
	{ "stdin", OPT_STDIN, no_argument, RUNLIKE },
	{ "no-stdin", OPT_NO_STDIN, no_argument, RUNLIKE },
	{ "kill-on-disconnect", OPT_KILL_ON_DISCONNECT, no_argument, RUNLIKE },
	{ "wait-port", OPT_WAIT_PORT, required_argument, RUNLIKE },
	{ "no-backlog", OPT_NO_BACKLOG, no_argument, C(CLI_ATTACH) },
	{ "signal", OPT_SIGNAL, required_argument, C(CLI_KILL) },
	{ "main-only", OPT_MAIN_ONLY, no_argument, C(CLI_KILL) },
	{ "running", OPT_RUNNING, no_argument, C(CLI_LIST) },
	{ "addr", OPT_ADDR, required_argument, C(CLI_WATCH_PORT) },
	{ "netns", OPT_NETNS, required_argument, C(CLI_WATCH_PORT) },
	{ "size", OPT_SIZE, required_argument, C(CLI_WATCH_FILE) },
	{ "events", OPT_EVENTS, required_argument, C(CLI_WATCH_FILE) },
	{ "follow", OPT_FOLLOW, no_argument, C(CLI_WATCH_FILE) },
};

_Static_assert(ARRAY_SIZE(opt_defs) < MAX_OPTS, "raise MAX_OPTS");

/* ------------------------------------------------------------ texts */

static const struct {
	const char *name;
	const char *usage;
	const char *help;
} cmd_texts[CLI_NCMDS] = {
	[CLI_NONE] = {
		"ctl",
		"usage: ctl [-S SOCKET | -H HOST:PORT[,HOST:PORT...]] [--json] COMMAND [ARGS...]\n"
		"       ctl help [COMMAND]\n",
		"Run and control processes through ctld-bpf daemons.\n"
		"\n"
		"Commands:\n"
		"  run -- PROGRAM [ARGS...]    run a program, show its output live, exit with\n"
		"                              its status\n"
		"  start -- PROGRAM [ARGS...]  start a program in the background, print its id\n"
		"  wait JOB                    wait until a job ends, exit with its status\n"
		"  attach JOB                  show a job's output (recent output first)\n"
		"  kill JOB [--signal SIG]     signal a job's process tree (default TERM)\n"
		"  list [--running]            list the daemon's jobs\n"
		"  stats                       daemon statistics\n"
		"  watch-port PORT             wait until something listens on a TCP port\n"
		"  watch-file PATH             wait for a change of a file\n"
		"  watches                     list every watch of the daemon, by client\n"
		"  help [COMMAND]              help on a command (same as ctl COMMAND --help)\n"
		"\n"
		"Options (also accepted after the command name):\n"
		"  -S, --socket PATH        the daemon's unix socket; default $CTLD_SOCKET, else\n"
		"                           " CLI_DEFAULT_SOCKET "\n"
		"  -H, --host HOST:PORT,... daemons over TCP (port " CLI_DEFAULT_PORT
		" if omitted; [::1]:7878\n"
		"                           for IPv6); default $CTLD_HOST, which wins over\n"
		"                           $CTLD_SOCKET. Several hosts: the command runs on\n"
		"                           each, concurrently; lines are prefixed HOST:PORT\n"
		"      --json               one JSON object per line per event or result\n"
		"      --tls-cert FILE      mutual TLS over TCP: this client's certificate,\n"
		"      --tls-key FILE       its key,\n"
		"      --tls-ca FILE        and the CA that signed the daemons' certificates\n"
		"      --connect-timeout DUR  give up on a daemon that does not answer (5s)\n"
		"  -h, --help               this text      --version   ctl's version\n"
		"\n"
		"Exit status:\n"
		"  run, wait, attach: the job's exit status, or 128+N when signal N killed it\n"
		"  0 done   1 the daemon refused the request   64 usage error\n"
		"  69 no daemon answers   76 protocol error (daemon closed or sent garbage)\n"
		"  124 a --timeout ran out   127 the program could not be executed\n"
		"  130 interrupted (Ctrl-C)   141 ctl's output was closed (broken pipe)\n"
		"  With several hosts: the status of the first host (in -H order) that failed.\n"
		"\n"
		"Examples:\n"
		"  ctl run -- make -j4          build here (the job runs in ctl's directory)\n"
		"  echo hi | ctl run -- cat     stdin is forwarded when it is not a terminal\n"
		"  ctl run --timeout 30s -- ./slow-test\n"
		"  ctl run --wait-port 8080 -- python3 -m http.server 8080\n"
		"                                      start a server; return once it listens\n"
		"  ctl -H 10.0.0.1,10.0.0.2 run -- uname -r\n"
		"  ctl list --running && ctl kill 3 --signal KILL\n",
	},
	[CLI_HELP] = {
		"help",
		"usage: ctl help [COMMAND]\n",
		"Shows the help of ctl or of one command (same as ctl COMMAND --help).\n"
		"\n"
		"Example:\n"
		"  ctl help run\n",
	},
	[CLI_VERSION] = { "version", "usage: ctl --version\n", "Prints ctl's version.\n" },
	[CLI_RUN] = {
		"run",
		"usage: ctl run [OPTIONS] [--] PROGRAM [ARGS...]\n",
		"Runs PROGRAM on the daemon's machine and shows its output live: the job's\n"
		"stdout on ctl's stdout, its stderr on ctl's stderr. Exits with the job's status\n"
		"(128+N when signal N killed it, 127 when it could not be executed).\n"
		"On the unix socket the job runs in ctl's current directory unless --cwd says\n"
		"otherwise (so `ctl run -- make` builds here); over TCP it runs in / by default.\n"
		"Ctrl-C sends SIGINT to the job's whole tree and keeps waiting; a second Ctrl-C\n"
		"detaches (exit 130) and leaves the job running.\n"
		"\n"
		"Options:\n"
		"      --name NAME          label shown by `ctl list`\n"
		"  -C, --cwd DIR            working directory of the job\n"
		"  -e, --env KEY=VALUE      set a variable (repeatable)\n"
		"      --clean-env          start from an empty environment, not the daemon's\n"
		"  -t, --timeout DUR        kill the job's tree after DUR (250ms, 10s, 2m, 1h)\n"
		"                           and exit 124; with --wait-port: how long to wait\n"
		"                           for the port\n"
		"      --stdout FILE        append the job's stdout to FILE (on the daemon's\n"
		"      --stderr FILE        machine; relative to the job's directory)\n"
		"      --user USER          run as USER (name or uid)\n"
		"      --group GROUP        primary group (name or gid)\n"
		"      --rlimit RES=SOFT[:HARD]\n"
		"                           resource limit (repeatable): nofile, nproc, core,\n"
		"                           as, cpu, fsize, stack, memlock, data, nice; values\n"
		"                           are numbers (64K, 1G) or unlimited; HARD defaults\n"
		"                           to SOFT\n"
		"      --umask OCTAL        e.g. 022\n"
		"      --stdin, --no-stdin  forward ctl's stdin to the job, or not; by default\n"
		"                           it is forwarded when it is not a terminal\n"
		"      --kill-on-disconnect kill the job's tree if ctl goes away\n"
		"      --wait-port PORT     return (exit 0, printing the job id) as soon as the\n"
		"                           job listens on TCP port PORT, leaving it running;\n"
		"                           if the job ends first, exit with its status; if\n"
		"                           --timeout runs out first, kill it and exit 124\n"
		"\n"
		"Examples:\n"
		"  ctl run -- make -j4\n"
		"  ctl run -e RUST_LOG=debug --timeout 5m -- cargo test\n"
		"  ctl run --rlimit nofile=65536 --user nobody -- ./server\n"
		"  seq 10 | ctl run -- sort -n -r\n"
		"  ctl run --wait-port 8080 --timeout 20s -- python3 -m http.server 8080\n",
	},
	[CLI_START] = {
		"start",
		"usage: ctl start [OPTIONS] [--] PROGRAM [ARGS...]\n",
		"Starts PROGRAM in the background and prints its job id once it runs (exit 0),\n"
		"or exits 127 when it could not be executed. Use `ctl wait`, `ctl attach`,\n"
		"`ctl kill` with the id. Options are those of `ctl run` (see ctl run --help),\n"
		"except --stdin and --kill-on-disconnect: the job's stdin is /dev/null.\n"
		"\n"
		"Examples:\n"
		"  job=$(ctl start --name web -- python3 -m http.server 8080)\n"
		"  ctl start --wait-port 8080 -- python3 -m http.server 8080\n"
		"  ctl start --stdout /tmp/build.log -- make\n",
	},
	[CLI_WAIT] = {
		"wait",
		"usage: ctl wait JOB\n",
		"Waits until job JOB ends and exits with its status (128+N for signal N, 127\n"
		"if it could not be executed). Works for jobs that have already ended.\n"
		"Ctrl-C stops waiting (exit 130); the job is not touched.\n"
		"\n"
		"Example:\n"
		"  job=$(ctl start -- make) && ctl wait \"$job\" && echo built\n",
	},
	[CLI_ATTACH] = {
		"attach",
		"usage: ctl attach [--no-backlog] JOB\n",
		"Shows job JOB's output: the recent output the daemon kept, then live output\n"
		"until it ends; exits with its status. Ctrl-C detaches (exit 130) and never\n"
		"kills the job.\n"
		"\n"
		"Options:\n"
		"      --no-backlog         only new output\n"
		"\n"
		"Example:\n"
		"  ctl attach 3\n",
	},
	[CLI_KILL] = {
		"kill",
		"usage: ctl kill [--signal SIG] [--main-only] JOB\n",
		"Sends a signal to job JOB: to its whole process tree, or only to its main\n"
		"process with --main-only.\n"
		"\n"
		"Options:\n"
		"  -s, --signal SIG         TERM (default), KILL, SIGINT, hup, 9, ...\n"
		"      --main-only          only the job's main process\n"
		"\n"
		"Examples:\n"
		"  ctl kill 3\n"
		"  ctl kill --signal KILL 3\n",
	},
	[CLI_LIST] = {
		"list",
		"usage: ctl list [--running]\n",
		"Lists the daemon's jobs (running ones and recently finished ones):\n"
		"JOB PID STATE NAME STARTED (local time) EXIT COMMAND.\n"
		"\n"
		"Options:\n"
		"  -r, --running            only running jobs\n"
		"\n"
		"Examples:\n"
		"  ctl list\n"
		"  ctl --json list --running\n",
	},
	[CLI_WATCHES] = {
		"watches",
		"usage: ctl watches\n",
		"Lists every port and file watch of the daemon with the client that owns it:\n"
		"WATCH KIND CLIENT WHAT (port or path) OPTIONS.\n"
		"\n"
		"Example:\n"
		"  ctl watches\n",
	},
	[CLI_STATS] = {
		"stats",
		"usage: ctl stats\n",
		"Prints the daemon's counters as key: value lines (--json: one object): uptime,\n"
		"clients, jobs, watches, eBPF status, ring-buffer events and drops, ...\n"
		"\n"
		"Example:\n"
		"  ctl stats\n",
	},
	[CLI_WATCH_PORT] = {
		"watch-port",
		"usage: ctl watch-port [--timeout DUR] [--addr ADDR] [--netns NS] PORT\n",
		"Waits until a process listens on TCP port PORT (at once if one already does),\n"
		"prints \"port PORT is listening: pid PID (COMM) on ADDR\" and exits 0; exits 124\n"
		"when --timeout runs out first.\n"
		"\n"
		"Options:\n"
		"  -t, --timeout DUR        give up after DUR (250ms, 10s, 2m)\n"
		"      --addr ADDR          only a listener on this address (or the wildcard)\n"
		"      --netns NS           in this network namespace: a name (ip netns) or a\n"
		"                           path such as /proc/PID/ns/net\n"
		"\n"
		"Example:\n"
		"  ctl watch-port --timeout 30s 5432 && psql ...\n",
	},
	[CLI_WATCH_FILE] = {
		"watch-file",
		"usage: ctl watch-file [--events LIST] [--size BYTES] [--timeout DUR] [--follow]\n"
		"                      PATH\n",
		"Waits for a change of PATH on the daemon's machine, prints\n"
		"\"PATH: KIND (size N)\" and exits 0; exits 124 when --timeout runs out first.\n"
		"A relative PATH is relative to ctl's directory on the unix socket.\n"
		"\n"
		"Options:\n"
		"      --events LIST        comma-separated: created, modified, closed_write,\n"
		"                           deleted, moved, attrib (default: all of them)\n"
		"      --size BYTES         fire once the file has at least BYTES (64K, 10M);\n"
		"                           alone, it waits only for that\n"
		"  -t, --timeout DUR        give up when nothing happened within DUR\n"
		"  -f, --follow             keep printing events until Ctrl-C\n"
		"\n"
		"Examples:\n"
		"  ctl watch-file --size 1M /var/log/app.log\n"
		"  ctl watch-file --events created,moved --timeout 1m /srv/ready\n"
		"  ctl watch-file --follow /etc/hosts\n",
	},
};

const char *cli_cmd_name(enum cli_cmd cmd)
{
	return cmd < CLI_NCMDS ? cmd_texts[cmd].name : "?";
}

const char *cli_usage(enum cli_cmd cmd)
{
	return cmd_texts[cmd < CLI_NCMDS ? cmd : CLI_NONE].usage;
}

const char *cli_help(enum cli_cmd cmd)
{
	return cmd_texts[cmd < CLI_NCMDS ? cmd : CLI_NONE].help;
}

static enum cli_cmd find_cmd(const char *name)
{
	for (int i = CLI_HELP; i < CLI_NCMDS; i++)
		if (i != CLI_VERSION && strcmp(name, cmd_texts[i].name) == 0)
			return (enum cli_cmd)i;
	return CLI_NONE;
}

/* ------------------------------------------------------------ value parsers */

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Copies an option value into a bounded protocol field, or says it is too long. */
static int set_str(char *dst, size_t cap, const char *val, const char *what, char *err,
		   size_t errlen)
{
	if (!copy_str(dst, cap, val))
		return fail(err, errlen, "%s is too long (at most %zu bytes)", what, cap - 1);
	return 0;
}

static int parse_one_target(const char *text, size_t len, struct cli_target *t, char *err,
			    size_t errlen)
{
	char item[sizeof(t->name)];
	const char *host = item;
	bool bracketed;
	int ret = 0;

	if (len == 0 || len >= sizeof(item))
		return fail(err, errlen, "bad host '%.*s' (want HOST:PORT or [ADDR6]:PORT)",
			    (int)(len < 100 ? len : 100), text);
	memcpy(item, text, len);
	item[len] = '\0';
	bracketed = item[0] == '[' && item[len - 1] == ']';
	*t = (struct cli_target){ .is_unix = false };
	if (bracketed || !strchr(item, ':')) {
		/* no port: the daemon's default */
		if (bracketed) {
			item[len - 1] = '\0';
			host++;
		}
		ret = copy_str(t->host, sizeof(t->host), host) && *host ? 0 : -EINVAL;
		copy_str(t->port, sizeof(t->port), CLI_DEFAULT_PORT);
		if (bracketed)
			item[len - 1] = ']';
	} else {
		ret = split_host_port(item, t->host, sizeof(t->host), t->port, sizeof(t->port));
	}
	if (ret || strpbrk(t->host, "[] \t") ||
	    cli_parse_port(t->port, &(uint16_t){ 0 }, err, errlen))
		return fail(err, errlen, "bad host '%s' (want HOST:PORT or [ADDR6]:PORT)", item);
	snprintf(t->name, sizeof(t->name), strchr(t->host, ':') ? "[%s]:%s" : "%s:%s", t->host,
		 t->port);
	return 0;
}

int cli_parse_targets(const char *list, struct cli_target *out, size_t max, size_t *n,
		      char *err, size_t errlen)
{
	const char *p = list;

	for (;;) {
		size_t len = strcspn(p, ",");

		if (*n == max)
			return fail(err, errlen, "too many hosts (at most %zu)", max);
		if (parse_one_target(p, len, &out[*n], err, errlen))
			return -EINVAL;
		(*n)++;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

int cli_check_env(const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');

	if (!eq || eq == kv)
		return fail(err, errlen, "--env wants KEY=VALUE, not '%s'", kv);
	return 0;
}

static const char *const rlimit_names[] = { "nofile", "nproc", "core",    "as",   "cpu",
					    "fsize",  "stack", "memlock", "data", "nice" };

static int parse_rlimit_value(const char *text, uint64_t *v)
{
	if (strcmp(text, "unlimited") == 0 || strcmp(text, "infinity") == 0) {
		*v = UINT64_MAX; /* RLIM_INFINITY */
		return 0;
	}
	return parse_size(text, v);
}

int cli_parse_rlimit(const char *spec, ctld_Rlimit *out, char *err, size_t errlen)
{
	char buf[128], *eq, *colon;
	size_t i;

	if (!copy_str(buf, sizeof(buf), spec) || !(eq = strchr(buf, '=')))
		return fail(err, errlen, "--rlimit wants RES=SOFT[:HARD], not '%s'", spec);
	*eq = '\0';
	for (i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (strcmp(buf, rlimit_names[i]) == 0)
			break;
	if (i == ARRAY_SIZE(rlimit_names))
		return fail(err, errlen,
			    "--rlimit: unknown resource '%s' (nofile, nproc, core, as, cpu, "
			    "fsize, stack, memlock, data, nice)",
			    buf);
	*out = (ctld_Rlimit)ctld_Rlimit_init_zero;
	copy_str(out->resource, sizeof(out->resource), buf);
	colon = strchr(eq + 1, ':');
	if (colon)
		*colon = '\0';
	if (parse_rlimit_value(eq + 1, &out->soft) ||
	    parse_rlimit_value(colon ? colon + 1 : eq + 1, &out->hard))
		return fail(err, errlen,
			    "--rlimit %s: bad value in '%s' (a number, 64K, 1G or unlimited)",
			    buf, spec);
	if (out->soft > out->hard)
		return fail(err, errlen, "--rlimit %s: soft limit is above the hard limit", buf);
	return 0;
}

static const struct {
	const char *name;
	uint32_t kind;
} file_events[] = {
	{ "created", ctld_FileEventKind_FILE_CREATED },
	{ "modified", ctld_FileEventKind_FILE_MODIFIED },
	{ "closed_write", ctld_FileEventKind_FILE_CLOSED_WRITE },
	{ "deleted", ctld_FileEventKind_FILE_DELETED },
	{ "moved", ctld_FileEventKind_FILE_MOVED },
	{ "attrib", ctld_FileEventKind_FILE_ATTRIB },
	/* not accepted by --events (--size asks for it); named for output */
	{ "size_reached", ctld_FileEventKind_FILE_SIZE_REACHED },
	{ "overflow", ctld_FileEventKind_FILE_OVERFLOW },
};

#define SELECTABLE_FILE_EVENTS 6

const char *cli_file_event_name(uint32_t kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(file_events); i++)
		if (file_events[i].kind == kind)
			return file_events[i].name;
	return "unknown";
}

int cli_parse_events(const char *list, uint32_t *kinds, char *err, size_t errlen)
{
	const char *p = list;

	*kinds = 0;
	for (;;) {
		size_t len = strcspn(p, ","), i;

		for (i = 0; i < SELECTABLE_FILE_EVENTS; i++)
			if (strlen(file_events[i].name) == len &&
			    strncmp(p, file_events[i].name, len) == 0)
				break;
		if (i == SELECTABLE_FILE_EVENTS)
			return fail(err, errlen,
				    "--events: unknown event '%.*s' (created, modified, "
				    "closed_write, deleted, moved, attrib)",
				    (int)(len < 64 ? len : 64), p);
		*kinds |= file_events[i].kind;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

int cli_parse_job(const char *text, uint64_t *job, char *err, size_t errlen)
{
	long v;

	if (parse_long(text, 1, LONG_MAX, &v))
		return fail(err, errlen, "bad job id '%s' (a number, as printed by start/list)",
			    text);
	*job = (uint64_t)v;
	return 0;
}

int cli_parse_port(const char *text, uint16_t *port, char *err, size_t errlen)
{
	long v;

	if (parse_long(text, 1, 65535, &v))
		return fail(err, errlen, "bad port '%s' (1..65535)", text);
	*port = (uint16_t)v;
	return 0;
}

static int parse_timeout(const char *text, uint32_t *ms, char *err, size_t errlen)
{
	if (parse_duration_ms(text, ms) || *ms == 0)
		return fail(err, errlen, "bad duration '%s' (e.g. 250ms, 10s, 2m, 1h)", text);
	return 0;
}

static int parse_umask(const char *text, uint32_t *mask, char *err, size_t errlen)
{
	uint32_t v = 0;

	if (!*text || strlen(text) > 4)
		goto bad;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '7')
			goto bad;
		v = v * 8 + (uint32_t)(*p - '0');
	}
	if (v > 0777)
		goto bad;
	*mask = v;
	return 0;
bad:
	return fail(err, errlen, "bad umask '%s' (octal, 000..777)", text);
}

bool cli_join_path(const char *dir, const char *path, char *out, size_t cap)
{
	int n;

	if (path[0] == '/' || !dir)
		return copy_str(out, cap, path);
	n = snprintf(out, cap, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", path);
	return n >= 0 && (size_t)n < cap;
}

/* ------------------------------------------------------------ options */

/* Command-line targets before they are settled against the environment. */
struct target_opts {
	const char *socket;
	bool hosts;
};

static int apply_run_opt(struct cli_args *a, int id, const char *val, char *err, size_t errlen)
{
	ctld_Run *r = &a->run;

	switch (id) {
	case OPT_NAME:
		return set_str(r->name, sizeof(r->name), val, "--name", err, errlen);
	case OPT_CWD:
		return set_str(r->cwd, sizeof(r->cwd), val, "--cwd", err, errlen);
	case OPT_ENV:
		if (r->env_count == ARRAY_SIZE(r->env))
			return fail(err, errlen, "too many --env (at most %zu)",
				    ARRAY_SIZE(r->env));
		if (cli_check_env(val, err, errlen))
			return -EINVAL;
		return set_str(r->env[r->env_count++], sizeof(r->env[0]), val, "--env", err,
			       errlen);
	case OPT_CLEAN_ENV:
		r->clean_env = true;
		return 0;
	case OPT_STDOUT:
		return set_str(r->stdout_path, sizeof(r->stdout_path), val, "--stdout", err,
			       errlen);
	case OPT_STDERR:
		return set_str(r->stderr_path, sizeof(r->stderr_path), val, "--stderr", err,
			       errlen);
	case OPT_USER:
		return set_str(r->user, sizeof(r->user), val, "--user", err, errlen);
	case OPT_GROUP:
		return set_str(r->group, sizeof(r->group), val, "--group", err, errlen);
	case OPT_RLIMIT:
		if (r->rlimits_count == ARRAY_SIZE(r->rlimits))
			return fail(err, errlen, "too many --rlimit (at most %zu)",
				    ARRAY_SIZE(r->rlimits));
		return cli_parse_rlimit(val, &r->rlimits[r->rlimits_count++], err, errlen);
	case OPT_UMASK:
		r->has_umask = true;
		return parse_umask(val, &r->umask, err, errlen);
	case OPT_STDIN:
		a->stdin_mode = CLI_STDIN_ON;
		return 0;
	case OPT_NO_STDIN:
		a->stdin_mode = CLI_STDIN_OFF;
		return 0;
	case OPT_KILL_ON_DISCONNECT:
		r->kill_on_disconnect = true;
		return 0;
	case OPT_WAIT_PORT:
		return cli_parse_port(val, &a->wait_port, err, errlen);
	}
	return fail(err, errlen, "bug: option %d not handled", id);
}

static int apply_opt(struct cli_args *a, struct target_opts *t, int id, const char *val,
		     char *err, size_t errlen)
{
	uint32_t ms;

	switch (id) {
	case OPT_SOCKET:
		t->socket = val;
		return 0;
	case OPT_HOST:
		t->hosts = true;
		return cli_parse_targets(val, a->targets, CLI_MAX_TARGETS, &a->ntargets, err,
					 errlen);
	case OPT_JSON:
		a->json = true;
		return 0;
	case OPT_TLS_CERT:
		a->tls_cert = val;
		return 0;
	case OPT_TLS_KEY:
		a->tls_key = val;
		return 0;
	case OPT_TLS_CA:
		a->tls_ca = val;
		return 0;
	case OPT_CONNECT_TIMEOUT:
		return parse_timeout(val, &a->connect_timeout_ms, err, errlen);
	case OPT_HELP:
		a->help_for = a->cmd;
		a->cmd = CLI_HELP;
		return 0;
	case OPT_VERSION:
		a->cmd = CLI_VERSION;
		return 0;
	case OPT_TIMEOUT:
		if (parse_timeout(val, &ms, err, errlen))
			return -EINVAL;
		/* run/start map it in finish_run(); the watches take it as is */
		a->run.timeout_ms = a->watch_port.timeout_ms = a->watch_file.timeout_ms = ms;
		return 0;
	case OPT_NO_BACKLOG:
		a->no_backlog = true;
		return 0;
	case OPT_SIGNAL:
		a->signal = parse_signal(val);
		return a->signal > 0 ? 0 : fail(err, errlen, "unknown signal '%s'", val);
	case OPT_MAIN_ONLY:
		a->main_only = true;
		return 0;
	case OPT_RUNNING:
		a->running_only = true;
		return 0;
	case OPT_ADDR:
		return set_str(a->watch_port.addr, sizeof(a->watch_port.addr), val, "--addr", err,
			       errlen);
	case OPT_NETNS:
		return set_str(a->watch_port.netns, sizeof(a->watch_port.netns), val, "--netns",
			       err, errlen);
	case OPT_SIZE:
		a->watch_file.has_size_threshold = true;
		if (parse_size(val, &a->watch_file.size_threshold))
			return fail(err, errlen, "bad size '%s' (e.g. 4096, 64K, 10M)", val);
		return 0;
	case OPT_EVENTS:
		return cli_parse_events(val, &a->watch_file.kinds, err, errlen);
	case OPT_FOLLOW:
		a->follow = true;
		return 0;
	}
	return apply_run_opt(a, id, val, err, errlen);
}

/* getopt tables for the options `cmd` accepts; '+' stops at the first operand. */
static void build_getopt(enum cli_cmd cmd, bool stop_at_operand, char *shortopts,
			 struct option *longopts)
{
	size_t n = 0;
	char *s = shortopts;

	if (stop_at_operand)
		*s++ = '+';
	*s++ = ':'; /* a missing argument is ':' rather than '?' */
	for (size_t i = 0; i < ARRAY_SIZE(opt_defs); i++) {
		const struct opt_def *d = &opt_defs[i];

		if (!(d->cmds & C(cmd)))
			continue;
		longopts[n++] = (struct option){ d->name, d->has_arg, NULL, d->id };
		if (d->id < 128) {
			*s++ = (char)d->id;
			if (d->has_arg)
				*s++ = ':';
		}
	}
	*s = '\0';
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
}

/*
 * Applies the options of argv[1..] for `cmd` (argv[0] is the command name or
 * the program). Returns the index of the first operand, or -EINVAL.
 */
static int parse_options(int argc, char **argv, enum cli_cmd cmd, bool stop_at_operand,
			 struct cli_args *a, struct target_opts *t, char *err, size_t errlen)
{
	struct option longopts[MAX_OPTS];
	char shortopts[2 * MAX_OPTS + 3];
	const char *where = cmd == CLI_NONE ? "" : cli_cmd_name(cmd);
	int c;

	build_getopt(cmd, stop_at_operand, shortopts, longopts);
	optind = 0; /* glibc: start over, permutation state included */
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c == '?' || c == ':') {
			const char *opt = argv[optind - 1];
			char shortname[3] = { '-', (char)optopt, '\0' };

			if (optopt && strncmp(opt, "--", 2) != 0)
				opt = shortname;
			return fail(err, errlen, c == ':' ? "%s%s%s needs a value"
							  : "%s%sunknown option %s",
				    where, *where ? ": " : "", opt);
		}
		if (apply_opt(a, t, c, optarg, err, errlen))
			return -EINVAL;
		if (a->cmd == CLI_HELP || a->cmd == CLI_VERSION)
			return optind;
	}
	return optind;
}

/* ------------------------------------------------------------ commands */

static int want_operands(enum cli_cmd cmd, int n, int want, char *err, size_t errlen)
{
	static const char *const what[CLI_NCMDS] = {
		[CLI_WAIT] = "a job id", [CLI_ATTACH] = "a job id", [CLI_KILL] = "a job id",
		[CLI_WATCH_PORT] = "a port", [CLI_WATCH_FILE] = "a path",
	};

	if (n < want)
		return fail(err, errlen, "%s: missing %s", cli_cmd_name(cmd), what[cmd]);
	if (n > want)
		return fail(err, errlen, "%s: too many arguments", cli_cmd_name(cmd));
	return 0;
}

static int finish_run(struct cli_args *a, char **ops, int nops, char *err, size_t errlen)
{
	ctld_Run *r = &a->run;
	const char *cmd = cli_cmd_name(a->cmd);

	if (nops == 0)
		return fail(err, errlen, "%s: missing the program to run (ctl %s -- PROGRAM ...)",
			    cmd, cmd);
	if ((size_t)nops > ARRAY_SIZE(r->argv))
		return fail(err, errlen, "%s: too many arguments (at most %zu)", cmd,
			    ARRAY_SIZE(r->argv));
	if (!ops[0][0])
		return fail(err, errlen, "%s: the program name is empty", cmd);
	for (int i = 0; i < nops; i++)
		if (set_str(r->argv[i], sizeof(r->argv[0]), ops[i], "an argument", err, errlen))
			return -EINVAL;
	r->argv_count = (pb_size_t)nops;
	if (a->cmd == CLI_START && a->stdin_mode == CLI_STDIN_ON)
		return fail(err, errlen, "start: --stdin: a job in the background cannot read "
					 "ctl's stdin");
	if ((a->cmd == CLI_START || a->wait_port) && r->kill_on_disconnect)
		return fail(err, errlen,
			    "%s: --kill-on-disconnect would kill the job as soon as ctl returns",
			    cmd);
	if (a->wait_port) {
		/* --timeout (already in watch_port) bounds the wait for the port; the
		 * job itself keeps running */
		a->watch_port.port = a->wait_port;
		a->watch_port.once = true;
		r->timeout_ms = 0;
	}
	return 0;
}

static int finish_command(struct cli_args *a, char **ops, int nops, char *err, size_t errlen)
{
	static const int operands[CLI_NCMDS] = {
		[CLI_WAIT] = 1, [CLI_ATTACH] = 1,     [CLI_KILL] = 1,
		[CLI_WATCH_PORT] = 1, [CLI_WATCH_FILE] = 1,
	};
	uint16_t port = 0;

	if (a->cmd == CLI_RUN || a->cmd == CLI_START)
		return finish_run(a, ops, nops, err, errlen);
	if (want_operands(a->cmd, nops, operands[a->cmd], err, errlen))
		return -EINVAL;
	switch (a->cmd) {
	case CLI_WAIT:
	case CLI_ATTACH:
	case CLI_KILL:
		return cli_parse_job(ops[0], &a->job, err, errlen);
	case CLI_WATCH_PORT:
		if (cli_parse_port(ops[0], &port, err, errlen))
			return -EINVAL;
		a->watch_port.port = port;
		a->watch_port.once = true;
		return 0;
	case CLI_WATCH_FILE:
		if (!ops[0][0])
			return fail(err, errlen, "watch-file: the path is empty");
		a->watch_file.once = !a->follow;
		/* --size alone waits for the size only (kinds 0 would mean "all but
		 * the size"); with --events, for either */
		if (a->watch_file.has_size_threshold)
			a->watch_file.kinds |= ctld_FileEventKind_FILE_SIZE_REACHED;
		return set_str(a->watch_file.path, sizeof(a->watch_file.path), ops[0], "the path",
			       err, errlen);
	default:
		return 0;
	}
}

/* -S / -H from the command line, else $CTLD_HOST, else $CTLD_SOCKET, else the default. */
static int settle_targets(struct cli_args *a, const struct target_opts *t, const char *env_socket,
			  const char *env_host, char *err, size_t errlen)
{
	const char *socket = t->socket;

	if (t->socket && t->hosts)
		return fail(err, errlen, "give either -S SOCKET or -H HOST:PORT, not both");
	if (!t->socket && !t->hosts && env_host && *env_host) {
		if (cli_parse_targets(env_host, a->targets, CLI_MAX_TARGETS, &a->ntargets, err,
				      errlen)) {
			size_t len = strlen(err);

			snprintf(err + len, errlen - len, " in $CTLD_HOST");
			return -EINVAL;
		}
	}
	if (a->ntargets == 0) {
		struct cli_target *u = &a->targets[a->ntargets++];

		if (!socket)
			socket = env_socket && *env_socket ? env_socket : CLI_DEFAULT_SOCKET;
		*u = (struct cli_target){ .is_unix = true };
		if (!*socket || !copy_str(u->path, sizeof(u->path), socket))
			return fail(err, errlen, "bad socket path '%s' (empty or too long)",
				    socket);
		copy_str(u->name, sizeof(u->name), socket);
	}
	if ((a->tls_cert || a->tls_key || a->tls_ca) &&
	    !(a->tls_cert && a->tls_key && a->tls_ca))
		return fail(err, errlen, "TLS needs all of --tls-cert, --tls-key and --tls-ca");
	if (a->tls_cert && a->targets[0].is_unix)
		return fail(err, errlen, "TLS is for TCP daemons (-H), not the unix socket");
	return 0;
}

static int parse_help_command(struct cli_args *a, char **ops, int nops, char *err, size_t errlen)
{
	a->help_for = CLI_NONE;
	if (nops > 1)
		return fail(err, errlen, "help: too many arguments");
	if (nops == 1 && (a->help_for = find_cmd(ops[0])) == CLI_NONE)
		return fail(err, errlen, "help: unknown command '%s'", ops[0]);
	return 0;
}

int cli_parse(int argc, char **argv, const char *env_socket, const char *env_host,
	      struct cli_args *a, char *err, size_t errlen)
{
	struct target_opts t = { NULL, false };
	int first, ops;
	char **sub;

	memset(a, 0, sizeof(*a));
	a->connect_timeout_ms = CLI_DEFAULT_CONNECT_TIMEOUT_MS;
	first = parse_options(argc, argv, CLI_NONE, true, a, &t, err, errlen);
	if (first < 0 || a->cmd == CLI_HELP || a->cmd == CLI_VERSION)
		return first < 0 ? -EINVAL : 0;
	if (first >= argc)
		return fail(err, errlen, "missing command (run, start, wait, attach, kill, list, "
					 "stats, watch-port, watch-file, watches)");
	a->cmd = find_cmd(argv[first]);
	if (a->cmd == CLI_NONE)
		return fail(err, errlen, "unknown command '%s'", argv[first]);
	sub = argv + first;
	ops = parse_options(argc - first, sub, a->cmd,
			    a->cmd == CLI_RUN || a->cmd == CLI_START || a->cmd == CLI_HELP, a, &t,
			    err, errlen);
	if (ops < 0)
		return -EINVAL;
	if (a->cmd == CLI_HELP && a->help_for != CLI_NONE)
		return 0; /* COMMAND --help */
	if (a->cmd == CLI_HELP)
		return parse_help_command(a, sub + ops, argc - first - ops, err, errlen);
	if (finish_command(a, sub + ops, argc - first - ops, err, errlen))
		return -EINVAL;
	return settle_targets(a, &t, env_socket, env_host, err, errlen);
}
