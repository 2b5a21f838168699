// SPDX-License-Identifier: BSD-2-Clause
/*
 * tcp_listener.c - address filters and formatting for listeners.
 */
#include <arpa/inet.h>
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

void tcp_addr_format(uint16_t family, const uint8_t *addr, char *out, size_t len)
{
	if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, out, (socklen_t)len))
		copy_str(out, len, "?");
}
