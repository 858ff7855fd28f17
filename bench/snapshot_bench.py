#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""snapshot_bench.py [--self] [--rounds N] [BUILD_DIR]

Benchmarks the snapshot verbs of tetherd + tether against libvirtd + virsh 9.0, side by side in
one run, on the same guest (type='qemu' TCG, 256 MiB, 1 vCPU, direct kernel boot of the test
guest, its ext4 data disk converted to qcow2, the agent channel, memballoon none):

  create   wall time of `snapshot-create-as D sN` of the running guest (memory + disk)
  revert   wall time of `snapshot-revert D sN` of the running guest

Each round takes snapshot sN on both sides and reverts to it, in ABBA order (T L in even
rounds, L T in odd ones), then deletes it untimed, so every sample is taken with one snapshot
in the image.
The table prints the medians, the ratio tether / libvirt, libvirt against itself (the medians
of two interleaved halves of its samples: the noise floor) and the target (<= 0.7); the exit
status is 1 when a target is missed or a side fails, 2 when the set-up fails.

  BUILD_DIR   meson build dir with src/host/tetherd and src/cli/tether (default: build)
  --self      harness check: virsh against virsh (a second libvirt domain); ratios ~1
  --rounds N  samples per side and measure (default 8)

Like bench/verbs-bench.sh it starts its own virtlogd + libvirtd in a private mount namespace
(private /run/libvirt, /etc/libvirt/qemu, /var/lib/libvirt/qemu, /var/cache/libvirt,
/var/log/libvirt under the run's temp dir) under bench/host_reaper.py, and its own tetherd
under a temp --root. Needs root, util-linux's unshare, qemu-img, virsh and the test guest
(TETHER_GUEST_ENV, default BUILD_DIR/guest/guest.env). Not a test: nothing runs it in CI.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
URI = "qemu:///system"
IMG = "/var/lib/libvirt/images/snapbench"
PING = '{"execute":"guest-ping"}'
TARGET = 0.7


def log(msg):
    print(f"snapshot-bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(msg)
    sys.exit(2)


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v.strip("'")
    return env


class Side:
    """One manager and its CLI: tether --root R, or virsh -c qemu:///system."""

    def __init__(self, key, kind, a):
        self.key, self.kind, self.a = key, kind, a
        self.dom = "snapbench-" + ("cand" if key == "T" else "ref")
        self.disk = os.path.join(IMG, self.dom + ".qcow2")

    def argv(self, *verb):
        if self.kind == "tether":
            return [self.a.tether, "--root", self.a.root, *verb]
        return ["virsh", "-c", URI, *verb]

    def run(self, *verb, timeout=300):
        try:
            return subprocess.run(self.argv(*verb), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(verb, 124, "", f"timed out after {timeout} s")

    def xml(self, genv):
        usb = "<controller type='usb' model='none'/>" if self.kind == "virsh" else ""
        return f"""<domain type='qemu'>
  <name>{self.dom}</name>
  <memory unit='MiB'>256</memory>
  <currentMemory unit='MiB'>256</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{IMG}/vmlinux</kernel>
    <initrd>{IMG}/initrd.img</initrd>
    <cmdline>{genv['TETHER_GUEST_APPEND']}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {usb}
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{self.disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def median(v):
    return statistics.median(v) if v else None


def halves(v):
    """libvirt against itself: medians of its even rounds' samples over its odd rounds'."""
    a = v[0::2]
    b = v[1::2]
    return median(a) / median(b) if a and b else None


def qemu_job_ms(logfile, qcmd):
    """The durations of tetherd's QEMU jobs of kind qcmd, sent -> concluded, from its log."""
    sent, out = {}, []
    try:
        lines = open(logfile, errors="replace").read().splitlines()
    except OSError:
        return out
    for line in lines:
        m = re.match(r"^(\d+\.\d+): tetherd: debug: .*: QEMU job (\S+): (.*)$", line)
        if not m:
            continue
        t, job, what = float(m.group(1)), m.group(2), m.group(3)
        if what == qcmd + " sent":
            sent[job] = t
        elif what == "concluded" and job in sent:
            out.append((t - sent.pop(job)) * 1000)
    return out


def abba(i):
    """Round i's order: T L, then L T, ... (so the pairs of rounds read T L L T)."""
    return ("T", "L") if i % 2 == 0 else ("L", "T")


# ---- the private libvirtd, in this process's own mount namespace (bench/host_reaper.py) ----
def start_private_libvirt(tmp):
    """bench/host_reaper.py: libvirtd + virtlogd with state folders under tmp/libvirt."""
    lv = os.path.join(tmp, "libvirt")
    os.makedirs(lv, exist_ok=True)
    out = open(os.path.join(lv, "reaper.out"), "w")
    reaper = subprocess.Popen([sys.executable, os.path.join(HERE, "host_reaper.py"), lv],
                              stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and reaper.poll() is None:
        if "ready\n" in open(os.path.join(lv, "reaper.out")).read():
            return reaper, os.path.join(lv, "pid")
        time.sleep(0.1)
    die("cannot start a private libvirtd: " + open(os.path.join(lv, "reaper.out")).read())


def stop_private_libvirt(reaper, piddir):
    for f in ("libvirtd.pid", "virtlogd.pid"):
        try:
            with open(os.path.join(piddir, f)) as fh:
                os.kill(int(fh.read().split()[0]), signal.SIGTERM)
        except (OSError, ValueError, IndexError):
            pass
    try:
        reaper.wait(10)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()


def wait_agent(side, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        p = side.run("qemu-agent-command", side.dom, PING, timeout=30)
        if p.returncode == 0 and '"return"' in p.stdout:
            return True
        time.sleep(0.5)
    return False


def measure(sides, rounds):
    res = {"create": {"T": [], "L": []}, "revert": {"T": [], "L": []}}
    errors = []
    for i in range(rounds):
        name = f"s{i}"
        for verb, m in (("snapshot-create-as", "create"), ("snapshot-revert", "revert")):
            for k in abba(i):
                s = sides[k]
                t0 = time.monotonic()
                p = s.run(verb, s.dom, name)
                dt = (time.monotonic() - t0) * 1000
                if p.returncode != 0:
                    errors.append((m, k))
                    log(f"{verb} ({k}): {p.stderr.strip()[:300]}")
                    continue
                res[m][k].append(dt)
        for k in ("T", "L"):
            p = sides[k].run("snapshot-delete", sides[k].dom, name)
            if p.returncode != 0:
                log(f"snapshot-delete ({k}): {p.stderr.strip()[:300]}")
    return res, errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[2])
    ap.add_argument("build", nargs="?", default=os.path.join(REPO, "build"))
    ap.add_argument("--self", action="store_true")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--in-ns", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if os.getuid() != 0:
        die("run as root (libvirt's system daemon)")
    if not a.in_ns:
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", sys.executable,
                              os.path.abspath(__file__), "--in-ns"] + sys.argv[1:])
    build = os.path.abspath(a.build)
    a.tetherd = os.path.join(build, "src/host/tetherd")
    a.tether = os.path.join(build, "src/cli/tether")
    genv_path = os.environ.get("TETHER_GUEST_ENV", os.path.join(build, "guest/guest.env"))
    if not os.path.exists(genv_path):
        die(f"no {genv_path} (build the guest: tools/mkguest.sh)")
    genv = load_env(genv_path)

    tmp = tempfile.mkdtemp(prefix="snapbench-")
    a.root = os.path.join(tmp, "root")
    reaper = piddir = tetherd = None
    sides = {"T": Side("T", "virsh" if a.self else "tether", a), "L": Side("L", "virsh", a)}
    try:
        reaper, piddir = start_private_libvirt(tmp)
        os.makedirs(IMG, exist_ok=True)
        shutil.copyfile(genv["TETHER_GUEST_KERNEL"], f"{IMG}/vmlinux")
        shutil.copyfile(genv["TETHER_GUEST_INITRD"], f"{IMG}/initrd.img")
        for s in sides.values():
            subprocess.run(["qemu-img", "convert", "-O", "qcow2", genv["TETHER_GUEST_DATA"],
                            s.disk], check=True)
        for f in os.listdir(IMG):
            os.chmod(os.path.join(IMG, f), 0o644)
        if not a.self:
            tetherd = subprocess.Popen([a.tetherd, "--root", a.root, "--verbose", "--log",
                                        os.path.join(tmp, "tetherd.log")])
            sock = os.path.join(a.root, "run/tether/tetherd.sock")
            deadline = time.monotonic() + 10
            while not os.path.exists(sock) and time.monotonic() < deadline:
                time.sleep(0.05)
        print(f"reference: {subprocess.run(['libvirtd', '--version'], capture_output=True, text=True).stdout.strip()}, "
              f"private daemon, virsh -c {URI}")
        print("candidate: " + ("virsh as well (--self)" if a.self else f"{a.tetherd} + {a.tether}"))
        print(f"guest: 256 MiB, 1 vCPU, TCG, qcow2 data disk; host: {os.uname().release}, "
              f"{os.cpu_count()} CPUs, load before: {open('/proc/loadavg').read().split()[0]}")
        for s in sides.values():
            x = os.path.join(tmp, s.dom + ".xml")
            with open(x, "w") as f:
                f.write(s.xml(genv))
            for verb in (("define", x), ("start", s.dom)):
                p = s.run(*verb)
                if p.returncode != 0:
                    die(f"{verb[0]} {s.dom} ({s.key}): {p.stderr.strip()}")
        for s in sides.values():
            if not wait_agent(s, 180):
                die(f"the agent of {s.dom} ({s.key}) never answered")
        res, errors = measure(sides, a.rounds)

        names = {"T": "virsh (--self)" if a.self else "tether", "L": "libvirt"}
        print()
        print(f"| {'measure':<44} | {names['T']:>14} | {names['L']:>14} | {'ratio':>6} | "
              f"{'L vs L':>6} | target | result")
        print("|" + "-" * 46 + "|" + "-" * 16 + "|" + "-" * 16 + "|--------|--------|--------|-------")
        any_fail = False
        for m, label in (("create", "snapshot-create-as, running 256 MiB guest"),
                         ("revert", "snapshot-revert, running 256 MiB guest")):
            t, l = res[m]["T"], res[m]["L"]
            if not t or not l:
                any_fail = True
                print(f"| {label:<44} | {'n/a':>14} | {'n/a':>14} | {'n/a':>6} | {'':>6} | <= {TARGET} | FAIL (no data)")
                continue
            ratio = median(t) / median(l)
            aa = halves(l)
            ok = ratio <= TARGET and not any(mm == m for mm, _ in errors)
            any_fail |= not ok
            print(f"| {label:<44} | {median(t):>11.0f} ms | {median(l):>11.0f} ms | {ratio:>6.3f} | "
                  f"{aa if aa is None else format(aa, '.3f'):>6} | <= {TARGET} | "
                  f"{'PASS' if ok else 'FAIL'}")
        print()
        print(f"ratio = {names['T']} / libvirt, medians of {a.rounds} samples per side, ABBA order; "
              "'L vs L' is libvirt against itself (two interleaved halves of its samples).")
        for m in ("create", "revert"):
            for k in ("T", "L"):
                print(f"{m} {k}: " + " ".join(f"{x:.0f}" for x in res[m][k]))
        if errors:
            print("failures: " + ", ".join(f"{m} {k}" for m, k in errors))
        qemu = qemu_job_ms(os.path.join(tmp, "tetherd.log"), "snapshot-save")
        if qemu and res["create"]["T"] and res["create"]["L"]:
            print(f"QEMU's own snapshot-save job (tetherd's log: the job sent -> concluded): "
                  f"median {median(qemu):.0f} ms ({' '.join(f'{x:.0f}' for x in qemu)}); the "
                  f"rest of tether's create (CLI, tetherd, query-block) "
                  f"{median(res['create']['T']) - median(qemu):.0f} ms; a manager that added "
                  f"nothing to QEMU's job would score {median(qemu) / median(res['create']['L']):.3f}")
        return 1 if any_fail else 0
    finally:
        for s in sides.values():
            if s.kind == "virsh" or tetherd is not None:
                s.run("destroy", s.dom, timeout=60)
                s.run("undefine", s.dom, "--snapshots-metadata", timeout=60)
        if tetherd is not None:
            tetherd.terminate()
            try:
                tetherd.wait(10)
            except subprocess.TimeoutExpired:
                tetherd.kill()
                tetherd.wait()
        if reaper is not None:
            stop_private_libvirt(reaper, piddir)
        shutil.rmtree(IMG, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
