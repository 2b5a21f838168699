# SPDX-License-Identifier: BSD-2-Clause
"""Footprint (issue 15): what the daemon and ctl load is what their
configuration uses.

* OpenSSL lives in ctld-tls.so, loaded only when TLS is configured: an idle
  daemon without TLS maps neither the module nor libssl/libcrypto, one with
  TLS maps them, and ctl links no libbpf, libelf, libz or OpenSSL.
* An idle daemon's own memory (anonymous pages: heap, arenas, stacks) is
  small after start-up: what the start-up needed (the kernel BTF and its
  parse, ~11 MB with eBPF) is given back, also where it was allocated in
  the start-up thread (kernel_btf.h).
* A daemon or ctl asked for TLS whose module is missing says so and stops
  (the daemon at start-up with exit 1, ctl before connecting with 64),
  instead of running without TLS; so does a daemon whose certificate
  cannot be read (it crashed on that path before).
"""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import (BUILD, CTL, CTLD, Daemon, DaemonTestCase, make_certs, not_under_sanitizers,
                     not_under_valgrind, status_kib)

OPENSSL = ("libssl.so", "libcrypto.so", "ctld-tls.so")
LIBEXEC_MODULE = "/usr/libexec/ctld-bpf/ctld-tls.so"


def mapped_files(pid):
    """The basenames of the files mapped into a process."""
    names = set()
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5].startswith("/"):
                names.add(os.path.basename(parts[5]))
    return names


def needed(binary):
    """The DT_NEEDED libraries of an ELF file."""
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                         check=True).stdout
    return [line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def openssl_in(names):
    return sorted(n for n in names if n.startswith(OPENSSL))


IDLE_ANON_KIB = 640  # measured 388 KiB with eBPF (936 when a thread's arena kept its pages)


def rss_anon_kib(pid):
    return status_kib(pid, "RssAnon")


class IdleDaemonWithoutTls(DaemonTestCase):
    @not_under_valgrind("valgrind's own memory is the process's")
    @not_under_sanitizers("ASan's shadow and quarantine are the process's anonymous memory")
    def test_idle_daemon_gives_back_what_start_up_needed(self):
        self.assertDaemonServes()
        anon = rss_anon_kib(self.d.pid)
        self.assertLess(anon, IDLE_ANON_KIB, "idle daemon: %d KiB anonymous memory" % anon)

    def test_idle_daemon_maps_no_openssl(self):
        # serve one request first: nothing on the unix path may pull TLS in
        self.assertDaemonServes()
        self.assertEqual(openssl_in(mapped_files(self.d.pid)), [])

    def test_ctl_links_no_bpf_or_tls_library(self):
        # what ctl maps at every start is its start-up cost (bench: ctl run vs
        # /bin/true); libc alone, plus the sanitizer runtime's libm/libgcc_s
        # in the SAN=1 build
        unwanted = ("libbpf", "libelf", "libz", "libssl", "libcrypto")
        self.assertEqual([n for n in needed(CTL) if n.startswith(unwanted)], [])
        self.assertIn("libc.so.6", needed(CTL))
        p = self.d.ctl("run", "--", "/bin/true")
        self.assertEqual(p.returncode, 0, p.stderr)


@not_under_valgrind("copies the binaries; valgrind adds nothing to what is loaded")
class TlsModule(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ctld-footprint-")
        cls.certs = os.path.join(cls.tmp, "certs")
        make_certs(cls.certs)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tls_args(self, who):
        return ["--tls-cert", os.path.join(self.certs, who + ".pem"),
                "--tls-key", os.path.join(self.certs, who + ".key"),
                "--tls-ca", os.path.join(self.certs, "ca.pem")]

    def test_tls_daemon_loads_the_module(self):
        with Daemon(*self.tls_args("server")) as d:
            self.assertIn("ctld-tls.so", mapped_files(d.pid))
            target = ["-H", "127.0.0.1:%d" % d.tcp_port] + self.tls_args("client")
            p = d.ctl("run", "--", "echo", "over-tls", target=target)
            self.assertEqual((p.returncode, p.stdout), (0, "over-tls\n"), p.stderr)

    def without_module(self):
        """The daemon, its spawner and ctl copied to a directory without ctld-tls.so."""
        if os.path.exists(LIBEXEC_MODULE):
            self.skipTest("%s is installed: it would be found instead" % LIBEXEC_MODULE)
        bare = os.path.join(self.tmp, "bare")
        os.makedirs(bare, exist_ok=True)
        for name in ("ctld-bpf", "ctld-spawner", "ctl"):
            if os.path.exists(os.path.join(BUILD, name)):
                shutil.copy2(os.path.join(BUILD, name), bare)
        return bare

    def start_refused(self, d):
        """A prepared Daemon's command line, expected to give up at start-up."""
        try:
            p = subprocess.run(d.args, capture_output=True, text=True, timeout=30)
        finally:
            d.cleanup()
        return p.returncode, p.stderr

    def test_daemon_without_module_refuses_to_start(self):
        bare = self.without_module()
        d = Daemon(*self.tls_args("server"), start=False)
        d.args[0] = os.path.join(bare, os.path.basename(CTLD))
        rc, err = self.start_refused(d)
        self.assertEqual(rc, 1, err)
        self.assertIn("TLS support is not installed (no ctld-tls.so", err)

    def test_daemon_with_unreadable_certificate_exits_1(self):
        # the failure path before the modules are set up crashed (SIGSEGV, 139)
        d = Daemon("--tls-cert", os.path.join(self.tmp, "missing.pem"),
                   *self.tls_args("server")[2:], start=False)
        rc, err = self.start_refused(d)
        self.assertEqual(rc, 1, err)
        self.assertIn("missing.pem", err)

    def test_ctl_without_module_says_so(self):
        bare = self.without_module()
        with Daemon() as d:
            p = subprocess.run([os.path.join(bare, "ctl"), "-H", "127.0.0.1:%d" % d.tcp_port]
                               + self.tls_args("client") + ["list"],
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 64, p.stderr)
        self.assertIn("TLS support is not installed (no ctld-tls.so", p.stderr)


if __name__ == "__main__":
    unittest.main()
