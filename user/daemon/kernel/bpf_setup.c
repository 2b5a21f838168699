// SPDX-License-Identifier: BSD-2-Clause
/*
 * bpf_setup.c - loading, attaching and pinning the kernel programs.
 *
 * The pin directory is locked with flock() on the directory itself: a second
 * daemon using the same pins is refused, and pins left by a daemon that died
 * (its lock died with it) are removed at start. Maps and programs are
 * pinned, their links are not, so a crashed daemon never leaves programs
 * attached.
 *
 * handle_sock_state is loaded but not attached here: it runs on every TCP
 * state change in the system, so bpf_events.c attaches it only while some
 * port is watched.
 *
 * Of the two fexit variants on inet_csk_listen_start, the one matching the
 * kernel's BTF is loaded (features.c found the argument count and that
 * trampolines work); when none is wanted, or loading it fails anyway, both
 * stay unloaded and the tracepoint reports LISTEN candidates again. The
 * fexit stays attached while no port is watched: listen() is rare, and it
 * then costs one map lookup.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "ctld.skel.h"

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/kernel/bpf_setup.h"
#include "daemon/kernel/btf_scan.h"
#include "daemon/kernel/core_btf.h"

#define BPF_LOG_STATS_LEVEL 4 /* the kernel's BPF_LOG_STATS */

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

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

