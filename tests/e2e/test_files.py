# SPDX-License-Identifier: BSD-2-Clause
"""File transfer: ctl put / ctl get and the PutFile, PutData, GetFile and
GetCredit requests (docs/protocol.md "Files", docs/design.md "Faults").

Large files both ways with their SHA-256 checked and the daemon's RSS
bounded; a tree with modes and mtimes; atomicity (a reader of the
destination sees the old file or the new one, never a part, even when ctl
is killed in the middle); restarting after an interruption; a full disk;
refusals (relative paths, missing files, another user's rights) and bad
chunks on the wire; get's flow control (a client that reads nothing makes
the daemon read no further); several nodes with %h and LOCALDIR/<node>.
"""
import glob
import hashlib
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (CTL, SANITIZED, Client, CtldError, DaemonTestCase, not_under_valgrind,
                     pb, scaled)
from harness import wait_for
from ctld import files

MIB = 1 << 20


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def random_file(path, size):
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n


def temp_files(directory):
    """The daemon's temporary files of a put in directory (.NAME.ctld-PID.RANDOM-ID)."""
    return glob.glob(os.path.join(directory, ".*.ctld-*"))


class RssWatcher:
    """The highest rss_kb `ctl stats` (Stats) reports while the block runs."""

    def __init__(self, d):
        self.d, self.peak, self.stop = d, 0, threading.Event()

    def __enter__(self):
        self.client = self.d.client()
        self.base = self.client.stats().rss_kb
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.client.stats().rss_kb)
            time.sleep(0.05)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.client.close()


