// SPDX-License-Identifier: BSD-2-Clause
/*
 * fuzz_session.c - libFuzzer target for the daemon's whole request path:
 * the input is written, after a valid Hello, into a real session (socketpair)
 * served by the real loop, dispatcher, job table and watch modules.
 *
 * Process creation is wrapped out (-Wl,--wrap=spawn_process fails with
 * EAGAIN), so a fuzzed Run never executes anything on the fuzzing machine,
 * and so is taking on a file request's rights (file_user_enter fails with
 * EPERM, and every path operation of PutFile and GetFile comes after it),
 * so a fuzzed PutFile never creates, chmods or replaces a file.
 * The daemon is put together as main() does it, with --no-bpf.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "common/wire.h"
#include "daemon/clients/session.h"
#include "daemon/core/loop.h"
#include "daemon/daemon.h"
#include "daemon/files/file_access.h"
#include "spawner/spawn.h"
#include "daemon/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int __wrap_spawn_process(const struct spawn_request *req, struct spawn_result *result);
int __wrap_file_user_enter(const struct file_user *u);

int __wrap_file_user_enter(const struct file_user *u)
{
	(void)u;
	return -EPERM;
}

int __wrap_spawn_process(const struct spawn_request *req, struct spawn_result *result)
{
	(void)req;
	result->pid = -1;
	result->pidfd = -1;
	return -EAGAIN;
}

static struct loop *fuzz_loop;

static void init_once(void)
{
	static char *argv[] = { "fuzz", "--no-bpf", "--frame-timeout", "50ms",
				"--hello-timeout", "50ms", "--max-watches", "16", NULL };
	struct options o;

	if (fuzz_loop)
		return;
	if (loop_new(&fuzz_loop) || options_parse(8, argv, &o) != OPTIONS_OK ||
	    daemon_init(fuzz_loop, &o))
		abort();
}

static void write_hello(int fd)
{
	ctld_Request hello = ctld_Request_init_zero;
	uint8_t buf[128];
	size_t len;

	hello.id = 1;
	hello.which_body = ctld_Request_hello_tag;
	hello.body.hello.protocol_version = CTLD_PROTOCOL_VERSION;
	if (wire_encode(ctld_Request_fields, &hello, buf, sizeof(buf), &len) == 0)
		(void)!write(fd, buf, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sink[65536];
	int sv[2];

	init_once();
	if (size > 256 * 1024)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
		return 0;
	if (session_accept(sv[0], &(struct peer){ .kind = PEER_UNIX, .name = "fuzz" }, NULL)) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	write_hello(sv[1]);
	for (size_t off = 0; off < size;) {
		ssize_t n = write(sv[1], data + off, size - off);

		if (n < 0 && errno != EAGAIN)
			break; /* the daemon closed this client (a protocol error) */
		if (n <= 0) {
			loop_run_once(fuzz_loop, 0);
			while (read(sv[1], sink, sizeof(sink)) > 0)
				;
			continue;
		}
		off += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 20 && session_count(); i++) {
		loop_run_once(fuzz_loop, 1);
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
	}
	close(sv[1]);
	/* let the reaper free the session and run the gone hooks */
	for (int i = 0; i < 3; i++)
		loop_run_once(fuzz_loop, 0);
	return 0;
}
