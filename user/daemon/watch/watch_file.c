// SPDX-License-Identifier: BSD-2-Clause
/*
 * watch_file.c - file watches on one inotify instance.
 *
 * A watch follows a *path*, not an inode. It always holds an inotify watch
 * on the path's parent directory (its "anchor": IN_CREATE, IN_DELETE,
 * IN_MOVED_FROM/TO, filtered by the file's name) and, while a file is at the
 * path, one on the file itself (IN_MODIFY, IN_CLOSE_WRITE, IN_ATTRIB). So:
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
 * missing directories reappear. (Creating a watch still requires the parent:
 * a typo in a directory name is an error, not a silent wait.)
 *
 * The kernel gives one watch descriptor per inode: watches of one file or
 * directory (one client's or several) share it, each wd with the list of its
 * users; the last one to go removes it. Masks are only ever added to
 * (IN_MASK_ADD) so a user never takes bits away from another.
 *
 * Events are reported as the kernel reports them, one FileEvent per record,
 * with the size stat() sees afterwards; only a removal, which both the file
 * (IN_DELETE_SELF) and its directory (IN_DELETE) report, is sent once.
 *
 * After IN_Q_OVERFLOW every watch gets FILE_OVERFLOW, then the daemon
 * re-reads the truth: it re-adds the kernel watches and reports
 * CREATED/DELETED where the path's existence changed while records were lost
 * (events may then repeat: at least once, not exactly once). FILE_OVERFLOW
 * neither ends a `once` watch nor counts as the event that stops its
 * timeout: the watch has not seen its event yet.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/core/idmap.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/clients/session.h"
#include "common/util.h"
#include "daemon/watch/watch_file.h"

#define PATH_CAP sizeof(((ctld_FileEvent *)0)->path)
#define ANCHOR_MASK                                                                                \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
#define FILE_MASK (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
/* Room for many records per read(): the largest one is 16 + NAME_MAX + 1. */
#define READ_BUF (64 * 1024)

#define K_NONE ctld_FileEventKind_FILE_NONE
#define K_CREATED ctld_FileEventKind_FILE_CREATED
#define K_MODIFIED ctld_FileEventKind_FILE_MODIFIED
#define K_CLOSED_WRITE ctld_FileEventKind_FILE_CLOSED_WRITE
#define K_DELETED ctld_FileEventKind_FILE_DELETED
#define K_MOVED ctld_FileEventKind_FILE_MOVED
#define K_ATTRIB ctld_FileEventKind_FILE_ATTRIB
#define K_SIZE ctld_FileEventKind_FILE_SIZE_REACHED
#define K_OVERFLOW ctld_FileEventKind_FILE_OVERFLOW

enum role { ROLE_ANCHOR, ROLE_FILE };

/* One watch's use of a kernel watch descriptor. */
struct kuser {
	uint64_t watch;
	uint8_t role;
};

/* One kernel watch descriptor (one inode) and the watches using it. */
struct kwatch {
	int wd;
	bool dead; /* the kernel dropped it (IN_IGNORED): no inotify_rm_watch */
	struct kuser *users;
	size_t nusers, cap;
};

struct watch {
	uint64_t id;
	uint64_t session;
	char path[PATH_CAP]; /* normalised, absolute */
	size_t parent_len;   /* path[0, parent_len) is the parent directory; 0 = "/" */
	size_t anchor_len;   /* the directory watched: parent_len, or an ancestor's length */
	int anchor_wd;       /* -1 when no directory could be watched */
	int file_wd;         /* -1 while no file is at the path */
	bool exists;         /* a file is at the path, as records and stat() last told */
	dev_t dev;
	ino_t ino;
	uint32_t kinds; /* what is delivered, see watch_file_effective_kinds() */
	bool once;
	bool has_threshold, threshold_fired;
	uint64_t threshold;
	struct loop_timer timer;
};

struct client {
	uint32_t watches;
};

