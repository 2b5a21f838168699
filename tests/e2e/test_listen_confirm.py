# SPDX-License-Identifier: BSD-2-Clause
"""Probe, then choose: the daemon says how it confirms listen() (an fexit on
inet_csk_listen_start where the kernel allows BPF trampolines, a sock_diag
round trip where it does not, polling without eBPF) and what it found, and
both paths report the same listeners and keep failed listen()s out.

Whether trampolines work is known independently of the daemon: the kernel
matrix's guest sets CTLD_TEST_TRAMPOLINES from its own probe
(tests/kernels/probe); elsewhere `bpftrace --info` says (its "kfunc" line
loads an fentry program). On the build machine (6.18) both say no, so
fexit is tested in the guests and the fallback here.
"""
import errno
import os
import platform
import re
import shutil
import subprocess
import unittest

from harness import (CTLD, MODE, Daemon, expect_event, expect_silence, free_port,
                     listening_socket, pb)


def kernel_allows_trampolines():
    """True/False from a probe that is not the daemon's, None if none ran."""
    env = os.environ.get("CTLD_TEST_TRAMPOLINES")
    if env in ("yes", "no"):
        return env == "yes"
    bpftrace = shutil.which("bpftrace")
    if not bpftrace or os.geteuid() != 0:
        return None
    out = subprocess.run([bpftrace, "--info"], capture_output=True, text=True, timeout=120)
    m = re.search(r"^\s*kfunc: (yes|no)", out.stdout + out.stderr, re.M)
    return m.group(1) == "yes" if m else None


def listen_has_backlog_argument():
    """inet_csk_listen_start(sk, backlog) until 5.10, (sk) from 5.11."""
    major, minor = (int(x) for x in platform.release().split(".")[:2])
    return (major, minor) < (5, 11)


def features(st):
    return dict(kv.split("=", 1) for kv in st.kernel_features.split())


def watch(c, port):
    return c.request(watch_port=pb.WatchPort(port=port)).watch.watch


