# SPDX-License-Identifier: BSD-2-Clause
"""ctld.client - the synchronous client: one connection to one daemon.

    import ctld
    with ctld.Client(unix="/run/ctld-bpf.sock") as c:
        out, err, ev = c.run_and_wait(["sh", "-c", "echo hi"])
        job = c.run(["sleep", "60"])       # killed when the with block ends
        print(c.wait(c.run(["true"])).exited.exit_code)

Replies are matched by request id; events that arrive while waiting for a
reply are kept, in order, for events()/next_event(). Leaving the `with`
block kills (SIGKILL, the whole tree) every job this client started and has
not seen end, unless keep_jobs=True. A daemon upgrading in place (Upgrading,
then the connection closes) is followed by events() (and so wait(),
run_and_wait(), wait_ready()) as ctl does: the client connects again,
attaches to its jobs again and skips the output events() gave (by
Output.offset). Other calls, and a client made from a socket, raise an
EOFError saying the daemon is upgrading. Use /usr/bin/python3 (Debian's
python3-protobuf).
"""
import socket
import time

from .proto import (TERMINAL, CtldError, ProtocolError, event_job, frame, hello_request,
                    parse_frame, pb, ready_conditions, split_host, tls_context)

# After Upgrading: how long (in timeouts) the daemon may take to serve again,
# and how many upgrades one client follows (bounds, as ctl's).
UPGRADE_BOUND = 4
MAX_UPGRADES = 16


