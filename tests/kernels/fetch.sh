#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# fetch.sh KERNEL CACHE_DIR
#
# Downloads Debian's stock linux-image package for KERNEL (5.10 = bullseye,
# 6.1 = bookworm, 6.12 = bookworm-backports) with a PRIVATE apt configuration
# (its own sources list, lists and cache under CACHE_DIR/apt; the system's apt
# sources are never touched), extracts it into CACHE_DIR/<KERNEL>/ and prints
# that directory. Everything is cached: a second call with the .deb and the
# extracted tree present does no network access at all.
#
# CACHE_DIR/<KERNEL>/boot/vmlinuz-*        the kernel
# CACHE_DIR/<KERNEL>/lib/modules/<release> its modules (inet_diag, 9p, ...)
set -euo pipefail

KERNEL=${1:?usage: fetch.sh KERNEL CACHE_DIR}
CACHE=${2:?usage: fetch.sh KERNEL CACHE_DIR}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

case "$KERNEL" in
5.10) SUITE=bullseye ;;
6.1) SUITE=bookworm ;;
6.12) SUITE=bookworm-backports ;;
*) echo "fetch.sh: unknown kernel '$KERNEL' (known: 5.10 6.1 6.12)" >&2; exit 2 ;;
esac

TREE=$CACHE/$KERNEL
if [ -f "$TREE/.complete" ]; then
    echo "$TREE"
    exit 0
fi

APT=$CACHE/apt
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/parts" "$CACHE/debs"
cat > "$APT/sources.list" <<'EOF'
# Private to tests/kernels/fetch.sh: the suites that carry the kernels we test.
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bullseye-security main
EOF
# Only our list (SourceParts points at an empty directory), our lists, our cache.
APTOPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/parts"
         -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
         -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
         -o "APT::Get::List-Cleanup=0" -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")

# Refresh the private lists when missing or older than a day.
stamp=$APT/lists/.updated
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440)" ]; then
    echo "fetch.sh: apt-get update (private lists in $APT)" >&2
    timeout 600 apt-get -q "${APTOPTS[@]}" update >&2
    touch "$stamp"
fi

# linux-image-amd64 of SUITE depends on exactly one linux-image-<release>.
meta_ver=$(apt-cache "${APTOPTS[@]}" madison linux-image-amd64 |
    awk -F'|' -v s="$SUITE" '{gsub(/ /,"",$2); split($3,a," "); if (a[2] ~ "^"s"(-security|-updates)?/main$") print $2}' |
    head -1)
[ -n "$meta_ver" ] || { echo "fetch.sh: linux-image-amd64 not found in $SUITE" >&2; exit 1; }
pkg=$(apt-cache "${APTOPTS[@]}" show "linux-image-amd64=$meta_ver" |
    sed -n 's/^Depends: *//p' | head -1 | tr ',' '\n' | grep -o 'linux-image-[0-9][^ ]*' | head -1)
[ -n "$pkg" ] || { echo "fetch.sh: cannot resolve linux-image-amd64=$meta_ver" >&2; exit 1; }
echo "fetch.sh: kernel $KERNEL = $pkg (from linux-image-amd64 $meta_ver, $SUITE)" >&2

deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    (cd "$CACHE/debs" && timeout 900 apt-get -q "${APTOPTS[@]}" download "$pkg" >&2)
    deb=$(ls "$CACHE/debs/${pkg}_"*.deb | head -1)
fi

tmp=$(mktemp -d "$CACHE/.extract-$KERNEL.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
release=$(ls "$tmp/lib/modules" | head -1)
ls "$tmp/boot/vmlinuz-$release" >/dev/null
[ -f "$tmp/lib/modules/$release/modules.dep" ] || depmod -b "$tmp" "$release"
echo "$pkg $(basename "$deb") $release" > "$tmp/.complete"
rm -rf "$TREE"
mv "$tmp" "$TREE"
trap - EXIT
echo "$TREE"
