// SPDX-License-Identifier: BSD-2-Clause
/*
 * main.c - the ctl command: main(), set-up, the poll() loop that drives
 * one daemon connection per target (at most --fanout at once, the others
 * waiting their turn) together with the signal pipe and, for run, ctl's
 * stdin; and what signals mean (see ctl.h for the rest).
 *
 * Signals, for run and start (other commands just stop at the first):
 * SIGINT is forwarded to the jobs and ctl keeps waiting; a second one
 * detaches. SIGTERM and SIGHUP mean "ctl must go": they are forwarded too,
 * ctl waits at most CTL_LEAVE_GRACE_MS for the jobs to end (so their
 * status and last output are still reported), then leaves, whether the
 * daemons answered or not; jobs started with --kill-on-disconnect are then
 * killed by their daemon, the others keep running. Any second signal ends
 * ctl at once; the same signal again within SIGNAL_ECHO_MS is not a second
 * one (timeout(1) sends it to ctl and to ctl's process group). The grace
 * is an interval timer (SIGALRM), not a poll timeout, so it also ends a
 * write blocked on a stalled stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/tls.h"
#include "common/util.h"
#include "common/wire.h"
#include "ctl/ctl.h"
#include "ctl/output.h"
#include "ctl/timeline.h"

#define SIGNAL_ECHO_MS 100

struct ctl G;
volatile sig_atomic_t signals_caught;
static int sig_pipe[2] = { -1, -1 };

static const struct command *command_of(enum cli_cmd cmd)
{
	switch (cmd) {
	case CLI_RUN:
	case CLI_START:
	case CLI_WAIT:
	case CLI_ATTACH:
	case CLI_KILL:
		return &cmd_run;
	case CLI_WATCH_PORT:
	case CLI_WATCH_FILE:
		return &cmd_watch;
	case CLI_PUT:
	case CLI_GET:
		return &cmd_files;
	default: /* CLI_LIST, CLI_STATS, CLI_WATCHES */
		return &cmd_query;
	}
}

/* ------------------------------------------------------------ fan-out */

/* --fanout: starts waiting hosts while fewer than that are connected. */
static void start_hosts(size_t active)
{
	while (!G.stop_starting && active < G.args.fanout && G.next_host < G.nhosts) {
		struct host *h = &G.hosts[G.next_host++];

		host_start(h);
		active += !h->done;
	}
}

void skip_waiting_hosts(int status)
{
	size_t skipped = G.nhosts - G.next_host;

	G.stop_starting = true;
	if (!skipped)
		return;
	for (size_t i = G.next_host; i < G.nhosts; i++) {
		copy_str(G.hosts[i].failure, sizeof(G.hosts[i].failure), "not started");
		host_finish(&G.hosts[i], status);
	}
	G.next_host = G.nhosts;
	say(NULL, "%zu host%s not started (--fanout %u)", skipped, skipped > 1 ? "s" : "",
	    G.args.fanout);
}

/* ------------------------------------------------------------ signals */

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	signals_caught++;
	(void)!write(sig_pipe[1], &b, 1);
	errno = saved;
}

static int setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* EPIPE from write() instead of death: ctl decides what a closed pipe means */
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a write blocked on a stalled stdout must see a second
	 * Ctrl-C, or the end of the grace after SIGTERM */
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0 || sigaction(SIGALRM, &sa, NULL) < 0)
		return -errno;
	return 0;
}

/* SIGALRM after CTL_LEAVE_GRACE_MS; 0 or -errno. */
static int start_leave_grace(void)
{
	struct itimerval it = { .it_value = { .tv_sec = CTL_LEAVE_GRACE_MS / 1000,
					      .tv_usec = CTL_LEAVE_GRACE_MS % 1000 * 1000 } };

	return setitimer(ITIMER_REAL, &it, NULL) < 0 ? -errno : 0;
}

/* ctl goes, the job stays behind: say what becomes of it. */
static void leave_job(struct host *h, const char *why)
{
	unsigned long long job = h->job;

	if (!job || (G.args.cmd != CLI_RUN && G.args.cmd != CLI_ATTACH))
		return;
	if (G.args.run.kill_on_disconnect && G.args.cmd == CLI_RUN)
		say(h, "%s; the daemon kills job %llu as ctl leaves (--kill-on-disconnect)", why,
		    job);
	else
		say(h, "%s; job %llu may keep running (ctl attach %llu)", why, job, job);
}

