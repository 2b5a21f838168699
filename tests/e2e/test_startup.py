# SPDX-License-Identifier: BSD-2-Clause
"""The eBPF start-up's work (issue 15, exec -> ready <= 20 ms with eBPF):
the kernel's BTF is fetched once, for the feature probe and libbpf both
(libbpf never reads /sys/kernel/btf/vmlinux itself), CO-RE relocates
against the small copy of the types the programs name (core_btf.c), the
exit program matching the kernel's sched_process_exit is the one loaded,
the daemon's log line names every phase, and libbpf's load gets the
kernel's BTF as a placeholder whose attach-target lookups the raw index
answers (kernel_btf.c), or, when a load with it fails, a full parse. How long each takes is the
benchmark's business (bench/measure.py reads that line); here only that
each step happened, and that the programs so loaded still report: a
job's exit status and a watched port's listener from the kernel."""
import os
import re
import shutil
import subprocess
import unittest

from harness import MODE, DaemonTestCase, expect_event, free_port, listening_socket, pb, preload

PHASES = re.compile(r"programs attached in [0-9.]+ ms \(kernel BTF fetch [0-9.]+ by "
                    r"(mmap|bpf_obj_get_info|read) for the probe and ([0-9]+) load\(s\), "
                    r"index ahead [0-9.]+ of ([0-9]+) types, CO-RE BTF ahead [0-9.]+ of "
                    r"([0-9]+) types, probe [0-9.]+, index wait [0-9.]+, open [0-9.]+, load "
                    r"[0-9.]+ of which verifier [0-9.]+, attach [0-9.]+, pin [0-9.]+; libbpf's "
                    r"kernel BTF: "
                    r"([0-9]+) placeholder\(s\), ([0-9]+) lookup\(s\) by the index, "
                    r"([0-9]+) parse\(s\)\)")
# bpf/ctld.bpf.c's tp_btf programs: each load looks up at least these targets
TP_BTF_PROGRAMS = 3


TP_FORMATS = ("/sys/kernel/tracing/events/sched/sched_process_exit/format",
              "/sys/kernel/debug/tracing/events/sched/sched_process_exit/format")


def exit_tracepoint_has_group_dead():
    """Not from the daemon: the tracepoint's format in tracefs names a
    group_dead field on newer kernels (6.18 here, not 6.1); without tracefs
    bpftool's dump of btf_trace_sched_process_exit has (ctx, p, group_dead).
    None when neither can say."""
    for path in TP_FORMATS:
        if os.path.exists(path):
            with open(path) as f:
                return " group_dead;" in f.read()
    if not shutil.which("bpftool"):
        return None
    out = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                          "format", "c"], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    m = re.search(r"typedef void \(\*btf_trace_sched_process_exit\)\(([^)]*)\);", out)
    assert m, "no btf_trace_sched_process_exit in the kernel's BTF"
    return len(m.group(1).split(",")) == 3


@unittest.skipIf(MODE == "nobpf", "the eBPF start-up")
class StartupTest(DaemonTestCase):
    def phases(self):
        m = PHASES.search(self.d.log())
        self.assertTrue(m, self.d.log())
        return m

    def test_kernel_btf_is_read_once_and_exits_are_reported(self):
        # every btf__load_vmlinux_btf() of libbpf's load got the fetched
        # blob: one load, no retry
        self.assertEqual(self.phases().group(2), "1")
        group_dead = exit_tracepoint_has_group_dead()
        with self.d.client() as c:
            names = {p.name for p in c.stats().programs}
            if group_dead is not None:
                self.assertIn("handle_exit" if group_dead else "handle_exit_live", names)
            self.assertEqual(len(names & {"handle_exit", "handle_exit_live"}), 1, names)
            before = c.stats()
            _, _, ev = c.run_and_wait(["sh", "-c", "sleep 0.1 & exit 7"], timeout=20)
            self.assertEqual(ev.exited.exit_code, 7)
            after = c.stats()
        # the kernel's record of the exit came and agreed with waitid's
        self.assertEqual(after.exits_checked - before.exits_checked, 1, self.d.log())
        self.assertEqual(after.exit_mismatches, 0)

    def test_co_re_against_the_small_copy_and_listeners_are_reported(self):
        copied = int(self.phases().group(4))
        self.assertGreater(copied, 5)     # the types the programs read, and what they embed
        self.assertLess(copied, 5000)     # of ~130,000
        port = free_port()
        with self.d.client() as c:
            c.request(watch_port=pb.WatchPort(port=port))
            with listening_socket(port) as s:
                s.listen()
                pl = expect_event(c, "port_listening")
                self.assertEqual((pl.port, pl.already, pl.pid), (port, False, os.getpid()))

    def test_libbpf_attach_targets_come_from_the_index(self):
        # the whole kernel BTF indexed, not parsed by libbpf: its load got
        # a placeholder, whose attach-target lookups the index answered
        m = self.phases()
        self.assertGreater(int(m.group(3)), 10000)  # ~130,000 types
        placeholders, lookups, parses = (int(m.group(i)) for i in (5, 6, 7))
        self.assertEqual((placeholders, parses), (1, 0), m.group(0))
        self.assertGreaterEqual(lookups, TP_BTF_PROGRAMS)
        self.assertNotIn("placeholder for libbpf's kernel BTF failed", self.d.log())
        # and the programs attached by those ids report: a fork, a job's exit
        with self.d.client() as c:
            _, _, ev = c.run_and_wait(["sh", "-c", "sleep 0.1 & wait; exit 3"], timeout=20)
            self.assertEqual(ev.exited.exit_code, 3)
            self.assertGreater(c.stats().exits_checked, 0, self.d.log())


@unittest.skipIf(MODE == "nobpf", "the eBPF start-up")
class PlaceholderLoadFailsTest(DaemonTestCase):
    """A load with the placeholder that fails (here: the kernel refuses the
    first tp_btf program once, as it would a wrong attach target) is tried
    once more with libbpf's own parse of the kernel BTF, and says so."""
    daemon_env = preload("no_first_tp_btf_load")

    def test_falls_back_to_the_parse_and_programs_report(self):
        log = self.d.log(tail=1 << 24)  # with libbpf's debug lines of two loads
        self.assertIn("eBPF load with a placeholder for libbpf's kernel BTF failed", log)
        m = PHASES.search(log)
        self.assertTrue(m, log)
        # two loads: the placeholder's, then one with a full parse
        self.assertEqual((m.group(2), m.group(5), m.group(7)), ("2", "1", "1"), m.group(0))
        with self.d.client() as c:
            _, _, ev = c.run_and_wait(["sh", "-c", "exit 5"], timeout=20)
            self.assertEqual(ev.exited.exit_code, 5)
            self.assertEqual(c.stats().exits_checked, 1, self.d.log())
