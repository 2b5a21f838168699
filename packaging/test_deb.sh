#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
# test_deb.sh - the Debian packages on a fresh Debian 12 booted with systemd
# (`make test-deb`): install with apt, the service starts, ctl and the Python
# client work, a job survives a crash of the daemon (KillMode=process, then
# adopted), a reload and a package upgrade are an upgrade in place, purge
# stops everything and leaves nothing behind.
#
#   packaging/test_deb.sh DEB_DIR VERSION
#
# The guest is a minimal bookworm made once by debootstrap (cached in
# DEB_DIR/../deb-test/base; the only downloads, from the host) and copied
# afresh for every run. The packages' dependencies are resolved and
# downloaded by apt in a chroot of the copy (host network), then the copy
# boots under systemd-nspawn with a private network (no network at all) and
# installs them with apt from a local repository. Commands run in it through nsenter.
# --register=no --keep-unit: no machined or host systemd is needed (a host
# whose PID 1 is not systemd, like CI containers, boots it as well).
set -euo pipefail

deb_dir=$(cd "${1:?usage: test_deb.sh DEB_DIR VERSION}" && pwd)
version=${2:?usage: test_deb.sh DEB_DIR VERSION}
work=$(dirname "$deb_dir")/deb-test
mkdir -p "$work"
base=$work/base
guest=$work/guest
bpffs=$work/bpffs
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
nspawn_pid=
leader=
t0=$SECONDS

say() { printf '  %-8s %s\n' TEST-DEB "$*"; }
# a failure once the guest runs shows the service's journal too
fail() {
	echo "test-deb: FAIL: $*" >&2
	if [ -n "$leader" ]; then
		echo "--- journalctl -u ctld-bpf (last 30 lines):" >&2
		in_guest journalctl -u ctld-bpf --no-pager -n 30 >&2 || true
	fi
	exit 1
}

# A container that did not power off: SIGKILL to its init ends its whole pid
# namespace (killing nspawn alone would leave the container running).
cleanup() {
	if [ -n "$leader" ] && kill -0 "$leader" 2>/dev/null; then
		kill -KILL "$leader" 2>/dev/null || true
	fi
	if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$nspawn_pid" 2>/dev/null || true
	fi
	[ -z "$nspawn_pid" ] || wait "$nspawn_pid" 2>/dev/null || true
	umount "$guest/proc" 2>/dev/null || true
	if mountpoint -q "$bpffs"; then umount "$bpffs"; fi
	[ ! -d "$bpffs" ] || rmdir "$bpffs"
	rm -rf "$guest"
}
trap cleanup EXIT

# ------------------------------------------------------------ the guest
if [ ! -e "$base/.complete" ]; then
	say "debootstrap bookworm (once, cached in $base)"
	rm -rf "$base"
	debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm "$base" "$mirror" \
		>"$work/debootstrap.log" 2>&1 || fail "debootstrap failed, see $work/debootstrap.log"
	touch "$base/.complete"
fi
cleanup
cp -a "$base" "$guest"
mkdir -p "$guest/root/debs"
cp "$deb_dir/ctld-bpf_${version}_"*.deb "$deb_dir/python3-ctld_${version}_all.deb" "$guest/root/debs/"
echo ctld-guest >"$guest/etc/hostname"

# The packages as a local apt repository (apt 2.6 cannot install local .deb
# files with --no-download: "Pathname to install is not absolute").
(cd "$guest/root/debs" && dpkg-scanpackages --multiversion . >Packages 2>/dev/null)
echo 'deb [trusted=yes] file:/root/debs ./' >"$guest/etc/apt/sources.list.d/ctld.list"

say "apt resolves and downloads the dependencies (chroot, host network)"
cp /etc/resolv.conf "$guest/etc/resolv.conf"
mount -t proc proc "$guest/proc"
chroot "$guest" apt-get update -qq >/dev/null
chroot "$guest" apt-get install -qq --download-only -y ctld-bpf python3-ctld >/dev/null
umount "$guest/proc"

