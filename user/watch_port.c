// SPDX-License-Identifier: BSD-2-Clause
/* watch_port.c - placeholder until the port-watch module lands (issue 3). */
#include "session.h"
#include "watch_port.h"

void watch_port_config_defaults(struct watch_port_config *cfg)
{
	cfg->poll_interval_ms = 20;
	cfg->max_per_client = 256;
}
int watch_port_init(struct loop *loop, const struct watch_port_config *cfg)
{
	(void)loop;
	(void)cfg;
	return 0;
}
void watch_port_shutdown(void) {}
void watch_port_handle_watch(struct request_ctx *ctx, const ctld_WatchPort *w)
{
	(void)w;
	reply_error(ctx, ctld_ErrorCode_UNSUPPORTED, 0, "port watches are not available yet");
}
void watch_port_handle_unwatch(struct request_ctx *ctx, const ctld_UnwatchPort *u)
{
	(void)u;
	reply_error(ctx, ctld_ErrorCode_UNSUPPORTED, 0, "port watches are not available yet");
}
void watch_port_client_gone(uint64_t session) { (void)session; }
void watch_port_fill_stats(ctld_StatsReply *st) { (void)st; }
void watch_port_kernel_listen(const struct port_event *ev) { (void)ev; }
void watch_port_kernel_close(const struct port_event *ev) { (void)ev; }
