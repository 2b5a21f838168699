// SPDX-License-Identifier: BSD-2-Clause
/*
 * clock.c - see clock.h.
 */
#include "client/clock.h"

bool clock_offset_add(struct clock_offset *c, uint64_t sent_ns, uint64_t received_ns,
		      uint64_t daemon_ns)
{
	uint64_t half, mid;
	int64_t offset;

	if (!daemon_ns || received_ns < sent_ns)
		return false;
	half = (received_ns - sent_ns) / 2;
	mid = sent_ns + half;
	offset = daemon_ns >= mid ? (int64_t)(daemon_ns - mid) : -(int64_t)(mid - daemon_ns);
	c->last_offset_ns = offset;
	c->last_uncertainty_ns = half;
	if (!c->samples || half < c->uncertainty_ns) {
		c->offset_ns = offset;
		c->uncertainty_ns = half;
	}
	c->samples++;
	return true;
}

uint64_t clock_offset_to_local(const struct clock_offset *c, uint64_t daemon_ns)
{
	return c->offset_ns >= 0 ? daemon_ns - (uint64_t)c->offset_ns
				 : daemon_ns + (uint64_t)-c->offset_ns;
}
