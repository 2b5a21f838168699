# SPDX-License-Identifier: BSD-2-Clause
"""End-to-end security tests: who may talk to the daemon, and with what
rights its jobs run.

* Mutual TLS 1.3 with certificates made by tests/make_certs.sh (the script
  `make certs` runs), driven by the Python client and by raw ssl sockets: a
  CA-signed client is served; no certificate, a self-signed one, one from
  another CA, TLS 1.2 and plain bytes get nothing (not one Reply) and the
  daemon keeps serving.
* A non-loopback TCP address without TLS is refused at start-up (exit 1, a
  clear message, nothing left behind); with --insecure the daemon starts and
  says INSECURE. The non-loopback address lives on a veth interface in a
  network namespace made for the test.
* The unix socket: mode 0600, its directory checked (world/group-writable
  without sticky bit, symlink, foreign owner: refused), a stale socket file
  replaced, a live daemon's socket never stolen, a foreign file never touched.
* Least privilege for jobs: user, group and supplementary groups, no
  capabilities left, files and directories the user may not touch
  (ExecFailed EACCES with the step), rlimits, umask, clean environment, own
  session and process group, `ctl run --user`.

Everything holds with and without eBPF (CTLD_TEST_MODE); pin checks are bpf-only.
"""
import errno
import grp
import os
import pwd
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from harness import make_certs, wait_for, not_under_valgrind, ROOT, Client, CtldError, Daemon, DaemonTestCase, pb
from ctld_client import frame
from google.protobuf.internal.decoder import _DecodeVarint

MAKE_CERTS = os.path.join(ROOT, "tests", "make_certs.sh")
NOBODY = pwd.getpwnam("nobody")
# A uid/gid no account uses: the only processes it has are the test's own.
LONER_ID = 54321


def hello_frame(rid=1):
    return frame(pb.Request(id=rid, hello=pb.Hello(protocol_version=1, client="test_security")))


def decode_all(data):
    """Messages in a byte string of daemon frames (raises on garbage)."""
    msgs, pos = [], 0
    while pos < len(data):
        n, pos = _DecodeVarint(data, pos)
        msgs.append(pb.Message.FromString(data[pos:pos + n]))
        pos += n
    return msgs


