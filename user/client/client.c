// SPDX-License-Identifier: BSD-2-Clause
/*
 * client.c - one client connection to ctld-bpf: connect, TLS, Hello, framed
 * requests out, framed messages in. No poll loop here (see client.h).
 *
 * Input is decoded only as complete frames (wire_frame_check, then
 * wire_decode on the whole body), like the daemon does; a frame announcing
 * more than CTLD_CLIENT_MAX_FRAME is refused before anything is allocated
 * for it. Reads stop at a budget so a flooding daemon cannot grow the buffer
 * without the caller consuming messages in between.
 *
 * Liveness: once READY, every byte read counts as "heard"; a Ping goes out
 * and the connection is given up as liveness.h says. A Ping's reply (Pong,
 * or UNSUPPORTED from a daemon that predates Ping) is consumed here.
 *
 * When the daemon closes after an Error (a wrong protocol version, "too many
 * clients"), writing fails with EPIPE before that Error has been read. So a
 * write failure only stops writing; the reader then finds the Error and the
 * EOF, and the caller learns the real reason.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/client.h"
#include "client/liveness.h"
#include "common/bytebuf.h"
#include "common/keepalive.h"
#include "common/stream.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/wire.h"

#define READ_CHUNK (64 * 1024)
#define READ_BUDGET (4 * READ_CHUNK)
#define OUT_RESERVE (ctld_Request_size + WIRE_VARINT_MAX)

_Static_assert(CTLD_CLIENT_MAX_FRAME >= ctld_Message_size, "a Message must fit a frame");

#define CLOCK_BURST 4 /* clock samples taken back to back at the start */

static ctld_Request own_req; /* Hello and Ping (50 KiB: not on the stack) */

/* ------------------------------------------------------------ state */

void ctld_conn_init(struct ctld_conn *c, const char *client_name)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->next_id = 1;
	copy_str(c->client_name, sizeof(c->client_name), client_name ? client_name : "libctld");
}

static void close_transport(struct ctld_conn *c)
{
	if (c->tls)
		tls_conn_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->addrs)
		freeaddrinfo(c->addrs);
	c->addrs = c->addr = NULL;
}

/* Ends the connection with a reason; returns err for `return fail(...)`. */
static int fail(struct ctld_conn *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct ctld_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	/* the kernel's keepalive / TCP_USER_TIMEOUT, or our own Ping deadline */
	if (err == -ETIMEDOUT && c->state == CTLD_CONN_READY)
		c->silent_ns = liveness_silence_ns(&c->live, now_monotonic_ns());

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	close_transport(c);
	c->state = CTLD_CONN_CLOSED;
	c->err = err;
	return err;
}

void ctld_conn_close(struct ctld_conn *c)
{
	char name[sizeof(c->client_name)];
	uint32_t liveness_ms;
	struct clock_offset clock = c->clock; /* what was measured stays known */

	close_transport(c);
	bytebuf_free(&c->in);
	bytebuf_free(&c->out);
	copy_str(name, sizeof(name), c->client_name);
	liveness_ms = c->liveness_ms;
	ctld_conn_init(c, name);
	c->liveness_ms = liveness_ms;
	c->clock = clock;
}

void ctld_conn_sample_clock(struct ctld_conn *c, uint32_t period_ms)
{
	c->clock_period_ns = (uint64_t)(period_ms ? period_ms : 1) * NSEC_PER_MSEC;
	c->clock_next_ns = 0; /* at once when READY */
}

void ctld_conn_set_liveness(struct ctld_conn *c, uint32_t period_ms)
{
	c->liveness_ms = period_ms;
}

bool ctld_conn_ready(const struct ctld_conn *c)
{
	return c->state == CTLD_CONN_READY;
}

bool ctld_conn_reached(const struct ctld_conn *c)
{
	return c->reached;
}

