// SPDX-License-Identifier: BSD-2-Clause
/*
 * args.c - ctl's command line: the option table and the parsers for every
 * option value (the help texts are in help.c).
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
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/args.h"
#include "ctl/args_priv.h"
#include "common/util.h"

#define C(cmd) (1u << (cmd))
#define RUNLIKE (C(CLI_RUN) | C(CLI_START))
#define ALL_CMDS (~0u)
#define MAX_OPTS 56

enum opt_id {
	OPT_SOCKET = 'S', OPT_HOST = 'H', OPT_HELP = 'h', OPT_CWD = 'C', OPT_ENV = 'e',
	OPT_TIMEOUT = 't', OPT_SIGNAL = 's', OPT_RUNNING = 'r', OPT_FOLLOW = 'f',
	OPT_JSON = 256, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_CONNECT_TIMEOUT, OPT_LIVENESS,
	OPT_VERSION,
	OPT_NAME, OPT_CLEAN_ENV, OPT_STDOUT, OPT_STDERR, OPT_USER, OPT_GROUP, OPT_RLIMIT,
	OPT_UMASK, OPT_STDIN, OPT_NO_STDIN, OPT_KILL_ON_DISCONNECT, OPT_WAIT_PORT, OPT_WAIT_TREE,
	OPT_WAIT_LOG, OPT_WAIT_FILE, OPT_WAIT_SIZE, OPT_WAIT_ANY, OPT_KEEP_RUNNING,
	OPT_NO_BACKLOG, OPT_MAIN_ONLY, OPT_GRACE, OPT_ADDR, OPT_NETNS, OPT_SIZE, OPT_EVENTS,
	OPT_MAX_PROCS, OPT_FANOUT, OPT_SUMMARY, OPT_TIMELINE, OPT_TLS_SESSION_CACHE,
	OPT_GATHER = 'b',
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
	{ "tls-session-cache", OPT_TLS_SESSION_CACHE, required_argument, ALL_CMDS },
	{ "connect-timeout", OPT_CONNECT_TIMEOUT, required_argument, ALL_CMDS },
	{ "liveness", OPT_LIVENESS, required_argument, ALL_CMDS },
	{ "fanout", OPT_FANOUT, required_argument, ALL_CMDS },
	{ "gather", OPT_GATHER, no_argument, ALL_CMDS },
	{ "summary", OPT_SUMMARY, no_argument, ALL_CMDS },
	{ "timeline", OPT_TIMELINE, required_argument, ALL_CMDS },
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
	{ "user", OPT_USER, required_argument, RUNLIKE | C(CLI_PUT) | C(CLI_GET) },
	{ "group", OPT_GROUP, required_argument, RUNLIKE },
	{ "rlimit", OPT_RLIMIT, required_argument, RUNLIKE },
	{ "umask", OPT_UMASK, required_argument, RUNLIKE },
	{ "max-procs", OPT_MAX_PROCS, required_argument, RUNLIKE },
	{ "stdin", OPT_STDIN, no_argument, RUNLIKE },
	{ "no-stdin", OPT_NO_STDIN, no_argument, RUNLIKE },
	{ "kill-on-disconnect", OPT_KILL_ON_DISCONNECT, no_argument, RUNLIKE },
	{ "wait-tree", OPT_WAIT_TREE, no_argument, RUNLIKE },
	{ "wait-port", OPT_WAIT_PORT, required_argument, RUNLIKE },
	{ "wait-log", OPT_WAIT_LOG, required_argument, RUNLIKE },
	{ "wait-file", OPT_WAIT_FILE, required_argument, RUNLIKE },
	{ "wait-size", OPT_WAIT_SIZE, required_argument, RUNLIKE },
	{ "wait-any", OPT_WAIT_ANY, no_argument, RUNLIKE },
	{ "keep-running", OPT_KEEP_RUNNING, no_argument, RUNLIKE },
	{ "keep-on-timeout", OPT_KEEP_RUNNING, no_argument, RUNLIKE },
	{ "no-backlog", OPT_NO_BACKLOG, no_argument, C(CLI_ATTACH) },
	{ "signal", OPT_SIGNAL, required_argument, C(CLI_KILL) },
	{ "main-only", OPT_MAIN_ONLY, no_argument, C(CLI_KILL) },
	{ "grace", OPT_GRACE, required_argument, C(CLI_KILL) },
	{ "running", OPT_RUNNING, no_argument, C(CLI_LIST) },
	{ "addr", OPT_ADDR, required_argument, C(CLI_WATCH_PORT) },
	{ "netns", OPT_NETNS, required_argument, C(CLI_WATCH_PORT) },
	{ "size", OPT_SIZE, required_argument, C(CLI_WATCH_FILE) },
	{ "events", OPT_EVENTS, required_argument, C(CLI_WATCH_FILE) },
	{ "follow", OPT_FOLLOW, no_argument, C(CLI_WATCH_FILE) },
};

_Static_assert(ARRAY_SIZE(opt_defs) < MAX_OPTS, "raise MAX_OPTS");

static enum cli_cmd find_cmd(const char *name)
{
	for (int i = CLI_HELP; i < CLI_NCMDS; i++)
		if (i != CLI_VERSION && strcmp(name, cli_cmd_name((enum cli_cmd)i)) == 0)
			return (enum cli_cmd)i;
	return CLI_NONE;
}

/* ------------------------------------------------------------ options */

