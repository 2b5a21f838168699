// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_file_access.c - the rules every remote path of a file request obeys
 * (absolute, naming a file), the error code each failed system call
 * answers with, and resolving a user: by name, by uid, unknown.
 */
// TEST_SRCS: user/daemon/files/file_access.c user/common/util.c
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/files/file_access.h"

/* Absolute paths that name a file pass; the others say why. */
static void file_path_rules(void **state)
{
	char err[200];

	(void)state;
	assert_int_equal(file_path_check("/srv/data.csv", err, sizeof(err)), 0);
	assert_int_equal(file_path_check("/a", err, sizeof(err)), 0);
	assert_int_equal(file_path_check("/a/..x", err, sizeof(err)), 0);
	assert_int_equal(file_path_check("relative/f", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the path must be absolute: \"relative/f\"");
	assert_int_equal(file_path_check("", err, sizeof(err)), -EINVAL);
	assert_int_equal(file_path_check("/", err, sizeof(err)), -EINVAL);
	assert_int_equal(file_path_check("/srv/", err, sizeof(err)), -EINVAL);
	assert_int_equal(file_path_check("/srv/.", err, sizeof(err)), -EINVAL);
	assert_int_equal(file_path_check("/srv/..", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "the path must name a file (not end in /, . or ..): \"/srv/..\"");
}

/* A missing file is NOT_FOUND, a refusal PERMISSION, the rest SYSTEM. */
static void file_errno_codes(void **state)
{
	(void)state;
	assert_int_equal(file_errno_code(ENOENT), ctld_ErrorCode_NOT_FOUND);
	assert_int_equal(file_errno_code(ENOTDIR), ctld_ErrorCode_NOT_FOUND);
	assert_int_equal(file_errno_code(EACCES), ctld_ErrorCode_PERMISSION);
	assert_int_equal(file_errno_code(EPERM), ctld_ErrorCode_PERMISSION);
	assert_int_equal(file_errno_code(EROFS), ctld_ErrorCode_PERMISSION);
	assert_int_equal(file_errno_code(ENOSPC), ctld_ErrorCode_SYSTEM);
	assert_int_equal(file_errno_code(EIO), ctld_ErrorCode_SYSTEM);
}

/* "" is the daemon's own rights; root by name and by number; an unknown
 * name is an error, an unknown number a bare uid without groups. */
static void file_user_names(void **state)
{
	struct file_user u;
	char err[200];

	(void)state;
	assert_int_equal(file_user_resolve("", &u, err, sizeof(err)), 0);
	assert_false(u.set);
	assert_int_equal(file_user_resolve("root", &u, err, sizeof(err)), 0);
	assert_true(u.set);
	assert_int_equal(u.uid, 0);
	assert_int_equal(file_user_resolve("4000123", &u, err, sizeof(err)), 0);
	assert_int_equal(u.uid, 4000123);
	assert_int_equal(u.gid, 4000123);
	assert_int_equal(u.ngroups, 0);
	assert_int_equal(file_user_resolve("no-such-user-here", &u, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "no such user: no-such-user-here");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(file_path_rules),
		cmocka_unit_test(file_errno_codes),
		cmocka_unit_test(file_user_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
