# SPDX-License-Identifier: BSD-2-Clause
"""The ctl command line, end to end against real daemons: exit statuses
(the job's, 128+N, 127, 124, 69, 64, 76, 1), output streams and stdin, JSON
lines, start/wait/list/kill/attach, signals, a closed stdout, TCP, several
hosts at once, TLS, --wait-port and the watch commands. A fake daemon
covers what a real one never sends (bad versions, garbage, huge frames,
silence).
"""
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import PY, Daemon, DaemonTestCase, free_port, json_lines, pb, scaled, wait_for
from ctld_client import frame


def listen_script(port, delay=0.0):
    """A job that listens on port after delay seconds, then idles."""
    return [PY, "-c", "import socket,time; time.sleep(%s); s=socket.socket(); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('127.0.0.1', %d)); s.listen(); time.sleep(60)" % (delay, port)]


def ctl_raw(args, cwd=None, env=None, timeout=30, **kw):
    """Runs ctl with exactly these arguments (no target added)."""
    full_env = dict(os.environ)
    full_env.pop("CTLD_SOCKET", None)
    full_env.pop("CTLD_HOST", None)
    full_env.update(env or {})
    return subprocess.run([harness.CTL] + list(args), capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout, **kw)


class CtlTestCase(DaemonTestCase):
    def jobs(self):
        p = self.d.ctl("--json", "list", check=0)
        return {j["job"]: j for j in json_lines(p.stdout)}

    def wait_until(self, predicate, timeout=10, what="condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        self.fail("timed out waiting for " + what)

    def start(self, *argv, **kw):
        p = self.d.ctl("start", "--", *argv, check=0, **kw)
        self.assertRegex(p.stdout, r"^\d+\n$")
        return int(p.stdout)


class ExitStatusTest(CtlTestCase):
    def test_exit_codes_propagate(self):
        for code in (0, 3, 255):
            p = self.d.ctl("run", "--", "sh", "-c", "exit %d" % code)
            self.assertEqual(p.returncode, code, p.stderr)
            self.assertEqual(p.stderr, "")

    def test_signal_death_is_128_plus_n(self):
        p = self.d.ctl("run", "--", "sh", "-c", "kill -9 $$")
        self.assertEqual(p.returncode, 137)
        self.assertIn("killed by signal SIGKILL", p.stderr)
        p = self.d.ctl("run", "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(p.returncode, 143)

    def test_exec_failure_enoent(self):
        p = self.d.ctl("run", "--", "/nonexistent/prog", "arg")
        self.assertEqual(p.returncode, 127)
        self.assertEqual(p.stderr,
                         "ctl: cannot run '/nonexistent/prog': No such file or directory\n")
        p = self.d.ctl("run", "--", "no-such-program-on-path")
        self.assertEqual(p.returncode, 127)
        self.assertIn("cannot run 'no-such-program-on-path'", p.stderr)

    def test_exec_failure_eacces(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "not-executable")
            with open(path, "w") as f:
                f.write("#!/bin/sh\necho never\n")
            os.chmod(path, 0o644)
            p = self.d.ctl("run", "--", path)
        self.assertEqual(p.returncode, 127)
        self.assertEqual(p.stderr, "ctl: cannot run '%s': Permission denied\n" % path)
        self.assertEqual(p.stdout, "")

    def test_timeout_is_124(self):
        t0 = time.monotonic()
        p = self.d.ctl("run", "--timeout", "300ms", "--", "sleep", "30")
        self.assertEqual(p.returncode, 124)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertIn("timed out after 300ms", p.stderr)

    def test_start_exec_failure_is_127(self):
        p = self.d.ctl("start", "--", "/nonexistent/prog")
        self.assertEqual(p.returncode, 127)
        self.assertEqual(p.stdout, "")
        self.assertIn("cannot run '/nonexistent/prog'", p.stderr)


class StreamsTest(CtlTestCase):
    def test_stdout_stderr_separated(self):
        p = self.d.ctl("run", "--", "sh", "-c", "echo out; echo err >&2; echo out2")
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, "out\nout2\n")
        self.assertEqual(p.stderr, "err\n")

    def test_stdin_forwarded(self):
        # echo hi | ctl run -- cat
        p = self.d.ctl("run", "--", "cat", input="hi\n")
        self.assertEqual((p.returncode, p.stdout), (0, "hi\n"))

    def test_stdin_large_binary_round_trip(self):
        blob = os.urandom(3 << 20)
        p = self.d.ctl("run", "--", "cat", input=blob)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, blob)

    def test_no_stdin_means_dev_null(self):
        p = self.d.ctl("run", "--no-stdin", "--", "sh", "-c", "cat; echo end", input="ignored")
        self.assertEqual(p.stdout, "end\n")

    def test_job_that_ignores_stdin_still_ends(self):
        # stdin never closes (an idle pipe), the job exits: ctl must not wait for EOF
        r, w = os.pipe()
        try:
            p = subprocess.run([harness.CTL, "-S", self.d.socket, "run", "--", "echo", "x"],
                               stdin=r, capture_output=True, text=True, timeout=20)
        finally:
            os.close(r)
            os.close(w)
        self.assertEqual((p.returncode, p.stdout), (0, "x\n"))

    def test_runs_in_ctl_directory_on_unix_socket(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = ctl_raw(["-S", self.d.socket, "run", "--", "pwd"], cwd=tmp)
            self.assertEqual(p.stdout, os.path.realpath(tmp) + "\n")
            os.mkdir(os.path.join(tmp, "sub"))
            p = ctl_raw(["-S", self.d.socket, "run", "--cwd", "sub", "--stdout", "out.txt",
                         "--", "sh", "-c", "pwd; echo to-file"], cwd=tmp)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(os.path.join(tmp, "sub", "out.txt")) as f:
                self.assertEqual(f.read(), os.path.realpath(tmp) + "/sub\nto-file\n")

    def test_over_tcp_default_directory_is_root(self):
        p = self.d.ctl("run", "--", "pwd", target=["-H", self.d.tcp])
        self.assertEqual((p.returncode, p.stdout), (0, "/\n"))

    def test_env_name_and_clean_env(self):
        p = self.d.ctl("run", "--name", "envjob", "-e", "FOO=bar=baz", "--", "sh", "-c",
                       'printf "%s\\n" "$FOO"')
        self.assertEqual(p.stdout, "bar=baz\n")
        self.assertIn("envjob", [j["name"] for j in self.jobs().values()])
        p = self.d.ctl("run", "--clean-env", "-e", "ONLY=1", "--", "/usr/bin/env")
        self.assertEqual(p.stdout, "ONLY=1\n")

    def test_yes_into_head_terminates(self):
        # nobody reads after head exits: ctl must notice EPIPE, stop the job, and exit
        t0 = time.monotonic()
        p = subprocess.run("'%s' -S '%s' run --name yesjob -- yes | head -1"
                           % (harness.CTL, self.d.socket), shell=True, capture_output=True,
                           text=True, timeout=20)
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(p.stdout, "y\n")
        yes = [j for j in self.jobs().values() if j["name"] == "yesjob"]
        self.assertTrue(yes)
        self.wait_until(lambda: all(self.jobs()[j["job"]]["state"] == "exited" for j in yes),
                        what="the yes job to be stopped")

    def test_json_lines(self):
        p = self.d.ctl("--json", "run", "--", "sh", "-c", 'echo hi; echo err >&2; exit 3')
        self.assertEqual(p.returncode, 3)
        events = json_lines(p.stdout)
        self.assertEqual(events[0]["event"], "launched")
        job = events[0]["job"]
        self.assertGreater(events[0]["pid"], 0)
        out = [e for e in events if e["event"] == "output"]
        self.assertIn({"stream": "stdout", "data": "hi\n"},
                      [{"stream": e["stream"], "data": e["data"]} for e in out])
        self.assertIn("err\n", [e["data"] for e in out if e["stream"] == "stderr"])
        last = events[-1]
        self.assertEqual((last["event"], last["job"], last["exit_code"]), ("exited", job, 3))
        self.assertNotIn("signal", last)
        for key in ("pid", "user_us", "sys_us", "max_rss_kb", "wall_ns"):
            self.assertIn(key, last)

    def test_json_binary_output_is_base64(self):
        p = self.d.ctl("--json", "run", "--", "printf", "a\\377\\000\"\\n")
        datas = [e for e in json_lines(p.stdout) if e["event"] == "output"]
        raw = b"".join(base64.b64decode(e["data_base64"]) if "data_base64" in e
                       else e["data"].encode() for e in datas)
        self.assertEqual(raw, b"a\xff\x00\"\n")

    def test_json_exec_failed_and_signal(self):
        p = self.d.ctl("run", "--json", "--", "/nonexistent/x")
        ev = json_lines(p.stdout)[-1]
        self.assertEqual((ev["event"], ev["errno"]), ("exec_failed", 2))
        self.assertIn("No such file", ev["text"])
        p = self.d.ctl("run", "--json", "--", "sh", "-c", "kill -9 $$")
        ev = json_lines(p.stdout)[-1]
        self.assertEqual((ev["signal"], ev["core_dumped"]), (9, False))


class JobControlTest(CtlTestCase):
    def test_start_wait_list(self):
        job = self.start("sh", "-c", "sleep 0.5; exit 7")
        info = self.jobs()[job]
        self.assertEqual(info["state"], "running")
        self.assertEqual(info["command"], "sh -c sleep 0.5; exit 7")
        table = self.d.ctl("list", check=0).stdout.splitlines()
        self.assertEqual(table[0].split(), ["JOB", "PID", "STATE", "NAME", "STARTED", "EXIT",
                                            "COMMAND"])
        row = [r for r in table if r.split()[0] == str(job)][0].split()
        self.assertEqual((row[2], row[3]), ("running", "sh"))
        self.assertRegex(row[4], r"^\d\d:\d\d:\d\d$")
        self.assertEqual(self.d.ctl("wait", str(job)).returncode, 7)
        self.assertEqual(self.d.ctl("wait", str(job)).returncode, 7)  # replayed
        self.assertEqual((self.jobs()[job]["state"], self.jobs()[job]["exit_code"]),
                         ("exited", 7))
        running = self.d.ctl("list", "--running", check=0).stdout
        self.assertNotRegex(running, r"(?m)^%d " % job)

    def test_kill_then_wait_is_143(self):
        job = self.start("sleep", "100")
        self.assertEqual(self.d.ctl("kill", str(job)).returncode, 0)
        p = self.d.ctl("wait", str(job))
        self.assertEqual(p.returncode, 143)
        p = self.d.ctl("kill", str(job))
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"^ctl: NOT_FOUND: ")

    def test_kill_signal_by_name_and_number(self):
        for spelling, status in (("KILL", 137), ("sigint", 130), ("9", 137)):
            job = self.start("sleep", "100")
            self.d.ctl("kill", "--signal", spelling, str(job), check=0)
            self.assertEqual(self.d.ctl("wait", str(job)).returncode, status, spelling)

    def test_wait_unknown_job(self):
        p = self.d.ctl("wait", "999999")
        self.assertEqual(p.returncode, 1)
        self.assertIn("NOT_FOUND", p.stderr)

    def test_attach_shows_backlog_then_live(self):
        job = self.start("sh", "-c", "echo early; sleep 0.5; echo late; exit 4")
        p = self.d.ctl("attach", str(job))
        self.assertEqual((p.returncode, p.stdout), (4, "early\nlate\n"))

    def test_wait_reports_exec_failure(self):
        with self.d.client() as c:
            job = c.run(["/nonexistent/y"])
        p = self.d.ctl("wait", str(job))
        self.assertEqual(p.returncode, 127)
        self.assertIn("could not run", p.stderr)

    def test_stats(self):
        p = self.d.ctl("stats", check=0)
        stats = dict(line.split(": ", 1) for line in p.stdout.splitlines()
                     if not line.startswith("program "))
        self.assertIn(stats["bpf"], ("on", "off"))
        self.assertGreaterEqual(int(stats["jobs_started"]), 0)
        self.assertEqual(int(stats["output_budget"]), 64 << 20)  # the default
        obj = json_lines(self.d.ctl("--json", "stats", check=0).stdout)
        self.assertEqual(len(obj), 1)
        self.assertEqual(obj[0]["output_budget"], 64 << 20)
        self.assertIsInstance(obj[0]["uptime_ns"], int)
        self.assertIsInstance(obj[0]["programs"], list)

    def test_list_pages_through_many_jobs(self):
        # the daemon answers 64 jobs per List reply: ctl must ask for the rest
        with self.d.client() as c:
            ids = [c.run(["true"], detach=True) for _ in range(70)]
        listed = self.jobs()
        self.assertTrue(set(ids) <= set(listed), set(ids) - set(listed))


