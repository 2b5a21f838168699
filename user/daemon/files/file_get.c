// SPDX-License-Identifier: BSD-2-Clause
/*
 * file_get.c - see file_get.h. A transfer holds an open descriptor, how
 * far it has sent and how far the client has acknowledged, and a SHA-256
 * state. It reads 32 KiB straight into the scratch event and queues it,
 * while sent < received + window: what the daemon holds for a transfer is
 * at most one window in the client's queue, whatever the file's size.
 * Directories are listed without state: one page per GetFile, paged by
 * how many entries to skip.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "daemon/files/file_access.h"
#include "daemon/files/file_get.h"
#include "daemon/files/file_transfers.h"

#define CHUNK sizeof(((ctld_FileData *)0)->data.bytes)

struct get {
	struct transfer t; /* first: the table's view of it */
	int fd;
	uint64_t sent, received, window;
	struct sha256 sha;
};

static void get_drop(struct transfer *t)
{
	struct get *g = (struct get *)t;

	transfer_remove(t);
	close(g->fd);
	free(g);
}

static uint64_t mtime_ns(const struct stat *st)
{
	return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

/* ------------------------------------------------------------ streaming */

/* The end of the file, or the read error that stopped it (0: none). */
static void get_end(struct get *g, int err)
{
	ctld_FileEnd *e = &event_begin(ctld_Event_file_end_tag)->kind.file_end;

	e->transfer = g->t.id;
	e->size = g->sent;
	if (err) {
		e->has_error = true;
		e->error.code = ctld_ErrorCode_SYSTEM;
		e->error.sys_errno = err;
		snprintf(e->error.text, sizeof(e->error.text), "failed to read: %s",
			 strerror(err));
	} else {
		e->sha256.size = SHA256_DIGEST_LEN;
		sha256_final(&g->sha, e->sha256.bytes);
	}
	event_send(g->t.session);
	get_drop(&g->t);
}

/* Sends what the window allows; ends the transfer at end of file. */
static void get_pump(struct get *g)
{
	while (g->sent < g->received + g->window) {
		ctld_FileData *d = &event_begin(ctld_Event_file_data_tag)->kind.file_data;
		ssize_t n = read(g->fd, d->data.bytes, CHUNK);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			get_end(g, n < 0 ? errno : 0);
			return;
		}
		d->transfer = g->t.id;
		d->offset = g->sent;
		d->data.size = (pb_size_t)n;
		sha256_update(&g->sha, d->data.bytes, (size_t)n);
		g->sent += (uint64_t)n;
		if (event_send(g->t.session) == -ENOENT) { /* the client is gone */
			get_drop(&g->t);
			return;
		}
	}
}

/* ------------------------------------------------------------ GetFile */

static ctld_EntryKind entry_kind(mode_t mode)
{
	if (S_ISREG(mode))
		return ctld_EntryKind_ENTRY_FILE;
	if (S_ISDIR(mode))
		return ctld_EntryKind_ENTRY_DIRECTORY;
	if (S_ISLNK(mode))
		return ctld_EntryKind_ENTRY_SYMLINK;
	return ctld_EntryKind_ENTRY_OTHER;
}

/* One page of entries, after `skip` of them, in the directory's order. */
static int list_page(int fd, uint64_t skip, ctld_GetFileReply *out)
{
	DIR *d = fdopendir(fd);
	struct dirent *e;
	uint64_t seen = 0;
	const size_t max = sizeof(out->entries) / sizeof(out->entries[0]);

	if (!d)
		return -errno;
	errno = 0;
	while ((e = readdir(d))) {
		ctld_DirEntry *de;
		struct stat st;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || seen++ < skip)
			continue;
		if (out->entries_count == max) {
			out->more = true;
			break;
		}
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone since readdir */
		de = &out->entries[out->entries_count++];
		snprintf(de->name, sizeof(de->name), "%s", e->d_name);
		de->kind = entry_kind(st.st_mode);
		de->mode = st.st_mode & 07777;
		de->size = (uint64_t)st.st_size;
		de->mtime_ns = mtime_ns(&st);
	}
	closedir(d); /* closes fd */
	return 0;
}

