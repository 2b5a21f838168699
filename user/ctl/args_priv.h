/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * args_priv.h - shared by args.c and targets.c only: where ctl's targets
 * come from: -S, every -H (a node set or @FILE), else $CTLD_HOST, else
 * $CTLD_SOCKET, else the default socket. Node sets are expanded by
 * nodeset.c; an @FILE is read by the callback main() hands in (struct
 * cli_env), so this stays free of I/O.
 */
#ifndef CTLD_CTL_ARGS_PRIV_H
#define CTLD_CTL_ARGS_PRIV_H

#include "ctl/args.h"
#include "ctl/nodeset.h"

/* Command-line targets before they are settled against the environment. */
struct target_opts {
	const char *socket;
	bool hosts;
	const struct cli_env *env;
	struct nodeset names; /* of every -H */
};

/* -H NODESET or -H @FILE (one node set per line): the names are added. */
int targets_add(struct target_opts *t, const char *val, char *err, size_t errlen);
/* Fills a->targets from what was given (see the top of this file). */
int targets_settle(struct cli_args *a, struct target_opts *t, const struct cli_env *env,
		   char *err, size_t errlen);

#endif
