// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * ctld.bpf.c - the kernel half of ctld-bpf.
 *
 *   tp_btf/sched_process_fork   children of the job parent (the daemon's
 *                               spawner), and of tracked processes, become
 *                               tracked (whole job trees)
 *   tp_btf/sched_process_exit   the last thread of a tracked process exits:
 *                               submit its group exit status
 *   tp_btf/inet_sock_set_state  a socket on a watched port enters LISTEN
 *                               (a candidate) or leaves it
 *   fexit/inet_csk_listen_start listen() on a watched port returned: listening,
 *                               or the exact errno (where trampolines work)
 *
 * Everything a client did not ask about costs a field read or one map
 * lookup and is never submitted: a ring-buffer wake-up costs the event's
 * task several microseconds, so filtering comes first.
 *
 * A LISTEN transition is only a candidate: a listen() that fails with
 * EADDRINUSE enters LISTEN and goes back to CLOSE inside
 * inet_csk_listen_start(). Where the kernel allows BPF trampolines, an
 * fexit on that function sees its return value: the daemon loads one of
 * the two handle_listen_done* variants (the function lost its backlog
 * argument in 5.11) and sets listen_by_fexit, and the tracepoint then
 * reports only LISTEN -> CLOSE. Where trampolines are refused (EPERM on
 * some kernels, e.g. the build machine's), user space confirms each
 * candidate with a sock_diag dump of its port (a socket is in the
 * listening hash only once listen() succeeded) and drops it when its
 * CLOSE arrives first.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "ctld_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define TCP_CLOSE 7
#define TCP_LISTEN 10
/* include/linux/sched/signal.h: the whole thread group is exiting */
#define SIGNAL_GROUP_EXIT 0x00000004

/* The process whose children are jobs (the daemon's spawner helper, or the
 * daemon): set by the daemon before attaching, changed if the helper goes.
 * In .bss, which the skeleton maps into the daemon: no system call. */
__u32 job_parent_tgid = 0;

/* Records lost because the ring buffer was full, summed over CPUs. A global
 * in .bss is memory-mapped by the skeleton, so the daemon checks for losses
 * after every batch without a system call. */
__u64 ring_drops_total = 0;

/* Set before load when an fexit program reports listen()'s result: the
 * tracepoint's LISTEN candidates are then not needed. */
const volatile bool listen_by_fexit = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CTLD_RINGBUF_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CTLD_MAX_TRACKED);
	__type(key, __u32);
	__type(value, struct tracked_proc);
} tracked SEC(".maps");

/* Exact counters in front of `tracked`: every exit and fork in the system
 * asks "is this tgid tracked?", and a hash lookup costs a cache miss or two.
 * An array lookup is inlined by the verifier; a zero counter answers "no"
 * for sure. Counters, not bits, so slots shared by two tracked tgids stay
 * right when one of them exits. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CTLD_TRACKED_SLOTS);
	/* user space maps it to count the processes it adds (adopted jobs)
	 * with the same atomic add as the programs */
	__uint(map_flags, 1U << 10); /* BPF_F_MMAPABLE (uapi, not in the trimmed vmlinux.h) */
	__type(key, __u32);
	__type(value, __u32);
} tracked_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CTLD_MAX_WATCHED_PORTS);
	__type(key, struct port_key);
	__type(value, __u32);
} watched_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ctld_stats);
} stats SEC(".maps");

static __always_inline struct ctld_stats *this_cpu_stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&stats, &zero);
}

/* Reserves a record; counts the loss when the ring buffer is full. */
static __always_inline struct ctld_event *event_reserve(struct ctld_stats *st)
{
	struct ctld_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev)
		__sync_fetch_and_add(&ring_drops_total, 1);
	if (st) {
		if (ev)
			st->events++;
		else
			st->drops++;
	}
	return ev;
}

