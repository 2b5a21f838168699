// SPDX-License-Identifier: BSD-2-Clause
/*
 * job_output.c - a job's pipes: stdout and stderr streamed to its clients
 * and kept in a bounded backlog for clients that attach later, and stdin
 * fed by WriteStdin.
 *
 * Output is never a reason to block a job or the daemon: reads are
 * bounded per wake-up, slow clients drop (sendq.h), and a pipe still held
 * by a descendant after the job ended is read and discarded, never closed
 * under it (so it gets no SIGPIPE from us).
 *
 * A WriteStdin reply is owed until its bytes are in the pipe, so a client
 * that waits for replies is paced by the job, and nothing queues without
 * bound here.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/clients/reply.h"
#include "daemon/core/outbudget.h"
#include "daemon/jobs/job.h"

#define OUTPUT_CHUNK sizeof(((ctld_Output *)0)->data.bytes)

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

static struct {
	struct loop *loop;
	size_t backlog_bytes;
	uint64_t late_output_bytes;
	struct job_output_hooks hooks;
} O;

void job_output_init(struct loop *loop, size_t backlog_bytes, const struct job_output_hooks *hooks)
{
	O.loop = loop;
	O.backlog_bytes = backlog_bytes;
	O.late_output_bytes = 0;
	O.hooks = hooks ? *hooks : (struct job_output_hooks){ 0 };
}

bool job_output_open(const struct job *j)
{
	return j->out_fd[0] >= 0 || j->out_fd[1] >= 0;
}

/* "pipe:[INODE]" of the job's output pipes, as /proc/PID/fd shows them. */
static bool pipe_names(const struct job *j, char want[2][40])
{
	struct stat st;

	for (int s = 0; s < 2; s++) {
		want[s][0] = '\0';
		if (j->out_fd[s] >= 0 && fstat(j->out_fd[s], &st) == 0)
			snprintf(want[s], sizeof(want[s]), "pipe:[%lu]", (unsigned long)st.st_ino);
	}
	return want[0][0] || want[1][0];
}

static bool holds(pid_t pid, char want[2][40])
{
	char path[64], link[64];
	bool held = false;
	DIR *dir;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!(dir = opendir(path)))
		return false;
	while (!held && (de = readdir(dir))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/fd/%.20s", pid, de->d_name);
		if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
			continue;
		link[n] = '\0';
		held = (want[0][0] && strcmp(link, want[0]) == 0) ||
		       (want[1][0] && strcmp(link, want[1]) == 0);
	}
	closedir(dir);
	return held;
}

bool job_output_held_by(const struct job *j, pid_t pid)
{
	char want[2][40];

	return pipe_names(j, want) && holds(pid, want);
}

bool job_output_has_writers(const struct job *j)
{
	struct pollfd p[2];
	nfds_t n = 0;

	for (int s = 0; s < 2; s++)
		if (j->out_fd[s] >= 0)
			p[n++] = (struct pollfd){ .fd = j->out_fd[s], .events = POLLIN };
	if (!n || poll(p, n, 0) < 0)
		return false;
	for (nfds_t i = 0; i < n; i++)
		if (!(p[i].revents & (POLLHUP | POLLERR | POLLNVAL)))
			return true; /* a pipe's read end hangs up once no writer is left */
	return false;
}

void job_output_signal_holders(const struct job *j, int sig)
{
	char want[2][40];
	DIR *proc;
	struct dirent *de;

	if (!job_output_has_writers(j) || !pipe_names(j, want) || !(proc = opendir("/proc")))
		return;
	while ((de = readdir(proc))) {
		pid_t pid = (pid_t)strtol(de->d_name, NULL, 10);
		int fd;

		if (pid <= 0 || pid == getpid() || !holds(pid, want))
			continue;
		/* held by a pidfd, then checked again: a recycled pid is not hit */
		fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd >= 0 && holds(pid, want))
			syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
		else if (fd < 0 && errno == ENOSYS)
			kill(pid, sig); /* no pidfds here (valgrind): best effort */
		if (fd >= 0)
			close(fd);
	}
	closedir(proc);
}

uint64_t job_output_late_bytes(void)
{
	return O.late_output_bytes;
}

/* ------------------------------------------------------------ backlog */

/* Drops the oldest chunks until at most `keep` bytes are left; what goes
 * is reported to later attachers as older than the backlog. */
