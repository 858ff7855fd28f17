#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# mkguest.sh - build the Tether test guest from Debian packages.
#
# The guest is Debian's kernel (linux-image-amd64, unpacked, never installed on
# this host) plus a small initramfs: busybox-static, the virtio/ext4 modules,
# a busybox init with an agent supervisor, and one guest agent (tether-agent or
# Debian's qemu-ga, so every VM test can run against both). It also makes a
# small ext4 data disk. See tools/run-guest.sh to boot it.
#
# Outputs in --out DIR (default build/guest):
#   vmlinuz (Debian's bzImage), vmlinux (the same kernel unpacked: boots much
#   faster under TCG), initrd.img (or initrd-qemu-ga.img), data.img, and
#   guest.env (sh assignments naming them; tools/run-guest.sh reads it).
# Needs root (apt-get, file ownership in the initramfs).
set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "$0")/.." && pwd)

usage() {
	cat <<EOF
Usage: $prog [options]
  --agent PATH|qemu-ga  agent binary to put in the guest
                        (default: $repo/build/src/agent/tether-agent;
                        'qemu-ga' uses Debian's /usr/sbin/qemu-ga and its libraries)
  --agent-args 'ARGS'   extra arguments for the agent (e.g. '-b guest-exec')
  --out DIR             output directory (default: $repo/build/guest)
  --initrd NAME         initramfs file name (default: initrd.img, or
                        initrd-qemu-ga.img for --agent qemu-ga)
  --cache DIR           download cache (default: \${XDG_CACHE_HOME:-~/.cache}/tether-guest)
  --kernel-pkg PKG      kernel metapackage (default: linux-image-amd64)
  --modules 'M1 M2'     extra kernel modules to load after the standard set
  --data-size MIB       data disk size (default: 64)
  --keep-module-signatures  keep Debian's module signatures (slower boot)
  --compress none|gzip  initramfs compression (default: none, faster under TCG)
  -h, --help            this text
EOF
}

die() { echo "$prog: error: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }

agent="$repo/build/src/agent/tether-agent"
agent_args=""
out="$repo/build/guest"
initrd_name=""
cache="${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/tether-guest"
kernel_pkg="linux-image-amd64"
extra_modules=""
data_size=64
keep_sigs=0
compress=none

while [ $# -gt 0 ]; do
	case "$1" in
	--agent) agent=${2:?}; shift 2 ;;
	--agent-args) agent_args=${2?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	--initrd) initrd_name=${2:?}; shift 2 ;;
	--cache) cache=${2:?}; shift 2 ;;
	--kernel-pkg) kernel_pkg=${2:?}; shift 2 ;;
	--modules) extra_modules=${2?}; shift 2 ;;
	--data-size) data_size=${2:?}; shift 2 ;;
	--keep-module-signatures) keep_sigs=1; shift ;;
	--compress) compress=${2:?}; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" ;;
	esac
done

if [ -z "$initrd_name" ]; then
	if [ "$agent" = qemu-ga ]; then initrd_name=initrd-qemu-ga.img; else initrd_name=initrd.img; fi
fi

# The modules the guest loads, in groups. "core" loads first, in this order:
# virtio_pci needs both transport libraries before it probes, and
# virtio_console after it makes the agent's port appear at once. Then "net",
# "disk" and "input" load in parallel (each followed by what needs it), then
# "extra" (--modules). "display" (bochs: a frame buffer console on QEMU's VGA,
# so tty1 and its shell show through VNC; the kernel starts with no VGA console)
# loads in the background, only with a VGA card and tether.display on the command line. virtio_balloon rides with "input": it reports the guest's
# memory statistics to the host (<memballoon><stats period>). crc32c_generic is ext4's and jbd2's checksum (a crypto
# softdep that modinfo's 'depends' does not list; there is no modprobe here).
module_groups="core net disk input display extra"
group_modules() {
	case "$1" in
	core) echo virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_console ;;
	net) echo failover net_failover virtio_net ;;
	disk) echo virtio_blk crc16 mbcache jbd2 crc32c_generic ext4 ;;
	input) echo button evdev virtio_balloon ;;
	display) echo bochs ;;
	extra) echo "$extra_modules" ;;
	esac
}

