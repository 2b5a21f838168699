// SPDX-License-Identifier: BSD-2-Clause
/*
 * bpf_events.c - the ring buffer in the epoll loop, and the run-time maps.
 *
 * Records are decoded into struct proc_event / struct tcp_listener and
 * handed up through the ops table main() gave us; this file knows nothing
 * of jobs or watches.
 *
 * Losses are never silent: the kernel counts failed reservations in a
 * global of the program's .bss, which the skeleton maps into our memory;
 * after each batch the counter is compared (no system call) and a loss is
 * logged and reported through records_lost, so the owners of the lost
 * state re-read it (ports from sock_diag, descendants from `tracked`).
 * Exits need no such repair: waitid() stays the authority for job status.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ctld_events.h"
#include "ctld.skel.h"

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/kernel/bpf_events.h"
#include "daemon/kernel/bpf_setup.h"

static struct {
	struct loop *loop;
	struct bpf_setup setup;
	const struct bpf_events_ops *ops;
	struct ring_buffer *rb;
	int rb_fd;
	bool enabled;
	char status[128];
	uint64_t drops_seen;
	uint64_t received;
	unsigned port_watches;      /* port references in watched_ports */
	struct bpf_link *sock_link; /* handle_sock_state, attached while ports are watched */
	uint8_t *slots;             /* tracked_slots, mapped (bpf_events_track) */
	struct kernel_features features;
	char features_text[200];
	char listen_confirmation[128];
} B = { .rb_fd = -1, .status = "off", .setup = { .pin_lock_fd = -1, .core.fd = -1 } };

bool bpf_events_enabled(void)
{
	return B.enabled;
}

const char *bpf_events_status(void)
{
	return B.status;
}

const char *bpf_events_listen_confirmation(void)
{
	return B.listen_confirmation;
}

/* ------------------------------------------------------------ ring buffer */

static void decode_process(const struct ctld_event *ev, struct proc_event *pe)
{
	*pe = (struct proc_event){
		.time_ns = ev->time_ns,
		.job = ev->job,
		.pid = (pid_t)ev->pid,
		.ppid = (pid_t)ev->ppid,
		.root_pid = (pid_t)ev->root_pid,
		.status = (int)ev->status,
	};
	memcpy(pe->comm, ev->comm, sizeof(pe->comm));
	pe->comm[sizeof(pe->comm) - 1] = '\0';
}

static void decode_listener(const struct ctld_event *ev, struct tcp_listener *l)
{
	*l = (struct tcp_listener){
		.netns = ev->netns,
		.sock_ino = ev->sock_ino,
		.time_ns = ev->time_ns,
		.job = ev->job,
		.root_pid = (pid_t)ev->root_pid,
		.pid = (pid_t)ev->pid,
		.port = ev->port,
		.family = ev->family,
	};
	memcpy(l->addr, ev->addr, sizeof(l->addr));
	memcpy(l->comm, ev->comm, sizeof(l->comm));
	l->comm[sizeof(l->comm) - 1] = '\0';
}

static int handle_record(void *ctx, void *data, size_t size)
{
	const struct ctld_event *ev = data;
	const struct bpf_events_ops *ops = B.ops;
	struct proc_event pe;
	struct tcp_listener l;

	(void)ctx;
	if (size < sizeof(*ev))
		return 0;
	B.received++;
	log_debug("kernel event %u: pid %u root %u job %llu status %#x port %u", ev->kind,
		  ev->pid, ev->root_pid, (unsigned long long)ev->job, ev->status, ev->port);
	switch (ev->kind) {
	case CTLD_EV_EXIT:
		decode_process(ev, &pe);
		ops->process_exited(&pe, ops->ctx);
		break;
	case CTLD_EV_FORK:
		decode_process(ev, &pe);
		ops->process_forked(&pe, ops->ctx);
		break;
	case CTLD_EV_LISTEN:
		decode_listener(ev, &l);
		ops->listen_started(&l, ops->ctx);
		break;
	case CTLD_EV_CLOSE:
		decode_listener(ev, &l);
		l.listened = ev->status != 0;
		ops->listen_stopped(&l, ops->ctx);
		break;
	case CTLD_EV_LISTEN_DONE:
		decode_listener(ev, &l);
		ops->listen_done(&l, (int)ev->status, ops->ctx);
		break;
	}
	return 0;
}

