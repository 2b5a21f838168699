// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_log.c - logging that never blocks and cannot be flooded: stderr is
 * made a one-page pipe nobody reads, and thousands of lines go out without
 * a blocking write (an alarm turns a hang into a failure) and without
 * touching the O_NONBLOCK flag of the shared fd 2; once the test reads,
 * the loop writes what was kept and "log: N lines dropped". Then the rate
 * limits: per call site and source, a window's summary, and the cap over
 * all sources.
 */
// TEST_SRCS: user/daemon/core/log.c user/daemon/core/log_limit.c
// TEST_SRCS: user/daemon/core/loop.c user/common/util.c
// TEST_WRAPS:
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/core/log.h"
#include "daemon/core/log_limit.h"
#include "daemon/core/loop.h"
#include "common/util.h"

static struct {
	int saved_stderr;
	int reader; /* the test's end of the pipe that is fd 2 */
	struct loop *loop;
	char text[1 << 20];
	size_t len;
} T;

/* fd 2 becomes a pipe of `size` bytes; log_open sees it as stderr. */
static void stderr_to_pipe(int size)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, size) >= size);
	T.saved_stderr = dup(STDERR_FILENO);
	assert_true(dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
	close(p[1]);
	T.reader = p[0];
	assert_int_equal(fcntl(T.reader, F_SETFL, O_NONBLOCK), 0);
	T.len = 0;
	log_open();
	assert_int_equal(loop_new(&T.loop), 0);
}

static void stderr_back(void)
{
	log_limit_attach(NULL);
	log_close();
	loop_free(T.loop);
	T.loop = NULL;
	dup2(T.saved_stderr, STDERR_FILENO);
	close(T.saved_stderr);
	close(T.reader);
}

/* Reads what the pipe holds, turning the loop for ms. */
static void read_for(int ms)
{
	uint64_t end = now_monotonic_ns() + (uint64_t)ms * NSEC_PER_MSEC;

	do {
		ssize_t n = read(T.reader, T.text + T.len, sizeof(T.text) - 1 - T.len);

		if (n > 0)
			T.len += (size_t)n;
		T.text[T.len] = '\0';
		assert_int_equal(loop_run_once(T.loop, 2), 0);
	} while (now_monotonic_ns() < end);
}

static unsigned count(const char *needle)
{
	unsigned n = 0;

	for (const char *p = T.text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* A pipe nobody reads: lines wait, then are dropped and counted; fd 2's
 * own flags stay as they were; once read, everything kept comes out, in
 * whole lines, then the count. */
static void log_full_pipe_never_blocks(void **state)
{
	char expect[128];
	int lines = 0;

	(void)state;
	stderr_to_pipe(4096);
	for (int i = 0; i < 3000; i++)
		log_info("line %d of a log nobody reads: %0100d", i, 0);
	assert_int_equal(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK, 0);
	assert_true(log_dropped_lines() > 0);
	log_attach(T.loop);
	read_for(200);
	snprintf(expect, sizeof(expect), "warning: log: %llu lines dropped: stderr not writable\n",
		 (unsigned long long)log_dropped_lines());
	assert_non_null(strstr(T.text, expect));
	assert_non_null(strstr(T.text, "info: line 0 of a log"));
	for (const char *p = T.text; *p; p = strchr(p, '\n') + 1, lines++)
		assert_memory_equal(p, "ctld-bpf[", 9); /* every line whole */
	assert_int_equal(lines + log_dropped_lines(), 3000 + 1);
	stderr_back();
}

/* Ten lines per call site and source per window, the rest counted and
 * summed up when the window ends, quoting the last one. */
static void log_limit_per_site_and_source(void **state)
{
	(void)state;
	stderr_to_pipe(1 << 20);
	log_limit_attach(T.loop);
	for (int i = 0; i < 100; i++)
		log_limited(LOG_WARN, "10.0.0.1", "refusing 10.0.0.1 #%d", i);
	log_limited(LOG_WARN, "10.0.0.2", "refusing 10.0.0.1 #%d", 0); /* another source */
	log_limited(LOG_WARN, "10.0.0.1", "another cause #%d", 0);     /* another site */
	read_for(50);
	assert_int_equal(count("warning: refusing 10.0.0.1 #"), 11);
	assert_int_equal(count("another cause"), 1);
	assert_int_equal(log_suppressed_lines(), 90);
	assert_int_equal(count("suppressed"), 0);
	read_for(2100); /* the window ends */
	assert_int_equal(count("warning: suppressed 90 similar messages in 2 s; the last: "
			       "refusing 10.0.0.1 #99\n"),
			 1);
	assert_int_equal(count("suppressed"), 1);
	stderr_back();
}

/* Many sources together print at most the global cap per window; what
 * has no slot to be counted in is summed up in one line. */
static void log_limit_many_sources(void **state)
{
	char source[32];

	(void)state;
	stderr_to_pipe(1 << 20);
	log_limit_attach(T.loop);
	for (int i = 0; i < 150; i++) {
		snprintf(source, sizeof(source), "10.1.0.%d", i);
		log_limited(LOG_WARN, source, "stranger %s", source);
	}
	read_for(50);
	assert_int_equal(count("warning: stranger "), 100);
	read_for(2100);
	/* 64 slots: sources 0-63 printed; 64-99 printed on the cap alone;
	 * 100-149 have neither */
	assert_int_equal(count("suppressed 50 messages from many sources in 2 s"), 1);
	stderr_back();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(log_full_pipe_never_blocks),
		cmocka_unit_test(log_limit_per_site_and_source),
		cmocka_unit_test(log_limit_many_sources),
	};

	alarm(60); /* a blocking write is a hang: make it a failure */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
