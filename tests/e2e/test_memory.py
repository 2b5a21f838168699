# SPDX-License-Identifier: BSD-2-Clause
"""The daemon's memory under clients that do not read (docs/design.md,
"Memory under stalled clients").

Six clients with tiny receive buffers each run a job that writes 300 MB and
read nothing while it does. Each client's queue is bounded on its own
(--client-queue, 32 MiB), and their sum by the output budget
(--output-budget, 64 MiB): the daemon stays below 100 MiB (a daemon without
a budget reached ~200 MiB), a well-behaved client is served meanwhile, and
afterwards every stalled client is told exactly what it lost: bytes received
plus bytes reported dropped is what its job wrote. Once they have read
everything the daemon gives the memory back (an untrimmed heap kept 41 MiB).
"""
import socket
import time
import unittest

from harness import (DaemonTestCase, not_under_sanitizers, not_under_valgrind, pb, scaled,
                     status_kib)

MIB = 1 << 20


def rss_kb(pid):
    return status_kib(pid, "VmRSS")


@not_under_valgrind("1.8 GB through the daemon, and RSS would be valgrind's")
@not_under_sanitizers("RSS would be ASan's (quarantine, shadow), not malloc's")
class StalledClientsTest(DaemonTestCase):
    JOBS = 6
    SIZE = 300 * 1000 * 1000
    PEAK_LIMIT_KB = 100 * 1024    # the 64 MiB budget plus a fixed slack
    AFTER_SLACK_KB = 16 * 1024    # back near the baseline once all is read

    def stalled_client(self):
        c = self.d.client()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return c

    def serve_meanwhile(self, jobs):
        """A reading client runs commands with some output until every job
        has ended, and gets all of it (it holds little, so the budget does
        not cut it); returns the daemon's highest RSS seen meanwhile (KiB)."""
        peak, runs = 0, 0
        deadline = time.monotonic() + scaled(90)
        with self.d.client() as b:
            while True:
                peak = max(peak, rss_kb(self.d.pid))
                out, _, ev = b.run_and_wait(
                    ["sh", "-c", "echo served-%d; head -c 500000 /dev/zero" % runs],
                    timeout=scaled(10))
                self.assertEqual(out, b"served-%d\n" % runs + bytes(500000))
                self.assertEqual(ev.exited.exit_code, 0)
                runs += 1
                running = {j.job for j in b.list(running_only=True)}
                if not running & set(jobs):
                    break
                self.assertLess(time.monotonic(), deadline, "the writers did not finish")
                time.sleep(0.02)
        peak = max(peak, rss_kb(self.d.pid))
        self.assertGreater(runs, 0)
        return peak

    def read_all(self, c, job):
        """Everything the stalled client was sent about its job, up to its
        Exited: (bytes received, bytes reported dropped)."""
        got = dropped = 0
        for ev in c.events(job, timeout=scaled(30)):
            kind = ev.WhichOneof("kind")
            if kind == "output":
                self.assertEqual(ev.output.offset, got + dropped, "a gap not reported first")
                got += len(ev.output.data)
            elif kind == "output_dropped":
                self.assertEqual(ev.output_dropped.reason, pb.DROP_SLOW_CLIENT)
                dropped += ev.output_dropped.bytes
            elif kind == "exited":
                self.assertEqual(ev.exited.exit_code, 0)
        return got, dropped

    def test_stalled_clients_stay_within_the_budget(self):
        baseline = rss_kb(self.d.pid)
        clients = [self.stalled_client() for _ in range(self.JOBS)]
        try:
            jobs = [c.run(["head", "-c", str(self.SIZE), "/dev/zero"]) for c in clients]
            peak = self.serve_meanwhile(jobs)
            self.assertLess(peak, self.PEAK_LIMIT_KB,
                            "daemon RSS %d KiB while %d clients stalled (baseline %d KiB)"
                            % (peak, self.JOBS, baseline))
            with self.d.client() as s:
                st = s.stats()
            self.assertEqual(st.output_budget, 64 * MIB)
            self.assertLessEqual(st.output_held_peak, st.output_budget + self.JOBS * MIB)
            self.assertGreater(st.output_budget_dropped_bytes, 0, "the budget never said no")
            for c, job in zip(clients, jobs):
                got, dropped = self.read_all(c, job)
                self.assertEqual(got + dropped, self.SIZE,
                                 "job %d: %d received + %d reported dropped" % (job, got, dropped))
                self.assertGreater(dropped, 0)
        finally:
            for c in clients:
                c.close()

        # the heap is trimmed from a timer, at most once a second
        deadline = time.monotonic() + scaled(5)
        while True:
            with self.d.client() as s:
                held = s.stats().output_held
            after = rss_kb(self.d.pid)
            if held < MIB and after < baseline + self.AFTER_SLACK_KB:
                break
            self.assertLess(time.monotonic(), deadline,
                            "daemon RSS %d KiB after the burst (baseline %d KiB), %d bytes "
                            "of output still held" % (after, baseline, held))
            time.sleep(0.1)
        with self.d.client() as s:
            self.assertGreaterEqual(s.stats().heap_trims, 1)
        self.assertDaemonServes()


if __name__ == "__main__":
    unittest.main()
