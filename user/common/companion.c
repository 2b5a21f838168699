// SPDX-License-Identifier: BSD-2-Clause
/*
 * companion.c - see companion.h. Next to the executable first, so a build
 * tree never picks up an older installed copy.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/companion.h"
#include "common/util.h"

int companion_find(const char *name, int amode, char *path, size_t size)
{
	static const char *const beside_exe[] = { "", "/../libexec/ctld-bpf" };
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/'))) {
			*slash = '\0';
			/* beside it (the build tree), or PREFIX/libexec/ctld-bpf
			 * for PREFIX/sbin/ctld-bpf (an install under any prefix) */
			for (size_t i = 0; i < ARRAY_SIZE(beside_exe); i++)
				if (snprintf(path, size, "%s%s/%s", self, beside_exe[i], name) <
					    (int)size &&
				    access(path, amode) == 0)
					return 0;
		}
	}
	snprintf(path, size, "%s/%s", CTLD_LIBEXECDIR, name);
	return access(path, amode) == 0 ? 0 : -ENOENT;
}
