// SPDX-License-Identifier: BSD-2-Clause
/*
 * client_bench.c - ctld-bpf through persistent clients (user/client.h).
 *
 *   client_bench TARGET echo
 *       One connection for the tool's whole life. Reads a count N per line
 *       on stdin; runs Run{argv: ["/bin/echo", "x"]} N times back to back,
 *       each from sending Run to receiving its Exited, and prints
 *       {"total_ns":T,"failed":F,"runs":[ns,...]}.
 *
 *   client_bench TARGET clients C N
 *       C connections, one thread each, each running /bin/echo N times back
 *       to back; prints {"wall_ns":T,"failed":F,"runs":[ns,...]} (all runs).
 *
 *   client_bench TARGET jobs N SECONDS
 *       Sends N Run{sleep SECONDS} requests at once (pipelined), then reads
 *       until every job has Exited. Prints the time to the last Launched,
 *       the daemon's VmRSS (/proc) at that moment, the time to the last
 *       Exited and how many failed.
 *
 * TARGET is a unix socket path or HOST:PORT.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"

#define TIMEOUT_NS (30ull * 1000000000ull)

static char *const echo_argv[] = { "/bin/echo", "x" };

/* Runs /bin/echo once; 0 when it exited 0 with output "x\n". */
static int echo_once(struct ctld_conn *c, ctld_Request *req, ctld_Message *msg)
{
	uint64_t job, deadline = bench_now_ns() + TIMEOUT_NS;
	size_t out = 0;
	int ret;

	bench_run_request(req, 2, echo_argv);
	if ((ret = bench_call(c, req, msg)))
		return ret;
	job = msg->kind.reply.result.run.job;
	while ((ret = bench_next(c, msg, deadline)) > 0) {
		const ctld_Event *ev = &msg->kind.event;

		if (msg->which_kind != ctld_Message_event_tag)
			continue;
		if (ev->which_kind == ctld_Event_output_tag && ev->kind.output.job == job)
			out += ev->kind.output.data.size;
		else if (ev->which_kind == ctld_Event_exec_failed_tag && ev->kind.exec_failed.job == job)
			return -ENOEXEC;
		else if (ev->which_kind == ctld_Event_exited_tag && ev->kind.exited.job == job)
			return ev->kind.exited.exit_code == 0 && ev->kind.exited.signal == 0 && out == 2
				       ? 0
				       : -EIO;
	}
	return ret;
}

static int echo_batches(const char *target)
{
	ctld_Request *req = calloc(1, sizeof(*req));
	ctld_Message *msg = calloc(1, sizeof(*msg));
	struct ctld_conn c;
	char line[64];

	if (!req || !msg || bench_connect(&c, target, "client_bench echo"))
		return 1;
	while (fgets(line, sizeof(line), stdin)) {
		long n = atol(line), failed = 0;
		uint64_t *runs = calloc((size_t)(n > 0 ? n : 1), sizeof(*runs)), t0 = bench_now_ns();

		for (long i = 0; i < n; i++) {
			uint64_t t = bench_now_ns();
			int err = echo_once(&c, req, msg);

			runs[i] = bench_now_ns() - t;
			if (err) {
				failed++;
				if (!ctld_conn_ready(&c)) {
					fprintf(stderr, "client_bench: %s\n", ctld_conn_error(&c));
					return 1;
				}
			}
		}
		printf("{\"total_ns\":%llu,\"failed\":%ld,", (unsigned long long)(bench_now_ns() - t0),
		       failed);
		bench_print_array(stdout, "runs", runs, (size_t)n);
		printf("}\n");
		fflush(stdout);
		free(runs);
	}
	ctld_conn_close(&c);
	return 0;
}

/* ------------------------------------------------------------ many clients */

struct worker {
	pthread_t thread;
	struct ctld_conn conn;
	pthread_barrier_t *start;
	long n, failed;
	uint64_t *runs;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	ctld_Request *req = calloc(1, sizeof(*req));
	ctld_Message *msg = calloc(1, sizeof(*msg));

	pthread_barrier_wait(w->start);
	for (long i = 0; i < w->n; i++) {
		uint64_t t = bench_now_ns();

		w->failed += echo_once(&w->conn, req, msg) != 0;
		w->runs[i] = bench_now_ns() - t;
	}
	free(req);
	free(msg);
	return NULL;
}

