/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * watch_file.h - inotify watches on files: WatchFile/UnwatchFile, files that
 * do not exist yet (watched through their directory), the "reached N bytes"
 * threshold, queue overflow handling, and FileEvent to the watching client.
 */
#ifndef CTLD_WATCH_FILE_H
#define CTLD_WATCH_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctld.pb.h"

struct loop;
struct request_ctx;

/* Creates the inotify instance. If the kernel refuses one (e.g. the
 * fs.inotify.max_user_instances limit), the daemon still starts and WatchFile
 * answers UNSUPPORTED with the reason: file watches must not take down job
 * control. Returns 0 or -errno for errors that are the daemon's own. */
int watch_file_init(struct loop *loop, uint32_t max_per_client);
void watch_file_shutdown(void);

void watch_file_handle_watch(struct request_ctx *ctx, const ctld_WatchFile *w);
void watch_file_handle_unwatch(struct request_ctx *ctx, const ctld_UnwatchFile *u);
void watch_file_client_gone(uint64_t session);
void watch_file_fill_stats(ctld_StatsReply *st);
/* Calls fn with a description of every file watch (ListWatches). */
void watch_file_each(void (*fn)(const ctld_WatchInfo *info, void *ctx), void *ctx);

/* ------------------------------------------------------------------------
 * Pure pieces of the module, exposed for tests/test_watch_file.c.
 */

/* Every FileEventKind bit. */
#define WATCH_FILE_KINDS_ALL 0xffu
/* What kinds == 0 means: every kind about the file itself. */
#define WATCH_FILE_KINDS_DEFAULT                                                                   \
	(ctld_FileEventKind_FILE_CREATED | ctld_FileEventKind_FILE_MODIFIED |                      \
	 ctld_FileEventKind_FILE_CLOSED_WRITE | ctld_FileEventKind_FILE_DELETED |                  \
	 ctld_FileEventKind_FILE_MOVED | ctld_FileEventKind_FILE_ATTRIB)

/* Normalises an absolute path into out[cap]: "//" and "/./" collapse, a
 * trailing '/' goes. -EINVAL when the path is relative, contains "..", or is
 * "/" itself (no parent to watch); -ENAMETOOLONG when it does not fit. On
 * success *parent_len is the length of the parent directory's prefix of out
 * (0 for a file directly under "/"). */
int watch_file_normalize_path(const char *in, char *out, size_t cap, size_t *parent_len);

/* The kinds a watch delivers, from what the client asked: 0 means
 * WATCH_FILE_KINDS_DEFAULT; FILE_OVERFLOW is always on, FILE_SIZE_REACHED is
 * on whenever a threshold is set. -EINVAL for bits outside the enum, or for
 * FILE_SIZE_REACHED without a threshold. */
int watch_file_effective_kinds(uint32_t kinds, bool has_threshold, uint32_t *out);

/* Maps one inotify record to the kind it means. named: the record names an
 * entry of a watched directory (IN_CREATE, IN_DELETE, IN_MOVED_FROM/TO);
 * otherwise it is about the watched inode itself (IN_MODIFY, IN_CLOSE_WRITE,
 * IN_ATTRIB, IN_DELETE_SELF, IN_MOVE_SELF). FILE_NONE when irrelevant. */
ctld_FileEventKind watch_file_kind_of(uint32_t mask, bool named);

/* What to send for an event of `kind` to a watch delivering `wanted`, or
 * FILE_NONE. A file renamed into place is MOVED, but a watch that only asked
 * for CREATED still hears it as CREATED when the path was empty before
 * (`appeared`): for that client the file did appear. */
ctld_FileEventKind watch_file_deliver_kind(ctld_FileEventKind kind, uint32_t wanted,
					   bool appeared);

/* True when FILE_SIZE_REACHED is due: a threshold is set, it has not fired
 * yet, and size has reached it. */
bool watch_file_threshold_due(bool has_threshold, bool fired, uint64_t threshold, uint64_t size);

/* Walks the records of one read() from an inotify fd, calling fn for each.
 * Records are bounds-checked: a header or name running past len, or a name
 * without its NUL, stops the walk with -EBADMSG (records before it were
 * delivered). name is NULL when the record has none. Returns len or -EBADMSG. */
typedef void (*watch_file_record_fn)(int wd, uint32_t mask, uint32_t cookie, const char *name,
				     void *ctx);
ssize_t watch_file_parse_records(const void *buf, size_t len, watch_file_record_fn fn, void *ctx);

#endif
