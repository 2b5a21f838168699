/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * preauth.h - the budget of TCP connections that have not yet shown who
 * they are (TLS handshake and Hello not done): at most max_total of them,
 * at most max_per_source from one address, and whom to evict when a
 * newcomer needs room. Bookkeeping only: session.c owns the entries and
 * closes the connection this names.
 */
#ifndef CTLD_PREAUTH_H
#define CTLD_PREAUTH_H

#include <stdint.h>

/* Lives in its owner's struct; source points at the owner's copy. */
struct preauth_entry {
	struct preauth_entry *older, *newer;
	const char *source; /* the peer address, without the port */
};

struct preauth {
	struct preauth_entry *oldest, *newest;
	unsigned count;
	unsigned max_total, max_per_source;
};

void preauth_init(struct preauth *p, unsigned max_total, unsigned max_per_source);
/* Which entry must go so that one more from source fits: the oldest from
 * source when that source has max_per_source, else the oldest of all when
 * there are max_total; NULL when there is room. *limit names the limit
 * ("per source" or "total"). */
struct preauth_entry *preauth_victim(const struct preauth *p, const char *source,
				     const char **limit);
/* Appends e as the newest; the caller made room first. */
void preauth_add(struct preauth *p, struct preauth_entry *e, const char *source);
void preauth_remove(struct preauth *p, struct preauth_entry *e);
unsigned preauth_count_from(const struct preauth *p, const char *source);

#endif
