// SPDX-License-Identifier: BSD-2-Clause
// probe [-v]: the kernel-matrix feature probe (tests/kernels, run inside each
// guest by guest.sh). Prints one "key=value" line per feature:
//   btf=yes|no              /sys/kernel/btf/vmlinux exists
//   ringbuf=yes|no (...)    a BPF_MAP_TYPE_RINGBUF map can be created
//   <prog>=ok hits=N | load-failed errno=E (...) | attach-failed errno=E (...)
// for prog in fentry fexit lsm tp_btf kprobe: each program of probe.bpf.c is
// loaded and attached alone, listen() is called twice, hits are counted.
// Exits 0 (a missing feature is a result, not an error), 2 when the object
// cannot even be opened. Not part of the daemon.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "probe.skel.h"

static int verbose;

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void do_listen(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0)
		return;
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0)
		listen(s, 8);
	close(s);
}

static __u64 hits(struct probe_bpf *skel, const char *name)
{
	if (!strcmp(name, "fentry"))
		return skel->bss->hits_fentry;
	if (!strcmp(name, "fexit"))
		return skel->bss->hits_fexit;
	if (!strcmp(name, "lsm"))
		return skel->bss->hits_lsm;
	if (!strcmp(name, "tp_btf"))
		return skel->bss->hits_tp_btf;
	return skel->bss->hits_kprobe;
}

static void probe_prog(const char *name)
{
	struct probe_bpf *skel = probe_bpf__open();
	struct bpf_program *p, *want = NULL;
	struct bpf_link *link;
	int err;

	if (!skel) {
		printf("%s=open-failed errno=%d (%s)\n", name, errno, strerror(errno));
		return;
	}
	bpf_object__for_each_program(p, skel->obj) {
		int me = !strcmp(bpf_program__name(p), name);

		bpf_program__set_autoload(p, me);
		if (me)
			want = p;
	}
	err = probe_bpf__load(skel);
	if (err) {
		printf("%s=load-failed errno=%d (%s)\n", name, -err, strerror(-err));
		goto out;
	}
	link = bpf_program__attach(want);
	if (!link) {
		err = errno;
		printf("%s=attach-failed errno=%d (%s)\n", name, err, strerror(err));
		goto out;
	}
	do_listen();
	do_listen();
	printf("%s=ok hits=%llu\n", name, (unsigned long long)hits(skel, name));
	bpf_link__destroy(link);
out:
	probe_bpf__destroy(skel);
}

int main(int argc, char **argv)
{
	static const char *const progs[] = { "fentry", "fexit", "lsm", "tp_btf", "kprobe" };
	int fd;

	if (argc > 1 && !strcmp(argv[1], "-v"))
		verbose = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(print_fn);
	printf("btf=%s\n", access("/sys/kernel/btf/vmlinux", R_OK) == 0 ? "yes" : "no");
	fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "probe_rb", 0, 0, 4096, NULL);
	if (fd >= 0) {
		printf("ringbuf=yes\n");
		close(fd);
	} else {
		printf("ringbuf=no errno=%d (%s)\n", errno, strerror(errno));
	}
	for (unsigned i = 0; i < sizeof(progs) / sizeof(progs[0]); i++)
		probe_prog(progs[i]);
	return 0;
}
