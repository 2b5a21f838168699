// SPDX-License-Identifier: BSD-2-Clause
/*
 * options.c - ctld-bpf's command line: defaults, the option table, the
 * usage text, and the checks that options which go together do.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/outbudget.h"
#include "daemon/options.h"

#define DEFAULT_SOCKET "/run/ctld-bpf.sock"
#define DEFAULT_LISTEN "127.0.0.1:7878"
/* A client gone behind a partition holds its slot, watches and
 * kill-on-disconnect jobs this long; a live one that reads nothing while
 * output waits for it (a paused pager) is dropped after it too. */
#define DEFAULT_TCP_KEEPALIVE_MS 60000
static const char usage_text[] =
	"usage: ctld-bpf [OPTIONS]\n"
	"Run and watch processes for clients over a unix socket and TCP; the kernel\n"
	"(eBPF) reports exits and listening ports as they happen.\n"
	"\n"
	"  -s, --socket PATH        unix socket (default " DEFAULT_SOCKET ", mode 0600)\n"
	"  -l, --listen ADDR:PORT   TCP address, repeatable (default " DEFAULT_LISTEN ");\n"
	"                           'none' disables TCP; [::1]:PORT for IPv6\n"
	"      --no-bpf             do not load eBPF programs (pidfd/sock_diag fallback)\n"
	"      --pin-dir DIR        where maps are pinned (default /sys/fs/bpf/ctld)\n"
	"      --listen-confirm HOW how listen() is confirmed: auto (fexit where the\n"
	"                           kernel allows it, else sock_diag), fexit, sock_diag\n"
	"      --state-dir DIR      job ids and records that outlive the daemon\n"
	"                           (default /var/lib/ctld-bpf)\n"
	"      --tls-cert FILE      server certificate (PEM); with --tls-key and --tls-ca,\n"
	"      --tls-key FILE       TCP clients must present a certificate signed by the CA\n"
	"      --tls-ca FILE\n"
	"      --insecure           allow a non-loopback TCP address without TLS\n"
	"      --max-clients N      authenticated clients, unix socket and TCP each (1024)\n"
	"      --max-unauthenticated N  TCP connections before their Hello (64); when\n"
	"                           full, a newcomer evicts the oldest\n"
	"      --max-unauthenticated-per-source N  the same, from one address (8)\n"
	"      --max-jobs N         (default 4096)\n"
	"      --max-frame BYTES    (default 1M)        --max-watches N   per client (256)\n"
	"      --max-pending N      WriteStdin requests awaiting their reply, per client (64)\n"
	"      --client-queue BYTES output queued per client before output is dropped (32M)\n"
	"      --output-budget BYTES output held for all clients and backlogs together;\n"
	"                           beyond it the clients holding the most lose output (64M)\n"
	"      --backlog BYTES      recent output kept per job for attach (64K)\n"
	"      --keep-finished N    finished jobs remembered (256)\n"
	"      --job-cgroups WHICH  jobs that get a pids cgroup of their own: all, limited\n"
	"                           (only those with max_procs), auto (all without eBPF,\n"
	"                           limited with it; the default)\n"
	"      --cgroup-root DIR    make job cgroups below DIR ('none': no job cgroups,\n"
	"                           max_procs is refused); default: the daemon's own cgroup\n"
	"      --hello-timeout DUR  (10s)  --frame-timeout DUR (10s)\n"
	"      --tcp-keepalive DUR  drop TCP clients that acknowledge nothing for DUR\n"
	"                           (keepalive probes, TCP_USER_TIMEOUT; 0: off; 60s)\n"
	"      --poll-interval DUR  port polling period without BPF (20ms)\n"
	"      --port-taken-grace DUR  a job not listening while another process\n"
	"                           holds its --wait-port is NotReady after DUR (3s)\n"
	"      --ready-file PATH    write 'pid tcp-port' here once serving\n"
	"  -v, --verbose            debug logging\n"
	"  -h, --help\n"
	"\n"
	"example: ctld-bpf --socket /tmp/ctld.sock --listen 127.0.0.1:7878 -v\n";

enum {
	OPT_NO_BPF = 256, OPT_PIN_DIR, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_INSECURE,
	OPT_MAX_CLIENTS, OPT_MAX_JOBS, OPT_MAX_FRAME, OPT_MAX_WATCHES, OPT_CLIENT_QUEUE,
	OPT_BACKLOG, OPT_KEEP_FINISHED, OPT_HELLO_TIMEOUT, OPT_FRAME_TIMEOUT, OPT_POLL, OPT_PORT_TAKEN_GRACE,
	OPT_READY_FILE, OPT_MAX_PENDING, OPT_STATE_DIR, OPT_TCP_KEEPALIVE, OPT_MAX_UNAUTH,
	OPT_MAX_UNAUTH_SOURCE, OPT_OUTPUT_BUDGET, OPT_JOB_CGROUPS, OPT_CGROUP_ROOT,
	OPT_LISTEN_CONFIRM,
};

