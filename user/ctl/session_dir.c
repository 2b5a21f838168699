// SPDX-License-Identifier: BSD-2-Clause
/*
 * session_dir.c - where ctl keeps the daemons' TLS session tickets: the
 * --tls-session-cache directory, else a private one under $XDG_RUNTIME_DIR
 * (per login, in memory) or ~/.cache. Every ctl is a new process, so without
 * this each run pays a full handshake per node (docs/design.md "TLS session
 * resumption"). The cache is an optimisation: when it cannot be used, ctl
 * says why (if it was asked for one) and carries on with full handshakes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/tls.h"
#include "ctl/ctl.h"

/* base/ctld/tls-sessions (sub is "" or "/.cache"), creating the levels below
 * base; the last one tls_ctx_set_session_cache() creates and checks. */
static int default_dir(const char *base, const char *sub, char *out, size_t len)
{
	if (!base || base[0] != '/' ||
	    snprintf(out, len, "%s%s/ctld/tls-sessions", base, sub) >= (int)len)
		return -ENOENT;
	snprintf(out, len, "%s%s", base, sub);
	if (mkdir(out, 0700) && errno != EEXIST)
		return -errno;
	snprintf(out, len, "%s%s/ctld", base, sub);
	if (mkdir(out, 0700) && errno != EEXIST)
		return -errno;
	snprintf(out, len, "%s%s/ctld/tls-sessions", base, sub);
	return 0;
}

void session_dir_use(struct tls_ctx *tls, const char *option)
{
	char dir[4096], err[512];

	if (option && !strcmp(option, "none"))
		return;
	if (option)
		snprintf(dir, sizeof(dir), "%s", option);
	else if (default_dir(getenv("XDG_RUNTIME_DIR"), "", dir, sizeof(dir)) &&
		 default_dir(getenv("HOME"), "/.cache", dir, sizeof(dir)))
		return; /* nowhere to keep it: full handshakes, as before */
	if (tls_ctx_set_session_cache(tls, dir, err, sizeof(err)) && option)
		fprintf(stderr, "ctl: warning: no TLS session cache: %s\n", err);
}
