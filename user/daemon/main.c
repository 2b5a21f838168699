// SPDX-License-Identifier: BSD-2-Clause
/*
 * ctld.c - the ctld-bpf daemon's main(): options, start-up in order, the
 * signal policy, and the orderly shutdown. The only place that may exit.
 *
 * Shutdown on SIGTERM/SIGINT: stop accepting, kill every job's tree
 * (SIGKILL) and reap it, send each attached client its Exited, give clients
 * a second to read that, then remove the socket and the BPF pins.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/kernel/bpf_events.h"
#include "daemon/clients/dispatch.h"
#include "daemon/jobs/jobs.h"
#include "daemon/clients/listener.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/clients/session.h"
#include "common/tls.h"
#include "common/util.h"
#include "daemon/watch/watch_file.h"
#include "daemon/watch/watch_port.h"

#define DEFAULT_SOCKET "/run/ctld-bpf.sock"
#define DEFAULT_LISTEN "127.0.0.1:7878"
#define MAX_TCP 8

struct options {
	const char *socket_path;
	const char *tcp[MAX_TCP];
	size_t ntcp;
	bool no_tcp;
	const char *ready_file;
	const char *tls_cert, *tls_key, *tls_ca;
	bool insecure;
	struct bpf_events_config bpf;
	struct session_config session;
	struct jobs_config jobs;
	struct watch_port_config ports;
};

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
	"      --tls-cert FILE      server certificate (PEM); with --tls-key and --tls-ca,\n"
	"      --tls-key FILE       TCP clients must present a certificate signed by the CA\n"
	"      --tls-ca FILE\n"
	"      --insecure           allow a non-loopback TCP address without TLS\n"
	"      --max-clients N      (default 1024)      --max-jobs N      (default 4096)\n"
	"      --max-frame BYTES    (default 1M)        --max-watches N   per client (256)\n"
	"      --max-pending N      WriteStdin requests awaiting their reply, per client (64)\n"
	"      --client-queue BYTES output queued per client before output is dropped (32M)\n"
	"      --backlog BYTES      recent output kept per job for attach (64K)\n"
	"      --keep-finished N    finished jobs remembered (256)\n"
	"      --hello-timeout DUR  (10s)  --frame-timeout DUR (10s)\n"
	"      --poll-interval DUR  port polling period without BPF (20ms)\n"
	"      --ready-file PATH    write 'pid tcp-port' here once serving\n"
	"  -v, --verbose            debug logging\n"
	"  -h, --help\n"
	"\n"
	"example: ctld-bpf --socket /tmp/ctld.sock --listen 127.0.0.1:7878 -v\n";

enum {
	OPT_NO_BPF = 256, OPT_PIN_DIR, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA, OPT_INSECURE,
	OPT_MAX_CLIENTS, OPT_MAX_JOBS, OPT_MAX_FRAME, OPT_MAX_WATCHES, OPT_CLIENT_QUEUE,
	OPT_BACKLOG, OPT_KEEP_FINISHED, OPT_HELLO_TIMEOUT, OPT_FRAME_TIMEOUT, OPT_POLL,
	OPT_READY_FILE, OPT_MAX_PENDING,
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

static int parse_duration_opt(const char *name, const char *text, uint32_t *ms)
{
	if (parse_duration_ms(text, ms) == 0 && *ms > 0)
		return 0;
	fprintf(stderr, "ctld-bpf: bad duration for --%s: '%s' (e.g. 500ms, 10s)\n", name, text);
	return -EINVAL;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "no-bpf", no_argument, NULL, OPT_NO_BPF },
		{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
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
		{ "ready-file", required_argument, NULL, OPT_READY_FILE },
		{ "max-pending", required_argument, NULL, OPT_MAX_PENDING },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	long n;
	int c, err = 0;

	o->socket_path = DEFAULT_SOCKET;
	o->bpf.pin_dir = "/sys/fs/bpf/ctld";
	session_config_defaults(&o->session);
	jobs_config_defaults(&o->jobs);
	watch_port_config_defaults(&o->ports);
	while (!err && (c = getopt_long(argc, argv, "s:l:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 's': o->socket_path = optarg; break;
		case 'l':
			if (strcmp(optarg, "none") == 0) {
				o->no_tcp = true;
			} else if (o->ntcp == MAX_TCP) {
				fprintf(stderr, "ctld-bpf: at most %d --listen addresses\n", MAX_TCP);
				err = -EINVAL;
			} else {
				o->tcp[o->ntcp++] = optarg;
			}
			break;
		case 'v': log_set_level(LOG_DEBUG); break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case OPT_NO_BPF: o->bpf.disabled = true; break;
		case OPT_PIN_DIR: o->bpf.pin_dir = optarg; break;
		case OPT_TLS_CERT: o->tls_cert = optarg; break;
		case OPT_TLS_KEY: o->tls_key = optarg; break;
		case OPT_TLS_CA: o->tls_ca = optarg; break;
		case OPT_INSECURE: o->insecure = true; break;
		case OPT_MAX_CLIENTS:
			if (!(err = parse_number_opt("max-clients", optarg, 1, 1000000, &n)))
				o->session.max_clients = (uint32_t)n;
			break;
		case OPT_MAX_JOBS:
			if (!(err = parse_number_opt("max-jobs", optarg, 1, 1000000, &n)))
				o->jobs.max_jobs = (uint32_t)n;
			break;
		case OPT_MAX_WATCHES:
			if (!(err = parse_number_opt("max-watches", optarg, 1, 1000000, &n)))
				o->ports.max_per_client = (uint32_t)n;
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
		case OPT_BACKLOG: err = parse_size_opt("backlog", optarg, 0, &o->jobs.backlog_bytes); break;
		case OPT_HELLO_TIMEOUT:
			err = parse_duration_opt("hello-timeout", optarg, &o->session.hello_timeout_ms);
			break;
		case OPT_FRAME_TIMEOUT:
			err = parse_duration_opt("frame-timeout", optarg, &o->session.frame_timeout_ms);
			break;
		case OPT_POLL:
			err = parse_duration_opt("poll-interval", optarg, &o->ports.poll_interval_ms);
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
	return err;
}

/* ------------------------------------------------------------ signals */

