#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# install.sh - the one description of where an installed ctld-bpf puts its
# files, used by `make install` / `make uninstall` (packaging/packaging.mk),
# by the Debian package (packaging/debian/rules calls make install) and by
# tests/e2e/test_package.py (which installs the build it is given).
#
#   packaging/install.sh [--uninstall] BUILD
#   with, from the environment (make passes them):
#   DESTDIR      staging root, prepended to every path below (default: none)
#   PREFIX       /usr/local                  SBINDIR  PREFIX/sbin   BINDIR PREFIX/bin
#   LIBEXECDIR   PREFIX/libexec/ctld-bpf: ctld-spawner and every BUILD/*.so
#   MANDIR       PREFIX/share/man            COMPLETIONDIR PREFIX/share/bash-completion/completions
#   UNITDIR      PREFIX/lib/systemd/system   SYSCONFDIR /etc
#   PYTHONDIR    ctld/, ctld_client.py, ctld_pb2.py: /usr/lib/python3/dist-packages
#                for PREFIX=/usr (Debian's), else PREFIX/lib/python3.X/dist-packages
#                (what Debian's python3 searches below /usr/local)
#   CLUSTERSHELL_WORKER_DIR  clients/clustershell/Ctld.py, only when that file
#                exists: `clush -R ctld` imports ClusterShell.Worker.Ctld, a
#                module of the ClusterShell.Worker package, so the directory of
#                the ClusterShell that python3 imports (Debian's
#                python3-clustershell: /usr/lib/python3/dist-packages/ClusterShell/Worker),
#                else PYTHONDIR/ClusterShell/Worker
#
# Why LIBEXECDIR is PREFIX/libexec/ctld-bpf, with no choice of its own: the
# programs find their companions (the spawner helper, a TLS module) at
# ../libexec/ctld-bpf/ from their own executable (see ctld-bpf(8),
# DESCRIPTION), so any PREFIX and any DESTDIR tree work without compiling a
# path in.
set -eu

uninstall=
if [ "${1:-}" = --uninstall ]; then uninstall=1; shift; fi
build=${1:?usage: install.sh [--uninstall] BUILD}
src=$(cd "$(dirname "$0")/.." && pwd)
: "${DESTDIR:=}" "${PREFIX:=/usr/local}"
: "${SBINDIR:=$PREFIX/sbin}" "${BINDIR:=$PREFIX/bin}" "${MANDIR:=$PREFIX/share/man}"
LIBEXECDIR=$PREFIX/libexec/ctld-bpf
: "${COMPLETIONDIR:=$PREFIX/share/bash-completion/completions}"
: "${UNITDIR:=$PREFIX/lib/systemd/system}" "${SYSCONFDIR:=/etc}"
python=/usr/bin/python3
if [ -z "${PYTHONDIR:-}" ]; then
	if [ "$PREFIX" = /usr ]; then
		PYTHONDIR=/usr/lib/python3/dist-packages
	else
		PYTHONDIR=$PREFIX/lib/python$($python -c 'import sys; print("%d.%d" % sys.version_info[:2])')/dist-packages
	fi
fi
if [ -z "${CLUSTERSHELL_WORKER_DIR:-}" ]; then
	CLUSTERSHELL_WORKER_DIR=$($python -c 'import os, ClusterShell.Worker as w
print(os.path.dirname(w.__file__))' 2>/dev/null) || CLUSTERSHELL_WORKER_DIR=$PYTHONDIR/ClusterShell/Worker
fi

# Every installed file: "MODE SOURCE DESTINATION" (the unit is rewritten
# for the directories chosen, see install_one).
manifest() {
	echo "0755 $build/ctld-bpf $SBINDIR/ctld-bpf"
	echo "0755 $build/ctl $BINDIR/ctl"
	echo "0755 $build/ctld-spawner $LIBEXECDIR/ctld-spawner"
	for so in "$build"/*.so; do
		[ -e "$so" ] && echo "0644 $so $LIBEXECDIR/${so##*/}"
	done
	echo "0644 $src/packaging/man/ctl.1 $MANDIR/man1/ctl.1"
	echo "0644 $src/packaging/man/ctld-bpf.8 $MANDIR/man8/ctld-bpf.8"
	echo "0644 $src/packaging/completion/ctl $COMPLETIONDIR/ctl"
	echo "0644 $src/packaging/systemd/ctld-bpf.service $UNITDIR/ctld-bpf.service"
	echo "0644 $src/packaging/systemd/default $SYSCONFDIR/default/ctld-bpf"
	echo "0644 $src/clients/python/ctld_client.py $PYTHONDIR/ctld_client.py"
	echo "0644 $build/python/ctld_pb2.py $PYTHONDIR/ctld_pb2.py"
	for py in "$src"/clients/python/ctld/*.py; do
		echo "0644 $py $PYTHONDIR/ctld/${py##*/}"
	done
	if [ -e "$src/clients/clustershell/Ctld.py" ]; then
		echo "0644 $src/clients/clustershell/Ctld.py $CLUSTERSHELL_WORKER_DIR/Ctld.py"
	fi
}

install_one() {
	mode=$1 from=$2 to=$DESTDIR$3
	install -d "${to%/*}"
	case $to in
	*.service) sed "s|@SBINDIR@|$SBINDIR|g; s|@SYSCONFDIR@|$SYSCONFDIR|g" "$from" >"$to" &&
		chmod "$mode" "$to" ;;
	# the administrator's options: never overwritten by a later install
	*/default/ctld-bpf) [ -e "$to" ] || install -m "$mode" "$from" "$to" ;;
	*) install -m "$mode" "$from" "$to" ;;
	esac
}

if [ -n "$uninstall" ]; then
	manifest | while read -r _ _ to; do rm -f "$DESTDIR$to"; done
	rmdir "$DESTDIR$LIBEXECDIR" "$DESTDIR$PYTHONDIR/ctld" 2>/dev/null || true
	exit 0
fi
for f in ctld-bpf ctld-spawner ctl python/ctld_pb2.py; do
	[ -e "$build/$f" ] || { echo "install.sh: $build/$f is missing (run make first)" >&2; exit 1; }
done
manifest | while read -r mode from to; do install_one "$mode" "$from" "$to"; done
