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
 * a node whose output was cut is named.
 */
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

static bool same_output(const struct host *a, const struct host *b)
{
	return a->gathered_len == b->gathered_len &&
	       !memcmp(a->gathered, b->gathered, a->gathered_len);
}

/* The names of the hosts that match(first, host), folded; NULL: no memory. */
static char *fold_group(size_t first, bool (*match)(const struct host *, const struct host *),
			size_t *count)
{
	char **names = malloc((G.nhosts - first) * sizeof(*names));
	char *folded;

	*count = 0;
	if (!names)
		return NULL;
	for (size_t i = first; i < G.nhosts; i++)
		if (match(&G.hosts[first], &G.hosts[i]))
			names[(*count)++] = (char *)G.hosts[i].target->name; /* fold only reads */
	folded = nodeset_fold(names, *count);
	free(names);
	return folded;
}

/* A group is printed at its first host; later members are skipped. */
static bool printed_before(size_t i, bool (*match)(const struct host *, const struct host *))
{
	for (size_t j = 0; j < i; j++)
		if (match(&G.hosts[j], &G.hosts[i]))
			return true;
	return false;
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

void gather_print(void)
{
	for (size_t i = 0; i < G.nhosts; i++) {
		struct host *h = &G.hosts[i];
		size_t count;
		char *nodes;

		/* nodes without output print nothing, as with clush -b */
		if (!h->gathered_len || printed_before(i, same_output))
			continue;
		if (!(nodes = fold_group(i, same_output, &count))) {
			say(NULL, "out of memory folding node sets (-b)");
			return;
		}
		print_block(nodes, count, h);
		free(nodes);
	}
	for (size_t i = 0; i < G.nhosts; i++)
		if (G.hosts[i].gather_cut)
			say(&G.hosts[i], "its gathered output above was cut at %d KiB",
			    GATHER_MAX / 1024);
}

/* ------------------------------------------------------------ --summary */

static bool same_end(const struct host *a, const struct host *b)
{
	return a->status == b->status && !strcmp(a->failure, b->failure);
}

static void print_row(size_t i)
{
	const struct host *h = &G.hosts[i];
	size_t count;
	char *nodes = fold_group(i, same_end, &count);
	char what[96];

	if (h->failure[0])
		snprintf(what, sizeof(what), "%s", h->failure);
	else
		snprintf(what, sizeof(what), "exit %d", h->status);
	if (!nodes) {
		say(NULL, "out of memory folding node sets (--summary)");
		return;
	}
	say(NULL, "%s: %s (%zu)", what, nodes, count);
	free(nodes);
}

/* Rows in order of status (the failures that share one by reason). */
void summary_print(void)
{
	for (int status = 0; status < 256; status++)
		for (size_t i = 0; i < G.nhosts; i++)
			if (G.hosts[i].status == status && !printed_before(i, same_end))
				print_row(i);
}

int summary_status(void)
{
	int status = 0;

	for (size_t i = 0; i < G.nhosts; i++)
		if (G.hosts[i].status > status)
			status = G.hosts[i].status;
	return status;
}
