// SPDX-License-Identifier: BSD-2-Clause
/*
 * targets.c - where ctl's targets come from (see args_priv.h): node sets
 * from -H and $CTLD_HOST expanded, each node once in the order given,
 * and the unix socket when no host is named.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "ctl/args_priv.h"

/* -H NODESET or -H @FILE (one node set per line): the names are added. */
int targets_add(struct target_opts *t, const char *val, char *err, size_t errlen)
{
	char *text = NULL;
	int ret;

	if (val[0] != '@') {
		ret = nodeset_add(&t->names, val, err, errlen);
		return ret == -ENOMEM ? errorf(err, errlen, -EINVAL, "out of memory") : ret;
	}
	if (!t->env->read_file)
		return errorf(err, errlen, -EINVAL, "-H %s: no file can be read here", val);
	if (t->env->read_file(val + 1, &text, err, errlen))
		return -EINVAL;
	ret = nodeset_add_lines(&t->names, text, err, errlen);
	free(text);
	if (ret == -ENOMEM)
		return errorf(err, errlen, -EINVAL, "out of memory");
	if (ret) {
		size_t len = strlen(err);

		snprintf(err + len, errlen - len, " in %s", val + 1);
	}
	return ret;
}

/* The nodes named, each once, become a->targets. */
static int make_targets(struct cli_args *a, struct target_opts *t, char *err, size_t errlen)
{
	if (!(a->targets = calloc(t->names.count, sizeof(*a->targets))))
		return errorf(err, errlen, -EINVAL, "out of memory for %zu hosts", t->names.count);
	return cli_targets_of(&t->names, a->targets, t->names.count, &a->ntargets, err, errlen);
}

/* -S / -H from the command line, else $CTLD_HOST, else $CTLD_SOCKET, else the default. */
int targets_settle(struct cli_args *a, struct target_opts *t, const struct cli_env *env,
		   char *err, size_t errlen)
{
	const char *socket = t->socket, *env_socket = env->socket, *env_host = env->host;
	struct cli_target *u;
	bool from_env;

	if (t->socket && t->hosts)
		return errorf(err, errlen, -EINVAL, "give either -S SOCKET or -H HOST:PORT, not both");
	from_env = !t->socket && !t->hosts && env_host && *env_host;
	if ((from_env && targets_add(t, env_host, err, errlen)) ||
	    (t->names.count && make_targets(a, t, err, errlen))) {
		size_t len = strlen(err);

		if (from_env)
			snprintf(err + len, errlen - len, " in $CTLD_HOST");
		return -EINVAL;
	}
	if (a->ntargets == 0) {
		if (!(u = a->targets = calloc(1, sizeof(*a->targets))))
			return errorf(err, errlen, -EINVAL, "out of memory");
		a->ntargets = 1;
		if (!socket)
			socket = env_socket && *env_socket ? env_socket : CLI_DEFAULT_SOCKET;
		*u = (struct cli_target){ .is_unix = true };
		if (!*socket || !copy_str(u->path, sizeof(u->path), socket))
			return errorf(err, errlen, -EINVAL, "bad socket path '%s' (empty or too long)",
				    socket);
		copy_str(u->name, sizeof(u->name), socket);
	}
	if ((a->tls_cert || a->tls_key || a->tls_ca) &&
	    !(a->tls_cert && a->tls_key && a->tls_ca))
		return errorf(err, errlen, -EINVAL, "TLS needs all of --tls-cert, --tls-key and --tls-ca");
	if (a->tls_cert && a->targets[0].is_unix)
		return errorf(err, errlen, -EINVAL, "TLS is for TCP daemons (-H), not the unix socket");
	/* a cache that would silently never be used: the user meant TLS */
	if (a->tls_session_cache && !a->tls_cert)
		return errorf(err, errlen, -EINVAL,
			      "--tls-session-cache is for TLS connections (--tls-cert, --tls-key, "
			      "--tls-ca)");
	return 0;
}
