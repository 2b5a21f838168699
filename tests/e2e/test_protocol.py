# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests of the wire protocol (docs/protocol.md): transports, the
Hello handshake, framing and decoding errors, protocol limits, deadlines,
pipelining, backpressure and the client limit.

Every bad input must cost only the client that sent it: each such test ends
with assertDaemonServes() (a fresh client still runs a command).
"""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import wait_for, MODE, ROOT, BUILD, Client, CtldError, Daemon, DaemonTestCase, pb
from ctld_client import frame
from google.protobuf.internal.decoder import _DecodeVarint
from google.protobuf.internal.encoder import _VarintBytes

MAX_FRAME = 1 << 20


def request_bytes(**body):
    """One delimited Request frame."""
    return frame(pb.Request(**body))


def hello_bytes(rid=1, version=1, client="test_protocol"):
    return request_bytes(id=rid, hello=pb.Hello(protocol_version=version, client=client))


def become_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def in_time_wait(port, remote_port):
    """The socket from local port `port` to `remote_port` is a TIME_WAIT
    mini-socket (timer 3 in /proc/net/tcp; its uid column says 0 whoever
    owned it)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if (int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)) == \
                    (port, remote_port) and fields[5].startswith("03:"):
                return True
    return False


class Closed(Exception):
    """The daemon closed the connection (EOF or reset)."""


class Raw:
    """A client socket with no protocol logic, for sending arbitrary bytes."""

    def __init__(self, daemon=None, unix=None, tcp=None, timeout=5.0):
        if tcp:
            host, port = tcp
            self.sock = socket.create_connection((host, port), timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix or daemon.socket)
        self.buf = b""
        self.closed = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def hello(self):
        self.send(hello_bytes())
        m = self.recv()
        assert m.reply.id == 1 and m.reply.HasField("hello"), m
        return m.reply.hello

    def _parse(self):
        if not self.buf:
            return None
        try:
            n, pos = _DecodeVarint(self.buf, 0)
        except IndexError:
            return None
        if len(self.buf) < pos + n:
            return None
        m = pb.Message.FromString(self.buf[pos:pos + n])
        self.buf = self.buf[pos + n:]
        return m

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("nothing from the daemon")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        except socket.timeout:
            raise TimeoutError("nothing from the daemon") from None
        if not chunk:
            self.closed = True
            raise Closed()
        self.buf += chunk

    def recv(self, timeout=5.0):
        """Next Message; raises Closed at EOF, TimeoutError when none comes."""
        deadline = time.monotonic() + timeout
        while True:
            m = self._parse()
            if m is not None:
                return m
            self._fill(deadline)

    def until_closed(self, timeout=5.0):
        """Reads until the daemon closes; returns the messages it sent first."""
        deadline = time.monotonic() + timeout
        msgs = []
        while True:
            try:
                msgs.append(self.recv(max(0.0, deadline - time.monotonic())))
            except Closed:
                if self.buf:
                    raise AssertionError("connection closed in the middle of a frame")
                return msgs

    def silent_for(self, seconds):
        """True when nothing arrives (and the connection stays open) for `seconds`."""
        try:
            m = self.recv(seconds)
        except TimeoutError:
            return True
        raise AssertionError("unexpected message: %s" % m)


def log_port(d, listen):
    """The port the daemon logged for a --listen address (e.g. '[::1]:0')."""
    pat = re.compile(r"listening on tcp:%s \(port (\d+)\)" % re.escape(listen))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        m = pat.search(d.log())
        if m:
            return int(m.group(1))
        time.sleep(0.02)
    raise AssertionError("no 'listening on tcp:%s' in the log:\n%s" % (listen, d.log()))


# ---------------------------------------------------------------- handshake, transports

