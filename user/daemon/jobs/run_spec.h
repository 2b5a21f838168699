/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * run_spec.h - turning a Run request into a spawn request: validation, the
 * user and groups to switch to, rlimits, the environment, the PATH search
 * candidates, and the job's name and command line for List. No I/O but the
 * user database, so every rule is unit-tested (tests/test_run_spec.c).
 */
#ifndef CTLD_RUN_SPEC_H
#define CTLD_RUN_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>

#include "ctld.pb.h"
#include "spawner/spawn.h"

#define RUN_SPEC_MAX_GROUPS 256
#define RUN_SPEC_MAX_PROCS 4194304 /* PID_MAX_LIMIT: pids.max takes no more */

#define RUN_SPEC_MAX_START_LIMITS 2

struct run_spec {
	/* Ready for spawn_process() once stdio[] is filled in; it points into
	 * the rest of this struct and into the Run request, which must both
	 * outlive the spawn. */
	struct spawn_request sr;
	char name[sizeof(((ctld_JobInfo *)0)->name)];
	char command[sizeof(((ctld_JobInfo *)0)->command)];
	/* storage behind sr */
	char *argv[sizeof(((ctld_Run *)0)->argv) / sizeof(((ctld_Run *)0)->argv[0]) + 1];
	char **env;  /* allocated */
	char *paths; /* allocated: the PATH candidates */
	gid_t groups[RUN_SPEC_MAX_GROUPS];
	struct spawn_rlimit rlimits[RUN_SPEC_MAX_START_LIMITS +
				    sizeof(((ctld_Run *)0)->rlimits) /
					    sizeof(((ctld_Run *)0)->rlimits[0])];
	char home[600], user[80], logname[80];
	const char *identity[4]; /* HOME, USER, LOGNAME of Run.user; NULL-terminated */
};

/*
 * Fills spec from run. start_limits[nstart] (at most
 * RUN_SPEC_MAX_START_LIMITS) are limits every job starts with unless run
 * sets its own: the daemon's own at start-up, before it raised them. Returns 0, or -errno with a reason in
 * err[errlen]: -EINVAL for a bad field, -ENOENT for an unknown user or
 * group (both the client's mistake), -E2BIG / -ENOMEM / -ENAMETOOLONG for
 * what the daemon could not do. On failure nothing needs freeing.
 */
int run_spec_build(struct run_spec *spec, const ctld_Run *run,
		   const struct spawn_rlimit *start_limits, size_t nstart, char *err, size_t errlen);
void run_spec_free(struct run_spec *spec);

#endif
