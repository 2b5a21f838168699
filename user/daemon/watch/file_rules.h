/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * file_rules.h - the pure rules of file watches, with no I/O, so they are
 * unit-tested one by one (tests/test_file_rules.c): path normalisation, the
 * kinds a request delivers, the inotify mask -> FileEventKind mapping, the
 * CREATED-for-a-rename rule, the size threshold, and the bounds-checked
 * parser of inotify records.
 */
#ifndef CTLD_FILE_RULES_H
#define CTLD_FILE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctld.pb.h"

/* Every FileEventKind bit. */
#define FILE_KINDS_ALL 0xffu
/* What kinds == 0 means: every kind about the file itself. */
#define FILE_KINDS_DEFAULT                                                                   \
	(ctld_FileEventKind_FILE_CREATED | ctld_FileEventKind_FILE_MODIFIED |                      \
	 ctld_FileEventKind_FILE_CLOSED_WRITE | ctld_FileEventKind_FILE_DELETED |                  \
	 ctld_FileEventKind_FILE_MOVED | ctld_FileEventKind_FILE_ATTRIB)

/* Normalises an absolute path into out[cap]: "//" and "/./" collapse, a
 * trailing '/' goes. -EINVAL when the path is relative, contains "..", or is
 * "/" itself (no parent to watch); -ENAMETOOLONG when it does not fit. On
 * success *parent_len is the length of the parent directory's prefix of out
 * (0 for a file directly under "/"). */
int file_rules_normalize_path(const char *in, char *out, size_t cap, size_t *parent_len);

/* The kinds a watch delivers, from what the client asked: 0 means
 * FILE_KINDS_DEFAULT; FILE_OVERFLOW is always on, FILE_SIZE_REACHED is
 * on whenever a threshold is set. -EINVAL for bits outside the enum, or for
 * FILE_SIZE_REACHED without a threshold. */
int file_rules_effective_kinds(uint32_t kinds, bool has_threshold, uint32_t *out);

/* Maps one inotify record to the kind it means. named: the record names an
 * entry of a watched directory (IN_CREATE, IN_DELETE, IN_MOVED_FROM/TO);
 * otherwise it is about the watched inode itself (IN_MODIFY, IN_CLOSE_WRITE,
 * IN_ATTRIB, IN_DELETE_SELF, IN_MOVE_SELF). FILE_NONE when irrelevant. */
ctld_FileEventKind file_rules_kind_of(uint32_t mask, bool named);

/* What to send for an event of `kind` to a watch delivering `wanted`, or
 * FILE_NONE. A file renamed into place is MOVED, but a watch that only asked
 * for CREATED still hears it as CREATED when the path was empty before
 * (`appeared`): for that client the file did appear. */
ctld_FileEventKind file_rules_deliver_kind(ctld_FileEventKind kind, uint32_t wanted,
					   bool appeared);

/* True when FILE_SIZE_REACHED is due: a threshold is set, it has not fired
 * yet, and size has reached it. */
bool file_rules_threshold_due(bool has_threshold, bool fired, uint64_t threshold, uint64_t size);

/* Walks the records of one read() from an inotify fd, calling fn for each.
 * Records are bounds-checked: a header or name running past len, or a name
 * without its NUL, stops the walk with -EBADMSG (records before it were
 * delivered). name is NULL when the record has none. Returns len or -EBADMSG. */
typedef void (*file_rules_record_fn)(int wd, uint32_t mask, uint32_t cookie, const char *name,
				     void *ctx);
ssize_t file_rules_parse_records(const void *buf, size_t len, file_rules_record_fn fn, void *ctx);

#endif
