# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of jobs (user/daemon/jobs/): exit status and signals, exec
failures with their errno, signalling a job's tree, List, resource usage,
environment, timeouts, output files, stdin, attach/detach, many clients at
once, output ordering, zombies and pid reuse.

Everything here must hold with and without eBPF (CTLD_TEST_MODE).
"""
import errno
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (alive, children, job_children, proc_stat, scaled, wait_for, zombies_of,
                     Daemon, DaemonTestCase, CtldError, pb)

RLIM_INFINITY = (1 << 64) - 1


# ---------------------------------------------------------------- /proc helpers

def collect(c, job, timeout=20):
    """All events of one job up to its terminal event: (stdout, stderr, kinds, terminal)."""
    out = {pb.STDOUT: b"", pb.STDERR: b""}
    kinds = []
    term = None
    for ev in c.events(job, timeout):
        kind = ev.WhichOneof("kind")
        kinds.append(kind)
        if kind == "output":
            offset = ev.output.offset
            assert offset == len(out[ev.output.stream]), \
                "offset %d after %d bytes" % (offset, len(out[ev.output.stream]))
            out[ev.output.stream] += ev.output.data
        term = ev
    return out[pb.STDOUT], out[pb.STDERR], kinds, term


class JobsTest(DaemonTestCase):

    @classmethod
    def tearDownClass(cls):
        # No zombie children may be left behind by anything the tests did.
        left = []
        if cls.d.alive():
            deadline = time.monotonic() + 3
            while True:
                left = zombies_of(cls.d.pid)
                if not left or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        super().tearDownClass()
        if left:
            raise AssertionError("zombie children of the daemon: %s" % left)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ctld-jobs-")
        self.c = self.d.client()

    def tearDown(self):
        self.c.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def run_job(self, argv, **kw):
        return self.c.run_and_wait(argv, timeout=20, **kw)

    def launched(self, job):
        ev = self.c.next_event(timeout=10)
        self.assertEqual(ev.WhichOneof("kind"), "launched", ev)
        self.assertEqual(ev.launched.job, job)
        return ev.launched.pid

    def info(self, job, c=None):
        jobs = [j for j in (c or self.c).list() if j.job == job]
        self.assertEqual(len(jobs), 1, "job %d not in List" % job)
        return jobs[0]

    def wait_children(self, pid, n):
        return wait_for(lambda: len(children(pid)) >= n and children(pid), 5,
                        "%d children of %d" % (n, pid))

    # ------------------------------------------------------------ exit status
    def test_exit_codes_propagate(self):
        for code in (0, 1, 3, 255):
            out, err, ev = self.run_job(["sh", "-c", "echo code %d; exit %d" % (code, code)])
            self.assertEqual(ev.WhichOneof("kind"), "exited")
            self.assertEqual(out, b"code %d\n" % code)
            self.assertEqual(ev.exited.exit_code, code)
            self.assertEqual(ev.exited.signal, 0)
            self.assertFalse(ev.exited.core_dumped)
            self.assertFalse(ev.exited.timed_out)

    def test_signal_deaths_are_reported(self):
        for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGUSR1):
            _, _, ev = self.run_job(["sh", "-c", "kill -%d $$" % sig])
            self.assertEqual(ev.exited.signal, sig)
            self.assertEqual(ev.exited.exit_code, 0)
            self.assertFalse(ev.exited.core_dumped)

    def test_sigsegv_and_core_dumps(self):
        # Whether a core is written is the kernel's call (core_pattern, the
        # core rlimit); ask it directly, then compare with what the daemon says.
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
        cmd = ["sh", "-c", "kill -SEGV $$"]

        def kernel_says(limit, cwd):
            def pre():
                resource.setrlimit(resource.RLIMIT_CORE, limit)
            p = subprocess.Popen(cmd, cwd=cwd, preexec_fn=pre)
            _, status = os.waitpid(p.pid, 0)
            p.returncode = 0
            self.assertTrue(os.WIFSIGNALED(status))
            self.assertEqual(os.WTERMSIG(status), signal.SIGSEGV)
            return os.WCOREDUMP(status)

        for soft in (0, RLIM_INFINITY):
            py_limit = resource.RLIM_INFINITY if soft == RLIM_INFINITY else soft
            ref_dir = tempfile.mkdtemp(dir=self.tmp)
            expected = kernel_says((py_limit, py_limit), ref_dir)
            job_dir = tempfile.mkdtemp(dir=self.tmp)
            _, _, ev = self.run_job(cmd, cwd=job_dir,
                                    rlimits=[pb.Rlimit(resource="core", soft=soft, hard=soft)])
            self.assertEqual(ev.exited.signal, signal.SIGSEGV)
            self.assertEqual(ev.exited.exit_code, 0)
            self.assertEqual(ev.exited.core_dumped, expected,
                             "core limit %d, core_pattern %r" % (soft, pattern))
            if not pattern.startswith(("|", "@")) and "/" not in pattern:
                # a plain file name: written to the cwd, limited by RLIMIT_CORE
                self.assertEqual(expected, soft != 0)
                self.assertEqual(bool(os.listdir(job_dir)), soft != 0, os.listdir(job_dir))

    # ------------------------------------------------------------ exec failures
    def exec_failed(self, argv, **kw):
        job = self.c.run(argv, **kw)
        evs = list(self.c.events(job, timeout=10))
        self.assertEqual([e.WhichOneof("kind") for e in evs], ["exec_failed"], evs)
        ef = evs[0].exec_failed
        self.assertEqual(ef.job, job)
        info = self.info(job)
        self.assertEqual(info.state, pb.JOB_EXEC_FAILED)
        return ef

    def test_exec_failure_errnos(self):
        ef = self.exec_failed(["/nonexistent/ctld-test-prog"])
        self.assertEqual(ef.sys_errno, errno.ENOENT)
        self.assertIn("execve /nonexistent/ctld-test-prog", ef.text)
        self.assertIn(os.strerror(errno.ENOENT), ef.text)

        ef = self.exec_failed(["ctld-test-no-such-program"])
        self.assertEqual(ef.sys_errno, errno.ENOENT)
        self.assertIn("ctld-test-no-such-program", ef.text)

        noexec = os.path.join(self.tmp, "noexec")
        with open(noexec, "w") as f:
            f.write("#!/bin/sh\necho should not run\n")
        os.chmod(noexec, 0o644)
        ef = self.exec_failed([noexec])
        self.assertEqual(ef.sys_errno, errno.EACCES)

        garbage = os.path.join(self.tmp, "garbage")
        with open(garbage, "wb") as f:
            f.write(b"\x01\x02\x03 this is not a program\n" * 8)
        os.chmod(garbage, 0o755)
        ef = self.exec_failed([garbage])
        self.assertEqual(ef.sys_errno, errno.ENOEXEC)

        ef = self.exec_failed(["true"], cwd="/nonexistent-ctld-dir")
        self.assertEqual(ef.sys_errno, errno.ENOENT)
        self.assertIn("chdir", ef.text)
        self.assertIn("/nonexistent-ctld-dir", ef.text)

        ef = self.exec_failed(["true"], stdout_path="/nonexistent-ctld-dir/out")
        self.assertEqual(ef.sys_errno, errno.ENOENT)

    def test_path_search(self):
        # PATH is the job's (Run.env): a non-executable match is skipped like
        # execvp does, and reported as EACCES only when nothing else matches.
        bindir = os.path.join(self.tmp, "bin")
        os.mkdir(bindir)
        with open(os.path.join(bindir, "true"), "w") as f:
            f.write("#!/bin/sh\nexit 9\n")
        os.chmod(os.path.join(bindir, "true"), 0o644)
        _, _, ev = self.run_job(["true"], env=["PATH=%s:/usr/bin:/bin" % bindir])
        self.assertEqual(ev.WhichOneof("kind"), "exited")
        self.assertEqual(ev.exited.exit_code, 0)
        ef = self.exec_failed(["true"], env=["PATH=%s" % bindir])
        self.assertEqual(ef.sys_errno, errno.EACCES)
        os.chmod(os.path.join(bindir, "true"), 0o755)
        _, _, ev = self.run_job(["true"], env=["PATH=%s:/usr/bin:/bin" % bindir])
        self.assertEqual(ev.exited.exit_code, 9)

    # ------------------------------------------------------------ signals
    def test_signal_defaults_to_sigterm(self):
        job = self.c.run(["sleep", "100"])
        pid = self.launched(job)
        self.assertTrue(proc_stat(pid))
        self.c.signal(job, 0)
        _, _, kinds, ev = collect(self.c, job)
        self.assertEqual(ev.exited.signal, signal.SIGTERM)
        self.assertEqual(ev.exited.pid, pid)
        self.assertEqual(self.info(job).signal, signal.SIGTERM)

    def test_signal_number_is_delivered(self):
        job = self.c.run(["sleep", "100"])
        self.launched(job)
        self.c.signal(job, signal.SIGKILL)
        self.assertEqual(collect(self.c, job)[3].exited.signal, signal.SIGKILL)
        job = self.c.run(["sleep", "100"])
        self.launched(job)
        with self.assertRaises(CtldError) as cm:
            self.c.signal(job, 99)
        self.assertEqual(cm.exception.code, pb.BAD_REQUEST)
        self.c.signal(job, signal.SIGUSR2)
        self.assertEqual(collect(self.c, job)[3].exited.signal, signal.SIGUSR2)

    def tree_job(self, script):
        job = self.c.run(["sh", "-c", script])
        pid = self.launched(job)
        kids = self.wait_children(pid, 2)
        self.assertEqual(len(kids), 2, kids)
        return job, pid, [(k, proc_stat(k)[2]) for k in kids]

    def test_tree_kill_reaches_grandchildren(self):
        job, pid, kids = self.tree_job("sleep 100 & sleep 100; wait")
        self.c.signal(job)
        ev = collect(self.c, job)[3]
        self.assertEqual(ev.exited.signal, signal.SIGTERM)
        for k, start in kids:
            wait_for(lambda: not alive(k, start), 5, "grandchild %d to die" % k)

    def test_tree_kill_reaches_grandchild_in_its_own_session(self):
        # setsid takes the grandchild out of the job's process group: killing
        # the group is not enough, the daemon must find it.
        job, pid, kids = self.tree_job("setsid sleep 100 & sleep 100; wait")
        def sid(k):
            with open("/proc/%d/stat" % k) as f:
                return int(f.read().rsplit(")", 1)[1].split()[3])
        # one sleep stays in the job's session, the other has its own
        wait_for(lambda: sorted(sid(k) == pid for k, _ in kids) == [False, True], 5,
                 "setsid to run")
        self.c.signal(job, signal.SIGKILL)
        self.assertEqual(collect(self.c, job)[3].exited.signal, signal.SIGKILL)
        for k, start in kids:
            wait_for(lambda: not alive(k, start), 5, "grandchild %d to die" % k)

    def test_signal_main_only(self):
        job, pid, kids = self.tree_job("sleep 100 & sleep 100; wait")
        try:
            self.c.signal(job, signal.SIGTERM, main_only=True)
            ev = collect(self.c, job)[3]
            self.assertEqual(ev.exited.signal, signal.SIGTERM)
            time.sleep(0.2)
            for k, start in kids:
                self.assertTrue(alive(k, start), "grandchild %d was signalled" % k)
        finally:
            for k, start in kids:
                if alive(k, start):
                    os.kill(k, signal.SIGKILL)
        for k, start in kids:
            wait_for(lambda: not alive(k, start), 5, "grandchild %d to die" % k)

    def test_signal_after_exit_is_not_found(self):
        _, _, ev = self.run_job(["true"])
        job = ev.exited.job
        for main_only in (False, True):
            with self.assertRaises(CtldError) as cm:
                self.c.signal(job, signal.SIGKILL, main_only=main_only)
            self.assertEqual(cm.exception.code, pb.NOT_FOUND)
            self.assertEqual(cm.exception.sys_errno, errno.ESRCH)
        with self.assertRaises(CtldError) as cm:
            self.c.signal(10 ** 12)
        self.assertEqual(cm.exception.code, pb.NOT_FOUND)

    def test_pid_reuse_cannot_redirect_a_signal(self):
        _, _, ev = self.run_job(["true"])
        job, pid = ev.exited.job, ev.exited.pid
        # the job is reaped; wait until its pid is free, then give that pid to
        # an unrelated process of ours (by steering the kernel's pid counter)
        wait_for(lambda: proc_stat(pid) is None, 5, "pid %d to be free" % pid)
        victim = None
        try:
            for _ in range(50):
                try:
                    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                        f.write(str(pid - 1))
                except OSError as e:
                    self.skipTest("cannot steer pid allocation here: %s" % e)
                p = subprocess.Popen(["sleep", "100"])
                if p.pid == pid:
                    victim = p
                    break
                p.kill()
                p.wait()
            if victim is None:
                self.skipTest("pid %d was taken by someone else 50 times" % pid)
            for main_only in (False, True):
                with self.assertRaises(CtldError) as cm:
                    self.c.signal(job, signal.SIGKILL, main_only=main_only)
                self.assertEqual(cm.exception.code, pb.NOT_FOUND)
            time.sleep(0.1)
            self.assertIsNone(victim.poll(), "the signal hit the process that reused the pid")
        finally:
            if victim:
                victim.kill()
                victim.wait()

    # ------------------------------------------------------------ List
    def test_list_shows_jobs(self):
        t0 = time.time_ns()
        _, _, ev = self.run_job(["sh", "-c", "exit 7"], name="lister")
        done = ev.exited.job
        _, _, ev = self.run_job(["/bin/true"])
        unnamed = ev.exited.job
        running = self.c.run(["sleep", "100"], name="sleeper")
        pid = self.launched(running)
        t1 = time.time_ns()
        try:
            jobs = {j.job: j for j in self.c.list()}
            a, b, r = jobs[done], jobs[unnamed], jobs[running]
            self.assertEqual((a.name, a.state, a.command, a.exit_code, a.signal),
                             ("lister", pb.JOB_EXITED, "sh -c exit 7", 7, 0))
            self.assertEqual((b.name, b.command, b.exit_code), ("true", "/bin/true", 0))
            self.assertEqual((r.name, r.state, r.pid, r.command, r.exit_code, r.clients),
                             ("sleeper", pb.JOB_RUNNING, pid, "sleep 100", 0, 1))
            for j in (a, b, r):
                self.assertGreaterEqual(j.start_time_ns, t0)
                self.assertLessEqual(j.start_time_ns, t1)
            self.assertLess(a.start_time_ns, b.start_time_ns)
            self.assertLess(b.start_time_ns, r.start_time_ns)
            self.assertLess(done, unnamed)
            self.assertLess(unnamed, running)
            live = [j.job for j in self.c.list(running_only=True)]
            self.assertIn(running, live)
            self.assertNotIn(done, live)
            page = self.c.request(list=pb.List(after_job=unnamed)).list
            self.assertEqual(page.jobs[0].job, running)
        finally:
            self.c.signal(running, signal.SIGKILL)
        collect(self.c, running)
        r = self.info(running)
        self.assertEqual((r.state, r.signal), (pb.JOB_EXITED, signal.SIGKILL))

    def test_list_pages_of_64(self):
        with self.d.client() as c:
            first = None
            for i in range(70):
                job = c.run(["true"], detach=True, name="page-%d" % i)
                first = first or job
            wait_for(lambda: not [j for j in c.list(running_only=True) if j.job >= first],
                     10, "70 jobs to finish")
            page = c.request(list=pb.List(after_job=first - 1)).list
            self.assertEqual(len(page.jobs), 64)
            self.assertTrue(page.more)
            self.assertEqual([j.name for j in page.jobs], ["page-%d" % i for i in range(64)])
            names = [j.name for j in c.list() if j.job >= first]
            self.assertEqual(names[:70], ["page-%d" % i for i in range(70)])

    # ------------------------------------------------------------ resources
    def test_rusage_and_wall_time(self):
        burn = ("import time\nt = time.process_time()\n"
                "while time.process_time() - t < %g:\n" % scaled(0.25) +
                "    for _ in range(20000):\n        pass\n")
        _, _, ev = self.run_job(["/usr/bin/python3", "-c", burn])
        e = ev.exited
        self.assertEqual(e.exit_code, 0)
        self.assertGreater(e.user_us, 100000)
        self.assertGreater(e.user_us + e.sys_us, scaled(240000))
        self.assertLess(e.user_us + e.sys_us, 20 * 1000000)
        self.assertGreater(e.max_rss_kb, 1000)
        self.assertLess(e.max_rss_kb, 1 << 20)
        self.assertGreaterEqual(e.wall_ns, 250 * 1000000)
        self.assertLess(e.wall_ns, 20 * 10 ** 9)

        t0 = time.monotonic()
        _, _, ev = self.run_job(["sleep", "0.3"])
        took = time.monotonic() - t0
        e = ev.exited
        self.assertGreaterEqual(e.wall_ns, 300 * 1000000)
        self.assertLessEqual(e.wall_ns, took * 1e9)
        self.assertLess(e.user_us + e.sys_us, scaled(200000))

    # ------------------------------------------------------------ environment
    def test_env_and_cwd(self):
        out, _, ev = self.run_job(["sh", "-c", 'echo "$CTLD_T1|$HOME|$PATH"; pwd'],
                                  env=["CTLD_T1=one", "HOME=/override"], cwd=self.tmp)
        self.assertEqual(ev.exited.exit_code, 0)
        self.assertEqual(out.decode(), "one|/override|%s\n%s\n"
                         % (os.environ.get("PATH", ""), os.path.realpath(self.tmp)))
        out, _, _ = self.run_job(["pwd"])
        self.assertEqual(out, b"/\n")

    def test_clean_env(self):
        out, _, ev = self.run_job(["env"], clean_env=True, env=["A=1", "B=2", "A=3"])
        self.assertEqual(ev.exited.exit_code, 0)
        self.assertEqual(sorted(out.decode().splitlines()), ["A=3", "B=2"])
        out, _, _ = self.run_job(["env"], clean_env=True)
        self.assertEqual(out, b"")

    def test_bad_run_requests(self):
        for kw, text in ((dict(env=["NOEQUALS"]), "KEY=VALUE"),
                         (dict(cwd="relative/dir"), "absolute"),
                         (dict(stdout_path="out.txt"), "absolute"),
                         (dict(rlimits=[pb.Rlimit(resource="bogus")]), "bogus"),
                         (dict(rlimits=[pb.Rlimit(resource="nofile", soft=10, hard=5)]), "soft"),
                         (dict(umask=0o1000, has_umask=True), "umask")):
            with self.assertRaises(CtldError) as cm:
                self.c.run(["true"], **kw)
            self.assertEqual(cm.exception.code, pb.BAD_REQUEST, kw)
            self.assertIn(text, cm.exception.text)
        out, _, _ = self.run_job(["echo", "still fine"])
        self.assertEqual(out, b"still fine\n")

    def test_umask_and_user(self):
        out, _, _ = self.run_job(["sh", "-c", "umask"], umask=0o27, has_umask=True)
        self.assertEqual(out, b"0027\n")
        out, _, ev = self.run_job(["id", "-u"], user="nobody")
        self.assertEqual(out, b"65534\n")

    # ------------------------------------------------------------ timeouts
    def test_timeout_kills_the_tree(self):
        t0 = time.monotonic()
        job = self.c.run(["sh", "-c", "sleep 100 & sleep 100; wait"], timeout_ms=300)
        pid = self.launched(job)
        kids = [(k, proc_stat(k)[2]) for k in self.wait_children(pid, 2)]
        ev = collect(self.c, job)[3]
        took = time.monotonic() - t0
        self.assertTrue(ev.exited.timed_out)
        self.assertEqual(ev.exited.signal, signal.SIGKILL)
        self.assertGreaterEqual(ev.exited.wall_ns, 300 * 1000000)
        self.assertGreaterEqual(took, 0.3)
        self.assertLess(took, 5)
        for k, start in kids:
            wait_for(lambda: not alive(k, start), 5, "grandchild %d to die" % k)

    def test_job_that_ends_in_time_is_not_timed_out(self):
        _, _, ev = self.run_job(["sh", "-c", "exit 4"], timeout_ms=5000)
        self.assertFalse(ev.exited.timed_out)
        self.assertEqual(ev.exited.exit_code, 4)

    # ------------------------------------------------------------ output
    def test_stdout_path_appends(self):
        path = os.path.join(self.tmp, "out.log")
        with open(path, "w") as f:
            f.write("first\n")
        out, err, ev = self.run_job(["echo", "second"], stdout_path=path)
        self.assertEqual((out, err), (b"", b""))
        job = self.c.run(["sh", "-c", "echo third; echo to-stderr >&2"], stdout_path=path)
        out, err, kinds, _ = collect(self.c, job)
        self.assertEqual((out, err), (b"", b"to-stderr\n"))
        with open(path) as f:
            self.assertEqual(f.read(), "first\nsecond\nthird\n")
        errpath = os.path.join(self.tmp, "err.log")
        out, err, _ = self.run_job(["sh", "-c", "echo o; echo e >&2"], stderr_path=errpath)
        self.assertEqual((out, err), (b"o\n", b""))
        with open(errpath) as f:
            self.assertEqual(f.read(), "e\n")

    def test_output_streams_offsets_and_chunks(self):
        expected = subprocess.run(["seq", "1", "150000"], capture_output=True).stdout
        job = self.c.run(["sh", "-c", "seq 1 150000; echo err1 >&2; echo err2 >&2; exit 2"])
        sizes = []
        out = {pb.STDOUT: b"", pb.STDERR: b""}
        for ev in self.c.events(job, 20):
            if ev.HasField("output"):
                o = ev.output
                self.assertEqual(o.offset, len(out[o.stream]))
                self.assertGreater(len(o.data), 0)
                sizes.append(len(o.data))
                out[o.stream] += o.data
            last = ev
        self.assertEqual(out[pb.STDOUT], expected)
        self.assertEqual(out[pb.STDERR], b"err1\nerr2\n")
        self.assertLessEqual(max(sizes), 32768)
        self.assertEqual(last.exited.exit_code, 2)

    def test_no_output_after_exited(self):
        # A grandchild keeps the pipe open and writes after the main process
        # has exited: that output is not the job's any more.
        job = self.c.run(["sh", "-c", "(sleep 0.3; echo late; sleep 0.2; echo later) & "
                                      "head -c 300000 /dev/zero; echo early"])
        out, _, kinds, ev = collect(self.c, job)
        self.assertEqual(kinds[-1], "exited")
        self.assertEqual(out, b"\0" * 300000 + b"early\n")
        deadline = time.monotonic() + 0.8
        while time.monotonic() < deadline:
            try:
                ev = self.c.next_event(timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            self.fail("event after Exited: %s" % ev)

    # ------------------------------------------------------------ stdin
    def test_write_stdin(self):
        job = self.c.run(["cat"], stdin_pipe=True)
        self.launched(job)
        self.c.write_stdin(job, b"hello ")
        self.c.write_stdin(job, b"world\n", eof=True)
        out, _, _, ev = collect(self.c, job)
        self.assertEqual(out, b"hello world\n")
        self.assertEqual(ev.exited.exit_code, 0)
        with self.assertRaises(CtldError) as cm:
            self.c.write_stdin(job, b"x")
        self.assertEqual(cm.exception.code, pb.BAD_REQUEST)
        job = self.c.run(["sleep", "100"])
        self.launched(job)
        with self.assertRaises(CtldError) as cm:
            self.c.write_stdin(job, b"x")
        self.assertEqual((cm.exception.code, cm.exception.sys_errno), (pb.BAD_REQUEST, errno.EPIPE))
        self.c.signal(job, signal.SIGKILL)
        collect(self.c, job)
        with self.assertRaises(CtldError) as cm:
            self.c.write_stdin(10 ** 12, b"x")
        self.assertEqual(cm.exception.code, pb.NOT_FOUND)

    def test_write_stdin_replies_are_paced_by_the_job(self):
        # The pipe holds 64 KiB; the job reads nothing for 0.6 s.
        job = self.c.run(["sh", "-c", "sleep 0.6; exec wc -c"], stdin_pipe=True)
        self.launched(job)
        t0 = time.monotonic()
        rids = [self.c.request_nowait(write_stdin=pb.WriteStdin(job=job, data=b"x" * 32768,
                                                                eof=(i == 3)))
                for i in range(4)]
        times = []
        for rid in rids:
            self.c.wait_reply(rid, timeout=10)
            times.append(time.monotonic() - t0)
        self.assertLess(times[0], 0.4, times)
        self.assertGreater(times[3], 0.5, times)
        out, _, _, ev = collect(self.c, job)
        self.assertEqual(out.strip(), b"131072")

    def test_write_stdin_in_flight_limit_and_out_of_order_replies(self):
        # A job that never reads: two 32 KiB writes fill its pipe, the next 64
        # wait for their replies, any more are refused at once with LIMIT,
        # so their replies overtake the waiting ones.
        job = self.c.run(["sleep", "100"], stdin_pipe=True)
        self.launched(job)
        rids = [self.c.request_nowait(write_stdin=pb.WriteStdin(job=job, data=b"x" * 32768))
                for _ in range(70)]
        order, errors = [], {}
        while len(order) < 6:
            m = self.c.recv_message(timeout=10)
            self.assertTrue(m.HasField("reply"), m)
            order.append(m.reply.id)
            errors[m.reply.id] = m.reply.error
        self.assertEqual(order, rids[:2] + rids[66:])
        for rid in rids[:2]:
            self.assertEqual(errors[rid].code, pb.OK)
        for rid in rids[66:]:
            self.assertEqual(errors[rid].code, pb.LIMIT)
        with self.assertRaises(TimeoutError):
            self.c.recv_message(timeout=0.3)  # the 64 others wait for the job
        self.c.signal(job, signal.SIGKILL)
        waiting = []
        while len(waiting) < 64:
            m = self.c.recv_message(timeout=10)
            if m.HasField("reply"):
                waiting.append(m.reply)
        self.assertEqual([r.id for r in waiting], rids[2:66])
        for r in waiting:
            self.assertEqual((r.error.code, r.error.sys_errno), (pb.SYSTEM, errno.EPIPE))

    def test_max_pending_is_configurable(self):
        # --max-pending 3: two writes fill the pipe, three wait, the rest LIMIT.
        with Daemon("--max-pending", "3") as d, d.client() as c:
            job = c.run(["sleep", "100"], stdin_pipe=True)
            rids = [c.request_nowait(write_stdin=pb.WriteStdin(job=job, data=b"x" * 32768))
                    for _ in range(8)]
            codes = {}
            while len(codes) < 5:
                m = c.recv_message(timeout=10)
                if m.HasField("reply"):
                    codes[m.reply.id] = m.reply.error.code
            self.assertEqual(codes, {rids[0]: pb.OK, rids[1]: pb.OK, rids[5]: pb.LIMIT,
                                     rids[6]: pb.LIMIT, rids[7]: pb.LIMIT})
            c.signal(job, signal.SIGKILL)

    # ------------------------------------------------------------ attach, detach
    def test_detached_job_survives_its_client_and_can_be_attached(self):
        with self.d.client() as a:
            job = a.run(["sh", "-c", "echo early; sleep 0.6; echo late; exit 4"], detach=True)
            # not attached: no Launched, no Output for this client
            with self.assertRaises(TimeoutError):
                a.next_event(timeout=0.3)
        b = self.c
        info = self.info(job)
        self.assertEqual(info.state, pb.JOB_RUNNING)
        self.assertEqual(info.clients, 0)
        reply = b.attach(job)
        self.assertEqual(reply.state, pb.JOB_RUNNING)
        self.assertEqual(reply.pid, info.pid)
        out, _, kinds, ev = collect(b, job)
        self.assertEqual(out, b"early\nlate\n")  # backlog, then live output
        self.assertEqual(kinds[0], "output")
        self.assertEqual(ev.exited.exit_code, 4)

    def test_attached_client_leaving_does_not_stop_the_job(self):
        with self.d.client() as a:
            job = a.run(["sh", "-c", "sleep 0.4; exit 6"], name="left-behind")
        wait_for(lambda: self.info(job).state != pb.JOB_RUNNING, 10, "the job to finish")
        info = self.info(job)
        self.assertEqual((info.state, info.exit_code, info.signal), (pb.JOB_EXITED, 6, 0))

    def test_kill_on_disconnect(self):
        with self.d.client() as a:
            job = a.run(["sh", "-c", "sleep 100 & sleep 100; wait"], kill_on_disconnect=True)
            pid = a.next_event(timeout=10).launched.pid
            kids = [(k, proc_stat(k)[2]) for k in self.wait_children(pid, 2)]
        wait_for(lambda: self.info(job).state != pb.JOB_RUNNING, 10, "the job to be killed")
        self.assertEqual(self.info(job).signal, signal.SIGKILL)
        for k, start in kids:
            wait_for(lambda: not alive(k, start), 5, "grandchild %d to die" % k)

    def test_attach_replays_backlog_with_drop_marker(self):
        expected = subprocess.run(["seq", "1", "40000"], capture_output=True).stdout
        self.assertGreater(len(expected), 3 * 65536)
        job = self.c.run(["seq", "1", "40000"], detach=True)
        wait_for(lambda: self.info(job).state != pb.JOB_RUNNING, 10, "seq to finish")
        reply = self.c.attach(job)
        self.assertEqual(reply.state, pb.JOB_EXITED)
        evs = list(self.c.events(job, timeout=10))
        kinds = [e.WhichOneof("kind") for e in evs]
        self.assertEqual(kinds[0], "output_dropped", kinds)
        self.assertEqual(kinds[-1], "exited")
        self.assertEqual(set(kinds[1:-1]), {"output"})
        d = evs[0].output_dropped
        self.assertEqual((d.job, d.stream, d.reason), (job, pb.STDOUT, pb.DROP_BACKLOG))
        kept = b""
        for e in evs[1:-1]:
            self.assertEqual(e.output.offset, d.bytes + len(kept))
            kept += e.output.data
        self.assertGreater(len(kept), 0)
        self.assertLessEqual(len(kept), 65536)
        self.assertEqual(d.bytes + len(kept), len(expected))
        self.assertEqual(kept, expected[d.bytes:])
        self.assertEqual(evs[-1].exited.exit_code, 0)
        # only the terminal event
        self.c.attach(job, no_output=True)
        self.assertEqual([e.WhichOneof("kind") for e in self.c.events(job, 10)], ["exited"])
        self.c.attach(job, no_backlog=True)
        self.assertEqual([e.WhichOneof("kind") for e in self.c.events(job, 10)], ["exited"])
        with self.assertRaises(CtldError) as cm:
            self.c.attach(10 ** 12)
        self.assertEqual(cm.exception.code, pb.NOT_FOUND)

    def test_second_client_attached_to_running_job(self):
        job = self.c.run(["cat"], stdin_pipe=True)
        self.launched(job)
        with self.d.client() as b:
            self.assertEqual(b.attach(job).state, pb.JOB_RUNNING)
            self.assertEqual(self.info(job).clients, 2)
            self.c.write_stdin(job, b"shared\n", eof=True)
            out_b, _, _, ev_b = collect(b, job)
        out_a, _, _, ev_a = collect(self.c, job)
        self.assertEqual(out_a, b"shared\n")
        self.assertEqual(out_b, b"shared\n")
        self.assertEqual(ev_a.exited, ev_b.exited)

    def test_detach_stops_events(self):
        job = self.c.run(["sh", "-c", "sleep 0.3; echo after"])
        self.launched(job)
        self.c.detach(job)
        with self.assertRaises(TimeoutError):
            self.c.next_event(timeout=0.8)
        with self.assertRaises(CtldError) as cm:
            self.c.detach(job)
        self.assertEqual(cm.exception.code, pb.NOT_FOUND)
        self.assertEqual(self.info(job).exit_code, 0)

    # ------------------------------------------------------------ many clients
    def test_20_clients_x_20_commands(self):
        errors, results = [], {}

        def sequential(ci, c):
            for n in range(20):
                out, err, ev = c.run_and_wait(
                    ["sh", "-c", "echo %d-%d; exit %d" % (ci, n, n % 7)], timeout=60)
                results[(ci, n)] = (out, ev.WhichOneof("kind"), ev.exited.exit_code)

        def pipelined(ci, c):
            rids = [c.request_nowait(run=pb.Run(
                argv=["sh", "-c", "echo %d-%d; exit %d" % (ci, n, n % 7)])) for n in range(20)]
            jobs = {c.wait_reply(rid, timeout=60).run.job: n for n, rid in enumerate(rids)}
            outs, done = {j: b"" for j in jobs}, {}
            while len(done) < len(jobs):
                ev = c.next_event(timeout=60)
                kind = ev.WhichOneof("kind")
                e = getattr(ev, kind)
                if e.job not in jobs:
                    raise AssertionError("client %d got an event of job %d" % (ci, e.job))
                if e.job in done:
                    raise AssertionError("event after the terminal event: %s" % ev)
                if kind == "output":
                    outs[e.job] += e.data
                elif kind in ("exited", "exec_failed"):
                    done[e.job] = ev
            for j, n in jobs.items():
                results[(ci, n)] = (outs[j], done[j].WhichOneof("kind"),
                                    done[j].exited.exit_code)

        def worker(ci):
            try:
                c = self.d.client() if ci % 3 else self.d.tcp_client()
                with c:
                    (pipelined if ci % 2 else sequential)(ci, c)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append("client %d: %r" % (ci, e))

        threads = [threading.Thread(target=worker, args=(ci,)) for ci in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 400)
        for (ci, n), (out, kind, code) in results.items():
            self.assertEqual((out, kind, code), (b"%d-%d\n" % (ci, n), "exited", n % 7))

    # ------------------------------------------------------------ zombies
    def test_no_zombies_left(self):
        attached = []
        for i in range(5):
            attached.append(self.c.run(["sh", "-c", "sleep 0.2 & exit 0"]))  # orphans a sleep
            attached.append(self.c.run(["/nonexistent/ctld-zombie-test"]))
            self.c.run(["true"], detach=True)
        done = set()
        while len(done) < len(attached):  # their events interleave
            ev = self.c.next_event(timeout=10)
            kind = ev.WhichOneof("kind")
            if kind in ("exited", "exec_failed"):
                done.add(getattr(ev, kind).job)
        time.sleep(0.4)  # the orphaned sleeps end, re-parented to the daemon
        deadline = time.monotonic() + 3
        while (zombies_of(self.d.pid) or job_children(self.d)) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(zombies_of(self.d.pid), [])
        self.assertEqual(job_children(self.d), [])


if __name__ == "__main__":
    unittest.main()
