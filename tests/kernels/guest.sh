#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# guest.sh OUT_DIR: the in-guest runner of the kernel matrix, started by
# stage2.sh inside the guest. Reads OUT_DIR/env (written by run-kernel.sh):
#   CTK_ROOT          the checkout (the host's path, visible read-only)
#   CTK_BUILD         the build directory with ctld-bpf, ctl, tests/progs, kernels/probe
#   CTK_MODES         e2e modes, e.g. "bpf nobpf"
#   CTK_PATTERNS      space or comma separated: glob patterns (test_*.py, each run
#                     with unittest discover -p), file names (test_jobs.py) and test
#                     names (test_jobs.JobsTest.test_x), these run together in one process
#   CTK_TIME_FACTOR   CTLD_TIME_FACTOR for the tests (emulation is slower)
#   CTK_SUITE_TIMEOUT seconds one unittest run may take before it is killed
#   CTK_BENCH         non-empty: after the tests, bench/kernel_listen.py with this
#                     many trials (fexit vs sock_diag) into OUT_DIR/bench.json
#   CTK_NO_MODULES    non-empty: kernel.modules_disabled=1 before the tests, so
#                     inet_diag/tcp_diag cannot load (the daemon must do without)
# and writes into OUT_DIR:
#   features.txt      key=value: release, BTF, LSMs, cgroup2 controllers, *_diag modules, ...
#   probe.txt         tests/kernels/probe output (ringbuf, fentry/fexit/lsm/tp_btf/kprobe)
#   plan.txt          one line per planned unittest run: mode N what
#   e2e.txt           one line per finished unittest run: mode N what rc wall_seconds
#   e2e-MODE-N.log    that run's unittest -v output (written as it runs)
#   dmesg.txt         the guest kernel's log at the end
# Exit status: 0 when every unittest run passed.

# A unittest run that outlived its timeout: each process of its cgroup
# (CG and below) with what it waits for in the kernel, and the last lines of
# every test daemon's log (the daemons are part of the run).
hang_report() {
    echo "CTK: HANG: the run is still going after ${CTK_SUITE_TIMEOUT}s; its processes:"
    for p in $(cat $(find "$1" -name cgroup.procs) 2>/dev/null); do
        echo "--- pid $p: $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | cut -c1-200)"
        echo "    state $(awk '{print $3}' "/proc/$p/stat" 2>/dev/null), wchan $(cat "/proc/$p/wchan" 2>/dev/null)"
        sed 's/^/    /' "/proc/$p/stack" 2>/dev/null | head -n 16
    done
    for f in /tmp/ctld-*/daemon.log; do
        [ -f "$f" ] || continue
        echo "--- $f, last 30 lines"
        tail -n 30 "$f"
    done
}

