/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stream.h - reading and writing a connected stream socket, plain or TLS,
 * without ever blocking: the daemon's sessions and the client library both
 * go through here. Results: bytes done, 0 at an orderly close (read), or
 * -EAGAIN (wait for the socket) / -errno.
 */
#ifndef CTLD_STREAM_H
#define CTLD_STREAM_H

#include <sys/types.h>
#include <sys/uio.h>

struct tls_conn;

ssize_t stream_read(int fd, struct tls_conn *tls, void *buf, size_t len);
/* Plain sockets take the whole iovec in one sendmsg; TLS writes iov[0].
 * Never raises SIGPIPE: a vanished peer is -EPIPE. */
ssize_t stream_writev(int fd, struct tls_conn *tls, const struct iovec *iov, int iovcnt);

#endif
