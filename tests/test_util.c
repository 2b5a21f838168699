// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_util.c - the text parsers the CLI and the daemon share (durations,
 * sizes, integers, signals), bounded string copies, fd flags and clocks.
 * Every parser is fed its documented forms, its boundaries and the garbage
 * a user is likely to type.
 */
// TEST_SRCS: user/common/util.c
// TEST_WRAPS:
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"

static uint32_t duration(const char *text)
{
	uint32_t ms = 0xdeadbeef;

	assert_int_equal(parse_duration_ms(text, &ms), 0);
	return ms;
}

/* Checks the error first, then that *ms was left untouched. */
static void duration_fails(const char *text, int want)
{
	uint32_t ms = 0xdeadbeef;

	assert_int_equal(parse_duration_ms(text, &ms), want);
	assert_int_equal(ms, 0xdeadbeef);
}

/* Every unit suffix scales to milliseconds; a bare number is seconds. */
static void util_duration_units(void **state)
{
	(void)state;
	assert_int_equal(duration("250ms"), 250);
	assert_int_equal(duration("10s"), 10000);
	assert_int_equal(duration("2m"), 120000);
	assert_int_equal(duration("1h"), 3600000);
	assert_int_equal(duration("1.5s"), 1500);
	assert_int_equal(duration("3"), 3000);
	assert_int_equal(duration("0"), 0);
	assert_int_equal(duration("0ms"), 0);
}

/* A positive duration never rounds down to 0 ("no timeout"); it becomes 1 ms. */
static void util_duration_rounding(void **state)
{
	(void)state;
	assert_int_equal(duration("0.0001s"), 1);
	assert_int_equal(duration("0.4ms"), 1);
	assert_int_equal(duration("1.4ms"), 1);
	assert_int_equal(duration("1.6ms"), 2);
}

/* Empty, negative, unknown-suffix and padded input is refused with -EINVAL. */
static void util_duration_invalid(void **state)
{
	(void)state;
	duration_fails("", -EINVAL);
	duration_fails("-1s", -EINVAL);
	duration_fails("10x", -EINVAL);
	duration_fails("ms", -EINVAL);
	duration_fails(" 1s", -EINVAL);
	duration_fails("1s ", -EINVAL);
	duration_fails("1sec", -EINVAL);
	assert_int_equal(parse_duration_ms(NULL, &(uint32_t){ 0 }), -EINVAL);
}

/* Durations that do not fit 32 bits of milliseconds are -ERANGE, not silently wrapped. */
static void util_duration_range(void **state)
{
	(void)state;
	duration_fails("1e99s", -ERANGE);
	duration_fails("1194h", -ERANGE); /* 4 298 400 000 ms > 2^32 - 1 */
	assert_int_equal(duration("1193h"), 4294800000u);
	assert_int_equal(duration("4294967295ms"), UINT32_MAX);
	duration_fails("4294967296ms", -ERANGE);
}

/* "nan" is not a duration: strtod accepts it, and converting NaN to an integer is UB. */
static void util_duration_rejects_nan(void **state)
{
	uint32_t ms = 0xdeadbeef;

	(void)state;
	assert_int_equal(parse_duration_ms("nan", &ms), -EINVAL);
	assert_int_equal(parse_duration_ms("nans", &ms), -EINVAL);
	assert_int_equal(ms, 0xdeadbeef);
}

static uint64_t size_of(const char *text)
{
	uint64_t v = 0xdeadbeef;

	assert_int_equal(parse_size(text, &v), 0);
	return v;
}

/* K/M/G are powers of 1024, either case; a bare number is bytes. */
static void util_size_units(void **state)
{
	(void)state;
	assert_int_equal(size_of("12"), 12);
	assert_int_equal(size_of("0"), 0);
	assert_int_equal(size_of("64K"), 65536);
	assert_int_equal(size_of("64k"), 65536);
	assert_int_equal(size_of("10M"), 10 * 1024 * 1024);
	assert_int_equal(size_of("1G"), 1ULL << 30);
	assert_int_equal(size_of("18446744073709551615"), UINT64_MAX);
	assert_int_equal(size_of("17179869183G"), ((1ULL << 34) - 1) << 30);
}

/* Unknown suffixes, signs, spaces and two-letter suffixes are -EINVAL. */
static void util_size_invalid(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(parse_size("1T", &v), -EINVAL);
	assert_int_equal(parse_size("1KB", &v), -EINVAL);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("K", &v), -EINVAL);
	assert_int_equal(parse_size("-1", &v), -EINVAL);
	assert_int_equal(parse_size(" 1", &v), -EINVAL);
	assert_int_equal(parse_size("1 ", &v), -EINVAL);
	assert_int_equal(parse_size(NULL, &v), -EINVAL);
	assert_int_equal(v, 7);
}