# --- host packages ---------------------------------------------------------

need_pkgs=(busybox-static e2fsprogs kmod xz-utils gzip file)
[ "$agent" = qemu-ga ] && need_pkgs+=(qemu-guest-agent)

apt_updated=0
apt_update() {
	[ $apt_updated = 1 ] && return 0
	log "apt-get update"
	apt-get update -qq >&2
	apt_updated=1
}

ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run as root or install them"
	log "installing ${missing[*]}"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
		apt_update
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	fi
}

ensure_packages "${need_pkgs[@]}"
host_busybox=/bin/busybox
file -L "$host_busybox" | grep -q 'statically linked' || die "$host_busybox is not static"

mkdir -p "$cache" "$out"
out=$(cd "$out" && pwd)  # guest.env holds absolute paths
work=$(mktemp -d /tmp/mkguest-XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- kernel ----------------------------------------------------------------

# The versioned image package that the metapackage depends on, e.g.
# linux-image-6.1.0-56-amd64.
resolve_kernel_pkg() {
	apt-cache depends --important "$kernel_pkg" 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | grep -v -- '-unsigned$' | head -n1 || true
}

# Sets kpkg, kver_deb and kdir (the unpacked package in the cache); fails if
# the package cannot be resolved or downloaded with the current apt lists.
fetch_kernel() {
	local debdir="$cache/debs" deb
	kpkg=$(resolve_kernel_pkg)
	[ -n "$kpkg" ] || return 1
	kver_deb=$(apt-cache policy "$kpkg" | sed -n 's/^ *Candidate: //p')
	if [ -z "$kver_deb" ] || [ "$kver_deb" = "(none)" ]; then return 1; fi
	kdir="$cache/kernel/${kpkg}_${kver_deb}"
	[ -e "$kdir/.complete" ] && return 0
	mkdir -p "$debdir"
	deb=$(find "$debdir" -maxdepth 1 -name "${kpkg}_${kver_deb//:/%3a}_*.deb" | head -n1)
	if [ -z "$deb" ]; then
		log "downloading $kpkg $kver_deb"
		# apt's _apt user may not be able to write here; that only costs a warning.
		(cd "$debdir" && apt-get download -qq "$kpkg=$kver_deb" 2>&1 | grep -v 'unsandboxed' >&2) || true
		deb=$(find "$debdir" -maxdepth 1 -name "${kpkg}_${kver_deb//:/%3a}_*.deb" | head -n1)
		[ -n "$deb" ] || return 1
	fi
	log "unpacking $(basename "$deb")"
	rm -rf "$kdir.tmp"
	mkdir -p "$kdir.tmp"
	dpkg-deb -x "$deb" "$kdir.tmp"
	touch "$kdir.tmp/.complete"
	rm -rf "$kdir"
	mv "$kdir.tmp" "$kdir"
}

# Missing or stale apt lists (a fresh machine, or a kernel the mirror has
# replaced) are fixed by one apt-get update.
if ! fetch_kernel; then
	apt_update
	fetch_kernel || die "cannot get the kernel package behind $kernel_pkg"
fi

vmlinuz=$(ls "$kdir"/boot/vmlinuz-* | head -n1)
kver=${vmlinuz##*/vmlinuz-}
moddir=$(ls -d "$kdir"/lib/modules/"$kver" "$kdir"/usr/lib/modules/"$kver" 2>/dev/null | head -n1 || true)
[ -n "$moddir" ] || die "no modules for $kver in $kdir"

# Path of module NAME (file names use '-' or '_' interchangeably).
module_path() {
	local n=$1 alt
	alt=$(echo "$n" | tr '_-' '-_')
	find "$moddir/kernel" \( -name "$n.ko" -o -name "$n.ko.*" -o -name "$alt.ko" -o -name "$alt.ko.*" \) \
		-print -quit
}

# Depth-first: dependencies before the module, each module once, in the
# group of the first module that needs it.
declare -A mod_seen=()
mod_order=()
add_module() {
	local group=$1 n=$2 p d
	n=${n//-/_}
	[ -n "${mod_seen[$n]:-}" ] && return 0
	mod_seen[$n]=1
	if grep -qE "/${n//_/[_-]}\.ko(\..*)?$" "$moddir/modules.builtin" 2>/dev/null; then
		return 0
	fi
	p=$(module_path "$n")
	[ -n "$p" ] || die "module $n not found in $kpkg"
	for d in $(modinfo -F depends "$p" | tr ',' ' '); do
		add_module "$group" "$d"
	done
	mod_order+=("$group:$n:$p")
}
for g in $module_groups; do
	for m in $(group_modules "$g"); do add_module "$g" "$m"; done
done

# --- initramfs -------------------------------------------------------------

root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,mnt/data,root,home/tester,etc/init.d,etc/acpi/PWRF,usr/share/udhcpc,lib/modules}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
mkdir -p "$root/var/log" "$root/var/lib"
ln -s /run "$root/var/run"

cp "$host_busybox" "$root/bin/busybox"
"$host_busybox" --list-full | while read -r a; do
	[ "$a" = bin/busybox ] && continue
	[ -e "$root/$a" ] || ln -s /bin/busybox "$root/$a"
done

# Debian signs its modules; checking an RSA signature per module costs the
# emulated guest ~0.1 s each under TCG. The kernel does not enforce signatures
# (no lockdown), so drop them: the kernel is only tainted 'E'.
strip_module_sig() {
	local f=$1 size siglen
	[ "$(tail -c 28 "$f")" = "~Module signature appended~" ] || return 0
	size=$(stat -c %s "$f")
	# struct module_signature (12 bytes) ends with the big-endian sig_len.
	siglen=$(tail -c 32 "$f" | head -c 4 | od -An -tu1 |
		awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
	truncate -s $((size - 28 - 12 - siglen)) "$f"
}

# Modules flat in /lib/modules, decompressed (busybox insmod cannot read .xz).
for g in $module_groups; do : >"$root/etc/modules.$g"; done
for e in "${mod_order[@]}"; do
	g=${e%%:*}
	e=${e#*:}
	n=${e%%:*}
	p=${e#*:}
	case "$p" in
	*.ko.xz) xz -dc "$p" >"$root/lib/modules/$n.ko" ;;
	*.ko.gz) gzip -dc "$p" >"$root/lib/modules/$n.ko" ;;
	*.ko.zst) ensure_packages zstd; zstd -qdc "$p" >"$root/lib/modules/$n.ko" ;;
	*) cp "$p" "$root/lib/modules/$n.ko" ;;
	esac
	[ "$keep_sigs" = 1 ] || strip_module_sig "$root/lib/modules/$n.ko"
	echo "$n" >>"$root/etc/modules.$g"
done

# Copy a binary and, if it is dynamic, its libraries and loader at the same paths.
install_binary() {
	local src=$1 dst=$2 lib
	install -D -m 0755 "$src" "$root$dst"
	# Debug info is dead weight in the guest (and in the initramfs it loads).
	if command -v strip >/dev/null && file -L "$src" | grep -q 'not stripped'; then
		strip --strip-debug "$root$dst"
	fi
	if file -L "$src" | grep -q 'dynamically linked'; then
		for lib in $(ldd "$src" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
			[ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
		done
	fi
}

if [ "$agent" = qemu-ga ]; then
	agent_src=/usr/sbin/qemu-ga
	agent_dst=/usr/sbin/qemu-ga
	[ -x "$agent_src" ] && [ -s "$agent_src" ] ||
		die "qemu-ga not found at $agent_src (apt-get install qemu-guest-agent)"
else
	[ -x "$agent" ] || die "agent '$agent' not found (build it, or use --agent qemu-ga)"
	agent_src=$agent
	# Whatever the build called it (tether-agent-static, ...), the guest runs tether-agent.
	agent_dst=/usr/sbin/tether-agent
fi
install_binary "$agent_src" "$agent_dst"
if file -L "$agent_src" | grep -q 'statically linked'; then agent_link=static; else agent_link=dynamic; fi

cat >"$root/etc/guest-agent" <<EOF
AGENT=$agent_dst
AGENT_ARGS='${agent_args//\'/}'
EOF

# /init keeps PID 1 for busybox init, so poweroff/reboot and the shutdown
# actions work; everything slow happens in rcS.
cat >"$root/init" <<'EOF'
#!/bin/sh
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p /dev/pts /run/agent /run/log
mount -t devpts devpts /dev/pts
# The askfirst shell on the serial console, only when the domain has a UART there: without one,
# busybox init respawns it every second (its tty set-up fails), and the guest is never idle.
grep -q '^0: uart:unknown' /proc/tty/driver/serial 2>/dev/null ||
	echo 'ttyS0::askfirst:-/bin/sh' >>/etc/inittab
exec /sbin/init
EOF
chmod 755 "$root/init"

cat >"$root/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
::respawn:/etc/init.d/agent
::respawn:/sbin/acpid -f -c /etc/acpi -l /run/log/acpid.log
tty1::askfirst:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
::restart:/sbin/init
EOF

# Boot milestones go to /run/log/boot.log, and to the console with tether.trace.
cat >"$root/etc/init.d/trace" <<'EOF'
trace() {
	read -r up _ </proc/uptime
	echo "[$up] $*" >>/run/log/boot.log
	case " $(cat /proc/cmdline) " in *" tether.trace "*) echo "[$up] $*" >/dev/console ;; esac
}
EOF

cat >"$root/etc/init.d/rcS" <<'EOF'
#!/bin/sh
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
. /etc/init.d/trace
trace rcS
hostname -F /etc/hostname
load() {
	while read -r m; do
		insmod "/lib/modules/$m.ko" || echo "rcS: insmod $m failed" >&2
		trace "insmod $m"
	done </etc/modules.$1
}
load core
ip link set lo up
# Network, data disk and ACPI button in parallel: the guest has two vCPUs.
(
	load net
	if [ -e /sys/class/net/eth0 ]; then
		ip link set eth0 up
		udhcpc -i eth0 -n -q -f -t 5 -T 1 -s /usr/share/udhcpc/default.script \
			>/run/log/udhcpc.log 2>&1 || echo "rcS: no DHCP lease on eth0" >&2
		trace eth0 configured
	fi
) &
(
	load disk
	if [ -b /dev/vda ]; then
		mount -t ext4 /dev/vda /mnt/data || echo "rcS: cannot mount /dev/vda" >&2
		trace data disk mounted
	fi
) &
load input
wait
# A VGA card (PCI class 0300) and tether.display on the kernel command line: a frame buffer
# console shows tty1 (the web console's test). Opt-in: the mode switch it makes mid-boot would
# change a screenshot's size under other tests.
if grep -qs '^0x0300' /sys/bus/pci/devices/*/class &&
	case " $(cat /proc/cmdline) " in *" tether.display "*) true ;; *) false ;; esac; then
	load display &
fi
load extra
trace rcS done
EOF

cat >"$root/etc/init.d/rcK" <<'EOF'
#!/bin/sh
sync
umount -a -r 2>/dev/null
sync
EOF

# Supervise the agent: find its port by name, make the /dev node if devtmpfs
# did not, run the agent and restart it 0.2 s after it exits (tools/soak.sh
# kills it 10,000 times).
cat >"$root/etc/init.d/agent" <<'EOF'
#!/bin/sh
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
. /etc/guest-agent
. /etc/init.d/trace
find_port() {
	for p in /sys/class/virtio-ports/*; do
		[ -r "$p/name" ] || continue
		[ "$(cat "$p/name")" = org.qemu.guest_agent.0 ] || continue
		dev=/dev/${p##*/}
		if [ ! -c "$dev" ]; then
			mm=$(cat "$p/dev")
			mknod "$dev" c "${mm%%:*}" "${mm##*:}"
		fi
		mkdir -p /dev/virtio-ports
		ln -sf "../${p##*/}" /dev/virtio-ports/org.qemu.guest_agent.0
		echo "$dev"
		return 0
	done
	return 1
}
while :; do
	if port=$(find_port); then
		trace starting $AGENT on $port
		$AGENT -m virtio-serial -p "$port" -t /run/agent -l /run/agent.log $AGENT_ARGS
		rc=$?
		echo "agent: $AGENT exited with $rc" >>/run/log/agent-supervisor.log
		trace "agent: $AGENT exited with $rc"
	fi
	sleep 0.2
