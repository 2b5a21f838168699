// SPDX-License-Identifier: BSD-2-Clause
/*
 * kernel_btf.c - see kernel_btf.h.
 *
 * The hand-over to libbpf is a linker wrap because libbpf 1.1 has no other
 * way in: bpf_object__load() calls btf__load_vmlinux_btf() whenever a
 * program attaches by BTF (our tp_btf and fexit programs), and
 * btf_custom_path only replaces the BTF used for CO-RE, not that one. With
 * -Wl,--wrap=btf__load_vmlinux_btf every call, libbpf's own included, comes
 * here; libbpf frees what it gets, so each call gets a struct btf of its
 * own: the first the one parsed ahead, later ones (a load retried) a fresh
 * btf__new() of the held blob, and without a held blob the call goes on
 * to libbpf's (__real_).
 *
 * The parser thread is created with every signal blocked: signals are the
 * main thread's business (its signalfd), and a process-directed SIGTERM
 * must not be taken by a thread that would die of the default action.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/btf.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "common/util.h"
#include "daemon/kernel/kernel_btf.h"

#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#define MAX_BTF (64u << 20) /* 5-10 MB on distribution kernels */

static struct kernel_btf *held;

struct btf *__real_btf__load_vmlinux_btf(void);
struct btf *__wrap_btf__load_vmlinux_btf(void);

static void join_parser(struct kernel_btf *k)
{
	if (k->parsing) {
		pthread_join(k->parser, NULL);
		k->parsing = false;
	}
}

struct btf *__wrap_btf__load_vmlinux_btf(void)
{
	struct btf *btf;

	if (!held)
		return __real_btf__load_vmlinux_btf();
	join_parser(held);
	held->handed++;
	btf = held->parsed;
	held->parsed = NULL;
	return btf ? btf : btf__new(held->data, (__u32)held->len);
}

static void *parse_ahead(void *arg)
{
	struct kernel_btf *k = arg;
	uint64_t t0 = now_monotonic_ns();

	k->parsed = btf__new(k->data, (__u32)k->len); /* NULL on failure: parsed again */
	k->parse_ms = (now_monotonic_ns() - t0) / 1e6;
	return NULL;
}

/* Without a thread the parse just happens at libbpf's call. */
static void start_parser(struct kernel_btf *k)
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	k->parsing = pthread_create(&k->parser, NULL, parse_ahead, k) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* 6.16+: the kernel's own pages, read-only, no copy. */
static int map_file(int fd, struct kernel_btf *k)
{
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || (uint64_t)st.st_size > MAX_BTF)
		return -EFBIG;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	if ((size_t)st.st_size < sizeof(struct btf_header) ||
	    ((const struct btf_header *)p)->magic != BTF_MAGIC) {
		munmap(p, (size_t)st.st_size);
		return -EBADMSG;
	}
	*k = (struct kernel_btf){ .data = p, .len = (size_t)st.st_size, .mapped = true,
				  .how = "mmap" };
	return 0;
}

/* The fd of the kernel's "vmlinux" BTF object (usually id 1), or -errno. */
static int vmlinux_btf_fd(void)
{
	__u32 id = 0;

	for (int tries = 0; tries < 1000 && bpf_btf_get_next_id(id, &id) == 0; tries++) {
		struct bpf_btf_info info = { 0 };
		__u32 len = sizeof(info);
		char name[16] = "";
		int fd = bpf_btf_get_fd_by_id(id);

		if (fd < 0)
			continue;
		info.name = (__u64)(uintptr_t)name;
		info.name_len = sizeof(name);
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.kernel_btf &&
		    strcmp(name, "vmlinux") == 0)
			return fd;
		close(fd);
	}
	return -ENOENT;
}

/* 5.11+: one system call copies the whole blob. */
static int copy_from_kernel(struct kernel_btf *k)
{
	struct bpf_btf_info info = { 0 };
	__u32 len = sizeof(info), size = 0;
	int fd = vmlinux_btf_fd(), err = 0;
	uint8_t *buf = NULL;

	if (fd < 0)
		return fd;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		err = -errno;
	else if ((size = info.btf_size) == 0 || size > MAX_BTF)
		err = -EFBIG;
	else if (!(buf = malloc(size)))
		err = -ENOMEM;
	if (!err) {
		info = (struct bpf_btf_info){ .btf = (__u64)(uintptr_t)buf, .btf_size = size };
		len = sizeof(info);
		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
			err = -errno;
		else if (info.btf_size != size)
			err = -EAGAIN; /* cannot change while we hold the fd; say so anyway */
	}
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	*k = (struct kernel_btf){ .data = buf, .len = size, .how = "bpf_obj_get_info" };
	return 0;
}

/* Older kernels: read() until EOF (sysfs gives 4 KiB a call). */
static int read_file(int fd, struct kernel_btf *k)
{
	size_t cap = 8u << 20, n = 0;
	uint8_t *buf = NULL, *more;
	ssize_t r = 1;

	while (r > 0) {
		if (n == cap && (cap *= 2) > MAX_BTF) {
			free(buf);
			return -EFBIG;
		}
		if (!(more = realloc(buf, cap))) {
			free(buf);
			return -ENOMEM;
		}
		buf = more;
		while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
			n += (size_t)r;
	}
	if (r < 0 || n == 0) {
		r = r < 0 ? -errno : -ENODATA;
		free(buf);
		return (int)r;
	}
	*k = (struct kernel_btf){ .data = buf, .len = n, .how = "read" };
	return 0;
}

int kernel_btf_open(struct kernel_btf *k)
{
	int fd = open(VMLINUX_BTF, O_RDONLY | O_CLOEXEC), err;

	*k = (struct kernel_btf){ 0 };
	if (fd < 0)
		return -errno;
	if ((err = map_file(fd, k)) && (err = copy_from_kernel(k)))
		err = read_file(fd, k);
	close(fd);
	if (err)
		return err;
	held = k;
	start_parser(k);
	return 0;
}

const struct btf *kernel_btf_parsed(struct kernel_btf *k)
{
	join_parser(k);
	return k->parsed;
}

void kernel_btf_close(struct kernel_btf *k)
{
	join_parser(k);
	btf__free(k->parsed);
	if (held == k)
		held = NULL;
	if (k->data && k->mapped)
		munmap((void *)k->data, k->len);
	else
		free((void *)k->data);
	*k = (struct kernel_btf){ 0 };
}
