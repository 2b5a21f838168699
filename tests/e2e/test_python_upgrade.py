# SPDX-License-Identifier: BSD-2-Clause
"""The Python ctld.Cluster follows a daemon's upgrade in place (SIGUSR2), as
ctl does: told Upgrading, it connects again when the connection closes,
attaches to its jobs again and drops the output it has (by Output.offset).

What the user checks: Cluster.run of a job writing numbered lines before and
after an upgrade gives each line once, in order, and the job's own exit
code; of two nodes only one upgraded, both results are whole; events()
streams across an upgrade with contiguous offsets; a node that says
Upgrading and does not come back is a clear error within the bound; a crash
(no Upgrading) stays the error it was, with no reconnect; the synchronous
ctld.Client says the daemon is upgrading. Before this, Cluster.wait() ended
with "...it is upgrading in place" and no exit status."""
import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from google.protobuf.internal.decoder import _DecodeVarint

from harness import CTL, Daemon, make_certs, not_under_valgrind, scaled, wait_for
from test_upgrade import VALGRIND_WHY

import ctld
from ctld.aio import MAX_UPGRADES, UPGRADE_BOUND, Job, unseen
from ctld.proto import frame, pb

LINES = 10


def numbered(tag, first, last):
    return "".join("%s %d\n" % (tag, i) for i in range(first, last))


def script(marks):
    """Writes lines 0..LINES-1 (stdout and stderr), says so (marks/started),
    waits (bounded) for marks/go, writes lines LINES..2*LINES-1, exits 7."""
    return ("i=0; while [ $i -lt %(n)d ]; do echo line $i; echo err $i >&2; i=$((i+1)); done; "
            "touch %(m)s/started; t=0; while [ ! -e %(m)s/go ] && [ $t -lt 1500 ]; do "
            "sleep 0.02; t=$((t+1)); done; "
            "while [ $i -lt %(n2)d ]; do echo line $i; echo err $i >&2; i=$((i+1)); done; exit 7"
            % dict(n=LINES, n2=2 * LINES, m=marks))


def run_async(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, scaled(timeout)))


