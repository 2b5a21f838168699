/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * liveness.h - when to ask a quiet daemon whether it is still there (Ping),
 * and when to give up on it. The rule behind ctld_conn_set_liveness(),
 * kept apart from the I/O so that it can be tested with a fake clock
 * (tests/test_liveness.c).
 *
 * With a period P: after P/3 without a byte from the daemon a Ping goes
 * out; the daemon is given up when nothing at all has arrived for P, or,
 * when that Ping could only go out late (the caller was blocked writing
 * its output, or stopped), 2P/3 after the Ping. Any byte counts, not only
 * the Pong: a daemon that is streaming output is alive, even while it
 * does not read our requests.
 */
#ifndef CTLD_LIVENESS_H
#define CTLD_LIVENESS_H

#include <stdint.h>

struct liveness {
	uint64_t period_ns; /* 0: never give up */
	uint64_t heard_ns;  /* the last byte from the daemon, or the start */
	uint64_t ping_ns;   /* when the outstanding Ping went out; 0: none */
};

enum liveness_due {
	LIVENESS_QUIET, /* nothing to do yet */
	LIVENESS_PING,	/* send a Ping now */
	LIVENESS_DEAD,	/* silent for too long: give up */
};

void liveness_start(struct liveness *l, uint32_t period_ms, uint64_t now_ns);
/* Bytes arrived from the daemon. */
void liveness_heard(struct liveness *l, uint64_t now_ns);
void liveness_pinged(struct liveness *l, uint64_t now_ns);
/* The Ping was answered (a Pong, or an Error from a daemon without Ping). */
void liveness_answered(struct liveness *l);
enum liveness_due liveness_due(const struct liveness *l, uint64_t now_ns);
/* Nanoseconds until liveness_due() may say something else; UINT64_MAX: never. */
uint64_t liveness_wait_ns(const struct liveness *l, uint64_t now_ns);
/* How long the daemon has been silent. */
uint64_t liveness_silence_ns(const struct liveness *l, uint64_t now_ns);

#endif
