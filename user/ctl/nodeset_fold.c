// SPDX-License-Identifier: BSD-2-Clause
/*
 * nodeset_fold.c - folding node names into a node set the way
 * ClusterShell 1.9's `nodeset -f` does, so that ctl's -b headers and
 * summary read exactly like clush's.
 *
 * A name splits into a pattern and its digit runs ("r1n02" is "r%sn%s"
 * with 1 and 02). Names of one pattern fold into vectors of range sets:
 * when only one dimension varies, into one vector (ClusterShell's
 * univariate folding); otherwise ClusterShell's multivariate merge is
 * followed step by step (sort the vectors, merge two that differ in one
 * dimension, an O(n) pass first, then full passes), because its output
 * depends on that order. Patterns are printed in byte order of the
 * pattern with "%s" in it, as Python sorts them. Elements are the digit
 * strings as written, ordered by (length, text); a run of consecutive
 * numbers folds into "a-b" when its padding agrees (RangeSet._slices_padding).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/nodeset.h"

#define MAX_DIMS 16 /* a name with more digit runs is kept whole */

/* A name split: pattern "node%s" and its digit strings. */
struct split {
	char pattern[NODESET_NAME_MAX * 2 + 1];
	char digits[NODESET_NAME_MAX + MAX_DIMS];
	const char *dig[MAX_DIMS];
	int ndims;
};

/* A set of digit strings, sorted, each once. */
struct rset {
	const char **v;
	size_t n;
};

struct vec {
	struct rset **rg; /* ndims of them */
	size_t order;	 /* position before a sort: keeps it stable */
};

/* Everything one fold allocates, freed together at the end. */
struct fold {
	void **mem;
	size_t nmem, capmem;
	bool failed;
	char *out;
	size_t len, cap;
};

static void *fold_alloc(struct fold *f, size_t size)
{
	void *p;

	if (f->failed)
		return NULL;
	if (f->nmem == f->capmem) {
		size_t cap = f->capmem ? f->capmem * 2 : 64;
		void **grown = realloc(f->mem, cap * sizeof(*grown));

		if (!grown)
			goto oom;
		f->mem = grown;
		f->capmem = cap;
	}
	if (!(p = calloc(1, size ? size : 1)))
		goto oom;
	f->mem[f->nmem++] = p;
	return p;
oom:
	f->failed = true;
	return NULL;
}

static void put(struct fold *f, const char *s, size_t len)
{
	if (f->failed)
		return;
	if (f->len + len + 1 > f->cap) {
		size_t cap = f->cap ? f->cap : 256;
		char *grown;

		while (cap < f->len + len + 1)
			cap *= 2;
		if (!(grown = realloc(f->out, cap))) {
			f->failed = true;
			return;
		}
		f->out = grown;
		f->cap = cap;
	}
	memcpy(f->out + f->len, s, len);
	f->len += len;
	f->out[f->len] = '\0';
}

/* (\D*)(\d*) over the name, as ClusterShell scans a single node. IPv6
 * entries and names with too many digit runs stay whole. */
static void split_name(const char *name, struct split *s)
{
	size_t pl = 0, dl = 0;

	s->ndims = 0;
	if (name[0] != '[') {
		for (const char *p = name; *p;) {
			size_t run = strspn(p, "0123456789");

			if (!run) {
				s->pattern[pl++] = *p++;
				continue;
			}
			if (s->ndims == MAX_DIMS)
				goto whole;
			s->dig[s->ndims++] = s->digits + dl;
			memcpy(s->digits + dl, p, run);
			dl += run;
			s->digits[dl++] = '\0';
			memcpy(s->pattern + pl, "%s", 2);
			pl += 2;
			p += run;
		}
		s->pattern[pl] = '\0';
		return;
	}
whole:
	s->ndims = 0;
	snprintf(s->pattern, sizeof(s->pattern), "%s", name);
}

/* ------------------------------------------------------------ range sets */

static int elem_cmp(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la != lb)
		return la < lb ? -1 : 1;
	return strcmp(a, b);
}

static int elem_cmp_p(const void *a, const void *b)
{
	return elem_cmp(*(const char *const *)a, *(const char *const *)b);
}

static struct rset *rset_of(struct fold *f, const char **v, size_t n)
{
	struct rset *r = fold_alloc(f, sizeof(*r));
	const char **copy = fold_alloc(f, n * sizeof(*copy));

