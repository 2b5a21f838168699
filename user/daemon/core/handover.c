// SPDX-License-Identifier: BSD-2-Clause
/*
 * handover.c - see handover.h. The memfd holds a magic, then records:
 * { u16 kind, u16 version, u32 len, len bytes, padding to 8 }. The last
 * record (HANDOVER_FDS) lists the descriptors kept, so the reader knows
 * every one of them even if it cannot read some other record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/handover.h"
#include "daemon/core/log.h"

#define MAGIC "CTLDHND1"
#define HANDOVER_FDS 0xffff
#define MAX_FDS 65536

struct record_head {
	uint16_t kind, version;
	uint32_t len;
};

struct handover {
	int memfd;
	int *fds;
	size_t nfds, cap;
};

/* ------------------------------------------------------------ writing */

int handover_begin(struct handover **out)
{
	struct handover *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return -ENOMEM;
	/* CLOEXEC until finished: a failed upgrade leaves nothing open */
	h->memfd = memfd_create("ctld-handover", MFD_CLOEXEC);
	if (h->memfd < 0 || (err = write_all(h->memfd, MAGIC, 8))) {
		err = h->memfd < 0 ? -errno : err;
		if (h->memfd >= 0)
			close(h->memfd);
		free(h);
		return err;
	}
	*out = h;
	return 0;
}

int handover_put(struct handover *h, uint16_t kind, uint16_t version, const void *data,
		 size_t len)
{
	static const uint8_t zeros[8];
	struct record_head rh = { .kind = kind, .version = version, .len = (uint32_t)len };
	int err;

	if (len > HANDOVER_MAX_BYTES)
		return -E2BIG;
	if ((err = write_all(h->memfd, &rh, sizeof(rh))) || (err = write_all(h->memfd, data, len)))
		return err;
	return write_all(h->memfd, zeros, (8 - len % 8) % 8);
}

static int set_cloexec(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFD);

	if (flags < 0)
		return -errno;
	flags = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, flags) < 0 ? -errno : 0;
}

int handover_keep_fd(struct handover *h, int fd)
{
	int err;

	if (fd < 0)
		return 0;
	if (h->nfds == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		int *fds = cap <= MAX_FDS ? realloc(h->fds, cap * sizeof(*fds)) : NULL;

		if (!fds)
			return -ENOMEM;
		h->fds = fds;
		h->cap = cap;
	}
	if ((err = set_cloexec(fd, false)))
		return err;
	h->fds[h->nfds++] = fd;
	return 0;
}

int handover_finish(struct handover *h)
{
	char num[16];
	int err;

	if ((err = handover_put(h, HANDOVER_FDS, 1, h->fds, h->nfds * sizeof(*h->fds))))
		return err;
	if (lseek(h->memfd, 0, SEEK_SET) < 0 || (err = set_cloexec(h->memfd, false)))
		return err ? err : -errno;
	snprintf(num, sizeof(num), "%d", h->memfd);
	return setenv(HANDOVER_ENV, num, 1) < 0 ? -errno : 0;
}

void handover_abort(struct handover *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nfds; i++)
		set_cloexec(h->fds[i], true);
	unsetenv(HANDOVER_ENV);
	close(h->memfd);
	handover_free(h);
}

void handover_free(struct handover *h)
{
	if (!h)
		return;
	free(h->fds);
	free(h);
}

/* ------------------------------------------------------------ reading */

static struct {
	bool loaded;
	uint8_t *buf;
	size_t len;
	int *fds;
	bool *claimed;
	size_t nfds;
} R;

static int read_memfd(int fd)
{
	struct stat st;
	size_t got = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size < 8 || (uint64_t)st.st_size > HANDOVER_MAX_BYTES)
		return -EBADMSG;
	if (!(R.buf = malloc((size_t)st.st_size)))
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, R.buf + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EBADMSG;
		got += (size_t)n;
	}
	R.len = got;
	return memcmp(R.buf, MAGIC, 8) == 0 ? 0 : -EBADMSG;
}

/* The record at offset *off (advanced past it), or false at the end or
 * at a record that does not fit (the rest is then unreadable). */
static bool record_at(size_t *off, struct record_head *rh, const uint8_t **data)
{
	if (*off + sizeof(*rh) > R.len)
		return false;
	memcpy(rh, R.buf + *off, sizeof(*rh));
	if (rh->len > R.len - *off - sizeof(*rh))
		return false;
	*data = R.buf + *off + sizeof(*rh);
	*off += sizeof(*rh) + rh->len + (8 - rh->len % 8) % 8;
	return true;
}

static int take_fds(void)
{
	struct record_head rh;
	const uint8_t *data;
	size_t off = 8;

	while (record_at(&off, &rh, &data)) {
		if (rh.kind != HANDOVER_FDS)
			continue;
		R.nfds = rh.len / sizeof(int);
		R.fds = malloc(R.nfds * sizeof(int) + 1);
		R.claimed = calloc(R.nfds + 1, sizeof(bool));
		if (!R.fds || !R.claimed)
			return -ENOMEM;
		memcpy(R.fds, data, R.nfds * sizeof(int));
		for (size_t i = 0; i < R.nfds; i++)
			set_cloexec(R.fds[i], true);
		return 0;
	}
	return -EBADMSG;
}

int handover_load(void)
{
	const char *env = getenv(HANDOVER_ENV);
	char *end;
	long fd;
	int err;

	if (!env)
		return 0;
	fd = strtol(env, &end, 10);
	unsetenv(HANDOVER_ENV);
	if (*end || fd < 0 || fd > 1 << 20)
		return -EBADF;
	set_cloexec((int)fd, true);
	err = read_memfd((int)fd);
	if (!err)
		err = take_fds();
	close((int)fd);
	if (err) {
		handover_release();
		return err;
	}
	R.loaded = true;
	return 1;
}

bool handover_loaded(void)
{
	return R.loaded;
}

bool handover_next(size_t *it, uint16_t kind, uint16_t *version, const void **data,
		   size_t *len)
{
	struct record_head rh;
	const uint8_t *p;
	size_t off = *it ? *it : 8;

	if (!R.loaded)
		return false;
	while (record_at(&off, &rh, &p)) {
		if (rh.kind != kind)
			continue;
		*it = off;
		*version = rh.version;
		*data = p;
		*len = rh.len;
		return true;
	}
	*it = off;
	return false;
}

bool handover_claim_fd(int fd)
{
	for (size_t i = 0; i < R.nfds; i++)
		if (R.fds[i] == fd && !R.claimed[i]) {
			R.claimed[i] = true;
			return true;
		}
	return false;
}

void handover_release(void)
{
	unsigned closed = 0;

	for (size_t i = 0; R.fds && i < R.nfds; i++)
		if (!R.claimed[i] && close(R.fds[i]) == 0)
			closed++;
	if (closed)
		log_info("upgrade: closed %u handed-over descriptor(s) nobody took", closed);
	free(R.buf);
	free(R.fds);
	free(R.claimed);
	memset(&R, 0, sizeof(R));
}
