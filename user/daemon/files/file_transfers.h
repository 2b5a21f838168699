/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * file_transfers.h - the table of file transfers, puts and gets together:
 * their ids, the limits (per connection and in the daemon), finding one
 * for a request of the connection that owns it, and ending all of a
 * connection's when it goes. Each transfer embeds a struct transfer and
 * says how it is dropped.
 */
#ifndef CTLD_FILE_TRANSFERS_H
#define CTLD_FILE_TRANSFERS_H

#include <stdint.h>

#include "daemon/clients/reply.h"

/* At once, per connection and in the daemon (docs/protocol.md, Files). */
#define FILE_TRANSFERS_PER_CLIENT 16
#define FILE_TRANSFERS_MAX 1024

struct transfer {
	uint64_t id, session; /* session 0: parked, waiting to be resumed */
	/* ends it and frees it (removing it from the table first) */
	void (*drop)(struct transfer *t);
	/* its client went: drop it or park it (NULL: drop) */
	void (*client_gone)(struct transfer *t);
};

/* Gives t an id and adds it. 0, -EUSERS (this session has its share),
 * -ENFILE (the daemon has FILE_TRANSFERS_MAX), -ENOMEM. */
int transfer_add(struct transfer *t, uint64_t session);
/* Answers the request whose transfer_add() failed with err: LIMIT, SYSTEM. */
void transfer_refused(struct request_ctx *ctx, int err);
/* Iteration over the transfers of a session (0: the parked ones):
 * for (size_t it = 0; (t = transfer_next(session, &it));) ... */
struct transfer *transfer_next(uint64_t session, size_t *it);
/* A parked transfer taken on by session: -EUSERS when it has its share. */
int transfer_adopt(struct transfer *t, uint64_t session);
/* How many transfers of this kind (their drop function) there are. */
unsigned transfers_of_kind(void (*drop)(struct transfer *t));
/* The session's transfer with this id and kind (its drop function), or NULL. */
struct transfer *transfer_find(uint64_t id, uint64_t session, void (*drop)(struct transfer *t));
void transfer_remove(struct transfer *t);
/* Drops (or parks) every transfer of the session. */
void transfers_client_gone(uint64_t session);
void transfers_shutdown(void);

#endif
