# SPDX-License-Identifier: BSD-2-Clause
"""Process I/O, end to end: output streams intact and in order to every
attached client (checksummed through a slow reader), stdin round trips,
attach/detach with the bounded backlog, output files, and backpressure: a
stalled client never delays the job or other clients and is told exactly
how many bytes it missed.
"""
import hashlib
import os
import socket
import tempfile
import time
import unittest

from harness import Daemon, DaemonTestCase, pb, scaled


def collect(c, job, timeout=60, slow=0.0):
    """Reads a job's events to the end; returns (streams, events)."""
    data = {0: bytearray(), 1: bytearray()}
    offsets = {0: 0, 1: 0}
    events = []
    for ev in c.events(job, timeout=timeout):
        events.append(ev)
        if ev.HasField("output"):
            o = ev.output
            assert o.offset == offsets[o.stream], (o.offset, offsets[o.stream])
            data[o.stream] += o.data
            offsets[o.stream] += len(o.data)
            if slow:
                time.sleep(slow)
    return data, events


class OutputTest(DaemonTestCase):
    def test_big_output_through_slow_reader(self):
        # 24 MiB of random bytes, read by a client that pauses between
        # events: everything arrives, in order, bit for bit.
        with tempfile.NamedTemporaryFile(dir="/tmp") as f:
            blob = os.urandom(24 << 20)
            f.write(blob)
            f.flush()
            with self.d.client(timeout=60) as c:
                job = c.run(["cat", f.name])
                time.sleep(0.5)  # let the daemon queue a lot for us first
                data, events = collect(c, job, slow=0.0005)
        self.assertEqual(hashlib.sha256(data[0]).hexdigest(), hashlib.sha256(blob).hexdigest())
        self.assertEqual(events[-1].exited.exit_code, 0)
        self.assertFalse([e for e in events if e.HasField("output_dropped")])

    def test_stdout_stderr_interleaving_kept(self):
        script = "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; sleep 0.01; done"
        with self.d.client() as c:
            job = c.run(["sh", "-c", script])
            seq = [(e.output.stream, e.output.data) for e in c.events(job, timeout=10)
                   if e.HasField("output")]
        self.assertEqual(b"".join(d for s, d in seq if s == 0), b"out1\nout2\nout3\nout4\nout5\n")
        self.assertEqual(b"".join(d for s, d in seq if s == 1), b"err1\nerr2\nerr3\nerr4\nerr5\n")
        order = [d.strip() for s, d in seq]
        self.assertLess(order.index(b"out1"), order.index(b"err1"))
        self.assertLess(order.index(b"err1"), order.index(b"out2"))

    def test_stdin_round_trip(self):
        blob = os.urandom(1 << 20)
        with self.d.client(timeout=30) as c:
            job = c.run(["sha256sum"], stdin_pipe=True)
            ids = []
            for i in range(0, len(blob), 32768):
                ids.append(c.request_nowait(write_stdin=pb.WriteStdin(
                    job=job, data=blob[i:i + 32768], eof=i + 32768 >= len(blob))))
                if len(ids) >= 4:  # keep 4 in flight, as ctl does
                    c.wait_reply(ids.pop(0))
            for rid in ids:
                c.wait_reply(rid)
            data, events = collect(c, job)
        self.assertEqual(data[0].split()[0].decode(), hashlib.sha256(blob).hexdigest())
        self.assertEqual(events[-1].exited.exit_code, 0)

    def test_stdin_errors(self):
        with self.d.client() as c:
            job = c.run(["sleep", "0.2"])  # no stdin pipe
            with self.assertRaises(Exception) as cm:
                c.request(write_stdin=pb.WriteStdin(job=job, data=b"x"))
            self.assertIn("stdin", str(cm.exception))
            job = c.run(["true"], stdin_pipe=True)
            collect(c, job)
            with self.assertRaises(Exception) as cm:
                c.request(write_stdin=pb.WriteStdin(job=job, data=b"x"))
            self.assertIn("exited", str(cm.exception))

    def test_output_to_file_appends(self):
        with tempfile.TemporaryDirectory() as d, self.d.client() as c:
            path = os.path.join(d, "out.log")
            for word in ("first", "second"):
                data, events = collect(c, c.run(["echo", word], stdout_path=path))
                self.assertEqual(data[0], b"")  # went to the file, not the stream
            with open(path) as f:
                self.assertEqual(f.read(), "first\nsecond\n")


