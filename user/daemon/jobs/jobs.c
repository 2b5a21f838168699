// SPDX-License-Identifier: BSD-2-Clause
/*
 * jobs.c - the job table.
 *
 * A job is one started program plus everything the daemon keeps about it:
 * its pidfd, its stdout/stderr pipes and recent output (the backlog), its
 * stdin pipe and the replies owed to WriteStdin, the clients attached to it,
 * and, once it ends, its status and resource usage.
 *
 * When is a job over? Its main process has exited AND been reaped here
 * (waitid is the authority on the status; the kernel's BPF exit event only
 * gives the time and a cross-check) AND everything it wrote before exiting
 * has been read from its pipes. Only then is `Exited` sent, after its final
 * output, so no output ever follows Exited. Output that a still-running
 * descendant writes into the inherited pipes afterwards is read and dropped
 * (the pipe is never closed under it, so it gets no SIGPIPE from us).
 *
 * The daemon is a child subreaper: orphaned descendants of jobs are
 * re-parented here and reaped too, so no zombie is ever left behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/kernel/bpf_events.h"
#include "daemon/core/idmap.h"
#include "daemon/jobs/jobs.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/core/outq.h"
#include "daemon/clients/session.h"
#include "daemon/jobs/spawn.h"
#include "common/util.h"

#define OUTPUT_CHUNK sizeof(((ctld_Output *)0)->data.bytes)
#define MAX_TREE_PIDS 4096
#define MAX_GROUPS 256

struct attached {
	uint64_t session;
	bool output; /* wants Output events, not only the terminal event */
};

/* One read from a pipe, kept for clients that attach later. */
struct backlog_chunk {
	struct backlog_chunk *next;
	uint64_t offset;
	uint32_t len;
	uint8_t stream;
	uint8_t data[];
};

/* A WriteStdin reply owed once the stream has reached `end` bytes written. */
struct stdin_wait {
	struct pending_reply reply;
	uint64_t end;
};

struct job {
	uint64_t id;
	struct job *prev, *next; /* all jobs, oldest first */
	pid_t pid;
	int pidfd;
	ctld_JobState state;
	char name[sizeof(((ctld_JobInfo *)0)->name)];
	char command[sizeof(((ctld_JobInfo *)0)->command)];
	uint64_t start_mono_ns, start_real_ns, end_mono_ns;

	/* exit, from waitid() */
	bool reaped;
	int exit_code, signal;
	bool core;
	struct rusage ru;
	/* exit, from the kernel (BPF) */
	bool kernel_exit;
	int kernel_status;
	uint64_t kernel_exit_ns;
	uint32_t descendants;

	/* output */
	int out_fd[2];
	uint64_t out_offset[2];
	struct backlog_chunk *bl_head, *bl_tail;
	size_t bl_bytes;
	uint64_t bl_dropped[2];

	/* stdin */
	bool had_stdin;
	int stdin_fd;
	struct outq stdin_q;
	uint64_t stdin_written, stdin_queued;
	bool stdin_eof_requested;
	struct stdin_wait *waits;
	size_t nwaits;

	struct attached *clients;
	size_t nclients;
	uint64_t owner;
	bool kill_on_disconnect;

	struct loop_timer timeout;
	bool timed_out;
	int exec_errno;
	char exec_text[sizeof(((ctld_ExecFailed *)0)->text)];
};

static struct {
	struct loop *loop;
	struct jobs_config cfg;
	struct idmap by_id;
	struct idmap by_pid; /* unreaped main pids -> job */
	struct job *first, *last;
	uint64_t next_id;
	unsigned running, finished;
	uint64_t started;
	uint64_t orphans_reaped;
	uint64_t exit_mismatches;
	uint64_t exits_checked;
	uint64_t late_output_bytes;
	int devnull;
	ctld_Message msg; /* scratch for events */
} J;

static void job_stream_readable(struct loop *loop, int fd, uint32_t events, void *ctx);
static void job_stdin_writable(struct loop *loop, int fd, uint32_t events, void *ctx);
static void kill_tree(struct job *j, int sig);

void jobs_config_defaults(struct jobs_config *cfg)
{
	*cfg = (struct jobs_config){
		.max_jobs = 4096,
		.keep_finished = 256,
		.backlog_bytes = 64 * 1024,
	};
}

int jobs_init(struct loop *loop, const struct jobs_config *cfg)
{
	memset(&J, 0, sizeof(J));
	J.loop = loop;
	J.cfg = *cfg;
	J.next_id = 1;
	idmap_init(&J.by_id);
	idmap_init(&J.by_pid);
	spawn_init();
	J.devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	return J.devnull < 0 ? -errno : 0;
}

unsigned jobs_running(void)
{
	return J.running;
}

void jobs_decode_status(int status, int *exit_code, int *signal, bool *core)
{
	*signal = status & 0x7f;
	*core = (status & 0x80) != 0;
	*exit_code = *signal ? 0 : (status >> 8) & 0xff;
}

/* ------------------------------------------------------------ events */

static ctld_Event *event_begin(pb_size_t which)
{
	memset(&J.msg, 0, sizeof(J.msg));
	J.msg.which_kind = ctld_Message_event_tag;
	J.msg.kind.event.which_kind = which;
	return &J.msg.kind.event;
}

static void remove_client_at(struct job *j, size_t i)
{
	j->clients[i] = j->clients[--j->nclients];
}

/* Sends J.msg to the job's clients; Output only to those that want it. */
static void send_to_clients(struct job *j, bool is_output, int stream, size_t payload)
{
	struct frame f;

	if (!j->nclients || frame_encode(&J.msg, &f))
		return;
	f.droppable = is_output;
	f.job = j->id;
	f.stream = stream;
	f.payload = payload;
	for (size_t i = 0; i < j->nclients;) {
		if (is_output && !j->clients[i].output) {
			i++;
			continue;
		}
		if (session_queue(j->clients[i].session, &f) == -ENOENT) {
			remove_client_at(j, i);
			continue;
		}
		i++;
	}
}

