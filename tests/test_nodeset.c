// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_nodeset.c - node sets: expansion of ranges, padding, steps, several
 * bracket groups, ports and IPv6 entries, @FILE lines, the bounds and the
 * usage errors; folding like ClusterShell, checked by hand on known cases
 * and against ClusterShell's own `nodeset -f` / `nodeset -e` on generated
 * random sets (the Debian package clustershell, in DEB_PACKAGES).
 */
// TEST_SRCS: user/ctl/nodeset.c user/ctl/nodeset_fold.c user/common/util.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctl/nodeset.h"

#define COMPARE_ROUNDS 3000

static char err[512];

/* The names of `text`, joined by ' ' (the test's own bounded buffer). */
static const char *expand(const char *text)
{
	static char out[65536];
	struct nodeset ns = { 0 };
	size_t len = 0;

	out[0] = '\0';
	err[0] = '\0';
	if (nodeset_add(&ns, text, err, sizeof(err))) {
		nodeset_free(&ns);
		return NULL;
	}
	for (size_t i = 0; i < ns.count && len + strlen(ns.names[i]) + 2 < sizeof(out); i++)
		len += (size_t)sprintf(out + len, "%s%s", i ? " " : "", ns.names[i]);
	nodeset_free(&ns);
	return out;
}

/* fold(expand(text)) */
static char *fold(const char *text)
{
	struct nodeset ns = { 0 };
	char *f;

	assert_int_equal(nodeset_add(&ns, text, err, sizeof(err)), 0);
	f = nodeset_fold(ns.names, ns.count);
	nodeset_free(&ns);
	assert_non_null(f);
	return f;
}

static void assert_fold(const char *text, const char *want)
{
	char *f = fold(text);

	if (strcmp(f, want))
		fail_msg("fold('%s') = '%s', want '%s'", text, f, want);
	free(f);
}

/* Ranges, lists, padding and steps expand as ClusterShell does. */
static void nodeset_expand_ranges(void **state)
{
	(void)state;
	assert_string_equal(expand("node[1-3]"), "node1 node2 node3");
	assert_string_equal(expand("n[1-3,7],gw"), "n1 n2 n3 n7 gw");
	assert_string_equal(expand("n[08-10]"), "n08 n09 n10");
	assert_string_equal(expand("n[1-10/4]"), "n1 n5 n9");
	assert_string_equal(expand("r[1-2]n[1-2]"), "r1n1 r1n2 r2n1 r2n2");
	assert_string_equal(expand("n[1-2]0"), "n10 n20");
	assert_string_equal(expand("n[1-2]-ilo"), "n1-ilo n2-ilo");
	assert_string_equal(expand("[1-2]x"), "1x 2x");
}

/* A port is part of the node name; IPv6 literals are one node each. */
static void nodeset_expand_ports(void **state)
{
	(void)state;
	assert_string_equal(expand("localhost:[7001-7003]"),
			    "localhost:7001 localhost:7002 localhost:7003");
	assert_string_equal(expand("node[1-2]:7979,gw1:7878"), "node1:7979 node2:7979 gw1:7878");
	assert_string_equal(expand("[::1]:7001,[fe80::1],a"), "[::1]:7001 [fe80::1] a");
	assert_string_equal(expand("127.0.0.1:[1-2]"), "127.0.0.1:1 127.0.0.1:2");
}

/* Every malformed set is refused with a reason. */
static void nodeset_expand_bad(void **state)
{
	static const char *const bad[] = {
		"",	   "a,",       ",a",	    "a,,b",	"n[",	  "n[1-2",    "n]",
		"n[]",	   "n[1,,2]",  "n[2-1]",    "n[1-010]", "n[x]",	  "n[1-3/0]", "n[5/2]",
		"n[-1]",   "n[1][2]",  "a!b",	    "a&b",	"a^b",	  "@grp",     "a b",
		"a%s",	   "n[1-2]]",  "n[1234567890123456789]",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (expand(bad[i]))
			fail_msg("node set '%s' was accepted", bad[i]);
		if (!err[0])
			fail_msg("node set '%s': no reason given", bad[i]);
	}
	expand("a!b");
	assert_non_null(strstr(err, "not supported"));
}