/* The daemon compiles it too; a typo is a usage error before anything runs. */
static int check_regex(const char *pattern, char *err, size_t errlen)
{
	regex_t re;
	char why[120];
	int ret = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);

	if (ret == 0) {
		regfree(&re);
		return 0;
	}
	regerror(ret, &re, why, sizeof(why));
	return errorf(err, errlen, -EINVAL, "--wait-log: bad regular expression '%s': %s", pattern,
		      why);
}


/* --wait-file PATH[:MIN_BYTES]: the part after the last ':' is a size when
 * it reads as one ("out.log:1K"); otherwise the whole text is the path
 * (--wait-size then names the size of a path that ends like one). */
static int parse_wait_file(const char *val, ctld_FileCondition *f, char *err, size_t errlen)
{
	const char *colon = strrchr(val, ':');
	char path[sizeof(f->path)];
	uint64_t size;

	if (colon && colon > val && colon[1] && !parse_size(colon + 1, &size)) {
		if ((size_t)(colon - val) >= sizeof(path))
			return errorf(err, errlen, -EINVAL, "--wait-file: the path is too long");
		memcpy(path, val, (size_t)(colon - val));
		path[colon - val] = '\0';
		f->has_min_bytes = true;
		f->min_bytes = size;
		val = path;
	}
	if (!val[0])
		return errorf(err, errlen, -EINVAL, "--wait-file: the path is empty");
	return cli_set_str(f->path, sizeof(f->path), val, "--wait-file", err, errlen);
}

/* --wait-port, --wait-log, --wait-file, --wait-size: Run.ready, in order. */
static int apply_ready_opt(ctld_Run *r, int id, const char *val, char *err, size_t errlen)
{
	ctld_ReadyCondition *c;

	if (id == OPT_WAIT_SIZE) {
		c = r->ready_count ? &r->ready[r->ready_count - 1] : NULL;
		if (!c || c->which_kind != ctld_ReadyCondition_file_tag)
			return errorf(err, errlen, -EINVAL, "--wait-size must follow a --wait-file");
		c->kind.file.has_min_bytes = true;
		if (parse_size(val, &c->kind.file.min_bytes))
			return errorf(err, errlen, -EINVAL, "bad size '%s' (e.g. 1, 64K, 10M)", val);
		return 0;
	}
	if (id != OPT_WAIT_PORT && id != OPT_WAIT_LOG && id != OPT_WAIT_FILE)
		return errorf(err, errlen, -EINVAL, "bug: option %d not handled", id);
	if (r->ready_count == ARRAY_SIZE(r->ready))
		return errorf(err, errlen, -EINVAL, "too many --wait-port/--wait-log/--wait-file "
						    "(at most %zu)",
			      ARRAY_SIZE(r->ready));
	c = &r->ready[r->ready_count++];
	switch (id) {
	case OPT_WAIT_PORT:
		c->which_kind = ctld_ReadyCondition_port_tag;
		return cli_parse_ready_port(val, &c->kind.port, err, errlen);
	case OPT_WAIT_LOG:
		c->which_kind = ctld_ReadyCondition_log_tag;
		if (!val[0])
			return errorf(err, errlen, -EINVAL, "--wait-log: the pattern is empty");
		if (check_regex(val, err, errlen))
			return -EINVAL;
		return cli_set_str(c->kind.log.regex, sizeof(c->kind.log.regex), val, "--wait-log",
				   err, errlen);
	default:
		c->which_kind = ctld_ReadyCondition_file_tag;
		return parse_wait_file(val, &c->kind.file, err, errlen);
	}
}

