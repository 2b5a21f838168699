// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_spawn.c - the clone(CLONE_VFORK) spawner, run for real: the PATH
 * search list, exec success and each failure step with its errno, stdio
 * redirection, rlimits and umask, joining a cgroup, a fresh session, and a
 * clean signal state in the child whatever the daemon blocked or ignored.
 *
 * Children are real processes; every test reaps what it started.
 */
// TEST_SRCS: user/spawner/spawn.c
// TEST_WRAPS:
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "spawner/spawn.h"

static char *empty_env[] = { NULL };
static char *sh_env[] = { "PATH=/usr/bin:/bin", "FOO=bar baz", NULL };

/* A request that runs argv[0] as the only candidate, with inherited stdio. */
static void request_init(struct spawn_request *req, char *const *argv)
{
	memset(req, 0, sizeof(*req));
	req->argv = argv;
	req->envp = empty_env;
	req->candidates[0] = argv[0];
	req->ncandidates = 1;
	for (int i = 0; i < 3; i++)
		req->stdio[i] = -1;
}

/* Waits for pid and returns its exit code (or 128 + signal). */
static int reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	assert_true(WIFSIGNALED(status));
	return 128 + WTERMSIG(status);
}

/* Reads everything from fd until EOF into buf (NUL-terminated). */
static void read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while ((n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	assert_true(n == 0);
	buf[len] = '\0';
}

/* Runs `sh -c script` with stdout on a pipe and returns what it printed in out[cap]. */
static int run_sh(struct spawn_request *req, char *script, char *out, size_t cap)
{
	static char *argv[] = { "/bin/sh", "-c", NULL, NULL };
	struct spawn_result res;
	int p[2];

	argv[2] = script;
	req->argv = argv;
	req->candidates[0] = argv[0];
	req->ncandidates = 1;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	req->stdio[1] = p[1];
	assert_int_equal(spawn_process(req, &res), 0);
	close(p[1]);
	assert_int_equal(res.err, 0);
	read_all(p[0], out, cap);
	close(p[0]);
	close(res.pidfd);
	return reap(res.pid);
}

/* ---- spawn_find_program */

/* Each PATH entry gives dir/name in order; an empty entry means the current directory. */
static void spawn_find_program_path_order(void **state)
{
	struct spawn_request req;
	char *storage = NULL;

	(void)state;
	memset(&req, 0, sizeof(req));
	assert_int_equal(spawn_find_program(&req, "x", "/a:/b::/c", &storage), 0);
	assert_non_null(storage);
	assert_int_equal(req.ncandidates, 4);
	assert_string_equal(req.candidates[0], "/a/x");
	assert_string_equal(req.candidates[1], "/b/x");
	assert_string_equal(req.candidates[2], "./x");
	assert_string_equal(req.candidates[3], "/c/x");
	free(storage);
}

/* Leading and trailing colons are empty entries too (the current directory). */
static void spawn_find_program_edge_colons(void **state)
{
	struct spawn_request req;
	char *storage = NULL;

	(void)state;
	memset(&req, 0, sizeof(req));
	assert_int_equal(spawn_find_program(&req, "prog", ":/usr/bin:", &storage), 0);
	assert_int_equal(req.ncandidates, 3);
	assert_string_equal(req.candidates[0], "./prog");
	assert_string_equal(req.candidates[1], "/usr/bin/prog");
	assert_string_equal(req.candidates[2], "./prog");
	free(storage);
	assert_int_equal(spawn_find_program(&req, "prog", "", &storage), 0);
	assert_int_equal(req.ncandidates, 1);
	assert_string_equal(req.candidates[0], "./prog");
	free(storage);
}

/* A name containing '/' is used as is, with no PATH search and nothing allocated. */
static void spawn_find_program_slash(void **state)
{
	struct spawn_request req;
	char *storage = (char *)1;
	const char *name = "./bin/tool";

	(void)state;
	memset(&req, 0, sizeof(req));
	assert_int_equal(spawn_find_program(&req, name, "/a:/b", &storage), 0);
	assert_null(storage);
	assert_int_equal(req.ncandidates, 1);
	assert_ptr_equal(req.candidates[0], name);
	assert_int_equal(spawn_find_program(&req, "/bin/true", NULL, &storage), 0);
	assert_int_equal(req.ncandidates, 1);
	assert_string_equal(req.candidates[0], "/bin/true");
}

/* PATH NULL means the built-in default, which starts in /usr/local/sbin and ends in /bin. */
static void spawn_find_program_default_path(void **state)
{
	struct spawn_request req;
	char *storage = NULL;

	(void)state;
	memset(&req, 0, sizeof(req));
	assert_int_equal(spawn_find_program(&req, "ls", NULL, &storage), 0);
	assert_int_equal(req.ncandidates, 6);
	assert_string_equal(req.candidates[0], "/usr/local/sbin/ls");
	assert_string_equal(req.candidates[5], "/bin/ls");
	free(storage);
}

/* A PATH with more entries than SPAWN_MAX_CANDIDATES is cut there, never overflowed. */
static void spawn_find_program_many_entries(void **state)
{
	static char path[200 * 4];
	struct spawn_request req;
	char *storage = NULL;
	size_t len = 0;

	(void)state;
	for (int i = 0; i < 100; i++)
		len += (size_t)snprintf(path + len, sizeof(path) - len, "%s/%02d", i ? ":" : "", i);
	memset(&req, 0, sizeof(req));
	assert_int_equal(spawn_find_program(&req, "x", path, &storage), 0);
	assert_int_equal(req.ncandidates, SPAWN_MAX_CANDIDATES);
	assert_string_equal(req.candidates[0], "/00/x");
	assert_string_equal(req.candidates[SPAWN_MAX_CANDIDATES - 1], "/63/x");
	free(storage);
}

/* ---- spawn_process */

/* /bin/true runs: a pid, a CLOEXEC pidfd, no error, exit status 0. */
static void spawn_process_true(void **state)
{
	static char *argv[] = { "/bin/true", NULL };
	struct spawn_request req;
	struct spawn_result res;

	(void)state;
	request_init(&req, argv);
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_true(res.pid > 0);
	assert_true(res.pidfd >= 0);
	assert_int_equal(res.err, 0);
	assert_null(res.step);
	assert_true(fcntl(res.pidfd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(reap(res.pid), 0);
	close(res.pidfd);
}

/* A program that does not exist: the child was created, err ENOENT at step "execve". */
static void spawn_process_missing_program(void **state)
{
	static char *argv[] = { "/nonexistent/ctld-test-prog", NULL };
	struct spawn_request req;
	struct spawn_result res;

	(void)state;
	request_init(&req, argv);
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_true(res.pid > 0);
	assert_int_equal(res.err, ENOENT);
	assert_string_equal(res.step, "execve");
	assert_string_equal(res.what, argv[0]);
	assert_int_equal(reap(res.pid), 127);
	close(res.pidfd);
}

static char noexec_path[64];

static int noexec_setup(void **state)
{
	int fd;

	(void)state;
	strcpy(noexec_path, "/tmp/ctld-test-noexec-XXXXXX");
	fd = mkstemp(noexec_path);
	if (fd < 0)
		return -1;
	if (write(fd, "#!/bin/sh\nexit 0\n", 17) != 17 || fchmod(fd, 0644) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int noexec_teardown(void **state)
{
	(void)state;
	unlink(noexec_path);
	return 0;
}

/* A file without execute permission is EACCES (even for root). */
static void spawn_process_not_executable(void **state)
{
	char *argv[] = { noexec_path, NULL };
	struct spawn_request req;
	struct spawn_result res;

	(void)state;
	request_init(&req, argv);
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(res.err, EACCES);
	assert_string_equal(res.step, "execve");
	reap(res.pid);
	close(res.pidfd);
}

/* The PATH search goes on past EACCES and ENOENT; EACCES is reported if nothing runs. */
static void spawn_process_candidates(void **state)
{
	char *argv[] = { "prog", NULL };
	struct spawn_request req;
	struct spawn_result res;

	(void)state;
	request_init(&req, argv);
	req.candidates[0] = "/nonexistent/prog";
	req.candidates[1] = noexec_path;
	req.candidates[2] = "/bin/true";
	req.ncandidates = 3;
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(res.err, 0);
	assert_int_equal(reap(res.pid), 0);
	close(res.pidfd);

	req.candidates[0] = noexec_path;
	req.candidates[1] = "/nonexistent/prog";
	req.ncandidates = 2;
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(res.err, EACCES);
	assert_string_equal(res.what, "prog");
	reap(res.pid);
	close(res.pidfd);
}

/* A working directory that does not exist fails at step "chdir", naming the directory. */
static void spawn_process_bad_cwd(void **state)
{
	static char *argv[] = { "/bin/true", NULL };
	struct spawn_request req;
	struct spawn_result res;

	(void)state;
	request_init(&req, argv);
	req.cwd = "/nonexistent/ctld-test-dir";
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(res.err, ENOENT);
	assert_string_equal(res.step, "chdir");
	assert_string_equal(res.what, "/nonexistent/ctld-test-dir");
	assert_int_equal(reap(res.pid), 127);
	close(res.pidfd);
}

/* stdio[0..2] become the child's stdin, stdout and stderr; argv, env and cwd arrive as given. */
static void spawn_process_stdio_pipes(void **state)
{
	static char *argv[] = { "/bin/sh", "-c",
				"read line; echo \"$line/$FOO\"; pwd; echo err >&2", NULL };
	struct spawn_request req;
	struct spawn_result res;
	int in[2], out[2], err[2];
	char buf[256];

	(void)state;
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	assert_int_equal(write(in[1], "input\n", 6), 6);
	close(in[1]);
	request_init(&req, argv);
	req.envp = sh_env;
	req.cwd = "/tmp";
	req.stdio[0] = in[0];
	req.stdio[1] = out[1];
	req.stdio[2] = err[1];
	assert_int_equal(spawn_process(&req, &res), 0);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	assert_int_equal(res.err, 0);
	read_all(out[0], buf, sizeof(buf));
	assert_string_equal(buf, "input/bar baz\n/tmp\n");
	read_all(err[0], buf, sizeof(buf));
	assert_string_equal(buf, "err\n");
	assert_int_equal(reap(res.pid), 0);
	close(out[0]);
	close(err[0]);
	close(res.pidfd);
}

/* An stdio fd that already has its target number (and CLOEXEC) still reaches the program. */
static void spawn_process_stdio_same_number(void **state)
{
	static char *argv[] = { "/bin/sh", "-c", "echo same", NULL };
	struct spawn_request req;
	struct spawn_result res;
	int p[2], saved, ret;
	char buf[64];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	request_init(&req, argv);
	req.envp = sh_env;
	req.stdio[1] = 1;
	fflush(stdout);
	saved = dup(1);
	assert_true(saved >= 0);
	assert_int_equal(dup3(p[1], 1, O_CLOEXEC), 1); /* our fd 1 is now the pipe, CLOEXEC */
	ret = spawn_process(&req, &res);
	dup2(saved, 1);
	close(saved);
	close(p[1]);
	assert_int_equal(ret, 0);
	assert_int_equal(res.err, 0);
	read_all(p[0], buf, sizeof(buf));
	assert_string_equal(buf, "same\n");
	assert_int_equal(reap(res.pid), 0);
	close(p[0]);
	close(res.pidfd);
}

/* stdout_path is opened in the child for append; a bad path fails at "open output file". */
static void spawn_process_stdio_path(void **state)
{
	static char *argv[] = { "/bin/sh", "-c", "echo one; echo two", NULL };
	char path[] = "/tmp/ctld-test-out-XXXXXX";
	struct spawn_request req;
	struct spawn_result res;
	char buf[64];
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "zero\n", 5), 5);
	request_init(&req, argv);
	req.envp = sh_env;
	req.stdio_path[1] = path;
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(res.err, 0);
	assert_int_equal(reap(res.pid), 0);
	close(res.pidfd);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	read_all(fd, buf, sizeof(buf));
	assert_string_equal(buf, "zero\none\ntwo\n");
	close(fd);
	unlink(path);

	req.stdio_path[1] = "/nonexistent/dir/out";
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(res.err, ENOENT);
	assert_string_equal(res.step, "open output file");
	assert_string_equal(res.what, "/nonexistent/dir/out");
	reap(res.pid);
	close(res.pidfd);
}

/* An rlimit in the request is in force in the program. */
static void spawn_process_rlimit(void **state)
{
	struct spawn_rlimit rl = { .resource = RLIMIT_NOFILE };
	struct spawn_request req;
	char out[64];

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl.limit), 0);
	rl.limit.rlim_cur = 77;
	request_init(&req, (char *[]){ "/bin/sh", NULL });
	req.envp = sh_env;
	req.rlimits = &rl;
	req.nrlimits = 1;
	assert_int_equal(run_sh(&req, "ulimit -n", out, sizeof(out)), 0);
	assert_string_equal(out, "77\n");
}

/* The child's first step is writing "0" to the cgroup.procs descriptor it
 * was given (a pipe stands in for it here); a descriptor it cannot write
 * fails at step "join cgroup" and nothing is executed. */
static void spawn_process_joins_cgroup(void **state)
{
	static char *argv[] = { "/bin/true", NULL };
	struct spawn_request req;
	struct spawn_result res;
	char got[8] = { 0 };
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	request_init(&req, argv);
	req.join_cgroup = true;
	req.cgroup_fd = p[1];
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(res.err, 0);
	assert_int_equal(reap(res.pid), 0);
	close(res.pidfd);
	close(p[1]);
	assert_int_equal(read(p[0], got, sizeof(got)), 1);
	assert_string_equal(got, "0");

	req.cgroup_fd = p[0]; /* a read end: the write fails */
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(res.err, EBADF);
	assert_string_equal(res.step, "join cgroup");
	assert_int_equal(reap(res.pid), 127);
	close(res.pidfd);
	close(p[0]);
}

/* umask is applied only when asked (0 is a valid umask). */
static void spawn_process_umask(void **state)
{
	struct spawn_request req;
	char out[64];
	mode_t old = umask(022);

	(void)state;
	request_init(&req, (char *[]){ "/bin/sh", NULL });
	req.envp = sh_env;
	req.set_umask = true;
	req.umask = 0;
	assert_int_equal(run_sh(&req, "umask", out, sizeof(out)), 0);
	assert_string_equal(out, "0000\n");
	req.set_umask = true;
	req.umask = 027;
	assert_int_equal(run_sh(&req, "umask", out, sizeof(out)), 0);
	assert_string_equal(out, "0027\n");
	req.set_umask = false;
	assert_int_equal(run_sh(&req, "umask", out, sizeof(out)), 0);
	assert_string_equal(out, "0022\n");
	umask(old);
}

/* The program leads its own session (and process group), detached from ours. */
static void spawn_process_new_session(void **state)
{
	static char *argv[] = { "/bin/sleep", "5", NULL };
	struct spawn_request req;
	struct spawn_result res;

	(void)state;
	request_init(&req, argv);
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(res.err, 0);
	assert_int_equal(getsid(res.pid), res.pid);
	assert_int_equal(getpgid(res.pid), res.pid);
	assert_int_not_equal(getsid(0), res.pid);
	assert_int_equal(kill(res.pid, SIGKILL), 0);
	assert_int_equal(reap(res.pid), 128 + SIGKILL);
	close(res.pidfd);
}

/* Reads "Name:\t<hex>" from /proc/<pid>/status. */
static unsigned long long proc_status_hex(pid_t pid, const char *name)
{
	char path[64], line[256];
	unsigned long long v = ~0ULL;
	size_t nlen = strlen(name);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, name, nlen) == 0 && line[nlen] == ':')
			v = strtoull(line + nlen + 1, NULL, 16);
	fclose(f);
	return v;
}

