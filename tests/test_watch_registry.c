// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_watch_registry.c - the table of client watches with two fake
 * backends: ids are never reused, the per-client limit counts port and
 * file watches together, Unwatch only ends the client's own watch of the
 * kind it names, a gone client loses exactly its watches (stop() called
 * once each), a watch that ended by itself is not stopped again, and
 * ListWatches pages in id order. The reply layer is a recorder.
 */
// TEST_SRCS: user/daemon/watch/watch_registry.c user/daemon/core/idmap.c user/common/util.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/clients/reply.h"
#include "daemon/watch/watch_registry.h"

#define MAX_FAKES 200

struct fake {
	int n;       /* its index */
	int stopped; /* stop() calls */
};

static struct fake fakes[MAX_FAKES];
static ctld_Reply last;

/* ------------------------------------------------------------ fakes */

ctld_Reply *reply_begin(struct request_ctx *ctx)
{
	(void)ctx;
	memset(&last, 0, sizeof(last));
	return &last;
}

void reply_send(struct request_ctx *ctx)
{
	assert_false(ctx->replied);
	ctx->replied = true;
}

void reply_ok(struct request_ctx *ctx)
{
	reply_begin(ctx);
	reply_send(ctx);
}

void reply_error(struct request_ctx *ctx, ctld_ErrorCode code, int sys_errno, const char *fmt, ...)
{
	va_list ap;

	reply_begin(ctx);
	last.has_error = true;
	last.error.code = code;
	last.error.sys_errno = sys_errno;
	va_start(ap, fmt);
	vsnprintf(last.error.text, sizeof(last.error.text), fmt, ap);
	va_end(ap);
	reply_send(ctx);
}

const char *reply_peer_name(uint64_t session)
{
	return session == 1 ? "one" : "other";
}

static void stop(void *watch)
{
	((struct fake *)watch)->stopped++;
}

static void describe(const void *watch, ctld_WatchInfo *info)
{
	info->port = (uint32_t)((const struct fake *)watch)->n;
}

static const struct watch_backend port_be = { ctld_WatchKind_WATCH_PORT, "port", stop, describe };
static const struct watch_backend file_be = { ctld_WatchKind_WATCH_FILE, "file", stop, describe };

static int setup(void **state)
{
	(void)state;
	memset(fakes, 0, sizeof(fakes));
	for (int i = 0; i < MAX_FAKES; i++)
		fakes[i].n = i;
	watch_registry_init(3);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	watch_registry_shutdown();
	return 0;
}

static uint64_t add(uint64_t session, const struct watch_backend *be, int i)
{
	uint64_t id = 0;

	assert_true(watch_registry_has_room(session));
	assert_int_equal(watch_registry_add(session, be, &fakes[i], &id), 0);
	assert_true(id > 0);
	return id;
}

static ctld_ErrorCode unwatch(uint64_t session, uint64_t id, ctld_WatchKind kind)
{
	struct request_ctx ctx = { .session = session, .id = 9 };

	watch_registry_handle_unwatch(&ctx, id, kind);
	assert_true(ctx.replied);
	return last.has_error ? last.error.code : ctld_ErrorCode_OK;
}

static void stats(uint32_t *ports, uint32_t *files)
{
	ctld_StatsReply st = { 0 };

	watch_registry_fill_stats(&st);
	*ports = st.port_watches;
	*files = st.file_watches;
}

/* ------------------------------------------------------------ tests */

/* One limit for both kinds, per client; ids grow and are never reused. */
static void registry_one_limit_per_client(void **state)
{
	uint64_t a = add(1, &port_be, 0), b = add(1, &file_be, 1), c = add(1, &port_be, 2), d;
	uint32_t ports, files;

	(void)state;
	assert_true(a < b && b < c);
	assert_false(watch_registry_has_room(1)); /* 2 port + 1 file = the limit of 3 */
	assert_true(watch_registry_has_room(2));
	assert_int_equal(unwatch(1, b, ctld_WatchKind_WATCH_FILE), ctld_ErrorCode_OK);
	assert_int_equal(fakes[1].stopped, 1);
	assert_true(watch_registry_has_room(1));
	d = add(1, &file_be, 3);
	assert_true(d > c);
	stats(&ports, &files);
	assert_int_equal(ports, 2);
	assert_int_equal(files, 1);
}

