# SPDX-License-Identifier: BSD-2-Clause
"""Kernel-notified process events, end to end: the exit status the kernel
reports (decoded from its packed form) must agree with waitid for normal
exits, signals and core dumps; multi-threaded programs whose main thread
exits first are reported once, correctly; whole process trees are tracked
and killed; pins and stats behave. Runs in both modes: with --no-bpf the
same user-visible behaviour must hold (the kernel cross-check is then off).
"""
import json
import os
import signal
import socket
import subprocess
import unittest

from harness import alive, children, job_children, proc_text, wait_for, BUILD, MODE, Daemon, DaemonTestCase, pb

THREAD_EXIT = os.path.join(BUILD, "tests", "progs", "thread_exit")
FORK_STORM = os.path.join(BUILD, "tests", "progs", "fork_storm")


class ExitStatusTest(DaemonTestCase):
    def run_job(self, argv, **kw):
        with self.d.client() as c:
            out, err, ev = c.run_and_wait(argv, timeout=20, **kw)
            self.assertTrue(ev.HasField("exited"), ev)
            return out, ev.exited

    def test_exit_codes_match_kernel(self):
        # Every code the kernel can pack: 0..255 in steps, plus the edges.
        with self.d.client() as c:
            before = c.stats()
            for code in (0, 1, 2, 3, 64, 126, 127, 128, 200, 254, 255):
                _, _, ev = c.run_and_wait(["sh", "-c", "exit %d" % code], timeout=10)
                self.assertEqual(ev.exited.exit_code, code)
                self.assertEqual(ev.exited.signal, 0)
            after = c.stats()
        self.assertEqual(after.exit_mismatches, 0, self.d.log())
        checked = after.exits_checked - before.exits_checked
        if MODE == "bpf":
            # every job's kernel exit was seen and compared with waitid
            self.assertEqual(checked, 11)
        else:
            self.assertEqual(checked, 0)

    def test_signals_match_kernel(self):
        sigs = [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGILL, signal.SIGABRT,
                signal.SIGFPE, signal.SIGKILL, signal.SIGUSR1, signal.SIGSEGV, signal.SIGUSR2,
                signal.SIGPIPE, signal.SIGALRM, signal.SIGTERM, signal.SIGBUS, signal.SIGSYS]
        no_core = [pb.Rlimit(resource="core", soft=0, hard=0)]
        with self.d.client() as c:
            before = c.stats()
            for sig in sigs:
                _, _, ev = c.run_and_wait(["sh", "-c", "kill -%d $$" % sig], timeout=10,
                                          rlimits=no_core)
                self.assertEqual(ev.exited.signal, sig, sig)
                self.assertFalse(ev.exited.core_dumped)
            after = c.stats()
        self.assertEqual(after.exit_mismatches, 0, self.d.log())
        if MODE == "bpf":
            self.assertEqual(after.exits_checked - before.exits_checked, len(sigs))

    def test_core_dump_flag_matches_kernel(self):
        # A core is written only if core_pattern allows it; whatever the
        # kernel decided, waitid and the kernel event must agree.
        core = [pb.Rlimit(resource="core", soft=1 << 30, hard=1 << 30)]
        with self.d.client() as c:
            _, _, ev = c.run_and_wait(["sh", "-c", "cd /tmp && kill -SEGV $$"], timeout=20,
                                      rlimits=core)
            self.assertEqual(ev.exited.signal, signal.SIGSEGV)
            with open("/proc/sys/kernel/core_pattern") as f:
                pattern = f.read().strip()
            if pattern and not pattern.startswith("|"):
                self.assertTrue(ev.exited.core_dumped, "core_pattern=%r" % pattern)
            self.assertEqual(c.stats().exit_mismatches, 0, self.d.log())

    def test_main_thread_exits_first(self):
        # exit() from the last thread after the main thread left: reported
        # once, with that code, and its output arrives before Exited.
        for mode, value, want_code, want_sig in (("group", 7, 7, 0), ("signal", 15, 0, 15)):
            with self.d.client() as c:
                before = c.stats()
                job = c.run([THREAD_EXIT, mode, str(value)])
                events = list(c.events(job, timeout=10))
                kinds = [e.WhichOneof("kind") for e in events]
                self.assertEqual(kinds.count("exited"), 1, kinds)
                self.assertEqual(kinds[-1], "exited")
                out = b"".join(e.output.data for e in events if e.HasField("output"))
                self.assertEqual(out, b"late output from the last thread\n")
                ex = events[-1].exited
                self.assertEqual((ex.exit_code, ex.signal), (want_code, want_sig), mode)
                self.assertGreater(ex.wall_ns, 150_000_000)  # the thread slept 200 ms
                after = c.stats()
                self.assertEqual(after.exit_mismatches, 0, self.d.log())
                if MODE == "bpf":
                    self.assertEqual(after.exits_checked - before.exits_checked, 1)

    def test_last_thread_sys_exit(self):
        # The last thread leaves with SYS_exit only (no exit_group): whatever
        # waitid reports, the kernel's packed status must say the same.
        with self.d.client() as c:
            _, _, ev = c.run_and_wait([THREAD_EXIT, "thread", "5"], timeout=10)
            self.assertTrue(ev.HasField("exited"))
            self.assertEqual(c.stats().exit_mismatches, 0, self.d.log())