class SignalTest(CtlTestCase):
    def popen_run(self, *argv):
        return subprocess.Popen([harness.CTL, "-S", self.d.socket, "run", "--"] + list(argv),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)

    def running_job(self, command):
        found = []

        def check():
            found[:] = [j for j in self.jobs().values()
                        if j["command"] == command and j["state"] == "running"]
            return found
        self.wait_until(check, what=command)
        return found[-1]["job"]

    def assertKilledBy(self, job, sig, err):
        """The job ended by that signal (a detach would also exit 128+N, so
        ctl's status alone proves nothing)."""
        info = self.wait_until(lambda: (lambda j: j["state"] != "running" and j)(
            self.jobs()[job]), what="job %d to end" % job)
        self.assertEqual((info["state"], info["signal"]), ("exited", sig))
        self.assertNotIn("detached", err)

    def test_ctrl_c_is_forwarded_to_the_job(self):
        p = self.popen_run("sleep", "101")
        job = self.running_job("sleep 101")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 130)
        self.assertKilledBy(job, signal.SIGINT, err)

    def test_second_ctrl_c_detaches(self):
        script = "trap 'echo got-int' INT; echo trapped; while :; do sleep 0.05; done"
        p = self.popen_run("sh", "-c", script)
        job = self.running_job("sh -c " + script)
        # "running" comes at spawn; SIGINT must wait until the trap is set
        self.assertEqual(p.stdout.readline().strip(), "trapped")
        p.send_signal(signal.SIGINT)
        time.sleep(0.5)
        self.assertIsNone(p.poll(), "the job traps SIGINT: ctl must keep waiting")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 130)
        self.assertIn("got-int", out)
        self.assertIn("detached", err)
        self.assertEqual(self.jobs()[job]["state"], "running")
        self.d.ctl("kill", "--signal", "KILL", str(job), check=0)

    def test_sigterm_is_forwarded(self):
        p = self.popen_run("sleep", "102")
        job = self.running_job("sleep 102")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 143)
        self.assertKilledBy(job, signal.SIGTERM, err)

    def test_attach_ctrl_c_detaches_never_kills(self):
        job = self.start("sleep", "103")
        p = subprocess.Popen([harness.CTL, "-S", self.d.socket, "attach", str(job)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.wait_until(lambda: self.jobs()[job]["clients"] == 1, what="attach")
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=10)
        self.assertEqual(p.returncode, 130)
        self.assertEqual(self.jobs()[job]["state"], "running")
        self.d.ctl("kill", str(job), check=0)


class UsageTest(CtlTestCase):
    def test_help_exits_0(self):
        p = self.d.ctl("--help", check=0)
        self.assertIn("usage: ctl", p.stdout)
        self.assertIn("Examples:", p.stdout)
        for cmd in ("run", "start", "wait", "attach", "kill", "list", "stats", "watch-port",
                    "watch-file"):
            p = self.d.ctl(cmd, "--help", check=0)
            self.assertIn("usage: ctl " + cmd, p.stdout)
            self.assertIn("xample", p.stdout)
            self.assertEqual(self.d.ctl("help", cmd, check=0).stdout, p.stdout)

    def test_usage_errors_are_64(self):
        for args, needle in ((["bogus"], "unknown command 'bogus'"),
                             (["run"], "usage: ctl run"),
                             (["kill", "--signal", "FOO", "3"], "unknown signal 'FOO'"),
                             (["wait", "x"], "bad job id 'x'"),
                             (["list", "--frobnicate"], "unknown option --frobnicate"),
                             (["watch-file", "--events", "created,bogus", "/x"], "'bogus'"),
                             (["run", "--rlimit", "nofile=9:1", "true"], "soft limit"),
                             ([], "missing command")):
            p = self.d.ctl(*args)
            self.assertEqual(p.returncode, 64, args)
            self.assertIn(needle, p.stderr)
            self.assertIn("usage:", p.stderr)
            self.assertEqual(p.stdout, "")

    def test_no_daemon_is_69(self):
        p = ctl_raw(["-S", "/nonexistent/ctld.sock", "list"])
        self.assertEqual(p.returncode, 69)
        self.assertIn("/nonexistent/ctld.sock", p.stderr)
        p = ctl_raw(["list"], env={"CTLD_SOCKET": "/nonexistent/env.sock"})
        self.assertEqual(p.returncode, 69)
        self.assertIn("/nonexistent/env.sock", p.stderr)
        port = free_port()
        p = ctl_raw(["-H", "127.0.0.1:%d" % port, "run", "--", "true"])
        self.assertEqual(p.returncode, 69)
        self.assertIn("127.0.0.1:%d" % port, p.stderr)

    def test_tcp_target_and_env(self):
        p = self.d.ctl("run", "--", "echo", "via-tcp", target=["-H", self.d.tcp])
        self.assertEqual((p.returncode, p.stdout), (0, "via-tcp\n"))
        p = ctl_raw(["run", "--", "echo", "via-env"], env={"CTLD_HOST": self.d.tcp})
        self.assertEqual((p.returncode, p.stdout), (0, "via-env\n"))

    def test_daemon_error_is_1(self):
        p = self.d.ctl("run", "--user", "no-such-user-xyz", "--", "true")
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"^ctl: BAD_REQUEST: .*no-such-user-xyz")


