#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# mkinitramfs.sh KERNEL_TREE OUT.cpio.gz
#
# Builds the guest's tiny initramfs for a kernel extracted by fetch.sh:
# busybox-static, the stage-1 init (tests/kernels/init) and the kernel's own
# modules needed to mount the host's root over virtio-9p with a tmpfs overlay
# (virtio_pci, 9pnet_virtio, 9p, overlay and their dependencies, in load
# order, decompressed; built-in ones are skipped). Nothing else: stage 2 and
# everything after it run from the host's root.
set -euo pipefail

TREE=$(cd "${1:?usage: mkinitramfs.sh KERNEL_TREE OUT}" && pwd)
OUT=${2:?usage: mkinitramfs.sh KERNEL_TREE OUT}
HERE=$(cd "$(dirname "$0")" && pwd)
BUSYBOX=${BUSYBOX:-/bin/busybox}
RELEASE=$(ls "$TREE/lib/modules" | head -1)

! readelf -l "$BUSYBOX" 2>/dev/null | grep -q "Requesting program interpreter" ||
    { echo "mkinitramfs.sh: $BUSYBOX is not static (install busybox-static)" >&2; exit 1; }

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/ctk-initrd.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,dev,proc,sys,mods,host,rw,newroot}
cp "$BUSYBOX" "$STAGE/bin/busybox"
cp "$HERE/init" "$STAGE/init"
chmod 755 "$STAGE/init"

# modprobe resolves the dependencies against the guest kernel's modules.dep;
# it prints "insmod PATH" in load order ("builtin NAME" for built-in ones).
i=0
seen=" "
for mod in virtio_pci 9pnet_virtio 9p overlay; do
    while read -r verb path; do
        [ "$verb" = insmod ] || continue
        case "$seen" in *" $path "*) continue ;; esac
        seen="$seen$path "
        i=$((i + 1))
        name=$(printf '%02d-%s' "$i" "$(basename "$path")")
        case "$path" in
        *.xz) xz -dc "$path" > "$STAGE/mods/${name%.xz}" ;;
        *.zst) zstd -qdc "$path" > "$STAGE/mods/${name%.zst}" ;;
        *.gz) gzip -dc "$path" > "$STAGE/mods/${name%.gz}" ;;
        *) cp "$path" "$STAGE/mods/$name" ;;
        esac
    done < <(modprobe -d "$TREE" -S "$RELEASE" --show-depends "$mod")
done

(cd "$STAGE" && find . | sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
