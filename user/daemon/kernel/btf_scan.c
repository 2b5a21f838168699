// SPDX-License-Identifier: BSD-2-Clause
/*
 * btf_scan.c - see btf_scan.h. The layout is the kernel's uapi
 * (linux/btf.h): a header, then type records, each a struct btf_type
 * followed by data whose size its kind and vlen give, then the strings.
 */
#include <errno.h>
#include <linux/btf.h>
#include <stdbool.h>
#include <string.h>

#include "daemon/kernel/btf_scan.h"

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

/* The type with this id (ids start at 1), by walking; NULL when absent or
 * the blob cannot be walked (*bad then set). */
static const struct btf_type *nth_type(const struct walk *w, uint32_t want, bool *bad)
{
	size_t off = 0;

	for (uint32_t id = 1; off + sizeof(struct btf_type) <= w->types_len; id++) {
		const struct btf_type *t = (const void *)(w->types + off);
		long extra = extra_bytes(BTF_INFO_KIND(t->info), BTF_INFO_VLEN(t->info));

		if (extra < 0) {
			*bad = true;
			return NULL;
		}
		if (id == want)
			return t;
		off += sizeof(*t) + (size_t)extra;
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
	const struct btf_header *h = (const void *)data;
	size_t name_len = strlen(name), off = 0;
	const struct btf_type *proto;
	struct walk w;
	bool bad = false;

	if (len < sizeof(*h) || h->magic != BTF_MAGIC || h->hdr_len < sizeof(*h) ||
	    h->hdr_len > len || (size_t)h->type_off + h->type_len > len - h->hdr_len ||
	    (size_t)h->str_off + h->str_len > len - h->hdr_len || ((uintptr_t)data & 3))
		return -EBADMSG;
	w = (struct walk){ .types = data + h->hdr_len + h->type_off, .types_len = h->type_len,
			   .strs = (const char *)data + h->hdr_len + h->str_off,
			   .strs_len = h->str_len };
	for (uint32_t i = 1; off + sizeof(struct btf_type) <= w.types_len; i++) {
		const struct btf_type *t = (const void *)(w.types + off);
		long extra = extra_bytes(BTF_INFO_KIND(t->info), BTF_INFO_VLEN(t->info));

		if (extra < 0)
			return -EBADMSG;
		if (BTF_INFO_KIND(t->info) == BTF_KIND_FUNC &&
		    name_is(&w, t->name_off, name, name_len)) {
			proto = nth_type(&w, t->type, &bad);
			if (!proto || BTF_INFO_KIND(proto->info) != BTF_KIND_FUNC_PROTO)
				return -EBADMSG;
			*id = i;
			*nargs = (int)BTF_INFO_VLEN(proto->info);
			return 0;
		}
		off += sizeof(*t) + (size_t)extra;
	}
	return -ENOENT;
}