/* Fork and exit records need no wake-up of their own: the daemon drains the
 * ring on SIGCHLD and before it answers List, Stats or Signal. Waking it for
 * each would cost the forking task microseconds per fork. Once a quarter of
 * the ring is used, wake it anyway so nothing is lost. */
static __always_inline __u64 process_wakeup_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= CTLD_WAKEUP_BYTES
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

/* ------------------------------------------------------------ processes */

static __always_inline __u32 *slot_of(__u32 tgid)
{
	__u32 slot = tgid & (CTLD_TRACKED_SLOTS - 1);

	return bpf_map_lookup_elem(&tracked_slots, &slot);
}

static __always_inline bool maybe_tracked(__u32 tgid)
{
	__u32 *n = slot_of(tgid);

	return n && *n;
}

/* Inserts a new tracked process; the slot counter follows the map exactly. */
static __always_inline int track(__u32 tgid, const struct tracked_proc *value)
{
	__u32 *n = slot_of(tgid);

	if (!n || bpf_map_update_elem(&tracked, &tgid, value, BPF_NOEXIST))
		return -1;
	__sync_fetch_and_add(n, 1);
	return 0;
}

static __always_inline void untrack(__u32 tgid)
{
	__u32 *n = slot_of(tgid);

	if (n && bpf_map_delete_elem(&tracked, &tgid) == 0)
		__sync_fetch_and_add(n, -1);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct ctld_stats *st = this_cpu_stats();
	/* tp_btf arguments are BTF pointers: plain loads, CO-RE-relocated like
	 * BPF_CORE_READ but without a helper call each (this runs on every fork). */
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	struct tracked_proc value = {}, *pv;
	struct ctld_event *ev;

	if (st)
		st->fork_runs++;
	if (ctgid == ptgid)
		return 0; /* a new thread, not a new process */
	if (ptgid == job_parent_tgid) {
		/* A job's main process: user space fills in the job id. */
		value.root_pid = ctgid;
		if (track(ctgid, &value) && st)
			st->tracked_full++;
		return 0;
	}
	if (!maybe_tracked(ptgid))
		return 0;
	pv = bpf_map_lookup_elem(&tracked, &ptgid);
	if (!pv)
		return 0;
	value = *pv;
	if (track(ctgid, &value)) {
		if (st)
			st->tracked_full++;
		return 0;
	}
	ev = event_reserve(st);
	if (!ev)
		return 0;
	ev->kind = CTLD_EV_FORK;
	ev->time_ns = bpf_ktime_get_ns();
	ev->job = value.job;
	ev->root_pid = value.root_pid;
	ev->pid = ctgid;
	ev->ppid = ptgid;
	BPF_CORE_READ_STR_INTO(&ev->comm, child, comm);
	bpf_ringbuf_submit(ev, process_wakeup_flags());
	return 0;
}

/* The status waitpid() will report: the group exit code when the group was
 * told to exit (exit_group, fatal signal), else the leader's own code.
 * sig is the task's signal_struct, already loaded by the caller, and the
 * leader is read with BPF_CORE_READ: the verifier pays a search of the
 * kernel's whole BTF by name for each pointer a program loads from a BTF
 * pointer (btf_nested_type_is_trusted), ~1 ms of the daemon's start-up
 * each, while this runs only for a tracked process's exit. */
static __always_inline __u32 group_status(struct task_struct *task, struct signal_struct *sig)
{
	if (sig->flags & SIGNAL_GROUP_EXIT)
		return (__u32)sig->group_exit_code;
	return (__u32)BPF_CORE_READ(task, group_leader, exit_code);
}

/* The same where the caller loaded no signal_struct: all by BPF_CORE_READ
 * (a tracked process's exit only). */
static __always_inline __u32 group_status_read(struct task_struct *task)
{
	if (BPF_CORE_READ(task, signal, flags) & SIGNAL_GROUP_EXIT)
		return (__u32)BPF_CORE_READ(task, signal, group_exit_code);
	return (__u32)BPF_CORE_READ(task, group_leader, exit_code);
}

