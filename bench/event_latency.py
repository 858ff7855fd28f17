#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""event_latency.py: how soon an event reaches the printed line, tether against libvirt.

One running domain of the test guest on each side (QEMU under TCG, direct kernel boot): a
private tetherd (temp --root) with `tether --json event DOM --event lifecycle --loop`, and the
system libvirtd with `virsh event DOM --event lifecycle --loop`. Each side is driven over one
persistent connection (tetherd's control socket; an interactive `virsh` shell), suspend and
resume in turn, in ABBA rounds (T L L T). Per step:

  rtt        the verb's own round trip (sent -> reply)
  e2e        sent -> the event's line printed by the event CLI
  after      e2e - rtt: how long after the reply the line is printed (can be < 0)
  stamp      (tether only) the event's timestamp in tetherd -> the line printed; tetherd takes
             it as it applies the transition, at QEMU's reply to stop/cont (QMP STOP/RESUME
             come just before): the QMP-event-to-printed-line latency

The reference against itself (its first round against its second) is the noise floor. Exits 1
when tether's median stamp latency is 5 ms or more (the goal), 2 when it cannot run.

  python3 bench/event_latency.py [--tetherd build/src/host/tetherd]
        [--tether build/src/cli/tether] [--guest build/guest] [--steps 20]

