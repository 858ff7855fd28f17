#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# run-guest.sh - boot the Tether test guest (tools/mkguest.sh) under QEMU/TCG.
#
# By default QEMU daemonizes and this prints, as sh assignments, where
# everything is: PID, QMP socket, agent socket, serial log. Stop the guest with
# QMP (system_powerdown / quit) or `kill $(cat PIDFILE)`.
set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	cat <<EOF
Usage: $prog [options]
  --guest DIR        mkguest.sh output (default: $repo/build/guest)
  --variant V        tether (initrd.img, default) or qemu-ga (initrd-qemu-ga.img)
  --initrd FILE      initramfs to boot (overrides --variant)
  --dir DIR          run directory for sockets/logs (default: a new /tmp/tether-guest-XXXXXX)
  --qga PATH         agent chardev socket (default: DIR/qga.sock)
  --qmp PATH         QMP socket (default: DIR/qmp.sock)
  --serial PATH      serial console log (default: DIR/serial.log)
  --pidfile PATH     QEMU pidfile (default: DIR/qemu.pid)
  --name NAME        guest name, shown as -name guest=NAME (default: tether-test)
  --machine TYPE     QEMU machine type (default: q35: under TCG its PCI interrupt
                     set-up is ~2 s faster than pc's ACPI interrupt links)
  --bios FILE        firmware (default: QEMU's SeaBIOS; /usr/share/qemu/qboot.rom
                     boots faster)
  --mem MIB          memory (default: 256)
  --smp N            vCPUs (default: 2)
  --no-data          no data disk
  --persist-data     write to data.img itself (default: snapshot=on, so several
                     guests can share it and it stays pristine)
  --allow-reboot     let a guest reboot restart it (default: -no-reboot, QEMU exits)
  --append 'ARGS'    extra kernel arguments
  --foreground       run QEMU in the foreground with the serial console on stdio
  -h, --help         this text
EOF
}

die() { echo "$prog: error: $*" >&2; exit 1; }

guest="$repo/build/guest"
variant=tether
initrd=""
dir=""
qga=""
qmp=""
serial=""
pidfile=""
name=tether-test
machine=q35
bios=""
mem=256
smp=2
data=1
persist=0
reboot=0
extra_append=""
foreground=0

while [ $# -gt 0 ]; do
	case "$1" in
	--guest) guest=${2:?}; shift 2 ;;
	--variant) variant=${2:?}; shift 2 ;;
	--initrd) initrd=${2:?}; shift 2 ;;
	--dir) dir=${2:?}; shift 2 ;;
	--qga) qga=${2:?}; shift 2 ;;
	--qmp) qmp=${2:?}; shift 2 ;;
	--serial) serial=${2:?}; shift 2 ;;
	--pidfile) pidfile=${2:?}; shift 2 ;;
	--name) name=${2:?}; shift 2 ;;
	--machine) machine=${2:?}; shift 2 ;;
	--bios) bios=${2:?}; shift 2 ;;
	--mem) mem=${2:?}; shift 2 ;;
	--smp) smp=${2:?}; shift 2 ;;
	--no-data) data=0; shift ;;
	--persist-data) persist=1; shift ;;
	--allow-reboot) reboot=1; shift ;;
	--append) extra_append=${2?}; shift 2 ;;
	--foreground) foreground=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" ;;
	esac
done

[ -r "$guest/guest.env" ] || die "no $guest/guest.env; run tools/mkguest.sh first"
# shellcheck disable=SC1091
. "$guest/guest.env"

if [ -z "$initrd" ]; then
	case "$variant" in
	tether) initrd=${TETHER_GUEST_INITRD:-} ;;
	qemu-ga) initrd=${TETHER_GUEST_INITRD_QEMU_GA:-} ;;
	*) die "unknown variant '$variant' (tether or qemu-ga)" ;;
	esac
	hint=""
	[ "$variant" = qemu-ga ] && hint=" --agent qemu-ga"
	[ -n "$initrd" ] || die "no $variant initrd in $guest; run tools/mkguest.sh$hint"
fi
[ -r "$initrd" ] || die "cannot read $initrd"

[ -n "$dir" ] || dir=$(mktemp -d /tmp/tether-guest-XXXXXX)
mkdir -p "$dir"
qga=${qga:-$dir/qga.sock}
qmp=${qmp:-$dir/qmp.sock}
serial=${serial:-$dir/serial.log}
pidfile=${pidfile:-$dir/qemu.pid}
rm -f "$qga" "$qmp"

append="$TETHER_GUEST_APPEND${extra_append:+ $extra_append}"

# shellcheck disable=SC2054  # commas belong to QEMU's option syntax
args=(
	-name "guest=$name"
	-accel tcg
	-machine "$machine"
	-m "$mem" -smp "$smp"
	-nodefaults -no-user-config
	-kernel "$TETHER_GUEST_KERNEL" -initrd "$initrd" -append "$append"
	-netdev user,id=n0,restrict=on -device virtio-net-pci,netdev=n0
	-device virtio-serial-pci,id=vser0
	-chardev "socket,id=qga0,path=$qga,server=on,wait=off"
	-device virtserialport,bus=vser0.0,chardev=qga0,id=channel0,name=org.qemu.guest_agent.0
	-qmp "unix:$qmp,server=on,wait=off"
	-pidfile "$pidfile"
)
if [ $data = 1 ]; then
	snap=on
	[ $persist = 1 ] && snap=off
	# shellcheck disable=SC2054
	args+=(-drive "file=$TETHER_GUEST_DATA,if=none,id=d0,format=raw,snapshot=$snap"
		-device virtio-blk-pci,drive=d0)
fi
[ $reboot = 1 ] || args+=(-no-reboot)
[ -n "$bios" ] && args+=(-bios "$bios")

if [ $foreground = 1 ]; then
	exec qemu-system-x86_64 "${args[@]}" -display none -serial mon:stdio
fi

rm -f "$pidfile"
qemu-system-x86_64 "${args[@]}" -display none -serial "file:$serial" -daemonize
echo "PID=$(cat "$pidfile")"
echo "PIDFILE='$pidfile'"
echo "QMP='$qmp'"
echo "QGA='$qga'"
echo "SERIAL='$serial'"
echo "DIR='$dir'"