static struct {
	struct loop *loop;
	int fd; /* -1 when inotify is unavailable (init_errno says why) */
	int init_errno;
	uint32_t max_per_client;
	bool closing;
	struct idmap watches;  /* watch id -> struct watch */
	struct idmap kwatches; /* wd -> struct kwatch */
	struct idmap clients;  /* session -> struct client */
	struct kuser *snap;    /* copy of a wd's users while one record is handled */
	size_t snap_cap;
	uint64_t overflows;
	ctld_Message msg; /* scratch for events */
} W = { .fd = -1 };

/* ------------------------------------------------------------ pure helpers */

int watch_file_normalize_path(const char *in, char *out, size_t cap, size_t *parent_len)
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

int watch_file_effective_kinds(uint32_t kinds, bool has_threshold, uint32_t *out)
{
	if (kinds & ~WATCH_FILE_KINDS_ALL)
		return -EINVAL;
	if ((kinds & K_SIZE) && !has_threshold)
		return -EINVAL;
	*out = kinds ? kinds : WATCH_FILE_KINDS_DEFAULT;
	*out |= K_OVERFLOW | (has_threshold ? K_SIZE : 0);
	return 0;
}

ctld_FileEventKind watch_file_kind_of(uint32_t mask, bool named)
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

ctld_FileEventKind watch_file_deliver_kind(ctld_FileEventKind kind, uint32_t wanted, bool appeared)
{
	if (kind == K_NONE)
		return K_NONE;
	if (wanted & (uint32_t)kind)
		return kind;
	if (kind == K_MOVED && appeared && (wanted & K_CREATED))
		return K_CREATED;
	return K_NONE;
}

bool watch_file_threshold_due(bool has_threshold, bool fired, uint64_t threshold, uint64_t size)
{
	return has_threshold && !fired && size >= threshold;
}

ssize_t watch_file_parse_records(const void *buf, size_t len, watch_file_record_fn fn, void *ctx)
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

/* ------------------------------------------------------------ path pieces */

/* The directory path[0, len) as a C string ("/" for len 0). */
static void dir_prefix(const struct watch *w, size_t len, char *out)
{
	if (!len) {
		strcpy(out, "/");
		return;
	}
	memcpy(out, w->path, len);
	out[len] = '\0';
}

/* Length of the directory above path[0, len). */
static size_t up_one(const struct watch *w, size_t len)
{
	while (len && w->path[len - 1] != '/')
		len--;
	return len ? len - 1 : 0;
}

/* Is name the path component right below the anchor directory? */
static bool next_component_is(const struct watch *w, const char *name)
{
	const char *c = w->path + w->anchor_len + 1;
	const char *end = strchr(c, '/');
	size_t n = end ? (size_t)(end - c) : strlen(c);

	return strlen(name) == n && memcmp(name, c, n) == 0;
}

/* ------------------------------------------------------------ kernel watches */

static void kwatch_free(struct kwatch *kw)
{
	if (!kw->dead && !W.closing)
		inotify_rm_watch(W.fd, kw->wd); /* EINVAL if the kernel dropped it already */
	idmap_del(&W.kwatches, (uint64_t)kw->wd);
	free(kw->users);
	free(kw);
}

/* Adds (or joins) the kernel watch on the inode at path for one role of one
 * watch. Returns the wd or -errno. */
