// SPDX-License-Identifier: BSD-2-Clause
/*
 * watch_port.c - port watches.
 *
 * Creating a watch, in this order (the order is the point):
 *   1. add {netns, port} to the kernel's watched_ports map (refcounted),
 *   2. reply with the watch id,
 *   3. ask sock_diag who is listening right now and report those as
 *      PortListening{already}.
 * A listen() that lands between 1 and 3 is seen by both the kernel and the
 * dump; each watch remembers the socket inodes it reported, so it is
 * reported once. A listen() before 1 is in the dump; one after 3 comes from
 * the kernel. Nothing falls in a gap: this is the race that "wait for port"
 * tools usually lose.
 *
 * The kernel reports a socket entering LISTEN as a candidate: it is
 * reported once a sock_diag dump of its port shows it (listen() succeeded;
 * retried briefly if we looked before the kernel hashed it), and dropped
 * when its CLOSE comes first (listen() failed, e.g. EADDRINUSE).
 *
 * Without BPF the same bookkeeping runs on a sock_diag poll every
 * poll_interval_ms (one dump per namespace per tick, not one per watch).
 * With BPF the dump also runs after the kernel reported lost events.
 *
 * An address filter matches listeners on that address and on the wildcard
 * (0.0.0.0 / ::), because a connection to the address would reach them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kernel/bpf_events.h"
#include "daemon/core/idmap.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/kernel/netns.h"
#include "daemon/clients/session.h"
#include "daemon/kernel/sockdiag.h"
#include "common/util.h"
#include "daemon/watch/watch_port.h"

#define MAX_LISTENERS_SCAN 4096

struct seen_listener {
	uint64_t ino;
	pid_t pid;
	uint16_t family;
	uint8_t addr[16];
};

struct port_watch {
	uint64_t id;
	uint64_t session;
	struct netns *ns;
	uint16_t port;
	bool has_addr;
	uint16_t addr_family;
	uint8_t addr[16];
	bool once;
	bool kernel_ref; /* holds a reference in the watched_ports map */
	bool fired;
	struct loop_timer timeout;
	struct seen_listener *seen; /* listeners this watch reported and not yet closed */
	size_t nseen;
};

/* A socket that entered LISTEN on a watched port, not yet confirmed. */
struct candidate {
	struct port_event pe;
	unsigned attempts;
	struct loop_timer retry;
	struct candidate *next;
};

static struct {
	struct loop *loop;
	struct watch_port_config cfg;
	struct candidate *candidates;
	struct idmap watches;
	struct loop_timer poll_timer;
	struct listening_sock scan[MAX_LISTENERS_SCAN];
} P;

void watch_port_config_defaults(struct watch_port_config *cfg)
{
	*cfg = (struct watch_port_config){ .poll_interval_ms = 20, .max_per_client = 256 };
}

static void poll_tick(struct loop *loop, void *ctx);
static bool scan_has(const struct listening_sock *socks, int n, uint64_t ino);

int watch_port_init(struct loop *loop, const struct watch_port_config *cfg)
{
	P.loop = loop;
	P.cfg = *cfg;
	idmap_init(&P.watches);
	loop_timer_init(&P.poll_timer, poll_tick, NULL);
	return 0;
}

/* ------------------------------------------------------------ helpers */

static bool is_wildcard(uint16_t family, const uint8_t *addr)
{
	static const uint8_t zero[16];

	return memcmp(addr, zero, family == AF_INET ? 4 : 16) == 0;
}

static bool addr_matches(const struct port_watch *w, uint16_t family, const uint8_t *addr)
{
	if (!w->has_addr || is_wildcard(family, addr))
		return true;
	return family == w->addr_family &&
	       memcmp(addr, w->addr, family == AF_INET ? 4 : 16) == 0;
}

static void format_addr(uint16_t family, const uint8_t *addr, char *out, size_t len)
{
	if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, out, (socklen_t)len))
		copy_str(out, len, "?");
}

static struct seen_listener *find_seen(struct port_watch *w, uint64_t ino)
{
	for (size_t i = 0; i < w->nseen; i++)
		if (w->seen[i].ino == ino)
			return &w->seen[i];
	return NULL;
}

static uint64_t mono_to_realtime(uint64_t mono_ns)
{
	uint64_t now_mono = now_monotonic_ns(), now_real = now_realtime_ns();

	return mono_ns && mono_ns <= now_mono ? now_real - (now_mono - mono_ns) : now_real;
}

static void watch_end(struct port_watch *w)
{
	loop_timer_disarm(P.loop, &w->timeout);
	if (w->kernel_ref)
		bpf_events_unwatch_port(w->ns->ino, w->port);
	netns_put(w->ns);
	idmap_del(&P.watches, w->id);
	free(w->seen);
	free(w);
}

