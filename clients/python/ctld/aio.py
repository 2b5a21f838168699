# SPDX-License-Identifier: BSD-2-Clause
"""ctld.aio - asyncio: a Connection per daemon, and Cluster, many daemons at once.

    import asyncio, ctld

    async def main():
        async with ctld.Cluster("10.0.0.[1-8]:7878", tls=(cert, key, ca)) as c:
            srv = await c.start(["redis-server"], ready=ctld.port_ready(6379), nodes=["10.0.0.1"])
            for r in await c.run(["hostname"], timeout=30):
                print(r.host, r.status, r.stdout, r.error)
    asyncio.run(main())

A node that cannot be reached, whose command cannot run or whose daemon goes
silent is a Result with `error` set; the other nodes carry on. A daemon that
upgrades in place (SIGUSR2: it says Upgrading, closes the connection and
serves the same addresses and jobs from its new image) is followed: the
Cluster connects to it again, attaches to its jobs again and drops the
output it already has (by Output.offset), so results are whole. A connection
lost without Upgrading (a crash) stays an error: the jobs' state is unknown
then. Leaving the
`async with` block SIGKILLs the tree of every job the cluster started and
has not seen end (unless keep_jobs=True), then closes the connections.
"""
import asyncio
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import Optional

from .proto import (TERMINAL, CtldError, ProtocolError, event_job, event_watch, frame,
                    hello_request, parse_frame, pb, ready_conditions, split_host, tls_context)
from . import files
from .timeline import Timeline

# How long a node that said Upgrading may take to serve again, in
# connect_timeouts (its new image loads its handover and kernel programs
# first; connections made meanwhile wait in the listen queue).
UPGRADE_BOUND = 4
# Upgrades in place a Cluster follows on one node (a bound, as ctl's, so a
# daemon saying Upgrading on every connection cannot keep us for ever).
MAX_UPGRADES = 16


class NodeError(Exception):
    """A node's connection failed or fell silent."""


@dataclass
class Timings:
    """When things happened. sent is time.monotonic() when the Run went out;
    launched, ready, exited: seconds after sent when the event arrived here.
    wall, time_to_ready, user, sys: the daemon's own measures (Exited.wall_ns
    from exec to exit, Ready.time_to_ready_ns from exec to ready, CPU time)."""
    sent: float = 0.0
    launched: Optional[float] = None
    ready: Optional[float] = None
    exited: Optional[float] = None
    wall: Optional[float] = None
    time_to_ready: Optional[float] = None
    user: Optional[float] = None
    sys: Optional[float] = None
    max_rss_kb: Optional[int] = None


@dataclass
class Result:
    """One node's outcome. exit_code is None when no exit status exists: the
    job was killed by `signal`, or `error` says why (cannot connect, cannot
    execute, not ready, timed out, connection lost)."""
    host: str
    job: int = 0
    exit_code: Optional[int] = None
    signal: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    error: Optional[str] = None
    timed_out: bool = False
    timings: Timings = field(default_factory=Timings)
    terminal: Optional[object] = None  # the Exited or ExecFailed event

    @property
    def ok(self):
        return self.error is None and self.exit_code == 0

    @property
    def status(self):
        """A shell's status: exit_code, 128+signal, or None."""
        return 128 + self.signal if self.signal else self.exit_code


@dataclass
class Job:
    """A job a Cluster started (or attached to) on one node. ready: the Ready
    or NotReady event when the Run had conditions. result fills in as the
    job's events arrive (Cluster.wait completes it)."""
    host: str
    job: int = 0
    error: Optional[str] = None
    ready: Optional[object] = None
    result: Result = None
    # stream -> where the output seen ends (Output.offset + length): what an
    # attach again replays is dropped up to there
    seen: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.result is None:
            self.result = Result(self.host, self.job, error=self.error)


@dataclass
class WatchResult:
    """A watch on one node: its first event (PortListening, FileEvent or
    WatchTimeout), or error."""
    host: str
    event: Optional[object] = None
    error: Optional[str] = None


def node_list(hosts):
    """Host names from a ClusterShell node set string ("node[1-4]:7878",
    "a:7001,b:7002") or an iterable of names (IPv6 "[::1]:7878" and
    "unix:/path" need the iterable: brackets are node-set syntax)."""
    if isinstance(hosts, str):
        from ClusterShell.NodeSet import NodeSet  # Debian: python3-clustershell
        return list(NodeSet(hosts))
    return [str(h) for h in hosts]


