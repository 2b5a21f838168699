# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of liveness across a network: nodes that go silent in
the middle of a command, ctl told to stop, clients that vanish behind a
partition. The nodes are network namespaces (tests/e2e/netlab.py), each
with its own daemon (mutual TLS on 10.77.0.N:7878); ctl runs in a
controller namespace.

* A node whose link is cut mid-command: `ctl -H a,b,c,d run` prints the
  other three nodes' results and exits 69 within --liveness plus a margin,
  naming the node and the job it was running.
* A daemon stopped (SIGSTOP) mid-command, its kernel still acknowledging
  TCP: the same, noticed by the Pings alone.
* SIGTERM: timeout(1) ends ctl promptly even when the job ignores SIGTERM;
  the job is killed when ctl leaves with --kill-on-disconnect and keeps
  running without it; ctl leaves within its grace when the daemon does
  not answer, and at once on a second SIGTERM.
* The daemon side: clients behind a cut link, one with output in flight
  (TCP_USER_TIMEOUT) and one idle (keepalive), are dropped within
  --tcp-keepalive and everything they held is freed: their watches, their
  kill-on-disconnect job, their client slots.
* Ping is answered with its token, also while output streams.

Every fault test also checks that well-behaved clients are served
throughout: the other nodes finish the command, and a client on the
faulty node (its unix socket, or TCP from a node on the right side of
the partition) is served during the fault or right after it.

ctl's liveness is set through $CTLD_LIVENESS, so that a ctl without it
(the old build) shows the hang, which every wait here bounds.
"""
import signal
import time
import unittest

from harness import DaemonTestCase, expect_event, pb, scaled, wait_for
from netlab import NetLab

LIVENESS = 3.0  # ctl --liveness in these tests, seconds
LIVENESS_ENV = {"CTLD_LIVENESS": "%gs" % LIVENESS}
GRACE = 2.0  # ctl's wait for the jobs after SIGTERM (CTL_LEAVE_GRACE_MS)
MARGIN = 3.0  # for the machine (scaled); the defects these tests catch are minutes or for ever
KEEPALIVE = 3.0  # the daemons' --tcp-keepalive in DaemonDropsVanishedClients
EXIT_UNAVAILABLE = 69
IGNORES_TERM = 'trap "echo got-term" TERM; echo %s; while :; do sleep 0.1; done'


def find_job(d, marker):
    """The job on daemon d whose command contains marker (via its unix socket)."""
    with d.client() as c:
        jobs = [j for j in c.list() if marker in j.command]
    if len(jobs) != 1:
        raise AssertionError("expected one job with %r, got %s" % (marker, jobs))
    return jobs[0]


class LivenessLab(unittest.TestCase):
    """Four nodes and a controller, for the whole class; every test leaves
    every link up and every daemon running."""
    nodes = ("a", "b", "c", "d")

    @classmethod
    def setUpClass(cls):
        cls.lab = NetLab(cls.nodes)
        try:
            cls.lab.start_daemons()
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.lab.close()

    def setUp(self):
        self.addCleanup(self.lab.reset)

    def daemon(self, node):
        return self.lab.node(node).daemon

    def assertServedLocally(self, node):
        """A client of the node's unix socket runs a command: the daemon itself is fine."""
        with self.daemon(node).client() as c:
            out, _, ev = c.run_and_wait(["echo", "still-serving"], timeout=scaled(10))
        self.assertEqual(out, b"still-serving\n")
        self.assertEqual(ev.exited.exit_code, 0)

    def assertServedOverTcp(self, node, where="ctl"):
        """A TLS client from member `where` pings the node and runs a command."""
        with self.lab.client(node, where=where) as c:
            self.assertEqual(c.ping(token=7).token, 7)
            out, _, ev = c.run_and_wait(["echo", "over-tcp"], timeout=scaled(10))
        self.assertEqual(out, b"over-tcp\n")


