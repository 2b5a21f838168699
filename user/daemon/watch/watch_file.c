// SPDX-License-Identifier: BSD-2-Clause
/*
 * watch_file.c - client file watches.
 *
 * Events are reported as the kernel reports them, one FileEvent per record,
 * with the size stat() sees afterwards; only a removal, which both the file
 * (IN_DELETE_SELF) and its directory (IN_DELETE) report, is sent once (the
 * follower takes care of that). FILE_OVERFLOW neither ends a `once` watch
 * nor counts as the event that stops its timeout: the watch has not seen
 * its event yet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "daemon/clients/reply.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/watch/file_follow.h"
#include "daemon/watch/file_rules.h"
#include "daemon/watch/watch_file.h"
#include "daemon/watch/watch_registry.h"

#define K_NONE ctld_FileEventKind_FILE_NONE
#define K_SIZE ctld_FileEventKind_FILE_SIZE_REACHED
#define K_OVERFLOW ctld_FileEventKind_FILE_OVERFLOW

struct file_watch {
	uint64_t id;
	uint64_t session;
	struct file_follow follow;
	uint32_t kinds; /* what is delivered, see file_rules_effective_kinds() */
	bool once;
	bool has_threshold, threshold_fired;
	uint64_t threshold;
	struct loop_timer timer;
};

static struct loop *watch_loop;

static const struct watch_backend file_backend;

/* Frees everything; the registry entry is gone already. */
static void stop(void *watch)
{
	struct file_watch *w = watch;

	loop_timer_disarm(watch_loop, &w->timer);
	file_follow_stop(&w->follow);
	log_debug("file watch %llu on %s: ended", (unsigned long long)w->id, w->follow.path);
	free(w);
}

/* The watch ended by itself (once, timeout). */
static void end(struct file_watch *w)
{
	watch_registry_remove(w->id);
	stop(w);
}

/* Sends one FileEvent if the watch delivers that kind. Returns false when it
 * ended the watch (once): the caller must not touch w again. */
static bool emit(struct file_watch *w, ctld_FileEventKind kind, bool appeared, uint64_t size)
{
	ctld_FileEvent *fe;

	kind = file_rules_deliver_kind(kind, w->kinds, appeared);
	if (kind == K_NONE)
		return true;
	fe = &event_begin(ctld_Event_file_event_tag)->kind.file_event;
	fe->watch = w->id;
	copy_str(fe->path, sizeof(fe->path), w->follow.path);
	fe->kind = kind;
	fe->size = size;
	fe->time_ns = now_realtime_ns();
	/* A gone session is cleaned up by the registry, not here. */
	event_send(w->session);
	if (kind == K_OVERFLOW)
		return true;
	loop_timer_disarm(watch_loop, &w->timer);
	if (!w->once)
		return true;
	end(w);
	return false;
}

static bool on_change(struct file_follow *f, ctld_FileEventKind kind, bool appeared,
		      bool size_known, uint64_t size)
{
	struct file_watch *w = f->ctx;

	if (kind != K_NONE && !emit(w, kind, appeared, size))
		return false;
	if (!size_known || kind == K_OVERFLOW ||
	    !file_rules_threshold_due(w->has_threshold, w->threshold_fired, w->threshold, size))
		return true;
	w->threshold_fired = true;
	return emit(w, K_SIZE, false, size);
}

static const struct file_follow_ops follow_ops = { .changed = on_change };

static void timed_out(struct loop *loop, void *ctx)
{
	struct file_watch *w = ctx;

	(void)loop;
	event_begin(ctld_Event_watch_timeout_tag)->kind.watch_timeout.watch = w->id;
	event_send(w->session);
	end(w);
}

/* ------------------------------------------------------------ the request */

/* The errors inotify_add_watch() can give for what is in path. */
static void reply_follow_error(struct request_ctx *ctx, int err, const char *path)
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
	case -ENOMEM:
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		break;
	default:
		reply_error(ctx, ctld_ErrorCode_SYSTEM, -err, "failed to watch %s: %s", path,
			    strerror(-err));
	}
}

/* Checks the request and fills w from it: 0, or -errno with the reply's
 * code and text. The normalised path goes to path[cap]. */
