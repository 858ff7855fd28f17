#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""hoststop_bench.py [--cycles N] [BUILD_DIR]

The host stop (issue 9): SIGTERM to tetherd --on-shutdown managedsave --parallel-shutdown 3 with 3
running guests, until tetherd has exited, against libvirt-guests with ON_SHUTDOWN=suspend and
PARALLEL_SHUTDOWN=3 (libvirt 9.0's own script, /usr/lib/libvirt/libvirt-guests.sh, run as
`libvirt-guests.sh stop`, until it returns) on libvirt domains of the same size: 3 guests of
128 MiB, 1 vCPU, TCG, the test guest's kernel and initrd (tether-agent inside), the agent
channel, no balloon. Target: tether <= 0.7 of libvirt. Not a test: it does not run in CI.

  --cycles N  ABBA cycles (default 2: T L L T T L L T, 4 samples per side)
  BUILD_DIR   meson build dir with src/host/tetherd and src/cli/tether (default: build)

Between samples each side gets its guests back untimed: tetherd restarts with --on-boot start,
libvirt-guests runs `start` (ON_BOOT=start). Every sample is checked: tetherd's log must say
"3 saved", libvirt must hold a managed-save image for each of its domains; otherwise the row
fails. The table prints the median of each side, the ratio, the target and the noise floor:
libvirt against itself (the median of its odd samples over that of its even ones). Both sides'
guests run all the time (6 QEMUs); each stop touches only its own side's three.

Like bench/verbs-bench.sh the script runs in a mount namespace of its own with a private
libvirtd + virtlogd (private /run/libvirt, /etc/libvirt/qemu, /var/lib/libvirt/qemu,
/var/cache/libvirt, /var/log/libvirt under its temp dir, under bench/host_reaper.py), so that
libvirt-guests sees the bench's domains only and never another libvirt domain of the machine.
The script copy differs from the package's only in its sysconfdir and localstatedir (its config
and list file live in the temp dir). Needs root, util-linux's unshare, virsh, python3. Exit
status 1 when the target fails or a sample is wrong, 2 when the set-up fails.
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
GUESTS = 3
MEM_MIB = 128
TARGET = 0.7
LG_SCRIPT = "/usr/lib/libvirt/libvirt-guests.sh"
AGENT_CHANNEL = "org.qemu.guest_agent.0"


