// SPDX-License-Identifier: BSD-2-Clause
/*
 * dispatch.c - one straight path per request: session decodes, this file
 * picks the owning module's handler, the handler replies through reply.h.
 * Hello, Stats and Ping, which belong to no single module, are answered
 * here.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "common/wire.h"
#include "daemon/dispatch.h"
#include "daemon/upgrade.h"
#include "daemon/clients/reply.h"
#include "daemon/clients/session.h"
#include "daemon/core/log_limit.h"
#include "daemon/core/outbudget.h"
#include "daemon/files/file_get.h"
#include "daemon/files/file_put.h"
#include "daemon/files/file_transfers.h"
#include "daemon/jobs/jobs.h"
#include "daemon/kernel/bpf_events.h"
#include "daemon/watch/watch_file.h"
#include "daemon/watch/watch_port.h"
#include "daemon/watch/watch_registry.h"

static struct {
	uint64_t start_ns;
	size_t max_frame;
} D;

void dispatch_init(size_t max_frame)
{
	D.start_ns = now_monotonic_ns();
	D.max_frame = max_frame;
}

static void handle_hello(struct request_ctx *ctx)
{
	ctld_Reply *r = reply_begin(ctx);
	ctld_HelloReply *h = &r->result.hello;

	r->which_result = ctld_Reply_hello_tag;
	h->protocol_version = CTLD_PROTOCOL_VERSION;
	snprintf(h->server, sizeof(h->server), "ctld-bpf %s", CTLD_VERSION);
	gethostname(h->hostname, sizeof(h->hostname) - 1);
	h->pid = (uint32_t)getpid();
	h->bpf = bpf_events_enabled();
	h->max_frame = (uint32_t)D.max_frame;
	reply_send(ctx);
}

static uint64_t self_rss_kb(void)
{
	char line[128];
	uint64_t kb = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void fill_output_stats(ctld_StatsReply *st)
{
	struct outbudget_stats b;

	outbudget_get_stats(&b);
	st->output_dropped_bytes = session_output_dropped_bytes();
	st->output_budget = b.limit;
	st->output_held = b.held;
	st->output_held_peak = b.peak;
	st->output_budget_dropped_bytes = b.dropped;
	st->heap_trims = b.trims;
}

static void handle_stats(struct request_ctx *ctx)
{
	ctld_Reply *r;
	ctld_StatsReply *st;

	bpf_events_poll(); /* the counters include every record there is */
	r = reply_begin(ctx);
	st = &r->result.stats;
	r->which_result = ctld_Reply_stats_tag;
	st->uptime_ns = now_monotonic_ns() - D.start_ns;
	st->clients = session_count();
	st->unauthenticated = session_unauthenticated();
	st->unauthenticated_evicted = session_evicted();
	st->log_lines_dropped = log_dropped_lines();
	st->log_lines_suppressed = log_suppressed_lines();
	st->protocol_errors = session_protocol_errors();
	st->tls_full_handshakes = session_tls_handshakes(false);
	st->tls_resumed_handshakes = session_tls_handshakes(true);
	fill_output_stats(st);
	st->rss_kb = self_rss_kb();
	jobs_fill_stats(st);
	st->upgrades = upgrade_count();
	watch_registry_fill_stats(st);
	bpf_events_fill_stats(st);
	reply_send(ctx);
}

/* Liveness: answered at once, whatever else the client has asked, so a
 * Pong shows that the loop runs and reads this connection. */
static void handle_ping(struct request_ctx *ctx, const ctld_Ping *ping)
{
	ctld_Reply *r = reply_begin(ctx);

	r->which_result = ctld_Reply_pong_tag;
	r->result.pong.token = ping->token;
	r->result.pong.realtime_ns = now_realtime_ns();
	r->result.pong.monotonic_ns = now_monotonic_ns();
	reply_send(ctx);
}

void dispatch_request(struct request_ctx *ctx, const ctld_Request *req)
{
	switch (req->which_body) {
	case ctld_Request_hello_tag:
		handle_hello(ctx);
		break;
	case ctld_Request_run_tag:
		jobs_handle_run(ctx, &req->body.run);
		break;
	case ctld_Request_signal_tag:
		jobs_handle_signal(ctx, &req->body.signal);
		break;
	case ctld_Request_list_tag:
		jobs_handle_list(ctx, &req->body.list);
		break;
	case ctld_Request_attach_tag:
		jobs_handle_attach(ctx, &req->body.attach);
		break;
	case ctld_Request_detach_tag:
		jobs_handle_detach(ctx, &req->body.detach);
		break;
	case ctld_Request_write_stdin_tag:
		jobs_handle_write_stdin(ctx, &req->body.write_stdin);
		break;
	case ctld_Request_watch_port_tag:
		watch_port_handle_watch(ctx, &req->body.watch_port);
		break;
	case ctld_Request_unwatch_port_tag:
		watch_registry_handle_unwatch(ctx, req->body.unwatch_port.watch,
					      ctld_WatchKind_WATCH_PORT);
		break;
	case ctld_Request_watch_file_tag:
		watch_file_handle_watch(ctx, &req->body.watch_file);
		break;
	case ctld_Request_unwatch_file_tag:
		watch_registry_handle_unwatch(ctx, req->body.unwatch_file.watch,
					      ctld_WatchKind_WATCH_FILE);
		break;
	case ctld_Request_stats_tag:
		handle_stats(ctx);
		break;
	case ctld_Request_list_watches_tag:
		watch_registry_handle_list(ctx, &req->body.list_watches);
		break;
	case ctld_Request_ping_tag:
		handle_ping(ctx, &req->body.ping);
		break;
	case ctld_Request_put_file_tag:
		file_put_handle(ctx, &req->body.put_file);
		break;
	case ctld_Request_put_data_tag:
		file_put_handle_data(ctx, &req->body.put_data);
		break;
	case ctld_Request_get_file_tag:
		file_get_handle(ctx, &req->body.get_file);
		break;
	case ctld_Request_get_credit_tag:
		file_get_handle_credit(ctx, &req->body.get_credit);
		break;
	default:
		/* A newer client's request: say so, keep the connection. */
		reply_error(ctx, ctld_ErrorCode_UNSUPPORTED, 0,
			    "unknown or empty request; this daemon speaks protocol %d",
			    CTLD_PROTOCOL_VERSION);
	}
}

void dispatch_session_gone(uint64_t session)
{
	jobs_client_gone(session);
	watch_registry_client_gone(session);
	transfers_client_gone(session);
}
