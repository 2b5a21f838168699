// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_file_rules.c - the pure rules of file watches: path normalisation,
 * the kinds a request delivers, the kernel mask -> FileEventKind mapping,
 * the CREATED-for-a-rename rule, the threshold decision and the
 * bounds-checked record parser.
 */
// TEST_SRCS: user/daemon/watch/file_rules.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>

#include <cmocka.h>

#include "daemon/watch/file_rules.h"
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

/* ------------------------------------------------------------ pure pieces */

static void check_norm(const char *in, int err, const char *out, size_t parent)
{
	char buf[64];
	size_t parent_len = 999;

	assert_int_equal(file_rules_normalize_path(in, buf, sizeof(buf), &parent_len), err);
	if (err)
		return;
	assert_string_equal(buf, out);
	assert_int_equal(parent_len, parent);
}

/* One spelling per file, so two requests for it share everything. */
static void normalize_path_cases(void **state)
{
	(void)state;
	check_norm("/a/b", 0, "/a/b", 2);
	check_norm("//a//./b/", 0, "/a/b", 2);
	check_norm("/f", 0, "/f", 0);
	check_norm("/./f/.", 0, "/f", 0);
	check_norm("/a/..b/c..", 0, "/a/..b/c..", 6);
	check_norm("/a/b/../c", -EINVAL, NULL, 0);
	check_norm("/..", -EINVAL, NULL, 0);
	check_norm("relative/f", -EINVAL, NULL, 0);
	check_norm("", -EINVAL, NULL, 0);
	check_norm("/", -EINVAL, NULL, 0);
	check_norm("/././/", -EINVAL, NULL, 0);
}

/* The output buffer is never overrun: a path that fits exactly is kept,
 * one byte more is -ENAMETOOLONG. */
static void normalize_path_bounds(void **state)
{
	char out[8];
	size_t parent;

	(void)state;
	memset(out, 'X', sizeof(out));
	assert_int_equal(file_rules_normalize_path("/abc/ef", out, sizeof(out), &parent), 0);
	assert_string_equal(out, "/abc/ef");
	assert_int_equal(file_rules_normalize_path("/abc/efg", out, sizeof(out), &parent),
			 -ENAMETOOLONG);
	assert_int_equal(file_rules_normalize_path("/a", out, 0, &parent), -ENAMETOOLONG);
	assert_int_equal(file_rules_normalize_path(NULL, out, sizeof(out), &parent), -EINVAL);
}

/* 0 means all about the file; overflow is always on, the threshold event
 * whenever a threshold is set; bits outside the enum are refused. */
static void effective_kinds(void **state)
{
	uint32_t k;

	(void)state;
	assert_int_equal(file_rules_effective_kinds(0, false, &k), 0);
	assert_int_equal(k, FILE_KINDS_DEFAULT | KO);
	assert_int_equal(k & KS, 0);
	assert_int_equal(file_rules_effective_kinds(0, true, &k), 0);
	assert_int_equal(k, FILE_KINDS_DEFAULT | KO | KS);
	assert_int_equal(file_rules_effective_kinds(KM, false, &k), 0);
	assert_int_equal(k, KM | KO);
	assert_int_equal(file_rules_effective_kinds(KS, true, &k), 0);
	assert_int_equal(k, KS | KO);
	assert_int_equal(file_rules_effective_kinds(KD | KM, true, &k), 0);
	assert_int_equal(k, KD | KM | KS | KO);
	assert_int_equal(file_rules_effective_kinds(KS, false, &k), -EINVAL);
	assert_int_equal(file_rules_effective_kinds(256, false, &k), -EINVAL);
	assert_int_equal(file_rules_effective_kinds(KC | 0x80000000u, false, &k), -EINVAL);
	assert_int_equal(file_rules_effective_kinds(FILE_KINDS_ALL, true, &k), 0);
}

/* Directory records speak of names, the file's own of itself; each side
 * ignores the bits that only the other role asked for. */
