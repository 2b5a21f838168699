#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# run-kernel.sh KERNEL: one row of the kernel matrix, run on the host.
# Fetches the kernel (fetch.sh), builds its initramfs (mkinitramfs.sh), boots
# it under qemu (boot.sh) to run guest.sh, and turns what the guest left in
# the shared directory into results/KERNEL.json and results/KERNEL.log
# (report.py). Exit status 0 only when the guest booted, ran every e2e run,
# reported, powered off, and every test passed.
#
# Environment (kernels.mk sets all of them):
#   CTK_CACHE   cache and results directory (build/kernels)
#   CTK_BUILD   the build directory under test (build)
#   CTK_MODES   e2e modes for this kernel ("bpf" or "bpf nobpf")
#   CTK_PATTERNS, CTK_TIME_FACTOR, CTK_SUITE_TIMEOUT, CTK_NO_MODULES, CTK_BENCH: see guest.sh
#   CTK_SMP, CTK_MEM, CTK_TIMEOUT, CTK_ACCEL: see boot.sh
set -uo pipefail
KERNEL=${1:?usage: run-kernel.sh KERNEL}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=$(mkdir -p "${CTK_CACHE:-build/kernels}" && cd "${CTK_CACHE:-build/kernels}" && pwd)
BUILD=$(cd "${CTK_BUILD:-build}" && pwd)
RESULTS=$CACHE/results
mkdir -p "$RESULTS"
case "$CACHE$BUILD$ROOT" in
/tmp/*|*" "*) echo "run-kernel.sh: the checkout and build directory must not be under /tmp" \
    "(the guest mounts its own /tmp) nor contain spaces" >&2; exit 2 ;;
esac

TREE=$("$HERE/fetch.sh" "$KERNEL" "$CACHE") || { echo "run-kernel.sh: cannot fetch kernel $KERNEL" >&2; exit 1; }
INITRD=$CACHE/initrd-$KERNEL.cpio.gz
if [ ! -s "$INITRD" ] || [ "$HERE/init" -nt "$INITRD" ] || [ "$HERE/mkinitramfs.sh" -nt "$INITRD" ]; then
    "$HERE/mkinitramfs.sh" "$TREE" "$INITRD" || { echo "run-kernel.sh: initramfs failed" >&2; exit 1; }
fi

OUT=$CACHE/out/$KERNEL
rm -rf "$OUT"
mkdir -p "$OUT"
cat > "$OUT/env" <<ENV
CTK_ROOT='$ROOT'
CTK_BUILD='$BUILD'
CTK_MODES='${CTK_MODES:-bpf}'
CTK_PATTERNS='${CTK_PATTERNS:-test_*.py}'
CTK_TIME_FACTOR='${CTK_TIME_FACTOR:-8}'
CTK_SUITE_TIMEOUT='${CTK_SUITE_TIMEOUT:-2400}'
CTK_NO_MODULES='${CTK_NO_MODULES:-}'
CTK_BENCH='${CTK_BENCH:-}'
ENV

CONSOLE=$OUT/console.log
printf '  KERNEL   %s: booting (modes: %s; patterns: %s)\n' "$KERNEL" "${CTK_MODES:-bpf}" "${CTK_PATTERNS:-test_*.py}"
start=$(date +%s.%N)
"$HERE/boot.sh" "$TREE" "$INITRD" "$OUT" "$HERE/guest.sh" > "$CONSOLE" 2>&1
qemu_rc=$?
end=$(date +%s.%N)

/usr/bin/python3 "$HERE/report.py" result --kernel "$KERNEL" --tree "$TREE" --out "$OUT" \
    --results "$RESULTS" --qemu-rc "$qemu_rc" --start "$start" --end "$end" \
    --timeout "${CTK_TIMEOUT:-3600}" --smp "${CTK_SMP:-2}" --accel "${CTK_ACCEL:-tcg}" --root "$ROOT"
