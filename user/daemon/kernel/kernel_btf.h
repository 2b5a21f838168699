/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kernel_btf.h - the running kernel's BTF (/sys/kernel/btf/vmlinux), fetched
 * once per start and shared by the feature probe (btf_scan.h), the small
 * CO-RE copy (core_btf.h) and libbpf's load of the programs.
 *
 * Why: sysfs hands that file out 4 KiB per read() (~1,350 reads for 5.5 MB)
 * into fresh memory that faults page by page, ~10 ms on the machines
 * measured, and it was read twice per start: by the probe and by libbpf
 * 1.1's btf__load_vmlinux_btf() inside the skeleton's load. Here it is
 * mapped (kernels >= 6.16 allow mmap of it: no copy at all), else copied in
 * one BPF_OBJ_GET_INFO_BY_FD call (5.11+), else read().
 *
 * Its index (btf_scan.h: an offset per type, ~1.5 ms) is built in a
 * thread as soon as the blob is here, beside the rest of the start (the
 * daemon's set-up, the feature probe); then the same thread hands it to
 * the opener's kernel_btf_ops (bpf_setup.c makes the CO-RE copy there).
 * Its first user waits for both. The thread touches nothing but the blob,
 * the index and what the ops were given.
 *
 * While a blob is held, libbpf's btf__load_vmlinux_btf() comes here (the
 * daemon links with -Wl,--wrap; see kernel_btf.c): with placeholders on,
 * it gets a placeholder whose lookups by name the index answers, else a
 * full btf__new() parse of the blob (~9 ms).
 */
#ifndef CTLD_KERNEL_BTF_H
#define CTLD_KERNEL_BTF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/kernel/btf_scan.h"

/* What to do with the index once built, in the indexer thread: so it
 * must not log nor touch anything but ctx and the index (valid until
 * kernel_btf_close()). Not called when the index cannot be built. */
struct kernel_btf_ops {
	void (*indexed)(const struct btf_index *index, void *ctx);
	void *ctx;
};

struct kernel_btf {
	const uint8_t *data; /* the raw blob (struct btf_header first); NULL when none */
	size_t len;
	bool mapped;         /* munmap, not free */
	const char *how;     /* "mmap", "bpf_obj_get_info" or "read": for the log */
	pthread_t indexer;   /* building index, then calling ops */
	struct kernel_btf_ops ops;
	bool indexing;       /* indexer not joined yet */
	struct btf_index index;
	int index_err;       /* 0: index built */
	double index_ms;     /* what building it took (for the log) */
	bool placeholders;   /* libbpf gets placeholders (kernel_btf_use_placeholders) */
	/* for the log: what libbpf's btf__load_vmlinux_btf() calls got */
	unsigned handed_placeholders, handed_parses;
	unsigned lookups;    /* libbpf's lookups on a placeholder the index answered */
};

/* Fetches the blob into *k, starts its index (then ops, if any) and holds
 * it for libbpf: 0 or -errno (then *k is empty, ops are not called and
 * libbpf reads the file itself). One at a time; *k must stay where it is
 * until kernel_btf_close(). */
int kernel_btf_open(struct kernel_btf *k, const struct kernel_btf_ops *ops);
/* The index started by kernel_btf_open(), waited for (and the ops given
 * it); NULL when none is held or it could not be built. Valid until
 * kernel_btf_close(). */
const struct btf_index *kernel_btf_index(struct kernel_btf *k);
/* Whether libbpf's next btf__load_vmlinux_btf() calls get placeholders
 * (on only with an index; a caller turns it on only where libbpf needs
 * the kernel's BTF for nothing but attach targets: CO-RE against a
 * btf_custom_path, no ksym externs). Off by default: full parses. */
void kernel_btf_use_placeholders(struct kernel_btf *k, bool on);
/* Waits for the index, lets go of it and of the blob; libbpf reads the
 * file itself again. Safe twice. */
void kernel_btf_close(struct kernel_btf *k);

#endif
