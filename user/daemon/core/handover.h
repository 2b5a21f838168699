/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * handover.h - the state one daemon image hands to the next when it
 * upgrades in place (SIGUSR2, see daemon/upgrade.h): typed records in a
 * memfd, and the descriptors they name, which stay open across execve.
 *
 * The writer (old image) puts records and keeps descriptors: keeping one
 * clears its FD_CLOEXEC, and aborting sets it again, so a failed exec
 * leaves the old image as it was. The memfd's number travels in the
 * environment (HANDOVER_ENV). The reader (new image) loads everything
 * first thing, before any child is started, and sets FD_CLOEXEC again on
 * every descriptor named, so nothing handed over leaks into the spawner
 * helper or a job. Modules then take their records by kind and claim
 * their descriptors; handover_release() closes whatever nobody claimed
 * (a listener the new command line no longer names, say).
 *
 * Records are this program's own data, not a peer's: still, every length
 * is checked, and a record whose version or size the reader does not
 * know is skipped (its module says so and falls back, e.g. jobs to being
 * adopted from their job records).
 */
#ifndef CTLD_HANDOVER_H
#define CTLD_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HANDOVER_ENV "CTLD_HANDOVER_FD"
#define HANDOVER_MAX_BYTES (512u << 20)

enum handover_kind {
	HANDOVER_LISTENER = 1, /* clients/listener.c */
	HANDOVER_JOB = 2,      /* jobs/job_handover.c */
	HANDOVER_BACKLOG = 3,  /* jobs/job_handover.c: a job's recent output */
	HANDOVER_CGROUP = 4,   /* kernel/cgroup.c: the daemon's group */
};

/* ------------------------------------------------------------ writing */

struct handover;

/* 0 or -errno. */
int handover_begin(struct handover **out);
/* Appends a record. 0 or -errno. */
int handover_put(struct handover *h, uint16_t kind, uint16_t version, const void *data,
		 size_t len);
/* fd stays open in the next image (negative fds are ignored). 0 or -errno. */
int handover_keep_fd(struct handover *h, int fd);
/* Everything is written: sets HANDOVER_ENV for execve. 0 or -errno. */
int handover_finish(struct handover *h);
/* The exec failed (or never happened): FD_CLOEXEC back on every kept
 * descriptor, the memfd closed, HANDOVER_ENV removed, h freed. */
void handover_abort(struct handover *h);
/* The next image took everything over (in a test: the same process read it
 * back): frees h's bookkeeping, closes nothing. After a real exec there is
 * nothing to free: the old image is gone. */
void handover_free(struct handover *h);

/* ------------------------------------------------------------ reading */

/* If HANDOVER_ENV names a memfd: loads it, unsets the variable, and sets
 * FD_CLOEXEC on every descriptor it names. 1 when there was a handover, 0
 * when not, -errno when there was one that could not be read (its
 * descriptors are then closed and the daemon starts afresh). */
int handover_load(void);
bool handover_loaded(void);
/* The next record of this kind after *it (start with 0). */
bool handover_next(size_t *it, uint16_t kind, uint16_t *version, const void **data,
		   size_t *len);
/* The module that took a record takes its descriptor too; false when fd
 * was not handed over (or was claimed already). */
bool handover_claim_fd(int fd);
/* Closes every descriptor not claimed and frees the records. */
void handover_release(void);

#endif
