// SPDX-License-Identifier: BSD-2-Clause
/*
 * port_monitor.c - the listener sets of watched ports.
 *
 * Subscribing, in this order (the order is the point):
 *   1. add {netns, port} to the kernel's watched_ports map (refcounted),
 *   2. ask sock_diag who is listening right now: the set starts with those.
 * A listen() that lands between 1 and 2 is seen by both the kernel and the
 * dump; the set is keyed by socket inode, so it is counted once. A listen()
 * before 1 is in the dump; one after 2 comes from the kernel. Nothing falls
 * in a gap: this is the race that "wait for port" tools usually lose.
 *
 * Where the kernel allows trampolines, an fexit reports what listen()
 * returned: a success joins the set at once, a failure is a listen_failed.
 * Elsewhere the kernel reports a socket entering LISTEN as a candidate: it joins the
 * set once a sock_diag dump of its port shows it (listen() succeeded;
 * retried briefly if we looked before the kernel hashed it), and is
 * dropped, as a failed listen(), when its CLOSE comes first (EADDRINUSE).
 * Every LISTEN -> CLOSE of a watched port is a kernel record, also for
 * sockets that were listening before the watch, so every listener in a
 * set gets its `closed`.
 *
 * Without BPF the sets are reconciled with a sock_diag poll every
 * poll_interval_ms (one dump per namespace per tick, not one per port).
 * With BPF the same reconciliation runs after the kernel lost records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/idmap.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/kernel/bpf_events.h"
#include "daemon/kernel/netns.h"
#include "daemon/kernel/sockdiag.h"
#include "daemon/watch/port_monitor.h"

#define MAX_SCAN 4096
#define MAX_SUBS_NOTIFIED 1024

struct port_interest {
	uint64_t key; /* netns inode << 16 | port */
	struct netns *ns;
	uint16_t port;
	bool kernel_ref;
	unsigned busy; /* notifications in progress: free only when 0 */
	struct port_sub *subs;
	struct tcp_listener *listeners; /* the set: listening now */
	size_t nlisteners;
};

/* A socket that entered LISTEN on a watched port, not yet confirmed. */
struct candidate {
	struct tcp_listener l;
	unsigned attempts;
	struct loop_timer retry;
	struct candidate *next;
};

static struct {
	struct loop *loop;
	uint32_t poll_interval_ms;
	uint64_t poll_due_ns; /* when the armed poll should run */
	struct idmap interests;
	struct candidate *candidates;
	struct loop_timer poll_timer;
	struct tcp_listener scan[MAX_SCAN];
} M;

static void poll_tick(struct loop *loop, void *ctx);

void port_monitor_init(struct loop *loop, uint32_t poll_interval_ms)
{
	M.loop = loop;
	M.poll_interval_ms = poll_interval_ms;
	idmap_init(&M.interests);
	loop_timer_init(&M.poll_timer, poll_tick, NULL);
}

unsigned port_monitor_interests(void)
{
	return (unsigned)M.interests.count;
}

static uint64_t key_of(uint64_t netns, uint16_t port)
{
	return (netns << 16) | port;
}

/* ------------------------------------------------------------ the sets */

static struct tcp_listener *set_find(struct port_interest *pi, uint64_t ino)
{
	for (size_t i = 0; i < pi->nlisteners; i++)
		if (pi->listeners[i].sock_ino == ino)
			return &pi->listeners[i];
	return NULL;
}