/* The grace after SIGTERM/SIGHUP is over: leave the jobs that did not end. */
static void leave_now(void)
{
	char why[96], dur[16];
	const char *name = signal_name(G.forwarded_signal);

	fmt_ms(CTL_LEAVE_GRACE_MS, dur, sizeof(dur));
	for (size_t i = 0; i < G.nhosts; i++) {
		struct host *h = &G.hosts[i];

		if (!host_running(h))
			continue;
		if (h->signal_answered)
			snprintf(why, sizeof(why), "the job has not ended %s after SIG%s", dur,
				 name ? name : "?");
		else
			snprintf(why, sizeof(why), "the daemon did not confirm SIG%s within %s",
				 name ? name : "?", dur);
		leave_job(h, why);
		host_finish(h, 128 + G.forwarded_signal);
	}
}

/* The same signal once more, sent to the process and to its group. */
static bool is_echo(int sig)
{
	static int last_sig;
	static uint64_t last_ns;
	uint64_t now = now_monotonic_ns();
	bool echo = sig == last_sig && now - last_ns < SIGNAL_ECHO_MS * NSEC_PER_MSEC;

	last_sig = sig;
	last_ns = now;
	return echo;
}

/* See the top of this file. */
static void handle_signal(int sig)
{
	bool forward;

	if (sig == SIGALRM) {
		leave_now();
		return;
	}
	if (is_echo(sig))
		return;
	skip_waiting_hosts(128 + sig);
	forward = ++G.nsignals < G.quit_after;
	if (forward && sig == SIGINT)
		say(NULL, "sent SIGINT to the job; press Ctrl-C again to detach");
	if (forward && sig != SIGINT && start_leave_grace())
		forward = false; /* no timer: leave now rather than maybe never */
	for (size_t i = 0; i < G.nhosts; i++) {
		struct host *h = &G.hosts[i];

		if (!host_running(h))
			continue;
		if (forward) {
			G.forwarded_signal = sig;
			send_signal(h, sig);
			continue;
		}
		leave_job(h, "detached");
		host_finish(h, 128 + sig);
	}
}

static void read_signals(void)
{
	unsigned char sigs[16];
	ssize_t n;

	while ((n = read(sig_pipe[0], sigs, sizeof(sigs))) > 0)
		for (ssize_t i = 0; i < n; i++)
			handle_signal(sigs[i]);
}

/* ------------------------------------------------------------ main loop */

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int poll_loop(void)
{
	/* at most --fanout hosts are connected at once */
	struct pollfd *pfd = calloc(G.args.fanout + 2, sizeof(*pfd));

	if (!pfd)
		return -ENOMEM;
	for (;;) {
		uint64_t now = now_monotonic_ns();
		int timeout = -1, stdin_slot = -1;
		size_t n = 0, active = 0;

		for (size_t i = 0; i < G.nhosts; i++)
			active += G.hosts[i].started && !G.hosts[i].done;
		start_hosts(active);
		pfd[n++] = (struct pollfd){ .fd = sig_pipe[0], .events = POLLIN };
		if (stdin_wanted()) {
			stdin_slot = (int)n;
			pfd[n++] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		}
		for (size_t i = 0; i < G.nhosts; i++) {
			struct host *h = &G.hosts[i];

			h->pfd = -1;
			if (h->done || !h->started)
				continue;
			h->pfd = (int)n;
			pfd[n++] = (struct pollfd){ .fd = h->conn.fd,
						    .events = ctld_conn_poll_events(&h->conn) };
			timeout = min_timeout(timeout, ctld_conn_poll_timeout(&h->conn, now));
		}
		if (n == (size_t)(stdin_slot >= 0 ? 2 : 1) && G.next_host == G.nhosts)
			break;
		if (poll(pfd, n, timeout) < 0 && errno != EINTR) {
			int err = -errno;

			free(pfd);
			return err;
		}
		now = now_monotonic_ns();
		if (pfd[0].revents)
			read_signals();
		if (stdin_slot >= 0 && pfd[stdin_slot].revents)
			forward_stdin();
		for (size_t i = 0; i < G.nhosts; i++)
			if (!G.hosts[i].done && G.hosts[i].pfd >= 0)
				host_io(&G.hosts[i], pfd[G.hosts[i].pfd].revents, now);
	}
	free(pfd);
	return 0;
}

/* ------------------------------------------------------------ setup */

/* On the unix socket the daemon shares ctl's file system: relative paths and
 * the default working directory are ctl's. Over TCP they are left as given
 * (the daemon wants absolute paths; its default directory is /). */
