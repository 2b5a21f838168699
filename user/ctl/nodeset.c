// SPDX-License-Identifier: BSD-2-Clause
/*
 * nodeset.c - expanding node sets: the comma list, bracket ranges
 * ("[1-3,7]", "[001-010/2]", several groups per name), the IPv6 entries
 * kept whole, @FILE lines. Folding is in nodeset_fold.c.
 *
 * Work is bounded by what is produced: a range is expanded one name at a
 * time and the whole set stops at NODESET_MAX names, so "n[1-99999999999]"
 * is a usage error after 65536 names, not a large allocation.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "ctl/nodeset.h"

#define MAX_DIGITS 18 /* fits an unsigned long long with room for a step */

/* What is being expanded: the set, and the entry for messages. */
struct expansion {
	struct nodeset *ns;
	char entry[NODESET_NAME_MAX * 4 + 1]; /* the entry being expanded */
	char *err;
	size_t errlen;
};

/* One "a", "a-b" or "a-b/step" of a bracket range. */
struct range_item {
	unsigned long long first, last, step;
	int pad; /* 0: no padding; else the width ("001") */
};

static int append_name(struct expansion *x, const char *name, size_t len)
{
	struct nodeset *ns = x->ns;
	char *copy;

	if (ns->count == NODESET_MAX)
		return errorf(x->err, x->errlen, -EINVAL,
			      "node set too large (more than %d nodes)", NODESET_MAX);
	if (len == 0)
		return errorf(x->err, x->errlen, -EINVAL, "empty node name in '%.100s'", x->entry);
	if (ns->count == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		char **grown = realloc(ns->names, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		ns->names = grown;
		ns->cap = cap;
	}
	if (!(copy = strndup(name, len)))
		return -ENOMEM;
	ns->names[ns->count++] = copy;
	return 0;
}

/* Digits only, at most MAX_DIGITS of them. */
static int parse_number(const char *s, size_t len, unsigned long long *v)
{
	*v = 0;
	if (len == 0 || len > MAX_DIGITS)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return 0;
}

/* ClusterShell's padding: a leading zero (or "00") makes the width; both
 * ends of a padded range must then be as wide. */
static int padding_of(const char *s, size_t len)
{
	return len > 1 && s[0] == '0' ? (int)len : 0;
}

static int parse_range_item(struct expansion *x, const char *s, size_t len,
			    struct range_item *it)
{
	const char *slash = memchr(s, '/', len), *dash;
	size_t base = slash ? (size_t)(slash - s) : len;

	it->step = 1;
	if (slash && (parse_number(slash + 1, len - base - 1, &it->step) || it->step == 0))
		goto bad;
	dash = memchr(s, '-', base);
	if (!dash) {
		if (slash || parse_number(s, base, &it->first))
			goto bad;
		it->last = it->first;
		it->pad = padding_of(s, base);
		return 0;
	}
	size_t flen = (size_t)(dash - s), llen = base - flen - 1;

	if (parse_number(s, flen, &it->first) || parse_number(dash + 1, llen, &it->last) ||
	    it->last < it->first)
		goto bad;
	it->pad = padding_of(s, flen);
	if ((it->pad || padding_of(dash + 1, llen)) && flen != llen)
		return errorf(x->err, x->errlen, -EINVAL,
			      "bad range '%.*s' in '%.100s': padding length mismatch", (int)len, s,
			      x->entry);
	return 0;
bad:
	return errorf(x->err, x->errlen, -EINVAL,
		      "bad range '%.*s' in '%.100s' (want N, N-M or N-M/STEP; no negatives)",
		      (int)(len > 40 ? 40 : len), s, x->entry);
}

static int expand_rest(struct expansion *x, const char *rest, const char *end, char *name,
		       size_t len);

/* name[0..len) is what comes before the range "[...]" at range..close. */
static int expand_range(struct expansion *x, const char *range, const char *close,
			char *name, size_t len)
{
	const char *p = range;

	if (p == close)
		return errorf(x->err, x->errlen, -EINVAL, "empty range '[]' in '%.100s'", x->entry);
	while (p <= close) {
		const char *comma = memchr(p, ',', (size_t)(close - p));
		const char *item_end = comma ? comma : close;
		struct range_item it;
		int err;

		if ((err = parse_range_item(x, p, (size_t)(item_end - p), &it)))
			return err;
		for (unsigned long long v = it.first; v <= it.last; v += it.step) {
			int n = snprintf(name + len, NODESET_NAME_MAX + 1 - len, "%0*llu", it.pad, v);

			if (n < 0 || len + (size_t)n > NODESET_NAME_MAX)
				return errorf(x->err, x->errlen, -EINVAL,
					      "node name too long in '%.100s' (at most %d bytes)",
					      x->entry, NODESET_NAME_MAX);
			if ((err = expand_rest(x, close + 1, x->entry + strlen(x->entry), name,
					       len + (size_t)n)))
				return err;
			if (it.last - v < it.step)
				break;
		}
		p = item_end + 1;
	}
	return 0;
}

/* Appends rest[..end) to name[0..len), expanding its bracket groups. */
static int expand_rest(struct expansion *x, const char *rest, const char *end, char *name,
		       size_t len)
{
	const char *open = memchr(rest, '[', (size_t)(end - rest));
	const char *lit_end = open ? open : end;
	const char *close_before = memchr(rest, ']', (size_t)(lit_end - rest));
	size_t lit = (size_t)(lit_end - rest);

	if (close_before)
		return errorf(x->err, x->errlen, -EINVAL, "stray ']' in '%.100s'", x->entry);
	if (len + lit > NODESET_NAME_MAX)
		return errorf(x->err, x->errlen, -EINVAL,
			      "node name too long in '%.100s' (at most %d bytes)", x->entry,
			      NODESET_NAME_MAX);
	memcpy(name + len, rest, lit);
	if (!open)
		return append_name(x, name, len + lit);
	const char *close = memchr(open, ']', (size_t)(end - open));

	if (!close)
		return errorf(x->err, x->errlen, -EINVAL, "missing ']' in '%.100s'", x->entry);
	if (close + 1 < end && close[1] == '[')
		return errorf(x->err, x->errlen, -EINVAL, "'][' in '%.100s': a range needs a "
							  "name or digits between",
			      x->entry);
	return expand_range(x, open + 1, close, name, len + lit);
}

/* "[ADDR6]" or "[ADDR6]:PORT": brackets holding a ':' are an address. */
static bool is_ipv6_entry(const char *s, size_t len)
{
	const char *close = memchr(s, ']', len);

	return len > 2 && s[0] == '[' && close && memchr(s, ':', (size_t)(close - s));
}

static int check_chars(struct expansion *x, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (strchr("!&^", c))
			return errorf(x->err, x->errlen, -EINVAL,
				      "node set operator '%c' in '%.100s' is not supported", c,
				      x->entry);
		if (c == '@')
			return errorf(x->err, x->errlen, -EINVAL,
				      "'@' in '%.100s': node groups are not supported (-H @FILE "
				      "reads a file)",
				      x->entry);
		if (isspace(c) || c == '%' || c < 0x20 || c == 0x7f)
			return errorf(x->err, x->errlen, -EINVAL, "bad character in node set '%.100s'",
				      x->entry);
	}
	return 0;
}

