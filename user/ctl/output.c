// SPDX-License-Identifier: BSD-2-Clause
/*
 * output.c - what ctl writes. Job output is written as it arrives with
 * plain, blocking write(2) calls: a slow reader of ctl's stdout slows ctl
 * down, and the daemon then drops output for ctl (reported as
 * OutputDropped) instead of queueing without bound. With several hosts,
 * output is cut into whole lines, each prefixed with its host, so lines of
 * different hosts never mix.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/util.h"
#include "ctl/ctl.h"
#include "ctl/output.h"

/* Writes everything, or fails; a signal aborts a blocked write only when it is
 * the one that ends ctl (the loop will see it). */
static int write_iov(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n = writev(fd, iov, cnt);

		if (n < 0) {
			if (errno == EINTR && (unsigned)signals_caught < G.quit_after)
				continue;
			return -errno;
		}
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int write_line(int fd, const char *prefix, const void *a, size_t alen, const void *b,
		      size_t blen)
{
	struct iovec iov[3] = { { (void *)prefix, strlen(prefix) },
				{ (void *)a, alen },
				{ (void *)b, blen } };

	return write_iov(fd, iov, 3);
}

/* Multi-host output: whole lines, each with the host prefix. */
static int emit_lines(struct host *h, int fd, const char *p, size_t len)
{
	struct linebuf *lb = &h->lines[fd == STDERR_FILENO];
	int err = 0;

	while (len && !err) {
		const char *nl = memchr(p, '\n', len);
		size_t seg = nl ? (size_t)(nl - p) + 1 : len;

		if (!nl && lb->len + seg <= sizeof(lb->buf)) {
			memcpy(lb->buf + lb->len, p, seg);
			lb->len += seg;
			return 0;
		}
		if (!nl) { /* too long: cut it here */
			seg = sizeof(lb->buf) - lb->len;
			err = write_line(fd, h->prefix, lb->buf, lb->len, p, seg);
			err = err ? err : write_line(fd, "", "\n", 1, NULL, 0);
		} else {
			err = write_line(fd, h->prefix, lb->buf, lb->len, p, seg);
		}
		lb->len = 0;
		p += seg;
		len -= seg;
	}
	return err;
}

/*
 * Job output and results: to fd 1 or 2, prefixed by host when there are
 * several (h NULL: never prefixed, e.g. JSON lines). A failure on stdout
 * winds everything up (stdout_failed); on stderr it is ignored.
 */
int emit(struct host *h, int fd, const void *data, size_t len)
{
	int err;

	if (fd == STDOUT_FILENO && G.stdout_failed)
		return -EPIPE;
	if (G.args.gather && h && fd == STDOUT_FILENO)
		return gather_add(h, data, len);
	if (G.multi && h && h->lines)
		err = emit_lines(h, fd, data, len);
	else
		err = write_line(fd, "", data, len, NULL, 0);
	if (err == -EINTR) /* ctl is being interrupted: drop it */
		return 0;
	if (err && fd == STDOUT_FILENO) {
		stdout_failed(err);
		return err;
	}
	return 0;
}

void flush_lines(struct host *h)
{
	for (int s = 0; s < 2 && h->lines; s++) {
		if (h->lines[s].len)
			emit(h, s ? STDERR_FILENO : STDOUT_FILENO, "\n", 1);
		h->lines[s].len = 0;
	}
}

void say(const struct host *h, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n = snprintf(line, sizeof(line), "ctl: %s", G.multi && h ? h->prefix : "");
	size_t len;

	va_start(ap, fmt);
	len = vformat_line(line, sizeof(line), n < 0 ? 0 : (size_t)n, fmt, ap);
	va_end(ap);
	write_line(STDERR_FILENO, "", line, len, NULL, 0);
}

/* Text from the daemon, made safe for a terminal: control bytes become '?'. */
const char *clean(const char *s, char *buf, size_t cap)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < cap; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

void fmt_ms(uint32_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%ums", ms);
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "%uh", ms / 3600000);
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%um", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%us", ms / 1000);
	else
		snprintf(buf, len, "%.3gs", ms / 1000.0);
}

struct json_line *jbegin(const char *event)
{
	json_begin(&G.json);
	if (event)
		json_add_str(&G.json, "event", event);
	return &G.json;
}

void jend(struct host *h)
{
	if (G.multi)
		json_add_str(&G.json, "host", h->target->name);
	if (json_end(&G.json)) {
		say(h, "out of memory for a JSON line");
		return;
	}
	emit(NULL, STDOUT_FILENO, G.json.buf, G.json.len);
}

const char *stream_name(ctld_Stream s)
{
	return s == ctld_Stream_STDERR ? "stderr" : "stdout";
}

void json_port_listening(struct host *h, const ctld_PortListening *p)
{
	struct json_line *j = jbegin("port_listening");

	json_add_u64(j, "watch", p->watch);
	json_add_u64(j, "port", p->port);
	json_add_str(j, "addr", p->addr);
	json_add_u64(j, "pid", p->pid);
	json_add_str(j, "comm", p->comm);
	if (p->already)
		json_add_bool(j, "already", true);
	if (p->time_ns)
		json_add_u64(j, "time_ns", p->time_ns);
	if (h->job)
		json_add_u64(j, "job", h->job);
	jend(h);
}