class Client:
    """One connection. unix: a socket path; tcp: "HOST:PORT"; sock: a stream
    socket already connected to a daemon (for example one made in another
    network namespace), owned by the client from then on. tls = (cert, key,
    ca) wraps a TCP connection (or sock) in mutual TLS. keep_jobs: leave the
    jobs this client started running when it is closed."""

    def __init__(self, unix=None, tcp=None, timeout=10.0, name="ctld.client",
                 tls=None, hello=True, sock=None, keep_jobs=False):
        # where to connect again after an upgrade in place (not a given socket)
        self.where = None if sock is not None else (unix, tcp, tls)
        self.sock = self._connect(sock, unix, tcp, tls, timeout)
        self.timeout = timeout
        self.name = name
        self.keep_jobs = keep_jobs
        self.buf = b""
        self.next_id = 1
        self.pending_events = []
        self.pending_replies = {}  # replies that came while waiting for another id
        self.started = set()  # jobs this client ran and has not seen end
        self.upgrading = False  # the daemon said Upgrading: it closes next
        self.upgrades = 0  # upgrades in place followed
        self.seen = {}  # (job, stream) -> where the output events() gave ends
        self.resumed = set()  # jobs attached again after an upgrade: replays are skipped
        self.hello_reply = None
        if hello:
            try:
                self.hello_reply = self.request(**hello_request(name)).hello
            except BaseException:
                self.close()  # refused (LIMIT, PERMISSION, ...) or closed: no leaked socket
                raise

    @staticmethod
    def _connect(sock, unix, tcp, tls, timeout):
        if sock is None and unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(unix)
            except BaseException:
                sock.close()
                raise
        elif sock is None:
            sock = socket.create_connection(split_host(tcp), timeout=timeout)
        try:
            sock.settimeout(timeout)
            if tls and sock.family != socket.AF_UNIX:
                sock = tls_context(tls).wrap_socket(sock)
        except BaseException:
            sock.close()
            raise
        return sock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            if not self.keep_jobs:
                self.kill_started()
        finally:
            self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def kill_started(self):
        """SIGKILLs the tree of every job this client started and has not
        seen end. A daemon that is gone or a job that ended meanwhile is no
        error: nothing is left to kill then."""
        for job in sorted(self.started):
            try:
                self.request(timeout=min(self.timeout, 5.0), signal=pb.Signal(job=job, signal=9))
            except (CtldError, OSError, EOFError, TimeoutError):
                pass
        self.started.clear()

    # ------------------------------------------------------------ raw frames
    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, request):
        self.sock.sendall(frame(request))

    def recv_message(self, timeout=None):
        """Next Message from the daemon; raises EOFError when it closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            msg, used = parse_frame(self.buf)
            if msg is not None:
                self.buf = self.buf[used:]
                kind = msg.HasField("event") and msg.event.WhichOneof("kind")
                if kind in TERMINAL:
                    self.started.discard(event_job(msg.event))
                self.upgrading = self.upgrading or kind == "upgrading"
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the daemon within the timeout")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("daemon closed the connection" + (
                    "; it is upgrading in place: its jobs run on, connect again and attach "
                    "to them (same ids; Output.offset tells what was seen)"
                    if self.upgrading else ""))
            self.buf += chunk

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

    # ------------------------------------------------------------ jobs
    def run(self, argv, ready=None, **kw):
        """Starts argv; returns the job id. ready: readiness conditions
        (port_ready, log_ready, file_ready: one or a list); kw are the other
        Run fields (env, cwd, timeout_ms, ...). The client is attached to the
        job (events follow) unless detach=True."""
        job = self.request(run=pb.Run(argv=list(argv), ready=ready_conditions(ready), **kw)).run.job
        if not kw.get("detach"):
            self.started.add(job)
        return job

    def events(self, job, timeout=None):
        """Yields the events of one job until (and including) its terminal
        event. Events of other jobs and watches stay queued, in order, for
        later events()/next_event() calls."""
        while True:
            try:
                ev = self._next_event_of(job, timeout)
            except EOFError:
                if not self.upgrading or self.where is None:
                    raise
                self._follow_upgrade(job)
                continue
            if self._unseen(job, ev):
                yield ev
            if ev.WhichOneof("kind") in TERMINAL:
                self.resumed.discard(job)
                self.seen.pop((job, pb.STDOUT), None)
                self.seen.pop((job, pb.STDERR), None)
                return

    def _unseen(self, job, ev):
        """False for output events() gave before (a job attached again after
        an upgrade replays its backlog); a partly given chunk is cut."""
        if not ev.HasField("output"):
            return True
        out, key = ev.output, (job, ev.output.stream)
        end = self.seen.get(key, 0)
        if job in self.resumed:
            if out.offset + len(out.data) <= end:
                return False
            if out.offset < end:
                out.data, out.offset = out.data[end - out.offset:], end
        self.seen[key] = max(end, out.offset + len(out.data))
        return True

    def _follow_upgrade(self, job):
        """The daemon upgraded in place and closed the connection: connect
        again (its listeners wait for the new image), within UPGRADE_BOUND
        timeouts, and attach again to job and to every job we started.
        Raises EOFError when it does not serve again."""
        self.upgrading = False
        self.upgrades += 1
        if self.upgrades > MAX_UPGRADES:
            raise EOFError("daemon upgraded in place more than %d times" % MAX_UPGRADES)
        self.close()
        self._reconnect()
        for j in sorted(self.started | self.resumed | {job}):
            try:
                self.attach(j)
            except CtldError:
                if j == job:
                    raise
            self.resumed.add(j)

    def _reconnect(self):
        """A new connection to where we were (Hello said), or EOFError."""
        bound = UPGRADE_BOUND * self.timeout
        deadline, pause, why = time.monotonic() + bound, 0.05, "no time left"
        while time.monotonic() < deadline:
            self.buf, self.pending_replies = b"", {}  # nothing of the old one is owed
            try:
                self.sock = self._connect(None, *self.where,
                                          min(self.timeout, deadline - time.monotonic()))
                self.hello_reply = self.request(**hello_request(self.name)).hello
                return
            except (OSError, CtldError, EOFError, ProtocolError, ValueError) as e:
                why = str(e) or type(e).__name__
                self.close()
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 2, 1.0)
        raise EOFError("daemon closed the connection; it upgraded in place but the upgrade did "
                       "not complete: not serving again within %g s (%s)" % (bound, why))

    def _next_event_of(self, job, timeout):
        for i, ev in enumerate(self.pending_events):
            if event_job(ev) == job:
                return self.pending_events.pop(i)
        while True:
            msg = self.recv_message(timeout)
            if not msg.HasField("event"):
                continue
            if event_job(msg.event) == job:
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

    def wait(self, job, timeout=None):
        """Waits for a job to end; returns its terminal Event (Exited or
        ExecFailed). A job this client did not start is attached to first
        (without its output)."""
        if job not in self.started:
            self.attach(job, no_output=True)
        for ev in self.events(job, timeout):
            terminal = ev
        return terminal

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

    def kill(self, job, sig=15, grace=None):
        """Signals a job's whole tree; with grace (seconds), whatever of it
        is left that long after gets SIGKILL (Exited.escalated)."""
        grace_ms = 0 if grace is None else max(1, int(grace * 1000))
        return self.request(signal=pb.Signal(job=job, signal=sig, grace_ms=grace_ms))

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
        finished job, its terminal event) follow as events. Without the
        backlog, what the job wrote before stays unseen by events() also
        when an upgrade in place makes it attach again."""
        reply = self.request(attach=pb.Attach(job=job, no_output=no_output,
                                              no_backlog=no_backlog)).attach
        if no_backlog:
            self.seen[(job, pb.STDOUT)] = reply.stdout_offset
            self.seen[(job, pb.STDERR)] = reply.stderr_offset
        return reply

    def detach(self, job):
        return self.request(detach=pb.Detach(job=job))

    def write_stdin(self, job, data=b"", eof=False):
        """Writes to a job's stdin (Run.stdin_pipe); returns once the daemon has
        put the data into the pipe."""
        return self.request(write_stdin=pb.WriteStdin(job=job, data=data, eof=eof))

    # ------------------------------------------------------------ watches
    def watch_port(self, port, addr="", timeout=None, netns="", once=False):
        """Watches a TCP port; returns the watch id. PortListening (already
        set when something listened before), PortClosed and WatchTimeout
        follow as events (watch_events)."""
        return self.request(watch_port=pb.WatchPort(
            port=port, addr=addr, netns=netns, once=once,
            timeout_ms=0 if timeout is None else int(timeout * 1000))).watch.watch

    def watch_file(self, path, kinds=0, size_threshold=None, timeout=None, once=False):
        """Watches a file (kinds: OR of pb.FILE_*, 0 = all but SIZE_REACHED);
        returns the watch id. FileEvent and WatchTimeout follow as events."""
        w = pb.WatchFile(path=path, kinds=kinds, once=once,
                         timeout_ms=0 if timeout is None else int(timeout * 1000))
        if size_threshold is not None:
            w.size_threshold, w.has_size_threshold = size_threshold, True
        return self.request(watch_file=w).watch.watch

    def unwatch(self, watch, kind="port"):
        body = pb.UnwatchPort(watch=watch) if kind == "port" else pb.UnwatchFile(watch=watch)
        return self.request(**{"unwatch_" + kind: body})
