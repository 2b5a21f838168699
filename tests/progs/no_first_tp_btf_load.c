// SPDX-License-Identifier: BSD-2-Clause
/*
 * no_first_tp_btf_load.c - an LD_PRELOAD library for tests: a process that
 * loads it sees its first tp_btf program load (BPF_PROG_LOAD of a tracing
 * program attached to a raw tracepoint by BTF id) refused with EINVAL, the
 * way a load fails when libbpf found a wrong attach target. Later loads,
 * and every other bpf() command, go to the kernel. libbpf calls bpf()
 * through syscall(), which the daemon takes from the C library, so this
 * reaches it although libbpf is linked statically.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

long syscall(long number, ...)
{
	static long (*real)(long, ...);
	static bool refused;
	const union bpf_attr *attr;
	long a[6];
	va_list ap;

	va_start(ap, number);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	attr = (const void *)a[1];
	if (number == __NR_bpf && a[0] == BPF_PROG_LOAD && !refused && attr &&
	    attr->prog_type == BPF_PROG_TYPE_TRACING &&
	    attr->expected_attach_type == BPF_TRACE_RAW_TP) {
		refused = true;
		errno = EINVAL;
		return -1;
	}
	return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