class SlowReaderTest(CtlTestCase):
    daemon_args = ("--client-queue", "1M")

    def test_dropped_output_is_reported(self):
        total = 20 << 20
        p = subprocess.run("'%s' -S '%s' run -- head -c %d /dev/zero | (sleep 1; wc -c)"
                           % (harness.CTL, self.d.socket, total), shell=True,
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"ctl: (\d+) bytes of stdout were dropped \(client too slow\)", p.stderr)
        self.assertTrue(m, p.stderr)
        self.assertEqual(int(p.stdout) + int(m.group(1)), total)


class MultiHostTest(unittest.TestCase):
    """Three daemons; each job exits with $CODE from its daemon's environment."""

    @classmethod
    def setUpClass(cls):
        env = dict(os.environ)
        cls.ds = []
        for code in ("0", "7", "5"):
            cls.ds.append(Daemon(env=dict(env, CODE=code)))

    @classmethod
    def tearDownClass(cls):
        for d in cls.ds:
            d.cleanup()

    def hosts(self, *idx):
        return ",".join(self.ds[i].tcp for i in idx)

    def test_prefixed_lines_from_each_host(self):
        p = ctl_raw(["-H", self.hosts(0, 1), "run", "--", "sh", "-c",
                     "echo one; printf 'two\\nthree'; echo err >&2"])
        for d in self.ds[:2]:
            for line in ("one", "two", "three"):
                self.assertIn("%s: %s\n" % (d.tcp, line), p.stdout)
            self.assertIn("%s: err\n" % d.tcp, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 6)

    def test_status_of_first_failing_host_in_order(self):
        cmd = ["run", "--", "sh", "-c", "exit $CODE"]
        self.assertEqual(ctl_raw(["-H", self.hosts(0, 1, 2)] + cmd).returncode, 7)
        self.assertEqual(ctl_raw(["-H", self.hosts(0, 2, 1)] + cmd).returncode, 5)
        self.assertEqual(ctl_raw(["-H", self.hosts(0, 0)] + cmd).returncode, 0)

    def test_json_carries_host(self):
        p = ctl_raw(["-H", self.hosts(0, 1), "--json", "run", "--", "true"])
        exited = [e for e in json_lines(p.stdout) if e["event"] == "exited"]
        self.assertEqual(sorted(e["host"] for e in exited), sorted([self.ds[0].tcp,
                                                                     self.ds[1].tcp]))

    def test_unreachable_host_does_not_stop_the_others(self):
        dead = "127.0.0.1:%d" % free_port()
        p = ctl_raw(["-H", "%s,%s" % (self.ds[0].tcp, dead), "run", "--", "echo", "ok"])
        self.assertEqual(p.returncode, 69)
        self.assertIn("%s: ok\n" % self.ds[0].tcp, p.stdout)
        self.assertIn(dead, p.stderr)

    def test_start_and_list_on_two_hosts(self):
        p = ctl_raw(["-H", self.hosts(1, 2), "start", "--name", "multi", "--", "true"])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^(127\.0\.0\.1:\d+: \d+\n){2}$")
        p = ctl_raw(["-H", self.hosts(1, 2), "list"])
        self.assertEqual(p.returncode, 0)
        for d in self.ds[1:]:
            self.assertRegex(p.stdout, r"(?m)^%s: JOB +PID" % re.escape(d.tcp))
            self.assertRegex(p.stdout, r"(?m)^%s: \d+ +\d+ +\w+ +multi " % re.escape(d.tcp))

    def test_stdin_goes_to_every_host(self):
        p = ctl_raw(["-H", self.hosts(0, 1), "run", "--", "cat"], input="both\n")
        self.assertEqual(sorted(p.stdout.splitlines()),
                         sorted("%s: both" % d.tcp for d in self.ds[:2]))


