# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end tests: strangers on the network cannot lock clients out.

A daemon with a TLS listener (certificates from tests/make_certs.sh) and a
long --hello-timeout (60 s, so nothing in these tests is cleaned up by the
timeout; only the budget of unauthenticated connections can help).

* 1,100 idle TCP connections that never send a byte, from 20 addresses of
  127/8: a client with a valid certificate still completes its handshake
  and Hello and runs a job, and root on the unix socket runs a job. The
  daemon keeps at most --max-unauthenticated (64) of the idle connections,
  at most 8 per address, and writes none of them a byte (a TLS listener
  never sends plain text). Before, the flood filled all 1,024 client slots:
  the TLS client got a plain-text LIMIT frame ("wrong version number") and
  root on the unix socket "LIMIT: too many clients".
* A flood from 127.0.0.2 evicts only its own connections: a connection from
  127.0.0.1 that waits (no handshake yet) through 1,100 idle connections
  from 127.0.0.2 is still there and completes TLS and Hello, and TLS clients
  from 127.0.0.1 work while 127.0.0.2 keeps connecting.
* --max-clients counts authenticated clients, the unix socket and TCP
  separately: with --max-clients 2 and two TLS clients, a third TLS client
  gets LIMIT as the (encrypted) answer to its Hello, and root on the unix
  socket still gets in.

Everything holds with and without eBPF (CTLD_TEST_MODE).
"""
import collections
import os
import resource
import shutil
import socket
import ssl
import tempfile
import threading
import time
import unittest

from harness import make_certs, wait_for, scaled, Client, CtldError, Daemon, pb

FLOOD = 1100
MAX_UNAUTHENTICATED = 64  # the defaults
PER_SOURCE = 8


def raise_nofile(need):
    """The test process holds the whole flood open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def idle_connection(port, source):
    """A TCP connection from source that will never send a byte."""
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    return s


def state_of(s):
    """'open', 'closed' (EOF or reset, nothing received) or the bytes the daemon sent."""
    try:
        data = s.recv(4096)
    except BlockingIOError:
        return "open"
    except ConnectionResetError:
        return "closed"
    return data if data else "closed"