/* glibc keeps signals 32 and 33 for itself (SIGCANCEL, SIGSETXID): its sigaction() refuses
 * them, so the test sets and reads them with the raw system call. */
#define GLIBC_INTERNAL_SIGS ((1ULL << (32 - 1)) | (1ULL << (33 - 1)))

struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

static void raw_sigaction(int sig, void (*handler)(int), struct kernel_sigaction *old)
{
	struct kernel_sigaction ka = { .handler = handler };

	assert_int_equal(syscall(SYS_rt_sigaction, sig, &ka, old, sizeof(ka.mask)), 0);
}

static void raw_sigrestore(int sig, const struct kernel_sigaction *old)
{
	assert_int_equal(syscall(SYS_rt_sigaction, sig, old, NULL, sizeof(old->mask)), 0);
}

/* Signals the daemon blocks or ignores (SIGPIPE!) are neither blocked nor ignored in jobs. */
static void spawn_process_signal_state_reset(void **state)
{
	static char *argv[] = { "/bin/sleep", "5", NULL };
	struct sigaction ign = { .sa_handler = SIG_IGN }, old_pipe, old_usr2, old_rt;
	struct spawn_request req;
	struct spawn_result res;
	sigset_t block, old_mask;

	(void)state;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGRTMIN);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);
	assert_int_equal(sigaction(SIGPIPE, &ign, &old_pipe), 0);
	assert_int_equal(sigaction(SIGUSR2, &ign, &old_usr2), 0);
	assert_int_equal(sigaction(SIGRTMAX, &ign, &old_rt), 0);
	/* the test really does start from a dirty state */
	assert_int_not_equal(proc_status_hex(getpid(), "SigBlk") & (1ULL << (SIGTERM - 1)), 0);
	assert_int_not_equal(proc_status_hex(getpid(), "SigIgn") & (1ULL << (SIGPIPE - 1)), 0);

	request_init(&req, argv);
	assert_int_equal(spawn_process(&req, &res), 0);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigaction(SIGUSR2, &old_usr2, NULL);
	sigaction(SIGRTMAX, &old_rt, NULL);
	assert_int_equal(res.err, 0);
	assert_int_equal(proc_status_hex(res.pid, "SigBlk"), 0);
	/* 32 and 33 are checked by spawn_process_internal_signals_reset: whether they start
	 * ignored depends on who launched the test (GNU make ignores them). */
	assert_int_equal(proc_status_hex(res.pid, "SigIgn") & ~GLIBC_INTERNAL_SIGS, 0);
	assert_int_equal(kill(res.pid, SIGKILL), 0);
	assert_int_equal(reap(res.pid), 128 + SIGKILL);
	close(res.pidfd);
}