static void check_losses(void)
{
	uint64_t drops = __atomic_load_n(&B.setup.skel->bss->ring_drops_total, __ATOMIC_RELAXED);

	if (drops == B.drops_seen)
		return;
	log_warn("kernel ring buffer was full: %llu event(s) lost so far; re-reading the state "
		 "they were about",
		 (unsigned long long)drops);
	B.drops_seen = drops;
	B.ops->records_lost(drops, B.ops->ctx);
}

void bpf_events_poll(void)
{
	int n;

	if (!B.enabled)
		return;
	n = ring_buffer__consume(B.rb);
	if (n < 0)
		log_warn("ring buffer consume failed: %s", strerror(-n));
	check_losses();
}

static void on_ring(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	(void)loop;
	(void)fd;
	(void)events;
	(void)ctx;
	bpf_events_poll();
}

/* ------------------------------------------------------------ start, stop */

static int start_ring(void)
{
	int err;

	B.rb = ring_buffer__new(bpf_map__fd(B.setup.skel->maps.events), handle_record, NULL, NULL);
	if (!B.rb) {
		err = -errno;
		snprintf(B.status, sizeof(B.status), "off (ring buffer: %s)", strerror(-err));
		return err;
	}
	/* libbpf's own epoll fd, level-triggered, nested in ours. */
	B.rb_fd = ring_buffer__epoll_fd(B.rb);
	if ((err = loop_fd_add(B.loop, B.rb_fd, EPOLLIN, on_ring, NULL))) {
		snprintf(B.status, sizeof(B.status), "off (event loop: %s)", strerror(-err));
		return err;
	}
	return 0;
}

void bpf_events_set_job_parent(pid_t pid)
{
	if (B.enabled)
		__atomic_store_n(&B.setup.skel->bss->job_parent_tgid, (__u32)pid, __ATOMIC_RELAXED);
}

/* An array map's elements are 8-byte aligned, in the mapping too. */
#define SLOT_STRIDE 8
#define SLOTS_BYTES (((CTLD_TRACKED_SLOTS * SLOT_STRIDE) + 4095) & ~(size_t)4095)

/* Without the mapping, bpf_events_track() is refused: the programs' filter
 * must count every tracked process. */
static void map_slots(void)
{
	void *p = mmap(NULL, SLOTS_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
		       bpf_map__fd(B.setup.skel->maps.tracked_slots), 0);

	if (p == MAP_FAILED)
		log_warn("cannot map tracked_slots: %s (adopted jobs are followed through /proc)",
			 strerror(errno));
	else
		B.slots = p;
}

int bpf_events_track(pid_t pid, uint64_t job, pid_t root)
{
	struct tracked_proc v = { .job = job, .root_pid = (__u32)root };
	__u32 key = (__u32)pid;
	uint32_t *slot;
	int err;

	if (!B.enabled || !B.slots)
		return -EOPNOTSUPP;
	slot = (uint32_t *)(void *)(B.slots + (size_t)(key & (CTLD_TRACKED_SLOTS - 1)) * SLOT_STRIDE);
	/* the counter first: the filter never says "not tracked" for a
	 * process in the map */
	__atomic_fetch_add(slot, 1, __ATOMIC_SEQ_CST);
	err = bpf_map__update_elem(B.setup.skel->maps.tracked, &key, sizeof(key), &v, sizeof(v),
				   BPF_NOEXIST);
	if (err)
		__atomic_fetch_sub(slot, 1, __ATOMIC_SEQ_CST);
	return err;
}

/* Which fexit variant to load (the argument count of inet_csk_listen_start),
 * or 0 for the sock_diag round trip; says which and why. */
static int choose_listen_path(const struct bpf_events_config *cfg)
{
	char why[96];

	if (cfg->listen_confirm == LISTEN_CONFIRM_SOCK_DIAG) {
		snprintf(B.listen_confirmation, sizeof(B.listen_confirmation),
			 "sock_diag (--listen-confirm sock_diag)");
		return 0;
	}
	if (!features_fexit_usable(&B.features, why, sizeof(why))) {
		snprintf(B.listen_confirmation, sizeof(B.listen_confirmation), "sock_diag (%s)", why);
		if (cfg->listen_confirm == LISTEN_CONFIRM_FEXIT)
			log_warn("--listen-confirm fexit: %s; confirming with sock_diag", why);
		return 0;
	}
	snprintf(B.listen_confirmation, sizeof(B.listen_confirmation), "fexit");
	return B.features.listen_args;
}

