# SPDX-License-Identifier: BSD-2-Clause
"""Killing a job that does not want to die: Signal.grace_ms / ctl kill
--grace sends the signal, continues a stopped tree so it can act on it, and
SIGKILLs whatever is left after the grace period; Exited.escalated and ctl
say which ended it. Without --grace, a job that ignores SIGTERM keeps
running (the signal was delivered; that is all ctl kill claims)."""
import signal
import time
import unittest

from harness import CtldError, DaemonTestCase, alive, children, pb, proc_stat, wait_for

STUBBORN = ["sh", "-c", "trap '' TERM; sleep 60 & sleep 60 & wait"]


class EscalationTest(DaemonTestCase):
    def start(self, argv, kids):
        p = self.d.ctl("start", "--", *argv, check=0)
        job = int(p.stdout)
        with self.d.client() as c:
            pid = [j for j in c.list() if j.job == job][0].pid
        wait_for(lambda: len(children(pid)) == kids, what="the tree to start")
        return job, pid

    def test_term_ignored_then_killed(self):
        job, pid = self.start(STUBBORN, 2)
        kids = children(pid)
        t0 = time.monotonic()
        p = self.d.ctl("kill", "--grace", "500ms", str(job), check=0)
        took = time.monotonic() - t0
        self.assertIn("job %d was still running 500ms after SIGTERM: killed with SIGKILL" % job,
                      p.stderr)
        self.assertGreaterEqual(took, 0.5)
        self.assertEqual(self.d.ctl("wait", str(job)).returncode, 137)
        for k in [pid] + kids:
            wait_for(lambda: not alive(k), what="pid %d to be gone" % k)
        with self.d.client() as c:
            c.attach(job, no_output=True)
            ev = [e for e in c.events(job, timeout=10)][-1]
        self.assertTrue(ev.exited.escalated)
        self.assertEqual(ev.exited.signal, signal.SIGKILL)

    def test_term_enough(self):
        job, pid = self.start(["sh", "-c", "sleep 60 & wait"], 1)
        p = self.d.ctl("kill", "--grace", "5s", str(job), check=0)
        self.assertIn("job %d ended on SIGTERM" % job, p.stderr)
        with self.d.client() as c:
            c.attach(job, no_output=True)
            ev = [e for e in c.events(job, timeout=10)][-1]
        self.assertFalse(ev.exited.escalated)
        time.sleep(0.2)
        self.assertNotIn("sending SIGKILL", self.d.log())

    def test_stopped_tree_is_continued(self):
        """A stopped job cannot act on SIGTERM: with --grace it is continued,
        so it ends on the TERM long before the grace runs out."""
        job, pid = self.start(["sh", "-c", "sleep 60 & wait"], 1)
        self.d.ctl("kill", "--signal", "STOP", str(job), check=0)
        wait_for(lambda: (proc_stat(pid) or ("",))[0] == "T",
                 what="the job to stop")
        t0 = time.monotonic()
        p = self.d.ctl("kill", "--grace", "20s", str(job), check=0)
        self.assertIn("ended on SIGTERM", p.stderr)
        self.assertLess(time.monotonic() - t0, 10)

    def test_without_grace_the_job_keeps_running(self):
        job, pid = self.start(STUBBORN, 2)
        self.d.ctl("kill", str(job), check=0)
        time.sleep(0.3)
        self.assertTrue(alive(pid))
        self.d.ctl("kill", "--signal", "KILL", str(job), check=0)

    def test_bad_requests(self):
        with self.d.client() as c:
            job = c.run(["sleep", "60"])
            for kw, text in (({"main_only": True}, "not with main_only"),
                             ({"signal": 9}, "not with SIGKILL itself")):
                with self.assertRaises(CtldError) as e:
                    c.request(signal=pb.Signal(job=job, grace_ms=100, **kw))
                self.assertEqual(e.exception.code_name, "BAD_REQUEST")
                self.assertIn(text, e.exception.text)
            c.signal(job, 9)
        for args, text in ((["--grace", "1s", "--main-only"], "not with --main-only"),
                           (["--grace", "1s", "--signal", "KILL"], "nothing to escalate to"),
                           (["--grace", "0"], "bad duration")):
            p = self.d.ctl("kill", *args, "1")
            self.assertEqual(p.returncode, 64, p.stderr)
            self.assertIn(text, p.stderr)


if __name__ == "__main__":
    unittest.main()