static void fill_exited(const struct job *j, ctld_Exited *e)
{
	uint64_t end = j->kernel_exit ? j->kernel_exit_ns : j->end_mono_ns;

	e->job = j->id;
	e->pid = (uint32_t)j->pid;
	e->exit_code = j->exit_code;
	e->signal = j->signal;
	e->core_dumped = j->core;
	e->user_us = (uint64_t)j->ru.ru_utime.tv_sec * 1000000 + (uint64_t)j->ru.ru_utime.tv_usec;
	e->sys_us = (uint64_t)j->ru.ru_stime.tv_sec * 1000000 + (uint64_t)j->ru.ru_stime.tv_usec;
	e->max_rss_kb = (uint64_t)j->ru.ru_maxrss;
	e->wall_ns = end > j->start_mono_ns ? end - j->start_mono_ns : 0;
	e->timed_out = j->timed_out;
	e->descendants = j->descendants;
}

/* Sends the job's terminal event (or, for a finished job, replays it) to one
 * session or, with session == 0, to every attached client. */
static void send_terminal(struct job *j, uint64_t session)
{
	if (j->state == ctld_JobState_JOB_EXEC_FAILED) {
		ctld_ExecFailed *ef = &event_begin(ctld_Event_exec_failed_tag)->kind.exec_failed;

		ef->job = j->id;
		ef->sys_errno = j->exec_errno;
		copy_str(ef->text, sizeof(ef->text), j->exec_text);
	} else {
		fill_exited(j, &event_begin(ctld_Event_exited_tag)->kind.exited);
	}
	if (session) {
		session_send(session, &J.msg);
		return;
	}
	send_to_clients(j, false, 0, 0);
}

static void send_launched(struct job *j)
{
	ctld_Launched *l = &event_begin(ctld_Event_launched_tag)->kind.launched;

	l->job = j->id;
	l->pid = (uint32_t)j->pid;
	send_to_clients(j, false, 0, 0);
}

/* ------------------------------------------------------------ backlog */

static void backlog_trim(struct job *j)
{
	while (j->bl_head && j->bl_bytes > J.cfg.backlog_bytes) {
		struct backlog_chunk *c = j->bl_head;

		j->bl_head = c->next;
		if (!j->bl_head)
			j->bl_tail = NULL;
		j->bl_bytes -= c->len;
		j->bl_dropped[c->stream] += c->len;
		free(c);
	}
}

static void backlog_add(struct job *j, int stream, uint64_t offset, const uint8_t *data,
			size_t len)
{
	struct backlog_chunk *c;

	if (!J.cfg.backlog_bytes)
		return;
	c = malloc(sizeof(*c) + len);
	if (!c) {
		j->bl_dropped[stream] += len;
		return;
	}
	c->next = NULL;
	c->offset = offset;
	c->len = (uint32_t)len;
	c->stream = (uint8_t)stream;
	memcpy(c->data, data, len);
	if (j->bl_tail)
		j->bl_tail->next = c;
	else
		j->bl_head = c;
	j->bl_tail = c;
	j->bl_bytes += len;
	backlog_trim(j);
}

static void backlog_free(struct job *j)
{
	while (j->bl_head) {
		struct backlog_chunk *c = j->bl_head;

		j->bl_head = c->next;
		free(c);
	}
	j->bl_tail = NULL;
	j->bl_bytes = 0;
}

/* Replays the backlog to one client: first what was too old to keep. */
static void backlog_send(struct job *j, uint64_t session)
{
	for (int s = 0; s < 2; s++) {
		ctld_OutputDropped *d;

		if (!j->bl_dropped[s])
			continue;
		d = &event_begin(ctld_Event_output_dropped_tag)->kind.output_dropped;
		d->job = j->id;
		d->stream = (ctld_Stream)s;
		d->bytes = j->bl_dropped[s];
		d->reason = ctld_DropReason_DROP_BACKLOG;
		session_send(session, &J.msg);
	}
	for (struct backlog_chunk *c = j->bl_head; c; c = c->next) {
		ctld_Output *o = &event_begin(ctld_Event_output_tag)->kind.output;
		struct frame f;

		o->job = j->id;
		o->stream = (ctld_Stream)c->stream;
		o->offset = c->offset;
		o->data.size = (pb_size_t)c->len;
		memcpy(o->data.bytes, c->data, c->len);
		if (frame_encode(&J.msg, &f) == 0) {
			f.droppable = true;
			f.job = j->id;
			f.stream = c->stream;
			f.payload = c->len;
			session_queue(session, &f);
		}
	}
}

/* ------------------------------------------------------------ output pipes */

static void close_fd(int *fd)
{
	if (*fd < 0)
		return;
	loop_fd_del(J.loop, *fd);
	close(*fd);
	*fd = -1;
}

/* Reads from one stream at most max_reads times. Returns 1 at EOF (the fd
 * is then closed), 0 when the pipe is empty or the budget is spent. */
static int read_stream(struct job *j, int stream, int max_reads)
{
	for (int i = 0; i < max_reads; i++) {
		ctld_Output *o = &event_begin(ctld_Event_output_tag)->kind.output;
		ssize_t n = read(j->out_fd[stream], o->data.bytes, OUTPUT_CHUNK);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (n <= 0) {
			close_fd(&j->out_fd[stream]);
			return 1;
		}
		o->job = j->id;
		o->stream = (ctld_Stream)stream;
		o->offset = j->out_offset[stream];
		o->data.size = (pb_size_t)n;
		j->out_offset[stream] += (uint64_t)n;
		backlog_add(j, stream, o->offset, o->data.bytes, (size_t)n);
		send_to_clients(j, true, stream, (size_t)n);
	}
	return 0;
}

static void job_stream_readable(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct job *j = ctx;

	(void)loop;
	(void)events;
	read_stream(j, fd == j->out_fd[0] ? 0 : 1, 4);
}

