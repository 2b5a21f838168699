# SPDX-License-Identifier: BSD-2-Clause
"""Readiness (Run.ready) end to end, in both modes: one Ready when the job's
own tree listens, logs or writes what it was asked to, or one NotReady that
says why not -- a port someone else holds (with the holder), a listen() that
failed, a timeout, the job ending first (with its stderr), a file that cannot
be watched. Conditions follow the whole tree (`sh -c 'server &'`, a server
that daemonizes), are set before the job runs (nothing it does is missed),
and the outcome is replayed to a client that attaches later.
"""
import os
import shutil
import socket
import tempfile
import time

from harness import (MODE, PY, CtldError, DaemonTestCase, alive, free_port, listening_socket,
                     pb, scaled, wait_for)
from ctld_client import file_ready, log_ready, port_ready

NR = pb.NotReadyReason


def listen_py(port, host="127.0.0.1", delay=0.0, then="time.sleep(60)"):
    """Python code that listens on host:port after delay seconds."""
    family = "socket.AF_INET6" if ":" in host else "socket.AF_INET"
    return ("import socket,time; time.sleep(%s); s=socket.socket(%s); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('%s', %d)); s.listen(); %s" % (delay, family, host, port, then))


def connects(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


class ReadyTestCase(DaemonTestCase):
    def start(self, c, argv, ready, **kw):
        return c.run(argv, ready=ready, **kw)

    def outcome(self, c, job, timeout=20):
        # scaled: under emulation the daemon's port-taken grace is too
        ev, out = c.wait_ready(job, timeout=scaled(timeout))
        return ev.WhichOneof("kind"), getattr(ev, ev.WhichOneof("kind")), out

    def end_of(self, c, job, timeout=20):
        """The job's terminal event (it ends, or was killed)."""
        for ev in c.events(job, timeout=scaled(timeout)):
            last = ev
        return last

    def kill(self, c, job):
        try:
            c.signal(job, 9)
        except CtldError:
            pass  # already gone


class PortReadyTest(ReadyTestCase):
    def test_server_left_running_by_a_shell(self):
        """`sh -c 'server &'`: the shell exits at once; the job is ready when
        the server it left behind listens, and stays the job until then."""
        port = free_port()
        with self.d.client() as c:
            job = self.start(c, ["sh", "-c", "%s -c \"%s\" >/dev/null 2>&1 &"
                                 % (PY, listen_py(port, delay=0.3))], [port_ready(port)])
            kind, r, _ = self.outcome(c, job)
            self.assertEqual(kind, "ready", r)
            st = r.conditions[0]
            self.assertTrue(st.met)
            self.assertEqual((st.port, st.addr), (port, "127.0.0.1"))
            self.assertNotEqual(st.pid, 0)
            self.assertGreaterEqual(r.time_to_ready_ns, 300_000_000)
            self.assertEqual(r.time_to_ready_ns, st.after_exec_ns)
            self.assertTrue(connects(port))  # the server answers on the first try
            info = [j for j in c.list() if j.job == job][0]
            self.assertEqual(info.state, pb.JOB_RUNNING)  # the shell is gone; the job is not
            self.assertEqual(info.ready, pb.READY_DONE)
            self.assertEqual(info.time_to_ready_ns, r.time_to_ready_ns)
            c.signal(job, 15)  # the job's tree: the server
            ex = self.end_of(c, job)
            self.assertTrue(ex.HasField("exited"))
            wait_for(lambda: not alive(st.pid), what="the server to end with its job")

    def test_daemonizing_server(self):
        """A server that double-forks and setsid()s is still of the job: the
        kernel saw the forks, and it is in the job's cgroup. Without eBPF
        and without a job cgroup (no pids hierarchy on the host) it has left
        both the job's ancestry and its session; it is still told by the
        job's output it kept (and killed with the job), but once it closed
        that too it cannot be known (docs/design.md): the job ended, not
        ready."""
        with self.d.client() as c:
            job_cgroups = not c.stats().cgroups.startswith("no job cgroups")
        for keeps_output in (True, False):
            with self.subTest(keeps_output=keeps_output):
                port = free_port()
                pidfile = os.path.join(tempfile.gettempdir(), "ctld-ready-%d" % port)
                code = ("import os,sys\n"
                        "if os.fork(): sys.exit(0)\n"
                        "os.setsid()\n"
                        "if os.fork(): sys.exit(0)\n"
                        "open(%r, 'w').write(str(os.getpid()))\n"
                        "%s"
                        "exec(%r)\n" % (pidfile, "" if keeps_output else
                                         "n = os.open('/dev/null', os.O_RDWR)\n"
                                         "[os.dup2(n, f) for f in (0, 1, 2)]\n",
                                         listen_py(port, delay=0.2)))
                with self.d.client() as c:
                    job = self.start(c, [PY, "-c", code], [port_ready(port)])
                    kind, r, _ = self.outcome(c, job)
                    with open(pidfile) as f:
                        pid = int(f.read())
                    os.unlink(pidfile)
                    if MODE != "bpf" and not job_cgroups and not keeps_output:
                        self.assertEqual((kind, r.reason), ("not_ready", NR.NOT_READY_EXITED))
                        os.kill(pid, 9)  # the server this test started
                        continue
                    self.assertEqual(kind, "ready", r)
                    self.assertEqual(r.conditions[0].pid, pid)
                    c.signal(job, 9)
                    self.end_of(c, job)
                    wait_for(lambda: not alive(pid), what="the daemonized server to be killed")

    def test_port_held_by_someone_else(self):
        """Another process listens already: never "ready"; the holder is named
        and the job (which cannot get the port) is killed after the grace."""
        port = free_port()
        with listening_socket(port) as s, self.d.client() as c:
            s.listen()
            t0 = time.monotonic()
            job = self.start(c, ["sleep", "60"], [port_ready(port)])
            kind, nr, _ = self.outcome(c, job)
            self.assertEqual(kind, "not_ready", nr)
            self.assertEqual(nr.reason, NR.NOT_READY_PORT_TAKEN)
            self.assertEqual((nr.port, nr.holder_pid, nr.holder_addr), (port, os.getpid(),
                                                                         "127.0.0.1"))
            self.assertNotEqual(nr.holder_netns, 0)
            self.assertIn("port %d is held by pid %d" % (port, os.getpid()), nr.text)
            self.assertTrue(nr.job_running and nr.killed)
            self.assertGreater(time.monotonic() - t0, 2.5)  # the grace: 3 s
            ex = self.end_of(c, job)
            self.assertEqual(ex.exited.signal, 9)

    def test_job_failing_to_bind_a_held_port(self):
        """What users hit: the job's server exits with EADDRINUSE; NotReady at
        its end names the holder and the job's status, at once."""
        port = free_port()
        started, gate = (os.path.join(self.d.dir, "%s-%d" % (n, port)) for n in ("up", "gate"))
        # The daemon's 3 s grace starts when it sees the holder; a python
        # that takes seconds to start (emulated guests) is started first
        # and binds only once the port is held: then its bind fails at once.
        wait_gate = ("import os,time\nopen(%r, 'w').close()\n"
                     "while not os.path.exists(%r): time.sleep(0.01)\n" % (started, gate))
        with listening_socket(port) as s, self.d.client() as c:
            job = self.start(c, ["sh", "-c", "%s -c \"$0\"; echo status $? >&2; exit 1" % PY,
                                 wait_gate + listen_py(port)], [port_ready(port)])
            wait_for(lambda: os.path.exists(started), timeout=20, what="the job's python")
            s.listen()
            open(gate, "w").close()
            kind, nr, _ = self.outcome(c, job)
            self.assertEqual(kind, "not_ready", nr)
            self.assertEqual((nr.reason, nr.holder_pid), (NR.NOT_READY_PORT_TAKEN, os.getpid()))
            self.assertFalse(nr.job_running)
            self.assertEqual(nr.exit_code, 1)
            self.assertIn(b"Address already in use", nr.stderr_tail)
            # at the job's end, not the grace's: job_running is false (above)
            # and the job's own status is in it
            self.assertTrue(nr.stderr_tail.endswith(b"status 1\n"))

    def test_listen_failure_of_the_job_is_told_at_once(self):
        """The job bound the port (SO_REUSEADDR) before another process
        listened on it: its listen() fails with EADDRINUSE. With eBPF this is
        seen as it happens (the job lives on)."""
        port = free_port()
        bound = os.path.join(self.d.dir, "bound-%d" % port)
        # In this order whatever the speed (python under emulation starts in
        # seconds): the job binds, we listen, the job sees us and listens.
        with listening_socket(port, reuse=True) as s, self.d.client() as c:
            job = self.start(c, [PY, "-c", "import socket,time,sys\n"
                                 "s=socket.socket()\n"
                                 "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                                 "s.bind(('127.0.0.1', %d))\n"
                                 "open(%r, 'w').close()\n"
                                 "for _ in range(6000):\n"
                                 "    try: socket.create_connection(('127.0.0.1', %d)); break\n"
                                 "    except OSError: time.sleep(0.05)\n"
                                 "try: s.listen()\n"
                                 "except OSError as e: print(e, file=sys.stderr, flush=True)\n"
                                 "time.sleep(600)\n" % (port, bound, port)], [port_ready(port)])
            wait_for(lambda: os.path.exists(bound), timeout=20, what="the job's bind")
            s.listen()
            kind, nr, _ = self.outcome(c, job)
            self.assertEqual(kind, "not_ready", nr)
            self.assertEqual((nr.reason, nr.holder_pid), (NR.NOT_READY_PORT_TAKEN, os.getpid()))
            self.assertTrue(nr.job_running and nr.killed)
            if MODE == "bpf":
                self.assertEqual(nr.failed_pid, self.end_of(c, job).exited.pid)
                self.assertIn("the job's listen() failed", nr.text)

    def test_only_the_asked_address_counts(self):
        """PORT@ADDR: someone else on [::1]:P is neither ready nor a holder
        of 127.0.0.1:P; the job's 127.0.0.1:P is what counts."""
        port = free_port()
        with listening_socket(port, "::1", socket.AF_INET6) as s6, self.d.client() as c:
            s6.listen()
            job = self.start(c, [PY, "-c", listen_py(port, "127.0.0.1", delay=0.3)],
                             [port_ready(port, "127.0.0.1")])
            kind, r, _ = self.outcome(c, job)
            self.assertEqual(kind, "ready", r)
            self.assertEqual(r.conditions[0].addr, "127.0.0.1")
            self.kill(c, job)
        # the job listens on 127.0.0.1 only; the condition wants ::1
        port = free_port()
        with self.d.client() as c:
            job = self.start(c, [PY, "-c", listen_py(port)], [port_ready(port, "::1")],
                             ready_timeout_ms=1500)
            kind, nr, _ = self.outcome(c, job)
            self.assertEqual((kind, nr.reason), ("not_ready", NR.NOT_READY_TIMEOUT))
            self.assertIn("still missing port %d on ::1" % port, nr.text)

    def test_ipv6_listener(self):
        port = free_port()
        with self.d.client() as c:
            job = self.start(c, [PY, "-c", listen_py(port, "::1", delay=0.1)],
                             [port_ready(port, "::1")])
            kind, r, _ = self.outcome(c, job)
            self.assertEqual((kind, r.conditions[0].addr), ("ready", "::1"))
            self.kill(c, job)


class PortTakenGraceTest(ReadyTestCase):
    """--port-taken-grace: a server that needs longer than the default 3 s
    to listen beside a holder of its port (here on the other address) is
    given it; ready when it listens, not PORT_TAKEN at 3 s. Before the
    option: the daemon refused to start."""
    daemon_args = ("--port-taken-grace", "%gs" % scaled(30))

    def test_a_slow_server_beside_a_holder_is_waited_for(self):
        port = free_port()
        late = scaled(4)  # past the default grace
        server = ("import socket,time; time.sleep(%g); s=socket.socket(); "
                  "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                  "s.bind(('127.0.0.1', %d)); s.listen(); time.sleep(60)" % (late, port))
        with socket.socket(socket.AF_INET6) as other, self.d.client() as c:
            other.bind(("::1", port))
            other.listen()
            job = self.start(c, ["sh", "-c", "exec %s -c \"%s\"" % (PY, server)],
                             [port_ready(port)])
            try:
                kind, ev, _ = self.outcome(c, job, timeout=4 + 20)
                self.assertEqual(kind, "ready", ev)
                self.assertEqual(ev.conditions[0].addr, "127.0.0.1")
            finally:
                self.kill(c, job)


class TimeoutAndEndTest(ReadyTestCase):
    def test_timeout_kills_the_tree(self):
        port = free_port()
        with self.d.client() as c:
            job = self.start(c, ["sh", "-c", "sleep 60 & sleep 60"], [port_ready(port)],
                             ready_timeout_ms=500)
            kind, nr, _ = self.outcome(c, job)
            self.assertEqual((kind, nr.reason), ("not_ready", NR.NOT_READY_TIMEOUT))
            self.assertEqual(nr.text, "not ready within 500 ms; still missing port %d" % port)
            self.assertTrue(nr.killed)
            self.assertFalse(nr.conditions[0].met)
            ex = self.end_of(c, job).exited
            self.assertEqual((ex.signal, ex.descendants), (9, 0))

    def test_timeout_keep_running(self):
        with self.d.client() as c:
            job = self.start(c, ["sleep", "60"], [log_ready("never")], ready_timeout_ms=300,
                             keep_on_not_ready=True)
            kind, nr, _ = self.outcome(c, job)
            self.assertEqual((kind, nr.reason, nr.killed), ("not_ready", NR.NOT_READY_TIMEOUT,
                                                           False))
            self.assertTrue(nr.job_running)
            info = [j for j in c.list() if j.job == job][0]
            self.assertEqual((info.state, info.ready), (pb.JOB_RUNNING, pb.READY_FAILED))
            c.signal(job, 9)

    def test_job_exits_first_with_its_stderr(self):
        with self.d.client() as c:
            job = self.start(c, ["sh", "-c", "for i in $(seq 300); do echo line $i >&2; done; "
                                 "echo 'fatal: no config' >&2; exit 3"],
                             [port_ready(free_port())])
            kind, nr, _ = self.outcome(c, job)
            self.assertEqual((kind, nr.reason), ("not_ready", NR.NOT_READY_EXITED))
            self.assertEqual((nr.exit_code, nr.job_running, nr.killed), (3, False, False))
            self.assertIn("exited with status 3", nr.text)
            tail = nr.stderr_tail
            self.assertTrue(tail.endswith(b"fatal: no config\n"))
            self.assertLessEqual(len(tail), 2048)
            self.assertTrue(tail.startswith(b"line "))  # whole lines only
            self.assertEqual(self.end_of(c, job).exited.exit_code, 3)

    def test_exec_failure(self):
        with self.d.client() as c:
            job = self.start(c, ["/nonexistent/server"], [port_ready(free_port())])
            kind, nr, _ = self.outcome(c, job)
            self.assertEqual((kind, nr.reason), ("not_ready", NR.NOT_READY_EXITED))
            self.assertIn("could not start", nr.text)
            self.assertTrue(self.end_of(c, job).HasField("exec_failed"))

    def test_main_exits_but_tree_becomes_ready(self):
        """The main process exits 0 long before its child is ready: no
        "exited" verdict while the tree lives."""
        with self.d.client() as c:
            job = self.start(c, ["sh", "-c", "(sleep 0.5; echo up) &"], [log_ready("^up$")])
            kind, r, out = self.outcome(c, job)
            self.assertEqual(kind, "ready", r)
            self.assertEqual(out[0], b"up\n")
            self.assertTrue(self.end_of(c, job).HasField("exited"))

    def test_late_attach_and_list_see_the_outcome(self):
        """The requesting client leaves at once; another attaches later and
        gets the same Ready, once."""
        port = free_port()
        with self.d.client() as c:
            job = self.start(c, [PY, "-c", listen_py(port, delay=0.2)], [port_ready(port)])
        with self.d.client() as c:
            wait_for(lambda: [j for j in c.list() if j.job == job][0].ready == pb.READY_DONE,
                     what="ready in List")
            c.attach(job)
            kind, r, _ = self.outcome(c, job)
            self.assertEqual((kind, r.job), ("ready", job))
            c.signal(job, 9)
            kinds = [ev.WhichOneof("kind") for ev in c.events(job, timeout=10)]
            self.assertNotIn("ready", kinds)
            self.assertEqual(kinds[-1], "exited")


class LogReadyTest(ReadyTestCase):
    def test_line_split_across_writes(self):
        with self.d.client() as c:
            job = self.start(c, ["sh", "-c", "printf 'Ready to'; sleep 0.3; "
                                 "printf ' accept connections\\nmore\\n'; sleep 60"],
                             [log_ready("^Ready to accept connections$")])
            kind, r, _ = self.outcome(c, job)
            self.assertEqual(kind, "ready", r)
            st = r.conditions[0]
            self.assertEqual((st.line, st.stream), ("Ready to accept connections", pb.STDOUT))
            self.assertGreaterEqual(st.after_exec_ns, 300_000_000)
            c.signal(job, 9)

    def test_stream_choice(self):
        """streams=2: the same text on stdout does not count."""
        with self.d.client() as c:
            job = self.start(c, ["sh", "-c", "echo go; sleep 0.3; echo go >&2; sleep 60"],
                             [log_ready("go", streams=2)])
            kind, r, out = self.outcome(c, job)
            self.assertEqual((kind, r.conditions[0].stream), ("ready", pb.STDERR))
            self.assertEqual(out[0], b"go\n")
            c.signal(job, 9)

    def test_output_to_files_cannot_match(self):
        """Output that goes to files never passes the daemon: a log condition
        on it could never hold, so the request is refused."""
        with self.d.client() as c:
            with self.assertRaises(CtldError) as e:
                self.start(c, ["true"], [log_ready("x")], stdout_path="/tmp/ctld-ready-out",
                           stderr_path="/tmp/ctld-ready-err")
            self.assertIn("output goes to files", e.exception.text)


class FileReadyTest(ReadyTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ctld-ready-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def test_file_in_directories_the_job_creates(self):
        with self.d.client() as c:
            job = self.start(c, ["sh", "-c", "sleep 0.2; mkdir -p run/sub; printf 12345 > "
                                 "run/sub/pid; sleep 0.3; printf 67890ab >> run/sub/pid; "
                                 "sleep 60"], [file_ready("run/sub/pid", min_bytes=10)],
                             cwd=self.tmp)
            kind, r, _ = self.outcome(c, job)
            self.assertEqual(kind, "ready", r)
            st = r.conditions[0]
            self.assertEqual(st.path, os.path.join(self.tmp, "run/sub/pid"))
            self.assertGreaterEqual(st.size, 10)
            self.assertGreaterEqual(st.after_exec_ns, 500_000_000)
            c.signal(job, 9)

    def test_file_there_before(self):
        path = os.path.join(self.tmp, "ready")
        with open(path, "w") as f:
            f.write("x")
        with self.d.client() as c:
            job = self.start(c, ["sleep", "60"], [file_ready(path)])
            kind, r, _ = self.outcome(c, job, timeout=5)
            self.assertEqual((kind, r.conditions[0].size), ("ready", 1))
            c.signal(job, 9)

    def test_cannot_be_watched(self):
        """A path through a regular file can never exist."""
        blocker = os.path.join(self.tmp, "file")
        open(blocker, "w").close()
        with self.d.client() as c:
            job = self.start(c, ["sleep", "60"], [file_ready(blocker + "/x")])
            kind, nr, _ = self.outcome(c, job, timeout=5)
            self.assertEqual((kind, nr.reason), ("not_ready", NR.NOT_READY_FILE_ERROR))
            self.assertNotEqual(nr.sys_errno, 0)
            self.assertTrue(nr.killed)

    def test_all_or_any(self):
        port = free_port()
        with self.d.client() as c:
            # all (default): the log line alone is not enough
            job = self.start(c, ["sh", "-c", "echo started; sleep 60"],
                             [log_ready("started"), port_ready(port)], ready_timeout_ms=800)
            kind, nr, _ = self.outcome(c, job)
            self.assertEqual((kind, nr.reason), ("not_ready", NR.NOT_READY_TIMEOUT))
            self.assertEqual([s.met for s in nr.conditions], [True, False])
            self.assertEqual(nr.conditions[0].line, "started")
            # any: it is
            job = self.start(c, ["sh", "-c", "echo started; sleep 60"],
                             [log_ready("started"), port_ready(port)], ready_any=True)
            kind, r, _ = self.outcome(c, job)
            self.assertEqual(kind, "ready", r)
            self.assertEqual([s.met for s in r.conditions], [True, False])
            c.signal(job, 9)


class BadReadyRequestTest(ReadyTestCase):
    def test_bad_conditions_are_refused(self):
        cases = [
            ([port_ready(0)], "port 0 is out of range"),
            ([port_ready(70000)], "port 70000 is out of range"),
            ([port_ready(80, "localhost")], "not an IPv4/IPv6 address: 'localhost'"),
            ([log_ready("")], "empty regex"),
            ([log_ready("(x")], "bad regex '(x'"),
            ([log_ready("x", streams=4)], "streams must be 1, 2 or 3"),
            ([file_ready("")], "empty path"),
            ([file_ready("/tmp/../etc/x")], "bad path"),
            ([pb.ReadyCondition()], "no kind"),
            ([port_ready(80), log_ready("[")], "ready condition 1: bad regex"),
        ]
        with self.d.client() as c:
            before = len(c.list())
            for ready, text in cases:
                with self.subTest(text=text):
                    with self.assertRaises(CtldError) as e:
                        c.run(["true"], ready=ready)
                    self.assertEqual(e.exception.code_name, "BAD_REQUEST")
                    self.assertIn(text, e.exception.text)
            self.assertEqual(len(c.list()), before)  # nothing was started
        self.assertDaemonServes()
