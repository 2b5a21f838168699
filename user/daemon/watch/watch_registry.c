// SPDX-License-Identifier: BSD-2-Clause
/*
 * watch_registry.c - the table of client watches: id -> {owner, backend,
 * the backend's watch}, plus a count per client for the limit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/clients/reply.h"
#include "daemon/core/idmap.h"
#include "daemon/watch/watch_registry.h"

struct entry {
	uint64_t session;
	const struct watch_backend *be;
	void *watch;
};

static struct {
	uint32_t max_per_client;
	uint64_t next_id;
	struct idmap entries; /* watch id -> struct entry */
	struct idmap counts;  /* session -> number of watches, as a pointer-sized integer */
} R;

void watch_registry_init(uint32_t max_per_client)
{
	R.max_per_client = max_per_client;
	R.next_id = 1;
	idmap_init(&R.entries);
	idmap_init(&R.counts);
}

uint32_t watch_registry_limit(void)
{
	return R.max_per_client;
}

static uintptr_t count_of(uint64_t session)
{
	return (uintptr_t)idmap_get(&R.counts, session);
}

static void count_drop(uint64_t session)
{
	uintptr_t n = count_of(session) - 1;

	if (n)
		idmap_put(&R.counts, session, (void *)n); /* replaces: no allocation */
	else
		idmap_del(&R.counts, session);
}

bool watch_registry_has_room(uint64_t session)
{
	return count_of(session) < R.max_per_client;
}

int watch_registry_add(uint64_t session, const struct watch_backend *be, void *watch,
		       uint64_t *id)
{
	struct entry *e = malloc(sizeof(*e));

	if (!e)
		return -ENOMEM;
	*e = (struct entry){ .session = session, .be = be, .watch = watch };
	*id = R.next_id++;
	if (idmap_put(&R.entries, *id, e)) {
		free(e);
		return -ENOMEM;
	}
	if (idmap_put(&R.counts, session, (void *)(count_of(session) + 1))) {
		idmap_del(&R.entries, *id);
		free(e);
		return -ENOMEM;
	}
	return 0;
}

/* Forgets id; returns what it was (the caller frees it), or NULL. */
static struct entry *take(uint64_t id)
{
	struct entry *e = idmap_del(&R.entries, id);

	if (e)
		count_drop(e->session);
	return e;
}

void watch_registry_remove(uint64_t id)
{
	free(take(id));
}

static void stop(uint64_t id)
{
	struct entry *e = take(id);

	if (e) {
		e->be->stop(e->watch);
		free(e);
	}
}

void watch_registry_handle_unwatch(struct request_ctx *ctx, uint64_t id, ctld_WatchKind kind)
{
	struct entry *e = idmap_get(&R.entries, id);

	if (!e || e->session != ctx->session || e->be->kind != kind) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "no %s watch %llu on this connection",
			    kind == ctld_WatchKind_WATCH_PORT ? "port" : "file",
			    (unsigned long long)id);
		return;
	}
	stop(id);
	reply_ok(ctx);
}

void watch_registry_client_gone(uint64_t session)
{
	uint64_t id;
	void *value;

	if (!count_of(session))
		return;
	for (size_t it = 0; idmap_next(&R.entries, &it, &id, &value);)
		if (((struct entry *)value)->session == session)
			stop(id);
}

/* Keeps the smallest ids above `after`, sorted: one page of ListWatches. */
static void page_add(ctld_WatchesReply *out, uint64_t after, const ctld_WatchInfo *info)
{
	const pb_size_t max = ARRAY_SIZE(out->watches);
	pb_size_t i;

	if (info->watch <= after)
		return;
	if (out->watches_count == max) {
		out->more = true;
		if (info->watch > out->watches[max - 1].watch)
			return;
		out->watches_count--; /* the largest id moves to the next page */
	}
	for (i = out->watches_count; i > 0 && out->watches[i - 1].watch > info->watch; i--)
		out->watches[i] = out->watches[i - 1];
	out->watches[i] = *info;
	out->watches_count++;
}

void watch_registry_handle_list(struct request_ctx *ctx, const ctld_ListWatches *req)
{
	ctld_Reply *r = reply_begin(ctx);
	uint64_t id;
	void *value;

	r->which_result = ctld_Reply_watches_tag;
	for (size_t it = 0; idmap_next(&R.entries, &it, &id, &value);) {
		const struct entry *e = value;
		ctld_WatchInfo info = ctld_WatchInfo_init_zero;

		if (id <= req->after_watch)
			continue;
		e->be->describe(e->watch, &info);
		info.watch = id;
		info.kind = e->be->kind;
		info.client = e->session;
		copy_str(info.client_peer, sizeof(info.client_peer), reply_peer_name(e->session));
		page_add(&r->result.watches, req->after_watch, &info);
	}
	reply_send(ctx);
}

void watch_registry_fill_stats(ctld_StatsReply *st)
{
	uint64_t id;
	void *value;

	st->port_watches = st->file_watches = 0;
	for (size_t it = 0; idmap_next(&R.entries, &it, &id, &value);) {
		if (((struct entry *)value)->be->kind == ctld_WatchKind_WATCH_PORT)
			st->port_watches++;
		else
			st->file_watches++;
	}
}

void watch_registry_shutdown(void)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&R.entries, &it, &id, &value);)
		stop(id);
	idmap_free(&R.entries);
	idmap_free(&R.counts);
}
