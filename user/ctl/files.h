/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * files.h - what the files of put and get share (ctl/cmd_files.c, the
 * command; ctl/files_put.c, ctl/files_get.c, one direction each): the
 * state of a transfer on one host, the node name and %h, the progress
 * line, and the exit statuses of file commands.
 */
#ifndef CTLD_CTL_FILES_H
#define CTLD_CTL_FILES_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/sha256.h"
#include "ctl/ctl.h"

#define EXIT_DATAERR 65	  /* get: what arrived is not what the daemon read */
#define EXIT_NOINPUT 66	  /* put: LOCAL cannot be read */
#define EXIT_CANTCREAT 73 /* get: LOCALDIR cannot be written */

#define FILE_CHUNK sizeof(((ctld_PutData *)0)->data.bytes)
#define PUT_IN_FLIGHT 12		/* chunks sent and not yet answered (< MAX_PENDING) */
#define GET_CREDIT_EVERY (256u << 10) /* acknowledge received bytes this often */

/* A directory of a get, to be given its mode once its content is there. */
struct dir_mode {
	char *path;
	mode_t mode;
};

struct xfer {
	char remote[sizeof(((ctld_PutFile *)0)->path)]; /* REMOTE, %h expanded */
	int fd;			/* the local file being sent or written; -1 */
	uint64_t transfer;	/* the daemon's id of the current transfer */
	uint64_t size, done;	/* bytes of the current file: all, sent or received */
	struct sha256 sha;
	/* put */
	size_t entry;		/* the local entry being sent */
	unsigned in_flight;	/* PutData requests unanswered */
	bool last_sent;
	bool fresh;		/* PutFile without resume (what the daemon had was not ours) */
	/* get */
	char root[PATH_MAX];	/* LOCALDIR/<node>/<basename of REMOTE> */
	char **todo;		/* relative paths still to get (a stack) */
	size_t ntodo, todo_cap;
	uint64_t *todo_skip;	/* directory entries already listed, per todo */
	char rel[PATH_MAX];	/* the path being got, relative to root */
	uint64_t skip;		/* its entries already listed (a directory) */
	char tmp[PATH_MAX], dest[PATH_MAX];
	mode_t mode;
	uint64_t mtime_ns, credited;
	struct dir_mode *dirs;
	size_t ndirs, dirs_cap;
};

/* cmd_files.c */
/* The node's name for %h and LOCALDIR/<node>: the host as given to -H
 * (":PORT" added unless it is the default port), this machine's name on
 * the unix socket. */
void node_name(const struct host *h, char *buf, size_t len);
/* text with every %h replaced by the node's name (%% is a %). false: too long. */
bool expand_node(const struct host *h, const char *text, char *out, size_t len);
/* REMOTE as the daemon gets it: %h expanded, and on the unix socket (the
 * same file system) a relative path made ctl's (the daemon wants absolute
 * paths). false: too long. */
bool remote_path(const struct host *h, const char *text, char *out, size_t len);
void progress_total(uint64_t bytes);
void progress_add(uint64_t bytes);
/* a/b + name, false when it does not fit */
bool join(char *out, size_t len, const char *a, const char *b);

/* files_put.c */
void put_begin(struct host *h);
void put_on_reply(struct host *h, enum req_kind kind, const ctld_Reply *r);
void put_finished(struct host *h);

/* files_get.c */
void get_begin(struct host *h);
void get_on_reply(struct host *h, enum req_kind kind, const ctld_Reply *r);
void get_on_event(struct host *h, const ctld_Event *ev);
void get_finished(struct host *h);

#endif
