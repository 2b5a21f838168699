// SPDX-License-Identifier: BSD-2-Clause
/*
 * util.c - clocks, fd flags, bounded copies and the small text parsers that
 * both the CLI and the daemon use, so a duration or a signal name means the
 * same thing everywhere.
 */
#include <ctype.h>
#include <stdio.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/util.h"

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t now_monotonic_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t now_realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

/* bpf_ktime_get_boot_ns() counts on this clock. */
uint64_t now_boottime_ns(void)
{
	return clock_ns(CLOCK_BOOTTIME);
}

uint64_t monotonic_to_realtime_ns(uint64_t mono_ns)
{
	uint64_t now_mono = now_monotonic_ns(), now_real = now_realtime_ns();

	return mono_ns <= now_mono ? now_real - (now_mono - mono_ns) : now_real;
}

int fd_set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	fl = fcntl(fd, F_GETFD);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

int write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t read_small_file_at(int dirfd, const char *name, char *buf, size_t cap)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r = 0;

	if (fd < 0)
		return -errno;
	while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	if (r < 0)
		r = -errno;
	close(fd);
	buf[n] = '\0';
	return r < 0 ? r : (ssize_t)n;
}

size_t vformat_line(char *line, size_t cap, size_t used, const char *fmt, va_list ap)
{
	int n;

	if (used > cap - 2)
		used = cap - 2;
	n = vsnprintf(line + used, cap - used - 1, fmt, ap);
	used += n < 0 ? 0 : (size_t)n;
	if (used > cap - 2)
		used = cap - 2;
	line[used++] = '\n';
	return used;
}

int errorf(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return ret;
}

bool copy_str(char *dst, size_t cap, const char *src)
{
	size_t len = strlen(src);

	if (cap == 0)
		return false;
	if (len >= cap) {
		memcpy(dst, src, cap - 1);
		dst[cap - 1] = '\0';
		return false;
	}
	memcpy(dst, src, len + 1);
	return true;
}

int parse_long(const char *text, long min, long max, long *out)
{
	char *end;
	long v;

	if (!text || !*text || isspace((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_duration_ms(const char *text, uint32_t *ms)
{
	static const struct {
		const char *suffix;
		double scale_ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 }, { "h", 3600000 } };
	char *end;
	double v;

	if (!text || !*text || isspace((unsigned char)*text) || *text == '-')
		return -EINVAL;
	errno = 0;
	v = strtod(text, &end);
	/* !(v >= 0) also rejects NaN, which every comparison lets through */
	if (errno || end == text || !(v >= 0) || isinf(v))
		return errno == ERANGE ? -ERANGE : -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcmp(end, units[i].suffix) == 0) {
			double total = v * units[i].scale_ms;

			if (total > (double)UINT32_MAX)
				return -ERANGE;
			*ms = (uint32_t)(total + 0.5);
			if (*ms == 0 && v > 0)
				*ms = 1;
			return 0;
		}
	}
	return -EINVAL;
}

int parse_size(const char *text, uint64_t *bytes)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!text || !isdigit((unsigned char)*text))
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno)
		return -ERANGE;
	if (*end && end[1] == '\0') {
		switch (toupper((unsigned char)*end)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		default: return -EINVAL;
		}
	} else if (*end) {
		return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*bytes = (uint64_t)v << shift;
	return 0;
}

static const struct {
	int sig;
	const char *name;
} signal_names[] = {
	{ SIGHUP, "HUP" },   { SIGINT, "INT" },   { SIGQUIT, "QUIT" }, { SIGILL, "ILL" },
	{ SIGTRAP, "TRAP" }, { SIGABRT, "ABRT" }, { SIGBUS, "BUS" },   { SIGFPE, "FPE" },
	{ SIGKILL, "KILL" }, { SIGUSR1, "USR1" }, { SIGSEGV, "SEGV" }, { SIGUSR2, "USR2" },
	{ SIGPIPE, "PIPE" }, { SIGALRM, "ALRM" }, { SIGTERM, "TERM" }, { SIGCHLD, "CHLD" },
	{ SIGCONT, "CONT" }, { SIGSTOP, "STOP" }, { SIGTSTP, "TSTP" }, { SIGTTIN, "TTIN" },
	{ SIGTTOU, "TTOU" }, { SIGURG, "URG" },   { SIGXCPU, "XCPU" }, { SIGXFSZ, "XFSZ" },
	{ SIGVTALRM, "VTALRM" }, { SIGPROF, "PROF" }, { SIGWINCH, "WINCH" }, { SIGIO, "IO" },
	{ SIGPWR, "PWR" },   { SIGSYS, "SYS" },
};

int parse_signal(const char *text)
{
	long num;

	if (!text || !*text)
		return -EINVAL;
	if (parse_long(text, 1, 64, &num) == 0)
		return (int)num;
	if (strncasecmp(text, "SIG", 3) == 0)
		text += 3;
	for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
		if (strcasecmp(text, signal_names[i].name) == 0)
			return signal_names[i].sig;
	return -EINVAL;
}

const char *signal_name(int sig)
{
	for (size_t i = 0; i < ARRAY_SIZE(signal_names); i++)
		if (signal_names[i].sig == sig)
			return signal_names[i].name;
	return NULL;
}

int split_host_port(const char *text, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;
	size_t hlen;

	if (text[0] == '[') {
		const char *close_br = strchr(text, ']');

		if (!close_br || close_br[1] != ':')
			return -EINVAL;
		hlen = (size_t)(close_br - text - 1);
		text++;
		colon = close_br + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon || strchr(text, ':') != colon)
			return -EINVAL;
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= hostlen || !copy_str(port, portlen, colon + 1) || !port[0])
		return -EINVAL;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	return 0;
}
