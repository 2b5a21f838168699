/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * btf_scan.h - one function's BTF id and argument count, read straight from
 * a raw BTF blob (the kernel's /sys/kernel/btf/vmlinux, as kernel_btf.h
 * fetched it).
 *
 * Why not libbpf's btf__load_vmlinux_btf(): that builds a full index of the
 * ~100,000 types (5-20 ms and ~10 MiB), and the skeleton's load then builds
 * its own again, so the start-up probe doubled the BTF cost of every
 * daemon start. The probe needs one FUNC and its FUNC_PROTO: a linear walk
 * over the type records, no allocation but the blob, does that in a
 * millisecond or two.
 */
#ifndef CTLD_BTF_SCAN_H
#define CTLD_BTF_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* In data[len] (a BTF blob): the FUNC named name, its type id in *id and
 * its FUNC_PROTO's parameter count in *nargs. 0, -ENOENT (no such FUNC) or
 * -EBADMSG (not BTF this code can walk: the caller falls back to libbpf). */
int btf_scan_func(const uint8_t *data, size_t len, const char *name, uint32_t *id, int *nargs);

#endif
