/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * job_records.h - what a new daemon instance needs to find the running
 * jobs of an earlier one: one small text file per job in STATE_DIR/jobs/,
 * and the identity of a process as the kernel records it.
 *
 * A pid alone names nothing once its process is gone: the same number may
 * belong to another process later. A record therefore keeps the boot it
 * was written in (/proc/sys/kernel/random/boot_id) and the process's start
 * time in clock ticks since boot (proc_starttime(), proc_tree.h); a process
 * is the job only if both still match. No I/O outside the state directory and
 * /proc; the format is parsed strictly (unit-tested) and bounded.
 */
#ifndef CTLD_JOB_RECORDS_H
#define CTLD_JOB_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctld.pb.h"

#define JOB_RECORD_MAX_BYTES 2048
#define BOOT_ID_LEN 36

struct job_record {
	uint64_t id;
	pid_t pid;
	uint64_t starttime; /* clock ticks after boot, /proc/PID/stat field 22 */
	char boot_id[BOOT_ID_LEN + 1];
	uint64_t start_real_ns, start_mono_ns;
	char name[sizeof(((ctld_JobInfo *)0)->name)];
	char command[sizeof(((ctld_JobInfo *)0)->command)];
};

/* The text of a record (NUL-terminated); -ENOSPC when it does not fit. */
int job_record_format(const struct job_record *r, char *buf, size_t cap);
/* Parses a record; -EBADMSG for anything but a complete, valid one. */
int job_record_parse(const char *text, size_t len, struct job_record *r);

/* This boot's id (from /proc); 0 or -errno. */
int boot_id_read(char out[BOOT_ID_LEN + 1]);

/* STATE_DIR/jobs/ (created, 0700); NULL state_dir: records are kept nowhere. */
int job_records_open(const char *state_dir, char *why, size_t whylen);
void job_records_close(void);
bool job_records_enabled(void);
/* Writes (atomically: a temporary file renamed) or removes job id's record. */
int job_record_save(const struct job_record *r);
void job_record_remove(uint64_t id);
/* Calls fn for each record found, and with ok = false (r = NULL) for each
 * file that is not a valid record (named by id), which fn should remove. */
void job_records_each(void (*fn)(const struct job_record *r, uint64_t file_id, void *ctx),
		      void *ctx);

#endif
