# SPDX-License-Identifier: BSD-2-Clause
"""Real servers from Debian, started the way people start them, through the
real ctl: redis-server, memcached, nginx (its own config and ports) and
python3 -m http.server, each launched directly and through `sh -c`,
`bash -c '...; echo stopped'`, `sh -c '/bin/true; exec ...'`, `env` and a
version-manager style wrapper script, while another job forks in the
background. `ctl start --wait-port` must return once *that* server listens,
and the server must then answer its own protocol on the first try (redis
PING, memcached stats, HTTP GET). A port someone else holds is exit 120
naming the holder, never success.

The servers run as jobs of a private daemon, never as system services.
"""
import os
import shutil
import socket
import tempfile
import unittest

from harness import PY, DaemonTestCase, alive, free_port, json_lines, wait_for
from ctld.servers import nginx_args  # on the path harness sets

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"
NGINX = "/usr/sbin/nginx"


def ask(port, request, until, host="127.0.0.1"):
    """One connection, one request: the reply up to `until` (first try, no retry)."""
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while until not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def redis_answers(port):
    return ask(port, b"PING\r\n", b"\r\n") == b"+PONG\r\n"


def memcached_answers(port):
    return b"STAT pid " in ask(port, b"stats\r\n", b"END\r\n")


def http_answers(port):
    reply = ask(port, b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n", b"\r\n\r\n")
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n")[0]


class ServersTestCase(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="ctld-servers-")
        # a version-manager style shim: bash, forks first, then execs
        cls.shim_dir = os.path.join(cls.tmp, "shims")
        os.mkdir(cls.shim_dir)
        for name, real in (("redis-server", REDIS), ("memcached", MEMCACHED),
                           ("python3", PY), ("nginx", NGINX)):
            path = os.path.join(cls.shim_dir, name)
            with open(path, "w") as f:
                f.write("#!/bin/bash\nset -e\nhere=$(dirname \"$0\")\n"
                        "[ -d \"$here\" ] && exec %s \"$@\"\n" % real)
            os.chmod(path, 0o755)
        # the neighbour: a job that forks every 50 ms for the whole class
        p = cls.d.ctl("start", "--name", "noise", "--", "sh", "-c",
                      "while :; do /bin/true; sleep 0.05; done")
        cls.noise = p.stdout.strip()

    @classmethod
    def tearDownClass(cls):
        cls.d.ctl("kill", "--signal", "KILL", cls.noise)
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def nginx_conf(self, port, daemon="off"):
        return nginx_args(port, self.tmp, daemon)

    def server(self, kind, port):
        """(program, args, answers) of one server on 127.0.0.1:port."""
        if kind == "redis":
            return (REDIS, ["--port", str(port), "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--dir", self.tmp], redis_answers)
        if kind == "memcached":
            return (MEMCACHED, ["-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "nobody"],
                    memcached_answers)
        if kind == "nginx":
            return (NGINX, self.nginx_conf(port), http_answers)
        return (PY, ["-m", "http.server", str(port), "--bind", "127.0.0.1",
                     "--directory", self.tmp], http_answers)

    def launch(self, how, prog, args):
        """The argv that starts prog args the way `how` says."""
        line = " ".join([prog] + ["'%s'" % a for a in args])
        shim = os.path.join(self.shim_dir, os.path.basename(prog))
        return {
            "direct": [prog] + args,
            "sh -c": ["sh", "-c", line],
            "bash -c ...; echo": ["bash", "-c", line + "; echo stopped"],
            "sh -c true; exec": ["sh", "-c", "/bin/true; exec " + line],
            "env": ["env", "SERVER_ENV=1", prog] + args,
            "wrapper script": [shim] + args,
        }[how]

    def start_ready(self, argv, port, *extra):
        """ctl start --wait-port: (job id, the JSON lines), exit 0 required."""
        p = self.d.ctl("--json", "start", "--wait-port", str(port), "--timeout", "20s", *extra,
                       "--", *argv)
        events = json_lines(p.stdout)
        self.assertEqual(p.returncode, 0, "%s\n%s" % (argv, p.stdout + p.stderr))
        ready = [e for e in events if e["event"] == "ready"]
        self.assertEqual(len(ready), 1, events)
        return ready[0]["job"], ready[0]

    def stop(self, job, pid):
        self.d.ctl("kill", "--signal", "KILL", str(job), check=0)
        wait_for(lambda: not alive(pid), 10, "the server to end with its job")


class ServerLaunchTest(ServersTestCase):
    LAUNCHERS = ("direct", "sh -c", "bash -c ...; echo", "sh -c true; exec", "env",
                 "wrapper script")

    def check(self, kind):
        for how in self.LAUNCHERS:
            with self.subTest(server=kind, launcher=how):
                port = free_port()
                prog, args, answers = self.server(kind, port)
                job, ready = self.start_ready(self.launch(how, prog, args), port)
                cond = ready["conditions"][0]
                self.assertEqual((cond["port"], cond["addr"]), (port, "127.0.0.1"))
                self.assertTrue(answers(port), "%s via %s did not answer" % (kind, how))
                self.stop(job, cond["pid"])

    def test_redis(self):
        self.check("redis")

    def test_memcached(self):
        self.check("memcached")

    def test_nginx(self):
        self.check("nginx")

    def test_python_http_server(self):
        self.check("python")

    def test_python3_from_path(self):
        """`python3` as PATH finds it (a pyenv shim on developer machines)."""
        port = free_port()
        job, ready = self.start_ready(["python3", "-m", "http.server", str(port), "--bind",
                                       "127.0.0.1", "--directory", self.tmp], port)
        self.assertTrue(http_answers(port))
        self.stop(job, ready["conditions"][0]["pid"])

    def test_redis_ready_by_its_log_line_too(self):
        port = free_port()
        prog, args, _ = self.server("redis", port)
        job, ready = self.start_ready(["sh", "-c", " ".join([prog] + ["'%s'" % a for a in args])],
                                      port, "--wait-log", "Ready to accept connections")
        kinds = [c["kind"] for c in ready["conditions"]]
        self.assertEqual(kinds, ["port", "log"])
        self.assertIn("Ready to accept connections", ready["conditions"][1]["line"])
        self.assertTrue(redis_answers(port))
        self.stop(job, ready["conditions"][0]["pid"])

    def test_nginx_that_daemonizes(self):
        """nginx's default: the master forks, setsid()s, and the first
        process exits. With eBPF it is still the job (the kernel saw the
        fork); without, it is told by the stderr it keeps (error_log
        stderr). Either way `ctl kill` ends it."""
        port = free_port()
        job, ready = self.start_ready([NGINX] + self.nginx_conf(port, daemon="on"), port)
        self.assertNotEqual(ready["conditions"][0]["pid"], 0)
        self.assertTrue(http_answers(port))
        self.stop(job, ready["conditions"][0]["pid"])


class PortHeldTest(ServersTestCase):
    def test_second_redis_on_a_held_port(self):
        """The issue's report: with P held by another redis, starting one
        more on P once exited 0 ("already open") with job id 0."""
        port = free_port()
        prog, args, _ = self.server("redis", port)
        first, ready = self.start_ready(["sh", "-c", " ".join([prog] + ["'%s'" % a for a in args])],
                                        port)
        holder = ready["conditions"][0]["pid"]
        p = self.d.ctl("--json", "start", "--wait-port", str(port), "--timeout", "20s", "--",
                       prog, *args)
        self.assertEqual(p.returncode, 120, p.stdout + p.stderr)
        events = json_lines(p.stdout)
        nr = [e for e in events if e["event"] == "not_ready"][0]
        self.assertEqual((nr["reason"], nr["port"], nr["holder_pid"], nr["holder_comm"],
                          nr["holder_addr"]),
                         ("port_taken", port, holder, "redis-server", "127.0.0.1"))
        self.assertNotEqual(nr["holder_netns"], 0)
        self.assertFalse(nr["job_running"])
        self.assertEqual(nr["exit_code"], 1)  # what the job did: redis exits 1
        launched = [e for e in events if e["event"] == "launched"][0]
        self.assertNotEqual(launched["job"], 0)
        # and in words
        p = self.d.ctl("start", "--wait-port", str(port), "--timeout", "20s", "--",
                       "sh", "-c", " ".join([prog] + ["'%s'" % a for a in args]))
        self.assertEqual(p.returncode, 120)
        self.assertIn("port %d is held by pid %d (redis-server) on 127.0.0.1; the job exited "
                      "with status 1" % (port, holder), p.stderr)
        self.assertEqual(p.stdout, "")
        self.stop(first, holder)
        self.assertTrue(alive(os.getpid()))

    def test_someone_else_on_ipv6_only(self):
        """Another process on [::1]:P; the job's server on 127.0.0.1:P. With
        @127.0.0.1 that is what counts; without an address the job's own
        listener counts all the same (the holder is not it)."""
        for extra in ([], ["@127.0.0.1"]):
            with self.subTest(addr=extra):
                port = free_port()
                with socket.socket(socket.AF_INET6) as other:
                    other.bind(("::1", port))
                    other.listen()
                    prog, args, _ = self.server("memcached", port)
                    p = self.d.ctl("--json", "start", "--wait-port", str(port) + "".join(extra),
                                   "--timeout", "20s", "--", "sh", "-c",
                                   " ".join([prog] + args))
                    self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                    ready = [e for e in json_lines(p.stdout) if e["event"] == "ready"][0]
                    self.assertEqual(ready["conditions"][0]["addr"], "127.0.0.1")
                    self.assertTrue(memcached_answers(port))
                    self.stop(ready["job"], ready["conditions"][0]["pid"])

    def test_server_that_gives_up(self):
        """nginx cannot bind a held port: it retries for 2.5 s, then exits 1.
        NotReady names the holder; the job's stderr tail says what nginx said."""
        port = free_port()
        with socket.socket() as other:
            other.bind(("127.0.0.1", port))
            other.listen()
            p = self.d.ctl("--json", "start", "--wait-port", str(port), "--timeout", "20s", "--",
                           "sh", "-c", " ".join([NGINX] + self.nginx_conf(port)))
            self.assertEqual(p.returncode, 120, p.stdout + p.stderr)
            nr = [e for e in json_lines(p.stdout) if e["event"] == "not_ready"][0]
            self.assertEqual((nr["reason"], nr["holder_pid"]), ("port_taken", os.getpid()))
            self.assertIn("Address already in use", nr["stderr_tail"]["data"])


if __name__ == "__main__":
    unittest.main()
