// SPDX-License-Identifier: BSD-2-Clause
/* watch_file.c - placeholder until the inotify module lands (issue 4). */
#include "session.h"
#include "watch_file.h"

int watch_file_init(struct loop *loop, uint32_t max_per_client)
{
	(void)loop;
	(void)max_per_client;
	return 0;
}
void watch_file_shutdown(void) {}
void watch_file_handle_watch(struct request_ctx *ctx, const ctld_WatchFile *w)
{
	(void)w;
	reply_error(ctx, ctld_ErrorCode_UNSUPPORTED, 0, "file watches are not available yet");
}
void watch_file_handle_unwatch(struct request_ctx *ctx, const ctld_UnwatchFile *u)
{
	(void)u;
	reply_error(ctx, ctld_ErrorCode_UNSUPPORTED, 0, "file watches are not available yet");
}
void watch_file_client_gone(uint64_t session) { (void)session; }
void watch_file_fill_stats(ctld_StatsReply *st) { (void)st; }