uint64_t ctld_conn_silent_ms(const struct ctld_conn *c)
{
	return c->silent_ns ? (c->silent_ns + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC : 0;
}

const char *ctld_conn_error(const struct ctld_conn *c)
{
	return c->error[0] ? c->error : "no error";
}

/* ------------------------------------------------------------ output */

static bool transport_up(const struct ctld_conn *c)
{
	return c->state == CTLD_CONN_HELLO || c->state == CTLD_CONN_READY;
}

static int flush_output(struct ctld_conn *c)
{
	while (c->out.len && transport_up(c) && !c->write_closed) {
		struct iovec iov = { (void *)bytebuf_head(&c->out), c->out.len };
		ssize_t n = stream_writev(c->fd, c->tls, &iov, 1);

		if (n == -EAGAIN)
			break;
		if (n == -EPIPE || n == -ECONNRESET) {
			/* The reason is probably waiting in the input: read it. */
			c->write_closed = true;
			break;
		}
		if (n == 0)
			n = -EIO; /* a stream socket never accepts 0 of n > 0 bytes */
		if (n < 0)
			return fail(c, (int)n, "write to %s failed: %s", c->target,
				    c->tls ? tls_conn_error(c->tls) : strerror((int)-n));
		bytebuf_consume(&c->out, (size_t)n);
	}
	return 0;
}

int ctld_conn_send(struct ctld_conn *c, ctld_Request *req, uint64_t *id)
{
	size_t len;
	int err;

	if (c->state == CTLD_CONN_IDLE || c->state == CTLD_CONN_CLOSED)
		return -ENOTCONN;
	if ((err = bytebuf_reserve(&c->out, OUT_RESERVE, 2 * READ_CHUNK)))
		return err;
	req->id = c->next_id++;
	err = wire_encode(ctld_Request_fields, req, bytebuf_tail(&c->out), bytebuf_space(&c->out),
			  &len);
	if (err)
		return err;
	bytebuf_filled(&c->out, len);
	if (id)
		*id = req->id;
	return flush_output(c);
}

static int queue_hello(struct ctld_conn *c)
{
	memset(&own_req, 0, sizeof(own_req));
	own_req.which_body = ctld_Request_hello_tag;
	own_req.body.hello.protocol_version = CTLD_PROTOCOL_VERSION;
	copy_str(own_req.body.hello.client, sizeof(own_req.body.hello.client), c->client_name);
	return ctld_conn_send(c, &own_req, &c->hello_id);
}

static int send_ping(struct ctld_conn *c, uint64_t now_ns)
{
	int err;

	memset(&own_req, 0, sizeof(own_req));
	own_req.which_body = ctld_Request_ping_tag;
	own_req.body.ping.token = now_ns;
	c->ping_sent_real_ns = now_realtime_ns();
	if ((err = ctld_conn_send(c, &own_req, &c->ping_id)))
		return c->state == CTLD_CONN_CLOSED
			       ? err
			       : fail(c, err, "cannot send a Ping: %s", strerror(-err));
	liveness_pinged(&c->live, now_ns);
	return 0;
}

static bool clock_due(const struct ctld_conn *c, uint64_t now_ns)
{
	return c->clock_period_ns && !c->ping_id && now_ns >= c->clock_next_ns;
}

/* A Ping when the daemon has been quiet (or a clock sample is due); giving
 * up when it stays silent. */
static int check_liveness(struct ctld_conn *c, uint64_t now_ns)
{
	char silence[32];

	if (c->state != CTLD_CONN_READY)
		return 0;
	if (clock_due(c, now_ns))
		return send_ping(c, now_ns);
	switch (liveness_due(&c->live, now_ns)) {
	case LIVENESS_PING:
		return send_ping(c, now_ns);
	case LIVENESS_DEAD:
		snprintf(silence, sizeof(silence), "%.1f s",
			 (double)liveness_silence_ns(&c->live, now_ns) / NSEC_PER_SEC);
		return fail(c, -ETIMEDOUT, "%s: no answer for %s (liveness)", c->target, silence);
	default:
		return 0;
	}
}

/* ------------------------------------------------------------ connect */

static void start_deadline(struct ctld_conn *c, uint32_t timeout_ms)
{
	c->timeout_ms = timeout_ms;
	c->deadline_ns = timeout_ms ? now_monotonic_ns() + timeout_ms * NSEC_PER_MSEC : 0;
}

static int handshake(struct ctld_conn *c)
{
	int err = tls_conn_handshake(c->tls);

	if (err == -EAGAIN)
		return 0;
	if (err)
		return fail(c, -EPROTO, "TLS handshake with %s failed: %s", c->target,
			    tls_conn_error(c->tls));
	c->state = CTLD_CONN_HELLO;
	return flush_output(c);
}

/* The socket is connected: TLS next, or straight to Hello. */
static int transport_connected(struct ctld_conn *c)
{
	int err;

	c->reached = true;
	if (c->addrs)
		freeaddrinfo(c->addrs);
	c->addrs = c->addr = NULL;
	if (!c->tls_ctx) {
		c->state = CTLD_CONN_HELLO;
		return flush_output(c);
	}
	if ((err = tls_conn_new(c->tls_ctx, c->fd, c->tls_name, c->target, &c->tls)))
		return fail(c, err, "TLS setup for %s failed: %s", c->target, strerror(-err));
	c->state = CTLD_CONN_TLS;
	return handshake(c); /* the client speaks first: send ClientHello now */
}

/*
 * A unix connect is local: it completes at once or fails at once, except
 * when the daemon's accept queue is full, when it blocks until there is room.
 * SO_SNDTIMEO bounds that wait (unix_stream_connect honours it), which is
 * simpler than the retry loop a non-blocking AF_UNIX connect would need
 * (it returns EAGAIN and does not complete in the background).
 */
int ctld_conn_connect_unix(struct ctld_conn *c, const char *path, uint32_t timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000,
			      .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };
	int err;

	copy_str(c->target, sizeof(c->target), path);
	if (!copy_str(sa.sun_path, sizeof(sa.sun_path), path))
		return fail(c, -ENAMETOOLONG, "socket path too long: %s", path);
	start_deadline(c, timeout_ms);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return fail(c, -errno, "socket: %s", strerror(errno));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;
		return fail(c, -err, "cannot connect to %s: %s", path, strerror(err));
	}
	if ((err = fd_set_nonblock_cloexec(c->fd)))
		return fail(c, err, "fcntl: %s", strerror(-err));
	c->state = CTLD_CONN_HELLO;
	c->reached = true;
	return queue_hello(c);
}

