/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * job_ids.h - job ids that are unique on this node across daemon restarts.
 *
 * Why: ids used to start at 1 in every daemon instance, so after a restart
 * `ctl kill 1` reached a new job 1 while the old one (from the instance that
 * crashed) still ran. Each instance reserves blocks of ids from a counter in
 * the state directory (next-job-id, updated under flock and fsync'd before the
 * first id of the block is used), so no two instances, consecutive or concurrent,
 * hand out the same id. A crash only skips the rest of a block.
 */
#ifndef CTLD_JOB_IDS_H
#define CTLD_JOB_IDS_H

#include <stddef.h>
#include <stdint.h>

#define JOB_IDS_BLOCK 1024

/* Creates state_dir (0700) if needed and reserves the first block. 0, or
 * -errno with why (naming the path). NULL: ids from 1, kept nowhere (tests
 * of the job table). */
int job_ids_open(const char *state_dir, char *why, size_t whylen);
void job_ids_close(void);

/* The next id; 0 when no id can be reserved (the state file cannot be
 * written: the reason is logged). */
uint64_t job_ids_next(void);

/* The first id of this instance: lower ids were started by an earlier one. */
uint64_t job_ids_first(void);
/* The id the next job would get (ids at or above it were never used). */
uint64_t job_ids_peek(void);

#endif
