#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`tether domstats` and `tether top` against a private tetherd and a real guest, with real
libvirt 9.0's `virsh domstats` on a twin of the same guest as the reference.

  tests/vm/test_domstats.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                            [--guest DIR] [--no-libvirt] [--keep]

Guests (2 QEMUs at most): "ds" (tether-agent, 2 vCPUs, the data disk as vda, a virtio NIC on
a private host bridge, a memballoon with a 2 s stats period) under tetherd and "tether-ds-ref",
the same under libvirt (on the same bridge); "ds-off" and "tether-ds-off" are defined, never
started. The bridge (ttdsPID, a free 10.231.N.1/24, no uplink: nothing leaves the host) is made
by the test and removed after it.

Checked: virsh's record format; tether's keys are libvirt's keys, in libvirt's order; the values
that do not change (state, balloon.current/maximum, vcpu.current/maximum, vcpu.N.state,
block.count, block.N.name, net.count) equal virsh's, the counters are whole numbers; the
balloon's guest statistics and the tap counters of the bridged NIC (the guest pings the host
bridge: its tap counts the packets, in the guest's direction, as libvirt shows them); each group option
alone; domains in command-line order; a shut-off domain (never started, then destroyed); the
--list-active filter; an unknown domain (virsh's exact error); --json; `tether top --once`
without a terminal; `tether top` in tmux: a row for the domain with its state, %CPU once two
samples exist, q and Ctrl-C end it and the terminal's mode is restored.

A missing reference (libvirt, tmux) is skipped, or a failure when CI=true.
Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (write, REPO, Results, Tether, AgentError, domain_xml,  # noqa: E402
                          load_guest_env, start_libvirtd)

R = Results()
check = R.check
CI = os.environ.get("CI") == "true"
LV_URI = "qemu:///system"
LV_IMAGES = "/var/lib/libvirt/images/tether-domstats"
LV_REF, LV_OFF = "tether-ds-ref", "tether-ds-off"
LV_SETUP_S = 300     # libvirtd start (capability probing) plus define and start, at most

# Keys whose values do not change while the guest runs: compared with virsh's exactly.
STABLE = re.compile(r"^(state\.state|state\.reason|balloon\.current|balloon\.maximum|"
                    r"vcpu\.current|vcpu\.maximum|vcpu\.\d+\.state|block\.count|"
                    r"block\.\d+\.name|net\.count)$")
# Keys virsh prints for a running domain that tether must print too.
NET_KEYS = ["net.0.name", "net.0.rx.bytes", "net.0.rx.pkts", "net.0.rx.errs", "net.0.rx.drop",
            "net.0.tx.bytes", "net.0.tx.pkts", "net.0.tx.errs", "net.0.tx.drop"]
EXPECTED_RUNNING = ["state.state", "state.reason", "cpu.time", "cpu.user", "cpu.system",
                    "balloon.current",
                    "balloon.maximum", "balloon.unused", "balloon.available", "balloon.usable",
                    "balloon.last-update", "balloon.rss", "vcpu.current", "vcpu.maximum",
                    "vcpu.0.state", "vcpu.0.time", "vcpu.0.delay", "vcpu.1.state", "vcpu.1.time",
                    "vcpu.1.delay", "net.count"] + NET_KEYS + [
                    "block.count", "block.0.name", "block.0.rd.reqs",
                    "block.0.rd.bytes", "block.0.rd.times", "block.0.wr.reqs", "block.0.wr.bytes",
                    "block.0.wr.times", "block.0.fl.reqs", "block.0.fl.times"]
# The private bridge of the NICs: the host's end, and the address the test gives the guest.
BRIDGE = f"ttds{os.getpid() % 100000}"


def free_subnet():
    """A 10.231.N.0/24 that no interface of this host uses (another run of this test may hold
    one: two bridges on one subnet would route the guest's replies out of the wrong one)."""
    used = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True,
                          text=True).stdout
    for k in range(250):
        n = (os.getpid() + k) % 250
        if f" 10.231.{n}." not in used:
            return f"10.231.{n}"
    return "10.231.250"


