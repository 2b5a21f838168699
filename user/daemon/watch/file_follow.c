// SPDX-License-Identifier: BSD-2-Clause
/*
 * file_follow.c - path followers on one inotify instance.
 *
 * A follower always holds an inotify watch on the path's parent directory
 * (its "anchor": IN_CREATE, IN_DELETE, IN_MOVED_FROM/TO, filtered by the
 * file's name, and IN_CLOSE_WRITE, IN_ATTRIB of that file) and, while a
 * file is at the path, one on the file itself (IN_MODIFY). So:
 *
 *  - a file that does not exist yet is reported when it appears, whichever
 *    way it appears (created, or renamed into place by an atomic writer);
 *  - deletion and renames are taken from the directory, which speaks about
 *    names: an inode's own IN_DELETE_SELF can come long after the unlink (an
 *    open fd keeps it alive) and its IN_MOVE_SELF also fires when another
 *    hard link is renamed. Self events only trigger a stat() check of the
 *    path, for the cases the directory could not see;
 *  - when the path names a new inode (rotation, replace by rename), the file
 *    watch moves to it.
 *
 * If the parent directory itself is removed or renamed later, the anchor
 * moves up to the nearest existing ancestor and comes back down as the
 * missing directories reappear. (Starting still requires the parent: a
 * typo in a directory name is an error, not a silent wait.)
 *
 * Followers of one file or directory share its kernel watch (inotify_set.c).
 *
 * After IN_Q_OVERFLOW every follower hears FILE_OVERFLOW, then the truth is
 * re-read: the kernel watches are re-added and CREATED/DELETED reported
 * where the path's existence changed while records were lost (events may
 * then repeat: at least once, not exactly once).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/idmap.h"
#include "daemon/core/log.h"
#include "daemon/watch/file_follow.h"
#include "daemon/watch/file_rules.h"
#include "daemon/watch/inotify_set.h"

/* The parent directory reports, by name, what happens to the path's entry
 * and also CLOSE_WRITE and ATTRIB of the file in it: its watch exists
 * before the file does, so what a new file goes through in its first
 * moments (`echo x > PATH` creates, writes and closes it before the daemon
 * can add a watch on the file) is never lost. MODIFY, which can come at
 * every write, is asked of the file itself, so writes to the directory's
 * other files cost nothing; the writes of that first moment are told as
 * one MODIFIED when the new file is found to have content. */
#define ANCHOR_MASK                                                                                \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |     \
	 IN_CLOSE_WRITE | IN_ATTRIB)
#define FILE_MASK (IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF)
#define ENTRY_CONTENT (IN_CLOSE_WRITE | IN_ATTRIB)
#define ANCHOR_TRIES 16 /* resolve_anchor(): looks again after a directory below appeared */

#define K_NONE ctld_FileEventKind_FILE_NONE
#define K_MODIFIED ctld_FileEventKind_FILE_MODIFIED
#define K_CREATED ctld_FileEventKind_FILE_CREATED
#define K_DELETED ctld_FileEventKind_FILE_DELETED
#define K_MOVED ctld_FileEventKind_FILE_MOVED
#define K_OVERFLOW ctld_FileEventKind_FILE_OVERFLOW

enum role { ROLE_ANCHOR, ROLE_FILE };

static struct {
	bool up;
	uint64_t next_id;
	struct idmap followers; /* id -> struct file_follow */
	uint64_t overflows;
} F;

int file_follow_unavailable(void)
{
	return inotify_set_unavailable();
}

unsigned file_follow_count(void)
{
	return (unsigned)F.followers.count;
}

uint64_t file_follow_overflows(void)
{
	return F.overflows;
}

/* Tells the owner; true when it stopped the follower. */
static bool report(struct file_follow *f, ctld_FileEventKind kind, bool appeared, bool size_known,
		   uint64_t size)
{
	return !f->ops->changed(f, kind, appeared, size_known, size);
}

static uint64_t size_of(const struct stat *st)
{
	return st->st_size > 0 ? (uint64_t)st->st_size : 0;
}

static void warn_attach(const struct file_follow *f, int err)
{
	if (err != -ENOENT)
		log_warn("failed to watch %s: %s", f->path, strerror(-err));
}

/* ------------------------------------------------------------ path pieces */