class HelloTest(DaemonTestCase):

    def check_hello(self, h):
        self.assertEqual(h.protocol_version, 1)
        self.assertTrue(h.server.startswith("ctld-bpf "), h.server)
        self.assertEqual(h.pid, self.d.pid)
        self.assertEqual(h.hostname, socket.gethostname()[:63])
        self.assertEqual(h.max_frame, MAX_FRAME)
        self.assertEqual(h.bpf, MODE == "bpf")

    def test_hello_over_unix(self):
        with self.d.client() as c:
            self.check_hello(c.hello_reply)
            # earlier tests' connections may take a moment to be noticed as closed
            deadline = time.monotonic() + 5
            while c.stats().clients != 1:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)

    def test_hello_over_tcp_ipv4(self):
        with self.d.tcp_client() as c:
            self.check_hello(c.hello_reply)
            out, _, ev = c.run_and_wait(["echo", "over tcp"], timeout=10)
            self.assertEqual(out, b"over tcp\n")
            self.assertEqual(ev.exited.exit_code, 0)

    def test_hello_bytes_from_the_docs(self):
        # docs/protocol.md shows this exact frame; keep the two in sync.
        doc = bytes.fromhex("0b 08 01 12 07 08 01 12 03 64 6f 63".replace(" ", ""))
        self.assertEqual(doc, hello_bytes(rid=1, client="doc"))
        with Raw(self.d) as r:
            r.send(doc)
            m = r.recv()
            self.assertEqual(m.WhichOneof("kind"), "reply")
            self.assertEqual(m.reply.id, 1)
            self.assertFalse(m.reply.HasField("error"))
            self.assertEqual(m.reply.hello.protocol_version, 1)

    def test_reply_echoes_id_and_precedes_launched(self):
        with Raw(self.d) as r:
            r.hello()
            r.send(request_bytes(id=0xDEADBEEF12345, run=pb.Run(argv=["true"])))
            m = r.recv()
            self.assertEqual(m.WhichOneof("kind"), "reply", m)
            self.assertEqual(m.reply.id, 0xDEADBEEF12345)
            job = m.reply.run.job
            self.assertGreater(job, 0)
            m = r.recv()
            self.assertEqual(m.event.WhichOneof("kind"), "launched", m)
            self.assertEqual(m.event.launched.job, job)
            pid = m.event.launched.pid
            self.assertGreater(pid, 1)
            m = r.recv()
            self.assertEqual(m.event.WhichOneof("kind"), "exited", m)
            self.assertEqual(m.event.exited.job, job)
            self.assertEqual(m.event.exited.pid, pid)
            self.assertEqual(m.event.exited.exit_code, 0)

    def test_doc_worked_example_runs(self):
        # The Python example in docs/protocol.md must work as printed.
        with open(os.path.join(ROOT, "docs", "protocol.md")) as f:
            doc = f.read()
        m = re.search(r"<!-- example: ctld_example.py -->\n```python\n(.*?)```", doc, re.S)
        self.assertIsNotNone(m, "worked example not found in docs/protocol.md")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ctld_example.py")
            with open(path, "w") as f:
                f.write(m.group(1))
            env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
            p = subprocess.run(["/usr/bin/python3", path, self.d.socket], capture_output=True,
                               timeout=30, env=env)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        lines = p.stdout.decode().splitlines()
        self.assertRegex(lines[0], r"^connected to ctld-bpf \S+ on .+ \(pid %d\)$" % self.d.pid)
        self.assertEqual(lines[1], "stdout: hello from job")
        self.assertEqual(lines[-1], "exit code 3")


class IPv6Test(unittest.TestCase):
    """A second daemon that also listens on [::1]; its port is in the log."""

    def test_hello_over_tcp_ipv6(self):
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            s.close()
        except OSError as e:
            self.skipTest("no IPv6 loopback on this machine: %s" % e)
        with Daemon("--listen", "[::1]:0") as d:
            port = log_port(d, "[::1]:0")
            self.assertNotEqual(port, d.tcp_port)
            with Client(tcp="[::1]:%d" % port) as c:
                self.assertEqual(c.hello_reply.pid, d.pid)
                self.assertEqual(c.sock.family, socket.AF_INET6)
                out, _, ev = c.run_and_wait(["echo", "v6"], timeout=10)
                self.assertEqual(out, b"v6\n")
            with d.tcp_client() as c:  # the IPv4 listener still works beside it
                self.assertEqual(c.hello_reply.pid, d.pid)
            self.assertTrue(d.alive())


# ---------------------------------------------------------------- bad input