static int validate(const struct request_ctx *ctx, const ctld_WatchFile *req, struct file_watch *w,
		    char *path, size_t cap, size_t *parent_len, ctld_ErrorCode *code, char *err,
		    size_t errlen)
{
	int ret;

	*code = ctld_ErrorCode_BAD_REQUEST;
	if (req->kinds & ~FILE_KINDS_ALL) {
		snprintf(err, errlen,
			 "unknown bits 0x%x in kinds (FileEventKind values OR-ed together)",
			 req->kinds & ~FILE_KINDS_ALL);
		return -EINVAL;
	}
	if (file_rules_effective_kinds(req->kinds, req->has_size_threshold, &w->kinds)) {
		snprintf(err, errlen, "FILE_SIZE_REACHED needs a size_threshold");
		return -EINVAL;
	}
	ret = file_rules_normalize_path(req->path, path, cap, parent_len);
	if (ret == -ENAMETOOLONG)
		snprintf(err, errlen, "path is too long");
	else if (ret && req->path[0] != '/')
		snprintf(err, errlen, "path \"%.200s\" is not absolute", req->path);
	else if (ret && strstr(req->path, ".."))
		snprintf(err, errlen, "path %.180s: \"..\" is not allowed (give the path without it)",
			 req->path);
	else if (ret)
		snprintf(err, errlen, "path %.200s names no file", req->path);
	if (ret)
		return ret;
	if (!watch_registry_has_room(ctx->session)) {
		*code = ctld_ErrorCode_LIMIT;
		snprintf(err, errlen, "too many watches (limit %u per client, --max-watches)",
			 watch_registry_limit());
		return -ENOSPC;
	}
	return 0;
}

/* Builds, starts and registers the watch; replies and returns NULL on failure. */
static struct file_watch *start(struct request_ctx *ctx, const ctld_WatchFile *req)
{
	char path[FILE_FOLLOW_PATH_MAX], failed[FILE_FOLLOW_PATH_MAX], err[256];
	struct file_watch *w;
	ctld_ErrorCode code;
	size_t parent_len;
	int ret;

	if ((ret = file_follow_unavailable())) {
		reply_error(ctx, ctld_ErrorCode_UNSUPPORTED, ret,
			    "file watches are off: inotify is not available (%s)", strerror(ret));
		return NULL;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return NULL;
	}
	if ((ret = validate(ctx, req, w, path, sizeof(path), &parent_len, &code, err,
			    sizeof(err)))) {
		reply_error(ctx, code, ret == -ENAMETOOLONG ? ENAMETOOLONG : 0, "%s", err);
		free(w);
		return NULL;
	}
	w->session = ctx->session;
	w->once = req->once;
	w->has_threshold = req->has_size_threshold;
	w->threshold = req->size_threshold;
	w->follow.ops = &follow_ops;
	w->follow.ctx = w;
	loop_timer_init(&w->timer, timed_out, w);
	if ((ret = file_follow_start(&w->follow, path, parent_len, false, failed, sizeof(failed)))) {
		reply_follow_error(ctx, ret, failed);
		free(w);
		return NULL;
	}
	if (watch_registry_add(ctx->session, &file_backend, w, &w->id)) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		stop(w);
		return NULL;
	}
	return w;
}

void watch_file_handle_watch(struct request_ctx *ctx, const ctld_WatchFile *req)
{
	struct file_watch *w = start(ctx, req);
	struct stat st;
	ctld_Reply *r;

	if (!w)
		return;
	log_debug("file watch %llu on %s for client %s (%s)", (unsigned long long)w->id,
		  w->follow.path, reply_peer_name(ctx->session),
		  w->follow.exists ? "exists" : "not there yet");
	r = reply_begin(ctx);
	r->which_result = ctld_Reply_watch_tag;
	r->result.watch.watch = w->id;
	reply_send(ctx);
	if (req->timeout_ms)
		loop_timer_arm_in(watch_loop, &w->timer, req->timeout_ms * NSEC_PER_MSEC);
	/* Already big enough: the event follows the reply at once. */
	if (w->follow.exists && stat(w->follow.path, &st) == 0)
		on_change(&w->follow, K_NONE, false, true, st.st_size > 0 ? (uint64_t)st.st_size : 0);
}

void watch_file_init(struct loop *loop)
{
	watch_loop = loop;
}

/* ------------------------------------------------------------ registry backend */

static void describe(const void *watch, ctld_WatchInfo *info)
{
	const struct file_watch *w = watch;

	copy_str(info->path, sizeof(info->path), w->follow.path);
	info->kinds = w->kinds;
	info->has_size_threshold = w->has_threshold;
	info->size_threshold = w->threshold;
	info->once = w->once;
}

static const struct watch_backend file_backend = {
	.kind = ctld_WatchKind_WATCH_FILE,
	.name = "file",
	.stop = stop,
	.describe = describe,
};