def log(msg):
    print(f"hoststop-bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(msg)
    sys.exit(2)


def run(argv, timeout=300, check=False):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        die(f"{' '.join(argv)}: {p.stderr.strip() or p.stdout.strip()}")
    return p


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v.strip("'")
    return env


def domain_xml(kind, name, img, append):
    """The one definition both managers run; libvirt gets <controller type='usb' model='none'/>
    (it adds a USB controller by default, tetherd none), so both QEMUs get the same devices."""
    usb = "<controller type='usb' model='none'/>" if kind == "virsh" else ""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{MEM_MIB}</memory>
  <currentMemory unit='MiB'>{MEM_MIB}</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{img}/vmlinux</kernel>
    <initrd>{img}/initrd.img</initrd>
    <cmdline>{append}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {usb}
    <channel type='unix'><target type='virtio' name='{AGENT_CHANNEL}'/></channel>
    <memballoon model='none'/>
  </devices>
</domain>
"""


class Libvirt:
    """A private libvirtd in this mount namespace, and libvirt-guests' script pointed at it."""

    key = "L"

    def __init__(self, tmp, img, append, prefix):
        self.tmp = tmp
        self.lv = os.path.join(tmp, "libvirt")
        self.rpid = None
        self.names = [f"{prefix}-{i}" for i in range(1, GUESTS + 1)]
        self.img = img
        self.append = append
        lg = os.path.join(tmp, "lg-" + prefix)
        self.lg_etc = os.path.join(lg, "etc")
        self.lg_var = os.path.join(lg, "var")
        self.script = os.path.join(lg, "libvirt-guests.sh")

    def start_daemon(self):
        """bench/host_reaper.py: libvirtd + virtlogd with state folders under tmp/libvirt."""
        os.makedirs(self.lv, exist_ok=True)
        out = open(os.path.join(self.lv, "reaper.out"), "w")
        self.rpid = subprocess.Popen([sys.executable, os.path.join(HERE, "host_reaper.py"),
                                      self.lv], stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.rpid.poll() is None:
            if "ready\n" in open(os.path.join(self.lv, "reaper.out")).read():
                break
            time.sleep(0.1)
        if run(["virsh", "-q", "-c", URI, "version"]).returncode != 0:
            die("the private libvirtd does not answer")

    def setup_script(self):
        """The package's script with its config and list file in the temp dir."""
        os.makedirs(os.path.join(self.lg_etc, "default"), exist_ok=True)
        os.makedirs(os.path.join(self.lg_var, "lib/libvirt"), exist_ok=True)
        os.makedirs(os.path.join(self.lg_var, "lock"), exist_ok=True)
        text = open(LG_SCRIPT).read()
        text, n1 = re.subn(r'^sysconfdir=.*$', f'sysconfdir="{self.lg_etc}"', text, flags=re.M)
        text, n2 = re.subn(r'^localstatedir=.*$', f'localstatedir="{self.lg_var}"', text,
                           flags=re.M)
        if n1 != 1 or n2 != 1:
            die(f"{LG_SCRIPT}: cannot find sysconfdir= and localstatedir=")
        with open(self.script, "w") as f:
            f.write(text)
        with open(os.path.join(self.lg_etc, "default/libvirt-guests"), "w") as f:
            f.write(f"URIS={URI}\nON_BOOT=start\nON_SHUTDOWN=suspend\nPARALLEL_SHUTDOWN=3\n"
                    "SHUTDOWN_TIMEOUT=300\nSTART_DELAY=0\n")

    def define_start(self):
        for n in self.names:
            path = os.path.join(self.tmp, f"{n}.xml")
            with open(path, "w") as f:
                f.write(domain_xml("virsh", n, self.img, self.append))
            run(["virsh", "-q", "-c", URI, "define", path], check=True)
            run(["virsh", "-q", "-c", URI, "start", n], check=True)

    def wait_agents(self, seconds=300):
        deadline = time.monotonic() + seconds
        pending = list(self.names)
        while pending and time.monotonic() < deadline:
            for n in list(pending):
                p = run(["virsh", "-c", URI, "qemu-agent-command", n,
                         '{"execute":"guest-ping"}'], timeout=30)
                if p.returncode == 0 and '"return"' in p.stdout:
                    pending.remove(n)
            if pending:
                time.sleep(1)
        if pending:
            die(f"agents of {', '.join(pending)} did not answer")

    def measure(self):
        """One timed `libvirt-guests.sh stop`; (seconds, error or None)."""
        t0 = time.monotonic()
        p = run(["sh", self.script, "stop"], timeout=900)
        dt = time.monotonic() - t0
        if p.returncode != 0:
            return dt, f"libvirt-guests stop exited {p.returncode}: {p.stdout[-400:]}"
        for n in self.names:
            info = run(["virsh", "-c", URI, "dominfo", n]).stdout
            if not re.search(r"^State:\s+shut off", info, re.M) or \
                    not re.search(r"^Managed save:\s+yes", info, re.M):
                return dt, f"{n} is not shut off with a managed save: {info!r}"
        return dt, None

    def restore(self):
        p = run(["sh", self.script, "start"], timeout=900)
        if p.returncode != 0:
            die(f"libvirt-guests start: {p.stdout[-400:]}")
        for n in self.names:
            if run(["virsh", "-c", URI, "domstate", n]).stdout.strip() != "running":
                die(f"{n} did not come back running")

    def cleanup(self):
        for n in self.names:
            run(["virsh", "-q", "-c", URI, "destroy", n])
            run(["virsh", "-q", "-c", URI, "undefine", "--managed-save", n])


class Tether:
    """tetherd --on-shutdown managedsave under a temp --root."""

    key = "T"

    def __init__(self, tmp, build, img, append):
        self.tetherd = os.path.join(build, "src/host/tetherd")
        self.tether = os.path.join(build, "src/cli/tether")
        self.root = os.path.join(tmp, "root")
        self.logf = os.path.join(tmp, "tetherd.log")
        self.names = [f"hsbench-t-{i}" for i in range(1, GUESTS + 1)]
        self.img = img
        self.append = append
        self.tmp = tmp
        self.proc = None

    def cli(self, *args, timeout=300):
        return run([self.tether, "--root", self.root, *args], timeout=timeout)

    def start_daemon(self):
        out = open(self.logf, "a")
        self.proc = subprocess.Popen([self.tetherd, "--root", self.root, "--on-shutdown",
                                      "managedsave", "--parallel-shutdown", "3", "--on-boot",
                                      "start"], stdout=out, stderr=subprocess.STDOUT)
        sock = os.path.join(self.root, "run/tether/tetherd.sock")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.cli("list").returncode != 0:
            if self.proc.poll() is not None:
                die(f"tetherd exited at start-up (see {self.logf})")
            time.sleep(0.05)
        if not os.path.exists(sock):
            die("tetherd did not come up")

    def define_start(self):
        for n in self.names:
            path = os.path.join(self.tmp, f"{n}.xml")
            with open(path, "w") as f:
                f.write(domain_xml("tether", n, self.img, self.append))
            p = self.cli("define", path)
            if p.returncode != 0 or self.cli("start", n).returncode != 0:
                die(f"tether define/start {n}: {p.stderr.strip()}")

    def wait_agents(self, seconds=300):
        deadline = time.monotonic() + seconds
        pending = list(self.names)
        while pending and time.monotonic() < deadline:
            for n in list(pending):
                p = self.cli("qemu-agent-command", n, '{"execute":"guest-ping"}', timeout=30)
                if p.returncode == 0 and '"return"' in p.stdout:
                    pending.remove(n)
            if pending:
                time.sleep(1)
        if pending:
            die(f"agents of {', '.join(pending)} did not answer")

    def measure(self):
        """SIGTERM until tetherd has exited; (seconds, error or None)."""
        mark = os.path.getsize(self.logf)
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(900)
        except subprocess.TimeoutExpired:
            return time.monotonic() - t0, "tetherd did not exit"
        dt = time.monotonic() - t0
        self.proc = None
        with open(self.logf, errors="replace") as f:
            f.seek(mark)
            text = f.read()
        if rc != 0 or f"{GUESTS} saved, 0 shut down, 0 destroyed, 0 failed" not in text:
            return dt, f"tetherd exited {rc}; log: {text[-600:]}"
        return dt, None

    def restore(self):
        self.start_daemon()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = [self.cli("domstate", n).stdout.strip() for n in self.names]
            if all(s == "running" for s in states):
                return
            time.sleep(0.1)
        die(f"tether's guests did not come back running: {states}")

    def cleanup(self):
        if self.proc is None and os.path.exists(os.path.join(self.root, "run/tether")):
            # a tetherd of our own, without a host stop, only to destroy what runs
            self.proc = subprocess.Popen([self.tetherd, "--root", self.root, "--on-boot",
                                          "ignore"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.cli("list").returncode != 0:
                time.sleep(0.05)
        for n in self.names:
            self.cli("destroy", n)
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # SIGINT: exit, no host stop
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description="tetherd's host stop against libvirt-guests")
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("build", nargs="?", default=os.path.join(REPO, "build"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        die("run as root (libvirt's system daemon)")
    if os.environ.get("HOSTSTOPBENCH_NS") != "1":
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "env",
                              "HOSTSTOPBENCH_NS=1", sys.executable, os.path.abspath(__file__)]
                  + sys.argv[1:])
    build = os.path.abspath(a.build)
    genv_path = os.path.join(build, "guest/guest.env")
    if not os.path.exists(genv_path):
        die(f"no {genv_path} (tools/mkguest.sh --agent build/src/agent/tether-agent-static "
            "--out build/guest)")
    genv = load_env(genv_path)

    tmp = tempfile.mkdtemp(prefix="/tmp/hoststopbench-")
    img = f"/var/lib/libvirt/images/hoststopbench-{os.getpid()}"
    os.makedirs(img)
    shutil.copy(genv["TETHER_GUEST_KERNEL"], os.path.join(img, "vmlinux"))
    shutil.copy(genv["TETHER_GUEST_INITRD"], os.path.join(img, "initrd.img"))
    for f in os.listdir(img):
        os.chmod(os.path.join(img, f), 0o644)
    os.chmod(img, 0o755)
    append = genv["TETHER_GUEST_APPEND"]

    lv = Libvirt(tmp, img, append, "hsbench-l")
    sides = {}
    try:
        lv.start_daemon()
        lv.setup_script()
        sides["L"] = lv
        t = Tether(tmp, build, img, append)
        t.start_daemon()
        sides["T"] = t
        samples = {"T": [], "L": []}
        errors = []
        for key in ("T", "L"):
            sides[key].define_start()
            sides[key].wait_agents()
        log(f"{GUESTS} x {MEM_MIB} MiB guests per side running; {a.cycles} ABBA cycles")
        order = ["T", "L", "L", "T"] * a.cycles
        for i, key in enumerate(order):
            s = sides[key]
            dt, err = s.measure()
            log(f"sample {i + 1}/{len(order)} {key}: {dt:.2f} s{' ERROR ' + err if err else ''}")
            if err:
                errors.append(f"{key}: {err}")
            else:
                samples[key].append(dt)
            s.restore()
        mt = statistics.median(samples["T"]) if samples["T"] else None
        ml = statistics.median(samples["L"]) if samples["L"] else None
        lodd, leven = samples["L"][0::2], samples["L"][1::2]
        noise = (statistics.median(lodd) / statistics.median(leven)
                 if lodd and leven else None)
        ratio = mt / ml if mt and ml else None
        print("\n| measure | tetherd | libvirt-guests | ratio | target | L vs L |")
        print("|---|---|---|---|---|---|")
        ok = ratio is not None and ratio <= TARGET and not errors
        print(f"| SIGTERM / stop with {GUESTS} running {MEM_MIB} MiB guests, managedsave "
              f"(median of {len(samples['T'])} / {len(samples['L'])}) | "
              f"{mt if mt is None else f'{mt:.2f} s'} | {ml if ml is None else f'{ml:.2f} s'} | "
              f"{'-' if ratio is None else f'{ratio:.2f}'} | <= {TARGET} "
              f"{'PASS' if ok else 'FAIL'} | {'-' if noise is None else f'{noise:.2f}'} |")
        print(f"\nsamples T: {', '.join(f'{v:.2f}' for v in samples['T'])}; "
              f"L: {', '.join(f'{v:.2f}' for v in samples['L'])}")
        for e in errors:
            print(f"error: {e}")
        return 0 if ok else 1
    finally:
        for s in sides.values():
            try:
                s.cleanup()
            except Exception as e:  # keep cleaning
                log(f"cleanup: {e}")
        if lv.rpid is not None:
            for f in ("libvirtd", "virtlogd"):
                try:
                    with open(os.path.join(lv.lv, "pid", f + ".pid")) as pf:
                        os.kill(int(pf.read().strip()), signal.SIGTERM)
                except (OSError, ValueError):
                    pass
            try:
                lv.rpid.wait(15)
            except subprocess.TimeoutExpired:
                lv.rpid.kill()
        shutil.rmtree(img, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
