// SPDX-License-Identifier: BSD-2-Clause
/*
 * reply.c - encoding replies and events into frames for the session layer.
 *
 * One scratch Message for replies and one for events, each big enough for
 * any message (Output carries 32 KiB): static, so nothing that large sits on
 * the stack, and one of each is all a single-threaded handler needs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/wire.h"
#include "daemon/clients/reply.h"
#include "daemon/core/log.h"

static struct {
	const struct reply_sink *sink;
	uint8_t frame_buf[WIRE_MAX_ENCODED];
	ctld_Message reply_msg;
	ctld_Message event_msg;
} R;

void reply_init(const struct reply_sink *sink)
{
	R.sink = sink;
}

int frame_encode(ctld_Message *msg, struct frame *f)
{
	size_t len;
	int err;

	/* Output, the most frequent message, and FileData carry bytes only */
	if (!(msg->which_kind == ctld_Message_event_tag &&
	      (msg->kind.event.which_kind == ctld_Event_output_tag ||
	       msg->kind.event.which_kind == ctld_Event_file_data_tag)))
		wire_sanitize_strings(ctld_Message_fields, msg);
	err = wire_encode(ctld_Message_fields, msg, R.frame_buf, sizeof(R.frame_buf), &len);

	if (err) {
		log_err("failed to encode a message: %s", strerror(-err));
		return err;
	}
	*f = (struct frame){ .data = R.frame_buf, .len = len };
	return 0;
}

int frame_send(uint64_t session, const struct frame *f)
{
	return R.sink ? R.sink->queue(session, f) : -ENOENT;
}

static int message_send(uint64_t session, ctld_Message *msg)
{
	struct frame f;
	int err = frame_encode(msg, &f);

	return err ? err : frame_send(session, &f);
}

/* ------------------------------------------------------------ events */

ctld_Event *event_begin(pb_size_t which)
{
	/* Clearing the whole Message would touch ~33 KiB for every event;
	 * the Event's kinds share a union, so clearing the Event is enough. */
	memset(&R.event_msg.kind.event, 0, sizeof(R.event_msg.kind.event));
	R.event_msg.which_kind = ctld_Message_event_tag;
	R.event_msg.kind.event.which_kind = which;
	return &R.event_msg.kind.event;
}

int event_send(uint64_t session)
{
	return message_send(session, &R.event_msg);
}

int event_encode(struct frame *f)
{
	return frame_encode(&R.event_msg, f);
}

/* ------------------------------------------------------------ replies */

ctld_Reply *reply_begin(struct request_ctx *ctx)
{
	memset(&R.reply_msg, 0, sizeof(R.reply_msg));
	R.reply_msg.which_kind = ctld_Message_reply_tag;
	R.reply_msg.kind.reply.id = ctx->id;
	return &R.reply_msg.kind.reply;
}

void reply_send(struct request_ctx *ctx)
{
	if (ctx->replied) {
		log_err("bug: request %llu answered twice", (unsigned long long)ctx->id);
		return;
	}
	ctx->replied = true;
	R.reply_msg.kind.reply.id = ctx->id;
	message_send(ctx->session, &R.reply_msg);
}

void reply_ok(struct request_ctx *ctx)
{
	reply_begin(ctx);
	reply_send(ctx);
}

static void fill_error(ctld_Reply *r, ctld_ErrorCode code, int sys_errno, const char *fmt,
		       va_list ap) __attribute__((format(printf, 4, 0)));

static void fill_error(ctld_Reply *r, ctld_ErrorCode code, int sys_errno, const char *fmt,
		       va_list ap)
{
	r->has_error = true;
	r->error.code = code;
	r->error.sys_errno = sys_errno;
	vsnprintf(r->error.text, sizeof(r->error.text), fmt, ap);
}

void reply_error(struct request_ctx *ctx, ctld_ErrorCode code, int sys_errno, const char *fmt, ...)
{
	va_list ap;
	ctld_Reply *r = reply_begin(ctx);

	va_start(ap, fmt);
	fill_error(r, code, sys_errno, fmt, ap);
	va_end(ap);
	log_debug("client %s: request %llu: %s", reply_peer_name(ctx->session),
		  (unsigned long long)ctx->id, r->error.text);
	reply_send(ctx);
}

struct pending_reply reply_defer(struct request_ctx *ctx)
{
	ctx->deferred = true;
	if (R.sink)
		R.sink->pending(ctx->session, 1);
	return (struct pending_reply){ .session = ctx->session, .id = ctx->id };
}

void pending_reply_ok(struct pending_reply *p)
{
	struct request_ctx ctx = { .session = p->session, .id = p->id };

	if (R.sink)
		R.sink->pending(p->session, -1);
	reply_ok(&ctx);
}

void pending_reply_error(struct pending_reply *p, ctld_ErrorCode code, int sys_errno,
			 const char *fmt, ...)
{
	struct request_ctx ctx = { .session = p->session, .id = p->id };
	ctld_Reply *r;
	va_list ap;

	if (R.sink)
		R.sink->pending(p->session, -1);
	r = reply_begin(&ctx);
	va_start(ap, fmt);
	fill_error(r, code, sys_errno, fmt, ap);
	va_end(ap);
	reply_send(&ctx);
}

bool reply_pending_full(uint64_t session)
{
	return R.sink && R.sink->pending_full(session);
}

const char *reply_peer_name(uint64_t session)
{
	return R.sink ? R.sink->peer(session) : "(gone)";
}
