# SPDX-License-Identifier: BSD-2-Clause
"""ctld_client - a small Python client for the ctld-bpf daemon.

Built on the same proto/ctld.proto as the daemon (protoc --python_out) and
Debian's python3-protobuf; run it with /usr/bin/python3. Frames are protobuf's
delimited convention: a varint length, then a serialized message.

    from ctld_client import Client
    with Client(unix="/run/ctld-bpf.sock") as c:
        job = c.run(["sh", "-c", "echo hi"])
        for ev in c.events(job):          # Launched, Output..., Exited
            print(ev)

The generated module ctld_pb2 must be importable: `make` writes it to
build/python/; this module also looks there relative to the repository.
"""
import os
import socket
import ssl
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
for _p in (os.environ.get("CTLD_PB2_DIR"), os.path.join(_here, "..", "..", "build", "python")):
    if _p and os.path.isdir(_p) and _p not in sys.path:
        sys.path.insert(0, _p)

import ctld_pb2 as pb  # noqa: E402
from google.protobuf.internal.decoder import _DecodeVarint  # noqa: E402
from google.protobuf.internal.encoder import _VarintBytes  # noqa: E402

PROTOCOL_VERSION = 1
TERMINAL = ("exited", "exec_failed")


class CtldError(Exception):
    """The daemon answered a request with an Error."""

    def __init__(self, error):
        self.code = error.code
        self.code_name = pb.ErrorCode.Name(error.code)
        self.text = error.text
        self.sys_errno = error.sys_errno
        super().__init__("%s: %s" % (self.code_name, self.text))


def _event_job(ev):
    """The job an event is about, or None (watch events)."""
    return getattr(getattr(ev, ev.WhichOneof("kind")), "job", None)


def port_ready(port, addr=""):
    """A readiness condition: a process of the job listens on port (addr)."""
    return pb.ReadyCondition(port=pb.PortCondition(port=port, addr=addr))


def log_ready(regex, streams=0):
    """A readiness condition: a line of output matches regex (1 stdout, 2 stderr)."""
    return pb.ReadyCondition(log=pb.LogCondition(regex=regex, streams=streams))


def file_ready(path, min_bytes=None):
    """A readiness condition: path exists (with at least min_bytes)."""
    f = pb.FileCondition(path=path)
    if min_bytes is not None:
        f.min_bytes, f.has_min_bytes = min_bytes, True
    return pb.ReadyCondition(file=f)


def frame(message):
    """Serializes a message as one delimited frame."""
    body = message.SerializeToString()
    return _VarintBytes(len(body)) + body


