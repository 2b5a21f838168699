/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ready_priv.h - a job's readiness, shared by readiness.c (the state, the
 * events, the timers) and ready_conds.c (the three kinds of condition and
 * what they watch). Nothing else includes it.
 */
#ifndef CTLD_READY_PRIV_H
#define CTLD_READY_PRIV_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctld.pb.h"
#include "daemon/core/loop.h"
#include "daemon/kernel/tcp_listener.h"
#include "daemon/watch/file_follow.h"
#include "daemon/watch/port_monitor.h"

#define READY_MAX_CONDS (sizeof(((ctld_Run *)0)->ready) / sizeof(((ctld_Run *)0)->ready[0]))
#define READY_LINE_MAX 4096 /* longer lines are matched on their first 4096 bytes */
#define READY_TAIL 2048     /* the stderr kept for NotReady{EXITED} */

enum cond_kind { COND_PORT, COND_LOG, COND_FILE };

struct readiness;

struct ready_cond {
	struct readiness *r;
	int index;
	enum cond_kind kind;
	bool met;
	char desc[96];		   /* "port 6379", "output matching 'x'": for messages */
	ctld_ConditionState state; /* filled in when met */
	/* port */
	struct port_sub sub;
	struct netns *ns;
	uint16_t port;
	struct addr_filter filter;
	/* log */
	regex_t re;
	bool compiled;
	uint32_t streams; /* bit 0 stdout, bit 1 stderr */
	/* file */
	struct file_follow follow;
	bool following;
	bool has_min;
	uint64_t min_bytes;
	char path[FILE_FOLLOW_PATH_MAX];
	size_t parent_len;
	int arm_err; /* -errno: it could not be watched (told once the job runs) */
};

struct readiness {
	struct job *job;
	ctld_ReadyState state;
	bool any, keep;
	uint32_t timeout_ms;
	uint64_t exec_ns; /* CLOCK_MONOTONIC of the exec; 0 before */
	struct loop_timer timer; /* the ready timeout */
	struct loop_timer grace; /* a port held by someone else */
	struct loop_timer after; /* what follows a decision, outside any callback */
	struct ready_cond cond[READY_MAX_CONDS];
	size_t ncond;
	char line[2][READY_LINE_MAX + 1];
	size_t line_len[2];
	bool line_cut[2]; /* the current line was longer than READY_LINE_MAX */
	uint8_t tail[READY_TAIL];
	size_t tail_len;
	/* who holds a port, whose listen() failed */
	bool held, failed;
	struct tcp_listener holder, failer;
	uint16_t held_port;
	int file_err; /* NotReady{FILE_ERROR}: what and why */
	char file_path[FILE_FOLLOW_PATH_MAX];
	uint64_t time_to_ready_ns;
	uint8_t *final; /* the Ready or NotReady frame, for late attachers */
	size_t final_len;
};

/* readiness.c, for the conditions */
/* c became true at mono_ns (its state's other fields are filled in). */
void ready_cond_met(struct ready_cond *c, uint64_t mono_ns);
/* A listener of someone else on a condition's port (or it went away). */
void ready_port_held(struct readiness *r, const struct tcp_listener *l);
void ready_port_freed(struct readiness *r, const struct tcp_listener *l);
/* A process of the job failed to listen() on a condition's port. */
void ready_listen_failed(struct readiness *r, const struct tcp_listener *l);
/* A file condition cannot be watched. */
void ready_file_error(struct readiness *r, int err, const char *path);
bool ready_waiting(const struct readiness *r);

/* ready_conds.c */
/* Checks one condition of the request (relative paths against cwd). */
int ready_cond_setup(struct ready_cond *c, const ctld_ReadyCondition *rc, const char *cwd,
		     char *err, size_t errlen);
/* Starts watching (before the job is spawned). */
int ready_cond_arm(struct ready_cond *c, char *err, size_t errlen);
/* The job runs: what is true already. */
void ready_cond_launched(struct ready_cond *c);
/* One line of output (NUL-terminated, without its newline). */
void ready_cond_line(struct ready_cond *c, int stream, const char *line, uint64_t now_ns);
void ready_cond_stop(struct ready_cond *c);
/* Before a decision at the job's end: without the kernel programs, a holder
 * of a condition's port may have come since the last poll; poll now
 * (ready_port_held() then says so). */
void ready_conds_look_for_holders(struct readiness *r);

#endif
