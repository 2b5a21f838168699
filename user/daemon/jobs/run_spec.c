// SPDX-License-Identifier: BSD-2-Clause
/*
 * run_spec.c - a Run request checked and turned into a spawn request.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/jobs/run_spec.h"

static int validate(const ctld_Run *run, char *err, size_t errlen)
{
	if (run->argv_count == 0 || !run->argv[0][0])
		return errorf(err, errlen, -EINVAL, "argv is empty: nothing to run");
	if (run->cwd[0] && run->cwd[0] != '/')
		return errorf(err, errlen, -EINVAL, "cwd must be an absolute path: '%.100s'",
			    run->cwd);
	if ((run->stdout_path[0] && run->stdout_path[0] != '/') ||
	    (run->stderr_path[0] && run->stderr_path[0] != '/'))
		return errorf(err, errlen, -EINVAL, "output files must be absolute paths");
	if (run->has_umask && run->umask > 0777)
		return errorf(err, errlen, -EINVAL, "umask %#o is out of range", run->umask);
	if (run->max_procs > RUN_SPEC_MAX_PROCS)
		return errorf(err, errlen, -EINVAL, "max_procs %u is above the kernel's %u",
			      run->max_procs, RUN_SPEC_MAX_PROCS);
	return 0;
}

/* ------------------------------------------------------------ identity */

/* HOME, USER and LOGNAME of the user a job runs as (like su -), so it does
 * not inherit root's; Run.env still wins. */
static void set_identity(struct run_spec *spec, const struct passwd *pw)
{
	snprintf(spec->home, sizeof(spec->home), "HOME=%s", pw->pw_dir);
	snprintf(spec->user, sizeof(spec->user), "USER=%s", pw->pw_name);
	snprintf(spec->logname, sizeof(spec->logname), "LOGNAME=%s", pw->pw_name);
	spec->identity[0] = spec->home;
	spec->identity[1] = spec->user;
	spec->identity[2] = spec->logname;
	spec->identity[3] = NULL;
}

static int resolve_group(const char *text, gid_t *gid, char *err, size_t errlen)
{
	char buf[4096];
	struct group gr, *grp = NULL;
	long num;

	if (parse_long(text, 0, 0x7fffffff, &num) == 0) {
		*gid = (gid_t)num;
		return 0;
	}
	getgrnam_r(text, &gr, buf, sizeof(buf), &grp);
	if (!grp)
		return errorf(err, errlen, -ENOENT, "no such group: %s", text);
	*gid = grp->gr_gid;
	return 0;
}

/* Run.user / Run.group into ids and supplementary groups (the user's own,
 * never root's). A numeric user that has no passwd entry gets no groups. */
static int resolve_user(struct run_spec *spec, const ctld_Run *run, char *err, size_t errlen)
{
	struct spawn_request *sr = &spec->sr;
	char buf[4096];
	struct passwd pw, *pwp = NULL;
	int ngroups = RUN_SPEC_MAX_GROUPS;
	bool numeric;
	long num;

	if (!run->user[0] && !run->group[0])
		return 0;
	sr->set_ids = true;
	sr->uid = getuid();
	sr->gid = getgid();
	sr->groups = spec->groups;
	if (run->user[0]) {
		numeric = parse_long(run->user, 0, 0x7fffffff, &num) == 0;
		if (numeric)
			getpwuid_r((uid_t)num, &pw, buf, sizeof(buf), &pwp);
		else
			getpwnam_r(run->user, &pw, buf, sizeof(buf), &pwp);
		if (!pwp && !numeric)
			return errorf(err, errlen, -ENOENT, "no such user: %s", run->user);
		sr->uid = pwp ? pwp->pw_uid : (uid_t)num;
		sr->gid = pwp ? pwp->pw_gid : (gid_t)num;
		if (pwp && getgrouplist(pwp->pw_name, pwp->pw_gid, spec->groups, &ngroups) < 0)
			return errorf(err, errlen, -E2BIG, "user %s has more than %d groups",
				    run->user, RUN_SPEC_MAX_GROUPS);
		sr->ngroups = pwp ? (size_t)ngroups : 0;
		if (pwp)
			set_identity(spec, pwp);
	}
	return run->group[0] ? resolve_group(run->group, &sr->gid, err, errlen) : 0;
}

