/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * watch_file.h - the WatchFile request: a client file watch is a path
 * follower (file_follow.h) with the kinds the client wants, the "reached N
 * bytes" threshold, `once` and a timeout, sending FileEvent and
 * WatchTimeout to its client. Registered in the watch registry.
 */
#ifndef CTLD_WATCH_FILE_H
#define CTLD_WATCH_FILE_H

#include "ctld.pb.h"

struct loop;
struct request_ctx;

void watch_file_init(struct loop *loop);
void watch_file_handle_watch(struct request_ctx *ctx, const ctld_WatchFile *req);

#endif