@not_under_valgrind(VALGRIND_WHY)
class ClusterUpgradeTest(unittest.TestCase):

    def setUp(self):
        self.marks = tempfile.mkdtemp(prefix="ctld-pyup-")
        self.addCleanup(shutil.rmtree, self.marks, True)

    def daemon(self):
        d = Daemon()
        self.addCleanup(d.cleanup)
        return d

    def cluster(self, hosts, **kw):
        return ctld.Cluster(hosts, connect_timeout=scaled(5), **kw)

    def upgrade_when_started(self, d, marks):
        """In a thread: once the job wrote its first half, upgrade d, then let
        the job write the rest."""
        def go():
            wait_for(lambda: os.path.exists(os.path.join(marks, "started")),
                     timeout=20, what="the job's first half")
            d.upgrade(timeout=scaled(20))
            open(os.path.join(marks, "go"), "w").close()
        return asyncio.to_thread(go)

    def assertWhole(self, r):
        self.assertIsNone(r.error)
        self.assertEqual(r.stdout.decode(), numbered("line", 0, 2 * LINES))
        self.assertEqual(r.stderr.decode(), numbered("err", 0, 2 * LINES))
        self.assertEqual(r.exit_code, 7)

    def run_across_an_upgrade(self, d, host, **kw):
        async def go():
            async with self.cluster([host], **kw) as c:
                upgraded = asyncio.ensure_future(self.upgrade_when_started(d, self.marks))
                [r] = await c.run(["sh", "-c", script(self.marks)])
                await upgraded
                return r
        self.assertWhole(run_async(go()))
        with d.client() as c:
            self.assertEqual(c.stats().upgrades, 1)

    def test_run_across_an_upgrade(self):
        d = self.daemon()
        self.run_across_an_upgrade(d, d.tcp)

    def test_run_across_an_upgrade_unix(self):
        d = self.daemon()
        self.run_across_an_upgrade(d, "unix:" + d.socket)

    def test_run_across_an_upgrade_tls(self):
        """Connected again with the same client certificate."""
        certs = os.path.join(self.marks, "certs")
        make_certs(certs)
        d = Daemon("--tls-cert", os.path.join(certs, "server.pem"),
                   "--tls-key", os.path.join(certs, "server.key"),
                   "--tls-ca", os.path.join(certs, "ca.pem"))
        self.addCleanup(d.cleanup)
        tls = tuple(os.path.join(certs, f) for f in ("client.pem", "client.key", "ca.pem"))
        self.run_across_an_upgrade(d, d.tcp, tls=tls)

    def test_two_nodes_one_upgraded(self):
        up, steady = self.daemon(), self.daemon()
        steady_marks = os.path.join(self.marks, "steady")
        os.mkdir(steady_marks)

        async def go():
            async with self.cluster([up.tcp, steady.tcp], timeline=True) as c:
                [a] = await c.start(["sh", "-c", script(self.marks)], nodes=[up.tcp])
                [b] = await c.start(["sh", "-c", script(steady_marks)], nodes=[steady.tcp])
                upgraded = asyncio.ensure_future(self.upgrade_when_started(up, self.marks))
                waited = asyncio.ensure_future(c.wait([a, b]))
                await upgraded
                open(os.path.join(steady_marks, "go"), "w").close()
                return await waited, c.timeline()
        (ra, rb), timeline = run_async(go())
        # the timeline follows the new connection: the job's exit is on it
        self.assertIn((up.tcp, "exited", ra.job),
                      [(node, kind, job) for node, kind, job, *_ in timeline.events])
        self.assertWhole(ra)
        self.assertWhole(rb)
        with up.client() as c:
            self.assertEqual(c.stats().upgrades, 1)
        with steady.client() as c:
            self.assertEqual(c.stats().upgrades, 0)

    def test_events_stream_across_an_upgrade(self):
        d = self.daemon()

        async def go():
            async with self.cluster([d.tcp]) as c:
                [job] = await c.start(["sh", "-c", script(self.marks)])
                upgraded = asyncio.ensure_future(self.upgrade_when_started(d, self.marks))
                got = [ev async for _, ev in c.events([job])]
                await upgraded
                return job, got
        job, got = run_async(go())
        self.assertNotIn(None, got, job.result.error)
        ends, out = {}, b""
        for ev in got:
            if ev.HasField("output"):
                o = ev.output
                self.assertEqual(o.offset, ends.get(o.stream, 0), "a gap or a byte twice")
                ends[o.stream] = o.offset + len(o.data)
                out += o.data if o.stream == pb.STDOUT else b""
        self.assertEqual(out.decode(), numbered("line", 0, 2 * LINES))
        self.assertEqual(got[-1].exited.exit_code, 7)
        self.assertWhole(job.result)

    def test_crash_is_no_upgrade(self):
        """kill -9, no Upgrading: the job's state is unknown; no reconnect."""
        d = self.daemon()

        async def go():
            async with self.cluster([d.tcp]) as c:
                [job] = await c.start(["sleep", "60"])
                pid = (await c.conns[d.tcp].request(list=pb.List())).list.jobs[0].pid
                waited = asyncio.ensure_future(c.wait([job]))
                await asyncio.to_thread(d.kill9)
                [r] = await waited
                return pid, r
        pid, r = run_async(go())
        os.kill(pid, 9)  # adopted by nobody: the test's to end
        self.assertIn("closed the connection", r.error or "")
        self.assertIn("state is unknown", r.error)
        self.assertNotIn("upgrad", r.error)


class FakeDaemon:
    """A daemon on a unix socket that answers Hello and Run (job 1,
    Launched; an Attach gets the same), then closes the connection: saying
    Upgrading first or not, and going away (the socket removed) or not.
    Counts connections."""

    def __init__(self, path, upgrading, go_away):
        self.path, self.upgrading, self.go_away = path, upgrading, go_away
        self.accepted = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.listener.bind(path)
        self.listener.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() would not
        except OSError:
            pass  # gone away already
        self.listener.close()
        self.thread.join(scaled(10))
        if self.thread.is_alive():
            raise AssertionError("the fake daemon's thread did not end")

    def _serve(self):
        try:
            while True:
                conn, _ = self.listener.accept()
                self.accepted += 1
                with conn:
                    self._session(conn)
                if self.go_away:
                    os.unlink(self.path)
                    self.listener.close()
                    return
        except OSError:
            return  # closed by close()

    def _session(self, conn):
        conn.settimeout(scaled(10))
        buf = b""
        for _ in range(2):  # Hello, then Run
            req, buf = self._request(conn, buf)
            if req is None:
                return
            if req.HasField("hello"):
                reply = pb.Reply(id=req.id, hello=pb.HelloReply(protocol_version=1))
                conn.sendall(frame(pb.Message(reply=reply)))
            else:
                conn.sendall(frame(pb.Message(reply=pb.Reply(id=req.id, run=pb.RunReply(job=1)))))
                conn.sendall(frame(pb.Message(event=pb.Event(launched=pb.Launched(job=1)))))
        if self.upgrading:
            conn.sendall(frame(pb.Message(event=pb.Event(upgrading=pb.Upgrading(pid=1)))))

    @staticmethod
    def _request(conn, buf):
        while True:
            if buf:
                length, pos = _DecodeVarint(buf, 0)
                if len(buf) >= pos + length:
                    return pb.Request.FromString(buf[pos:pos + length]), buf[pos + length:]
            data = conn.recv(1 << 16)
            if not data:
                return None, buf
            buf += data