static int kwatch_add(const char *path, uint32_t mask, uint64_t watch, enum role role)
{
	int wd = inotify_add_watch(W.fd, path, mask | IN_MASK_ADD);
	struct kwatch *kw;

	if (wd < 0)
		return -errno;
	kw = idmap_get(&W.kwatches, (uint64_t)wd);
	if (!kw) {
		kw = calloc(1, sizeof(*kw));
		if (!kw || idmap_put(&W.kwatches, (uint64_t)wd, kw)) {
			free(kw);
			inotify_rm_watch(W.fd, wd);
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
	kw->users[kw->nusers++] = (struct kuser){ .watch = watch, .role = (uint8_t)role };
	return wd;
}

static void kwatch_release(int wd, uint64_t watch, enum role role)
{
	struct kwatch *kw = idmap_get(&W.kwatches, (uint64_t)wd);

	if (!kw)
		return;
	for (size_t i = 0; i < kw->nusers; i++) {
		if (kw->users[i].watch == watch && kw->users[i].role == role) {
			kw->users[i] = kw->users[--kw->nusers];
			break;
		}
	}
	if (!kw->nusers)
		kwatch_free(kw);
}

static void detach_file(struct watch *w)
{
	if (w->file_wd >= 0)
		kwatch_release(w->file_wd, w->id, ROLE_FILE);
	w->file_wd = -1;
}

static void detach_anchor(struct watch *w)
{
	if (w->anchor_wd >= 0)
		kwatch_release(w->anchor_wd, w->id, ROLE_ANCHOR);
	w->anchor_wd = -1;
}

/* Points the watch's file role at the inode the path names now (st). The new
 * wd is taken before the old is released, so an unchanged inode keeps its
 * kernel watch instead of being removed and added again. On failure the old
 * inode is let go all the same: its events no longer belong to the path. */
static int attach_file(struct watch *w, const struct stat *st)
{
	int wd = kwatch_add(w->path, FILE_MASK, w->id, ROLE_FILE);

	w->dev = st->st_dev;
	w->ino = st->st_ino;
	w->exists = true;
	detach_file(w);
	if (wd < 0)
		return wd;
	w->file_wd = wd;
	return 0;
}

/* Anchors the watch at its parent directory or, with walk_up, at the nearest
 * existing ancestor while the parent is missing. */
static int resolve_anchor(struct watch *w, bool walk_up)
{
	char dir[PATH_CAP];
	size_t len = w->parent_len;
	int wd;

	for (;;) {
		dir_prefix(w, len, dir);
		wd = kwatch_add(dir, ANCHOR_MASK | IN_ONLYDIR, w->id, ROLE_ANCHOR);
		if (wd >= 0)
			break;
		if (!walk_up || (wd != -ENOENT && wd != -ENOTDIR) || !len)
			return wd;
		len = up_one(w, len);
	}
	detach_anchor(w);
	w->anchor_wd = wd;
	w->anchor_len = len;
	return 0;
}

/* ------------------------------------------------------------ watch life */

static struct client *client_of(uint64_t session)
{
	return idmap_get(&W.clients, session);
}

static void end_watch(struct watch *w)
{
	struct client *c = client_of(w->session);

	loop_timer_disarm(W.loop, &w->timer);
	detach_file(w);
	detach_anchor(w);
	idmap_del(&W.watches, w->id);
	if (c && c->watches && !--c->watches) {
		idmap_del(&W.clients, w->session);
		free(c);
	}
	log_debug("file watch %llu on %s: ended", (unsigned long long)w->id, w->path);
	free(w);
}

/* Sends one FileEvent if the watch delivers that kind. Returns true when it
 * ended the watch (once): the caller must not touch w again. */
static bool emit(struct watch *w, ctld_FileEventKind kind, bool appeared, uint64_t size)
{
	ctld_FileEvent *fe = &W.msg.kind.event.kind.file_event;

	kind = watch_file_deliver_kind(kind, w->kinds, appeared);
	if (kind == K_NONE)
		return false;
	W.msg.which_kind = ctld_Message_event_tag;
	W.msg.kind.event.which_kind = ctld_Event_file_event_tag;
	memset(fe, 0, sizeof(*fe)); /* only the member sent, not the whole Message */
	fe->watch = w->id;
	copy_str(fe->path, sizeof(fe->path), w->path);
	fe->kind = kind;
	fe->size = size;
	/* A gone session is cleaned up by its client_gone hook, not here. */
	session_send(w->session, &W.msg);
	if (kind == K_OVERFLOW)
		return false;
	loop_timer_disarm(W.loop, &w->timer);
	if (!w->once)
		return false;
	end_watch(w);
	return true;
}

static bool check_threshold(struct watch *w, uint64_t size)
{
	if (!watch_file_threshold_due(w->has_threshold, w->threshold_fired, w->threshold, size))
		return false;
	w->threshold_fired = true;
	return emit(w, K_SIZE, false, size);
}

static void watch_timed_out(struct loop *loop, void *ctx)
{
	struct watch *w = ctx;

	(void)loop;
	W.msg.which_kind = ctld_Message_event_tag;
	W.msg.kind.event.which_kind = ctld_Event_watch_timeout_tag;
	W.msg.kind.event.kind.watch_timeout = (ctld_WatchTimeout){ .watch = w->id };
	session_send(w->session, &W.msg);
	end_watch(w);
}

static uint64_t size_of(const struct stat *st)
{
	return st->st_size > 0 ? (uint64_t)st->st_size : 0;
}

static void warn_attach(const struct watch *w, int err)
{
	if (err != -ENOENT)
		log_warn("file watch %llu: failed to watch %s: %s", (unsigned long long)w->id,
			 w->path, strerror(-err));
}

/* ------------------------------------------------------------ what happened */

/* Brings the watch in line with what the path names now, where the kernel's
 * account is incomplete (overflow, the anchor directory gone, the watched
 * inode gone without a word from its directory). Reports the difference:
 * appear_kind for a file that was not there (or another file than before),
 * gone_kind for one that vanished. Returns true when the watch ended. */
static bool sync_path(struct watch *w, ctld_FileEventKind gone_kind, ctld_FileEventKind appear_kind)
{
	struct stat st;
	bool was = w->exists, changed;
	int err;

	/* stat() is the authority here, whatever the anchor: a file found
	 * while anchored above its parent is watched all the same. */
	if (stat(w->path, &st) != 0) {
		detach_file(w);
		w->exists = false;
		return was && emit(w, gone_kind, false, 0);
	}
	changed = !was || st.st_dev != w->dev || st.st_ino != w->ino;
	if (changed || w->file_wd < 0) {
		if ((err = attach_file(w, &st)))
			warn_attach(w, err);
	}
	if (changed && emit(w, appear_kind, !was, size_of(&st)))
		return true;
	return check_threshold(w, size_of(&st));
}

/* The file's name appeared in the parent (IN_CREATE, IN_MOVED_TO). */
static void file_appeared(struct watch *w, ctld_FileEventKind kind)
{
	struct stat st;
	bool was = w->exists, present = stat(w->path, &st) == 0;
	int err;

	if (present && (err = attach_file(w, &st)))
		warn_attach(w, err);
	if (!present)
		detach_file(w);
	/* As far as the records go the name is there; if it is gone again
	 * already, its IN_DELETE/IN_MOVED_FROM follows and is reported. */
	w->exists = true;
	if (emit(w, kind, !was, present ? size_of(&st) : 0))
		return;
	if (present)
		check_threshold(w, size_of(&st));
}

/* The file's name left the parent (IN_DELETE, IN_MOVED_FROM). Not reported
 * twice: the file's own IN_DELETE_SELF can come first (it does on 6.18 when
 * nothing else holds the inode) and has reported the deletion already. */
static void file_gone(struct watch *w, ctld_FileEventKind kind)
{
	bool was = w->exists;

	detach_file(w);
	w->exists = false;
	if (was)
		emit(w, kind, false, 0);
}

/* The anchor moved: re-anchor (walking up if need be) and re-check the path. */
static void relocate(struct watch *w, ctld_FileEventKind gone_kind)
{
	int err = resolve_anchor(w, true);

	if (err) {
		log_warn("file watch %llu: no directory above %s can be watched: %s",
			 (unsigned long long)w->id, w->path, strerror(-err));
		detach_anchor(w);
	}
	sync_path(w, gone_kind, K_CREATED);
}

static void on_anchor_record(struct watch *w, uint32_t mask, const char *name)
{
	ctld_FileEventKind kind;

	if (!name) {
		/* The directory itself went away (or was renamed). Other bits on
		 * it only come from a file-role user of the same inode. */
		if (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
			relocate(w, (mask & IN_MOVE_SELF) ? K_MOVED : K_DELETED);
		return;
	}
	if (!next_component_is(w, name))
		return;
	if (w->anchor_len != w->parent_len) {
		/* A missing directory on the way is back: go down to it. */
		if (mask & (IN_CREATE | IN_MOVED_TO))
			relocate(w, K_DELETED);
		return;
	}
	kind = watch_file_kind_of(mask, true);
	if (kind == K_NONE)
		return;
	if (mask & (IN_CREATE | IN_MOVED_TO))
		file_appeared(w, kind);
	else
		file_gone(w, kind);
}

static void on_file_record(struct watch *w, uint32_t mask, const char *name)
{
	ctld_FileEventKind kind;
	struct stat st;
	bool present;

	if (name)
		return; /* an entry inside a watched directory, not the path itself */
	if (mask & (IN_DELETE_SELF | IN_IGNORED)) {
		detach_file(w);
		sync_path(w, K_DELETED, K_CREATED);
		return;
	}
	if (mask & IN_MOVE_SELF) {
		sync_path(w, K_MOVED, K_CREATED);
		return;
	}
	kind = watch_file_kind_of(mask, false);
	if (kind == K_NONE)
		return;
	present = stat(w->path, &st) == 0;
	if (emit(w, kind, false, present ? size_of(&st) : 0))
		return;
	if (present)
		check_threshold(w, size_of(&st));
}

static void on_overflow(void)
{
	size_t it = 0;
	uint64_t id;
	void *v;

	W.overflows++;
	log_warn("inotify queue overflowed (fs.inotify.max_queued_events), %llu time(s) so far: "
		 "events were lost; rescanning %zu file watches",
		 (unsigned long long)W.overflows, W.watches.count);
	while (idmap_next(&W.watches, &it, &id, &v)) {
		struct watch *w = v;
		struct stat st;
		int err;

		emit(w, K_OVERFLOW, false, stat(w->path, &st) == 0 ? size_of(&st) : 0);
		/* Re-adding is also how a watch whose IN_IGNORED was lost
		 * gets a live wd again. */
		if ((err = resolve_anchor(w, true))) {
			log_warn("file watch %llu: no directory above %s can be watched: %s",
				 (unsigned long long)w->id, w->path, strerror(-err));
			detach_anchor(w);
		}
		sync_path(w, K_DELETED, K_CREATED);
	}
}

static int snap_reserve(size_t n)
{
	struct kuser *s;

	if (n <= W.snap_cap)
		return 0;
	s = realloc(W.snap, n * sizeof(*s));
	if (!s)
		return -ENOMEM;
	W.snap = s;
	W.snap_cap = n;
	return 0;
}

/* After IN_IGNORED every user has normally re-anchored or detached; any
 * user left is pointed away from the dead wd before it is forgotten. */
static void kwatch_forget(int wd)
{
	struct kwatch *kw = idmap_get(&W.kwatches, (uint64_t)wd);

	if (!kw)
		return;
	for (size_t i = 0; i < kw->nusers; i++) {
		struct watch *w = idmap_get(&W.watches, kw->users[i].watch);

		if (w && w->anchor_wd == wd)
			w->anchor_wd = -1;
		if (w && w->file_wd == wd)
			w->file_wd = -1;
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
	kw = wd > 0 ? idmap_get(&W.kwatches, (uint64_t)wd) : NULL;
	if (!kw)
		return; /* released by us; its last records were still queued */
	if (mask & IN_IGNORED)
		kw->dead = true;
	/* Handlers end watches and move them between wds: walk a copy, and
	 * check each user still holds this wd in that role. */
	n = kw->nusers;
	if (snap_reserve(n)) {
		log_warn("out of memory handling an inotify record for wd %d", wd);
		return;
	}
	memcpy(W.snap, kw->users, n * sizeof(*W.snap));
	for (size_t i = 0; i < n; i++) {
		struct watch *w = idmap_get(&W.watches, W.snap[i].watch);

		if (!w)
			continue;
		if (W.snap[i].role == ROLE_ANCHOR && w->anchor_wd == wd)
			on_anchor_record(w, mask, name);
		else if (W.snap[i].role == ROLE_FILE && w->file_wd == wd)
			on_file_record(w, mask, name);
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
		if (watch_file_parse_records(buf, (size_t)n, on_record, NULL) < 0)
			log_warn("malformed inotify record: rest of a %zd-byte read skipped", n);
	}
}

/* ------------------------------------------------------------ requests */

/* Answers the errors inotify_add_watch() can give for what is in path. */
static void reply_add_error(struct request_ctx *ctx, int err, const char *path)
{
	switch (err) {
	case -ENOENT:
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, ENOENT, "directory %s does not exist",
			    path);
		break;
	case -ENOTDIR:
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, ENOTDIR, "%s is not a directory", path);
		break;
	case -EACCES:
		reply_error(ctx, ctld_ErrorCode_PERMISSION, EACCES, "permission denied: %s", path);
		break;
	case -ENOSPC:
		reply_error(ctx, ctld_ErrorCode_LIMIT, ENOSPC,
			    "inotify watch limit reached (fs.inotify.max_user_watches)");
		break;
	default:
		reply_error(ctx, ctld_ErrorCode_SYSTEM, -err, "failed to watch %s: %s", path,
			    strerror(-err));
	}
}

/* Checks the request and fills w from it; replies and returns false if bad. */
static bool parse_request(struct request_ctx *ctx, const ctld_WatchFile *req, struct watch *w)
{
	struct client *c = client_of(ctx->session);
	int err;

	if (req->kinds & ~WATCH_FILE_KINDS_ALL) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, 0,
			    "unknown bits 0x%x in kinds (FileEventKind values OR-ed together)",
			    req->kinds & ~WATCH_FILE_KINDS_ALL);
		return false;
	}
	if (watch_file_effective_kinds(req->kinds, req->has_size_threshold, &w->kinds)) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, 0,
			    "FILE_SIZE_REACHED needs a size_threshold");
		return false;
	}
	err = watch_file_normalize_path(req->path, w->path, sizeof(w->path), &w->parent_len);
	if (err == -ENAMETOOLONG) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, ENAMETOOLONG, "path is too long");
		return false;
	}
	if (err && req->path[0] != '/') {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, 0, "path \"%s\" is not absolute",
			    req->path);
		return false;
	}
	if (err && strstr(req->path, "..")) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, 0,
			    "path %s: \"..\" is not allowed (give the path without it)", req->path);
		return false;
	}
	if (err) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, 0, "path %s names no file", req->path);
		return false;
	}
	if (c && c->watches >= W.max_per_client) {
		reply_error(ctx, ctld_ErrorCode_LIMIT, 0,
			    "at most %u file watches per client (--max-watches)", W.max_per_client);
		return false;
	}
	w->session = ctx->session;
	w->once = req->once;
	w->has_threshold = req->has_size_threshold;
	w->threshold = req->size_threshold;
	return true;
}

