// SPDX-License-Identifier: BSD-2-Clause
/*
 * file_follow.c - path followers on one inotify instance.
 *
 * A follower always holds an inotify watch on the path's parent directory
 * (its "anchor": IN_CREATE, IN_DELETE, IN_MOVED_FROM/TO, filtered by the
 * file's name) and, while a file is at the path, one on the file itself
 * (IN_MODIFY, IN_CLOSE_WRITE, IN_ATTRIB). So:
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
 * The kernel gives one watch descriptor per inode: followers of one file or
 * directory share it, each wd with the list of its users; the last one to
 * go removes it. Masks are only ever added to (IN_MASK_ADD) so a user never
 * takes bits away from another.
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
#include "daemon/core/loop.h"
#include "daemon/watch/file_follow.h"
#include "daemon/watch/file_rules.h"

#define ANCHOR_MASK                                                                                \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
#define FILE_MASK (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
/* Room for many records per read(): the largest one is 16 + NAME_MAX + 1. */
#define READ_BUF (64 * 1024)

#define K_NONE ctld_FileEventKind_FILE_NONE
#define K_CREATED ctld_FileEventKind_FILE_CREATED
#define K_DELETED ctld_FileEventKind_FILE_DELETED
#define K_MOVED ctld_FileEventKind_FILE_MOVED
#define K_OVERFLOW ctld_FileEventKind_FILE_OVERFLOW

enum role { ROLE_ANCHOR, ROLE_FILE };

/* One follower's use of a kernel watch descriptor. */
struct kuser {
	uint64_t follower;
	uint8_t role;
};

/* One kernel watch descriptor (one inode) and the followers using it. */
struct kwatch {
	int wd;
	bool dead; /* the kernel dropped it (IN_IGNORED): no inotify_rm_watch */
	struct kuser *users;
	size_t nusers, cap;
};

static struct {
	struct loop *loop;
	int fd; /* -1 when inotify is unavailable (init_errno says why) */
	int init_errno;
	bool closing;
	uint64_t next_id;
	struct idmap followers; /* id -> struct file_follow */
	struct idmap kwatches;  /* wd -> struct kwatch */
	struct kuser *snap;     /* copy of a wd's users while one record is handled */
	size_t snap_cap;
	uint64_t overflows;
} F = { .fd = -1 };