	if (!r || !copy)
		return NULL;
	memcpy(copy, v, n * sizeof(*copy));
	qsort(copy, n, sizeof(*copy), elem_cmp_p);
	r->n = 0;
	for (size_t i = 0; i < n; i++)
		if (!r->n || elem_cmp(copy[r->n - 1], copy[i]))
			copy[r->n++] = copy[i];
	r->v = copy;
	return r;
}

static bool rset_equal(const struct rset *a, const struct rset *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

/* How many elements a and b share. */
static size_t rset_common(const struct rset *a, const struct rset *b)
{
	size_t i = 0, j = 0, n = 0;

	while (i < a->n && j < b->n) {
		int c = elem_cmp(a->v[i], b->v[j]);

		n += c == 0;
		i += c <= 0;
		j += c >= 0;
	}
	return n;
}

static struct rset *rset_union(struct fold *f, const struct rset *a, const struct rset *b)
{
	const char **v = fold_alloc(f, (a->n + b->n) * sizeof(*v));
	struct rset *r;

	if (!v)
		return NULL;
	memcpy(v, a->v, a->n * sizeof(*v));
	memcpy(v + a->n, b->v, b->n * sizeof(*v));
	r = rset_of(f, v, a->n + b->n);
	return r;
}

/* RangeSet.__str__ with autostep disabled: runs of consecutive numbers of
 * agreeing padding become "a-b". */
static void put_rset(struct fold *f, const struct rset *r)
{
	char buf[2 * 24 + 2];

	for (size_t i = 0; i < r->n;) {
		const char *first = r->v[i];
		size_t width = strlen(first), j = i;
		bool padded = width > 1 && first[0] == '0';
		unsigned long long start = strtoull(first, NULL, 10), last = start;

		while (j + 1 < r->n) {
			const char *next = r->v[j + 1];
			size_t nlen = strlen(next);
			bool npadded = nlen > 1 && next[0] == '0';

			if ((padded ? nlen != width : npadded) ||
			    strtoull(next, NULL, 10) != last + 1)
				break;
			last++;
			j++;
		}
		if (j == i)
			snprintf(buf, sizeof(buf), "%s", first);
		else
			snprintf(buf, sizeof(buf), "%0*llu-%0*llu", padded ? (int)width : 0, start,
				 padded ? (int)width : 0, last);
		if (i)
			put(f, ",", 1);
		put(f, buf, strlen(buf));
		i = j + 1;
	}
}

/* ------------------------------------------------------------ vectors */

static void put_vec(struct fold *f, const char *pattern, const struct vec *v)
{
	int dim = 0;

	if (f->len)
		put(f, ",", 1);
	for (const char *p = pattern; *p; p++) {
		if (p[0] != '%' || p[1] != 's') {
			put(f, p, 1);
			continue;
		}
		const struct rset *r = v->rg[dim++];

		if (r->n > 1)
			put(f, "[", 1);
		put_rset(f, r);
		if (r->n > 1)
			put(f, "]", 1);
		p++;
	}
}

static size_t vec_size(const struct vec *v, int ndims)
{
	size_t n = 1;

	for (int d = 0; d < ndims; d++)
		n *= v->rg[d]->n;
	return n;
}

/* RangeSetND._sort: larger vectors first, then per dimension larger sets,
 * lower first element, lower last element (as strings); stable. */
static int vec_cmp(const void *pa, const void *pb, void *pdims)
{
	const struct vec *a = pa, *b = pb;
	int ndims = *(const int *)pdims;
	size_t sa = vec_size(a, ndims), sb = vec_size(b, ndims);
	int c;

	if (sa != sb)
		return sa > sb ? -1 : 1;
	for (int d = 0; d < ndims; d++) {
		const struct rset *x = a->rg[d], *y = b->rg[d];

		if (x->n != y->n)
			return x->n > y->n ? -1 : 1;
		if ((c = strcmp(x->v[0], y->v[0])) || (c = strcmp(x->v[x->n - 1], y->v[y->n - 1])))
			return c;
	}
	return a->order < b->order ? -1 : a->order > b->order;
}

/* Merges b into a when they differ in at most one dimension (disjoint
 * there, or one holding the other); false otherwise. */
static bool try_merge(struct fold *f, struct vec *a, const struct vec *b, int ndims)
{
	struct rset *merged[MAX_DIMS];
	int diff = 0;

	for (int d = 0; d < ndims; d++) {
		struct rset *x = a->rg[d], *y = b->rg[d];
		size_t common;

		merged[d] = x;
		if (rset_equal(x, y))
			continue;
		if (++diff > 1)
			return false;
		common = rset_common(x, y);
		if (common == 0)
			merged[d] = rset_union(f, x, y);
		else if (common == y->n || common == x->n)
			merged[d] = common == x->n ? y : x; /* the larger one */
		else
			return false;
		if (!merged[d])
			return false;
	}
	memcpy(a->rg, merged, (size_t)ndims * sizeof(merged[0]));
	return true;
}

/* RangeSetND._fold_multivariate_merge, pass for pass. */
static size_t merge_vectors(struct fold *f, struct vec *v, size_t n, int ndims)
{
	bool full = false, changed = true;

	while (changed && !f->failed) {
		changed = false;
		for (size_t i = 0; i < n; i++)
			v[i].order = i;
		qsort_r(v, n, sizeof(*v), vec_cmp, &ndims);
		for (size_t i1 = 0; i1 + 1 < n; i1++) {
			for (size_t i2 = i1 + 1; i2 < n;) {
				if (try_merge(f, &v[i1], &v[i2], ndims)) {
					changed = true;
					memmove(&v[i2], &v[i2 + 1], (n - i2 - 1) * sizeof(*v));
					n--;
					continue;
				}
				if (!full)
					break;
				i2++;
			}
		}
		if (!changed && !full)
			changed = full = true;
	}
	return n;
}

/* The names of one pattern, split[0..n), folded and printed. */
static void fold_pattern(struct fold *f, struct split **s, size_t n)
{
	int ndims = s[0]->ndims, varying = 0, vardim = 0;
	const char **elems = fold_alloc(f, n * sizeof(*elems));
	struct vec *v = fold_alloc(f, n * sizeof(*v));
	size_t nv;

	if (!elems || !v)
		return;
	if (ndims == 0) {
		put_vec(f, s[0]->pattern, &(struct vec){ 0 });
		return;
	}
	for (int d = 0; d < ndims; d++) {
		for (size_t i = 1; i < n; i++)
			if (strcmp(s[i]->dig[d], s[0]->dig[d])) {
				varying++;
				vardim = d;
				break;
			}
	}
	for (size_t i = 0; i < n; i++) {
		v[i].rg = fold_alloc(f, (size_t)ndims * sizeof(*v[i].rg));
		for (int d = 0; d < ndims && v[i].rg; d++)
			v[i].rg[d] = rset_of(f, &s[i]->dig[d], 1);
		if (f->failed)
			return;
	}
	if (varying <= 1) {
		for (size_t i = 0; i < n; i++)
			elems[i] = s[i]->dig[vardim];
		v[0].rg[vardim] = rset_of(f, elems, n);
		nv = 1;
	} else {
		nv = merge_vectors(f, v, n, ndims);
	}
	for (size_t i = 0; i < nv && !f->failed; i++)
		put_vec(f, s[0]->pattern, &v[i]);
}

static int split_cmp(const void *a, const void *b)
{
	const struct split *x = *(const struct split *const *)a, *y = *(const struct split *const *)b;
	int c = strcmp(x->pattern, y->pattern);

	if (c)
		return c;
	return x->ndims - y->ndims;
}

char *nodeset_fold(char *const *names, size_t count)
{
	struct fold f = { 0 };
	struct split **s = fold_alloc(&f, count * sizeof(*s));

	for (size_t i = 0; s && i < count; i++) {
		if (!(s[i] = fold_alloc(&f, sizeof(**s))))
			break;
		split_name(names[i], s[i]);
	}
	if (s && !f.failed)
		qsort(s, count, sizeof(*s), split_cmp);
	for (size_t i = 0; s && i < count && !f.failed;) {
		size_t j = i + 1;

		while (j < count && !split_cmp(&s[i], &s[j]))
			j++;
		fold_pattern(&f, s + i, j - i);
		i = j;
	}
	if (!f.failed && !f.out)
		put(&f, "", 0);
	for (size_t i = 0; i < f.nmem; i++)
		free(f.mem[i]);
	free(f.mem);
	if (f.failed) {
		free(f.out);
		return NULL;
	}
	return f.out;
}