/* Starts connecting to c->addr, then to the next addresses while they fail at once. */
static int try_addresses(struct ctld_conn *c, int last_err)
{
	int one = 1;

	for (; c->addr; c->addr = c->addr->ai_next) {
		struct addrinfo *ai = c->addr;

		if (c->fd >= 0)
			close(c->fd);
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			       ai->ai_protocol);
		if (c->fd < 0) {
			last_err = errno;
			continue;
		}
		/* small request/reply frames: do not wait for Nagle */
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* best effort: our own Pings bound the wait anyway */
		if (c->liveness_ms)
			tcp_keepalive_set(c->fd, c->liveness_ms);
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
			return transport_connected(c);
		if (errno == EINPROGRESS) {
			c->state = CTLD_CONN_CONNECTING;
			return 0;
		}
		last_err = errno;
	}
	return fail(c, -last_err, "cannot connect to %s: %s", c->target, strerror(last_err));
}

int ctld_conn_connect_tcp(struct ctld_conn *c, const char *host, const char *port,
			  struct tls_ctx *tls, uint32_t timeout_ms)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	int ret;

	snprintf(c->target, sizeof(c->target), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
		 port);
	copy_str(c->tls_name, sizeof(c->tls_name), host);
	c->tls_ctx = tls;
	start_deadline(c, timeout_ms);
	/* getaddrinfo may block on DNS; numeric addresses (the usual case) do not */
	if ((ret = getaddrinfo(host, port, &hints, &c->addrs)))
		return fail(c, ret == EAI_SYSTEM ? -errno : -EHOSTUNREACH,
			    "cannot connect to %s: %s", c->target, gai_strerror(ret));
	c->addr = c->addrs;
	c->state = CTLD_CONN_CONNECTING;
	/* Hello waits in the output buffer until the transport is up */
	if ((ret = queue_hello(c)))
		return fail(c, ret, "cannot queue Hello: %s", strerror(-ret));
	return try_addresses(c, ECONNREFUSED);
}

/* POLLOUT on a connecting socket: connected, or try the next address. */
static int finish_connect(struct ctld_conn *c)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr == 0)
		return transport_connected(c);
	c->addr = c->addr->ai_next;
	return try_addresses(c, soerr);
}

