// SPDX-License-Identifier: BSD-2-Clause
/*
 * bpf_events.c - the skeleton's life cycle and the ring buffer.
 *
 *   check (root, BTF, initial pid namespace) -> mount bpffs -> lock the pin
 *   dir and clear stale pins -> open -> set rodata -> load -> attach -> pin
 *   -> ring buffer in the epoll loop -> ... -> unpin -> destroy
 *
 * Any failure on the way turns BPF off with a loud reason; the daemon keeps
 * serving with the fallbacks (waitid for exits, sock_diag polling for ports).
 *
 * The pin directory is locked with flock() on the directory itself: a second
 * daemon using the same pins is refused, and pins left by a daemon that died
 * (its lock died with it) are removed at start. Programs are pinned but not
 * their links, so a crashed daemon never leaves programs attached.
 *
 * Losses are never silent: the kernel counts failed reservations in a
 * global of the program's .bss, which the skeleton maps into our memory;
 * after each batch the counter is compared (no system call), a loss is
 * logged and port watches are re-checked with sock_diag so a dropped LISTEN
 * cannot leave a client waiting forever. Exits need no such repair: waitid()
 * stays the authority for job status.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ctld_events.h"
#include "ctld.skel.h"

#include "daemon/kernel/bpf_events.h"
#include "daemon/jobs/jobs.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "common/util.h"
#include "daemon/watch/watch_port.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

static struct {
	struct loop *loop;
	struct ctld *skel;
	struct ring_buffer *rb;
	int rb_fd;
	int pin_lock_fd;
	char pin_dir[256];
	bool enabled;
	char status[128];
	uint64_t drops_seen;
	uint64_t received;
	unsigned port_watches;        /* port references in watched_ports */
	struct bpf_link *sock_link;   /* handle_sock_state, attached while ports are watched */
} B = { .rb_fd = -1, .pin_lock_fd = -1, .status = "off" };

bool bpf_events_enabled(void)
{
	return B.enabled;
}

const char *bpf_events_status(void)
{
	return B.status;
}

/* libbpf's format strings are its own; the prototype is libbpf's callback. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];

	if (level == LIBBPF_DEBUG && log_get_level() < LOG_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_msg(level == LIBBPF_WARN ? LOG_WARN : LOG_DEBUG, "%s", line);
	return 0;
}

/* ------------------------------------------------------------ preconditions */

/* BPF reports global pids; in a nested pid namespace they would not match ours. */
static bool in_initial_pid_namespace(void)
{
	char line[256];
	bool initial = true;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6) == 0) {
			initial = strchr(line + 6, '\t') == strrchr(line + 6, '\t');
			break;
		}
	}
	fclose(f);
	return initial;
}

static int check_preconditions(void)
{
	if (geteuid() != 0) {
		snprintf(B.status, sizeof(B.status), "off (not root)");
		return -EPERM;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		snprintf(B.status, sizeof(B.status), "off (no kernel BTF at /sys/kernel/btf/vmlinux)");
		return -ENOENT;
	}
	if (!in_initial_pid_namespace()) {
		snprintf(B.status, sizeof(B.status), "off (daemon is in a nested pid namespace)");
		return -EOPNOTSUPP;
	}
	return 0;
}

/* ------------------------------------------------------------ pin directory */

static int ensure_bpffs(const char *pin_dir)
{
	struct statfs sfs;

	if (strncmp(pin_dir, "/sys/fs/bpf", 11) != 0)
		return 0; /* a custom location: the operator mounted it */
	if (statfs("/sys/fs/bpf", &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC)
		return 0;
	mkdir("/sys/fs/bpf", 0700);
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") < 0)
		return -errno;
	log_info("mounted bpffs on /sys/fs/bpf");
	return 0;
}

static void remove_pins(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && unlinkat(dirfd(d), de->d_name, 0) == 0)
			log_debug("removed stale pin %s/%s", dir, de->d_name);
	closedir(d);
}

static int lock_pin_dir(const char *dir)
{
	int err;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		snprintf(B.status, sizeof(B.status), "off (cannot create %.80s: %s)", dir,
			 strerror(errno));
		return err;
	}
	B.pin_lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (B.pin_lock_fd < 0 || flock(B.pin_lock_fd, LOCK_EX | LOCK_NB) < 0) {
		err = -errno;
		snprintf(B.status, sizeof(B.status), "off (%.80s is used by another running daemon)",
			 dir);
		if (B.pin_lock_fd >= 0)
			close(B.pin_lock_fd);
		B.pin_lock_fd = -1;
		return err;
	}
	remove_pins(dir);
	return 0;
}

static int pin_all(void)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	char path[512];
	int err;

	bpf_object__for_each_map(map, B.skel->obj) {
		if (strchr(bpf_map__name(map), '.'))
			continue; /* .rodata and friends */
		snprintf(path, sizeof(path), "%s/%s", B.pin_dir, bpf_map__name(map));
		if ((err = bpf_map__pin(map, path)))
			return err;
	}
	bpf_object__for_each_program(prog, B.skel->obj) {
		if (!bpf_program__autoload(prog))
			continue;
		snprintf(path, sizeof(path), "%s/%s", B.pin_dir, bpf_program__name(prog));
		if ((err = bpf_program__pin(prog, path)))
			return err;
	}
	return 0;
}