/* What runs without the programs, or when sock_diag cannot answer. */
static void describe_fallbacks(void)
{
	const char *diag = B.features.sock_diag_err ? "/proc/net/tcp" : "sock_diag";

	if (!B.enabled)
		snprintf(B.listen_confirmation, sizeof(B.listen_confirmation), "%s polling", diag);
	else if (B.features.sock_diag_err && !B.setup.listen_by_fexit)
		snprintf(B.listen_confirmation, sizeof(B.listen_confirmation),
			 "/proc/net/tcp (sock_diag: %s)", strerror(-B.features.sock_diag_err));
	else if (!B.setup.listen_by_fexit && !strncmp(B.listen_confirmation, "fexit", 5))
		snprintf(B.listen_confirmation, sizeof(B.listen_confirmation),
			 "sock_diag (the fexit program did not load)");
	if (B.features.sock_diag_err)
		log_warn("sock_diag does not answer (%s: inet_diag/tcp_diag not loadable?): "
			 "listeners are read from /proc/net/tcp, ~100x slower",
			 strerror(-B.features.sock_diag_err));
	if (!B.features.pidfd)
		log_info("pidfd_open is missing (Linux 5.3): jobs are signalled by pid while unreaped");
	log_info("listen confirmation: %s", B.listen_confirmation);
}

static bool essential_missing(char *why, size_t whylen)
{
	if (B.features.btf && !B.features.ringbuf) {
		snprintf(why, whylen, "no BPF ring buffer (BPF_MAP_TYPE_RINGBUF needs Linux 5.8)");
		return true;
	}
	return false;
}

void bpf_events_prefetch(const struct bpf_events_config *cfg)
{
	if (!cfg->disabled && geteuid() == 0)
		bpf_setup_prefetch(&B.setup);
}

bool bpf_events_init(struct loop *loop, const struct bpf_events_config *cfg,
		     const struct bpf_events_ops *ops)
{
	uint64_t t0 = now_monotonic_ns();
	bool bpf = !cfg->disabled && geteuid() == 0;
	char phases[BPF_SETUP_PHASES_LEN];
	char why[112];
	int listen_args;

	B.loop = loop;
	B.ops = ops;
	B.setup.pin_lock_fd = -1;
	if (bpf)
		bpf_setup_prefetch(&B.setup); /* when main() did not */
	features_probe(&B.features, bpf ? &B.setup.kbtf : NULL);
	features_format(&B.features, B.features_text, sizeof(B.features_text));
	log_info("kernel features: %s", B.features_text);
	B.setup.phases.probe_ms = (now_monotonic_ns() - t0) / 1e6;
	log_debug("kernel features probed in %.1f ms", B.setup.phases.probe_ms);
	listen_args = choose_listen_path(cfg);
	if (cfg->disabled) {
		snprintf(B.status, sizeof(B.status), "off (--no-bpf)");
		goto off;
	}
	if (essential_missing(why, sizeof(why)) ||
	    bpf_setup_open(&B.setup, cfg->pin_dir, cfg->job_parent, listen_args, why, sizeof(why))) {
		snprintf(B.status, sizeof(B.status), "off (%s)", why);
		goto off;
	}
	if (start_ring()) {
		bpf_events_shutdown();
		goto off;
	}
	map_slots();
	B.enabled = true;
	snprintf(B.status, sizeof(B.status), "on");
	bpf_setup_format_phases(&B.setup, phases, sizeof(phases));
	/* the line the benchmark reads (bench/measure.py) */
	log_info("eBPF on: programs attached in %.1f ms (%s), maps pinned in %s",
		 (now_monotonic_ns() - t0) / 1e6, phases, cfg->pin_dir);
	describe_fallbacks();
	return true;
off:
	bpf_setup_close(&B.setup); /* the kernel BTF fetched for nothing, if any */
	log_warn("eBPF is %s: exits come from waitid, ports from sock_diag polling", B.status);
	describe_fallbacks();
	return false;
}

