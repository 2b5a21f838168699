// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_cgroup_find.c - finding the pids hierarchy and the daemon's cgroup
 * in it from the texts of /proc/self/mountinfo and /proc/self/cgroup: a
 * hybrid host (cgroup v1 controllers beside a unified v2 mount, as on the
 * machine these tests were written on), a pure v2 host, octal escapes in
 * mount points, a bind-mounted part of a hierarchy (a container's view),
 * and lists of controllers.
 */
// TEST_SRCS: user/daemon/kernel/cgroup_find.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/kernel/cgroup_find.h"

static struct cgroup_mount v2, v1;
static char out[PATH_MAX];

static const char hybrid_mountinfo[] =
	"22 1 0:21 / / rw,relatime - overlay overlay rw\n"
	"31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
	"32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	"33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
	"39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
	"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
	"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

static const char hybrid_cgroup[] = "9:name=systemd:/\n"
				    "8:pids:/lab/run1\n"
				    "4:memory:/process_api/67de\n"
				    "2:cpu,cpuacct:/\n"
				    "0::/\n";

/* Hybrid: the v1 mount with the pids option (not cpu's, not name=systemd's)
 * and the unified v2 mount are both found; the daemon's cgroup is read
 * from the line of each. */
static void find_hybrid(void **state)
{
	(void)state;
	cgroup_find_mounts(hybrid_mountinfo, &v2, &v1);
	assert_int_equal(v1.kind, CGROUP_V1);
	assert_string_equal(v1.point, "/sys/fs/cgroup/pids");
	assert_string_equal(v1.root, "/");
	assert_int_equal(v2.kind, CGROUP_V2);
	assert_string_equal(v2.point, "/sys/fs/cgroup/unified");
	assert_int_equal(cgroup_find_path(hybrid_cgroup, CGROUP_V1, out, sizeof(out)), 0);
	assert_string_equal(out, "/lab/run1");
	assert_int_equal(cgroup_find_path(hybrid_cgroup, CGROUP_V2, out, sizeof(out)), 0);
	assert_string_equal(out, "/");
	assert_int_equal(cgroup_find_dir(&v1, "/lab/run1", out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/pids/lab/run1");
	assert_int_equal(cgroup_find_dir(&v2, "/", out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/unified");
}

/* Pure v2: no v1 mount; a mount point with a space comes octal-escaped. */
static void find_pure_v2(void **state)
{
	static const char mi[] = "30 23 0:26 / /sys/fs/my\\040cgroup rw,nosuid - cgroup2 "
				 "cgroup2 rw,nsdelegate,memory_recursiveprot\n";

	(void)state;
	cgroup_find_mounts(mi, &v2, &v1);
	assert_int_equal(v1.kind, CGROUP_NONE);
	assert_int_equal(v2.kind, CGROUP_V2);
	assert_string_equal(v2.point, "/sys/fs/my cgroup");
	assert_int_equal(cgroup_find_path("0::/system.slice/ctld.service\n", CGROUP_V2, out,
					  sizeof(out)),
			 0);
	assert_string_equal(out, "/system.slice/ctld.service");
	assert_int_equal(cgroup_find_path("0::/x\n", CGROUP_V1, out, sizeof(out)), -ENOENT);
}

/* A container sees part of the hierarchy: the cgroup path is relative to
 * the mount's root, and a cgroup outside that part has no directory. */
static void find_bind_mounted_part(void **state)
{
	static const char mi[] =
		"50 40 0:36 /lab /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";

	(void)state;
	cgroup_find_mounts(mi, &v2, &v1);
	assert_int_equal(v2.kind, CGROUP_NONE);
	assert_int_equal(v1.kind, CGROUP_V1);
	assert_string_equal(v1.root, "/lab");
	assert_int_equal(cgroup_find_dir(&v1, "/lab/run1", out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/pids/run1");
	assert_int_equal(cgroup_find_dir(&v1, "/lab", out, sizeof(out)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/pids");
	assert_int_equal(cgroup_find_dir(&v1, "/labx/run1", out, sizeof(out)), -EXDEV);
	assert_int_equal(cgroup_find_dir(&v1, "/other", out, sizeof(out)), -EXDEV);
}

/* Broken lines are skipped, never half-read; paths that do not fit are refused. */
static void find_odd_input(void **state)
{
	static const char mi[] = "garbage\n"
				 "1 2 3\n"
				 "39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup\n"
				 "40 31 0:36 / /p rw - cgroup cgroup rw,pids";
	char small[4];

	(void)state;
	cgroup_find_mounts(mi, &v2, &v1);
	assert_int_equal(v1.kind, CGROUP_V1);
	assert_string_equal(v1.point, "/p");
	cgroup_find_mounts("", &v2, &v1);
	assert_int_equal(v1.kind, CGROUP_NONE);
	assert_int_equal(cgroup_find_path("8:pids:/long/path\n", CGROUP_V1, small, sizeof(small)),
			 -ENAMETOOLONG);
	assert_int_equal(cgroup_find_path("8:pidsx:/a\n3:pids,cpu:/b", CGROUP_V1, out, sizeof(out)),
			 0);
	assert_string_equal(out, "/b");
}

/* Controller lists: whole words only, separated by spaces or commas. */
static void find_words(void **state)
{
	(void)state;
	assert_true(cgroup_find_word("cpuset cpu io memory pids\n", "pids"));
	assert_true(cgroup_find_word("pids", "pids"));
	assert_true(cgroup_find_word("rw,pids,cpu", "pids"));
	assert_false(cgroup_find_word("hugetlb\n", "pids"));
	assert_false(cgroup_find_word("mypids pidsx", "pids"));
	assert_false(cgroup_find_word("", "pids"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(find_hybrid),		  cmocka_unit_test(find_pure_v2),
		cmocka_unit_test(find_bind_mounted_part), cmocka_unit_test(find_odd_input),
		cmocka_unit_test(find_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
