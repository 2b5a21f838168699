/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * util.h - small helpers shared by the daemon and the CLI: clocks, fd flags,
 * bounded string copies, and parsers for durations, sizes and signal names.
 */
#ifndef CTLD_UTIL_H
#define CTLD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL

uint64_t now_monotonic_ns(void);
uint64_t now_realtime_ns(void);
/* A CLOCK_MONOTONIC time (now or past) as CLOCK_REALTIME, by today's offset. */
uint64_t monotonic_to_realtime_ns(uint64_t mono_ns);
uint64_t now_boottime_ns(void);

/* Sets O_NONBLOCK and FD_CLOEXEC; returns 0 or -errno. */
int fd_set_nonblock_cloexec(int fd);

/* Writes all of data to a blocking fd (a file, a memfd), retrying after
 * EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *data, size_t len);

/* A whole small file (kernel files: /proc, cgroupfs) into buf, NUL
 * terminated, at most cap - 1 bytes: its length, or -errno. name is
 * relative to dirfd (AT_FDCWD for a plain path). */
ssize_t read_small_file_at(int dirfd, const char *name, char *buf, size_t cap);

/* Appends fmt to line[used..cap), truncating, and ends it with '\n' (not NUL
 * terminated); returns the line's length. For one-write log lines. */
size_t vformat_line(char *line, size_t cap, size_t used, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

/* Formats a reason into err[errlen] and returns ret, for the "return an
 * error value and say why" style: return errorf(err, len, -EINVAL, "..."). */
int errorf(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Copies src into dst[cap] always NUL-terminated; returns true if it fit. */
bool copy_str(char *dst, size_t cap, const char *src);

/* "250ms", "10s", "2m", "1h", "1.5s"; a bare number means seconds. */
int parse_duration_ms(const char *text, uint32_t *ms);
/* "1024", "64K", "10M", "1G" (powers of 1024). */
int parse_size(const char *text, uint64_t *bytes);
/* Decimal integer in [min, max]; rejects trailing garbage and overflow. */
int parse_long(const char *text, long min, long max, long *out);
/* "TERM", "SIGTERM", "sigkill", "9" -> signal number; -EINVAL if unknown. */
int parse_signal(const char *text);
/* Signal number -> "TERM" (without SIG), or NULL. */
const char *signal_name(int sig);
/* Splits "host:port" / "[v6]:port" into parts; 0 or -EINVAL. Used by the
 * daemon's listeners and by ctl's targets. */
int split_host_port(const char *text, char *host, size_t hostlen, char *port, size_t portlen);

#endif
