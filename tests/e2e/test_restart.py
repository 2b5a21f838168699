# SPDX-License-Identifier: BSD-2-Clause
"""A daemon killed with SIGKILL and started again: job ids are never handed
out twice on a node, so a request for an old job id can never reach a new
job (it once did: ids started at 1 in every instance, and `ctl kill 1`
killed the new job 1 while the old one ran on)."""
import os
import signal
import subprocess
import unittest

from harness import CTL, CtldError, Daemon, alive, pb, scaled


def main_pid(c, job):
    return next(j.pid for j in c.list() if j.job == job)


class JobIdsAcrossRestartsTest(unittest.TestCase):
    def setUp(self):
        self.d = Daemon()
        self.addCleanup(self.d.cleanup)
        self.pids = []  # jobs of killed instances: ours to end
        self.addCleanup(self.kill_leftovers)

    def kill_leftovers(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

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


if __name__ == "__main__":
    unittest.main()
