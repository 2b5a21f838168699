/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * file_put.h - PutFile and PutData: a file (or a directory) written on the
 * node, atomically: a temporary file beside the destination, filled chunk
 * by chunk as the client sends them, committed by fsync, a SHA-256 check
 * and rename. A transfer that fails or whose client goes leaves no trace,
 * except a resumable one whose client went: it is parked until the same
 * put takes it up (PutFile.resume).
 */
#ifndef CTLD_FILE_PUT_H
#define CTLD_FILE_PUT_H

#include "ctld.pb.h"
#include "daemon/clients/reply.h"

void file_put_handle(struct request_ctx *ctx, const ctld_PutFile *req);
void file_put_handle_data(struct request_ctx *ctx, const ctld_PutData *req);

#endif
