/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * watch_port.h - "tell me when TCP port P listens": WatchPort/UnwatchPort,
 * the first sock_diag check for listeners that already exist, timeouts, and
 * PortListening/PortClosed to every client watching the port. Events come
 * from the kernel (bpf_events.c) or, without BPF, from sock_diag polling.
 */
#ifndef CTLD_WATCH_PORT_H
#define CTLD_WATCH_PORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctld.pb.h"

struct loop;
struct request_ctx;

struct watch_port_config {
	uint32_t poll_interval_ms;   /* sock_diag polling period without BPF */
	uint32_t max_per_client;     /* watches (ports + files) per client */
};

void watch_port_config_defaults(struct watch_port_config *cfg);
int watch_port_init(struct loop *loop, const struct watch_port_config *cfg);
void watch_port_shutdown(void);

void watch_port_handle_watch(struct request_ctx *ctx, const ctld_WatchPort *w);
void watch_port_handle_unwatch(struct request_ctx *ctx, const ctld_UnwatchPort *u);
void watch_port_client_gone(uint64_t session);
void watch_port_fill_stats(ctld_StatsReply *st);
/* Calls fn with a description of every port watch (ListWatches). */
void watch_port_each(void (*fn)(const ctld_WatchInfo *info, void *ctx), void *ctx);

/* A socket reached LISTEN for real (listen() returned 0) / a listener closed.
 * addr is 16 bytes (IPv4 in the first 4 when family is AF_INET). */
struct port_event {
	uint64_t netns;
	uint64_t sock_ino;     /* identifies the socket across both events */
	uint64_t time_ns;      /* CLOCK_MONOTONIC */
	uint16_t port;
	uint16_t family;
	uint8_t addr[16];
	pid_t pid;
	char comm[16];
};
void watch_port_kernel_listen(const struct port_event *ev);
void watch_port_kernel_close(const struct port_event *ev);
/* Kernel events may have been lost: re-check every watch with sock_diag. */
void watch_port_resync(void);

#endif