class TlsTest(harness.PkiTestCase):
    def test_mutual_tls_round_trip(self):
        blob = os.urandom(1 << 20)
        p = subprocess.run([harness.CTL, "-H", self.d.tcp] + self.tls_args("client")
                           + ["run", "--", "cat"], input=blob, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, blob)

    def test_certificate_from_another_ca_is_refused(self):
        p = ctl_raw(["-H", self.d.tcp] + self.tls_args("stranger") + ["list"])
        self.assertEqual(p.returncode, 76, p.stderr)
        self.assertIn(self.d.tcp, p.stderr)

    def test_plain_client_to_tls_daemon_is_a_protocol_error(self):
        p = ctl_raw(["-H", self.d.tcp, "list"])
        self.assertEqual(p.returncode, 76, p.stderr)


class FakeDaemon:
    """A unix socket that answers the first frame with whatever `respond` sends."""

    def __init__(self, respond):
        self.dir = tempfile.mkdtemp(prefix="ctl-fake-")
        self.socket = os.path.join(self.dir, "fake.sock")
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(self.socket)
        self.srv.listen(1)
        self.respond = respond
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.srv.accept()
        with conn:
            conn.settimeout(10)
            try:
                conn.recv(4096)  # Hello (and perhaps the request after it)
                self.respond(conn)
            except OSError:
                pass

    def close(self):
        self.srv.close()
        self.thread.join(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def hello_ok(rid=1):
    return frame(pb.Message(reply=pb.Reply(id=rid, hello=pb.HelloReply(protocol_version=1,
                                                                        server="fake"))))


class ProtocolErrorTest(unittest.TestCase):
    def against(self, respond, *args):
        fake = FakeDaemon(respond)
        try:
            t0 = time.monotonic()
            p = ctl_raw(["-S", fake.socket, "--connect-timeout", "2s"] + list(args or ["list"]),
                        timeout=20)
            self.elapsed = time.monotonic() - t0  # ctl's time, not the fake's teardown
            return p
        finally:
            fake.close()

    def test_bad_version_is_printed(self):
        err = pb.Error(code=pb.BAD_VERSION, text="protocol version 1 is not supported")
        p = self.against(lambda c: c.sendall(frame(pb.Message(reply=pb.Reply(id=1, error=err)))))
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "ctl: BAD_VERSION: protocol version 1 is not supported\n")

    def test_refusal_before_hello_is_printed(self):
        # the daemon's listener refuses with an Error of id 0 (too many clients, not root)
        err = pb.Error(code=pb.LIMIT, text="too many clients")
        p = self.against(lambda c: c.sendall(frame(pb.Message(reply=pb.Reply(id=0, error=err)))))
        self.assertEqual(p.returncode, 1)
        self.assertIn("LIMIT: too many clients", p.stderr)

    def test_stream_refusal_after_hello_is_76(self):
        # a daemon that cannot trust the stream answers with id 0, then closes
        err = pb.Error(code=pb.PROTOCOL, text="frame exceeds the limit")
        p = self.against(lambda c: c.sendall(hello_ok() + frame(pb.Message(
            reply=pb.Reply(id=0, error=err)))), "stats")
        self.assertEqual(p.returncode, 76)
        self.assertEqual(p.stderr, "ctl: PROTOCOL: frame exceeds the limit\n")

    def test_garbage_is_76(self):
        p = self.against(lambda c: c.sendall(b"\xff" * 11))
        self.assertEqual(p.returncode, 76)
        self.assertIn("garbage", p.stderr)

    def test_undecodable_message_is_76(self):
        p = self.against(lambda c: c.sendall(b"\x03\xff\xff\xff"))
        self.assertEqual(p.returncode, 76)
        self.assertIn("does not decode", p.stderr)

    def test_close_after_hello_is_76(self):
        p = self.against(lambda c: c.sendall(hello_ok()), "run", "--", "true")
        self.assertEqual(p.returncode, 76)
        self.assertIn("closed the connection", p.stderr)

    def test_close_mid_frame_is_76(self):
        p = self.against(lambda c: c.sendall(hello_ok() + b"\x40\x0a\x02"))
        self.assertEqual(p.returncode, 76)
        self.assertIn("middle of a frame", p.stderr)

    def test_huge_frame_is_refused_at_once(self):
        # announces 3 MiB and never sends it: refused from the length alone
        p = self.against(lambda c: (c.sendall(hello_ok() + b"\x80\x80\xc0\x01"), time.sleep(5)))
        self.assertEqual(p.returncode, 76)
        self.assertIn("sent a frame of 3145728 bytes (limit 2097152)", p.stderr)
        self.assertLess(self.elapsed, 4)

    def test_silent_daemon_times_out_as_unavailable(self):
        p = self.against(lambda c: time.sleep(5))
        self.assertEqual(p.returncode, 69)
        self.assertIn("no Hello reply within 2000 ms", p.stderr)
        self.assertLess(self.elapsed, 4)


