// SPDX-License-Identifier: BSD-2-Clause
/*
 * tcp_listener.c - address filters and formatting for listeners.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "common/util.h"
#include "daemon/kernel/tcp_listener.h"

static size_t addr_len(uint16_t family)
{
	return family == AF_INET ? 4 : 16;
}

int addr_filter_parse(const char *text, struct addr_filter *f)
{
	memset(f, 0, sizeof(*f));
	if (!text[0])
		return 0;
	f->set = true;
	if (inet_pton(AF_INET, text, f->addr) == 1) {
		f->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, f->addr) == 1) {
		f->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

static bool is_wildcard(uint16_t family, const uint8_t *addr)
{
	static const uint8_t zero[16];

	return memcmp(addr, zero, addr_len(family)) == 0;
}

bool addr_filter_matches(const struct addr_filter *f, const struct tcp_listener *l)
{
	if (!f->set || is_wildcard(l->family, l->addr))
		return true;
	return l->family == f->family && memcmp(l->addr, f->addr, addr_len(l->family)) == 0;
}

void tcp_endpoint_of(const struct sockaddr_storage *sa, uint8_t addr[16], uint16_t *port_be)
{
	memset(addr, 0, 16);
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		memcpy(addr, &in->sin_addr, 4);
		*port_be = in->sin_port;
	} else {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		memcpy(addr, &in6->sin6_addr, 16);
		*port_be = in6->sin6_port;
	}
}

void tcp_addr_format(uint16_t family, const uint8_t *addr, char *out, size_t len)
{
	if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, out, (socklen_t)len))
		copy_str(out, len, "?");
}
