/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * readiness.h - "the service is ready" as one event: a job's readiness
 * conditions (Run.ready: a port its own tree listens on, a line of its
 * output, a file), and the one Ready or NotReady event every client of the
 * job gets when they all hold (or one, with ready_any), or cannot.
 *
 * The conditions watch from before the job starts (a port's listeners are
 * known first, so one held by someone else is told apart from the job's
 * own), and survive the job's main process: `sh -c 'server &'` or a server
 * that daemonizes is still followed while its tree lives.
 */
#ifndef CTLD_READINESS_H
#define CTLD_READINESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctld.pb.h"

struct job;
struct loop;

/* resolved(j) is called once Ready or NotReady was sent (the job may then
 * end, if its main process is gone). */
void readiness_init(struct loop *loop, uint32_t port_taken_grace_ms,
		    void (*resolved)(struct job *j));

/* Checks Run.ready and starts watching ports and files, before the job is
 * spawned. 0 (j->ready set, or NULL without conditions), or -errno with a
 * reason (-EINVAL: the request is wrong). */
int readiness_start(struct job *j, const ctld_Run *run, char *err, size_t errlen);
/* The job runs: its exec time, the timeout, conditions already true. */
void readiness_launched(struct job *j);
/* Output the job wrote (for log conditions and the stderr tail). */
void readiness_output(struct job *j, int stream, const uint8_t *data, size_t len);
/* Ready or NotReady still to come. */
bool readiness_pending(const struct job *j);
/* The job's tree is gone before it was ready: NotReady (EXITED, or
 * PORT_TAKEN when someone else held the port). */
void readiness_job_ended(struct job *j);
void readiness_fill_info(const struct job *j, ctld_JobInfo *info);
/* The Ready or NotReady event again, for a client that attaches later. */
void readiness_replay(const struct job *j, uint64_t session);
void readiness_free(struct job *j);

/* Upgrades in place (jobs/job_handover.c): a decided readiness (state,
 * time to ready, the final event for late attachers) goes to the next
 * image; one still waiting keeps the upgrade from happening. */
struct readiness_export {
	ctld_ReadyState state;
	uint64_t time_to_ready_ns;
	const uint8_t *final;
	size_t final_len;
};
void readiness_export(const struct job *j, struct readiness_export *out);
/* 0 or -ENOMEM. */
int readiness_import(struct job *j, const struct readiness_export *in);

#endif
