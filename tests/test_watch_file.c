// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_watch_file.c - client file watches (watch_file.c on file_follow.c,
 * file_rules.c and the watch registry) on a real loop and a real inotify
 * instance, with the reply layer replaced by recorders below and two
 * syscalls faked: inotify_add_watch() (to produce EACCES and ENOSPC, which
 * root never sees) and read() (to hand the module an IN_Q_OVERFLOW record,
 * or a malformed one, in place of what the kernel queued). The pure rules
 * are in test_file_rules.c.
 */
// TEST_SRCS: user/daemon/watch/watch_file.c user/daemon/watch/file_follow.c
// TEST_SRCS: user/daemon/watch/file_rules.c user/daemon/watch/watch_registry.c
// TEST_SRCS: user/daemon/watch/inotify_set.c
// TEST_SRCS: user/daemon/core/idmap.c user/daemon/core/loop.c user/common/util.c
// TEST_SRCS: user/daemon/core/log.c
// TEST_WRAPS: inotify_add_watch read
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "common/util.h"
#include "daemon/clients/reply.h"
#include "daemon/watch/file_follow.h"
#include "daemon/watch/file_rules.h"
#include "daemon/watch/watch_file.h"
#include "daemon/watch/watch_registry.h"
#include "inotify_records.h"

#define KC ctld_FileEventKind_FILE_CREATED
#define KM ctld_FileEventKind_FILE_MODIFIED
#define KW ctld_FileEventKind_FILE_CLOSED_WRITE
#define KD ctld_FileEventKind_FILE_DELETED
#define KMV ctld_FileEventKind_FILE_MOVED
#define KA ctld_FileEventKind_FILE_ATTRIB
#define KS ctld_FileEventKind_FILE_SIZE_REACHED
#define KO ctld_FileEventKind_FILE_OVERFLOW
#define KN ctld_FileEventKind_FILE_NONE

/* ------------------------------------------------------------ fakes */

#define MAX_SENT 64

struct sent {
	uint64_t session;
	pb_size_t which; /* ctld_Event_*_tag */
	ctld_FileEvent fe;
	uint64_t timeout_watch;
};

static struct {
	struct loop *loop;
	char dir[64];
	struct sent sent[MAX_SENT];
	int nsent;
	/* the last reply */
	ctld_Reply reply;
	int nreplies;
	/* inotify_add_watch(): fail with this errno for paths ending in fail_suffix */
	int fail_errno;
	const char *fail_suffix;
	/* read(): drain what the kernel queued, return this instead (once) */
	const void *fake_data;
	size_t fake_len;
	/* inotify_add_watch(): when the kernel refuses race_path with ENOENT,
	 * create the directories race_mkdir names right after (once), as a job's
	 * `mkdir -p` racing the daemon would */
	const char *race_path;
	const char *race_mkdir[4];
	/* a follower of our own (file_follow directly, as readiness uses it) */
	int follow_reports;
	bool follow_size_known;
	uint64_t follow_size;
} T;

int __real_inotify_add_watch(int fd, const char *path, uint32_t mask);
int __wrap_inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	size_t n = strlen(path), s = T.fail_suffix ? strlen(T.fail_suffix) : 0;

	int wd, err;

	if (T.fail_errno && n >= s &&
	    strcmp(path + n - s, T.fail_suffix ? T.fail_suffix : "") == 0) {
		errno = T.fail_errno;
		return -1;
	}
	wd = __real_inotify_add_watch(fd, path, mask);
	err = errno;
	if (wd < 0 && err == ENOENT && T.race_path && strcmp(path, T.race_path) == 0) {
		T.race_path = NULL;
		for (int i = 0; i < 4 && T.race_mkdir[i]; i++)
			assert_int_equal(mkdir(T.race_mkdir[i], 0755), 0);
	}
	errno = err;
	return wd;
}

ssize_t __real_read(int fd, void *buf, size_t len);
ssize_t __wrap_read(int fd, void *buf, size_t len)
{
	if (T.fake_data) {
		ssize_t n;

		while ((n = __real_read(fd, buf, len)) > 0) /* the kernel's records are lost */
			;
		memcpy(buf, T.fake_data, T.fake_len);
		T.fake_data = NULL;
		return (ssize_t)T.fake_len;
	}
	return __real_read(fd, buf, len);
}

static ctld_Event event;

ctld_Event *event_begin(pb_size_t which)
{
	memset(&event, 0, sizeof(event));
	event.which_kind = which;
	return &event;
}