/* Adds the kernel watches of a new watch; replies and returns false if not. */
static bool start_watching(struct request_ctx *ctx, struct watch *w)
{
	char dir[PATH_CAP];
	struct stat st;
	int err = resolve_anchor(w, false);

	if (err) {
		dir_prefix(w, w->parent_len, dir);
		reply_add_error(ctx, err, dir);
		return false;
	}
	if (stat(w->path, &st) != 0)
		return true;
	err = attach_file(w, &st);
	if (err == -ENOENT) {
		w->exists = false; /* removed since the stat(): its parent will say so */
		return true;
	}
	if (err) {
		reply_add_error(ctx, err, w->path);
		detach_anchor(w);
		return false;
	}
	return true;
}

/* Records the watch as the client's; 0 or -ENOMEM. */
static int register_watch(struct watch *w, uint32_t timeout_ms)
{
	struct client *c = client_of(w->session);
	bool new_client = !c;

	if (new_client && (!(c = calloc(1, sizeof(*c))) || idmap_put(&W.clients, w->session, c))) {
		free(c);
		return -ENOMEM;
	}
	if (idmap_put(&W.watches, w->id, w)) {
		idmap_del(&W.watches, w->id);
		if (new_client) {
			idmap_del(&W.clients, w->session);
			free(c);
		}
		return -ENOMEM;
	}
	c->watches++;
	if (timeout_ms)
		loop_timer_arm_in(W.loop, &w->timer, timeout_ms * NSEC_PER_MSEC);
	return 0;
}