class NodeGoneTest(unittest.TestCase):
    """Against a fake daemon: what is lost is said, within the bound."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ctld-pyup-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "fake.sock")

    def wait_on_fake(self, upgrading, go_away, connect_timeout):
        fake = FakeDaemon(self.path, upgrading, go_away)
        self.addCleanup(fake.close)
        host = "unix:" + self.path

        async def go():
            async with ctld.Cluster([host], connect_timeout=connect_timeout,
                                    keep_jobs=True) as c:
                started = time.monotonic()
                [r] = await c.run(["sleep", "60"])
                return r, time.monotonic() - started
        r, took = run_async(go())
        return host, fake, r, took

    def test_upgrading_then_gone_is_a_clear_error(self):
        bound = UPGRADE_BOUND * scaled(1)
        host, fake, r, took = self.wait_on_fake(True, True, scaled(1))
        self.assertIn(host, r.error or "")
        self.assertIn("upgrade did not complete", r.error)
        self.assertIsNone(r.exit_code)
        self.assertLess(took, bound + scaled(10), "the reconnect must be bounded")

    def test_upgrading_for_ever_is_followed_a_bounded_number_of_times(self):
        host, fake, r, _ = self.wait_on_fake(True, False, scaled(5))
        self.assertIn(host, r.error or "")
        self.assertIn("upgraded in place more than %d times" % MAX_UPGRADES, r.error)
        self.assertEqual(fake.accepted, 1 + MAX_UPGRADES)

    def test_closed_without_upgrading_no_reconnect(self):
        _, fake, r, _ = self.wait_on_fake(False, False, scaled(5))
        self.assertIn("closed the connection", r.error or "")
        self.assertNotIn("upgrad", r.error)
        self.assertEqual(fake.accepted, 1, "a crash must not be reconnected to")


class OffsetsTest(unittest.TestCase):
    """unseen(): what attaching again replays is dropped by Output.offset."""

    def test_seen_dropped_partly_seen_cut(self):
        job = Job("n", 1)

        def out(offset, data, stream=pb.STDOUT):
            ev = pb.Event(output=pb.Output(job=1, stream=stream, data=data, offset=offset))
            ev = unseen(job, ev)
            return ev and (ev.output.offset, ev.output.data)
        self.assertEqual(out(0, b"abcd"), (0, b"abcd"))
        self.assertIsNone(out(0, b"abcd"))  # replayed whole
        self.assertIsNone(out(2, b"cd"))
        self.assertEqual(out(2, b"cdef"), (4, b"ef"))  # partly seen: the rest
        self.assertEqual(out(0, b"xy", pb.STDERR), (0, b"xy"))  # streams apart
        self.assertEqual(out(10, b"z"), (10, b"z"))  # after a gap (OutputDropped)


@not_under_valgrind(VALGRIND_WHY)
class SyncClientUpgradeTest(unittest.TestCase):
    """ctld.Client's events() (run_and_wait, wait) follow an upgrade too;
    a client made from a socket cannot connect again and says why."""

    def setUp(self):
        self.marks = tempfile.mkdtemp(prefix="ctld-pyup-")
        self.addCleanup(shutil.rmtree, self.marks, True)
        self.d = Daemon()
        self.addCleanup(self.d.cleanup)

    def in_thread(self, fn):
        t = threading.Thread(target=fn)
        t.start()
        self.addCleanup(t.join, scaled(30))  # before the daemon's cleanup

    def run_and_wait_across_an_upgrade(self, client):
        def go():
            wait_for(lambda: os.path.exists(os.path.join(self.marks, "started")),
                     timeout=20, what="the job's first half")
            self.d.upgrade(timeout=scaled(20))
            open(os.path.join(self.marks, "go"), "w").close()
        with client() as c:
            self.in_thread(go)
            out, err, ev = c.run_and_wait(["sh", "-c", script(self.marks)], timeout=scaled(20))
            self.assertEqual(c.upgrades, 1)
        self.assertEqual(out.decode(), numbered("line", 0, 2 * LINES))
        self.assertEqual(err.decode(), numbered("err", 0, 2 * LINES))
        self.assertEqual(ev.exited.exit_code, 7)

    def test_run_and_wait_across_an_upgrade_unix(self):
        self.run_and_wait_across_an_upgrade(self.d.client)

    def test_run_and_wait_across_an_upgrade_tcp(self):
        self.run_and_wait_across_an_upgrade(self.d.tcp_client)

    def test_attached_without_backlog_stays_without_it(self):
        """Attached without the backlog after the job's first half, then an
        upgrade: ctl attach --no-backlog, ctld.Client.attach(no_backlog=True)
        and Cluster.attach(backlog=False) each give the second half only
        (attaching again after the upgrade replays the backlog: what lies
        before the first attach is skipped by AttachReply's offsets), and
        the job's own exit status. Before: all three also gave the first
        half after the upgrade."""
        second = numbered("line", LINES, 2 * LINES)
        with self.d.client(keep_jobs=True) as c:
            job = c.run(["sh", "-c", script(self.marks)])
        wait_for(lambda: os.path.exists(os.path.join(self.marks, "started")),
                 timeout=20, what="the job's first half")
        ctl = subprocess.Popen([CTL, "-S", self.d.socket, "attach", "--no-backlog", str(job)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: ctl.poll() is None and (ctl.kill(), ctl.wait()))
        sync_out = []

        def sync_attach(c):
            c.attach(job, no_backlog=True)
            attached.set()
            sync_out.extend(ev for ev in c.events(job, timeout=scaled(30)))

        async def go():
            async with ctld.Cluster([self.d.tcp], connect_timeout=scaled(5)) as cl:
                j = await cl.attach(self.d.tcp, job, backlog=False)
                # the Attach replies are in: ctl's by the time it says nothing
                # (it has no output to show), the sync client's by the event
                await asyncio.to_thread(attached.wait, scaled(10))
                await asyncio.to_thread(wait_for, lambda: ctl_attached(), 20, "ctl attached")
                await asyncio.to_thread(self.d.upgrade, scaled(20))
                open(os.path.join(self.marks, "go"), "w").close()
                [r] = await cl.wait([j])
                return r

        def ctl_attached():
            with self.d.client() as q:
                return [i.clients for i in q.list() if i.job == job] == [3]

        attached = threading.Event()
        with self.d.client() as sc:
            t = threading.Thread(target=sync_attach, args=(sc,))
            t.start()
            try:
                r = run_async(go())
            finally:
                t.join(scaled(30))
            self.assertEqual(sc.upgrades, 1)
        out, err = ctl.communicate(timeout=scaled(30))
        self.assertEqual(out.decode(), second, err.decode())
        self.assertEqual(ctl.returncode, 7)
        self.assertEqual(r.stdout.decode(), second)
        self.assertEqual(r.stderr.decode(), numbered("err", LINES, 2 * LINES))
        self.assertEqual(r.exit_code, 7)
        got = b"".join(ev.output.data for ev in sync_out
                       if ev.HasField("output") and ev.output.stream == pb.STDOUT)
        self.assertEqual(got.decode(), second)
        self.assertEqual(sync_out[-1].exited.exit_code, 7)

    def test_given_socket_says_the_daemon_upgrades(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.d.socket)
        with ctld.Client(sock=sock, timeout=scaled(10), keep_jobs=True) as c:
            job = c.run(["sleep", "60"])
            self.in_thread(lambda: self.d.upgrade(timeout=scaled(20)))
            with self.assertRaises(EOFError) as cm:
                list(c.events(job, timeout=scaled(20)))
        self.assertIn("upgrading in place", str(cm.exception))
        wait_for(lambda: os.path.exists(self.d.ready_file), timeout=20,
                 what="the new image's ready file")
        with self.d.client() as c:
            c.signal(job, 9)


if __name__ == "__main__":
    unittest.main()