def describe(exc):
    """One line for why a node could not be used."""
    if isinstance(exc, asyncio.TimeoutError):
        return "connect: timed out"
    if isinstance(exc, ssl.SSLError):  # before ValueError: a verify error is both
        return "TLS: %s" % (getattr(exc, "verify_message", None) or exc.reason or exc)
    if isinstance(exc, (NodeError, ValueError)):
        return str(exc)
    if isinstance(exc, CtldError):
        return "refused: %s" % exc
    if isinstance(exc, OSError) and exc.errno:
        return "connect: " + os.strerror(exc.errno)
    return "%s: %s" % (type(exc).__name__, exc)


# What connecting to a node and saying Hello can fail with (describe() words it).
CONNECT_ERRORS = (OSError, ssl.SSLError, asyncio.TimeoutError, CtldError, NodeError,
                  ProtocolError, ValueError)


class _Lost:
    """Put in every event queue when the connection ends."""

    def __init__(self, exc):
        self.exc = exc


class Connection:
    """One daemon over asyncio streams. Replies are futures matched by
    request id; events go to a queue per job or watch, made on first use, so
    none is lost between a Run's reply and the first next_event(). Every
    liveness/3 s of silence a Ping goes out; after liveness s without a byte
    the connection is given up (NodeError)."""

    def __init__(self, host, reader, writer, liveness):
        self.host = host
        self.reader, self.writer = reader, writer
        self.liveness = liveness
        self.next_id = 1
        self.replies = {}  # request id -> future
        self.queues = {}  # ("job"|"watch", id) -> asyncio.Queue
        self.started = set()  # jobs this connection ran and has not seen end
        self.lost = None
        self.hello = None
        self.heard = time.monotonic()
        self.timeline = None  # a ctld.timeline.Timeline that sees every event
        self.upgrading = False  # the daemon said Upgrading: it closes next
        self.tasks = [asyncio.ensure_future(self._read_loop())]
        if liveness:
            self.tasks.append(asyncio.ensure_future(self._keep_alive()))

    @classmethod
    async def open(cls, host, tls=None, connect_timeout=5.0, liveness=30.0, name="ctld.aio"):
        """Connects (host: "name[:port]", "[v6]:port" or "unix:/path") and
        says Hello, within connect_timeout."""
        async def connect():
            if host.startswith("unix:"):
                return await asyncio.open_unix_connection(host[5:])
            addr, port = split_host(host)
            return await asyncio.open_connection(addr, port,
                                                 ssl=tls_context(tls) if tls else None)
        reader, writer = await asyncio.wait_for(connect(), connect_timeout)
        conn = cls(host, reader, writer, liveness)
        try:
            reply = await asyncio.wait_for(conn.request(**hello_request(name)), connect_timeout)
        except BaseException:
            await conn.close()
            raise
        conn.hello = reply.hello
        return conn

    async def close(self):
        for t in self.tasks:
            t.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
        self._fail(NodeError("%s: connection closed" % self.host))

    # ------------------------------------------------------------ receiving
    async def _read_loop(self):
        buf = bytearray()
        try:
            while True:
                data = await self.reader.read(1 << 16)
                if not data:
                    raise NodeError("%s: the daemon closed the connection%s" % (
                        self.host, "; it is upgrading in place" if self.upgrading else ""))
                self.heard = time.monotonic()
                buf += data
                while True:
                    msg, used = parse_frame(buf)
                    if msg is None:
                        break
                    del buf[:used]
                    self._dispatch(msg)
        except asyncio.CancelledError:
            raise
        except (OSError, ssl.SSLError, ProtocolError, NodeError, CtldError) as e:
            self._fail(e if isinstance(e, NodeError) else NodeError("%s: %s" % (self.host, e)))

    def _dispatch(self, msg):
        if msg.HasField("reply"):
            r = msg.reply
            if r.id == 0 and r.HasField("error"):  # about the connection: it closes next
                raise CtldError(r.error)
            fut = self.replies.pop(r.id, None)
            if fut is not None and not fut.done():
                fut.set_result(r)
            return
        ev = msg.event
        if ev.WhichOneof("kind") == "upgrading":  # the connection closes next
            self.upgrading = True
            return
        if self.timeline is not None:
            self.timeline.add_event(self.host, ev, time.time_ns())
        job = event_job(ev)
        if job is not None:
            if ev.WhichOneof("kind") in TERMINAL:
                self.started.discard(job)
            self._queue(("job", job)).put_nowait(ev)
        else:
            self._queue(("watch", event_watch(ev))).put_nowait(ev)

    def _queue(self, key):
        q = self.queues.get(key)
        if q is None:
            q = self.queues[key] = asyncio.Queue()
            if self.lost is not None:
                q.put_nowait(_Lost(self.lost))
        return q

    def _fail(self, exc):
        if self.lost is not None:
            return
        self.lost = exc
        for fut in self.replies.values():
            if not fut.done():
                fut.set_exception(exc)
        self.replies.clear()
        for q in self.queues.values():
            q.put_nowait(_Lost(exc))

    async def _keep_alive(self):
        step = self.liveness / 3.0
        while self.lost is None:
            await asyncio.sleep(step)
            quiet = time.monotonic() - self.heard
            if quiet >= self.liveness:
                self._fail(NodeError("%s: no answer for %.1f s (liveness)" % (self.host, quiet)))
                self.writer.close()
                return
            if quiet >= step:
                self._send(ping=pb.Ping(token=1))

    # ------------------------------------------------------------ requests
    def _send(self, **body):
        rid = self.next_id
        self.next_id += 1
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # no "never retrieved"
        self.replies[rid] = fut
        self.writer.write(frame(pb.Request(id=rid, **body)))
        return fut

    async def request(self, **body):
        """Sends a request; returns its Reply. Raises CtldError for an Error
        reply, NodeError when the connection is gone."""
        if self.lost is not None:
            raise self.lost
        fut = self._send(**body)
        try:
            await self.writer.drain()
        except (OSError, ssl.SSLError) as e:
            self._fail(NodeError("%s: %s" % (self.host, e)))
        reply = await fut  # set, or failed by _fail
        if reply.HasField("error") and reply.error.code != pb.OK:
            raise CtldError(reply.error)
        return reply

    async def sample_clock(self, samples=1):
        """Ping round trips measuring the daemon's clock against ours, into
        self.timeline (a daemon that sends no clock adds nothing)."""
        for _ in range(samples):
            sent = time.time_ns()
            reply = await self.request(ping=pb.Ping(token=sent))
            self.timeline.add_clock(self.host, sent, time.time_ns(), reply.pong.realtime_ns)

    async def _sample_clock_every(self, period):
        while self.lost is None:
            await asyncio.sleep(period)
            try:
                await self.sample_clock()
            except (NodeError, CtldError):
                return

    def follow_timeline(self, timeline, period=1.0):
        """Records every event, and the clock at once and every period s."""
        self.timeline = timeline
        timeline.add_clock(self.host, 0, 0, 0)  # the node has a row even without samples
        self.tasks.append(asyncio.ensure_future(self._sample_clock_every(period)))

    def fail_job(self, job, exc):
        """The job's events end with exc (after those already queued)."""
        self._queue(("job", job)).put_nowait(_Lost(exc))

    async def next_event(self, kind, ident):
        """The next event of a job (kind "job") or watch ("watch"). Raises
        NodeError once the connection is gone and the queue is empty."""
        q = self._queue((kind, ident))
        ev = await q.get()
        if isinstance(ev, _Lost):
            q.put_nowait(ev)  # for whoever asks next
            raise ev.exc
        return ev

    async def run(self, argv, ready=None, **kw):
        """Starts argv attached to this connection; returns the job id."""
        reply = await self.request(run=pb.Run(argv=list(argv), ready=ready_conditions(ready),
                                              **kw))
        self.started.add(reply.run.job)
        return reply.run.job

    async def kill_started(self):
        """SIGKILLs the tree of every job started here and not seen ending."""
        for job in sorted(self.started):
            try:
                await asyncio.wait_for(self.request(signal=pb.Signal(job=job, signal=9)), 5)
            except (CtldError, NodeError, OSError, asyncio.TimeoutError):
                pass  # ended meanwhile, or the daemon is gone: nothing to kill
        self.started.clear()


