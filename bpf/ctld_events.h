/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * ctld_events.h - the contract between bpf/ctld.bpf.c and user space: the
 * ring-buffer record, and the key/value layouts of the pinned maps. Both
 * sides include this file; nothing here is defined twice. Fields are fixed
 * width, widest first, comm last.
 *
 * Pinned maps (bpftool map dump pinned /sys/fs/bpf/ctld/NAME):
 *   events         ring buffer of struct ctld_event
 *   tracked        tgid -> struct tracked_proc   (jobs and their descendants)
 *   tracked_slots  tgid % 4096 -> number of tracked tgids in that slot (a
 *                  filter: 0 means "certainly not tracked", no hash lookup)
 *   watched_ports  struct port_key -> __u32 refcount (ports clients watch)
 *   stats          per-CPU struct ctld_stats at key 0
 */
#ifndef CTLD_EVENTS_H
#define CTLD_EVENTS_H

#define CTLD_TASK_COMM_LEN 16
/* 64 KiB hold ~740 records; fork/exit records wake the daemon only once a
 * quarter is used (CTLD_WAKEUP_BYTES), so the rest absorbs bursts. The ring
 * is mapped twice into the daemon (wrap-around) and all of it is resident:
 * 256 KiB cost 0.5 MiB of its idle RSS. A burst that does overflow is
 * counted and repaired (bpf_events.c), never silent, so the smaller ring
 * trades more repairs under extreme fork storms for 384 KiB less RSS. */
#define CTLD_RINGBUF_BYTES (64 << 10)
#define CTLD_WAKEUP_BYTES (CTLD_RINGBUF_BYTES / 4)
/* Live processes of all job trees at once. Small on purpose: every exit in
 * the system looks here, and a smaller bucket array stays in cache. */
#define CTLD_MAX_TRACKED 16384
#define CTLD_TRACKED_SLOTS 4096 /* power of two; 16 KiB of counters */
#define CTLD_MAX_WATCHED_PORTS 16384

enum ctld_event_kind {
	CTLD_EV_EXIT = 1,   /* last thread of a tracked process exited */
	CTLD_EV_FORK = 2,   /* a tracked process created a process */
	CTLD_EV_LISTEN = 3, /* a socket on a watched port entered LISTEN (candidate) */
	CTLD_EV_CLOSE = 4,  /* a socket on a watched port left LISTEN (closed, or listen() failed) */
	CTLD_EV_LISTEN_DONE = 5, /* fexit: listen() on a watched port returned; status = its errno */
};

struct ctld_event {
	__u64 time_ns;   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 job;       /* the process's job (0 until user space set it, or not tracked) */
	__u64 sock_ino;  /* LISTEN/CLOSE: socket inode, as sock_diag reports it */
	__u32 kind;      /* enum ctld_event_kind */
	__u32 pid;       /* EXIT: tgid; FORK: child tgid; LISTEN/CLOSE: owner tgid */
	__u32 ppid;      /* FORK: parent tgid */
	__u32 root_pid;  /* the job's main pid (0: the process is not tracked) */
	__u32 status;    /* EXIT: wait status, (code << 8) | signal | 0x80 core;
			  * CLOSE: 1 if the socket was shut down first (close(),
			  * exit: a listener closing), 0 if not (listen() failed);
			  * LISTEN_DONE: 0 (listening) or listen()'s errno */
	__u32 netns;     /* LISTEN/CLOSE: network namespace inode */
	__u16 port;      /* LISTEN/CLOSE: host byte order */
	__u16 family;    /* AF_INET or AF_INET6 */
	__u8 addr[16];   /* bound address; IPv4 in the first 4 bytes */
	char comm[CTLD_TASK_COMM_LEN];
};

struct tracked_proc {
	__u64 job;      /* 0 for a child of the daemon not yet claimed by a job */
	__u32 root_pid; /* the job's main pid */
	__u32 pad;
};

struct port_key {
	__u32 netns; /* inode of the network namespace (ls -i /proc/PID/ns/net) */
	__u16 port;  /* host byte order */
	__u16 pad;
};

/* Per-CPU counters; user space sums the CPUs. */
struct ctld_stats {
	__u64 events;        /* records submitted to the ring buffer */
	__u64 drops;         /* records lost: ring buffer full */
	__u64 tracked_full;  /* forks not tracked: map full */
	__u64 fork_runs;     /* program invocations, for `ctl stats` */
	__u64 exit_runs;
	__u64 sock_runs;
	__u64 listen_runs;   /* the fexit on inet_csk_listen_start, when chosen */
};

#endif
