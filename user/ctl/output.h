/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * output.h - ctl's output: job output and results on stdout/stderr (with a
 * host prefix when there are several hosts), ctl's own messages, --json
 * lines.
 */
#ifndef CTLD_CTL_OUTPUT_H
#define CTLD_CTL_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "ctld.pb.h"

struct host;
struct json_line;

/* Job output and results: to fd 1 or 2, prefixed by host when there are
 * several (h NULL: never prefixed, e.g. JSON lines). A failure on stdout
 * winds everything up (stdout_failed); on stderr it is ignored. */
int emit(struct host *h, int fd, const void *data, size_t len);
/* Ends the host's partial lines (multi-host output). */
void flush_lines(struct host *h);
/* A message from ctl itself: "ctl: [HOST:PORT: ]text" on stderr. */
void say(const struct host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text from the daemon, made safe for a terminal: control bytes become '?'. */
const char *clean(const char *s, char *buf, size_t cap);
/* "250ms", "10s", "2m", "1h" */
void fmt_ms(uint32_t ms, char *buf, size_t len);
/* A --json line: jbegin() starts it ("event" member unless NULL), members
 * are added to the returned line, jend() adds "host" (several hosts) and
 * writes it. */
struct json_line *jbegin(const char *event);
void jend(struct host *h);
const char *stream_name(ctld_Stream s);
/* {"event":"port_listening",...} for watch-port */
void json_port_listening(struct host *h, const ctld_PortListening *p);

#endif
