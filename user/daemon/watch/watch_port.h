/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * watch_port.h - the WatchPort request: "tell me when TCP port P listens".
 * A client port watch is a port_monitor subscriber with an address filter,
 * a timeout and `once`, sending PortListening / PortClosed / WatchTimeout
 * to its client. Registered in the watch registry (ids, limit, Unwatch).
 */
#ifndef CTLD_WATCH_PORT_H
#define CTLD_WATCH_PORT_H

#include "ctld.pb.h"

struct loop;
struct request_ctx;

void watch_port_init(struct loop *loop);
void watch_port_handle_watch(struct request_ctx *ctx, const ctld_WatchPort *req);

#endif