static struct {
	struct loop *loop;
	int sigfd;
	bool stopping;
	struct loop_timer shutdown_timer;
	uint64_t shutdown_deadline;
} M = { .sigfd = -1 };

static void begin_shutdown(const char *why)
{
	if (M.stopping)
		return;
	M.stopping = true;
	log_info("%s: shutting down (killing %u running job(s))", why, jobs_running());
	listener_shutdown();
	jobs_shutdown();
	/* Let clients read their Exited events for up to a second. */
	M.shutdown_deadline = now_monotonic_ns() + NSEC_PER_SEC;
	loop_timer_arm(M.loop, &M.shutdown_timer, 0);
}

static void shutdown_tick(struct loop *loop, void *ctx)
{
	(void)ctx;
	if (session_count() == 0 || now_monotonic_ns() >= M.shutdown_deadline) {
		loop_stop(loop);
		return;
	}
	session_close_all_after_flush();
	loop_timer_arm_in(loop, &M.shutdown_timer, 10 * NSEC_PER_MSEC);
}

static void on_signal(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct signalfd_siginfo si;

	(void)loop;
	(void)events;
	(void)ctx;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			/* kernel exit records first: the job's exit time and status
			 * cross-check are then known when it is reaped */
			bpf_events_poll();
			jobs_reap_children();
			break;
		case SIGHUP:
			log_info("SIGHUP: nothing to reload; still serving");
			break;
		default:
			begin_shutdown(si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
		}
	}
}

