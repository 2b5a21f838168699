// SPDX-License-Identifier: BSD-2-Clause
/*
 * file_put.c - see file_put.h. One struct put per transfer, found by id;
 * it holds two descriptors (the directory, for renameat and its fsync,
 * and the temporary file) and a SHA-256 state, never the data: each chunk
 * is written from the decoded request as it arrives, so memory does not
 * depend on the file's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/files/file_access.h"
#include "daemon/files/file_put.h"
#include "daemon/files/file_transfers.h"

struct put {
	struct transfer t; /* first: the table's view of it */
	int dirfd, fd;
	char path[sizeof(((ctld_PutFile *)0)->path)]; /* for messages */
	char name[256], tmp[256];		      /* in dirfd */
	struct file_user user;
	uint32_t mode;
	uint64_t size, written, mtime_ns;
	struct sha256 sha;
	bool resumable; /* PutFile.resume: parked, not dropped, when its client goes */
};

/* Parked puts kept at most in the daemon; the oldest goes for a newer one. */
#define PUT_PARKED_MAX 16

/* Ends a transfer (one that did not commit: its temporary file goes). */
static void put_drop(struct transfer *t)
{
	struct put *p = (struct put *)t;

	transfer_remove(t);
	if (p->fd >= 0) {
		close(p->fd);
		unlinkat(p->dirfd, p->tmp, 0);
	}
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p);
}

/* The client went: a resumable put that has data waits (parked) for a
 * PutFile{resume} of the same file; the others end. */
static void put_client_gone(struct transfer *t)
{
	struct put *p = (struct put *)t, *oldest = NULL;
	struct transfer *o;
	unsigned parked = 0;

	if (!p->resumable || !p->written) {
		put_drop(t);
		return;
	}
	for (size_t it = 0; (o = transfer_next(0, &it));) {
		if (o->drop != put_drop)
			continue;
		parked++;
		if (!oldest || o->id < oldest->t.id)
			oldest = (struct put *)o;
	}
	if (oldest && parked >= PUT_PARKED_MAX)
		put_drop(&oldest->t);
	t->session = 0;
}

static bool same_user(const struct file_user *a, const struct file_user *b)
{
	return a->set == b->set && (!a->set || (a->uid == b->uid && a->gid == b->gid));
}

/* A parked put of this very file (path, size, mtime, user), or NULL. */
static struct put *parked_put(const ctld_PutFile *req, const struct file_user *u)
{
	struct transfer *t;

	for (size_t it = 0; (t = transfer_next(0, &it));) {
		struct put *p = (struct put *)t;

		if (t->drop == put_drop && !strcmp(p->path, req->path) && p->size == req->size &&
		    p->mtime_ns == req->mtime_ns && same_user(&p->user, u))
			return p;
	}
	return NULL;
}

/* Takes up a parked put: the reply says how far it got and the digest of
 * that much, so the client can check it is the prefix of its file. */
static void put_resume(struct request_ctx *ctx, struct put *p, const ctld_PutFile *req)
{
	struct sha256 prefix = p->sha; /* finishing a copy leaves the state going on */
	ctld_Reply *r;
	int err;

	if ((err = transfer_adopt(&p->t, ctx->session))) {
		transfer_refused(ctx, err);
		return;
	}
	p->mode = req->mode;
	r = reply_begin(ctx);
	r->which_result = ctld_Reply_put_file_tag;
	r->result.put_file.transfer = p->t.id;
	r->result.put_file.offset = p->written;
	r->result.put_file.sha256.size = SHA256_DIGEST_LEN;
	sha256_final(&prefix, r->result.put_file.sha256.bytes);
	reply_send(ctx);
	log_info("%s resumes the put of %s at %llu bytes", reply_peer_name(ctx->session), p->path,
		 (unsigned long long)p->written);
}

static void reply_errno(struct request_ctx *ctx, int err, const char *what, const char *path)
{
	reply_error(ctx, file_errno_code(err), err, "failed to %s %.400s: %s", what, path,
		    strerror(err));
}

/* "/a/b/name" into the directory "/a/b" (or "/") and "name". */
static int split_path(const char *path, char *dir, size_t dirlen, char *name, size_t namelen)
{
	const char *slash = strrchr(path, '/');
	size_t dl = slash == path ? 1 : (size_t)(slash - path);

	if (dl >= dirlen || strlen(slash + 1) >= namelen)
		return -ENAMETOOLONG;
	memcpy(dir, path, dl);
	dir[dl] = '\0';
	strcpy(name, slash + 1);
	return 0;
}

