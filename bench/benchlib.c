// SPDX-License-Identifier: BSD-2-Clause
/* benchlib.c - see benchlib.h. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "common/util.h"

uint64_t bench_now_ns(void)
{
	return now_monotonic_ns();
}

int bench_connect(struct ctld_conn *c, const char *target, const char *name)
{
	ctld_Message *msg = calloc(1, sizeof(*msg));
	int err;

	ctld_conn_init(c, name);
	if (target[0] == '/') {
		err = ctld_conn_connect_unix(c, target, 10000);
	} else {
		char host[256], port[16];

		if (split_host_port(target, host, sizeof(host), port, sizeof(port)))
			err = -EINVAL;
		else
			err = ctld_conn_connect_tcp(c, host, port, NULL, 10000);
	}
	/* the Hello reply is consumed inside ctld_conn_next() */
	while (!err && !ctld_conn_ready(c)) {
		struct pollfd p = { c->fd, ctld_conn_poll_events(c), 0 };
		int ret;

		poll(&p, 1, ctld_conn_poll_timeout(c, now_monotonic_ns()));
		if ((err = ctld_conn_io(c, p.revents, now_monotonic_ns())))
			break;
		if ((ret = ctld_conn_next(c, msg)) < 0)
			err = ret;
		else if (ret > 0)
			err = -EPROTO; /* nothing but the Hello reply can come first */
	}
	if (err)
		fprintf(stderr, "bench: cannot connect to %s: %s\n", target, ctld_conn_error(c));
	free(msg);
	return err;
}

int bench_next(struct ctld_conn *c, ctld_Message *msg, uint64_t deadline_ns)
{
	for (;;) {
		uint64_t now;
		int ret = ctld_conn_next(c, msg), wait;
		struct pollfd p = { c->fd, ctld_conn_poll_events(c), 0 };

		if (ret)
			return ret;
		now = now_monotonic_ns();
		if (now >= deadline_ns)
			return -ETIMEDOUT;
		wait = (int)((deadline_ns - now) / NSEC_PER_MSEC) + 1;
		if (poll(&p, 1, wait) < 0 && errno != EINTR)
			return -errno;
		if ((ret = ctld_conn_io(c, p.revents, now_monotonic_ns())))
			return ret;
	}
}

void bench_run_request(ctld_Request *req, int argc, char *const argv[])
{
	memset(req, 0, sizeof(*req));
	req->which_body = ctld_Request_run_tag;
	for (int i = 0; i < argc && i < 64; i++)
		copy_str(req->body.run.argv[req->body.run.argv_count++],
			 sizeof(req->body.run.argv[0]), argv[i]);
}

int bench_call(struct ctld_conn *c, ctld_Request *req, ctld_Message *reply)
{
	int err = ctld_conn_call(c, req, reply, 10000, NULL, NULL);

	if (err)
		return err;
	if (reply->kind.reply.has_error && reply->kind.reply.error.code != ctld_ErrorCode_OK) {
		fprintf(stderr, "bench: request failed: %s: %s\n",
			ctld_error_code_name(reply->kind.reply.error.code),
			reply->kind.reply.error.text);
		return -EREMOTEIO;
	}
	return 0;
}

void bench_print_array(FILE *f, const char *name, const uint64_t *v, size_t n)
{
	fprintf(f, "\"%s\":[", name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)v[i]);
	fputc(']', f);
}