/* ------------------------------------------------------------ reporting */

/* Records and reports one listener; returns false if the watch ended. */
static bool report_listening(struct port_watch *w, const struct port_event *pe, bool already)
{
	ctld_Event ev = ctld_Event_init_zero;
	ctld_PortListening *pl = &ev.kind.port_listening;
	struct seen_listener *grown;

	if (find_seen(w, pe->sock_ino))
		return true;
	grown = realloc(w->seen, (w->nseen + 1) * sizeof(*grown));
	if (grown) {
		w->seen = grown;
		w->seen[w->nseen++] = (struct seen_listener){
			.ino = pe->sock_ino, .pid = pe->pid, .family = pe->family };
		memcpy(w->seen[w->nseen - 1].addr, pe->addr, sizeof(pe->addr));
	}
	ev.which_kind = ctld_Event_port_listening_tag;
	pl->watch = w->id;
	pl->port = pe->port;
	format_addr(pe->family, pe->addr, pl->addr, sizeof(pl->addr));
	pl->pid = (uint32_t)pe->pid;
	copy_str(pl->comm, sizeof(pl->comm), pe->comm);
	pl->already = already;
	pl->time_ns = already ? 0 : mono_to_realtime(pe->time_ns);
	session_send_event(w->session, &ev);
	w->fired = true;
	loop_timer_disarm(P.loop, &w->timeout);
	if (w->once) {
		watch_end(w);
		return false;
	}
	return true;
}

static void report_closed(struct port_watch *w, struct seen_listener *s)
{
	ctld_Event ev = ctld_Event_init_zero;
	ctld_PortClosed *pc = &ev.kind.port_closed;

	ev.which_kind = ctld_Event_port_closed_tag;
	pc->watch = w->id;
	pc->port = w->port;
	format_addr(s->family, s->addr, pc->addr, sizeof(pc->addr));
	pc->pid = (uint32_t)s->pid;
	session_send_event(w->session, &ev);
	*s = w->seen[--w->nseen];
}

/* ------------------------------------------------------------ kernel events */

static void deliver_listen(const struct port_event *pe)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&P.watches, &it, &id, &value);) {
		struct port_watch *w = value;

		if (w->ns->ino == pe->netns && w->port == pe->port &&
		    addr_matches(w, pe->family, pe->addr))
			report_listening(w, pe, false);
	}
}

/* Any watch's namespace handle for a kernel event, or NULL (all unwatched). */
static struct netns *namespace_of(const struct port_event *pe)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&P.watches, &it, &id, &value);) {
		struct port_watch *w = value;

		if (w->ns->ino == pe->netns && w->port == pe->port)
			return w->ns;
	}
	return NULL;
}

static void candidate_free(struct candidate *c)
{
	struct candidate **link;

	for (link = &P.candidates; *link; link = &(*link)->next) {
		if (*link == c) {
			*link = c->next;
			break;
		}
	}
	loop_timer_disarm(P.loop, &c->retry);
	free(c);
}

/* Is the candidate in the listening hash yet? Then listen() succeeded. */
static void candidate_check(struct loop *loop, void *ctx)
{
	/* A successful listen() hashes its socket microseconds after the LISTEN
	 * transition; these delays (ns) only matter when we were faster. */
	static const uint64_t retry_ns[] = { 200000, 1000000, 5000000, 20000000, 100000000,
					     500000000 };
	struct candidate *c = ctx;
	struct netns *ns = namespace_of(&c->pe);
	int n;

	if (!ns) {
		candidate_free(c);
		return;
	}
	/* one family: the candidate's (half the cost of a full dump) */
	n = sockdiag_listeners(ns->diag_fd, c->pe.family, c->pe.port, P.scan, MAX_LISTENERS_SCAN);
	if (n >= 0 && scan_has(P.scan, n, c->pe.sock_ino)) {
		struct port_event pe = c->pe;

		candidate_free(c);
		deliver_listen(&pe);
		return;
	}
	if (c->attempts == ARRAY_SIZE(retry_ns)) {
		log_info("port %u: socket %llu of pid %d entered LISTEN but never listened",
			 c->pe.port, (unsigned long long)c->pe.sock_ino, c->pe.pid);
		candidate_free(c);
		return;
	}
	loop_timer_arm_in(loop, &c->retry, retry_ns[c->attempts++]);
}

void watch_port_kernel_listen(const struct port_event *pe)
{
	struct candidate *c = calloc(1, sizeof(*c));

	if (!c) {
		deliver_listen(pe); /* unconfirmed beats lost */
		return;
	}
	c->pe = *pe;
	loop_timer_init(&c->retry, candidate_check, c);
	c->next = P.candidates;
	P.candidates = c;
	candidate_check(P.loop, c);
}

