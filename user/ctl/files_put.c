// SPDX-License-Identifier: BSD-2-Clause
/*
 * files_put.c - ctl put LOCAL REMOTE: LOCAL (a file, or a directory and
 * everything under it) is listed once, then sent to every host: a PutFile
 * per directory and file, a file in 32 KiB PutData chunks with
 * PUT_IN_FLIGHT of them unanswered at most (memory stays small whatever
 * the size; the daemon writes each as it arrives), the last one carrying
 * the SHA-256 ctl computed while reading. Symbolic links and special files
 * below LOCAL are skipped, with a warning.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "ctl/files.h"
#include "ctl/output.h"

struct entry {
	char *rel; /* below LOCAL; "" for LOCAL itself */
	char *path;
	bool dir;
	mode_t mode;
	uint64_t size, mtime_ns;
};

static struct {
	bool listed;
	int status; /* of listing: 0 or EXIT_NOINPUT */
	struct entry *v;
	size_t n, cap;
	size_t root_len; /* of LOCAL, to cut it off each path */
} L;

static int add_entry(const char *path, const struct stat *st)
{
	struct entry *e;

	if (L.n == L.cap) {
		size_t cap = L.cap ? 2 * L.cap : 64;
		struct entry *v = realloc(L.v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		L.v = v;
		L.cap = cap;
	}
	e = &L.v[L.n];
	*e = (struct entry){ .dir = S_ISDIR(st->st_mode), .mode = st->st_mode & 07777,
			     .size = S_ISDIR(st->st_mode) ? 0 : (uint64_t)st->st_size,
			     .mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u +
					 (uint64_t)st->st_mtim.tv_nsec };
	e->path = strdup(path);
	e->rel = strdup(path[L.root_len] == '/' ? path + L.root_len + 1 : path + L.root_len);
	if (!e->path || !e->rel) {
		free(e->path);
		free(e->rel);
		return -ENOMEM;
	}
	L.n++;
	return 0;
}

static int visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_DNR || flag == FTW_NS) {
		say(NULL, "put: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode)) {
		say(NULL, "put: skipping %s (%s)", path,
		    S_ISLNK(st->st_mode) ? "a symbolic link" : "not a regular file");
		return 0;
	}
	return add_entry(path, st) ? -1 : 0;
}

/* LOCAL as a list of entries, parents before children. */
static int list_local(void)
{
	const char *local = G.args.local;
	struct stat st;

	L.root_len = strlen(local);
	while (L.root_len > 1 && local[L.root_len - 1] == '/')
		L.root_len--;
	if (stat(local, &st) < 0) {
		say(NULL, "put: cannot read %s: %s", local, strerror(errno));
		return EXIT_NOINPUT;
	}
	if (S_ISREG(st.st_mode))
		return add_entry(local, &st) ? EXIT_FAILURE_REPLY : 0;
	if (!S_ISDIR(st.st_mode)) {
		say(NULL, "put: %s is not a regular file or a directory", local);
		return EXIT_NOINPUT;
	}
	return nftw(local, visit, 16, FTW_PHYS) ? EXIT_NOINPUT : 0;
}

/* ------------------------------------------------------------ sending */

static void put_next(struct host *h);

static void send_chunk(struct host *h)
{
	struct xfer *x = h->xfer;
	ctld_PutData *d = &request(ctld_Request_put_data_tag)->body.put_data;
	size_t want = x->size - x->done < FILE_CHUNK ? (size_t)(x->size - x->done) : FILE_CHUNK;
	ssize_t n = pread(x->fd, d->data.bytes, want, (off_t)x->done);

	if (n < 0 || (size_t)n < want) {
		say(h, "put: %s: %s", L.v[x->entry].path,
		    n < 0 ? strerror(errno) : "it became shorter while being sent");
		host_finish(h, EXIT_NOINPUT);
		return;
	}
	d->transfer = x->transfer;
	d->offset = x->done;
	d->data.size = (pb_size_t)n;
	sha256_update(&x->sha, d->data.bytes, (size_t)n);
	x->done += (uint64_t)n;
	if (x->done == x->size) {
		d->last = true;
		d->sha256.size = SHA256_DIGEST_LEN;
		sha256_final(&x->sha, d->sha256.bytes);
		x->last_sent = true;
	}
	if (host_send(h, REQ_PUT_DATA) == 0) {
		x->in_flight++;
		progress_add((uint64_t)n);
	}
}

static void fill_window(struct host *h)
{
	while (!h->done && h->xfer->in_flight < PUT_IN_FLIGHT && !h->xfer->last_sent)
		send_chunk(h);
}

/* The daemon resumed a transfer at r->offset: LOCAL's first bytes must have
 * its digest (then x->sha goes on from there). 0, 1 (they differ), -errno. */