int event_send(uint64_t session)
{
	struct sent *s;

	assert_true(T.nsent < MAX_SENT);
	s = &T.sent[T.nsent++];
	memset(s, 0, sizeof(*s));
	s->session = session;
	s->which = event.which_kind;
	if (s->which == ctld_Event_file_event_tag)
		s->fe = event.kind.file_event;
	if (s->which == ctld_Event_watch_timeout_tag)
		s->timeout_watch = event.kind.watch_timeout.watch;
	return 0;
}

const char *reply_peer_name(uint64_t session)
{
	(void)session;
	return "test";
}

ctld_Reply *reply_begin(struct request_ctx *ctx)
{
	(void)ctx;
	memset(&T.reply, 0, sizeof(T.reply));
	return &T.reply;
}

void reply_send(struct request_ctx *ctx)
{
	assert_false(ctx->replied);
	ctx->replied = true;
	T.nreplies++;
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
	T.reply.has_error = true;
	T.reply.error.code = code;
	T.reply.error.sys_errno = sys_errno;
	va_start(ap, fmt);
	vsnprintf(T.reply.error.text, sizeof(T.reply.error.text), fmt, ap);
	va_end(ap);
	reply_send(ctx);
}

/* ------------------------------------------------------------ helpers */

static int module_setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	log_set_level(LOG_ERR);
	strcpy(T.dir, "/tmp/test_watch_file.XXXXXX");
	if (!mkdtemp(T.dir) || loop_new(&T.loop) || file_follow_init(T.loop))
		return -1;
	watch_registry_init(3);
	watch_file_init(T.loop);
	return 0;
}

static int module_teardown(void **state)
{
	char cmd[128];

	(void)state;
	watch_registry_shutdown();
	file_follow_shutdown();
	loop_free(T.loop);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", T.dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
	static char bufs[4][PATH_MAX];
	static int next;
	char *p = bufs[next++ % 4];

	snprintf(p, PATH_MAX, "%s/%s", T.dir, name);
	return p;
}

static void touch(const char *path, size_t size)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0644);
	char buf[256] = { 0 };

	assert_true(fd >= 0);
	while (size) {
		size_t n = size < sizeof(buf) ? size : sizeof(buf);

		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		size -= n;
	}
	close(fd);
}

/* Sends WatchFile; returns the watch id, or 0 with T.reply holding the error. */
static uint64_t watch(uint64_t session, const char *path, uint32_t kinds, bool has_threshold,
		      uint64_t threshold, uint32_t timeout_ms, bool once)
{
	struct request_ctx ctx = { .session = session, .id = 1 };
	ctld_WatchFile req = { .kinds = kinds, .has_size_threshold = has_threshold,
			       .size_threshold = threshold, .timeout_ms = timeout_ms,
			       .once = once };

	snprintf(req.path, sizeof(req.path), "%s", path);
	watch_file_handle_watch(&ctx, &req);
	assert_true(ctx.replied);
	if (T.reply.has_error)
		return 0;
	assert_int_equal(T.reply.which_result, ctld_Reply_watch_tag);
	assert_true(T.reply.result.watch.watch > 0);
	return T.reply.result.watch.watch;
}

static ctld_ErrorCode unwatch(uint64_t session, uint64_t id)
{
	struct request_ctx ctx = { .session = session, .id = 2 };
	watch_registry_handle_unwatch(&ctx, id, ctld_WatchKind_WATCH_FILE);
	assert_true(ctx.replied);
	return T.reply.has_error ? T.reply.error.code : ctld_ErrorCode_OK;
}

static uint32_t file_watches(void)
{
	ctld_StatsReply st = { 0 };

	watch_registry_fill_stats(&st);
	return st.file_watches;
}

/* Runs the loop until `want` events were sent (or 2 s passed). */
static void pump_until(int want)
{
	uint64_t deadline = now_monotonic_ns() + 2 * NSEC_PER_SEC;

	while (T.nsent < want && now_monotonic_ns() < deadline)
		assert_int_equal(loop_run_once(T.loop, 20), 0);
}

/* Runs the loop for ms, for checking that nothing more comes. */
static void pump_for(int ms)
{
	uint64_t deadline = now_monotonic_ns() + (uint64_t)ms * NSEC_PER_MSEC;

	while (now_monotonic_ns() < deadline)
		assert_int_equal(loop_run_once(T.loop, 10), 0);
}