int file_follow_unavailable(void)
{
	return F.fd < 0 ? (F.init_errno ? F.init_errno : ENOSYS) : 0;
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

static void kwatch_free(struct kwatch *kw)
{
	if (!kw->dead && !F.closing)
		inotify_rm_watch(F.fd, kw->wd); /* EINVAL if the kernel dropped it already */
	idmap_del(&F.kwatches, (uint64_t)kw->wd);
	free(kw->users);
	free(kw);
}

/* Adds (or joins) the kernel watch on the inode at path for one role of one
 * follower. Returns the wd or -errno. */
static int kwatch_add(const char *path, uint32_t mask, uint64_t follower, enum role role)
{
	int wd = inotify_add_watch(F.fd, path, mask | IN_MASK_ADD);
	struct kwatch *kw;

	if (wd < 0)
		return -errno;
	kw = idmap_get(&F.kwatches, (uint64_t)wd);
	if (!kw) {
		kw = calloc(1, sizeof(*kw));
		if (!kw || idmap_put(&F.kwatches, (uint64_t)wd, kw)) {
			free(kw);
			inotify_rm_watch(F.fd, wd);
			return -ENOMEM;
		}
		kw->wd = wd;
	}
	if (kw->nusers == kw->cap) {
		size_t cap = kw->cap ? kw->cap * 2 : 2;
		struct kuser *users = realloc(kw->users, cap * sizeof(*users));

		if (!users) {
			if (!kw->nusers)
				kwatch_free(kw);
			return -ENOMEM;
		}
		kw->users = users;
		kw->cap = cap;
	}
	kw->users[kw->nusers++] = (struct kuser){ .follower = follower, .role = (uint8_t)role };
	return wd;
}

static void kwatch_release(int wd, uint64_t follower, enum role role)
{
	struct kwatch *kw = idmap_get(&F.kwatches, (uint64_t)wd);

	if (!kw)
		return;
	for (size_t i = 0; i < kw->nusers; i++) {
		if (kw->users[i].follower == follower && kw->users[i].role == role) {
			kw->users[i] = kw->users[--kw->nusers];
			break;
		}
	}
	if (!kw->nusers)
		kwatch_free(kw);
}

static void detach_file(struct file_follow *f)
{
	if (f->file_wd >= 0)
		kwatch_release(f->file_wd, f->id, ROLE_FILE);
	f->file_wd = -1;
}

static void detach_anchor(struct file_follow *f)
{
	if (f->anchor_wd >= 0)
		kwatch_release(f->anchor_wd, f->id, ROLE_ANCHOR);
	f->anchor_wd = -1;
}

/* Points the file role at the inode the path names now (st). The new wd is
 * taken before the old is released, so an unchanged inode keeps its kernel
 * watch instead of being removed and added again. On failure the old inode
 * is let go all the same: its events no longer belong to the path. */
static int attach_file(struct file_follow *f, const struct stat *st)
{
	int wd = kwatch_add(f->path, FILE_MASK, f->id, ROLE_FILE);

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
static int resolve_anchor(struct file_follow *f, bool walk_up)
{
	char dir[FILE_FOLLOW_PATH_MAX];
	size_t len = f->parent_len;
	int wd;

	for (;;) {
		dir_prefix(f, len, dir);
		wd = kwatch_add(dir, ANCHOR_MASK | IN_ONLYDIR, f->id, ROLE_ANCHOR);
		if (wd >= 0)
			break;
		if (!walk_up || (wd != -ENOENT && wd != -ENOTDIR) || !len)
			return wd;
		len = up_one(f, len);
	}
	detach_anchor(f);
	f->anchor_wd = wd;
	f->anchor_len = len;
	return 0;
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
	/* As far as the records go the name is there; if it is gone again
	 * already, its IN_DELETE/IN_MOVED_FROM follows and is reported. */
	f->exists = true;
	report(f, kind, !was, present, present ? size_of(&st) : 0);
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
	if (kind == K_NONE)
		return;
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

static int snap_reserve(size_t n)
{
	struct kuser *s;

	if (n <= F.snap_cap)
		return 0;
	s = realloc(F.snap, n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	F.snap = s;
	F.snap_cap = n;
	return 0;
}

/* After IN_IGNORED every user has normally re-anchored or detached; any
 * user left is pointed away from the dead wd before it is forgotten. */
static void kwatch_forget(int wd)
{
	struct kwatch *kw = idmap_get(&F.kwatches, (uint64_t)wd);

	if (!kw)
		return;
	for (size_t i = 0; i < kw->nusers; i++) {
		struct file_follow *f = idmap_get(&F.followers, kw->users[i].follower);

		if (f && f->anchor_wd == wd)
			f->anchor_wd = -1;
		if (f && f->file_wd == wd)
			f->file_wd = -1;
	}
	kw->dead = true;
	kwatch_free(kw);
}

static void on_record(int wd, uint32_t mask, uint32_t cookie, const char *name, void *ctx)
{
	struct kwatch *kw;
	size_t n;

	(void)cookie;
	(void)ctx;
	if (mask & IN_Q_OVERFLOW) {
		on_overflow();
		return;
	}
	kw = wd > 0 ? idmap_get(&F.kwatches, (uint64_t)wd) : NULL;
	if (!kw)
		return; /* released by us; its last records were still queued */
	if (mask & IN_IGNORED)
		kw->dead = true;
	/* Handlers stop followers and move them between wds: walk a copy, and
	 * check each user still holds this wd in that role. */
	n = kw->nusers;
	if (snap_reserve(n)) {
		log_warn("out of memory handling an inotify record for wd %d", wd);
		return;
	}
	memcpy(F.snap, kw->users, n * sizeof(*F.snap));
	for (size_t i = 0; i < n; i++) {
		struct file_follow *f = idmap_get(&F.followers, F.snap[i].follower);

		if (!f)
			continue;
		if (F.snap[i].role == ROLE_ANCHOR && f->anchor_wd == wd)
			on_anchor_record(f, mask, name);
		else if (F.snap[i].role == ROLE_FILE && f->file_wd == wd)
			on_file_record(f, mask, name);
	}
	if (mask & IN_IGNORED)
		kwatch_forget(wd);
}

static void inotify_readable(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	/* Aligned like the kernel's records, though the parser does not rely on it. */
	static char buf[READ_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));

	(void)loop;
	(void)events;
	(void)ctx;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN)
				log_warn("failed to read inotify events: %s", strerror(errno));
			return;
		}
		if (n == 0)
			return;
		if (file_rules_parse_records(buf, (size_t)n, on_record, NULL) < 0)
			log_warn("malformed inotify record: rest of a %zd-byte read skipped", n);
	}
}

/* ------------------------------------------------------------ followers */

int file_follow_start(struct file_follow *f, const char *path, size_t parent_len, char *failed,
		      size_t failedlen)
{
	struct stat st;
	int err;

	if (F.fd < 0) {
		copy_str(failed, failedlen, path);
		return -file_follow_unavailable();
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
	if ((err = resolve_anchor(f, false))) {
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
	int err;

	memset(&F, 0, sizeof(F));
	F.loop = loop;
	idmap_init(&F.followers);
	idmap_init(&F.kwatches);
	F.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (F.fd < 0) {
		F.init_errno = errno;
		log_warn("file watches are off: failed to create an inotify instance: %s%s",
			 strerror(F.init_errno),
			 F.init_errno == EMFILE ? " (fs.inotify.max_user_instances)" : "");
		return 0;
	}
	if ((err = loop_fd_add(loop, F.fd, EPOLLIN, inotify_readable, NULL))) {
		close(F.fd);
		F.fd = -1;
		return err;
	}
	return 0;
}

/* Followers must have been stopped by their owners first. */
void file_follow_shutdown(void)
{
	size_t it = 0;
	uint64_t id;
	void *v;

	if (!F.loop)
		return;
	F.closing = true; /* close() below drops every kernel watch at once */
	while (idmap_next(&F.followers, &it, &id, &v))
		file_follow_stop(v);
	it = 0;
	while (idmap_next(&F.kwatches, &it, &id, &v))
		kwatch_free(v);
	if (F.fd >= 0) {
		loop_fd_del(F.loop, F.fd);
		close(F.fd);
	}
	idmap_free(&F.followers);
	idmap_free(&F.kwatches);
	free(F.snap);
	memset(&F, 0, sizeof(F));
	F.fd = -1;
}
