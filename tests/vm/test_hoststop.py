#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The two last seed states and what happens to guests when the host stops, against real QEMU
(TCG) and the test guest:

  tests/vm/test_hoststop.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                            [--guest DIR] [--keep]

- dying: `destroy --graceful` of a SIGSTOPped QEMU shows `dying (graceful)` until it gives up
  (15 s) and the domain is running again; `destroy` of it (it cannot act on SIGTERM, so
  tetherd's SIGKILL comes after 10 s) shows `dying (destroyed)` until the reap, then
  `shut off (destroyed)`; a tetherd
  killed while the domain is dying, whose QEMU is gone when it comes back, says shut off
  (destroyed).
- idle: with --report-idle, an idle guest shows `idle (unknown)`; a busy loop in it (guest-exec)
  makes it running again; without the option it stays running.
- host stop: SIGTERM with 3 running guests and --on-shutdown managedsave: tetherd saves them
  and exits (a `start` meanwhile is refused, saying why); the next start (--on-boot ignore) lists them saved, the one after (--on-boot start)
  restores them with their uptime going on. Then --on-shutdown shutdown with one guest whose
  acpid is stopped: the other two shut down, it is destroyed once the shutdown-timeout passed,
  and the log says so.

At most 3 QEMUs at once (128 MiB guests; the dying guest has no OS, 64 MiB). Prints
"N passed, N failed"; exits 1 on any failure.
"""

import argparse
import json
import os
import re
import signal
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (write, REPO, Results, Tether, domain_xml,  # noqa: E402
                          load_guest_env, qemu_pids_named, uptime)

R = Results()
check = R.check

# The host stop's budget in this test: the guests that listen to ACPI power off well within it
# under TCG; the one that does not is destroyed only after it.
SHUTDOWN_TIMEOUT = 25
GUESTS = ("g1", "g2", "g3")


def start_daemon(t, *extra):
    """tetherd with extra options (Tether.start_daemon takes none)."""
    logf = open(t.log, "a")
    t.proc = subprocess.Popen([t.tetherd, "--root", t.root, "--verbose"] + list(extra),
                              stdout=logf, stderr=subprocess.STDOUT)
    logf.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if t.proc.poll() is not None:
            raise RuntimeError(f"tetherd exited with {t.proc.returncode} at start-up")
        if os.path.exists(t.sock):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(t.sock)
                s.close()
                return
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError("tetherd did not come up")


def log_text(t):
    with open(t.log, errors="replace") as f:
        return f.read()


def sigterm_and_wait(t, timeout, during=None):
    """SIGTERM tetherd, run during() while it stops; (exit status or None if still running
    after timeout, seconds taken)."""
    t0 = time.monotonic()
    t.proc.send_signal(signal.SIGTERM)
    if during:
        during()
    try:
        rc = t.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - t0
    dt = time.monotonic() - t0
    t.proc = None
    return rc, dt


def wait_for(fn, timeout, interval=0.2):
    """Poll fn() until it returns something true or the deadline passes; its last value."""
    deadline = time.monotonic() + timeout
    v = fn()
    while not v and time.monotonic() < deadline:
        time.sleep(interval)
        v = fn()
    return v


def list_rows(t, *flags):
    """`tether list FLAGS` as {name: state}."""
    rc, out, err = t.cli("list", *flags)
    rows = {}
    for line in out.splitlines()[2:]:
        m = re.match(r"\s*(\S+)\s+(\S+)\s+(.+?)\s*$", line)
        if m:
            rows[m.group(2)] = m.group(3)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--keep", action="store_true", help="keep the temp root")
    a = ap.parse_args()

    genv = load_guest_env(a.guest)
    t = Tether(a.tetherd, a.tether, "/tmp/tt-hoststop-")
    return R.run_suite(t, run, genv, keep=a.keep)


def run(t, genv):
    root = t.root
    # The config file every tetherd here reads: a fast host-side monitor round (idle is
    # decided over its last sample) and the host stop's budget and parallelism. The monitor
    # does not ask the agents (0: off): its calls are guest work, and under TCG on a loaded
    # machine they kept an otherwise idle guest above --report-idle's 1% (CI, under ASan).
    os.makedirs(os.path.join(root, "etc/tether"), exist_ok=True)
    write(os.path.join(root, "etc/tether/tetherd.conf"),
          "[monitor]\nhost-interval = 1\nstats-interval = 0\nusers-interval = 0\n"
          "filesystems-interval = 0\nosinfo-interval = 0\n"
          f"[lifecycle]\nshutdown-timeout = {SHUTDOWN_TIMEOUT}\nparallel-shutdown = 3\n")

    # ---- options are checked ----
    p = subprocess.run([t.tetherd, "--root", root, "--on-shutdown", "suspend"],
                       capture_output=True, text=True, timeout=30)
    check("--on-shutdown with a bad value is refused naming the choices",
          p.returncode != 0 and "on-shutdown: invalid value 'suspend': expected managedsave, "
          "shutdown or ignore" in p.stderr, p.stderr.strip())
    p = subprocess.run([t.tetherd, "--root", root, "--parallel-shutdown", "0"],
                       capture_output=True, text=True, timeout=30)
    check("--parallel-shutdown 0 is refused",
          p.returncode != 0 and "invalid value '0' for parallel-shutdown: from 1 to 64"
          in p.stderr, p.stderr.strip())

    start_daemon(t, "--report-idle", "--on-shutdown", "managedsave")
    run_dying(t, genv)
    run_idle_and_hoststop(t, genv)


def run_dying(t, genv):
    root = t.root
    xd = write(os.path.join(root, "gd.xml"), domain_xml("gd", genv, kernel=False, memory_mib=64,
                                                        agent=False))
    rc, out, err = t.cli("define", xd)
    check("define gd", rc == 0, out + err)

    # ---- dying during the destroy of a QEMU that cannot act on SIGTERM ----
    rc, out, err = t.cli("start", "gd")
    check("gd running (booted)", rc == 0 and t.state("gd") == "running (booted)",
          t.state("gd") + err)
    pid = t.qemu_pid("gd")
    os.kill(pid, signal.SIGSTOP)

    # destroy --graceful sends SIGTERM only: dying (graceful), then it gives up after 15 s and
    # the domain is what it was before.
    t0 = time.monotonic()
    bg = t.cli_bg("destroy", "--graceful", "gd")
    st = wait_for(lambda: t.state("gd") == "dying (graceful)" and "dying (graceful)", 5, 0.05)
    check("destroy --graceful of a stopped QEMU: dying (graceful)", st == "dying (graceful)",
          t.state("gd"))
    out, err = bg.communicate(timeout=60)
    dt = time.monotonic() - t0
    check("destroy --graceful gives up after 15 s with libvirt's error",
          bg.returncode != 0 and err.strip() == f"error: operation failed: failed to terminate "
          f"process {pid} with SIGTERM: Device or resource busy" and 14 < dt < 40,
          f"{err.strip()} after {dt:.1f} s")
    check("and the domain is running (booted) again", t.state("gd") == "running (booted)",
          t.state("gd"))

    t0 = time.monotonic()
    bg = t.cli_bg("destroy", "gd")
    st = wait_for(lambda: t.state("gd") == "dying (destroyed)" and "dying (destroyed)", 5, 0.05)
    check("destroy of a stopped QEMU: domstate --reason says dying (destroyed)",
          st == "dying (destroyed)", t.state("gd"))
    rc, out, err = t.cli("domstate", "gd")
    check("domstate without --reason: dying", out.strip() == "dying", out + err)
    check("list --state-other shows the dying domain", list_rows(t, "--state-other")
          .get("gd") == "dying", repr(list_rows(t, "--state-other")))
    check("list --state-running leaves it out", "gd" not in list_rows(t, "--state-running"))
    rc, out, err = t.cli("list", "--json")
    row = next((r for r in json.loads(out or "[]") if r.get("name") == "gd"), {})
    check("list --json: state dying, reason destroyed",
          row.get("state") == "dying" and row.get("reason") == "destroyed", repr(row))
    rc, out, err = t.cli("suspend", "gd")
    check("an operation on a dying domain is refused: busy",
          rc != 0 and err == "error: domain gd is busy: destroy", err)
    with open(t.run_path("gd", "status.json")) as f:
        status = json.load(f)
    check("the status file says dying (state 8, reason 1)",
          status.get("state") == 8 and status.get("reason") == 1, repr(status))
    out, err = bg.communicate(timeout=60)
    dt = time.monotonic() - t0
    check("destroy returns once QEMU is reaped (SIGKILL after 10 s)",
          bg.returncode == 0 and "Domain 'gd' destroyed" in out and 9 < dt < 30,
          f"{out.strip()} {err.strip()} after {dt:.1f} s")
    check("then shut off (destroyed)", t.state("gd") == "shut off (destroyed)", t.state("gd"))

    # ---- a tetherd killed while the domain is dying; QEMU gone when it comes back ----
    rc, out, err = t.cli("start", "gd")
    pid = t.qemu_pid("gd")
    os.kill(pid, signal.SIGSTOP)
    bg = t.cli_bg("destroy", "gd")
    st = wait_for(lambda: t.state("gd") == "dying (destroyed)" and "dying (destroyed)", 5, 0.05)
    check("dying again before tetherd is killed", st == "dying (destroyed)", t.state("gd"))
    t.proc.send_signal(signal.SIGKILL)
    t.proc.wait(10)
    t.proc = None
    bg.communicate(timeout=30)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not qemu_pids_named("gd", t.root), 10)
    start_daemon(t, "--report-idle", "--on-shutdown", "managedsave")
    st = t.state("gd")
    check("restarted tetherd: the dying domain whose QEMU is gone is shut off (destroyed)",
          st == "shut off (destroyed)", st)
    check("its run folder is gone", not os.path.exists(t.run_path("gd", "status.json")))


def run_idle_and_hoststop(t, genv):
    root = t.root
    for name in GUESTS:
        disk = os.path.join(root, f"{name}.img")
        shutil.copyfile(genv["TETHER_GUEST_DATA"], disk)
        x = write(os.path.join(root, f"{name}.xml"), domain_xml(name, genv, disk, memory_mib=128))
        rc, out, err = t.cli("define", x)
        check(f"define {name}", rc == 0, out + err)
        rc, out, err = t.cli("start", name)
        check(f"start {name}", rc == 0, out + err)
    agents = {name: t.agent(name) for name in GUESTS}
    for name in GUESTS:
        agents[name].wait(120)

    # ---- idle, with --report-idle ----
    st = t.wait_state("g1", "idle (unknown)", 150)
    check("--report-idle: an idle guest is idle (unknown)", st == "idle (unknown)", st)
    check("list --state-other shows the idle domain",
          list_rows(t, "--state-other").get("g1") == "idle",
          repr(list_rows(t, "--state-other")))
    check("list --state-running leaves it out", "g1" not in list_rows(t, "--state-running"))
    rc, out, err = t.cli("dominfo", "--json", "g1")
    info = json.loads(out or "{}")
    check("dominfo --json: state idle, reason unknown",
          info.get("state") == "idle" and info.get("reason") == "unknown", repr(info))
    busy = agents["g1"].spawn("/bin/sh", ["-c", "while :; do :; done"], capture=False)
    st = t.wait_state("g1", "running (booted)", 60)
    check("a busy loop in the guest makes it running (booted) again", st == "running (booted)",
          st)
    samples = set()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        samples.add(t.state("g1"))
        time.sleep(0.3)
    check("and it stays running while the loop runs (4 monitor rounds)",
          samples == {"running (booted)"}, repr(samples))
    agents["g1"].exec("/bin/kill", [str(busy)])
    st = t.wait_state("g1", "idle (unknown)", 150)
    check("idle again once the loop is killed", st == "idle (unknown)", st)

    # ---- SIGTERM with --on-shutdown managedsave ----
    up_before = {name: uptime(agents[name]) for name in GUESTS}
    pids = {name: t.qemu_pid(name) for name in GUESTS}
    def start_during_stop():
        # The host stop has begun once the log says so; the control socket still serves.
        wait_for(lambda: "host stop: managedsave of 3 running guests" in log_text(t), 10, 0.02)
        rc, out, err = t.cli("start", "gd")
        check("start during the host stop is refused, saying why",
              rc == 1 and "error: Requested operation is not valid: the host is stopping: "
              "tetherd is saving or shutting down its guests, and starts none" in err,
              f"{rc} {out} {err}")
        check("and gd stays shut off", t.state("gd") == "shut off (destroyed)", t.state("gd"))
    rc, dt = sigterm_and_wait(t, SHUTDOWN_TIMEOUT + 90, start_during_stop)
    check("SIGTERM: tetherd saves the guests and exits 0", rc == 0, f"status {rc}")
    print(f"  host stop (managedsave) of 3 running 128 MiB guests: {dt:.2f} s")
    log = log_text(t)
    for name in GUESTS:
        check(f"log: host stop: {name}: saved (managedsave)",
              f"host stop: {name}: saved (managedsave)" in log)
    check("log: host stop: done ... 3 saved",
          re.search(r"host stop: done in [0-9.]+ s: 3 saved, 0 shut down, 0 destroyed, "
                    r"0 failed; exiting", log) is not None)
    check("the guests' QEMUs are gone",
          not any(qemu_pids_named(n, t.root) for n in GUESTS) and
          not any(os.path.exists(f"/proc/{p}/cmdline") and
                  open(f"/proc/{p}/cmdline", "rb").read() for p in pids.values()))
    with open(os.path.join(root, "var/lib/tether/hoststop-saved.json")) as f:
        record = json.load(f)
    check("the record lists the 3 saved domains",
          sorted(record.get("domains", [])) == list(GUESTS), repr(record))

    # ---- next start, --on-boot ignore: they are listed saved ----
    start_daemon(t, "--on-boot", "ignore")
    rows = list_rows(t, "--all", "--managed-save")
    check("--on-boot ignore: list --all --managed-save shows the 3 saved",
          all(rows.get(n) == "saved" for n in GUESTS), repr(rows))
    check("log: left saved (on-boot ignore)",
          "on-boot: g2: saved by the last host stop; left saved (on-boot ignore)" in log_text(t))
    rc, dt = sigterm_and_wait(t, 30)
    check("SIGTERM with nothing running (on-shutdown ignore): exits 0", rc == 0, f"{rc}")

    # ---- next start, --on-boot start: restored, uptime goes on; no --report-idle ----
    start_daemon(t, "--on-boot", "start", "--on-shutdown", "shutdown")
    for name in GUESTS:
        st = t.wait_state(name, "running (restored)", 120)
        check(f"--on-boot start: {name} running (restored)", st == "running (restored)", st)
    for name in GUESTS:
        up = uptime(agents[name], wait=60)
        check(f"{name}: its uptime went on ({up_before[name]:.1f} -> {up:.1f} s)",
              up > up_before[name])
    check("the record is gone once acted on",
          not os.path.exists(os.path.join(root, "var/lib/tether/hoststop-saved.json")))
    samples = set()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        samples.add(t.state("g2"))
        time.sleep(0.3)
    check("without --report-idle an idle guest stays running (4 monitor rounds)",
          samples == {"running (restored)"}, repr(samples))

    # ---- SIGTERM with --on-shutdown shutdown; g3 ignores the power button ----
    code, _ = agents["g3"].sh("kill -STOP $(pidof acpid) && "
                              "grep -q '^State:.*stopped' /proc/$(pidof acpid)/status")
    check("g3's acpid is stopped (it ignores the ACPI power button)", code == 0, f"exit {code}")
    mark = len(log_text(t))
    rc, dt = sigterm_and_wait(t, SHUTDOWN_TIMEOUT + 90)
    check("SIGTERM (shutdown): tetherd exits 0", rc == 0, f"status {rc}")
    check(f"it waited for the shutdown-timeout ({SHUTDOWN_TIMEOUT} s) before destroying g3",
          SHUTDOWN_TIMEOUT <= dt < SHUTDOWN_TIMEOUT + 60, f"{dt:.1f} s")
    log = log_text(t)[mark:]
    for name in ("g1", "g2"):
        check(f"log: host stop: {name}: shut down", f"host stop: {name}: shut down" in log)
    check("log: host stop: g3: destroyed after the timeout, naming it",
          f"host stop: g3: destroyed: it did not shut down within the shutdown-timeout of "
          f"{SHUTDOWN_TIMEOUT} s (does the guest ignore the ACPI power button?)" in log,
          "\n".join(line for line in log.splitlines() if "g3" in line))
    check("log: host stop: done ... 2 shut down, 1 destroyed",
          re.search(r"host stop: done in [0-9.]+ s: 0 saved, 2 shut down, 1 destroyed, "
                    r"0 failed; exiting", log) is not None)
    for name, want in (("g1", "shut off (shutdown)"), ("g2", "shut off (shutdown)"),
                       ("g3", "dying (forced)"), ("g3", "shut off (destroyed)")):
        check(f"log: the host stop left {name} {want}",
              f": {name}: {want}" in log)

if __name__ == "__main__":
    sys.exit(main())
