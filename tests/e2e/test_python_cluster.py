# SPDX-License-Identifier: BSD-2-Clause
"""The Python package ctld against several real daemons on loopback:
ctld.Cluster runs a command on every node with one result per node (exit
code, signal, stdout, stderr, the daemon's timings); a node that cannot be
reached, cannot execute or falls silent is a result with its reason while
the others complete; leaving `async with` (and ctld.Client's `with`) kills
what was started; attach, readiness, port and file watches across nodes;
the pytest fixture; the worked example in examples/.

These exercise the client side: the daemon's protocol is unchanged, so they
pass against an older daemon too.
"""
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import unittest

from harness import (CTLD, MODE, PY, ROOT, Daemon, DaemonsTestCase, free_port,
                     make_certs, scaled)

import ctld
from ctld_client import pb

NODES = 3
# Listens on the port given as argv[1] after a short pause, then waits.
LISTENER = ("import socket, sys, time\ntime.sleep(0.2)\ns = socket.socket()\n"
            "s.bind(('127.0.0.1', int(sys.argv[1])))\ns.listen()\ntime.sleep(60)\n")


def run_async(coro, timeout=30):
    """Runs a coroutine with a generous liveness bound."""
    return asyncio.run(asyncio.wait_for(coro, scaled(timeout)))


