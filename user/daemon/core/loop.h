/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * loop.h - the daemon's single epoll loop.
 *
 * Modules register an fd with a mask and a callback (redis ae style) and arm
 * timers they own; nobody else calls epoll_*(). Callbacks run one at a time on
 * the one thread, so module state needs no locks.
 */
#ifndef CTLD_LOOP_H
#define CTLD_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;

/* events: EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP as reported; errors go to the same callback. */
typedef void (*loop_fd_fn)(struct loop *loop, int fd, uint32_t events, void *ctx);
typedef void (*loop_timer_fn)(struct loop *loop, void *ctx);

/* A timer lives inside its owner's struct, links included (an intrusive
 * pairing heap): arming never allocates, so it cannot fail. */
struct loop_timer {
	uint64_t deadline_ns; /* CLOCK_MONOTONIC */
	struct loop_timer *child, *next; /* first child, next sibling */
	struct loop_timer *prev;	 /* previous sibling, or the parent of a first child */
	bool armed;
	loop_timer_fn fn;
	void *ctx;
};

int loop_new(struct loop **out);
void loop_free(struct loop *loop);

/* Registers fd (level-triggered). mask: EPOLLIN and/or EPOLLOUT. 0 or -errno. */
int loop_fd_add(struct loop *loop, int fd, uint32_t mask, loop_fd_fn fn, void *ctx);
int loop_fd_set_mask(struct loop *loop, int fd, uint32_t mask);
/* Forgets fd; pending events for it in the current batch are skipped. Call before close(). */
void loop_fd_del(struct loop *loop, int fd);

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ctx);
/* Arms (or re-arms) t to fire once at deadline_ns; cannot fail. */
void loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t deadline_ns);
void loop_timer_arm_in(struct loop *loop, struct loop_timer *t, uint64_t delay_ns);
void loop_timer_disarm(struct loop *loop, struct loop_timer *t);
bool loop_timer_armed(const struct loop_timer *t);

/* Called at the start of every round, before waiting: work deferred during
 * the previous round (session output is written here, once per client per
 * round, instead of once per message). One hook per loop; fn NULL clears it. */
void loop_set_before_wait(struct loop *loop, loop_timer_fn fn, void *ctx);

/* Runs one round: waits for fds or the next timer, dispatches. 0 or -errno. */
int loop_run_once(struct loop *loop, int max_wait_ms);
/* Runs until loop_stop(). */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);

#endif
