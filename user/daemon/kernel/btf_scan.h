/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * btf_scan.h - a raw BTF blob (the kernel's /sys/kernel/btf/vmlinux, as
 * kernel_btf.h fetched it) read straight, without libbpf: one function's
 * BTF id and argument count, and an index of every type by id.
 *
 * Why not libbpf's btf__new(): that copies the 5.5 MB blob and builds a
 * full index with string deduplication (~9 ms and ~10 MiB), and all the
 * daemon needs of the kernel's BTF is a few lookups by name (libbpf's
 * tp_btf/fexit attach targets, the feature probe, sched_process_exit's
 * prototype) and the few hundred types core_btf.c copies. An offset per
 * type, found in one pass over the type section, gives both in ~1 ms.
 *
 * The blob is the kernel's, but it is read as untrusted input: every
 * offset is checked against the section it points into before use.
 */
#ifndef CTLD_BTF_SCAN_H
#define CTLD_BTF_SCAN_H

#include <stddef.h>
#include <stdint.h>

struct btf_type;

/* In data[len] (a BTF blob): the FUNC named name, its type id in *id and
 * its FUNC_PROTO's parameter count in *nargs. 0, -ENOENT (no such FUNC) or
 * -EBADMSG (not BTF this code can walk: the caller falls back to libbpf).
 * A walk, no allocation: for the probe, before the index is built. */
int btf_scan_func(const uint8_t *data, size_t len, const char *name, uint32_t *id, int *nargs);

/* Every type of a blob by id. Points into the blob: valid while it is. */
struct btf_index {
	const uint8_t *types; /* the type section */
	const char *strs;     /* the string section, NUL first and last */
	uint32_t strs_len;
	uint32_t *off;        /* off[id]: where type id starts in types; off[count]: the end */
	uint32_t count;       /* ids are 1..count-1 (0 is void), as btf__type_cnt() */
};

/* Indexes data[len]: 0, -EBADMSG (not BTF this code can walk: a kind it
 * does not know, a record past its section) or -ENOMEM; *x is empty then. */
int btf_index_build(struct btf_index *x, const uint8_t *data, size_t len);
/* Lets go of the index (not of the blob). Safe on an empty one, and twice. */
void btf_index_free(struct btf_index *x);
/* Type id, or NULL for void (0) and ids past the last. */
const struct btf_type *btf_index_type(const struct btf_index *x, uint32_t id);
/* Bytes of type id's record (struct btf_type and what follows it); 0 for none. */
uint32_t btf_index_record_len(const struct btf_index *x, uint32_t id);
/* The string at off, or NULL when off is past the string section. */
const char *btf_index_name(const struct btf_index *x, uint32_t off);
/* Type id with typedefs, modifiers (const, volatile, ...) and variables
 * skipped, as libbpf's btf__resolve_type(); NULL for void, a bad id or a
 * chain too long. */
const struct btf_type *btf_index_resolve(const struct btf_index *x, uint32_t id);
/* The first type named name of this kind (as libbpf's
 * btf__find_by_name_kind(): the lowest id), or -ENOENT. */
int btf_index_find(const struct btf_index *x, const char *name, unsigned kind);

#endif
