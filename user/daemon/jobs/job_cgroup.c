// SPDX-License-Identifier: BSD-2-Clause
/*
 * job_cgroup.c - a job's own cgroup (daemon/kernel/cgroup.h): made before
 * its first process when the job asks for max_procs, or for every job where
 * the daemon's policy says so (jobs.h, enum jobs_cgroups); from then on the
 * exact handle on its tree; removed once the job has ended and its
 * processes are gone (or later, when the last of them is reaped).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/jobs/job.h"
#include "daemon/kernel/cgroup.h"

int job_cgroup_make(struct job *j, const ctld_Run *run, bool every, struct spawn_request *sr,
		    char *err, size_t errlen)
{
	char why[sizeof(((ctld_Error *)0)->text)];
	int fd, ret;

	if (!run->max_procs && !every)
		return 0;
	if ((ret = cgroup_create(j->id, run->max_procs, &fd, why, sizeof(why)))) {
		if (run->max_procs)
			return errorf(err, errlen, ret, "max_procs needs a cgroup of the job's own: %s",
				      why);
		log_debug("job %llu runs without a cgroup: %s", (unsigned long long)j->id, why);
		return 0;
	}
	j->tree.cgroup = j->had_cgroup = true;
	j->max_procs = run->max_procs;
	sr->join_cgroup = true;
	sr->cgroup_fd = fd;
	return 0;
}

void job_cgroup_spawned(struct spawn_request *sr)
{
	if (sr->join_cgroup)
		close(sr->cgroup_fd);
	sr->join_cgroup = false;
	sr->cgroup_fd = -1;
}

void job_cgroup_release(struct job *j, bool forget)
{
	uint64_t peak;

	if (!j->tree.cgroup)
		return;
	if ((peak = cgroup_peak(j->id)) > j->procs_peak)
		j->procs_peak = peak;
	if (cgroup_remove(j->id, forget) == 0 || forget)
		j->tree.cgroup = false;
}

bool job_cgroup_busy(const struct job *j)
{
	return j->tree.cgroup && cgroup_populated(j->id);
}

void job_cgroup_fill_info(const struct job *j, ctld_JobInfo *info)
{
	uint64_t peak = j->tree.cgroup ? cgroup_peak(j->id) : 0;

	info->max_procs = j->max_procs;
	info->cgroup = j->had_cgroup;
	info->procs_peak = peak > j->procs_peak ? peak : j->procs_peak;
}
