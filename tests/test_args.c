// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_cli_args.c - ctl's command line: commands and their options, where
 * the target comes from (-S, -H, $CTLD_HOST, $CTLD_SOCKET), and the option
 * values a user types (env, rlimits, event lists, ports, job ids, umask),
 * each with its good forms, its bounds and typical mistakes.
 */
// TEST_SRCS: user/ctl/args.c user/ctl/help.c user/ctl/values.c user/ctl/targets.c user/ctl/nodeset.c user/ctl/nodeset_fold.c user/common/util.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/args.h"

static struct cli_args A; /* ~100 KiB: not on the stack */
static char err[512];

static const char *env_liveness; /* $CTLD_LIVENESS for the next parse */
static const char *file_text;	 /* what -H @FILE reads (NULL: the file is missing) */

static int fake_read_file(const char *path, char **text, char *why, size_t whylen)
{
	if (!file_text)
		return snprintf(why, whylen, "-H @%s: No such file or directory", path), -ENOENT;
	*text = strdup(file_text);
	return *text ? 0 : -ENOMEM;
}

/* Runs cli_parse on a NULL-terminated list (the program name is added). */
static int parse_env(const char *env_socket, const char *env_host, const char **args)
{
	char *argv[128] = { "ctl" };
	int argc = 1;

	while (*args && argc < 127)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	err[0] = '\0';
	cli_args_free(&A);
	return cli_parse(argc, argv,
			 &(struct cli_env){
				 .socket = env_socket, .host = env_host, .liveness = env_liveness,
				 .read_file = fake_read_file },
			 &A, err, sizeof(err));
}

#define PARSE(...) parse_env(NULL, NULL, (const char *[]){ __VA_ARGS__, NULL })
#define PARSE_ENV(sock, host, ...) parse_env(sock, host, (const char *[]){ __VA_ARGS__, NULL })