class BadInputTest(DaemonTestCase):
    """Each test sends one kind of bad input; the daemon must stay up."""
    daemon_args = ("--hello-timeout", "1s", "--frame-timeout", "1s")

    def tearDown(self):
        super().tearDown()
        self.assertDaemonServes()

    def assertErrorThenClose(self, r, code, rid=0, text=None):
        msgs = r.until_closed(5)
        self.assertEqual(len(msgs), 1, msgs)
        self.assertEqual(msgs[0].WhichOneof("kind"), "reply")
        e = msgs[0].reply.error
        self.assertEqual(pb.ErrorCode.Name(e.code), pb.ErrorCode.Name(code), e)
        self.assertEqual(msgs[0].reply.id, rid)
        if text:
            self.assertIn(text, e.text)
        return e

    def assertErrorStays(self, r, code, rid, text=None):
        m = r.recv()
        self.assertEqual(m.WhichOneof("kind"), "reply", m)
        self.assertEqual(m.reply.id, rid)
        self.assertEqual(pb.ErrorCode.Name(m.reply.error.code), pb.ErrorCode.Name(code), m)
        if text:
            self.assertIn(text, m.reply.error.text)
        # the connection is still usable
        r.send(request_bytes(id=rid + 1, list=pb.List(after_job=1 << 60)))
        m = r.recv()
        self.assertEqual(m.reply.id, rid + 1)
        self.assertTrue(m.reply.HasField("list"), m)
        self.assertFalse(m.reply.HasField("error"), m)
        return m

    def protocol_errors(self):
        with self.d.client() as c:
            return c.stats().protocol_errors

    # -- framing
    def test_oversized_length_prefix_after_hello(self):
        before = self.protocol_errors()
        with Raw(self.d) as r:
            r.hello()
            r.send(_VarintBytes(2 << 20))
            self.assertErrorThenClose(r, pb.PROTOCOL, text="exceeds the 1048576-byte limit")
        self.assertEqual(self.protocol_errors(), before + 1)

    def test_oversized_length_prefix_before_hello(self):
        with Raw(self.d) as r:
            r.send(_VarintBytes(2 << 20) + b"\0" * 100)
            self.assertErrorThenClose(r, pb.PROTOCOL, text="limit")

    def test_oversized_frame_error_names_its_size(self):
        # The error text should say how big the refused frame was.
        with Raw(self.d) as r:
            r.hello()
            r.send(_VarintBytes(2 << 20))
            self.assertErrorThenClose(r, pb.PROTOCOL, text="frame of 2097152 bytes")

    def test_frame_of_exactly_max_frame_is_read(self):
        # max_frame is inclusive: a 1 MiB frame is decoded (and here refused
        # with LIMIT because argv[0] is too long); one byte more is PROTOCOL.
        def run_frame(total_body):
            run = pb.Run(argv=["x"])
            req = pb.Request(id=7, run=run)
            pad = total_body - len(req.SerializeToString())
            run.argv[0] = "x" * (pad + 1)
            req = pb.Request(id=7, run=run)
            while len(req.SerializeToString()) > total_body:  # varint length grew
                run.argv[0] = run.argv[0][:-1]
                req = pb.Request(id=7, run=run)
            body = req.SerializeToString()
            self.assertEqual(len(body), total_body)
            return _VarintBytes(len(body)) + body

        with Raw(self.d) as r:
            r.hello()
            r.send(run_frame(MAX_FRAME))
            self.assertErrorStays(r, pb.LIMIT, 7, "string overflow")
        with Raw(self.d) as r:
            r.hello()
            r.send(_VarintBytes(MAX_FRAME + 1) + b"\x08\x07")
            self.assertErrorThenClose(r, pb.PROTOCOL, text="limit")

    def test_malformed_length_prefix(self):
        with Raw(self.d) as r:
            r.hello()
            r.send(b"\xff" * 10)
            self.assertErrorThenClose(r, pb.PROTOCOL, text="malformed frame length prefix")

    def test_undecodable_bytes(self):
        with Raw(self.d) as r:
            r.hello()
            r.send(b"\x08" + b"\xff" * 8)
            self.assertErrorThenClose(r, pb.PROTOCOL, text="does not decode")

    def test_undecodable_bytes_before_hello(self):
        with Raw(self.d) as r:
            r.send(b"\x06" + b"\xff" * 6)
            self.assertErrorThenClose(r, pb.PROTOCOL, text="does not decode")

    def test_undecodable_request_keeps_its_id(self):
        # id (field 1) first, then a field with the invalid wire type 7
        with Raw(self.d) as r:
            r.hello()
            body = b"\x08\x2a" + b"\x17\x00"
            r.send(_VarintBytes(len(body)) + body)
            self.assertErrorThenClose(r, pb.PROTOCOL, rid=42, text="does not decode")

    # -- requests the daemon does not know, or in the wrong place
    def test_unknown_request_field(self):
        with Raw(self.d) as r:
            r.hello()
            # Request{id: 5, <field 99, varint>: 1}
            body = b"\x08\x05" + b"\x98\x06\x01"
            r.send(_VarintBytes(len(body)) + body)
            self.assertErrorStays(r, pb.UNSUPPORTED, 5, "unknown or empty request")

    def test_empty_request(self):
        with Raw(self.d) as r:
            r.hello()
            r.send(b"\x00")
            self.assertErrorStays(r, pb.UNSUPPORTED, 0)

    def test_request_before_hello(self):
        with Raw(self.d) as r:
            r.send(request_bytes(id=3, list=pb.List()))
            self.assertErrorThenClose(r, pb.NEED_HELLO, rid=3)

    def test_wrong_protocol_version(self):
        for version in (2, 0):
            with Raw(self.d) as r:
                r.send(hello_bytes(rid=9, version=version))
                e = self.assertErrorThenClose(r, pb.BAD_VERSION, rid=9)
                self.assertIn("speaks 1", e.text)

    def test_second_hello(self):
        with Raw(self.d) as r:
            r.hello()
            r.send(hello_bytes(rid=2))
            self.assertErrorStays(r, pb.BAD_REQUEST, 2, "already")

    def test_bound_exceeded_before_hello_is_a_protocol_error(self):
        with Raw(self.d) as r:
            r.send(hello_bytes(rid=4, client="c" * 64))  # Hello.client holds 63 bytes
            self.assertErrorThenClose(r, pb.PROTOCOL, rid=4)
        with Raw(self.d) as r:
            r.send(hello_bytes(rid=4, client="c" * 63))
            self.assertEqual(r.recv().reply.hello.protocol_version, 1)

    # -- validation and limits
    def test_empty_argv(self):
        with Raw(self.d) as r:
            r.hello()
            r.send(request_bytes(id=10, run=pb.Run()))
            self.assertErrorStays(r, pb.BAD_REQUEST, 10, "argv is empty")
            r.send(request_bytes(id=20, run=pb.Run(argv=[""])))
            self.assertErrorStays(r, pb.BAD_REQUEST, 20, "argv is empty")

    def test_argv_count_limit(self):
        with self.d.client() as c:
            out, _, ev = c.run_and_wait(["echo"] + ["a"] * 63, timeout=10)
            self.assertEqual(out, (" ".join(["a"] * 63) + "\n").encode())
        with Raw(self.d) as r:
            r.hello()
            r.send(request_bytes(id=11, run=pb.Run(argv=["echo"] + ["a"] * 64)))
            self.assertErrorStays(r, pb.LIMIT, 11, "array overflow")

    def test_argv_entry_size_limit(self):
        with self.d.client() as c:
            out, _, ev = c.run_and_wait(["echo", "y" * 511], timeout=10)
            self.assertEqual(out, b"y" * 511 + b"\n")
        for size in (512, 600):
            with Raw(self.d) as r:
                r.hello()
                r.send(request_bytes(id=12, run=pb.Run(argv=["echo", "y" * size])))
                self.assertErrorStays(r, pb.LIMIT, 12, "string overflow")

    def test_other_bounds(self):
        cases = [
            pb.Run(argv=["true"], env=["A=1"] * 33),
            pb.Run(argv=["true"], env=["A=" + "v" * 510]),
            pb.Run(argv=["true"], name="n" * 64),
            pb.Run(argv=["true"], cwd="/" + "d" * 511),
            pb.Run(argv=["true"], rlimits=[pb.Rlimit(resource="core")] * 17),
        ]
        with Raw(self.d) as r:
            r.hello()
            for i, run in enumerate(cases):
                r.send(request_bytes(id=100 + 2 * i, run=run))
                self.assertErrorStays(r, pb.LIMIT, 100 + 2 * i)
            r.send(request_bytes(id=200, write_stdin=pb.WriteStdin(job=1, data=b"x" * 32769)))
            self.assertErrorStays(r, pb.LIMIT, 200, "bytes overflow")

    # -- slow, silent and vanishing clients
    def test_silent_client_dropped_after_hello_timeout(self):
        with Raw(self.d) as r:
            t0 = time.monotonic()
            msgs = r.until_closed(5)
            took = time.monotonic() - t0
        self.assertEqual(msgs, [])  # closed silently
        self.assertGreater(took, 0.8)
        self.assertLess(took, 3.0)

    def test_partial_hello_dropped_after_hello_timeout(self):
        with Raw(self.d) as r:
            t0 = time.monotonic()
            r.send(hello_bytes()[:4])
            msgs = r.until_closed(5)
            took = time.monotonic() - t0
        self.assertEqual(msgs, [])
        self.assertGreater(took, 0.8)
        self.assertLess(took, 3.0)

    def test_truncated_frame_dropped_after_frame_timeout(self):
        with Raw(self.d) as r:
            r.hello()
            r.send(request_bytes(id=2, run=pb.Run(argv=["true"]))[:5])
            t0 = time.monotonic()
            msgs = r.until_closed(5)
            took = time.monotonic() - t0
        self.assertEqual(msgs, [])  # no Error: a timeout closes silently
        self.assertGreater(took, 0.8)
        self.assertLess(took, 3.0)

    def test_idle_client_after_hello_is_kept(self):
        # The frame timeout only runs while a frame is incomplete.
        with Raw(self.d) as r:
            r.hello()
            self.assertTrue(r.silent_for(1.5))
            r.send(request_bytes(id=2, list=pb.List(after_job=1 << 60)))
            self.assertEqual(r.recv().reply.id, 2)

    def test_trickling_client_dropped_after_frame_timeout(self):
        data = request_bytes(id=2, run=pb.Run(argv=["echo", "t" * 40]))
        with Raw(self.d) as r:
            r.hello()
            t0 = time.monotonic()
            closed_after = None
            for b in data:
                try:
                    r.send(bytes([b]))
                except (BrokenPipeError, ConnectionResetError):
                    closed_after = time.monotonic() - t0
                    break
                try:
                    r.recv(0.3)
                    self.fail("the daemon answered a partial frame")
                except TimeoutError:
                    continue
                except Closed:
                    closed_after = time.monotonic() - t0
                    break
        self.assertIsNotNone(closed_after, "still connected after %d bytes at 0.3 s each"
                             % len(data))
        self.assertGreater(closed_after, 0.8)
        self.assertLess(closed_after, 3.0)

    def test_client_vanishes_mid_request(self):
        with Raw(self.d) as r:
            r.hello()
            r.send(request_bytes(id=2, run=pb.Run(argv=["true"]))[:6])
        deadline = time.monotonic() + 5
        while "peer closed in the middle of a frame" not in self.d.log():
            self.assertLess(time.monotonic(), deadline, self.d.log())
            time.sleep(0.02)

    def test_client_vanishes_right_after_run(self):
        with tempfile.TemporaryDirectory() as tmp:
            marker = os.path.join(tmp, "done")
            with Raw(self.d) as r:
                r.hello()
                r.send(request_bytes(id=2, run=pb.Run(
                    argv=["sh", "-c", "sleep 0.3; echo out; echo done > %s; exit 5" % marker],
                    name="orphaned-run")))
            # closed without reading the reply; the job must still run to its end
            with self.d.client() as c:
                deadline = time.monotonic() + 10
                while True:
                    jobs = [j for j in c.list() if j.name == "orphaned-run"]
                    self.assertLessEqual(len(jobs), 1, jobs)
                    if jobs and jobs[0].state != pb.JOB_RUNNING:
                        break
                    self.assertLess(time.monotonic(), deadline)
                    time.sleep(0.05)
                self.assertEqual(jobs[0].state, pb.JOB_EXITED)
                self.assertEqual(jobs[0].exit_code, 5)
                self.assertEqual(jobs[0].signal, 0)
                self.assertEqual(jobs[0].clients, 0)
            with open(marker) as f:
                self.assertEqual(f.read(), "done\n")

    # -- peers that may not use the unix socket
    def test_unix_socket_refuses_non_root_peer(self):
        # Even with the socket file opened up, a non-root peer is refused
        # after SO_PEERCRED: one Error PERMISSION, then close.
        code = ("import socket,sys\n"
                "s=socket.socket(socket.AF_UNIX)\n"
                "s.connect(sys.argv[1])\n"
                "d=b''\n"
                "while True:\n"
                "    x=s.recv(4096)\n"
                "    if not x: break\n"
                "    d+=x\n"
                "sys.stdout.write(d.hex())\n")
        dir_mode = os.stat(self.d.dir).st_mode & 0o7777
        sock_mode = os.stat(self.d.socket).st_mode & 0o7777
        os.chmod(self.d.dir, 0o711)
        os.chmod(self.d.socket, 0o666)
        try:
            p = subprocess.run(["/usr/bin/python3", "-c", code, self.d.socket],
                               capture_output=True, timeout=10, preexec_fn=become_nobody)
        finally:
            os.chmod(self.d.socket, sock_mode)
            os.chmod(self.d.dir, dir_mode)
        self.assertEqual(p.returncode, 0, p.stderr)
        data = bytes.fromhex(p.stdout.decode())
        n, pos = _DecodeVarint(data, 0)
        self.assertEqual(len(data), pos + n)
        m = pb.Message.FromString(data[pos:])
        self.assertEqual(m.reply.error.code, pb.PERMISSION)
        self.assertEqual(sock_mode, 0o600)


    def test_tcp_loopback_refuses_non_root_local_user(self):
        # The unix socket admits only root (SO_PEERCRED). Plain TCP on
        # loopback must not be a way around that: a local unprivileged user
        # must not get to run commands as root there either.
        code = ("import socket,sys\n"
                "s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=3)\n"
                "d=b''\n"
                "try:\n"
                "    s.sendall(bytes.fromhex(sys.argv[2]))\n"
                "    while True:\n"
                "        x=s.recv(4096)\n"
                "        if not x: break\n"
                "        d+=x\n"
                "except OSError:\n"
                "    pass\n"
                "sys.stdout.write(d.hex())\n")
        frames = hello_bytes(rid=1) + request_bytes(id=2, run=pb.Run(argv=["id", "-u"]))
        p = subprocess.run(["/usr/bin/python3", "-c", code, str(self.d.tcp_port), frames.hex()],
                           capture_output=True, timeout=15, preexec_fn=become_nobody, cwd="/")
        self.assertEqual(p.returncode, 0, p.stderr)
        data, msgs, pos = bytes.fromhex(p.stdout.decode()), [], 0
        while pos < len(data):
            n, pos = _DecodeVarint(data, pos)
            msgs.append(pb.Message.FromString(data[pos:pos + n]))
            pos += n
        ran_as = b"".join(m.event.output.data for m in msgs if m.event.HasField("output"))
        self.assertNotEqual(ran_as, b"0\n", "uid 65534 ran a command as root over TCP")
        self.assertIn(pb.PERMISSION, [m.reply.error.code for m in msgs if m.HasField("reply")],
                      msgs)

    def test_tcp_loopback_refuses_a_peer_that_closed_first(self):
        # A local user who sends Hello and Run and closes before the daemon
        # looks leaves a TIME_WAIT socket, whose owner the kernel reports as
        # uid 0 (sock_diag and /proc/net/tcp alike): that is not root.
        marker = os.path.join(self.d.dir, "ran-as-root")
        code = ("import socket,sys\n"
                "s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=3)\n"
                "s.sendall(bytes.fromhex(sys.argv[2]))\n"
                "print(s.getsockname()[1])\n"
                "s.close()\n")
        frames = hello_bytes(rid=1) + request_bytes(id=2, run=pb.Run(argv=["touch", marker]))
        os.kill(self.d.pid, signal.SIGSTOP)  # the connection waits in the listen backlog
        try:
            p = subprocess.run(["/usr/bin/python3", "-c", code, str(self.d.tcp_port),
                                frames.hex()], capture_output=True, text=True, timeout=15,
                               preexec_fn=become_nobody, cwd="/")
            self.assertEqual(p.returncode, 0, p.stderr)
            wait_for(lambda: in_time_wait(int(p.stdout), self.d.tcp_port), 5,
                     "the client's socket to close")
        finally:
            os.kill(self.d.pid, signal.SIGCONT)
        wait_for(lambda: os.path.exists(marker) or "it closed its socket first" in self.d.log(),
                 5, "the refusal (or the job)")
        self.assertFalse(os.path.exists(marker), "uid 65534 ran a command as root over TCP")
        self.assertDaemonServes()


