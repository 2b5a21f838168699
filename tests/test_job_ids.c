// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_job_ids.c - job ids reserved in blocks from the state directory's
 * next-job-id counter (daemon/jobs/job_ids.c): a new directory starts at 1,
 * each instance takes the block after the last one reserved (also when one
 * runs out of its block while another instance reserved in between), the
 * reservation reaches the disk before its first id is used but not at
 * start-up (fsync counted by a wrap), a failing fsync hands out no id, and
 * a counter file that holds no id is refused at start-up, naming the file.
 */
// TEST_SRCS: user/daemon/jobs/job_ids.c user/daemon/core/log.c user/daemon/core/loop.c
// TEST_SRCS: user/common/util.c
// TEST_WRAPS: fsync
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/jobs/job_ids.h"

static struct {
	char dir[64];
	int fsyncs;      /* calls of fsync() */
	int fsync_errno; /* nonzero: fsync() fails with it */
} T;

int __real_fsync(int fd);
int __wrap_fsync(int fd)
{
	T.fsyncs++;
	if (T.fsync_errno) {
		errno = T.fsync_errno;
		return -1;
	}
	return __real_fsync(fd);
}

static void counter_path(char *path, size_t len)
{
	snprintf(path, len, "%s/next-job-id", T.dir);
}

static void write_counter_file(const char *text)
{
	char path[128];
	FILE *f;

	counter_path(path, sizeof(path));
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static uint64_t read_counter_file(void)
{
	char path[128], buf[32] = "";
	FILE *f;

	counter_path(path, sizeof(path));
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	return strtoull(buf, NULL, 10);
}

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	snprintf(T.dir, sizeof(T.dir), "/tmp/ctld-test-job-ids-XXXXXX");
	return mkdtemp(T.dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[128];

	(void)state;
	job_ids_close();
	counter_path(path, sizeof(path));
	unlink(path);
	return rmdir(T.dir);
}

static void open_ok(void)
{
	char why[256] = "";

	assert_int_equal(job_ids_open(T.dir, why, sizeof(why)), 0);
}

/* Takes n ids; returns the last. */
static uint64_t take_ids(int n)
{
	uint64_t id = 0;

	while (n--)
		id = job_ids_next();
	return id;
}

static void test_a_new_directory_starts_at_one(void **state)
{
	(void)state;
	open_ok();
	assert_int_equal(job_ids_first(), 1);
	assert_int_equal(job_ids_peek(), 1);
	assert_int_equal(job_ids_next(), 1);
	assert_int_equal(job_ids_next(), 2);
	assert_int_equal(job_ids_peek(), 3);
	assert_int_equal(read_counter_file(), 1 + JOB_IDS_BLOCK);
}

static void test_the_next_instance_takes_the_next_block(void **state)
{
	(void)state;
	open_ok();
	assert_int_equal(job_ids_next(), 1);
	job_ids_close();
	open_ok(); /* a restart: ids of the first instance are never given again */
	assert_int_equal(job_ids_first(), 1 + JOB_IDS_BLOCK);
	assert_int_equal(job_ids_next(), 1 + JOB_IDS_BLOCK);
	assert_int_equal(read_counter_file(), 1 + 2 * JOB_IDS_BLOCK);
}

static void test_a_used_up_block_is_followed_by_the_next_free_one(void **state)
{
	(void)state;
	open_ok();
	assert_int_equal(take_ids(JOB_IDS_BLOCK), JOB_IDS_BLOCK);
	write_counter_file("5000\n"); /* another instance reserved up to here */
	assert_int_equal(job_ids_next(), 5000);
	assert_int_equal(job_ids_first(), 1);
	assert_int_equal(read_counter_file(), 5000 + JOB_IDS_BLOCK);
}

static void test_the_disk_is_waited_for_at_a_block_first_id_not_at_start(void **state)
{
	(void)state;
	open_ok();
	assert_int_equal(T.fsyncs, 0); /* start-up does not wait for the disk */
	assert_int_equal(job_ids_next(), 1);
	assert_int_equal(T.fsyncs, 1);
	take_ids(JOB_IDS_BLOCK - 1);
	assert_int_equal(T.fsyncs, 1);
	assert_int_equal(job_ids_next(), 1 + JOB_IDS_BLOCK); /* a new block */
	assert_int_equal(T.fsyncs, 2);
}

static void test_no_id_while_the_reservation_cannot_reach_the_disk(void **state)
{
	(void)state;
	open_ok();
	T.fsync_errno = EIO;
	assert_int_equal(job_ids_next(), 0);
	assert_int_equal(job_ids_next(), 0);
	T.fsync_errno = 0; /* the disk is back: the block's ids, none skipped */
	assert_int_equal(job_ids_next(), 1);
	assert_int_equal(job_ids_next(), 2);
	assert_int_equal(T.fsyncs, 3);
}

static void test_a_counter_that_holds_no_id_is_refused(void **state)
{
	static const char *const bad[] = { "abc\n", "0\n", "12x\n", "-3\n" };
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_counter_file(bad[i]);
		why[0] = '\0';
		assert_int_equal(job_ids_open(T.dir, why, sizeof(why)), -EBADMSG);
		assert_non_null(strstr(why, "next-job-id"));
		assert_non_null(strstr(why, "does not hold a job id"));
		assert_int_equal(job_ids_next(), 0); /* closed: nothing handed out */
	}
}

static void test_without_a_state_directory_ids_start_at_one(void **state)
{
	char why[8];

	(void)state;
	assert_int_equal(job_ids_open(NULL, why, sizeof(why)), 0);
	assert_int_equal(job_ids_next(), 1);
	assert_int_equal(job_ids_next(), 2);
	assert_int_equal(T.fsyncs, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_new_directory_starts_at_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_next_instance_takes_the_next_block, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_a_used_up_block_is_followed_by_the_next_free_one,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_the_disk_is_waited_for_at_a_block_first_id_not_at_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_id_while_the_reservation_cannot_reach_the_disk,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_counter_that_holds_no_id_is_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_without_a_state_directory_ids_start_at_one,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