done
EOF

# busybox acpid maps the power button (KEY_POWER on the ACPI button's input
# device, via evdev) to "PWRF" and runs /etc/acpi/PWRF/00000080.
cat >"$root/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
exec /sbin/poweroff
EOF

cat >"$root/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
case "$1" in
deconfig)
	ip addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" broadcast "${broadcast:-+}" dev "$interface"
	if [ -n "$router" ]; then
		ip route del default 2>/dev/null
		for r in $router; do ip route add default via "$r" dev "$interface"; break; done
	fi
	: >/etc/resolv.conf
	for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
	;;
esac
exit 0
EOF
chmod 755 "$root"/etc/init.d/* "$root/etc/acpi/PWRF/00000080" "$root/usr/share/udhcpc/default.script"

echo tether-guest >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	tether-guest
EOF
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
tester:x:1000:1000:Tether Tester:/home/tester:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
tester:x:1000:
nogroup:x:65534:
EOF
cat >"$root/etc/shadow" <<'EOF'
root::19000:0:99999:7:::
tester:!:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
chmod 600 "$root/etc/shadow"
chmod 755 "$root/home/tester"
echo "hello from tester" >"$root/home/tester/.profile"
cat >"$root/etc/os-release" <<'EOF'
PRETTY_NAME="Tether test guest"
NAME="Tether test guest"
ID=tether-guest
ID_LIKE=debian
VERSION_ID="1"
VERSION="1"
EOF
: >"$root/etc/resolv.conf"
echo "/dev/vda /mnt/data ext4 defaults 0 0" >"$root/etc/fstab"
echo "tether-test-guest-machine-id00000" | head -c 32 >"$root/etc/machine-id"
echo >>"$root/etc/machine-id"

# Ownership of the home dir matters to agent user commands.
chown -R 1000:1000 "$root/home/tester" 2>/dev/null || true

# Uncompressed by default: under TCG the kernel's gunzip of the archive costs
# more than QEMU copying the bigger file into guest memory (measured ~1 s).
initrd_tmp="$out/.$initrd_name.tmp"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	"$host_busybox" cpio -o -H newc 2>/dev/null) >"$initrd_tmp.cpio"
case "$compress" in
none) mv -f "$initrd_tmp.cpio" "$initrd_tmp" ;;
gzip) gzip -n -6 <"$initrd_tmp.cpio" >"$initrd_tmp"; rm -f "$initrd_tmp.cpio" ;;
*) die "unknown --compress '$compress' (none or gzip)" ;;
esac
mv -f "$initrd_tmp" "$out/$initrd_name"
# Its modules only load into this kernel; guest.env lists only initramfs
# images that match the kernel it names.
echo "$kver" >"$out/$initrd_name.kernel"

# --- kernel and data disk --------------------------------------------------

# Under TCG the bzImage's own xz decompressor takes the emulated CPU ~8 s, so
# also unpack the ELF vmlinux inside it once: QEMU boots that directly through
# its PVH entry point (CONFIG_PVH), with no decompression in the guest.
vmlinux="$kdir/vmlinux"
if [ ! -s "$vmlinux" ]; then
	off=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1 || true)
	if [ -n "$off" ]; then
		# xz complains about the bytes after the stream; the ELF check below decides.
		tail -c +$((off + 1)) "$vmlinuz" | xz -dc >"$vmlinux.tmp" 2>/dev/null || true
		if file "$vmlinux.tmp" | grep -q 'ELF 64-bit' &&
			LC_ALL=C grep -qa 'xen-3.0' "$vmlinux.tmp"; then
			mv -f "$vmlinux.tmp" "$vmlinux"
		fi
	fi
	rm -f "$vmlinux.tmp"
	[ -s "$vmlinux" ] || log "warning: no PVH vmlinux in $vmlinuz; booting the bzImage (slow under TCG)"
fi

copy_if_changed() {
	cmp -s "$1" "$2" && return 0
	cp "$1" "$2.tmp"
	mv -f "$2.tmp" "$2"
}
copy_if_changed "$vmlinuz" "$out/vmlinuz"
kernel="$out/vmlinuz"
if [ -s "$vmlinux" ]; then
	copy_if_changed "$vmlinux" "$out/vmlinux"
	kernel="$out/vmlinux"
fi

datadir="$work/data"
mkdir -p "$datadir/dir"
echo "tether test data" >"$datadir/hello.txt"
echo "nested file" >"$datadir/dir/nested.txt"
rm -f "$out/.data.img.tmp"
truncate -s "${data_size}M" "$out/.data.img.tmp"
mkfs.ext4 -q -F -L tether-data -E root_owner=0:0 -d "$datadir" "$out/.data.img.tmp" "${data_size}M"
mv -f "$out/.data.img.tmp" "$out/data.img"

# --- guest.env -------------------------------------------------------------

envf="$out/guest.env"
{
	echo "# Generated by tools/mkguest.sh; source it from sh."
	echo "TETHER_GUEST_KERNEL='$kernel'"
	echo "TETHER_GUEST_KERNEL_BZIMAGE='$out/vmlinuz'"
	echo "TETHER_GUEST_KERNEL_VERSION='$kver'"
	echo "TETHER_GUEST_KERNEL_PACKAGE='${kpkg}=${kver_deb}'"
	matches() { [ -e "$out/$1" ] && [ "$(cat "$out/$1.kernel" 2>/dev/null)" = "$kver" ]; }
	if matches initrd.img; then echo "TETHER_GUEST_INITRD='$out/initrd.img'"; fi
	if matches initrd-qemu-ga.img; then echo "TETHER_GUEST_INITRD_QEMU_GA='$out/initrd-qemu-ga.img'"; fi
	if [ "$initrd_name" != initrd.img ] && [ "$initrd_name" != initrd-qemu-ga.img ]; then
		echo "TETHER_GUEST_INITRD_CUSTOM='$out/$initrd_name'"
	fi
	echo "TETHER_GUEST_DATA='$out/data.img'"
	echo "TETHER_GUEST_APPEND='console=ttyS0 quiet loglevel=3 panic=-1 tsc=reliable no_timer_check cryptomgr.notests rodata=off'"
	echo "TETHER_GUEST_AGENT_CHANNEL='org.qemu.guest_agent.0'"
	echo "TETHER_GUEST_IP='10.0.2.15'"
	echo "TETHER_GUEST_HOSTNAME='tether-guest'"
} >"$envf.tmp"
mv -f "$envf.tmp" "$envf"

log "kernel $kver ($kpkg $kver_deb), ${#mod_order[@]} modules"
log "agent $agent_src ($agent_link) -> $out/$initrd_name ($(du -k "$out/$initrd_name" | cut -f1) KiB)"
echo "$envf"