static void backlog_trim_to(struct job *j, size_t keep)
{
	while (j->bl_head && j->bl_bytes > keep) {
		struct backlog_chunk *c = j->bl_head;

		j->bl_head = c->next;
		if (!j->bl_head)
			j->bl_tail = NULL;
		j->bl_bytes -= c->len;
		j->bl_dropped[c->stream] += c->len;
		outbudget_release(c->len);
		free(c);
	}
}

static void backlog_add(struct job *j, int stream, uint64_t offset, const uint8_t *data,
			size_t len)
{
	struct backlog_chunk *c;

	if (!O.backlog_bytes)
		return;
	/* Over the daemon's output budget the whole backlog goes, so what a
	 * later attacher is told it missed is still one gap at the start. */
	if (!outbudget_may_keep(len) || !(c = malloc(sizeof(*c) + len))) {
		backlog_trim_to(j, 0);
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
	outbudget_charge(len);
	backlog_trim_to(j, O.backlog_bytes);
}

static void backlog_free(struct job *j)
{
	while (j->bl_head) {
		struct backlog_chunk *c = j->bl_head;

		j->bl_head = c->next;
		free(c);
	}
	outbudget_release(j->bl_bytes);
	j->bl_tail = NULL;
	j->bl_bytes = 0;
}

/* Replays the backlog to one client: first what was too old to keep. */
void job_backlog_send(struct job *j, uint64_t session)
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
		event_send(session);
	}
	for (struct backlog_chunk *c = j->bl_head; c; c = c->next) {
		ctld_Output *o = &event_begin(ctld_Event_output_tag)->kind.output;
		struct frame f;

		o->job = j->id;
		o->stream = (ctld_Stream)c->stream;
		o->offset = c->offset;
		o->data.size = (pb_size_t)c->len;
		memcpy(o->data.bytes, c->data, c->len);
		if (event_encode(&f) == 0) {
			f.droppable = true;
			f.job = j->id;
			f.stream = c->stream;
			f.payload = c->len;
			frame_send(session, &f);
		}
	}
}

/* ------------------------------------------------------------ output pipes */

static void close_fd(int *fd)
{
	if (*fd < 0)
		return;
	loop_fd_del(O.loop, *fd);
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
			if (!job_output_open(j) && O.hooks.pipes_closed)
				O.hooks.pipes_closed(j);
			return 1;
		}
		o->job = j->id;
		o->stream = (ctld_Stream)stream;
		o->offset = j->out_offset[stream];
		o->data.size = (pb_size_t)n;
		j->out_offset[stream] += (uint64_t)n;
		backlog_add(j, stream, o->offset, o->data.bytes, (size_t)n);
		job_broadcast(j, true, stream, (size_t)n);
		if (O.hooks.output)
			O.hooks.output(j, stream, o->data.bytes, (size_t)n);
	}
	return 0;
}

static void stream_readable(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct job *j = ctx;

	(void)loop;
	(void)events;
	read_stream(j, fd == j->out_fd[0] ? 0 : 1, 4);
}

/* A finished job's pipe still held open by a descendant: read and drop,
 * counted for the job (ctx: its id) while it is remembered. */
static void drain_discard(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	char buf[16384];
	struct job *j;
	ssize_t n;

	(void)events;
	n = read(fd, buf, sizeof(buf));
	if (n > 0) {
		O.late_output_bytes += (uint64_t)n;
		if ((j = job_by_id((uint64_t)(uintptr_t)ctx)))
			j->discarded_bytes += (uint64_t)n;
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	loop_fd_del(loop, fd);
	close(fd);
}

void job_output_drain(struct job *j)
{
	for (int s = 0; s < 2; s++)
		if (j->out_fd[s] >= 0)
			read_stream(j, s, 1 << 20);
}

void job_output_finish(struct job *j)
{
	for (int s = 0; s < 2; s++) {
		int fd = j->out_fd[s];

		if (fd < 0)
			continue;
		if (read_stream(j, s, 1 << 20))
			continue; /* EOF: closed */
		/* still open: it belongs to descendants now */
		loop_fd_del(O.loop, fd);
		if (loop_fd_add(O.loop, fd, EPOLLIN, drain_discard, (void *)(uintptr_t)j->id))
			close(fd);
		j->out_fd[s] = -1;
		j->pipes_held = true;
	}
}

/* Our end of a fresh pipe2(O_CLOEXEC) pipe: one fcntl, since a new pipe has
 * no other status flags (and pipe2(O_NONBLOCK) would make the job's end
 * non-blocking too, which programs do not expect of their stdio). */
static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, O_NONBLOCK);
}

