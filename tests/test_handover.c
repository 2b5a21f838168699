// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_handover.c - the state an upgrade in place hands to the next image
 * (daemon/core/handover.c), written and read back in one process, as the
 * two images do across execve: records come back by kind and in order,
 * kept descriptors lose FD_CLOEXEC until the exec and get it back when
 * read, unclaimed ones are closed, an abort restores everything, and a
 * memfd that is not a handover (garbage, truncated) is refused.
 */
// TEST_SRCS: user/daemon/core/handover.c user/daemon/core/log.c user/daemon/core/loop.c
// TEST_SRCS: user/common/util.c
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/core/handover.h"

static bool cloexec(int fd)
{
	return fcntl(fd, F_GETFD) & FD_CLOEXEC;
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_records_and_descriptors_round_trip(void **state)
{
	struct handover *h;
	const void *data;
	uint16_t version;
	size_t it = 0, len;
	int p[2], q[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(q, O_CLOEXEC), 0);
	assert_int_equal(handover_begin(&h), 0);
	assert_int_equal(handover_put(h, HANDOVER_JOB, 1, "first", 5), 0);
	assert_int_equal(handover_put(h, HANDOVER_LISTENER, 1, "L", 1), 0);
	assert_int_equal(handover_put(h, HANDOVER_JOB, 2, "second!", 7), 0);
	assert_int_equal(handover_keep_fd(h, p[0]), 0);
	assert_int_equal(handover_keep_fd(h, q[0]), 0);
	assert_int_equal(handover_keep_fd(h, -1), 0); /* "no descriptor" is fine */
	assert_false(cloexec(p[0]));
	assert_int_equal(handover_finish(h), 0);
	assert_non_null(getenv(HANDOVER_ENV));

	handover_free(h); /* the "exec": the next image owns it all now */

	/* the next image (here: the same process) */
	assert_int_equal(handover_load(), 1);
	assert_null(getenv(HANDOVER_ENV));
	assert_true(handover_loaded());
	assert_true(cloexec(p[0]) && cloexec(q[0]));
	assert_true(handover_next(&it, HANDOVER_JOB, &version, &data, &len));
	assert_int_equal(version, 1);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "first", 5);
	assert_true(handover_next(&it, HANDOVER_JOB, &version, &data, &len));
	assert_int_equal(version, 2);
	assert_memory_equal(data, "second!", 7);
	assert_false(handover_next(&it, HANDOVER_JOB, &version, &data, &len));
	it = 0;
	assert_true(handover_next(&it, HANDOVER_LISTENER, &version, &data, &len));
	assert_false(handover_claim_fd(p[1])); /* never handed over */
	assert_true(handover_claim_fd(p[0]));
	assert_false(handover_claim_fd(p[0])); /* once */
	handover_release();
	assert_true(is_open(p[0]));
	assert_false(is_open(q[0])); /* nobody took it */
	assert_false(handover_loaded());
	close(p[0]);
	close(p[1]);
	close(q[1]);
}

static void test_abort_restores_cloexec(void **state)
{
	struct handover *h;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(handover_begin(&h), 0);
	assert_int_equal(handover_keep_fd(h, p[0]), 0);
	assert_int_equal(handover_finish(h), 0);
	handover_abort(h);
	assert_true(cloexec(p[0]));
	assert_null(getenv(HANDOVER_ENV));
	close(p[0]);
	close(p[1]);
}

static void load_bytes(const void *bytes, size_t len, int expect)
{
	int fd = memfd_create("t", 0);
	char num[16];

	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	snprintf(num, sizeof(num), "%d", fd);
	setenv(HANDOVER_ENV, num, 1);
	assert_int_equal(handover_load(), expect);
	assert_false(handover_loaded());
	assert_false(is_open(fd)); /* the memfd is closed whatever it held */
}

static void test_garbage_is_refused(void **state)
{
	static const char magic_only[8] = "CTLDHND1";
	static const char truncated[] = "CTLDHND1\xff\xff\x01\x00\x40\x00\x00\x00";

	(void)state;
	load_bytes("not a handover at all", 21, -EBADMSG);
	load_bytes(magic_only, sizeof(magic_only), -EBADMSG); /* no descriptor list */
	load_bytes(truncated, sizeof(truncated) - 1, -EBADMSG);
	setenv(HANDOVER_ENV, "12abc", 1);
	assert_int_equal(handover_load(), -EBADF);
	assert_null(getenv(HANDOVER_ENV));
	assert_int_equal(handover_load(), 0); /* no handover: a first start */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_and_descriptors_round_trip),
		cmocka_unit_test(test_abort_restores_cloexec),
		cmocka_unit_test(test_garbage_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