/* A number 1..max for option `what`. */
static int parse_count(const char *val, long max, const char *what, uint32_t *out, char *err,
		       size_t errlen)
{
	long n;

	if (parse_long(val, 1, max, &n))
		return errorf(err, errlen, -EINVAL, "%s: bad number '%s' (1..%ld)", what, val, max);
	*out = (uint32_t)n;
	return 0;
}

static int apply_run_opt(struct cli_args *a, int id, const char *val, char *err, size_t errlen)
{
	ctld_Run *r = &a->run;

	switch (id) {
	case OPT_NAME:
		return cli_set_str(r->name, sizeof(r->name), val, "--name", err, errlen);
	case OPT_CWD:
		return cli_set_str(r->cwd, sizeof(r->cwd), val, "--cwd", err, errlen);
	case OPT_ENV:
		if (r->env_count == ARRAY_SIZE(r->env))
			return errorf(err, errlen, -EINVAL, "too many --env (at most %zu)",
				    ARRAY_SIZE(r->env));
		if (cli_check_env(val, err, errlen))
			return -EINVAL;
		return cli_set_str(r->env[r->env_count++], sizeof(r->env[0]), val, "--env", err,
			       errlen);
	case OPT_CLEAN_ENV:
		r->clean_env = true;
		return 0;
	case OPT_STDOUT:
		return cli_set_str(r->stdout_path, sizeof(r->stdout_path), val, "--stdout", err,
			       errlen);
	case OPT_STDERR:
		return cli_set_str(r->stderr_path, sizeof(r->stderr_path), val, "--stderr", err,
			       errlen);
	case OPT_USER:
		return cli_set_str(r->user, sizeof(r->user), val, "--user", err, errlen);
	case OPT_GROUP:
		return cli_set_str(r->group, sizeof(r->group), val, "--group", err, errlen);
	case OPT_RLIMIT:
		if (r->rlimits_count == ARRAY_SIZE(r->rlimits))
			return errorf(err, errlen, -EINVAL, "too many --rlimit (at most %zu)",
				    ARRAY_SIZE(r->rlimits));
		return cli_parse_rlimit(val, &r->rlimits[r->rlimits_count++], err, errlen);
	case OPT_UMASK:
		r->has_umask = true;
		return cli_parse_umask(val, &r->umask, err, errlen);
	case OPT_MAX_PROCS:
		return parse_count(val, 4194304, "--max-procs", &r->max_procs, err, errlen);
	case OPT_STDIN:
		a->stdin_mode = CLI_STDIN_ON;
		return 0;
	case OPT_NO_STDIN:
		a->stdin_mode = CLI_STDIN_OFF;
		return 0;
	case OPT_KILL_ON_DISCONNECT:
		r->kill_on_disconnect = true;
		return 0;
	case OPT_WAIT_TREE:
		r->wait_tree = true;
		return 0;
	case OPT_WAIT_ANY:
		r->ready_any = true;
		return 0;
	case OPT_KEEP_RUNNING:
		r->keep_on_not_ready = true;
		return 0;
	}
	return apply_ready_opt(r, id, val, err, errlen);
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
		return targets_add(t, val, err, errlen);
	case OPT_FANOUT:
		return parse_count(val, CLI_MAX_FANOUT, "--fanout", &a->fanout, err, errlen);
	case OPT_GATHER:
		a->gather = true;
		return 0;
	case OPT_SUMMARY:
		a->summary = true;
		return 0;
	case OPT_TIMELINE:
		a->timeline = val;
		return 0;
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
	case OPT_TLS_SESSION_CACHE:
		a->tls_session_cache = val;
		return 0;
	case OPT_CONNECT_TIMEOUT:
		return cli_parse_timeout(val, &a->connect_timeout_ms, err, errlen);
	case OPT_LIVENESS:
		return cli_parse_liveness(val, &a->liveness_ms, err, errlen);
	case OPT_HELP:
		a->help_for = a->cmd;
		a->cmd = CLI_HELP;
		return 0;
	case OPT_VERSION:
		a->cmd = CLI_VERSION;
		return 0;
	case OPT_TIMEOUT:
		if (cli_parse_timeout(val, &ms, err, errlen))
			return -EINVAL;
		/* run/start map it in finish_run(); the watches take it as is */
		a->run.timeout_ms = a->watch_port.timeout_ms = a->watch_file.timeout_ms = ms;
		return 0;
	case OPT_NO_BACKLOG:
		a->no_backlog = true;
		return 0;
	case OPT_SIGNAL:
		a->signal = parse_signal(val);
		return a->signal > 0 ? 0 : errorf(err, errlen, -EINVAL, "unknown signal '%s'", val);
	case OPT_MAIN_ONLY:
		a->main_only = true;
		return 0;
	case OPT_GRACE:
		return cli_parse_timeout(val, &a->grace_ms, err, errlen);
	case OPT_RUNNING:
		a->running_only = true;
		return 0;
	case OPT_ADDR:
		return cli_set_str(a->watch_port.addr, sizeof(a->watch_port.addr), val, "--addr", err,
			       errlen);
	case OPT_NETNS:
		return cli_set_str(a->watch_port.netns, sizeof(a->watch_port.netns), val, "--netns",
			       err, errlen);
	case OPT_SIZE:
		a->watch_file.has_size_threshold = true;
		if (parse_size(val, &a->watch_file.size_threshold))
			return errorf(err, errlen, -EINVAL, "bad size '%s' (e.g. 4096, 64K, 10M)", val);
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
			return errorf(err, errlen, -EINVAL, c == ':' ? "%s%s%s needs a value"
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
		[CLI_PUT] = "LOCAL or REMOTE", [CLI_GET] = "REMOTE or LOCALDIR",
	};

	if (n < want)
		return errorf(err, errlen, -EINVAL, "%s: missing %s", cli_cmd_name(cmd), what[cmd]);
	if (n > want)
		return errorf(err, errlen, -EINVAL, "%s: too many arguments", cli_cmd_name(cmd));
	return 0;
}

