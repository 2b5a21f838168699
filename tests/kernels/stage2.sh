#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# Stage 2 of a tests/kernels guest: PID 1 in the host's root (read-only 9p
# with a tmpfs overlay, set up by init). Mounts what the daemon and its tests
# need (proc/sys/dev are already there: /run, /tmp, devpts, bpffs, tracefs,
# debugfs, securityfs, cgroup2 with every controller enabled for children, as
# systemd would), the host's result directory (9p tag "ctkout", read-write, at
# the host path given as ctk.out=), the guest kernel's own modules (ctk.tree=,
# inet_diag and tcp_diag are modules in Debian), loopback. Then it runs
# ctk.run=SCRIPT with the result directory as its argument, writes the exit
# status to OUT/rc and powers off. Without ctk.run= it starts a shell on the
# serial console (boot.sh without a script).
#
# Kernel command line: ctk.out=HOSTDIR ctk.tree=KERNEL_TREE [ctk.run=SCRIPT]
main() {
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=linux
    export LANG=C.UTF-8
    cmdline=$(cat /proc/cmdline)
    arg() { sed -n "s/.*ctk\.$1=\([^ ]*\).*/\1/p" <<<"$cmdline"; }
    out=$(arg out) tree=$(arg tree) run=$(arg run)

    mount -t tmpfs -o mode=755 tmpfs /run
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    mkdir -p /dev/pts /dev/shm
    mount -t devpts devpts /dev/pts
    mount -t tmpfs tmpfs /dev/shm
    mount -t bpf bpf /sys/fs/bpf
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
    mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
    mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
    mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
    for c in $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null); do
        echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
    done
    if [ -n "$out" ]; then
        mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=512000 ctkout "$out" ||
            echo "CTK: stage2: cannot mount the result directory at $out"
    fi
    release=$(uname -r)
    if [ -d "$tree/lib/modules/$release" ]; then
        mkdir -p /lib/modules
        rm -rf "/lib/modules/$release"
        ln -sfn "$tree/lib/modules/$release" "/lib/modules/$release"
    fi
    ip link set lo up
    hostname ctk-guest
    echo "CTK: stage2 ready at $(cut -d' ' -f1 /proc/uptime)s (guest uptime), kernel $release"

    if [ -n "$run" ]; then
        bash "$run" "$out" </dev/null &
        pid=$!
        rc=255
        # PID 1's duty: reap adopted orphans until the workload ends. wait
        # returns early (status > 128) when another child is reaped.
        while kill -0 "$pid" 2>/dev/null; do
            wait "$pid"
            rc=$?
        done
        echo "CTK: $run exited $rc"
        [ -n "$out" ] && echo "$rc" > "$out/rc"
    else
        setsid -c bash -l </dev/ttyS0 >/dev/ttyS0 2>&1
    fi
    sync
    echo "CTK: powering off"
    echo o > /proc/sysrq-trigger
}
# bash reads a script while running it; main is parsed whole first, so editing
# this file on the host cannot derail a running guest.
main "$@"
sleep 30