static int many_clients(const char *target, long nclients, long n)
{
	struct worker *w = calloc((size_t)nclients, sizeof(*w));
	uint64_t *all = calloc((size_t)(nclients * n), sizeof(*all)), t0;
	pthread_barrier_t start;
	long failed = 0;

	if (!w || !all)
		return 1;
	pthread_barrier_init(&start, NULL, (unsigned)nclients + 1);
	/* connect one by one here: the library's Hello buffer is shared */
	for (long i = 0; i < nclients; i++) {
		w[i].n = n;
		w[i].start = &start;
		w[i].runs = all + i * n;
		if (bench_connect(&w[i].conn, target, "client_bench clients"))
			return 1;
	}
	for (long i = 0; i < nclients; i++)
		pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
	t0 = bench_now_ns();
	pthread_barrier_wait(&start);
	for (long i = 0; i < nclients; i++) {
		pthread_join(w[i].thread, NULL);
		failed += w[i].failed;
		ctld_conn_close(&w[i].conn);
	}
	printf("{\"wall_ns\":%llu,\"clients\":%ld,\"failed\":%ld,",
	       (unsigned long long)(bench_now_ns() - t0), nclients, failed);
	bench_print_array(stdout, "runs", all, (size_t)(nclients * n));
	printf("}\n");
	return 0;
}

/* ------------------------------------------------------------ many jobs */

static long vm_rss_kb(unsigned pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static int many_jobs(const char *target, long n, const char *seconds)
{
	ctld_Request *req = calloc(1, sizeof(*req));
	ctld_Message *msg = calloc(1, sizeof(*msg));
	char *const argv[] = { "/bin/sleep", (char *)seconds };
	long replies = 0, launched = 0, ended = 0, failed = 0, rss = -1, running = -1;
	uint64_t t0, t_launched = 0, t_exited = 0, deadline;
	struct ctld_conn c;
	int ret = 0;

	if (!req || !msg || bench_connect(&c, target, "client_bench jobs"))
		return 1;
	t0 = bench_now_ns();
	for (long i = 0; i < n && !ret; i++) {
		bench_run_request(req, 2, argv);
		ret = ctld_conn_send(&c, req, NULL);
	}
	deadline = t0 + TIMEOUT_NS + (uint64_t)atol(seconds) * 1000000000ull;
	while (!ret && ended < n && (ret = bench_next(&c, msg, deadline)) > 0) {
		ret = 0;
		if (msg->which_kind == ctld_Message_reply_tag) {
			const ctld_Reply *r = &msg->kind.reply;

			if (r->has_error && r->error.code != ctld_ErrorCode_OK) {
				if (!failed++)
					fprintf(stderr, "client_bench: Run: %s\n", r->error.text);
				ended++;
			}
			replies++;
			continue;
		}
		switch (msg->kind.event.which_kind) {
		case ctld_Event_launched_tag:
			if (++launched + failed == n) {
				t_launched = bench_now_ns() - t0;
				rss = vm_rss_kb(c.hello.pid);
				running = launched;
			}
			break;
		case ctld_Event_exec_failed_tag:
			failed++;
			ended++;
			break;
		case ctld_Event_exited_tag:
			if (msg->kind.event.kind.exited.exit_code || msg->kind.event.kind.exited.signal)
				failed++;
			if (++ended == n)
				t_exited = bench_now_ns() - t0;
			break;
		}
	}
	printf("{\"jobs\":%ld,\"replies\":%ld,\"launched\":%ld,\"exited\":%ld,\"failed\":%ld,"
	       "\"all_launched_ns\":%llu,\"all_exited_ns\":%llu,\"rss_kb\":%ld,\"live_at_rss\":%ld,"
	       "\"error\":%d}\n",
	       n, replies, launched, ended, failed, (unsigned long long)t_launched,
	       (unsigned long long)t_exited, rss, running, ret);
	ctld_conn_close(&c);
	return ret || failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[2], "echo") == 0)
		return echo_batches(argv[1]);
	if (argc == 5 && strcmp(argv[2], "clients") == 0)
		return many_clients(argv[1], atol(argv[3]), atol(argv[4]));
	if (argc == 5 && strcmp(argv[2], "jobs") == 0)
		return many_jobs(argv[1], atol(argv[3]), argv[4]);
	fprintf(stderr, "usage: client_bench TARGET echo | clients C N | jobs N SECONDS\n");
	return 64;
}