/* A finished job's pipe still held open by a descendant: read and drop. */
static void drain_discard(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	char buf[16384];
	ssize_t n;

	(void)ctx;
	(void)events;
	n = read(fd, buf, sizeof(buf));
	if (n > 0) {
		J.late_output_bytes += (uint64_t)n;
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	loop_fd_del(loop, fd);
	close(fd);
}

/* ------------------------------------------------------------ stdin */

static void stdin_fail_waits(struct job *j, int err, const char *why)
{
	for (size_t i = 0; i < j->nwaits; i++)
		pending_reply_error(&j->waits[i].reply, ctld_ErrorCode_SYSTEM, err, "%s", why);
	free(j->waits);
	j->waits = NULL;
	j->nwaits = 0;
}

static void stdin_close(struct job *j, int err, const char *why)
{
	stdin_fail_waits(j, err, why);
	outq_clear(&j->stdin_q);
	close_fd(&j->stdin_fd);
}

/* Writes what is queued; answers the WriteStdin requests that are complete. */
static void stdin_flush(struct job *j)
{
	size_t done = 0;

	while (j->stdin_q.bytes) {
		struct iovec iov[8];
		int n = outq_iov(&j->stdin_q, iov, 8);
		ssize_t w = writev(j->stdin_fd, iov, n);

		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (w < 0) {
			stdin_close(j, errno, errno == EPIPE ? "the job closed its stdin"
							   : "writing to the job's stdin failed");
			return;
		}
		outq_consume(&j->stdin_q, (size_t)w);
		j->stdin_written += (uint64_t)w;
	}
	while (done < j->nwaits && j->waits[done].end <= j->stdin_written)
		pending_reply_ok(&j->waits[done++].reply);
	memmove(j->waits, j->waits + done, (j->nwaits - done) * sizeof(*j->waits));
	j->nwaits -= done;
	if (!j->stdin_q.bytes && j->stdin_eof_requested) {
		close_fd(&j->stdin_fd);
		return;
	}
	/* EPOLLERR alone still reports the reader closing the pipe. */
	loop_fd_set_mask(J.loop, j->stdin_fd, j->stdin_q.bytes ? EPOLLOUT : EPOLLERR);
}

static void job_stdin_writable(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct job *j = ctx;

	(void)loop;
	(void)fd;
	if ((events & EPOLLERR) && !(events & EPOLLOUT)) {
		stdin_close(j, EPIPE, "the job closed its stdin");
		return;
	}
	stdin_flush(j);
}

/* ------------------------------------------------------------ finishing */

static void job_free(struct job *j)
{
	close_fd(&j->out_fd[0]);
	close_fd(&j->out_fd[1]);
	stdin_close(j, ESRCH, "the job is gone");
	if (j->pidfd >= 0)
		close(j->pidfd);
	loop_timer_disarm(J.loop, &j->timeout);
	backlog_free(j);
	free(j->clients);
	free(j);
}

static void unlink_job(struct job *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		J.first = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		J.last = j->prev;
	idmap_del(&J.by_id, j->id);
}

/* Keeps at most keep_finished finished jobs, forgetting the oldest. */
static void evict_finished(void)
{
	for (struct job *j = J.first; j && J.finished > J.cfg.keep_finished;) {
		struct job *next = j->next;

		if (j->state != ctld_JobState_JOB_RUNNING && j->reaped) {
			unlink_job(j);
			job_free(j);
			J.finished--;
		}
		j = next;
	}
}

/* Pipes still open after the final drain belong to descendants now. */
static void hand_over_pipes(struct job *j)
{
	for (int s = 0; s < 2; s++) {
		int fd = j->out_fd[s];

		if (fd < 0)
			continue;
		loop_fd_del(J.loop, fd);
		if (loop_fd_add(J.loop, fd, EPOLLIN, drain_discard, NULL))
			close(fd);
		j->out_fd[s] = -1;
	}
}

static void mark_finished(struct job *j)
{
	J.running--;
	J.finished++;
	loop_timer_disarm(J.loop, &j->timeout);
	stdin_close(j, EPIPE, "the job has exited");
	send_terminal(j, 0);
	/* Attachments end with the terminal event; later ones get a replay. */
	free(j->clients);
	j->clients = NULL;
	j->nclients = 0;
	evict_finished();
}

/* The main process was reaped: take the rest of its output, then Exited. */
static void job_finish(struct job *j)
{
	for (int s = 0; s < 2; s++)
		if (j->out_fd[s] >= 0)
			read_stream(j, s, 1 << 20);
	hand_over_pipes(j);
	j->state = ctld_JobState_JOB_EXITED;
	log_debug("job %llu (pid %d) exited: code %d signal %d", (unsigned long long)j->id, j->pid,
		  j->exit_code, j->signal);
	mark_finished(j);
}

static void check_kernel_status(struct job *j)
{
	int code, sig;
	bool core;

	if (!j->kernel_exit)
		return;
	J.exits_checked++;
	jobs_decode_status(j->kernel_status, &code, &sig, &core);
	if (code != j->exit_code || sig != j->signal || core != j->core) {
		J.exit_mismatches++;
		log_warn("job %llu: kernel exit status %#x (code %d sig %d) differs from waitid "
			 "(code %d sig %d)",
			 (unsigned long long)j->id, j->kernel_status, code, sig, j->exit_code,
			 j->signal);
	}
}

static void job_reaped(struct job *j, const siginfo_t *si, const struct rusage *ru)
{
	idmap_del(&J.by_pid, (uint64_t)j->pid);
	j->reaped = true;
	/* A reaped child's pidfd only refers to a dead process; finished jobs
	 * are kept for a while and must not pin a descriptor each. */
	if (j->pidfd >= 0)
		close(j->pidfd);
	j->pidfd = -1;
	j->end_mono_ns = now_monotonic_ns();
	j->ru = *ru;
	j->exit_code = si->si_code == CLD_EXITED ? si->si_status : 0;
	j->signal = si->si_code == CLD_EXITED ? 0 : si->si_status;
	j->core = si->si_code == CLD_DUMPED;
	if (j->state != ctld_JobState_JOB_RUNNING)
		return; /* exec failed: its terminal event is already out */
	check_kernel_status(j);
	job_finish(j);
}

bool jobs_reap_children(void)
{
	for (;;) {
		siginfo_t si;
		struct rusage ru;
		struct job *j;

		memset(&si, 0, sizeof(si));
		/* raw waitid: the glibc wrapper has no rusage argument */
		if (syscall(SYS_waitid, P_ALL, 0, &si, WEXITED | WNOHANG, &ru) < 0)
			return errno != ECHILD;
		if (si.si_pid == 0)
			return true; /* children left, none has exited */
		j = idmap_get(&J.by_pid, (uint64_t)si.si_pid);
		if (j) {
			job_reaped(j, &si, &ru);
		} else {
			J.orphans_reaped++;
			log_debug("reaped adopted orphan pid %d", si.si_pid);
		}
	}
}

/* ------------------------------------------------------------ kernel events */

/* The job a kernel event belongs to. The job id is 0 when the process forked
 * or exited before the daemon wrote it into the map; then the root pid
 * decides, newest job first (an older job with a recycled pid is long gone). */
static struct job *kernel_event_job(uint64_t job_id, pid_t root_pid)
{
	struct job *j = job_id ? idmap_get(&J.by_id, job_id) : NULL;

	if (j || job_id)
		return j;
	for (j = J.last; j; j = j->prev)
		if (j->pid == root_pid)
			return j;
	return NULL;
}

void jobs_kernel_exit(pid_t pid, pid_t root_pid, uint64_t job_id, int status, uint64_t time_ns)
{
	struct job *j = kernel_event_job(job_id, root_pid);

	if (!j)
		return;
	if (pid != j->pid) {
		if (j->descendants)
			j->descendants--;
		return;
	}
	if (j->kernel_exit)
		return;
	j->kernel_exit = true;
	j->kernel_status = status;
	j->kernel_exit_ns = time_ns;
	if (j->reaped)
		check_kernel_status(j);
}

void jobs_kernel_fork(pid_t parent, pid_t child, pid_t root_pid, uint64_t job_id)
{
	struct job *j = kernel_event_job(job_id, root_pid);

	(void)parent;
	if (j && child != j->pid)
		j->descendants++;
}

/* ------------------------------------------------------------ signals */

static int send_signal_pidfd(int pidfd, int sig)
{
	return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

/* The main process, through its pidfd; with plain kill() where pidfds are
 * unavailable (valgrind does not know the syscalls), which is just as safe
 * while the child is unreaped: its pid cannot have been reused. */
static int signal_main(struct job *j, int sig)
{
	int err = j->pidfd >= 0 ? send_signal_pidfd(j->pidfd, sig) : -ENOSYS;

	if (err == -ENOSYS && !j->reaped)
		err = kill(j->pid, sig) < 0 ? -errno : 0;
	return err;
}

/* One tracked descendant: a pidfd opened first and the map checked after,
 * so a pid that was recycled in between is never signalled. */
static void signal_tracked(struct job *j, pid_t pid, int sig)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd >= 0) {
		if (bpf_events_pid_in_job(pid, j->id, j->pid))
			send_signal_pidfd(fd, sig);
		close(fd);
	} else if (errno == ENOSYS && bpf_events_pid_in_job(pid, j->id, j->pid)) {
		kill(pid, sig); /* no pidfds here: best effort */
	}
}