void watch_port_kernel_close(const struct port_event *pe)
{
	uint64_t id;
	void *value;

	for (struct candidate *c = P.candidates; c; c = c->next) {
		if (c->pe.sock_ino == pe->sock_ino) {
			/* LISTEN then CLOSE before it was ever hashed: listen() failed. */
			log_info("port %u: listen() by pid %d (%s) failed; not reported", pe->port,
				 pe->pid, pe->comm);
			candidate_free(c);
			return;
		}
	}
	for (size_t it = 0; idmap_next(&P.watches, &it, &id, &value);) {
		struct port_watch *w = value;
		struct seen_listener *s;

		if (w->ns->ino == pe->netns && w->port == pe->port &&
		    (s = find_seen(w, pe->sock_ino)))
			report_closed(w, s);
	}
}

/* ------------------------------------------------------------ sock_diag scans */

static bool scan_has(const struct listening_sock *socks, int n, uint64_t ino)
{
	for (int i = 0; i < n && i < MAX_LISTENERS_SCAN; i++)
		if (socks[i].ino == ino)
			return true;
	return false;
}

/* Compares a watch with a dump of its namespace: reports new listeners and,
 * unless initial, closes of those gone. Returns false if the watch ended. */
static bool reconcile(struct port_watch *w, const struct listening_sock *socks, int n,
		      bool initial)
{
	for (int i = 0; i < n && i < MAX_LISTENERS_SCAN; i++) {
		const struct listening_sock *ls = &socks[i];
		struct port_event pe = { .netns = w->ns->ino, .sock_ino = ls->ino,
					 .port = ls->port, .family = ls->family };

		if (ls->port != w->port || find_seen(w, ls->ino) ||
		    !addr_matches(w, ls->family, ls->addr))
			continue;
		memcpy(pe.addr, ls->addr, sizeof(pe.addr));
		pe.time_ns = now_monotonic_ns();
		sockdiag_find_owner(ls->ino, &pe.pid, pe.comm);
		if (!report_listening(w, &pe, initial))
			return false;
	}
	for (size_t i = 0; !initial && i < w->nseen;) {
		if (!scan_has(socks, n, w->seen[i].ino))
			report_closed(w, &w->seen[i]);
		else
			i++;
	}
	return true;
}

/* One dump per namespace, shared by every watch in it. */
static void scan_namespace(struct netns *ns, void *ctx)
{
	int n = sockdiag_listeners(ns->diag_fd, 0, 0, P.scan, MAX_LISTENERS_SCAN);
	uint64_t id;
	void *value;

	(void)ctx;
	if (n < 0) {
		log_warn("sock_diag dump failed: %s", strerror(-n));
		return;
	}
	for (size_t it = 0; idmap_next(&P.watches, &it, &id, &value);) {
		struct port_watch *w = value;

		if (w->ns == ns)
			reconcile(w, P.scan, n, false);
	}
}

void watch_port_resync(void)
{
	netns_for_each(scan_namespace, NULL);
}

static bool needs_polling(void)
{
	return !bpf_events_enabled() && P.watches.count > 0;
}

static void poll_tick(struct loop *loop, void *ctx)
{
	(void)ctx;
	watch_port_resync();
	if (needs_polling())
		loop_timer_arm_in(loop, &P.poll_timer, P.cfg.poll_interval_ms * NSEC_PER_MSEC);
}

/* ------------------------------------------------------------ requests */

static void timeout_fired(struct loop *loop, void *ctx)
{
	struct port_watch *w = ctx;
	ctld_Event ev = ctld_Event_init_zero;

	(void)loop;
	ev.which_kind = ctld_Event_watch_timeout_tag;
	ev.kind.watch_timeout.watch = w->id;
	session_send_event(w->session, &ev);
	watch_end(w);
}

static unsigned watches_of(uint64_t session)
{
	unsigned n = 0;
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&P.watches, &it, &id, &value);)
		n += ((struct port_watch *)value)->session == session;
	return n;
}