class TreeTest(DaemonTestCase):
    def test_kill_reaches_grandchild_in_other_session(self):
        # setsid puts the grandchild outside the job's process group: only
        # tree tracking (kernel map, or /proc children without BPF) finds it.
        with self.d.client() as c:
            job = c.run(["sh", "-c", "setsid sleep 1000 & echo started; wait"])
            ev = c.next_event(timeout=5)
            self.assertTrue(ev.HasField("launched"))
            sh_pid = ev.launched.pid
            grandchild = wait_for(lambda: children(sh_pid), what="sh to fork")[0]
            wait_for(lambda: proc_text(grandchild, "comm").strip() == "sleep",
                     what="the grandchild to exec sleep")
            if MODE == "bpf":
                jobs = {j.job: j for j in c.list()}
                self.assertGreaterEqual(jobs[job].descendants, 1)
                self.assertGreaterEqual(c.stats().tracked_processes, 2)
            c.signal(job, signal.SIGKILL)
            exited = [e for e in c.events(job, timeout=10) if e.HasField("exited")][0]
            self.assertEqual(exited.exited.signal, signal.SIGKILL)
            wait_for(lambda: not alive(grandchild),
                     what="grandchild %d to die with the tree" % grandchild)

    def test_orphans_are_reaped(self):
        # A job whose child outlives it: the child is re-parented to the
        # daemon (subreaper) and reaped there, never left a zombie.
        with self.d.client() as c:
            before = c.stats().orphans_reaped
            _, _, ev = c.run_and_wait(["sh", "-c", "(sleep 0.3; exit 3) & exit 0"], timeout=10)
            self.assertEqual(ev.exited.exit_code, 0)
            wait_for(lambda: c.stats().orphans_reaped > before, what="the orphan to be reaped")
        zombies = [p for p in job_children(self.d) if not alive(p)]
        self.assertEqual(zombies, [])

    def test_descendants_counted(self):
        if MODE != "bpf":
            # without the kernel map the daemon does not count descendants
            with self.d.client() as c:
                self.assertEqual(c.stats().tracked_processes, 0)
            return
        with self.d.client() as c:
            job = c.run(["sh", "-c", "sleep 100 & sleep 100 & sleep 100 & wait"])
            wait_for(lambda: {j.job: j for j in c.list()}[job].descendants == 3,
                     what="3 descendants to be counted")
            c.signal(job, signal.SIGTERM)
            list(c.events(job, timeout=10))
            wait_for(lambda: {j.job: j for j in c.list()}[job].descendants == 0,
                     what="descendants to drop to 0")


class RingPressureTest(unittest.TestCase):
    def test_losses_are_counted_never_silent(self):
        # 20000 tracked forks + exits (40000 records) while the daemon is
        # frozen: the 64 KiB ring buffer (~740 records) overflows.
        n = 20000
        with Daemon() as d, d.client(timeout=60) as c:
            job = c.run([FORK_STORM, "300", str(n)])
            pid = c.next_event(timeout=5).launched.pid
            os.kill(d.pid, signal.SIGSTOP)
            try:
                wait_for(lambda: not alive(pid), timeout=60, what="fork_storm to finish")
            finally:
                os.kill(d.pid, signal.SIGCONT)
            events = list(c.events(job, timeout=30))
            self.assertEqual(events[-1].exited.exit_code, 0)  # waitid is the authority
            st = c.stats()
            if MODE != "bpf":
                self.assertEqual((st.ring_events, st.ring_drops, st.ring_received), (0, 0, 0))
                return
            self.assertGreater(st.ring_drops, 0)
            # every record the kernel produced was either delivered or counted lost
            self.assertGreaterEqual(st.ring_events + st.ring_drops, 2 * n)
            self.assertEqual(st.ring_received, st.ring_events)
            self.assertIn("event(s) lost", d.log())


def bpftool_dump(path):
    p = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", path], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise AssertionError("bpftool failed on %s: %s" % (path, p.stderr))
    return json.loads(p.stdout)


