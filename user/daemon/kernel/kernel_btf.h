/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * kernel_btf.h - the running kernel's BTF (/sys/kernel/btf/vmlinux), fetched
 * once per start and shared by the feature probe (btf_scan.h) and libbpf's
 * load of the programs.
 *
 * Why: sysfs hands that file out 4 KiB per read() (~1,350 reads for 5.5 MB)
 * into fresh memory that faults page by page, ~10 ms on the machines
 * measured, and it was read twice per start: by the probe and by libbpf
 * 1.1's btf__load_vmlinux_btf() inside the skeleton's load. Here it is
 * mapped (kernels >= 6.16 allow mmap of it: no copy at all), else copied in
 * one BPF_OBJ_GET_INFO_BY_FD call (5.11+), else read(). While a blob is
 * held, libbpf's btf__load_vmlinux_btf() parses it instead of the file (the
 * daemon links with -Wl,--wrap=btf__load_vmlinux_btf; see kernel_btf.c).
 *
 * The first of those parses (btf__new: a 5.5 MB copy and an index of every
 * type, ~7 ms) starts in a thread as soon as the blob is here, so it runs
 * while the daemon's start goes on (the rest of its set-up, the feature
 * probe, the skeleton's open); libbpf's first call waits for it. The
 * thread touches nothing but the blob and its result.
 */
#ifndef CTLD_KERNEL_BTF_H
#define CTLD_KERNEL_BTF_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct btf;

struct kernel_btf {
	const uint8_t *data; /* the raw blob (struct btf_header first); NULL when none */
	size_t len;
	bool mapped;         /* munmap, not free */
	const char *how;     /* "mmap", "bpf_obj_get_info" or "read": for the log */
	pthread_t parser;    /* parsing it ahead for libbpf's first call */
	bool parsing;        /* parser not joined yet */
	struct btf *parsed;  /* its result until libbpf takes it (NULL: failed) */
	double parse_ms;     /* what the parse took (for the log) */
	unsigned handed;     /* parses libbpf got from it (for the log) */
};

/* Fetches the blob into *k, starts its parse and holds it for libbpf: 0
 * or -errno (then *k is empty and libbpf reads the file itself). One at a
 * time; *k must stay where it is until kernel_btf_close(). */
int kernel_btf_open(struct kernel_btf *k);
/* The parse started by kernel_btf_open(), waited for: valid until libbpf's
 * first btf__load_vmlinux_btf() takes it; NULL when none is held or the
 * parse failed. */
const struct btf *kernel_btf_parsed(struct kernel_btf *k);
/* Waits for the parse, lets go of the blob and of a parse libbpf did not
 * take; libbpf reads the file itself again. Safe twice. */
void kernel_btf_close(struct kernel_btf *k);

#endif