static int finish_run(struct cli_args *a, char **ops, int nops, char *err, size_t errlen)
{
	ctld_Run *r = &a->run;
	const char *cmd = cli_cmd_name(a->cmd);

	if (nops == 0)
		return errorf(err, errlen, -EINVAL, "%s: missing the program to run (ctl %s -- PROGRAM ...)",
			    cmd, cmd);
	if ((size_t)nops > ARRAY_SIZE(r->argv))
		return errorf(err, errlen, -EINVAL, "%s: too many arguments (at most %zu)", cmd,
			    ARRAY_SIZE(r->argv));
	if (!ops[0][0])
		return errorf(err, errlen, -EINVAL, "%s: the program name is empty", cmd);
	for (int i = 0; i < nops; i++)
		if (cli_set_str(r->argv[i], sizeof(r->argv[0]), ops[i], "an argument", err, errlen))
			return -EINVAL;
	r->argv_count = (pb_size_t)nops;
	if (a->cmd == CLI_START && a->stdin_mode == CLI_STDIN_ON)
		return errorf(err, errlen, -EINVAL, "start: --stdin: a job in the background cannot read "
					 "ctl's stdin");
	if ((a->cmd == CLI_START || r->ready_count) && r->kill_on_disconnect)
		return errorf(err, errlen, -EINVAL,
			    "%s: --kill-on-disconnect would kill the job as soon as ctl returns",
			    cmd);
	if (!r->ready_count && (r->ready_any || r->keep_on_not_ready))
		return errorf(err, errlen, -EINVAL, "%s: --%s needs a --wait-port, --wait-log or "
						    "--wait-file",
			      cmd, r->ready_any ? "wait-any" : "keep-running");
	if (r->ready_count) {
		/* --timeout bounds the wait for readiness; the job itself, once
		 * ready, runs as long as it likes */
		r->ready_timeout_ms = r->timeout_ms;
		r->timeout_ms = 0;
	}
	return 0;
}