class SilentNodes(LivenessLab):

    def run_with_fault(self, victim, fault, marker):
        """`ctl -H a,b,c,d run` of a 3-second command; fault(victim) once
        the victim's job has started. Returns (status, stdout, stderr,
        seconds from the fault to ctl's end)."""
        lab = self.lab
        p = lab.start_ctl("run", "--", "sh", "-c", "echo %s-start; sleep 3; echo %s-done"
                          % (marker, marker), env=LIVENESS_ENV)
        for n in self.nodes:
            p.wait_output("%s: %s-start" % (lab.node(n).target, marker))
        fault(victim)
        t0 = time.monotonic()
        rc = p.wait(timeout=3 + LIVENESS + 2 * MARGIN)
        return rc, p.stdout, p.stderr, time.monotonic() - t0

    def check_others_done(self, victim, marker, rc, out, err, elapsed):
        lab = self.lab
        victim_target = lab.node(victim).target
        self.assertEqual(rc, EXIT_UNAVAILABLE, err)
        for n in self.nodes:
            line = "%s: %s-done" % (lab.node(n).target, marker)
            if n == victim:
                self.assertNotIn(line, out)
            else:
                self.assertIn(line, out, "node %s's result is missing\n%s" % (n, err))
        self.assertRegex(err, r"ctl: node %s: no answer for [0-9.]+ s \(liveness\); job \d+ \(sh\)"
                         r" was running there" % victim_target.replace(".", r"\."))
        self.assertEqual(err.count("no answer"), 1, err)
        self.assertLess(elapsed, scaled(LIVENESS + MARGIN))

    def test_link_cut_mid_command(self):
        # node c vanishes behind a partition: ctl gives up on it after
        # --liveness, prints the others' results and exits 69
        rc, out, err, elapsed = self.run_with_fault("c", self.lab.cut, "cut")
        self.assertServedLocally("c")  # still cut off: the daemon serves its unix socket
        self.check_others_done("c", "cut", rc, out, err, elapsed)
        self.lab.heal("c")
        self.assertServedOverTcp("c")
        # the job itself ran to its end: ctl only lost sight of it
        wait_for(lambda: find_job(self.daemon("c"), "cut-start").state == pb.JOB_EXITED,
                 timeout=10, what="the job on c to end")
        self.assertEqual(find_job(self.daemon("c"), "cut-start").exit_code, 0)

    def test_daemon_stopped_mid_command(self):
        # node b's daemon is stopped; its kernel still acknowledges TCP, so
        # only the Pings can tell
        lab = self.lab
        rc, out, err, elapsed = self.run_with_fault("b", lab.freeze, "stop")
        self.assertServedOverTcp("a")  # the other daemons serve during the stop
        self.check_others_done("b", "stop", rc, out, err, elapsed)
        lab.thaw("b")
        self.assertServedOverTcp("b")


class Termination(LivenessLab):

    def test_timeout_ends_ctl_whatever_the_job_does(self):
        # timeout(1) sends one SIGTERM: ctl forwards it, waits its grace for
        # the job, and leaves; --kill-on-disconnect then kills the job
        d = self.daemon("a")
        rc, out, err = self.lab.ctl("run", "--kill-on-disconnect", "--", "sh", "-c",
                                    IGNORES_TERM % "kod-start", nodes=["a"],
                                    wrapper=["timeout", "2"], env=LIVENESS_ENV,
                                    timeout=2 + GRACE + 2 * MARGIN)
        self.assertEqual(rc, 124, err)  # timeout's own status: the command timed out
        self.assertIn("got-term", out)  # the job was told
        self.assertIn("the daemon kills job", err)
        wait_for(lambda: find_job(d, "kod-start").state == pb.JOB_EXITED, timeout=10,
                 what="the --kill-on-disconnect job to be killed")
        self.assertEqual(find_job(d, "kod-start").signal, signal.SIGKILL)
        # a job that does what SIGTERM says: ctl reports its end
        rc, out, err = self.lab.ctl("run", "--", "sleep", "61", nodes=["a"],
                                    wrapper=["timeout", "--preserve-status", "1"],
                                    env=LIVENESS_ENV, timeout=1 + GRACE + 2 * MARGIN)
        self.assertEqual(rc, 128 + signal.SIGTERM, err)
        self.assertEqual(find_job(d, "sleep 61").signal, signal.SIGTERM)
        self.assertServedOverTcp("a")

    def test_sigterm_leaves_a_stubborn_job_running(self):
        # without --kill-on-disconnect the job outlives ctl, which says so
        d = self.daemon("a")
        p = self.lab.start_ctl("run", "--", "sh", "-c", IGNORES_TERM % "stay-start",
                               nodes=["a"], env=LIVENESS_ENV)
        p.wait_output("stay-start")
        p.signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = p.wait(timeout=GRACE + 2 * MARGIN)
        self.assertLess(time.monotonic() - t0, scaled(GRACE + MARGIN))
        self.assertEqual(rc, 128 + signal.SIGTERM, p.stderr)
        self.assertIn("got-term", p.stdout)
        self.assertRegex(p.stderr, r"the job has not ended 2s after SIGTERM; job (\d+) may keep "
                         r"running \(ctl attach \1\)")
        job = find_job(d, "stay-start")
        self.assertEqual(job.state, pb.JOB_RUNNING)
        with d.client() as c:
            c.signal(job.job, signal.SIGKILL)
        self.assertServedOverTcp("a")

    def test_sigterm_with_the_daemon_stopped(self):
        # the daemon cannot answer: after one SIGTERM ctl still leaves once
        # its grace is over, after a second one at once
        once, twice = [self.lab.start_ctl("run", "--", "sh", "-c", "echo %s-start; sleep 60" % m,
                                          nodes=["a"], env=LIVENESS_ENV)
                       for m in ("once", "twice")]
        once.wait_output("once-start")
        twice.wait_output("twice-start")
        self.lab.freeze("a")
        once.signal(signal.SIGTERM)
        twice.signal(signal.SIGTERM)
        t0 = time.monotonic()
        time.sleep(0.3)
        self.assertTrue(twice.running(), "ctl left before its grace: " + twice.stderr)
        twice.signal(signal.SIGTERM)
        t1 = time.monotonic()
        self.assertEqual(twice.wait(timeout=GRACE + 2 * MARGIN), 128 + signal.SIGTERM)
        # at once: well before the grace of the first SIGTERM would be over
        self.assertLess(time.monotonic() - t1, scaled(1.0))
        self.assertIn("detached", twice.stderr)
        self.assertEqual(once.wait(timeout=GRACE + 2 * MARGIN), 128 + signal.SIGTERM)
        self.assertLess(time.monotonic() - t0, scaled(GRACE + MARGIN))
        self.assertRegex(once.stderr, r"the daemon did not confirm SIGTERM within 2s; job (\d+) "
                         r"may keep running \(ctl attach \1\)")
        self.assertServedOverTcp("b")  # the others serve while a is stopped
        self.lab.thaw("a")
        self.assertServedOverTcp("a")