/* ------------------------------------------------------------ rlimits */

static int parse_rlimits(const ctld_Run *run, struct spawn_rlimit *out, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		int resource;
	} names[] = {
		{ "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC }, { "core", RLIMIT_CORE },
		{ "as", RLIMIT_AS },         { "cpu", RLIMIT_CPU },     { "fsize", RLIMIT_FSIZE },
		{ "stack", RLIMIT_STACK },   { "memlock", RLIMIT_MEMLOCK },
		{ "data", RLIMIT_DATA },     { "nice", RLIMIT_NICE },
	};

	for (pb_size_t i = 0; i < run->rlimits_count; i++) {
		const ctld_Rlimit *rl = &run->rlimits[i];
		size_t k;

		for (k = 0; k < ARRAY_SIZE(names); k++)
			if (strcmp(rl->resource, names[k].name) == 0)
				break;
		if (k == ARRAY_SIZE(names))
			return errorf(err, errlen, -EINVAL, "unknown rlimit resource '%s'",
				    rl->resource);
		if (rl->soft > rl->hard)
			return errorf(err, errlen, -EINVAL, "rlimit %s: soft limit above hard limit",
				    rl->resource);
		out[i].resource = names[k].resource;
		out[i].limit.rlim_cur = (rlim_t)rl->soft;
		out[i].limit.rlim_max = (rlim_t)rl->hard;
	}
	return 0;
}

/* Root is exempt from RLIMIT_NPROC: such a limit would be set and never
 * bind. A limit of "unlimited" is harmless and passes. */
static int check_nproc(const struct run_spec *spec, char *err, size_t errlen)
{
	const struct spawn_request *sr = &spec->sr;
	uid_t uid = sr->set_ids ? sr->uid : getuid();

	if (uid != 0)
		return 0;
	for (size_t i = 0; i < sr->nrlimits; i++)
		if (sr->rlimits[i].resource == RLIMIT_NPROC &&
		    sr->rlimits[i].limit.rlim_cur != RLIM_INFINITY)
			return errorf(err, errlen, -EINVAL,
				      "rlimit nproc does not bind a job that runs as root (root is "
				      "exempt from RLIMIT_NPROC); use max_procs (ctl --max-procs)");
	return 0;
}

/* ------------------------------------------------------------ environment */

/* Sets or replaces one "KEY=VALUE" (klen = length of "KEY=") in env[0..*n). */
static void env_put(char **env, size_t *n, const char *kv, size_t klen)
{
	size_t k;

	for (k = 0; k < *n; k++)
		if (strncmp(env[k], kv, klen) == 0)
			break;
	env[k] = (char *)kv;
	if (k == *n)
		(*n)++;
}

/* Base environment (the daemon's, unless clean_env), then the identity of a
 * --user job replacing the daemon's HOME/USER/LOGNAME (not with clean_env:
 * that stays empty but for Run.env), then Run.env on top. */
static int build_env(struct run_spec *spec, const ctld_Run *run, char *err, size_t errlen)
{
	extern char **environ;
	size_t nbase = 0, n = 0;
	char **env;

	if (!run->clean_env)
		while (environ[nbase])
			nbase++;
	env = calloc(nbase + 3 + run->env_count + 1, sizeof(*env));
	if (!env)
		return errorf(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < nbase; i++)
		env[n++] = environ[i];
	for (size_t i = 0; !run->clean_env && spec->identity[i]; i++)
		env_put(env, &n, spec->identity[i],
			(size_t)(strchr(spec->identity[i], '=') - spec->identity[i]) + 1);
	for (pb_size_t i = 0; i < run->env_count; i++) {
		const char *kv = run->env[i], *eq = strchr(kv, '=');

		if (!eq || eq == kv) {
			free(env);
			return errorf(err, errlen, -EINVAL, "env entry %u is not KEY=VALUE: '%.40s'", i,
				    kv);
		}
		env_put(env, &n, kv, (size_t)(eq - kv) + 1);
	}
	env[n] = NULL;
	spec->env = env;
	return 0;
}