SUBNET = free_subnet()
BR_HOST, BR_GUEST = f"{SUBNET}.1", f"{SUBNET}.2"
DEVICES_EXTRA = f"""    <interface type='bridge'>
      <source bridge='{BRIDGE}'/>
      <model type='virtio'/>
    </interface>
    <memballoon model='virtio'>
      <stats period='2'/>
    </memballoon>
"""
# libvirt's balloon.* keys from the guest's balloon stats (printed only when QEMU has them).
BALLOON_STATS = {"balloon.swap_in", "balloon.swap_out", "balloon.major_fault",
                 "balloon.minor_fault", "balloon.unused", "balloon.available", "balloon.usable",
                 "balloon.last-update", "balloon.disk_caches", "balloon.hugetlb_pgalloc",
                 "balloon.hugetlb_pgfail"}
# virsh's group options and the key prefixes of each group.
GROUPS = {"--state": ("state.",), "--cpu-total": ("cpu.",), "--balloon": ("balloon.",),
          "--vcpu": ("vcpu.",), "--interface": ("net.",), "--block": ("block.",)}


def skip_or_fail(name, why):
    if CI:
        check(name, False, why + " (CI=true: references are required)")
    else:
        print(f"SKIP {name}: {why}", flush=True)


def run(argv, timeout=60):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 999, "", f"(no answer within {timeout} s)"
    return p.returncode, p.stdout, p.stderr


def records(out):
    """virsh domstats text: [(name, [(key, value), ...]), ...]; None if a line is malformed."""
    recs = []
    lines = out.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^Domain: '(.*)'$", line)
        if m:
            recs.append((m.group(1), []))
            continue
        m = re.match(r"^  ([A-Za-z0-9_.-]+)=(.*)$", line)
        if m and recs:
            recs[-1][1].append((m.group(1), m.group(2)))
            continue
        if line != "":
            return None
    return recs


def in_order(keys, ref_keys):
    """keys appear in ref_keys' relative order."""
    pos = [ref_keys.index(k) for k in keys if k in ref_keys]
    return pos == sorted(pos)


def group_of(key):
    for flag, prefixes in GROUPS.items():
        if key.startswith(prefixes):
            return flag
    return None


