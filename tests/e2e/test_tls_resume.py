# SPDX-License-Identifier: BSD-2-Clause
"""TLS 1.3 session resumption between ctl and the daemon (docs/design.md
"TLS session resumption"): ctl keeps each daemon's ticket in a private cache
directory, sealed with a key derived from the client's private key, and the
next ctl process resumes instead of paying for a full handshake.

* a second ctl run resumes, and the daemon still sees the client's subject;
* files and directory are private (0600 / 0700); the default location is
  under $XDG_RUNTIME_DIR; "none" keeps nothing; an unusable directory is
  reported and the run goes on with full handshakes;
* a damaged ticket file falls back to a full handshake and is replaced;
* a copied ticket file is worthless without its key: a client whose
  certificate the daemon refuses stays refused, and another client of the
  same CA gets its own identity, not the victim's;
* a ticket from a TLS server that does not issue ctld's ticket lifetime (as
  daemons before resumption, which fail a resumed handshake) is not kept;
* a restarted daemon cannot open the tickets it issued before: with a CA that
  no longer trusts the client, a cached ticket does not get the client in;
  with the same CA, the client gets a full handshake and goes on.
"""
import glob
import os
import shutil
import stat
import subprocess
import socket
import ssl
import tempfile
import threading
import unittest

import harness

def ctl_raw(args, env=None, timeout=60):
    full_env = dict(os.environ)
    for name in ("CTLD_SOCKET", "CTLD_HOST"):
        full_env.pop(name, None)
    full_env.update(env or {})
    return subprocess.run([harness.CTL] + list(args), capture_output=True, text=True,
                          env=full_env, timeout=timeout)


class TlsResumeBase(harness.PkiTestCase):
    """A TLS daemon per class and a fresh cache directory per test."""
    certs = harness.PkiTestCase.certs + (("client2", "ca"),)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # restarts keep the port: the cache is kept per host:port
        cls.d.args[cls.d.args.index("127.0.0.1:0")] = cls.d.tcp

    def setUp(self):
        self.cache = tempfile.mkdtemp(prefix="ctl-cache-")
        os.rmdir(self.cache)  # ctl creates it

    def tearDown(self):
        shutil.rmtree(self.cache, ignore_errors=True)

    def handshakes(self):
        with self.d.client() as c:
            st = c.stats()
        return st.tls_full_handshakes, st.tls_resumed_handshakes

    def run_ctl(self, who="client", cache=None, env=None):
        """ctl run echo as who; returns (process, "full" / "resumed" / None:
        the kind of TLS handshake the daemon completed)."""
        full, resumed = self.handshakes()
        args = ["-H", self.d.tcp] + self.tls_args(who)
        if cache != "default":
            args += ["--tls-session-cache", cache or self.cache]
        p = ctl_raw(args + ["run", "--", "/bin/echo", "hi"], env=env)
        full2, resumed2 = self.handshakes()
        self.assertLessEqual(full2 - full + resumed2 - resumed, 1)
        return p, "full" if full2 > full else "resumed" if resumed2 > resumed else None

    def assertRan(self, p):
        self.assertEqual((p.returncode, p.stdout), (0, "hi\n"), p.stderr)

    def ticket_files(self, cache=None):
        return glob.glob(os.path.join(cache or self.cache, "s-*"))


