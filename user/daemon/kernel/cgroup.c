// SPDX-License-Identifier: BSD-2-Clause
/*
 * cgroup.c - job cgroups (see cgroup.h): the pids hierarchy, the daemon's
 * group in it, job groups made and removed, and their processes signalled.
 *
 * Why the first process joins by writing cgroup.procs, not clone3 with
 * CLONE_INTO_CGROUP: jobs are started by a CLONE_VM | CLONE_VFORK child on
 * a stack of its own, which glibc 2.36 offers through clone() only (clone3
 * would need an assembly entry of our own), and CLONE_INTO_CGROUP exists for
 * cgroup v2 alone while many hosts (this one) have the pids controller in
 * v1. The child writes "0" to the group's cgroup.procs before anything else
 * and before exec, so no code of the job ever runs outside its group.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/kernel/cgroup.h"
#include "daemon/kernel/cgroup_find.h"

#define MAX_MEMBERS 4096 /* signalled per round; more are met in the next one */
#define KILL_ROUNDS 32
#define NAME_TRIES 16
#define MOUNTINFO_MAX (1 << 20)

struct group {
	uint64_t job;
	bool forgotten; /* its job is gone: removed once its processes are */
};

static struct {
	enum cgroup_kind kind; /* CGROUP_NONE: no job groups */
	char fixed_root[PATH_MAX]; /* --cgroup-root, or "" */
	struct cgroup_mount mount; /* without a fixed root: the hierarchy's mount */
	bool made;                 /* the daemon's group exists (G.dir) */
	char dir[PATH_MAX];
	char status[PATH_MAX + 128];
	struct group *groups;
	size_t ngroups, cap, nforgotten;
} G;

static pid_t members_buf[MAX_MEMBERS], again_buf[MAX_MEMBERS], seen_buf[MAX_MEMBERS];
static int fds_buf[MAX_MEMBERS];

/* ------------------------------------------------------------ files */

static int write_at(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		err = -errno;
	close(fd);
	return err;
}

#define JOB_PATH_MAX (PATH_MAX + 64)

/* G.dir/job-<id>[/file]; paths, not a directory descriptor, so the daemon
 * holds no descriptor for its groups. */
static void job_file(char *path, uint64_t job, const char *file)
{
	snprintf(path, JOB_PATH_MAX, "%s/job-%llu%s%s", G.dir, (unsigned long long)job,
		 file ? "/" : "", file ? file : "");
}

/* ------------------------------------------------------------ the hierarchy */

