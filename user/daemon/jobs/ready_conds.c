// SPDX-License-Identifier: BSD-2-Clause
/*
 * ready_conds.c - the three kinds of readiness condition:
 *
 *   port  a port_monitor subscriber: a listener of the job's own tree (the
 *         kernel record names its job; without BPF, /proc ancestry, the
 *         job's session, or the job's output pipes it holds) on the port
 *         and address makes it true; anyone
 *         else's is a holder (NotReady{PORT_TAKEN} unless the job gets
 *         the port after all); a failed listen() of the job's is kept
 *   log   a POSIX extended regex matched against each line of output
 *   file  a path follower: the file exists with at least min_bytes
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "daemon/jobs/job.h"
#include "daemon/jobs/ready_priv.h"
#include "daemon/kernel/netns.h"
#include "daemon/watch/file_rules.h"

#define STREAM_BITS 3u

/* ------------------------------------------------------------ port */

static bool listener_is_jobs(const struct job *j, const struct tcp_listener *l)
{
	if (l->root_pid) /* the kernel knew at listen() whose process it was */
		return l->job == j->id || (l->job == 0 && l->root_pid == j->tree.pid);
	/* without eBPF: /proc ancestry or session, or it kept the job's output */
	return proc_tree_contains(&j->tree, l->pid) || job_output_held_by(j, l->pid);
}

static void port_listening(struct port_sub *sub, const struct tcp_listener *l, bool already)
{
	struct ready_cond *c = sub->ctx;
	struct readiness *r = c->r;

	if (!ready_waiting(r) || !addr_filter_matches(&c->filter, l))
		return;
	/* Listening before the job ran, or someone else's: a holder. */
	if (already || !r->exec_ns || !listener_is_jobs(r->job, l)) {
		ready_port_held(r, l);
		return;
	}
	if (c->met)
		return;
	c->state.port = l->port;
	tcp_addr_format(l->family, l->addr, c->state.addr, sizeof(c->state.addr));
	c->state.pid = (uint32_t)l->pid;
	copy_str(c->state.comm, sizeof(c->state.comm), l->comm);
	ready_cond_met(c, l->time_ns ? l->time_ns : now_monotonic_ns());
}

static void port_closed(struct port_sub *sub, const struct tcp_listener *l)
{
	struct ready_cond *c = sub->ctx;

	ready_port_freed(c->r, l);
}

static void port_listen_failed(struct port_sub *sub, const struct tcp_listener *l)
{
	struct ready_cond *c = sub->ctx;

	if (ready_waiting(c->r) && c->r->exec_ns && listener_is_jobs(c->r->job, l))
		ready_listen_failed(c->r, l);
}

static const struct port_sub_ops port_ops = {
	.listening = port_listening,
	.closed = port_closed,
	.listen_failed = port_listen_failed,
};

static int setup_port(struct ready_cond *c, const ctld_PortCondition *pc, char *err,
		      size_t errlen)
{
	if (pc->port == 0 || pc->port > 65535)
		return errorf(err, errlen, -EINVAL, "ready condition %d: port %u is out of range",
			      c->index, pc->port);
	if (addr_filter_parse(pc->addr, &c->filter))
		return errorf(err, errlen, -EINVAL,
			      "ready condition %d: not an IPv4/IPv6 address: '%s'", c->index,
			      pc->addr);
	c->port = (uint16_t)pc->port;
	c->state.port = c->port;
	snprintf(c->desc, sizeof(c->desc), "port %u%s%s", c->port, pc->addr[0] ? " on " : "",
		 pc->addr);
	copy_str(c->state.addr, sizeof(c->state.addr), pc->addr);
	return 0;
}

static int arm_port(struct ready_cond *c, char *err, size_t errlen)
{
	int ret;

	if ((ret = netns_get("", &c->ns, err, errlen)))
		return ret;
	c->sub = (struct port_sub){ .ops = &port_ops, .ctx = c };
	if ((ret = port_monitor_subscribe(&c->sub, c->ns, c->port, err, errlen))) {
		netns_put(c->ns);
		c->ns = NULL;
		return ret;
	}
	/* who is there already: holders, since the job has not started */
	port_monitor_replay(&c->sub);
	return 0;
}

/* ------------------------------------------------------------ log */

static int setup_log(struct ready_cond *c, const ctld_LogCondition *lc, char *err, size_t errlen)
{
	int ret;

	if (!lc->regex[0])
		return errorf(err, errlen, -EINVAL, "ready condition %d: empty regex", c->index);
	if (lc->streams & ~STREAM_BITS)
		return errorf(err, errlen, -EINVAL, "ready condition %d: streams must be 1, 2 or 3",
			      c->index);
	if ((ret = regcomp(&c->re, lc->regex, REG_EXTENDED | REG_NOSUB))) {
		char why[120];

		regerror(ret, &c->re, why, sizeof(why));
		return errorf(err, errlen, -EINVAL, "ready condition %d: bad regex '%.60s': %s",
			      c->index, lc->regex, why);
	}
	c->compiled = true;
	snprintf(c->desc, sizeof(c->desc), "output matching '%.60s'", lc->regex);
	c->streams = lc->streams ? lc->streams : STREAM_BITS;
	return 0;
}