class Libvirt:
    """libvirtd (started only if not running, stopped only if we started it) and our domains."""

    def __init__(self):
        self.started = []
        self.domains = []

    def virsh(self, *args, timeout=60):
        r = run(["virsh", "-c", LV_URI, *args], timeout)
        # Other suites start and stop libvirtd on this machine: reconnect, once, if it went.
        if r[0] != 0 and args[0] != "version" and re.search(
                r"Disconnected from|Failed to connect socket|End of file while reading", r[2]):
            self.ensure()
            r = run(["virsh", "-c", LV_URI, *args], timeout)
        return r

    def ensure(self):
        if shutil.which("virsh") is None or shutil.which("libvirtd") is None:
            return False
        ok, pids = start_libvirtd()
        if ok:
            self.started.extend(pids)
        else:
            print(f"libvirtd: {pids}")
        return self.virsh("version", timeout=20)[0] == 0

    def define(self, name, genv, workdir, start):
        os.makedirs(LV_IMAGES, exist_ok=True)
        paths = {}
        for key in ("TETHER_GUEST_KERNEL", "TETHER_GUEST_INITRD", "TETHER_GUEST_DATA"):
            paths[key] = os.path.join(LV_IMAGES, f"{name}-{os.path.basename(genv[key])}")
            shutil.copyfile(genv[key], paths[key])
        xml = f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{paths['TETHER_GUEST_KERNEL']}</kernel>
    <initrd>{paths['TETHER_GUEST_INITRD']}</initrd>
    <cmdline>{genv['TETHER_GUEST_APPEND']}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{paths['TETHER_GUEST_DATA']}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
{DEVICES_EXTRA}  </devices>
</domain>
"""
        path = write(os.path.join(workdir, f"{name}.xml"), xml)
        self.virsh("destroy", name)
        self.virsh("undefine", name)
        self.domains.append(name)  # before define: cleanup may run while define hangs
        rc, out, err = self.virsh("define", path, timeout=LV_SETUP_S)
        if rc != 0:
            return err.strip()
        if start:
            rc, out, err = self.virsh("start", name, timeout=LV_SETUP_S)
            return None if rc == 0 else err.strip()
        return None

    def cleanup(self):
        for name in self.domains:
            self.virsh("destroy", name)
            self.virsh("undefine", name)
        shutil.rmtree(LV_IMAGES, ignore_errors=True)
        for pid in reversed(self.started):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


class Tmux:
    """A tmux server of our own (-L), so that nobody else's sessions are touched."""

    def __init__(self, root):
        self.sock = f"tt-domstats-{os.getpid()}"
        self.root = root

    def __call__(self, *args):
        return run(["tmux", "-L", self.sock, *args], 20)

    def alive(self, session):
        return self("has-session", "-t", session)[0] == 0

    def pane(self, session):
        return self("capture-pane", "-p", "-t", session)[1]

    def wait_pane(self, session, pred, timeout):
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.pane(session)
            if pred(text):
                return text
            time.sleep(0.3)
        return text

    def wait_gone(self, session, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive(session):
                return True
            time.sleep(0.1)
        return False

    def cleanup(self):
        self("kill-server")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--no-libvirt", action="store_true", help="skip the comparison with virsh")
    ap.add_argument("--keep", action="store_true", help="keep the temp root")
    a = ap.parse_args()

    t = Tether(a.tetherd, a.tether, "/tmp/tt-domstats-")
    lv = None if a.no_libvirt else Libvirt()
    tmux = Tmux(t.root)
    for cmd in (["link", "add", BRIDGE, "type", "bridge"],
                ["addr", "add", f"{BR_HOST}/24", "dev", BRIDGE], ["link", "set", BRIDGE, "up"]):
        rc, out, err = run(["ip", *cmd])
        if rc != 0:
            print(f"not ok - cannot set up bridge {BRIDGE}: ip {' '.join(cmd)}: {err}")
            run(["ip", "link", "del", BRIDGE])
            return 1
    try:
        return R.run_suite(t, body, a, lv, tmux, keep=a.keep)
    finally:
        run(["ip", "link", "del", BRIDGE])
        if shutil.which("tmux"):
            tmux.cleanup()
        if lv:
            lv.cleanup()


def wait_record(t, pred, timeout, *args):
    """tether domstats ARGS until pred(dict of the first record) holds; that dict."""
    deadline = time.monotonic() + timeout
    kv = {}
    while time.monotonic() < deadline:
        rc, out, err, recs = tether_records(t, *args)
        kv = dict(recs[0][1]) if recs else {}
        if pred(kv):
            break
        time.sleep(0.5)
    return kv


def net_and_balloon(t):
    """The bridged NIC's tap counters and the balloon's guest statistics of ds."""
    live = t.cli("dumpxml", "ds")[1]
    m = re.search(r"<target dev='(vnet\d+)'/>", live)
    tap = m.group(1) if m else None
    check("ds: the live XML names its tap (vnetN)", tap is not None, live)
    if tap:
        master = os.path.realpath(f"/sys/class/net/{tap}/master")
        check(f"the tap {tap} is on the bridge and up", os.path.basename(master) == BRIDGE and
              int(open(f"/sys/class/net/{tap}/flags").read(), 16) & 1 == 1, master)
        mac = open(f"/sys/class/net/{tap}/address").read().strip()
        m = re.search(r"<mac address='([0-9a-f:]+)'/>", live)
        check("the tap's MAC is the guest's with fe:, as libvirt's",
              m is not None and mac == "fe" + m.group(1)[2:], f"{mac} vs {m and m.group(1)}")
    a = t.agent("ds")
    st = a.exec("/bin/sh", ["-c", f"ip addr add {BR_GUEST}/24 dev eth0 && ip link set eth0 up "
                                  f"&& ping -c 5 -W 2 {BR_HOST}"], timeout=60)
    check("the guest pings the host's end of the bridge", st.get("exitcode") == 0, repr(st))
    kv = wait_record(t, lambda kv: int(kv.get("net.0.tx.pkts", 0)) >= 5 and
                     int(kv.get("net.0.rx.pkts", 0)) >= 5, 20, "--interface", "ds")
    check("domstats --interface: net.count 1, net.0.name the tap",
          kv.get("net.count") == "1" and kv.get("net.0.name") == tap, repr(kv))
    check("domstats: the 5 pings and their 5 replies counted (tx from the guest, rx to it)",
          int(kv.get("net.0.tx.pkts", 0)) >= 5 and int(kv.get("net.0.rx.pkts", 0)) >= 5 and
          int(kv.get("net.0.tx.bytes", 0)) >= 5 * 98, repr(kv))
    if tap:
        sys_rx = int(open(f"/sys/class/net/{tap}/statistics/rx_packets").read())
        sys_tx = int(open(f"/sys/class/net/{tap}/statistics/tx_packets").read())
        check("domstats' tx/rx are the tap's rx/tx (the guest's direction), never ahead",
              0 < int(kv.get("net.0.tx.pkts", 0)) <= sys_rx and
              0 < int(kv.get("net.0.rx.pkts", 0)) <= sys_tx,
              f"{kv} vs /sys rx {sys_rx} tx {sys_tx}")
    kv = wait_record(t, lambda kv: "balloon.available" in kv and
                     int(kv.get("balloon.last-update", 0)) > 0, 30, "--balloon", "ds")
    avail, unused = int(kv.get("balloon.available", 0)), int(kv.get("balloon.unused", 0))
    check("balloon: the guest's statistics (available <= 256 MiB, unused below it, an update "
          "time)", 100000 < avail <= 262144 and 0 < unused < avail and
          abs(int(kv.get("balloon.last-update", 0)) - time.time()) < 60, repr(kv))
    # The same through /metrics (tether_domain_*: the libvirt exporters' side).
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{t.metrics_port}/metrics",
                                      timeout=5).read().decode()
    except OSError as e:
        body = ""
        check("/metrics answers", False, str(e))

    def metric(name, **labels):
        lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
        m = re.search(r"^" + re.escape(f"{name}{{{lab}}}") + r" (\S+)$", body, re.M)
        return float(m.group(1)) if m else None

    tx = metric("tether_domain_interface_transmit_packets_total", domain="ds", device=tap)
    rx = metric("tether_domain_interface_receive_packets_total", domain="ds", device=tap)
    check("/metrics: the tap's packets, the guest's direction, at least the pings",
          tx is not None and rx is not None and tx >= 5 and rx >= 5, f"tx {tx} rx {rx}")
    total = metric("tether_domain_balloon_total_bytes", domain="ds")
    check("/metrics: the balloon's guest total", total is not None and
          abs(total - avail * 1024) <= 64 * 1024 * 1024, f"{total} vs {avail} KiB")
    user = metric("tether_domain_cpu_user_seconds_total", domain="ds")
    system = metric("tether_domain_cpu_system_seconds_total", domain="ds")
    cpu = metric("tether_domain_cpu_seconds_total", domain="ds")
    check("/metrics: QEMU's user + system time is its CPU time",
          None not in (user, system, cpu) and user > 0 and abs(user + system - cpu) < 0.02,
          f"user {user} system {system} cpu {cpu}")
    try:
        m = re.search(r"MemTotal:\s+(\d+)", a.read_file("/proc/meminfo").decode())
        check("balloon.available is the guest's MemTotal", m and avail == int(m.group(1)),
              f"{avail} vs MemTotal {m and m.group(1)}")
    except AgentError as e:
        check("balloon.available is the guest's MemTotal", False, str(e))


