# SPDX-License-Identifier: BSD-2-Clause
"""A daemon killed with SIGKILL and started again.

Job ids are never handed out twice on a node, so a request for an old job
id can never reach a new job (it once did: ids started at 1 in every
instance, and `ctl kill 1` killed the new job 1 while the old one ran on).

The new instance adopts the jobs the dead one left running (they once ran
on unmanaged under init: not listed, not killable): listed as adopted,
killable with their whole tree, their end reported (with eBPF, with the
status the kernel recorded). A record whose pid now names another process
adopts nothing, and that process is never signalled."""
import os
import signal
import subprocess
import unittest

from harness import CTL, CtldError, Daemon, alive, kill_pids, pb, proc_stat, proc_text, scaled, wait_for


def read_pid(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text) if text else None
    except FileNotFoundError:
        return None


def main_pid(c, job):
    return next(j.pid for j in c.list() if j.job == job)


class RestartTestCase(unittest.TestCase):
    """A daemon of its own per test (it is killed), and the processes the
    killed instances left, ended by pid."""

    def setUp(self):
        self.d = Daemon()
        self.addCleanup(self.d.cleanup)
        self.pids = []  # jobs of killed instances: ours to end
        self.addCleanup(lambda: kill_pids(self.pids))


class JobIdsAcrossRestartsTest(RestartTestCase):

    def start_sleeper(self):
        with self.d.client() as c:
            job = c.run(["sleep", "60"])
            pid = main_pid(c, job)
        self.pids.append(pid)
        return job, pid

    def test_ids_of_a_killed_instance_are_never_reused(self):
        ids = []
        for _ in range(3):
            job, _ = self.start_sleeper()
            ids.append(job)
            self.d.kill9()
            self.d.start()
        newest, newest_pid = self.start_sleeper()
        ids.append(newest)
        self.assertEqual(len(set(ids)), len(ids), "job ids reused: %s" % ids)
        self.assertEqual(ids, sorted(ids), "ids go back after a restart: %s" % ids)
        # `ctl kill OLD` must not reach the newest job
        for old in ids[:-1]:
            p = subprocess.run([CTL, "-S", self.d.socket, "kill", str(old)],
                               capture_output=True, text=True, timeout=scaled(10))
            if p.returncode != 0:
                self.assertIn("earlier instance of the daemon", p.stderr)
        self.assertTrue(alive(newest_pid), "killing an old job id killed the new job")
        with self.d.client() as c:
            self.assertEqual(c.list()[-1].job, newest)

    def test_unknown_ids_are_explained(self):
        old, _ = self.start_sleeper()
        self.d.kill9()
        self.d.start()
        with self.d.client() as c:
            new = c.run(["true"])
            for _ in c.events(new, timeout=scaled(10)):
                pass
            with self.assertRaises(CtldError) as e:
                c.signal(new + 10000)
            self.assertEqual(e.exception.code, pb.NOT_FOUND)
            self.assertIn("no job with this id was started yet", str(e.exception))
            if not any(j.job == old for j in c.list()):  # not adopted
                with self.assertRaises(CtldError) as e:
                    c.signal(old)
                self.assertIn("earlier instance of the daemon", str(e.exception))

    def test_state_directory_errors_are_clear(self):
        bad = os.path.join(self.d.dir, "not-a-dir")
        with open(bad, "w") as f:
            f.write("x")
        d = Daemon("--state-dir", os.path.join(bad, "state"), start=False)
        self.addCleanup(d.cleanup)
        with self.assertRaises(AssertionError) as e:
            d.start(timeout=scaled(10))
        self.assertIn("cannot create the state directory", str(e.exception))
        with open(os.path.join(self.d.state_dir, "next-job-id"), "w") as f:
            f.write("garbage\n")
        self.d.stop()
        with self.assertRaises(AssertionError) as e:
            self.d.start(timeout=scaled(10))
        self.assertIn("does not hold a job id", str(e.exception))


