// SPDX-License-Identifier: BSD-2-Clause
/*
 * watch_port.c - client port watches.
 *
 * Creating a watch, in this order: subscribe to the port (the kernel filter
 * first, then a dump of who listens: see port_monitor.c), reply with the
 * watch id, then report those already listening as PortListening{already}.
 * Each watch remembers the sockets it reported (by inode) until they close,
 * so each listener is reported once and every PortListening is followed by
 * a PortClosed when that listener goes away.
 *
 * An address filter matches listeners on that address and on the wildcard
 * (0.0.0.0 / ::), because a connection to the address would reach them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/clients/reply.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/kernel/netns.h"
#include "daemon/watch/port_monitor.h"
#include "daemon/watch/watch_port.h"
#include "daemon/watch/watch_registry.h"

struct port_watch {
	uint64_t id;
	uint64_t session;
	struct port_sub sub;
	struct netns *ns;
	uint16_t port;
	struct addr_filter filter;
	bool once;
	bool fired;
	struct loop_timer timeout;
	struct tcp_listener *seen; /* reported and not yet closed */
	size_t nseen;
};

static struct loop *watch_loop;

static const struct watch_backend port_backend;

static struct tcp_listener *find_seen(struct port_watch *w, uint64_t ino)
{
	for (size_t i = 0; i < w->nseen; i++)
		if (w->seen[i].sock_ino == ino)
			return &w->seen[i];
	return NULL;
}

/* Frees everything; the registry entry is gone already. */
static void stop(void *watch)
{
	struct port_watch *w = watch;

	loop_timer_disarm(watch_loop, &w->timeout);
	port_monitor_unsubscribe(&w->sub);
	netns_put(w->ns);
	free(w->seen);
	free(w);
}

/* The watch ended by itself (once, timeout). */
static void end(struct port_watch *w)
{
	watch_registry_remove(w->id);
	stop(w);
}

static uint64_t mono_to_realtime(uint64_t mono_ns)
{
	uint64_t now_mono = now_monotonic_ns(), now_real = now_realtime_ns();

	return mono_ns && mono_ns <= now_mono ? now_real - (now_mono - mono_ns) : now_real;
}

/* ------------------------------------------------------------ monitor events */

static void on_listening(struct port_sub *sub, const struct tcp_listener *l, bool already)
{
	struct port_watch *w = sub->ctx;
	ctld_PortListening *pl;
	struct tcp_listener *grown;

	if (!addr_filter_matches(&w->filter, l) || find_seen(w, l->sock_ino))
		return;
	grown = realloc(w->seen, (w->nseen + 1) * sizeof(*grown));
	if (grown) {
		w->seen = grown;
		w->seen[w->nseen++] = *l;
	}
	pl = &event_begin(ctld_Event_port_listening_tag)->kind.port_listening;
	pl->watch = w->id;
	pl->port = l->port;
	tcp_addr_format(l->family, l->addr, pl->addr, sizeof(pl->addr));
	pl->pid = (uint32_t)l->pid;
	copy_str(pl->comm, sizeof(pl->comm), l->comm);
	pl->already = already;
	pl->time_ns = already ? 0 : mono_to_realtime(l->time_ns);
	event_send(w->session);
	w->fired = true;
	loop_timer_disarm(watch_loop, &w->timeout);
	if (w->once)
		end(w);
}

static void on_closed(struct port_sub *sub, const struct tcp_listener *l)
{
	struct port_watch *w = sub->ctx;
	struct tcp_listener *s = find_seen(w, l->sock_ino);
	ctld_PortClosed *pc;

	if (!s)
		return;
	pc = &event_begin(ctld_Event_port_closed_tag)->kind.port_closed;
	pc->watch = w->id;
	pc->port = w->port;
	tcp_addr_format(s->family, s->addr, pc->addr, sizeof(pc->addr));
	pc->pid = (uint32_t)s->pid;
	event_send(w->session);
	*s = w->seen[--w->nseen];
}

static const struct port_sub_ops sub_ops = {
	.listening = on_listening,
	.closed = on_closed,
};

static void timeout_fired(struct loop *loop, void *ctx)
{
	struct port_watch *w = ctx;

	(void)loop;
	event_begin(ctld_Event_watch_timeout_tag)->kind.watch_timeout.watch = w->id;
	event_send(w->session);
	end(w);
}