void watch_file_handle_watch(struct request_ctx *ctx, const ctld_WatchFile *req)
{
	struct watch *w;
	ctld_Reply *r;
	struct stat st;

	if (W.fd < 0) {
		reply_error(ctx, ctld_ErrorCode_UNSUPPORTED, W.init_errno,
			    "file watches are off: inotify is not available (%s)",
			    strerror(W.init_errno));
		return;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return;
	}
	w->anchor_wd = w->file_wd = -1;
	w->id = watch_id_next(); /* never reused, even if this request fails */
	loop_timer_init(&w->timer, watch_timed_out, w);
	if (!parse_request(ctx, req, w) || !start_watching(ctx, w)) {
		free(w);
		return;
	}
	if (register_watch(w, req->timeout_ms)) {
		detach_file(w);
		detach_anchor(w);
		free(w);
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return;
	}
	log_debug("file watch %llu on %s for client %s (%s)", (unsigned long long)w->id, w->path,
		  session_peer(ctx->session), w->exists ? "exists" : "not there yet");
	r = reply_begin(ctx);
	r->which_result = ctld_Reply_watch_tag;
	r->result.watch.watch = w->id;
	reply_send(ctx);
	/* Already big enough: the event follows the reply at once. */
	if (w->exists && stat(w->path, &st) == 0)
		check_threshold(w, size_of(&st));
}

