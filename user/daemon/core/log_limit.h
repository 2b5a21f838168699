/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log_limit.h - rate-limited logging for what a peer can make the daemon
 * say (a refused connection, a failed handshake, a client that went away
 * before its Hello): limited per call site and source, the rest counted and
 * summed up in one "suppressed N similar messages" line per window.
 */
#ifndef CTLD_LOG_LIMIT_H
#define CTLD_LOG_LIMIT_H

#include <stdarg.h>
#include <stdint.h>

#include "daemon/core/log.h"

struct loop;

/* Like log_msg; source names who caused it (a peer address without the
 * port, "" for none). The call site is told apart by fmt's address, so
 * fmt must be a string literal. */
void log_limited(enum log_level level, const char *source, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vlimited(enum log_level level, const char *source, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Windows end (and their summaries are written) from this loop's timer;
 * without a loop, at the next limited message. NULL: the loop goes away,
 * every pending summary is written now. */
void log_limit_attach(struct loop *loop);
/* Messages not written because of a limit. */
uint64_t log_suppressed_lines(void);

#endif