/* ------------------------------------------------------------ PutFile */

static void put_directory(struct request_ctx *ctx, const ctld_PutFile *req,
			  const struct file_user *u)
{
	struct stat st;
	int err = 0;

	if ((err = file_user_enter(u))) {
		reply_errno(ctx, -err, "take on the user's rights for", req->path);
		return;
	}
	if (mkdir(req->path, 0700) < 0 && errno != EEXIST)
		err = errno;
	else if (stat(req->path, &st) < 0)
		err = errno;
	else if (!S_ISDIR(st.st_mode))
		err = EEXIST;
	else if (chmod(req->path, req->mode) < 0) /* exactly: mkdir's mode minus umask */
		err = errno;
	file_user_leave(u);
	if (err) {
		reply_errno(ctx, err, "make the directory", req->path);
		return;
	}
	ctld_Reply *r = reply_begin(ctx);
	r->which_result = ctld_Reply_put_file_tag;
	reply_send(ctx);
}

/* This daemon instance, in temporary names: its pid and a random number
 * (an upgrade in place keeps the pid and starts transfer ids again). */
static const char *instance_tag(void)
{
	static char tag[32];
	uint32_t nonce = 0;

	if (!tag[0]) {
		if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
			nonce = (uint32_t)now_monotonic_ns();
		snprintf(tag, sizeof(tag), "%d.%08x", (int)getpid(), nonce);
	}
	return tag;
}

/* The directory of path and a new temporary file in it, with the user's
 * rights. The name has this instance's tag and the transfer's id: no
 * other transfer, now or after a restart, ever picks it. */
static int put_open(struct put *p, const char *path)
{
	char dir[sizeof(p->path)];
	int err;

	if ((err = split_path(path, dir, sizeof(dir), p->name, sizeof(p->name))))
		return err;
	snprintf(p->tmp, sizeof(p->tmp), ".%.200s.ctld-%s-%llu", p->name, instance_tag(),
		 (unsigned long long)p->t.id);
	if ((err = file_user_enter(&p->user)))
		return err;
	p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
	if (p->dirfd < 0)
		err = -errno;
	else if ((p->fd = openat(p->dirfd, p->tmp,
				 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
				 0600)) < 0)
		err = -errno;
	file_user_leave(&p->user);
	return err;
}

static struct put *put_new(const ctld_PutFile *req)
{
	struct put *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->t.drop = put_drop;
	p->t.client_gone = put_client_gone;
	p->resumable = req->resume;
	p->dirfd = p->fd = -1;
	p->mode = req->mode;
	p->size = req->size;
	p->mtime_ns = req->mtime_ns;
	snprintf(p->path, sizeof(p->path), "%s", req->path);
	sha256_init(&p->sha);
	return p;
}

static int put_check(const ctld_PutFile *req, struct file_user *u, char *err, size_t errlen)
{
	if (file_path_check(req->path, err, errlen))
		return -EINVAL;
	if (req->mode & ~07777u) {
		snprintf(err, errlen, "mode %o is not 07777 or below", req->mode);
		return -EINVAL;
	}
	return file_user_resolve(req->user, u, err, errlen);
}

void file_put_handle(struct request_ctx *ctx, const ctld_PutFile *req)
{
	char err[200];
	struct file_user u;
	struct put *p;
	int ret;

	if (put_check(req, &u, err, sizeof(err))) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EINVAL, "PutFile: %s", err);
		return;
	}
	if (req->directory) {
		put_directory(ctx, req, &u);
		return;
	}
	if (req->resume && (p = parked_put(req, &u))) {
		put_resume(ctx, p, req);
		return;
	}
	if (!(p = put_new(req))) {
		transfer_refused(ctx, -ENOMEM);
		return;
	}
	if ((ret = transfer_add(&p->t, ctx->session))) {
		free(p);
		transfer_refused(ctx, ret);
		return;
	}
	p->user = u;
	if ((ret = put_open(p, req->path))) {
		reply_errno(ctx, -ret, p->dirfd < 0 ? "open the directory of" : "create a file beside",
			    req->path);
		put_drop(&p->t);
		return;
	}
	ctld_Reply *r = reply_begin(ctx);
	r->which_result = ctld_Reply_put_file_tag;
	r->result.put_file.transfer = p->t.id;
	reply_send(ctx);
}