static int resolve_paths(char *err, size_t errlen)
{
	ctld_Run *r = &G.args.run;
	char cwd[PATH_MAX], joined[sizeof(G.args.watch_file.path)];
	bool local = G.args.targets[0].is_unix, has_cwd;

	has_cwd = local && getcwd(cwd, sizeof(cwd));
	if (G.args.cmd == CLI_WATCH_FILE && has_cwd) {
		if (!cli_join_path(cwd, G.args.watch_file.path, joined, sizeof(joined)))
			goto too_long;
		copy_str(G.args.watch_file.path, sizeof(G.args.watch_file.path), joined);
	}
	if (G.args.cmd != CLI_RUN && G.args.cmd != CLI_START)
		return 0;
	if (has_cwd && !cli_join_path(cwd, r->cwd[0] ? r->cwd : ".", joined, sizeof(r->cwd)))
		goto too_long;
	if (has_cwd)
		copy_str(r->cwd, sizeof(r->cwd), r->cwd[0] ? joined : cwd);
	else if (local && !r->cwd[0])
		say(NULL, "warning: cannot tell the current directory (%s); the job runs in /",
		    strerror(errno));
	for (int s = 0; s < 2; s++) {
		char *path = s ? r->stderr_path : r->stdout_path;

		if (!path[0] || path[0] == '/' || r->cwd[0] != '/')
			continue;
		if (!cli_join_path(r->cwd, path, joined, sizeof(r->stdout_path)))
			goto too_long;
		copy_str(path, sizeof(r->stdout_path), joined);
	}
	return 0;
too_long:
	snprintf(err, errlen, "a path is too long once made absolute");
	return -ENAMETOOLONG;
}

/* --fanout connections need as many fds: raise the soft RLIMIT_NOFILE as
 * far as that needs (the hard limit at most), and connect to fewer at once
 * when it is still short. */
static void fit_fanout(void)
{
	struct rlimit rl;
	rlim_t want;
	unsigned fit;

	if (G.nhosts < G.args.fanout)
		G.args.fanout = (unsigned)G.nhosts; /* the poll array's size */
	want = (rlim_t)G.args.fanout + CTL_RESERVED_FDS;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur >= want)
		return;
	fit = rl.rlim_cur > CTL_RESERVED_FDS + 1 ? (unsigned)(rl.rlim_cur - CTL_RESERVED_FDS) : 1;
	say(NULL, "warning: --fanout %u needs more file descriptors than allowed (%llu); "
		  "connecting to %u at once",
	    G.args.fanout, (unsigned long long)rl.rlim_cur, fit);
	G.args.fanout = fit;
}

/* -H @FILE: the file's text, at most NODESET_FILE_MAX bytes. */
static int read_nodes_file(const char *path, char **text, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	size_t len = 0;
	ssize_t n = 1;
	char *buf;

	if (fd < 0)
		return errorf(err, errlen, -errno, "-H @%s: %s", path, strerror(errno));
	if (!(buf = malloc(NODESET_FILE_MAX + 1))) {
		close(fd);
		return errorf(err, errlen, -ENOMEM, "-H @%s: out of memory", path);
	}
	while (len <= NODESET_FILE_MAX && (n = read(fd, buf + len, NODESET_FILE_MAX + 1 - len)) > 0)
		len += (size_t)n;
	if (n < 0)
		ret = errorf(err, errlen, -errno, "-H @%s: %s", path, strerror(errno));
	else if (len > NODESET_FILE_MAX)
		ret = errorf(err, errlen, -EFBIG, "-H @%s: larger than %d bytes", path,
			     NODESET_FILE_MAX);
	else if (memchr(buf, '\0', len))
		ret = errorf(err, errlen, -EINVAL, "-H @%s: not a text file", path);
	close(fd);
	if (ret) {
		free(buf);
		return ret;
	}
	buf[len] = '\0';
	*text = buf;
	return 0;
}