static int set_add(struct port_interest *pi, const struct tcp_listener *l)
{
	struct tcp_listener *grown;

	grown = realloc(pi->listeners, (pi->nlisteners + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	pi->listeners = grown;
	pi->listeners[pi->nlisteners++] = *l;
	return 0;
}

static void set_remove(struct port_interest *pi, struct tcp_listener *l)
{
	*l = pi->listeners[--pi->nlisteners];
}

static void interest_free(struct port_interest *pi)
{
	if (pi->kernel_ref)
		bpf_events_unwatch_port(pi->ns->ino, pi->port);
	idmap_del(&M.interests, pi->key);
	netns_put(pi->ns);
	free(pi->listeners);
	free(pi);
}

/* ------------------------------------------------------------ notifying */

enum change { LISTENING, CLOSED, LISTEN_FAILED };

static bool still_subscribed(const struct port_interest *pi, const struct port_sub *sub)
{
	for (const struct port_sub *s = pi->subs; s; s = s->next)
		if (s == sub)
			return true;
	return false;
}

static void call(struct port_sub *sub, enum change what, const struct tcp_listener *l)
{
	if (what == LISTENING)
		sub->ops->listening(sub, l, false);
	else if (what == CLOSED)
		sub->ops->closed(sub, l);
	else if (sub->ops->listen_failed)
		sub->ops->listen_failed(sub, l);
}

/* Tells every subscriber. A callback may end any subscription, even the
 * last one: the list is copied first and each entry re-checked, and the
 * interest outlives the round (busy). */
static void notify(struct port_interest *pi, enum change what, const struct tcp_listener *l)
{
	struct port_sub *subs[MAX_SUBS_NOTIFIED];
	struct tcp_listener copy = *l; /* l may point into the set */
	size_t n = 0;

	for (struct port_sub *s = pi->subs; s && n < MAX_SUBS_NOTIFIED; s = s->next)
		subs[n++] = s;
	pi->busy++;
	for (size_t i = 0; i < n; i++)
		if (still_subscribed(pi, subs[i]))
			call(subs[i], what, &copy);
	if (--pi->busy == 0 && !pi->subs)
		interest_free(pi);
}

static void listener_joined(struct port_interest *pi, const struct tcp_listener *l)
{
	if (set_find(pi, l->sock_ino))
		return;
	if (set_add(pi, l))
		log_warn("port %u: out of memory for its listener set", pi->port);
	notify(pi, LISTENING, l);
}

static void listener_left(struct port_interest *pi, struct tcp_listener *l)
{
	struct tcp_listener gone = *l;

	set_remove(pi, l);
	notify(pi, CLOSED, &gone);
}

/* ------------------------------------------------------------ kernel events */

static struct port_interest *interest_of(uint64_t netns, uint16_t port)
{
	return idmap_get(&M.interests, key_of(netns, port));
}

static void candidate_free(struct candidate *c)
{
	struct candidate **link;

	for (link = &M.candidates; *link; link = &(*link)->next) {
		if (*link == c) {
			*link = c->next;
			break;
		}
	}
	loop_timer_disarm(M.loop, &c->retry);
	free(c);
}

static bool scan_has(const struct tcp_listener *socks, int n, uint64_t ino)
{
	for (int i = 0; i < n && i < MAX_SCAN; i++)
		if (socks[i].sock_ino == ino)
			return true;
	return false;
}

/* Is the candidate in the listening hash yet? Then listen() succeeded. */
static void candidate_check(struct loop *loop, void *ctx)
{
	/* A successful listen() hashes its socket microseconds after the LISTEN
	 * transition; these delays (ns) only matter when we were faster. */
	static const uint64_t retry_ns[] = { 200000, 1000000, 5000000, 20000000, 100000000,
					     500000000 };
	struct candidate *c = ctx;
	struct port_interest *pi = interest_of(c->l.netns, c->l.port);
	int n;

	if (!pi) {
		candidate_free(c);
		return;
	}
	/* one family: the candidate's (half the cost of a full dump) */
	n = netns_listeners(pi->ns, c->l.family, c->l.port, M.scan, MAX_SCAN);
	/* Found: listen() succeeded. Not found out at all (neither sock_diag
	 * nor /proc could answer): a kernel-reported listener is never
	 * dropped for that; once the first retry passed without its CLOSE
	 * (a failed listen() closes within the same call), it counts. */
	if ((n >= 0 && scan_has(M.scan, n, c->l.sock_ino)) || (n < 0 && c->attempts > 0)) {
		struct tcp_listener l = c->l;

		if (n < 0)
			log_warn("port %u: cannot confirm the listener of pid %d (%s); reporting it "
				 "as the kernel saw it",
				 l.port, l.pid, strerror(-n));
		candidate_free(c);
		listener_joined(pi, &l);
		return;
	}
	if (c->attempts == ARRAY_SIZE(retry_ns)) {
		log_info("port %u: socket %llu of pid %d entered LISTEN but never listened",
			 c->l.port, (unsigned long long)c->l.sock_ino, c->l.pid);
		candidate_free(c);
		return;
	}
	loop_timer_arm_in(loop, &c->retry, retry_ns[c->attempts++]);
}

void port_monitor_kernel_listen(const struct tcp_listener *l)
{
	struct candidate *c;

	if (!interest_of(l->netns, l->port))
		return; /* nobody watches it anymore */
	c = calloc(1, sizeof(*c));
	if (!c) {
		struct port_interest *pi = interest_of(l->netns, l->port);

		listener_joined(pi, l); /* unconfirmed beats lost */
		return;
	}
	c->l = *l;
	loop_timer_init(&c->retry, candidate_check, c);
	c->next = M.candidates;
	M.candidates = c;
	candidate_check(M.loop, c);
}

void port_monitor_kernel_close(const struct tcp_listener *l)
{
	struct port_interest *pi = interest_of(l->netns, l->port);
	struct tcp_listener *known;

	for (struct candidate *c = M.candidates; c; c = c->next) {
		if (c->l.sock_ino != l->sock_ino)
			continue;
		if (l->listened) {
			/* it listened, and closed before we confirmed it (a
			 * short-lived listener, a slow daemon): it was there */
			struct tcp_listener was = c->l;

			candidate_free(c);
			if (pi)
				listener_joined(pi, &was);
			pi = interest_of(l->netns, l->port); /* a subscriber may have ended it */
			if (pi && (known = set_find(pi, l->sock_ino)))
				listener_left(pi, known);
			return;
		}
		/* LISTEN then CLOSE before it was ever hashed: listen() failed. */
		struct tcp_listener failed = c->l;

		log_info("port %u: listen() by pid %d (%s) failed; not reported", l->port,
			 failed.pid, failed.comm);
		candidate_free(c);
		if (pi)
			notify(pi, LISTEN_FAILED, &failed);
		return;
	}
	if (pi && (known = set_find(pi, l->sock_ino)))
		listener_left(pi, known);
}

/* The kernel saw listen() return: nothing to confirm. A failed one goes
 * to the subscribers with its exact errno in the log (readiness reports
 * EADDRINUSE as the port being taken, by whom the set says). */
void port_monitor_kernel_listen_done(const struct tcp_listener *l, int err)
{
	struct port_interest *pi = interest_of(l->netns, l->port);

	if (!pi)
		return;
	if (err == 0) {
		listener_joined(pi, l);
		return;
	}
	log_info("port %u: listen() by pid %d (%s) failed: %s", l->port, l->pid, l->comm,
		 strerror(err));
	notify(pi, LISTEN_FAILED, l);
}

/* ------------------------------------------------------------ sock_diag scans */

/* Compares one port's set with a dump of its namespace: listeners that
 * appeared join (with their owner looked up), those gone leave. */
static void reconcile(struct port_interest *pi, const struct tcp_listener *socks, int n)
{
	pi->busy++;
	for (int i = 0; i < n && i < MAX_SCAN && pi->subs; i++) {
		struct tcp_listener l = socks[i];

		if (l.port != pi->port || set_find(pi, l.sock_ino))
			continue;
		l.netns = pi->ns->ino;
		l.time_ns = now_monotonic_ns();
		listener_joined(pi, &l); /* its owner was looked up with the others */
	}
	for (size_t i = 0; i < pi->nlisteners && pi->subs;) {
		if (!scan_has(socks, n, pi->listeners[i].sock_ino))
			listener_left(pi, &pi->listeners[i]);
		else
			i++;
	}
	if (--pi->busy == 0 && !pi->subs)
		interest_free(pi);
}

/* The owners of the dump's listeners that some interest has not seen yet,
 * in one pass over /proc. */
static void find_new_owners(struct netns *ns, struct tcp_listener *socks, int n)
{
	static struct tcp_listener *want[MAX_SCAN];
	size_t k = 0;

	for (int i = 0; i < n && i < MAX_SCAN; i++) {
		struct port_interest *pi = interest_of(ns->ino, socks[i].port);

		if (pi && !set_find(pi, socks[i].sock_ino))
			want[k++] = &socks[i];
	}
	sockdiag_find_owners(want, k);
}

/* One dump per namespace, shared by every port watched in it. */
static void scan_namespace(struct netns *ns, void *ctx)
{
	int n = netns_listeners(ns, 0, 0, M.scan, MAX_SCAN);
	uint64_t id;
	void *value;

	(void)ctx;
	if (n < 0) {
		log_warn("sock_diag dump failed: %s", strerror(-n));
		return;
	}
	find_new_owners(ns, M.scan, n);
	for (size_t it = 0; idmap_next(&M.interests, &it, &id, &value);) {
		struct port_interest *pi = value;

		if (pi->ns == ns)
			reconcile(pi, M.scan, n);
	}
}

void port_monitor_resync(void)
{
	netns_for_each(scan_namespace, NULL);
}

static bool needs_polling(void)
{
	return !bpf_events_enabled() && M.interests.count > 0;
}

void port_monitor_poll_now(void)
{
	if (needs_polling())
		port_monitor_resync();
}

/* Polling that falls behind misses short-lived listeners: say so. */
static void poll_tick(struct loop *loop, void *ctx)
{
	uint64_t t0 = now_monotonic_ns(), interval = M.poll_interval_ms * NSEC_PER_MSEC, took;

	(void)ctx;
	if (M.poll_due_ns && t0 > M.poll_due_ns + interval)
		log_debug("port poll %.1f ms late (interval %u ms)", (t0 - M.poll_due_ns) / 1e6,
			  M.poll_interval_ms);
	port_monitor_resync();
	took = now_monotonic_ns() - t0;
	if (took > interval)
		log_debug("port poll took %.1f ms (interval %u ms)", took / 1e6, M.poll_interval_ms);
	M.poll_due_ns = now_monotonic_ns() + interval;
	if (needs_polling())
		loop_timer_arm_in(loop, &M.poll_timer, M.poll_interval_ms * NSEC_PER_MSEC);
}

/* ------------------------------------------------------------ subscribing */

/* The set of a new interest: who listens right now (owners looked up). */
static void seed(struct port_interest *pi)
{
	int n = netns_listeners(pi->ns, 0, pi->port, M.scan, MAX_SCAN);

	if (n < 0) {
		log_warn("sock_diag check for port %u failed: %s", pi->port, strerror(-n));
		return;
	}
	find_new_owners(pi->ns, M.scan, n);
	for (int i = 0; i < n && i < MAX_SCAN; i++) {
		struct tcp_listener l = M.scan[i];

		if (l.port != pi->port || set_find(pi, l.sock_ino))
			continue;
		l.netns = pi->ns->ino;
		if (set_add(pi, &l))
			log_warn("port %u: out of memory for its listener set", pi->port);
	}
}

/* A new interest, subscribed to by nobody yet. 0 or -errno (err says why). */
static int interest_new(struct netns *ns, uint16_t port, struct port_interest **out, char *err,
			size_t errlen)
{
	struct port_interest *pi = calloc(1, sizeof(*pi));
	int ret;

	if (!pi) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pi->key = key_of(ns->ino, port);
	pi->ns = netns_ref(ns);
	pi->port = port;
	if (idmap_put(&M.interests, pi->key, pi)) {
		netns_put(pi->ns);
		free(pi);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* 1. the kernel filter first ... */
	if (bpf_events_enabled()) {
		if ((ret = bpf_events_watch_port(ns->ino, port))) {
			interest_free(pi);
			snprintf(err, errlen, "cannot add the port to the kernel map: %s",
				 strerror(-ret));
			return ret;
		}
		pi->kernel_ref = true;
	}
	/* 2. ... then who listens already. */
	seed(pi);
	if (needs_polling() && !loop_timer_armed(&M.poll_timer)) {
		loop_timer_arm_in(M.loop, &M.poll_timer, M.poll_interval_ms * NSEC_PER_MSEC);
		M.poll_due_ns = now_monotonic_ns() + M.poll_interval_ms * NSEC_PER_MSEC;
	}
	*out = pi;
	return 0;
}

int port_monitor_subscribe(struct port_sub *sub, struct netns *ns, uint16_t port, char *err,
			   size_t errlen)
{
	struct port_interest *pi = interest_of(ns->ino, port);
	int ret;

	if (!pi && (ret = interest_new(ns, port, &pi, err, errlen)))
		return ret;
	sub->interest = pi;
	sub->next = pi->subs;
	pi->subs = sub;
	return 0;
}

bool port_monitor_replay(struct port_sub *sub)
{
	struct port_interest *pi = sub->interest;
	bool alive = true;

	pi->busy++;
	for (size_t i = 0; i < pi->nlisteners && alive; i++) {
		struct tcp_listener l = pi->listeners[i];

		l.time_ns = 0;
		sub->ops->listening(sub, &l, true);
		alive = still_subscribed(pi, sub);
	}
	if (--pi->busy == 0 && !pi->subs)
		interest_free(pi);
	return alive;
}

void port_monitor_unsubscribe(struct port_sub *sub)
{
	struct port_interest *pi = sub->interest;
	struct port_sub **link;

	if (!pi)
		return;
	for (link = &pi->subs; *link; link = &(*link)->next) {
		if (*link == sub) {
			*link = sub->next;
			break;
		}
	}
	sub->interest = NULL;
	sub->next = NULL;
	if (!pi->subs && !pi->busy)
		interest_free(pi);
}

void port_monitor_shutdown(void)
{
	uint64_t id;
	void *value;

	while (M.candidates)
		candidate_free(M.candidates);
	for (size_t it = 0; idmap_next(&M.interests, &it, &id, &value);) {
		struct port_interest *pi = value;

		for (struct port_sub *s = pi->subs; s; s = s->next)
			s->interest = NULL;
		pi->subs = NULL;
		interest_free(pi);
	}
	if (M.loop)
		loop_timer_disarm(M.loop, &M.poll_timer);
	M.poll_due_ns = 0;
	idmap_free(&M.interests);
}