# ---------------------------------------------------------------- pipelining

class PipelineTest(DaemonTestCase):

    def test_1000_pipelined_requests(self):
        reqs, runs = [], {}
        for i in range(1, 1001):
            rid = 1000 + i
            if i % 50 == 0:
                reqs.append(request_bytes(id=rid, run=pb.Run(argv=["sh", "-c", "echo %d" % i])))
                runs[rid] = i
            elif i % 3 == 0:
                reqs.append(request_bytes(id=rid, stats=pb.Stats()))
            elif i % 3 == 1:
                reqs.append(request_bytes(id=rid, list=pb.List(after_job=1 << 60)))
            else:
                body = pb.Request(id=rid).SerializeToString() + b"\x98\x06\x01"  # field 99
                reqs.append(_VarintBytes(len(body)) + body)
        with Raw(self.d) as r:
            r.hello()
            r.send(b"".join(reqs))  # all of them before reading anything
            time.sleep(0.2)
            replies, events, jobs = [], [], {}
            deadline = time.monotonic() + 20
            while len(replies) < 1000 or sum(1 for e in events if e[0] == "exited") < len(runs):
                m = r.recv(max(0.01, deadline - time.monotonic()))
                if m.HasField("reply"):
                    replies.append(m.reply)
                    if m.reply.id in runs:
                        jobs[m.reply.run.job] = runs[m.reply.id]
                else:
                    kind = m.event.WhichOneof("kind")
                    ev = getattr(m.event, kind)
                    self.assertIn(ev.job, jobs, "event before its Run reply: %s" % m)
                    events.append((kind, ev.job, getattr(ev, "data", b"")))
        self.assertEqual([x.id for x in replies], list(range(1001, 2001)))
        for i, rep in enumerate(replies, start=1):
            if i % 50 == 0:
                self.assertGreater(rep.run.job, 0)
            elif i % 3 == 0:
                self.assertTrue(rep.HasField("stats"))
            elif i % 3 == 1:
                self.assertTrue(rep.HasField("list"))
                self.assertEqual(len(rep.list.jobs), 0)
            else:
                self.assertEqual(rep.error.code, pb.UNSUPPORTED)
        for job, i in jobs.items():
            mine = [e for e in events if e[1] == job]
            self.assertEqual([e[0] for e in mine], ["launched", "output", "exited"], mine)
            self.assertEqual(mine[1][2], b"%d\n" % i)


