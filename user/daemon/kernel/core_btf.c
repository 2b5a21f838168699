// SPDX-License-Identifier: BSD-2-Clause
/*
 * core_btf.c - see core_btf.h. The kernel's records are read through the
 * index (btf_scan.h), which checked that each lies inside the type
 * section; every id they name is checked here before it is followed.
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "daemon/kernel/btf_scan.h"
#include "daemon/kernel/core_btf.h"

#define MAX_NAMES 256 /* named types in our programs' BTF: ~50 */
#define SLOTS 1024    /* a hash set of them, at most a quarter full */
#define MAX_STRS (16u << 20) /* the copy's names: ~40 KB */

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

static int collect_names(const struct btf_index *local, struct names *out)
{
	memset(out, 0, sizeof(*out));
	for (uint32_t id = 1; id < local->count; id++) {
		const struct btf_type *t = btf_index_type(local, id);
		const char *name = btf_index_name(local, t->name_off);
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

/* ------------------------------------------------------------ the closure */

#define MAX_DEPTH 64 /* types embedded in types: ~10 deep in the kernel's */

struct copy {
	const struct btf_index *src;
	uint32_t *new_id;  /* by kernel id; 0: not copied */
	uint32_t *order;   /* kernel id by new id, from 1 */
	uint32_t n;        /* new ids given */
	size_t types_len;  /* bytes of the copied records */
};

static int copy_type(struct copy *c, uint32_t id, int depth);

/* What the copied type t embeds, copied in turn. */
static int copy_refs(struct copy *c, const struct btf_type *t, int depth)
{
	int err = 0;

	switch (btf_kind(t)) {
	case BTF_KIND_PTR:
		return 0; /* never followed by a relocation: becomes void * */
	case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT: case BTF_KIND_TYPE_TAG:
		return copy_type(c, t->type, depth + 1);
	case BTF_KIND_ARRAY:
		err = copy_type(c, btf_array(t)->type, depth + 1);
		return err ?: copy_type(c, btf_array(t)->index_type, depth + 1);
	case BTF_KIND_STRUCT: case BTF_KIND_UNION:
		for (__u16 i = 0; i < btf_vlen(t) && !err; i++)
			err = copy_type(c, btf_members(t)[i].type, depth + 1);
		return err;
	case BTF_KIND_INT: case BTF_KIND_ENUM: case BTF_KIND_ENUM64: case BTF_KIND_FWD:
	case BTF_KIND_FLOAT:
		return 0;
	default:
		return -EOPNOTSUPP; /* not embedded in a struct (FUNC_PROTO only behind a pointer) */
	}
}

/* Gives kernel type id the next new id (before what it embeds: a type
 * reached again through itself is not copied twice). */
static int copy_type(struct copy *c, uint32_t id, int depth)
{
	const struct btf_type *t = btf_index_type(c->src, id);

	if (id == 0 || (t && c->new_id[id]))
		return 0; /* void, or copied */
	if (!t)
		return -EBADMSG;
	if (depth > MAX_DEPTH)
		return -ELOOP;
	c->new_id[id] = ++c->n;
	c->order[c->n] = id;
	c->types_len += btf_index_record_len(c->src, id);
	return copy_refs(c, t, depth);
}

/* One walk over the kernel's types: each one named in w, with what it embeds. */
static int copy_named(struct copy *c, const struct names *w)
{
	for (uint32_t id = 1; id < c->src->count; id++) {
		const struct btf_type *t = btf_index_type(c->src, id);
		const char *name = btf_index_name(c->src, t->name_off);
		int err;

		if (!root_kind(t) || !name || !name[0] || !wanted(w, name))
			continue;
		if ((err = copy_type(c, id, 0)) < 0)
			return err;
	}
	return 0;
}

/* ------------------------------------------------------------ the raw copy */

struct strtab {
	char *buf;
	size_t len, cap;
};

/* *off becomes where the kernel's string at *off is in out (appended). */
static int put_name(struct strtab *out, const struct btf_index *src, __u32 *off)
{
	const char *name = btf_index_name(src, *off);
	size_t n;
	char *more;

	if (!name)
		return -EBADMSG;
	if (!name[0]) {
		*off = 0;
		return 0;
	}
	n = strlen(name) + 1;
	if (out->len + n > out->cap) {
		size_t cap = out->cap * 2 + n;

		if (cap > MAX_STRS)
			return -E2BIG;
		if (!(more = realloc(out->buf, cap)))
			return -ENOMEM;
		out->buf = more;
		out->cap = cap;
	}
	memcpy(out->buf + out->len, name, n);
	*off = (__u32)out->len;
	out->len += n;
	return 0;
}

/* The copied record t (in the copy's buffer): names into strs, type ids renumbered. */
static int rewrite_type(const struct copy *c, struct btf_type *t, struct strtab *strs)
{
	int err = put_name(strs, c->src, &t->name_off);

	switch (btf_kind(t)) {
	case BTF_KIND_PTR:
		t->type = 0;
		break;
	case BTF_KIND_TYPEDEF: case BTF_KIND_VOLATILE: case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT: case BTF_KIND_TYPE_TAG:
		t->type = c->new_id[t->type];
		break;
	case BTF_KIND_ARRAY:
		btf_array(t)->type = c->new_id[btf_array(t)->type];
		btf_array(t)->index_type = c->new_id[btf_array(t)->index_type];
		break;
	case BTF_KIND_STRUCT: case BTF_KIND_UNION:
		for (__u16 i = 0; i < btf_vlen(t) && !err; i++) {
			btf_members(t)[i].type = c->new_id[btf_members(t)[i].type];
			err = put_name(strs, c->src, &btf_members(t)[i].name_off);
		}
		break;
	case BTF_KIND_ENUM:
		for (__u16 i = 0; i < btf_vlen(t) && !err; i++)
			err = put_name(strs, c->src, &btf_enum(t)[i].name_off);
		break;
	case BTF_KIND_ENUM64:
		for (__u16 i = 0; i < btf_vlen(t) && !err; i++)
			err = put_name(strs, c->src, &btf_enum64(t)[i].name_off);
		break;
	}
	return err;
}

/* The copied types, in new-id order, renumbered, into types[c->types_len]. */
static int write_types(const struct copy *c, uint8_t *types, struct strtab *strs)
{
	size_t at = 0;
	int err = 0;

	for (uint32_t i = 1; i <= c->n && !err; i++) {
		uint32_t n = btf_index_record_len(c->src, c->order[i]);

		memcpy(types + at, btf_index_type(c->src, c->order[i]), n);
		err = rewrite_type(c, (struct btf_type *)(types + at), strs);
		at += n;
	}
	return err;
}

static int write_memfd(struct core_btf *out, const struct btf_header *h, const void *types,
		       const struct strtab *strs, unsigned ntypes)
{
	const struct iovec iov[] = { { (void *)h, sizeof(*h) },
				     { (void *)types, h->type_len },
				     { strs->buf, strs->len } };
	size_t size = sizeof(*h) + h->type_len + strs->len;
	int fd = memfd_create("ctld-core-btf", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (writev(fd, iov, 3) != (ssize_t)size) {
		close(fd);
		return -EIO;
	}
	out->fd = fd;
	snprintf(out->path, sizeof(out->path), "/proc/self/fd/%d", fd);
	out->ntypes = ntypes;
	return 0;
}

/* The closure c as raw BTF in a memfd. */
static int write_copy(struct core_btf *out, const struct copy *c)
{
	struct strtab strs = { .buf = calloc(1, 4096), .len = 1, .cap = 4096 }; /* "" first */
	uint8_t *types = malloc(c->types_len ?: 1);
	struct btf_header h = { .magic = BTF_MAGIC, .version = BTF_VERSION,
				.hdr_len = sizeof(h), .type_len = (__u32)c->types_len,
				.str_off = (__u32)c->types_len };
	int err = !strs.buf || !types ? -ENOMEM : 0;

	err = err ?: write_types(c, types, &strs);
	h.str_len = (__u32)strs.len;
	err = err ?: write_memfd(out, &h, types, &strs, c->n);
	free(types);
	free(strs.buf);
	return err;
}

int core_btf_make(struct core_btf *out, const uint8_t *local_btf, size_t local_len,
		  const struct btf_index *kernel)
{
	struct names *w = malloc(sizeof(*w));
	struct copy c = { .src = kernel, .new_id = calloc(kernel->count, sizeof(uint32_t)),
			  .order = calloc(kernel->count, sizeof(uint32_t)) };
	uint8_t *own = malloc(local_len ?: 1); /* the index wants it 4-aligned */
	struct btf_index local = { 0 };
	int err = !w || !c.new_id || !c.order || !own ? -ENOMEM : 0;

	*out = (struct core_btf){ .fd = -1 };
	if (!err)
		memcpy(own, local_btf, local_len);
	err = err ?: btf_index_build(&local, own, local_len);
	err = err ?: collect_names(&local, w);
	err = err ?: copy_named(&c, w);
	err = err ?: write_copy(out, &c);
	btf_index_free(&local);
	free(own);
	free(c.order);
	free(c.new_id);
	free(w);
	return err;
}

/* ------------------------------------------------------------ the programs' BTF */

/* Section i's header into *sh, checked to lie inside elf[len]. The object
 * is a string in the skeleton, not aligned: headers are copied out. */
static bool section(const uint8_t *elf, size_t len, const Elf64_Ehdr *eh, size_t i,
		    Elf64_Shdr *sh)
{
	if (eh->e_shentsize != sizeof(*sh) || i >= eh->e_shnum || eh->e_shoff > len ||
	    (len - eh->e_shoff) / sizeof(*sh) <= i)
		return false;
	memcpy(sh, elf + eh->e_shoff + i * sizeof(*sh), sizeof(*sh));
	return sh->sh_offset <= len && sh->sh_size <= len - sh->sh_offset;
}

int core_btf_of_object(const void *elf, size_t len, const uint8_t **btf, size_t *btf_len)
{
	const uint8_t *bytes = elf;
	Elf64_Shdr names, sh;
	Elf64_Ehdr eh;

	if (len < sizeof(eh))
		return -EBADMSG;
	memcpy(&eh, elf, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    !section(bytes, len, &eh, eh.e_shstrndx, &names))
		return -EBADMSG;
	for (size_t i = 1; i < eh.e_shnum; i++) {
		if (!section(bytes, len, &eh, i, &sh) || sh.sh_name >= names.sh_size)
			return -EBADMSG;
		if (names.sh_size - sh.sh_name >= sizeof(".BTF") &&
		    memcmp(bytes + names.sh_offset + sh.sh_name, ".BTF", sizeof(".BTF")) == 0) {
			*btf = bytes + sh.sh_offset;
			*btf_len = sh.sh_size;
			return 0;
		}
	}
	return -EBADMSG;
}

void core_btf_close(struct core_btf *c)
{
	if (c->path[0] && c->fd >= 0) /* made: a zeroed one is not fd 0 */
		close(c->fd);
	*c = (struct core_btf){ .fd = -1 };
}