void watch_file_handle_unwatch(struct request_ctx *ctx, const ctld_UnwatchFile *req)
{
	struct watch *w = idmap_get(&W.watches, req->watch);

	if (!w || w->session != ctx->session) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "no file watch %llu of this client",
			    (unsigned long long)req->watch);
		return;
	}
	end_watch(w);
	reply_ok(ctx);
}

void watch_file_client_gone(uint64_t session)
{
	size_t it = 0;
	uint64_t id;
	void *v;

	if (!client_of(session))
		return;
	while (idmap_next(&W.watches, &it, &id, &v)) {
		struct watch *w = v;

		if (w->session == session)
			end_watch(w);
	}
}

void watch_file_each(void (*fn)(const ctld_WatchInfo *info, void *ctx), void *ctx)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&W.watches, &it, &id, &value);) {
		const struct watch *w = value;
		ctld_WatchInfo info = ctld_WatchInfo_init_zero;

		info.watch = w->id;
		info.kind = ctld_WatchKind_WATCH_FILE;
		info.client = w->session;
		copy_str(info.client_peer, sizeof(info.client_peer), session_peer(w->session));
		copy_str(info.path, sizeof(info.path), w->path);
		info.kinds = w->kinds;
		info.has_size_threshold = w->has_threshold;
		info.size_threshold = w->threshold;
		info.once = w->once;
		fn(&info, ctx);
	}
}

