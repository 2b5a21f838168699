// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_port_monitor.c - the listener sets of watched ports, driven through
 * the calls the kernel side makes (LISTEN candidates, CLOSE records, lost
 * records) with the kernel map, sock_diag and namespaces faked below and a
 * real loop for the retry and poll timers.
 *
 * What it pins down: listeners found at subscribe time are reported only
 * on replay, as `already`; a candidate is reported once sock_diag shows it
 * (also when it shows up only on a retry), and as a failed listen() when
 * its CLOSE comes first; every reported listener, `already` ones included,
 * gets its `closed`; subscribers may end themselves and each other inside
 * a callback; a resync or a poll reports exactly the difference; the
 * kernel filter is held once per port and let go with the last subscriber.
 */
// TEST_SRCS: user/daemon/watch/port_monitor.c user/daemon/core/idmap.c user/daemon/core/loop.c
// TEST_SRCS: user/common/util.c user/daemon/core/log.c
// TEST_WRAPS:
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/core/loop.h"
#include "daemon/kernel/bpf_events.h"
#include "daemon/kernel/netns.h"
#include "daemon/kernel/sockdiag.h"
#include "daemon/watch/port_monitor.h"

#define NS_INO 4026531840ULL
#define PORT 8080

struct heard {
	int sub;
	char what; /* 'L' listening, 'A' already, 'C' closed, 'F' listen failed */
	uint64_t ino;
	pid_t pid;
};

static struct {
	struct loop *loop;
	struct netns ns;
	bool bpf;
	int kernel_refs, kernel_adds;
	int diag_err;
	struct tcp_listener listening[16]; /* what sock_diag shows */
	int nlistening;
	struct heard heard[64];
	int nheard;
	struct port_sub subs[4];
	/* callback misbehaviour: on this (sub, what), unsubscribe these */
	int end_on_sub;
	char end_on_what;
	int end_subs[4], nend;
} T;

/* ------------------------------------------------------------ fakes */

bool bpf_events_enabled(void)
{
	return T.bpf;
}

int bpf_events_watch_port(uint64_t netns_ino, uint16_t port)
{
	assert_int_equal(netns_ino, NS_INO);
	(void)port;
	T.kernel_refs++;
	T.kernel_adds++;
	return 0;
}

int bpf_events_unwatch_port(uint64_t netns_ino, uint16_t port)
{
	(void)netns_ino;
	(void)port;
	T.kernel_refs--;
	return 0;
}

int netns_listeners(struct netns *ns, int family, uint16_t port, struct tcp_listener *out,
		    size_t max)
{
	int n = 0;

	assert_ptr_equal(ns, &T.ns);
	if (T.diag_err)
		return T.diag_err;
	for (int i = 0; i < T.nlistening; i++) {
		const struct tcp_listener *l = &T.listening[i];

		if ((family && l->family != family) || (port && l->port != port))
			continue;
		if ((size_t)n < max) {
			out[n] = *l;
			out[n].pid = 0; /* a dump knows sockets, not owners */
			out[n].comm[0] = '\0';
		}
		n++;
	}
	return n;
}

size_t sockdiag_find_owners(struct tcp_listener **want, size_t n)
{
	size_t found = 0;

	for (size_t k = 0; k < n; k++) {
		for (int i = 0; i < T.nlistening && !want[k]->pid; i++) {
			if (T.listening[i].sock_ino == want[k]->sock_ino) {
				want[k]->pid = T.listening[i].pid;
				copy_str(want[k]->comm, CTLD_COMM_LEN, T.listening[i].comm);
				found++;
			}
		}
	}
	return found;
}

struct netns *netns_ref(struct netns *ns)
{
	ns->refs++;
	return ns;
}

void netns_put(struct netns *ns)
{
	ns->refs--;
}

void netns_for_each(void (*fn)(struct netns *ns, void *ctx), void *ctx)
{
	fn(&T.ns, ctx);
}

/* ------------------------------------------------------------ subscribers */

