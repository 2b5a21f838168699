# SPDX-License-Identifier: BSD-2-Clause
"""Limits that bind (docs/design.md, "Process limits and exact kill").

* Run.max_procs (ctl --max-procs) puts the job in a pids cgroup of its own:
  a job running as root that tries to fork 100 children gets 19 and then
  EAGAIN (itself plus 19 = 20), its cgroup's pids.peak says 20, the daemon and other
  clients keep working, and the job is killed whole. RLIMIT_NPROC, which
  root ignores, is refused for a root job with a pointer to max_procs.
* Without eBPF every job gets a cgroup, so a process that left the job's
  session and ancestry (setsid, a double fork) and closed its stdio still
  dies with `ctl kill`, while the job runs and after its main process
  has exited; its cgroup is removed once it is gone.
* Where no cgroup can be made (--cgroup-root pointing at a directory that
  is no cgroup, or none), max_procs is refused with the reason.
* Two daemons get groups of their own names, and each removes its group
  when it stops.
"""
import errno
import os
import signal
import shutil
import tempfile
import unittest

from harness import (FORKER, PY, CtldError, Daemon, DaemonTestCase, alive, children, json_lines, pb,
                     proc_stat, scaled, wait_for)

# The escapee: a new session (setsid), a second fork whose parent exits at
# once (so it is adopted by the daemon, the subreaper), stdio closed; it
# writes its pid to the file $1.
ESCAPE = ("setsid sh -c 'sleep 300 </dev/null >/dev/null 2>&1 & echo $! > \"$0\"' \"$1\"; %s")


def read_file(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def first_line(c, job):
    line = b""
    for ev in c.events(job, timeout=scaled(15)):
        if ev.HasField("output"):
            line += ev.output.data
            if line.endswith(b"\n"):
                return line.decode()
        if ev.WhichOneof("kind") in ("exited", "exec_failed"):
            raise AssertionError("the job ended first: %s (output %r)" % (ev, line))
    raise AssertionError("no line")


def job_info(c, job):
    return [j for j in c.list() if j.job == job][0]


def group_dir(stats):
    """The daemon's group, from Stats.cgroups ("..., job groups in DIR")."""
    marker = "job groups in "
    return stats.cgroups.split(marker, 1)[1] if marker in stats.cgroups else None


class MaxProcsTest(DaemonTestCase):
    def test_root_job_cannot_exceed_max_procs(self):
        with self.d.client() as c:
            job = c.run([PY, "-c", FORKER], max_procs=20)
            forked, err = map(int, first_line(c, job).split())
            pid = job_info(c, job).pid
            kids = children(pid)
            self.assertEqual((forked, err), (19, errno.EAGAIN), "the job itself and 19 children")
            self.assertEqual(len(kids), 19)
            info = job_info(c, job)
            self.assertEqual(info.max_procs, 20)
            self.assertTrue(info.cgroup)
            if info.procs_peak:  # pids.peak (Linux 6.1 for v1 and v2)
                self.assertEqual(info.procs_peak, 20)
            # the daemon is not in that cgroup: everyone else is served
            self.assertDaemonServes()
            self.assertGreaterEqual(c.stats().job_cgroups, 1)
            c.signal(job, signal.SIGKILL)
            ev = list(c.events(job, timeout=scaled(10)))[-1]
            self.assertEqual(ev.exited.signal, signal.SIGKILL)
            for k in [pid] + kids:
                wait_for(lambda: not alive(k), what="pid %d to be gone" % k)
            wait_for(lambda: c.stats().job_cgroups == 0, what="the job's cgroup to go")
            self.assertEqual(job_info(c, job).procs_peak, info.procs_peak)

    def test_ctl_max_procs(self):
        p = self.d.ctl("run", "--max-procs", "3", "--", "sh", "-c",
                       "sleep 5 & sleep 5 & sleep 5 & echo after; wait", check=None)
        self.assertIn("fork", p.stderr.lower())  # the shell's own message
        self.assertNotEqual(p.returncode, 0)
        job = int(self.d.ctl("start", "--max-procs", "7", "--", "sleep", "30", check=0).stdout)
        listed = [j for j in json_lines(self.d.ctl("--json", "list", check=0).stdout)
                  if j["job"] == job][0]
        self.assertEqual(listed["max_procs"], 7)
        self.assertEqual(self.d.ctl("kill", "--signal", "KILL", str(job)).returncode, 0)
        bad = self.d.ctl("run", "--max-procs", "0", "--", "true")
        self.assertEqual(bad.returncode, 64)
        self.assertIn("--max-procs", bad.stderr)

    def test_rlimit_nproc_for_root_is_refused(self):
        with self.d.client() as c:
            with self.assertRaises(CtldError) as cm:
                c.run(["true"], rlimits=[pb.Rlimit(resource="nproc", soft=100, hard=100)])
            self.assertEqual(cm.exception.code, pb.BAD_REQUEST)
            self.assertIn("does not bind a job that runs as root", cm.exception.text)
            self.assertIn("max_procs", cm.exception.text)
            out, _, ev = c.run_and_wait(["bash", "-c", "ulimit -u"], user="nobody",
                                        rlimits=[pb.Rlimit(resource="nproc", soft=100,
                                                           hard=100)])
            self.assertEqual(out, b"100\n")
        p = self.d.ctl("run", "--rlimit", "nproc=50", "--", "true")
        self.assertEqual(p.returncode, 1)
        self.assertIn("--max-procs", p.stderr)


class EscapeMixin:
    def escapee(self, d, tail, **run):
        """Starts a job that leaves an escapee behind; returns (job, escapee pid, starttime)."""
        tmp = tempfile.mkdtemp(prefix="ctld-limits-")
        self.addCleanup(shutil.rmtree, tmp, True)
        pidfile = os.path.join(tmp, "escapee.pid")
        with d.client() as c:
            job = c.run(["sh", "-c", ESCAPE % tail, "sh", pidfile], detach=True, **run)
        wait_for(lambda: read_file(pidfile).endswith("\n"), what="the escapee's pid file")
        pid = int(read_file(pidfile))
        st = proc_stat(pid)
        self.assertIsNotNone(st)
        self.addCleanup(self.kill_if_alive, pid, st[2])
        # The pid file is written just before the intermediate shell exits:
        # the escapee is reparented a moment later, not at once.
        wait_for(lambda: (proc_stat(pid) or (0, 0))[1] == d.pid,
                 what="the escapee to be adopted by the daemon")
        st = proc_stat(pid)
        self.assertNotEqual(os.getsid(pid), os.getsid(0))
        return job, pid, st[2]

    @staticmethod
    def kill_if_alive(pid, starttime):
        if alive(pid, starttime):
            os.kill(pid, signal.SIGKILL)

    def exact_kill(self, d, **run):
        job, pid, start = self.escapee(d, "exec sleep 300", **run)
        p = d.ctl("kill", str(job))
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: not alive(pid, start), what="the escapee %d to die" % pid)
        self.assertEqual(d.ctl("wait", str(job)).returncode, 128 + signal.SIGTERM)