class FilesTest(DaemonTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ctld-files-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    # ------------------------------------------------------------ both ways

    @not_under_valgrind("400 MB through the daemon; RSS would be valgrind's")
    def test_large_file_both_ways_sha256_and_bounded_rss(self):
        size = 200 * 1000 * 1000 + 12345  # not a multiple of the chunk
        src = self.path("big.bin")
        random_file(src, size)
        want = sha256_of(src)
        os.mkdir(self.path("remote"))
        with RssWatcher(self.d) as rss:
            self.d.ctl("put", src, self.path("remote", "big.bin"), check=0, timeout=300)
            self.d.ctl("get", self.path("remote", "big.bin"), self.path("got"), check=0,
                       timeout=300)
        self.assertEqual(sha256_of(self.path("remote", "big.bin")), want)
        node = socket.gethostname()
        self.assertEqual(sha256_of(self.path("got", node, "big.bin")), want)
        self.assertEqual(temp_files(self.path("remote")), [])
        # a 200 MB file costs the daemon at most a window and some chunks
        # (not with ASan: its quarantine keeps freed chunks, up to 256 MiB)
        if not SANITIZED:
            self.assertLess(rss.peak - rss.base, 16 * 1024,
                            "rss went from %d to %d KiB" % (rss.base, rss.peak))
        self.assertDaemonServes()

    def test_tree_with_modes_and_mtimes(self):
        src = self.path("tree")
        os.makedirs(os.path.join(src, "a", "b"))
        os.makedirs(os.path.join(src, "locked"))
        wanted = {"top.txt": (b"top\n", 0o644), "a/run.sh": (b"#!/bin/sh\n", 0o755),
                  "a/b/secret": (b"s" * 100000, 0o600), "a/b/empty": (b"", 0o640),
                  "locked/inside": (b"in\n", 0o444), "a/setuid": (b"x", 0o4755)}
        for rel, (data, mode) in wanted.items():
            p = os.path.join(src, rel)
            with open(p, "wb") as f:
                f.write(data)
            os.chmod(p, mode)
            os.utime(p, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
        os.symlink("top.txt", os.path.join(src, "link"))
        os.chmod(os.path.join(src, "a", "b"), 0o750)
        os.chmod(os.path.join(src, "locked"), 0o555)
        os.mkdir(self.path("dst"))
        p = self.d.ctl("put", src, self.path("dst") + "/", check=0)
        self.assertIn("skipping %s/link (a symbolic link)" % src, p.stderr)
        self.d.ctl("get", self.path("dst", "tree"), self.path("back"), check=0)
        for root in (self.path("dst", "tree"), self.path("back", socket.gethostname(), "tree")):
            for rel, (data, mode) in wanted.items():
                p = os.path.join(root, rel)
                with open(p, "rb") as f:
                    self.assertEqual(f.read(), data, p)
                st = os.stat(p)
                self.assertEqual(st.st_mode & 0o7777, mode, p)
                self.assertEqual(st.st_mtime_ns, 1_600_000_000_123_456_789, p)
            self.assertEqual(os.stat(os.path.join(root, "a", "b")).st_mode & 0o7777, 0o750)
            self.assertEqual(os.stat(os.path.join(root, "locked")).st_mode & 0o7777, 0o555)
            self.assertFalse(os.path.lexists(os.path.join(root, "link")))
        os.chmod(self.path("dst", "tree", "locked"), 0o755)  # so that cleanup can remove it
        os.chmod(self.path("back", socket.gethostname(), "tree", "locked"), 0o755)

    def test_python_module_put_and_get(self):
        src = self.path("py")
        os.makedirs(os.path.join(src, "sub"))
        random_file(os.path.join(src, "sub", "data"), 3 * 32768)  # a multiple of the chunk
        with open(os.path.join(src, "note"), "w") as f:
            f.write("note\n")
        os.chmod(os.path.join(src, "note"), 0o600)
        with self.d.client() as c:
            sent = []
            r = files.put(c, src, self.path("pydst"), progress=sent.append)
            self.assertEqual(sum(sent), 3 * 32768 + 5)
            self.assertEqual(sorted(r["files"]), [self.path("pydst", "note"),
                                                  self.path("pydst", "sub", "data")])
            r = files.get(c, self.path("pydst"), self.path("pyback"))
            self.assertEqual(len(r["files"]), 2)
            with self.assertRaises(CtldError) as e:
                files.get(c, self.path("nothing-here"), self.path("pyback"))
            self.assertEqual(e.exception.code, pb.NOT_FOUND)
            # the connection is still good for anything else
            self.assertEqual(c.run_and_wait(["echo", "ok"])[0], b"ok\n")
        self.assertEqual(sha256_of(self.path("pyback", "pydst", "sub", "data")),
                         sha256_of(os.path.join(src, "sub", "data")))
        self.assertEqual(os.stat(self.path("pyback", "pydst", "note")).st_mode & 0o777, 0o600)

    def test_several_nodes_with_percent_h(self):
        # one daemon under two names: two nodes as far as ctl can tell
        names = ["127.0.0.1:%d" % self.d.tcp_port, "localhost:%d" % self.d.tcp_port]
        target = ["-H", ",".join(names)]
        with open(self.path("conf"), "w") as f:
            f.write("conf\n")
        os.mkdir(self.path("nodes"))
        self.d.ctl("put", self.path("conf"), self.path("nodes", "conf-%h"), target=target,
                   check=0)
        for n in names:
            with open(self.path("nodes", "conf-" + n)) as f:
                self.assertEqual(f.read(), "conf\n")
        self.d.ctl("get", self.path("nodes", "conf-%h"), self.path("gathered"), target=target,
                   check=0)
        for n in names:
            with open(self.path("gathered", n, "conf-" + n)) as f:
                self.assertEqual(f.read(), "conf\n")
        # LOCALDIR with %h too, and parents that do not exist yet
        self.d.ctl("get", self.path("nodes", "conf-%h"), self.path("deep", "run-%h"),
                   target=target, check=0)
        for n in names:
            with open(self.path("deep", "run-" + n, n, "conf-" + n)) as f:
                self.assertEqual(f.read(), "conf\n")

    @not_under_valgrind("a 64 MB file")
    def test_progress_on_a_terminal(self):
        random_file(self.path("p.bin"), 64 * MIB)
        master, slave = pty.openpty()
        try:
            p = subprocess.run([CTL, "-S", self.d.socket, "put", self.path("p.bin"),
                                self.path("p.copy")], stderr=slave, timeout=scaled(60))
            os.close(slave)
            slave = -1
            out = b""
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            if slave >= 0:
                os.close(slave)
            os.close(master)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"put: 64.0 / 64.0 MiB (", out)
        self.assertIn(b"MiB/s)", out)
        # not on a pipe
        p = self.d.ctl("put", self.path("p.bin"), self.path("p.copy2"), check=0)
        self.assertEqual(p.stderr, "")

    # ------------------------------------------------------------ atomicity, restarts

    @not_under_valgrind("a 300 MB file")
    def test_killed_put_leaves_old_file_then_resumes(self):
        dest = self.path("dest.bin")
        with open(dest, "wb") as f:
            f.write(b"old contents\n")
        src = self.path("new.bin")
        random_file(src, 300 * MIB)
        with open(src, "rb") as f:
            new_head = f.read(13)
        wrong = []
        stop = threading.Event()

        def reader():   # the destination is always whole: the old file or the new one
            while not stop.is_set():
                with open(dest, "rb") as f:
                    head = f.read(13)
                    size = os.fstat(f.fileno()).st_size
                if (head, size) not in ((b"old contents\n", 13), (new_head, 300 * MIB)):
                    wrong.append((head, size))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        ctl = subprocess.Popen([CTL, "-S", self.d.socket, "put", src, dest],
                               stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: any(os.path.getsize(p) > 20 * MIB for p in temp_files(self.tmp)),
                     timeout=60, what="the temporary file to grow")
        finally:
            ctl.kill()
            ctl.wait()
        # the killed put waits, parked, for the same put to resume it
        wait_for(lambda: len(temp_files(self.tmp)) == 1, timeout=10,
                 what="one temporary file")
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), b"old contents\n")
        self.assertDaemonServes()
        p = self.d.ctl("put", src, dest, check=0, timeout=120)
        m = re.search(r"put: resuming %s at (\d+) of %d bytes" % (re.escape(dest), 300 * MIB),
                      p.stderr)
        self.assertTrue(m, p.stderr)
        self.assertGreater(int(m.group(1)), 20 * MIB)
        stop.set()
        t.join()
        self.assertEqual(sha256_of(dest), sha256_of(src))
        self.assertEqual(wrong, [])
        self.assertEqual(temp_files(self.tmp), [])

    def test_resume_checks_the_start_is_the_same(self):
        # a parked put of a file whose content changed (same size and mtime):
        # the daemon's digest of what it has is not LOCAL's start, so ctl
        # drops it and puts the whole file
        src, dest = self.path("src"), self.path("dest")
        with open(src, "wb") as f:
            f.write(b"a" * 100000)
        os.utime(src, ns=(1_700_000_000_000_000_000,) * 2)
        with self.d.client() as c:
            t = c.request(put_file=pb.PutFile(path=dest, mode=0o644, size=100000, resume=True,
                                              mtime_ns=1_700_000_000_000_000_000)).put_file
            c.request(put_data=pb.PutData(transfer=t.transfer, data=b"b" * 32768))
        wait_for(lambda: len(temp_files(self.tmp)) == 1, timeout=10,
                 what="the parked temporary file")
        p = self.d.ctl("put", src, dest, check=0)
        self.assertNotIn("resuming", p.stderr)
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), b"a" * 100000)
        self.assertEqual(temp_files(self.tmp), [])
        # and a Python client resumes by hand: the reply says where and the digest
        with open(src, "wb") as f:
            f.write(b"c" * 100000)
        with self.d.client() as c:
            t = c.request(put_file=pb.PutFile(path=dest, mode=0o600, size=100000,
                                              resume=True)).put_file
            c.request(put_data=pb.PutData(transfer=t.transfer, data=b"c" * 32768))
        with self.d.client() as c:
            t = c.request(put_file=pb.PutFile(path=dest, mode=0o600, size=100000,
                                              resume=True)).put_file
            self.assertEqual(t.offset, 32768)
            self.assertEqual(t.sha256, hashlib.sha256(b"c" * 32768).digest())
            for off in (32768, 65536):
                c.request(put_data=pb.PutData(transfer=t.transfer, offset=off,
                                              data=b"c" * 32768))
            done = c.request(put_data=pb.PutData(transfer=t.transfer, offset=98304,
                                                 data=b"c" * (100000 - 98304), last=True,
                                                 sha256=hashlib.sha256(b"c" * 100000).digest()))
            self.assertEqual(done.file_done.size, 100000)
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), b"c" * 100000)
        self.assertEqual(os.stat(dest).st_mode & 0o777, 0o600)

    def test_client_gone_mid_put_and_mid_get(self):
        dest = self.path("half")
        c = self.d.client()
        t = c.request(put_file=pb.PutFile(path=dest, mode=0o644, size=10 * 32768)).put_file
        for i in range(3):
            c.request(put_data=pb.PutData(transfer=t.transfer, offset=i * 32768,
                                          data=b"x" * 32768))
        self.assertEqual(len(temp_files(self.tmp)), 1)
        c.close()
        wait_for(lambda: not temp_files(self.tmp), timeout=10,
                 what="the temporary file of a vanished client to go")
        self.assertFalse(os.path.exists(dest))
        # a get whose client goes: its descriptor is closed
        random_file(self.path("src"), 8 * MIB)
        fds = len(os.listdir("/proc/%d/fd" % self.d.pid))
        c = self.d.client()
        c.request(get_file=pb.GetFile(path=self.path("src")))
        c.close()
        wait_for(lambda: len(os.listdir("/proc/%d/fd" % self.d.pid)) <= fds, timeout=10,
                 what="the daemon to close the file of a vanished get")
        self.assertDaemonServes()

    # ------------------------------------------------------------ flow control

    def test_get_reads_no_further_than_the_client_takes(self):
        size = 64 * MIB
        random_file(self.path("flow"), size)
        c = self.d.client()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        r = c.request(get_file=pb.GetFile(path=self.path("flow"), window=256 * 1024)).get_file
        self.assertEqual(r.size, size)
        time.sleep(scaled(0.3))
        with self.d.client() as other:
            held = other.stats().output_held
        # one window (plus a frame) waits for it, not the file
        self.assertLess(held, 256 * 1024 + 64 * 1024)
        h, received, end = hashlib.sha256(), 0, None
        while end is None:
            msg = c.recv_message()
            if msg.HasField("reply"):
                continue
            if msg.event.HasField("file_data"):
                self.assertEqual(msg.event.file_data.offset, received)
                h.update(msg.event.file_data.data)
                received += len(msg.event.file_data.data)
                if received % (128 * 1024) == 0:
                    c.request_nowait(get_credit=pb.GetCredit(transfer=r.transfer,
                                                             received=received))
            elif msg.event.HasField("file_end"):
                end = msg.event.file_end
        self.assertEqual((end.size, end.sha256.hex()), (size, sha256_of(self.path("flow"))))
        self.assertEqual(h.hexdigest(), end.sha256.hex())
        c.close()

    # ------------------------------------------------------------ faults

    def test_disk_full_is_reported_and_leaves_nothing(self):
        mnt = self.path("small")
        os.mkdir(mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        random_file(self.path("two-mib"), 2 * MIB)
        p = self.d.ctl("put", self.path("two-mib"), os.path.join(mnt, "f"), check=1)
        self.assertIn("SYSTEM: failed to write %s/f: No space left on device" % mnt, p.stderr)
        self.assertEqual(os.listdir(mnt), [])
        # a file that fits still goes in
        random_file(self.path("small-file"), 100000)
        self.d.ctl("put", self.path("small-file"), os.path.join(mnt, "f"), check=0)
        self.assertEqual(sorted(os.listdir(mnt)), ["f"])

    def test_refusals_and_their_texts(self):
        with open(self.path("f"), "w") as f:
            f.write("f\n")
        tcp = ["-H", "127.0.0.1:%d" % self.d.tcp_port]
        p = self.d.ctl("put", self.path("f"), "relative/f", target=tcp, check=1)
        self.assertIn('BAD_REQUEST: PutFile: the path must be absolute: "relative/f"', p.stderr)
        p = self.d.ctl("get", "relative/f", self.path("out"), target=tcp, check=1)
        self.assertIn("BAD_REQUEST: GetFile: the path must be absolute", p.stderr)
        p = self.d.ctl("put", self.path("missing"), self.path("x"), check=66)
        self.assertIn("put: cannot read %s: No such file or directory" % self.path("missing"),
                      p.stderr)
        p = self.d.ctl("get", self.path("missing"), self.path("out"), check=1)
        self.assertIn("NOT_FOUND: failed to open %s: No such file or directory"
                      % self.path("missing"), p.stderr)
        p = self.d.ctl("put", self.path("f"), self.path("no-dir", "f"), check=1)
        self.assertIn("NOT_FOUND: failed to open the directory of %s" % self.path("no-dir", "f"),
                      p.stderr)
        p = self.d.ctl("get", "/dev/null", self.path("out"), check=1)
        self.assertIn("BAD_REQUEST: /dev/null is not a regular file or a directory", p.stderr)
        p = self.d.ctl("put", "--user", "no-such-user-here", self.path("f"), self.path("y"),
                       check=1)
        self.assertIn("no such user: no-such-user-here", p.stderr)
        # another user's rights: nobody may not write into a root directory
        # (0755) nor read a root file (0600); where it may, the file is its own
        os.chmod(self.tmp, 0o755)
        os.chmod(self.path("f"), 0o600)
        p = self.d.ctl("put", "--user", "nobody", self.path("f"), self.path("by-nobody"), check=1)
        self.assertIn("PERMISSION: failed to create a file beside %s: Permission denied"
                      % self.path("by-nobody"), p.stderr)
        self.assertEqual(temp_files(self.tmp), [])
        p = self.d.ctl("get", "--user", "nobody", self.path("f"), self.path("out"), check=1)
        self.assertIn("PERMISSION: failed to open %s: Permission denied" % self.path("f"),
                      p.stderr)
        os.mkdir(self.path("nobodys"))
        os.chown(self.path("nobodys"), 65534, 65534)
        os.chmod(self.path("f"), 0o644)
        self.d.ctl("put", "--user", "nobody", self.path("f"), self.path("nobodys", "f"), check=0)
        self.assertEqual(os.stat(self.path("nobodys", "f")).st_uid, 65534)
        self.assertDaemonServes()

    def test_bad_chunks_on_the_wire(self):
        dest = self.path("wire")
        with self.d.client() as c:
            def start(size):
                return c.request(put_file=pb.PutFile(path=dest, mode=0o644,
                                                     size=size)).put_file.transfer

            with self.assertRaises(CtldError) as e:
                c.request(put_data=pb.PutData(transfer=999999, data=b"x"))
            self.assertEqual(e.exception.code, pb.NOT_FOUND)
            self.assertIn("no such transfer: 999999", e.exception.text)
            t = start(10)
            with self.assertRaises(CtldError) as e:
                c.request(put_data=pb.PutData(transfer=t, offset=5, data=b"x"))
            self.assertEqual(e.exception.code, pb.BAD_REQUEST)
            self.assertIn("chunk out of order", e.exception.text)
            with self.assertRaises(CtldError) as e:   # that transfer is over
                c.request(put_data=pb.PutData(transfer=t, offset=0, data=b"x"))
            self.assertEqual(e.exception.code, pb.NOT_FOUND)
            t = start(3)
            with self.assertRaises(CtldError) as e:
                c.request(put_data=pb.PutData(transfer=t, data=b"four"))
            self.assertIn("more data than announced", e.exception.text)
            t = start(3)
            with self.assertRaises(CtldError) as e:
                c.request(put_data=pb.PutData(transfer=t, data=b"abc", last=True,
                                              sha256=hashlib.sha256(b"abd").digest()))
            self.assertEqual(e.exception.code, pb.BAD_REQUEST)
            self.assertIn("sha256 mismatch", e.exception.text)
            t = start(3)
            with self.assertRaises(CtldError) as e:
                c.request(put_data=pb.PutData(transfer=t, data=b"ab", last=True,
                                              sha256=hashlib.sha256(b"ab").digest()))
            self.assertIn("2 bytes received, PutFile announced 3", e.exception.text)
            # a chunk above 32 KiB is not decoded: LIMIT, the connection stays
            t = start(40000)
            with self.assertRaises(CtldError) as e:
                c.request(put_data=pb.PutData(transfer=t, data=b"x" * 40000))
            self.assertEqual(e.exception.code, pb.LIMIT)
            c.request(put_data=pb.PutData(transfer=t, abort=True))
            with self.assertRaises(CtldError) as e:
                c.request(put_file=pb.PutFile(path=dest, mode=0o17777))
            self.assertEqual(e.exception.code, pb.BAD_REQUEST)
            with self.assertRaises(CtldError) as e:
                c.request(get_file=pb.GetFile(path=self.tmp, window=2 * MIB))
            self.assertEqual(e.exception.code, pb.BAD_REQUEST)
            # after all that: nothing was written, no temporary file is left,
            # and a good put goes through on the same connection
            self.assertFalse(os.path.exists(dest))
            self.assertEqual(temp_files(self.tmp), [])
            t = start(3)
            done = c.request(put_data=pb.PutData(transfer=t, data=b"abc", last=True,
                                                 sha256=hashlib.sha256(b"abc").digest()))
            self.assertEqual(done.file_done.sha256, hashlib.sha256(b"abc").digest())
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), b"abc")

    def test_too_many_transfers_at_once(self):
        with self.d.client() as c:
            for i in range(16):
                c.request(put_file=pb.PutFile(path=self.path("t%d" % i), mode=0o644, size=1))
            with self.assertRaises(CtldError) as e:
                c.request(put_file=pb.PutFile(path=self.path("t16"), mode=0o644, size=1))
            self.assertEqual(e.exception.code, pb.LIMIT)
            self.assertIn("too many file transfers at once (16 per connection)", e.exception.text)
        wait_for(lambda: not temp_files(self.tmp), timeout=10,
                 what="the temporary files to go with their client")
        # gets: 64 in the daemon at most, whoever asks (each holds a window)
        random_file(self.path("src"), MIB)
        clients = [self.d.client() for _ in range(5)]
        try:
            for i in range(64):
                clients[i // 16].request(get_file=pb.GetFile(path=self.path("src"),
                                                             window=32768))
            with self.assertRaises(CtldError) as e:
                clients[4].request(get_file=pb.GetFile(path=self.path("src")))
            self.assertEqual(e.exception.code, pb.LIMIT)
            self.assertIn("too many gets at once (64 in the daemon", e.exception.text)
        finally:
            for c in clients:
                c.close()
        with self.d.client() as c:   # their clients gone, gets are possible again
            def get_again():
                try:
                    return files.get(c, self.path("src"), self.path("again"))["files"]
                except CtldError as e:
                    self.assertEqual(e.code, pb.LIMIT)
                    return None
            wait_for(get_again, timeout=10, what="the gets of closed clients to end")
        self.assertEqual(sha256_of(self.path("again", "src")), sha256_of(self.path("src")))


if __name__ == "__main__":
    unittest.main()