static void assert_event(int i, uint64_t watch, ctld_FileEventKind kind, uint64_t size)
{
	assert_true(i < T.nsent);
	assert_int_equal(T.sent[i].which, ctld_Event_file_event_tag);
	assert_int_equal(T.sent[i].fe.watch, watch);
	assert_int_equal(T.sent[i].fe.kind, kind);
	assert_int_equal(T.sent[i].fe.size, size);
}

/* Kernel watches held by this process's inotify instances. */
static int kernel_wds(void)
{
	char line[256];
	int n = 0;

	for (int fd = 0; fd < 64; fd++) {
		char p[64];
		FILE *f;

		snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
		if (!(f = fopen(p, "re")))
			continue;
		while (fgets(line, sizeof(line), f))
			n += strncmp(line, "inotify wd:", 11) == 0;
		fclose(f);
	}
	return n;
}

/* ------------------------------------------------------------ the module */

/* A file that does not exist yet: CREATED (and the close of the empty file
 * that created it, which its directory tells), then its own writes, its
 * size threshold, its deletion, and CREATED again for the next one. */
static void module_file_lifecycle(void **state)
{
	const char *p = tmp_path("log");
	uint64_t id;

	(void)state;
	id = watch(1, p, 0, true, 10, 0, false);
	assert_true(id);
	assert_int_equal(file_watches(), 1);
	touch(p, 0);
	pump_until(2);
	assert_event(0, id, KC, 0);
	assert_string_equal(T.sent[0].fe.path, p);
	assert_event(1, id, KW, 0);
	touch(p, 4);
	pump_until(4); /* MODIFIED, CLOSED_WRITE */
	assert_event(2, id, KM, 4);
	assert_event(3, id, KW, 4);
	touch(p, 6);
	pump_until(7);
	assert_event(4, id, KM, 10);
	assert_event(5, id, KS, 10);
	assert_event(6, id, KW, 10);
	assert_int_equal(unlink(p), 0);
	pump_until(8);
	assert_event(7, id, KD, 0); /* (the link count's ATTRIB is the inode's alone) */
	pump_for(50);
	assert_int_equal(T.nsent, 8); /* deleted once, though file and directory both said so */
	touch(p, 0);
	pump_until(9);
	assert_event(8, id, KC, 0);
	assert_int_equal(unwatch(1, id), ctld_ErrorCode_OK);
	assert_int_equal(file_watches(), 0);
	assert_int_equal(kernel_wds(), 0);
}

/* Request errors, each with the code and text a user can act on. */
static void module_request_errors(void **state)
{
	char text[PATH_MAX];

	(void)state;
	snprintf(text, sizeof(text), "directory %s/none does not exist", T.dir);
	assert_int_equal(watch(1, tmp_path("none/f"), 0, false, 0, 0, false), 0);
	assert_int_equal(T.reply.error.code, ctld_ErrorCode_NOT_FOUND);
	assert_string_equal(T.reply.error.text, text);
	assert_int_equal(watch(1, "rel/f", 0, false, 0, 0, false), 0);
	assert_int_equal(T.reply.error.code, ctld_ErrorCode_BAD_REQUEST);
	assert_int_equal(watch(1, tmp_path("../f"), 0, false, 0, 0, false), 0);
	assert_int_equal(T.reply.error.code, ctld_ErrorCode_BAD_REQUEST);
	assert_int_equal(watch(1, tmp_path("f"), 0x100, false, 0, 0, false), 0);
	assert_int_equal(T.reply.error.code, ctld_ErrorCode_BAD_REQUEST);
	assert_int_equal(watch(1, tmp_path("f"), KS, false, 0, 0, false), 0);
	assert_int_equal(T.reply.error.code, ctld_ErrorCode_BAD_REQUEST);
	assert_int_equal(unwatch(1, 12345), ctld_ErrorCode_NOT_FOUND);
	assert_int_equal(file_watches(), 0);
	assert_int_equal(kernel_wds(), 0);
}

/* EACCES and ENOSPC from inotify_add_watch, for the directory and for the
 * file; a failed request leaves no kernel watch behind. */