static void hear(struct port_sub *sub, char what, const struct tcp_listener *l)
{
	int idx = (int)(sub - T.subs);

	assert_true(T.nheard < 64);
	T.heard[T.nheard++] = (struct heard){ .sub = idx, .what = what, .ino = l->sock_ino,
					      .pid = l->pid };
	if (idx == T.end_on_sub && what == T.end_on_what)
		for (int i = 0; i < T.nend; i++)
			port_monitor_unsubscribe(&T.subs[T.end_subs[i]]);
}

static void on_listening(struct port_sub *sub, const struct tcp_listener *l, bool already)
{
	if (already)
		assert_int_equal(l->time_ns, 0);
	hear(sub, already ? 'A' : 'L', l);
}

static void on_closed(struct port_sub *sub, const struct tcp_listener *l)
{
	hear(sub, 'C', l);
}

static void on_failed(struct port_sub *sub, const struct tcp_listener *l)
{
	hear(sub, 'F', l);
}

static const struct port_sub_ops ops = { on_listening, on_closed, on_failed };

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	log_set_level(LOG_ERR);
	T.ns = (struct netns){ .ino = NS_INO, .diag_fd = -1, .refs = 1 };
	T.bpf = true;
	T.end_on_sub = -1;
	for (int i = 0; i < 4; i++)
		T.subs[i] = (struct port_sub){ .ops = &ops };
	if (loop_new(&T.loop))
		return -1;
	port_monitor_init(T.loop, 20);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	port_monitor_shutdown();
	loop_free(T.loop);
	assert_int_equal(T.ns.refs, 1); /* every reference given back */
	return 0;
}

static struct tcp_listener listener(uint64_t ino, pid_t pid)
{
	struct tcp_listener l = { .netns = NS_INO, .sock_ino = ino, .port = PORT,
				  .family = AF_INET, .pid = pid, .time_ns = now_monotonic_ns() };

	snprintf(l.comm, sizeof(l.comm), "srv%d", pid);
	return l;
}

/* Makes l show up in sock_diag dumps (listen() succeeded). */
static void starts_listening(const struct tcp_listener *l)
{
	T.listening[T.nlistening++] = *l;
}

static void stops_listening(uint64_t ino)
{
	for (int i = 0; i < T.nlistening; i++)
		if (T.listening[i].sock_ino == ino)
			T.listening[i] = T.listening[--T.nlistening];
}

static void subscribe(int i)
{
	char err[100];

	assert_int_equal(port_monitor_subscribe(&T.subs[i], &T.ns, PORT, err, sizeof(err)), 0);
}

static void expect(int k, int sub, char what, uint64_t ino)
{
	assert_true(k < T.nheard);
	assert_int_equal(T.heard[k].sub, sub);
	assert_int_equal(T.heard[k].what, what);
	assert_int_equal(T.heard[k].ino, ino);
}

static void pump_ms(int ms)
{
	uint64_t end = now_monotonic_ns() + (uint64_t)ms * NSEC_PER_MSEC;

	while (now_monotonic_ns() < end)
		assert_int_equal(loop_run_once(T.loop, 5), 0);
}

/* ------------------------------------------------------------ tests */

/* Listening before the subscription: found by the dump, told on replay. */
static void monitor_already_on_replay(void **state)
{
	struct tcp_listener old = listener(11, 500);

	(void)state;
	starts_listening(&old);
	subscribe(0);
	subscribe(1);
	assert_int_equal(T.kernel_adds, 1); /* one kernel reference per port */
	assert_int_equal(T.nheard, 0);	    /* nothing before the replay */
	assert_true(port_monitor_replay(&T.subs[0]));
	assert_int_equal(T.nheard, 1);
	expect(0, 0, 'A', 11);
	assert_int_equal(T.heard[0].pid, 500); /* the owner, looked up */
	port_monitor_unsubscribe(&T.subs[0]);
	assert_int_equal(T.kernel_refs, 1);
	port_monitor_unsubscribe(&T.subs[1]);
	assert_int_equal(T.kernel_refs, 0);
	assert_int_equal(port_monitor_interests(), 0);
}

/* A kernel candidate that sock_diag confirms goes to every subscriber,
 * with the owner from the kernel record. */
