// SPDX-License-Identifier: BSD-2-Clause
/*
 * call.c - ctld_conn_call(): one request at a time, blocking, on top of
 * the non-blocking connection of client.c (the benchmark uses it; ctl
 * drives its connections from its own poll loop).
 */
#include <errno.h>
#include <poll.h>

#include "client/client.h"
#include "common/util.h"

int ctld_conn_call(struct ctld_conn *c, ctld_Request *req, ctld_Message *reply,
		   uint32_t timeout_ms, void (*on_event)(const ctld_Event *ev, void *ctx),
		   void *ctx)
{
	uint64_t deadline = now_monotonic_ns() + (uint64_t)timeout_ms * NSEC_PER_MSEC, id;
	int err = ctld_conn_send(c, req, &id);

	while (!err) {
		uint64_t now = now_monotonic_ns();
		int ret, wait = ctld_conn_poll_timeout(c, now);
		int left = now >= deadline ? 0 : (int)((deadline - now) / NSEC_PER_MSEC) + 1;
		struct pollfd p = { .fd = c->fd, .events = ctld_conn_poll_events(c) };

		while ((ret = ctld_conn_next(c, reply)) > 0) {
			if (reply->which_kind == ctld_Message_reply_tag &&
			    reply->kind.reply.id == id)
				return 0;
			if (reply->which_kind == ctld_Message_event_tag && on_event)
				on_event(&reply->kind.event, ctx);
		}
		if (ret < 0)
			return ret;
		if (!left)
			return -ETIMEDOUT;
		if (poll(&p, 1, wait < 0 || wait > left ? left : wait) < 0 && errno != EINTR)
			return -errno;
		err = ctld_conn_io(c, p.revents, now_monotonic_ns());
	}
	return err;
}