main() {
    set -u
    OUT=${1:?usage: guest.sh OUT_DIR}
    # shellcheck source=/dev/null
    . "$OUT/env"
    cd "$CTK_ROOT" || return 2
    : > "$OUT/e2e.txt"

    modstate() { # loaded | built-in | absent
        if grep -q "^$1 " /proc/modules; then echo loaded
        elif [ -d "/sys/module/$1" ]; then echo built-in
        else echo absent; fi
    }

    {
        echo "release=$(uname -r)"
        echo "version=$(uname -v)"
        echo "btf=$([ -r /sys/kernel/btf/vmlinux ] && echo yes || echo no)"
        echo "lsm=$(cat /sys/kernel/security/lsm 2>/dev/null)"
        echo "lockdown=$(cat /sys/kernel/security/lockdown 2>/dev/null)"
        echo "cgroup2_controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)"
        echo "unprivileged_bpf_disabled=$(cat /proc/sys/kernel/unprivileged_bpf_disabled 2>/dev/null)"
        echo "nproc=$(nproc)"
        echo "mem_kib=$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
        echo "inet_diag_at_boot=$(modstate inet_diag)"
        echo "tcp_diag_at_boot=$(modstate tcp_diag)"
    } > "$OUT/features.txt"
    echo "CTK: guest $(uname -r): $(tr '\n' ' ' < "$OUT/features.txt")"

    if [ -x "$CTK_BUILD/kernels/probe" ]; then
        timeout 120 "$CTK_BUILD/kernels/probe" > "$OUT/probe.txt" 2> "$OUT/probe.err"
        echo "CTK: probe rc=$?: $(tr '\n' ' ' < "$OUT/probe.txt")"
    else
        echo "probe=missing" > "$OUT/probe.txt"
    fi

    # What the tests compare the daemon's own probe with (test_listen_confirm.py).
    CTLD_TEST_TRAMPOLINES=$(grep -q '^fexit=ok' "$OUT/probe.txt" && echo yes || echo no)
    CTLD_TEST_NO_DIAG=no
    if [ -n "${CTK_NO_MODULES:-}" ]; then
        echo 1 > /proc/sys/kernel/modules_disabled
        [ "$(modstate inet_diag)" = absent ] && CTLD_TEST_NO_DIAG=yes
        echo "modules_disabled=$(cat /proc/sys/kernel/modules_disabled)" >> "$OUT/features.txt"
    fi
    export CTLD_TEST_TRAMPOLINES CTLD_TEST_NO_DIAG
    echo "CTK: trampolines=$CTLD_TEST_TRAMPOLINES no_diag=$CTLD_TEST_NO_DIAG"

    # One unittest process per glob pattern (discover -p), and one for all the
    # plain file and test names together (python under emulation takes ~10 s
    # to start and import the suite).
    globs=() names=()
    set -f # the patterns are for unittest, not for the shell
    for pat in ${CTK_PATTERNS//,/ }; do
        case "$pat" in
        *[*?[]*) globs+=("$pat") ;;
        *) names+=("${pat%.py}") ;;
        esac
    done
    runs=("${globs[@]}")
    [ ${#names[@]} -eq 0 ] || runs+=("$(IFS=,; echo "${names[*]}")")
    set +f
    : > "$OUT/plan.txt"
    n=0
    for mode in $CTK_MODES; do
        for pat in "${runs[@]}"; do
            n=$((n + 1))
            echo "$mode $n $pat" >> "$OUT/plan.txt"
        done
    done

    rc=0
    n=0
    for mode in $CTK_MODES; do
        for pat in "${runs[@]}"; do
            n=$((n + 1))
            log=$OUT/e2e-$mode-$n.log
            echo "CTK: e2e mode=$mode pattern=$pat started at $(cut -d' ' -f1 /proc/uptime)s"
            start=$(date +%s.%N)
            # Each run in a cgroup of its own, so whatever a killed run leaves
            # behind (daemons run in sessions of their own) is found and killed.
            cg=/sys/fs/cgroup/ctk-e2e-$n
            mkdir -p "$cg"
            (
                echo "$BASHPID" > "$cg/cgroup.procs" 2>/dev/null
                export CTLD_BUILD=$CTK_BUILD CTLD_TEST_MODE=$mode CTLD_TIME_FACTOR=$CTK_TIME_FACTOR
                case "$pat" in
                *[*?[]*) /usr/bin/python3 -X faulthandler \
                    -m unittest discover -s tests/e2e -p "$pat" -v & ;;
                *) (cd tests/e2e && exec /usr/bin/python3 -X faulthandler \
                    -m unittest -v ${pat//,/ }) & ;;
                esac
                suite=$!
                # A run still going at the suite timeout: what each of its
                # processes waits for and the daemons' last words, then
                # SIGABRT (faulthandler prints every thread's traceback),
                # then SIGKILL.
                (
                    sleep "$CTK_SUITE_TIMEOUT" &
                    nap=$!
                    trap 'kill "$nap"; exit 0' TERM # the run ended first
                    wait "$nap"
                    hang_report "$cg"
                    kill -ABRT "$suite"
                    sleep 30
                    kill -KILL "$suite"
                ) &
                dog=$!
                wait "$suite"
                r=$?
                kill "$dog" 2>/dev/null
                exit "$r"
            ) > "$log" 2>&1
            r=$?
            for _ in $(seq 50); do
                pids=$(cat "$cg/cgroup.procs" 2>/dev/null)
                [ -z "$pids" ] && break
                echo "CTK: killing leftovers of the run: $(echo $pids)" >> "$log"
                kill -KILL $pids 2>/dev/null
                sleep 0.2
            done
            rmdir "$cg" 2>/dev/null
            wall=$(echo "$(date +%s.%N) - $start" | bc)
            [ "$r" = 0 ] || rc=1
            [ "$r" = 134 ] || [ "$r" = 137 ] && echo "CTK: TIMEOUT: the run was stopped after ${CTK_SUITE_TIMEOUT}s (above: where it waited)" >> "$log"
            echo "$mode $n $pat $r $wall" >> "$OUT/e2e.txt"
            echo "CTK: e2e mode=$mode pattern=$pat rc=$r wall=${wall}s: $(grep -E '^(Ran |OK|FAILED)' "$log" | tr '\n' ' ')"
        done
    done

    if [ -n "${CTK_BENCH:-}" ]; then
        echo "CTK: bench: kernel_listen.py, $CTK_BENCH trials"
        CTLD_TIME_FACTOR=$CTK_TIME_FACTOR timeout 1800 /usr/bin/python3 bench/kernel_listen.py \
            "$CTK_BUILD" "$OUT/bench.json" "$CTK_BENCH" > "$OUT/bench.log" 2>&1 || rc=1
        echo "CTK: bench: $(tr '\n' ' ' < "$OUT/bench.log" | tail -c 600)"
    fi

    {
        echo "inet_diag_at_end=$(modstate inet_diag)"
        echo "tcp_diag_at_end=$(modstate tcp_diag)"
        if timeout 60 modprobe inet_diag && timeout 60 modprobe tcp_diag; then
            echo "diag_modprobe=ok"
        else
            echo "diag_modprobe=failed"
        fi
    } >> "$OUT/features.txt"
    dmesg > "$OUT/dmesg.txt" 2>&1
    return $rc
}
# Parsed whole before it runs: editing this file on the host cannot derail a
# running guest.
main "$@"
exit $?
