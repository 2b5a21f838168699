// SPDX-License-Identifier: BSD-2-Clause
/*
 * core_btf.c - see core_btf.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "daemon/kernel/core_btf.h"

#define MAX_NAMES 256 /* named types in our programs' BTF: ~50 */
#define SLOTS 1024    /* a hash set of them, at most a quarter full */

/* The names wanted, as a hash set of their essential parts: this is asked
 * about ~40,000 kernel names, most of which it answers by one hash. */
struct names {
	const char *name[SLOTS]; /* NULL: empty slot */
	size_t len[SLOTS];
	size_t n;
};

/* libbpf's rule: a name's flavour suffix ("___...") does not count. */
static size_t essential_len(const char *name)
{
	size_t i = 0;

	for (; name[i]; i++)
		if (name[i] == '_' && name[i + 1] == '_' && name[i + 2] == '_')
			break;
	return i;
}

static size_t slot_of(const char *name, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 16777619u;
	return h & (SLOTS - 1);
}

/* The slot holding name[0..len), or the empty one where it would go. */
static size_t find_slot(const struct names *w, const char *name, size_t len)
{
	size_t i = slot_of(name, len);

	while (w->name[i] && (w->len[i] != len || memcmp(w->name[i], name, len) != 0))
		i = (i + 1) & (SLOTS - 1);
	return i;
}

static bool wanted(const struct names *w, const char *name)
{
	return w->name[find_slot(w, name, essential_len(name))] != NULL;
}

/* The kinds a CO-RE relocation is rooted at, in either BTF. */
static bool root_kind(const struct btf_type *t)
{
	return btf_is_composite(t) || btf_is_enum(t) || btf_is_enum64(t) || btf_is_fwd(t) ||
	       btf_is_typedef(t);
}

static int collect_names(const struct btf *local, struct names *out)
{
	__u32 n = btf__type_cnt(local);

	memset(out, 0, sizeof(*out));
	for (__u32 id = 1; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(local, id);
		const char *name = btf__name_by_offset(local, t->name_off);
		size_t len, i;

		if (!root_kind(t) || !name || !name[0])
			continue;
		len = essential_len(name);
		i = find_slot(out, name, len);
		if (out->name[i])
			continue; /* a flavour of one we have */
		if (out->n == MAX_NAMES)
			return -E2BIG;
		out->name[i] = name;
		out->len[i] = len;
		out->n++;
	}
	return 0;
}

struct copy {
	const struct btf *src;
	struct btf *dst;
	__u32 *new_id; /* by source id; 0: not copied yet */
};

static int copy_type(struct copy *c, __u32 id);

/* Points *ref (inside the copy of type new_id) at the copy of what it named. */
static int copy_ref(struct copy *c, __u32 new_id, size_t ref_off)
{
	struct btf_type *t = (struct btf_type *)btf__type_by_id(c->dst, new_id);
	__u32 *ref = (__u32 *)((char *)t + ref_off);
	int id = copy_type(c, *ref);

	if (id < 0)
		return id;
	/* the copy may have moved: look the type up again */
	t = (struct btf_type *)btf__type_by_id(c->dst, new_id);
	*(__u32 *)((char *)t + ref_off) = (__u32)id;
	return 0;
}

/* The references of the copied type new_id, copied in turn. */
static int copy_refs(struct copy *c, __u32 new_id)
{
	const struct btf_type *t = btf__type_by_id(c->dst, new_id);
	__u16 vlen = btf_vlen(t); /* t moves as the copy grows: read it first */
	int err = 0;

	switch (btf_kind(t)) {
	case BTF_KIND_PTR:
		((struct btf_type *)t)->type = 0; /* never followed by a relocation */
		return 0;
	case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT: case BTF_KIND_TYPE_TAG:
		return copy_ref(c, new_id, offsetof(struct btf_type, type));
	case BTF_KIND_ARRAY:
		err = copy_ref(c, new_id, sizeof(*t) + offsetof(struct btf_array, type));
		return err ? err : copy_ref(c, new_id, sizeof(*t) + offsetof(struct btf_array, index_type));
	case BTF_KIND_STRUCT: case BTF_KIND_UNION:
		for (__u16 i = 0; i < vlen && !err; i++)
			err = copy_ref(c, new_id, sizeof(*t) + i * sizeof(struct btf_member) +
							  offsetof(struct btf_member, type));
		return err;
	case BTF_KIND_INT: case BTF_KIND_ENUM: case BTF_KIND_ENUM64: case BTF_KIND_FWD:
	case BTF_KIND_FLOAT:
		return 0;
	default:
		return -EOPNOTSUPP; /* not embedded in a struct (FUNC_PROTO only behind a pointer) */
	}
}

static int copy_type(struct copy *c, __u32 id)
{
	int new_id;

	if (id == 0 || c->new_id[id])
		return (int)c->new_id[id];
	new_id = btf__add_type(c->dst, c->src, btf__type_by_id(c->src, id));
	if (new_id < 0)
		return new_id;
	c->new_id[id] = (__u32)new_id;
	return copy_refs(c, (__u32)new_id) ?: new_id;
}

/* One walk over the kernel's types: each one named in w, with what it embeds. */
static int copy_named(struct copy *c, const struct names *w)
{
	__u32 n = btf__type_cnt(c->src);

	for (__u32 id = 1; id < n; id++) {
		const struct btf_type *t = btf__type_by_id(c->src, id);
		int err;

		if (!root_kind(t) || !t->name_off || !wanted(w, btf__name_by_offset(c->src, t->name_off)))
			continue;
		if ((err = copy_type(c, id)) < 0)
			return err;
	}
	return 0;
}

static int write_memfd(struct core_btf *out, const struct btf *btf)
{
	__u32 size;
	const void *raw = btf__raw_data(btf, &size);
	int fd;

	if (!raw)
		return -ENOMEM;
	fd = memfd_create("ctld-core-btf", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, raw, size) != (ssize_t)size) {
		close(fd);
		return -EIO;
	}
	out->fd = fd;
	snprintf(out->path, sizeof(out->path), "/proc/self/fd/%d", fd);
	out->ntypes = btf__type_cnt(btf) - 1;
	return 0;
}

int core_btf_make(struct core_btf *out, const struct btf *local, const struct btf *kernel)
{
	struct names *w = malloc(sizeof(*w));
	struct copy c = { .src = kernel, .dst = btf__new_empty(),
			  .new_id = calloc(btf__type_cnt(kernel), sizeof(__u32)) };
	int err = !w || !c.dst || !c.new_id ? -ENOMEM : 0;

	*out = (struct core_btf){ .fd = -1 };
	err = err ?: collect_names(local, w);
	err = err ?: copy_named(&c, w);
	err = err ?: write_memfd(out, c.dst);
	btf__free(c.dst);
	free(c.new_id);
	free(w);
	return err;
}

void core_btf_close(struct core_btf *c)
{
	if (c->path[0] && c->fd >= 0) /* made: a zeroed one is not fd 0 */
		close(c->fd);
	*c = (struct core_btf){ .fd = -1 };
}