class AttachTest(DaemonTestCase):
    def test_attach_mid_run_gets_backlog_then_live(self):
        script = "i=0; while [ $i -lt 30 ]; do echo line$i; i=$((i+1)); sleep 0.02; done"
        with self.d.client() as owner:
            job = owner.run(["sh", "-c", script], detach=True)
            time.sleep(0.25)
            with self.d.client() as late:
                r = late.request(attach=pb.Attach(job=job))
                self.assertEqual(r.attach.state, pb.JOB_RUNNING)
                data, events = collect(late, job)
        want = "".join("line%d\n" % i for i in range(30)).encode()
        self.assertEqual(bytes(data[0]), want)
        self.assertEqual(events[-1].exited.exit_code, 0)

    def test_detach_then_reattach(self):
        script = "echo a; sleep 0.3; echo b; sleep 0.3; echo c"
        with self.d.client() as c:
            job = c.run(["sh", "-c", script])
            ev = c.next_event(timeout=5)
            self.assertTrue(ev.HasField("launched"))
            c.request(detach=pb.Detach(job=job))
        time.sleep(0.4)  # the job goes on without any client
        with self.d.client() as c:
            c.request(attach=pb.Attach(job=job))
            data, events = collect(c, job)
        self.assertEqual(bytes(data[0]), b"a\nb\nc\n")

    def test_backlog_is_bounded_and_says_so(self):
        # 200 KiB quickly, then wait: an attach gets an OutputDropped{BACKLOG}
        # for what is older than the 64 KiB backlog, then the rest.
        with self.d.client() as c:
            job = c.run(["sh", "-c", "head -c 204800 /dev/zero | tr '\\0' x; sleep %g"
                         % scaled(0.5)], detach=True)
            time.sleep(scaled(0.3))
            with self.d.client() as late:
                late.request(attach=pb.Attach(job=job))
                first = late.next_event(timeout=5)
                self.assertTrue(first.HasField("output_dropped"), first)
                self.assertEqual(first.output_dropped.reason, pb.DROP_BACKLOG)
                dropped = first.output_dropped.bytes
                data = bytearray()
                for ev in late.events(job, timeout=10):
                    if ev.HasField("output"):
                        if not data:
                            self.assertEqual(ev.output.offset, dropped)
                        data += ev.output.data
        self.assertEqual(dropped + len(data), 204800)
        self.assertLessEqual(len(data), 64 * 1024 + 32 * 1024)

    def test_attach_finished_job_replays_exit(self):
        with self.d.client() as c:
            job = c.run(["sh", "-c", "echo bye; exit 4"], detach=True)
        time.sleep(0.3)
        with self.d.client() as c:
            r = c.request(attach=pb.Attach(job=job))
            self.assertEqual(r.attach.state, pb.JOB_EXITED)
            data, events = collect(c, job)
        self.assertEqual(bytes(data[0]), b"bye\n")
        self.assertEqual(events[-1].exited.exit_code, 4)

    def test_wait_without_output(self):
        with self.d.client() as c:
            job = c.run(["sh", "-c", "echo noise; sleep 0.2; exit 6"], detach=True)
            c.request(attach=pb.Attach(job=job, no_output=True))
            events = list(c.events(job, timeout=5))
        self.assertEqual([e.WhichOneof("kind") for e in events], ["exited"])
        self.assertEqual(events[0].exited.exit_code, 6)


class BackpressureTest(unittest.TestCase):
    def test_stalled_client_does_not_delay_others(self):
        total = 20 << 20
        with Daemon("--client-queue", "1M") as d:
            stalled = d.client(timeout=60)
            # a raw socket would also do; this client simply stops reading
            job = stalled.run(["sh", "-c", "head -c %d /dev/zero" % total])
            t0 = time.monotonic()
            with d.client() as other:
                for i in range(20):
                    out, _, ev = other.run_and_wait(["echo", str(i)], timeout=5)
                    self.assertEqual(out, b"%d\n" % i)
                # the job itself was never blocked by the stalled client
                ex = [j for j in other.list() if j.job == job][0]
                deadline = time.monotonic() + 10
                while ex.state == pb.JOB_RUNNING and time.monotonic() < deadline:
                    time.sleep(0.05)
                    ex = [j for j in other.list() if j.job == job][0]
                self.assertEqual(ex.state, pb.JOB_EXITED)
                self.assertEqual(ex.exit_code, 0)
            self.assertLess(time.monotonic() - t0, 10)
            # now the stalled client reads: data + dropped == everything
            got, dropped = 0, 0
            for ev in stalled.events(job, timeout=30):
                if ev.HasField("output"):
                    got += len(ev.output.data)
                elif ev.HasField("output_dropped"):
                    self.assertEqual(ev.output_dropped.reason, pb.DROP_SLOW_CLIENT)
                    dropped += ev.output_dropped.bytes
                elif ev.HasField("exited"):
                    self.assertEqual(ev.exited.exit_code, 0)
            self.assertGreater(dropped, 0)
            self.assertEqual(got + dropped, total)
            with d.client() as c:
                self.assertGreaterEqual(c.stats().output_dropped_bytes, dropped)
            stalled.close()

    def test_vanished_client_never_sigpipes_the_job(self):
        with Daemon() as d:
            c = d.client()
            job = c.run(["sh", "-c", "head -c 30000000 /dev/zero; echo done >&2"])
            c.next_event(timeout=5)
            c.sock.shutdown(socket.SHUT_RDWR)
            c.close()
            with d.client() as w:
                w.request(attach=pb.Attach(job=job, no_output=True))
                ev = [e for e in w.events(job, timeout=30)][-1]
            self.assertEqual(ev.exited.signal, 0)
            self.assertEqual(ev.exited.exit_code, 0)

    def test_kill_on_disconnect(self):
        with Daemon() as d:
            c = d.client()
            job = c.run(["sleep", "100"], kill_on_disconnect=True)
            c.close()
            with d.client() as w:
                w.request(attach=pb.Attach(job=job, no_output=True))
                ev = list(w.events(job, timeout=10))[-1]
            self.assertEqual(ev.exited.signal, 9)


if __name__ == "__main__":
    unittest.main()