class NoBpfExactKillTest(EscapeMixin, unittest.TestCase):
    """The defect: without eBPF, such an escapee survived `ctl kill`."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(mode="nobpf")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def test_escapee_dies_with_the_job(self):
        self.exact_kill(self.d)

    def test_escapee_dies_after_the_main_process_exited(self):
        job, pid, start = self.escapee(self.d, "exit 0")
        self.assertEqual(self.d.ctl("wait", str(job)).returncode, 0)
        self.assertTrue(alive(pid, start))
        p = self.d.ctl("kill", str(job))
        self.assertEqual(p.returncode, 0, p.stderr)
        wait_for(lambda: not alive(pid, start), what="the escapee %d to die" % pid)
        with self.d.client() as c:
            self.assertTrue(job_info(c, job).cgroup)
            wait_for(lambda: c.stats().job_cgroups == 0, what="the job's cgroup to go")


class MaxProcsKillTest(EscapeMixin, DaemonTestCase):
    def test_max_procs_job_killed_whole(self):
        """With a cgroup the kill is exact in both modes."""
        self.exact_kill(self.d, max_procs=50)


class CgroupRefusalTest(unittest.TestCase):
    def refused(self, *args, why):
        with Daemon(*args) as d, d.client() as c:
            self.assertIn(why, c.stats().cgroups)
            with self.assertRaises(CtldError) as cm:
                c.run(["true"], max_procs=5)
            self.assertEqual(cm.exception.code, pb.UNSUPPORTED)
            self.assertIn("max_procs needs a cgroup of the job's own", cm.exception.text)
            self.assertIn(why, cm.exception.text)
            out, _, ev = c.run_and_wait(["echo", "fine"], timeout=scaled(10))
            self.assertEqual(out, b"fine\n")
            self.assertEqual(c.stats().job_cgroups, 0)

    def test_root_that_is_no_cgroup(self):
        tmp = tempfile.mkdtemp(prefix="ctld-nocgroup-")
        self.addCleanup(shutil.rmtree, tmp, True)
        self.refused("--cgroup-root", tmp, why="is not in a cgroup file system")
        self.assertEqual(os.listdir(tmp), [])

    def test_cgroups_off(self):
        self.refused("--cgroup-root", "none", why="turned off")


class CgroupNamesTest(unittest.TestCase):
    def test_two_daemons_own_groups_removed_at_stop(self):
        dirs = []
        with Daemon() as a, Daemon() as b:
            for d in (a, b):
                with d.client() as c:
                    job = c.run(["sleep", "30"], max_procs=5)
                    dirs.append(group_dir(c.stats()))
                    self.assertIsNotNone(dirs[-1], c.stats().cgroups)
                    self.assertIn("ctld-%d" % d.pid, dirs[-1])
                    self.assertTrue(os.path.isdir(os.path.join(dirs[-1], "job-%d" % job)))
            self.assertNotEqual(dirs[0], dirs[1])
        for path in dirs:
            self.assertFalse(os.path.exists(path), "%s left behind" % path)


if __name__ == "__main__":
    unittest.main()
