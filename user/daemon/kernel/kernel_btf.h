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
 */
#ifndef CTLD_KERNEL_BTF_H
#define CTLD_KERNEL_BTF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kernel_btf {
	const uint8_t *data; /* the raw blob (struct btf_header first); NULL when none */
	size_t len;
	bool mapped;         /* munmap, not free */
	const char *how;     /* "mmap", "bpf_obj_get_info" or "read": for the log */
};

/* Fetches the blob into *k and holds it for libbpf: 0 or -errno (then
 * *k is empty and libbpf reads the file itself). One at a time. */
int kernel_btf_open(struct kernel_btf *k);
/* Lets go of the blob; libbpf reads the file itself again. Safe twice. */
void kernel_btf_close(struct kernel_btf *k);

#endif