static void module_add_errors(void **state)
{
	const char *p = tmp_path("secret");

	(void)state;
	touch(p, 1);
	T.fail_errno = EACCES;
	T.fail_suffix = T.dir;
	assert_int_equal(watch(1, p, 0, false, 0, 0, false), 0);
	assert_int_equal(T.reply.error.code, ctld_ErrorCode_PERMISSION);
	assert_non_null(strstr(T.reply.error.text, T.dir));
	T.fail_suffix = "/secret";
	assert_int_equal(watch(1, p, 0, false, 0, 0, false), 0);
	assert_int_equal(T.reply.error.code, ctld_ErrorCode_PERMISSION);
	assert_non_null(strstr(T.reply.error.text, p));
	T.fail_errno = ENOSPC;
	assert_int_equal(watch(1, p, 0, false, 0, 0, false), 0);
	assert_int_equal(T.reply.error.code, ctld_ErrorCode_LIMIT);
	assert_string_equal(T.reply.error.text,
			    "inotify watch limit reached (fs.inotify.max_user_watches)");
	T.fail_errno = 0;
	assert_int_equal(file_watches(), 0);
	assert_int_equal(kernel_wds(), 0);
}

/* Watches of one file share its kernel watch; it goes with the last one.
 * The per-client limit counts per client; a gone client loses its watches. */
