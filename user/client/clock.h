/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * clock.h - how far a daemon's clock is from ours, from Ping round trips
 * (Pong carries the daemon's CLOCK_REALTIME when it answered), so events
 * stamped by many nodes' clocks can be put on one timeline.
 *
 * A Ping sent at our time s and answered at our time r, with the daemon's
 * time d in between: d - offset lies in [s, r], so offset = d - (s + r) / 2
 * within ± (r - s) / 2 — exact as a bound, whatever the network did, as
 * long as neither clock jumped. The sample with the shortest round trip
 * gives the tightest bound and is the estimate; the latest is kept too, to
 * show drift over a long experiment.
 */
#ifndef CTLD_CLOCK_H
#define CTLD_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct clock_offset {
	int64_t offset_ns;	/* daemon minus ours, best sample */
	uint64_t uncertainty_ns; /* ± this: half the best sample's round trip */
	int64_t last_offset_ns;	/* the latest sample */
	uint64_t last_uncertainty_ns;
	uint32_t samples;
};

/* One round trip, all three times CLOCK_REALTIME in ns. A sample whose
 * receive time is before its send time (our clock jumped), or without a
 * daemon time (a daemon that predates it), is ignored: false. */
bool clock_offset_add(struct clock_offset *c, uint64_t sent_ns, uint64_t received_ns,
		      uint64_t daemon_ns);
/* A daemon time as ours (by the best estimate). */
uint64_t clock_offset_to_local(const struct clock_offset *c, uint64_t daemon_ns);

#endif