class DaemonDropsVanishedClients(LivenessLab):
    """The daemon side: --tcp-keepalive drops clients behind a partition."""
    nodes = ("a", "b")

    @classmethod
    def setUpClass(cls):
        cls.lab = NetLab(cls.nodes)
        try:
            cls.lab.start_daemons("--tcp-keepalive", "%gs" % KEEPALIVE)
        except BaseException:
            cls.lab.close()
            raise

    def test_clients_behind_a_cut_link_are_dropped_and_freed(self):
        lab, d = self.lab, self.daemon("a")
        with d.client() as local:
            base = local.stats()
            # from the controller: one client with output in flight (only
            # TCP_USER_TIMEOUT can end it), one idle holding a watch (keepalive)
            busy = lab.client("a")
            idle = lab.client("a")
            self.addCleanup(busy.close)
            self.addCleanup(idle.close)
            job = busy.run(["sh", "-c", "while :; do echo tick; sleep 0.2; done"],
                           kill_on_disconnect=True)
            expect_event(busy, "launched")
            expect_event(busy, "output")
            idle.request(watch_port=pb.WatchPort(port=9))
            held = local.stats()
            self.assertEqual(held.clients, base.clients + 2)
            self.assertEqual(held.port_watches, base.port_watches + 1)

            lab.cut("ctl")
            t0 = time.monotonic()

            def dropped():
                # a client on the right side of the partition is served meanwhile
                rc, out, err = lab.ctl("stats", nodes=["a"], where="b", timeout=10)
                self.assertEqual(rc, 0, err)
                st = local.stats()
                return st.clients == base.clients and st.port_watches == base.port_watches

            wait_for(dropped, timeout=KEEPALIVE + 2 * MARGIN, step=0.2,
                     what="the daemon to drop the clients behind the cut link\n" + lab.logs())
            self.assertLess(time.monotonic() - t0, scaled(KEEPALIVE + MARGIN))
            # the kill-on-disconnect job went with its client
            wait_for(lambda: [j for j in local.list() if j.job == job][0].state == pb.JOB_EXITED,
                     timeout=10, what="the job of the dropped client to be killed")
            info = [j for j in local.list() if j.job == job][0]
            self.assertEqual(info.signal, signal.SIGKILL)
        self.assertIn("the peer acknowledged nothing for too long", d.log(1 << 20))
        self.assertServedOverTcp("a", where="b")
        lab.heal("ctl")
        self.assertServedOverTcp("a")


class Ping(DaemonTestCase):

    def test_ping_is_answered_with_its_token_at_once(self):
        with self.d.client() as c:
            self.assertEqual(c.ping(token=12345).token, 12345)
            # a job flooding this client with output does not hold the Pong up
            job = c.run(["sh", "-c", "while :; do echo flood; done"])
            for token in range(1, 6):
                self.assertEqual(c.ping(token=token, timeout=scaled(5)).token, token)
            self.assertNotIn("exited", [ev.WhichOneof("kind") for ev in c.pending_events])
            c.signal(job, signal.SIGKILL)
            kinds = [ev.WhichOneof("kind") for ev in c.events(job, timeout=scaled(10))]
            self.assertEqual(kinds[-1], "exited")
        self.assertDaemonServes()


if __name__ == "__main__":
    unittest.main()