# ------------------------------------------------------------ boot
say "boot it under systemd-nspawn (private network)"
# The daemon loads eBPF programs: nspawn's default filter refuses bpf(),
# and its default capabilities lack CAP_BPF and CAP_PERFMON. Its /sys has
# no /sys/fs/bpf: the guest gets a bpffs instance of its own (a new mount is
# a new, empty instance), so its pins never meet the host's.
mkdir -p "$bpffs"
mount -t bpf bpf "$bpffs"
systemd-nspawn -q -D "$guest" -b --private-network --register=no --keep-unit --console=passive \
	--capability=CAP_BPF,CAP_PERFMON,CAP_SYS_RESOURCE --system-call-filter='bpf perf_event_open' \
	--bind="$bpffs:/sys/fs/bpf" >"$work/console.log" 2>&1 &
nspawn_pid=$!

# the container's init: nspawn's child once it is systemd (before that, the
# child is nspawn's own set-up process)
for _ in $(seq 200); do
	pid=$(cat /proc/$nspawn_pid/task/*/children 2>/dev/null | awk '{print $1; exit}' || true)
	if [ -n "$pid" ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = systemd ]; then
		leader=$pid && break
	fi
	sleep 0.1
done
[ -n "$leader" ] || fail "the container did not start, see $work/console.log"
in_guest() { nsenter --target "$leader" --all --root --wd env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
# systemd answers once its private socket is up; then wait for the boot to end
state=
for _ in $(seq 300); do
	state=$(in_guest timeout 60 systemctl is-system-running --wait 2>/dev/null || true)
	case $state in '' | offline) sleep 0.2 ;; *) break ;; esac
done
say "guest systemd: $state"
case $state in running | degraded) ;; *) fail "guest did not boot: $state" ;; esac

# ------------------------------------------------------------ install
say "apt-get install ctld-bpf python3-ctld $version (no network: the local repository and the cache)"
in_guest apt-get install -y ctld-bpf python3-ctld >"$work/install.log" 2>&1 ||
	{ cat "$work/install.log" >&2; fail "apt-get install failed"; }
for _ in $(seq 50); do
	in_guest systemctl is-active -q ctld-bpf && break
	sleep 0.2
done
in_guest systemctl is-active -q ctld-bpf || fail "ctld-bpf.service is not active"
in_guest systemctl is-enabled -q ctld-bpf || fail "ctld-bpf.service is not enabled"
bpf=$(in_guest ctl stats | awk -F': ' '$1 == "bpf" { print $2 }')
say "service active; ctl stats: bpf: $bpf"
[ "$bpf" = on ] || fail "the service runs without eBPF: $(in_guest journalctl -u ctld-bpf \
	--no-pager -o cat | grep -m1 'eBPF is off')"
[ "$(in_guest ctl run -- /bin/echo hi)" = hi ] || fail "ctl run -- /bin/echo hi"
in_guest ctl stats | grep -q '^spawner: spawner helper pid' || fail "the daemon has no spawner helper"
in_guest python3 -c 'import ctld_client
with ctld_client.Client(unix="/run/ctld-bpf.sock") as c:
    out, _, ev = c.run_and_wait(["/bin/echo", "from-python"], timeout=10)
assert out == b"from-python\n" and ev.exited.exit_code == 0, (out, ev)' ||
	fail "the Python client"
in_guest man -w ctl ctld-bpf >/dev/null 2>&1 || in_guest test -e /usr/share/man/man8/ctld-bpf.8.gz ||
	fail "man pages missing"

# ------------------------------------------------------------ a crash keeps the jobs
say "kill -9 the daemon: systemd restarts it, the job survives and is adopted"
job=$(in_guest ctl start --name survivor -- /bin/sleep 600)
sleep 0.3 # a job is recorded once it has run 100 ms
main=$(in_guest systemctl show -p MainPID --value ctld-bpf)
in_guest sh -c "kill -KILL $main"
for _ in $(seq 100); do
	now=$(in_guest systemctl show -p MainPID --value ctld-bpf)
	[ "$now" != 0 ] && [ "$now" != "$main" ] && in_guest ctl stats >/dev/null 2>&1 && break
	sleep 0.1
done
[ "$now" != "$main" ] || fail "the daemon was not restarted after kill -9"
in_guest ctl list --running | grep -q "^$job .*adopted" ||
	{ in_guest ctl list >&2; fail "job $job was not adopted by the restarted daemon"; }

say "systemctl reload: upgrade in place (SIGUSR2): same process, the job handed over"
job2=$(in_guest ctl start --name handed-over -- /bin/sleep 600)
main=$(in_guest systemctl show -p MainPID --value ctld-bpf)
in_guest systemctl reload ctld-bpf || fail "systemctl reload ctld-bpf"
for _ in $(seq 100); do
	in_guest ctl stats >/dev/null 2>&1 && break
	sleep 0.1
done
now=$(in_guest systemctl show -p MainPID --value ctld-bpf)
[ "$now" = "$main" ] || fail "reload replaced the daemon (pid $main, now $now): no upgrade in place"
line=$(in_guest ctl --json list --running | grep "\"job\":$job2[,}]" || true)
[ -n "$line" ] || { in_guest ctl list >&2; fail "job $job2 is gone after systemctl reload"; }
case $line in *'"adopted":true'*) fail "job $job2 was adopted, not handed over: $line" ;; esac
[ "$(in_guest ctl run -- /bin/echo after-reload)" = after-reload ] || fail "ctl run after reload"

say "package upgrade: postinst reloads, the job goes on in the same daemon, now the new file"
# The same build repacked with a higher version: dpkg replaces every file
# and runs the maintainer scripts of an upgrade.
mkdir -p "$guest/root/upgrade"
for deb in "$guest"/root/debs/*.deb; do
	rm -rf "$work/repack"
	dpkg-deb -R "$deb" "$work/repack"
	sed -i "s/^Version: .*/Version: $version+upgrade/" "$work/repack/DEBIAN/control"
	dpkg-deb -b "$work/repack" "$guest/root/upgrade/${deb##*/}" >/dev/null
done
rm -rf "$work/repack"
in_guest sh -c 'dpkg -i /root/upgrade/*.deb' >"$work/upgrade.log" 2>&1 ||
	{ cat "$work/upgrade.log" >&2; fail "dpkg -i of the upgrade failed"; }
for _ in $(seq 100); do
	exe=$(in_guest sh -c 'readlink /proc/$(systemctl show -p MainPID --value ctld-bpf)/exe' || true)
	case $exe in *deleted*) sleep 0.1 ;; *) break ;; esac
