// SPDX-License-Identifier: BSD-2-Clause
/*
 * kernel_btf.c - see kernel_btf.h.
 *
 * The hand-over to libbpf is two linker wraps because libbpf 1.1 has no
 * other way in: bpf_object__load() calls btf__load_vmlinux_btf() whenever a
 * program attaches by BTF (our tp_btf and fexit programs), and
 * btf_custom_path only replaces the BTF used for CO-RE, not that one.
 * With -Wl,--wrap=btf__load_vmlinux_btf every call, libbpf's own included,
 * comes here (without a held blob it goes on to libbpf's, __real_).
 *
 * What libbpf 1.1.2 does with that BTF when CO-RE has a btf_custom_path,
 * there are no ksym externs and no struct_ops maps (all true of
 * bpf/ctld.bpf.c): it looks up each program's attach target,
 * btf__find_by_name_kind(vmlinux, "btf_trace_<tp>", TYPEDEF) for tp_btf
 * and (vmlinux, "<func>", FUNC) for fexit, hands the id to the kernel,
 * and frees the BTF after the load. A full parse (~9 ms: a 5.5 MB copy
 * and an index with deduplicated strings) for a few lookups: so with
 * placeholders on, each call gets a placeholder (one INT type with a name
 * nobody else uses, so that it is known again by its content, not by an
 * address libbpf may have freed and reused), and with
 * -Wl,--wrap=btf__find_by_name_kind (libbpf.o calls it in btf.o: the call
 * crosses objects of the static archive, so the linker wraps it) lookups
 * on a placeholder of those two kinds are answered from the index, by the
 * same rule (the lowest id of that name and kind). Everything else goes to
 * libbpf's own function, which on a placeholder answers -ENOENT. If some
 * libbpf asked more of that BTF, the load would fail (a lookup finds
 * nothing, a type by id is NULL), never load something else: bpf_setup.c
 * then loads once more with placeholders off, each call getting a
 * btf__new() of the held blob, and says so.
 *
 * The indexer thread is created with every signal blocked: signals are the
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
#define PLACEHOLDER "ctld_vmlinux_placeholder" /* its one type's name */

static struct kernel_btf *held;

struct btf *__real_btf__load_vmlinux_btf(void);
struct btf *__wrap_btf__load_vmlinux_btf(void);
int __real_btf__find_by_name_kind(const struct btf *btf, const char *name, __u32 kind);
int __wrap_btf__find_by_name_kind(const struct btf *btf, const char *name, __u32 kind);

static void join_indexer(struct kernel_btf *k)
{
	if (k->indexing) {
		pthread_join(k->indexer, NULL);
		k->indexing = false;
	}
}

static struct btf *new_placeholder(void)
{
	struct btf *btf = btf__new_empty();

	if (btf && btf__add_int(btf, PLACEHOLDER, 1, 0) < 0) {
		btf__free(btf);
		return NULL;
	}
	return btf;
}

static bool is_placeholder(const struct btf *btf)
{
	const struct btf_type *t = btf__type_cnt(btf) == 2 ? btf__type_by_id(btf, 1) : NULL;
	const char *name = t && btf_is_int(t) ? btf__name_by_offset(btf, t->name_off) : NULL;

	return name && strcmp(name, PLACEHOLDER) == 0;
}

struct btf *__wrap_btf__load_vmlinux_btf(void)
{
	struct btf *btf;

	if (!held)
		return __real_btf__load_vmlinux_btf();
	join_indexer(held);
	if (held->placeholders && !held->index_err && (btf = new_placeholder())) {
		held->handed_placeholders++;
		return btf;
	}
	held->handed_parses++;
	return btf__new(held->data, (__u32)held->len);
}

int __wrap_btf__find_by_name_kind(const struct btf *btf, const char *name, __u32 kind)
{
	if (held && (kind == BTF_KIND_TYPEDEF || kind == BTF_KIND_FUNC) && is_placeholder(btf)) {
		join_indexer(held); /* joined already: a placeholder was handed */
		held->lookups++;
		return btf_index_find(&held->index, name, kind);
	}
	return __real_btf__find_by_name_kind(btf, name, kind);
}

static void *build_index(void *arg)
{
	struct kernel_btf *k = arg;
	uint64_t t0 = now_monotonic_ns();

	k->index_err = btf_index_build(&k->index, k->data, k->len);
	k->index_ms = (now_monotonic_ns() - t0) / 1e6;
	if (!k->index_err && k->ops.indexed)
		k->ops.indexed(&k->index, k->ops.ctx);
	return NULL;
}

/* Without a thread the index is built right here. */
static void start_indexer(struct kernel_btf *k)
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	k->indexing = pthread_create(&k->indexer, NULL, build_index, k) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!k->indexing)
		build_index(k);
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

int kernel_btf_open(struct kernel_btf *k, const struct kernel_btf_ops *ops)
{
	int fd = open(VMLINUX_BTF, O_RDONLY | O_CLOEXEC), err;

	*k = (struct kernel_btf){ .index_err = -ENODATA };
	if (fd < 0)
		return -errno;
	if ((err = map_file(fd, k)) && (err = copy_from_kernel(k)))
		err = read_file(fd, k);
	close(fd);
	if (err)
		return err;
	held = k;
	if (ops)
		k->ops = *ops;
	start_indexer(k);
	return 0;
}

const struct btf_index *kernel_btf_index(struct kernel_btf *k)
{
	join_indexer(k);
	return k->data && !k->index_err ? &k->index : NULL;
}

void kernel_btf_use_placeholders(struct kernel_btf *k, bool on)
{
	k->placeholders = on;
}

void kernel_btf_close(struct kernel_btf *k)
{
	join_indexer(k);
	btf_index_free(&k->index);
	if (held == k)
		held = NULL;
	if (k->data && k->mapped)
		munmap((void *)k->data, k->len);
	else
		free((void *)k->data);
	*k = (struct kernel_btf){ .index_err = -ENODATA };
}