/* ------------------------------------------------------------ input */

static int read_input(struct ctld_conn *c, uint64_t now_ns)
{
	size_t budget = READ_BUDGET;

	while (!c->peer_closed && budget) {
		ssize_t n;
		int err = bytebuf_reserve(&c->in, READ_CHUNK, 2 * READ_CHUNK);

		if (err)
			return fail(c, err, "out of memory for input from %s", c->target);
		n = stream_read(c->fd, c->tls, bytebuf_tail(&c->in), bytebuf_space(&c->in));
		if (n == -EAGAIN)
			break;
		if (n == 0 || n == -ECONNRESET || n == -EPIPE) {
			c->peer_closed = true; /* ctld_conn_next() delivers what is left */
			break;
		}
		if (n < 0)
			return fail(c, (int)n, "read from %s failed: %s", c->target,
				    c->tls ? tls_conn_error(c->tls) : strerror((int)-n));
		bytebuf_filled(&c->in, (size_t)n);
		liveness_heard(&c->live, now_ns);
		budget = (size_t)n < budget ? budget - (size_t)n : 0;
		if (!c->tls && (size_t)n < READ_CHUNK)
			break; /* drained: poll() says when there is more */
	}
	return 0;
}

int ctld_conn_poll_timeout(const struct ctld_conn *c, uint64_t now_ns)
{
	if (c->state == CTLD_CONN_READY) {
		uint64_t wait = liveness_wait_ns(&c->live, now_ns);

		if (c->clock_period_ns && !c->ping_id) {
			uint64_t due = c->clock_next_ns > now_ns ? c->clock_next_ns - now_ns : 0;

			wait = due < wait ? due : wait;
		}

		return wait == UINT64_MAX ? -1 : (int)((wait + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
	}
	if (!c->deadline_ns || c->state == CTLD_CONN_CLOSED)
		return -1;
	if (now_ns >= c->deadline_ns)
		return 0;
	return (int)((c->deadline_ns - now_ns + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC);
}

short ctld_conn_poll_events(const struct ctld_conn *c)
{
	short ev = 0;

	switch (c->state) {
	case CTLD_CONN_CONNECTING:
		return POLLOUT;
	case CTLD_CONN_TLS:
		return tls_conn_wants_write(c->tls) ? POLLOUT : POLLIN;
	case CTLD_CONN_HELLO:
	case CTLD_CONN_READY:
		if (!c->peer_closed)
			ev |= POLLIN;
		if ((c->out.len && !c->write_closed) || (c->tls && tls_conn_wants_write(c->tls)))
			ev |= POLLOUT;
		return ev;
	default:
		return 0;
	}
}

static const char *waiting_for(const struct ctld_conn *c)
{
	switch (c->state) {
	case CTLD_CONN_CONNECTING:
		return "connect";
	case CTLD_CONN_TLS:
		return "TLS handshake";
	default:
		return "Hello reply";
	}
}

int ctld_conn_io(struct ctld_conn *c, short revents, uint64_t now_ns)
{
	int err;

	if (c->state == CTLD_CONN_IDLE || c->state == CTLD_CONN_CLOSED)
		return c->err ? c->err : -ENOTCONN;
	if (c->state != CTLD_CONN_READY && c->deadline_ns && now_ns >= c->deadline_ns)
		return fail(c, -ETIMEDOUT, "%s: no %s within %u ms", c->target, waiting_for(c),
			    c->timeout_ms);
	if (!revents)
		return check_liveness(c, now_ns);
	if (c->state == CTLD_CONN_CONNECTING)
		return finish_connect(c);
	if (c->state == CTLD_CONN_TLS)
		return handshake(c);
	/* TLS may need the socket writable to read, or readable to write: try both */
	if ((err = flush_output(c)) || (err = read_input(c, now_ns)))
		return err;
	return check_liveness(c, now_ns); /* after reading: what arrived counts */
}

/* Consumes the Hello reply (or the daemon's refusal, sent with id 0). */
static int hello_reply(struct ctld_conn *c, const ctld_Message *msg)
{
	const ctld_Reply *r = &msg->kind.reply;

	if (msg->which_kind != ctld_Message_reply_tag || (r->id != c->hello_id && r->id != 0))
		return fail(c, -EPROTO, "%s did not answer Hello first", c->target);
	if (r->has_error && r->error.code != ctld_ErrorCode_OK) {
		c->hello_error = r->error.code;
		return fail(c, -EREMOTEIO, "%s: %s", ctld_error_code_name(r->error.code),
			    r->error.text);
	}
	if (r->which_result != ctld_Reply_hello_tag)
		return fail(c, -EPROTO, "%s answered Hello without a HelloReply", c->target);
	if (r->result.hello.protocol_version != CTLD_PROTOCOL_VERSION)
		return fail(c, -EPROTO, "%s speaks protocol version %u, ctl speaks %d", c->target,
			    r->result.hello.protocol_version, CTLD_PROTOCOL_VERSION);
	c->hello = r->result.hello;
	c->state = CTLD_CONN_READY;
	c->deadline_ns = 0;
	liveness_start(&c->live, c->liveness_ms, now_monotonic_ns());
	return 0;
}

/* The answer to our Ping (a Pong, or an Error from a daemon without Ping). */
static bool is_pong(struct ctld_conn *c, const ctld_Message *msg)
{
	if (!c->ping_id || msg->which_kind != ctld_Message_reply_tag ||
	    msg->kind.reply.id != c->ping_id)
		return false;
	c->ping_id = 0;
	liveness_answered(&c->live);
	if (c->clock_period_ns && msg->kind.reply.which_result == ctld_Reply_pong_tag) {
		clock_offset_add(&c->clock, c->ping_sent_real_ns, now_realtime_ns(),
				 msg->kind.reply.result.pong.realtime_ns);
		/* a few back to back for a tight bound, then one a period */
		c->clock_next_ns = now_monotonic_ns() +
				   (c->clock.samples < CLOCK_BURST ? 0 : c->clock_period_ns);
	}
	return true;
}

/* No complete frame is buffered: wait, or report how the stream ended. */
static int need_more(struct ctld_conn *c, size_t frame_len)
{
	int err;

	if (c->peer_closed && c->in.len == 0)
		return fail(c, -ECONNRESET, "%s closed the connection%s", c->target,
			    c->state == CTLD_CONN_HELLO ? " without answering Hello" : "");
	if (c->peer_closed)
		return fail(c, -EPROTO, "%s closed the connection in the middle of a frame",
			    c->target);
	if (frame_len <= c->in.len)
		return 0;
	/* a partial frame must fit once complete */
	err = bytebuf_reserve(&c->in, frame_len - c->in.len, 2 * READ_CHUNK);
	return err ? fail(c, err, "out of memory for a frame from %s", c->target) : 0;
}

int ctld_conn_next(struct ctld_conn *c, ctld_Message *msg)
{
	for (;;) {
		size_t hdr = 0, body = 0;
		const char *why = NULL;
		int ret;

		if (c->state == CTLD_CONN_CLOSED)
			return c->err;
		if (!transport_up(c))
			return 0;
		if (!c->in.len) /* the buffer may not even exist yet */
			return need_more(c, 0);
		ret = wire_frame_check(bytebuf_head(&c->in), c->in.len, CTLD_CLIENT_MAX_FRAME, &hdr,
				       &body);
		if (ret == -EMSGSIZE)
			return fail(c, -EMSGSIZE, "%s sent a frame of %zu bytes (limit %u)",
				    c->target, body, CTLD_CLIENT_MAX_FRAME);
		if (ret < 0)
			return fail(c, -EPROTO, "%s sent garbage (bad frame length)", c->target);
		if (ret == 0)
			return need_more(c, hdr + body);
		ret = wire_decode(ctld_Message_fields, bytebuf_head(&c->in) + hdr, body, msg, &why);
		bytebuf_consume(&c->in, hdr + body);
		if (ret)
			return fail(c, -EPROTO, "%s sent a message that does not decode: %s",
				    c->target, why ? why : "?");
		if (c->state == CTLD_CONN_READY && is_pong(c, msg))
			continue;
		if (c->state == CTLD_CONN_READY)
			return 1;
		if ((ret = hello_reply(c, msg)))
			return ret;
	}
}