class PinTest(unittest.TestCase):
    def test_pins_readable_and_removed(self):
        with Daemon() as d:
            if MODE != "bpf":
                self.assertFalse(os.path.exists(d.pin_dir))
                with d.client() as c:
                    st = c.stats()
                self.assertFalse(st.bpf)
                self.assertIn("--no-bpf", st.bpf_status)
                return
            for name in ("events", "tracked", "tracked_slots", "watched_ports", "stats"):
                self.assertTrue(os.path.exists(os.path.join(d.pin_dir, name)), name)
            with d.client() as c:
                w = c.request(watch_port=pb.WatchPort(port=18443)).watch.watch
                keys = [e["formatted"]["key"] for e in bpftool_dump(d.pin_dir + "/watched_ports")]
                self.assertIn(18443, [k["port"] for k in keys])
                ns = os.stat("/proc/self/ns/net").st_ino
                self.assertIn(ns, [k["netns"] for k in keys])
                c.request(unwatch_port=pb.UnwatchPort(watch=w))
                self.assertEqual(bpftool_dump(d.pin_dir + "/watched_ports"), [])
                stats = bpftool_dump(d.pin_dir + "/stats")[0]["formatted"]["values"]
                self.assertIn("fork_runs", stats[0]["value"])
            d.stop()
            self.assertFalse(os.path.exists(d.pin_dir), "pins left after a clean stop")

    def test_tracked_slots_count_exactly(self):
        # tracked_slots is a filter in front of `tracked`: its counters must
        # always sum to the number of tracked processes, or exits get missed.
        if MODE != "bpf":
            self.skipTest("kernel maps exist only with eBPF")
        with Daemon() as d, d.client() as c:
            jobs = [c.run(["sh", "-c", "for i in 1 2 3; do sleep 0.1 & done; wait"])
                    for _ in range(20)]
            live = c.run(["sh", "-c", "sleep 30 & sleep 30 & wait"])
            for job in jobs:
                list(c.events(job, timeout=10))
            wait_for(lambda: {j.job: j for j in c.list()}[live].descendants == 2,
                     what="the live job's two children")

            def consistent():
                slots = bpftool_dump(d.pin_dir + "/tracked_slots")
                total = sum(e["formatted"]["value"] for e in slots)
                return total == len(bpftool_dump(d.pin_dir + "/tracked")) == 3
            wait_for(consistent, what="slot counters to match the tracked map (3)")
            c.signal(live, signal.SIGKILL)
            list(c.events(live, timeout=10))
            wait_for(lambda: bpftool_dump(d.pin_dir + "/tracked") == [],
                     what="the tracked map to empty")
            slots = bpftool_dump(d.pin_dir + "/tracked_slots")
            self.assertEqual(sum(e["formatted"]["value"] for e in slots), 0)

    def test_socket_program_runs_only_while_ports_are_watched(self):
        # TCP pays nothing while no client watches a port.
        if MODE != "bpf":
            self.skipTest("kernel programs exist only with eBPF")

        def sock_runs(c):
            return {p.name: p.run_count for p in c.stats().programs}["handle_sock_state"]

        def tcp_round_trip():
            with socket.socket() as srv:
                srv.bind(("127.0.0.1", 0))
                srv.listen()
                with socket.create_connection(srv.getsockname()):
                    srv.accept()[0].close()

        with Daemon() as d, d.client() as c:
            before = sock_runs(c)
            tcp_round_trip()
            self.assertEqual(sock_runs(c), before, "attached with no port watched")
            w = c.request(watch_port=pb.WatchPort(port=1)).watch.watch
            tcp_round_trip()
            self.assertGreater(sock_runs(c), before, "not attached while a port is watched")
            c.request(unwatch_port=pb.UnwatchPort(watch=w))
            after = sock_runs(c)
            tcp_round_trip()
            self.assertEqual(sock_runs(c), after, "still attached after the last unwatch")

    def test_stale_pins_of_dead_daemon_are_replaced(self):
        if MODE != "bpf":
            self.skipTest("pins exist only with eBPF")
        with Daemon() as d:
            pin_dir = d.pin_dir
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            self.assertTrue(os.path.exists(pin_dir + "/tracked"), "SIGKILL should leave pins")
            d.proc = None
            d2 = Daemon("--pin-dir", pin_dir)
            try:
                with d2.client() as c:
                    self.assertTrue(c.stats().bpf)
                    _, _, ev = c.run_and_wait(["true"], timeout=10)
                    self.assertEqual(ev.exited.exit_code, 0)
                    self.assertEqual(c.stats().exits_checked, 1)
            finally:
                d2.cleanup()

    def test_second_daemon_on_same_pins_is_refused_bpf(self):
        if MODE != "bpf":
            self.skipTest("pins exist only with eBPF")
        with Daemon() as d:
            d2 = Daemon("--pin-dir", d.pin_dir, mode="nobpf-expected")
            try:
                with d2.client() as c:
                    st = c.stats()
                self.assertFalse(st.bpf)
                self.assertIn("another running daemon", st.bpf_status)
            finally:
                d2.cleanup()
            with d.client() as c:
                self.assertTrue(c.stats().bpf)  # the first one is untouched


if __name__ == "__main__":
    unittest.main()
