# SPDX-License-Identifier: BSD-2-Clause
"""Upgrading in place: SIGUSR2 makes the daemon execute its program file
again in the same process, handing its listening sockets and its jobs (with
their pipes) to the new image.

What the user checks: the job runs on with the same pid and id, every byte
it wrote reaches a client that reconnects and attaches (by Output.offset,
nothing lost, nothing twice), its stdin still works, its exit status is the
real one, a timeout or kill still reaches its whole tree, the addresses
keep working (a client connecting during the upgrade is served by the new
image), the new binary at the daemon's path is what runs, and an upgrade
that cannot happen leaves the daemon serving. Before this, SIGUSR2 killed
the daemon (default action) and its jobs ran on unmanaged."""
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import (BUILD, CTL, Daemon, alive, children, not_under_valgrind, pb, scaled,
                     wait_for)

import ctld

VALGRIND_WHY = "under valgrind the program file is valgrind's own tool"


def stream_until_upgrade(c, job, out):
    """Collects the job's Output (by offset) until the daemon says it upgrades
    and closes the connection."""
    while True:
        try:
            msg = c.recv_message(timeout=scaled(10))
        except (ConnectionError, EOFError, OSError):
            return False
        if not msg.HasField("event"):
            continue
        kind = msg.event.WhichOneof("kind")
        if kind == "output":
            o = msg.event.output
            out[o.offset] = o.data
        elif kind == "upgrading":
            return True


def collect_to_exit(c, job, out):
    for ev in c.events(job, timeout=scaled(20)):
        kind = ev.WhichOneof("kind")
        if kind == "output":
            out.setdefault(ev.output.offset, ev.output.data)
        elif kind == "exited":
            return ev.exited
    raise AssertionError("no Exited")


def joined(chunks):
    """The stream from offset 0, checking there is no gap or overlap."""
    data, at = b"", 0
    for off in sorted(chunks):
        piece = chunks[off]
        if off > at:
            raise AssertionError("bytes %d..%d missing" % (at, off))
        data += piece[at - off:]
        at = max(at, off + len(piece))
    return data