/* The last thread of task's process left: its record if it is tracked.
 * sig: its signal_struct when the caller loaded it, else NULL (a constant
 * at each call, so only one way of reading the status is compiled in). */
static __always_inline void process_gone(struct task_struct *task, struct signal_struct *sig,
					 struct ctld_stats *st)
{
	__u32 tgid = task->tgid;
	struct tracked_proc *pv;
	struct ctld_event *ev;

	if (!maybe_tracked(tgid))
		return;
	pv = bpf_map_lookup_elem(&tracked, &tgid);
	if (!pv)
		return;
	ev = event_reserve(st);
	if (ev) {
		ev->kind = CTLD_EV_EXIT;
		ev->time_ns = bpf_ktime_get_ns();
		ev->job = pv->job;
		ev->root_pid = pv->root_pid;
		ev->pid = tgid;
		ev->status = sig ? group_status(task, sig) : group_status_read(task);
		BPF_CORE_READ_STR_INTO(&ev->comm, task, comm);
		bpf_ringbuf_submit(ev, process_wakeup_flags());
	}
	untrack(tgid);
}

/* Newer kernels (6.18 here; not 6.1) pass sched_process_exit group_dead,
 * whether the thread group died with this thread: then the path every
 * thread's exit takes loads no pointer from the task (the verifier's BTF
 * searches above: ~4 ms of each start for task->signal) and no
 * signal_struct at run time. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task, bool group_dead)
{
	struct ctld_stats *st = this_cpu_stats();

	if (st)
		st->exit_runs++;
	if (group_dead)
		process_gone(task, NULL, st);
	return 0;
}

/* Where the tracepoint has (p) alone: the group is dead when its live
 * count is 0. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit_live, struct task_struct *task)
{
	struct ctld_stats *st = this_cpu_stats();
	struct signal_struct *sig = task->signal;

	if (st)
		st->exit_runs++;
	/* Fires per thread; the process is gone when the last one leaves. */
	if (sig->live.counter == 0)
		process_gone(task, sig, st);
	return 0;
}

/* ------------------------------------------------------------ sockets */

static __always_inline bool port_watched(const struct sock *sk, struct port_key *key)
{
	key->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	key->port = BPF_CORE_READ(sk, __sk_common.skc_num);
	return bpf_map_lookup_elem(&watched_ports, key) != NULL;
}

static __always_inline void read_sock_address(const struct sock *sk, struct ctld_event *ev)
{
	ev->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (ev->family == AF_INET6) {
		BPF_CORE_READ_INTO(&ev->addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
	} else {
		__be32 v4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);

		__builtin_memcpy(ev->addr, &v4, sizeof(v4));
	}
}

/* The job of the calling process, when it is tracked: a listener is then
 * known to belong to that job's tree (ctl run --wait-port needs exactly
 * that, not "someone listens"). */
static __always_inline void read_owner_job(struct ctld_event *ev, __u32 tgid)
{
	struct tracked_proc *pv;

	if (!maybe_tracked(tgid))
		return;
	pv = bpf_map_lookup_elem(&tracked, &tgid);
	if (pv) {
		ev->job = pv->job;
		ev->root_pid = pv->root_pid;
	}
}

/* The socket's inode number, the one sock_diag and /proc/net/tcp name
 * (the kernel's sock_i_ino()): a struct socket lives in a struct
 * socket_alloc, its inode beside it. Reached that way rather than through
 * socket -> file -> inode: each distinct kernel type a program reads costs
 * libbpf one walk over all ~130k kernel types at every load (~1.7 ms
 * each), and this is two reads instead of four. */
static __always_inline __u64 sock_inode(const struct sock *sk)
{
	struct socket *so = BPF_CORE_READ(sk, sk_socket);
	struct socket_alloc *sa;

	if (!so)
		return 0;
	sa = (void *)((char *)so - bpf_core_field_offset(struct socket_alloc, socket));
	return BPF_CORE_READ(sa, vfs_inode.i_ino);
}

