// SPDX-License-Identifier: BSD-2-Clause
/*
 * listen_bench.c - listen-detection latency: from the moment listen()
 * returns in this process to the moment this client holds PortListening.
 *
 *   listen_bench TARGET [JITTER_US]
 *       Picks a free loopback port and sends WatchPort for it, then reads a
 *       count N per line on stdin and does N trials, each:
 *         sleep a random 0..JITTER_US (default 25000: so a polling daemon's
 *         timer phase is random, not synchronized with our previous close),
 *         socket, bind 127.0.0.1:PORT, listen -> t0;
 *         wait for PortListening -> t1; close; wait for PortClosed.
 *       Prints {"lat_ns":[t1-t0,...],"kern_to_client_ns":[...],"failed":F}
 *       where kern_to_client_ns is this client's CLOCK_REALTIME at arrival
 *       minus PortListening.time_ns (the kernel's transition time).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "common/util.h"

#define WAIT_NS (5ull * 1000000000ull)

static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &len) < 0)
		return 0;
	close(s);
	return ntohs(sa.sin_port);
}

/* Waits for an event of this watch of the given kind; 1 found, else <= 0. */
static int wait_watch_event(struct ctld_conn *c, ctld_Message *msg, uint64_t watch, pb_size_t kind)
{
	uint64_t deadline = bench_now_ns() + WAIT_NS;
	int ret;

	while ((ret = bench_next(c, msg, deadline)) > 0) {
		const ctld_Event *ev = &msg->kind.event;

		if (msg->which_kind != ctld_Message_event_tag || ev->which_kind != kind)
			continue;
		if (kind == ctld_Event_port_listening_tag && ev->kind.port_listening.watch == watch)
			return 1;
		if (kind == ctld_Event_port_closed_tag && ev->kind.port_closed.watch == watch)
			return 1;
	}
	return ret;
}

int main(int argc, char **argv)
{
	ctld_Request *req = calloc(1, sizeof(*req));
	ctld_Message *msg = calloc(1, sizeof(*msg));
	long jitter_us = argc > 2 ? atol(argv[2]) : 25000;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct ctld_conn c;
	uint64_t watch;
	char line[64];
	int one = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: listen_bench TARGET [JITTER_US]\n");
		return 64;
	}
	srand((unsigned)getpid());
	if (!req || !msg || bench_connect(&c, argv[1], "listen_bench"))
		return 1;
	if (!(sa.sin_port = htons(free_port())))
		return 1;
	req->which_body = ctld_Request_watch_port_tag;
	req->body.watch_port.port = ntohs(sa.sin_port);
	if (bench_call(&c, req, msg))
		return 1;
	watch = msg->kind.reply.result.watch.watch;
	while (fgets(line, sizeof(line), stdin)) {
		long n = atol(line), failed = 0, k = 0;
		uint64_t *lat = calloc((size_t)(n > 0 ? n : 1), sizeof(*lat));
		uint64_t *k2c = calloc((size_t)(n > 0 ? n : 1), sizeof(*k2c));

		for (long i = 0; i < n; i++) {
			int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			uint64_t t0, t1;

			if (jitter_us > 0)
				usleep((useconds_t)(rand() % jitter_us));
			setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 16) < 0) {
				perror("listen_bench: listen");
				return 1;
			}
			t0 = bench_now_ns();
			if (wait_watch_event(&c, msg, watch, ctld_Event_port_listening_tag) != 1) {
				failed++;
				close(s);
				continue;
			}
			t1 = bench_now_ns();
			lat[k] = t1 - t0;
			t1 = now_realtime_ns(); /* the kernel's time_ns is CLOCK_REALTIME; 0 = unknown */
			k2c[k++] = msg->kind.event.kind.port_listening.time_ns &&
						   t1 > msg->kind.event.kind.port_listening.time_ns
					   ? t1 - msg->kind.event.kind.port_listening.time_ns
					   : 0;
			close(s);
			if (wait_watch_event(&c, msg, watch, ctld_Event_port_closed_tag) != 1)
				failed++;
		}
		printf("{\"port\":%u,\"failed\":%ld,", ntohs(sa.sin_port), failed);
		bench_print_array(stdout, "lat_ns", lat, (size_t)k);
		putchar(',');
		bench_print_array(stdout, "kern_to_client_ns", k2c, (size_t)k);
		printf("}\n");
		fflush(stdout);
		free(lat);
		free(k2c);
	}
	ctld_conn_close(&c);
	return 0;
}
