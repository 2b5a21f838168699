// SPDX-License-Identifier: BSD-2-Clause
/*
 * preauth.c - the budget of connections not yet authenticated.
 *
 * Anyone who can reach a TCP port can open connections and say nothing.
 * If those counted against the clients' limit, a few thousand idle
 * connections would keep every real client out for the Hello timeout,
 * again and again. So they have a small budget of their own, and a
 * newcomer never gets refused for lack of room: it evicts the oldest
 * waiting connection (of its own address when that address has its
 * share, else of all). A real client finishes its handshake within
 * milliseconds and leaves the budget, so an idle flood only ever evicts
 * itself; the per-source share keeps a flood from one address from
 * evicting anyone else's connection mid-handshake.
 *
 * The list is in order of arrival, oldest first; it is at most max_total
 * long (a few dozen by default), so counting one source is a short scan.
 */
#include <stddef.h>
#include <string.h>

#include "daemon/clients/preauth.h"

void preauth_init(struct preauth *p, unsigned max_total, unsigned max_per_source)
{
	*p = (struct preauth){ .max_total = max_total ? max_total : 1,
			       .max_per_source = max_per_source ? max_per_source : 1 };
}

static struct preauth_entry *oldest_from(const struct preauth *p, const char *source)
{
	for (struct preauth_entry *e = p->oldest; e; e = e->newer)
		if (strcmp(e->source, source) == 0)
			return e;
	return NULL;
}

unsigned preauth_count_from(const struct preauth *p, const char *source)
{
	unsigned n = 0;

	for (struct preauth_entry *e = p->oldest; e; e = e->newer)
		n += strcmp(e->source, source) == 0;
	return n;
}

struct preauth_entry *preauth_victim(const struct preauth *p, const char *source,
				     const char **limit)
{
	if (preauth_count_from(p, source) >= p->max_per_source) {
		*limit = "per source";
		return oldest_from(p, source);
	}
	if (p->count >= p->max_total) {
		*limit = "total";
		return p->oldest;
	}
	return NULL;
}

void preauth_add(struct preauth *p, struct preauth_entry *e, const char *source)
{
	e->source = source;
	e->newer = NULL;
	e->older = p->newest;
	if (p->newest)
		p->newest->newer = e;
	else
		p->oldest = e;
	p->newest = e;
	p->count++;
}

void preauth_remove(struct preauth *p, struct preauth_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		p->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		p->newest = e->older;
	e->older = e->newer = NULL;
	p->count--;
}
