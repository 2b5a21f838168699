// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
// Kernel-matrix feature probe (tests/kernels): one program per BPF program
// type the daemon uses or might use, all on the listen() path. probe.c loads
// and attaches each one alone and counts its hits in .bss, so a kernel that
// loads a type but never runs it (an LSM hook without the bpf LSM active)
// shows up as "attached, 0 hits". Not part of the daemon.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 hits_fentry, hits_fexit, hits_lsm, hits_tp_btf, hits_kprobe;

// inet_csk_listen_start() is (sk, backlog) on 5.10 and (sk) later: only the
// first argument is named, so the same object loads on both.
SEC("fentry/inet_csk_listen_start")
int BPF_PROG(fentry, struct sock *sk)
{
	__sync_fetch_and_add(&hits_fentry, 1);
	return 0;
}

SEC("fexit/inet_csk_listen_start")
int BPF_PROG(fexit, struct sock *sk)
{
	__sync_fetch_and_add(&hits_fexit, 1);
	return 0;
}

SEC("lsm/socket_listen")
int BPF_PROG(lsm, struct socket *sock, int backlog, int ret)
{
	__sync_fetch_and_add(&hits_lsm, 1);
	return ret;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tp_btf, const struct sock *sk, const int oldstate, const int newstate)
{
	if (newstate == 10 /* TCP_LISTEN */)
		__sync_fetch_and_add(&hits_tp_btf, 1);
	return 0;
}

SEC("kprobe/inet_csk_listen_start")
int kprobe(void *ctx)
{
	__sync_fetch_and_add(&hits_kprobe, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