class ClusterTestCase(DaemonsTestCase):
    """NODES daemons for the class (self.nodes: their addresses)."""
    daemon_count = NODES

    def cluster(self, hosts=None, **kw):
        kw.setdefault("connect_timeout", scaled(5))
        return ctld.Cluster(self.nodes if hosts is None else hosts, **kw)

    def final_state(self, d, job):
        """How a job ended on daemon d, by a client of its own (attaching
        to a finished job replays its Exited)."""
        with d.client() as c:
            return c.wait(job, timeout=scaled(10))

    # ------------------------------------------------------------ run
    def test_run_on_every_node(self):
        async def go():
            async with self.cluster() as c:
                return await c.run(["sh", "-c", "echo out-$0; echo err >&2; exit 7", "x"],
                                   timeout=scaled(20))
        results = run_async(go())
        self.assertEqual([r.host for r in results], self.nodes)
        for r in results:
            self.assertIsNone(r.error, r)
            self.assertEqual((r.exit_code, r.signal, r.status), (7, 0, 7))
            self.assertEqual((r.stdout, r.stderr), (b"out-x\n", b"err\n"))
            self.assertFalse(r.ok)
            t = r.timings
            self.assertTrue(0 <= t.launched <= t.exited, t)
            self.assertGreater(t.wall, 0)
            self.assertIsNotNone(r.terminal.exited.pid)

    def test_node_set_string(self):
        """A ClusterShell node set names the nodes; it folds and expands."""
        ports = sorted(d.tcp_port for d in self.daemons)
        c = self.cluster("127.0.0.1:[%s]" % ",".join(map(str, ports)))
        self.assertEqual(c.hosts, ["127.0.0.1:%d" % p for p in ports])

    def test_unix_socket_hosts(self):
        hosts = ["unix:" + d.socket for d in self.daemons]

        async def go():
            async with self.cluster(hosts) as c:
                return await c.run(["echo", "local"])
        results = run_async(go())
        self.assertEqual([r.host for r in results], hosts)
        self.assertEqual([(r.ok, r.stdout) for r in results], [(True, b"local\n")] * NODES)

    def test_signal_and_timeout(self):
        async def go():
            async with self.cluster() as c:
                killed = await c.run(["sh", "-c", "kill -USR1 $$"])
                slow = await c.run(["sleep", "60"], timeout=0.3)
                return killed, slow
        killed, slow = run_async(go())
        for r in killed:
            self.assertEqual((r.exit_code, r.signal, r.status), (None, signal.SIGUSR1,
                                                                 128 + signal.SIGUSR1))
            self.assertIsNone(r.error)
        for r in slow:
            self.assertTrue(r.timed_out, r)
            self.assertEqual((r.signal, r.error), (signal.SIGKILL, "timed out"))

    def test_failed_nodes_reported_while_others_complete(self):
        """An unreachable node and one that falls silent mid-run are results
        with their reason; the other nodes' commands complete."""
        dead = "127.0.0.1:%d" % free_port()  # nothing listens there
        with Daemon() as frozen:
            async def go():
                hosts = self.nodes + [dead, frozen.tcp]
                async with self.cluster(hosts, liveness=scaled(2)) as c:
                    os.kill(frozen.pid, signal.SIGSTOP)
                    try:
                        return await c.run(["sh", "-c", "sleep 0.5; echo done"])
                    finally:
                        os.kill(frozen.pid, signal.SIGCONT)
            results = run_async(go())
        by_host = {r.host: r for r in results}
        for h in self.nodes:
            self.assertTrue(by_host[h].ok, by_host[h])
            self.assertEqual(by_host[h].stdout, b"done\n")
        self.assertEqual(by_host[dead].error, "connect: Connection refused")
        self.assertIsNone(by_host[dead].exit_code)
        self.assertIn("no answer for", by_host[frozen.tcp].error)
        self.assertIn("(liveness)", by_host[frozen.tcp].error)

    def test_cannot_execute(self):
        async def go():
            async with self.cluster() as c:
                return await c.run(["/nonexistent/program"])
        for r in run_async(go()):
            self.assertTrue(r.error.startswith("cannot execute: "), r.error)
            self.assertIn("No such file", r.error)
            self.assertIsNone(r.exit_code)

    def test_mutual_tls(self):
        """A TLS daemon serves a cluster with the right client certificate;
        with another CA's, that node fails with the handshake's reason."""
        tmp = tempfile.mkdtemp(prefix="ctld-tls-")
        try:
            certs, other = os.path.join(tmp, "certs"), os.path.join(tmp, "other")
            make_certs(certs)
            make_certs(other)

            def tls(where):
                return tuple(os.path.join(where, f) for f in ("client.pem", "client.key",
                                                              "ca.pem"))
            with Daemon("--tls-cert", os.path.join(certs, "server.pem"), "--tls-key",
                        os.path.join(certs, "server.key"), "--tls-ca",
                        os.path.join(certs, "ca.pem")) as d:
                async def go(where):
                    async with self.cluster([d.tcp], tls=tls(where)) as c:
                        return await c.run(["echo", "secret"])
                [good] = run_async(go(certs))
                [bad] = run_async(go(other))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertTrue(good.ok, good)
        self.assertEqual(good.stdout, b"secret\n")
        self.assertIsNone(bad.exit_code)
        self.assertTrue(bad.error.startswith("TLS: ") and "certificate" in bad.error, bad.error)

    # ------------------------------------------------------------ cleanup
    def test_context_exit_kills_what_it_started(self):
        async def go():
            async with self.cluster() as c:
                return await c.start(["sleep", "60"])
        jobs = run_async(go())
        for d, j in zip(self.daemons, jobs):
            self.assertIsNone(j.error)
            ev = self.final_state(d, j.job)
            self.assertEqual(ev.exited.signal, signal.SIGKILL, ev)

    def test_keep_jobs_leaves_them_running(self):
        async def go():
            async with self.cluster(keep_jobs=True) as c:
                return await c.start(["sleep", "60"], nodes=self.nodes[:1])
        [job] = run_async(go())
        with self.daemons[0].client() as c:
            [info] = [j for j in c.list() if j.job == job.job]
            self.assertEqual(info.state, pb.JOB_RUNNING)
            c.kill(job.job, sig=9)

    def test_sync_client_kills_what_it_started(self):
        d = self.daemons[0]
        with ctld.Client(unix=d.socket, timeout=scaled(10)) as c:
            job = c.run(["sleep", "60"])
            done = c.run(["true"])
            self.assertEqual(c.wait(done).exited.exit_code, 0)
        self.assertEqual(self.final_state(d, job).exited.signal, signal.SIGKILL)

    def test_explicit_kill_with_grace(self):
        async def go():
            async with self.cluster() as c:
                # ready once the trap is set: a TERM before it would end sh
                jobs = await c.start(["sh", "-c", "trap '' TERM; echo trapped; sleep 60"],
                                     ready=ctld.log_ready("trapped"), ready_timeout=scaled(10))
                self.assertEqual(await c.kill(jobs, signal=15, grace=0.2), {})
                return await c.wait(jobs)
        for r in run_async(go()):
            self.assertEqual(r.signal, signal.SIGKILL)
            self.assertTrue(r.terminal.exited.escalated)

    # ------------------------------------------------------------ attach, ready, watch
    def test_attach_to_a_job_started_elsewhere(self):
        d = self.daemons[1]
        with d.client() as other:
            job = other.run(["sh", "-c", "echo one; sleep 0.3; echo two"], detach=True)

        async def go():
            async with self.cluster() as c:
                j = await c.attach(d.tcp, job)
                seen = [ev.WhichOneof("kind") async for _, ev in c.events([j])]
                missing = await c.attach(d.tcp, 999999)
                return j, seen, missing
        j, seen, missing = run_async(go())
        self.assertIsNone(j.error)
        self.assertEqual(j.result.stdout, b"one\ntwo\n")
        self.assertEqual((j.result.exit_code, seen[-1]), (0, "exited"))
        self.assertTrue(missing.error.startswith("NOT_FOUND"), missing.error)

    def test_ready_and_not_ready(self):
        port = free_port()

        async def go():
            async with self.cluster() as c:
                [srv] = await c.start([PY, "-c", LISTENER, str(port)],
                                      ready=ctld.port_ready(port), ready_timeout=scaled(10),
                                      nodes=self.nodes[:1])
                never = await c.start(["sleep", "60"], ready=ctld.log_ready("never"),
                                      ready_timeout=0.3)
                await c.wait(never)
                return srv, never
        srv, never = run_async(go())
        self.assertIsNone(srv.error)
        self.assertEqual(srv.ready.WhichOneof("kind"), "ready")
        self.assertGreater(srv.result.timings.time_to_ready, 0)
        for j in never:
            self.assertEqual(j.ready.WhichOneof("kind"), "not_ready")
            self.assertTrue(j.error.startswith("not ready: "), j.error)
            self.assertIsNotNone(j.result.terminal)  # the daemon killed it

    def test_watch_port_and_file(self):
        port, idle = free_port(), free_port()
        tmp = tempfile.mkdtemp(prefix="ctld-watch-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "out")

        async def go():
            async with self.cluster() as c:
                listening = asyncio.ensure_future(c.watch_port(port, timeout=scaled(10)))
                grown = asyncio.ensure_future(c.watch_file(path, size=10, timeout=scaled(10)))
                await c.start([PY, "-c", LISTENER, str(port)], nodes=self.nodes[:1])
                await c.run(["sh", "-c", "sleep 0.2; printf 0123456789AB > " + path],
                            nodes=self.nodes[:1])
                quiet = await c.watch_port(idle, timeout=0.3)
                return await listening, await grown, quiet
        listening, grown, quiet = run_async(go())
        for w in listening:  # one kernel: every node's daemon sees the listener
            self.assertIsNone(w.error)
            self.assertEqual((w.event.port_listening.port, w.event.port_listening.addr),
                             (port, "127.0.0.1"))
        for w in grown:
            self.assertEqual(w.event.file_event.kind, pb.FILE_SIZE_REACHED, w)
            self.assertGreaterEqual(w.event.file_event.size, 10)
        for w in quiet:
            self.assertEqual(w.event.WhichOneof("kind"), "watch_timeout")

    # ------------------------------------------------------------ fixture, example
    def test_put_and_get_on_every_node(self):
        """Cluster.put sends a file to every node (%h: the node's name), get
        fetches it into localdir/<node>/; an unreachable node is named."""
        dead = "127.0.0.1:%d" % free_port()
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "data.bin")
            with open(src, "wb") as f:
                f.write(os.urandom(300000))
            os.chmod(src, 0o640)
            remote_dir = os.path.join(d, "remote")
            os.mkdir(remote_dir)
            remote = os.path.join(remote_dir, "%h.bin")

            async def go():
                async with self.cluster(self.nodes + [dead]) as c:
                    put_failed = await c.put(src, remote)
                    got, get_failed = await c.get(remote, os.path.join(d, "back"))
                    return put_failed, got, get_failed
            put_failed, got, get_failed = run_async(go())
            self.assertEqual(set(put_failed), {dead})
            self.assertIn("refused", put_failed[dead])
            self.assertEqual(set(get_failed), {dead})
            with open(src, "rb") as f:
                want = f.read()
            for node in self.nodes:
                placed = remote.replace("%h", node)
                self.assertEqual(os.stat(placed).st_mode & 0o777, 0o640)
                [path] = got[node]
                self.assertEqual(path, os.path.join(d, "back", node, node + ".bin"))
                with open(path, "rb") as f:
                    self.assertEqual(f.read(), want)

    def test_pytest_fixture(self):
        tmp = tempfile.mkdtemp(prefix="ctld-pytest-")
        self.addCleanup(shutil.rmtree, tmp, True)
        with open(os.path.join(tmp, "test_fixture.py"), "w") as f:
            f.write(textwrap.dedent("""\
                import ctld
                def test_echo(ctld_daemon):
                    with ctld.Client(unix=ctld_daemon.socket) as c:
                        out, _, ev = c.run_and_wait(["echo", "hi"])
                    assert out == b"hi\\n" and ev.exited.exit_code == 0
                """))
        args = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "ctld.pytest_plugin",
                "--ctld-daemon", CTLD] + (["--ctld-no-bpf"] if MODE == "nobpf" else [])
        p = subprocess.run(args + ["test_fixture.py"], cwd=tmp, capture_output=True, text=True,
                           timeout=scaled(120), env=self.python_env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 passed", p.stdout)

    def test_worked_example(self):
        p = subprocess.run([PY, os.path.join(ROOT, "examples", "experiment.py"), "--hosts",
                            ",".join(self.nodes), "--port", str(free_port()),
                            "--requests", "2000"],
                           capture_output=True, text=True, timeout=scaled(120),
                           env=self.python_env())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # the node set's first node serves (a node set sorts), the others load it
        server = ctld.aio.node_list(",".join(self.nodes))[0]
        self.assertIn(server + ": redis-server ready", p.stdout)
        for h in set(self.nodes) - {server}:
            self.assertRegex(p.stdout, r"%s: GET \d+/s, SET \d+/s" % h)

    @staticmethod
    def python_env():
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        return env


if __name__ == "__main__":
    unittest.main()
