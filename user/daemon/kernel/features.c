// SPDX-License-Identifier: BSD-2-Clause
/*
 * features.c - probing the kernel by trying each thing once (see features.h).
 *
 * Trying beats reading the version: distribution kernels backport, and a
 * kernel may have a feature and still refuse it (BPF trampolines are
 * refused with EPERM on some 6.x kernels, lockdown refuses more). The
 * trampoline probe loads a two-instruction fexit program on the very
 * function the daemon would use and attaches it, so "yes" means the real
 * program's attach will not be refused for want of trampolines.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "common/util.h"
#include "daemon/kernel/btf_scan.h"
#include "daemon/kernel/features.h"
#include "daemon/kernel/kernel_btf.h"
#include "daemon/kernel/sockdiag.h"
#include "daemon/kernel/tcp_listener.h"

#define LISTEN_FUNC "inet_csk_listen_start"
#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"

/* What listen_func_btf() falls back to: libbpf's parse (which also finds
 * the kernel's BTF where sysfs has none). */
static int listen_func_btf_libbpf(int *nargs)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *fn, *proto;
	int id;

	if (!btf)
		return -errno;
	id = btf__find_by_name_kind(btf, LISTEN_FUNC, BTF_KIND_FUNC);
	if (id > 0) {
		fn = btf__type_by_id(btf, (__u32)id);
		proto = fn ? btf__type_by_id(btf, fn->type) : NULL;
		*nargs = proto && btf_is_func_proto(proto) ? btf_vlen(proto) : 0;
	}
	btf__free(btf);
	return id > 0 ? id : -ENOENT;
}

/* The BTF id of inet_csk_listen_start and its argument count (the
 * FUNC_PROTO's vlen: 5.10 has (sk, backlog), 5.11 and later (sk)), or
 * -errno. Read from the blob with btf_scan.h (a millisecond, no index);
 * libbpf's full parse only where that cannot walk it or there is none. */
static int listen_func_btf(const struct kernel_btf *kbtf, int *nargs)
{
	uint32_t id32;
	int err = kbtf->data ? btf_scan_func(kbtf->data, kbtf->len, LISTEN_FUNC, &id32, nargs)
			     : -ENODATA;

	if (err == 0)
		return (int)id32;
	if (err == -ENOENT)
		return -ENOENT; /* walked it: the kernel has no such function */
	return listen_func_btf_libbpf(nargs);
}

/* Loads "return 0" as an fexit on btf_id and attaches it: 0 or -errno. */
static int try_fexit(int btf_id)
{
	const struct bpf_insn ret0[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FEXIT,
		    .attach_btf_id = (__u32)btf_id);
	int prog, link, err = 0;

	prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, "ctld_probe", "GPL", ret0, ARRAY_SIZE(ret0),
			     &opts);
	if (prog < 0)
		return -errno;
	link = bpf_raw_tracepoint_open(NULL, prog); /* how tracing programs attach since 5.5 */
	if (link < 0)
		err = -errno;
	else
		close(link);
	close(prog);
	return err;
}

static void probe_bpf(struct kernel_features *f, const struct kernel_btf *kbtf)
{
	int id;

	f->probed_bpf = true;
	f->btf = kbtf->data || access(VMLINUX_BTF, R_OK) == 0;
	f->ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;
	f->fexit_err = -ENOENT;
	if (!f->btf)
		return;
	id = listen_func_btf(kbtf, &f->listen_args);
	f->fexit_err = id < 0 ? id : try_fexit(id);
}

/* One dump of port 1's listeners: the first sock_diag request, which also
 * makes the kernel load inet_diag and tcp_diag where they are modules. */
static int probe_sock_diag(void)
{
	struct tcp_listener one;
	int fd = sockdiag_open(), n;

	if (fd < 0)
		return fd;
	n = sockdiag_listeners(fd, AF_INET, 1, &one, 1);
	close(fd);
	return n < 0 ? n : 0;
}

