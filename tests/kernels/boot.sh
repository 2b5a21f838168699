#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# boot.sh KERNEL_TREE INITRD OUT_DIR [GUEST_SCRIPT]
#
# Boots a kernel extracted by fetch.sh under qemu with the host's / as the
# guest's read-only root (virtio-9p + tmpfs overlay, see init and stage2.sh)
# and OUT_DIR shared read-write. With GUEST_SCRIPT (an absolute host path) the
# guest runs it and powers off, writing its exit status to OUT_DIR/rc; without
# one it gives an interactive shell on the serial console (Ctrl-A X quits).
#
# No network device (-nic none): test traffic stays on the guest's loopback.
# Environment:
#   CTK_ACCEL   tcg (default; this host's /dev/kvm cannot run stock kernels) or kvm
#   CTK_SMP     vCPUs (default 2)        CTK_MEM    memory (default 2G)
#   CTK_TIMEOUT seconds before a hung guest is killed (default 3600)
#   CTK_APPEND  extra kernel command line
set -euo pipefail

TREE=$(cd "${1:?usage: boot.sh KERNEL_TREE INITRD OUT_DIR [GUEST_SCRIPT]}" && pwd)
INITRD=${2:?initrd}
OUT=$(cd "${3:?out dir}" && pwd)
RUN=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
VMLINUZ=$(ls "$TREE"/boot/vmlinuz-* | head -1)

case "${CTK_ACCEL:-tcg}" in
kvm) ACCEL=(-enable-kvm -cpu host) ;;
*) ACCEL=(-accel tcg,thread=multi -cpu max) ;;
esac
APPEND="console=ttyS0 quiet panic=-1 random.trust_cpu=on ctk.stage2=$HERE/stage2.sh"
APPEND="$APPEND ctk.out=$OUT ctk.tree=$TREE${RUN:+ ctk.run=$RUN} ${CTK_APPEND:-}"

QEMU=(qemu-system-x86_64 "${ACCEL[@]}" -m "${CTK_MEM:-2G}" -smp "${CTK_SMP:-2}"
      -nographic -no-reboot -nic none
      -kernel "$VMLINUZ" -initrd "$INITRD" -append "$APPEND"
      -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
      -virtfs "local,path=$OUT,mount_tag=ctkout,security_model=none,multidevs=remap")
if [ -z "$RUN" ]; then
    exec "${QEMU[@]}"
fi
# A guest that hangs is killed: TERM at the deadline, KILL 10 s later.
exec timeout --kill-after=10 "${CTK_TIMEOUT:-3600}" "${QEMU[@]}" </dev/null