static int open_as(const ctld_GetFile *req, const struct file_user *u, struct stat *st)
{
	int fd, err;

	if ((err = file_user_enter(u)))
		return err;
	/* O_NONBLOCK: opening a fifo must not hang the daemon */
	fd = open(req->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	err = fd < 0 ? -errno : 0;
	file_user_leave(u);
	if (err)
		return err;
	if (fstat(fd, st) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void start_file(struct request_ctx *ctx, int fd, const struct stat *st, uint32_t window)
{
	struct get *g = calloc(1, sizeof(*g));
	ctld_Reply *r;
	int err;

	if (g && transfers_of_kind(get_drop) >= FILE_GETS_MAX)
		err = -EMFILE;
	else
		err = g ? transfer_add(&g->t, ctx->session) : -ENOMEM;
	if (err) {
		free(g);
		close(fd);
		if (err == -EMFILE)
			reply_error(ctx, ctld_ErrorCode_LIMIT, 0,
				    "too many gets at once (%u in the daemon, each holding up to its "
				    "window)", FILE_GETS_MAX);
		else
			transfer_refused(ctx, err);
		return;
	}
	g->t.drop = get_drop;
	g->fd = fd;
	g->window = window ? window : FILE_GET_WINDOW;
	sha256_init(&g->sha);
	r = reply_begin(ctx);
	r->which_result = ctld_Reply_get_file_tag;
	r->result.get_file = (ctld_GetFileReply){ .transfer = g->t.id, .mode = st->st_mode & 07777,
						  .size = (uint64_t)st->st_size,
						  .mtime_ns = mtime_ns(st) };
	reply_send(ctx);
	get_pump(g); /* the reply comes before the first FileData */
}

static int get_check(const ctld_GetFile *req, struct file_user *u, char *err, size_t errlen)
{
	if (file_path_check(req->path, err, errlen))
		return -EINVAL;
	if (req->window > FILE_GET_WINDOW) {
		snprintf(err, errlen, "window %u is above %u", req->window, FILE_GET_WINDOW);
		return -EINVAL;
	}
	return file_user_resolve(req->user, u, err, errlen);
}

void file_get_handle(struct request_ctx *ctx, const ctld_GetFile *req)
{
	char err[200];
	struct file_user u;
	struct stat st;
	int fd;

	if (get_check(req, &u, err, sizeof(err))) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EINVAL, "GetFile: %s", err);
		return;
	}
	if ((fd = open_as(req, &u, &st)) < 0) {
		reply_error(ctx, file_errno_code(-fd), -fd, "failed to open %.400s: %s", req->path,
			    strerror(-fd));
		return;
	}
	if (S_ISREG(st.st_mode)) {
		start_file(ctx, fd, &st, req->window < CHUNK && req->window ? CHUNK : req->window);
	} else if (S_ISDIR(st.st_mode)) {
		ctld_Reply *r = reply_begin(ctx);
		ctld_GetFileReply *gr = &r->result.get_file;
		int ret;

		r->which_result = ctld_Reply_get_file_tag;
		gr->directory = true;
		gr->mode = st.st_mode & 07777;
		gr->mtime_ns = mtime_ns(&st);
		if ((ret = list_page(fd, req->skip, gr))) /* list_page owns fd */
			reply_error(ctx, ctld_ErrorCode_SYSTEM, -ret, "failed to list %.400s: %s",
				    req->path, strerror(-ret));
		else
			reply_send(ctx);
	} else {
		close(fd);
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EINVAL,
			    "%.400s is not a regular file or a directory", req->path);
	}
}

void file_get_handle_credit(struct request_ctx *ctx, const ctld_GetCredit *req)
{
	struct get *g = (struct get *)transfer_find(req->transfer, ctx->session, get_drop);

	if (!g) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "no such transfer: %llu (it ended)",
			    (unsigned long long)req->transfer);
		return;
	}
	if (req->received > g->sent || req->received < g->received) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EINVAL,
			    "GetCredit: received %llu, but %llu were sent and %llu acknowledged",
			    (unsigned long long)req->received, (unsigned long long)g->sent,
			    (unsigned long long)g->received);
		return;
	}
	g->received = req->received;
	reply_ok(ctx);
	get_pump(g);
}