static int check_preconditions(char *why, size_t whylen)
{
	if (geteuid() != 0)
		return errorf(why, whylen, -EPERM, "not root");
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		return errorf(why, whylen, -ENOENT, "no kernel BTF at /sys/kernel/btf/vmlinux");
	if (!in_initial_pid_namespace())
		return errorf(why, whylen, -EOPNOTSUPP, "daemon is in a nested pid namespace");
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

static int lock_pin_dir(struct bpf_setup *b, char *why, size_t whylen)
{
	int err;

	if (mkdir(b->pin_dir, 0700) < 0 && errno != EEXIST)
		return errorf(why, whylen, -errno, "cannot create %.80s: %s", b->pin_dir,
			    strerror(errno));
	b->pin_lock_fd = open(b->pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->pin_lock_fd < 0 || flock(b->pin_lock_fd, LOCK_EX | LOCK_NB) < 0) {
		err = -errno;
		if (b->pin_lock_fd >= 0)
			close(b->pin_lock_fd);
		b->pin_lock_fd = -1;
		return errorf(why, whylen, err, "%.80s is used by another running daemon",
			    b->pin_dir);
	}
	remove_pins(b->pin_dir);
	return 0;
}

static int pin_all(struct bpf_setup *b)
{
	struct bpf_program *prog;
	struct bpf_map *map;
	char path[512];
	int err;

	bpf_object__for_each_map(map, b->skel->obj) {
		if (strchr(bpf_map__name(map), '.'))
			continue; /* .rodata and friends */
		snprintf(path, sizeof(path), "%s/%s", b->pin_dir, bpf_map__name(map));
		if ((err = bpf_map__pin(map, path)))
			return err;
	}
	bpf_object__for_each_program(prog, b->skel->obj) {
		if (!bpf_program__autoload(prog))
			continue;
		snprintf(path, sizeof(path), "%s/%s", b->pin_dir, bpf_program__name(prog));
		if ((err = bpf_program__pin(prog, path)))
			return err;
	}
	return 0;
}

/* ------------------------------------------------------------ load */

/* The verifier's own account of its time (BPF_LOG_STATS, kernels >= 5.2):
 * a few lines per program, so the load phase splits into verification and
 * what libbpf does before it (kernel BTF, CO-RE relocations, maps). */
static void ask_verifier_stats(struct bpf_setup *b)
{
	struct bpf_program *prog;
	size_t i = 0;

	bpf_object__for_each_program(prog, b->skel->obj) {
		if (!bpf_program__autoload(prog))
			continue; /* of each pair of variants one loads: 4 buffers do */
		if (i == ARRAY_SIZE(b->verifier_log))
			break;
		b->verifier_log[i][0] = '\0';
		bpf_program__set_log_buf(prog, b->verifier_log[i], sizeof(b->verifier_log[i]));
		bpf_program__set_log_level(prog, BPF_LOG_STATS_LEVEL);
		i++;
	}
}

static double verifier_ms(const struct bpf_setup *b)
{
	double ms = 0;

	for (size_t i = 0; i < ARRAY_SIZE(b->verifier_log); i++) {
		const char *at = strstr(b->verifier_log[i], "verification time ");
		unsigned long us;

		if (at && sscanf(at, "verification time %lu usec", &us) == 1)
			ms += us / 1e3;
	}
	return ms;
}

/* Milliseconds since *t, and *t moved to now: one phase of the start-up. */
static double phase_ms(uint64_t *t)
{
	uint64_t now = now_monotonic_ns();
	double ms = (now - *t) / 1e6;

	*t = now;
	return ms;
}

/* Whether libbpf's load can take a placeholder for the kernel's BTF
 * (kernel_btf.c says why): CO-RE has the small copy, and no ksym extern
 * (libbpf would read the kernel's type of each from that BTF). */
static bool placeholder_will_do(const struct bpf_setup *b)
{
	const struct btf *local = bpf_object__btf(b->skel->obj);

	return b->placeholders_ok && b->core.fd >= 0 && local &&
	       btf__find_by_name_kind(local, ".ksyms", BTF_KIND_DATASEC) < 0;
}

/* Opens the skeleton (pointed at the small CO-RE BTF when there is one)
 * and loads it, with the fexit variant for listen_args arguments (0:
 * none); 1 when the open failed (errno says why). */
static int open_and_load(struct bpf_setup *b, int listen_args, bool stats, uint64_t *t)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);

	if (b->core.fd >= 0) {
		opts.btf_custom_path = b->core.path;
		if (!(b->skel = ctld__open_opts(&opts)))
			core_btf_close(&b->core); /* then without it */
	}
	if (!b->skel && !(b->skel = ctld__open()))
		return 1;
	b->phases.open_ms = phase_ms(t);
	bpf_program__set_autoattach(b->skel->progs.handle_sock_state, false);
	bpf_program__set_autoload(b->skel->progs.handle_exit, b->exit_group_dead);
	bpf_program__set_autoload(b->skel->progs.handle_exit_live, !b->exit_group_dead);
	bpf_program__set_autoload(b->skel->progs.handle_listen_done, listen_args == 1);
	bpf_program__set_autoload(b->skel->progs.handle_listen_done_backlog, listen_args == 2);
	b->skel->rodata->listen_by_fexit = listen_args != 0;
	b->listen_by_fexit = listen_args != 0;
	if (stats)
		ask_verifier_stats(b);
	kernel_btf_use_placeholders(&b->kbtf, placeholder_will_do(b));
	return ctld__load(b->skel);
}

/* Loads once more after a failed load (the skeleton is destroyed first). */
static int reload(struct bpf_setup *b, int listen_args, bool stats, uint64_t *t)
{
	ctld__destroy(b->skel);
	b->skel = NULL;
	memset(b->verifier_log, 0, sizeof(b->verifier_log));
	return open_and_load(b, listen_args, stats, t);
}