/* Descendants known to the kernel programs. */
static void kill_tracked(struct job *j, int sig)
{
	static pid_t pids[MAX_TREE_PIDS];
	int n = bpf_events_job_pids(j->id, j->pid, pids, MAX_TREE_PIDS);

	for (int i = 0; i < n && i < MAX_TREE_PIDS; i++)
		if (pids[i] != j->pid)
			signal_tracked(j, pids[i], sig);
}

/* Processes found below a pid, each held by a pidfd opened before anything
 * is signalled: the walk must happen while their parents live (a dead
 * parent's children move to us), and a held pidfd cannot name a recycled pid. */
struct held_pids {
	pid_t pid[MAX_TREE_PIDS];
	int fd[MAX_TREE_PIDS]; /* -1 where pidfds are unavailable (valgrind) */
	size_t n;
};

static void hold_descendants(pid_t pid, struct held_pids *h, int depth)
{
	char path[64];
	DIR *tasks;
	struct dirent *de;

	if (depth > 64)
		return;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	tasks = opendir(path);
	if (!tasks)
		return;
	while ((de = readdir(tasks))) {
		char cpath[320], buf[4096], *p, *end;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", pid, de->d_name);
		f = fopen(cpath, "re");
		if (!f)
			continue;
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		for (p = buf; h->n < MAX_TREE_PIDS; p = end) {
			long child = strtol(p, &end, 10);

			if (end == p)
				break;
			h->pid[h->n] = (pid_t)child;
			h->fd[h->n++] = (int)syscall(SYS_pidfd_open, (pid_t)child, 0);
			hold_descendants((pid_t)child, h, depth + 1);
		}
	}
	closedir(tasks);
}

static void signal_held(struct held_pids *h, int sig)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->fd[i] >= 0) {
			send_signal_pidfd(h->fd[i], sig);
			close(h->fd[i]);
		} else {
			kill(h->pid[i], sig); /* no pidfds here: best effort */
		}
	}
	h->n = 0;
}

static void kill_tree(struct job *j, int sig)
{
	static struct held_pids held;

	if (!j->reaped) {
		/* Without BPF, descendants that left the group are found through
		 * /proc/PID/task/TID/children, before anyone dies (best effort). */
		if (!bpf_events_enabled())
			hold_descendants(j->pid, &held, 0);
		/* While the main process is unreaped its pid, hence its process
		 * group id (setsid), cannot be reused: both are safe targets. The
		 * group first: one atomic signal to the main process and every
		 * member, so no shell sees its children die before it is told. */
		kill(-j->pid, sig);
		signal_main(j, sig);
		signal_held(&held, sig);
	}
	if (bpf_events_enabled())
		kill_tracked(j, sig);
}

/* Whatever else is below the daemon: orphans of forgotten jobs, which the
 * subreaper adopted. */
