/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * file_follow.h - following a *path* (not an inode) with inotify: files
 * that do not exist yet, that are replaced by rename, deleted, or whose
 * directory goes away and comes back. One inotify instance for the daemon;
 * followers of the same file or directory share its kernel watch.
 *
 * A follower reports what happens at its path through its ops; client file
 * watches (watch_file.c) and job readiness conditions are followers.
 */
#ifndef CTLD_FILE_FOLLOW_H
#define CTLD_FILE_FOLLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctld.pb.h"

#define FILE_FOLLOW_PATH_MAX sizeof(((ctld_FileEvent *)0)->path)

struct loop;
struct file_follow;

struct file_follow_ops {
	/*
	 * Something happened at the path: kind is what (FILE_NONE when only
	 * the size may have changed); appeared: the path named no file before
	 * (a rename into place is MOVED but, for the path, an appearance);
	 * size_known: size is the file's size right after. Returns false when
	 * the callback stopped the follower, which must then not be touched.
	 */
	bool (*changed)(struct file_follow *f, ctld_FileEventKind kind, bool appeared,
			bool size_known, uint64_t size);
};

/* Lives in its owner's struct; everything but ops and ctx is private. */
struct file_follow {
	const struct file_follow_ops *ops;
	void *ctx;
	uint64_t id;
	char path[FILE_FOLLOW_PATH_MAX]; /* normalised, absolute */
	size_t parent_len; /* path[0, parent_len) is the parent directory; 0 = "/" */
	size_t anchor_len; /* the directory watched: parent_len, or an ancestor's */
	int anchor_wd;     /* -1 when no directory could be watched */
	int file_wd;       /* -1 while no file is at the path */
	bool exists;       /* a file is at the path, as records and stat() last told */
	dev_t dev;
	ino_t ino;
};

/* Creates the inotify instance. If the kernel refuses one (e.g. the
 * fs.inotify.max_user_instances limit) following is off and
 * file_follow_start() fails with that errno: file watches must not take
 * down job control. Returns 0 or -errno for errors that are the daemon's own. */
int file_follow_init(struct loop *loop);
void file_follow_shutdown(void);
/* 0 when following works, else the errno that turned it off. */
int file_follow_unavailable(void);
unsigned file_follow_count(void);
uint64_t file_follow_overflows(void);

/*
 * Starts following path (as normalised by file_rules_normalize_path, with
 * its parent_len). Its parent directory must exist, unless walk_up: then
 * the nearest existing ancestor is watched until the directories appear.
 * 0, or -errno with the path that could not be watched in failed[].
 */
int file_follow_start(struct file_follow *f, const char *path, size_t parent_len, bool walk_up,
		      char *failed, size_t failedlen);
void file_follow_stop(struct file_follow *f);

#endif