done
in_guest ctl stats >/dev/null || fail "no daemon after the upgrade"
now=$(in_guest systemctl show -p MainPID --value ctld-bpf)
[ "$now" = "$main" ] || fail "the upgrade replaced the daemon (pid $main, now $now)"
exe=$(in_guest readlink /proc/$now/exe)
[ "$exe" = /usr/sbin/ctld-bpf ] || fail "after the upgrade the daemon still runs the old file: $exe"
in_guest ctl --json list --running | grep -q "\"job\":$job2[,}]" || fail "job $job2 is gone after the upgrade"

# ------------------------------------------------------------ purge
say "apt-get purge: the service stops, the jobs end, nothing is left"
sleepers=$(in_guest ctl --json list --running | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
[ "$(echo "$sleepers" | wc -w)" = 2 ] || fail "not the two running jobs: $sleepers"
in_guest apt-get purge -qq -y ctld-bpf python3-ctld >"$work/purge.log" 2>&1 ||
	{ cat "$work/purge.log" >&2; fail "apt-get purge failed"; }
left=$(in_guest sh -c 'for f in /usr/sbin/ctld-bpf /usr/bin/ctl /usr/libexec/ctld-bpf \
	/lib/systemd/system/ctld-bpf.service /etc/default/ctld-bpf /var/lib/ctld-bpf \
	/run/ctld-bpf.sock /sys/fs/bpf/ctld /usr/lib/python3/dist-packages/ctld \
	/usr/lib/python3/dist-packages/ctld_client.py /etc/systemd/system/multi-user.target.wants/ctld-bpf.service; do
	[ -e "$f" ] && echo "$f"; done; true')
[ -z "$left" ] || fail "left after purge: $left"
procs=$(in_guest sh -c 'for p in /proc/[0-9]*; do c=$(cat $p/comm 2>/dev/null) || continue;
	case $c in ctld-*) echo "${p#/proc/} $c";; esac; done; true')
[ -z "$procs" ] || fail "processes left after purge: $procs"
for pid in $sleepers; do
	in_guest sh -c "kill -0 $pid" 2>/dev/null && fail "a job (pid $pid) still runs after purge"
done
in_guest sh -c 'dpkg -l ctld-bpf python3-ctld 2>/dev/null | grep -E "^(ii|rc)"' &&
	fail "dpkg still lists the packages"

in_guest systemctl poweroff || true
for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
say "OK ($((SECONDS - t0)) s)"