def absorb(result, ev):
    """Adds one job event to a Result (output, times, how it ended)."""
    kind = ev.WhichOneof("kind")
    t = time.monotonic() - result.timings.sent
    if kind == "output":
        if ev.output.stream == pb.STDERR:
            result.stderr += ev.output.data
        else:
            result.stdout += ev.output.data
    elif kind == "launched":
        result.timings.launched = t
    elif kind == "ready":
        result.timings.ready = t
        result.timings.time_to_ready = ev.ready.time_to_ready_ns / 1e9
    elif kind == "not_ready":
        result.error = result.error or "not ready: " + ev.not_ready.text
    elif kind == "exec_failed":
        result.error = "cannot execute: " + ev.exec_failed.text
        result.terminal = ev
    elif kind == "exited":
        x = ev.exited
        result.terminal, result.timings.exited = ev, t
        result.signal, result.timed_out = x.signal, x.timed_out
        result.exit_code = None if x.signal else x.exit_code
        result.timings.wall = x.wall_ns / 1e9
        result.timings.user, result.timings.sys = x.user_us / 1e6, x.sys_us / 1e6
        result.timings.max_rss_kb = x.max_rss_kb
        if x.timed_out:
            result.error = result.error or "timed out"
        elif x.status_unknown:
            result.error = result.error or "exit status unknown (adopted job)"
    return kind


