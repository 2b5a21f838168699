/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log.h - leveled logging to stderr with a monotonic timestamp; writes
 * never block (lines wait in a bounded buffer, then are dropped and
 * counted). What a peer can make the daemon say goes through log_limit.h.
 *
 * Modules log and return errors; only main() decides to exit.
 */
#ifndef CTLD_LOG_H
#define CTLD_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level { LOG_ERR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct loop;

/* Finds a way to write stderr without blocking (see log.c); once at
 * start-up, when fds 0-2 are open. Before it, lines go to fd 2 as is. */
void log_open(void);
/* Lines stderr cannot take now wait for it in this loop. NULL: the loop
 * goes away (a last try to write what waits). */
void log_attach(struct loop *loop);
/* Detaches and closes what log_open opened; lines go to fd 2 again. */
void log_close(void);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Lines lost because stderr could not take them. */
uint64_t log_dropped_lines(void);

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOG_DEBUG)                                                  \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)

#endif