/* Job groups are off from now on, for the reason given. Returns err. */
static int turn_off(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int turn_off(int err, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(G.status, sizeof(G.status), "no job cgroups: ");

	va_start(ap, fmt);
	vsnprintf(G.status + n, sizeof(G.status) - (size_t)n, fmt, ap);
	va_end(ap);
	G.kind = CGROUP_NONE;
	return err;
}

static bool dir_offers_pids(const char *dir)
{
	char path[PATH_MAX + 32], list[512];

	snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
	return read_small_file_at(AT_FDCWD, path, list, sizeof(list)) >= 0 && cgroup_find_word(list, "pids");
}

static void use_fixed_root(const char *root)
{
	struct statfs fs;

	copy_str(G.fixed_root, sizeof(G.fixed_root), root);
	if (statfs(root, &fs) < 0) {
		turn_off(0, "--cgroup-root %s: %s", root, strerror(errno));
		return;
	}
	if (fs.f_type == CGROUP2_SUPER_MAGIC && !dir_offers_pids(root)) {
		turn_off(0, "--cgroup-root %s offers no pids controller (cgroup.controllers)", root);
		return;
	}
	if (fs.f_type != CGROUP2_SUPER_MAGIC && fs.f_type != CGROUP_SUPER_MAGIC) {
		turn_off(0, "--cgroup-root %s is not in a cgroup file system", root);
		return;
	}
	/* v1: whether it is the pids hierarchy shows in the daemon's group */
	G.kind = fs.f_type == CGROUP2_SUPER_MAGIC ? CGROUP_V2 : CGROUP_V1;
	snprintf(G.status, sizeof(G.status), "pids cgroup v%d below %s", G.kind == CGROUP_V2 ? 2 : 1,
		 root);
}

static int read_self(const char *path, char **out)
{
	char *buf = malloc(MOUNTINFO_MAX);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	if ((n = read_small_file_at(AT_FDCWD, path, buf, MOUNTINFO_MAX)) < 0) {
		free(buf);
		return (int)n;
	}
	*out = buf;
	return 0;
}

/* The directory of the daemon's cgroup in the mount m (now: it may have
 * been moved since start-up). */
static int own_dir(const struct cgroup_mount *m, char *dir, size_t len)
{
	char *text = NULL, path[PATH_MAX];
	int err;

	if ((err = read_self("/proc/self/cgroup", &text)))
		return err;
	err = cgroup_find_path(text, m->kind, path, sizeof(path));
	free(text);
	return err ? err : cgroup_find_dir(m, path, dir, len);
}

static void find_hierarchy(void)
{
	static struct cgroup_mount v2, v1;
	char *mountinfo = NULL, dir[PATH_MAX];

	if (read_self("/proc/self/mountinfo", &mountinfo)) {
		turn_off(0, "cannot read /proc/self/mountinfo");
		return;
	}
	cgroup_find_mounts(mountinfo, &v2, &v1);
	free(mountinfo);
	if (v2.kind && own_dir(&v2, dir, sizeof(dir)) == 0 && dir_offers_pids(dir)) {
		G.mount = v2;
	} else if (v1.kind) {
		G.mount = v1;
	} else {
		turn_off(0, "%s, and no cgroup v1 pids hierarchy is mounted",
			 v2.kind ? "cgroup v2 offers the daemon's cgroup no pids controller"
				 : "no cgroup v2 is mounted");
		return;
	}
	G.kind = G.mount.kind;
	snprintf(G.status, sizeof(G.status), "pids cgroup v%d at %s", G.kind == CGROUP_V2 ? 2 : 1,
		 G.mount.point);
}

void cgroups_init(const char *root)
{
	G.kind = CGROUP_NONE;
	G.made = false;
	G.fixed_root[0] = '\0';
	if (root && strcmp(root, "none") == 0)
		turn_off(0, "turned off (--cgroup-root none)");
	else if (root)
		use_fixed_root(root);
	else
		find_hierarchy();
	log_debug("%s", G.status);
}

const char *cgroups_status(void)
{
	return G.status;
}

unsigned cgroups_count(void)
{
	return (unsigned)G.ngroups;
}

/* ------------------------------------------------------------ the daemon's group */


/* cgroup v2: the pids controller for the children of dir, which must have
 * no process in it (else dir becomes a thread root, see where_to_make). */
static int enable_pids(const char *dir)
{
	char path[PATH_MAX + 32], list[512];

	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	if (read_small_file_at(AT_FDCWD, path, list, sizeof(list)) >= 0 && cgroup_find_word(list, "pids"))
		return 0;
	return write_at(AT_FDCWD, path, "+pids");
}

static int make_dir(const char *base)
{
	for (int n = 0; n < NAME_TRIES; n++) {
		char name[48];
		int len;

		if (n)
			snprintf(name, sizeof(name), "ctld-%d-%d", getpid(), n);
		else
			snprintf(name, sizeof(name), "ctld-%d", getpid());
		len = snprintf(G.dir, sizeof(G.dir), "%s/%s", base, name);
		if (len < 0 || (size_t)len >= sizeof(G.dir))
			return -ENAMETOOLONG;
		if (mkdir(G.dir, 0755) == 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/* Where the daemon's group goes: --cgroup-root, else below the daemon's
 * own cgroup in v1. In v2 a group below the daemon's own cannot have the
 * pids controller: the daemon's cgroup has a process (the daemon), and
 * enabling pids there would make it a thread root, whose children are
 * invalid domains without controllers (the kernel matrix showed it). So in
 * v2 the group is made beside the daemon's cgroup, in its parent, which
 * offers pids (the daemon's cgroup lists it) and, where it is not the root
 * cgroup, is left as it is. *enable: dir's subtree_control must be given
 * pids by us (--cgroup-root, or the root cgroup, where that is allowed). */
static int where_to_make(char *base, size_t len, bool *enable)
{
	char *slash;
	int err;

	*enable = G.kind == CGROUP_V2;
	if (G.fixed_root[0]) {
		copy_str(base, len, G.fixed_root);
		return 0;
	}
	if ((err = own_dir(&G.mount, base, len)))
		return err;
	if (G.kind == CGROUP_V2 && strcmp(base, G.mount.point) != 0 &&
	    (slash = strrchr(base, '/'))) {
		*slash = '\0';
		*enable = strcmp(base, G.mount.point) == 0;
	}
	return 0;
}

static void mark_made(void)
{
	G.made = true;
	snprintf(G.status, sizeof(G.status), "pids cgroup v%d, job groups in %s",
		 G.kind == CGROUP_V2 ? 2 : 1, G.dir);
}

/* The first job that needs a group makes the daemon's; a failure turns
 * job groups off, with the reason. */
static int make_daemon_group(void)
{
	char base[PATH_MAX], path[JOB_PATH_MAX];
	bool enable;
	int err;

	if (G.made)
		return 0;
	if ((err = where_to_make(base, sizeof(base), &enable)))
		return turn_off(err, "cannot find the daemon's cgroup: %s", strerror(-err));
	if (enable && (err = enable_pids(base)))
		return turn_off(err, "cannot enable pids in %s/cgroup.subtree_control: %s", base,
				strerror(-err));
	if ((err = make_dir(base)))
		return turn_off(err, "cannot create a group in %s: %s", base, strerror(-err));
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", G.dir);
	if (G.kind == CGROUP_V2)
		err = write_at(AT_FDCWD, path, "+pids");
	snprintf(path, sizeof(path), "%s/pids.max", G.dir);
	if (!err && access(path, F_OK) < 0)
		err = -ENOTSUP; /* a v1 hierarchy without the pids controller */
	if (err) {
		rmdir(G.dir);
		return turn_off(err, "%s: %s", G.dir,
				err == -ENOTSUP ? "no pids controller there" : strerror(-err));
	}
	mark_made();
	log_info("job cgroups in %s", G.dir);
	return 0;
}

/* ------------------------------------------------------------ job groups */

static struct group *find_group(uint64_t job)
{
	for (size_t i = 0; i < G.ngroups; i++)
		if (G.groups[i].job == job)
			return &G.groups[i];
	return NULL;
}

static int add_group(uint64_t job)
{
	if (G.ngroups == G.cap) {
		size_t cap = G.cap ? G.cap * 2 : 64;
		struct group *grown = realloc(G.groups, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		G.groups = grown;
		G.cap = cap;
	}
	G.groups[G.ngroups++] = (struct group){ .job = job };
	return 0;
}

static void drop_group(struct group *g)
{
	if (g->forgotten)
		G.nforgotten--;
	*g = G.groups[--G.ngroups];
}

int cgroup_create(uint64_t job, uint32_t max_procs, int *procs_fd, char *err, size_t errlen)
{
	char dir[JOB_PATH_MAX], path[JOB_PATH_MAX], value[16];
	int ret;

	*procs_fd = -1;
	if (G.kind == CGROUP_NONE || (ret = make_daemon_group()))
		return errorf(err, errlen, -ENOTSUP, "%s", G.status);
	job_file(dir, job, NULL);
	if (mkdir(dir, 0755) < 0)
		return errorf(err, errlen, -errno, "failed to create cgroup %s: %s", dir,
			      strerror(errno));
	snprintf(value, sizeof(value), "%u", max_procs);
	job_file(path, job, "pids.max");
	if (max_procs && (ret = write_at(AT_FDCWD, path, value))) {
		errorf(err, errlen, ret, "failed to set %s: %s", path, strerror(-ret));
		goto fail;
	}
	job_file(path, job, "cgroup.procs");
	if ((*procs_fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
		ret = errorf(err, errlen, -errno, "failed to open %s: %s", path, strerror(errno));
		goto fail;
	}
	if ((ret = add_group(job))) {
		errorf(err, errlen, ret, "out of memory");
		close(*procs_fd);
		*procs_fd = -1;
		goto fail;
	}
	return 0;
fail:
	rmdir(dir);
	return ret;
}

int cgroup_remove(uint64_t job, bool forget)
{
	struct group *g = find_group(job);
	char dir[JOB_PATH_MAX];

	if (!g)
		return 0;
	job_file(dir, job, NULL);
	if (rmdir(dir) == 0 || errno == ENOENT) {
		drop_group(g);
		return 0;
	}
	if (errno != EBUSY)
		log_warn("failed to remove cgroup %s: %s", dir, strerror(errno));
	if (forget && !g->forgotten) {
		g->forgotten = true;
		G.nforgotten++;
	}
	return -EBUSY;
}

void cgroup_retry_forgotten(void)
{
	char dir[JOB_PATH_MAX];

	for (size_t i = 0; G.nforgotten && i < G.ngroups;) {
		struct group *g = &G.groups[i];

		job_file(dir, g->job, NULL);
		if (g->forgotten && rmdir(dir) == 0)
			drop_group(g); /* the last one moved here: look at i again */
		else
			i++;
	}
}

void cgroups_shutdown(void)
{
	char dir[JOB_PATH_MAX];

	/* their processes were killed and reaped; a dying one may linger */
	for (int tries = 0; G.ngroups && tries < 50; tries++) {
		for (size_t i = 0; i < G.ngroups;) {
			job_file(dir, G.groups[i].job, NULL);
			if (rmdir(dir) == 0 || errno == ENOENT)
				drop_group(&G.groups[i]);
			else
				i++;
		}
		if (G.ngroups)
			usleep(10000);
	}
	if (G.ngroups)
		log_warn("%zu job cgroups in %s still have processes", G.ngroups, G.dir);
	if (G.made && !G.ngroups && rmdir(G.dir) < 0)
		log_warn("failed to remove cgroup %s: %s", G.dir, strerror(errno));
	G.made = false;
	free(G.groups);
	G.groups = NULL;
	G.ngroups = G.cap = G.nforgotten = 0;
}

/* ------------------------------------------------------------ members */

/* The pids in job-<id>/cgroup.procs (at most max), or -errno. */
static int members(uint64_t job, pid_t *out, int max)
{
	static char buf[MAX_MEMBERS * 8 + 1];
	char path[JOB_PATH_MAX], *p, *end;
	ssize_t len;
	int n = 0;

	job_file(path, job, "cgroup.procs");
	if (!G.made || (len = read_small_file_at(AT_FDCWD, path, buf, sizeof(buf))) < 0)
		return -ENOENT;
	/* a full buffer may end inside a number: never take part of a pid */
	if ((size_t)len == sizeof(buf) - 1 && (p = strrchr(buf, '\n')))
		p[1] = '\0';
	for (p = buf; n < max; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		out[n++] = (pid_t)pid;
	}
	return n;
}

bool cgroup_populated(uint64_t job)
{
	pid_t one;

	return find_group(job) && members(job, &one, 1) > 0;
}

int cgroup_pids(uint64_t job, pid_t *out, int max)
{
	return find_group(job) ? members(job, out, max) : -ENOENT;
}

bool cgroup_contains(uint64_t job, pid_t pid)
{
	int n = find_group(job) ? members(job, members_buf, MAX_MEMBERS) : 0;

	for (int i = 0; i < n; i++)
		if (members_buf[i] == pid)
			return true;
	return false;
}

uint64_t cgroup_peak(uint64_t job)
{
	char path[JOB_PATH_MAX], text[32];

	job_file(path, job, "pids.peak");
	if (!find_group(job) || read_small_file_at(AT_FDCWD, path, text, sizeof(text)) <= 0)
		return 0;
	return strtoull(text, NULL, 10);
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

static bool listed(const pid_t *sorted, int n, pid_t pid)
{
	return n > 0 && bsearch(&pid, sorted, (size_t)n, sizeof(pid), cmp_pid);
}

/* One round: every member not signalled yet is held by a pidfd, then
 * signalled if a second look still shows it in the group (a pid reused
 * in between is not: nobody joins a group whose pids.max is 0, and for
 * other signals a newcomer is a member too). Returns how many were new. */
static int signal_round(uint64_t job, int sig, pid_t skip_pgid, int *nseen)
{
	int n = members(job, members_buf, MAX_MEMBERS), nfresh = 0, nagain;

	/* sorted, so a pid v1 lists twice is taken once */
	if (n > 0)
		qsort(members_buf, (size_t)n, sizeof(pid_t), cmp_pid);
	for (int i = 0; i < n; i++) {
		if ((i && members_buf[i] == members_buf[i - 1]) ||
		    listed(seen_buf, *nseen, members_buf[i]))
			continue;
		members_buf[nfresh] = members_buf[i];
		fds_buf[nfresh] = (int)syscall(SYS_pidfd_open, members_buf[i], 0);
		if (fds_buf[nfresh] < 0)
			fds_buf[nfresh] = -errno;
		nfresh++;
	}
	nagain = members(job, again_buf, MAX_MEMBERS);
	if (nagain > 0)
		qsort(again_buf, (size_t)nagain, sizeof(pid_t), cmp_pid);
	for (int i = 0; i < nfresh; i++) {
		pid_t pid = members_buf[i];
		bool skip = sig != SIGKILL && skip_pgid && getpgid(pid) == skip_pgid;

		if (listed(again_buf, nagain, pid) && !skip) {
			if (fds_buf[i] >= 0)
				syscall(SYS_pidfd_send_signal, fds_buf[i], sig, NULL, 0);
			else if (fds_buf[i] == -ENOSYS)
				kill(pid, sig); /* no pidfds (valgrind): best effort */
		}
		if (fds_buf[i] >= 0)
			close(fds_buf[i]);
		if (*nseen < MAX_MEMBERS)
			seen_buf[(*nseen)++] = pid;
	}
	qsort(seen_buf, (size_t)*nseen, sizeof(pid_t), cmp_pid);
	return nfresh;
}

void cgroup_signal(uint64_t job, int sig, pid_t skip_pgid)
{
	char path[JOB_PATH_MAX];
	int nseen = 0;

	if (!find_group(job))
		return;
	if (sig == SIGKILL) {
		job_file(path, job, "cgroup.kill");
		if (write_at(AT_FDCWD, path, "1") == 0)
			return; /* the kernel kills them all, forks in progress too */
		job_file(path, job, "pids.max");
		write_at(AT_FDCWD, path, "0");
	}
	for (int round = 0; round < (sig == SIGKILL ? KILL_ROUNDS : 1); round++)
		if (!signal_round(job, sig, skip_pgid, &nseen))
			break;
}

/* ------------------------------------------------------------ upgrades */

const char *cgroups_dir(void)
{
	return G.made ? G.dir : NULL;
}

int cgroups_inherit_dir(const char *dir)
{
	if (G.kind == CGROUP_NONE || !copy_str(G.dir, sizeof(G.dir), dir) || access(G.dir, F_OK))
		return -ENOENT;
	mark_made();
	return 0;
}

int cgroup_inherit(uint64_t job)
{
	return !G.made ? -ENOENT : find_group(job) ? 0 : add_group(job);
}