class WaitPortTest(CtlTestCase):
    def test_run_returns_once_listening(self):
        port = free_port()
        t0 = time.monotonic()
        p = self.d.ctl("run", "--wait-port", str(port), "--timeout", "20s", "--",
                       *listen_script(port, delay=0.3))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertLess(time.monotonic() - t0, 15)
        job = int(p.stdout)
        self.assertRegex(p.stderr, r"job %d is ready after [0-9.]+ ms: port %d on 127.0.0.1 by pid "
                         r"\d+ \(\S+\) at \+[0-9.]+ ms" % (job, port))
        self.assertEqual(self.jobs()[job]["state"], "running")
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        self.d.ctl("kill", "--signal", "KILL", str(job), check=0)

    def test_start_wait_port(self):
        port = free_port()
        p = self.d.ctl("start", "--wait-port", str(port), "--", *listen_script(port))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.d.ctl("kill", "--signal", "KILL", p.stdout.strip(), check=0)

    def test_timeout_kills_the_job(self):
        port = free_port()
        p = self.d.ctl("--json", "run", "--wait-port", str(port), "--timeout", "500ms", "--",
                       "sleep", "60")
        self.assertEqual(p.returncode, 124)
        events = json_lines(p.stdout)
        job = [e for e in events if e["event"] == "launched"][0]["job"]
        nr = [e for e in events if e["event"] == "not_ready"][0]
        self.assertEqual((nr["reason"], nr["killed"]), ("timeout", True))
        self.assertEqual(events[-1]["event"], "exited")  # ctl stays for the end it caused
        self.assertEqual(self.d.ctl("wait", str(job)).returncode, 137)

    def test_job_dying_first_gives_its_status(self):
        """ctl exits with the status of a job that ended before it was
        ready; with 123 when that was 0 (never "success")."""
        p = self.d.ctl("run", "--wait-port", str(free_port()), "--timeout", "20s", "--",
                       "sh", "-c", "exit 9")
        self.assertEqual(p.returncode, 9)
        self.assertIn("the job exited with status 9 before it was ready", p.stderr)
        p = self.d.ctl("run", "--wait-port", str(free_port()), "--timeout", "20s", "--",
                       "sh", "-c", "kill -TERM $$")
        self.assertEqual(p.returncode, 128 + 15, p.stderr)
        p = self.d.ctl("run", "--wait-port", str(free_port()), "--timeout", "20s", "--", "true")
        self.assertEqual(p.returncode, 123)

    def test_wait_file_with_its_size(self):
        """--wait-file PATH:SIZE, and a path with a colon of its own."""
        d = tempfile.mkdtemp(prefix="ctl-wf-")
        self.addCleanup(shutil.rmtree, d, True)
        p = self.d.ctl("--json", "run", "--wait-file", os.path.join(d, "out.log") + ":1K",
                       "--timeout", "20s", "--", "sh", "-c",
                       "cd %s; printf 12 > out.log; sleep 0.3; head -c 2000 /dev/zero >> out.log;"
                       " exec sleep 60" % d)
        self.assertEqual(p.returncode, 0, p.stderr)
        ready = [e for e in json_lines(p.stdout) if e["event"] == "ready"][0]
        self.d.ctl("kill", "--signal", "KILL", str(ready["job"]), check=0)
        self.assertGreaterEqual(ready["conditions"][0]["size"], 1024, ready)
        p = self.d.ctl("run", "--wait-file", os.path.join(d, "a:b"), "--timeout", "20s",
                       "--keep-on-timeout", "--", "sh", "-c", "touch %s/a:b; exec sleep 60" % d)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.d.ctl("kill", "--signal", "KILL", p.stdout.strip().split()[-1], check=0)

    def test_watch_port_command(self):
        port = free_port()
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))
            s.listen()
            p = self.d.ctl("watch-port", "--timeout", "5s", str(port))
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, "port %d is listening: pid %d (%s) on 127.0.0.1\n"
                             % (port, os.getpid(), p.stdout.split("(")[1].split(")")[0]))
            ev = json_lines(self.d.ctl("--json", "watch-port", str(port)).stdout)[0]
            self.assertEqual((ev["event"], ev["port"], ev["pid"]),
                             ("port_listening", port, os.getpid()))
        p = self.d.ctl("watch-port", "--timeout", "300ms", str(free_port()))
        self.assertEqual(p.returncode, 124)


