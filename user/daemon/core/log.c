// SPDX-License-Identifier: BSD-2-Clause
/*
 * log.c - leveled logging to stderr that never blocks the daemon.
 *
 * One write per line, so the daemon's lines never interleave with partial
 * lines of other writers of a shared pipe (a line is at most LINE_MAX
 * bytes, below PIPE_BUF, so a pipe takes it whole or not at all).
 *
 * stderr may be a pipe nobody reads, a stopped terminal or a socket whose
 * peer is slow: a blocking write there would stop the daemon for everyone.
 * So every write is non-blocking. A line stderr cannot take now waits in a
 * bounded buffer, written from the event loop once stderr is writable;
 * when the buffer is full, lines are dropped and counted, and once it has
 * drained a line says how many ("log: N lines dropped").
 *
 * How a write is made non-blocking without changing anyone else's stderr:
 * O_NONBLOCK is a flag of the open file description, which fd 2 shares
 * with whoever started us (the shell's terminal, a test harness's pipe, a
 * supervisor's pipe); setting it there would make *their* writes fail with
 * EAGAIN. Instead:
 * - a pipe, FIFO or terminal is opened again through /proc/self/fd/2,
 *   which gives the same pipe or terminal in a description of our own, and
 *   O_NONBLOCK is set on that;
 * - a socket (journald, a log collector) is written with send(MSG_DONTWAIT),
 *   a per-call flag;
 * - a regular file or /dev/null is written as it is: O_NONBLOCK means
 *   nothing there, they never say EAGAIN;
 * - if the reopening fails (no /proc), each write asks poll() first, which
 *   is exact for a pipe and the best that can be done for a terminal.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "common/util.h"

#define LOG_LINE_MAX 1024
#define LOG_BUFFER (64 * 1024)

static struct {
	enum log_level level;
	int fd;          /* STDERR_FILENO, or our own description of it */
	bool own_fd;     /* fd was opened by log_open */
	bool is_socket;  /* send(MSG_DONTWAIT) instead of write */
	bool poll_first; /* no description of our own: ask poll() before writing */
	char buf[LOG_BUFFER];
	size_t head, tail; /* buf[head..tail): lines waiting for stderr */
	uint64_t dropped, unreported;
	struct loop *loop;
	bool watching; /* fd is in the loop, waiting for EPOLLOUT */
} G = { .level = LOG_INFO, .fd = STDERR_FILENO };

static const char *const current_prefix = "ctld-bpf";

void log_set_level(enum log_level level)
{
	G.level = level;
}

enum log_level log_get_level(void)
{
	return G.level;
}

void log_open(void)
{
	struct stat st;
	int fd;

	if (fstat(STDERR_FILENO, &st) < 0)
		return;
	if (S_ISSOCK(st.st_mode)) {
		G.is_socket = true;
		return;
	}
	if (!S_ISFIFO(st.st_mode) && !isatty(STDERR_FILENO))
		return; /* a file or /dev/null: never EAGAIN */
	fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		G.poll_first = true;
		log_warn("log: cannot reopen stderr (%s): checking it with poll() before each line",
			 strerror(errno));
		return;
	}
	G.fd = fd;
	G.own_fd = true;
}

