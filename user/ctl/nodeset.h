/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * nodeset.h - node sets in ClusterShell's syntax: "node[1-64]",
 * "r[1-2]n[001-010/2]", "gw1:7979,node[1-8,12]", expanded into node names
 * and folded back, as `nodeset -e` and `nodeset -f` (ClusterShell 1.9) do.
 *
 * A node name is any run of characters other than ',', '[', ']', blanks
 * and '%'; every run of digits in it is one dimension of the set, so a port
 * is just one more: "localhost:[7001-7016]". IPv6 literals cannot take part
 * (their brackets would read as ranges): an entry "[ADDR6]" or
 * "[ADDR6]:PORT" (brackets holding a ':') is one node, kept as written.
 * ClusterShell's operators (! & ^) and @groups are not supported: a usage
 * error says so. No I/O here; the text of an @FILE is handed in.
 */
#ifndef CTLD_CTL_NODESET_H
#define CTLD_CTL_NODESET_H

#include <stddef.h>

/* A set expanding to more names is refused before it is stored. */
#define NODESET_MAX 65536
#define NODESET_NAME_MAX 255
/* an @FILE larger than this is refused (main reads it) */
#define NODESET_FILE_MAX (1 << 20)

/* Node names, each an owned string, in the order added (duplicates too). */
struct nodeset {
	char **names;
	size_t count, cap;
};

/* Expands `text` (a comma list of node names and patterns) and appends the
 * names. 0, -EINVAL with a reason in err (also for more than NODESET_MAX
 * names in all), or -ENOMEM. */
int nodeset_add(struct nodeset *ns, const char *text, char *err, size_t errlen);
/* The same for an @FILE's text: one node set per line, '#' starts a
 * comment, blank lines are skipped; errors name the line. */
int nodeset_add_lines(struct nodeset *ns, const char *text, char *err, size_t errlen);
void nodeset_free(struct nodeset *ns);

/* The names folded as `nodeset -f` does ("node[1-3,5],gw1"): an allocated
 * string the caller frees, or NULL when out of memory. */
char *nodeset_fold(char *const *names, size_t count);
/* Keeps the first of equal names, in the order added. 0 or -ENOMEM. */
int nodeset_unique(struct nodeset *ns);
/* Makes *ns hold each name once, in `nodeset -e` order. 0 or -ENOMEM. */
int nodeset_canonical(struct nodeset *ns);

#endif
