/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * timeline.h - `ctl ... --timeline FILE`: the events ctl receives from
 * every node, stamped by each daemon's own clock, put on ctl's clock with
 * the offset measured by Ping round trips (client/clock.h), and written at
 * the end as a Chrome/Perfetto trace-event JSON file: one process row per
 * node, one thread row per job, jobs as spans from launch to exit, ready,
 * listen, file events and exits as instants; each node's offset and its
 * uncertainty (± half the best round trip) are recorded in the file.
 *
 * Memory is bounded: at most TIMELINE_MAX_EVENTS events are kept (the file
 * says how many more were dropped). Output events are not recorded (they
 * are the data, not the timeline).
 */
#ifndef CTLD_TIMELINE_H
#define CTLD_TIMELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/clock.h"
#include "ctld.pb.h"

#define TIMELINE_MAX_EVENTS 200000
/* A clock sample every this often, after the first few back to back. */
#define TIMELINE_CLOCK_PERIOD_MS 1000

/* Creates FILE now (a bad path is an error before anything runs). 0 or
 * -errno with err filled. */
int timeline_open(const char *path, char *err, size_t errlen);
/* An event from node (an index of the caller's). */
void timeline_event(size_t node, const ctld_Event *ev);
/* A job ctl started or attached to, with a name for its row. */
void timeline_job_name(size_t node, uint64_t job, const char *name);
/* Writes the file: nodes[i] and clocks[i] name node i. 0 or -errno. */
int timeline_write(const char *const *nodes, const struct clock_offset *clocks, size_t n,
		   char *err, size_t errlen);
bool timeline_enabled(void);

#endif