int job_output_pipes(struct job *j, bool want_stdin, const bool want_out[2], int child_ends[3])
{
	int p[2];

	child_ends[0] = child_ends[1] = child_ends[2] = -1;
	if (want_stdin) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		child_ends[0] = p[0];
		j->stdin_fd = p[1];
		j->had_stdin = true;
		set_nonblock(p[1]);
	}
	for (int s = 0; s < 2; s++) {
		if (!want_out[s])
			continue;
		if (pipe2(p, O_CLOEXEC) < 0)
			return -errno;
		child_ends[s + 1] = p[1];
		j->out_fd[s] = p[0];
		set_nonblock(p[0]);
	}
	return 0;
}

static void stdin_writable(struct loop *loop, int fd, uint32_t events, void *ctx);

void job_output_start(struct job *j)
{
	for (int s = 0; s < 2; s++)
		if (j->out_fd[s] >= 0 &&
		    loop_fd_add(O.loop, j->out_fd[s], EPOLLIN, stream_readable, j))
			close_fd(&j->out_fd[s]);
	/* stdin waits for EPOLLOUT only while something is queued */
	if (j->stdin_fd >= 0 && loop_fd_add(O.loop, j->stdin_fd, EPOLLERR, stdin_writable, j))
		close_fd(&j->stdin_fd);
}

void job_output_close(struct job *j)
{
	close_fd(&j->out_fd[0]);
	close_fd(&j->out_fd[1]);
	job_stdin_close(j, ESRCH, "the job is gone");
	backlog_free(j);
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

void job_stdin_close(struct job *j, int err, const char *why)
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
			job_stdin_close(j, errno, errno == EPIPE ? "the job closed its stdin"
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
	loop_fd_set_mask(O.loop, j->stdin_fd, j->stdin_q.bytes ? EPOLLOUT : EPOLLERR);
}

static void stdin_writable(struct loop *loop, int fd, uint32_t events, void *ctx)
{
	struct job *j = ctx;

	(void)loop;
	(void)fd;
	if ((events & EPOLLERR) && !(events & EPOLLOUT)) {
		job_stdin_close(j, EPIPE, "the job closed its stdin");
		return;
	}
	stdin_flush(j);
}

void job_stdin_write(struct request_ctx *ctx, struct job *j, const ctld_WriteStdin *req)
{
	struct stdin_wait *grown;

	if (j->stdin_fd < 0 || j->stdin_eof_requested) {
		const char *why = j->state != ctld_JobState_JOB_RUNNING ? "has exited"
				  : !j->had_stdin ? "has no stdin pipe (start it with stdin_pipe)"
				  : "has closed its stdin (or it was closed with eof)";

		reply_error(ctx, ctld_ErrorCode_BAD_REQUEST, EPIPE, "job %llu %s",
			    (unsigned long long)j->id, why);
		return;
	}
	if (reply_pending_full(ctx->session)) {
		reply_error(ctx, ctld_ErrorCode_LIMIT, 0,
			    "too many WriteStdin requests in flight; wait for replies");
		return;
	}
	grown = realloc(j->waits, (j->nwaits + 1) * sizeof(*grown));
	if (grown)
		j->waits = grown;
	if (!grown || outq_append(&j->stdin_q, req->data.bytes, req->data.size)) {
		reply_error(ctx, ctld_ErrorCode_SYSTEM, ENOMEM, "out of memory");
		return;
	}
	j->stdin_queued += req->data.size;
	j->stdin_eof_requested = req->eof;
	j->waits[j->nwaits++] = (struct stdin_wait){ .reply = reply_defer(ctx),
						     .end = j->stdin_queued };
	stdin_flush(j);
}

/* ------------------------------------------------------------ upgrades */

void job_backlog_each(const struct job *j, job_backlog_fn fn, void *ctx)
{
	for (const struct backlog_chunk *c = j->bl_head; c; c = c->next)
		fn(j, c->stream, c->offset, c->data, c->len, ctx);
}

void job_backlog_import(struct job *j, int stream, uint64_t offset, const uint8_t *data,
			size_t len)
{
	backlog_add(j, stream, offset, data, len);
}

bool job_stdin_busy(const struct job *j)
{
	return j->nwaits || j->stdin_q.bytes;
}
