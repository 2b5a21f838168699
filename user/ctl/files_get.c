// SPDX-License-Identifier: BSD-2-Clause
/*
 * files_get.c - ctl get REMOTE LOCALDIR: REMOTE (a file, or a directory
 * walked one GetFile per directory page and per file) is written to
 * LOCALDIR/<node>/<basename of REMOTE>, each file through a temporary name
 * beside it (fsync, rename), with its mode and mtime, once its size and
 * SHA-256 are the daemon's. Received bytes are acknowledged every
 * GET_CREDIT_EVERY, so the daemon sends no faster than ctl writes.
 * Directories get their mode once their content is there (a read-only
 * directory could not be filled).
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "ctl/files.h"
#include "ctl/output.h"

static int push(struct xfer *x, const char *rel, uint64_t skip)
{
	if (x->ntodo == x->todo_cap) {
		size_t cap = x->todo_cap ? 2 * x->todo_cap : 32;
		char **v = realloc(x->todo, cap * sizeof(*v));
		uint64_t *s = v ? realloc(x->todo_skip, cap * sizeof(*s)) : NULL;

		if (v)
			x->todo = v;
		if (!s)
			return -ENOMEM;
		x->todo_skip = s;
		x->todo_cap = cap;
	}
	if (!(x->todo[x->ntodo] = strdup(rel)))
		return -ENOMEM;
	x->todo_skip[x->ntodo++] = skip;
	return 0;
}

static void get_next(struct host *h)
{
	struct xfer *x = h->xfer;
	ctld_GetFile *gf;
	char *rel;

	if (!x->ntodo) {
		/* deepest first: a parent's mode cannot lock its children out */
		for (size_t i = x->ndirs; i-- > 0;)
			if (chmod(x->dirs[i].path, x->dirs[i].mode) < 0)
				say(h, "get: cannot set the mode of %s: %s", x->dirs[i].path,
				    strerror(errno));
		host_finish(h, 0);
		return;
	}
	rel = x->todo[--x->ntodo];
	gf = &request(ctld_Request_get_file_tag)->body.get_file;
	gf->skip = x->skip = x->todo_skip[x->ntodo];
	copy_str(x->rel, sizeof(x->rel), rel);
	free(rel);
	if (!join(gf->path, sizeof(gf->path), x->remote, x->rel)) {
		say(h, "get: the remote path %s/%s is too long", x->remote, x->rel);
		host_finish(h, EXIT_USAGE);
		return;
	}
	copy_str(gf->user, sizeof(gf->user), G.args.run.user);
	host_send(h, REQ_GET);
}

/* mkdir -p: dir and its missing parents (0777 minus the umask). */
static int make_dirs(const char *dir)
{
	char path[PATH_MAX];

	if (!copy_str(path, sizeof(path), dir))
		return -ENAMETOOLONG;
	for (char *p = path + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(path, 0777) < 0 && errno != EEXIST)
			return -errno;
		if (!c)
			return 0;
		*p = c;
	}
}

/* LOCALDIR/<node>, made if needed, and the root below it. */
void get_begin(struct host *h)
{
	struct xfer *x = h->xfer;
	char dir[PATH_MAX], node[300], remote[sizeof(x->remote)];
	size_t n;
	int err;

	node_name(h, node, sizeof(node));
	if (!remote_path(h, G.args.remote, x->remote, sizeof(x->remote)) ||
	    !expand_node(h, G.args.local, dir, sizeof(dir)) || !join(dir, sizeof(dir), dir, node)) {
		say(h, "get: a path is too long");
		host_finish(h, EXIT_USAGE);
		return;
	}
	for (n = strlen(x->remote); n > 1 && x->remote[n - 1] == '/';)
		x->remote[--n] = '\0';
	copy_str(remote, sizeof(remote), x->remote);
	if ((err = make_dirs(dir))) {
		say(h, "get: cannot make %s: %s", dir, strerror(-err));
		host_finish(h, EXIT_CANTCREAT);
		return;
	}
	if (!join(x->root, sizeof(x->root), dir, basename(remote)) || push(x, "", 0)) {
		say(h, "get: a path is too long");
		host_finish(h, EXIT_USAGE);
		return;
	}
	get_next(h);
}

