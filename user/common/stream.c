// SPDX-License-Identifier: BSD-2-Clause
/*
 * stream.c - see stream.h.
 */
#include <errno.h>
#include <sys/socket.h>

#include "common/stream.h"
#include "common/tls.h"

ssize_t stream_read(int fd, struct tls_conn *tls, void *buf, size_t len)
{
	ssize_t n;

	if (tls)
		return tls_conn_read(tls, buf, len);
	n = recv(fd, buf, len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n;
}

ssize_t stream_writev(int fd, struct tls_conn *tls, const struct iovec *iov, int iovcnt)
{
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n;

	if (tls)
		return iovcnt > 0 ? tls_conn_write(tls, iov[0].iov_base, iov[0].iov_len) : 0;
	n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	return n;
}
