/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * file_put.h - PutFile and PutData: a file (or a directory) written on the
 * node, atomically: a temporary file beside the destination, filled chunk
 * by chunk as the client sends them, committed by fsync, a SHA-256 check
 * and rename. A transfer that fails or whose client goes leaves no trace.
 */
#ifndef CTLD_FILE_PUT_H
#define CTLD_FILE_PUT_H

#include <stdint.h>

#include "ctld.pb.h"
#include "daemon/clients/reply.h"

/* At once, per connection and in the daemon (docs/protocol.md, Files). */
#define FILE_PUT_PER_CLIENT 16
#define FILE_PUT_MAX 1024

void file_put_handle(struct request_ctx *ctx, const ctld_PutFile *req);
void file_put_handle_data(struct request_ctx *ctx, const ctld_PutData *req);
/* The client went away: its transfers end, their temporary files go. */
void file_put_client_gone(uint64_t session);
void file_put_shutdown(void);

#endif
