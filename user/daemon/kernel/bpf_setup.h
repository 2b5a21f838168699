/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * bpf_setup.h - the skeleton's life cycle, before and after the event loop
 * sees it:
 *
 *   check (root, BTF, initial pid namespace) -> mount bpffs -> lock the pin
 *   dir and clear stale pins -> open -> set rodata -> load -> attach -> pin
 *   ... -> unpin -> destroy
 *
 * No loop, no ring buffer: bpf_events.c takes the loaded skeleton from here.
 */
#ifndef CTLD_BPF_SETUP_H
#define CTLD_BPF_SETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "daemon/kernel/core_btf.h"
#include "daemon/kernel/kernel_btf.h"

struct ctld; /* the generated skeleton */

/* Where the start-up time went (the log line the benchmark reads). */
struct bpf_setup_phases {
	double fetch_ms;      /* the kernel BTF fetched (kernel_btf.h), before the rest */
	const char *fetch_by; /* kernel_btf.how, or "libbpf" (it read the file itself) */
	double index_ms;      /* its index built (btf_scan.h), in the start-up thread */
	unsigned kernel_types; /* in it */
	unsigned placeholders; /* libbpf's btf__load_vmlinux_btf() calls given a placeholder */
	unsigned lookups;      /* its lookups by name on them, answered by the index */
	unsigned parses;       /* ... calls given a full parse (a load retried without one) */
	unsigned core_types;  /* in the small CO-RE BTF (0: none) */
	double probe_ms;      /* the feature probe (bpf_events.c) */
	double index_wait_ms; /* what of the thread's work the start did not hide */
	double open_ms;   /* the embedded object parsed */
	double core_ms;   /* the small CO-RE BTF made (core_btf.h), in the thread too */
	double load_ms;   /* attach-target lookups, CO-RE relocations, maps, verification */
	double verify_ms; /* of load_ms: the verifier, by its own count */
	double attach_ms; /* the tracepoints attached */
	double pin_ms;    /* maps and programs pinned */
};

struct bpf_setup {
	struct ctld *skel;
	struct bpf_setup_phases phases;
	char verifier_log[4][1024]; /* per program: the verifier's statistics */
	int pin_lock_fd;
	struct kernel_btf kbtf;   /* from bpf_setup_prefetch() to the end of the load */
	bool kbtf_fetched;
	const struct btf_index *kernel; /* kbtf's index: during bpf_setup_open() */
	struct core_btf core;     /* made by the start-up thread; closed by bpf_setup_open() */
	int core_err;             /* why there is none */
	bool placeholders_ok; /* no load with a placeholder failed (kernel_btf.c) */
	bool listen_by_fexit; /* the fexit variant was loaded and attached */
	bool exit_group_dead; /* handle_exit (sched_process_exit has group_dead), not _live */
	char pin_dir[256];
};

/* The kernel's BTF fetched and its index started (kernel_btf.h), then in
 * the same thread the small CO-RE copy made, once: before the feature
 * probe (which scans b->kbtf) and bpf_setup_open(). */
void bpf_setup_prefetch(struct bpf_setup *b);

/* Brings the programs up with job_parent as the process whose children
 * are jobs. listen_args 1 or 2 loads the fexit variant for that many
 * arguments of inet_csk_listen_start (0: none; sock_diag confirms). The
 * kernel BTF prefetched is let go of at the end (libbpf has its own). 0, or
 * -errno with the reason ("not root", "load failed: ...") in why[whylen];
 * on failure nothing is left behind. */
int bpf_setup_open(struct bpf_setup *b, const char *pin_dir, pid_t job_parent, int listen_args,
		   char *why, size_t whylen);
/* "kernel BTF fetch 0.1 by mmap ..., pin 0.2; libbpf's kernel BTF: 1
 * placeholder(s), ...": b->phases. */
/* Room for the longest: ~260 characters of text around 12 times and 7
 * counts (a guest under emulation writes "675.2" where this machine writes
 * "8.6"; 300 bytes cut the line's end there). */
#define BPF_SETUP_PHASES_LEN 512
void bpf_setup_format_phases(const struct bpf_setup *b, char *out, size_t len);
/* Detaches, unpins, unlocks; safe on a setup that failed or never ran. */
void bpf_setup_close(struct bpf_setup *b);

#endif