@not_under_valgrind(VALGRIND_WHY)
class UpgradeTest(unittest.TestCase):

    def setUp(self):
        self.d = Daemon()
        self.addCleanup(self.d.cleanup)

    def upgrade(self):
        pid, port = self.d.upgrade(timeout=scaled(20))
        return self.same_process(pid, port)

    def same_process(self, pid, port):
        self.assertEqual(pid, self.d.pid, "the upgrade must keep the daemon's pid")
        self.assertEqual(port, self.d.tcp_port, "the TCP listener must be the same socket")
        return pid

    def start_upgrade(self):
        """SIGUSR2 while a client streams; finish_upgrade() then waits for
        the new image (no second SIGUSR2: that would be a second upgrade)."""
        os.unlink(self.d.ready_file)
        os.kill(self.d.pid, signal.SIGUSR2)

    def finish_upgrade(self):
        wait_for(lambda: os.path.exists(self.d.ready_file), timeout=20,
                 what="the new image's ready file")
        with open(self.d.ready_file) as f:
            pid, port = (int(x) for x in f.read().split())
        return self.same_process(pid, port)

    def test_output_pid_id_and_status_survive(self):
        script = ("i=0; while [ $i -lt 60 ]; do echo line $i; i=$((i+1)); sleep 0.02; done; "
                  "exit 7")
        chunks = {}
        with self.d.client() as c:
            job = c.run(["sh", "-c", script])
            pid = next(j.pid for j in c.list() if j.job == job)
            first = next(c.events(job, timeout=scaled(10)))  # Launched
            self.assertTrue(first.HasField("launched"))
            self.start_upgrade()
            self.assertTrue(stream_until_upgrade(c, job, chunks),
                            "no Upgrading event before the connection closed")
        self.finish_upgrade()
        with self.d.client() as c:
            jobs = {j.job: j for j in c.list()}
            self.assertIn(job, jobs, "the job is gone after the upgrade")
            self.assertEqual(jobs[job].pid, pid)
            c.attach(job)
            exited = collect_to_exit(c, job, chunks)
            st = c.stats()
            newer = c.run(["true"])
        self.assertEqual(exited.exit_code, 7)
        self.assertEqual(exited.pid, pid)
        self.assertEqual(joined(chunks).decode(),
                         "".join("line %d\n" % i for i in range(60)))
        self.assertEqual((st.upgrades, st.jobs_handed_over), (1, 1))
        self.assertGreater(newer, job, "job ids must go on upwards after an upgrade")

    def test_ctl_run_goes_on_across_the_upgrade(self):
        script = ("i=0; while [ $i -lt 80 ]; do echo line $i; echo err $i >&2; i=$((i+1)); "
                  "sleep 0.02; done; exit 5")
        ctl = subprocess.Popen([CTL, "-S", self.d.socket, "run", "--", "sh", "-c", script],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first = ctl.stdout.readline()  # the job runs and ctl streams it
            self.assertEqual(first, b"line 0\n")
            self.upgrade()
            out, err = ctl.communicate(timeout=scaled(30))
        finally:
            if ctl.poll() is None:
                ctl.kill()
                ctl.wait()
        self.assertEqual((first + out).decode(), "".join("line %d\n" % i for i in range(80)))
        self.assertEqual(err.decode(), "".join("err %d\n" % i for i in range(80)))
        self.assertEqual(ctl.returncode, 5)
        self.assertIn("upgrade: 1 job(s) handed over", self.d.log())

    def test_python_cluster_follows_and_attaching_again(self):
        """ctld.Cluster: a job waited for across an upgrade ends with its own
        status (the Cluster follows the upgrade: test_python_upgrade.py);
        attached again (a new Cluster, same id), the same."""
        async def before():
            async with ctld.Cluster([self.d.tcp], keep_jobs=True) as c:
                [job] = await c.start(["sh", "-c", "sleep 1; exit 6"])
                upgraded = asyncio.ensure_future(asyncio.to_thread(self.upgrade))
                [r] = await c.wait([job])
                await upgraded
                return job.job, (r.error, r.exit_code)

        async def after(job):
            async with ctld.Cluster([self.d.tcp]) as c:
                j = await c.attach(self.d.tcp, job)
                [r] = await c.wait([j])
                return r.exit_code
        job, error = asyncio.run(asyncio.wait_for(before(), scaled(30)))
        self.assertEqual(error, (None, 6))
        self.assertEqual(asyncio.run(asyncio.wait_for(after(job), scaled(30))), 6)

    def test_stdin_timeout_and_tree_kill(self):
        with self.d.client() as c:
            cat = c.run(["cat"], stdin_pipe=True)
            c.write_stdin(cat, b"before\n")
            timed = c.run(["sleep", "60"], timeout_ms=int(scaled(3) * 1000), detach=True)
            tree = c.run(["sh", "-c", "sleep 100 & sleep 100 & wait"], detach=True)
            root = next(j.pid for j in c.list() if j.job == tree)
            wait_for(lambda: len(children(root)) >= 2, timeout=5,
                     what="the tree's two sleeps")
            tree_pids = {root} | set(children(root))
        self.upgrade()
        with self.d.client() as c:
            c.attach(cat)
            c.write_stdin(cat, b"after\n", eof=True)
            out = b""
            for ev in c.events(cat, timeout=scaled(10)):
                if ev.HasField("output"):
                    out += ev.output.data
                last = ev
            self.assertEqual(out, b"before\nafter\n")
            self.assertEqual(last.exited.exit_code, 0)
            c.signal(tree, 9)
            wait_for(lambda: not any(alive(p) for p in tree_pids), timeout=5,
                     what="every process of the tree killed")
            c.attach(timed)
            ev = [e for e in c.events(timed, timeout=scaled(20))][-1]
            self.assertTrue(ev.exited.timed_out, "the timeout did not survive the upgrade")
            self.assertEqual(ev.exited.signal, 9)

    def test_finished_job_remembered_and_clients_during_upgrade_served(self):
        with self.d.client() as c:
            done = c.run(["sh", "-c", "echo bye; exit 3"])
            list(c.events(done, timeout=scaled(10)))
        os.kill(self.d.pid, signal.SIGUSR2)
        # a client connecting while the daemon upgrades waits in the listen
        # queue and is served by the new image
        with self.d.client(timeout=scaled(20)) as c:
            c.request(timeout=scaled(20), stats=pb.Stats())
        wait_for(lambda: os.path.exists(self.d.ready_file), timeout=20,
                 what="the new image's ready file")
        with self.d.client() as c:
            st = c.stats()
            self.assertEqual(st.upgrades, 1)
            c.attach(done)
            evs = list(c.events(done, timeout=scaled(10)))
        self.assertEqual(evs[-1].exited.exit_code, 3)
        self.assertIn(b"bye", b"".join(e.output.data for e in evs if e.HasField("output")))

    def test_kill_on_disconnect_owner_comes_back_or_not(self):
        with self.d.client() as c:
            back = c.run(["sleep", "60"], kill_on_disconnect=True, detach=True)
            gone = c.run(["sleep", "60"], kill_on_disconnect=True, detach=True)
            pids = {j.job: j.pid for j in c.list()}
            self.start_upgrade()
            stream_until_upgrade(c, back, {})
        self.finish_upgrade()
        self.assertTrue(alive(pids[back]) and alive(pids[gone]),
                        "the upgrade must not count as the owner leaving")
        with self.d.client() as c:
            c.attach(back)  # the owner again
        wait_for(lambda: not alive(pids[back]), timeout=5,
                 what="the job killed when its new owner left")
        # nobody came back for the other one: killed after the reclaim window
        wait_for(lambda: not alive(pids[gone]), timeout=20,
                 what="the unclaimed kill-on-disconnect job killed")

    def test_refused_while_readiness_pending(self):
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        free = port.getsockname()[1]
        port.close()
        with self.d.client() as c:
            job = c.run(["sleep", "60"], detach=True, ready=[pb.ReadyCondition(
                port=pb.PortCondition(port=free))], ready_timeout_ms=60000)
            os.kill(self.d.pid, signal.SIGUSR2)
            wait_for(lambda: "upgrade refused" in self.d.log(), timeout=5,
                     what="the refusal in the log")
            self.assertEqual(c.stats().upgrades, 0)
            self.assertIn("waits for its readiness", self.d.log())
            c.signal(job, 9)


@not_under_valgrind(VALGRIND_WHY)
class NewBinaryTest(unittest.TestCase):
    """The program file is replaced (as a package upgrade does): the new
    file is what runs. Removed: the exec fails and the old image serves on."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ctld-upgrade-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.exe = os.path.join(self.dir, "ctld-bpf")
        shutil.copy2(os.path.join(BUILD, "ctld-bpf"), self.exe)
        shutil.copy2(os.path.join(BUILD, "ctld-spawner"), self.dir)
        self.d = Daemon(start=False)
        self.d.args[0] = self.exe
        self.d.start()
        self.addCleanup(self.d.cleanup)

    def test_replaced_file_is_what_runs(self):
        before = os.stat("/proc/%d/exe" % self.d.pid).st_ino
        os.unlink(self.exe)  # dpkg: the new file under the same name
        shutil.copy2(os.path.join(BUILD, "ctld-bpf"), self.exe)
        with self.d.client() as c:
            job = c.run(["sleep", "60"], detach=True)
        self.d.upgrade(timeout=scaled(20))
        self.assertNotEqual(os.stat("/proc/%d/exe" % self.d.pid).st_ino, before)
        self.assertEqual(os.stat("/proc/%d/exe" % self.d.pid).st_ino, os.stat(self.exe).st_ino)
        with self.d.client() as c:
            self.assertIn(job, [j.job for j in c.list(running_only=True)])
            c.signal(job, 9)

    def test_exec_failure_keeps_serving(self):
        with self.d.client() as c:
            job = c.run(["sleep", "60"], detach=True)
        os.unlink(self.exe)
        os.kill(self.d.pid, signal.SIGUSR2)
        wait_for(lambda: "upgrade failed" in self.d.log(), timeout=10,
                 what="the failure in the log")
        with self.d.client(timeout=scaled(10)) as c:
            self.assertIn(job, [j.job for j in c.list(running_only=True)])
            _, _, ev = c.run_and_wait(["sh", "-c", "exit 4"], timeout=scaled(10))
            self.assertEqual(ev.exited.exit_code, 4)
            self.assertEqual(c.stats().upgrades, 0)
            c.signal(job, 9)


if __name__ == "__main__":
    unittest.main()