static void monitor_candidate_confirmed(void **state)
{
	struct tcp_listener l = listener(21, 600);

	(void)state;
	subscribe(0);
	subscribe(1);
	starts_listening(&l);
	port_monitor_kernel_listen(&l);
	assert_int_equal(T.nheard, 2);
	assert_int_equal(T.heard[0].what, 'L');
	assert_int_equal(T.heard[1].what, 'L');
	assert_int_equal(T.heard[0].pid, 600);
	port_monitor_kernel_listen(&l); /* the same socket again: nothing new */
	assert_int_equal(T.nheard, 2);
	port_monitor_unsubscribe(&T.subs[0]);
	port_monitor_unsubscribe(&T.subs[1]);
}

/* Looked too early (not hashed yet): retried on a timer, then confirmed. */
static void monitor_candidate_retried(void **state)
{
	struct tcp_listener l = listener(31, 700);

	(void)state;
	subscribe(0);
	port_monitor_kernel_listen(&l);
	assert_int_equal(T.nheard, 0);
	starts_listening(&l);
	pump_ms(30);
	assert_int_equal(T.nheard, 1);
	expect(0, 0, 'L', 31);
	port_monitor_unsubscribe(&T.subs[0]);
}

/* LISTEN then CLOSE before sock_diag ever showed it: listen() failed. */
static void monitor_failed_listen(void **state)
{
	struct tcp_listener l = listener(41, 800);

	(void)state;
	subscribe(0);
	port_monitor_kernel_listen(&l);
	port_monitor_kernel_close(&l);
	assert_int_equal(T.nheard, 1);
	expect(0, 0, 'F', 41);
	assert_int_equal(T.heard[0].pid, 800);
	pump_ms(30); /* and no retry reports it later */
	assert_int_equal(T.nheard, 1);
	port_monitor_unsubscribe(&T.subs[0]);
}

/* Every reported listener is closed in the end, `already` ones too. */
static void monitor_every_listener_closes(void **state)
{
	struct tcp_listener old = listener(51, 900), fresh = listener(52, 901);

	(void)state;
	starts_listening(&old);
	subscribe(0);
	assert_true(port_monitor_replay(&T.subs[0]));
	starts_listening(&fresh);
	port_monitor_kernel_listen(&fresh);
	stops_listening(51);
	port_monitor_kernel_close(&old);
	stops_listening(52);
	port_monitor_kernel_close(&fresh);
	assert_int_equal(T.nheard, 4);
	expect(0, 0, 'A', 51);
	expect(1, 0, 'L', 52);
	expect(2, 0, 'C', 51);
	expect(3, 0, 'C', 52);
	port_monitor_kernel_close(&fresh); /* unknown now: nothing */
	assert_int_equal(T.nheard, 4);
	port_monitor_unsubscribe(&T.subs[0]);
}

/* A callback that ends itself and a later subscriber, inside the round:
 * nobody freed is called, the rest still hear it, the port is let go. */
static void monitor_unsubscribe_inside_callback(void **state)
{
	struct tcp_listener l = listener(61, 1000);

	(void)state;
	subscribe(0);
	subscribe(1);
	subscribe(2);
	/* subscribers are told newest first: 2, 1, 0 */
	T.end_on_sub = 2;
	T.end_on_what = 'L';
	T.end_subs[0] = 2;
	T.end_subs[1] = 1;
	T.nend = 2;
	starts_listening(&l);
	port_monitor_kernel_listen(&l);
	assert_int_equal(T.nheard, 2);
	expect(0, 2, 'L', 61);
	expect(1, 0, 'L', 61);
	T.end_on_sub = 0;
	T.end_subs[0] = 0;
	T.nend = 1;
	T.end_on_what = 'C';
	stops_listening(61);
	port_monitor_kernel_close(&l); /* the last one ends itself while being told */
	assert_int_equal(T.nheard, 3);
	assert_int_equal(T.kernel_refs, 0);
	assert_int_equal(port_monitor_interests(), 0);
}