def tether_records(t, *args):
    rc, out, err = t.cli("domstats", *args)
    return rc, out, err, records(out) if rc == 0 else None


def wait_sources(t, name, want, timeout):
    """Until the daemon's domstats reply for NAME has every source in want."""
    deadline = time.monotonic() + timeout
    have = set()
    while time.monotonic() < deadline:
        r = t.api("domstats", {"domains": [name]})
        if "return" in r and r["return"]:
            have = set(r["return"][0].get("sources", {}))
            if want <= have:
                return have
        time.sleep(0.5)
    return have


def body(t, a, lv, tmux):
    genv = load_guest_env(a.guest)
    root = t.root
    # Poll often so that the test sees two samples soon (tetherd reads ROOT/etc/tether).
    os.makedirs(os.path.join(root, "etc/tether"), exist_ok=True)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    t.metrics_port = sock.getsockname()[1]
    sock.close()
    write(os.path.join(root, "etc/tether/tetherd.conf"),
          "[monitor]\nhost-interval = 2\nstats-interval = 2\n"
          f"metrics-listen = 127.0.0.1:{t.metrics_port}\n")
    t.start_daemon()

    disk = os.path.join(root, "ds.img")
    shutil.copyfile(genv["TETHER_GUEST_DATA"], disk)
    for name, xml in (("ds", domain_xml("ds", genv, disk, memory_mib=256, vcpus=2,
                                        devices_extra=DEVICES_EXTRA)),
                      ("ds-off", domain_xml("ds-off", genv, memory_mib=256, vcpus=2))):
        rc, out, err = t.cli("define", write(os.path.join(root, f"{name}.xml"), xml))
        check(f"define {name}", rc == 0, out + err)

    # ---- a bridge that does not exist: a clear error, no tap left behind ----
    before = set(os.listdir("/sys/class/net"))
    xml = domain_xml("ds-nobr", genv, memory_mib=128, agent=False,
                     devices_extra=DEVICES_EXTRA.replace(BRIDGE, "ttnosuchbr0"))
    rc, out, err = t.cli("create", write(os.path.join(root, "ds-nobr.xml"), xml))
    check("create with a missing bridge: the error names the tap, the bridge and the cause",
          rc == 1 and re.search(r"cannot add 'vnet\d+' to bridge 'ttnosuchbr0': No such device",
                                err) is not None, f"rc {rc} {err}")
    check("... and leaves no tap behind", set(os.listdir("/sys/class/net")) == before,
          repr(set(os.listdir("/sys/class/net")) ^ before))
    rc, out, err = t.cli("domstate", "ds-nobr")
    check("... and no domain (create is transient)", rc == 1, out + err)

    # ---- before anything runs: a defined, never-started domain ----
    rc, out, err, recs = tether_records(t, "ds-off")
    check("shut-off domain: one record, virsh's format",
          rc == 0 and recs is not None and len(recs) == 1 and recs[0][0] == "ds-off" and
          out.endswith("\n\n"), f"rc {rc} {out!r} {err}")
    off_keys = dict(recs[0][1]) if recs else {}
    check("shut-off domain: state 5 (shut off), balloon and vcpu counts, nothing live",
          off_keys == {"state.state": "5", "state.reason": "0", "balloon.current": "262144",
                       "balloon.maximum": "262144", "vcpu.current": "2", "vcpu.maximum": "2"},
          repr(off_keys))

    # The libvirt twin comes up meanwhile: a libvirtd that this test has to start probes
    # QEMU's capabilities first, which takes a minute or more on a loaded machine.
    lv_state = {}

    def lv_setup():
        if not lv.ensure():
            lv_state["skip"] = "virsh/libvirtd missing or not answering"
            return
        lv_state["error"] = (lv.define(LV_REF, genv, root, True) or
                             lv.define(LV_OFF, genv, root, False))

    lv_thread = None
    if lv is not None:
        lv_thread = threading.Thread(target=lv_setup, daemon=True)
        lv_thread.start()
    rc, out, err = t.cli("start", "ds")
    check("start ds", rc == 0, out + err)

    try:
        t.agent("ds").wait(150)
        check("ds: agent answers", True)
    except AgentError as e:
        check("ds: agent answers", False, str(e))
    have = wait_sources(t, "ds", {"host", "load", "memory"}, 60)
    check("ds: monitor has host, load and memory samples", {"host", "load", "memory"} <= have,
          repr(sorted(have)))
    net_and_balloon(t)

    # ---- the full record of a running domain ----
    rc, out, err, recs = tether_records(t, "ds")
    check("running domain: one record, virsh's format",
          rc == 0 and recs is not None and len(recs) == 1 and recs[0][0] == "ds" and
          out.startswith("Domain: 'ds'\n") and out.endswith("\n\n") and err == "",
          f"rc {rc} {out!r} {err}")
    kv = recs[0][1] if recs else []
    keys = [k for k, _ in kv]
    tv = dict(kv)
    missing = [k for k in EXPECTED_RUNNING if k not in tv]
    check("running domain: every expected key", not missing, f"missing {missing}")
    check("running domain: no key twice", len(keys) == len(set(keys)), repr(keys))
    check("running domain: state running (booted)",
          (tv.get("state.state"), tv.get("state.reason")) == ("1", "1"), repr(tv))
    check("running domain: vcpu and balloon from the definition",
          (tv.get("vcpu.current"), tv.get("vcpu.maximum"), tv.get("balloon.current"),
           tv.get("balloon.maximum")) == ("2", "2", "262144", "262144"), repr(tv))
    bad = [k for k, v in kv if not re.fullmatch(r"\d+", v) and not k.endswith(".name")]
    check("running domain: every value a whole number (names aside)", not bad, repr(bad))
    check("running domain: block.0.name is vda", tv.get("block.0.name") == "vda", repr(tv))
    check("running domain: groups in libvirt's order",
          [g for g in dict.fromkeys(group_of(k) for k in keys)] ==
          [g for g in GROUPS if any(group_of(k) == g for k in keys)], repr(keys))

    have_lv = False
    if lv_thread is not None:
        lv_thread.join(LV_SETUP_S)
        if "skip" in lv_state:
            skip_or_fail("libvirt available", lv_state["skip"])
        else:
            e = lv_state.get("error", f"not up within {LV_SETUP_S} s")
            have_lv = check("libvirt twin defined and started", e is None, e or "")
    if have_lv:
        lv_cmp(t, lv, keys, tv)

    # ---- each group alone, and two groups ----
    for flag, prefixes in GROUPS.items():
        rc, out, err, recs = tether_records(t, flag, "ds")
        got = [k for k, _ in recs[0][1]] if recs else None
        want = [k for k in keys if k.startswith(prefixes)]
        # cpu/vcpu/block counters may gain no key between calls: compare key lists.
        check(f"domstats {flag}: only its group's keys", rc == 0 and got == want,
              f"got {got} want {want}")
    rc, out, err, recs = tether_records(t, "--state", "--vcpu", "ds")
    got = [k for k, _ in recs[0][1]] if recs else None
    check("domstats --state --vcpu: both groups, in libvirt's order",
          got == [k for k in keys if k.startswith(("state.", "vcpu."))], repr(got))

    # ---- several domains, filters, errors ----
    rc, out, err, recs = tether_records(t, "--state", "ds-off", "ds")
    check("two domains: command-line order, a blank line between and after",
          rc == 0 and recs is not None and [r[0] for r in recs] == ["ds-off", "ds"] and
          "\n\nDomain: 'ds'\n" in out and out.endswith("\n\n"), repr(out))
    rc, out, err, recs = tether_records(t, "--state")
    check("no domain: every domain",
          rc == 0 and recs is not None and sorted(r[0] for r in recs) == ["ds", "ds-off"],
          repr(out))
    rc, out, err, recs = tether_records(t, "--state", "--list-active")
    check("--list-active: only the running domain",
          rc == 0 and recs is not None and [r[0] for r in recs] == ["ds"], repr(out))
    rc, out, err = t.cli("domstats", "--list-active", "ds-off")
    check("--list-active with a shut-off domain: nothing but virsh's newline",
          rc == 0 and out == "\n", repr(out))
    rc, out, err = t.cli("domstats", "--state", "--list-inactive")
    check("--list-inactive: only the shut-off domain",
          rc == 0 and (records(out) or [("", [])])[0][0] == "ds-off" and len(records(out)) == 1,
          repr(out))
    rc, out, err = t.cli("domstats", "ds", "nosuch")
    check("unknown domain: virsh's error, exit 1, virsh's newline",
          rc == 1 and err == "error: failed to get domain 'nosuch'" and out == "\n",
          f"rc {rc} {out!r} {err!r}")
    if have_lv:
        vrc, vout, verr = lv.virsh("domstats", LV_REF, "nosuch")
        check("... the same as virsh's", (vrc, vout, verr.strip()) == (rc, out, err),
              f"virsh rc {vrc} {vout!r} {verr!r}")
        vrc, vout, _ = lv.virsh("domstats", "--list-active", LV_OFF)
        check("--list-active with a shut-off domain: the same as virsh", vout == "\n",
              repr(vout))
    rc, out, err = t.cli("domstats", "--memory", "ds")
    check("an option tether does not have: an error", rc == 1 and "--memory" in err, err)

    # ---- --json ----
    rc, out, err = t.cli("domstats", "--json", "ds", "ds-off")
    try:
        js = json.loads(out)
    except ValueError:
        js = None
    check("--json: an array of {name, key: value}",
          isinstance(js, list) and [d.get("name") for d in js] == ["ds", "ds-off"] and
          all(isinstance(v, int) for k, v in js[0].items() if not k.endswith("name")),
          out[:300])
    if js:
        check("--json: the keys of the text output", list(js[0])[1:] == keys or
              set(js[0]) - {"name"} >= set(EXPECTED_RUNNING), repr(list(js[0])))

    # ---- tether top ----
    rc, out, err = t.cli("top", "--once")
    lines = out.split("\n")
    row = next((ln for ln in lines if ln.split()[:1] == ["ds"]), "")
    off = next((ln for ln in lines if ln.split()[:1] == ["ds-off"]), "")
    check("top --once (not a terminal): header, a row per domain, no escapes",
          rc == 0 and "\033" not in out and any(ln.split()[:2] == ["NAME", "STATE"]
                                                  for ln in lines) and
          " running " in row and " shut off " in off, repr(out))
    check("top --once: ds has memory, load and agent ok",
          row.split()[-1:] == ["ok"] and re.search(r"\d(\.\d)?[KMG] ", row) is not None, row)
    rc, out, err = t.cli("top", "--once", "--json", "--sort", "name")
    try:
        js = json.loads(out)
    except ValueError:
        js = None
    check("top --once --json --sort name", isinstance(js, list) and
          [d["name"] for d in js] == ["ds", "ds-off"] and js[0]["state"] == "running", out[:300])
    rc, out, err = t.cli("top", "--sort", "bogus")
    check("top --sort bogus: an error", rc == 1 and "bogus" in err, err)

    if shutil.which("tmux") is None:
        skip_or_fail("tmux available", "tmux is not installed")
    else:
        top_tmux(t, tmux)

    # ---- destroyed: shut off (destroyed), as libvirt ----
    rc, out, err = t.cli("destroy", "ds")
    check("destroy ds", rc == 0, out + err)
    rc, out, err, recs = tether_records(t, "ds")
    kv = dict(recs[0][1]) if recs else {}
    check("destroyed domain: state 5 reason 2, no live keys",
          kv.get("state.state") == "5" and kv.get("state.reason") == "2" and
          not any(k.startswith(("cpu.", "block.", "net.", "vcpu.0")) for k in kv), repr(kv))
    if have_lv:
        lv.virsh("destroy", LV_REF)
        vrc, vout, _ = lv.virsh("domstats", "--state", "--balloon", "--vcpu", LV_REF)
        vrecs = records(vout) or [("", [])]
        vkv = dict(vrecs[0][1])
        check("destroyed domain: state, balloon and vcpu keys equal virsh's",
              {k: v for k, v in kv.items() if STABLE.match(k)} ==
              {k: v for k, v in vkv.items() if STABLE.match(k)}, f"{kv} vs virsh {vkv}")
        vrc, vout, _ = lv.virsh("domstats", LV_OFF)
        vkv = dict((records(vout) or [("", [])])[0][1])
        check("never-started domain: equal to virsh on the keys both print",
              all(vkv.get(k) == v for k, v in off_keys.items()),
              f"{off_keys} vs virsh {vkv}")


