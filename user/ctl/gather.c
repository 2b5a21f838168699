// SPDX-License-Identifier: BSD-2-Clause
/*
 * gather.c - what ctl prints once every host is done: -b (--gather),
 * identical outputs folded into one block headed by their node set, as
 * `clush -b` prints it; and --summary, a table of node sets per exit
 * status (or per reason a node could not be reached) on stderr.
 *
 * Node sets are folded with nodeset_fold(), so headers read as ClusterShell
 * writes them ("localhost:[7001-7016] (16)"). Each node keeps at most
 * GATHER_MAX bytes of stdout: memory is bounded by the number of nodes, and
 * a node whose output was cut is named. Hosts are grouped by sorting, not
 * by comparing every pair, so 65536 nodes stay quick.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/ctl.h"
#include "ctl/nodeset.h"
#include "ctl/output.h"

#define SEPARATOR "---------------" /* clush's: 15 dashes */

int gather_add(struct host *h, const void *data, size_t len)
{
	size_t room = GATHER_MAX - h->gathered_len;
	char *grown;

	if (len > room) {
		if (!h->gather_cut)
			say(h, "output beyond %d KiB is not gathered (-b)", GATHER_MAX / 1024);
		h->gather_cut = true;
		len = room;
	}
	if (!len)
		return 0;
	if (!(grown = realloc(h->gathered, h->gathered_len + len))) {
		say(h, "out of memory for gathered output (-b)");
		h->gather_cut = true;
		return 0;
	}
	memcpy(grown + h->gathered_len, data, len);
	h->gathered = grown;
	h->gathered_len += len;
	return 0;
}

/* Hosts are grouped by sorting their indices (O(n log n) for 65536 nodes):
 * equal hosts end up adjacent, each group in -H order (ties by index). */
struct group {
	size_t start, len; /* a run of sorted[] */
};

static int by_index(size_t a, size_t b)
{
	return (a > b) - (a < b);
}

/* Keys hosts are grouped by: 0 when hosts a and b belong together. */
typedef int (*host_key)(size_t a, size_t b);

static int output_key(size_t a, size_t b)
{
	const struct host *x = &G.hosts[a], *y = &G.hosts[b];

	if (x->gathered_len != y->gathered_len)
		return x->gathered_len < y->gathered_len ? -1 : 1;
	return memcmp(x->gathered, y->gathered, x->gathered_len);
}

static int end_key(size_t a, size_t b)
{
	const struct host *x = &G.hosts[a], *y = &G.hosts[b];

	if (x->status != y->status)
		return x->status < y->status ? -1 : 1;
	return strcmp(x->failure, y->failure);
}

static int by_key_then_index(const void *pa, const void *pb, void *key)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	int c = (*(host_key *)key)(a, b);

	return c ? c : by_index(a, b);
}

/* The hosts keep(h) selects, sorted by key and cut into groups of equal
 * ones. 0, or -ENOMEM. */
static int group_hosts(bool (*keep)(const struct host *), host_key key, size_t **sorted,
		       struct group **groups, size_t *ngroups)
{
	size_t n = 0;

	*sorted = malloc((G.nhosts ? G.nhosts : 1) * sizeof(**sorted));
	*groups = malloc((G.nhosts ? G.nhosts : 1) * sizeof(**groups));
	*ngroups = 0;
	if (!*sorted || !*groups) {
		free(*sorted);
		free(*groups);
		return -ENOMEM;
	}
	for (size_t i = 0; i < G.nhosts; i++)
		if (keep(&G.hosts[i]))
			(*sorted)[n++] = i;
	qsort_r(*sorted, n, sizeof(**sorted), by_key_then_index, &key);
	for (size_t i = 0; i < n; i++) {
		struct group *last = *ngroups ? &(*groups)[*ngroups - 1] : NULL;

		if (last && !key((*sorted)[last->start], (*sorted)[i]))
			last->len++;
		else
			(*groups)[(*ngroups)++] = (struct group){ .start = i, .len = 1 };
	}
	return 0;
}