class TlsResumeTest(TlsResumeBase):
    def test_second_run_resumes(self):
        p, kind = self.run_ctl()
        self.assertRan(p)
        self.assertEqual(kind, "full")
        for _ in range(2):
            p, kind = self.run_ctl()
            self.assertRan(p)
            self.assertEqual(kind, "resumed")
        self.assertEqual(stat.S_IMODE(os.stat(self.cache).st_mode), 0o700)
        files = self.ticket_files()
        self.assertEqual(len(files), 1, files)
        self.assertEqual(stat.S_IMODE(os.stat(files[0]).st_mode), 0o600)
        self.assertLess(os.path.getsize(files[0]), 4096)

    def test_default_cache_is_under_xdg_runtime_dir_and_none_keeps_nothing(self):
        runtime = tempfile.mkdtemp(prefix="ctl-xdg-")
        try:
            env = {"XDG_RUNTIME_DIR": runtime}
            default = os.path.join(runtime, "ctld", "tls-sessions")
            self.assertRan(self.run_ctl(cache="default", env=env)[0])
            self.assertEqual(len(self.ticket_files(default)), 1)
            p, kind = self.run_ctl(cache="default", env=env)
            self.assertRan(p)
            self.assertEqual(kind, "resumed")
            shutil.rmtree(default)
            for _ in range(2):
                p, kind = self.run_ctl(cache="none", env=env)
                self.assertRan(p)
                self.assertEqual(kind, "full")
            self.assertFalse(os.path.exists(default))
        finally:
            shutil.rmtree(runtime, ignore_errors=True)

    def test_unusable_cache_directory_is_reported_and_ignored(self):
        os.mkdir(self.cache)
        os.chmod(self.cache, 0o755)  # others may read it: not a place for secrets
        for _ in range(2):
            p, kind = self.run_ctl()
            self.assertRan(p)
            self.assertIn("no TLS session cache", p.stderr)
            self.assertIn("not a private directory", p.stderr)
            self.assertEqual(kind, "full")
        self.assertEqual(self.ticket_files(), [])

    def test_damaged_ticket_falls_back_to_a_full_handshake(self):
        self.assertRan(self.run_ctl()[0])
        (name,) = self.ticket_files()
        with open(name, "r+b") as f:
            data = bytearray(f.read())
            data[len(data) // 2] ^= 0x40
            f.seek(0)
            f.write(data)
        p, kind = self.run_ctl()
        self.assertRan(p)
        self.assertEqual(kind, "full")
        with open(name, "rb") as f:
            self.assertNotEqual(f.read(), bytes(data))  # replaced by the new ticket
        self.assertEqual(self.run_ctl()[1], "resumed")

    def test_copied_ticket_is_worthless_without_its_key(self):
        self.assertRan(self.run_ctl()[0])
        stolen = self.cache + "-stolen"
        shutil.copytree(self.cache, stolen)
        try:
            # A certificate the daemon refuses stays refused.
            p, kind = self.run_ctl("stranger", cache=stolen)
            self.assertEqual(p.returncode, 76, p.stderr)
            self.assertIsNone(kind)
            # Another client of the same CA shows its own certificate.
            p, kind = self.run_ctl("client2", cache=stolen)
            self.assertRan(p)
            self.assertEqual(kind, "full")
        finally:
            shutil.rmtree(stolen, ignore_errors=True)

    def test_restarted_daemon_refuses_old_tickets(self):
        self.assertRan(self.run_ctl()[0])
        self.assertEqual(self.run_ctl()[1], "resumed")
        ca = self.d.args.index("--tls-ca") + 1
        try:
            # The new daemon trusts another CA only: the client's ticket
            # from the old one must not let it in.
            self.d.stop()
            self.d.args[ca] = self.path("other-ca.pem")
            self.d.start()
            p, kind = self.run_ctl()
            self.assertEqual(p.returncode, 76, p.stderr)
            self.assertIsNone(kind)
        finally:
            self.d.stop()
            self.d.args[ca] = self.path("ca.pem")
            self.d.start()
        # Back with the right CA: a full handshake (the ticket is not its), then resumption.
        p, kind = self.run_ctl()
        self.assertRan(p)
        self.assertEqual(kind, "full")
        self.assertEqual(self.run_ctl()[1], "resumed")

    def test_ticket_of_a_daemon_that_cannot_resume_is_not_kept(self):
        # Daemons before resumption issue OpenSSL's default 7200 s tickets and
        # fail a handshake that offers one back; this TLS server (no ctld
        # protocol: it reads Hello and closes) issues the same.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.path("server.pem"), self.path("server.key"))
        ctx.load_verify_locations(self.path("ca.pem"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        srv = socket.create_server(("127.0.0.1", 0))
        srv.settimeout(harness.scaled(30))
        served = []

        def serve():
            conn, _ = srv.accept()
            with ctx.wrap_socket(conn, server_side=True) as tls:
                served.append(tls.getpeercert()["subject"])
                tls.recv(4096)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            p = ctl_raw(["-H", "127.0.0.1:%d" % srv.getsockname()[1]] + self.tls_args("client")
                        + ["--tls-session-cache", self.cache, "list"])
        finally:
            t.join(harness.scaled(30))
            srv.close()
        self.assertEqual(len(served), 1, p.stderr)  # the handshake was made
        self.assertEqual(p.returncode, 76, p.stderr)
        self.assertEqual(self.ticket_files(), [])


class ResumedIdentityTest(TlsResumeBase):
    """A daemon of its own, so its log holds only these lines (the daemon
    rate-limits what peers make it log)."""

    def test_resumed_session_carries_the_client_subject(self):
        for kind in ("full", "resumed", "resumed"):
            p, got = self.run_ctl("client2")
            self.assertRan(p)
            self.assertEqual(got, kind)
        # the whole log: this daemon has seen no other TCP client
        lines = [line for line in self.d.log(tail=1 << 24).splitlines() if "TLS peer" in line]
        self.assertEqual(len(lines), 3, lines)
        self.assertIn("TLS peer /CN=client2 (full handshake)", lines[0])
        for line in lines[1:]:
            self.assertIn("TLS peer /CN=client2 (resumed handshake)", line)


if __name__ == "__main__":
    unittest.main()
