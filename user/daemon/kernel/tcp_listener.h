/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tcp_listener.h - the one description of a listening TCP socket in user
 * space (with the address filters clients apply to it), and of a process
 * event from the kernel. A kernel record (after
 * bpf_events.c decoded it), a sock_diag dump entry and a listener a watch
 * has reported are all a struct tcp_listener; fields a source cannot know
 * stay 0.
 */
#ifndef CTLD_TCP_LISTENER_H
#define CTLD_TCP_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTLD_COMM_LEN 16

struct tcp_listener {
	uint64_t netns;    /* network namespace inode */
	uint64_t sock_ino; /* socket inode: names the socket in kernel records and dumps */
	uint64_t time_ns;  /* CLOCK_MONOTONIC of the transition (0: found by a dump) */
	uint64_t job;      /* the owner's job, when the kernel tracks the owner */
	pid_t root_pid;    /* that job's main pid (0: the owner is not tracked) */
	pid_t pid;         /* the owner (tgid); 0 when unknown */
	uint16_t port;     /* host byte order */
	uint16_t family;   /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* IPv4 in the first 4 bytes */
	bool listened;     /* a kernel CLOSE record: the socket had listened (it was
			    * closed); false: its listen() failed */
	char comm[CTLD_COMM_LEN];
};

/* A tracked process forked or exited (job 0: before the daemon set it). */
struct proc_event {
	uint64_t time_ns; /* CLOCK_MONOTONIC */
	uint64_t job;
	pid_t pid;      /* EXIT: the process; FORK: the child */
	pid_t ppid;     /* FORK: the parent */
	pid_t root_pid; /* the job's main pid */
	int status;     /* EXIT: wait status, (code << 8) | signal | 0x80 core */
	char comm[CTLD_COMM_LEN];
};

/* An address a client named ("127.0.0.1", "::1"); unset means any. */
struct addr_filter {
	bool set;
	uint16_t family;
	uint8_t addr[16];
};

/* "" (any), an IPv4 or an IPv6 address. 0 or -EINVAL. */
int addr_filter_parse(const char *text, struct addr_filter *f);
/* Would a connection to the filter's address reach this listener? Yes when
 * it listens on that very address or on a wildcard (0.0.0.0, ::). */
bool addr_filter_matches(const struct addr_filter *f, const struct tcp_listener *l);
/* "0.0.0.0", "::1", ... ("?" if it cannot be printed). */
void tcp_addr_format(uint16_t family, const uint8_t *addr, char *out, size_t len);

struct sockaddr_storage;
/* The address (IPv4 in the first 4 bytes, the rest zero) and the port in
 * network byte order of an AF_INET or AF_INET6 sockaddr. */
void tcp_endpoint_of(const struct sockaddr_storage *sa, uint8_t addr[16], uint16_t *port_be);

#endif