/* > 0 bytes written, -EAGAIN when stderr cannot take them now, -errno. */
static ssize_t sink_write(const char *p, size_t len)
{
	ssize_t n;

	if (G.poll_first) {
		struct pollfd pfd = { .fd = G.fd, .events = POLLOUT };

		if (poll(&pfd, 1, 0) == 0)
			return -EAGAIN; /* an error shows up as an event: write() reports it */
	}
	if (G.is_socket)
		n = send(G.fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	else
		n = write(G.fd, p, len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n;
}

static void on_writable(struct loop *loop, int fd, uint32_t events, void *ctx);

static void watch(bool on)
{
	if (!G.loop || on == G.watching)
		return;
	if (on) {
		/* fails for a descriptor epoll cannot watch: the buffer is then
		 * written whenever the next line is logged */
		G.watching = loop_fd_add(G.loop, G.fd, EPOLLOUT, on_writable, NULL) == 0;
	} else {
		loop_fd_del(G.loop, G.fd);
		G.watching = false;
	}
}

static uint64_t buffered_lines(void)
{
	uint64_t n = 0;

	for (size_t i = G.head; i < G.tail; i++)
		n += G.buf[i] == '\n';
	return n;
}

/* The next write from the buffer: whole lines, at most PIPE_BUF bytes, so
 * a pipe takes each write whole, as it does a single line. */
static size_t chunk_len(void)
{
	size_t len = G.tail - G.head;

	if (len <= PIPE_BUF)
		return len;
	for (len = PIPE_BUF; len > 0; len--)
		if (G.buf[G.head + len - 1] == '\n')
			return len;
	return PIPE_BUF;
}

static bool buffer_append(const char *p, size_t len)
{
	if (G.tail + len > sizeof(G.buf) && G.head > 0) {
		memmove(G.buf, G.buf + G.head, G.tail - G.head);
		G.tail -= G.head;
		G.head = 0;
	}
	if (G.tail + len > sizeof(G.buf))
		return false;
	memcpy(G.buf + G.tail, p, len);
	G.tail += len;
	return true;
}

static void report_dropped(void)
{
	char text[128];

	snprintf(text, sizeof(text), "log: %llu lines dropped: stderr not writable",
		 (unsigned long long)G.unreported);
	G.unreported = 0;
	log_msg(LOG_WARN, "%s", text);
}

/* Writes what the buffer holds, as far as stderr takes it. */
static void flush(void)
{
	while (G.head < G.tail) {
		ssize_t n = sink_write(G.buf + G.head, chunk_len());

		if (n == -EAGAIN)
			break;
		if (n <= 0) { /* stderr is gone (EPIPE, ...): so are these lines */
			uint64_t lost = buffered_lines();

			G.dropped += lost;
			G.unreported += lost;
			G.head = G.tail;
			break;
		}
		G.head += (size_t)n;
	}
	if (G.head == G.tail) {
		G.head = G.tail = 0;
		watch(false);
		if (G.unreported)
			report_dropped();
		return;
	}
	watch(true);
}

static void on_writable(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)ctx;
	flush();
}

static void emit(const char *line, size_t len)
{
	if (G.head == G.tail) { /* nothing waiting: straight out */
		ssize_t n = sink_write(line, len);

		if (n == (ssize_t)len)
			return;
		if (n < 0 && n != -EAGAIN) {
			G.dropped++; /* stderr is broken; nowhere to say so */
			return;
		}
		if (n > 0) { /* a socket took part of it */
			line += n;
			len -= (size_t)n;
		}
	}
	if (!buffer_append(line, len)) {
		G.dropped++;
		G.unreported++;
		return;
	}
	flush();
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	char line[LOG_LINE_MAX];
	struct timespec ts;
	int saved_errno = errno;
	int n;

	if (level > G.level)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	n = snprintf(line, sizeof(line), "%s[%ld.%06ld] %s: ", current_prefix, (long)ts.tv_sec,
		     ts.tv_nsec / 1000, names[level]);
	emit(line, vformat_line(line, sizeof(line), n < 0 ? 0 : (size_t)n, fmt, ap));
	errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_attach(struct loop *loop)
{
	if (!loop) {
		flush(); /* one last try; what stderr does not take now is lost */
		watch(false);
	}
	G.loop = loop;
	if (loop && G.head < G.tail)
		watch(true);
}

void log_close(void)
{
	log_attach(NULL);
	if (G.own_fd)
		close(G.fd);
	G.fd = STDERR_FILENO;
	G.own_fd = G.is_socket = G.poll_first = false;
	G.head = G.tail = 0;
}

uint64_t log_dropped_lines(void)
{
	return G.dropped;
}
