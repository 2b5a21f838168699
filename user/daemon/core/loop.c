// SPDX-License-Identifier: BSD-2-Clause
/*
 * loop.c - epoll + an intrusive pairing heap of timers.
 *
 * Handlers are kept in a table indexed by fd (as redis ae does), so an fd that
 * is deleted while the current epoll batch still mentions it is recognised by
 * its cleared mask and skipped, without deferred frees. A new registration on
 * a reused fd number may see one spurious wake-up; every handler is written
 * for non-blocking fds and treats EAGAIN as "nothing to do".
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "daemon/core/loop.h"
#include "common/util.h"

#define LOOP_BATCH 64

struct loop_fd {
	uint32_t mask; /* 0 = unused */
	loop_fd_fn fn;
	void *ctx;
};

struct loop {
	int epfd;
	struct loop_fd *fds;
	size_t nfds;
	struct loop_timer *timers; /* root of the pairing heap: the earliest deadline */
	loop_timer_fn before_wait;
	void *before_wait_ctx;
	bool stop;
};

int loop_new(struct loop **out)
{
	struct loop *loop = calloc(1, sizeof(*loop));
	int err;

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		err = -errno;
		free(loop);
		return err;
	}
	*out = loop;
	return 0;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	free(loop->fds);
	free(loop);
}

static int grow_fd_table(struct loop *loop, int fd)
{
	size_t want = loop->nfds ? loop->nfds : 64;
	struct loop_fd *fds;

	while (want <= (size_t)fd)
		want *= 2;
	fds = realloc(loop->fds, want * sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	memset(fds + loop->nfds, 0, (want - loop->nfds) * sizeof(*fds));
	loop->fds = fds;
	loop->nfds = want;
	return 0;
}

int loop_fd_add(struct loop *loop, int fd, uint32_t mask, loop_fd_fn fn, void *ctx)
{
	struct epoll_event ev = { .events = mask, .data.fd = fd };
	int err;

	if (fd < 0 || !fn || !mask)
		return -EINVAL;
	if ((size_t)fd >= loop->nfds && (err = grow_fd_table(loop, fd)))
		return err;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	loop->fds[fd] = (struct loop_fd){ .mask = mask, .fn = fn, .ctx = ctx };
	return 0;
}

int loop_fd_set_mask(struct loop *loop, int fd, uint32_t mask)
{
	struct epoll_event ev = { .events = mask, .data.fd = fd };

	if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd].mask || !mask)
		return -EINVAL;
	if (loop->fds[fd].mask == mask)
		return 0;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	loop->fds[fd].mask = mask;
	return 0;
}

void loop_fd_del(struct loop *loop, int fd)
{
	if (fd < 0 || (size_t)fd >= loop->nfds || !loop->fds[fd].mask)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	loop->fds[fd].mask = 0;
}

/* ---- timers: a pairing heap on deadline_ns, linked through the timers
 * themselves (first child / next sibling / previous-or-parent), so arming
 * and disarming never allocate. Insert is O(1), removing the earliest or
 * any armed timer O(log n) amortised. */

void loop_timer_init(struct loop_timer *t, loop_timer_fn fn, void *ctx)
{
	*t = (struct loop_timer){ .fn = fn, .ctx = ctx };
}

bool loop_timer_armed(const struct loop_timer *t)
{
	return t->armed;
}

/* Two heaps (either may be NULL) become one; returns its root. */
static struct loop_timer *meld(struct loop_timer *a, struct loop_timer *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (b->deadline_ns < a->deadline_ns) {
		struct loop_timer *tmp = a;

		a = b;
		b = tmp;
	}
	/* b becomes a's first child */
	b->prev = a;
	b->next = a->child;
	if (a->child)
		a->child->prev = b;
	a->child = b;
	a->next = a->prev = NULL;
	return a;
}

/* The classic two passes over a list of sibling heaps: meld them in pairs
 * left to right, then the pairs right to left. Returns the new root. */
static struct loop_timer *merge_siblings(struct loop_timer *first)
{
	struct loop_timer *pairs = NULL, *root = NULL;

	while (first) {
		struct loop_timer *a = first, *b = a->next;

		first = b ? b->next : NULL;
		a->next = a->prev = NULL;
		if (b)
			b->next = b->prev = NULL;
		a = meld(a, b);
		a->next = pairs; /* a reversed list of the pairs */
		pairs = a;
	}
	while (pairs) {
		struct loop_timer *p = pairs;

		pairs = p->next;
		p->next = NULL;
		root = meld(root, p);
	}
	return root;
}

void loop_timer_disarm(struct loop *loop, struct loop_timer *t)
{
	struct loop_timer *rest;

	if (!t->armed)
		return;
	t->armed = false;
	rest = merge_siblings(t->child);
	t->child = NULL;
	if (t == loop->timers) {
		loop->timers = rest;
		return;
	}
	/* cut t out of its parent's child list */
	if (t->prev->child == t)
		t->prev->child = t->next;
	else
		t->prev->next = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
	loop->timers = meld(loop->timers, rest);
}

void loop_timer_arm(struct loop *loop, struct loop_timer *t, uint64_t deadline_ns)
{
	loop_timer_disarm(loop, t);
	t->deadline_ns = deadline_ns;
	t->child = t->next = t->prev = NULL;
	t->armed = true;
	loop->timers = meld(loop->timers, t);
}

void loop_timer_arm_in(struct loop *loop, struct loop_timer *t, uint64_t delay_ns)
{
	loop_timer_arm(loop, t, now_monotonic_ns() + delay_ns);
}

static int next_timeout_ms(struct loop *loop, int max_wait_ms)
{
	uint64_t now, deadline, wait_ms;

	if (!loop->timers)
		return max_wait_ms;
	deadline = loop->timers->deadline_ns;
	now = now_monotonic_ns();
	if (deadline <= now)
		return 0;
	/* Round up: waking a little late is fine, spinning early is not. */
	wait_ms = (deadline - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC;
	if (max_wait_ms >= 0 && wait_ms > (uint64_t)max_wait_ms)
		return max_wait_ms;
	return wait_ms > INT_MAX ? INT_MAX : (int)wait_ms;
}

static void run_due_timers(struct loop *loop)
{
	uint64_t now = now_monotonic_ns();

	while (loop->timers && loop->timers->deadline_ns <= now) {
		struct loop_timer *t = loop->timers;

		loop_timer_disarm(loop, t);
		t->fn(loop, t->ctx);
	}
}

void loop_set_before_wait(struct loop *loop, loop_timer_fn fn, void *ctx)
{
	loop->before_wait = fn;
	loop->before_wait_ctx = ctx;
}

int loop_run_once(struct loop *loop, int max_wait_ms)
{
	struct epoll_event events[LOOP_BATCH];
	int n;

	if (loop->before_wait)
		loop->before_wait(loop, loop->before_wait_ctx);
	n = epoll_wait(loop->epfd, events, LOOP_BATCH, next_timeout_ms(loop, max_wait_ms));

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		int fd = events[i].data.fd;
		struct loop_fd *h;

		if ((size_t)fd >= loop->nfds || !loop->fds[fd].mask)
			continue; /* deleted earlier in this batch */
		h = &loop->fds[fd];
		h->fn(loop, fd, events[i].events, h->ctx);
	}
	run_due_timers(loop);
	return 0;
}

int loop_run(struct loop *loop)
{
	int err = 0;

	while (!loop->stop && !err)
		err = loop_run_once(loop, -1);
	return err;
}

void loop_stop(struct loop *loop)
{
	loop->stop = true;
}