def lv_cmp(t, lv, keys, tv):
    """tether domstats ds against virsh domstats of the libvirt twin."""
    vrc, vout, verr = lv.virsh("domstats", LV_REF)
    vrecs = records(vout)
    check("virsh domstats of the twin", vrc == 0 and vrecs is not None and len(vrecs) == 1,
          f"rc {vrc} {verr}")
    if not vrecs:
        return
    vkv = vrecs[0][1]
    vkeys = [k for k, _ in vkv]
    vv = dict(vkv)
    extra = [k for k in keys if k not in vv and k not in BALLOON_STATS]
    check("every tether key is a key virsh prints", not extra, f"not in virsh: {extra}")
    missing = [k for k in EXPECTED_RUNNING if k not in vv]
    check("(reference) virsh prints every expected key", not missing, f"missing {missing}")
    check("tether's keys in virsh's order", in_order(keys, vkeys),
          f"tether {keys}\nvirsh {vkeys}")
    diff = {k: (tv[k], vv.get(k)) for k in keys if STABLE.match(k) and tv[k] != vv.get(k)}
    check("stable values equal virsh's (state, balloon.current/maximum, vcpu counts and "
          "states, block.count/name, net.count)", not diff, repr(diff))
    names = [k for k in keys if k in vv and k.endswith(".name") and not STABLE.match(k)]
    check("tap names: vnetN in both (each picks the next free one)",
          names == ["net.0.name"] and all(re.fullmatch(r"vnet\d+", tv[k]) and
                                          re.fullmatch(r"vnet\d+", vv[k]) for k in names),
          repr({k: (tv[k], vv[k]) for k in names}))
    both = [k for k in keys if k in vv and not STABLE.match(k) and k not in names]
    check("changing values: whole numbers in both",
          all(re.fullmatch(r"\d+", tv[k]) and re.fullmatch(r"\d+", vv[k]) for k in both),
          repr({k: (tv[k], vv[k]) for k in both}))
    for flag in GROUPS:
        vrc, vout, _ = lv.virsh("domstats", flag, LV_REF)
        vgot = [k for k, _ in (records(vout) or [("", [])])[0][1]]
        rc, out, err, recs = tether_records(t, flag, "ds")
        got = [k for k, _ in recs[0][1]] if recs else []
        check(f"domstats {flag}: tether's keys are virsh's, in order",
              all(k in vgot or k in BALLOON_STATS for k in got) and in_order(got, vgot) and
              all(group_of(k) == flag for k in vgot if k in got), f"tether {got} virsh {vgot}")