static void kill_adopted(void)
{
	static struct held_pids rest;

	hold_descendants(getpid(), &rest, 0);
	signal_held(&rest, SIGKILL);
}

static void timeout_fired(struct loop *loop, void *ctx)
{
	struct job *j = ctx;

	(void)loop;
	if (j->state != ctld_JobState_JOB_RUNNING)
		return;
	log_info("job %llu: timeout, killing its tree", (unsigned long long)j->id);
	j->timed_out = true;
	kill_tree(j, SIGKILL);
}

void jobs_handle_signal(struct request_ctx *ctx, const ctld_Signal *req)
{
	struct job *j = idmap_get(&J.by_id, req->job);
	int sig = req->signal ? req->signal : SIGTERM;

	if (!j) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "no job %llu",
			    (unsigned long long)req->job);
		return;
	}
	if (sig < 0 || sig >= NSIG) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, 0, "bad signal number %d", sig);
		return;
	}
	if (j->reaped && (req->main_only || !j->descendants)) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, ESRCH, "job %llu has already exited",
			    (unsigned long long)j->id);
		return;
	}
	if (req->main_only) {
		int err = signal_main(j, sig);

		if (err) {
			reply_error(ctx, ctld_ErrorCode_SYSTEM, -err, "signal job %llu: %s",
				    (unsigned long long)j->id, strerror(-err));
			return;
		}
	} else {
		kill_tree(j, sig);
	}
	reply_ok(ctx);
}

/* ------------------------------------------------------------ attach/detach */

static struct attached *find_client(struct job *j, uint64_t session)
{
	for (size_t i = 0; i < j->nclients; i++)
		if (j->clients[i].session == session)
			return &j->clients[i];
	return NULL;
}

static int attach_client(struct job *j, uint64_t session, bool output)
{
	struct attached *a = find_client(j, session), *grown;

	if (a) {
		a->output = output;
		return 0;
	}
	grown = realloc(j->clients, (j->nclients + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	j->clients = grown;
	j->clients[j->nclients++] = (struct attached){ .session = session, .output = output };
	return 0;
}

void jobs_handle_attach(struct request_ctx *ctx, const ctld_Attach *req)
{
	struct job *j = idmap_get(&J.by_id, req->job);
	ctld_Reply *r;

	if (!j) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "no job %llu (finished jobs are kept "
			    "for a while, then forgotten)", (unsigned long long)req->job);
		return;
	}
	if (j->state == ctld_JobState_JOB_RUNNING &&
	    attach_client(j, ctx->session, !req->no_output)) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return;
	}
	r = reply_begin(ctx);
	r->which_result = ctld_Reply_attach_tag;
	r->result.attach.pid = (uint32_t)j->pid;
	r->result.attach.state = j->state;
	reply_send(ctx);
	if (!req->no_output && !req->no_backlog)
		backlog_send(j, ctx->session);
	if (j->state != ctld_JobState_JOB_RUNNING)
		send_terminal(j, ctx->session);
}

void jobs_handle_detach(struct request_ctx *ctx, const ctld_Detach *req)
{
	struct job *j = idmap_get(&J.by_id, req->job);
	struct attached *a = j ? find_client(j, ctx->session) : NULL;

	if (!a) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "not attached to job %llu",
			    (unsigned long long)req->job);
		return;
	}
	remove_client_at(j, (size_t)(a - j->clients));
	reply_ok(ctx);
}

void jobs_client_gone(uint64_t session)
{
	for (struct job *j = J.first; j; j = j->next) {
		struct attached *a = find_client(j, session);

		if (a)
			remove_client_at(j, (size_t)(a - j->clients));
		for (size_t i = 0; i < j->nwaits; i++)
			if (j->waits[i].reply.session == session)
				j->waits[i].reply.session = 0; /* nobody to answer */
		if (j->owner == session && j->kill_on_disconnect &&
		    j->state == ctld_JobState_JOB_RUNNING) {
			log_info("job %llu: its client went away, killing its tree",
				 (unsigned long long)j->id);
			kill_tree(j, SIGKILL);
		}
	}
}

/* ------------------------------------------------------------ stdin request */

void jobs_handle_write_stdin(struct request_ctx *ctx, const ctld_WriteStdin *req)
{
	struct job *j = idmap_get(&J.by_id, req->job);
	struct stdin_wait *grown;

	if (!j) {
		reply_error(ctx, ctld_ErrorCode_NOT_FOUND, 0, "no job %llu",
			    (unsigned long long)req->job);
		return;
	}
	if (j->stdin_fd < 0 || j->stdin_eof_requested) {
		const char *why = j->state != ctld_JobState_JOB_RUNNING ? "has exited"
				  : !j->had_stdin ? "has no stdin pipe (start it with stdin_pipe)"
				  : "has closed its stdin (or it was closed with eof)";

		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EPIPE, "job %llu %s",
			    (unsigned long long)j->id, why);
		return;
	}
	if (session_pending_full(ctx->session)) {
		reply_error(ctx, ctld_ErrorCode_LIMIT, 0,
			    "too many WriteStdin requests in flight; wait for replies");
		return;
	}
	grown = realloc(j->waits, (j->nwaits + 1) * sizeof(*grown));
	if (!grown || outq_append(&j->stdin_q, req->data.bytes, req->data.size)) {
		if (grown)
			j->waits = grown;
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return;
	}
	j->waits = grown;
	j->stdin_queued += req->data.size;
	j->stdin_eof_requested = req->eof;
	j->waits[j->nwaits++] = (struct stdin_wait){ .reply = reply_defer(ctx),
						     .end = j->stdin_queued };
	stdin_flush(j);
}

/* ------------------------------------------------------------ list */

static void fill_info(const struct job *j, ctld_JobInfo *info)
{
	info->job = j->id;
	info->pid = (uint32_t)j->pid;
	copy_str(info->name, sizeof(info->name), j->name);
	copy_str(info->command, sizeof(info->command), j->command);
	info->state = j->state;
	info->start_time_ns = j->start_real_ns;
	info->exit_code = j->exit_code;
	info->signal = j->signal;
	info->descendants = j->descendants;
	info->clients = (uint32_t)j->nclients;
}

