/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * benchlib.h - what the C measurement tools share: connect to a daemon with
 * the project's client library (user/client.h) and wait for messages.
 *
 * A target is a unix socket path ("/tmp/x/ctld.sock") or "HOST:PORT".
 */
#ifndef CTLD_BENCHLIB_H
#define CTLD_BENCHLIB_H

#include <stdint.h>
#include <stdio.h>

#include "client/client.h"

/* Connects and waits for the Hello reply; 0 or -errno (message on stderr). */
int bench_connect(struct ctld_conn *c, const char *target, const char *name);

/* Next message, waiting until deadline_ns (CLOCK_MONOTONIC); 1, or -errno. */
int bench_next(struct ctld_conn *c, ctld_Message *msg, uint64_t deadline_ns);

/* A Run request for argv (n entries), attached, output streamed. */
void bench_run_request(ctld_Request *req, int argc, char *const argv[]);

/* Sends req and waits for its reply (events meanwhile are dropped); 0 or -errno,
 * -EREMOTEIO when the reply is an Error. */
int bench_call(struct ctld_conn *c, ctld_Request *req, ctld_Message *reply);

/* Prints "name":[v,v,...] */
void bench_print_array(FILE *f, const char *name, const uint64_t *v, size_t n);

uint64_t bench_now_ns(void);

#endif
