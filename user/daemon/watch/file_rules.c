// SPDX-License-Identifier: BSD-2-Clause
/*
 * file_rules.c - see file_rules.h.
 */
#include <errno.h>
#include <string.h>
#include <sys/inotify.h>

#include "daemon/watch/file_rules.h"

#define K_NONE ctld_FileEventKind_FILE_NONE
#define K_CREATED ctld_FileEventKind_FILE_CREATED
#define K_MODIFIED ctld_FileEventKind_FILE_MODIFIED
#define K_CLOSED_WRITE ctld_FileEventKind_FILE_CLOSED_WRITE
#define K_DELETED ctld_FileEventKind_FILE_DELETED
#define K_MOVED ctld_FileEventKind_FILE_MOVED
#define K_ATTRIB ctld_FileEventKind_FILE_ATTRIB
#define K_SIZE ctld_FileEventKind_FILE_SIZE_REACHED
#define K_OVERFLOW ctld_FileEventKind_FILE_OVERFLOW

int file_rules_normalize_path(const char *in, char *out, size_t cap, size_t *parent_len)
{
	size_t len = 0, last = 0;
	const char *p = in;

	if (!in || in[0] != '/')
		return -EINVAL;
	while (*p) {
		const char *c;
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		for (c = p; *p && *p != '/'; p++)
			;
		n = (size_t)(p - c);
		if (n == 1 && c[0] == '.')
			continue;
		/* ".." is refused rather than folded: with symlinks on the way,
		 * folding it by hand could name another file than the kernel. */
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return -EINVAL;
		if (len + 1 + n + 1 > cap)
			return -ENAMETOOLONG;
		last = len;
		out[len++] = '/';
		memcpy(out + len, c, n);
		len += n;
	}
	if (!len)
		return -EINVAL;
	out[len] = '\0';
	*parent_len = last;
	return 0;
}

int file_rules_effective_kinds(uint32_t kinds, bool has_threshold, uint32_t *out)
{
	if (kinds & ~FILE_KINDS_ALL)
		return -EINVAL;
	if ((kinds & K_SIZE) && !has_threshold)
		return -EINVAL;
	*out = kinds ? kinds : FILE_KINDS_DEFAULT;
	*out |= K_OVERFLOW | (has_threshold ? K_SIZE : 0);
	return 0;
}

ctld_FileEventKind file_rules_kind_of(uint32_t mask, bool named)
{
	if (mask & IN_Q_OVERFLOW)
		return K_OVERFLOW;
	if (named) {
		if (mask & IN_CREATE)
			return K_CREATED;
		if (mask & (IN_MOVED_FROM | IN_MOVED_TO))
			return K_MOVED;
		if (mask & IN_DELETE)
			return K_DELETED;
		return K_NONE;
	}
	if (mask & IN_MODIFY)
		return K_MODIFIED;
	if (mask & IN_CLOSE_WRITE)
		return K_CLOSED_WRITE;
	if (mask & IN_ATTRIB)
		return K_ATTRIB;
	if (mask & IN_DELETE_SELF)
		return K_DELETED;
	if (mask & IN_MOVE_SELF)
		return K_MOVED;
	return K_NONE;
}

ctld_FileEventKind file_rules_deliver_kind(ctld_FileEventKind kind, uint32_t wanted, bool appeared)
{
	if (kind == K_NONE)
		return K_NONE;
	if (wanted & (uint32_t)kind)
		return kind;
	if (kind == K_MOVED && appeared && (wanted & K_CREATED))
		return K_CREATED;
	return K_NONE;
}

bool file_rules_threshold_due(bool has_threshold, bool fired, uint64_t threshold, uint64_t size)
{
	return has_threshold && !fired && size >= threshold;
}

ssize_t file_rules_parse_records(const void *buf, size_t len, file_rules_record_fn fn, void *ctx)
{
	const char *p = buf;
	size_t off = 0;

	while (off < len) {
		struct inotify_event ev;
		const char *name = NULL;

		if (len - off < sizeof(ev))
			return -EBADMSG;
		memcpy(&ev, p + off, sizeof(ev)); /* no alignment assumed */
		off += sizeof(ev);
		if (ev.len > len - off)
			return -EBADMSG;
		if (ev.len) {
			name = p + off;
			if (!memchr(name, '\0', ev.len))
				return -EBADMSG;
			if (!name[0])
				name = NULL;
		}
		off += ev.len;
		fn(ev.wd, ev.mask, ev.cookie, name, ctx);
	}
	return (ssize_t)len;
}

