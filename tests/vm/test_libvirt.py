#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""libvirt 9.0 as an independent, unmodified client of the guest agent.

For each agent variant (tether-agent, then Debian's qemu-ga as the reference) this defines a
type='qemu' domain with direct kernel boot, the agent channel and a restricted user network,
starts it under libvirt, and drives the agent only through virsh:

  qemu-agent-command, domifaddr --source agent, domtime (read, --time, --sync),
  set-user-password (then the shadow entry is checked), domfsfreeze/domfsthaw/domfsinfo/domfstrim,
  guestinfo (every group), guestvcpus and setvcpus --guest, get-user-sshkeys/set-user-sshkeys,
  save + restore (the agent answers again), the agent killed while frozen (restarted, it still
  reports frozen and thaw works), reboot --mode agent, shutdown --mode agent (shut off).

Usage: test_libvirt.py [--guest DIR] [tether|qemu-ga ...]    (default: both variants)
Starts virtlogd and libvirtd itself when they are not running (and stops those it started).
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Python 3.11 (Debian 12) still ships it

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
URI = "qemu:///system"
IMAGES = "/var/lib/libvirt/images/tether-test"

passed = failed = 0
failures = []


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        failures.append(name)
        print(f"FAIL {name}{': ' + detail if detail else ''}")
    return cond


def virsh(*args, timeout=90, check_rc=True):
    p = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True,
                       timeout=timeout)
    if check_rc and p.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(args)} failed ({p.returncode}): "
                           f"{p.stderr.strip() or p.stdout.strip()}")
    return p


def agent(dom, execute, arguments=None, timeout=30):
    req = {"execute": execute}
    if arguments is not None:
        req["arguments"] = arguments
    p = virsh("qemu-agent-command", dom, "--timeout", str(timeout), json.dumps(req),
              timeout=timeout + 30, check_rc=False)
    if p.returncode != 0:
        raise RuntimeError(f"{execute}: {p.stderr.strip()}")
    return json.loads(p.stdout)["return"]


