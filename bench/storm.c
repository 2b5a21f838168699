// SPDX-License-Identifier: BSD-2-Clause
/*
 * storm.c - system-call storms whose throughput the daemon must not dent.
 *
 *   storm fork SECONDS     fork(), child _exit(0), waitpid(), for SECONDS
 *   storm tcp SECONDS      loopback TCP connect()+accept(), both closed
 *                          with an RST (SO_LINGER 0, so no TIME_WAIT piles
 *                          up), for SECONDS
 *   storm forkn DELAY_MS N after DELAY_MS, N fork/exit pairs as fast as
 *                          possible (the ring-buffer pressure job)
 *   storm wake N           the machine's wake-up floor: N times, after a
 *                          random 0-20 ms, one process writes its clock into
 *                          a pipe that another, blocked in read(), takes;
 *                          prints {"wake_ns":[...]} (what a delivery through
 *                          the daemon pays at least twice: the daemon wakes,
 *                          then the client)
 *
 * fork and tcp print {"ops":N,"ns":T,"cpu_ns":C}: wall time, and CPU time
 * of the storm and its reaped children (getrusage), so the harness can
 * compare ops per second and ops per CPU second with the daemon running
 * and not running; the second ignores time other processes took from the
 * storm's CPU. Each process, and each socket state change, runs the
 * daemon's tracepoint programs once or more.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of this process and of its reaped children, in ns. */
static uint64_t cpu_ns(void)
{
	struct rusage self, kids;
	uint64_t us;

	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	us = (uint64_t)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
			kids.ru_stime.tv_sec) * 1000000u +
	     (uint64_t)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
			kids.ru_stime.tv_usec);
	return us * 1000u;
}

static int fork_once(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	return pid > 0 && waitpid(pid, NULL, 0) == pid ? 0 : -1;
}

static int tcp_once(int lfd, const struct sockaddr_in *sa)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int c = socket(AF_INET, SOCK_STREAM, 0), a;

	if (c < 0 || connect(c, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		return -1;
	a = accept(lfd, NULL, NULL);
	if (a < 0)
		return -1;
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c);
	close(a);
	return 0;
}

/* One-way pipe wake-up latencies, from a child blocked in read(). */
static int wake(long n)
{
	int p[2], q[2];
	pid_t pid;

	if (n <= 0 || pipe(p) || pipe(q))
		return 1;
	pid = fork();
	if (pid == 0) {
		uint64_t t, *lat = calloc((size_t)n, sizeof(*lat));
		long k = 0;

		close(p[1]);
		close(q[0]);
		while (lat && k < n && read(p[0], &t, sizeof(t)) == sizeof(t))
			lat[k++] = now_ns() - t;
		printf("{\"wake_ns\":[");
		for (long i = 0; i < k; i++)
			printf("%s%llu", i ? "," : "", (unsigned long long)lat[i]);
		printf("]}\n");
		fflush(stdout);
		_exit(0);
	}
	close(p[0]);
	srand((unsigned)getpid());
	for (long i = 0; i < n; i++) {
		uint64_t t;

		usleep((useconds_t)(rand() % 20000));
		t = now_ns();
		if (write(p[1], &t, sizeof(t)) != sizeof(t))
			return 1;
	}
	close(p[1]);
	return waitpid(pid, NULL, 0) == pid ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	uint64_t t0, c0, end, ops = 0;
	int lfd = -1, tcp;

	if (argc == 4 && strcmp(argv[1], "forkn") == 0) {
		long n = atol(argv[3]);

		usleep((useconds_t)atol(argv[2]) * 1000);
		for (long i = 0; i < n; i++)
			if (fork_once())
				return 1;
		printf("forked %ld\n", n);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "wake") == 0)
		return wake(atol(argv[2]));
	if (argc != 3 || (strcmp(argv[1], "fork") && strcmp(argv[1], "tcp"))) {
		fprintf(stderr, "usage: storm fork|tcp SECONDS | storm forkn DELAY_MS N | "
				"storm wake N\n");
		return 64;
	}
	tcp = strcmp(argv[1], "tcp") == 0;
	if (tcp) {
		lfd = socket(AF_INET, SOCK_STREAM, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(lfd, 128) < 0 || getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
			perror("storm: listener");
			return 1;
		}
	}
	c0 = cpu_ns();
	t0 = now_ns();
	end = t0 + (uint64_t)(atof(argv[2]) * 1e9);
	do {
		/* check the clock every 64 operations */
		for (int i = 0; i < 64; i++, ops++)
			if (tcp ? tcp_once(lfd, &sa) : fork_once()) {
				perror("storm");
				return 1;
			}
	} while (now_ns() < end);
	end = now_ns();
	printf("{\"ops\":%llu,\"ns\":%llu,\"cpu_ns\":%llu}\n", (unsigned long long)ops,
	       (unsigned long long)(end - t0), (unsigned long long)(cpu_ns() - c0));
	return 0;
}