/* Values past 2^64 - 1, before or after the suffix shift, are -ERANGE. */
static void util_size_overflow(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(parse_size("17179869184G", &v), -ERANGE); /* 2^34 G = 2^64 */
	assert_int_equal(parse_size("18014398509481984K", &v), -ERANGE); /* 2^54 K */
	assert_int_equal(v, 7);
}

/* Both bounds are inclusive; one past either is -ERANGE. */
static void util_long_bounds(void **state)
{
	long v = 0;

	(void)state;
	assert_int_equal(parse_long("1", 1, 64, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_long("64", 1, 64, &v), 0);
	assert_int_equal(v, 64);
	assert_int_equal(parse_long("-5", -5, 5, &v), 0);
	assert_int_equal(v, -5);
	v = 123;
	assert_int_equal(parse_long("0", 1, 64, &v), -ERANGE);
	assert_int_equal(parse_long("65", 1, 64, &v), -ERANGE);
	assert_int_equal(parse_long("99999999999999999999", LONG_MIN, LONG_MAX, &v), -ERANGE);
	assert_int_equal(parse_long("-99999999999999999999", LONG_MIN, LONG_MAX, &v), -ERANGE);
	assert_int_equal(v, 123);
	assert_int_equal(parse_long("9223372036854775807", LONG_MIN, LONG_MAX, &v), 0);
	assert_int_equal(v, LONG_MAX);
}

/* Trailing garbage, empty input and leading spaces are rejected. */
static void util_long_garbage(void **state)
{
	long v = 123;

	(void)state;
	assert_int_equal(parse_long("12x", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_long("12 ", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_long(" 12", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_long("", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_long("abc", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_long("0x10", 0, 100, &v), -EINVAL);
	assert_int_equal(parse_long(NULL, 0, 100, &v), -EINVAL);
	assert_int_equal(v, 123);
}

/* A stale errno from an earlier call must not make a good number look like an overflow. */
static void util_long_resets_errno(void **state)
{
	long v = 0;

	(void)state;
	errno = ERANGE;
	assert_int_equal(parse_long("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	errno = ERANGE;
	assert_int_equal(parse_size("42", &(uint64_t){ 0 }), 0);
	errno = ERANGE;
	assert_int_equal(duration("42ms"), 42);
}

/* Names with or without SIG, any case, and numbers 1..64 are signals. */
static void util_signal_parse(void **state)
{
	(void)state;
	assert_int_equal(parse_signal("TERM"), SIGTERM);
	assert_int_equal(parse_signal("SIGKILL"), SIGKILL);
	assert_int_equal(parse_signal("kill"), SIGKILL);
	assert_int_equal(parse_signal("sigusr1"), SIGUSR1);
	assert_int_equal(parse_signal("9"), 9);
	assert_int_equal(parse_signal("1"), 1);
	assert_int_equal(parse_signal("64"), 64);
}

/* 0, 65, empty, "SIG" alone and unknown names are -EINVAL. */
static void util_signal_invalid(void **state)
{
	(void)state;
	assert_int_equal(parse_signal("0"), -EINVAL);
	assert_int_equal(parse_signal("65"), -EINVAL);
	assert_int_equal(parse_signal("-9"), -EINVAL);
	assert_int_equal(parse_signal("NOPE"), -EINVAL);
	assert_int_equal(parse_signal("SIG"), -EINVAL);
	assert_int_equal(parse_signal("SIGSIGTERM"), -EINVAL);
	assert_int_equal(parse_signal(""), -EINVAL);
	assert_int_equal(parse_signal(NULL), -EINVAL);
}

/* signal_name is the inverse of parse_signal for every named signal, NULL otherwise. */
static void util_signal_name(void **state)
{
	(void)state;
	assert_string_equal(signal_name(SIGTERM), "TERM");
	assert_string_equal(signal_name(SIGKILL), "KILL");
	assert_string_equal(signal_name(SIGCHLD), "CHLD");
	assert_null(signal_name(0));
	assert_null(signal_name(SIGRTMIN));
	assert_null(signal_name(-1));
	for (int sig = 1; sig < 32; sig++) {
		const char *name = signal_name(sig);

		if (name)
			assert_int_equal(parse_signal(name), sig);
	}
}

/* copy_str always NUL-terminates and says whether the whole string fit. */
static void util_copy_str(void **state)
{
	char buf[6];

	(void)state;
	memset(buf, 'z', sizeof(buf));
	assert_true(copy_str(buf, sizeof(buf), "hello"));
	assert_string_equal(buf, "hello");
	memset(buf, 'z', sizeof(buf));
	assert_false(copy_str(buf, sizeof(buf), "hello!"));
	assert_string_equal(buf, "hello");
	assert_false(copy_str(buf, sizeof(buf), "a much longer string"));
	assert_string_equal(buf, "a muc");
	assert_true(copy_str(buf, sizeof(buf), ""));
	assert_string_equal(buf, "");
	buf[0] = 'q';
	assert_false(copy_str(buf, 0, "x"));
	assert_int_equal(buf[0], 'q'); /* cap 0 writes nothing */
	assert_false(copy_str(buf, 1, "x"));
	assert_int_equal(buf[0], '\0');
}

/* Both flags end up set on a pipe, other status flags survive; a bad fd is -EBADF. */
static void util_fd_nonblock_cloexec(void **state)
{
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(fcntl(p[1], F_SETFL, O_APPEND), 0);
	assert_int_equal(fcntl(p[0], F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(fcntl(p[0], F_GETFD) & FD_CLOEXEC, 0);
	assert_int_equal(fd_set_nonblock_cloexec(p[0]), 0);
	assert_int_equal(fd_set_nonblock_cloexec(p[1]), 0);
	assert_true(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(p[1], F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(p[1], F_GETFL) & O_APPEND);
	/* and the fd really does not block now */
	assert_int_equal(read(p[0], &(char){ 0 }, 1), -1);
	assert_int_equal(errno, EAGAIN);
	close(p[0]);
	close(p[1]);
	assert_int_equal(fd_set_nonblock_cloexec(p[0]), -EBADF);
	assert_int_equal(fd_set_nonblock_cloexec(-1), -EBADF);
}

/* "host:port" and "[v6]:port" split into their parts. */
static void util_split_host_port(void **state)
{
	char host[64], port[8];

	(void)state;
	assert_int_equal(split_host_port("127.0.0.1:7000", host, sizeof(host), port, sizeof(port)),
			 0);
	assert_string_equal(host, "127.0.0.1");
	assert_string_equal(port, "7000");
	assert_int_equal(split_host_port("[::1]:443", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "::1");
	assert_string_equal(port, "443");
	assert_int_equal(split_host_port("[fe80::1%eth0]:https", host, sizeof(host), port,
					 sizeof(port)),
			 0);
	assert_string_equal(host, "fe80::1%eth0");
	assert_string_equal(port, "https");
	/* exactly filling both buffers */
	assert_int_equal(split_host_port("abc:1234567", host, 4, port, sizeof(port)), 0);
	assert_string_equal(host, "abc");
	assert_string_equal(port, "1234567");
}

/* Missing parts, bare IPv6, unclosed brackets and parts too long for their buffers fail. */
static void util_split_host_port_invalid(void **state)
{
	const char *bad[] = { "host", "host:", ":80", "::1:80", "[::1]",
			      "[::1]80", "[::1]:", "[]:80", "[::1:80", "" };
	char host[64], port[8];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(host, "unchanged");
		if (split_host_port(bad[i], host, sizeof(host), port, sizeof(port)) != -EINVAL)
			fail_msg("split_host_port(\"%s\") accepted", bad[i]);
		assert_string_equal(host, "unchanged");
	}
	assert_int_equal(split_host_port("abcd:1", host, 4, port, sizeof(port)), -EINVAL);
	assert_int_equal(split_host_port("a:12345678", host, sizeof(host), port, 8), -EINVAL);
}

/* The three clocks advance and the monotonic one never goes back. */
static void util_clocks(void **state)
{
	uint64_t a = now_monotonic_ns(), b;

	(void)state;
	usleep(2000);
	b = now_monotonic_ns();
	assert_true(b >= a + 2 * NSEC_PER_MSEC);
	assert_true(now_realtime_ns() > 1600000000ULL * NSEC_PER_SEC); /* after 2020 */
	assert_true(now_boottime_ns() >= now_monotonic_ns() - NSEC_PER_MSEC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(util_duration_units),
		cmocka_unit_test(util_duration_rounding),
		cmocka_unit_test(util_duration_invalid),
		cmocka_unit_test(util_duration_range),
		cmocka_unit_test(util_duration_rejects_nan),
		cmocka_unit_test(util_size_units),
		cmocka_unit_test(util_size_invalid),
		cmocka_unit_test(util_size_overflow),
		cmocka_unit_test(util_long_bounds),
		cmocka_unit_test(util_long_garbage),
		cmocka_unit_test(util_long_resets_errno),
		cmocka_unit_test(util_signal_parse),
		cmocka_unit_test(util_signal_invalid),
		cmocka_unit_test(util_signal_name),
		cmocka_unit_test(util_copy_str),
		cmocka_unit_test(util_fd_nonblock_cloexec),
		cmocka_unit_test(util_split_host_port),
		cmocka_unit_test(util_split_host_port_invalid),
		cmocka_unit_test(util_clocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