static int parse_filter(struct port_watch *w, const char *addr)
{
	if (!addr[0])
		return 0;
	w->has_addr = true;
	if (inet_pton(AF_INET, addr, w->addr) == 1) {
		w->addr_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, addr, w->addr) == 1) {
		w->addr_family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* Validates the request and builds the watch (not yet registered). */
static struct port_watch *watch_new(struct request_ctx *ctx, const ctld_WatchPort *req)
{
	struct port_watch *w;
	char err[200];
	int ret;

	if (req->port == 0 || req->port > 65535) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, 0, "port %u is out of range 1..65535",
			    req->port);
		return NULL;
	}
	if (watches_of(ctx->session) >= P.cfg.max_per_client) {
		reply_error(ctx, ctld_ErrorCode_LIMIT, 0, "too many port watches (limit %u)",
			    P.cfg.max_per_client);
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return NULL;
	}
	w->port = (uint16_t)req->port;
	w->once = req->once;
	w->session = ctx->session;
	if (parse_filter(w, req->addr)) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, 0, "not an IPv4/IPv6 address: '%s'",
			    req->addr);
		free(w);
		return NULL;
	}
	if ((ret = netns_get(req->netns, &w->ns, err, sizeof(err)))) {
		reply_error(ctx, ret == -ENOENT ? ctld_ErrorCode_NOT_FOUND
						: ctld_ErrorCode_BAD_REQUEST,
			    -ret, "%s", err);
		free(w);
		return NULL;
	}
	return w;
}

void watch_port_handle_watch(struct request_ctx *ctx, const ctld_WatchPort *req)
{
	struct port_watch *w = watch_new(ctx, req);
	ctld_Reply *r;
	int n, err;

	if (!w)
		return;
	w->id = watch_id_next();
	loop_timer_init(&w->timeout, timeout_fired, w);
	if (idmap_put(&P.watches, w->id, w)) {
		netns_put(w->ns);
		free(w);
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return;
	}
	/* 1. the kernel filter first ... */
	if (bpf_events_enabled()) {
		if ((err = bpf_events_watch_port(w->ns->ino, w->port))) {
			watch_end(w);
			reply_error(ctx, ctld_ErrorCode_LIMIT, -err,
				    "cannot add the port to the kernel map: %s", strerror(-err));
			return;
		}
		w->kernel_ref = true;
	}
	/* 2. ... then the reply ... */
	r = reply_begin(ctx);
	r->which_result = ctld_Reply_watch_tag;
	r->result.watch.watch = w->id;
	reply_send(ctx);
	log_debug("watch %llu: port %u in netns %llu", (unsigned long long)w->id, w->port,
		  (unsigned long long)w->ns->ino);
	/* 3. ... then who listens already. */
	n = sockdiag_listeners(w->ns->diag_fd, 0, w->port, P.scan, MAX_LISTENERS_SCAN);
	if (n < 0)
		log_warn("sock_diag check for port %u failed: %s", w->port, strerror(-n));
	else if (!reconcile(w, P.scan, n, true))
		return; /* a `once` watch that already fired */
	if (req->timeout_ms && !w->fired)
		loop_timer_arm_in(P.loop, &w->timeout, (uint64_t)req->timeout_ms * NSEC_PER_MSEC);
	if (needs_polling() && !loop_timer_armed(&P.poll_timer))
		loop_timer_arm_in(P.loop, &P.poll_timer, P.cfg.poll_interval_ms * NSEC_PER_MSEC);
}

void watch_port_handle_unwatch(struct request_ctx *ctx, const ctld_UnwatchPort *req)
{
	struct port_watch *w = idmap_get(&P.watches, req->watch);

	if (!w || w->session != ctx->session) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "no port watch %llu on this connection",
			    (unsigned long long)req->watch);
		return;
	}
	watch_end(w);
	reply_ok(ctx);
}

void watch_port_client_gone(uint64_t session)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&P.watches, &it, &id, &value);)
		if (((struct port_watch *)value)->session == session)
			watch_end(value);
}

void watch_port_each(void (*fn)(const ctld_WatchInfo *info, void *ctx), void *ctx)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&P.watches, &it, &id, &value);) {
		const struct port_watch *w = value;
		ctld_WatchInfo info = ctld_WatchInfo_init_zero;

		info.watch = w->id;
		info.kind = ctld_WatchKind_WATCH_PORT;
		info.client = w->session;
		copy_str(info.client_peer, sizeof(info.client_peer), session_peer(w->session));
		info.port = w->port;
		if (w->has_addr)
			format_addr(w->addr_family, w->addr, info.addr, sizeof(info.addr));
		info.netns = w->ns->ino;
		info.once = w->once;
		fn(&info, ctx);
	}
}

void watch_port_fill_stats(ctld_StatsReply *st)
{
	st->port_watches = (uint32_t)P.watches.count;
}

void watch_port_shutdown(void)
{
	uint64_t id;
	void *value;

	for (size_t it = 0; idmap_next(&P.watches, &it, &id, &value);)
		watch_end(value);
	while (P.candidates)
		candidate_free(P.candidates);
	if (P.loop)
		loop_timer_disarm(P.loop, &P.poll_timer);
	idmap_free(&P.watches);
	netns_shutdown();
}
