// SPDX-License-Identifier: BSD-2-Clause
/*
 * thread_exit.c - a test program whose main thread exits first.
 *
 *   thread_exit group CODE   the other thread calls exit(CODE): status CODE
 *   thread_exit thread CODE  the other thread leaves with SYS_exit(CODE) only:
 *                            waitpid reports the leader's code, 0
 *   thread_exit signal SIG   the other thread raises SIG for the process
 *
 * The surviving thread prints "late output" first, so a test can check that
 * output written after the main thread died still arrives before Exited.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *mode;
static int value;

static void *survivor(void *arg)
{
	(void)arg;
	usleep(200 * 1000);
	printf("late output from the last thread\n");
	fflush(stdout);
	if (strcmp(mode, "group") == 0)
		exit(value);
	if (strcmp(mode, "signal") == 0)
		kill(getpid(), value);
	syscall(SYS_exit, value);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t;

	if (argc != 3) {
		fprintf(stderr, "usage: thread_exit group|thread|signal N\n");
		return 64;
	}
	mode = argv[1];
	value = atoi(argv[2]);
	if (pthread_create(&t, NULL, survivor, NULL) != 0)
		return 70;
	pthread_exit(NULL);
}