class Client:
    """One connection. Replies are matched by request id; events that arrive
    while waiting for a reply are kept in order for events()/next_event().
    unix: a socket path; tcp: "HOST:PORT"; sock: a stream socket already
    connected to a daemon (for example one made in another network
    namespace), owned by the client from then on. tls = (cert, key, ca)
    wraps a TCP connection (or sock) in mutual TLS."""

    def __init__(self, unix=None, tcp=None, timeout=10.0, name="ctld_client.py",
                 tls=None, hello=True, sock=None):
        if sock is not None:
            self.sock = sock
            self.sock.settimeout(timeout)
        elif unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix)
        else:
            host, port = tcp.rsplit(":", 1)
            self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        if tls and self.sock.family != socket.AF_UNIX:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.check_hostname = False
            ctx.load_cert_chain(tls[0], tls[1])
            ctx.load_verify_locations(tls[2])
            self.sock = ctx.wrap_socket(self.sock)
        self.timeout = timeout
        self.buf = b""
        self.next_id = 1
        self.pending_events = []
        self.pending_replies = {}  # replies that came while waiting for another id
        self.hello_reply = None
        if hello:
            try:
                self.hello_reply = self.request(
                    hello=pb.Hello(protocol_version=PROTOCOL_VERSION, client=name)).hello
            except BaseException:
                self.close()  # refused (LIMIT, PERMISSION, ...) or closed: no leaked socket
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # ------------------------------------------------------------ raw frames
    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, request):
        self.sock.sendall(frame(request))

    def recv_message(self, timeout=None):
        """Next Message from the daemon; raises EOFError when it closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg = self._parse_one()
            if msg is not None:
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the daemon within the timeout")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("daemon closed the connection")
            self.buf += chunk

    def _parse_one(self):
        if not self.buf:
            return None
        try:
            length, pos = _DecodeVarint(self.buf, 0)
        except IndexError:
            return None
        if len(self.buf) < pos + length:
            return None
        msg = pb.Message()
        msg.ParseFromString(self.buf[pos:pos + length])
        self.buf = self.buf[pos + length:]
        return msg

    # ------------------------------------------------------------ requests
    def request_nowait(self, **body):
        """Sends a request; returns its id without waiting for the reply."""
        req = pb.Request(id=self.next_id, **body)
        self.next_id += 1
        self.send(req)
        return req.id

    def wait_reply(self, rid, timeout=None):
        """Waits for the Reply to request rid. Replies may come out of order
        (WriteStdin replies are deferred): others are kept for their own call."""
        reply = self.pending_replies.pop(rid, None)
        while reply is None:
            msg = self.recv_message(timeout)
            if msg.HasField("reply"):
                if msg.reply.id == rid:
                    reply = msg.reply
                elif msg.reply.id == 0 and msg.reply.HasField("error"):
                    # about the connection, not a request (LIMIT, PERMISSION,
                    # PROTOCOL): the daemon closes right after it
                    raise CtldError(msg.reply.error)
                else:
                    self.pending_replies[msg.reply.id] = msg.reply
            elif msg.HasField("event"):
                self.pending_events.append(msg.event)
        if reply.HasField("error") and reply.error.code != pb.OK:
            raise CtldError(reply.error)
        return reply

    def request(self, timeout=None, **body):
        """Sends a request and returns its Reply (raises CtldError on Error)."""
        return self.wait_reply(self.request_nowait(**body), timeout)

    def next_event(self, timeout=None):
        if self.pending_events:
            return self.pending_events.pop(0)
        while True:
            msg = self.recv_message(timeout)
            if msg.HasField("event"):
                return msg.event

    # ------------------------------------------------------------ helpers
    def run(self, argv, **kw):
        """Starts argv; returns the job id. kw are Run fields (env, cwd, ...)."""
        return self.request(run=pb.Run(argv=list(argv), **kw)).run.job

    def events(self, job, timeout=None):
        """Yields the events of one job until (and including) its terminal
        event. Events of other jobs and watches stay queued, in order, for
        later events()/next_event() calls."""
        while True:
            ev = self._next_event_of(job, timeout)
            yield ev
            if ev.WhichOneof("kind") in TERMINAL:
                return

    def _next_event_of(self, job, timeout):
        for i, ev in enumerate(self.pending_events):
            if _event_job(ev) == job:
                return self.pending_events.pop(i)
        while True:
            msg = self.recv_message(timeout)
            if not msg.HasField("event"):
                continue
            if _event_job(msg.event) == job:
                return msg.event
            self.pending_events.append(msg.event)

    def run_and_wait(self, argv, timeout=None, **kw):
        """Runs argv to completion; returns (stdout bytes, stderr bytes, terminal event)."""
        job = self.run(argv, **kw)
        out = {0: b"", 1: b""}
        for ev in self.events(job, timeout):
            if ev.HasField("output"):
                out[ev.output.stream] += ev.output.data
            terminal = ev
        return out[0], out[1], terminal

    def wait_ready(self, job, timeout=None):
        """Waits for the job's Ready or NotReady event (Run.ready); returns
        (that event, {0: stdout, 1: stderr} seen until then). Raises
        RuntimeError if the job ends without one."""
        out = {0: b"", 1: b""}
        for ev in self.events(job, timeout):
            kind = ev.WhichOneof("kind")
            if kind == "output":
                out[ev.output.stream] += ev.output.data
            elif kind in ("ready", "not_ready"):
                return ev, out
        raise RuntimeError("job %d ended without Ready or NotReady" % job)

    def signal(self, job, sig=15, main_only=False):
        return self.request(signal=pb.Signal(job=job, signal=sig, main_only=main_only))

    def list(self, running_only=False):
        jobs, after = [], 0
        while True:
            r = self.request(list=pb.List(after_job=after, running_only=running_only)).list
            jobs.extend(r.jobs)
            if not r.more or not r.jobs:
                return jobs
            after = r.jobs[-1].job

    def stats(self):
        return self.request(stats=pb.Stats()).stats

    def ping(self, token=0, timeout=None):
        """Liveness: the daemon answers a Ping at once; returns the Pong
        (token echoed). Raises TimeoutError when no answer came in time."""
        return self.request(timeout=timeout, ping=pb.Ping(token=token)).pong

    def attach(self, job, no_output=False, no_backlog=False):
        """Attaches to a job; returns the AttachReply. The backlog (and, for a
        finished job, its terminal event) follow as events."""
        return self.request(attach=pb.Attach(job=job, no_output=no_output,
                                             no_backlog=no_backlog)).attach

    def detach(self, job):
        return self.request(detach=pb.Detach(job=job))

    def write_stdin(self, job, data=b"", eof=False):
        """Writes to a job's stdin (Run.stdin_pipe); returns once the daemon has
        put the data into the pipe."""
        return self.request(write_stdin=pb.WriteStdin(job=job, data=data, eof=eof))