class WatchFileTest(CtlTestCase):
    def setUp(self):
        # No skip when inotify is unavailable: file watches must work here.
        self.tmp = tempfile.mkdtemp(prefix="ctl-wf-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
        super().tearDown()

    def once_watched(self, fn):
        """Runs fn in a thread as soon as the daemon holds one more file
        watch than now (ctl's, about to start): a fixed delay lost the
        race to a slow ctl start in emulated guests, and the event with it."""
        with self.d.client() as c:
            before = c.stats().file_watches

        def run():
            with self.d.client() as c:
                wait_for(lambda: c.stats().file_watches > before, timeout=20,
                         what="ctl's file watch")
            fn()
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.addCleanup(t.join, scaled(25))

    def test_first_event_then_exit(self):
        path = os.path.join(self.tmp, "f")
        self.once_watched(lambda: open(path, "w").close())
        p = self.d.ctl("watch-file", "--events", "created", "--timeout", "10s", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "%s: created (size 0)\n" % path)

    def test_size_threshold(self):
        path = os.path.join(self.tmp, "log")
        open(path, "w").close()

        def grow():
            with open(path, "a") as f:
                f.write("x" * 5000)
        self.once_watched(grow)
        p = self.d.ctl("--json", "watch-file", "--size", "4K", "--timeout", "10s", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        ev = json_lines(p.stdout)[0]
        self.assertEqual((ev["event"], ev["kind"], ev["path"]), ("file_event", "size_reached",
                                                                 path))
        self.assertGreaterEqual(ev["size"], 4096)

    def test_timeout_is_124(self):
        p = self.d.ctl("watch-file", "--timeout", "300ms", os.path.join(self.tmp, "never"))
        self.assertEqual(p.returncode, 124)


if __name__ == "__main__":
    unittest.main()
