// SPDX-License-Identifier: BSD-2-Clause
/*
 * log.c - leveled logging to stderr.
 *
 * One write(2) per line so lines from the daemon never interleave with
 * partial lines, even when stderr is a pipe shared with other writers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "daemon/core/log.h"
#include "common/util.h"

static enum log_level current_level = LOG_INFO;
static const char *const current_prefix = "ctld-bpf";

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	struct timespec ts;
	va_list ap;
	int saved_errno = errno;
	size_t len;
	int n;

	if (level > current_level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof(line), "%s[%ld.%06ld] %s: ", current_prefix, (long)ts.tv_sec,
		     ts.tv_nsec / 1000, names[level]);
	va_start(ap, fmt);
	len = vformat_line(line, sizeof(line), n < 0 ? 0 : (size_t)n, fmt, ap);
	va_end(ap);
	(void)!write(STDERR_FILENO, line, len);
	errno = saved_errno;
}
