// SPDX-License-Identifier: BSD-2-Clause
/*
 * main.c - the ctld-bpf daemon's main(): options, start-up in order, the
 * signal policy, and the orderly shutdown. The only place that may exit.
 *
 * Shutdown on SIGTERM/SIGINT: stop accepting, kill every job's tree
 * (SIGKILL) and reap it, send each attached client its Exited, give clients
 * a second to read that, then remove the socket and the BPF pins.
 *
 * SIGUSR2: upgrade in place (upgrade.h): the same process executes the
 * program file again; the new image takes over what the old one handed
 * over (handover.h) before it starts anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tls.h"
#include "common/util.h"
#include "daemon/clients/listener.h"
#include "daemon/clients/session.h"
#include "daemon/core/handover.h"
#include "daemon/core/log.h"
#include "daemon/core/log_limit.h"
#include "daemon/core/loop.h"
#include "daemon/daemon.h"
#include "daemon/jobs/jobs.h"
#include "daemon/jobs/spawner.h"
#include "daemon/kernel/bpf_events.h"
#include "daemon/kernel/cgroup.h"
#include "daemon/options.h"
#include "daemon/upgrade.h"

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
	upgrade_cancel();
	log_info("%s: shutting down (killing %u running job(s))", why, jobs_running());
	listener_shutdown();
	daemon_stop_jobs();
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
			jobs_reap_children();
			break;
		case SIGHUP:
			log_info("SIGHUP: nothing to reload; still serving");
			break;
		case SIGUSR2:
			if (!M.stopping)
				upgrade_request();
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
	sigaddset(&set, SIGUSR2);
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
/* The limits the daemon was started with, before it (or libbpf, for
 * RLIMIT_MEMLOCK on kernels before 5.11) raises them: every job gets these. */
static void keep_start_limits(struct jobs_config *jobs)
{
	static const int which[RUN_SPEC_MAX_START_LIMITS] = { RLIMIT_NOFILE, RLIMIT_MEMLOCK };
	struct rlimit rl;

	jobs->nstart_limits = 0;
	for (size_t i = 0; i < RUN_SPEC_MAX_START_LIMITS; i++)
		if (getrlimit(which[i], &rl) == 0)
			jobs->start_limits[jobs->nstart_limits++] =
				(struct spawn_rlimit){ .resource = which[i], .limit = rl };
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("failed to raise the descriptor limit: %s", strerror(errno));
}

/* Where jobs are spawned in-process (no spawner helper, see spawner.h), a
 * job's ru_maxrss starts at our high-water RSS. Loading the BPF programs
 * (parsing kernel BTF) peaks at ~15 MiB; forget that peak at least. The
 * heap libbpf freed after the load goes back to the kernel first, so the
 * idle daemon does not keep it resident. */
static void reset_peak_rss(void)
{
	int fd;

	malloc_trim(0);
	fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
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

	switch (options_parse(argc, argv, &o)) {
	case OPTIONS_HELP:
		return 0;
	case OPTIONS_BAD:
		return 64;
	case OPTIONS_OK:
		break;
	}
	if (o.verbose)
		log_set_level(LOG_DEBUG);
	/* Before anything is started: what the previous image handed over
	 * must not leak into the helper (handover.h). */
	if ((ret = handover_load()) < 0)
		log_err("upgrade: the state handed over cannot be read (%s): starting afresh; "
			"jobs are adopted from their records", strerror(-ret));
	ensure_std_fds();
	/* First: the helper inherits no descriptor or signal state of ours
	 * (see spawner.h). */
	spawner_start();
	log_open(); /* stderr without blocking (see log.c) */
	/* The kernel BTF's index is built during the set-up below
	 * (kernel_btf.h), in the daemon's only other thread. One malloc arena
	 * for both: a thread's own arena keeps memory resident after the
	 * free, which malloc_trim() does not give back. */
	mallopt(M_ARENA_MAX, 1);
	bpf_events_prefetch(&o.bpf);
	keep_start_limits(&o.jobs);
	raise_fd_limit();
	if ((ret = loop_new(&M.loop))) {
		log_err("failed to create the event loop: %s", strerror(-ret));
		return 1;
	}
	log_attach(M.loop);
	log_limit_attach(M.loop);
	if ((ret = upgrade_init(M.loop, argv)))
		log_warn("cannot find the daemon's program file (%s): no upgrades in place",
			 strerror(-ret));
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
	if ((ret = daemon_init(M.loop, &o))) {
		log_err("failed to initialise: %s", strerror(-ret));
		goto out;
	}
	spawner_await(); /* started first thing, ready by now (spawner.h) */
	reset_peak_rss();
	if ((ret = listener_init(M.loop, o.tcp_keepalive_ms)) ||
	    (ret = start_listeners(&o, tls, &tcp_port)))
		goto out;
	handover_release(); /* what nobody took is closed */
	jobs_reap_children(); /* a job that ended during the exec */
	if (o.ready_file && (ret = write_ready_file(o.ready_file, tcp_port)))
		log_warn("failed to write %s: %s", o.ready_file, strerror(-ret));
	log_info("ready in %.1f ms (pid %d, bpf %s, %s; %s)%s", (now_monotonic_ns() - t0) / 1e6,
		 getpid(), bpf_events_status(), spawner_status(), cgroups_status(),
		 upgrade_count() ? " after an upgrade in place" : "");
	ret = loop_run(M.loop);
	if (ret)
		log_err("event loop failed: %s", strerror(-ret));
out:
	listener_shutdown();
	daemon_shutdown();
	tls_ctx_free(tls);
	if (o.ready_file)
		unlink(o.ready_file);
	log_info("stopped");
	log_limit_attach(NULL);
	log_close();
	loop_free(M.loop);
	return ret ? 1 : 0;
}