/* The directory path[0, len) as a C string ("/" for len 0). */
static void dir_prefix(const struct file_follow *f, size_t len, char *out)
{
	if (!len) {
		strcpy(out, "/");
		return;
	}
	memcpy(out, f->path, len);
	out[len] = '\0';
}

/* Length of the directory above path[0, len). */
static size_t up_one(const struct file_follow *f, size_t len)
{
	while (len && f->path[len - 1] != '/')
		len--;
	return len ? len - 1 : 0;
}

/* Is name the path component right below the anchor directory? */
static bool next_component_is(const struct file_follow *f, const char *name)
{
	const char *c = f->path + f->anchor_len + 1;
	const char *end = strchr(c, '/');
	size_t n = end ? (size_t)(end - c) : strlen(c);

	return strlen(name) == n && memcmp(name, c, n) == 0;
}

/* ------------------------------------------------------------ kernel watches */

static void detach_file(struct file_follow *f)
{
	if (f->file_wd >= 0)
		inotify_set_release(f->file_wd, f->id, ROLE_FILE);
	f->file_wd = -1;
}

static void detach_anchor(struct file_follow *f)
{
	if (f->anchor_wd >= 0)
		inotify_set_release(f->anchor_wd, f->id, ROLE_ANCHOR);
	f->anchor_wd = -1;
}

/* Points the file role at the inode the path names now (st). The new wd is
 * taken before the old is released, so an unchanged inode keeps its kernel
 * watch instead of being removed and added again. On failure the old inode
 * is let go all the same: its events no longer belong to the path. */
static int attach_file(struct file_follow *f, const struct stat *st)
{
	int wd = inotify_set_add(f->path, FILE_MASK, f->id, ROLE_FILE);

	f->dev = st->st_dev;
	f->ino = st->st_ino;
	f->exists = true;
	detach_file(f);
	if (wd < 0)
		return wd;
	f->file_wd = wd;
	return 0;
}

/* Anchors at the parent directory or, with walk_up, at the nearest existing
 * ancestor while the parent is missing. */
static int anchor_nearest(struct file_follow *f, bool walk_up)
{
	char dir[FILE_FOLLOW_PATH_MAX];
	size_t len = f->parent_len;
	int wd;

	for (;;) {
		dir_prefix(f, len, dir);
		wd = inotify_set_add(dir, ANCHOR_MASK | IN_ONLYDIR, f->id, ROLE_ANCHOR);
		if (wd >= 0)
			break;
		/* ENOTDIR: a component is a file, the path cannot come to be */
		if (!walk_up || wd != -ENOENT || !len)
			return wd;
		len = up_one(f, len);
	}
	detach_anchor(f);
	f->anchor_wd = wd;
	f->anchor_len = len;
	return 0;
}

