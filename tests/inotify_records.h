/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * inotify_records.h - for tests: inotify records laid out as the kernel
 * writes them (header, then a NUL-padded name), to feed the parser or the
 * module reading an inotify fd.
 */
#ifndef CTLD_TEST_INOTIFY_RECORDS_H
#define CTLD_TEST_INOTIFY_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/inotify.h>

/* Writes a record header only, whatever name length it claims. */
static inline size_t put_header(uint8_t *buf, size_t off, int wd, uint32_t mask, uint32_t len)
{
	struct inotify_event ev = { .wd = wd, .mask = mask, .cookie = 7, .len = len };

	memcpy(buf + off, &ev, sizeof(ev));
	return off + sizeof(ev);
}

/* Appends one record as the kernel lays it out; returns the new length. */
static inline size_t put_record(uint8_t *buf, size_t off, int wd, uint32_t mask, const char *name,
			 uint32_t len)
{
	off = put_header(buf, off, wd, mask, len);
	memset(buf + off, 0, len);
	if (name)
		memcpy(buf + off, name, strlen(name));
	return off + len;
}

#endif