def start_refused(d, timeout=30):
    """Runs a prepared (not started) Daemon's command line, expecting it to
    give up at start-up; returns (exit code, its output)."""
    p = subprocess.run(d.args, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def set_listen(d, addr):
    """Replaces the harness's --listen 127.0.0.1:0 by addr."""
    i = d.args.index("--listen")
    d.args[i + 1] = addr


# ================================================================ certificates

class MakeCertsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ctld-certs-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def openssl(self, *args):
        return subprocess.run(["openssl"] + list(args), capture_output=True, text=True,
                              check=True, cwd=self.dir).stdout

    def snapshot(self, d):
        out = {}
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                out[name] = f.read()
        return out

    def test_certificates_modes_and_idempotence(self):
        d = os.path.join(self.dir, "certs")
        out = make_certs(d)
        for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key"):
            self.assertIn(name, out)
        self.assertIn(d, out)
        self.assertIn("--tls-cert %s/server.pem" % d, out)
        self.assertIn("--tls-key %s/client.key" % d, out)
        self.assertEqual(os.stat(d).st_mode & 0o777, 0o700)
        for key in ("ca.key", "server.key", "client.key"):
            self.assertEqual(os.stat(os.path.join(d, key)).st_mode & 0o777, 0o600, key)
        for cert in ("ca.pem", "server.pem", "client.pem"):
            self.assertEqual(os.stat(os.path.join(d, cert)).st_mode & 0o777, 0o644, cert)
        self.openssl("verify", "-CAfile", d + "/ca.pem", d + "/server.pem", d + "/client.pem")
        text = self.openssl("x509", "-in", d + "/server.pem", "-noout", "-text")
        self.assertIn("IP Address:127.0.0.1", text)
        self.assertIn("IP Address:0:0:0:0:0:0:0:1", text)
        self.assertIn("DNS:localhost", text)
        self.assertIn("TLS Web Server Authentication", text)
        self.assertIn("prime256v1", text)
        self.assertIn("TLS Web Client Authentication",
                      self.openssl("x509", "-in", d + "/client.pem", "-noout", "-text"))
        for key in ("ca.key", "server.key", "client.key"):
            self.assertIn("prime256v1", self.openssl("pkey", "-in", d + "/" + key, "-noout",
                                                     "-text"))

        # Idempotent: a second run keeps every byte.
        before = self.snapshot(d)
        self.assertIn("kept", make_certs(d))
        self.assertEqual(self.snapshot(d), before)
        # A lost client certificate is re-issued by the same CA; the rest stays.
        os.unlink(os.path.join(d, "client.pem"))
        make_certs(d)
        after = self.snapshot(d)
        for name in ("ca.pem", "ca.key", "server.pem", "server.key", "client.key"):
            self.assertEqual(after[name], before[name], name)
        self.openssl("verify", "-CAfile", d + "/ca.pem", d + "/client.pem")
        # --force makes a new CA and new certificates.
        make_certs(d, "--force")
        forced = self.snapshot(d)
        for name in ("ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key"):
            self.assertNotEqual(forced[name], before[name], name)
        self.openssl("verify", "-CAfile", d + "/ca.pem", d + "/server.pem", d + "/client.pem")

    def test_bad_usage(self):
        p = subprocess.run([MAKE_CERTS, "--bogus"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 64)
        self.assertIn("usage", p.stderr)


# ================================================================ TLS

class TlsTest(unittest.TestCase):
    """A daemon with --tls-cert/--tls-key/--tls-ca on 127.0.0.1:0."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ctld-tls-")
        cls.certs = os.path.join(cls.tmp, "certs")
        cls.other = os.path.join(cls.tmp, "other")  # another CA with its own client
        make_certs(cls.certs)
        make_certs(cls.other)
        cls.selfsigned = (os.path.join(cls.tmp, "self.pem"), os.path.join(cls.tmp, "self.key"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", cls.selfsigned[1],
                        "-out", cls.selfsigned[0], "-days", "2", "-subj", "/CN=ctl"],
                       check=True, capture_output=True)
        cls.d = Daemon("--tls-cert", cls.cert("server.pem"), "--tls-key", cls.cert("server.key"),
                       "--tls-ca", cls.cert("ca.pem"), "--hello-timeout", "1500ms")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.cleanup()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def tearDown(self):
        if not self.d.alive():
            self.fail("the daemon died during this test:\n" + self.d.log())

    @classmethod
    def cert(cls, name, where=None):
        return os.path.join(where or cls.certs, name)

    def good(self):
        return (self.cert("client.pem"), self.cert("client.key"), self.cert("ca.pem"))

    def attempt(self, cert=None, key=None, ca=None, max_version=None, send=True):
        """One raw TLS connection that sends Hello (unless not send) and reads
        until the daemon is done with it. Returns (handshake_ok, exception or
        None, bytes read)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if max_version:
            ctx.maximum_version = max_version
        ctx.load_verify_locations(ca or self.cert("ca.pem"))
        if cert:
            ctx.load_cert_chain(cert, key)
        raw = socket.create_connection(("127.0.0.1", self.d.tcp_port), timeout=5)
        handshake_ok, data, s = False, b"", None
        try:
            s = ctx.wrap_socket(raw)
            handshake_ok = True  # in TLS 1.3 the server judges the client after this
            if send:
                s.sendall(hello_frame())
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return handshake_ok, None, data
                data += chunk
        except (ssl.SSLError, OSError) as e:
            return handshake_ok, e, data
        finally:
            if s is not None:
                s.close()
            raw.close()

    def assertGetsNothing(self, *args, **kw):
        t0 = time.monotonic()
        ok, exc, data = self.attempt(*args, **kw)
        self.assertEqual(data, b"", "a refused TLS client got bytes: %r" % data)
        self.assertIsNotNone(exc, "the connection ended without a TLS error")
        self.assertNotIsInstance(exc, socket.timeout, "the daemon held the connection open")
        self.assertLess(time.monotonic() - t0, 1.4, "refused only by the hello timeout")
        return ok, exc

    def assertStillServes(self):
        with Client(tcp=self.d.tcp, tls=self.good()) as c:
            out, _, ev = c.run_and_wait(["echo", "tls-ok"], timeout=10)
            self.assertEqual(out, b"tls-ok\n")
            self.assertEqual(ev.exited.exit_code, 0)
            # Refused connections left no session behind.
            wait_for(lambda: c.stats().clients == 1, 3, "refused sessions to go")

    def handshake_failures(self):
        return self.d.log().count("TLS handshake failed")

    def test_ca_signed_client_runs_a_job(self):
        with Client(tcp=self.d.tcp, tls=self.good()) as c:
            self.assertEqual(c.sock.version(), "TLSv1.3")
            self.assertEqual(c.hello_reply.protocol_version, 1)
            out, err, ev = c.run_and_wait(["sh", "-c", "id -u; echo e >&2; exit 3"], timeout=10)
            self.assertEqual((out, err, ev.exited.exit_code), (b"0\n", b"e\n", 3))
            blob = os.urandom(200000)  # bigger than a TLS record, both ways
            job = c.run(["cat"], stdin_pipe=True)
            for i in range(0, len(blob), 32768):  # WriteStdin.data is at most 32 KiB
                c.write_stdin(job, blob[i:i + 32768])
            c.write_stdin(job, eof=True)
            got = b""
            for ev in c.events(job, timeout=10):
                if ev.HasField("output"):
                    got += ev.output.data
            self.assertEqual(got, blob)
        self.assertIn("TLS peer /CN=ctl", self.d.log())

    def test_unix_socket_stays_plain(self):
        with self.d.client() as c:
            out, _, _ = c.run_and_wait(["echo", "unix"], timeout=10)
            self.assertEqual(out, b"unix\n")

    def test_client_checks_the_daemon_certificate(self):
        # The client trusts only the other CA: the daemon's certificate fails.
        with self.assertRaises(ssl.SSLError) as cm:
            Client(tcp=self.d.tcp, tls=(self.cert("client.pem", self.other),
                                        self.cert("client.key", self.other),
                                        self.cert("ca.pem", self.other)))
        self.assertIn("CERTIFICATE_VERIFY_FAILED", str(cm.exception))
        self.assertStillServes()

    def test_no_certificate_gets_nothing(self):
        n = self.handshake_failures()
        _, exc = self.assertGetsNothing()
        self.assertIsInstance(exc, ssl.SSLError)
        # A client that waits is told why (a client that already sent its
        # Hello may see only the connection end).
        _, exc = self.assertGetsNothing(send=False)
        self.assertIn("CERTIFICATE_REQUIRED", str(exc).upper().replace(" ", "_"))
        wait_for(lambda: self.handshake_failures() > n, 3, "the daemon to log the failure")
        self.assertStillServes()

    def test_self_signed_certificate_gets_nothing(self):
        n = self.handshake_failures()
        self.assertGetsNothing(*self.selfsigned)
        wait_for(lambda: self.handshake_failures() > n, 3, "the daemon to log the failure")
        self.assertIn("peer certificate", self.d.log())
        self.assertStillServes()

    def test_certificate_from_another_ca_gets_nothing(self):
        n = self.handshake_failures()
        _, exc = self.assertGetsNothing(self.cert("client.pem", self.other),
                                        self.cert("client.key", self.other))
        self.assertIsInstance(exc, ssl.SSLError)
        wait_for(lambda: self.handshake_failures() > n, 3, "the daemon to log the failure")
        self.assertStillServes()
        # The Python client says so too (an exception, never a Hello reply).
        with self.assertRaises((ssl.SSLError, EOFError, ConnectionResetError)):
            Client(tcp=self.d.tcp, tls=(self.cert("client.pem", self.other),
                                        self.cert("client.key", self.other),
                                        self.cert("ca.pem")))

    def test_tls12_refused(self):
        ok, exc = self.assertGetsNothing(self.cert("client.pem"), self.cert("client.key"),
                                         max_version=ssl.TLSVersion.TLSv1_2)
        self.assertFalse(ok, "a TLS 1.2 handshake completed")
        self.assertIsInstance(exc, ssl.SSLError)
        self.assertStillServes()

    def test_plain_bytes_refused(self):
        for payload in (hello_frame() + frame(pb.Request(id=2, run=pb.Run(argv=["id"]))),
                        b"GET / HTTP/1.0\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", self.d.tcp_port), timeout=5) as s:
                s.sendall(payload)
                data = b""
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                except ConnectionResetError:
                    pass
            # At most a TLS alert record (content type 21), never a protobuf Reply.
            self.assertTrue(data == b"" or data[0] == 0x15, data)
        self.assertStillServes()

    def test_silent_tls_client_dropped_after_hello_timeout(self):
        # Connects and never starts the handshake: closed by --hello-timeout.
        with socket.create_connection(("127.0.0.1", self.d.tcp_port), timeout=10) as s:
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"")
            took = time.monotonic() - t0
        self.assertGreater(took, 1.0)
        self.assertLess(took, 6.0)
        self.assertStillServes()

    def test_many_bad_clients_then_good(self):
        for i in range(10):
            self.attempt(*((self.selfsigned) if i % 2 else (None, None)))
        self.assertStillServes()