def wait_agent(dom, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        p = virsh("qemu-agent-command", dom, "--timeout", "2", '{"execute":"guest-ping"}',
                  check_rc=False, timeout=30)
        if p.returncode == 0:
            return True
        time.sleep(0.5)
    return False


def wait_state(dom, want, seconds):
    deadline = time.monotonic() + seconds
    state = ""
    while time.monotonic() < deadline:
        state = virsh("domstate", dom, check_rc=False).stdout.strip()
        if state == want:
            return True
        time.sleep(0.5)
    return False


def guest_read(dom, path):
    h = agent(dom, "guest-file-open", {"path": path})
    data = b""
    while True:
        r = agent(dom, "guest-file-read", {"handle": h, "count": 65536})
        data += base64.b64decode(r["buf-b64"])
        if r["eof"] or r["count"] == 0:
            break
    agent(dom, "guest-file-close", {"handle": h})
    return data.decode()


def guest_exec(dom, path, *args):
    pid = agent(dom, "guest-exec", {"path": path, "arg": list(args), "capture-output": True})["pid"]
    for _ in range(200):
        st = agent(dom, "guest-exec-status", {"pid": pid})
        if st["exited"]:
            return st.get("exitcode"), base64.b64decode(st.get("out-data", "")).decode()
        time.sleep(0.1)
    raise RuntimeError(f"guest-exec {path} did not finish")


class Console:
    """The guest's serial console (busybox askfirst shell) on a unix socket."""

    def __init__(self, path):
        self.path = path

    def run(self, command, timeout=20):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        s.connect(self.path)
        marker = f"DONE{int(time.monotonic() * 1000) % 100000}"
        s.sendall(b"\r\n")
        time.sleep(0.5)
        s.sendall(f"{command}; echo {marker[:2]}''{marker[2:]}\r\n".encode())
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and marker.encode() not in out:
            try:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
            except socket.timeout:
                pass
        s.close()
        return marker.encode() in out, out.decode(errors="replace")


def ensure_libvirtd():
    """Start virtlogd and libvirtd (no systemd here) unless they already run: the PIDs started.
    tools/libvirtd-start.sh masks /dev/kvm from libvirtd (see there)."""
    p = subprocess.run([os.path.join(REPO, "tools", "libvirtd-start.sh")], capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip() or "tools/libvirtd-start.sh failed")
    return [int(w) for w in p.stdout.split() if w.isdigit()]


def domain_xml(name, kernel, initrd, data, append, console):
    # The NIC goes through qemu:commandline so the user network can be restrict=on (nothing
    # leaves the guest); libvirt's <interface type='user'> has no such switch.
    return f"""<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{append}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{data}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='unix'>
      <source mode='bind' path='{console}'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/>
    <qemu:arg value='user,id=tnet0,restrict=on'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='virtio-net-pci,netdev=tnet0,mac=52:54:00:12:34:56,bus=pci.0,addr=0x1e'/>
  </qemu:commandline>
</domain>
"""


def load_env(guest_dir):
    env = {}
    for line in open(os.path.join(guest_dir, "guest.env")):
        m = re.match(r"^(\w+)='?(.*?)'?$", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    return env


def run_variant(variant, env, workdir):
    dom = f"tether-lv-{variant}"
    initrd_src = env["TETHER_GUEST_INITRD" if variant == "tether" else "TETHER_GUEST_INITRD_QEMU_GA"]
    vdir = os.path.join(IMAGES, variant)
    os.makedirs(vdir, exist_ok=True)
    kernel = os.path.join(vdir, "vmlinuz")
    initrd = os.path.join(vdir, "initrd.img")
    data = os.path.join(vdir, "data.img")
    for src, dst in ((env["TETHER_GUEST_KERNEL"], kernel), (initrd_src, initrd),
                     (env["TETHER_GUEST_DATA"], data)):
        shutil.copyfile(src, dst)
    console_path = os.path.join(vdir, "console.sock")
    save_path = os.path.join(vdir, "saved.img")
    console = Console(console_path)
    xml_path = os.path.join(workdir, f"{dom}.xml")
    with open(xml_path, "w") as f:
        f.write(domain_xml(dom, kernel, initrd, data, env["TETHER_GUEST_APPEND"], console_path))

    virsh("destroy", dom, check_rc=False)
    virsh("undefine", dom, check_rc=False)
    virsh("define", xml_path)
    t0 = time.monotonic()
    virsh("start", dom)
    tag = f"[{variant}]"
    if not check(f"{tag} agent answers after start", wait_agent(dom, 90)):
        return
    print(f"     boot to first agent reply through libvirt: {time.monotonic() - t0:.1f} s")

    # qemu-agent-command: raw passthrough.
    p = virsh("qemu-agent-command", dom, '{"execute":"guest-ping"}')
    check(f"{tag} qemu-agent-command guest-ping", p.stdout.strip() == '{"return":{}}', p.stdout)
    info = agent(dom, "guest-info")
    names = {c["name"] for c in info["supported_commands"]}
    check(f"{tag} qemu-agent-command guest-info", {"guest-ping", "guest-get-fsinfo",
                                                  "guest-fsfreeze-freeze"} <= names)

    # domifaddr --source agent: the DHCP address from QEMU's user network.
    out = virsh("domifaddr", dom, "--source", "agent").stdout
    check(f"{tag} domifaddr --source agent shows eth0 10.0.2.15/24",
          re.search(r"eth0\s+52:54:00:12:34:56\s+ipv4\s+10\.0\.2\.15/24", out) is not None, out)
    check(f"{tag} domifaddr --source agent shows lo 127.0.0.1/8",
          re.search(r"lo\s+00:00:00:00:00:00\s+ipv4\s+127\.0\.0\.1/8", out) is not None, out)

    # domtime: read, set, sync from the RTC.
    out = virsh("domtime", dom).stdout
    m = re.match(r"Time: (\d+)", out)
    check(f"{tag} domtime reads the guest clock",
          m is not None and abs(int(m.group(1)) - time.time()) < 300, out)
    target = int(time.time()) + 86400
    virsh("domtime", dom, "--time", str(target))
    m = re.match(r"Time: (\d+)", virsh("domtime", dom).stdout)
    check(f"{tag} domtime --time sets the guest clock",
          m is not None and abs(int(m.group(1)) - target) < 30)
    # --sync sets the system clock from the RTC. Put both back to now (set-time with a time
    # also writes the RTC), then move only the system clock and let --sync repair it.
    virsh("domtime", dom, "--time", str(int(time.time())))
    guest_exec(dom, "/bin/date", "-s", "@%d" % (int(time.time()) + 7200))
    p = virsh("domtime", dom, "--sync", check_rc=False)
    m = re.match(r"Time: (\d+)", virsh("domtime", dom).stdout)
    check(f"{tag} domtime --sync brings the clock back from the RTC",
          p.returncode == 0 and m is not None and abs(int(m.group(1)) - time.time()) < 30,
          p.stderr.strip() or virsh("domtime", dom).stdout)
    if variant == "tether":
        # Beyond qemu-ga: without hwclock the agent reads /dev/rtc0 itself.
        guest_exec(dom, "/bin/mv", "/sbin/hwclock", "/sbin/hwclock.off")
        guest_exec(dom, "/bin/date", "-s", "@%d" % (int(time.time()) + 7200))
        p = virsh("domtime", dom, "--sync", check_rc=False)
        m = re.match(r"Time: (\d+)", virsh("domtime", dom).stdout)
        check(f"{tag} domtime --sync works without hwclock",
              p.returncode == 0 and m is not None and abs(int(m.group(1)) - time.time()) < 30,
              p.stderr.strip())
        guest_exec(dom, "/bin/mv", "/sbin/hwclock.off", "/sbin/hwclock")

    # set-user-password, plain and already crypted; the shadow entry must verify.
    p = virsh("set-user-password", dom, "tester", "s3cret-Pass", check_rc=False)
    if variant == "qemu-ga":
        # qemu-ga needs chpasswd, which the busybox guest lacks; tether-agent edits /etc/shadow
        # itself (locked, atomic replace).
        check(f"{tag} set-user-password fails without chpasswd (documented qemu-ga limitation)",
              p.returncode != 0 and "passwd" in p.stderr, p.stderr.strip())
    else:
        check(f"{tag} set-user-password succeeds", p.returncode == 0, p.stderr.strip())
    if variant != "qemu-ga":
        shadow = guest_read(dom, "/etc/shadow")
        entry = next((l for l in shadow.splitlines() if l.startswith("tester:")), "")
        hashed = entry.split(":")[1] if entry else ""
        check(f"{tag} set-user-password writes a hash that verifies",
              hashed.startswith("$") and crypt.crypt("s3cret-Pass", hashed) == hashed, entry)
        root_before = next(l for l in shadow.splitlines() if l.startswith("root:"))
        given = crypt.crypt("other-Pass", "$6$abcdefgh$")
        virsh("set-user-password", dom, "tester", given, "--encrypted")
        shadow = guest_read(dom, "/etc/shadow")
        entry = next((l for l in shadow.splitlines() if l.startswith("tester:")), "")
        check(f"{tag} set-user-password --encrypted stores the given hash",
              entry.split(":")[1:2] == [given], entry)
        check(f"{tag} set-user-password leaves other entries alone",
              root_before in shadow.splitlines())

    # Filesystems: info, freeze, thaw, trim.
    out = virsh("domfsinfo", dom).stdout
    check(f"{tag} domfsinfo lists /mnt/data on vda ext4",
          re.search(r"/mnt/data\s+\S+\s+ext4\s+vda", out) is not None, out)
    out = virsh("domfsfreeze", dom).stdout
    check(f"{tag} domfsfreeze", "Froze 1 filesystem(s)" in out, out)
    check(f"{tag} fsfreeze-status frozen", agent(dom, "guest-fsfreeze-status") == "frozen")
    p = virsh("qemu-agent-command", dom, '{"execute":"guest-get-time"}', check_rc=False)
    check(f"{tag} only allowed commands answer while frozen",
          p.returncode != 0 and "has been disabled" in p.stderr, p.stderr.strip())
    out = virsh("domfsthaw", dom).stdout
    check(f"{tag} domfsthaw", "Thawed 1 filesystem(s)" in out, out)
    check(f"{tag} fsfreeze-status thawed", agent(dom, "guest-fsfreeze-status") == "thawed")
    p = virsh("domfstrim", dom, check_rc=False)
    check(f"{tag} domfstrim", p.returncode == 0, p.stderr.strip())

    # guestinfo: every group.
    out = virsh("guestinfo", dom).stdout
    fields = dict(re.findall(r"^(\S+)\s+:\s*(.*)$", out, re.M))
    check(f"{tag} guestinfo hostname", fields.get("hostname") == "tether-guest", out)
    check(f"{tag} guestinfo os", fields.get("os.kernel-release", "") != "" and
          "os.id" in fields, out)
    check(f"{tag} guestinfo timezone", "timezone.offset" in fields, out)
    check(f"{tag} guestinfo users", "user.count" in fields, out)
    check(f"{tag} guestinfo filesystem", fields.get("fs.count") == "1" and
          fields.get("fs.0.mountpoint") == "/mnt/data" and fields.get("fs.0.fstype") == "ext4"
          and fields.get("fs.0.disk.0.alias") == "vda", out)
    if variant == "tether":
        # qemu-ga 7.2 in this guest is built with libudev; with no udev running it lists no
        # disks, so the disk group is checked on tether-agent only.
        check(f"{tag} guestinfo disk", int(fields.get("disk.count", "0")) >= 1, out)
    check(f"{tag} guestinfo interface", int(fields.get("if.count", "0")) >= 2 and
          "10.0.2.15" in out, out)

    # vCPUs through the agent.
    out = virsh("guestvcpus", dom).stdout
    check(f"{tag} guestvcpus", re.search(r"vcpus\s*:\s*0-1", out) is not None and
          re.search(r"online\s*:\s*0-1", out) is not None, out)
    virsh("setvcpus", dom, "1", "--guest")
    out = virsh("guestvcpus", dom).stdout
    check(f"{tag} setvcpus 1 --guest takes cpu1 offline",
          re.search(r"online\s*:\s*0\s*$", out, re.M) is not None, out)
    virsh("setvcpus", dom, "2", "--guest")
    out = virsh("guestvcpus", dom).stdout
    check(f"{tag} setvcpus 2 --guest brings it back",
          re.search(r"online\s*:\s*0-1", out) is not None, out)

    # SSH keys.
    keys_file = os.path.join(workdir, "keys")
    key1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBq7sZ3tNn3bkq4kYqGJQvW8cGm9bO4a1u2H9yW3kq1c one@test"
    key2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHb3kqR2T6xLqkQnP7y3ZtYb2q9nB4cS0d8u1Kx2wL7m two@test"
    with open(keys_file, "w") as f:
        f.write(key1 + "\n")
    virsh("set-user-sshkeys", dom, "tester", "--file", keys_file)
    with open(keys_file, "w") as f:
        f.write(key2 + "\n")
    virsh("set-user-sshkeys", dom, "tester", "--file", keys_file)
    out = virsh("get-user-sshkeys", dom, "tester").stdout
    check(f"{tag} set-user-sshkeys adds keys", key1 in out and key2 in out, out)
    code, st = guest_exec(dom, "/bin/stat", "-c", "%a %u", "/home/tester/.ssh",
                          "/home/tester/.ssh/authorized_keys")
    check(f"{tag} authorized_keys modes and owner", st.split() == ["700", "1000", "600", "1000"], st)
    virsh("set-user-sshkeys", dom, "tester", "--file", keys_file, "--remove")
    out = virsh("get-user-sshkeys", dom, "tester").stdout
    check(f"{tag} set-user-sshkeys --remove", key1 in out and key2 not in out, out)
    virsh("set-user-sshkeys", dom, "tester", "--file", keys_file, "--reset")
    out = virsh("get-user-sshkeys", dom, "tester").stdout
    check(f"{tag} set-user-sshkeys --reset", key1 not in out and key2 in out, out)

    # save + restore: the host side reconnects and the agent answers again.
    if os.path.exists(save_path):
        os.unlink(save_path)
    virsh("save", dom, save_path, timeout=300)
    check(f"{tag} save leaves the domain shut off", wait_state(dom, "shut off", 30))
    virsh("restore", save_path, timeout=300)
    check(f"{tag} agent answers after restore", wait_agent(dom, 60))

    # The agent killed while frozen: restarted by the guest's supervisor, it starts frozen.
    out = virsh("domfsfreeze", dom).stdout
    check(f"{tag} freeze before the kill", "Froze 1 filesystem(s)" in out, out)
    name = "tether-agent" if variant == "tether" else "qemu-ga"
    ok, before = console.run(f"echo PID=$(pidof {name})")
    old_pid = re.findall(r"PID=(\d+)", before)
    ok, text = console.run(f"kill -9 $(pidof {name})")
    check(f"{tag} agent killed from the serial console", ok and bool(old_pid), text[-300:])
    check(f"{tag} agent restarted", wait_agent(dom, 30))
    ok, after = console.run(f"echo PID=$(pidof {name})")
    new_pid = re.findall(r"PID=(\d+)", after)
    check(f"{tag} the restarted agent is a new process", bool(old_pid) and bool(new_pid) and
          old_pid[-1] != new_pid[-1], f"before {old_pid} after {new_pid}")
    check(f"{tag} restarted agent reports frozen",
          agent(dom, "guest-fsfreeze-status") == "frozen")
    out = virsh("domfsthaw", dom, check_rc=False)
    check(f"{tag} thaw after restart", out.returncode == 0 and "Thawed" in out.stdout,
          out.stdout + out.stderr)

    # reboot and shutdown --mode agent. qemu-ga 7.2 runs /sbin/shutdown, which busybox does not
    # have, so with it both fail in this guest; tether-agent runs /sbin/reboot or /sbin/poweroff.
    if variant == "qemu-ga":
        p = virsh("reboot", dom, "--mode", "agent", check_rc=False)
        check(f"{tag} reboot --mode agent fails without /sbin/shutdown (documented qemu-ga "
              "limitation)", p.returncode != 0 and "failed to shutdown" in p.stderr,
              p.stderr.strip())
        virsh("destroy", dom, check_rc=False)
        virsh("undefine", dom, check_rc=False)
        return
    boot_id = guest_read(dom, "/proc/sys/kernel/random/boot_id")
    virsh("reboot", dom, "--mode", "agent")
    # Until the new boot's agent answers: the old boot's may still answer at first.
    deadline = time.monotonic() + 90
    came_back = False
    while not came_back and time.monotonic() < deadline:
        if wait_agent(dom, max(1, deadline - time.monotonic())):
            try:
                came_back = guest_read(dom, "/proc/sys/kernel/random/boot_id") != boot_id
            except RuntimeError:  # the old boot's agent went away during the read
                pass
        if not came_back:
            time.sleep(0.2)
    check(f"{tag} reboot --mode agent", came_back)

    # shutdown --mode agent: the domain reaches shut off.
    virsh("shutdown", dom, "--mode", "agent")
    check(f"{tag} shutdown --mode agent reaches shut off", wait_state(dom, "shut off", 60))
    virsh("destroy", dom, check_rc=False)
    virsh("undefine", dom, check_rc=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build", "guest")))
    ap.add_argument("variants", nargs="*", default=["tether", "qemu-ga"])
    opts = ap.parse_args()
    env = load_env(opts.guest)
    started = ensure_libvirtd()
    workdir = f"/tmp/tether-libvirt-{os.getpid()}"
    os.makedirs(workdir, exist_ok=True)
    try:
        for variant in opts.variants:
            try:
                run_variant(variant, env, workdir)
            except Exception as e:  # a broken step fails the variant, not the whole run
                check(f"[{variant}] ran to the end", False, repr(e))
                virsh("destroy", f"tether-lv-{variant}", check_rc=False)
                virsh("undefine", f"tether-lv-{variant}", check_rc=False)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for pid in reversed(started):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if failures:
        print("failures:\n  " + "\n  ".join(failures))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
