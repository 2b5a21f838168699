/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * file_get.h - GetFile and GetCredit: a file of the node streamed to the
 * client as FileData events, read only as fast as the client acknowledges
 * (a window per transfer), then FileEnd with its SHA-256; a directory
 * listed one page per request.
 */
#ifndef CTLD_FILE_GET_H
#define CTLD_FILE_GET_H

#include "ctld.pb.h"
#include "daemon/clients/reply.h"

#define FILE_GET_WINDOW (1u << 20) /* default and largest window */
/* Gets at once in the daemon: what they hold in client queues together is
 * at most this many windows (64 MiB, the size of the default output budget). */
#define FILE_GETS_MAX 64

void file_get_handle(struct request_ctx *ctx, const ctld_GetFile *req);
void file_get_handle_credit(struct request_ctx *ctx, const ctld_GetCredit *req);

#endif