static int check_prefix(struct xfer *x, const ctld_PutFileReply *r)
{
	uint8_t buf[FILE_CHUNK], digest[SHA256_DIGEST_LEN];
	struct sha256 copy;

	while (x->done < r->offset) {
		size_t want = r->offset - x->done < sizeof(buf) ? r->offset - x->done : sizeof(buf);
		ssize_t n = pread(x->fd, buf, want, (off_t)x->done);

		if (n < 0)
			return -errno;
		if ((size_t)n < want)
			return 1;
		sha256_update(&x->sha, buf, (size_t)n);
		x->done += (uint64_t)n;
	}
	copy = x->sha;
	sha256_final(&copy, digest);
	return r->sha256.size != SHA256_DIGEST_LEN ||
	       memcmp(digest, r->sha256.bytes, SHA256_DIGEST_LEN) != 0;
}

static void start_file(struct host *h, const ctld_PutFileReply *r)
{
	struct xfer *x = h->xfer;
	const struct entry *e = &L.v[x->entry];
	int ret;

	x->fd = open(e->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (x->fd < 0) {
		say(h, "put: cannot read %s: %s", e->path, strerror(errno));
		host_finish(h, EXIT_NOINPUT);
		return;
	}
	x->transfer = r->transfer;
	x->size = e->size;
	x->done = 0;
	x->last_sent = false;
	sha256_init(&x->sha);
	if (r->offset && (ret = check_prefix(x, r))) {
		if (ret < 0) {
			say(h, "put: cannot read %s: %s", e->path, strerror(-ret));
			host_finish(h, EXIT_NOINPUT);
			return;
		}
		/* not LOCAL's start: drop it, then put it all afresh */
		close(x->fd);
		x->fd = -1;
		request(ctld_Request_put_data_tag)->body.put_data =
			(ctld_PutData){ .transfer = x->transfer, .abort = true };
		host_send(h, REQ_PUT_ABORT);
		return;
	}
	if (r->offset) {
		say(h, "put: resuming %s at %llu of %llu bytes", x->remote,
		    (unsigned long long)r->offset, (unsigned long long)x->size);
		progress_add(r->offset);
	}
	fill_window(h);
}

static void put_next(struct host *h)
{
	struct xfer *x = h->xfer;
	const struct entry *e;
	ctld_PutFile *pf;

	if (x->entry == L.n) {
		host_finish(h, 0);
		return;
	}
	e = &L.v[x->entry];
	pf = &request(ctld_Request_put_file_tag)->body.put_file;
	if (!join(pf->path, sizeof(pf->path), x->remote, e->rel)) {
		say(h, "put: the remote path of %s is too long", e->path);
		host_finish(h, EXIT_USAGE);
		return;
	}
	pf->mode = e->mode;
	pf->size = e->size;
	pf->mtime_ns = e->mtime_ns;
	pf->directory = e->dir;
	pf->resume = !e->dir && !x->fresh;
	copy_str(pf->user, sizeof(pf->user), G.args.run.user);
	host_send(h, REQ_PUT);
}

/* REMOTE as the daemon gets it; "DIR/" means DIR/<basename of LOCAL>. */
static bool remote_base(struct host *h, char *out, size_t len)
{
	char local[PATH_MAX];
	size_t n;

	copy_str(local, sizeof(local), G.args.local);
	if (!remote_path(h, G.args.remote, out, len))
		return false;
	n = strlen(out);
	return !(n && out[n - 1] == '/') || join(out, len, out, basename(local));
}

void put_begin(struct host *h)
{
	if (!L.listed) {
		L.listed = true;
		L.status = list_local();
		for (size_t i = 0; !L.status && i < L.n; i++)
			progress_total(L.v[i].size * G.nhosts);
	}
	if (L.status) {
		host_finish(h, L.status);
		return;
	}
	if (!remote_base(h, h->xfer->remote, sizeof(h->xfer->remote))) {
		say(h, "put: the remote path is too long");
		host_finish(h, EXIT_USAGE);
		return;
	}
	put_next(h);
}

void put_on_reply(struct host *h, enum req_kind kind, const ctld_Reply *r)
{
	struct xfer *x = h->xfer;

	if (kind == REQ_PUT && !L.v[x->entry].dir) {
		start_file(h, &r->result.put_file);
		return;
	}
	if (kind == REQ_PUT) { /* a directory: made */
		x->entry++;
		put_next(h);
		return;
	}
	if (kind == REQ_PUT_ABORT) {
		x->fresh = true;
		put_next(h);
		return;
	}
	x->in_flight--;
	if (r->which_result != ctld_Reply_file_done_tag) {
		fill_window(h);
		return;
	}
	/* committed: the daemon's digest of what it wrote is ctl's */
	if (r->result.file_done.size != x->size) {
		say(h, "put: %s: the daemon wrote %llu bytes, not %llu", x->remote,
		    (unsigned long long)r->result.file_done.size, (unsigned long long)x->size);
		host_finish(h, EXIT_PROTOCOL);
		return;
	}
	close(x->fd);
	x->fd = -1;
	x->entry++;
	x->fresh = false;
	put_next(h);
}

/* Closing the connection ends a transfer that did not commit: the daemon
 * removes its temporary file. */
void put_finished(struct host *h)
{
	if (h->xfer->fd >= 0)
		close(h->xfer->fd);
}
