/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * options.h - the daemon's command line, parsed into the configuration of
 * each module. No I/O but the messages printed for a bad option.
 */
#ifndef CTLD_OPTIONS_H
#define CTLD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/clients/session.h"
#include "daemon/jobs/jobs.h"
#include "daemon/kernel/bpf_events.h"

#define OPTIONS_MAX_TCP 8

struct options {
	const char *socket_path;
	const char *tcp[OPTIONS_MAX_TCP];
	size_t ntcp;
	bool no_tcp;
	const char *ready_file;
	const char *tls_cert, *tls_key, *tls_ca;
	bool insecure;
	bool verbose;
	uint32_t poll_interval_ms; /* sock_diag polling period without BPF */
	uint32_t max_watches;      /* port and file watches per client */
	uint32_t tcp_keepalive_ms; /* TCP clients silent this long are dropped; 0: off */
	size_t output_budget;      /* output held for all clients and backlogs together */
	const char *cgroup_root;   /* where job cgroups go (NULL: below the daemon's own) */
	struct bpf_events_config bpf;
	struct session_config session;
	struct jobs_config jobs;
};

enum options_result { OPTIONS_OK, OPTIONS_HELP, OPTIONS_BAD };

/* Fills o from argv (defaults first). OPTIONS_HELP: --help, the usage text
 * is printed; OPTIONS_BAD: a message is printed on stderr. */
enum options_result options_parse(int argc, char **argv, struct options *o);

#endif