/* One top-level entry of the comma list. */
static int add_entry(struct expansion *x, const char *s, size_t len)
{
	char name[NODESET_NAME_MAX + 1], *entry = x->entry;
	int err;

	if (len == 0)
		return errorf(x->err, x->errlen, -EINVAL, "empty entry in node set");
	if (len >= sizeof(x->entry))
		return errorf(x->err, x->errlen, -EINVAL, "node set entry too long ('%.40s...')", s);
	memcpy(entry, s, len);
	entry[len] = '\0';
	if ((err = check_chars(x, entry, len)))
		return err;
	if (is_ipv6_entry(entry, len))
		return len > NODESET_NAME_MAX ? errorf(x->err, x->errlen, -EINVAL, "name too long")
					      : append_name(x, entry, len);
	return expand_rest(x, entry, entry + len, name, 0);
}

int nodeset_add(struct nodeset *ns, const char *text, char *err, size_t errlen)
{
	struct expansion x;
	const char *p = text;

	x = (struct expansion){ .ns = ns, .err = err, .errlen = errlen };
	for (;;) {
		const char *q = p;
		int depth = 0, ret;

		/* a comma inside brackets belongs to the range */
		for (; *q && (depth || *q != ','); q++)
			depth += *q == '[' ? 1 : *q == ']' ? -1 : 0;
		if ((ret = add_entry(&x, p, (size_t)(q - p))))
			return ret;
		if (!*q)
			return 0;
		p = q + 1;
	}
}