/* A socket on a watched port entered or left LISTEN. Both transitions that
 * matter run in the context of the task that caused them: listen() for
 * CLOSE -> LISTEN, and close()/exit or a failed listen() for LISTEN ->
 * CLOSE (a listener has no peer, so no softirq moves it). So the current
 * task is the owner, and the socket still has its inode. */
static __always_inline void submit_listener(const struct sock *sk, const struct port_key *key,
					    __u32 kind, int ret, struct ctld_stats *st)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ctld_event *ev = event_reserve(st);

	if (!ev)
		return;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->time_ns = bpf_ktime_get_ns();
	ev->sock_ino = sock_inode(sk);
	ev->pid = tgid;
	ev->netns = key->netns;
	ev->port = key->port;
	read_sock_address(sk, ev);
	read_owner_job(ev, tgid);
	/* close() and exit shut a listener down (SHUTDOWN_MASK) before it
	 * goes LISTEN -> CLOSE; a failed listen() goes back to CLOSE without.
	 * So user space can tell a listener that closed before it was
	 * confirmed from one that never listened (shutdown(SHUT_RD) of a
	 * listener looks like the latter, but only matters in that window). */
	if (kind == CTLD_EV_CLOSE)
		ev->status = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown) != 0;
	else if (kind == CTLD_EV_LISTEN_DONE)
		ev->status = (__u32)-ret;
	bpf_get_current_comm(&ev->comm, sizeof(ev->comm));
	/* Always wake the daemon: a client is waiting for this one. The
	 * default (adaptive) wake-up only fires when the daemon has read
	 * everything before this record, and fork/exit records that were
	 * submitted without a wake-up may be sitting there unread: then a
	 * LISTEN would wait for an unrelated wake-up (a SIGCHLD, a request)
	 * that may never come. */
	bpf_ringbuf_submit(ev, BPF_RB_FORCE_WAKEUP);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(handle_sock_state, const struct sock *sk, int oldstate, int newstate)
{
	struct ctld_stats *st = this_cpu_stats();
	struct port_key key = {};

	if (st)
		st->sock_runs++;
	if (newstate != TCP_LISTEN && oldstate != TCP_LISTEN)
		return 0;
	if (newstate == TCP_LISTEN && listen_by_fexit)
		return 0; /* handle_listen_done reports the outcome instead */
	if (!port_watched(sk, &key))
		return 0;
	/* A LISTEN -> CLOSE is reported for every listener of a watched port,
	 * also one that was listening before the port was watched: user space
	 * matches it by socket inode. */
	submit_listener(sk, &key, newstate == TCP_LISTEN ? CTLD_EV_LISTEN : CTLD_EV_CLOSE, 0, st);
	return 0;
}

/* listen() on a watched port returned ret (0 or -errno). Runs in the
 * listening task, after the socket was hashed (success) or put back to
 * CLOSE (failure), so no sock_diag round trip is needed either way. */
static __always_inline int listen_done(const struct sock *sk, int ret)
{
	struct ctld_stats *st = this_cpu_stats();
	struct port_key key = {};

	if (st)
		st->listen_runs++;
	if (!port_watched(sk, &key))
		return 0;
	submit_listener(sk, &key, CTLD_EV_LISTEN_DONE, ret, st);
	return 0;
}

/* Linux >= 5.11: int inet_csk_listen_start(struct sock *sk) */
SEC("fexit/inet_csk_listen_start")
int BPF_PROG(handle_listen_done, struct sock *sk, int ret)
{
	return listen_done(sk, ret);
}

/* Linux 5.8-5.10: int inet_csk_listen_start(struct sock *sk, int backlog);
 * read with the one-argument layout, ret would be the backlog. */
SEC("fexit/inet_csk_listen_start")
int BPF_PROG(handle_listen_done_backlog, struct sock *sk, int backlog, int ret)
{
	(void)backlog;
	return listen_done(sk, ret);
}