static void kind_of_masks(void **state)
{
	(void)state;
	/* entries of the parent directory */
	assert_int_equal(file_rules_kind_of(IN_CREATE, true), KC);
	assert_int_equal(file_rules_kind_of(IN_CREATE | IN_ISDIR, true), KC);
	assert_int_equal(file_rules_kind_of(IN_MOVED_TO, true), KMV);
	assert_int_equal(file_rules_kind_of(IN_MOVED_FROM, true), KMV);
	assert_int_equal(file_rules_kind_of(IN_DELETE, true), KD);
	assert_int_equal(file_rules_kind_of(IN_DELETE | IN_ISDIR, true), KD);
	assert_int_equal(file_rules_kind_of(IN_MODIFY, true), KN);
	assert_int_equal(file_rules_kind_of(IN_ATTRIB, true), KN);
	assert_int_equal(file_rules_kind_of(IN_CLOSE_WRITE, true), KN);
	/* the file itself */
	assert_int_equal(file_rules_kind_of(IN_MODIFY, false), KM);
	assert_int_equal(file_rules_kind_of(IN_CLOSE_WRITE, false), KW);
	assert_int_equal(file_rules_kind_of(IN_ATTRIB, false), KA);
	assert_int_equal(file_rules_kind_of(IN_DELETE_SELF, false), KD);
	assert_int_equal(file_rules_kind_of(IN_MOVE_SELF, false), KMV);
	assert_int_equal(file_rules_kind_of(IN_CREATE, false), KN);
	assert_int_equal(file_rules_kind_of(IN_CLOSE_NOWRITE, false), KN);
	assert_int_equal(file_rules_kind_of(IN_OPEN | IN_ACCESS, false), KN);
	assert_int_equal(file_rules_kind_of(IN_IGNORED, false), KN);
	assert_int_equal(file_rules_kind_of(IN_UNMOUNT, false), KN);
	/* the queue */
	assert_int_equal(file_rules_kind_of(IN_Q_OVERFLOW, false), KO);
	assert_int_equal(file_rules_kind_of(IN_Q_OVERFLOW, true), KO);
}

/* A client that only wants CREATED still learns that the file appeared
 * when an atomic writer renamed it into place; nobody gets unwanted kinds. */
static void deliver_kind_rules(void **state)
{
	uint32_t created = KC | KO, moved = KMV | KO, both = KC | KMV | KO;

	(void)state;
	assert_int_equal(file_rules_deliver_kind(KMV, created, true), KC);
	assert_int_equal(file_rules_deliver_kind(KMV, created, false), KN);
	assert_int_equal(file_rules_deliver_kind(KMV, moved, true), KMV);
	assert_int_equal(file_rules_deliver_kind(KMV, both, true), KMV);
	assert_int_equal(file_rules_deliver_kind(KC, moved, true), KN);
	assert_int_equal(file_rules_deliver_kind(KM, created, false), KN);
	assert_int_equal(file_rules_deliver_kind(KO, created, false), KO);
	assert_int_equal(file_rules_deliver_kind(KS, KS | KO, false), KS);
	assert_int_equal(file_rules_deliver_kind(KN, FILE_KINDS_ALL, true), KN);
}

/* ">= threshold", once, and only when one was asked for (0 is a threshold). */
static void threshold_due(void **state)
{
	(void)state;
	assert_false(file_rules_threshold_due(true, false, 100, 99));
	assert_true(file_rules_threshold_due(true, false, 100, 100));
	assert_true(file_rules_threshold_due(true, false, 100, 5000));
	assert_false(file_rules_threshold_due(true, true, 100, 5000));
	assert_false(file_rules_threshold_due(false, false, 100, 5000));
	assert_true(file_rules_threshold_due(true, false, 0, 0));
	assert_true(file_rules_threshold_due(true, false, UINT64_MAX, UINT64_MAX));
	assert_false(file_rules_threshold_due(true, false, UINT64_MAX, UINT64_MAX - 1));
}