# ---------------------------------------------------------------- backpressure

class BackpressureTest(DaemonTestCase):
    daemon_args = ("--client-queue", "256K")
    TOTAL = 20 * 1000 * 1000

    def stalled_client(self):
        c = self.d.client()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        return c

    def wait_finished(self, c, job, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            info = [j for j in c.list() if j.job == job]
            if info and info[0].state != pb.JOB_RUNNING:
                return info[0]
            self.assertLess(time.monotonic(), deadline, "job %d still running" % job)
            time.sleep(0.05)

    def run_stalled(self):
        """A client runs a job with 20 MB of output and reads nothing until it
        has ended; meanwhile another client must be served without delay."""
        a = self.stalled_client()
        job = a.run(["sh", "-c", "head -c %d /dev/zero; sleep 0.2; echo tail" % self.TOTAL])
        with self.d.client() as b:
            worst = 0.0
            for i in range(5):
                t0 = time.monotonic()
                out, _, ev = b.run_and_wait(["echo", str(i)], timeout=10)
                worst = max(worst, time.monotonic() - t0)
                self.assertEqual(out, b"%d\n" % i)
                time.sleep(0.05)
            self.assertLess(worst, 2.0)
            info = self.wait_finished(b, job)
            self.assertEqual(info.exit_code, 0)
            self.assertGreater(b.stats().output_dropped_bytes, 0)
        # now read everything the stalled client was sent
        seq, got, dropped = [], 0, 0
        deadline = time.monotonic() + 20
        while True:
            try:
                m = a.recv_message(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                break
            ev = m.event
            kind = ev.WhichOneof("kind")
            self.assertEqual(getattr(ev, kind).job, job)
            if kind == "output":
                self.assertEqual(ev.output.stream, pb.STDOUT)
                self.assertEqual(ev.output.offset, got + dropped, "a gap not reported first")
                got += len(ev.output.data)
            elif kind == "output_dropped":
                self.assertEqual(ev.output_dropped.reason, pb.DROP_SLOW_CLIENT)
                self.assertEqual(ev.output_dropped.stream, pb.STDOUT)
                self.assertGreater(ev.output_dropped.bytes, 0)
                dropped += ev.output_dropped.bytes
            seq.append(kind)
        a.close()
        return seq, got, dropped

    def test_slow_client_does_not_delay_others_and_learns_what_it_missed(self):
        seq, got, dropped = self.run_stalled()
        self.assertEqual(seq[0], "launched")
        self.assertEqual(seq.count("exited"), 1)
        self.assertGreaterEqual(seq.count("output_dropped"), 1)
        self.assertGreater(dropped, 0)
        # every byte was either delivered or reported as dropped
        self.assertEqual(got + dropped, self.TOTAL + len("tail\n"))
        self.assertDaemonServes()

    def test_drop_report_precedes_exited(self):
        # Nothing about a job may follow its terminal event: a client that
        # stops at Exited (as ctl and Client.events() do) must already have
        # been told that output was dropped.
        seq, got, dropped = self.run_stalled()
        self.assertIn("output_dropped", seq)
        self.assertEqual(seq[-1], "exited", "events after Exited: %s" % seq[seq.index("exited"):])

    def test_hard_limit_disconnects(self):
        with self.d.client() as c:
            for _ in range(64):
                c.run(["true"], detach=True, name="n" * 63)
            deadline = time.monotonic() + 10
            while c.list(running_only=True):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
        a = self.stalled_client()
        # each List reply is ~10 KB; 2000 of them pass the soft and hard limits
        a.send_raw(b"".join(request_bytes(id=i, list=pb.List()) for i in range(2, 2002)))
        deadline = time.monotonic() + 10
        while "output queue over the hard limit" not in self.d.log():
            self.assertLess(time.monotonic(), deadline, self.d.log())
            time.sleep(0.02)
        n = 0
        with self.assertRaises((EOFError, ConnectionResetError)):
            while True:
                a.recv_message(timeout=5)
                n += 1
        self.assertLess(n, 2000)
        a.close()
        self.assertDaemonServes()


# ---------------------------------------------------------------- client limit

class MaxClientsTest(DaemonTestCase):
    daemon_args = ("--max-clients", "3")

    def connect(self, timeout=5):
        """A new client, retried while the daemon still counts a closed one."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return Client(unix=self.d.socket)
            except (EOFError, ConnectionResetError, BrokenPipeError):
                self.assertLess(time.monotonic(), deadline, "no free client slot")
                time.sleep(0.02)

    def test_fourth_client_refused_then_accepted_after_one_leaves(self):
        clients = []
        try:
            for _ in range(3):
                clients.append(self.connect())
            with Raw(self.d) as r:
                msgs = r.until_closed(5)
            self.assertEqual(len(msgs), 1, msgs)
            self.assertEqual(msgs[0].reply.error.code, pb.LIMIT)
            self.assertIn("too many clients", msgs[0].reply.error.text)
            # the refusal itself (CtldError LIMIT), or a reset if our Hello
            # raced the close
            with self.assertRaises((CtldError, EOFError, ConnectionResetError, BrokenPipeError)):
                Client(unix=self.d.socket)
            for c in clients:  # the others were not disturbed
                self.assertEqual(c.stats().clients, 3)
            clients.pop().close()
            c = self.connect()
            clients.append(c)
            out, _, ev = c.run_and_wait(["echo", "fourth"], timeout=10)
            self.assertEqual(out, b"fourth\n")
        finally:
            for c in clients:
                c.close()


if __name__ == "__main__":
    unittest.main()