/* ------------------------------------------------------------ ring buffer */

static void event_to_port(const struct ctld_event *ev, struct port_event *pe)
{
	memset(pe, 0, sizeof(*pe));
	pe->netns = ev->netns;
	pe->sock_ino = ev->sock_ino;
	pe->time_ns = ev->time_ns;
	pe->port = ev->port;
	pe->family = ev->family;
	memcpy(pe->addr, ev->addr, sizeof(pe->addr));
	pe->pid = (pid_t)ev->pid;
	memcpy(pe->comm, ev->comm, sizeof(pe->comm));
	pe->comm[sizeof(pe->comm) - 1] = '\0';
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct ctld_event *ev = data;
	struct port_event pe;

	(void)ctx;
	if (size < sizeof(*ev))
		return 0;
	B.received++;
	log_debug("kernel event %u: pid %u root %u job %llu status %#x port %u", ev->kind,
		  ev->pid, ev->root_pid, (unsigned long long)ev->job, ev->status, ev->port);
	switch (ev->kind) {
	case CTLD_EV_EXIT:
		jobs_kernel_exit((pid_t)ev->pid, (pid_t)ev->root_pid, ev->job, (int)ev->status,
				 ev->time_ns);
		break;
	case CTLD_EV_FORK:
		jobs_kernel_fork((pid_t)ev->ppid, (pid_t)ev->pid, (pid_t)ev->root_pid, ev->job);
		break;
	case CTLD_EV_LISTEN:
		event_to_port(ev, &pe);
		watch_port_kernel_listen(&pe);
		break;
	case CTLD_EV_CLOSE:
		event_to_port(ev, &pe);
		watch_port_kernel_close(&pe);
		break;
	}
	return 0;
}

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
	err = bpf_map__lookup_elem(B.skel->maps.stats, &zero, sizeof(zero), per_cpu,
				   (size_t)ncpu * sizeof(*per_cpu), 0);
	for (int i = 0; !err && i < ncpu; i++) {
		sum->events += per_cpu[i].events;
		sum->drops += per_cpu[i].drops;
		sum->tracked_full += per_cpu[i].tracked_full;
		sum->fork_runs += per_cpu[i].fork_runs;
		sum->exit_runs += per_cpu[i].exit_runs;
		sum->sock_runs += per_cpu[i].sock_runs;
	}
	free(per_cpu);
	return err;
}

static void check_losses(void)
{
	uint64_t drops = __atomic_load_n(&B.skel->bss->ring_drops_total, __ATOMIC_RELAXED);

	if (drops == B.drops_seen)
		return;
	log_warn("kernel ring buffer was full: %llu event(s) lost so far; re-checking ports",
		 (unsigned long long)drops);
	B.drops_seen = drops;
	watch_port_resync();
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

static int load_and_attach(void)
{
	int err;

	B.skel = ctld__open();
	if (!B.skel)
		return -errno ? -errno : -EINVAL;
	B.skel->rodata->daemon_tgid = (__u32)getpid();
	/* Runs on every TCP state change in the system: attached only while
	 * some client watches a port (see port_ref). */
	bpf_program__set_autoattach(B.skel->progs.handle_sock_state, false);
	if ((err = ctld__load(B.skel))) {
		snprintf(B.status, sizeof(B.status), "off (load failed: %s)", strerror(-err));
		return err;
	}
	if ((err = ctld__attach(B.skel))) {
		snprintf(B.status, sizeof(B.status), "off (attach failed: %s)", strerror(-err));
		return err;
	}
	if ((err = pin_all())) {
		snprintf(B.status, sizeof(B.status), "off (pinning in %.60s failed: %s)", B.pin_dir,
			 strerror(-err));
		return err;
	}
	B.rb = ring_buffer__new(bpf_map__fd(B.skel->maps.events), handle_event, NULL, NULL);
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

bool bpf_events_init(struct loop *loop, const struct bpf_events_config *cfg)
{
	uint64_t t0 = now_monotonic_ns();
	int err;

	B.loop = loop;
	copy_str(B.pin_dir, sizeof(B.pin_dir), cfg->pin_dir);
	if (cfg->disabled) {
		snprintf(B.status, sizeof(B.status), "off (--no-bpf)");
		goto off;
	}
	if (check_preconditions())
		goto off;
	if ((err = ensure_bpffs(B.pin_dir))) {
		snprintf(B.status, sizeof(B.status), "off (cannot mount bpffs: %s)", strerror(-err));
		goto off;
	}
	if (lock_pin_dir(B.pin_dir))
		goto off;
	libbpf_set_print(libbpf_log);
	if (load_and_attach()) {
		bpf_events_shutdown();
		goto off;
	}
	B.enabled = true;
	snprintf(B.status, sizeof(B.status), "on");
	log_info("eBPF on: programs attached in %.1f ms, maps pinned in %s",
		 (now_monotonic_ns() - t0) / 1e6, B.pin_dir);
	return true;
off:
	log_warn("eBPF is %s: exits come from waitid, ports from sock_diag polling", B.status);
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
	if (B.skel) {
		ctld__destroy(B.skel);
		B.skel = NULL;
	}
	if (B.pin_lock_fd >= 0) {
		remove_pins(B.pin_dir);
		rmdir(B.pin_dir);
		close(B.pin_lock_fd);
		B.pin_lock_fd = -1;
	}
}

/* ------------------------------------------------------------ tracked map */

int bpf_events_set_job(pid_t pid, uint64_t job)
{
	struct tracked_proc v = { .job = job, .root_pid = (__u32)pid };
	__u32 key = (__u32)pid;

	if (!B.enabled)
		return -EOPNOTSUPP;
	/* BPF_EXIST: a process that already exited must not be re-added. */
	return bpf_map__update_elem(B.skel->maps.tracked, &key, sizeof(key), &v, sizeof(v),
				    BPF_EXIST);
}

static bool belongs(const struct tracked_proc *v, uint64_t job, pid_t root)
{
	return v->job == job || (v->job == 0 && v->root_pid == (__u32)root);
}

int bpf_events_job_pids(uint64_t job, pid_t root, pid_t *pids, size_t max)
{
	struct tracked_proc v;
	__u32 key, next;
	int n = 0, fd;
	void *prev = NULL;

	if (!B.enabled)
		return -EOPNOTSUPP;
	fd = bpf_map__fd(B.skel->maps.tracked);
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v) == 0 && belongs(&v, job, root)) {
			if ((size_t)n < max)
				pids[n] = (pid_t)key;
			n++;
		}
	}
	return n;
}