# ================================================================ TCP exposure

class NonLoopbackTest(unittest.TestCase):
    """--listen on a non-loopback address: refused without TLS, warned with
    --insecure. The address is on a veth interface in a network namespace
    created here; the daemon runs inside it (nsenter, mounts untouched)."""
    ADDR = "10.213.77.1"

    @classmethod
    def setUpClass(cls):
        cls.ns = "ctld-sec-%d" % os.getpid()
        cls.nspath = "/run/netns/" + cls.ns
        cmds = [["ip", "netns", "add", cls.ns],
                ["ip", "-n", cls.ns, "link", "set", "lo", "up"],
                ["ip", "-n", cls.ns, "link", "add", "ctld0", "type", "veth", "peer", "name",
                 "ctld1"],
                ["ip", "-n", cls.ns, "addr", "add", cls.ADDR + "/24", "dev", "ctld0"],
                ["ip", "-n", cls.ns, "link", "set", "ctld0", "up"],
                ["ip", "-n", cls.ns, "link", "set", "ctld1", "up"]]
        for cmd in cmds:
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                subprocess.run(["ip", "netns", "del", cls.ns], capture_output=True)
                raise AssertionError("%s: %s" % (" ".join(cmd), p.stderr))

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["ip", "netns", "del", cls.ns], capture_output=True)

    def in_ns(self, d):
        d.args = ["nsenter", "--net=" + self.nspath, "--"] + d.args
        return d

    def assertRefusedCleanly(self, d, addr):
        try:
            rc, out = start_refused(d)
            self.assertEqual(rc, 1, out)
            self.assertIn("refusing to listen on non-loopback %s without TLS" % addr, out)
            self.assertIn("--insecure", out)
            self.assertFalse(os.path.exists(d.socket), "a refused daemon left its socket")
            self.assertFalse(os.path.exists(d.ready_file))
            self.assertFalse(os.path.exists(d.pin_dir), "a refused daemon left its pins")
        finally:
            shutil.rmtree(d.dir, ignore_errors=True)

    def test_wildcard_without_tls_refused(self):
        for addr in ("0.0.0.0:0", "[::]:0"):
            d = Daemon(start=False)
            set_listen(d, addr)
            self.assertRefusedCleanly(d, addr)

    def test_second_listen_address_without_tls_refused(self):
        # A loopback address first does not make a later public one acceptable.
        d = Daemon("--listen", "0.0.0.0:0", start=False)
        self.assertRefusedCleanly(d, "0.0.0.0:0")

    def test_interface_address_without_tls_refused(self):
        addr = self.ADDR + ":0"
        d = self.in_ns(Daemon(start=False))
        set_listen(d, addr)
        self.assertRefusedCleanly(d, addr)

    def test_insecure_starts_and_warns(self):
        addr = self.ADDR + ":0"
        d = Daemon("--insecure", start=False)
        set_listen(d, addr)
        self.in_ns(d)
        with d.start():
            self.assertTrue(d.alive())
            log = d.log()
            self.assertIn("INSECURE", log)
            self.assertIn(addr, log)
            # It really serves there: a client inside the namespace runs a job.
            code = ("import sys; sys.path[:0] = sys.argv[3:]\n"
                    "from ctld_client import Client\n"
                    "with Client(tcp=sys.argv[1] + ':' + sys.argv[2]) as c:\n"
                    "    out, _, ev = c.run_and_wait(['echo', 'remote'], timeout=10)\n"
                    "    print(out.decode().strip(), ev.exited.exit_code)\n")
            p = subprocess.run(["nsenter", "--net=" + self.nspath, "--", sys.executable, "-c",
                                code, self.ADDR, str(d.tcp_port),
                                os.path.join(harness.BUILD, "python"),
                                os.path.join(ROOT, "clients", "python")],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, "remote 0\n")

    def test_tls_on_interface_address_has_no_warning(self):
        tmp = tempfile.mkdtemp(prefix="ctld-tls-ns-")
        try:
            certs = os.path.join(tmp, "certs")
            make_certs(certs)
            d = Daemon("--tls-cert", certs + "/server.pem", "--tls-key", certs + "/server.key",
                       "--tls-ca", certs + "/ca.pem", start=False)
            set_listen(d, self.ADDR + ":0")
            self.in_ns(d)
            with d.start():
                self.assertNotIn("INSECURE", d.log())
                self.assertIn("with TLS", d.log())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ================================================================ unix socket

class UnixSocketTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ctld-sock-")  # 0700, root

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon_at(self, path, start=False):
        d = Daemon("--socket", path, start=False)  # the last --socket wins
        d.socket = path
        return d.start() if start else d

    def refused(self, path, text):
        d = self.daemon_at(path)
        try:
            rc, out = start_refused(d)
            self.assertEqual(rc, 1, out)
            self.assertIn(text, out)
            self.assertFalse(os.path.exists(d.pin_dir), "a refused daemon left its pins")
        finally:
            shutil.rmtree(d.dir, ignore_errors=True)
        return out

    def test_socket_is_0600_root(self):
        with Daemon() as d:
            st = os.lstat(d.socket)
            self.assertTrue(stat.S_ISSOCK(st.st_mode))
            self.assertEqual(st.st_mode & 0o7777, 0o600)
            self.assertEqual(st.st_uid, 0)
            sock = d.socket
        self.assertFalse(os.path.exists(sock), "socket not removed at shutdown")

    def test_writable_directory_refused(self):
        for mode in (0o777, 0o770, 0o722):
            sub = os.path.join(self.tmp, "w%o" % mode)
            os.mkdir(sub)
            os.chmod(sub, mode)
            path = os.path.join(sub, "ctld.sock")
            self.refused(path, "socket directory %s is writable by others" % sub)
            self.assertEqual(os.listdir(sub), [])

    def test_sticky_world_writable_directory_accepted(self):
        sub = os.path.join(self.tmp, "sticky")
        os.mkdir(sub)
        os.chmod(sub, 0o1777)
        with self.daemon_at(os.path.join(sub, "ctld.sock"), start=True) as d:
            self.assertEqual(os.lstat(d.socket).st_mode & 0o777, 0o600)
            with d.client() as c:
                self.assertEqual(c.run_and_wait(["echo", "ok"], timeout=10)[0], b"ok\n")

    def test_symlinked_directory_refused(self):
        real = os.path.join(self.tmp, "real")
        os.mkdir(real, 0o700)
        link = os.path.join(self.tmp, "link")
        os.symlink(real, link)
        self.refused(os.path.join(link, "ctld.sock"), "symlinks refused")
        self.assertEqual(os.listdir(real), [])

    def test_directory_of_another_user_refused(self):
        sub = os.path.join(self.tmp, "theirs")
        os.mkdir(sub, 0o700)
        os.chown(sub, NOBODY.pw_uid, NOBODY.pw_gid)
        self.refused(os.path.join(sub, "ctld.sock"), "owned by uid %d" % NOBODY.pw_uid)
        self.assertEqual(os.listdir(sub), [])

    def test_stale_socket_is_replaced(self):
        path = os.path.join(self.tmp, "ctld.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()  # the file stays, nobody listens
        with self.daemon_at(path, start=True) as d:
            self.assertIn("removing stale socket %s" % path, d.log())
            self.assertEqual(os.lstat(path).st_mode & 0o7777, 0o600)
            with d.client() as c:
                self.assertEqual(c.run_and_wait(["echo", "ok"], timeout=10)[0], b"ok\n")

    def test_foreign_file_is_not_touched(self):
        path = os.path.join(self.tmp, "ctld.sock")
        with open(path, "w") as f:
            f.write("precious\n")
        self.refused(path, "not our socket; not touching it")
        with open(path) as f:
            self.assertEqual(f.read(), "precious\n")
        # A socket file of another user is not ours either.
        os.unlink(path)
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()
        os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
        self.refused(path, "not our socket; not touching it")
        self.assertTrue(stat.S_ISSOCK(os.lstat(path).st_mode))

    def test_live_socket_is_not_stolen(self):
        path = os.path.join(self.tmp, "ctld.sock")
        with self.daemon_at(path, start=True) as first:
            ino = os.lstat(path).st_ino
            with first.client() as c:
                out = self.refused(path, "another daemon is serving %s" % path)
                self.assertNotIn("removing stale socket", out)
                self.assertEqual(os.lstat(path).st_ino, ino)
                self.assertEqual(c.run_and_wait(["echo", "first"], timeout=10)[0], b"first\n")
            with first.client() as c2:  # new connections still reach the first daemon
                self.assertEqual(c2.hello_reply.pid, first.pid)


# ================================================================ least privilege

def status_fields(text):
    """/proc/PID/status as a dict of whitespace-split values."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


def limits_of(text):
    """/proc/PID/limits: {'Max open files': ('123', '456'), ...}"""
    out = {}
    for line in text.splitlines()[1:]:
        name = line[:26].strip()
        soft, hard = line[26:].split()[:2]
        out[name] = (soft, hard)
    return out


class PrivilegeTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="ctld-priv-")
        os.chmod(cls.tmp, 0o755)  # nobody may look in, not write

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        self.c = self.d.client()

    def tearDown(self):
        self.c.close()
        super().tearDown()

    def run_job(self, argv, **kw):
        out, err, ev = self.c.run_and_wait(argv, timeout=20, **kw)
        return out.decode(), err.decode(), ev

    def status_as(self, **kw):
        out, err, ev = self.run_job(["cat", "/proc/self/status"], **kw)
        self.assertEqual(ev.WhichOneof("kind"), "exited", ev)
        self.assertEqual(ev.exited.exit_code, 0, err)
        return status_fields(out)

    def exec_failed(self, argv, **kw):
        job = self.c.run(argv, **kw)
        kinds = []
        for ev in self.c.events(job, timeout=10):
            kinds.append(ev.WhichOneof("kind"))
        self.assertEqual(kinds, ["exec_failed"], "a job that could not apply its settings ran")
        return ev.exec_failed

    # ------------------------------------------------------------ identity
    def test_user_nobody_ids_and_groups(self):
        st = self.status_as(user="nobody")
        uid, gid = str(NOBODY.pw_uid), str(NOBODY.pw_gid)
        self.assertEqual(st["Uid"], [uid] * 4)
        self.assertEqual(st["Gid"], [gid] * 4)
        expect = sorted(set(os.getgrouplist("nobody", NOBODY.pw_gid)))
        self.assertEqual(sorted(int(g) for g in st["Groups"]), expect)
        self.assertNotIn("0", st["Groups"])
        # No capability survives the switch away from root.
        for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            self.assertEqual(int(st[cap][0], 16), 0, cap)
        self.assertEqual(st["NoNewPrivs"], ["0"])
        # By uid too.
        self.assertEqual(self.status_as(user=uid)["Uid"], [uid] * 4)

    def test_root_job_keeps_root(self):
        # The baseline the other tests compare with: no user, the daemon's rights.
        st = self.status_as()
        self.assertEqual(st["Uid"], ["0"] * 4)
        self.assertNotEqual(int(st["CapEff"][0], 16), 0)

    def test_uid_without_account_gets_no_groups(self):
        st = self.status_as(user=str(LONER_ID))
        self.assertEqual(st["Uid"], [str(LONER_ID)] * 4)
        self.assertEqual(st["Gid"], [str(LONER_ID)] * 4)
        self.assertEqual(st["Groups"], [], "root's supplementary groups leaked")

    def test_user_and_group(self):
        st = self.status_as(user="nobody", group="4242")
        self.assertEqual(st["Uid"], [str(NOBODY.pw_uid)] * 4)
        self.assertEqual(st["Gid"], ["4242"] * 4)
        self.assertEqual(sorted(int(g) for g in st["Groups"]),
                         sorted(set(os.getgrouplist("nobody", NOBODY.pw_gid))))
        name = grp.getgrgid(1).gr_name  # "daemon" on Debian: a group by name
        st = self.status_as(user="nobody", group=name)
        self.assertEqual(st["Gid"], ["1"] * 4)
        # A group alone: still root, but the primary group changes and
        # root's supplementary groups go.
        st = self.status_as(group="4242")
        self.assertEqual(st["Uid"], ["0"] * 4)
        self.assertEqual(st["Gid"], ["4242"] * 4)
        self.assertEqual(st["Groups"], [])

    def test_unknown_user_or_group_is_bad_request(self):
        for kw, text in ((dict(user="no-such-user-ctld"), "no such user"),
                         (dict(user="nobody", group="no-such-group-ctld"), "no such group")):
            with self.assertRaises(CtldError) as cm:
                self.c.run(["true"], **kw)
            self.assertEqual(cm.exception.code, pb.BAD_REQUEST, kw)
            self.assertIn(text, cm.exception.text)
        self.assertEqual(self.c.stats().jobs_running, 0)

    def test_nobody_cannot_write_root_files_or_signal_root(self):
        path = os.path.join(self.tmp, "root-only")
        with open(path, "w") as f:
            f.write("root\n")
        os.chmod(path, 0o644)
        out, err, ev = self.run_job(["sh", "-c", 'echo pwned >> "$0"; echo rc=$?', path],
                                    user="nobody")
        self.assertEqual(out, "rc=2\n")
        self.assertIn("Permission denied", err)
        with open(path) as f:
            self.assertEqual(f.read(), "root\n")
        # Nor signal the daemon.
        out, err, ev = self.run_job(["kill", "-0", str(self.d.pid)], user="nobody")
        self.assertNotEqual(ev.exited.exit_code, 0)
        self.assertIn("Operation not permitted", err)
        # Nor read its environment or open its descriptors.
        out, err, ev = self.run_job(["cat", "/proc/%d/environ" % self.d.pid], user="nobody")
        self.assertEqual((out, ev.exited.exit_code), ("", 1))
        self.assertIn("Permission denied", err)
        out, err, ev = self.run_job(["ls", "/proc/%d/fd" % self.d.pid], user="nobody")
        self.assertNotEqual(ev.exited.exit_code, 0)
        self.assertIn("Permission denied", err)
        # Python tells the exact errno.
        out, _, _ = self.run_job(["/usr/bin/python3", "-c",
                                  "import sys\ntry: open(sys.argv[1], 'a')\n"
                                  "except OSError as e: print(e.errno)", path], user="nobody")
        self.assertEqual(out, "%d\n" % errno.EACCES)

    def test_cwd_the_user_cannot_enter(self):
        private = os.path.join(self.tmp, "private")
        os.mkdir(private, 0o700)
        ef = self.exec_failed(["pwd"], user="nobody", cwd=private)
        self.assertEqual(ef.sys_errno, errno.EACCES)
        self.assertEqual(ef.text, "chdir %s: Permission denied" % private)
        out, _, _ = self.run_job(["pwd"], cwd=private)  # root may
        self.assertEqual(out, private + "\n")

    def test_output_file_the_user_cannot_write(self):
        path = os.path.join(self.tmp, "out-%d.log" % time.monotonic_ns())
        ef = self.exec_failed(["echo", "x"], user="nobody", stdout_path=path)
        self.assertEqual(ef.sys_errno, errno.EACCES)
        self.assertEqual(ef.text, "open output file %s: Permission denied" % path)
        self.assertFalse(os.path.exists(path), "the file was created with root's rights")
        # An existing root-owned 0644 file cannot be appended to either.
        with open(path, "w") as f:
            f.write("kept\n")
        ef = self.exec_failed(["echo", "x"], user="nobody", stderr_path=path)
        self.assertEqual(ef.sys_errno, errno.EACCES)
        with open(path) as f:
            self.assertEqual(f.read(), "kept\n")

    def test_program_the_user_may_not_execute(self):
        prog = os.path.join(self.tmp, "root-prog")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\necho ran\n")
        os.chmod(prog, 0o700)
        ef = self.exec_failed([prog], user="nobody")
        self.assertEqual(ef.sys_errno, errno.EACCES)
        self.assertTrue(ef.text.startswith("execve "), ef.text)
        self.assertEqual(self.run_job([prog])[0], "ran\n")

    @not_under_valgrind("valgrind's own log fd is inherited by the emulated child")
    def test_job_inherits_no_daemon_descriptor(self):
        # The daemon holds listening sockets, client connections, (bpf) map
        # and program fds, other jobs' pipes: a job, above all one running as
        # another user, must get none of them, only its stdio.
        with self.d.client() as busy, self.d.tcp_client() as tcp:
            other = busy.run(["sleep", "30"], stdin_pipe=True)
            for kw in ({}, {"user": "nobody"}):
                # ls looks at the shell's descriptors: what the job started with.
                out, err, ev = self.run_job(["sh", "-c", "ls -l /proc/$$/fd/"], **kw)
                self.assertEqual(ev.exited.exit_code, 0, err)
                fds = dict(line.split()[-3::2] for line in out.splitlines()[1:])
                self.assertEqual(sorted(fds), ["0", "1", "2"], (kw, fds))
                self.assertEqual(fds["0"], "/dev/null")
            self.assertGreaterEqual(tcp.stats().clients, 3)
            busy.signal(other, 9)
            self.assertEqual(list(busy.events(other, timeout=10))[-1].exited.signal, 9)

    @not_under_valgrind("valgrind's own log fd is inherited by the emulated child")
    def test_job_inherits_nothing_the_daemon_inherited(self):
        """Descriptors open when the daemon was started (fd 10 on /dev/null,
        a pipe high up) are open in the daemon, and in no job."""
        null = os.open("/dev/null", os.O_RDONLY)
        r, w = os.pipe()
        fds = []
        try:
            for want, fd in ((10, null), (251, r)):
                os.dup2(fd, want, inheritable=True)
                fds.append(want)
            d = Daemon(pass_fds=fds)
            try:
                self.assertTrue(os.path.exists("/proc/%d/fd/251" % d.pid))
                with d.client() as c:
                    for kw in ({}, {"user": "nobody"}):
                        out, err, ev = c.run_and_wait(["sh", "-c", "ls /proc/$$/fd/"],
                                                      timeout=20, **kw)
                        self.assertEqual(sorted(out.decode().split()), ["0", "1", "2"],
                                         (kw, err))
            finally:
                d.cleanup()
        finally:
            for fd in fds + [null, r, w]:
                try:
                    os.close(fd)
                except OSError:
                    pass

    # ------------------------------------------------------------ limits
    @not_under_valgrind("valgrind shows the program descriptor limits of its own")
    def test_jobs_start_with_the_daemons_start_up_limits(self):
        """The daemon raises its own descriptor limit, and libbpf raises
        RLIMIT_MEMLOCK on kernels before 5.11 (it reached jobs as unlimited
        on 5.10): jobs get the limits the daemon was started with."""
        d = Daemon(start=False)
        d.prefix = ["prlimit", "--memlock=%d:%d" % (4 << 20, 6 << 20),
                    "--nofile=1000:4096", "--"] + d.prefix
        try:
            d.start()
            with d.client() as c:
                out, _, _ = c.run_and_wait(["cat", "/proc/self/limits"], timeout=20)
        finally:
            d.cleanup()
        limits = {line[:26].strip(): line[26:].split()[:2]
                  for line in out.decode().splitlines()[1:]}
        self.assertEqual(limits["Max locked memory"], [str(4 << 20), str(6 << 20)])
        self.assertEqual(limits["Max open files"], ["1000", "4096"])

    @not_under_valgrind("valgrind filters setrlimit(NOFILE) in the emulated child")
    def test_rlimits_applied(self):
        rl = [pb.Rlimit(resource="nofile", soft=123, hard=456),
              pb.Rlimit(resource="nproc", soft=77, hard=88),
              pb.Rlimit(resource="core", soft=0, hard=0),
              pb.Rlimit(resource="fsize", soft=1 << 20, hard=(1 << 64) - 1)]
        # nproc is refused for a root job, which it would not bind (test_limits.py)
        out, _, ev = self.run_job(["cat", "/proc/self/limits"], user="nobody", rlimits=rl)
        lim = limits_of(out)
        self.assertEqual(lim["Max open files"], ("123", "456"))
        self.assertEqual(lim["Max processes"], ("77", "88"))
        self.assertEqual(lim["Max core file size"], ("0", "0"))
        self.assertEqual(lim["Max file size"], (str(1 << 20), "unlimited"))
        out, _, _ = self.run_job(["bash", "-c", "ulimit -n; ulimit -Hn; ulimit -u; ulimit -c"],
                                 rlimits=rl, user="nobody")
        self.assertEqual(out, "123\n456\n77\n0\n")
        # The limit bites: the 124th descriptor cannot be opened.
        out, _, _ = self.run_job(["/usr/bin/python3", "-c",
                                  "import os\nfds = []\ntry:\n"
                                  "    while True: fds.append(os.open('/dev/null', 0))\n"
                                  "except OSError as e: print(max(fds), e.errno)"],
                                 rlimits=rl[:1], user="nobody")
        self.assertEqual(out, "122 %d\n" % errno.EMFILE)

    @not_under_valgrind("valgrind filters setrlimit in the emulated child")
    def test_rlimit_that_cannot_be_applied_is_exec_failed(self):
        huge = 1 << 40  # above fs.nr_open: setrlimit says EPERM even for root
        ef = self.exec_failed(["true"], user="nobody",
                              rlimits=[pb.Rlimit(resource="nofile", soft=huge, hard=huge)])
        self.assertEqual(ef.sys_errno, errno.EPERM)
        self.assertTrue(ef.text.startswith("setrlimit"), ef.text)
        self.assertEqual(self.c.stats().jobs_running, 0)

    def test_bad_rlimits_are_bad_requests(self):
        for rl, text in ((pb.Rlimit(resource="nofile", soft=10, hard=5), "soft"),
                         (pb.Rlimit(resource="bogus", soft=1, hard=1), "bogus"),
                         (pb.Rlimit(resource="", soft=1, hard=1), "unknown")):
            with self.assertRaises(CtldError) as cm:
                self.c.run(["true"], rlimits=[rl], user="nobody")
            self.assertEqual(cm.exception.code, pb.BAD_REQUEST)
            self.assertIn(text, cm.exception.text)

    def test_umask(self):
        shared = os.path.join(self.tmp, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o1777)
        f = os.path.join(shared, "made-by-nobody")
        out, err, ev = self.run_job(["sh", "-c", 'umask; touch "$0"; stat -c "%a %u" "$0"', f],
                                    user="nobody", umask=0o077, has_umask=True)
        self.assertEqual(out, "0077\n600 %d\n" % NOBODY.pw_uid, err)
        out, _, _ = self.run_job(["sh", "-c", "umask"], umask=0, has_umask=True)
        self.assertEqual(out, "0000\n")

    def test_clean_env(self):
        out, _, _ = self.run_job(["/usr/bin/env"], user="nobody", clean_env=True,
                                 env=["ONLY=1", "PATH=/usr/bin:/bin"])
        self.assertEqual(sorted(out.splitlines()), ["ONLY=1", "PATH=/usr/bin:/bin"])
        out, _, _ = self.run_job(["/usr/bin/env"], clean_env=True)
        self.assertEqual(out, "")
        # Without clean_env the daemon's environment is the base.
        out, _, _ = self.run_job(["/usr/bin/env"], env=["EXTRA=2"])
        names = {line.split("=", 1)[0] for line in out.splitlines()}
        self.assertIn("EXTRA", names)
        self.assertIn("PATH", names)

    def test_own_session_and_process_group(self):
        for kw in ({}, {"user": "nobody"}):
            job = self.c.run(["cat", "/proc/self/stat"], **kw)
            out, pid = b"", None
            for ev in self.c.events(job, timeout=10):
                if ev.HasField("launched"):
                    pid = ev.launched.pid
                elif ev.HasField("output"):
                    out += ev.output.data
            fields = out.decode().rsplit(")", 1)[1].split()
            pgrp, sid, tty = int(fields[2]), int(fields[3]), int(fields[4])
            self.assertEqual((pgrp, sid), (pid, pid), kw)
            self.assertEqual(tty, 0, "the job has a controlling terminal")
            self.assertNotEqual(sid, os.getsid(self.d.pid))

    @not_under_valgrind("valgrind filters setrlimit(NOFILE) in the emulated child")
    def test_ctl_run_user(self):
        p = self.d.ctl("run", "-C", "/", "--user", "nobody", "--", "id", "-u", check=0)
        self.assertEqual(p.stdout, "%d\n" % NOBODY.pw_uid)
        p = self.d.ctl("run", "-C", "/", "--user", "nobody", "--group", "4242",
                       "--rlimit", "nofile=100", "--", "sh", "-c", "id -g; ulimit -n", check=0)
        self.assertEqual(p.stdout, "4242\n100\n")
        p = self.d.ctl("run", "--user", "no-such-user-ctld", "--", "true")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("no such user", p.stderr)
        private = os.path.join(self.tmp, "private-ctl")
        os.mkdir(private, 0o700)
        p = self.d.ctl("run", "-C", private, "--user", "nobody", "--", "true")
        self.assertEqual(p.returncode, 127, p.stderr)
        self.assertIn("Permission denied", p.stderr)


if __name__ == "__main__":
    unittest.main()