static int setup(char *err, size_t errlen)
{
	const struct cli_args *a = &G.args;
	bool runlike = a->cmd == CLI_RUN || a->cmd == CLI_START;
	int ret;

	if ((ret = resolve_paths(err, errlen)))
		return ret;
	if (a->tls_cert &&
	    tls_ctx_new(TLS_CLIENT, a->tls_cert, a->tls_key, a->tls_ca, &G.tls, err, errlen))
		return -EINVAL;
	if (G.tls)
		session_dir_use(G.tls, a->tls_session_cache);
	G.multi = a->ntargets > 1;
	G.cmd = command_of(a->cmd);
	G.quit_after = runlike ? 2 : 1;
	/* start never reads stdin; run --wait-* hands the job over, so only on request */
	G.stdin_forward = a->cmd == CLI_RUN && a->stdin_mode != CLI_STDIN_OFF &&
			  (a->stdin_mode == CLI_STDIN_ON ||
			   (!a->run.ready_count && !isatty(STDIN_FILENO)));
	G.hosts = calloc(a->ntargets, sizeof(*G.hosts));
	if (!G.hosts) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	G.nhosts = a->ntargets;
	for (size_t i = 0; i < G.nhosts; i++) {
		G.hosts[i].target = &a->targets[i];
		G.hosts[i].pfd = -1;
		ctld_conn_init(&G.hosts[i].conn, NULL); /* fd -1 until its turn */
		if (G.multi)
			snprintf(G.hosts[i].prefix, sizeof(G.hosts[i].prefix), "%s: ",
				 a->targets[i].name);
	}
	if (a->timeline && (ret = timeline_open(a->timeline, err, errlen)))
		return ret;
	fit_fanout();
	if (G.stdin_forward && G.nhosts > G.args.fanout) {
		/* ctl's stdin is read once and sent to the running jobs: hosts
		 * that wait their turn would miss its beginning */
		if (a->stdin_mode == CLI_STDIN_ON)
			return errorf(err, errlen, -EINVAL,
				      "--stdin: %zu hosts but --fanout %u; the later ones would miss "
				      "the start of stdin",
				      G.nhosts, G.args.fanout);
		G.stdin_forward = false;
	}
	if ((ret = setup_signals()))
		snprintf(err, errlen, "cannot set up signal handling: %s", strerror(-ret));
	return ret;
}

/* --timeline: every host's name and measured clock, then the file. */
static int write_timeline(char *err, size_t errlen)
{
	const char **names = calloc(G.nhosts + 1, sizeof(*names));
	struct clock_offset *clocks = calloc(G.nhosts + 1, sizeof(*clocks));
	int ret;

	if (!names || !clocks) {
		free(names);
		free(clocks);
		return errorf(err, errlen, -ENOMEM, "--timeline: out of memory");
	}
	for (size_t i = 0; i < G.nhosts; i++) {
		names[i] = G.hosts[i].target->name;
		clocks[i] = G.hosts[i].conn.clock;
	}
	ret = timeline_write(names, clocks, G.nhosts, err, errlen);
	free(names);
	free(clocks);
	return ret;
}

/* The first host (in -H order) that failed decides, as the command line
 * reads; with --summary the largest status. */
static int overall_status(void)
{
	if (G.args.summary)
		return summary_status();
	for (size_t i = 0; i < G.nhosts; i++)
		if (G.hosts[i].status)
			return G.hosts[i].status;
	return 0;
}

static void cleanup(void)
{
	for (size_t i = 0; i < G.nhosts; i++) {
		host_finish(&G.hosts[i], G.hosts[i].status);
		free(G.hosts[i].gathered);
	}
	free(G.hosts);
	cli_args_free(&G.args);
	json_free(&G.json);
	tls_ctx_free(G.tls);
	for (int i = 0; i < 2; i++)
		if (sig_pipe[i] >= 0)
			close(sig_pipe[i]);
}

static int usage_error(const char *err)
{
	fprintf(stderr, "ctl: %s\n%s", err, cli_usage(G.args.cmd));
	if (G.args.cmd == CLI_NONE)
		fprintf(stderr, "Try 'ctl --help' for more.\n");
	else
		fprintf(stderr, "Try 'ctl %s --help' for more.\n", cli_cmd_name(G.args.cmd));
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	struct cli_env env = { .socket = getenv("CTLD_SOCKET"),
			       .host = getenv("CTLD_HOST"),
			       .liveness = getenv("CTLD_LIVENESS"),
			       .read_file = read_nodes_file };
	char err[512];
	int ret;

	if (cli_parse(argc, argv, &env, &G.args, err, sizeof(err)))
		return usage_error(err);
	if (G.args.cmd == CLI_VERSION) {
		printf("ctl %s (protocol %d)\n", CTLD_VERSION, CTLD_PROTOCOL_VERSION);
		return 0;
	}
	if (G.args.cmd == CLI_HELP) {
		printf("%s\n%s", cli_usage(G.args.help_for), cli_help(G.args.help_for));
		return fflush(stdout) == 0 ? 0 : 1;
	}
	if ((ret = setup(err, sizeof(err)))) {
		fprintf(stderr, "ctl: %s\n", err);
		cleanup();
		return ret == -EINVAL ? EXIT_USAGE : EXIT_FAILURE_REPLY;
	}
	if ((ret = poll_loop()))
		say(NULL, "poll failed: %s", strerror(-ret));
	if (G.args.gather)
		gather_print();
	if (G.args.summary)
		summary_print();
	ret = ret ? EXIT_FAILURE_REPLY : overall_status();
	if (G.args.timeline && write_timeline(err, sizeof(err))) {
		fprintf(stderr, "ctl: %s\n", err);
		ret = ret ? ret : EXIT_FAILURE_REPLY;
	}
	cleanup();
	return ret;
}