def unseen(job, ev):
    """ev without the output job has already seen (Output.offset: attaching
    again replays the backlog), or None when it saw all of it."""
    if ev.WhichOneof("kind") != "output":
        return ev
    out = ev.output
    end = job.seen.get(out.stream, 0)
    if out.offset + len(out.data) <= end:
        return None
    if out.offset < end:  # partly seen: the rest only
        out.data, out.offset = out.data[end - out.offset:], end
    job.seen[out.stream] = out.offset + len(out.data)
    return ev


class Cluster:
    """Many daemons at once. hosts: a ClusterShell node set string or an
    iterable of names ("name", "name:port", "unix:/path"). tls: (cert, key,
    ca), or an ssl.SSLContext, for mutual TLS. fanout: how many nodes are
    worked on at once (connects and requests; as clush's fanout; jobs once
    started run on all nodes together). connect_timeout: per node, connect
    and Hello. liveness: a node silent this long is given up (0: never).
    keep_jobs: leave running what the cluster started when it is left.
    A node upgrading in place is connected to again within
    UPGRADE_BOUND * connect_timeout s; its jobs are attached to again."""

    def __init__(self, hosts, tls=None, fanout=64, connect_timeout=5.0, liveness=30.0,
                 keep_jobs=False, name="ctld.aio", timeline=False):
        self.hosts = node_list(hosts)
        # timeline: every event of every node, on our clock (see timeline())
        self._timeline = Timeline() if timeline else None
        # made once: unreadable certificate files are the caller's error, at once
        self.tls, self.fanout = tls and tls_context(tls), fanout
        self.connect_timeout, self.liveness = connect_timeout, liveness
        self.keep_jobs, self.name = keep_jobs, name
        self.conns = {}  # host -> Connection
        self.errors = {}  # host -> why it has no connection
        self._sem = None
        self._following = {}  # host -> ids of the jobs whose events are wanted
        self._returning = {}  # Connection lost to an upgrade -> task bringing its node back
        self._upgrades = {}  # host -> upgrades in place followed there

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc):
        try:
            if not self.keep_jobs:
                await self.kill_started()
        finally:
            await self.close()

    async def _each(self, items, fn):
        """fn(item) for every item, at most fanout at once; results in order."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.fanout)

        async def bounded(item):
            async with self._sem:
                return await fn(item)
        return list(await asyncio.gather(*(bounded(i) for i in items)))

    async def connect(self):
        """Connects to every host not connected yet; returns {host: error}
        for those that failed (also kept in self.errors)."""
        async def one(host):
            try:
                conn = await Connection.open(host, self.tls, self.connect_timeout,
                                             self.liveness, self.name)
                self.conns[host] = conn
                self.errors.pop(host, None)
                if self._timeline is not None:
                    conn.follow_timeline(self._timeline)
                    await conn.sample_clock(4)  # back to back: the tightest bound
            except CONNECT_ERRORS as e:
                self.errors[host] = describe(e)
        await self._each([h for h in self.hosts if h not in self.conns], one)
        return dict(self.errors)

    async def close(self):
        for task in self._returning.values():
            task.cancel()
        conns, self.conns = list(self.conns.values()), {}
        await asyncio.gather(*(c.close() for c in conns))

    async def kill_started(self):
        await asyncio.gather(*(c.kill_started() for c in self.conns.values()))

    # ------------------------------------------------------------ files
    def _sync_client(self, host):
        """A ctld.Client of its own to host (file transfers are the sync
        ctld.files functions, run in a thread per node)."""
        from .client import Client
        if host.startswith("unix:"):
            return Client(unix=host[5:], timeout=self.connect_timeout, name=self.name)
        return Client(tcp=host, tls=self.tls, timeout=self.connect_timeout, name=self.name)

    async def _transfer(self, fn, nodes):
        """fn(client, host) on every node (at most fanout at once), each in a
        thread with a connection of its own; {host: error} for the failed."""
        failed = {}

        def one_sync(host):
            with self._sync_client(host) as c:
                return fn(c, host)

        async def one(host):
            if host in self.errors:
                failed[host] = self.errors[host]
                return None
            try:
                return await asyncio.to_thread(one_sync, host)
            except (OSError, CtldError, NodeError, ProtocolError, ValueError,
                    files.TransferError) as e:
                failed[host] = describe(e)
                return None
        results = await self._each(self._targets(nodes), one)
        return dict(zip(self._targets(nodes), results)), failed

    async def put(self, local, remote, nodes=None, user=""):
        """Copies local (a file or a directory tree) to remote (absolute; %h
        is the node's name) on every node, atomically (ctld.files.put).
        Returns {host: error} for the nodes where it failed."""
        _, failed = await self._transfer(
            lambda c, host: files.put(c, local, remote.replace("%h", host), user=user), nodes)
        return failed

    async def get(self, remote, localdir, nodes=None, user=""):
        """Copies remote (%h: the node's name) from every node into
        localdir/<node>/ (ctld.files.get). Returns ({host: files written},
        {host: error})."""
        def one(c, host):
            return files.get(c, remote.replace("%h", host),
                             os.path.join(localdir, host.replace("/", "_")), user=user)["files"]
        return await self._transfer(one, nodes)

    def timeline(self):
        """The ctld.timeline.Timeline of this cluster (Cluster(timeline=True)):
        every event of every node on our clock, each node's clock offset
        measured at connect time and every second; .write(path) gives the
        Chrome/Perfetto trace `ctl --timeline` writes."""
        if self._timeline is None:
            raise ValueError("Cluster(..., timeline=True) records a timeline")
        return self._timeline

    def _targets(self, nodes):
        return self.hosts if nodes is None else node_list(nodes)

    # ------------------------------------------------------------ jobs
    async def start(self, argv, ready=None, ready_timeout=None, timeout=None, nodes=None, **kw):
        """Starts argv on every node (or only nodes); returns a Job per node
        once it launched and, with ready conditions, once it is ready or
        cannot be (Job.error: "not ready: ..."). timeout (s): the daemon
        kills the job's tree after this long. kw: other Run fields."""
        if timeout is not None:
            kw["timeout_ms"] = max(1, int(timeout * 1000))
        if ready_timeout is not None:
            kw["ready_timeout_ms"] = max(1, int(ready_timeout * 1000))
        conds = ready_conditions(ready)

        async def one(host):
            conn = self.conns.get(host)
            if conn is None:
                return Job(host, error=self.errors.get(host, "not in this cluster"))
            job = Job(host)
            job.result.timings.sent = time.monotonic()
            try:
                job.job = job.result.job = await conn.run(argv, ready=conds, **kw)
                self._follow(job)
                if self._timeline is not None:
                    self._timeline.name_job(host, job.job, " ".join(argv)[:60])
                await self._until_started(job, bool(conds), ready_timeout)
            except (CtldError, NodeError) as e:
                job.error = job.result.error = str(e)
            return job
        return await self._each(self._targets(nodes), one)

    async def _until_started(self, job, wants_ready, ready_timeout):
        """Consumes the job's events into its result until Launched (and
        Ready or NotReady when asked) or its end. The daemon decides
        readiness within ready_timeout; waiting here is bounded too (with
        room for a slow node), because a daemon older than readiness ignores
        Run.ready and would leave us waiting for ever."""
        bound = None if ready_timeout is None else ready_timeout * 1.5 + 5.0
        deadline = None if bound is None else time.monotonic() + bound
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                ev = await asyncio.wait_for(self._next_event(job), left)
            except asyncio.TimeoutError:
                job.error = job.result.error = (
                    "no Ready or NotReady within %g s (does the daemon know readiness?)" % bound)
                return
            kind = absorb(job.result, ev)
            if kind in ("ready", "not_ready"):
                job.ready = ev
            if kind == "not_ready":
                job.error = job.result.error
            if kind in TERMINAL:
                job.error = job.error or job.result.error
                return
            if kind == "launched" and not wants_ready or kind in ("ready", "not_ready"):
                return

    async def wait(self, jobs):
        """Waits for every job to end; returns their Results, in order."""
        async def one(job):
            # a node lost before has nothing more to say; one lost from now
            # on raises (_next_event)
            lost_before = job.host not in self.conns
            while job.job and job.result.terminal is None and not lost_before:
                try:
                    absorb(job.result, await self._next_event(job))
                except NodeError as e:
                    job.result.error = "%s; job %d's state is unknown" % (e, job.job)
                    break
            if job.result.error is None and job.error:
                job.result.error = job.error
            return job.result
        return await asyncio.gather(*(one(j) for j in jobs))

    async def run(self, argv, ready=None, timeout=None, nodes=None, **kw):
        """Runs argv on every node (or only nodes) to its end; returns a
        Result per node, in order. All output is kept in memory: for long
        streams use start() and events()."""
        return await self.wait(await self.start(argv, ready=ready, timeout=timeout, nodes=nodes,
                                                **kw))

    async def kill(self, jobs, signal=15, grace=None):
        """Signals the tree of every job still running; with grace (s),
        SIGKILL follows for what is left. Returns {host: error} for the
        nodes where that failed (a job that already ended is no failure)."""
        failed = {}

        async def one(job):
            conn = self.conns.get(job.host)
            if conn is None or not job.job or job.result.terminal is not None:
                return
            grace_ms = 0 if grace is None else max(1, int(grace * 1000))
            try:
                await conn.request(signal=pb.Signal(job=job.job, signal=signal, grace_ms=grace_ms))
            except CtldError as e:
                if e.code != pb.NOT_FOUND:
                    failed[job.host] = str(e)
            except NodeError as e:
                failed[job.host] = str(e)
        await self._each(jobs, one)
        return failed

    async def attach(self, host, job, backlog=True):
        """Attaches to a job (started by anyone) on host; returns a Job whose
        events (its recent output first, with backlog) wait() and events()
        then consume."""
        j = Job(host, job)
        conn = self.conns.get(host)
        if conn is None:
            j.error = j.result.error = self.errors.get(host, "not in this cluster")
            return j
        try:
            reply = await conn.request(attach=pb.Attach(job=job, no_backlog=not backlog))
            if not backlog:  # what came before stays unseen, also after an upgrade
                j.seen = {pb.STDOUT: reply.attach.stdout_offset,
                          pb.STDERR: reply.attach.stderr_offset}
            self._follow(j)
        except (CtldError, NodeError) as e:
            j.error = j.result.error = str(e)
        return j

    async def events(self, jobs):
        """Yields (job, event) for every event of these jobs, as they come,
        until each has ended (or its node was lost: the event is then None)."""
        merged = asyncio.Queue()

        async def pump(job):
            lost_before = job.host not in self.conns
            try:
                while job.job and job.result.terminal is None and not lost_before:
                    ev = await self._next_event(job)
                    absorb(job.result, ev)
                    await merged.put((job, ev))
            except NodeError as e:
                job.result.error = str(e)
                await merged.put((job, None))
            finally:
                await merged.put(None)
        pumps = [asyncio.ensure_future(pump(j)) for j in jobs]
        try:
            left = len(pumps)
            while left:
                item = await merged.get()
                if item is None:
                    left -= 1
                else:
                    yield item
        finally:
            for p in pumps:
                p.cancel()

    # ------------------------------------------------------------ upgrades
    def _follow(self, job):
        self._following.setdefault(job.host, set()).add(job.job)

    async def _next_event(self, job):
        """The job's next event from its node. A node upgrading in place is
        followed (_come_back): the events go on from its new connection,
        without the output the job has seen. Raises NodeError when the
        node is lost (a connection that ends without Upgrading included)."""
        while True:
            conn = self.conns.get(job.host)
            if conn is None:
                raise NodeError(self.errors.get(job.host, "%s: not connected" % job.host))
            try:
                ev = unseen(job, await conn.next_event("job", job.job))
            except NodeError:
                if not conn.upgrading:
                    raise
                await self._come_back(job.host, conn)
                continue
            if ev is None:
                continue
            if ev.WhichOneof("kind") in TERMINAL:
                self._following.get(job.host, set()).discard(job.job)
            return ev

    async def _come_back(self, host, old):
        """Waits until host, whose connection old ended after Upgrading, is
        connected again (or given up: then self.errors says why). One
        reconnect per lost connection, whichever job notices first."""
        task = self._returning.get(old)
        if task is None:
            task = self._returning[old] = asyncio.ensure_future(self._reconnect(host, old))
        await asyncio.shield(task)

    async def _reconnect(self, host, old):
        """Connects to host again after its upgrade in place, retrying with
        backoff for UPGRADE_BOUND * connect_timeout s, and attaches to
        every job followed there (with backlog: unseen() drops what was
        seen; attaching also owns a kill-on-disconnect job again)."""
        await old.close()
        self._upgrades[host] = self._upgrades.get(host, 0) + 1
        if self._upgrades[host] > MAX_UPGRADES:
            self._give_up(host, "%s: the daemon upgraded in place more than %d times while "
                                "followed" % (host, MAX_UPGRADES))
            return
        conn = await self._connect_again(host)
        if conn is None:
            return
        conn.started = set(old.started)  # still ours: kill_started kills them
        if self._timeline is not None:
            conn.follow_timeline(self._timeline)
        self.conns[host] = conn
        for job in sorted(self._following.get(host, ())):
            try:
                await conn.request(attach=pb.Attach(job=job))
            except CtldError as e:
                conn.fail_job(job, NodeError("%s: job %d after the upgrade: %s" % (host, job, e)))
            except NodeError:
                return  # lost again: its queues say so

    async def _connect_again(self, host):
        """A new Connection to host within the upgrade's bound, or None
        (host then leaves self.conns, self.errors says why)."""
        bound = UPGRADE_BOUND * self.connect_timeout
        deadline = time.monotonic() + bound
        pause, why = 0.05, "no time left"
        while time.monotonic() < deadline:
            left = deadline - time.monotonic()
            try:
                return await Connection.open(host, self.tls, min(self.connect_timeout, left),
                                             self.liveness, self.name)
            except CONNECT_ERRORS as e:
                why = describe(e)
            await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 2, 1.0)
        self._give_up(host, "%s: the daemon upgraded in place but the upgrade did not complete:"
                            " not serving again within %g s (%s)" % (host, bound, why))
        return None

    def _give_up(self, host, why):
        self.conns.pop(host, None)
        self.errors[host] = why

    # ------------------------------------------------------------ watches
    async def watch_port(self, port, addr="", timeout=None, nodes=None):
        """Waits until something listens on port on every node (or only
        nodes): a WatchResult per node with PortListening, or WatchTimeout
        after timeout (s)."""
        body = pb.WatchPort(port=port, addr=addr, once=True,
                            timeout_ms=0 if timeout is None else max(1, int(timeout * 1000)))
        return await self._watch(dict(watch_port=body), nodes)

    async def watch_file(self, path, size=None, kinds=0, timeout=None, nodes=None):
        """Waits for a file event (with size: the file reaching size bytes)
        on every node (or only nodes): a WatchResult per node."""
        body = pb.WatchFile(path=path, kinds=kinds, once=True,
                            timeout_ms=0 if timeout is None else max(1, int(timeout * 1000)))
        if size is not None:
            body.size_threshold, body.has_size_threshold = size, True
            body.kinds = body.kinds or pb.FILE_SIZE_REACHED
        return await self._watch(dict(watch_file=body), nodes)

    async def _watch(self, request, nodes):
        async def one(host):
            conn = self.conns.get(host)
            if conn is None:
                return WatchResult(host, error=self.errors.get(host, "not in this cluster"))
            try:
                watch = (await conn.request(**request)).watch.watch
                return WatchResult(host, await conn.next_event("watch", watch))
            except (CtldError, NodeError) as e:
                return WatchResult(host, error=str(e))
        return await self._each(self._targets(nodes), one)


__all__ = ["Cluster", "Connection", "Job", "NodeError", "Result", "Timings", "WatchResult",
           "node_list"]
