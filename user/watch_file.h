/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * watch_file.h - inotify watches on files: WatchFile/UnwatchFile, files that
 * do not exist yet (watched through their directory), the "reached N bytes"
 * threshold, queue overflow handling, and FileEvent to the watching client.
 */
#ifndef CTLD_WATCH_FILE_H
#define CTLD_WATCH_FILE_H

#include <stdint.h>

#include "ctld.pb.h"

struct loop;
struct request_ctx;

int watch_file_init(struct loop *loop, uint32_t max_per_client);
void watch_file_shutdown(void);

void watch_file_handle_watch(struct request_ctx *ctx, const ctld_WatchFile *w);
void watch_file_handle_unwatch(struct request_ctx *ctx, const ctld_UnwatchFile *u);
void watch_file_client_gone(uint64_t session);
void watch_file_fill_stats(ctld_StatsReply *st);

#endif