/* A set over NODESET_MAX names is refused while it is expanded. */
static void nodeset_expand_bounded(void **state)
{
	struct nodeset ns = { 0 };

	(void)state;
	assert_int_equal(nodeset_add(&ns, "n[1-99999999999999]", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too large"));
	nodeset_free(&ns);
	assert_int_equal(nodeset_add(&ns, "n[1-65536]", err, sizeof(err)), 0);
	assert_int_equal(ns.count, NODESET_MAX);
	assert_int_equal(nodeset_add(&ns, "x", err, sizeof(err)), -EINVAL);
	nodeset_free(&ns);
}

/* @FILE: one set per line, comments and blank lines skipped, errors name the line. */
static void nodeset_file_lines(void **state)
{
	struct nodeset ns = { 0 };

	(void)state;
	assert_int_equal(nodeset_add_lines(&ns, "# nodes\nn[1-2]  # two\n\n  gw:7979\n", err,
					   sizeof(err)),
			 0);
	assert_int_equal(ns.count, 3);
	assert_string_equal(ns.names[2], "gw:7979");
	nodeset_free(&ns);
	assert_int_equal(nodeset_add_lines(&ns, "a\nb[\n", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "line 2"));
	nodeset_free(&ns);
}

/* Known foldings, each checked once with ClusterShell 1.9. */
static void nodeset_fold_known(void **state)
{
	(void)state;
	assert_fold("node3,node1,node2", "node[1-3]");
	assert_fold("node1,node01,node2,node02,node3,node10,foo,bar",
		    "bar,foo,node[1-3,01-02,10]");
	assert_fold("a1b2,a1b3,a2b2,a2b3", "a[1-2]b[2-3]");
	assert_fold("n09,n10,n9", "n[9,09-10]");
	assert_fold("localhost:7001,localhost:7002,localhost:7004", "localhost:[7001-7002,7004]");
	assert_fold("127.0.0.1:7001,127.0.0.1:7002", "127.0.0.1:[7001-7002]");
	assert_fold("[::1]:7001,a", "[::1]:7001,a");
	assert_fold("x,x,x", "x");
}

/* Folding then expanding gives each name once, in `nodeset -e` order. */
static void nodeset_canonical_order(void **state)
{
	struct nodeset ns = { 0 };

	(void)state;
	assert_int_equal(nodeset_add(&ns, "n10,n9,gw,n9,a1", err, sizeof(err)), 0);
	assert_int_equal(nodeset_canonical(&ns), 0);
	assert_int_equal(ns.count, 4);
	assert_string_equal(ns.names[0], "a1");
	assert_string_equal(ns.names[1], "gw");
	assert_string_equal(ns.names[2], "n9");
	assert_string_equal(ns.names[3], "n10");
	nodeset_free(&ns);
}

/* ------------------------------------------------------------ against ClusterShell */

/* One random name: a few prefixes, 1-3 digit runs with random padding. */
static void random_name(char *buf, size_t cap)
{
	static const char *const prefixes[] = { "n", "node", "r", "gw", "a-", "x." };
	static const char *const middles[] = { "", "n", "c", ":", "-ilo" };
	int dims = 1 + rand() % 3;
	size_t len = (size_t)snprintf(buf, cap, "%s", prefixes[rand() % 6]);

	for (int d = 0; d < dims && len < cap - 16; d++) {
		int v = rand() % (d ? 4 : 24), width = rand() % 5 == 0 ? 2 + rand() % 2 : 0;

		len += (size_t)snprintf(buf + len, cap - len, "%s%0*d", d ? middles[rand() % 5] : "",
					width, v);
	}
	if (rand() % 8 == 0)
		snprintf(buf + len, cap - len, "-ib");
}

/* ClusterShell itself, once for every set: each line of `in` is a set
 * (names separated by ','); each line out is "FOLDED EXPANDED..." ' '-joined. */
static const char clustershell_script[] =
	"import sys\n"
	"from ClusterShell.NodeSet import NodeSet\n"
	"for line in open(sys.argv[1]):\n"
	"    ns = NodeSet.fromlist(line.strip().split(','))\n"
	"    print(str(ns), ' '.join(ns))\n";

/* Our fold and order must be ClusterShell's, on many random sets. */
static void nodeset_matches_clustershell(void **state)
{
	char path[] = "/tmp/test_nodeset.XXXXXX", cmd[256], line[65536], mine[65536];
	int fd = mkstemp(path);
	FILE *in = fdopen(fd, "w"), *out;

	(void)state;
	assert_non_null(in);
	srand(12);
	for (int round = 0; round < COMPARE_ROUNDS; round++) {
		int count = 1 + rand() % (round % 3 ? 12 : 60);
		char name[64];

		for (int i = 0; i < count; i++) {
			random_name(name, sizeof(name));
			fprintf(in, "%s%s", i ? "," : "", name);
		}
		fprintf(in, "\n");
	}
	assert_int_equal(fclose(in), 0);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \"$(cat <<'EOF'\n%sEOF\n)\" %s",
		 clustershell_script, path);
	out = popen(cmd, "r"); /* needs the Debian package clustershell */
	assert_non_null(out);
	in = fopen(path, "r");
	assert_non_null(in);
	for (int round = 0; round < COMPARE_ROUNDS; round++) {
		struct nodeset ns = { 0 };
		char *folded;
		size_t len;

		assert_non_null(fgets(line, sizeof(line), in));
		line[strcspn(line, "\n")] = '\0';
		assert_int_equal(nodeset_add(&ns, line, err, sizeof(err)), 0);
		folded = nodeset_fold(ns.names, ns.count);
		assert_int_equal(nodeset_canonical(&ns), 0);
		len = (size_t)snprintf(mine, sizeof(mine), "%s", folded);
		for (size_t i = 0; i < ns.count; i++)
			len += (size_t)snprintf(mine + len, sizeof(mine) - len, " %s", ns.names[i]);
		assert_non_null(fgets(line, sizeof(line), out));
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(mine, line))
			fail_msg("round %d: ctl '%s', ClusterShell '%s'", round, mine, line);
		free(folded);
		nodeset_free(&ns);
	}
	fclose(in);
	assert_int_equal(pclose(out), 0);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nodeset_expand_ranges),
		cmocka_unit_test(nodeset_expand_ports),
		cmocka_unit_test(nodeset_expand_bad),
		cmocka_unit_test(nodeset_expand_bounded),
		cmocka_unit_test(nodeset_file_lines),
		cmocka_unit_test(nodeset_fold_known),
		cmocka_unit_test(nodeset_canonical_order),
		cmocka_unit_test(nodeset_matches_clustershell),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