static void probe_cgroup2(struct kernel_features *f)
{
	struct statfs fs;
	ssize_t n;
	int fd;

	f->cgroup2 = statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
	if (!f->cgroup2 || (fd = open("/sys/fs/cgroup/cgroup.controllers", O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, f->controllers, sizeof(f->controllers) - 1);
	close(fd);
	f->controllers[n > 0 ? n : 0] = '\0';
	f->controllers[strcspn(f->controllers, "\n")] = '\0';
}

void features_probe(struct kernel_features *f, const struct kernel_btf *kbtf)
{
	int fd;

	*f = (struct kernel_features){ .fexit_err = -EOPNOTSUPP };
	if (kbtf)
		probe_bpf(f, kbtf);
	f->sock_diag_err = probe_sock_diag();
	fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	f->pidfd = fd >= 0;
	if (fd >= 0)
		close(fd);
	/* an empty range far above any fd: succeeds where the call exists */
	f->close_range = syscall(SYS_close_range, ~0U - 1, ~0U - 1, 0) == 0;
	probe_cgroup2(f);
}

static const char *yes_no(bool yes)
{
	return yes ? "yes" : "no";
}

static const char *err_name(int err)
{
	switch (-err) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINVAL: return "EINVAL";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case 524: return "ENOTSUPP"; /* the kernel's internal ENOTSUPP, seen by BPF callers */
	default: return strerror(-err);
	}
}

void features_format(const struct kernel_features *f, char *out, size_t len)
{
	char fexit[48], diag[40];
	int n;

	if (!f->probed_bpf)
		snprintf(fexit, sizeof(fexit), "not-probed");
	else if (f->fexit_err)
		snprintf(fexit, sizeof(fexit), "no(%s)", err_name(f->fexit_err));
	else
		snprintf(fexit, sizeof(fexit), "yes(%s)", f->listen_args == 2 ? "sk,backlog" : "sk");
	if (f->sock_diag_err)
		snprintf(diag, sizeof(diag), "no(%s)", err_name(f->sock_diag_err));
	else
		snprintf(diag, sizeof(diag), "yes");
	n = snprintf(out, len, "btf=%s ringbuf=%s fexit=%s sock_diag=%s pidfd=%s close_range=%s "
			       "cgroup2=",
		     f->probed_bpf ? yes_no(f->btf) : "not-probed",
		     f->probed_bpf ? yes_no(f->ringbuf) : "not-probed", fexit, diag, yes_no(f->pidfd),
		     yes_no(f->close_range));
	if (n < 0 || (size_t)n >= len)
		return;
	/* "cpu io memory pids" -> "cpu,io,memory,pids": one word per key */
	snprintf(out + n, len - (size_t)n, "%s", f->cgroup2 ? f->controllers : "no");
	for (char *p = out + n; *p; p++)
		if (*p == ' ')
			*p = ',';
	if (f->cgroup2 && !f->controllers[0])
		snprintf(out + n, len - (size_t)n, "yes");
}

bool features_fexit_usable(const struct kernel_features *f, char *why, size_t whylen)
{
	if (!f->probed_bpf) {
		snprintf(why, whylen, "not probed");
		return false;
	}
	if (f->fexit_err) {
		snprintf(why, whylen, "the kernel refuses an fexit on " LISTEN_FUNC ": %s",
			 err_name(f->fexit_err));
		return false;
	}
	if (f->listen_args != 1 && f->listen_args != 2) {
		snprintf(why, whylen, LISTEN_FUNC " takes %d arguments, not 1 or 2", f->listen_args);
		return false;
	}
	return true;
}

int listen_confirm_parse(const char *text, enum listen_confirm *out)
{
	static const char *const names[] = { "auto", "fexit", "sock_diag" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcmp(text, names[i]) == 0) {
			*out = (enum listen_confirm)i;
			return 0;
		}
	}
	return -EINVAL;
}
