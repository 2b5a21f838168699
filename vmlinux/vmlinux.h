/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * vmlinux.h - a trimmed CO-RE shadow of the kernel types bpf/ctld.bpf.c uses.
 *
 * Why trimmed and committed instead of `bpftool btf dump file
 * /sys/kernel/btf/vmlinux format c` at build time: the build must not depend
 * on the build machine's kernel (a 130k-line header that changes with every
 * kernel), and reviewers should see exactly which kernel fields we read.
 * Every struct is tagged preserve_access_index, so clang records each field
 * access as a CO-RE relocation and libbpf finds the real offset in the
 * running kernel's BTF at load time. Only the fields used are declared; their
 * order and the structs' sizes here do not matter. Anonymous unions of the
 * real kernel structs are flattened: libbpf matches members by name through
 * anonymous members of the target type.
 *
 * To check a field against a kernel:
 *   bpftool btf dump file /sys/kernel/btf/vmlinux format c | grep -A40 'struct sock_common {'
 */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

typedef signed char __s8;
typedef unsigned char __u8;
typedef short int __s16;
typedef short unsigned int __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long int __s64;
typedef long long unsigned int __u64;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
enum { false = 0, true = 1 };
typedef int pid_t;

/* From include/uapi/linux/bpf.h: the map types and update flags we use. */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

/* bpf_ringbuf_submit() flags and bpf_ringbuf_query() requests. */
enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

enum {
	BPF_RB_AVAIL_DATA = 0,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	int counter;
} atomic_t;

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
};

struct sock_common {
	__be32 skc_rcv_saddr;
	__u16 skc_num;
	short unsigned int skc_family;
	volatile unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_rcv_saddr;
};

struct inode {
	long unsigned int i_ino;
};

/* no field of it is read: a socket is reached through socket_alloc */
struct socket {
};

/* a socket and its inode, allocated together (include/net/sock.h) */
struct socket_alloc {
	struct socket socket;
	struct inode vfs_inode;
};

struct sock {
	struct sock_common __sk_common;
	struct socket *sk_socket;
	/* a u8 since 6.4, a 2-bit field before: read with
	 * BPF_CORE_READ_BITFIELD_PROBED, which fits either */
	unsigned char sk_shutdown;
};

struct signal_struct {
	atomic_t live;
	unsigned int flags;
	int group_exit_code;
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	int exit_code;
	char comm[16];
	struct task_struct *group_leader;
	struct signal_struct *signal;
};

#pragma clang attribute pop

#endif /* __VMLINUX_H__ */
