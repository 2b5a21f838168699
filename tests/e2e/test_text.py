# SPDX-License-Identifier: BSD-2-Clause
"""Every string the daemon sends is valid UTF-8, whatever bytes a job's argv
or a path holds: one job with b'\\xff' in its argv once broke List for every
protobuf client (DecodeError on JobInfo.command; the same for
ExecFailed.text). Invalid bytes become '?', and List also gives the exact
bytes of such a command (JobInfo.command_bytes)."""
import subprocess
import unittest

from harness import CTL, DaemonTestCase, pb


class Utf8Test(DaemonTestCase):
    def ctl_bytes(self, *argv):
        """ctl with raw byte arguments (the Python client would refuse them)."""
        return subprocess.run([CTL.encode(), b"-S", self.d.socket.encode()] + list(argv),
                              capture_output=True, timeout=30)

    def test_list_with_a_non_utf8_argv(self):
        p = self.ctl_bytes(b"start", b"--", b"sh", b"-c", b"sleep 30 # \xff\xfe end")
        self.assertEqual(p.returncode, 0, p.stderr)
        job = int(p.stdout)
        with self.d.client() as c:
            info = [j for j in c.list() if j.job == job][0]
            self.assertEqual(info.command, "sh -c sleep 30 # ?? end")
            self.assertEqual(info.command_bytes, b"sh -c sleep 30 # \xff\xfe end")
            c.signal(job, 9)

    def test_exec_failed_text_with_a_non_utf8_program(self):
        p = self.ctl_bytes(b"--json", b"run", b"--", b"/nonexistent/\xff")
        self.assertEqual(p.returncode, 127)
        with self.d.client() as c:
            job = max(j.job for j in c.list())
            c.attach(job)  # the terminal event is replayed, and must decode
            ev = c.next_event(timeout=5)
            self.assertTrue(ev.HasField("exec_failed"), ev)
            self.assertIn("/nonexistent/?", ev.exec_failed.text)

    def test_listener_comm(self):
        """A listener whose comm is not UTF-8 (the kernel reports it)."""
        import socket
        import sys
        with socket.socket() as s0:
            s0.bind(("127.0.0.1", 0))
            port = s0.getsockname()[1]
        code = ("import socket,time\n"
                "open('/proc/self/comm','wb').write(b'\\xffsrv')\n"
                "s=socket.socket(); s.bind(('127.0.0.1',%d)); s.listen(); time.sleep(30)" % port)
        with self.d.client() as c:
            c.request(watch_port=pb.WatchPort(port=port, timeout_ms=10000))
            proc = subprocess.Popen([sys.executable, "-c", code])
            try:
                while True:
                    ev = c.next_event(timeout=10)
                    if ev.HasField("port_listening"):
                        break
                self.assertEqual(ev.port_listening.comm, "?srv")
            finally:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    unittest.main()
