/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * features.h - what the running kernel allows, probed once at start-up by
 * trying it, and the path the daemon picks for each: trampolines (an fexit
 * on inet_csk_listen_start confirms listen() directly, else a sock_diag
 * dump does), ring buffer and BTF (the eBPF path at all), sock_diag (else
 * /proc/net/tcp), pidfd, close_range, cgroup v2 and its controllers.
 * Probing costs a few milliseconds and leaves nothing behind.
 */
#ifndef CTLD_FEATURES_H
#define CTLD_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

/* --listen-confirm: how a LISTEN candidate becomes a listener. */
enum listen_confirm {
	LISTEN_CONFIRM_AUTO,      /* fexit where the kernel allows it, else sock_diag */
	LISTEN_CONFIRM_FEXIT,     /* fexit; where refused, sock_diag (and say so) */
	LISTEN_CONFIRM_SOCK_DIAG, /* always the sock_diag round trip (benchmarks, tests) */
};

struct kernel_features {
	bool probed_bpf;   /* the BPF probes ran (not with --no-bpf) */
	bool btf;          /* /sys/kernel/btf/vmlinux */
	bool ringbuf;      /* BPF_MAP_TYPE_RINGBUF (Linux 5.8) */
	int fexit_err;     /* 0: an fexit on inet_csk_listen_start loads and attaches */
	int listen_args;   /* inet_csk_listen_start's arguments in BTF: 2 (<= 5.10) or 1 */
	int sock_diag_err; /* 0: an inet_diag TCP dump works (inet_diag, tcp_diag loaded) */
	bool pidfd;        /* pidfd_open (5.3) */
	bool close_range;  /* close_range (5.9) */
	bool cgroup2;      /* /sys/fs/cgroup is cgroup v2 */
	char controllers[80]; /* its cgroup.controllers, space separated */
};

struct kernel_btf;

/* Probes everything; the BPF probes (BTF, ring buffer, trampolines) only
 * when kbtf is given (the kernel's BTF as kernel_btf.h fetched it; an empty
 * one when that failed), so --no-bpf loads nothing. Never fails: what could
 * not be probed counts as missing. */
void features_probe(struct kernel_features *f, const struct kernel_btf *kbtf);

/* "btf=yes ringbuf=yes fexit=no(EPERM) ..." for the log and `ctl stats`: one
 * key=value per word; fexit=yes(sk) or yes(sk,backlog) names the variant. */
void features_format(const struct kernel_features *f, char *out, size_t len);

/* Whether the fexit program can be used; why[] says why not. */
bool features_fexit_usable(const struct kernel_features *f, char *why, size_t whylen);

/* Parses "auto", "fexit" or "sock_diag". 0 or -EINVAL. */
int listen_confirm_parse(const char *text, enum listen_confirm *out);

#endif
