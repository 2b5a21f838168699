// SPDX-License-Identifier: BSD-2-Clause
/*
 * job_records.c - job records in STATE_DIR/jobs/ and process identity (see
 * job_records.h). A record is lines of "key value", first "ctld-bpf job 1"
 * (the format's version); name and command escape backslash and newline.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/jobs/job_records.h"

#define HEADER "ctld-bpf job 1"

static struct {
	int dir_fd; /* STATE_DIR/jobs, -1 when records are kept nowhere */
} R = { .dir_fd = -1 };

/* ------------------------------------------------------------ the format */

static size_t escape(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; *s && n + 2 < cap; s++) {
		if (*s == '\\' || *s == '\n') {
			out[n++] = '\\';
			out[n++] = *s == '\n' ? 'n' : '\\';
		} else {
			out[n++] = *s;
		}
	}
	out[n] = '\0';
	return n;
}

/* Undoes escape() into out[cap]; false for a bad escape or no room. */
static bool unescape(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	for (; *s; s++) {
		char c = *s;

		if (c == '\\') {
			c = *++s == 'n' ? '\n' : *s == '\\' ? '\\' : 0;
			if (!c)
				return false;
		}
		if (n + 1 >= cap)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

int job_record_format(const struct job_record *r, char *buf, size_t cap)
{
	char name[2 * sizeof(r->name)], command[2 * sizeof(r->command)];
	int n;

	escape(name, sizeof(name), r->name);
	escape(command, sizeof(command), r->command);
	n = snprintf(buf, cap,
		     HEADER "\nid %" PRIu64 "\npid %d\nstarttime %" PRIu64 "\nboot_id %s\n"
			    "start_real_ns %" PRIu64 "\nstart_mono_ns %" PRIu64 "\nname %s\n"
			    "command %s\n",
		     r->id, (int)r->pid, r->starttime, r->boot_id, r->start_real_ns,
		     r->start_mono_ns, name, command);
	return n > 0 && (size_t)n < cap ? 0 : -ENOSPC;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return !errno && !*end;
}

/* One "key value" line into r; bit (1 << key index) set in *seen. */
static bool parse_line(char *line, struct job_record *r, unsigned *seen)
{
	static const char *const keys[] = { "id", "pid", "starttime", "boot_id", "start_real_ns",
					    "start_mono_ns", "name", "command" };
	char *value = strchr(line, ' ');
	uint64_t v = 0;
	size_t k;

	if (!value)
		return false;
	*value++ = '\0';
	for (k = 0; k < ARRAY_SIZE(keys) && strcmp(line, keys[k]) != 0; k++)
		;
	if (k == ARRAY_SIZE(keys) || (*seen & (1u << k)))
		return false;
	*seen |= 1u << k;
	if (k == 3)
		return strlen(value) == BOOT_ID_LEN && copy_str(r->boot_id, sizeof(r->boot_id), value);
	if (k == 6)
		return unescape(value, r->name, sizeof(r->name));
	if (k == 7)
		return unescape(value, r->command, sizeof(r->command));
	if (!parse_u64(value, &v))
		return false;
	if (k == 0)
		r->id = v;
	else if (k == 1)
		r->pid = v > 0 && v <= INT32_MAX ? (pid_t)v : 0;
	else if (k == 2)
		r->starttime = v;
	else if (k == 4)
		r->start_real_ns = v;
	else
		r->start_mono_ns = v;
	return true;
}

int job_record_parse(const char *text, size_t len, struct job_record *r)
{
	char buf[JOB_RECORD_MAX_BYTES + 1], *line, *save = NULL;
	unsigned seen = 0;

	if (len > JOB_RECORD_MAX_BYTES || memchr(text, '\0', len))
		return -EBADMSG;
	memcpy(buf, text, len);
	buf[len] = '\0';
	memset(r, 0, sizeof(*r));
	if (len == 0 || buf[len - 1] != '\n' || strncmp(buf, HEADER "\n", strlen(HEADER) + 1))
		return -EBADMSG;
	for (line = strtok_r(buf + strlen(HEADER) + 1, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (!parse_line(line, r, &seen))
			return -EBADMSG;
	return seen == 0xff && r->id && r->pid ? 0 : -EBADMSG;
}

/* ------------------------------------------------------------ identity */

int boot_id_read(char out[BOOT_ID_LEN + 1])
{
	char buf[64];
	ssize_t n = read_small_file_at(AT_FDCWD, "/proc/sys/kernel/random/boot_id", buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	if (n < BOOT_ID_LEN)
		return -EBADMSG;
	memcpy(out, buf, BOOT_ID_LEN);
	out[BOOT_ID_LEN] = '\0';
	return 0;
}

/* ------------------------------------------------------------ the directory */

int job_records_open(const char *state_dir, char *why, size_t whylen)
{
	char path[512];

	if (!state_dir)
		return 0;
	snprintf(path, sizeof(path), "%s/jobs", state_dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return errorf(why, whylen, -errno, "cannot create %.300s: %s", path, strerror(errno));
	R.dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (R.dir_fd < 0)
		return errorf(why, whylen, -errno, "cannot open %.300s: %s", path, strerror(errno));
	return 0;
}

void job_records_close(void)
{
	if (R.dir_fd >= 0)
		close(R.dir_fd);
	R.dir_fd = -1;
}

bool job_records_enabled(void)
{
	return R.dir_fd >= 0;
}

int job_record_save(const struct job_record *r)
{
	char text[JOB_RECORD_MAX_BYTES], name[32], tmp[40];
	size_t len;
	int fd, err = 0;

	if (R.dir_fd < 0)
		return 0;
	if ((err = job_record_format(r, text, sizeof(text))))
		return err;
	len = strlen(text);
	snprintf(name, sizeof(name), "%" PRIu64, r->id);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	fd = openat(R.dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		err = errno ? -errno : -EIO;
	close(fd);
	if (!err && renameat(R.dir_fd, tmp, R.dir_fd, name) < 0)
		err = -errno;
	if (err)
		unlinkat(R.dir_fd, tmp, 0);
	return err;
}

void job_record_remove(uint64_t id)
{
	char name[32];

	if (R.dir_fd < 0)
		return;
	snprintf(name, sizeof(name), "%" PRIu64, id);
	unlinkat(R.dir_fd, name, 0);
}

static void visit(const char *file, void (*fn)(const struct job_record *, uint64_t, void *),
		  void *ctx)
{
	char text[JOB_RECORD_MAX_BYTES + 2];
	struct job_record r;
	uint64_t id = 0;
	ssize_t n = -1;
	int fd;

	if (!parse_u64(file, &id) || !id) {
		if (file[0] == '.') /* a temporary file of a save that did not finish */
			unlinkat(R.dir_fd, file, 0);
		return;
	}
	fd = openat(R.dir_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
	}
	if (n >= 0 && job_record_parse(text, (size_t)n, &r) == 0 && r.id == id)
		fn(&r, id, ctx);
	else
		fn(NULL, id, ctx);
}

void job_records_each(void (*fn)(const struct job_record *r, uint64_t file_id, void *ctx),
		      void *ctx)
{
	int fd;
	DIR *d;

	if (R.dir_fd < 0 || (fd = fcntl(R.dir_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return;
	if (!(d = fdopendir(fd))) {
		close(fd);
		return;
	}
	rewinddir(d); /* the offset is shared with R.dir_fd */
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			visit(de->d_name, fn, ctx);
	closedir(d);
}
