// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_run_spec.c - a Run request turned into a spawn request, rule by
 * rule: what is refused and why, the user and groups a job runs as, the
 * rlimits in the order they apply, the environment a job gets, the PATH
 * candidates, the name and command List shows, and rlimit nproc refused
 * where it would not bind (root). Uses the machine's user
 * database (root, and Debian's `nobody` with its `nogroup`).
 */
// TEST_SRCS: user/daemon/jobs/run_spec.c user/spawner/spawn.c user/common/util.c
// TEST_WRAPS:
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "daemon/jobs/run_spec.h"

static ctld_Run run;
static struct run_spec spec;
static char err[200];

static int reset(void **state)
{
	(void)state;
	memset(&run, 0, sizeof(run));
	memset(&spec, 0, sizeof(spec));
	err[0] = '\0';
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	run_spec_free(&spec);
	return 0;
}

static void argv_of(const char *a0, const char *a1)
{
	run.argv_count = 0;
	strcpy(run.argv[run.argv_count++], a0);
	if (a1)
		strcpy(run.argv[run.argv_count++], a1);
}

static int build(void)
{
	return run_spec_build(&spec, &run, NULL, 0, err, sizeof(err));
}

static const char *env_value(const char *key)
{
	size_t n = strlen(key);

	for (char *const *e = spec.sr.envp; *e; e++)
		if (strncmp(*e, key, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* Every field a client can get wrong is refused with a reason, as -EINVAL. */
static void spec_refuses_bad_fields(void **state)
{
	(void)state;
	assert_int_equal(build(), -EINVAL);
	assert_string_equal(err, "argv is empty: nothing to run");
	argv_of("", NULL);
	assert_int_equal(build(), -EINVAL);
	argv_of("true", NULL);
	strcpy(run.cwd, "tmp");
	assert_int_equal(build(), -EINVAL);
	assert_non_null(strstr(err, "cwd must be an absolute path"));
	run.cwd[0] = '\0';
	strcpy(run.stdout_path, "out.log");
	assert_int_equal(build(), -EINVAL);
	assert_string_equal(err, "output files must be absolute paths");
	run.stdout_path[0] = '\0';
	run.has_umask = true;
	run.umask = 01000;
	assert_int_equal(build(), -EINVAL);
	run.umask = 077;
	strcpy(run.env[run.env_count++], "=nokey");
	assert_int_equal(build(), -EINVAL);
	assert_non_null(strstr(err, "not KEY=VALUE"));
	strcpy(run.env[0], "NOEQUALS");
	assert_int_equal(build(), -EINVAL);
}

/* Unknown users and groups are the client's mistake (-ENOENT); a number
 * with no passwd entry is a valid uid with no supplementary groups. */
static void spec_users_and_groups(void **state)
{
	struct passwd *nobody = getpwnam("nobody");
	struct group *nogroup = getgrnam("nogroup");

	(void)state;
	assert_non_null(nobody);
	assert_non_null(nogroup);
	argv_of("true", NULL);
	assert_int_equal(build(), 0);
	assert_false(spec.sr.set_ids);
	run_spec_free(&spec);

	strcpy(run.user, "nobody");
	assert_int_equal(build(), 0);
	assert_true(spec.sr.set_ids);
	assert_int_equal(spec.sr.uid, nobody->pw_uid);
	assert_int_equal(spec.sr.gid, nobody->pw_gid);
	assert_true(spec.sr.ngroups >= 1); /* its own groups, never root's */
	for (size_t i = 0; i < spec.sr.ngroups; i++)
		assert_int_not_equal(spec.sr.groups[i], 0);
	assert_string_equal(env_value("HOME"), nobody->pw_dir);
	assert_string_equal(env_value("USER"), "nobody");
	assert_string_equal(env_value("LOGNAME"), "nobody");
	run_spec_free(&spec);

	strcpy(run.user, "4000123");
	strcpy(run.group, "nogroup");
	assert_int_equal(build(), 0);
	assert_int_equal(spec.sr.uid, 4000123);
	assert_int_equal(spec.sr.gid, nogroup->gr_gid);
	assert_int_equal(spec.sr.ngroups, 0);
	run_spec_free(&spec);

	strcpy(run.user, "no-such-user-here");
	run.group[0] = '\0';
	assert_int_equal(build(), -ENOENT);
	assert_string_equal(err, "no such user: no-such-user-here");
	strcpy(run.user, "nobody");
	strcpy(run.group, "no-such-group-here");
	assert_int_equal(build(), -ENOENT);
	assert_string_equal(err, "no such group: no-such-group-here");
}

/* rlimits by name, soft <= hard; the daemon's own descriptor limit comes
 * first, so a job's --rlimit nofile overrides it. */
static void spec_rlimits_in_order(void **state)
{
	const struct spawn_rlimit start[] = {
		{ RLIMIT_NOFILE, { .rlim_cur = 1024, .rlim_max = 4096 } },
		{ RLIMIT_MEMLOCK, { .rlim_cur = 8 << 20, .rlim_max = 8 << 20 } },
	};

	(void)state;
	argv_of("true", NULL);
	run.rlimits_count = 2;
	strcpy(run.rlimits[0].resource, "core");
	run.rlimits[0].soft = 0;
	run.rlimits[0].hard = 10;
	strcpy(run.rlimits[1].resource, "nofile");
	run.rlimits[1].soft = 64;
	run.rlimits[1].hard = 64;
	assert_int_equal(run_spec_build(&spec, &run, start, 2, err, sizeof(err)), 0);
	assert_int_equal(spec.sr.nrlimits, 4);
	assert_int_equal(spec.sr.rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(spec.sr.rlimits[0].limit.rlim_cur, 1024);
	assert_int_equal(spec.sr.rlimits[1].resource, RLIMIT_MEMLOCK);
	assert_int_equal(spec.sr.rlimits[1].limit.rlim_max, 8 << 20);
	assert_int_equal(spec.sr.rlimits[2].resource, RLIMIT_CORE);
	assert_int_equal(spec.sr.rlimits[2].limit.rlim_max, 10);
	assert_int_equal(spec.sr.rlimits[3].resource, RLIMIT_NOFILE);
	assert_int_equal(spec.sr.rlimits[3].limit.rlim_cur, 64);
	run_spec_free(&spec);

	assert_int_equal(run_spec_build(&spec, &run, start, 1, err, sizeof(err)), 0);
	assert_int_equal(spec.sr.nrlimits, 3);
	assert_int_equal(spec.sr.rlimits[0].resource, RLIMIT_NOFILE);
	assert_int_equal(spec.sr.rlimits[1].resource, RLIMIT_CORE);
	run_spec_free(&spec);

	assert_int_equal(build(), 0); /* no daemon limit given: only the job's */
	assert_int_equal(spec.sr.nrlimits, 2);
	assert_int_equal(spec.sr.rlimits[0].resource, RLIMIT_CORE);
	run_spec_free(&spec);

	run.rlimits[0].soft = 11;
	assert_int_equal(build(), -EINVAL);
	assert_string_equal(err, "rlimit core: soft limit above hard limit");
	strcpy(run.rlimits[0].resource, "files");
	assert_int_equal(build(), -EINVAL);
	assert_string_equal(err, "unknown rlimit resource 'files'");
}

/* Root is exempt from RLIMIT_NPROC: a finite nproc for a job running as
 * root is refused, pointing to max_procs; for another user, or unlimited,
 * it is fine. max_procs stops at the kernel's pid limit. */
static void spec_nproc_and_max_procs(void **state)
{
	(void)state;
	argv_of("true", NULL);
	run.rlimits_count = 1;
	strcpy(run.rlimits[0].resource, "nproc");
	run.rlimits[0].soft = 10;
	run.rlimits[0].hard = 10;
	assert_int_equal(build(), -EINVAL); /* the test runs as root, as the daemon does */
	assert_non_null(strstr(err, "rlimit nproc does not bind a job that runs as root"));
	assert_non_null(strstr(err, "max_procs"));
	strcpy(run.user, "root");
	assert_int_equal(build(), -EINVAL);
	strcpy(run.user, "nobody");
	assert_int_equal(build(), 0);
	run_spec_free(&spec);
	run.user[0] = '\0';
	run.rlimits[0].soft = run.rlimits[0].hard = (uint64_t)RLIM_INFINITY;
	assert_int_equal(build(), 0);
	run_spec_free(&spec);

	run.rlimits_count = 0;
	run.max_procs = RUN_SPEC_MAX_PROCS;
	assert_int_equal(build(), 0);
	run_spec_free(&spec);
	run.max_procs = RUN_SPEC_MAX_PROCS + 1;
	assert_int_equal(build(), -EINVAL);
	assert_non_null(strstr(err, "max_procs"));
}

/* The daemon's environment, then the user's identity, then Run.env;
 * clean_env starts empty and keeps no identity. */
static void spec_environment(void **state)
{
	(void)state;
	setenv("CTLD_TEST_VAR", "daemon", 1);
	setenv("HOME", "/root", 1);
	argv_of("true", NULL);
	strcpy(run.env[run.env_count++], "CTLD_TEST_VAR=job");
	strcpy(run.env[run.env_count++], "EMPTY=");
	strcpy(run.env[run.env_count++], "EQ=a=b");
	strcpy(run.user, "nobody");
	assert_int_equal(build(), 0);
	assert_string_equal(env_value("CTLD_TEST_VAR"), "job");
	assert_string_equal(env_value("EMPTY"), "");
	assert_string_equal(env_value("EQ"), "a=b");
	assert_string_not_equal(env_value("HOME"), "/root");
	run_spec_free(&spec);

	run.clean_env = true;
	assert_int_equal(build(), 0);
	assert_null(env_value("HOME"));
	assert_null(env_value("PATH"));
	assert_string_equal(env_value("CTLD_TEST_VAR"), "job");
	run_spec_free(&spec);

	run.env_count = 0;
	assert_int_equal(build(), 0);
	assert_null(spec.sr.envp[0]);
}

/* argv[0] without '/' is searched in the job's own PATH, in order; with
 * '/' it is the only candidate. */
static void spec_program_candidates(void **state)
{
	(void)state;
	argv_of("prog", "arg");
	run.clean_env = true;
	strcpy(run.env[run.env_count++], "PATH=/opt/a::/opt/b");
	assert_int_equal(build(), 0);
	assert_int_equal(spec.sr.ncandidates, 3);
	assert_string_equal(spec.sr.candidates[0], "/opt/a/prog");
	assert_string_equal(spec.sr.candidates[1], "./prog");
	assert_string_equal(spec.sr.candidates[2], "/opt/b/prog");
	assert_string_equal(spec.sr.argv[0], "prog");
	assert_string_equal(spec.sr.argv[1], "arg");
	assert_null(spec.sr.argv[2]);
	run_spec_free(&spec);

	argv_of("/bin/true", NULL);
	assert_int_equal(build(), 0);
	assert_int_equal(spec.sr.ncandidates, 1);
	assert_string_equal(spec.sr.candidates[0], "/bin/true");
}

/* What List shows: the basename or Run.name, and argv joined (cut to fit). */
static void spec_name_and_command(void **state)
{
	(void)state;
	argv_of("/usr/bin/python3", "-m");
	assert_int_equal(build(), 0);
	assert_string_equal(spec.name, "python3");
	assert_string_equal(spec.command, "/usr/bin/python3 -m");
	run_spec_free(&spec);

	strcpy(run.name, "web");
	run.argv_count = 64;
	for (int i = 0; i < 64; i++)
		memset(run.argv[i], 'x', 20);
	assert_int_equal(build(), 0);
	assert_string_equal(spec.name, "web");
	assert_int_equal(strlen(spec.command), sizeof(spec.command) - 1);
}

/* Defaults the spawner relies on: cwd "/", stdio to be filled by the job,
 * output files passed as paths; umask only when asked. */
static void spec_defaults(void **state)
{
	(void)state;
	argv_of("true", NULL);
	strcpy(run.stderr_path, "/tmp/err.log");
	assert_int_equal(build(), 0);
	assert_string_equal(spec.sr.cwd, "/");
	for (int i = 0; i < 3; i++)
		assert_int_equal(spec.sr.stdio[i], -1);
	assert_null(spec.sr.stdio_path[0]);
	assert_null(spec.sr.stdio_path[1]);
	assert_string_equal(spec.sr.stdio_path[2], "/tmp/err.log");
	assert_false(spec.sr.set_umask);
	run_spec_free(&spec);

	strcpy(run.cwd, "/tmp");
	run.has_umask = true;
	run.umask = 0;
	assert_int_equal(build(), 0);
	assert_string_equal(spec.sr.cwd, "/tmp");
	assert_true(spec.sr.set_umask);
	assert_int_equal(spec.sr.umask, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, reset, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(spec_refuses_bad_fields), T(spec_users_and_groups), T(spec_rlimits_in_order),
		T(spec_environment),	    T(spec_program_candidates), T(spec_name_and_command),
		T(spec_defaults),	    T(spec_nproc_and_max_procs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