static int load_and_attach(struct bpf_setup *b, pid_t job_parent, int listen_args, char *why,
			   size_t whylen)
{
	uint64_t t = now_monotonic_ns();
	int err = open_and_load(b, listen_args, true, &t);

	if (err < 0 && b->kbtf.handed_placeholders) {
		log_warn("eBPF load with a placeholder for libbpf's kernel BTF failed (%s); once "
			 "more with libbpf's parse of it", strerror(-err));
		b->placeholders_ok = false; /* not again */
		err = reload(b, listen_args, true, &t);
	}
	if (err < 0) {
		/* With our statistics buffer libbpf neither fetches nor prints
		 * the verifier's full log: load once more without it, so the
		 * log says why (and a buffer too small for the statistics is
		 * no reason to run without eBPF). */
		log_info("eBPF load failed (%s); once more without verifier statistics",
			 strerror(-err));
		err = reload(b, listen_args, false, &t);
	}
	if (err < 0 && (b->core.fd >= 0 || b->exit_group_dead)) {
		log_warn("eBPF load failed (%s); once more against the whole kernel BTF, with "
			 "handle_exit_live", strerror(-err));
		core_btf_close(&b->core);
		b->kernel = NULL; /* not again */
		b->exit_group_dead = false;
		err = reload(b, listen_args, false, &t);
	}
	if (err < 0 && listen_args) {
		log_warn("loading the fexit on inet_csk_listen_start failed (%s); confirming "
			 "listeners with sock_diag instead",
			 strerror(-err));
		err = reload(b, 0, false, &t);
	}
	if (err == 1)
		return errorf(why, whylen, -errno ? -errno : -EINVAL, "open failed");
	if (err)
		return errorf(why, whylen, err, "load failed: %s", strerror(-err));
	b->phases.load_ms = phase_ms(&t);
	b->phases.verify_ms = verifier_ms(b);
	b->skel->bss->job_parent_tgid = (__u32)job_parent;
	if ((err = ctld__attach(b->skel)))
		return errorf(why, whylen, err, "attach failed: %s", strerror(-err));
	b->phases.attach_ms = phase_ms(&t);
	if ((err = pin_all(b)))
		return errorf(why, whylen, err, "pinning in %.60s failed: %s", b->pin_dir,
			    strerror(-err));
	b->phases.pin_ms = phase_ms(&t);
	return 0;
}

/* Newer kernels pass sched_process_exit group_dead: its BTF typedef
 * btf_trace_sched_process_exit then points to a FUNC_PROTO (ctx, p,
 * group_dead), a bool last. handle_exit needs it, else handle_exit_live. */
static bool exit_tracepoint_has_group_dead(const struct btf_index *kernel)
{
	int id = btf_index_find(kernel, "btf_trace_sched_process_exit", BTF_KIND_TYPEDEF);
	const struct btf_type *t = id > 0 ? btf_index_type(kernel, (uint32_t)id) : NULL;
	const struct btf_type *last;

	t = t ? btf_index_type(kernel, t->type) : NULL;
	t = t && btf_is_ptr(t) ? btf_index_type(kernel, t->type) : NULL;
	if (!t || !btf_is_func_proto(t) || btf_vlen(t) != 3)
		return false;
	last = btf_index_resolve(kernel, btf_params(t)[2].type);
	return last && btf_is_int(last) && last->size == 1;
}

/* In the start-up thread, once the kernel's index is built (kernel_btf.h):
 * the small BTF libbpf relocates against (core_btf.h), from the programs'
 * BTF in the object the skeleton embeds, and which exit program fits.
 * Nothing here logs: wait_for_index() does, on the main thread. */
static void kernel_indexed(const struct btf_index *kernel, void *ctx)
{
	struct bpf_setup *b = ctx;
	uint64_t t0 = now_monotonic_ns();
	size_t object_len, local_len;
	const void *object = ctld__elf_bytes(&object_len);
	const uint8_t *local;

	b->exit_group_dead = exit_tracepoint_has_group_dead(kernel);
	b->core_err = core_btf_of_object(object, object_len, &local, &local_len) ?:
		      core_btf_make(&b->core, local, local_len, kernel);
	b->phases.core_ms = (now_monotonic_ns() - t0) / 1e6;
	b->phases.core_types = b->core_err ? 0 : b->core.ntypes;
}

void bpf_setup_prefetch(struct bpf_setup *b)
{
	const struct kernel_btf_ops ops = { .indexed = kernel_indexed, .ctx = b };
	uint64_t t0 = now_monotonic_ns();
	int err;

	if (b->kbtf_fetched)
		return;
	b->kbtf_fetched = true;
	b->core = (struct core_btf){ .fd = -1 };
	b->core_err = -ENODATA; /* until the thread made it */
	err = kernel_btf_open(&b->kbtf, &ops);
	b->phases.fetch_ms = (now_monotonic_ns() - t0) / 1e6;
	b->phases.fetch_by = err ? "libbpf" : b->kbtf.how;
	if (err)
		log_info("kernel BTF: cannot fetch it once for all (%s); libbpf reads it itself",
			 strerror(-err));
}