struct rec {
	int wd;
	uint32_t mask, cookie;
	char name[32];
	bool has_name;
};

static struct rec recs[8];
static int nrecs;

static void collect(int wd, uint32_t mask, uint32_t cookie, const char *name, void *ctx)
{
	assert_ptr_equal(ctx, &nrecs);
	assert_true(nrecs < 8);
	recs[nrecs] = (struct rec){ .wd = wd, .mask = mask, .cookie = cookie, .has_name = !!name };
	if (name)
		snprintf(recs[nrecs].name, sizeof(recs[nrecs].name), "%s", name);
	nrecs++;
}

/* Whole batches come out record by record, with padded names cut at NUL. */
static void parse_good_batch(void **state)
{
	uint8_t raw[512], *buf = raw + 1; /* deliberately misaligned */
	size_t len = 0;

	(void)state;
	len = put_record(buf, len, 1, IN_MODIFY, NULL, 0);
	len = put_record(buf, len, 2, IN_CREATE, "file.txt", 16);
	len = put_record(buf, len, 2, IN_DELETE, "x", 2);
	len = put_record(buf, len, 3, IN_ATTRIB, NULL, 16); /* padding only: no name */
	len = put_record(buf, len, -1, IN_Q_OVERFLOW, NULL, 0);
	nrecs = 0;
	assert_int_equal(file_rules_parse_records(buf, len, collect, &nrecs), (ssize_t)len);
	assert_int_equal(nrecs, 5);
	assert_int_equal(recs[0].wd, 1);
	assert_int_equal(recs[0].mask, IN_MODIFY);
	assert_false(recs[0].has_name);
	assert_int_equal(recs[1].cookie, 7);
	assert_string_equal(recs[1].name, "file.txt");
	assert_string_equal(recs[2].name, "x");
	assert_false(recs[3].has_name);
	assert_int_equal(recs[4].wd, -1);
	assert_int_equal(recs[4].mask, IN_Q_OVERFLOW);
	nrecs = 0;
	assert_int_equal(file_rules_parse_records(buf, 0, collect, &nrecs), 0);
	assert_int_equal(nrecs, 0);
}

/* A header cut short, a name running past the buffer, or a name with no
 * NUL stops the walk; the records before it were delivered. */
static void parse_bad_batches(void **state)
{
	uint8_t buf[512];
	size_t len;

	(void)state;
	len = put_record(buf, 0, 1, IN_MODIFY, NULL, 0);
	nrecs = 0;
	assert_int_equal(file_rules_parse_records(buf, len + 8, collect, &nrecs), -EBADMSG);
	assert_int_equal(nrecs, 1);

	len = put_record(buf, 0, 1, IN_MODIFY, NULL, 0);
	len = put_record(buf, len, 2, IN_CREATE, "name", 16);
	nrecs = 0;
	assert_int_equal(file_rules_parse_records(buf, len - 1, collect, &nrecs), -EBADMSG);
	assert_int_equal(nrecs, 1);

	len = put_record(buf, 0, 2, IN_CREATE, "12345678", 8); /* no room for the NUL */
	nrecs = 0;
	assert_int_equal(file_rules_parse_records(buf, len, collect, &nrecs), -EBADMSG);
	assert_int_equal(nrecs, 0);

	len = put_header(buf, 0, 2, IN_CREATE, UINT32_MAX - 4); /* off + len would wrap */
	nrecs = 0;
	assert_int_equal(file_rules_parse_records(buf, len + 16, collect, &nrecs), -EBADMSG);
	assert_int_equal(nrecs, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(normalize_path_cases),
		cmocka_unit_test(normalize_path_bounds),
		cmocka_unit_test(effective_kinds),
		cmocka_unit_test(kind_of_masks),
		cmocka_unit_test(deliver_kind_rules),
		cmocka_unit_test(threshold_due),
		cmocka_unit_test(parse_good_batch),
		cmocka_unit_test(parse_bad_batches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
