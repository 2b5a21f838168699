// SPDX-License-Identifier: BSD-2-Clause
/*
 * job_ids.c - blocks of job ids reserved from the state directory's
 * next-job-id counter (see job_ids.h). The file holds one decimal number,
 * the first id no instance has reserved yet.
 *
 * A block is written under the lock when it is reserved (so another
 * instance reading the file takes the next one) and fsync'd when its first
 * id is handed out: a crash of the machine cannot then give a used id
 * again, and start-up does not wait for the disk (an fsync costs from a
 * fraction of a millisecond to tens of them, before the daemon is ready).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/jobs/job_ids.h"

#define COUNTER_FILE "next-job-id"

static struct {
	int fd;              /* the counter file, -1 when closed */
	uint64_t first;      /* this instance's first id */
	uint64_t next, end;  /* the current block: [next, end) */
	bool durable;        /* the file's value is on disk (fsync'd) */
	char path[512];
} I = { .fd = -1 };

static int read_counter(int fd, uint64_t *value)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char *end;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (n == 0) {
		*value = 1; /* a new state directory */
		return 0;
	}
	if (buf[0] < '0' || buf[0] > '9')
		return -EBADMSG; /* strtoull would take "-3" (as 2^64 - 3) and " 3" */
	errno = 0;
	*value = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || *value == 0)
		return -EBADMSG;
	return 0;
}

static int write_counter(int fd, uint64_t value)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", value);

	if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) < 0)
		return errno ? -errno : -EIO;
	return 0;
}

/* The current block's reservation on disk, once, before its first id is used. */
static int make_durable(void)
{
	if (I.durable || I.fd < 0)
		return 0;
	if (fsync(I.fd) < 0)
		return -errno;
	I.durable = true;
	return 0;
}

/* [next, end) := the next block, under the file's lock. */
static int reserve_block(void)
{
	uint64_t start = 0;
	int err;

	if (flock(I.fd, LOCK_EX) < 0)
		return -errno;
	if (!(err = read_counter(I.fd, &start)) && start > UINT64_MAX - JOB_IDS_BLOCK)
		err = -EOVERFLOW;
	if (!err)
		err = write_counter(I.fd, start + JOB_IDS_BLOCK);
	flock(I.fd, LOCK_UN);
	if (err)
		return err;
	I.next = start;
	I.end = start + JOB_IDS_BLOCK;
	I.durable = false;
	return 0;
}

int job_ids_open(const char *state_dir, char *why, size_t whylen)
{
	int err;

	if (!state_dir) {
		I.first = I.next = 1;
		I.end = UINT64_MAX;
		return 0;
	}
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return errorf(why, whylen, -errno, "cannot create the state directory %.200s: %s",
			      state_dir, strerror(errno));
	snprintf(I.path, sizeof(I.path), "%s/" COUNTER_FILE, state_dir);
	I.fd = open(I.path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (I.fd < 0)
		return errorf(why, whylen, -errno, "cannot open %.300s: %s", I.path,
			      strerror(errno));
	if ((err = reserve_block())) {
		job_ids_close();
		return errorf(why, whylen, err, "cannot reserve job ids in %.300s: %s", I.path,
			      err == -EBADMSG ? "it does not hold a job id" : strerror(-err));
	}
	I.first = I.next;
	return 0;
}

void job_ids_close(void)
{
	if (I.fd >= 0)
		close(I.fd);
	I.fd = -1;
	I.next = I.end = 0; /* closed: no id until the next open */
}

uint64_t job_ids_next(void)
{
	int err;

	if (I.next == I.end) {
		if (I.fd < 0)
			return 0;
		if ((err = reserve_block())) {
			log_err("cannot reserve more job ids in %s: %s", I.path, strerror(-err));
			return 0;
		}
	}
	if ((err = make_durable())) {
		log_err("cannot write the job id reservation in %s to disk: %s", I.path,
			strerror(-err));
		return 0;
	}
	return I.next++;
}

uint64_t job_ids_first(void)
{
	return I.first;
}

uint64_t job_ids_peek(void)
{
	return I.next;
}
