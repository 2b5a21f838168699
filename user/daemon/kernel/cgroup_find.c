// SPDX-License-Identifier: BSD-2-Clause
/*
 * cgroup_find.c - the pids hierarchy and the daemon's cgroup in it, from
 * the texts of /proc/self/mountinfo and /proc/self/cgroup (see the header).
 *
 * A mountinfo line: "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup
 * cgroup rw,pids": the root of the mount and its mount point are the 4th
 * and 5th fields (octal-escaped, "\040" for a space), optional fields may
 * follow until " - ", then the file system type, the source and the super
 * block options, where a v1 hierarchy names its controllers.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "daemon/kernel/cgroup_find.h"

bool cgroup_find_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n) {
		bool starts = p == list || p[-1] == ' ' || p[-1] == ',' || p[-1] == '\n';
		char after = p[n];

		if (starts && (after == '\0' || after == ' ' || after == ',' || after == '\n'))
			return true;
	}
	return false;
}

/* Copies the next space-separated field of *p into out, undoing mountinfo's
 * octal escapes; false when there is none or it does not fit. */
static bool next_field(const char **p, char *out, size_t len)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ')
		s++;
	if (!*s || *s == '\n')
		return false;
	for (; *s && *s != ' ' && *s != '\n'; s++) {
		char c = *s;

		if (c == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			c = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		}
		if (n + 1 >= len)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	*p = s;
	return true;
}

/* One mountinfo line (up to its newline) into m, if it is a cgroup mount:
 * which kind it is (v1 only with the pids controller). */
static void parse_mount(const char *line, struct cgroup_mount *m)
{
	char field[PATH_MAX], fstype[32], source[64], opts[512];
	const char *p = line, *dash = strstr(line, " - ");
	const char *eol = strchr(line, '\n');

	m->kind = CGROUP_NONE;
	if (!dash || (eol && dash > eol))
		return;
	for (int i = 0; i < 3; i++)
		if (!next_field(&p, field, sizeof(field)))
			return;
	if (!next_field(&p, m->root, sizeof(m->root)) ||
	    !next_field(&p, m->point, sizeof(m->point)))
		return;
	p = dash + 3;
	if (!next_field(&p, fstype, sizeof(fstype)) || !next_field(&p, source, sizeof(source)) ||
	    !next_field(&p, opts, sizeof(opts)))
		return;
	if (strcmp(fstype, "cgroup2") == 0)
		m->kind = CGROUP_V2;
	else if (strcmp(fstype, "cgroup") == 0 && cgroup_find_word(opts, "pids"))
		m->kind = CGROUP_V1;
}

void cgroup_find_mounts(const char *mountinfo, struct cgroup_mount *v2, struct cgroup_mount *v1)
{
	static struct cgroup_mount m;

	v2->kind = v1->kind = CGROUP_NONE;
	for (const char *line = mountinfo; line && *line;) {
		const char *eol = strchr(line, '\n');

		parse_mount(line, &m);
		if (m.kind == CGROUP_V2 && v2->kind == CGROUP_NONE)
			*v2 = m;
		else if (m.kind == CGROUP_V1 && v1->kind == CGROUP_NONE)
			*v1 = m;
		line = eol ? eol + 1 : NULL;
	}
}

int cgroup_find_path(const char *proc_cgroup, enum cgroup_kind kind, char *path, size_t len)
{
	for (const char *line = proc_cgroup; line && *line;) {
		const char *eol = strchr(line, '\n'), *c1 = strchr(line, ':'), *c2;
		size_t n;

		if (!eol)
			eol = line + strlen(line);
		if (c1 && c1 < eol && (c2 = strchr(c1 + 1, ':')) && c2 < eol) {
			char ctrls[256];
			size_t clen = (size_t)(c2 - c1 - 1);
			bool v2 = c1 - line == 1 && line[0] == '0' && clen == 0;

			snprintf(ctrls, sizeof(ctrls), "%.*s", (int)clen, c1 + 1);
			if ((kind == CGROUP_V2 && v2) ||
			    (kind == CGROUP_V1 && !v2 && cgroup_find_word(ctrls, "pids"))) {
				n = (size_t)(eol - c2 - 1);
				if (n + 1 > len)
					return -ENAMETOOLONG;
				memcpy(path, c2 + 1, n);
				path[n] = '\0';
				return 0;
			}
		}
		line = *eol ? eol + 1 : NULL;
	}
	return -ENOENT;
}

int cgroup_find_dir(const struct cgroup_mount *m, const char *path, char *dir, size_t len)
{
	size_t rlen = strcmp(m->root, "/") == 0 ? 0 : strlen(m->root);
	int n;

	/* the cgroup must be the mount's root or below it */
	if (strncmp(path, m->root, rlen) != 0 || (path[rlen] != '/' && path[rlen] != '\0'))
		return -EXDEV;
	path += rlen;
	n = snprintf(dir, len, "%s%s", m->point, strcmp(path, "/") == 0 ? "" : path);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