Needs root, a running libvirtd (qemu:///system; start it with tools/libvirtd-start.sh)
and the test guest (tools/mkguest.sh).
"""

import argparse
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
URI = "qemu:///system"
IMAGES = "/var/lib/libvirt/images/tether-event-bench"
DOM = "evbench"


def log(msg):
    print(f"event-latency: {msg}", file=sys.stderr, flush=True)


def load_env(guest):
    env = {}
    for line in open(os.path.join(guest, "guest.env")):
        line = line.strip()
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v.strip("'")
    return env


def domain_xml(name, kernel, initrd, append, emulator=True):
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{append}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    {"<emulator>/usr/bin/qemu-system-x86_64</emulator>" if emulator else ""}
    <memballoon model='none'/>
  </devices>
</domain>
"""


class Lines:
    """Lines from a pipe, with a deadline (select on the fd, our own buffer)."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def next(self, timeout=30):
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line within %s s" % timeout)
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise EOFError("the stream ended")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode(), time.time()


class TetherSide:
    name = "tether"

    def __init__(self, a, env):
        self.a = a
        self.root = tempfile.mkdtemp(prefix="evbench-")
        self.log = open(os.path.join(self.root, "tetherd.log"), "w")
        self.daemon = subprocess.Popen([a.tetherd, "--root", self.root], stdout=self.log,
                                       stderr=subprocess.STDOUT)
        self.sock_path = os.path.join(self.root, "run/tether/tetherd.sock")
        end = time.monotonic() + 10
        while not os.path.exists(self.sock_path):
            if time.monotonic() > end or self.daemon.poll() is not None:
                raise RuntimeError("tetherd did not come up")
            time.sleep(0.05)
        xml = os.path.join(self.root, "d.xml")
        with open(xml, "w") as f:
            f.write(domain_xml(DOM, env["TETHER_GUEST_KERNEL"], env["TETHER_GUEST_INITRD"],
                               env["TETHER_GUEST_APPEND"], emulator=False))
        self.cli("define", xml)
        self.cli("start", DOM)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.sock_path)
        self.replies = Lines(self.sock.makefile("rb"))
        self.events = subprocess.Popen([a.tether, "--root", self.root, "--json", "event", DOM,
                                        "--event", "lifecycle", "--loop"],
                                       stdout=subprocess.PIPE)
        self.stream = Lines(self.events.stdout)
        self.wait_subscribed()

    def cli(self, *args):
        p = subprocess.run([self.a.tether, "--root", self.root, *args], capture_output=True,
                           text=True, timeout=120)
        if p.returncode:
            raise RuntimeError(f"tether {' '.join(args)}: {p.stderr}")

    def wait_subscribed(self):
        wait_live(self)

    def step(self, verb, timeout=30):
        want = "Paused" if verb == "suspend" else "Unpaused"
        t0 = time.time()
        self.sock.sendall(json.dumps({"execute": verb, "arguments": {"domain": DOM}}).encode()
                          + b"\n")
        reply, t1 = self.replies.next()
        if "return" not in json.loads(reply):
            raise RuntimeError(f"{verb}: {reply}")
        while True:
            line, t2 = self.stream.next(timeout)
            m = json.loads(line)
            if m.get("data", {}).get("detail") == want:
                ts = m["timestamp"]["seconds"] + m["timestamp"]["microseconds"] / 1e6
                return t1 - t0, t2 - t0, t2 - ts

    def close(self):
        for p in (self.events,):
            p.terminate()
            p.wait(10)
        self.sock.close()
        subprocess.run([self.a.tether, "--root", self.root, "destroy", DOM],
                       capture_output=True, timeout=60)
        self.daemon.terminate()
        self.daemon.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


class VirshSide:
    name = "libvirt"

    def __init__(self, a, env):
        os.makedirs(IMAGES, exist_ok=True)
        kernel, initrd = os.path.join(IMAGES, "vmlinux"), os.path.join(IMAGES, "initrd.img")
        shutil.copyfile(env["TETHER_GUEST_KERNEL"], kernel)
        shutil.copyfile(env["TETHER_GUEST_INITRD"], initrd)
        self.xml = os.path.join(IMAGES, "d.xml")
        with open(self.xml, "w") as f:
            f.write(domain_xml(DOM, kernel, initrd, env["TETHER_GUEST_APPEND"]))
        self.virsh("destroy", DOM, check=False)
        self.virsh("undefine", DOM, check=False)
        self.virsh("define", self.xml)
        self.virsh("start", DOM)
        self.shell = subprocess.Popen(["stdbuf", "-oL", "virsh", "-c", URI], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.replies = Lines(self.shell.stdout)
        self.events = subprocess.Popen(["stdbuf", "-oL", "virsh", "-c", URI, "event", DOM, "--event",
                                        "lifecycle", "--loop"], stdout=subprocess.PIPE)
        self.stream = Lines(self.events.stdout)
        wait_live(self)

    def virsh(self, *args, check=True):
        p = subprocess.run(["virsh", "-c", URI, *args], capture_output=True, text=True,
                           timeout=120)
        if check and p.returncode:
            raise RuntimeError(f"virsh {' '.join(args)}: {p.stderr}")

    def step(self, verb, timeout=30):
        want = ": Suspended Paused" if verb == "suspend" else ": Resumed Unpaused"
        done = "suspended" if verb == "suspend" else "resumed"
        t0 = time.time()
        self.shell.stdin.write(f"{verb} {DOM}\n".encode())
        self.shell.stdin.flush()
        while True:
            line, t1 = self.replies.next()
            if line.startswith(f"Domain '{DOM}' {done}"):
                break
        while True:
            line, t2 = self.stream.next(timeout)
            if line.endswith(want):
                return t1 - t0, t2 - t0, None

    def close(self):
        self.events.terminate()
        self.events.wait(10)
        self.shell.stdin.close()
        self.shell.wait(10)
        self.virsh("destroy", DOM, check=False)
        self.virsh("undefine", DOM, check=False)
        shutil.rmtree(IMAGES, ignore_errors=True)


def wait_live(side):
    """Until the event CLI is subscribed: a suspend whose event arrives (the CLI prints
    nothing before the first event, so its subscription cannot be seen otherwise)."""
    for _ in range(20):
        try:
            side.step("suspend", timeout=2)
            break
        except TimeoutError:
            # Not subscribed yet: the event went to nobody. Resume (its event may come).
            resume_quietly(side)
    else:
        raise RuntimeError(f"{side.name}: the event stream never came up")
    side.step("resume")


def resume_quietly(side):
    """resume, without waiting for its event (the stream may not be live yet)."""
    try:
        side.step("resume", timeout=1)
    except TimeoutError:
        pass


def run_round(side, steps):
    out = {"rtt": [], "e2e": [], "after": [], "stamp": []}
    for i in range(steps):
        for verb in ("suspend", "resume"):
            rtt, e2e, stamp = side.step(verb)
            out["rtt"].append(rtt * 1e3)
            out["e2e"].append(e2e * 1e3)
            out["after"].append((e2e - rtt) * 1e3)
            if stamp is not None:
                out["stamp"].append(stamp * 1e3)
    return out


def p99(v):
    s = sorted(v)
    return s[min(len(s) - 1, int(round(0.99 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.path.join(REPO, "build/guest"))
    ap.add_argument("--steps", type=int, default=20, help="suspend+resume pairs per round")
    a = ap.parse_args()
    if os.geteuid() != 0:
        log("needs root")
        return 2
    if subprocess.run(["virsh", "-c", URI, "version"], capture_output=True).returncode:
        log("no libvirtd on qemu:///system (start it: tools/libvirtd-start.sh)")
        return 2
    env = load_env(a.guest)
    t = l = None
    try:
        t = TetherSide(a, env)
        l = VirshSide(a, env)
        res = {"tether": [], "libvirt": []}
        for side in (t, l, l, t):  # ABBA
            res[side.name].append(run_round(side, a.steps))
    except (RuntimeError, OSError, subprocess.TimeoutExpired, TimeoutError, EOFError) as e:
        log(f"cannot measure: {e}")
        return 2
    finally:
        for s in (t, l):
            if s:
                try:
                    s.close()
                except Exception as e:  # the other side still gets cleaned
                    log(f"cleanup of {s.name}: {e!r}")
    print(f"event latency, {a.steps} suspend+resume pairs per round, ABBA (T L L T), ms")
    print(f"{'side':<10}{'measure':<8}{'median':>9}{'p99':>9}")
    med = {}
    for name in ("tether", "libvirt"):
        for key in ("rtt", "e2e", "after", "stamp"):
            v = [x for r in res[name] for x in r[key]]
            if not v:
                continue
            med[(name, key)] = statistics.median(v)
            print(f"{name:<10}{key:<8}{statistics.median(v):9.2f}{p99(v):9.2f}")
    l1, l2 = (statistics.median(r["e2e"]) for r in res["libvirt"])
    print(f"noise floor: libvirt e2e round 2 / round 1 = {l2 / l1:.2f}")
    print(f"ratio e2e tether/libvirt = {med[('tether', 'e2e')] / med[('libvirt', 'e2e')]:.2f}")
    stamp = med[("tether", "stamp")]
    ok = stamp < 5.0
    print(f"target: tether event -> printed line median {stamp:.2f} ms < 5 ms: "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
