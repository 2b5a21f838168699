// SPDX-License-Identifier: BSD-2-Clause
/*
 * spawn_bench.c - times external commands the same way for every variant:
 * posix_spawn + read its output to EOF + waitpid. This is the "direct spawn"
 * floor when ARGV is /bin/echo, and the harness for `ctl run` and ssh.
 *
 *   spawn_bench -- ARGV...
 *       Reads a count N per line on stdin; runs ARGV N times back to back and
 *       prints one JSON line: {"total_ns":T,"runs":[ns,...],"failed":F}.
 *       A run is failed when it does not exit 0. Ends at EOF on stdin.
 *
 *   spawn_bench --ready FILE [--log LOG] -- ARGV...
 *       Starts ARGV (a daemon) in its own session with stdout/stderr to LOG,
 *       waits until FILE exists (inotify on its directory) and prints
 *       {"ready_ns":T,"pid":P}; then waits for ARGV to exit and exits with
 *       its status, so the caller owns a process it can wait for.
 *
 * Output goes to a pipe that is drained, as ctld-bpf, ctl and ssh also
 * collect it, so every variant pays for its output being read.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One run: spawn, drain stdout+stderr, reap. Returns the exit status or -1. */
static int run_once(char **argv)
{
	posix_spawn_file_actions_t fa;
	char buf[4096];
	int p[2], status = -1;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (pid > 0) {
		for (;;) {
			ssize_t n = read(p[0], buf, sizeof(buf));

			if (n == 0 || (n < 0 && errno != EINTR))
				break;
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	close(p[0]);
	return pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int batches(char **argv)
{
	char line[64];

	while (fgets(line, sizeof(line), stdin)) {
		long n = atol(line), failed = 0;
		uint64_t *runs = calloc((size_t)(n > 0 ? n : 1), sizeof(*runs));
		uint64_t t0 = now_ns(), t;

		if (!runs)
			return 1;
		for (long i = 0; i < n; i++) {
			t = now_ns();
			failed += run_once(argv) != 0;
			runs[i] = now_ns() - t;
		}
		t = now_ns() - t0;
		printf("{\"total_ns\":%llu,\"failed\":%ld,\"runs\":[", (unsigned long long)t, failed);
		for (long i = 0; i < n; i++)
			printf("%s%llu", i ? "," : "", (unsigned long long)runs[i]);
		printf("]}\n");
		fflush(stdout);
		free(runs);
	}
	return 0;
}

static int ready(const char *file, const char *log, char **argv)
{
	char dir[PATH_MAX], *slash;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	struct stat st;
	uint64_t t0, t = 0;
	int in, status;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s", file);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		*slash = '\0';
	in = inotify_init1(IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, dir, IN_CREATE | IN_MOVED_TO) < 0) {
		perror("inotify");
		return 1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (log) {
		posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	}
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
	t0 = now_ns();
	if ((errno = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ))) {
		perror("posix_spawn");
		return 1;
	}
	for (;;) {
		struct pollfd p = { in, POLLIN, 0 };
		char ev[4096];

		if (stat(file, &st) == 0) {
			t = now_ns() - t0;
			break;
		}
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "spawn_bench: %s exited before it was ready\n", argv[0]);
			return 1;
		}
		if (poll(&p, 1, 100) > 0 && read(in, ev, sizeof(ev)) < 0 && errno != EAGAIN)
			return 1;
	}
	printf("{\"ready_ns\":%llu,\"pid\":%d}\n", (unsigned long long)t, (int)pid);
	fflush(stdout);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
	const char *ready_file = NULL, *log = NULL;
	int i = 1;

	for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
			ready_file = argv[++i];
		else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
			log = argv[++i];
		else
			break;
	}
	if (i >= argc - 1 || strcmp(argv[i], "--") != 0) {
		fprintf(stderr, "usage: spawn_bench [--ready FILE [--log LOG]] -- ARGV...\n");
		return 64;
	}
	if (ready_file)
		return ready(ready_file, log, argv + i + 1);
	return batches(argv + i + 1);
}