/* ------------------------------------------------------------ directories */

static int remember_dir(struct xfer *x, const char *path, mode_t mode)
{
	if (x->ndirs == x->dirs_cap) {
		size_t cap = x->dirs_cap ? 2 * x->dirs_cap : 16;
		struct dir_mode *v = realloc(x->dirs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->dirs = v;
		x->dirs_cap = cap;
	}
	if (!(x->dirs[x->ndirs].path = strdup(path)))
		return -ENOMEM;
	x->dirs[x->ndirs++].mode = mode;
	return 0;
}

static void got_dir(struct host *h, const ctld_GetFileReply *r, uint64_t skip)
{
	struct xfer *x = h->xfer;
	char path[PATH_MAX], rel[PATH_MAX];

	if (!join(path, sizeof(path), x->root, x->rel))
		goto too_long;
	if (!skip && ((mkdir(path, 0700) < 0 && errno != EEXIST) ||
		      remember_dir(x, path, r->mode))) {
		say(h, "get: cannot make %s: %s", path, strerror(errno));
		host_finish(h, EXIT_CANTCREAT);
		return;
	}
	if (r->more && push(x, x->rel, skip + r->entries_count))
		goto oom;
	for (pb_size_t i = 0; i < r->entries_count; i++) {
		const ctld_DirEntry *e = &r->entries[i];
		char name[sizeof(e->name)];

		if (e->kind != ctld_EntryKind_ENTRY_FILE && e->kind != ctld_EntryKind_ENTRY_DIRECTORY) {
			say(h, "get: skipping %s/%s (%s)", x->rel[0] ? x->rel : ".",
			    clean(e->name, name, sizeof(name)),
			    e->kind == ctld_EntryKind_ENTRY_SYMLINK ? "a symbolic link"
								    : "not a regular file");
			continue;
		}
		if (!e->name[0] || strchr(e->name, '/') || !strcmp(e->name, ".") ||
		    !strcmp(e->name, "..")) {
			say(h, "get: the daemon listed a bad name: %s", clean(e->name, name, sizeof(name)));
			host_finish(h, EXIT_PROTOCOL);
			return;
		}
		if (!join(rel, sizeof(rel), x->rel, e->name))
			goto too_long;
		if (push(x, rel, 0))
			goto oom;
	}
	get_next(h);
	return;
too_long:
	say(h, "get: a path below %s is too long", x->root);
	host_finish(h, EXIT_CANTCREAT);
	return;
oom:
	say(h, "out of memory");
	host_finish(h, EXIT_FAILURE_REPLY);
}

/* ------------------------------------------------------------ files */

static void start_file(struct host *h, const ctld_GetFileReply *r)
{
	struct xfer *x = h->xfer;
	char dir[PATH_MAX], base[PATH_MAX];

	if (!join(x->dest, sizeof(x->dest), x->root, x->rel)) {
		say(h, "get: a path below %s is too long", x->root);
		host_finish(h, EXIT_CANTCREAT);
		return;
	}
	copy_str(dir, sizeof(dir), x->dest);
	copy_str(base, sizeof(base), x->dest);
	snprintf(x->tmp, sizeof(x->tmp), "%s/.%.200s.ctl-%d", dirname(dir), basename(base),
		 (int)getpid());
	x->fd = open(x->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (x->fd < 0) {
		say(h, "get: cannot write %s: %s", x->tmp, strerror(errno));
		host_finish(h, EXIT_CANTCREAT);
		return;
	}
	x->transfer = r->transfer;
	x->size = r->size;
	x->done = x->credited = 0;
	x->mode = (mode_t)r->mode;
	x->mtime_ns = r->mtime_ns;
	sha256_init(&x->sha);
	progress_total(r->size);
}

void get_on_reply(struct host *h, enum req_kind kind, const ctld_Reply *r)
{
	const ctld_GetFileReply *g = &r->result.get_file;

	if (kind != REQ_GET)
		return;
	if (g->directory)
		got_dir(h, g, h->xfer->skip);
	else
		start_file(h, g);
}

static void on_data(struct host *h, const ctld_FileData *d)
{
	struct xfer *x = h->xfer;
	const uint8_t *p = d->data.bytes;
	size_t left = d->data.size;

	if (d->offset != x->done) {
		say(h, "get: %s: data at offset %llu, expected %llu", x->dest,
		    (unsigned long long)d->offset, (unsigned long long)x->done);
		host_finish(h, EXIT_PROTOCOL);
		return;
	}
	while (left) {
		ssize_t n = write(x->fd, p, left);

		if (n < 0) {
			say(h, "get: cannot write %s: %s", x->tmp, strerror(errno));
			host_finish(h, EXIT_CANTCREAT);
			return;
		}
		p += n;
		left -= (size_t)n;
	}
	sha256_update(&x->sha, d->data.bytes, d->data.size);
	x->done += d->data.size;
	progress_add(d->data.size);
	if (x->done - x->credited >= GET_CREDIT_EVERY) {
		ctld_GetCredit *c = &request(ctld_Request_get_credit_tag)->body.get_credit;

		c->transfer = x->transfer;
		c->received = x->credited = x->done;
		host_send(h, REQ_FILE_CREDIT);
	}
}

/* Size and digest as the daemon read them, then in place atomically. */
static int commit(struct xfer *x, const ctld_FileEnd *e, const char **why)
{
	uint8_t digest[SHA256_DIGEST_LEN];
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT },
				     { .tv_sec = (time_t)(x->mtime_ns / 1000000000),
				       .tv_nsec = (long)(x->mtime_ns % 1000000000) } };

	sha256_final(&x->sha, digest);
	*why = "the size or sha256 of what arrived is not what the daemon read";
	if (e->size != x->done || e->sha256.size != SHA256_DIGEST_LEN ||
	    memcmp(digest, e->sha256.bytes, SHA256_DIGEST_LEN))
		return EXIT_DATAERR;
	if (fchmod(x->fd, x->mode) < 0 || futimens(x->fd, times) < 0 || fsync(x->fd) < 0 ||
	    rename(x->tmp, x->dest) < 0) {
		*why = strerror(errno);
		return EXIT_CANTCREAT;
	}
	return 0;
}

