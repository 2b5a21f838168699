// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_features.c - what the daemon makes of a probe's findings: the
 * `kernel features` text (one key=value per word, so tools can split it),
 * whether the fexit path may be used and why not, and --listen-confirm's
 * values. The probing itself needs a kernel: tests/e2e/test_listen_confirm.py.
 */
// TEST_SRCS: user/daemon/kernel/features.c user/daemon/kernel/sockdiag.c
// TEST_SRCS: user/daemon/kernel/tcp_listener.c user/daemon/kernel/btf_scan.c user/common/util.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/kernel/features.h"

static const struct kernel_features k510 = {
	.probed_bpf = true, .btf = true, .ringbuf = true, .fexit_err = 0, .listen_args = 2,
	.sock_diag_err = 0, .pidfd = true, .close_range = true, .cgroup2 = true,
	.controllers = "cpuset cpu io memory pids",
};

/* Every word is key=value; the variant is named by its arguments. */
static void format_names_the_variant(void **state)
{
	char text[200];

	(void)state;
	features_format(&k510, text, sizeof(text));
	assert_string_equal(text, "btf=yes ringbuf=yes fexit=yes(sk,backlog) sock_diag=yes pidfd=yes "
				  "close_range=yes cgroup2=cpuset,cpu,io,memory,pids");
}

/* The build machine: trampolines refused, a cgroup v1 host, no inet_diag. */
static void format_says_what_is_refused(void **state)
{
	struct kernel_features f = { .probed_bpf = true, .btf = true, .ringbuf = true,
				     .fexit_err = -EPERM, .sock_diag_err = -ENOENT };
	char text[200];

	(void)state;
	features_format(&f, text, sizeof(text));
	assert_string_equal(text, "btf=yes ringbuf=yes fexit=no(EPERM) sock_diag=no(ENOENT) "
				  "pidfd=no close_range=no cgroup2=no");
}

/* --no-bpf loads nothing, so the BPF facts are unknown, not "no". */
static void format_without_bpf_probes(void **state)
{
	struct kernel_features f = { .fexit_err = -EOPNOTSUPP, .cgroup2 = true };
	char text[200];

	(void)state;
	features_format(&f, text, sizeof(text));
	assert_non_null(strstr(text, "btf=not-probed ringbuf=not-probed fexit=not-probed "));
	assert_non_null(strstr(text, " cgroup2=yes")); /* v2 without controllers listed */
}

/* A short buffer truncates, never overflows. */
static void format_truncates(void **state)
{
	char text[12];

	(void)state;
	memset(text, 'x', sizeof(text));
	features_format(&k510, text, sizeof(text));
	assert_int_equal(strlen(text), sizeof(text) - 1);
}

static void fexit_usable_only_with_a_known_signature(void **state)
{
	struct kernel_features f = k510;
	char why[96];

	(void)state;
	assert_true(features_fexit_usable(&f, why, sizeof(why)));
	f.listen_args = 3; /* a kernel that changed the function again */
	assert_false(features_fexit_usable(&f, why, sizeof(why)));
	assert_string_equal(why, "inet_csk_listen_start takes 3 arguments, not 1 or 2");
	f.listen_args = 1;
	f.fexit_err = -EPERM;
	assert_false(features_fexit_usable(&f, why, sizeof(why)));
	assert_string_equal(why, "the kernel refuses an fexit on inet_csk_listen_start: EPERM");
	f.probed_bpf = false;
	assert_false(features_fexit_usable(&f, why, sizeof(why)));
}

static void listen_confirm_values(void **state)
{
	enum listen_confirm c = LISTEN_CONFIRM_AUTO;

	(void)state;
	assert_int_equal(listen_confirm_parse("sock_diag", &c), 0);
	assert_int_equal(c, LISTEN_CONFIRM_SOCK_DIAG);
	assert_int_equal(listen_confirm_parse("fexit", &c), 0);
	assert_int_equal(c, LISTEN_CONFIRM_FEXIT);
	assert_int_equal(listen_confirm_parse("auto", &c), 0);
	assert_int_equal(c, LISTEN_CONFIRM_AUTO);
	assert_int_equal(listen_confirm_parse("kprobe", &c), -EINVAL);
	assert_int_equal(listen_confirm_parse("", &c), -EINVAL);
	assert_int_equal(c, LISTEN_CONFIRM_AUTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(format_names_the_variant),
		cmocka_unit_test(format_says_what_is_refused),
		cmocka_unit_test(format_without_bpf_probes),
		cmocka_unit_test(format_truncates),
		cmocka_unit_test(fexit_usable_only_with_a_known_signature),
		cmocka_unit_test(listen_confirm_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