class AdoptionTest(RestartTestCase):
    def record_path(self, job):
        return os.path.join(self.d.state_dir, "jobs", str(job))

    def start_job(self, script):
        """A job left running by an instance that is then killed (-9)."""
        with self.d.client() as c:
            job = c.run(["sh", "-c", script])
            pid = main_pid(c, job)
        self.pids.append(pid)
        wait_for(lambda: os.path.exists(self.record_path(job)), what="the job's record")
        return job, pid

    def info(self, c, job):
        return next(j for j in c.list() if j.job == job)

    def test_running_job_is_adopted_listed_and_killed_with_its_tree(self):
        child_file = os.path.join(self.d.dir, "child")
        job, pid = self.start_job("sleep 300 & echo $! > %s; exec sleep 301" % child_file)
        child = wait_for(lambda: read_pid(child_file), what="child pid")
        self.pids.append(child)
        self.d.kill9()
        self.assertTrue(alive(pid) and alive(child))
        self.d.start()
        with self.d.client() as c, self.d.client() as watcher:
            ji = self.info(c, job)
            self.assertTrue(ji.adopted)
            self.assertEqual(ji.state, pb.JOB_RUNNING)
            self.assertEqual(ji.pid, pid)
            self.assertEqual(ji.descendants, 1)
            watcher.attach(job)
            c.signal(job)  # SIGTERM to the tree
            ev = list(watcher.events(job, timeout=scaled(10)))[-1]
            self.assertTrue(ev.exited.adopted)
            if self.d.mode == "bpf":  # the kernel's exit record
                self.assertFalse(ev.exited.status_unknown)
                self.assertEqual(ev.exited.signal, signal.SIGTERM)
            else:
                self.assertTrue(ev.exited.status_unknown)
            wait_for(lambda: not alive(pid) and not alive(child), what="the tree to end")
            self.assertFalse(os.path.exists(self.record_path(job)))
            # a well-behaved client is served throughout
            out, _, ev = c.run_and_wait(["echo", "still-serving"], timeout=scaled(10))
            self.assertEqual(out, b"still-serving\n")

    def test_adopted_job_forks_after_the_restart_are_killed_too(self):
        """A process the adopted job starts after the restart, which leaves
        its session and the walk below the job (setsid, double fork), is
        still of the tree with eBPF (tracked from its fork); without eBPF
        only what /proc shows (below it, its session) is."""
        grand_file = os.path.join(self.d.dir, "grand")
        go = os.path.join(self.d.dir, "go")
        job, pid = self.start_job(
            "while [ ! -e %s ]; do sleep 0.05; done; "
            "setsid sh -c 'sleep 300 & echo $! > %s' & wait; exec sleep 302" % (go, grand_file))
        self.d.kill9()
        self.d.start()
        open(go, "w").close()
        grand = wait_for(lambda: read_pid(grand_file), what="grandchild")
        self.pids.append(grand)
        with self.d.client() as c:
            wait_for(lambda: proc_stat(pid) and "sleep" in proc_text(pid, "cmdline"),
                     what="the job to exec sleep")
            c.signal(job, sig=signal.SIGKILL)
            wait_for(lambda: not alive(pid), what="the main process to end")
            if self.d.mode == "bpf":
                wait_for(lambda: not alive(grand), what="the grandchild to be killed")

    def test_job_that_ended_while_no_daemon_ran(self):
        job, pid = self.start_job("sleep 0.5")
        self.d.kill9()
        wait_for(lambda: not alive(pid), what="the job to end")
        self.d.start()
        with self.d.client() as c:
            ji = self.info(c, job)
            self.assertEqual(ji.state, pb.JOB_EXITED)
            self.assertTrue(ji.adopted and ji.status_unknown)
        p = subprocess.run([CTL, "-S", self.d.socket, "wait", str(job)], capture_output=True,
                           text=True, timeout=scaled(10))
        self.assertEqual(p.returncode, 125, p.stderr)
        self.assertIn("its exit status is unknown", p.stderr)
        self.assertFalse(os.path.exists(self.record_path(job)))

    def test_a_recycled_pid_is_never_adopted(self):
        """Records naming a pid that is now another process (other start
        time), another boot, or holding garbage adopt nothing; the process
        is never signalled."""
        other = subprocess.Popen(["sleep", "60"])
        self.addCleanup(other.wait)
        self.addCleanup(other.kill)
        starttime = proc_stat(other.pid)[2]
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        jobs = os.path.join(self.d.state_dir, "jobs")
        records = {
            "900001": (boot, starttime + 1),   # same pid, another process
            "900002": ("0" * 8 + boot[8:], starttime),  # another boot
        }
        self.d.stop()
        for job, (b, t) in records.items():
            with open(os.path.join(jobs, job), "w") as f:
                f.write("ctld-bpf job 1\nid %s\npid %d\nstarttime %d\nboot_id %s\n"
                        "start_real_ns 1\nstart_mono_ns 1\nname sleep\ncommand sleep 60\n"
                        % (job, other.pid, t, b))
        with open(os.path.join(jobs, "900003"), "w") as f:
            f.write("garbage\n")
        self.d.start()
        with self.d.client() as c:
            listed = {j.job: j for j in c.list()}
            self.assertNotIn(900002, listed)
            self.assertNotIn(900003, listed)
            self.assertEqual(listed[900001].state, pb.JOB_EXITED)
            self.assertTrue(listed[900001].status_unknown)
            with self.assertRaises(CtldError):
                c.signal(900001, sig=signal.SIGKILL)
        self.assertTrue(alive(other.pid), "a recycled pid was signalled")
        self.assertEqual(os.listdir(jobs), [])

    def test_clean_stop_leaves_no_record(self):
        job, pid = self.start_job("exec sleep 300")
        self.d.stop()
        self.assertFalse(alive(pid))
        self.assertEqual(os.listdir(os.path.join(self.d.state_dir, "jobs")), [])


if __name__ == "__main__":
    unittest.main()
