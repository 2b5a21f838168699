// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_procnet.c - /proc/net/tcp[6], the fallback for sock_diag: lines as
 * the kernel prints them (addresses as host-order words of network-order
 * data, ports in host order), then the real tables of this process's
 * namespace with a listener and a connection the test makes.
 */
// TEST_SRCS: user/daemon/kernel/procnet.c user/daemon/kernel/tcp_listener.c user/common/util.c
// TEST_WRAPS:
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/kernel/procnet.h"

/* One line of each table, copied from a 6.18 kernel. */
static void procnet_parse_lines(void **state)
{
	struct procnet_entry e;
	uint8_t lo[4] = { 127, 0, 0, 1 }, v6lo[16] = { 0 };

	(void)state;
	assert_int_equal(procnet_parse_line("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 "
					    "00:00000000 00000000     0        0 123456 1 "
					    "0000000000000000 100 0 0 10 0",
					    AF_INET, &e),
			 0);
	assert_memory_equal(e.local, lo, 4);
	assert_int_equal(e.local_port, 8080);
	assert_int_equal(e.state, TCP_LISTEN);
	assert_int_equal(e.timer, 0);
	assert_int_equal(e.uid, 0);
	assert_int_equal(e.ino, 123456);
	v6lo[15] = 1;
	assert_int_equal(procnet_parse_line("   1: 00000000000000000000000001000000:0050 "
					    "00000000000000000000000000000000:0000 0A "
					    "00000000:00000000 00:00000000 00000000  1000        0 "
					    "42 1 0000000000000000 100 0 0 10 0",
					    AF_INET6, &e),
			 0);
	assert_memory_equal(e.local, v6lo, 16);
	assert_int_equal(e.local_port, 80);
	assert_int_equal(e.uid, 1000);
	assert_int_equal(e.ino, 42);
	assert_int_equal(procnet_parse_line("  24: 0100007F:A364 0100007F:9C21 05 00000000:00000000 "
					    "03:0000176E 00000000     0        0 0 3 "
					    "000000009cc8dc8e",
					    AF_INET, &e),
			 0);
	assert_int_equal(e.timer, 3); /* TIME_WAIT */
	assert_int_equal(e.ino, 0);
	assert_int_equal(procnet_parse_line("  sl  local_address rem_address   st tx_queue", AF_INET,
					    &e),
			 -EINVAL);
	assert_int_equal(procnet_parse_line("   0: 0100007F:1F90 0000:0000 0A", AF_INET, &e), -EINVAL);
	assert_int_equal(procnet_parse_line("", AF_INET, &e), -EINVAL);
}

/* A listener of ours is found with its inode; a connection's owner too. */
static void procnet_real_tables(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage local, peer;
	socklen_t alen = sizeof(a), ll = sizeof(local), pl = sizeof(peer);
	struct tcp_listener found[64];
	struct procnet pn;
	struct stat st;
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), s, n;
	uid_t uid = 12345;
	bool seen = false;

	(void)state;
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(fstat(l, &st), 0);
	procnet_open(&pn);
	n = procnet_listeners(&pn, AF_INET, ntohs(a.sin_port), found, 64);
	assert_true(n >= 1);
	for (int i = 0; i < n && i < 64; i++)
		seen |= found[i].sock_ino == st.st_ino && found[i].port == ntohs(a.sin_port) &&
			found[i].family == AF_INET;
	assert_true(seen);
	assert_int_equal(procnet_listeners(&pn, AF_INET6, ntohs(a.sin_port), found, 64), 0);

	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	s = accept(l, NULL, NULL);
	assert_true(s >= 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&local, &ll), 0);
	assert_int_equal(getpeername(s, (struct sockaddr *)&peer, &pl), 0);
	assert_int_equal(procnet_peer_uid(&pn, &local, &peer, &uid), 0);
	assert_int_equal(uid, getuid());
	assert_int_equal(procnet_peer_uid(&pn, &peer, &local, &uid), 0); /* the other end */
	((struct sockaddr_in *)&peer)->sin_port = htons(1);
	assert_int_equal(procnet_peer_uid(&pn, &local, &peer, &uid), -ENOENT);
	procnet_close(&pn);
	close(s);
	close(c);
	close(l);
}

/* A peer whose socket went on to TIME_WAIT (the row says uid 0) is not
 * taken for root: -ENOTCONN. */
static void procnet_closed_peer_is_nobody(void **state)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage local, peer;
	socklen_t alen = sizeof(a), ll = sizeof(local), pl = sizeof(peer);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0), s, err;
	struct procnet pn;
	uid_t uid = 12345;

	(void)state;
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	s = accept(l, NULL, NULL);
	assert_true(s >= 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&local, &ll), 0);
	assert_int_equal(getpeername(s, (struct sockaddr *)&peer, &pl), 0);
	procnet_open(&pn);
	close(c);
	/* FIN_WAIT1 first (closed, the owner still known), TIME_WAIT once the
	 * FIN is acknowledged (a delayed ACK: some ms) */
	for (int i = 0; i < 1000; i++) {
		uid = 12345;
		if ((err = procnet_peer_uid(&pn, &local, &peer, &uid)) == -ENOTCONN)
			break;
		assert_int_equal(err, 0);
		assert_int_equal(uid, getuid());
		usleep(1000);
	}
	assert_int_equal(err, -ENOTCONN);
	assert_int_equal(uid, 12345);
	procnet_close(&pn);
	close(s);
	close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(procnet_parse_lines),
		cmocka_unit_test(procnet_real_tables),
		cmocka_unit_test(procnet_closed_peer_is_nobody),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