void bpf_events_shutdown(void)
{
	B.enabled = false;
	if (B.rb) {
		if (B.rb_fd >= 0)
			loop_fd_del(B.loop, B.rb_fd);
		ring_buffer__free(B.rb);
		B.rb = NULL;
		B.rb_fd = -1;
	}
	if (B.sock_link) {
		bpf_link__destroy(B.sock_link);
		B.sock_link = NULL;
	}
	B.port_watches = 0;
	if (B.slots)
		munmap(B.slots, SLOTS_BYTES);
	B.slots = NULL;
	bpf_setup_close(&B.setup);
}

/* ------------------------------------------------------------ tracked map */

int bpf_events_set_job(pid_t pid, uint64_t job)
{
	struct tracked_proc v = { .job = job, .root_pid = (__u32)pid };
	__u32 key = (__u32)pid;

	if (!B.enabled)
		return -EOPNOTSUPP;
	/* BPF_EXIST: a process that already exited must not be re-added. */
	return bpf_map__update_elem(B.setup.skel->maps.tracked, &key, sizeof(key), &v, sizeof(v),
				    BPF_EXIST);
}

static bool belongs(const struct tracked_proc *v, uint64_t job, pid_t root)
{
	return v->job == job || (v->job == 0 && v->root_pid == (__u32)root);
}

/* True when the slot counters say no process is tracked at all. They count
 * every entry of `tracked` (raised before or right after its insert), so
 * zero everywhere means an empty map, known from 32 KiB of memory instead of
 * a walk: the kernel's get_next_key visits every one of the map's 16,384
 * buckets (~50 us, a sixth of the daemon's CPU per command when each job's
 * exit counted its descendants that way). */
static bool tracked_none(void)
{
	if (!B.slots)
		return false;
	for (size_t i = 0; i < CTLD_TRACKED_SLOTS; i++)
		if (__atomic_load_n((uint32_t *)(void *)(B.slots + i * SLOT_STRIDE),
				    __ATOMIC_RELAXED))
			return false;
	return true;
}

/* Calls fn for each key of `tracked`; stops when fn returns false. */
static void each_tracked(bool (*fn)(__u32 pid, const struct tracked_proc *v, void *ctx),
			 void *ctx)
{
	int fd = bpf_map__fd(B.setup.skel->maps.tracked);
	struct tracked_proc v;
	__u32 key, next;
	void *prev = NULL;

	if (tracked_none())
		return;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v) == 0 && !fn(key, &v, ctx))
			return;
	}
}

struct job_pids {
	uint64_t job;
	pid_t root;
	pid_t *pids;
	size_t max;
	int n;
};

static bool collect_job_pid(__u32 pid, const struct tracked_proc *v, void *ctx)
{
	struct job_pids *jp = ctx;

	if (belongs(v, jp->job, jp->root)) {
		if ((size_t)jp->n < jp->max)
			jp->pids[jp->n] = (pid_t)pid;
		jp->n++;
	}
	return true;
}

int bpf_events_job_pids(uint64_t job, pid_t root, pid_t *pids, size_t max)
{
	struct job_pids jp = { .job = job, .root = root, .pids = pids, .max = max };

	if (!B.enabled)
		return -EOPNOTSUPP;
	each_tracked(collect_job_pid, &jp);
	return jp.n;
}

bool bpf_events_pid_in_job(pid_t pid, uint64_t job, pid_t root)
{
	struct tracked_proc v;
	__u32 key = (__u32)pid;

	return B.enabled &&
	       bpf_map__lookup_elem(B.setup.skel->maps.tracked, &key, sizeof(key), &v, sizeof(v),
				    0) == 0 &&
	       belongs(&v, job, root);
}

static bool count_one(__u32 pid, const struct tracked_proc *v, void *ctx)
{
	(void)pid;
	(void)v;
	++*(uint32_t *)ctx;
	return true;
}

/* ------------------------------------------------------------ watched ports */

/* The socket program runs only while at least one port is watched: a
 * daemon nobody asks about ports costs TCP nothing. */
static int sock_program_ref(int delta)
{
	if (delta > 0 && B.port_watches++ == 0) {
		B.sock_link = bpf_program__attach(B.setup.skel->progs.handle_sock_state);
		if (!B.sock_link) {
			int err = -errno;

			B.port_watches--;
			log_warn("failed to attach handle_sock_state: %s", strerror(-err));
			return err;
		}
	} else if (delta < 0 && B.port_watches && --B.port_watches == 0) {
		bpf_link__destroy(B.sock_link);
		B.sock_link = NULL;
	}
	return 0;
}

