# SPDX-License-Identifier: BSD-2-Clause
"""The installed ctld-bpf (issue 15): packaging/install.sh puts the build
under test into a fresh DESTDIR tree (PREFIX=/usr, as the Debian package
does), and everything is checked there, as a user gets it:

- the installed daemon finds the installed ctld-spawner (../libexec/ctld-bpf
  from its executable), runs jobs through it, and the installed ctl talks to
  it, also over TCP with TLS (a module found the same way where the build
  makes one);
- the installed Python client imports from the install alone and runs a job;
- the man pages render without warnings and name every option of
  `ctld-bpf --help`, every command and option of `ctl help [COMMAND]` and
  every exit status ctl documents; the bash completion offers every ctl
  option and completes commands and options;
- the systemd unit starts the installed daemon with the installed defaults.

The package itself (dpkg, systemd, purge) is `make test-deb`.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, MODE, PY, ROOT, make_certs
import ctld.testing

PREFIX = "/usr"


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def options_in(text):
    """Every --long option a help text names, and every short one where it
    is defined ("-S, --socket"), not the options of example commands."""
    longs = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*[a-z0-9])(?![\w-])", text)
    shorts = re.findall(r"(?<![\w-])(-[A-Za-z]), --", text)
    return set(longs) | set(shorts)


def names(text, word):
    """text has word as a word of its own (--wait-anything does not name --wait-any)."""
    return re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(word), text) is not None


class InstalledTree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="ctld-install-")
        env = dict(os.environ, DESTDIR=cls.root, PREFIX=PREFIX)
        p = run([os.path.join(ROOT, "packaging", "install.sh"), BUILD], env=env)
        if p.returncode != 0:
            shutil.rmtree(cls.root)
            raise AssertionError("install.sh %s failed (%d): %s" % (BUILD, p.returncode, p.stderr))
        cls.sbin = cls.root + PREFIX + "/sbin/ctld-bpf"
        cls.ctl = cls.root + PREFIX + "/bin/ctl"
        cls.pythondir = cls.root + PREFIX + "/lib/python3/dist-packages"
        cls.man1 = cls.root + PREFIX + "/share/man/man1/ctl.1"
        cls.man8 = cls.root + PREFIX + "/share/man/man8/ctld-bpf.8"

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root)

    def installed_daemon(self, *extra):
        return ctld.testing.Daemon(self.sbin, "-v", *extra, bpf=MODE != "nobpf",
                                   name="ctld-pkg")

    def man(self, page):
        """The page as man renders it, without hyphenation or justification
        (so an option is never split), and its warnings."""
        p = run(["man", "--warnings", "--nh", "--nj", "-l", page],
                env=dict(os.environ, MANWIDTH="200", MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8"))
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout, p.stderr

    # ------------------------------------------------------------ binaries
    def test_installed_daemon_runs_jobs_through_the_installed_spawner(self):
        with self.installed_daemon() as d:
            with d.client() as c:
                stats = c.stats()
            self.assertNotEqual(stats.spawner_pid, 0, d.log())
            exe = os.readlink("/proc/%d/exe" % stats.spawner_pid)
            self.assertEqual(exe, self.root + PREFIX + "/libexec/ctld-bpf/ctld-spawner")
            p = run([self.ctl, "-S", d.socket, "run", "--", "/bin/echo", "hi"])
            self.assertEqual((p.returncode, p.stdout), (0, "hi\n"), p.stderr)
            p = run([self.ctl, "-S", d.socket, "stats"])
            self.assertRegex(p.stdout, r"(?m)^spawner: spawner helper pid %d$" % stats.spawner_pid)

    def test_installed_ctl_and_daemon_speak_tls(self):
        # where TLS is a module of its own (ctld-tls.so), both programs find
        # it in the installed libexec directory
        certs = os.path.join(self.root, "certs")
        make_certs(certs)
        tls = ["--tls-cert", certs + "/server.pem", "--tls-key", certs + "/server.key",
               "--tls-ca", certs + "/ca.pem"]
        with self.installed_daemon(*tls) as d:
            p = run([self.ctl, "-H", d.tcp, "--tls-cert", certs + "/client.pem",
                     "--tls-key", certs + "/client.key", "--tls-ca", certs + "/ca.pem",
                     "run", "--", "/bin/echo", "over-tls"])
            self.assertEqual((p.returncode, p.stdout), (0, "over-tls\n"), p.stderr + d.log())

    def test_installed_python_client_imports_from_the_install_alone(self):
        with self.installed_daemon() as d:
            script = ("import ctld_client, ctld_pb2, ctld.testing\n"
                      "for m in (ctld_client, ctld_pb2, ctld.testing):\n"
                      "    assert m.__file__.startswith(%r), m.__file__\n"
                      "with ctld_client.Client(unix=%r) as c:\n"
                      "    out, _, ev = c.run_and_wait(['/bin/echo', 'from-python'], timeout=10)\n"
                      "print(out.decode(), end='')\n" % (self.pythondir, d.socket))
            env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": self.pythondir}
            p = run([PY, "-c", script], env=env, cwd="/")
            self.assertEqual((p.returncode, p.stdout), (0, "from-python\n"), p.stderr)

    def test_unit_starts_the_installed_daemon(self):
        with open(self.root + PREFIX + "/lib/systemd/system/ctld-bpf.service") as f:
            unit = f.read()
        self.assertIn("\nExecStart=%s/sbin/ctld-bpf --ready-file /run/ctld-bpf/ready $CTLD_BPF_OPTS\n"
                      % PREFIX, unit)
        self.assertIn("\nEnvironmentFile=-/etc/default/ctld-bpf\n", unit)
        self.assertIn("\nKillMode=process\n", unit)  # jobs survive a crash (ctld-bpf(8))
        self.assertIn("\nExecReload=/bin/sh -c 'kill -USR2 ${MAINPID}'\n", unit)  # upgrade in place
        self.assertNotIn("@", unit.split("[Unit]")[1])  # every placeholder replaced
        with open(self.root + "/etc/default/ctld-bpf") as f:
            self.assertRegex(f.read(), r'(?m)^CTLD_BPF_OPTS=""$')

    # ------------------------------------------------------------ documentation
    def test_daemon_man_page_names_every_option(self):
        text, warnings = self.man(self.man8)
        self.assertEqual(warnings, "")
        helptext = run([self.sbin, "--help"]).stdout
        missing = sorted(o for o in options_in(helptext) if not names(text, o))
        self.assertEqual(missing, [], "ctld-bpf(8) does not name these options of --help")
        for section in ("SYNOPSIS", "OPTIONS", "EXIT STATUS", "FILES", "SECURITY", "EXAMPLES"):
            self.assertRegex(text, r"(?m)^%s$" % section)

    def ctl_commands(self):
        helptext = run([self.ctl, "help"]).stdout
        block = helptext.split("Commands:")[1].split("\n\n")[0]
        return helptext, re.findall(r"(?m)^  ([a-z][a-z-]*)", block)

    def test_ctl_man_page_names_every_command_option_and_exit_status(self):
        text, warnings = self.man(self.man1)
        self.assertEqual(warnings, "")
        helptext, commands = self.ctl_commands()
        self.assertIn("run", commands)
        missing = []
        for cmd in commands:
            if not re.search(r"(?m)^   %s\b" % re.escape(cmd), text):
                missing.append(cmd)
            cmd_help = run([self.ctl, "help", cmd]).stdout
            missing += ["%s %s" % (cmd, o) for o in sorted(options_in(cmd_help))
                        if not names(text, o)]
        missing += sorted(o for o in options_in(helptext) if not names(text, o))
        self.assertEqual(missing, [], "ctl(1) does not name these commands or options")
        exits = helptext.split("Exit status:")[1].split("Examples:")[0]
        section = text.split("\nEXIT STATUS\n")[1].split("\nENVIRONMENT\n")[0]
        codes = set(re.findall(r"\b1?\d\d\d?\b", exits)) - {"128"}
        self.assertGreater(len(codes), 10)
        self.assertEqual(sorted(c for c in codes if not names(section, c)), [])

    def test_bash_completion_offers_every_ctl_option(self):
        path = self.root + PREFIX + "/share/bash-completion/completions/ctl"
        with open(path) as f:
            completion = f.read()
        helptext, commands = self.ctl_commands()
        wanted = options_in(helptext)
        for cmd in commands:
            wanted |= options_in(run([self.ctl, "help", cmd]).stdout)
        wanted -= {"--png"}  # python3 -m ctld.timeline's, named in --timeline's help
        self.assertEqual(sorted(o for o in wanted if not names(completion, o)), [])

        def complete(*words):
            script = ('source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_ctl\n'
                      'printf "%%s\\n" "${COMPREPLY[@]}"\n'
                      % (path, " ".join("'%s'" % w for w in words), len(words) - 1))
            p = run(["bash", "-c", script])
            self.assertEqual(p.returncode, 0, p.stderr)
            return p.stdout.split()

        self.assertEqual(complete("ctl", "wat"), ["watch-port", "watch-file", "watches"])
        self.assertEqual(complete("ctl", "-S", "/run/x", "run", "--wait-p"), ["--wait-port"])
        self.assertEqual(complete("ctl", "kill", "--si"), ["--signal"])
        self.assertNotIn("--stdin", complete("ctl", "start", "--std"))


if __name__ == "__main__":
    unittest.main()
