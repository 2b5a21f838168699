// SPDX-License-Identifier: BSD-2-Clause
/*
 * btf_scan.c - see btf_scan.h. The layout is the kernel's uapi
 * (linux/btf.h): a header, then type records, each a struct btf_type
 * followed by data whose size its kind and vlen give, then the strings.
 */
#include <errno.h>
#include <linux/btf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/kernel/btf_scan.h"

#define MIN_RECORD sizeof(struct btf_type) /* the smallest type record */

/* Bytes that follow a type record of this kind, or -1 for a kind we do
 * not know (a newer kernel: the caller falls back to libbpf). */
static long extra_bytes(unsigned kind, unsigned vlen)
{
	switch (kind) {
	case BTF_KIND_PTR: case BTF_KIND_FWD: case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST: case BTF_KIND_RESTRICT: case BTF_KIND_FUNC: case BTF_KIND_FLOAT:
	case 18: /* BTF_KIND_TYPE_TAG */
		return 0;
	case BTF_KIND_INT: case BTF_KIND_VAR: case 17: /* BTF_KIND_DECL_TAG */
		return 4;
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_DATASEC:
	case 19: /* BTF_KIND_ENUM64: name, lo32, hi32 */
		return (long)vlen * 12;
	case BTF_KIND_ENUM: case BTF_KIND_FUNC_PROTO:
		return (long)vlen * 8;
	default:
		return -1;
	}
}

struct walk {
	const uint8_t *types;
	size_t types_len;
	const char *strs;
	size_t strs_len;
};

/* The sections of data[len], checked to lie inside it: 0 or -EBADMSG. */
static int find_sections(const uint8_t *data, size_t len, struct walk *w)
{
	const struct btf_header *h = (const void *)data;

	if (len < sizeof(*h) || ((uintptr_t)data & 3) || h->magic != BTF_MAGIC ||
	    h->hdr_len < sizeof(*h) || h->hdr_len > len ||
	    (size_t)h->type_off + h->type_len > len - h->hdr_len ||
	    (size_t)h->str_off + h->str_len > len - h->hdr_len || ((h->hdr_len + h->type_off) & 3))
		return -EBADMSG;
	*w = (struct walk){ .types = data + h->hdr_len + h->type_off, .types_len = h->type_len,
			    .strs = (const char *)data + h->hdr_len + h->str_off,
			    .strs_len = h->str_len };
	return 0;
}

/* Bytes of the record at off, or 0 when it is unknown or does not fit. */
static size_t record_len(const struct walk *w, size_t off)
{
	const struct btf_type *t = (const void *)(w->types + off);
	long extra;

	if (w->types_len - off < MIN_RECORD)
		return 0;
	extra = extra_bytes(BTF_INFO_KIND(t->info), BTF_INFO_VLEN(t->info));
	if (extra < 0 || (size_t)extra > w->types_len - off - MIN_RECORD)
		return 0;
	return MIN_RECORD + (size_t)extra;
}

/* The type with this id (ids start at 1), by walking; NULL when absent or
 * the blob cannot be walked. */
static const struct btf_type *nth_type(const struct walk *w, uint32_t want)
{
	size_t off = 0, n;

	for (uint32_t id = 1; off < w->types_len; id++, off += n) {
		if (!(n = record_len(w, off)))
			return NULL;
		if (id == want)
			return (const void *)(w->types + off);
	}
	return NULL;
}

static bool name_is(const struct walk *w, uint32_t name_off, const char *name, size_t name_len)
{
	return name_off < w->strs_len && w->strs_len - name_off > name_len &&
	       memcmp(w->strs + name_off, name, name_len + 1) == 0;
}

int btf_scan_func(const uint8_t *data, size_t len, const char *name, uint32_t *id, int *nargs)
{
	size_t name_len = strlen(name), off = 0, n;
	const struct btf_type *proto;
	struct walk w;

	if (find_sections(data, len, &w))
		return -EBADMSG;
	for (uint32_t i = 1; off < w.types_len; i++, off += n) {
		const struct btf_type *t = (const void *)(w.types + off);

		if (!(n = record_len(&w, off)))
			return -EBADMSG;
		if (BTF_INFO_KIND(t->info) == BTF_KIND_FUNC &&
		    name_is(&w, t->name_off, name, name_len)) {
			proto = nth_type(&w, t->type);
			if (!proto || BTF_INFO_KIND(proto->info) != BTF_KIND_FUNC_PROTO)
				return -EBADMSG;
			*id = i;
			*nargs = (int)BTF_INFO_VLEN(proto->info);
			return 0;
		}
	}
	return -ENOENT;
}

/* ------------------------------------------------------------ the index */

int btf_index_build(struct btf_index *x, const uint8_t *data, size_t len)
{
	size_t off = 0, n;
	uint32_t id = 1;
	struct walk w;

	*x = (struct btf_index){ 0 };
	if (find_sections(data, len, &w) || w.strs_len == 0 || w.strs[0] ||
	    w.strs[w.strs_len - 1])
		return -EBADMSG; /* so that every offset inside is a terminated string */
	/* at most one type per smallest record, plus void and the end */
	x->off = malloc((w.types_len / MIN_RECORD + 2) * sizeof(*x->off));
	if (!x->off)
		return -ENOMEM;
	for (; off < w.types_len; id++, off += n) {
		if (!(n = record_len(&w, off))) {
			btf_index_free(x);
			return -EBADMSG;
		}
		x->off[id] = (uint32_t)off;
	}
	x->off[0] = 0;
	x->off[id] = (uint32_t)off;
	x->types = w.types;
	x->strs = w.strs;
	x->strs_len = (uint32_t)w.strs_len;
	x->count = id;
	return 0;
}

void btf_index_free(struct btf_index *x)
{
	free(x->off);
	*x = (struct btf_index){ 0 };
}

const struct btf_type *btf_index_type(const struct btf_index *x, uint32_t id)
{
	return id == 0 || id >= x->count ? NULL : (const void *)(x->types + x->off[id]);
}

uint32_t btf_index_record_len(const struct btf_index *x, uint32_t id)
{
	return id == 0 || id >= x->count ? 0 : x->off[id + 1] - x->off[id];
}

const struct btf_type *btf_index_resolve(const struct btf_index *x, uint32_t id)
{
	const struct btf_type *t = btf_index_type(x, id);

	for (int hops = 0; t && hops < 32; hops++) {
		switch (BTF_INFO_KIND(t->info)) {
		case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
		case BTF_KIND_RESTRICT: case 18: /* BTF_KIND_TYPE_TAG */ case BTF_KIND_VAR:
			t = btf_index_type(x, t->type);
			break;
		default:
			return t;
		}
	}
	return NULL;
}

const char *btf_index_name(const struct btf_index *x, uint32_t off)
{
	return off < x->strs_len ? x->strs + off : NULL;
}

int btf_index_find(const struct btf_index *x, const char *name, unsigned kind)
{
	for (uint32_t id = 1; id < x->count; id++) {
		const struct btf_type *t = (const void *)(x->types + x->off[id]);
		const char *s;

		if (BTF_INFO_KIND(t->info) == kind && (s = btf_index_name(x, t->name_off)) &&
		    strcmp(s, name) == 0)
			return (int)id;
	}
	return -ENOENT;
}