/* Unwatch names an id and a kind, of the client's own watches only. */
static void registry_unwatch_routing(void **state)
{
	uint64_t p = add(1, &port_be, 0), f = add(2, &file_be, 1);

	(void)state;
	assert_int_equal(unwatch(1, p, ctld_WatchKind_WATCH_FILE), ctld_ErrorCode_NOT_FOUND);
	assert_non_null(strstr(last.error.text, "no file watch"));
	assert_int_equal(unwatch(1, f, ctld_WatchKind_WATCH_FILE), ctld_ErrorCode_NOT_FOUND);
	assert_int_equal(unwatch(2, p, ctld_WatchKind_WATCH_PORT), ctld_ErrorCode_NOT_FOUND);
	assert_int_equal(unwatch(1, 12345, ctld_WatchKind_WATCH_PORT), ctld_ErrorCode_NOT_FOUND);
	assert_int_equal(fakes[0].stopped + fakes[1].stopped, 0);
	assert_int_equal(unwatch(1, p, ctld_WatchKind_WATCH_PORT), ctld_ErrorCode_OK);
	assert_int_equal(unwatch(1, p, ctld_WatchKind_WATCH_PORT), ctld_ErrorCode_NOT_FOUND);
	assert_int_equal(fakes[0].stopped, 1);
}

/* A gone client's watches are stopped, once each; others stay. A watch
 * that ended by itself (remove) is never stopped. */
static void registry_client_gone(void **state)
{
	uint64_t a = add(1, &port_be, 0), self_ended = add(1, &file_be, 1);
	uint32_t ports, files;

	(void)state;
	(void)a;
	add(2, &file_be, 2);
	watch_registry_remove(self_ended);
	watch_registry_client_gone(1);
	watch_registry_client_gone(1);
	assert_int_equal(fakes[0].stopped, 1);
	assert_int_equal(fakes[1].stopped, 0);
	assert_int_equal(fakes[2].stopped, 0);
	assert_true(watch_registry_has_room(1));
	stats(&ports, &files);
	assert_int_equal(ports, 0);
	assert_int_equal(files, 1);
	watch_registry_shutdown(); /* stops what is left, once */
	assert_int_equal(fakes[2].stopped, 1);
	watch_registry_init(3);
}

/* ListWatches: sorted by id, 32 a page, `more` until the last page; each
 * entry with its owner, its kind and what its backend describes. */
static void registry_list_pages(void **state)
{
	struct request_ctx ctx = { .session = 7, .id = 3 };
	ctld_ListWatches req = { 0 };
	uint64_t ids[70];
	size_t seen = 0;

	(void)state;
	watch_registry_shutdown();
	watch_registry_init(100);
	for (int i = 0; i < 70; i++)
		ids[i] = add(i % 2 ? 1 : 2, i % 3 ? &port_be : &file_be, i);
	for (int page = 0; page < 3; page++) {
		ctld_WatchesReply *wr = &last.result.watches;

		ctx.replied = false;
		watch_registry_handle_list(&ctx, &req);
		assert_int_equal(last.which_result, ctld_Reply_watches_tag);
		for (pb_size_t k = 0; k < wr->watches_count; k++, seen++) {
			const ctld_WatchInfo *w = &wr->watches[k];

			assert_int_equal(w->watch, ids[seen]);
			assert_int_equal(w->port, seen);
			assert_int_equal(w->client, seen % 2 ? 1 : 2);
			assert_string_equal(w->client_peer, seen % 2 ? "one" : "other");
			assert_int_equal(w->kind, seen % 3 ? ctld_WatchKind_WATCH_PORT
							   : ctld_WatchKind_WATCH_FILE);
		}
		assert_int_equal(wr->more, page < 2);
		if (wr->watches_count)
			req.after_watch = wr->watches[wr->watches_count - 1].watch;
	}
	assert_int_equal(seen, 70);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(registry_one_limit_per_client),
		T(registry_unwatch_routing),
		T(registry_client_gone),
		T(registry_list_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
