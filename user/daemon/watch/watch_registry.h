/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * watch_registry.h - every client watch, whatever it watches: watch ids,
 * the one per-client limit (--max-watches counts port and file watches
 * together), ListWatches paging, Unwatch routing, and ending a client's
 * watches when it goes away. Port and file watches are two backends of the
 * same calls; a new kind of watch is a third backend.
 */
#ifndef CTLD_WATCH_REGISTRY_H
#define CTLD_WATCH_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "ctld.pb.h"

struct request_ctx;

struct watch_backend {
	ctld_WatchKind kind;
	const char *name; /* "port", "file": for messages */
	/* Ends the watch and frees it; the registry has already forgotten it. */
	void (*stop)(void *watch);
	void (*describe)(const void *watch, ctld_WatchInfo *info);
};

void watch_registry_init(uint32_t max_per_client);
/* Stops every watch (daemon shutdown). */
void watch_registry_shutdown(void);

/* True when session may create one more watch (the caller replies LIMIT). */
bool watch_registry_has_room(uint64_t session);
uint32_t watch_registry_limit(void);
/* Registers a watch of session and gives it a new id (never reused).
 * 0, or -ENOMEM (nothing registered). */
int watch_registry_add(uint64_t session, const struct watch_backend *be, void *watch,
		       uint64_t *id);
/* A watch that ended by itself (once, timeout): forget it. The backend
 * frees it; stop() is not called. */
void watch_registry_remove(uint64_t id);

/* UnwatchPort / UnwatchFile: ends the client's own watch id of that kind. */
void watch_registry_handle_unwatch(struct request_ctx *ctx, uint64_t id, ctld_WatchKind kind);
void watch_registry_handle_list(struct request_ctx *ctx, const ctld_ListWatches *req);
void watch_registry_client_gone(uint64_t session);
void watch_registry_fill_stats(ctld_StatsReply *st);

#endif