void watch_file_fill_stats(ctld_StatsReply *st)
{
	st->file_watches = (uint32_t)W.watches.count;
}

/* ------------------------------------------------------------ life cycle */

int watch_file_init(struct loop *loop, uint32_t max_per_client)
{
	int err;

	memset(&W, 0, sizeof(W));
	W.loop = loop;
	W.max_per_client = max_per_client;
	idmap_init(&W.watches);
	idmap_init(&W.kwatches);
	idmap_init(&W.clients);
	W.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (W.fd < 0) {
		W.init_errno = errno;
		log_warn("file watches are off: failed to create an inotify instance: %s%s",
			 strerror(W.init_errno),
			 W.init_errno == EMFILE ? " (fs.inotify.max_user_instances)" : "");
		return 0;
	}
	if ((err = loop_fd_add(loop, W.fd, EPOLLIN, inotify_readable, NULL))) {
		close(W.fd);
		W.fd = -1;
		return err;
	}
	return 0;
}

void watch_file_shutdown(void)
{
	size_t it = 0;
	uint64_t id;
	void *v;

	if (!W.loop)
		return;
	W.closing = true; /* close() below drops every kernel watch at once */
	while (idmap_next(&W.watches, &it, &id, &v))
		end_watch(v);
	it = 0;
	while (idmap_next(&W.kwatches, &it, &id, &v))
		kwatch_free(v);
	it = 0;
	while (idmap_next(&W.clients, &it, &id, &v))
		free(v);
	if (W.fd >= 0) {
		loop_fd_del(W.loop, W.fd);
		close(W.fd);
	}
	idmap_free(&W.watches);
	idmap_free(&W.kwatches);
	idmap_free(&W.clients);
	free(W.snap);
	memset(&W, 0, sizeof(W));
	W.fd = -1;
}
