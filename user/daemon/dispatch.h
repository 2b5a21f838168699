/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * dispatch.h - routes each decoded request to the module that owns it and
 * answers Hello and Stats, which belong to no single module.
 */
#ifndef CTLD_DISPATCH_H
#define CTLD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/clients/reply.h"

void dispatch_init(size_t max_frame);
void dispatch_request(struct request_ctx *ctx, const ctld_Request *req);
void dispatch_session_gone(uint64_t session);

#endif
