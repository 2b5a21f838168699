// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_job_record_format.c - the job records a new daemon instance reads to
 * find an earlier one's running jobs: what is written parses back the same
 * (names and commands with newlines and backslashes too), and anything but a
 * complete, valid record is refused (truncated, a key twice, an unknown key,
 * a bad number or escape, another version), so a damaged file can never make
 * the daemon adopt the wrong process.
 */
// TEST_SRCS: user/daemon/jobs/job_records.c user/common/util.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/jobs/job_records.h"

static struct job_record sample(void)
{
	struct job_record r = { .id = 1025, .pid = 4242, .starttime = 987654,
				.start_real_ns = 1764590000000000000ull, .start_mono_ns = 123456789 };

	strcpy(r.boot_id, "0f6a0e3c-5d1e-4d0f-9a57-4b1c8f0e2a11");
	strcpy(r.name, "sh");
	strcpy(r.command, "sh -c 'echo a\\b\nsecond line'");
	return r;
}

static void record_round_trip(void **state)
{
	struct job_record r = sample(), back;
	char text[JOB_RECORD_MAX_BYTES];

	(void)state;
	assert_int_equal(job_record_format(&r, text, sizeof(text)), 0);
	assert_int_equal(job_record_parse(text, strlen(text), &back), 0);
	assert_memory_equal(&r, &back, sizeof(r));
	/* the newline is escaped: one line per key */
	assert_null(strstr(text, "a\\b\nsecond"));
}

static int parse_text(const char *text)
{
	struct job_record r;

	return job_record_parse(text, strlen(text), &r);
}

/* The sample's text with one line replaced (or removed with repl = ""). */
static int parse_with(const char *key, const char *repl)
{
	struct job_record r = sample();
	char text[JOB_RECORD_MAX_BYTES], out[JOB_RECORD_MAX_BYTES + 64];
	char *at, *end;

	assert_int_equal(job_record_format(&r, text, sizeof(text)), 0);
	at = strstr(text, key);
	assert_non_null(at);
	end = strchr(at, '\n') + 1;
	snprintf(out, sizeof(out), "%.*s%s%s", (int)(at - text), text, repl, end);
	return parse_text(out);
}

static void record_refuses_damage(void **state)
{
	struct job_record r = sample();
	char text[JOB_RECORD_MAX_BYTES];

	(void)state;
	assert_int_equal(job_record_format(&r, text, sizeof(text)), 0);
	for (size_t cut = 0; cut < strlen(text); cut++) /* every truncation */
		assert_int_equal(job_record_parse(text, cut, &r), -EBADMSG);
	assert_int_equal(parse_with("pid ", ""), -EBADMSG);
	assert_int_equal(parse_with("pid ", "pid 1\npid 2\n"), -EBADMSG);
	assert_int_equal(parse_with("pid ", "pid -3\n"), -EBADMSG);
	assert_int_equal(parse_with("pid ", "pid 0\n"), -EBADMSG);
	assert_int_equal(parse_with("starttime", "starttime 12x\n"), -EBADMSG);
	assert_int_equal(parse_with("id ", "id 99999999999999999999999\n"), -EBADMSG);
	assert_int_equal(parse_with("boot_id", "boot_id short\n"), -EBADMSG);
	assert_int_equal(parse_with("name", "name bad\\q\n"), -EBADMSG);
	assert_int_equal(parse_with("name", "colour blue\n"), -EBADMSG);
	assert_int_equal(parse_with("ctld-bpf job 1", "ctld-bpf job 2\n"), -EBADMSG);
	assert_int_equal(parse_text(""), -EBADMSG);
}

static void record_too_long_command_is_refused(void **state)
{
	char text[JOB_RECORD_MAX_BYTES + 600];
	char big[400];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse_with("command", "command \n"), 0); /* empty is a command */
	snprintf(text, sizeof(text), "command %s\n", big);
	assert_int_equal(parse_with("command", text), -EBADMSG); /* longer than JobInfo.command */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(record_round_trip),
		cmocka_unit_test(record_refuses_damage),
		cmocka_unit_test(record_too_long_command_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