class StrangersTest(unittest.TestCase):
    """One TLS daemon per test (certificates shared by the class)."""

    @classmethod
    def setUpClass(cls):
        raise_nofile(4 * FLOOD)
        cls.tmp = tempfile.mkdtemp(prefix="ctld-strangers-")
        cls.certs = os.path.join(cls.tmp, "certs")
        make_certs(cls.certs)
        cls.tls = tuple(os.path.join(cls.certs, f) for f in ("client.pem", "client.key",
                                                             "ca.pem"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.flood, self.d = [], None

    def tearDown(self):
        for s in self.flood:
            s.close()
        if self.d is None:
            return
        alive = self.d.alive()
        log = self.d.log()
        self.d.cleanup()
        if not alive:
            self.fail("the daemon died during this test:\n" + log)

    def start(self, *extra):
        """The daemon of this test: TLS, a Hello timeout that never helps."""
        c = lambda f: os.path.join(self.certs, f)  # noqa: E731
        self.d = Daemon("--tls-cert", c("server.pem"), "--tls-key", c("server.key"),
                        "--tls-ca", c("ca.pem"), "--hello-timeout", "60s", *extra)

    def open_flood(self, sources):
        for i in range(FLOOD):
            self.flood.append(idle_connection(self.d.tcp_port, sources[i % len(sources)]))

    def assertTlsClientRuns(self, sock=None, word="tls-ok"):
        with Client(tcp=self.d.tcp, tls=self.tls, sock=sock, timeout=scaled(10)) as c:
            out, _, ev = c.run_and_wait(["echo", word], timeout=scaled(10))
            self.assertEqual((out, ev.exited.exit_code), (word.encode() + b"\n", 0))

    def assertUnixClientRuns(self):
        with self.d.client() as c:
            out, _, ev = c.run_and_wait(["echo", "unix-ok"], timeout=scaled(10))
            self.assertEqual((out, ev.exited.exit_code), (b"unix-ok\n", 0))

    def flood_states(self):
        return [(s.getsockname()[0], state_of(s)) for s in self.flood]

    def test_idle_flood_does_not_lock_out_clients(self):
        self.start()
        sources = ["127.0.1.%d" % i for i in range(1, 21)]
        self.open_flood(sources)
        # The client's connection is queued behind the whole flood, so the
        # daemon has seen every idle connection before it sees the client.
        self.assertTlsClientRuns()
        self.assertUnixClientRuns()

        def settled():
            states = self.flood_states()
            still = [src for src, st in states if st == "open"]
            return states if len(still) <= MAX_UNAUTHENTICATED else None
        states = wait_for(settled, 10, "the daemon to evict the idle flood")
        sent = [st for _, st in states if st not in ("open", "closed")]
        self.assertEqual(sent, [], "the TLS listener wrote plain text to a stranger")
        per_source = collections.Counter(src for src, st in states if st == "open")
        self.assertLessEqual(max(per_source.values(), default=0), PER_SOURCE, per_source)
        with self.d.client() as c:
            st = c.stats()
            self.assertLessEqual(st.unauthenticated, MAX_UNAUTHENTICATED)
            self.assertGreaterEqual(st.unauthenticated_evicted, FLOOD - MAX_UNAUTHENTICATED)
        self.assertTlsClientRuns(word="after")  # and again, with the flood still connected

    def test_flood_from_one_address_spares_another(self):
        self.start()
        waiting = idle_connection(self.d.tcp_port, "127.0.0.1")
        waiting.setblocking(True)
        self.open_flood(["127.0.0.2"])
        # The flood from 127.0.0.2 only ever evicted its own connections:
        # the one from 127.0.0.1 (older than all of them) is still there.
        self.assertTlsClientRuns(sock=waiting, word="waited")
        wait_for(lambda: sum(st == "open" for _, st in self.flood_states()) <= PER_SOURCE, 10,
                 "127.0.0.2 to be held to its share")
        self.assertUnixClientRuns()

        # 127.0.0.2 keeps connecting while clients from 127.0.0.1 come and go.
        stop = threading.Event()
        made = [0]

        def keep_flooding():
            held = collections.deque()
            deadline = time.monotonic() + scaled(20)
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    held.append(idle_connection(self.d.tcp_port, "127.0.0.2"))
                    made[0] += 1
                except OSError:
                    time.sleep(0.01)
                while len(held) > 200:
                    held.popleft().close()
            for s in held:
                s.close()
        t = threading.Thread(target=keep_flooding)
        t.start()
        try:
            wait_for(lambda: made[0] > 200, 10, "the background flood to start")
            for i in range(5):
                self.assertTlsClientRuns(word="during-%d" % i)
        finally:
            stop.set()
            t.join()
        self.assertGreater(made[0], 200)


    def connect(self):
        """A TLS client, or None while the daemon still counts a closed one."""
        try:
            return Client(tcp=self.d.tcp, tls=self.tls)
        except CtldError as e:
            if e.code != pb.LIMIT:
                raise
            return None

    def test_tcp_clients_never_fill_the_unix_socket(self):
        # --max-clients 2: the unix socket and TCP have two client slots each.
        self.start("--max-clients", "2")
        first = [Client(tcp=self.d.tcp, tls=self.tls), Client(tcp=self.d.tcp, tls=self.tls)]
        try:
            with self.assertRaises(CtldError) as cm:
                Client(tcp=self.d.tcp, tls=self.tls)  # TLS worked; the Hello got the answer
            self.assertEqual(cm.exception.code, pb.LIMIT)
            self.assertIn("too many clients", cm.exception.text)
            with self.d.client() as c:  # root on the unix socket has slots of its own
                out, _, _ = c.run_and_wait(["echo", "unix"], timeout=scaled(10))
                self.assertEqual(out, b"unix\n")
                self.assertEqual(c.stats().clients, 3)
            first.pop().close()
            with wait_for(self.connect, 5, "the slot to be free") as c:
                out, _, _ = c.run_and_wait(["echo", "tcp"], timeout=scaled(10))
                self.assertEqual(out, b"tcp\n")
        finally:
            for c in first:
                c.close()


if __name__ == "__main__":
    unittest.main()