/* The index and the CO-RE copy started by bpf_setup_prefetch(), waited for. */
static void wait_for_index(struct bpf_setup *b)
{
	uint64_t t0 = now_monotonic_ns();

	b->kernel = kernel_btf_index(&b->kbtf);
	b->phases.index_wait_ms = (now_monotonic_ns() - t0) / 1e6;
	b->phases.index_ms = b->kbtf.index_ms;
	b->phases.kernel_types = b->kernel ? b->kernel->count - 1 : 0;
	if (b->kbtf.data && !b->kernel)
		log_info("kernel BTF: cannot index it (%s); libbpf parses it itself",
			 strerror(-b->kbtf.index_err));
	else if (b->kernel && b->core_err)
		log_info("CO-RE against the whole kernel BTF: cannot make a small copy (%s)",
			 strerror(-b->core_err));
}

int bpf_setup_open(struct bpf_setup *b, const char *pin_dir, pid_t job_parent, int listen_args,
		   char *why, size_t whylen)
{
	int err;

	b->skel = NULL;
	b->pin_lock_fd = -1;
	if (!b->kbtf_fetched)
		b->core = (struct core_btf){ .fd = -1 }; /* else the thread's */
	b->placeholders_ok = true;
	copy_str(b->pin_dir, sizeof(b->pin_dir), pin_dir);
	wait_for_index(b);
	if (!(err = check_preconditions(why, whylen)) && (err = ensure_bpffs(b->pin_dir)))
		err = errorf(why, whylen, err, "cannot mount bpffs: %s", strerror(-err));
	if (!err && !(err = lock_pin_dir(b, why, whylen))) {
		libbpf_set_print(libbpf_log);
		err = load_and_attach(b, job_parent, listen_args, why, whylen);
	}
	/* whatever happened, the kernel BTF and its index are not kept */
	b->kernel = NULL; /* freed with kbtf */
	b->phases.placeholders = b->kbtf.handed_placeholders;
	b->phases.parses = b->kbtf.handed_parses;
	b->phases.lookups = b->kbtf.lookups;
	kernel_btf_close(&b->kbtf);
	core_btf_close(&b->core); /* libbpf read it at the load */
	if (err)
		bpf_setup_close(b);
	return err;
}

void bpf_setup_format_phases(const struct bpf_setup *b, char *out, size_t len)
{
	const struct bpf_setup_phases *p = &b->phases;

	snprintf(out, len, "kernel BTF fetch %.1f by %s for the probe and %u load(s), index ahead "
			   "%.1f of %u types, CO-RE BTF ahead %.1f of %u types, probe %.1f, index wait "
			   "%.1f, open %.1f, load %.1f of which verifier %.1f, attach %.1f, pin %.1f; "
			   "libbpf's kernel BTF: %u placeholder(s), %u lookup(s) by the index, %u "
			   "parse(s)",
		 p->fetch_ms, p->fetch_by ? p->fetch_by : "libbpf", p->placeholders + p->parses,
		 p->index_ms, p->kernel_types, p->core_ms, p->core_types, p->probe_ms,
		 p->index_wait_ms, p->open_ms, p->load_ms, p->verify_ms, p->attach_ms, p->pin_ms,
		 p->placeholders, p->lookups, p->parses);
}

void bpf_setup_close(struct bpf_setup *b)
{
	b->kernel = NULL;
	kernel_btf_close(&b->kbtf); /* a start that failed before bpf_setup_open() */
	core_btf_close(&b->core);   /* after: the thread may have been making it */
	if (b->skel) {
		ctld__destroy(b->skel);
		b->skel = NULL;
	}
	if (b->pin_lock_fd >= 0) {
		remove_pins(b->pin_dir);
		rmdir(b->pin_dir);
		close(b->pin_lock_fd);
		b->pin_lock_fd = -1;
	}
}