/* The usage error must name what was wrong, so the user can fix it. */
static void assert_usage_error(int ret, const char *needle)
{
	assert_int_equal(ret, -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
}

/* ------------------------------------------------------------ run, start */

/* Everything after -- is the program and its arguments, untouched. */
static void cli_run_argv_after_dashdash(void **state)
{
	(void)state;
	assert_int_equal(PARSE("run", "--name", "build", "--", "make", "-j4", "--help"), 0);
	assert_int_equal(A.cmd, CLI_RUN);
	assert_int_equal(A.run.argv_count, 3);
	assert_string_equal(A.run.argv[0], "make");
	assert_string_equal(A.run.argv[1], "-j4");
	assert_string_equal(A.run.argv[2], "--help");
	assert_string_equal(A.run.name, "build");
}

/* Without --, options stop at the program: its own options are not ctl's. */
static void cli_run_stops_at_program(void **state)
{
	(void)state;
	assert_int_equal(PARSE("run", "ls", "-l", "--help"), 0);
	assert_int_equal(A.cmd, CLI_RUN);
	assert_int_equal(A.run.argv_count, 3);
	assert_string_equal(A.run.argv[2], "--help");
}

/* Every run option lands in the Run request as the daemon expects it. */
static void cli_run_all_options(void **state)
{
	(void)state;
	assert_int_equal(PARSE("run", "-C", "/srv", "-e", "A=1", "--env", "B=x=y", "--clean-env",
			       "-t", "1.5s", "--stdout", "/tmp/o", "--stderr", "e.log", "--user",
			       "nobody", "--group", "nogroup", "--rlimit", "nofile=1024:4096",
			       "--umask", "027", "--kill-on-disconnect", "--no-stdin", "--",
			       "true"),
			 0);
	assert_string_equal(A.run.cwd, "/srv");
	assert_int_equal(A.run.env_count, 2);
	assert_string_equal(A.run.env[1], "B=x=y");
	assert_true(A.run.clean_env);
	assert_int_equal(A.run.timeout_ms, 1500);
	assert_string_equal(A.run.stdout_path, "/tmp/o");
	assert_string_equal(A.run.stderr_path, "e.log");
	assert_string_equal(A.run.user, "nobody");
	assert_string_equal(A.run.group, "nogroup");
	assert_int_equal(A.run.rlimits_count, 1);
	assert_int_equal(A.run.rlimits[0].hard, 4096);
	assert_true(A.run.has_umask);
	assert_int_equal(A.run.umask, 027);
	assert_true(A.run.kill_on_disconnect);
	assert_int_equal(A.stdin_mode, CLI_STDIN_OFF);
	assert_int_equal(A.run.ready_count, 0);
}

/* stdin is forwarded "when not a terminal" unless the user says otherwise. */
static void cli_run_stdin_modes(void **state)
{
	(void)state;
	assert_int_equal(PARSE("run", "cat"), 0);
	assert_int_equal(A.stdin_mode, CLI_STDIN_AUTO);
	assert_int_equal(PARSE("run", "--stdin", "cat"), 0);
	assert_int_equal(A.stdin_mode, CLI_STDIN_ON);
	assert_int_equal(PARSE("run", "--stdin", "--no-stdin", "cat"), 0);
	assert_int_equal(A.stdin_mode, CLI_STDIN_OFF);
}

/* A run without a program is a usage error naming what is missing. */
static void cli_run_missing_program(void **state)
{
	(void)state;
	assert_usage_error(PARSE("run"), "missing the program");
	assert_int_equal(A.cmd, CLI_RUN);
	assert_usage_error(PARSE("run", "--name", "x", "--"), "missing the program");
	assert_usage_error(PARSE("run", "--", ""), "empty");
}

/* Protocol bounds (64 args of 511 bytes, 32 env) are usage errors, not LIMIT. */
static void cli_run_bounds(void **state)
{
	static char long_arg[600];
	const char *args[80] = { "run", "--" };

	(void)state;
	for (int i = 2; i < 2 + 65; i++)
		args[i] = "x";
	assert_usage_error(parse_env(NULL, NULL, args), "too many arguments");
	args[2 + 64] = NULL;
	assert_int_equal(parse_env(NULL, NULL, args), 0);
	assert_int_equal(A.run.argv_count, 64);

	memset(long_arg, 'a', sizeof(long_arg) - 1);
	assert_usage_error(PARSE("run", "--", "echo", long_arg), "too long");
	long_arg[511] = '\0';
	assert_int_equal(PARSE("run", "--", "echo", long_arg), 0);
	assert_usage_error(PARSE("run", "--name", long_arg, "true"), "--name is too long");
}

/* --env beyond the protocol's 32 entries is refused by ctl, naming the limit. */
static void cli_run_too_many_env(void **state)
{
	const char *args[80] = { "run" };
	int n = 1;

	(void)state;
	for (int i = 0; i < 33; i++) {
		args[n++] = "-e";
		args[n++] = "K=V";
	}
	args[n++] = "true";
	assert_usage_error(parse_env(NULL, NULL, args), "too many --env");
}

/* With --wait-*, --timeout bounds the wait for readiness, not the job's life. */
static void cli_run_ready_takes_timeout(void **state)
{
	(void)state;
	assert_int_equal(PARSE("run", "--wait-port", "8080", "--timeout", "5s", "--", "srv"), 0);
	assert_int_equal(A.run.ready_count, 1);
	assert_int_equal(A.run.ready[0].which_kind, ctld_ReadyCondition_port_tag);
	assert_int_equal(A.run.ready[0].kind.port.port, 8080);
	assert_string_equal(A.run.ready[0].kind.port.addr, "");
	assert_int_equal(A.run.ready_timeout_ms, 5000);
	assert_int_equal(A.run.timeout_ms, 0);

	assert_int_equal(PARSE("run", "--timeout", "5s", "--", "srv"), 0);
	assert_int_equal(A.run.timeout_ms, 5000);
	assert_int_equal(A.run.ready_timeout_ms, 0);
}

/* Conditions are sent in the order given; --wait-size belongs to the
 * --wait-file before it. */
static void cli_run_ready_conditions(void **state)
{
	(void)state;
	assert_int_equal(PARSE("start", "--wait-log", "Ready (to|for) accept", "--wait-port",
			       "6379@::1", "--wait-file", "run/pid", "--wait-size", "1K",
			       "--wait-any", "--keep-running", "--", "srv"),
			 0);
	assert_int_equal(A.run.ready_count, 3);
	assert_int_equal(A.run.ready[0].which_kind, ctld_ReadyCondition_log_tag);
	assert_string_equal(A.run.ready[0].kind.log.regex, "Ready (to|for) accept");
	assert_int_equal(A.run.ready[1].kind.port.port, 6379);
	assert_string_equal(A.run.ready[1].kind.port.addr, "::1");
	assert_int_equal(A.run.ready[2].which_kind, ctld_ReadyCondition_file_tag);
	assert_string_equal(A.run.ready[2].kind.file.path, "run/pid");
	assert_true(A.run.ready[2].kind.file.has_min_bytes);
	assert_int_equal(A.run.ready[2].kind.file.min_bytes, 1024);
	assert_true(A.run.ready_any);
	assert_true(A.run.keep_on_not_ready);
	assert_int_equal(PARSE("run", "--wait-port", "80@10.0.0.1", "srv"), 0);
	assert_string_equal(A.run.ready[0].kind.port.addr, "10.0.0.1");
}

/* Every bad condition is a usage error naming what is wrong, before
 * anything runs. */
static void cli_run_ready_errors(void **state)
{
	const char *nine[32] = { "run" };
	int n = 1;

	(void)state;
	assert_usage_error(PARSE("run", "--wait-port", "0", "srv"), "bad port");
	assert_usage_error(PARSE("run", "--wait-port", "70000", "srv"), "bad port");
	assert_usage_error(PARSE("run", "--wait-port", "80@", "srv"), "bad address ''");
	assert_usage_error(PARSE("run", "--wait-port", "80@localhost", "srv"),
			   "bad address 'localhost'");
	assert_usage_error(PARSE("run", "--wait-port", "@::1", "srv"), "bad port");
	assert_usage_error(PARSE("run", "--wait-log", "", "srv"), "the pattern is empty");
	assert_usage_error(PARSE("run", "--wait-log", "(unclosed", "srv"),
			   "bad regular expression '(unclosed'");
	assert_usage_error(PARSE("run", "--wait-file", "", "srv"), "the path is empty");
	assert_usage_error(PARSE("run", "--wait-size", "10", "srv"), "must follow a --wait-file");
	assert_usage_error(PARSE("run", "--wait-port", "80", "--wait-size", "10", "srv"),
			   "must follow a --wait-file");
	assert_usage_error(PARSE("run", "--wait-file", "f", "--wait-size", "lots", "srv"),
			   "bad size 'lots'");
	assert_usage_error(PARSE("run", "--wait-any", "srv"), "--wait-any needs a --wait-port");
	assert_usage_error(PARSE("run", "--keep-running", "srv"),
			   "--keep-running needs a --wait-port");
	for (int i = 0; i < 9; i++) {
		nine[n++] = "--wait-port";
		nine[n++] = "80";
	}
	nine[n++] = "srv";
	assert_usage_error(parse_env(NULL, NULL, nine), "too many --wait-port");
}

/* start cannot forward stdin, and kill-on-disconnect would kill what it starts. */
static void cli_start_conflicts(void **state)
{
	(void)state;
	assert_int_equal(PARSE("start", "--name", "web", "--", "srv"), 0);
	assert_int_equal(A.cmd, CLI_START);
	assert_usage_error(PARSE("start", "--stdin", "srv"), "--stdin");
	assert_usage_error(PARSE("start", "--kill-on-disconnect", "srv"), "--kill-on-disconnect");
	assert_usage_error(PARSE("run", "--wait-port", "80", "--kill-on-disconnect", "srv"),
			   "--kill-on-disconnect");
}

/* A duration of 0 or garbage is refused: "--timeout 0" would silently mean none. */
static void cli_run_bad_timeout(void **state)
{
	(void)state;
	assert_usage_error(PARSE("run", "--timeout", "0", "true"), "bad duration");
	assert_usage_error(PARSE("run", "--timeout", "soon", "true"), "bad duration");
	assert_usage_error(PARSE("run", "--timeout"), "needs a value");
}

/* umask is octal within 000..777, and 0 is a real umask (has_umask set). */
static void cli_run_umask(void **state)
{
	(void)state;
	assert_int_equal(PARSE("run", "--umask", "0", "true"), 0);
	assert_true(A.run.has_umask);
	assert_int_equal(A.run.umask, 0);
	assert_int_equal(PARSE("run", "--umask", "0777", "true"), 0);
	assert_int_equal(A.run.umask, 0777);
	assert_usage_error(PARSE("run", "--umask", "8", "true"), "bad umask");
	assert_usage_error(PARSE("run", "--umask", "1000", "true"), "bad umask");
	assert_usage_error(PARSE("run", "--umask", "", "true"), "bad umask");
	assert_usage_error(PARSE("run", "--umask", "-22", "true"), "bad umask");
}

/* ------------------------------------------------------------ values */

/* KEY=VALUE needs a key and '='; the value may be empty or contain '='. */
static void cli_env_check(void **state)
{
	(void)state;
	assert_int_equal(cli_check_env("K=V", err, sizeof(err)), 0);
	assert_int_equal(cli_check_env("K=", err, sizeof(err)), 0);
	assert_int_equal(cli_check_env("K=a=b", err, sizeof(err)), 0);
	assert_int_equal(cli_check_env("=V", err, sizeof(err)), -EINVAL);
	assert_int_equal(cli_check_env("K", err, sizeof(err)), -EINVAL);
	assert_int_equal(cli_check_env("", err, sizeof(err)), -EINVAL);
	assert_usage_error(PARSE("run", "-e", "NOVALUE", "true"), "KEY=VALUE");
}

static ctld_Rlimit rlimit(const char *spec)
{
	ctld_Rlimit rl;

	assert_int_equal(cli_parse_rlimit(spec, &rl, err, sizeof(err)), 0);
	return rl;
}

/* SOFT alone sets both limits (like prlimit); sizes and "unlimited" work. */
static void cli_rlimit_good(void **state)
{
	ctld_Rlimit rl;

	(void)state;
	rl = rlimit("nofile=1024");
	assert_string_equal(rl.resource, "nofile");
	assert_int_equal(rl.soft, 1024);
	assert_int_equal(rl.hard, 1024);
	rl = rlimit("nofile=1024:4096");
	assert_int_equal(rl.soft, 1024);
	assert_int_equal(rl.hard, 4096);
	rl = rlimit("core=unlimited");
	assert_true(rl.soft == UINT64_MAX && rl.hard == UINT64_MAX);
	rl = rlimit("as=1G:unlimited");
	assert_int_equal(rl.soft, 1ULL << 30);
	assert_true(rl.hard == UINT64_MAX);
	rl = rlimit("stack=8M");
	assert_int_equal(rl.soft, 8ULL << 20);
}

/* Unknown resources, missing values and soft > hard are caught before sending. */
static void cli_rlimit_bad(void **state)
{
	static const char *const bad[] = { "nofile", "bogus=1", "nofile=", "nofile=abc",
					   "nofile=1:", "nofile=1:2:3", "=5", "NOFILE=1" };
	ctld_Rlimit rl;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cli_parse_rlimit(bad[i], &rl, err, sizeof(err)) != -EINVAL)
			fail_msg("rlimit '%s' was accepted", bad[i]);
	assert_int_equal(cli_parse_rlimit("nofile=10:5", &rl, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "soft limit is above"));
	assert_int_equal(cli_parse_rlimit("bogus=1", &rl, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'bogus'"));
}

/* Event names map to the protocol's bits; all six together are accepted. */
static void cli_events_good(void **state)
{
	uint32_t kinds = 0;

	(void)state;
	assert_int_equal(cli_parse_events("created,deleted", &kinds, err, sizeof(err)), 0);
	assert_int_equal(kinds, ctld_FileEventKind_FILE_CREATED | ctld_FileEventKind_FILE_DELETED);
	assert_int_equal(cli_parse_events("created,modified,closed_write,deleted,moved,attrib",
					  &kinds, err, sizeof(err)),
			 0);
	assert_int_equal(kinds, 1 | 2 | 4 | 8 | 16 | 32);
}

/* A bad name is named in the message; empty items and output-only kinds are refused. */
static void cli_events_bad(void **state)
{
	static const char *const bad[] = { "", "created,", ",created", "created,,deleted",
					   "size_reached", "overflow", "Created", "all" };
	uint32_t kinds;

	(void)state;
	assert_int_equal(cli_parse_events("created,bogus", &kinds, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'bogus'"));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cli_parse_events(bad[i], &kinds, err, sizeof(err)) != -EINVAL)
			fail_msg("event list '%s' was accepted", bad[i]);
	assert_usage_error(PARSE("watch-file", "--events", "created,bogus", "/f"), "'bogus'");
	assert_int_equal(A.cmd, CLI_WATCH_FILE);
}

/* Job ids are positive decimal numbers, nothing else. */
static void cli_job_ids(void **state)
{
	static const char *const bad[] = { "0", "-1", "abc", "3x", "", " 3", "1e3" };
	uint64_t job;

	(void)state;
	assert_int_equal(cli_parse_job("42", &job, err, sizeof(err)), 0);
	assert_int_equal(job, 42);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cli_parse_job(bad[i], &job, err, sizeof(err)) != -EINVAL)
			fail_msg("job id '%s' was accepted", bad[i]);
}

/* Relative paths join the directory; absolute ones stay; overflow is reported. */
static void cli_join_paths(void **state)
{
	char out[16];

	(void)state;
	assert_true(cli_join_path("/srv", "out.log", out, sizeof(out)));
	assert_string_equal(out, "/srv/out.log");
	assert_true(cli_join_path("/", "a", out, sizeof(out)));
	assert_string_equal(out, "/a");
	assert_true(cli_join_path("/srv", "/abs", out, sizeof(out)));
	assert_string_equal(out, "/abs");
	assert_false(cli_join_path("/a/long/dir", "file.txt", out, sizeof(out)));
}

/* ------------------------------------------------------------ other commands */

/* kill takes signal names in every usual spelling, before or after the job id. */
static void cli_kill_signals(void **state)
{
	(void)state;
	assert_int_equal(PARSE("kill", "3"), 0);
	assert_int_equal(A.job, 3);
	assert_int_equal(A.signal, 0); /* ctl sends TERM */
	assert_int_equal(PARSE("kill", "--signal", "KILL", "3"), 0);
	assert_int_equal(A.signal, 9);
	assert_int_equal(PARSE("kill", "3", "-s", "SIGINT"), 0);
	assert_int_equal(A.signal, 2);
	assert_int_equal(PARSE("kill", "--signal=hup", "--main-only", "3"), 0);
	assert_int_equal(A.signal, 1);
	assert_true(A.main_only);
	assert_int_equal(PARSE("kill", "-s", "9", "7"), 0);
	assert_int_equal(A.signal, 9);
	assert_int_equal(A.job, 7);
	assert_usage_error(PARSE("kill", "--signal", "FOO", "3"), "unknown signal 'FOO'");
}

/* wait/attach/kill want exactly one job id. */
static void cli_job_operands(void **state)
{
	(void)state;
	assert_usage_error(PARSE("wait"), "missing a job id");
	assert_usage_error(PARSE("wait", "1", "2"), "too many arguments");
	assert_usage_error(PARSE("attach", "x"), "bad job id 'x'");
	assert_int_equal(PARSE("attach", "--no-backlog", "5"), 0);
	assert_true(A.no_backlog);
	assert_int_equal(A.job, 5);
	assert_usage_error(PARSE("list", "extra"), "too many arguments");
	assert_int_equal(PARSE("list", "-r"), 0);
	assert_true(A.running_only);
}

/* watch-port: port, address, netns and timeout go into one WatchPort{once}. */
static void cli_watch_port(void **state)
{
	(void)state;
	assert_int_equal(PARSE("watch-port", "--addr", "127.0.0.1", "--netns", "blue", "-t",
			       "2s", "8080"),
			 0);
	assert_int_equal(A.cmd, CLI_WATCH_PORT);
	assert_int_equal(A.watch_port.port, 8080);
	assert_string_equal(A.watch_port.addr, "127.0.0.1");
	assert_string_equal(A.watch_port.netns, "blue");
	assert_int_equal(A.watch_port.timeout_ms, 2000);
	assert_true(A.watch_port.once);
	assert_usage_error(PARSE("watch-port", "http"), "bad port");
	assert_usage_error(PARSE("watch-port"), "missing a port");
}

/* --size alone waits only for the size; with --events, for either. */
static void cli_watch_file_size(void **state)
{
	(void)state;
	assert_int_equal(PARSE("watch-file", "--size", "1M", "/var/log/x"), 0);
	assert_true(A.watch_file.has_size_threshold);
	assert_int_equal(A.watch_file.size_threshold, 1 << 20);
	assert_int_equal(A.watch_file.kinds, ctld_FileEventKind_FILE_SIZE_REACHED);
	assert_true(A.watch_file.once);
	assert_int_equal(PARSE("watch-file", "--events", "deleted", "--size", "10", "/x"), 0);
	assert_int_equal(A.watch_file.kinds,
			 ctld_FileEventKind_FILE_DELETED | ctld_FileEventKind_FILE_SIZE_REACHED);
	assert_int_equal(PARSE("watch-file", "/x"), 0);
	assert_int_equal(A.watch_file.kinds, 0); /* the daemon's "all but size" */
	assert_usage_error(PARSE("watch-file", "--size", "lots", "/x"), "bad size");
}

/* --follow keeps the watch after the first event. */
static void cli_watch_file_follow(void **state)
{
	(void)state;
	assert_int_equal(PARSE("watch-file", "-f", "--timeout", "1m", "/etc/hosts"), 0);
	assert_true(A.follow);
	assert_false(A.watch_file.once);
	assert_int_equal(A.watch_file.timeout_ms, 60000);
	assert_string_equal(A.watch_file.path, "/etc/hosts");
}

/* ------------------------------------------------------------ targets */

/* No -S/-H and no environment: the documented default socket. */
static void cli_target_default(void **state)
{
	(void)state;
	assert_int_equal(PARSE("list"), 0);
	assert_int_equal(A.ntargets, 1);
	assert_true(A.targets[0].is_unix);
	assert_string_equal(A.targets[0].path, CLI_DEFAULT_SOCKET);
}

/* $CTLD_HOST wins over $CTLD_SOCKET; the command line wins over both. */
static void cli_target_precedence(void **state)
{
	(void)state;
	assert_int_equal(PARSE_ENV("/env.sock", NULL, "list"), 0);
	assert_string_equal(A.targets[0].path, "/env.sock");
	assert_int_equal(PARSE_ENV("/env.sock", "h:1", "list"), 0);
	assert_false(A.targets[0].is_unix);
	assert_string_equal(A.targets[0].name, "h:1");
	assert_int_equal(PARSE_ENV("/env.sock", "h:1", "-S", "/cli.sock", "list"), 0);
	assert_int_equal(A.ntargets, 1);
	assert_string_equal(A.targets[0].path, "/cli.sock");
	assert_int_equal(PARSE_ENV("/env.sock", "h:1", "-H", "g:2", "list"), 0);
	assert_int_equal(A.ntargets, 1);
	assert_string_equal(A.targets[0].name, "g:2");
	assert_int_equal(PARSE_ENV("", "", "list"), 0); /* set but empty: ignored */
	assert_string_equal(A.targets[0].path, CLI_DEFAULT_SOCKET);
	assert_usage_error(PARSE_ENV(NULL, "h:99999", "list"), "$CTLD_HOST");
}

/* Global options work after the command name too. */
static void cli_global_options_anywhere(void **state)
{
	(void)state;
	assert_int_equal(PARSE("list", "--json", "-S", "/x.sock"), 0);
	assert_true(A.json);
	assert_string_equal(A.targets[0].path, "/x.sock");
	assert_int_equal(PARSE("--json", "-H", "a:1", "run", "-H", "b:2", "--", "true"), 0);
	assert_int_equal(A.ntargets, 2);
	assert_string_equal(A.targets[1].name, "b:2");
}

/* -S and -H together are ambiguous. */
static void cli_target_conflict(void **state)
{
	(void)state;
	assert_usage_error(PARSE("-S", "/x", "-H", "a:1", "list"), "either");
}

/* Lists, IPv6 in brackets, and the default port for a bare host. */
static void cli_targets_good(void **state)
{
	struct cli_target t[8];
	size_t n = 0;

	(void)state;
	assert_int_equal(cli_parse_targets("a:1,10.0.0.2:7879,[::1]:3,node4,[fe80::1]", t, 8, &n,
					   err, sizeof(err)),
			 0);
	assert_int_equal(n, 5);
	assert_string_equal(t[0].host, "a");
	assert_string_equal(t[0].port, "1");
	assert_string_equal(t[1].name, "10.0.0.2:7879");
	assert_string_equal(t[2].host, "::1");
	assert_string_equal(t[2].name, "[::1]:3");
	assert_string_equal(t[3].port, CLI_DEFAULT_PORT);
	assert_string_equal(t[3].name, "node4:7878");
	assert_string_equal(t[4].host, "fe80::1");
	assert_string_equal(t[4].name, "[fe80::1]:7878");
	assert_false(t[0].is_unix);
}

/* Malformed hosts and ports are usage errors, not connection failures. */
static void cli_targets_bad(void **state)
{
	static const char *const bad[] = { "",	    "a:",     ":1",    "a:0",	   "a:65536",
					   "a:x",   "::1:5",  "::1",   "a:1,,b:2", "a:1,",
					   "[::1",  "[::1]5", "[]:1",  "a b:1",	   "[a]b]:1" };
	struct cli_target t[4];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = 0;

		if (cli_parse_targets(bad[i], t, 4, &n, err, sizeof(err)) != -EINVAL)
			fail_msg("target '%s' was accepted", bad[i]);
	}
}

/* More hosts than the poll loop takes are refused up front. */
static void cli_targets_too_many(void **state)
{
	struct cli_target t[2];
	size_t n = 0;

	(void)state;
	assert_int_equal(cli_parse_targets("a:1,b:2,c:3", t, 2, &n, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too many hosts"));
}

/* -H takes node sets and @FILE; each node once, in order; $CTLD_HOST too. */
static void cli_node_sets(void **state)
{
	(void)state;
	assert_int_equal(PARSE("-H", "n[1-3]:7001,gw,n2:7001", "list"), 0);
	assert_int_equal(A.ntargets, 4);
	assert_string_equal(A.targets[0].name, "n1:7001");
	assert_string_equal(A.targets[2].name, "n3:7001");
	assert_string_equal(A.targets[3].name, "gw:7878");
	assert_int_equal(PARSE_ENV(NULL, "h[1-2]:9", "list"), 0);
	assert_int_equal(A.ntargets, 2);
	file_text = "# nodes\nn[1-2]:1\n\nm:2 # last\n";
	assert_int_equal(PARSE("-H", "@nodes", "-H", "x:3", "list"), 0);
	assert_int_equal(A.ntargets, 4);
	assert_string_equal(A.targets[2].name, "m:2");
	assert_string_equal(A.targets[3].name, "x:3");
	file_text = "a:1\nb[:2\n";
	assert_usage_error(PARSE("-H", "@nodes", "list"), "(line 2) in nodes");
	file_text = NULL;
	assert_usage_error(PARSE("-H", "@nodes", "list"), "No such file");
	assert_usage_error(PARSE("-H", "n[1-70000]:1", "list"), "too large");
	assert_usage_error(PARSE("-H", "n[1-2]:99999", "list"), "bad host 'n1:99999'");
	assert_usage_error(PARSE_ENV(NULL, "n[1-", "list"), "$CTLD_HOST");
}

/* --fanout 1..CLI_MAX_FANOUT (default 64), -b, --summary anywhere. */
static void cli_fanout_gather_summary(void **state)
{
	(void)state;
	assert_int_equal(PARSE("list"), 0);
	assert_int_equal(A.fanout, CLI_DEFAULT_FANOUT);
	assert_false(A.gather);
	assert_int_equal(PARSE("--fanout", "4", "-b", "run", "--summary", "--", "true"), 0);
	assert_int_equal(A.fanout, 4);
	assert_true(A.gather);
	assert_true(A.summary);
	assert_usage_error(PARSE("--fanout", "0", "list"), "--fanout: bad number");
	assert_usage_error(PARSE("--fanout", "4097", "list"), "(1..4096)");
}

/* TLS takes all three files, and only makes sense over TCP. */
static void cli_tls_options(void **state)
{
	(void)state;
	assert_usage_error(PARSE("-H", "a:1", "--tls-cert", "c.pem", "list"), "all of");
	assert_usage_error(PARSE("--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca", "list"),
			   "TCP");
	assert_int_equal(PARSE("-H", "a:1", "--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca",
			       "list"),
			 0);
	assert_string_equal(A.tls_ca, "ca");
	assert_usage_error(PARSE("-H", "a:1", "--tls-session-cache", "none", "list"),
			   "is for TLS connections");
	assert_int_equal(PARSE("-H", "a:1", "--tls-cert", "c", "--tls-key", "k", "--tls-ca", "ca",
			       "--tls-session-cache", "none", "list"),
			 0);
}

/* ------------------------------------------------------------ help, mistakes */

/* --help, -h, COMMAND --help and help COMMAND all reach the right text. */
static void cli_help_forms(void **state)
{
	(void)state;
	assert_int_equal(PARSE("--help"), 0);
	assert_int_equal(A.cmd, CLI_HELP);
	assert_int_equal(A.help_for, CLI_NONE);
	assert_int_equal(PARSE("-h"), 0);
	assert_int_equal(A.cmd, CLI_HELP);
	assert_int_equal(PARSE("run", "--help"), 0);
	assert_int_equal(A.help_for, CLI_RUN);
	assert_int_equal(PARSE("kill", "--help"), 0); /* no job id needed for help */
	assert_int_equal(A.help_for, CLI_KILL);
	assert_int_equal(PARSE("help", "watch-file"), 0);
	assert_int_equal(A.help_for, CLI_WATCH_FILE);
	assert_int_equal(PARSE("help"), 0);
	assert_int_equal(A.help_for, CLI_NONE);
	assert_usage_error(PARSE("help", "bogus"), "unknown command 'bogus'");
	assert_int_equal(PARSE("--version"), 0);
	assert_int_equal(A.cmd, CLI_VERSION);
}

/* Every command has a usage line and help with an example. */
static void cli_texts_complete(void **state)
{
	(void)state;
	for (int c = CLI_NONE; c < CLI_NCMDS; c++) {
		if (strncmp(cli_usage((enum cli_cmd)c), "usage: ctl", 10) != 0)
			fail_msg("usage of %s", cli_cmd_name((enum cli_cmd)c));
		if (c != CLI_VERSION && !strstr(cli_help((enum cli_cmd)c), "xample"))
			fail_msg("no example in the help of %s", cli_cmd_name((enum cli_cmd)c));
	}
	assert_string_equal(cli_cmd_name(CLI_WATCH_PORT), "watch-port");
	assert_string_equal(cli_file_event_name(ctld_FileEventKind_FILE_CLOSED_WRITE),
			    "closed_write");
	assert_string_equal(cli_file_event_name(ctld_FileEventKind_FILE_SIZE_REACHED),
			    "size_reached");
	assert_string_equal(cli_file_event_name(3), "unknown");
}

/* Typical mistakes get a message naming the culprit and the right command's usage. */
static void cli_mistakes(void **state)
{
	(void)state;
	assert_usage_error(PARSE("bogus"), "unknown command 'bogus'");
	assert_int_equal(A.cmd, CLI_NONE);
	assert_usage_error(PARSE("-S", "/x"), "missing command");
	assert_usage_error(PARSE("list", "--bogus"), "list: unknown option --bogus");
	assert_int_equal(A.cmd, CLI_LIST);
	assert_usage_error(PARSE("list", "--signal", "KILL"), "unknown option --signal");
	assert_usage_error(PARSE("stats", "-x"), "unknown option -x");
	assert_usage_error(PARSE("run", "--name"), "--name needs a value");
	assert_usage_error(PARSE("-S"), "-S needs a value");
	assert_usage_error(PARSE("--version-x"), "unknown option");
	assert_usage_error(PARSE("--connect-timeout", "never", "list"), "bad duration");
	assert_usage_error(PARSE("-S", "", "list"), "bad socket path");
}

/* --liveness: 30 s by default, $CTLD_LIVENESS changes that, the option wins;
 * 0 or off turns it off, a value so small that ctl would spin is refused. */
static void cli_liveness(void **state)
{
	(void)state;
	assert_int_equal(PARSE("list"), 0);
	assert_int_equal(A.liveness_ms, 30000);
	assert_int_equal(PARSE("--liveness", "3s", "run", "--", "true"), 0);
	assert_int_equal(A.liveness_ms, 3000);
	assert_int_equal(PARSE("stats", "--liveness", "0"), 0);
	assert_int_equal(A.liveness_ms, 0);
	assert_int_equal(PARSE("stats", "--liveness", "off"), 0);
	assert_int_equal(A.liveness_ms, 0);
	assert_usage_error(PARSE("--liveness", "10ms", "list"), "at least 100ms");
	assert_usage_error(PARSE("--liveness", "soon", "list"), "bad liveness 'soon'");
	env_liveness = "5s";
	assert_int_equal(PARSE("list"), 0);
	assert_int_equal(A.liveness_ms, 5000);
	assert_int_equal(PARSE("list", "--liveness", "1m"), 0);
	assert_int_equal(A.liveness_ms, 60000);
	env_liveness = "later";
	assert_usage_error(PARSE("list"), "in $CTLD_LIVENESS");
	env_liveness = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cli_run_argv_after_dashdash),
		cmocka_unit_test(cli_run_stops_at_program),
		cmocka_unit_test(cli_run_all_options),
		cmocka_unit_test(cli_run_stdin_modes),
		cmocka_unit_test(cli_run_missing_program),
		cmocka_unit_test(cli_run_bounds),
		cmocka_unit_test(cli_run_too_many_env),
		cmocka_unit_test(cli_run_ready_takes_timeout),
		cmocka_unit_test(cli_run_ready_conditions),
		cmocka_unit_test(cli_run_ready_errors),
		cmocka_unit_test(cli_start_conflicts),
		cmocka_unit_test(cli_run_bad_timeout),
		cmocka_unit_test(cli_run_umask),
		cmocka_unit_test(cli_env_check),
		cmocka_unit_test(cli_rlimit_good),
		cmocka_unit_test(cli_rlimit_bad),
		cmocka_unit_test(cli_events_good),
		cmocka_unit_test(cli_events_bad),
		cmocka_unit_test(cli_job_ids),
		cmocka_unit_test(cli_join_paths),
		cmocka_unit_test(cli_kill_signals),
		cmocka_unit_test(cli_job_operands),
		cmocka_unit_test(cli_watch_port),
		cmocka_unit_test(cli_watch_file_size),
		cmocka_unit_test(cli_watch_file_follow),
		cmocka_unit_test(cli_target_default),
		cmocka_unit_test(cli_target_precedence),
		cmocka_unit_test(cli_global_options_anywhere),
		cmocka_unit_test(cli_target_conflict),
		cmocka_unit_test(cli_targets_good),
		cmocka_unit_test(cli_targets_bad),
		cmocka_unit_test(cli_targets_too_many),
		cmocka_unit_test(cli_node_sets),
		cmocka_unit_test(cli_fanout_gather_summary),
		cmocka_unit_test(cli_tls_options),
		cmocka_unit_test(cli_help_forms),
		cmocka_unit_test(cli_texts_complete),
		cmocka_unit_test(cli_mistakes),
		cmocka_unit_test(cli_liveness),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
