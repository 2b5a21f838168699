# SPDX-License-Identifier: BSD-2-Clause
"""What Exited says about a job's resources is the job's own, compared with
what an independent tool measures of the same program: max RSS against
GNU time's, whatever the daemon itself has used (a job once reported the
daemon's own peak: 5.7 MiB for /bin/true, 39 MiB after the daemon had
buffered output for a slow client)."""
import socket
import subprocess
import sys
import time
import unittest

from harness import Daemon, DaemonTestCase, alive, not_under_valgrind

ALLOC = [sys.executable, "-c", "b = bytearray(60 << 20); b[::4096] = b'x' * len(b[::4096])"]


def gnu_time_max_rss_kb(argv):
    """Max RSS (KiB) of argv as /usr/bin/time measures it (fork + exec from
    a small process)."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, capture_output=True, text=True,
                       timeout=60)
    return int(p.stderr.strip().splitlines()[-1])


@not_under_valgrind("valgrind cannot emulate the spawner helper: jobs start in-process there")
class MaxRssTest(DaemonTestCase):
    def max_rss(self, argv):
        with self.d.client() as c:
            _, _, ev = c.run_and_wait(argv, timeout=60)
        self.assertEqual(ev.exited.exit_code, 0)
        return ev.exited.max_rss_kb

    def assertNear(self, ours, theirs, what):
        # same program, different parent: within 1 MiB plus 20 %
        self.assertLess(abs(ours - theirs), 1024 + theirs // 5,
                        "%s: Exited.max_rss_kb %d, /usr/bin/time %d" % (what, ours, theirs))

    def test_small_program(self):
        self.assertNear(self.max_rss(["/bin/true"]), gnu_time_max_rss_kb(["/bin/true"]),
                        "/bin/true")

    def test_program_that_allocates(self):
        ours = self.max_rss(ALLOC)
        self.assertGreater(ours, 60 * 1024)
        self.assertNear(ours, gnu_time_max_rss_kb(ALLOC), "60 MiB allocation")

    def test_daemon_peak_does_not_leak_into_jobs(self):
        """The daemon buffers ~24 MiB for a client that does not read; the
        next job's max RSS is still its own."""
        small_before = self.max_rss(["/bin/true"])
        c = self.d.client()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        job = c.run(["head", "-c", str(24 << 20), "/dev/zero"])
        with self.d.client() as s:
            deadline = time.monotonic() + 30
            while s.stats().rss_kb < 20 * 1024 and time.monotonic() < deadline:
                time.sleep(0.05)
            peak = s.stats().rss_kb
        self.assertGreater(peak, 20 * 1024, "the daemon never buffered the output")
        small_after = self.max_rss(["/bin/true"])
        c.close()
        self.assertLess(small_after, small_before + 1024,
                        "daemon RSS %d KiB leaked into the job's accounting" % peak)
        del job


@not_under_valgrind("valgrind cannot emulate the spawner helper")
class HelperShutdownTest(unittest.TestCase):
    def test_clean_stop_with_leftovers(self):
        """A daemon stopped with jobs and their orphans still running kills
        them, and the helper ends quietly (it was once killed as a stray,
        logging a warning at every stop)."""
        d = Daemon()
        try:
            with d.client() as c:
                job = c.run(["sh", "-c", "sleep 60 & sleep 60 & exit 0"])
                for _ in c.events(job, timeout=10):
                    pass
                helper = c.stats().spawner_pid
                self.assertNotEqual(helper, 0)
            self.assertEqual(d.stop(), 0)
            at_stop = d.log().split("shutting down", 1)[-1]
            self.assertEqual([l for l in at_stop.splitlines() if "warning" in l], [])
            self.assertFalse(alive(helper))
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
