// SPDX-License-Identifier: BSD-2-Clause
/*
 * fork_storm.c - forks N short-lived children as fast as it can, reaping
 * each, after an optional delay: a burst of tracked fork/exit events.
 *
 *   fork_storm DELAY_MS N
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n;

	if (argc != 3) {
		fprintf(stderr, "usage: fork_storm DELAY_MS N\n");
		return 64;
	}
	usleep((useconds_t)atol(argv[1]) * 1000);
	n = atol(argv[2]);
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid < 0 || waitpid(pid, NULL, 0) < 0)
			return 1;
	}
	printf("forked %ld\n", n);
	return 0;
}
