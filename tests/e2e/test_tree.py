# SPDX-License-Identifier: BSD-2-Clause
"""A job's whole process tree, as Exited and List tell it: the descendants
count is what is really alive (a tree just killed counts 0, not the
processes the kernel has not finished off yet), Run.wait_tree makes the job
end with its tree (its late output delivered, like ssh), and without it
what the tree writes after the main process ended is counted as discarded
and the job says its pipes are held."""
import signal
import time
import unittest

from harness import MODE, DaemonTestCase, children, wait_for


class TreeTest(DaemonTestCase):
    def events(self, c, job, timeout=20):
        out, last = b"", None
        for ev in c.events(job, timeout=timeout):
            if ev.HasField("output"):
                out += ev.output.data
            last = ev
        return out, last

    def test_killed_tree_counts_no_descendants(self):
        """After a tree kill, Exited.descendants is 0 every time (it was 1
        in a third of the runs: processes being killed were counted)."""
        with self.d.client() as c:
            for _ in range(10):
                job = c.run(["sh", "-c", "sleep 30 & sleep 30 & sleep 30 & wait"])
                pid = [j for j in c.list() if j.job == job][0].pid
                wait_for(lambda: len(children(pid)) == 3, what="three sleeps")
                if MODE == "bpf":  # List counts them with eBPF only
                    wait_for(lambda: [j for j in c.list() if j.job == job][0].descendants == 3,
                             what="List to count three descendants")
                c.signal(job, signal.SIGKILL)
                _, ev = self.events(c, job)
                self.assertEqual(ev.exited.signal, signal.SIGKILL)
                self.assertEqual(ev.exited.descendants, 0)
                self.assertEqual([j for j in c.list() if j.job == job][0].descendants, 0)

    def test_late_output_without_wait_tree(self):
        with self.d.client() as c:
            job = c.run(["sh", "-c", "(sleep 0.3; echo late) & echo early"])
            out, ev = self.events(c, job)
            self.assertEqual(out, b"early\n")
            self.assertTrue(ev.exited.pipes_held)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                info = [j for j in c.list() if j.job == job][0]
                if info.discarded_bytes:
                    break
                time.sleep(0.05)
            self.assertEqual(info.discarded_bytes, len(b"late\n"))

    def test_wait_tree_delivers_late_output(self):
        with self.d.client() as c:
            t0 = time.monotonic()
            job = c.run(["sh", "-c", "(sleep 0.3; echo late; exit 3) & echo early; exit 5"],
                        wait_tree=True)
            out, ev = self.events(c, job)
            self.assertEqual(out, b"early\nlate\n")
            self.assertEqual(ev.exited.exit_code, 5)  # the main process's status
            self.assertFalse(ev.exited.pipes_held)
            self.assertGreaterEqual(time.monotonic() - t0, 0.3)
            self.assertGreaterEqual(ev.exited.wall_ns, 300_000_000)

    def test_wait_tree_waits_for_a_silent_daemon(self):
        """A descendant that closed its output and runs on: the job waits for
        it too (the kernel knows the tree; without eBPF, /proc and the job's
        session show it; its end is seen as the reap of an orphan)."""
        with self.d.client() as c:
            t0 = time.monotonic()
            job = c.run(["sh", "-c", "(exec >/dev/null 2>&1; sleep 0.6) & exit 0"],
                        wait_tree=True)
            _, ev = self.events(c, job)
            took = time.monotonic() - t0
            self.assertTrue(ev.HasField("exited"))
            self.assertGreaterEqual(took, 0.6)

    def test_ctl_wait_tree(self):
        p = self.d.ctl("run", "--wait-tree", "--", "sh", "-c", "(sleep 0.2; echo late) & echo early")
        self.assertEqual((p.returncode, p.stdout), (0, "early\nlate\n"))
        p = self.d.ctl("run", "--", "sh", "-c", "(sleep 0.2; echo late) & echo early")
        self.assertEqual((p.returncode, p.stdout), (0, "early\n"))
        self.assertIn("still hold its output", p.stderr)


if __name__ == "__main__":
    unittest.main()