bool bpf_events_pid_in_job(pid_t pid, uint64_t job, pid_t root)
{
	struct tracked_proc v;
	__u32 key = (__u32)pid;

	return B.enabled &&
	       bpf_map__lookup_elem(B.skel->maps.tracked, &key, sizeof(key), &v, sizeof(v), 0) ==
		       0 &&
	       belongs(&v, job, root);
}

/* ------------------------------------------------------------ watched ports */

/* Forgets listeners recorded while the program ran: with it detached their
 * close would be missed, and a later socket at the same address must not
 * inherit a stale entry. */
static void clear_listeners(void)
{
	int fd = bpf_map__fd(B.skel->maps.listeners);
	__u64 key;

	while (bpf_map_get_next_key(fd, NULL, &key) == 0)
		if (bpf_map_delete_elem(fd, &key))
			break;
}

/* The socket program runs only while at least one port is watched: a
 * daemon nobody asks about ports costs TCP nothing. */
static int sock_program_ref(int delta)
{
	if (delta > 0 && B.port_watches++ == 0) {
		B.sock_link = bpf_program__attach(B.skel->progs.handle_sock_state);
		if (!B.sock_link) {
			int err = -errno;

			B.port_watches--;
			log_warn("failed to attach handle_sock_state: %s", strerror(-err));
			return err;
		}
	} else if (delta < 0 && B.port_watches && --B.port_watches == 0) {
		bpf_link__destroy(B.sock_link);
		B.sock_link = NULL;
		clear_listeners();
	}
	return 0;
}

static int port_ref(uint64_t netns_ino, uint16_t port, int delta)
{
	struct port_key key = { .netns = (__u32)netns_ino, .port = port };
	__u32 refs = 0;
	int err;

	if (!B.enabled)
		return -EOPNOTSUPP;
	/* attach before the first key exists, detach after the last is gone */
	if (delta > 0 && (err = sock_program_ref(1)))
		return err;
	if (delta < 0)
		sock_program_ref(-1);
	bpf_map__lookup_elem(B.skel->maps.watched_ports, &key, sizeof(key), &refs, sizeof(refs),
			     0);
	if (delta < 0 && refs <= 1)
		return bpf_map__delete_elem(B.skel->maps.watched_ports, &key, sizeof(key), 0);
	refs += (__u32)delta;
	err = bpf_map__update_elem(B.skel->maps.watched_ports, &key, sizeof(key), &refs,
				   sizeof(refs), BPF_ANY);
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

static uint32_t count_tracked(void)
{
	int fd = bpf_map__fd(B.skel->maps.tracked);
	__u32 key, next;
	void *prev = NULL;
	uint32_t n = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		n++;
	}
	return n;
}

void bpf_events_fill_stats(ctld_StatsReply *st)
{
	struct ctld_stats sum;

	st->bpf = B.enabled;
	copy_str(st->bpf_status, sizeof(st->bpf_status), B.status);
	if (read_stats(&sum))
		return;
	st->ring_events = sum.events;
	st->ring_drops = sum.drops;
	st->ring_received = B.received;
	add_program(st, B.skel->progs.handle_fork, sum.fork_runs);
	add_program(st, B.skel->progs.handle_exit, sum.exit_runs);
	add_program(st, B.skel->progs.handle_sock_state, sum.sock_runs);
	st->tracked_processes = count_tracked();
}