void jobs_handle_list(struct request_ctx *ctx, const ctld_List *req)
{
	ctld_Reply *r = reply_begin(ctx);
	ctld_ListReply *lr = &r->result.list;
	const pb_size_t max = ARRAY_SIZE(lr->jobs);

	r->which_result = ctld_Reply_list_tag;
	for (struct job *j = J.first; j; j = j->next) {
		if (j->id <= req->after_job)
			continue;
		if (req->running_only && j->state != ctld_JobState_JOB_RUNNING)
			continue;
		if (lr->jobs_count == max) {
			lr->more = true;
			break;
		}
		fill_info(j, &lr->jobs[lr->jobs_count++]);
	}
	reply_send(ctx);
}

/* ------------------------------------------------------------ run */

/* HOME, USER and LOGNAME of the user a job runs as (like su -), so it does
 * not inherit root's; Run.env still wins. */
struct identity {
	char home[600], user[80], logname[80];
	const char *vars[4]; /* NULL-terminated */
};

static void set_identity(struct identity *id, const struct passwd *pw)
{
	snprintf(id->home, sizeof(id->home), "HOME=%s", pw->pw_dir);
	snprintf(id->user, sizeof(id->user), "USER=%s", pw->pw_name);
	snprintf(id->logname, sizeof(id->logname), "LOGNAME=%s", pw->pw_name);
	id->vars[0] = id->home;
	id->vars[1] = id->user;
	id->vars[2] = id->logname;
	id->vars[3] = NULL;
}

/* Resolves Run.user / Run.group into ids and supplementary groups. */
static int resolve_user(const ctld_Run *run, struct spawn_request *sr, gid_t *groups,
			struct identity *id, char *err, size_t errlen)
{
	char buf[4096];
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	int ngroups = MAX_GROUPS;
	long num;

	if (!run->user[0] && !run->group[0])
		return 0;
	sr->set_ids = true;
	sr->uid = getuid();
	sr->gid = getgid();
	sr->ngroups = 0;
	sr->groups = groups;
	if (run->user[0]) {
		if (parse_long(run->user, 0, 0x7fffffff, &num) == 0)
			getpwuid_r((uid_t)num, &pw, buf, sizeof(buf), &pwp);
		else
			getpwnam_r(run->user, &pw, buf, sizeof(buf), &pwp);
		if (!pwp && parse_long(run->user, 0, 0x7fffffff, &num) != 0) {
			snprintf(err, errlen, "no such user: %s", run->user);
			return -ENOENT;
		}
		sr->uid = pwp ? pwp->pw_uid : (uid_t)num;
		sr->gid = pwp ? pwp->pw_gid : (gid_t)num;
		if (pwp && getgrouplist(pwp->pw_name, pwp->pw_gid, groups, &ngroups) < 0) {
			snprintf(err, errlen, "user %s has more than %d groups", run->user,
				 MAX_GROUPS);
			return -E2BIG;
		}
		sr->ngroups = pwp ? (size_t)ngroups : 0;
		if (pwp)
			set_identity(id, pwp);
	}
	if (run->group[0]) {
		if (parse_long(run->group, 0, 0x7fffffff, &num) == 0) {
			sr->gid = (gid_t)num;
		} else {
			getgrnam_r(run->group, &gr, buf, sizeof(buf), &grp);
			if (!grp) {
				snprintf(err, errlen, "no such group: %s", run->group);
				return -ENOENT;
			}
			sr->gid = grp->gr_gid;
		}
	}
	return 0;
}

static int parse_rlimits(const ctld_Run *run, struct spawn_rlimit *out, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		int resource;
	} names[] = {
		{ "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC }, { "core", RLIMIT_CORE },
		{ "as", RLIMIT_AS },         { "cpu", RLIMIT_CPU },     { "fsize", RLIMIT_FSIZE },
		{ "stack", RLIMIT_STACK },   { "memlock", RLIMIT_MEMLOCK },
		{ "data", RLIMIT_DATA },     { "nice", RLIMIT_NICE },
	};

	for (pb_size_t i = 0; i < run->rlimits_count; i++) {
		const ctld_Rlimit *rl = &run->rlimits[i];
		size_t k;

		for (k = 0; k < ARRAY_SIZE(names); k++)
			if (strcmp(rl->resource, names[k].name) == 0)
				break;
		if (k == ARRAY_SIZE(names)) {
			snprintf(err, errlen, "unknown rlimit resource '%s'", rl->resource);
			return -EINVAL;
		}
		if (rl->soft > rl->hard) {
			snprintf(err, errlen, "rlimit %s: soft limit above hard limit", rl->resource);
			return -EINVAL;
		}
		out[i].resource = names[k].resource;
		out[i].limit.rlim_cur = (rlim_t)rl->soft;
		out[i].limit.rlim_max = (rlim_t)rl->hard;
	}
	return 0;
}

/* Sets or replaces one "KEY=VALUE" (klen = length of "KEY=") in env[0..*n). */
static void env_put(char **env, size_t *n, const char *kv, size_t klen)
{
	size_t k;

	for (k = 0; k < *n; k++)
		if (strncmp(env[k], kv, klen) == 0)
			break;
	env[k] = (char *)kv;
	if (k == *n)
		(*n)++;
}

/* Base environment (the daemon's, unless clean_env), then the identity of a
 * --user job replacing the daemon's HOME/USER/LOGNAME (not with clean_env:
 * that stays empty but for Run.env), then Run.env on top. */