static const char *env_get(char **env, const char *key)
{
	size_t klen = strlen(key);

	for (; *env; env++)
		if (strncmp(*env, key, klen) == 0 && (*env)[klen] == '=')
			return *env + klen + 1;
	return NULL;
}

/* ------------------------------------------------------------ the whole */

static void describe(struct run_spec *spec, const ctld_Run *run)
{
	size_t used = 0;

	spec->command[0] = '\0';
	for (pb_size_t i = 0; i < run->argv_count && used + 1 < sizeof(spec->command); i++) {
		int n = snprintf(spec->command + used, sizeof(spec->command) - used, "%s%s",
				 i ? " " : "", run->argv[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (run->name[0]) {
		copy_str(spec->name, sizeof(spec->name), run->name);
	} else {
		const char *slash = strrchr(run->argv[0], '/');

		copy_str(spec->name, sizeof(spec->name), slash ? slash + 1 : run->argv[0]);
	}
}

static void fill_request(struct run_spec *spec, const ctld_Run *run,
			 const struct spawn_rlimit *start_limits, size_t nstart)
{
	struct spawn_request *sr = &spec->sr;

	for (pb_size_t i = 0; i < run->argv_count; i++)
		spec->argv[i] = (char *)run->argv[i];
	spec->argv[run->argv_count] = NULL;
	sr->argv = spec->argv;
	sr->envp = spec->env;
	sr->cwd = run->cwd[0] ? run->cwd : "/";
	/* The limits the daemon was started with come first; the job's own
	 * come after them (at RUN_SPEC_MAX_START_LIMITS) and may override them. */
	sr->rlimits = spec->rlimits + RUN_SPEC_MAX_START_LIMITS - nstart;
	sr->nrlimits = run->rlimits_count + nstart;
	if (nstart) /* start_limits may be NULL then */
		memcpy(spec->rlimits + RUN_SPEC_MAX_START_LIMITS - nstart, start_limits,
		       nstart * sizeof(*start_limits));
	sr->set_umask = run->has_umask;
	sr->umask = (mode_t)run->umask;
	sr->stdio[0] = sr->stdio[1] = sr->stdio[2] = -1;
	sr->stdio_path[1] = run->stdout_path[0] ? run->stdout_path : NULL;
	sr->stdio_path[2] = run->stderr_path[0] ? run->stderr_path : NULL;
}

int run_spec_build(struct run_spec *spec, const ctld_Run *run,
		   const struct spawn_rlimit *start_limits, size_t nstart, char *err, size_t errlen)
{
	int ret;

	memset(spec, 0, sizeof(*spec));
	if ((ret = validate(run, err, errlen)) || (ret = resolve_user(spec, run, err, errlen)) ||
	    (ret = parse_rlimits(run, spec->rlimits + RUN_SPEC_MAX_START_LIMITS, err, errlen)) ||
	    (ret = build_env(spec, run, err, errlen)))
		return ret;
	if (nstart > RUN_SPEC_MAX_START_LIMITS)
		nstart = RUN_SPEC_MAX_START_LIMITS;
	fill_request(spec, run, start_limits, nstart);
	if ((ret = check_nproc(spec, err, errlen))) {
		run_spec_free(spec);
		return ret;
	}
	ret = spawn_find_program(&spec->sr, run->argv[0], env_get(spec->env, "PATH"),
				 &spec->paths);
	if (ret) {
		run_spec_free(spec);
		return errorf(err, errlen, ret, ret == -ENOMEM ? "out of memory"
							      : "program path too long");
	}
	describe(spec, run);
	return 0;
}

void run_spec_free(struct run_spec *spec)
{
	free(spec->env);
	free(spec->paths);
	spec->env = NULL;
	spec->paths = NULL;
}
