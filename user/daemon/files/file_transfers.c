// SPDX-License-Identifier: BSD-2-Clause
/*
 * file_transfers.c - see file_transfers.h. An idmap by id; counting a
 * session's transfers is a scan of at most FILE_TRANSFERS_MAX entries,
 * done only when one starts.
 */
#include <errno.h>
#include <string.h>

#include "daemon/core/idmap.h"
#include "daemon/files/file_transfers.h"

static struct {
	struct idmap all;
	uint64_t next_id;
} T;

static unsigned transfers_of(uint64_t session)
{
	unsigned n = 0;
	uint64_t id;
	void *v;

	for (size_t it = 0; idmap_next(&T.all, &it, &id, &v);)
		n += ((struct transfer *)v)->session == session;
	return n;
}

unsigned transfers_of_kind(void (*drop)(struct transfer *t))
{
	unsigned n = 0;
	uint64_t id;
	void *v;

	for (size_t it = 0; idmap_next(&T.all, &it, &id, &v);)
		n += ((struct transfer *)v)->drop == drop;
	return n;
}

int transfer_add(struct transfer *t, uint64_t session)
{
	if (transfers_of(session) >= FILE_TRANSFERS_PER_CLIENT)
		return -EUSERS;
	if (T.all.count >= FILE_TRANSFERS_MAX)
		return -ENFILE;
	if (idmap_put(&T.all, T.next_id + 1, t))
		return -ENOMEM;
	t->id = ++T.next_id;
	t->session = session;
	return 0;
}

struct transfer *transfer_next(uint64_t session, size_t *it)
{
	uint64_t id;
	void *v;

	while (idmap_next(&T.all, it, &id, &v))
		if (((struct transfer *)v)->session == session)
			return v;
	return NULL;
}

int transfer_adopt(struct transfer *t, uint64_t session)
{
	if (transfers_of(session) >= FILE_TRANSFERS_PER_CLIENT)
		return -EUSERS;
	t->session = session;
	return 0;
}

void transfer_refused(struct request_ctx *ctx, int err)
{
	if (err == -EUSERS || err == -ENFILE)
		reply_error(ctx, ctld_ErrorCode_LIMIT, 0, "too many file transfers at once (%u %s)",
			    err == -EUSERS ? FILE_TRANSFERS_PER_CLIENT : FILE_TRANSFERS_MAX,
			    err == -EUSERS ? "per connection" : "in the daemon");

	else
		reply_error(ctx, ctld_ErrorCode_SYSTEM, -err, "cannot start a transfer: %s",
			    strerror(-err));
}

struct transfer *transfer_find(uint64_t id, uint64_t session, void (*drop)(struct transfer *t))
{
	struct transfer *t = idmap_get(&T.all, id);

	return t && t->session == session && t->drop == drop ? t : NULL;
}

void transfer_remove(struct transfer *t)
{
	idmap_del(&T.all, t->id);
}

void transfers_client_gone(uint64_t session)
{
	uint64_t id;
	void *v;

	for (size_t it = 0; idmap_next(&T.all, &it, &id, &v);) {
		struct transfer *t = v;

		if (t->session != session)
			continue;
		if (t->client_gone)
			t->client_gone(t);
		else
			t->drop(t);
	}
}

void transfers_shutdown(void)
{
	uint64_t id;
	void *v;

	for (size_t it = 0; idmap_next(&T.all, &it, &id, &v);)
		((struct transfer *)v)->drop(v);
	idmap_free(&T.all);
}