/* Signals 32 and 33 ignored in the daemon (inherited, e.g. from GNU make) must not stay
 * ignored in jobs either: ignored dispositions survive execve. */
static void spawn_process_internal_signals_reset(void **state)
{
	static char *argv[] = { "/bin/sleep", "5", NULL };
	struct kernel_sigaction old32, old33;
	struct spawn_request req;
	struct spawn_result res;
	unsigned long long ign;

	(void)state;
	raw_sigaction(32, SIG_IGN, &old32);
	raw_sigaction(33, SIG_IGN, &old33);
	request_init(&req, argv);
	assert_int_equal(spawn_process(&req, &res), 0);
	raw_sigrestore(32, &old32);
	raw_sigrestore(33, &old33);
	assert_int_equal(res.err, 0);
	ign = proc_status_hex(res.pid, "SigIgn");
	assert_int_equal(kill(res.pid, SIGKILL), 0);
	assert_int_equal(reap(res.pid), 128 + SIGKILL);
	close(res.pidfd);
	assert_int_equal(ign, 0);
}

/* The parent's own signal mask is the same after spawn_process as before. */
static void spawn_process_keeps_parent_mask(void **state)
{
	static char *argv[] = { "/bin/true", NULL };
	struct spawn_request req;
	struct spawn_result res;
	sigset_t before, after;

	(void)state;
	sigemptyset(&before);
	sigaddset(&before, SIGUSR1);
	assert_int_equal(sigprocmask(SIG_SETMASK, &before, NULL), 0);
	request_init(&req, argv);
	assert_int_equal(spawn_process(&req, &res), 0);
	assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &after), 0);
	sigemptyset(&before);
	sigprocmask(SIG_SETMASK, &before, NULL);
	assert_true(sigismember(&after, SIGUSR1));
	assert_false(sigismember(&after, SIGTERM));
	assert_int_equal(reap(res.pid), 0);
	close(res.pidfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spawn_find_program_path_order),
		cmocka_unit_test(spawn_find_program_edge_colons),
		cmocka_unit_test(spawn_find_program_slash),
		cmocka_unit_test(spawn_find_program_default_path),
		cmocka_unit_test(spawn_find_program_many_entries),
		cmocka_unit_test(spawn_process_true),
		cmocka_unit_test(spawn_process_missing_program),
		cmocka_unit_test_setup_teardown(spawn_process_not_executable, noexec_setup,
						noexec_teardown),
		cmocka_unit_test_setup_teardown(spawn_process_candidates, noexec_setup,
						noexec_teardown),
		cmocka_unit_test(spawn_process_bad_cwd),
		cmocka_unit_test(spawn_process_stdio_pipes),
		cmocka_unit_test(spawn_process_stdio_same_number),
		cmocka_unit_test(spawn_process_stdio_path),
		cmocka_unit_test(spawn_process_rlimit),
		cmocka_unit_test(spawn_process_joins_cgroup),
		cmocka_unit_test(spawn_process_umask),
		cmocka_unit_test(spawn_process_new_session),
		cmocka_unit_test(spawn_process_signal_state_reset),
		cmocka_unit_test(spawn_process_internal_signals_reset),
		cmocka_unit_test(spawn_process_keeps_parent_mask),
	};

	alarm(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