static void on_end(struct host *h, const ctld_FileEnd *e)
{
	struct xfer *x = h->xfer;
	char text[sizeof(e->error.text)];
	const char *why;
	int status;

	if (e->has_error) {
		say(h, "get: %s/%s: %s", x->remote, x->rel, clean(e->error.text, text, sizeof(text)));
		host_finish(h, EXIT_FAILURE_REPLY);
		return;
	}
	if ((status = commit(x, e, &why))) {
		say(h, "get: %s: %s", x->dest, why);
		host_finish(h, status);
		return;
	}
	close(x->fd);
	x->fd = -1;
	get_next(h);
}

void get_on_event(struct host *h, const ctld_Event *ev)
{
	struct xfer *x = h->xfer;

	if (ev->which_kind == ctld_Event_file_data_tag && x->fd >= 0 &&
	    ev->kind.file_data.transfer == x->transfer)
		on_data(h, &ev->kind.file_data);
	else if (ev->which_kind == ctld_Event_file_end_tag && x->fd >= 0 &&
		 ev->kind.file_end.transfer == x->transfer)
		on_end(h, &ev->kind.file_end);
}

/* A file not complete is not left behind under any name. */
void get_finished(struct host *h)
{
	struct xfer *x = h->xfer;

	if (x->fd >= 0) {
		close(x->fd);
		unlink(x->tmp);
	}
	for (size_t i = 0; i < x->ntodo; i++)
		free(x->todo[i]);
	free(x->todo);
	free(x->todo_skip);
	for (size_t i = 0; i < x->ndirs; i++)
		free(x->dirs[i].path);
	free(x->dirs);
}