static char **build_env(const ctld_Run *run, const char *const *identity, char *err,
			size_t errlen)
{
	extern char **environ;
	size_t nbase = 0, n = 0;
	char **env;

	if (!run->clean_env)
		while (environ[nbase])
			nbase++;
	env = calloc(nbase + 3 + run->env_count + 1, sizeof(*env));
	if (!env) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < nbase; i++)
		env[n++] = environ[i];
	for (size_t i = 0; !run->clean_env && identity && identity[i]; i++)
		env_put(env, &n, identity[i], (size_t)(strchr(identity[i], '=') - identity[i]) + 1);
	for (pb_size_t i = 0; i < run->env_count; i++) {
		const char *kv = run->env[i], *eq = strchr(kv, '=');

		if (!eq || eq == kv) {
			snprintf(err, errlen, "env entry %u is not KEY=VALUE: '%.40s'", i, kv);
			free(env);
			return NULL;
		}
		env_put(env, &n, kv, (size_t)(eq - kv) + 1);
	}
	env[n] = NULL;
	return env;
}

static const char *env_get(char **env, const char *key)
{
	size_t klen = strlen(key);

	for (; *env; env++)
		if (strncmp(*env, key, klen) == 0 && (*env)[klen] == '=')
			return *env + klen + 1;
	return NULL;
}

static void describe_command(struct job *j, const ctld_Run *run)
{
	size_t used = 0;

	for (pb_size_t i = 0; i < run->argv_count && used + 1 < sizeof(j->command); i++) {
		int n = snprintf(j->command + used, sizeof(j->command) - used, "%s%s",
				 i ? " " : "", run->argv[i]);

		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (run->name[0]) {
		copy_str(j->name, sizeof(j->name), run->name);
	} else {
		const char *slash = strrchr(run->argv[0], '/');

		copy_str(j->name, sizeof(j->name), slash ? slash + 1 : run->argv[0]);
	}
}

static int validate_run(const ctld_Run *run, char *err, size_t errlen)
{
	if (run->argv_count == 0 || !run->argv[0][0]) {
		snprintf(err, errlen, "argv is empty: nothing to run");
		return -EINVAL;
	}
	if (run->cwd[0] && run->cwd[0] != '/') {
		snprintf(err, errlen, "cwd must be an absolute path: '%.100s'", run->cwd);
		return -EINVAL;
	}
	if ((run->stdout_path[0] && run->stdout_path[0] != '/') ||
	    (run->stderr_path[0] && run->stderr_path[0] != '/')) {
		snprintf(err, errlen, "output files must be absolute paths");
		return -EINVAL;
	}
	if (run->has_umask && run->umask > 0777) {
		snprintf(err, errlen, "umask %#o is out of range", run->umask);
		return -EINVAL;
	}
	return 0;
}

/* Our end of a fresh pipe2(O_CLOEXEC) pipe: one fcntl, since a new pipe has
 * no other status flags (and pipe2(O_NONBLOCK) would make the job's end
 * non-blocking too, which programs do not expect of their stdio). */
static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, O_NONBLOCK);
}

/* Pipes for the child's stdio; the daemon's ends are non-blocking. */
static int make_pipes(const ctld_Run *run, struct job *j, int child_ends[3])
{
	int p[2];

	child_ends[0] = child_ends[1] = child_ends[2] = -1;
	if (run->stdin_pipe) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		child_ends[0] = p[0];
		j->stdin_fd = p[1];
		j->had_stdin = true;
		set_nonblock(p[1]);
	}
	for (int s = 0; s < 2; s++) {
		if ((s == 0 ? run->stdout_path : run->stderr_path)[0])
			continue;
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		child_ends[s + 1] = p[1];
		j->out_fd[s] = p[0];
		set_nonblock(p[0]);
	}
	return 0;
}

static struct job *job_new(const ctld_Run *run, uint64_t owner)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->id = J.next_id++;
	j->pid = -1;
	j->pidfd = -1;
	j->out_fd[0] = j->out_fd[1] = j->stdin_fd = -1;
	j->state = ctld_JobState_JOB_RUNNING;
	j->owner = owner;
	j->kill_on_disconnect = run->kill_on_disconnect;
	outq_init(&j->stdin_q);
	loop_timer_init(&j->timeout, timeout_fired, j);
	describe_command(j, run);
	return j;
}

static void link_job(struct job *j)
{
	j->prev = J.last;
	if (J.last)
		J.last->next = j;
	else
		J.first = j;
	J.last = j;
}

static void register_job_fds(struct job *j)
{
	for (int s = 0; s < 2; s++)
		if (j->out_fd[s] >= 0 &&
		    loop_fd_add(J.loop, j->out_fd[s], EPOLLIN, job_stream_readable, j))
			close_fd(&j->out_fd[s]);
	/* stdin waits for EPOLLOUT only while something is queued */
	if (j->stdin_fd >= 0 && loop_fd_add(J.loop, j->stdin_fd, EPOLLERR, job_stdin_writable, j))
		close_fd(&j->stdin_fd);
}

/* Spawns j as described by run; fills j->pid etc. Returns 0 when a child was
 * created (exec may still have failed: j->exec_errno), or -errno. */
