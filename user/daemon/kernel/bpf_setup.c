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

#include <bpf/libbpf.h>

#include "ctld.skel.h"

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/kernel/bpf_setup.h"

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

static int open_and_load(struct bpf_setup *b, int listen_args)
{
	b->skel = ctld__open();
	if (!b->skel)
		return -errno ? -errno : -EINVAL;
	bpf_program__set_autoattach(b->skel->progs.handle_sock_state, false);
	bpf_program__set_autoload(b->skel->progs.handle_listen_done, listen_args == 1);
	bpf_program__set_autoload(b->skel->progs.handle_listen_done_backlog, listen_args == 2);
	b->skel->rodata->listen_by_fexit = listen_args != 0;
	b->listen_by_fexit = listen_args != 0;
	return ctld__load(b->skel);
}

static int load_and_attach(struct bpf_setup *b, pid_t job_parent, int listen_args, char *why,
			   size_t whylen)
{
	int err = open_and_load(b, listen_args);

	if (err && listen_args) {
		log_warn("loading the fexit on inet_csk_listen_start failed (%s); confirming "
			 "listeners with sock_diag instead",
			 strerror(-err));
		ctld__destroy(b->skel);
		err = open_and_load(b, 0);
	}
	if (err)
		return errorf(why, whylen, err, "%s failed: %s", b->skel ? "load" : "open",
			      strerror(-err));
	b->skel->bss->job_parent_tgid = (__u32)job_parent;
	if ((err = ctld__attach(b->skel)))
		return errorf(why, whylen, err, "attach failed: %s", strerror(-err));
	if ((err = pin_all(b)))
		return errorf(why, whylen, err, "pinning in %.60s failed: %s", b->pin_dir,
			    strerror(-err));
	return 0;
}

int bpf_setup_open(struct bpf_setup *b, const char *pin_dir, pid_t job_parent, int listen_args,
		   char *why, size_t whylen)
{
	int err;

	*b = (struct bpf_setup){ .pin_lock_fd = -1 };
	copy_str(b->pin_dir, sizeof(b->pin_dir), pin_dir);
	if ((err = check_preconditions(why, whylen)))
		return err;
	if ((err = ensure_bpffs(b->pin_dir)))
		return errorf(why, whylen, err, "cannot mount bpffs: %s", strerror(-err));
	if ((err = lock_pin_dir(b, why, whylen)))
		return err;
	libbpf_set_print(libbpf_log);
	if ((err = load_and_attach(b, job_parent, listen_args, why, whylen)))
		bpf_setup_close(b);
	return err;
}

void bpf_setup_close(struct bpf_setup *b)
{
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