/* The names of a group, folded; NULL: no memory. */
static char *fold_group(const size_t *sorted, const struct group *g)
{
	char **names = malloc(g->len * sizeof(*names));
	char *folded;

	if (!names)
		return NULL;
	for (size_t i = 0; i < g->len; i++)
		names[i] = (char *)G.hosts[sorted[g->start + i]].target->name; /* fold only reads */
	folded = nodeset_fold(names, g->len);
	free(names);
	return folded;
}

static void print_block(const char *nodes, size_t count, const struct host *h)
{
	char header[64];
	bool nl = h->gathered[h->gathered_len - 1] == '\n';

	snprintf(header, sizeof(header), count > 1 ? " (%zu)\n" : "\n", count);
	emit(NULL, STDOUT_FILENO, SEPARATOR "\n", sizeof(SEPARATOR));
	emit(NULL, STDOUT_FILENO, nodes, strlen(nodes));
	emit(NULL, STDOUT_FILENO, header, strlen(header));
	emit(NULL, STDOUT_FILENO, SEPARATOR "\n", sizeof(SEPARATOR));
	emit(NULL, STDOUT_FILENO, h->gathered, h->gathered_len);
	if (!nl)
		emit(NULL, STDOUT_FILENO, "\n", 1);
}

static int by_first_host(const void *pa, const void *pb, void *sorted)
{
	const struct group *a = pa, *b = pb;
	const size_t *s = sorted;

	return by_index(s[a->start], s[b->start]);
}

/* What is printed for one group: its folded node set, its size, its first host. */
typedef void (*group_printer)(const char *nodes, size_t count, const struct host *first);

/* Groups the hosts keep() selects by key, folds each group's names and
 * prints it: in the order of their first host, or else of the key. */
static void print_groups(bool (*keep)(const struct host *), host_key key, bool host_order,
			 group_printer print, const char *what)
{
	size_t *sorted, ngroups;
	struct group *groups;

	if (group_hosts(keep, key, &sorted, &groups, &ngroups)) {
		say(NULL, "out of memory for %s", what);
		return;
	}
	if (host_order)
		qsort_r(groups, ngroups, sizeof(*groups), by_first_host, sorted);
	for (size_t i = 0; i < ngroups; i++) {
		char *nodes = fold_group(sorted, &groups[i]);

		if (!nodes) {
			say(NULL, "out of memory folding node sets for %s", what);
			break;
		}
		print(nodes, groups[i].len, &G.hosts[sorted[groups[i].start]]);
		free(nodes);
	}
	free(sorted);
	free(groups);
}

static bool has_output(const struct host *h)
{
	return h->gathered_len > 0; /* nodes without output print nothing, as with clush -b */
}

void gather_print(void)
{
	print_groups(has_output, output_key, true, print_block, "-b");
	for (size_t i = 0; i < G.nhosts; i++)
		if (G.hosts[i].gather_cut)
			say(&G.hosts[i], "its gathered output above was cut at %d KiB",
			    GATHER_MAX / 1024);
}

/* ------------------------------------------------------------ --summary */

static bool any_host(const struct host *h)
{
	(void)h;
	return true;
}

static void print_row(const char *nodes, size_t count, const struct host *h)
{
	if (h->failure[0])
		say(NULL, "%s: %s (%zu)", h->failure, nodes, count);
	else
		say(NULL, "exit %d: %s (%zu)", h->status, nodes, count);
}

/* One line per exit status (failures of one status by reason), in status order. */
void summary_print(void)
{
	print_groups(any_host, end_key, false, print_row, "--summary");
}

int summary_status(void)
{
	int status = 0;

	for (size_t i = 0; i < G.nhosts; i++)
		if (G.hosts[i].status > status)
			status = G.hosts[i].status;
	return status;
}