/* ------------------------------------------------------------ PutData */

/* Mode, mtime, fsync, checked digest, rename, fsync of the directory. */
static int put_commit(struct put *p, const ctld_PutData *req, uint8_t digest[SHA256_DIGEST_LEN],
		      const char **what)
{
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
	int err = 0;

	sha256_final(&p->sha, digest);
	if (p->mtime_ns)
		times[1] = (struct timespec){ .tv_sec = (time_t)(p->mtime_ns / 1000000000),
					      .tv_nsec = (long)(p->mtime_ns % 1000000000) };
	if (memcmp(digest, req->sha256.bytes, SHA256_DIGEST_LEN))
		return -EBADMSG;
	*what = "write";
	if (fchmod(p->fd, p->mode) < 0 || futimens(p->fd, times) < 0 || fsync(p->fd) < 0)
		return -errno;
	*what = "rename a file to";
	if ((err = file_user_enter(&p->user)))
		return err;
	if (renameat(p->dirfd, p->tmp, p->dirfd, p->name) < 0)
		err = -errno;
	file_user_leave(&p->user);
	if (err)
		return err;
	close(p->fd);
	p->fd = -1; /* committed: nothing to remove any more */
	*what = "sync the directory of";
	return fsync(p->dirfd) < 0 ? -errno : 0;
}

static void put_finish(struct request_ctx *ctx, struct put *p, const ctld_PutData *req)
{
	uint8_t digest[SHA256_DIGEST_LEN];
	char want[65], got[65];
	const char *what;
	int err;

	if (p->written != p->size) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EINVAL,
			    "%.400s: %llu bytes received, PutFile announced %llu", p->path,
			    (unsigned long long)p->written, (unsigned long long)p->size);
	} else if ((err = put_commit(p, req, digest, &what)) == -EBADMSG) {
		sha256_hex(req->sha256.bytes, want);
		sha256_hex(digest, got);
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EBADMSG,
			    "%.300s: sha256 mismatch: sent %.16s..., written %.16s...", p->path,
			    want, got);
	} else if (err) {
		reply_errno(ctx, -err, what, p->path);
	} else {
		ctld_Reply *r = reply_begin(ctx);

		r->which_result = ctld_Reply_file_done_tag;
		r->result.file_done.size = p->written;
		r->result.file_done.sha256.size = SHA256_DIGEST_LEN;
		memcpy(r->result.file_done.sha256.bytes, digest, SHA256_DIGEST_LEN);
		reply_send(ctx);
		log_info("%s put %s (%llu bytes)", reply_peer_name(ctx->session), p->path,
			 (unsigned long long)p->written);
	}
	put_drop(&p->t);
}

void file_put_handle_data(struct request_ctx *ctx, const ctld_PutData *req)
{
	struct put *p = (struct put *)transfer_find(req->transfer, ctx->session, put_drop);
	int err;

	if (!p) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0,
			    "no such transfer: %llu (it ended, or was never started)",
			    (unsigned long long)req->transfer);
		return;
	}
	if (req->abort) {
		put_drop(&p->t);
		reply_ok(ctx);
		return;
	}
	if (req->offset != p->written || req->data.size > p->size - p->written ||
	    (req->last && req->sha256.size != SHA256_DIGEST_LEN)) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EINVAL,
			    "%.400s: %s (offset %llu, %u bytes; written %llu of %llu)", p->path,
			    req->offset != p->written ? "chunk out of order"
			    : req->last && req->sha256.size != SHA256_DIGEST_LEN
				    ? "the last chunk needs a 32-byte sha256"
				    : "more data than announced",
			    (unsigned long long)req->offset, (unsigned)req->data.size,
			    (unsigned long long)p->written, (unsigned long long)p->size);
		put_drop(&p->t);
		return;
	}
	if ((err = write_all(p->fd, req->data.bytes, req->data.size))) {
		reply_errno(ctx, -err, "write", p->path);
		put_drop(&p->t);
		return;
	}
	sha256_update(&p->sha, req->data.bytes, req->data.size);
	p->written += req->data.size;
	if (req->last)
		put_finish(ctx, p, req);
	else
		reply_ok(ctx);
}