void ready_cond_line(struct ready_cond *c, int stream, const char *line, uint64_t now_ns)
{
	if (c->kind != COND_LOG || c->met || !(c->streams & (1u << stream)) ||
	    regexec(&c->re, line, 0, NULL, 0) != 0)
		return;
	copy_str(c->state.line, sizeof(c->state.line), line);
	c->state.stream = (ctld_Stream)stream;
	ready_cond_met(c, now_ns);
}

/* ------------------------------------------------------------ file */

static bool file_changed(struct file_follow *f, ctld_FileEventKind kind, bool appeared,
			 bool size_known, uint64_t size)
{
	struct ready_cond *c = f->ctx;

	(void)kind;
	(void)appeared;
	if (!ready_waiting(c->r) || c->met || !size_known || (c->has_min && size < c->min_bytes))
		return true;
	c->state.size = size;
	ready_cond_met(c, now_monotonic_ns());
	return true;
}

static const struct file_follow_ops follow_ops = { .changed = file_changed };

static int setup_file(struct ready_cond *c, const ctld_FileCondition *fc, const char *cwd,
		      char *err, size_t errlen)
{
	char joined[FILE_FOLLOW_PATH_MAX * 2];

	if (!fc->path[0])
		return errorf(err, errlen, -EINVAL, "ready condition %d: empty path", c->index);
	snprintf(joined, sizeof(joined), "%s%s%s", fc->path[0] == '/' ? "" : cwd,
		 fc->path[0] == '/' ? "" : "/", fc->path);
	if (file_rules_normalize_path(joined, c->path, sizeof(c->path), &c->parent_len))
		return errorf(err, errlen, -EINVAL,
			      "ready condition %d: bad path '%.100s' (too long, \"..\", or no file)",
			      c->index, fc->path);
	c->has_min = fc->has_min_bytes;
	c->min_bytes = fc->min_bytes;
	if (c->has_min)
		snprintf(c->desc, sizeof(c->desc), "file %.60s (%llu bytes)", c->path,
			 (unsigned long long)c->min_bytes);
	else
		snprintf(c->desc, sizeof(c->desc), "file %.80s", c->path);
	copy_str(c->state.path, sizeof(c->state.path), c->path);
	return 0;
}

/* The job may create the directory: the nearest one that exists is
 * watched until then (the follower walks down as directories appear). */
static int arm_file(struct ready_cond *c, char *err, size_t errlen)
{
	char failed[FILE_FOLLOW_PATH_MAX];
	int ret;

	c->follow = (struct file_follow){ .ops = &follow_ops, .ctx = c };
	(void)err;
	(void)errlen;
	ret = file_follow_start(&c->follow, c->path, c->parent_len, true, failed, sizeof(failed));
	if (ret) {
		c->arm_err = ret; /* NotReady{FILE_ERROR}, once the job runs */
		copy_str(c->path, sizeof(c->path), failed);
		return 0;
	}
	c->following = true;
	return 0;
}

static void file_launched(struct ready_cond *c)
{
	struct stat st;

	if (stat(c->path, &st) == 0)
		file_changed(&c->follow, ctld_FileEventKind_FILE_NONE, false, true,
			     st.st_size > 0 ? (uint64_t)st.st_size : 0);
}

/* ------------------------------------------------------------ all kinds */

int ready_cond_setup(struct ready_cond *c, const ctld_ReadyCondition *rc, const char *cwd,
		     char *err, size_t errlen)
{
	switch (rc->which_kind) {
	case ctld_ReadyCondition_port_tag:
		c->kind = COND_PORT;
		return setup_port(c, &rc->kind.port, err, errlen);
	case ctld_ReadyCondition_log_tag:
		c->kind = COND_LOG;
		return setup_log(c, &rc->kind.log, err, errlen);
	case ctld_ReadyCondition_file_tag:
		c->kind = COND_FILE;
		return setup_file(c, &rc->kind.file, cwd, err, errlen);
	default:
		return errorf(err, errlen, -EINVAL, "ready condition %d: no kind (port, log, file)",
			      c->index);
	}
}

int ready_cond_arm(struct ready_cond *c, char *err, size_t errlen)
{
	if (c->kind == COND_PORT)
		return arm_port(c, err, errlen);
	if (c->kind == COND_FILE)
		return arm_file(c, err, errlen);
	return 0;
}

void ready_cond_launched(struct ready_cond *c)
{
	if (c->kind == COND_FILE && c->following)
		file_launched(c);
}

void ready_cond_stop(struct ready_cond *c)
{
	if (c->ns) {
		port_monitor_unsubscribe(&c->sub);
		netns_put(c->ns);
		c->ns = NULL;
	}
	if (c->compiled)
		regfree(&c->re);
	c->compiled = false;
	if (c->following)
		file_follow_stop(&c->follow);
	c->following = false;
}

void ready_conds_look_for_holders(struct readiness *r)
{
	for (size_t i = 0; i < r->ncond; i++)
		if (r->cond[i].kind == COND_PORT) {
			/* the kernel's records are here already; polling is 20 ms behind */
			port_monitor_poll_now();
			return;
		}
}
