#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The demo, end to end on a VM it builds itself:
#  1. build Tether and the test guest (Debian's kernel, busybox, our static tether-agent);
#  2. boot the guest under QEMU (TCG) and talk to tether-agent inside it through the
#     virtio-serial agent socket: OS info, interfaces with the guest's IP, filesystems, guest-exec;
#  3. manage the same image with tetherd and tether: define, start, suspend, resume, destroy,
#     with virsh-style output and states, and reach the guest through tetherd's agent client
#     (qemu-agent-command, guestinfo, domfsinfo, guestvcpus, tether exec, domstats).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing what the demo needs and building"
tools/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
tools/mkguest.sh --agent build/src/agent/tether-agent-static --out build/guest >/dev/null
# shellcheck disable=SC1091
. build/guest/guest.env

run=$(mktemp -d /tmp/tether-demo.XXXXXX)
qemu_pid= tetherd_pid=
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
  if [ -n "$tetherd_pid" ]; then
    build/src/cli/tether --root "$run/root" destroy demo >/dev/null 2>&1 || true
    kill "$tetherd_pid" 2>/dev/null || true
  fi
  rm -rf "$run"
}
trap cleanup EXIT

say "Booting the test guest under QEMU (TCG) with tether-agent inside"
start=$(date +%s.%N)
eval "$(tools/run-guest.sh --guest build/guest --variant tether --dir "$run/vm" --name tether-demo)"
qemu_pid=$PID
python3 tools/qga.py --wait 60 "$QGA" guest-ping >/dev/null
printf 'the agent answered %.1f s after QEMU started (pid %s)\n' \
  "$(echo "$(date +%s.%N) - $start" | bc)" "$qemu_pid"

python3 - "$QGA" <<'PY'
import base64, json, sys
sys.path.insert(0, "tools")
from qga import QGA

agent = QGA(sys.argv[1])

def show(name, args=None, pick=None):
    reply = agent.cmd(name, args)
    value = reply.get("return", reply)
    print(f"\n>>> {name}" + (f" {json.dumps(args)}" if args else ""))
    print(json.dumps(pick(value) if pick else value, indent=2)[:1500])
    return value

show("guest-info", pick=lambda v: {"version": v["version"],
                                    "commands": len(v["supported_commands"])})
show("guest-get-osinfo")
show("guest-get-host-name")
show("guest-network-get-interfaces",
     pick=lambda v: [{"name": i["name"], "hardware-address": i.get("hardware-address"),
                      "ip-addresses": [f'{a["ip-address"]}/{a["prefix"]}'
                                       for a in i.get("ip-addresses", [])]} for i in v])
show("guest-get-fsinfo",
     pick=lambda v: [{k: f[k] for k in ("name", "mountpoint", "type", "used-bytes",
                                         "total-bytes") if k in f} for f in v])
pid = agent.cmd("guest-exec", {"path": "/bin/sh", "arg": ["-c", "uname -a; cat /mnt/data/hello.txt"],
                               "capture-output": True})["return"]["pid"]
import time
for _ in range(100):
    st = agent.cmd("guest-exec-status", {"pid": pid})["return"]
    if st["exited"]:
        break
    time.sleep(0.05)
print(f"\n>>> guest-exec /bin/sh -c 'uname -a; cat /mnt/data/hello.txt'  (pid {pid})")
print(f"exit code {st['exitcode']}; output:")
print(base64.b64decode(st.get("out-data", "")).decode().rstrip())
PY
kill "$qemu_pid"
qemu_pid=

say "Managing the same image with tetherd and tether (virsh verbs)"
mkdir -p "$run/root"
build/src/host/tetherd --root "$run/root" --log "$run/tetherd.log" </dev/null >/dev/null 2>&1 &
tetherd_pid=$!
for _ in $(seq 50); do [ -S "$run/root/run/tether/tetherd.sock" ] && break; sleep 0.1; done
cat >"$run/demo.xml" <<EOF
<domain type='qemu'>
  <name>demo</name>
  <title>Tether demo guest</title>
  <memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$TETHER_GUEST_KERNEL</kernel>
    <initrd>$TETHER_GUEST_INITRD</initrd>
    <cmdline>$TETHER_GUEST_APPEND</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$run/data.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
cp "$TETHER_GUEST_DATA" "$run/data.img"
T="build/src/cli/tether --root $run/root"
run_tether() {
  local cmd
  for cmd in "$@"; do
    printf '$ tether %s\n' "${cmd//$run\//}"
    # shellcheck disable=SC2086
    $T $cmd || { echo "demo: 'tether $cmd' failed; tetherd's log:"; tail -5 "$run/tetherd.log"; exit 1; }
  done
}
run_tether "define $run/demo.xml" "list --all --title" "start demo" "list" "domstate --reason demo" \
           "suspend demo" "domstate --reason demo" "resume demo" "domstate --reason demo" \
           "dominfo demo"
say "The guest through tetherd's agent client (virsh's agent verbs, tether exec)"
for _ in $(seq 120); do
  $T qemu-agent-command demo '{"execute":"guest-ping"}' >/dev/null 2>&1 && break
  sleep 0.5
done
run_tether "qemu-agent-command demo {\"execute\":\"guest-get-host-name\"}" \
           "guestinfo --os --hostname --timezone demo" "domfsinfo demo" "guestvcpus demo" \
           "exec demo -- /bin/uname -sr" "domstats --state --vcpu demo" \
           "destroy demo" "domstate --reason demo" "list --all"
echo "QEMU processes are named after their domain: -name guest=NAME (see 'ps')."