int nodeset_add_lines(struct nodeset *ns, const char *text, char *err, size_t errlen)
{
	char line[NODESET_NAME_MAX * 4 + 1];
	unsigned lineno = 0;

	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n"), start = 0, end;
		int ret;

		lineno++;
		if (len >= sizeof(line))
			return errorf(err, errlen, -EINVAL, "line %u: too long", lineno);
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (p[len] == '\n');
		line[strcspn(line, "#")] = '\0';
		end = strlen(line);
		while (start < end && isspace((unsigned char)line[start]))
			start++;
		while (end > start && isspace((unsigned char)line[end - 1]))
			line[--end] = '\0';
		if (start == end)
			continue;
		if ((ret = nodeset_add(ns, line + start, err, errlen))) {
			size_t used = strlen(err);

			if (ret == -EINVAL)
				snprintf(err + used, errlen - used, " (line %u)", lineno);
			return ret;
		}
	}
	return 0;
}

void nodeset_free(struct nodeset *ns)
{
	for (size_t i = 0; i < ns->count; i++)
		free(ns->names[i]);
	free(ns->names);
	*ns = (struct nodeset){ 0 };
}

static int name_index_cmp(const void *a, const void *b, void *names)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(((char **)names)[i], ((char **)names)[j]);

	return c ? c : (i > j) - (i < j);
}

int nodeset_unique(struct nodeset *ns)
{
	size_t *order = malloc((ns->count ? ns->count : 1) * sizeof(*order)), kept = 0;

	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < ns->count; i++)
		order[i] = i;
	qsort_r(order, ns->count, sizeof(*order), name_index_cmp, ns->names);
	/* sorted by (name, position): a run of equal names starts with the first given */
	for (size_t i = 1, first = 0; i < ns->count; i++) {
		if (strcmp(ns->names[order[i]], ns->names[order[first]])) {
			first = i;
			continue;
		}
		free(ns->names[order[i]]);
		ns->names[order[i]] = NULL;
	}
	for (size_t i = 0; i < ns->count; i++)
		if (ns->names[i])
			ns->names[kept++] = ns->names[i];
	ns->count = kept;
	free(order);
	return 0;
}

int nodeset_canonical(struct nodeset *ns)
{
	struct nodeset sorted = { 0 };
	char err[256];
	char *folded;
	int ret;

	if (ns->count == 0)
		return 0;
	if (!(folded = nodeset_fold(ns->names, ns->count)))
		return -ENOMEM;
	/* what fold writes parses back; only memory can fail here */
	ret = nodeset_add(&sorted, folded, err, sizeof(err));
	free(folded);
	if (ret) {
		nodeset_free(&sorted);
		return ret == -ENOMEM ? ret : -EPROTO;
	}
	nodeset_free(ns);
	*ns = sorted;
	return 0;
}