def top_tmux(t, tmux):
    """tether top in a real terminal: rows, %CPU, q and Ctrl-C, the terminal mode restored."""
    for how, keys in (("q", ["q"]), ("Ctrl-C", ["C-c"])):
        s = f"top-{how.lower().replace('-', '')}"
        before, after, rcfile = (os.path.join(t.root, f"{s}.{x}") for x in ("before", "after",
                                                                            "rc"))
        # The shell ignores SIGINT (top sets its own handler) so that it records the mode after.
        cmd = (f"trap '' INT; stty -g > {before}; {t.tether} --root {t.root} top --interval 1; "
               f"echo $? > {rcfile}; stty -g > {after}")
        rc, out, err = tmux("new-session", "-d", "-s", s, "-x", "200", "-y", "50", cmd)
        if not check(f"tmux session for top ({how})", rc == 0, err):
            continue

        def ds_row(text):
            return next((ln for ln in text.split("\n") if ln.split()[:1] == ["ds"]), None)

        text = tmux.wait_pane(s, lambda x: ds_row(x) is not None, 15)
        row = ds_row(text) or ""
        check(f"top ({how}): a row for ds with its state", " running " in row,
              text.strip()[:600])
        check(f"top ({how}): the header", "NAME" in text and "%CPU" in text and
              "tether top" in text, text[:300])
        if how == "q":
            # Two host samples (every 2 s here) give a CPU rate.
            text = tmux.wait_pane(s, lambda x: re.match(r"^\S+\s+running\s+\d+\.\d\s",
                                                        ds_row(x) or "") is not None, 15)
            check("top: %CPU of ds from two samples", re.match(
                r"^\S+\s+running\s+\d+\.\d\s", ds_row(text) or "") is not None,
                ds_row(text) or text[:300])
            tmux("send-keys", "-t", s, "m")
            text = tmux.wait_pane(s, lambda x: "sort: mem" in x, 5)
            check("top: the m key sorts by memory", "sort: mem" in text, text[:200])
        tmux("send-keys", "-t", s, *keys)
        gone = tmux.wait_gone(s, 5)
        check(f"top: {how} ends it and the pane exits", gone)
        if not gone:
            tmux("kill-session", "-t", s)
            continue
        try:
            st = open(rcfile).read().strip()
            b, a = open(before).read(), open(after).read()
        except OSError as e:
            check(f"top ({how}): exit status and terminal mode recorded", False, str(e))
            continue
        check(f"top ({how}): exit status 0", st == "0", st)
        check(f"top ({how}): terminal mode restored", b == a, f"{b!r} -> {a!r}")


if __name__ == "__main__":
    sys.exit(main())