static int port_ref(uint64_t netns_ino, uint16_t port, int delta)
{
	struct port_key key = { .netns = (__u32)netns_ino, .port = port };
	struct bpf_map *map;
	__u32 refs = 0;
	int err;

	if (!B.enabled)
		return -EOPNOTSUPP;
	map = B.setup.skel->maps.watched_ports;
	/* attach before the first key exists, detach after the last is gone */
	if (delta > 0 && (err = sock_program_ref(1)))
		return err;
	if (delta < 0)
		sock_program_ref(-1);
	bpf_map__lookup_elem(map, &key, sizeof(key), &refs, sizeof(refs), 0);
	if (delta < 0 && refs <= 1)
		return bpf_map__delete_elem(map, &key, sizeof(key), 0);
	refs += (__u32)delta;
	err = bpf_map__update_elem(map, &key, sizeof(key), &refs, sizeof(refs), BPF_ANY);
	if (err && delta > 0)
		sock_program_ref(-1); /* the watch was refused: no reference held */
	return err;
}

int bpf_events_watch_port(uint64_t netns_ino, uint16_t port)
{
	return port_ref(netns_ino, port, 1);
}

int bpf_events_unwatch_port(uint64_t netns_ino, uint16_t port)
{
	return port_ref(netns_ino, port, -1);
}

/* ------------------------------------------------------------ stats */

static int read_stats(struct ctld_stats *sum)
{
	int ncpu = libbpf_num_possible_cpus();
	struct ctld_stats *per_cpu;
	__u32 zero = 0;
	int err;

	memset(sum, 0, sizeof(*sum));
	if (!B.enabled || ncpu <= 0)
		return -EOPNOTSUPP;
	per_cpu = calloc((size_t)ncpu, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	err = bpf_map__lookup_elem(B.setup.skel->maps.stats, &zero, sizeof(zero), per_cpu,
				   (size_t)ncpu * sizeof(*per_cpu), 0);
	for (int i = 0; !err && i < ncpu; i++) {
		sum->events += per_cpu[i].events;
		sum->drops += per_cpu[i].drops;
		sum->tracked_full += per_cpu[i].tracked_full;
		sum->fork_runs += per_cpu[i].fork_runs;
		sum->exit_runs += per_cpu[i].exit_runs;
		sum->sock_runs += per_cpu[i].sock_runs;
		sum->listen_runs += per_cpu[i].listen_runs;
	}
	free(per_cpu);
	return err;
}

static void add_program(ctld_StatsReply *st, struct bpf_program *prog, uint64_t runs)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);
	ctld_ProgramStats *p;

	if (!bpf_program__autoload(prog) || st->programs_count >= ARRAY_SIZE(st->programs))
		return;
	p = &st->programs[st->programs_count++];
	copy_str(p->name, sizeof(p->name), bpf_program__name(prog));
	p->run_count = runs;
	/* Kernel timing exists only while kernel.bpf_stats_enabled=1. */
	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0)
		p->run_time_ns = info.run_time_ns;
}

void bpf_events_fill_stats(ctld_StatsReply *st)
{
	struct ctld_stats sum;
	struct ctld *skel = B.setup.skel;

	st->bpf = B.enabled;
	copy_str(st->bpf_status, sizeof(st->bpf_status), B.status);
	copy_str(st->listen_confirmation, sizeof(st->listen_confirmation), B.listen_confirmation);
	copy_str(st->kernel_features, sizeof(st->kernel_features), B.features_text);
	if (read_stats(&sum))
		return;
	st->ring_events = sum.events;
	st->ring_drops = sum.drops;
	st->ring_received = B.received;
	add_program(st, skel->progs.handle_fork, sum.fork_runs);
	add_program(st, skel->progs.handle_exit, sum.exit_runs);
	add_program(st, skel->progs.handle_exit_live, sum.exit_runs);
	add_program(st, skel->progs.handle_sock_state, sum.sock_runs);
	add_program(st, skel->progs.handle_listen_done, sum.listen_runs);
	add_program(st, skel->progs.handle_listen_done_backlog, sum.listen_runs);
	st->tracked_processes = 0;
	each_tracked(count_one, &st->tracked_processes);
}