/* Is the directory one component below the anchor there? */
static bool below_anchor_exists(const struct file_follow *f)
{
	char dir[FILE_FOLLOW_PATH_MAX];
	/* anchor_len < parent_len: a '/' follows at parent_len at the latest */
	const char *slash = strchr(f->path + f->anchor_len + 1, '/');
	size_t len = slash ? (size_t)(slash - f->path) : f->parent_len;
	struct stat st;

	dir_prefix(f, len, dir);
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

/* anchor_nearest(), again while the directory below an ancestor anchor
 * exists: one created after its own watch was refused and before the
 * ancestor's was added has no record in the ancestor (`mkdir -p run/sub`
 * racing the daemon left a readiness condition anchored above run/sub for
 * good). Bounded: a directory that keeps vanishing leaves the ancestor. */
static int resolve_anchor(struct file_follow *f, bool walk_up)
{
	int err;

	for (int tries = 0;; tries++) {
		if ((err = anchor_nearest(f, walk_up)) || f->anchor_len == f->parent_len ||
		    tries == ANCHOR_TRIES || !below_anchor_exists(f))
			return err;
	}
}

/* ------------------------------------------------------------ what happened */

/* Brings the follower in line with what the path names now, where the
 * kernel's account is incomplete (overflow, the anchor directory gone, the
 * watched inode gone without a word from its directory). Reports the
 * difference: appear_kind for a file that was not there (or another file
 * than before), gone_kind for one that vanished. True when it was stopped. */
static bool sync_path(struct file_follow *f, ctld_FileEventKind gone_kind,
		      ctld_FileEventKind appear_kind)
{
	struct stat st;
	bool was = f->exists, changed;
	int err;

	/* stat() is the authority here, whatever the anchor: a file found
	 * while anchored above its parent is watched all the same. */
	if (stat(f->path, &st) != 0) {
		detach_file(f);
		f->exists = false;
		return was && report(f, gone_kind, false, false, 0);
	}
	changed = !was || st.st_dev != f->dev || st.st_ino != f->ino;
	if (changed || f->file_wd < 0) {
		if ((err = attach_file(f, &st)))
			warn_attach(f, err);
	}
	return report(f, changed ? appear_kind : K_NONE, !was, true, size_of(&st));
}

/* The file's name appeared in the parent (IN_CREATE, IN_MOVED_TO). */
static void file_appeared(struct file_follow *f, ctld_FileEventKind kind)
{
	struct stat st;
	bool was = f->exists, present = stat(f->path, &st) == 0;
	int err;

	if (present && (err = attach_file(f, &st)))
		warn_attach(f, err);
	if (!present)
		detach_file(f);
	/* The size once the file's watch exists: a write after this is a
	 * record of its own, one before it is in the size. */
	if (present && stat(f->path, &st) != 0)
		st.st_size = 0;
	/* As far as the records go the name is there; if it is gone again
	 * already, its IN_DELETE/IN_MOVED_FROM follows and is reported. */
	f->exists = true;
	if (report(f, kind, !was, present, present ? size_of(&st) : 0))
		return;
	/* Written before its own watch was there (a renamed-in file comes
	 * complete: nothing was missed). */
	if (kind == K_CREATED && present && st.st_size > 0)
		report(f, K_MODIFIED, false, true, size_of(&st));
}

/* CLOSE_WRITE or ATTRIB of the file, as its directory tells them. */
static void entry_content(struct file_follow *f, uint32_t mask)
{
	struct stat st;
	bool present = stat(f->path, &st) == 0;

	report(f, file_rules_kind_of(mask & ENTRY_CONTENT, false), false, present,
	       present ? size_of(&st) : 0);
}

/* The file's name left the parent (IN_DELETE, IN_MOVED_FROM). Not reported
 * twice: the file's own IN_DELETE_SELF can come first (it does on 6.18 when
 * nothing else holds the inode) and has reported the deletion already. */
static void file_gone(struct file_follow *f, ctld_FileEventKind kind)
{
	bool was = f->exists;

	detach_file(f);
	f->exists = false;
	if (was)
		report(f, kind, false, false, 0);
}

/* The anchor moved: re-anchor (walking up if need be) and re-check the path. */
static void relocate(struct file_follow *f, ctld_FileEventKind gone_kind)
{
	int err = resolve_anchor(f, true);

	if (err) {
		log_warn("no directory above %s can be watched: %s", f->path, strerror(-err));
		detach_anchor(f);
	}
	sync_path(f, gone_kind, K_CREATED);
}

static void on_anchor_record(struct file_follow *f, uint32_t mask, const char *name)
{
	ctld_FileEventKind kind;

	if (!name) {
		/* The directory itself went away (or was renamed). Other bits on
		 * it only come from a file-role user of the same inode. */
		if (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
			relocate(f, (mask & IN_MOVE_SELF) ? K_MOVED : K_DELETED);
		return;
	}
	if (!next_component_is(f, name))
		return;
	if (f->anchor_len != f->parent_len) {
		/* A missing directory on the way is back: go down to it. */
		if (mask & (IN_CREATE | IN_MOVED_TO))
			relocate(f, K_DELETED);
		return;
	}
	kind = file_rules_kind_of(mask, true);
	if (kind == K_NONE) {
		if ((mask & ENTRY_CONTENT) && f->exists)
			entry_content(f, mask);
		return;
	}
	if (mask & (IN_CREATE | IN_MOVED_TO))
		file_appeared(f, kind);
	else
		file_gone(f, kind);
}

static void on_file_record(struct file_follow *f, uint32_t mask, const char *name)
{
	ctld_FileEventKind kind;
	struct stat st;
	bool present;

	if (name)
		return; /* an entry inside a watched directory, not the path itself */
	if (mask & (IN_DELETE_SELF | IN_IGNORED)) {
		detach_file(f);
		sync_path(f, K_DELETED, K_CREATED);
		return;
	}
	if (mask & IN_MOVE_SELF) {
		sync_path(f, K_MOVED, K_CREATED);
		return;
	}
	kind = file_rules_kind_of(mask, false);
	if (kind == K_NONE)
		return;
	present = stat(f->path, &st) == 0;
	report(f, kind, false, present, present ? size_of(&st) : 0);
}

static void on_overflow(void)
{
	size_t it = 0;
	uint64_t id;
	void *v;

	F.overflows++;
	log_warn("inotify queue overflowed (fs.inotify.max_queued_events), %llu time(s) so far: "
		 "events were lost; rescanning %zu watched paths",
		 (unsigned long long)F.overflows, F.followers.count);
	while (idmap_next(&F.followers, &it, &id, &v)) {
		struct file_follow *f = v;
		struct stat st;
		bool present = stat(f->path, &st) == 0;
		int err;

		if (report(f, K_OVERFLOW, false, present, present ? size_of(&st) : 0))
			continue;
		/* Re-adding is also how a follower whose IN_IGNORED was lost
		 * gets a live wd again. */
		if ((err = resolve_anchor(f, true))) {
			log_warn("no directory above %s can be watched: %s", f->path,
				 strerror(-err));
			detach_anchor(f);
		}
		sync_path(f, K_DELETED, K_CREATED);
	}
}

/* A record for one follower's anchor or file, if it still holds that wd. */
static void on_record(uint64_t user, int role, int wd, uint32_t mask, const char *name)
{
	struct file_follow *f = idmap_get(&F.followers, user);

	if (!f)
		return;
	if (role == ROLE_ANCHOR && f->anchor_wd == wd)
		on_anchor_record(f, mask, name);
	else if (role == ROLE_FILE && f->file_wd == wd)
		on_file_record(f, mask, name);
}

/* The kernel dropped a wd the follower still held: point it away. */
static void on_lost(uint64_t user, int role, int wd)
{
	struct file_follow *f = idmap_get(&F.followers, user);

	if (f && role == ROLE_ANCHOR && f->anchor_wd == wd)
		f->anchor_wd = -1;
	if (f && role == ROLE_FILE && f->file_wd == wd)
		f->file_wd = -1;
}

static const struct inotify_set_ops set_ops = {
	.record = on_record,
	.lost = on_lost,
	.overflow = on_overflow,
};

/* ------------------------------------------------------------ followers */

int file_follow_start(struct file_follow *f, const char *path, size_t parent_len, bool walk_up,
		      char *failed, size_t failedlen)
{
	struct stat st;
	int err;

	if ((err = inotify_set_unavailable())) {
		copy_str(failed, failedlen, path);
		return -err;
	}
	f->id = ++F.next_id;
	copy_str(f->path, sizeof(f->path), path);
	f->parent_len = parent_len;
	f->anchor_wd = f->file_wd = -1;
	f->exists = false;
	if (idmap_put(&F.followers, f->id, f)) {
		copy_str(failed, failedlen, path);
		return -ENOMEM;
	}
	if ((err = resolve_anchor(f, walk_up))) {
		dir_prefix(f, f->parent_len, failed);
		goto fail;
	}
	if (stat(f->path, &st) != 0)
		return 0;
	err = attach_file(f, &st);
	if (err == -ENOENT) {
		f->exists = false; /* removed since the stat(): its parent will say so */
		return 0;
	}
	if (!err)
		return 0;
	copy_str(failed, failedlen, f->path);
	detach_anchor(f);
fail:
	idmap_del(&F.followers, f->id);
	return err;
}

void file_follow_stop(struct file_follow *f)
{
	if (!idmap_del(&F.followers, f->id))
		return;
	detach_file(f);
	detach_anchor(f);
}

/* ------------------------------------------------------------ life cycle */

int file_follow_init(struct loop *loop)
{
	memset(&F, 0, sizeof(F));
	F.up = true;
	idmap_init(&F.followers);
	return inotify_set_init(loop, &set_ops);
}

/* Followers should have been stopped by their owners first. */
void file_follow_shutdown(void)
{
	size_t it = 0;
	uint64_t id;
	void *v;

	if (!F.up)
		return;
	while (idmap_next(&F.followers, &it, &id, &v))
		file_follow_stop(v);
	inotify_set_shutdown();
	idmap_free(&F.followers);
	memset(&F, 0, sizeof(F));
}