static int start_process(struct job *j, const ctld_Run *run, char *err, size_t errlen)
{
	static gid_t groups[MAX_GROUPS];
	struct spawn_rlimit rlimits[ARRAY_SIZE(run->rlimits) + 1];
	struct identity id = { .vars = { NULL } };
	struct spawn_request sr = { .argv = NULL };
	struct spawn_result res;
	char *argv[ARRAY_SIZE(run->argv) + 1];
	char **env = NULL, *paths = NULL;
	int child_ends[3] = { -1, -1, -1 };
	int ret;

	/* rlimits[0]: the descriptor limit the daemon was started with; the
	 * job's own rlimits come after it and may override it. */
	rlimits[0] = (struct spawn_rlimit){ .resource = RLIMIT_NOFILE,
					    .limit = J.cfg.child_nofile };
	if ((ret = resolve_user(run, &sr, groups, &id, err, errlen)) ||
	    (ret = parse_rlimits(run, rlimits + 1, err, errlen)))
		return ret;
	if (!(env = build_env(run, id.vars, err, errlen)))
		return -EINVAL;
	for (pb_size_t i = 0; i < run->argv_count; i++)
		argv[i] = (char *)run->argv[i];
	argv[run->argv_count] = NULL;
	sr.argv = argv;
	sr.envp = env;
	sr.cwd = run->cwd[0] ? run->cwd : "/";
	sr.rlimits = J.cfg.has_child_nofile ? rlimits : rlimits + 1;
	sr.nrlimits = run->rlimits_count + J.cfg.has_child_nofile;
	sr.set_umask = run->has_umask;
	sr.umask = (mode_t)run->umask;
	if ((ret = spawn_find_program(&sr, argv[0], env_get(env, "PATH"), &paths))) {
		snprintf(err, errlen, "program path too long");
		goto out;
	}
	if ((ret = make_pipes(run, j, child_ends))) {
		snprintf(err, errlen, "failed to create pipes: %s", strerror(-ret));
		goto out;
	}
	for (int i = 0; i < 3; i++)
		sr.stdio[i] = child_ends[i] >= 0 ? child_ends[i] : J.devnull;
	if (run->stdout_path[0]) {
		sr.stdio[1] = -1;
		sr.stdio_path[1] = run->stdout_path;
	}
	if (run->stderr_path[0]) {
		sr.stdio[2] = -1;
		sr.stdio_path[2] = run->stderr_path;
	}
	j->start_mono_ns = now_monotonic_ns();
	j->start_real_ns = now_realtime_ns();
	if ((ret = spawn_process(&sr, &res))) {
		snprintf(err, errlen, "failed to create a process: %s", strerror(-ret));
		goto out;
	}
	j->pid = res.pid;
	j->pidfd = res.pidfd;
	if (res.err) {
		j->exec_errno = res.err;
		snprintf(j->exec_text, sizeof(j->exec_text), "%s%s%s: %s", res.step,
			 res.what ? " " : "", res.what ? res.what : "", strerror(res.err));
	}
out:
	for (int i = 0; i < 3; i++)
		if (child_ends[i] >= 0)
			close(child_ends[i]);
	free(paths);
	free(env);
	return ret;
}

void jobs_handle_run(struct request_ctx *ctx, const ctld_Run *run)
{
	char err[200];
	struct job *j;
	ctld_Reply *r;
	int ret;

	if ((ret = validate_run(run, err, sizeof(err)))) {
		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, -ret, "%s", err);
		return;
	}
	/* A burst of pipelined Runs is handled before the loop gets to SIGCHLD:
	 * collect the jobs that already ended before calling the table full. */
	if (J.running >= J.cfg.max_jobs)
		jobs_reap_children();
	if (J.running >= J.cfg.max_jobs) {
		reply_error(ctx, ctld_ErrorCode_LIMIT, 0, "too many running jobs (limit %u)",
			    J.cfg.max_jobs);
		return;
	}
	if (!(j = job_new(run, ctx->session))) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return;
	}
	ret = start_process(j, run, err, sizeof(err));
	if (ret == -EMFILE || ret == -ENFILE) {
		/* finished-but-unreaped jobs still hold their pipes: reap, retry */
		jobs_reap_children();
		close_fd(&j->out_fd[0]);
		close_fd(&j->out_fd[1]);
		close_fd(&j->stdin_fd);
		ret = start_process(j, run, err, sizeof(err));
	}
	if (ret) {
		reply_error(ctx, ret == -EINVAL || ret == -ENOENT ? ctld_ErrorCode_BAD_REQUEST
								  : ctld_ErrorCode_SYSTEM,
			    -ret, "%s", err);
		job_free(j);
		return;
	}
	if (idmap_put(&J.by_id, j->id, j) || idmap_put(&J.by_pid, (uint64_t)j->pid, j) ||
	    (!run->detach && attach_client(j, ctx->session, true))) {
		/* cannot track it: do not leave an uncontrolled process behind */
		kill(-j->pid, SIGKILL);
		signal_main(j, SIGKILL);
		idmap_del(&J.by_id, j->id);
		idmap_del(&J.by_pid, (uint64_t)j->pid);
		job_free(j); /* the reaper collects the killed child as an orphan */
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return;
	}
	link_job(j);
	J.running++;
	J.started++;
	bpf_events_set_job(j->pid, j->id);
	r = reply_begin(ctx);
	r->which_result = ctld_Reply_run_tag;
	r->result.run.job = j->id;
	reply_send(ctx);

	if (j->exec_errno) {
		log_info("job %llu: %s", (unsigned long long)j->id, j->exec_text);
		j->state = ctld_JobState_JOB_EXEC_FAILED;
		close_fd(&j->out_fd[0]);
		close_fd(&j->out_fd[1]);
		mark_finished(j);
		return;
	}
	log_debug("job %llu: started pid %d: %s", (unsigned long long)j->id, j->pid, j->command);
	register_job_fds(j);
	send_launched(j);
	if (run->timeout_ms)
		loop_timer_arm(J.loop, &j->timeout,
			       j->start_mono_ns + (uint64_t)run->timeout_ms * NSEC_PER_MSEC);
}

/* ------------------------------------------------------------ stats, shutdown */

void jobs_fill_stats(ctld_StatsReply *st)
{
	st->jobs_running = J.running;
	st->jobs_started = J.started;
	st->exit_mismatches = J.exit_mismatches;
	st->exits_checked = J.exits_checked;
	st->orphans_reaped = J.orphans_reaped;
}

void jobs_shutdown(void)
{
	uint64_t deadline = now_monotonic_ns() + 3 * NSEC_PER_SEC;

	/* Every remembered job, finished ones too: their leftovers (a server a
	 * shell started in the background) must not outlive the daemon. */
	for (struct job *j = J.first; j; j = j->next)
		kill_tree(j, SIGKILL);
	kill_adopted();
	/* SIGKILL cannot be ignored; a process in uninterruptible sleep can
	 * still delay it, so wait a bounded time. */
	while (jobs_reap_children() && now_monotonic_ns() < deadline)
		usleep(2000);
	while (J.first) {
		struct job *j = J.first;

		unlink_job(j);
		job_free(j);
	}
	idmap_free(&J.by_id);
	idmap_free(&J.by_pid);
	if (J.devnull >= 0)
		close(J.devnull);
	J.devnull = -1;
}
