/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * core_btf.h - a small BTF for libbpf's CO-RE relocations: the kernel types
 * our programs name, copied out of the kernel's BTF with what they embed.
 *
 * Why: for each distinct kernel type the programs read (task_struct, sock,
 * ...), libbpf 1.1 walks all ~130k types of the kernel's BTF looking for
 * candidates of that name: ~1.7 ms each, ~8 ms a start. One walk here
 * finds every name the programs' BTF has, and libbpf, pointed at the copy
 * with bpf_object_open_opts.btf_custom_path, searches a few thousand types.
 *
 * What a CO-RE field relocation needs of the target is the root type, the
 * members along the access path and the size and kind of the last one; a
 * path never goes through a pointer (each hop of BPF_CORE_READ is a
 * relocation of its own, rooted at the pointed-to type). So types are
 * copied through what they embed (members, arrays, typedefs, modifiers)
 * and every pointer becomes a void pointer. Type ids differ from the
 * kernel's: relocations that yield a kernel type id (bpf_core_type_id_kernel)
 * would be wrong against it, and bpf/ctld.bpf.c uses none. libbpf still
 * uses the full kernel BTF for the tp_btf/fexit attach targets.
 */
#ifndef CTLD_CORE_BTF_H
#define CTLD_CORE_BTF_H

#include <stddef.h>
#include <stdint.h>

struct btf_index;

struct core_btf {
	int fd;          /* a memfd holding the raw copy; -1 when none */
	char path[40];   /* /proc/self/fd/N: for btf_custom_path */
	unsigned ntypes; /* in the copy (for the log) */
};

/* The copy of what kernel (the index of its blob) has of the types named
 * in local_btf[local_len] (the programs' raw BTF, their object's .BTF),
 * written to a memfd: 0 or -errno (nothing is left open then; -EBADMSG:
 * a blob that cannot be walked or a reference past its types). Touches
 * nothing but its arguments: the start-up thread calls it. */
int core_btf_make(struct core_btf *c, const uint8_t *local_btf, size_t local_len,
		  const struct btf_index *kernel);
/* The .BTF section of the ELF object elf[len] (the programs' object the
 * skeleton embeds), found without libbpf or libelf (the start-up thread
 * calls this too): 0 or -EBADMSG (not a 64-bit ELF with a .BTF inside). */
int core_btf_of_object(const void *elf, size_t len, const uint8_t **btf, size_t *btf_len);
void core_btf_close(struct core_btf *c);

#endif
