// SPDX-License-Identifier: BSD-2-Clause
/* bpf_events.c - BPF-off path only, until the kernel programs land (issue 3). */
#include <errno.h>
#include <string.h>

#include "bpf_events.h"
#include "log.h"
#include "util.h"

static const char *status = "off";

bool bpf_events_init(struct loop *loop, const struct bpf_events_config *cfg)
{
	(void)loop;
	status = cfg->disabled ? "off (--no-bpf)" : "off (not built yet)";
	log_warn("eBPF is %s: exits come from waitid, ports from sock_diag polling", status);
	return false;
}
void bpf_events_shutdown(void) {}
bool bpf_events_enabled(void) { return false; }
const char *bpf_events_status(void) { return status; }
int bpf_events_set_job(pid_t pid, uint64_t job) { (void)pid; (void)job; return -EOPNOTSUPP; }
int bpf_events_job_pids(uint64_t job, pid_t *pids, size_t max)
{
	(void)job; (void)pids; (void)max;
	return -EOPNOTSUPP;
}
bool bpf_events_pid_in_job(pid_t pid, uint64_t job) { (void)pid; (void)job; return false; }
int bpf_events_watch_port(uint64_t netns_ino, uint16_t port)
{
	(void)netns_ino; (void)port;
	return -EOPNOTSUPP;
}
int bpf_events_unwatch_port(uint64_t netns_ino, uint16_t port)
{
	(void)netns_ino; (void)port;
	return -EOPNOTSUPP;
}
void bpf_events_fill_stats(ctld_StatsReply *st)
{
	st->bpf = false;
	copy_str(st->bpf_status, sizeof(st->bpf_status), status);
}
