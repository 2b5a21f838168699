/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * companion.h - finding the files a program of ours ships beside it: the
 * ctld-spawner helper, the TLS module. A build tree and an install that keeps
 * everything in one directory find them next to the executable; an install
 * under any PREFIX in PREFIX/libexec/ctld-bpf (from PREFIX/sbin or /bin);
 * a packaged one in CTLD_LIBEXECDIR.
 */
#ifndef CTLD_COMPANION_H
#define CTLD_COMPANION_H

#include <stddef.h>

#ifndef CTLD_LIBEXECDIR
#define CTLD_LIBEXECDIR "/usr/libexec/ctld-bpf"
#endif

/* Fills path[size] with name next to /proc/self/exe, else in ../libexec/ctld-bpf
 * from it, else in CTLD_LIBEXECDIR,
 * whichever access(amode) accepts first; 0, or -ENOENT (path then holds the
 * CTLD_LIBEXECDIR candidate). */
int companion_find(const char *name, int amode, char *path, size_t size);

#endif