/* After lost records the dump decides: what appeared joins, what went leaves. */
static void monitor_resync_reports_difference(void **state)
{
	struct tcp_listener a = listener(71, 1100), b = listener(72, 1101);

	(void)state;
	starts_listening(&a);
	subscribe(0);
	assert_true(port_monitor_replay(&T.subs[0]));
	stops_listening(71);
	starts_listening(&b);
	port_monitor_resync();
	assert_int_equal(T.nheard, 3);
	expect(0, 0, 'A', 71);
	expect(1, 0, 'L', 72);
	assert_int_equal(T.heard[1].pid, 1101);
	expect(2, 0, 'C', 71);
	port_monitor_resync(); /* nothing changed: nothing said */
	assert_int_equal(T.nheard, 3);
	T.diag_err = -ENOENT; /* a dump that fails changes nothing either */
	port_monitor_resync();
	assert_int_equal(T.nheard, 3);
	port_monitor_unsubscribe(&T.subs[0]);
}

/* Neither sock_diag nor /proc can tell: the kernel's word counts, once a
 * retry has passed without the CLOSE of a failed listen(); a failed one is
 * still told as such. */
static void monitor_unconfirmable_candidate(void **state)
{
	struct tcp_listener ok = listener(91, 1300), bad = listener(92, 1301);

	(void)state;
	subscribe(0);
	T.diag_err = -ENOENT;
	port_monitor_kernel_listen(&ok);
	assert_int_equal(T.nheard, 0);
	pump_ms(10);
	assert_int_equal(T.nheard, 1);
	expect(0, 0, 'L', 91);
	port_monitor_kernel_listen(&bad);
	port_monitor_kernel_close(&bad);
	assert_int_equal(T.nheard, 2);
	expect(1, 0, 'F', 92);
	T.diag_err = 0;
	port_monitor_unsubscribe(&T.subs[0]);
}

/* A listener that closes before the daemon looked (a 3 ms server, a busy
 * daemon) was still there: its CLOSE says it had been hashed, so it is
 * told as listening, then closed, never as a failed listen(); a CLOSE that
 * was never hashed is the failure. (Before, both were "failed".) */
static void monitor_short_lived_listener(void **state)
{
	struct tcp_listener brief = listener(95, 1400), failed = listener(96, 1401);

	(void)state;
	subscribe(0);
	port_monitor_kernel_listen(&brief); /* not in any dump: it is already gone */
	brief.listened = true;
	port_monitor_kernel_close(&brief);
	assert_int_equal(T.nheard, 2);
	expect(0, 0, 'L', 95);
	expect(1, 0, 'C', 95);
	port_monitor_kernel_listen(&failed);
	port_monitor_kernel_close(&failed);
	assert_int_equal(T.nheard, 3);
	expect(2, 0, 'F', 96);
	pump_ms(700); /* no retry of either is left to say anything */
	assert_int_equal(T.nheard, 3);
	port_monitor_unsubscribe(&T.subs[0]);
}

/* Without BPF a poll finds listeners; it stops with the last subscriber. */
static void monitor_polls_without_bpf(void **state)
{
	struct tcp_listener l = listener(81, 1200);

	(void)state;
	T.bpf = false;
	subscribe(0);
	assert_int_equal(T.kernel_adds, 0);
	starts_listening(&l);
	pump_ms(60);
	assert_int_equal(T.nheard, 1);
	expect(0, 0, 'L', 81);
	stops_listening(81);
	pump_ms(60);
	assert_int_equal(T.nheard, 2);
	expect(1, 0, 'C', 81);
	port_monitor_unsubscribe(&T.subs[0]);
	starts_listening(&l);
	pump_ms(60);
	assert_int_equal(T.nheard, 2);
}

#define TC(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		TC(monitor_already_on_replay),	    TC(monitor_candidate_confirmed),
		TC(monitor_candidate_retried),	    TC(monitor_failed_listen),
		TC(monitor_every_listener_closes),  TC(monitor_unsubscribe_inside_callback),
		TC(monitor_resync_reports_difference), TC(monitor_polls_without_bpf),
		TC(monitor_unconfirmable_candidate), TC(monitor_short_lived_listener),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