static void module_sharing_and_limits(void **state)
{
	const char *p = tmp_path("shared");
	uint64_t a[3], b;

	(void)state;
	touch(p, 0);
	for (int i = 0; i < 3; i++)
		assert_true((a[i] = watch(1, p, KM, false, 0, 0, false)));
	assert_int_equal(kernel_wds(), 2); /* directory + file */
	assert_int_equal(watch(1, tmp_path("x"), 0, false, 0, 0, false), 0);
	assert_int_equal(T.reply.error.code, ctld_ErrorCode_LIMIT);
	assert_true((b = watch(2, p, KM, false, 0, 0, false)));
	assert_int_equal(unwatch(2, a[0]), ctld_ErrorCode_NOT_FOUND);
	assert_int_equal(file_watches(), 4);
	touch(p, 3);
	pump_until(4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(T.sent[i].fe.size, 3);
	watch_registry_client_gone(1);
	assert_int_equal(file_watches(), 1);
	assert_int_equal(kernel_wds(), 2);
	assert_true(watch(1, p, KM, false, 0, 0, false)); /* the limit was freed too */
	watch_registry_client_gone(1);
	assert_int_equal(unwatch(2, b), ctld_ErrorCode_OK);
	assert_int_equal(kernel_wds(), 0);
}

/* Timeouts end the watch with WatchTimeout; once ends it after one event;
 * an already reached threshold fires right after the reply. */
static void module_timeout_once_threshold(void **state)
{
	const char *p = tmp_path("t");
	uint64_t tid, oid, sid;

	(void)state;
	assert_true((tid = watch(1, tmp_path("never"), 0, false, 0, 30, false)));
	pump_until(1);
	assert_int_equal(T.sent[0].which, ctld_Event_watch_timeout_tag);
	assert_int_equal(T.sent[0].timeout_watch, tid);
	assert_int_equal(unwatch(1, tid), ctld_ErrorCode_NOT_FOUND);

	touch(p, 100);
	assert_true((sid = watch(1, p, KS, true, 50, 0, false)));
	assert_int_equal(T.nsent, 2); /* at once, no loop round needed */
	assert_event(1, sid, KS, 100);

	assert_true((oid = watch(1, p, KM, false, 0, 30, true)));
	touch(p, 1);
	touch(p, 1);
	pump_for(100);
	assert_int_equal(T.nsent, 3); /* one MODIFIED, no WatchTimeout after it */
	assert_event(2, oid, KM, 102);
	assert_int_equal(unwatch(1, oid), ctld_ErrorCode_NOT_FOUND);
	assert_int_equal(unwatch(1, sid), ctld_ErrorCode_OK);
	assert_int_equal(file_watches(), 0);
}

/* After IN_Q_OVERFLOW every watch hears FILE_OVERFLOW, and what the lost
 * records would have said is found again by looking. */
static void module_overflow_rescan(void **state)
{
	uint8_t rec[sizeof(struct inotify_event)];
	const char *gone = tmp_path("gone"), *born = tmp_path("born");
	ctld_FileEventKind gk[2], nk[3];
	int ng = 0, nn = 0;
	uint64_t g, n;

	(void)state;
	touch(gone, 1);
	assert_true((g = watch(1, gone, KC | KD, false, 0, 0, false)));
	assert_true((n = watch(2, born, KC | KD, true, 3, 0, false)));
	put_record(rec, 0, -1, IN_Q_OVERFLOW, NULL, 0);
	T.fake_data = rec;
	T.fake_len = sizeof(rec);
	assert_int_equal(unlink(gone), 0);
	touch(born, 5);
	pump_until(5);
	pump_for(50);
	assert_int_equal(T.nsent, 5);
	/* per watch, in order: OVERFLOW, then the difference */
	for (int i = 0; i < T.nsent; i++) {
		const ctld_FileEvent *fe = &T.sent[i].fe;

		if (fe->watch == g)
			gk[ng++] = fe->kind;
		else if (fe->watch == n)
			nk[nn++] = fe->kind;
		if (fe->kind == KC || fe->kind == KS)
			assert_int_equal(fe->size, 5);
	}
	assert_int_equal(ng, 2);
	assert_int_equal(nn, 3);
	assert_int_equal(gk[0], KO);
	assert_int_equal(gk[1], KD);
	assert_int_equal(nk[0], KO);
	assert_int_equal(nk[1], KC);
	assert_int_equal(nk[2], KS);
	/* and the watches still work */
	assert_int_equal(unlink(born), 0);
	pump_until(6);
	assert_event(5, n, KD, 0);
	watch_registry_client_gone(1);
	watch_registry_client_gone(2);
	assert_int_equal(kernel_wds(), 0);
}

/* A malformed batch is dropped with a warning; the module keeps working. */
static void module_malformed_batch(void **state)
{
	uint8_t rec[sizeof(struct inotify_event) + 4];
	const char *p = tmp_path("m");
	uint64_t id;

	(void)state;
	touch(p, 0);
	assert_true((id = watch(1, p, KM, false, 0, 0, false)));
	put_header(rec, 0, 1, IN_CREATE, 64); /* claims 64 name bytes, has 4 */
	memcpy(rec + sizeof(struct inotify_event), "abc", 4);
	T.fake_data = rec;
	T.fake_len = sizeof(rec);
	touch(p, 1);
	pump_for(50);
	assert_int_equal(T.nsent, 0);
	touch(p, 1);
	pump_until(1);
	assert_event(0, id, KM, 2);
	watch_registry_client_gone(1);
}

static bool follow_changed(struct file_follow *f, ctld_FileEventKind kind, bool appeared,
			   bool size_known, uint64_t size)
{
	(void)f;
	(void)kind;
	(void)appeared;
	T.follow_reports++;
	T.follow_size_known = size_known;
	T.follow_size = size;
	return true;
}

/* A path whose directories do not exist yet (walk_up, as a readiness
 * condition follows it): the job creates them with `mkdir -p` while the
 * daemon is anchoring. For each directory on the way, it is created right
 * after the kernel refused its watch and before the ancestor's is added,
 * so no record of it ever comes; the follower must still find the file. */
static void module_directories_created_while_anchoring(void **state)
{
	static const struct file_follow_ops ops = { .changed = follow_changed };
	const char *a = tmp_path("a"), *b = tmp_path("a/b"), *file = tmp_path("a/b/pid");
	const char *races[][3] = { { b, a, b }, { a, a, b } }; /* refused path, then mkdirs */
	char failed[256];

	(void)state;
	for (size_t i = 0; i < sizeof(races) / sizeof(races[0]); i++) {
		struct file_follow f = { .ops = &ops };

		T.follow_reports = 0;
		T.race_path = races[i][0];
		T.race_mkdir[0] = races[i][1];
		T.race_mkdir[1] = races[i][2];
		assert_int_equal(file_follow_start(&f, file, strlen(b), true, failed,
						   sizeof(failed)), 0);
		assert_null(T.race_path); /* the race happened */
		touch(file, 12);
		pump_for(100);
		assert_true(T.follow_reports > 0);
		assert_true(T.follow_size_known);
		assert_int_equal(T.follow_size, 12);
		file_follow_stop(&f);
		assert_int_equal(kernel_wds(), 0);
		assert_int_equal(unlink(file), 0);
		assert_int_equal(rmdir(b), 0);
		assert_int_equal(rmdir(a), 0);
	}
}

#define MODULE_TEST(f) cmocka_unit_test_setup_teardown(f, module_setup, module_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		MODULE_TEST(module_file_lifecycle),
		MODULE_TEST(module_request_errors),
		MODULE_TEST(module_add_errors),
		MODULE_TEST(module_sharing_and_limits),
		MODULE_TEST(module_timeout_once_threshold),
		MODULE_TEST(module_overflow_rescan),
		MODULE_TEST(module_malformed_batch),
		MODULE_TEST(module_directories_created_while_anchoring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
