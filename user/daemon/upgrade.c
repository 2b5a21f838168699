// SPDX-License-Identifier: BSD-2-Clause
/*
 * upgrade.c - see upgrade.h.
 *
 * Why the program's path and not /proc/self/exe: after a package upgrade
 * /proc/self/exe is the old, deleted file, and executing it would "upgrade"
 * to the same build. The path the daemon was started from is where the new
 * build was installed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/clients/listener.h"
#include "daemon/clients/reply.h"
#include "daemon/clients/session.h"
#include "daemon/core/handover.h"
#include "daemon/files/file_transfers.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/jobs/jobs.h"
#include "daemon/jobs/spawner.h"
#include "daemon/kernel/bpf_events.h"
#include "daemon/upgrade.h"

#define UPGRADE_FLUSH_NS (NSEC_PER_SEC)
#define UPGRADES_ENV "CTLD_UPGRADES"

extern char **environ;

static struct {
	struct loop *loop;
	char exe[PATH_MAX];
	char **argv;
	bool busy;
	uint32_t count;
	uint64_t flush_deadline;
	struct loop_timer tick;
} U;

static void flush_tick(struct loop *loop, void *ctx);

uint32_t upgrade_count(void)
{
	return U.count;
}

bool upgrade_in_progress(void)
{
	return U.busy;
}

/* The path of the program file, as the kernel has it ("... (deleted)"
 * once replaced: the path is what counts). */
static int program_path(char *out, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 1);
	static const char deleted[] = " (deleted)";

	if (n < 0)
		return -errno;
	out[n] = '\0';
	if ((size_t)n > sizeof(deleted) - 1 && strcmp(out + n - (sizeof(deleted) - 1), deleted) == 0)
		out[n - (sizeof(deleted) - 1)] = '\0';
	return 0;
}

int upgrade_init(struct loop *loop, char **argv)
{
	const char *count = getenv(UPGRADES_ENV);

	U.loop = loop;
	U.argv = argv;
	loop_timer_init(&U.tick, flush_tick, NULL);
	if (count) {
		U.count = (uint32_t)strtoul(count, NULL, 10);
		unsetenv(UPGRADES_ENV);
	}
	return program_path(U.exe, sizeof(U.exe));
}

static void resume_serving(void)
{
	listener_pause(false);
	jobs_handover_prepare(false);
	U.busy = false;
}

/* The exec failed, or the handover could not be written: the running
 * image goes on (with a new helper if the old one was stopped). */
static void fail(struct handover *h, bool helper_stopped, const char *what, int err)
{
	log_err("upgrade failed (%s: %s): still serving with the running image", what,
		strerror(-err));
	handover_abort(h);
	if (helper_stopped && spawner_start() == 0)
		spawner_await(); /* and the programs learn its pid */
	resume_serving();
}

static void execute(void)
{
	struct handover *h = NULL;
	char count[16], why[160];
	int err;

	bpf_events_poll(); /* the kernel's last records about our jobs */
	jobs_reap_children();
	if (jobs_handover_blocker(why, sizeof(why))) {
		log_warn("upgrade abandoned: %s", why);
		resume_serving();
		return;
	}
	if ((err = handover_begin(&h)) || (err = listener_handover(h)) || (err = jobs_handover(h)) ||
	    (err = handover_finish(h))) {
		fail(h, false, "handover", err);
		return;
	}
	snprintf(count, sizeof(count), "%u", U.count + 1);
	setenv(UPGRADES_ENV, count, 1);
	spawner_stop();
	/* file transfers end with their connections; parked puts are not
	 * handed over: their temporary files go now, not left behind */
	transfers_shutdown();
	log_info("upgrade: executing %s (%u job(s) running)", U.exe, jobs_running());
	log_close(); /* what waits is written now; the next image opens its own */
	execve(U.exe, U.argv, environ);
	err = -errno;
	unsetenv(UPGRADES_ENV);
	log_open();
	log_attach(U.loop);
	fail(h, true, U.exe, err);
}

static void flush_tick(struct loop *loop, void *ctx)
{
	(void)ctx;
	if (session_count() == 0 || now_monotonic_ns() >= U.flush_deadline) {
		execute();
		return;
	}
	loop_timer_arm_in(loop, &U.tick, 10 * NSEC_PER_MSEC);
}

void upgrade_cancel(void)
{
	if (!U.busy)
		return;
	loop_timer_disarm(U.loop, &U.tick);
	jobs_handover_prepare(false);
	U.busy = false;
	log_info("upgrade cancelled: the daemon is stopping");
}

void upgrade_request(void)
{
	ctld_Upgrading *up;
	struct frame f;
	char why[160];

	if (U.busy) {
		log_info("SIGUSR2: an upgrade is under way already");
		return;
	}
	if (!U.exe[0]) {
		log_warn("SIGUSR2: upgrade refused: the daemon's program file is unknown");
		return;
	}
	if (jobs_handover_blocker(why, sizeof(why))) {
		log_warn("SIGUSR2: upgrade refused for now: %s; send SIGUSR2 again later", why);
		return;
	}
	U.busy = true;
	log_info("SIGUSR2: upgrading in place to %s (%u job(s) running, %u client(s))", U.exe,
		 jobs_running(), session_count());
	listener_pause(true);
	jobs_handover_prepare(true);
	up = &event_begin(ctld_Event_upgrading_tag)->kind.upgrading;
	up->pid = (uint32_t)getpid();
	snprintf(up->text, sizeof(up->text), "upgrading to %.200s", U.exe);
	if (event_encode(&f) == 0)
		session_close_all_with(&f, "the daemon is upgrading");
	else
		session_close_all_with(NULL, "the daemon is upgrading");
	U.flush_deadline = now_monotonic_ns() + UPGRADE_FLUSH_NS;
	loop_timer_arm(U.loop, &U.tick, 0);
}