static int finish_command(struct cli_args *a, char **ops, int nops, char *err, size_t errlen)
{
	static const int operands[CLI_NCMDS] = {
		[CLI_WAIT] = 1, [CLI_ATTACH] = 1,     [CLI_KILL] = 1,
		[CLI_WATCH_PORT] = 1, [CLI_WATCH_FILE] = 1, [CLI_PUT] = 2, [CLI_GET] = 2,
	};
	uint16_t port = 0;

	if (a->cmd == CLI_RUN || a->cmd == CLI_START)
		return finish_run(a, ops, nops, err, errlen);
	if (want_operands(a->cmd, nops, operands[a->cmd], err, errlen))
		return -EINVAL;
	switch (a->cmd) {
	case CLI_KILL:
		if (a->grace_ms && a->main_only)
			return errorf(err, errlen, -EINVAL,
				      "kill: --grace escalates on the whole tree; not with --main-only");
		if (a->grace_ms && a->signal == SIGKILL)
			return errorf(err, errlen, -EINVAL, "kill: --grace with SIGKILL: nothing to "
							    "escalate to");
		return cli_parse_job(ops[0], &a->job, err, errlen);
	case CLI_WAIT:
	case CLI_ATTACH:
		return cli_parse_job(ops[0], &a->job, err, errlen);
	case CLI_WATCH_PORT:
		if (cli_parse_port(ops[0], &port, err, errlen))
			return -EINVAL;
		a->watch_port.port = port;
		a->watch_port.once = true;
		return 0;
	case CLI_WATCH_FILE:
		if (!ops[0][0])
			return errorf(err, errlen, -EINVAL, "watch-file: the path is empty");
		a->watch_file.once = !a->follow;
		/* --size alone waits for the size only (kinds 0 would mean "all but
		 * the size"); with --events, for either */
		if (a->watch_file.has_size_threshold)
			a->watch_file.kinds |= ctld_FileEventKind_FILE_SIZE_REACHED;
		return cli_set_str(a->watch_file.path, sizeof(a->watch_file.path), ops[0], "the path",
			       err, errlen);
	case CLI_PUT:
	case CLI_GET:
		a->local = ops[a->cmd == CLI_GET];
		a->remote = ops[a->cmd == CLI_PUT];
		return *a->local && *a->remote ? 0 : errorf(err, errlen, -EINVAL, "%s: empty path",
							    cli_cmd_name(a->cmd));
	default:
		return 0;
	}
}


static int parse_help_command(struct cli_args *a, char **ops, int nops, char *err, size_t errlen)
{
	a->help_for = CLI_NONE;
	if (nops > 1)
		return errorf(err, errlen, -EINVAL, "help: too many arguments");
	if (nops == 1 && (a->help_for = find_cmd(ops[0])) == CLI_NONE)
		return errorf(err, errlen, -EINVAL, "help: unknown command '%s'", ops[0]);
	return 0;
}

/* Defaults, and what the environment changes of them (the command line wins). */
static int apply_env(struct cli_args *a, const struct cli_env *env, char *err, size_t errlen)
{
	size_t len;

	memset(a, 0, sizeof(*a));
	a->connect_timeout_ms = CLI_DEFAULT_CONNECT_TIMEOUT_MS;
	a->liveness_ms = CLI_DEFAULT_LIVENESS_MS;
	a->fanout = CLI_DEFAULT_FANOUT;
	if (!env->liveness || !*env->liveness ||
	    !cli_parse_liveness(env->liveness, &a->liveness_ms, err, errlen))
		return 0;
	len = strlen(err);
	snprintf(err + len, errlen - len, " in $CTLD_LIVENESS");
	return -EINVAL;
}

void cli_args_free(struct cli_args *a)
{
	free(a->targets);
	a->targets = NULL;
	a->ntargets = 0;
}

static int parse_all(int argc, char **argv, const struct cli_env *env, struct cli_args *a,
		     struct target_opts *t, char *err, size_t errlen)
{
	int first, ops;
	char **sub;

	if (apply_env(a, env, err, errlen))
		return -EINVAL;
	first = parse_options(argc, argv, CLI_NONE, true, a, t, err, errlen);
	if (first < 0 || a->cmd == CLI_HELP || a->cmd == CLI_VERSION)
		return first < 0 ? -EINVAL : 0;
	if (first >= argc)
		return errorf(err, errlen, -EINVAL, "missing command (run, start, wait, attach, kill, list, "
					 "stats, watch-port, watch-file, watches, put, get)");
	a->cmd = find_cmd(argv[first]);
	if (a->cmd == CLI_NONE)
		return errorf(err, errlen, -EINVAL, "unknown command '%s'", argv[first]);
	sub = argv + first;
	ops = parse_options(argc - first, sub, a->cmd,
			    a->cmd == CLI_RUN || a->cmd == CLI_START || a->cmd == CLI_HELP, a, t,
			    err, errlen);
	if (ops < 0)
		return -EINVAL;
	if (a->cmd == CLI_HELP && a->help_for != CLI_NONE)
		return 0; /* COMMAND --help */
	if (a->cmd == CLI_HELP)
		return parse_help_command(a, sub + ops, argc - first - ops, err, errlen);
	if (finish_command(a, sub + ops, argc - first - ops, err, errlen))
		return -EINVAL;
	return targets_settle(a, t, env, err, errlen);
}

int cli_parse(int argc, char **argv, const struct cli_env *env, struct cli_args *a, char *err,
	      size_t errlen)
{
	struct target_opts t = { .env = env };
	int ret = parse_all(argc, argv, env, a, &t, err, errlen);

	nodeset_free(&t.names);
	return ret;
}