class ListenConfirmationTest(unittest.TestCase):
    def listeners_and_failures_are_right(self, d):
        """One listener reported, a failed listen() (EADDRINUSE) on the same
        port not, the close reported: whatever the path."""
        port = free_port()
        a = listening_socket(port, "0.0.0.0", reuse=True)
        b = listening_socket(port, "127.0.0.1", reuse=True)
        with a, b, d.client() as c:
            w = watch(c, port)
            a.listen()
            pl = expect_event(c, "port_listening")
            self.assertEqual((pl.watch, pl.addr, pl.pid), (w, "0.0.0.0", os.getpid()))
            with self.assertRaises(OSError) as cm:
                b.listen()
            self.assertEqual(cm.exception.errno, errno.EADDRINUSE)
            expect_silence(c, 0.5)
            a.close()
            self.assertEqual(expect_event(c, "port_closed").addr, "0.0.0.0")

    def test_stats_name_the_path_the_probe_chose(self):
        with Daemon() as d, d.client() as c:
            st = c.stats()
            self.listeners_and_failures_are_right(d)
            log = d.log(tail=10**7)
        found = features(st)
        self.assertIn("kernel features: " + st.kernel_features, log)
        self.assertIn("listen confirmation: " + st.listen_confirmation, log)
        self.assertIn(found["pidfd"], ("yes", "no"))
        if os.environ.get("CTLD_TEST_NO_DIAG") == "yes":
            # the matrix's guest disabled module loading before inet_diag loaded
            self.assertTrue(found["sock_diag"].startswith("no("), found)
            self.assertRegex(log, "sock_diag does not answer .*: listeners are read from "
                             "/proc/net/tcp")
        if MODE != "bpf":
            self.assertEqual(found["fexit"], "not-probed")
            self.assertIn(st.listen_confirmation, ("sock_diag polling", "/proc/net/tcp polling"))
            return
        allowed = kernel_allows_trampolines()
        if allowed is None:
            self.skipTest("no independent trampoline probe here (bpftrace, the matrix's probe)")
        if allowed:
            args = 2 if listen_has_backlog_argument() else 1
            self.assertEqual(found["fexit"], "yes(sk,backlog)" if args == 2 else "yes(sk)")
            self.assertEqual(st.listen_confirmation, "fexit")
            progs = {p.name: p.run_count for p in st.programs}
            variant = "handle_listen_done_backlog" if args == 2 else "handle_listen_done"
            self.assertIn(variant, progs)
            self.assertEqual(len([p for p in progs if p.startswith("handle_listen_done")]), 1)
            # the failed listen() was known exactly, from the kernel
            self.assertRegex(log, r"listen\(\) by pid %d \(\S+\) failed: Address already in use"
                             % os.getpid())
        else:
            self.assertTrue(found["fexit"].startswith("no("), found)
            self.assertTrue(st.listen_confirmation.startswith("sock_diag (the kernel refuses "
                                                              "an fexit"), st.listen_confirmation)

    def test_fexit_path_counts_listens(self):
        """The chosen fexit program runs on listen(): its counter moves."""
        if MODE != "bpf" or not kernel_allows_trampolines():
            self.skipTest("needs eBPF and a kernel that allows trampolines")
        port = free_port()
        with Daemon() as d, d.client() as c:
            watch(c, port)
            with listening_socket(port) as s:
                s.listen()
                expect_event(c, "port_listening")
            runs = {p.name: p.run_count for p in c.stats().programs}
        self.assertGreater(runs.get("handle_listen_done", 0) +
                           runs.get("handle_listen_done_backlog", 0), 0, runs)

    def test_forced_sock_diag_confirms_the_same(self):
        """--listen-confirm sock_diag: the fallback path, also where fexit
        would work (the bench's comparison, and this test, need it)."""
        with Daemon("--listen-confirm", "sock_diag") as d, d.client() as c:
            st = c.stats()
            self.listeners_and_failures_are_right(d)
        if MODE == "bpf" and os.environ.get("CTLD_TEST_NO_DIAG") == "yes":
            # asked for sock_diag, which cannot answer here: said, and read elsewhere
            self.assertTrue(st.listen_confirmation.startswith("/proc/net/tcp (sock_diag: "),
                            st.listen_confirmation)
        elif MODE == "bpf":
            self.assertEqual(st.listen_confirmation, "sock_diag (--listen-confirm sock_diag)")
            self.assertFalse([p.name for p in st.programs if p.name.startswith("handle_listen")])

    def test_forced_fexit_where_refused_falls_back_and_says_why(self):
        if MODE != "bpf" or kernel_allows_trampolines() is not False:
            self.skipTest("needs eBPF on a kernel known to refuse trampolines")
        with Daemon("--listen-confirm", "fexit") as d, d.client() as c:
            st = c.stats()
            self.listeners_and_failures_are_right(d)
            log = d.log(tail=10**7)
        self.assertTrue(st.listen_confirmation.startswith("sock_diag (the kernel refuses"))
        self.assertIn("--listen-confirm fexit: the kernel refuses an fexit", log)

    def test_bad_value_is_refused_clearly(self):
        p = subprocess.run([CTLD, "--listen-confirm", "kprobe", "--socket", "/nonexistent/s"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 64, p.stderr)
        self.assertIn("bad value for --listen-confirm: 'kprobe' (auto, fexit or sock_diag)",
                      p.stderr)

    def test_ctl_stats_prints_both(self):
        with Daemon() as d:
            out = d.ctl("stats", check=0).stdout
            js = d.ctl("--json", "stats", check=0).stdout
        self.assertRegex(out, r"(?m)^listen confirmation: \S")
        self.assertRegex(out, r"(?m)^kernel features: btf=")
        self.assertIn('"listen_confirmation":', js)
        self.assertIn('"kernel_features":"btf=', js.replace(" ", ""))


if __name__ == "__main__":
    unittest.main()