static int parse_number_opt(const char *name, const char *text, long min, long max, long *out)
{
	if (parse_long(text, min, max, out) == 0)
		return 0;
	fprintf(stderr, "ctld-bpf: bad value for --%s: '%s' (want %ld..%ld)\n", name, text, min,
		max);
	return -EINVAL;
}

static int parse_size_opt(const char *name, const char *text, uint64_t min, size_t *out)
{
	uint64_t v;

	if (parse_size(text, &v) == 0 && v >= min && v <= (1ULL << 40)) {
		*out = (size_t)v;
		return 0;
	}
	fprintf(stderr, "ctld-bpf: bad size for --%s: '%s'\n", name, text);
	return -EINVAL;
}

static int parse_duration_opt(const char *name, const char *text, bool zero_ok, uint32_t *ms)
{
	if (parse_duration_ms(text, ms) == 0 && (*ms > 0 || zero_ok))
		return 0;
	fprintf(stderr, "ctld-bpf: bad duration for --%s: '%s' (e.g. 500ms, 10s)\n", name, text);
	return -EINVAL;
}

static int parse_job_cgroups(const char *text, enum jobs_cgroups *out)
{
	static const char *const names[] = { [JOBS_CGROUPS_AUTO] = "auto",
					     [JOBS_CGROUPS_ALL] = "all",
					     [JOBS_CGROUPS_LIMITED] = "limited" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcmp(text, names[i]) == 0) {
			*out = (enum jobs_cgroups)i;
			return 0;
		}
	}
	fprintf(stderr, "ctld-bpf: bad value for --job-cgroups: '%s' (all, limited or auto)\n",
		text);
	return -EINVAL;
}