static int setup_signals(struct loop *loop)
{
	sigset_t set;
	int err;

	/* A peer that vanished is EPIPE on write, never a fatal signal. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	M.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (M.sigfd < 0)
		return -errno;
	if ((err = loop_fd_add(loop, M.sigfd, EPOLLIN, on_signal, NULL)))
		return err;
	/* Orphaned descendants of jobs come to us, so we can reap them. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("failed to become a child subreaper: %s", strerror(errno));
	return 0;
}

/* fds 0-2 must be open, or a pipe could land there and be dup2'd away. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			open("/dev/null", O_RDWR);
}

static int write_ready_file(const char *path, uint16_t tcp_port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "%d %u\n", getpid(), tcp_port);
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		return -errno;
	return 0;
}

/* Each running job holds a few descriptors; a default soft limit of 1024
 * would run out long before --max-jobs. Jobs get the original back. */
static void raise_fd_limit(struct jobs_config *jobs)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	jobs->child_nofile = rl;
	jobs->has_child_nofile = true;
	if (rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("failed to raise the descriptor limit: %s", strerror(errno));
}

/* A job's ru_maxrss starts at the spawner's high-water RSS: exec records the
 * old address space's peak, and a vfork child's old address space is ours.
 * Loading the BPF programs (parsing kernel BTF) peaks at ~15 MiB; forget
 * that peak so jobs report at most the daemon's RSS at the time they start. */
static void reset_peak_rss(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, "5", 1) != 1)
		log_debug("failed to reset the peak RSS: %s", strerror(errno));
	close(fd);
}

/* ------------------------------------------------------------ main */

static int start_listeners(const struct options *o, struct tls_ctx *tls, uint16_t *first_port)
{
	char err[256];
	int ret;

	if ((ret = listener_add_unix(o->socket_path, err, sizeof(err)))) {
		log_err("%s", err);
		return ret;
	}
	log_info("listening on unix:%s", o->socket_path);
	for (size_t i = 0; i < o->ntcp; i++) {
		uint16_t port;

		if ((ret = listener_add_tcp(o->tcp[i], tls, o->insecure, &port, err, sizeof(err)))) {
			log_err("%s", err);
			return ret;
		}
		if (i == 0)
			*first_port = port;
		log_info("listening on tcp:%s (port %u)%s", o->tcp[i], port, tls ? " with TLS" : "");
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct tls_ctx *tls = NULL;
	uint16_t tcp_port = 0;
	uint64_t t0 = now_monotonic_ns();
	char err[256];
	int ret;

	if (parse_options(argc, argv, &o))
		return 64;
	ensure_std_fds();
	raise_fd_limit(&o.jobs);
	if ((ret = loop_new(&M.loop))) {
		log_err("failed to create the event loop: %s", strerror(-ret));
		return 1;
	}
	loop_timer_init(&M.shutdown_timer, shutdown_tick, NULL);
	if (o.tls_cert &&
	    (ret = tls_ctx_new(TLS_SERVER, o.tls_cert, o.tls_key, o.tls_ca, &tls, err, sizeof(err)))) {
		log_err("TLS: %s", err);
		goto out;
	}
	if ((ret = setup_signals(M.loop))) {
		log_err("failed to set up signals: %s", strerror(-ret));
		goto out;
	}
	dispatch_init(o.session.max_frame);
	if ((ret = session_init(M.loop, &o.session, dispatch_request, dispatch_session_gone)) ||
	    (ret = jobs_init(M.loop, &o.jobs)) || (ret = watch_port_init(M.loop, &o.ports)) ||
	    (ret = watch_file_init(M.loop, o.ports.max_per_client))) {
		log_err("failed to initialise: %s", strerror(-ret));
		goto out;
	}
	bpf_events_init(M.loop, &o.bpf);
	reset_peak_rss();
	if ((ret = listener_init(M.loop)) || (ret = start_listeners(&o, tls, &tcp_port)))
		goto out;
	if (o.ready_file && (ret = write_ready_file(o.ready_file, tcp_port)))
		log_warn("failed to write %s: %s", o.ready_file, strerror(-ret));
	log_info("ready in %.1f ms (pid %d, bpf %s)", (now_monotonic_ns() - t0) / 1e6, getpid(),
		 bpf_events_status());
	ret = loop_run(M.loop);
	if (ret)
		log_err("event loop failed: %s", strerror(-ret));
out:
	if (!M.stopping) {
		listener_shutdown();
		jobs_shutdown();
	}
	session_shutdown();
	watch_file_shutdown();
	watch_port_shutdown();
	bpf_events_shutdown();
	tls_ctx_free(tls);
	if (o.ready_file)
		unlink(o.ready_file);
	loop_free(M.loop);
	log_info("stopped");
	return ret ? 1 : 0;
}