/* ------------------------------------------------------------ the request */

/* Checks the request; 0, or -errno with the reply's code and text. */
static int validate(const struct request_ctx *ctx, const ctld_WatchPort *req,
		    struct addr_filter *filter, ctld_ErrorCode *code, char *err, size_t errlen)
{
	*code = ctld_ErrorCode_BAD_REQUEST;
	if (req->port == 0 || req->port > 65535) {
		snprintf(err, errlen, "port %u is out of range 1..65535", req->port);
		return -EINVAL;
	}
	if (addr_filter_parse(req->addr, filter)) {
		snprintf(err, errlen, "not an IPv4/IPv6 address: '%s'", req->addr);
		return -EINVAL;
	}
	if (!watch_registry_has_room(ctx->session)) {
		*code = ctld_ErrorCode_LIMIT;
		snprintf(err, errlen, "too many watches (limit %u per client, --max-watches)",
			 watch_registry_limit());
		return -ENOSPC;
	}
	return 0;
}

static struct port_watch *watch_new(uint64_t session, const ctld_WatchPort *req)
{
	struct port_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->session = session;
	w->port = (uint16_t)req->port;
	w->once = req->once;
	w->sub.ops = &sub_ops;
	w->sub.ctx = w;
	loop_timer_init(&w->timeout, timeout_fired, w);
	return w;
}

/* Builds, subscribes and registers the watch; replies and returns NULL on failure. */
static struct port_watch *start(struct request_ctx *ctx, const ctld_WatchPort *req)
{
	struct addr_filter filter;
	struct port_watch *w;
	ctld_ErrorCode code;
	char err[200];
	int ret;

	if ((ret = validate(ctx, req, &filter, &code, err, sizeof(err)))) {
		reply_error(ctx, code, 0, "%s", err);
		return NULL;
	}
	if (!(w = watch_new(ctx->session, req))) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return NULL;
	}
	w->filter = filter;
	if ((ret = netns_get(req->netns, &w->ns, err, sizeof(err)))) {
		reply_error(ctx, ret == -ENOENT ? ctld_ErrorCode_NOT_FOUND : ctld_ErrorCode_BAD_REQUEST,
			    -ret, "%s", err);
		free(w);
		return NULL;
	}
	if ((ret = port_monitor_subscribe(&w->sub, w->ns, w->port, err, sizeof(err))) ||
	    (ret = watch_registry_add(ctx->session, &port_backend, w, &w->id))) {
		reply_error(ctx, ret == -ENOMEM ? ctld_ErrorCode_SYSTEM : ctld_ErrorCode_LIMIT, -ret,
			    "%s", ret == -ENOMEM ? "out of memory" : err);
		stop(w);
		return NULL;
	}
	return w;
}

void watch_port_handle_watch(struct request_ctx *ctx, const ctld_WatchPort *req)
{
	struct port_watch *w = start(ctx, req);
	ctld_Reply *r;

	if (!w)
		return;
	r = reply_begin(ctx);
	r->which_result = ctld_Reply_watch_tag;
	r->result.watch.watch = w->id;
	reply_send(ctx);
	log_debug("watch %llu: port %u in netns %llu", (unsigned long long)w->id, w->port,
		  (unsigned long long)w->ns->ino);
	/* Who listens already: after the reply, so the client knows the id. */
	if (!port_monitor_replay(&w->sub))
		return; /* a `once` watch that already fired */
	if (req->timeout_ms && !w->fired)
		loop_timer_arm_in(watch_loop, &w->timeout, (uint64_t)req->timeout_ms * NSEC_PER_MSEC);
}

void watch_port_init(struct loop *loop)
{
	watch_loop = loop;
}

/* ------------------------------------------------------------ registry backend */

static void describe(const void *watch, ctld_WatchInfo *info)
{
	const struct port_watch *w = watch;

	info->port = w->port;
	if (w->filter.set)
		tcp_addr_format(w->filter.family, w->filter.addr, info->addr, sizeof(info->addr));
	info->netns = w->ns->ino;
	info->once = w->once;
}

static const struct watch_backend port_backend = {
	.kind = ctld_WatchKind_WATCH_PORT,
	.name = "port",
	.stop = stop,
	.describe = describe,
};