enum options_result options_parse(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "no-bpf", no_argument, NULL, OPT_NO_BPF },
		{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "tls-ca", required_argument, NULL, OPT_TLS_CA },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "max-clients", required_argument, NULL, OPT_MAX_CLIENTS },
		{ "max-jobs", required_argument, NULL, OPT_MAX_JOBS },
		{ "max-frame", required_argument, NULL, OPT_MAX_FRAME },
		{ "max-watches", required_argument, NULL, OPT_MAX_WATCHES },
		{ "client-queue", required_argument, NULL, OPT_CLIENT_QUEUE },
		{ "backlog", required_argument, NULL, OPT_BACKLOG },
		{ "keep-finished", required_argument, NULL, OPT_KEEP_FINISHED },
		{ "hello-timeout", required_argument, NULL, OPT_HELLO_TIMEOUT },
		{ "frame-timeout", required_argument, NULL, OPT_FRAME_TIMEOUT },
		{ "poll-interval", required_argument, NULL, OPT_POLL },
		{ "port-taken-grace", required_argument, NULL, OPT_PORT_TAKEN_GRACE },
		{ "ready-file", required_argument, NULL, OPT_READY_FILE },
		{ "max-pending", required_argument, NULL, OPT_MAX_PENDING },
		{ "tcp-keepalive", required_argument, NULL, OPT_TCP_KEEPALIVE },
		{ "max-unauthenticated", required_argument, NULL, OPT_MAX_UNAUTH },
		{ "max-unauthenticated-per-source", required_argument, NULL, OPT_MAX_UNAUTH_SOURCE },
		{ "output-budget", required_argument, NULL, OPT_OUTPUT_BUDGET },
		{ "job-cgroups", required_argument, NULL, OPT_JOB_CGROUPS },
		{ "cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT },
		{ "listen-confirm", required_argument, NULL, OPT_LISTEN_CONFIRM },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long n;
	int c, err = 0;

	*o = (struct options){ .socket_path = DEFAULT_SOCKET, .poll_interval_ms = 20,
			       .max_watches = 256, .tcp_keepalive_ms = DEFAULT_TCP_KEEPALIVE_MS,
			       .output_budget = OUTBUDGET_DEFAULT };
	o->bpf.pin_dir = "/sys/fs/bpf/ctld";
	session_config_defaults(&o->session);
	jobs_config_defaults(&o->jobs);
	while (!err && (c = getopt_long(argc, argv, "s:l:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket_path = optarg; break;
		case 'l':
			if (strcmp(optarg, "none") == 0) {
				o->no_tcp = true;
			} else if (o->ntcp == OPTIONS_MAX_TCP) {
				fprintf(stderr, "ctld-bpf: at most %d --listen addresses\n", OPTIONS_MAX_TCP);
				err = -EINVAL;
			} else {
				o->tcp[o->ntcp++] = optarg;
			}
			break;
		case 'v': o->verbose = true; break;
		case 'h': fputs(usage_text, stdout); return OPTIONS_HELP;
		case OPT_NO_BPF: o->bpf.disabled = true; break;
		case OPT_PIN_DIR: o->bpf.pin_dir = optarg; break;
		case OPT_STATE_DIR: o->jobs.state_dir = optarg; break;
		case OPT_TLS_CERT: o->tls_cert = optarg; break;
		case OPT_TLS_KEY: o->tls_key = optarg; break;
		case OPT_TLS_CA: o->tls_ca = optarg; break;
		case OPT_INSECURE: o->insecure = true; break;
		case OPT_MAX_CLIENTS:
			if (!(err = parse_number_opt("max-clients", optarg, 1, 1000000, &n)))
				o->session.max_clients = (uint32_t)n;
			break;
		case OPT_MAX_UNAUTH:
			if (!(err = parse_number_opt("max-unauthenticated", optarg, 1, 10000, &n)))
				o->session.max_unauthenticated = (uint32_t)n;
			break;
		case OPT_MAX_UNAUTH_SOURCE:
			if (!(err = parse_number_opt("max-unauthenticated-per-source", optarg, 1, 10000,
						     &n)))
				o->session.max_unauthenticated_per_source = (uint32_t)n;
			break;
		case OPT_MAX_JOBS:
			if (!(err = parse_number_opt("max-jobs", optarg, 1, 1000000, &n)))
				o->jobs.max_jobs = (uint32_t)n;
			break;
		case OPT_MAX_WATCHES:
			if (!(err = parse_number_opt("max-watches", optarg, 1, 1000000, &n)))
				o->max_watches = (uint32_t)n;
			break;
		case OPT_MAX_PENDING:
			if (!(err = parse_number_opt("max-pending", optarg, 1, 1000000, &n)))
				o->session.max_pending = (uint32_t)n;
			break;
		case OPT_KEEP_FINISHED:
			if (!(err = parse_number_opt("keep-finished", optarg, 0, 1000000, &n)))
				o->jobs.keep_finished = (uint32_t)n;
			break;
		case OPT_MAX_FRAME:
			err = parse_size_opt("max-frame", optarg, 1024, &o->session.max_frame);
			break;
		case OPT_CLIENT_QUEUE:
			err = parse_size_opt("client-queue", optarg, 64 * 1024,
					     &o->session.queue_soft_limit);
			o->session.queue_hard_limit = o->session.queue_soft_limit +
						      o->session.queue_soft_limit / 4 + (1u << 20);
			break;
		case OPT_JOB_CGROUPS: err = parse_job_cgroups(optarg, &o->jobs.cgroups); break;
		case OPT_CGROUP_ROOT: o->cgroup_root = optarg; break;
		case OPT_LISTEN_CONFIRM:
			if ((err = listen_confirm_parse(optarg, &o->bpf.listen_confirm)))
				fprintf(stderr, "ctld-bpf: bad value for --listen-confirm: '%s' (auto, "
						"fexit or sock_diag)\n",
					optarg);
			break;
		case OPT_OUTPUT_BUDGET:
			err = parse_size_opt("output-budget", optarg, 1u << 20, &o->output_budget);
			break;
		case OPT_BACKLOG: err = parse_size_opt("backlog", optarg, 0, &o->jobs.backlog_bytes); break;
		case OPT_HELLO_TIMEOUT:
			err = parse_duration_opt("hello-timeout", optarg, false,
						 &o->session.hello_timeout_ms);
			break;
		case OPT_FRAME_TIMEOUT:
			err = parse_duration_opt("frame-timeout", optarg, false,
						 &o->session.frame_timeout_ms);
			break;
		case OPT_POLL:
			err = parse_duration_opt("poll-interval", optarg, false,
						 &o->poll_interval_ms);
			break;
		case OPT_PORT_TAKEN_GRACE:
			err = parse_duration_opt("port-taken-grace", optarg, true,
						 &o->jobs.port_taken_grace_ms);
			break;
		case OPT_TCP_KEEPALIVE:
			err = parse_duration_opt("tcp-keepalive", optarg, true,
						 &o->tcp_keepalive_ms);
			break;
		case OPT_READY_FILE: o->ready_file = optarg; break;
		default: err = -EINVAL;
		}
	}
	if (!err && optind < argc) {
		fprintf(stderr, "ctld-bpf: unexpected argument '%s'\n", argv[optind]);
		err = -EINVAL;
	}
	if (!err && (!!o->tls_cert + !!o->tls_key + !!o->tls_ca) % 3) {
		fprintf(stderr, "ctld-bpf: --tls-cert, --tls-key and --tls-ca go together\n");
		err = -EINVAL;
	}
	if (err)
		fputs("try 'ctld-bpf --help'\n", stderr);
	if (!o->ntcp && !o->no_tcp)
		o->tcp[o->ntcp++] = DEFAULT_LISTEN;
	return err ? OPTIONS_BAD : OPTIONS_OK;
}
