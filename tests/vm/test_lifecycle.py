#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Every lifecycle operation of tetherd against real QEMU 7.2 (TCG) and the real test guest,
checking `domstate --reason` after each step.

  tests/vm/test_lifecycle.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                             [--guest DIR] [--keep]

Guests (at most 3 QEMUs at once): "ga" (256 MiB, Debian's qemu-ga inside: the uptime probe, read
through tetherd's agent-command: tetherd holds the agent socket),
"gb" (tether-agent inside: shutdown/reboot --mode agent) and "gi" (no OS: SeaBIOS ignores the
ACPI power button). Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import json
import os
import shutil
import signal
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (write, REPO, Results, Tether, AgentError, domain_xml,  # noqa: E402
                          load_guest_env, mark_boot, qemu_pids_named, same_boot, uptime)

R = Results()
check = R.check


def timed(fn, *args, **kw):
    t0 = time.monotonic()
    r = fn(*args, **kw)
    return r, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--keep", action="store_true", help="keep the temp root")
    a = ap.parse_args()

    genv = load_guest_env(a.guest)
    t = Tether(a.tetherd, a.tether, "/tmp/tt-life-")
    return R.run_suite(t, run, genv, keep=a.keep)



def run(t, genv):
    root = t.root
    t.start_daemon()
    qga_initrd = genv.get("TETHER_GUEST_INITRD_QEMU_GA") or genv["TETHER_GUEST_INITRD"]
    disk_a = os.path.join(root, "a.img")
    disk_b = os.path.join(root, "b.img")
    shutil.copyfile(genv["TETHER_GUEST_DATA"], disk_a)
    shutil.copyfile(genv["TETHER_GUEST_DATA"], disk_b)
    xa = write(os.path.join(root, "ga.xml"), domain_xml("ga", genv, disk_a, initrd=qga_initrd))
    xb = write(os.path.join(root, "gb.xml"), domain_xml("gb", genv, disk_b, memory_mib=192))
    xi = write(os.path.join(root, "gi.xml"), domain_xml("gi", genv, kernel=False, memory_mib=64))
    xn = write(os.path.join(root, "gn.xml"), domain_xml("gn", genv, kernel=False, memory_mib=64,
                                                        acpi=False))
    xt = write(os.path.join(root, "gt.xml"), domain_xml("gt", genv, kernel=False, memory_mib=64))
    agent_a = t.agent("ga")

    # ---- define: refused, duplicate, accepted ----
    bad = write(os.path.join(root, "bad.xml"), "<domain type='qemu'><name>x</name>")
    rc, out, err = t.cli("define", bad)
    check("define malformed XML is refused", rc != 0 and err.startswith("error:"), err)
    unsup = write(os.path.join(root, "unsup.xml"),
                  open(xa).read().replace("<vcpu>1</vcpu>", "<vcpu>1</vcpu><iothreads>1</iothreads>"))
    rc, out, err = t.cli("define", unsup)
    check("define unsupported element is refused naming it", rc != 0 and "iothreads" in err, err)
    for x in (xa, xb, xi, xn):
        rc, out, err = t.cli("define", x)
        check(f"define {os.path.basename(x)}", rc == 0 and "defined from" in out, out + err)
    rc, out, err = t.cli("define", write(os.path.join(root, "dup.xml"),
                                         domain_xml("ga", genv, disk_a)))
    check("duplicate name with another uuid is refused",
          rc != 0 and "already exists with uuid" in err, err)
    check("defined domain is shut off (unknown)", t.state("ga") == "shut off (unknown)",
          t.state("ga"))

    # ---- start --paused / resume / suspend ----
    (rc, out, err), dt = timed(t.cli, "start", "--paused", "ga")
    check("start --paused", rc == 0 and out.strip() == "Domain 'ga' started", out + err)
    check("start --paused -> paused (user)", t.state("ga") == "paused (user)", t.state("ga"))
    print(f"  start of a 256 MiB guest (QEMU launched, QMP ready): {dt:.2f} s")
    rc, out, err = t.cli("resume", "ga")
    check("resume -> running (unpaused)", rc == 0 and t.state("ga") == "running (unpaused)",
          t.state("ga") + err)
    rc, out, err = t.cli("suspend", "ga")
    check("suspend -> paused (user)", rc == 0 and t.state("ga") == "paused (user)", t.state("ga"))
    rc, out, err = t.cli("resume", "ga")
    check("resume again -> running (unpaused)", t.state("ga") == "running (unpaused)",
          t.state("ga"))

    # gb boots meanwhile (tether-agent guest), for the agent-mode steps below.
    rc, out, err = t.cli("start", "gb")
    check("start gb -> running (booted)", rc == 0 and t.state("gb") == "running (booted)",
          t.state("gb") + err)

    rc, out, err = t.cli("start", "gi")
    check("gi (no OS) running (booted)", t.state("gi") == "running (booted)", t.state("gi"))

    # ---- one job per domain; other domains never wait ----
    # gi has no OS, so it ignores the ACPI power button: shutdown --wait --timeout 3 is a job
    # that lasts 3 s.
    done = {}
    # The job is in place once QEMU says its power button was pressed (QMP POWERDOWN).
    powerdown = "gi: QMP event POWERDOWN"
    n = t.log_count(powerdown)
    th = threading.Thread(target=lambda: done.update(r=t.api(
        "shutdown", {"domain": "gi", "wait": True, "timeout": 3})))
    th.start()
    check("shutdown --wait of gi pressed the power button", t.wait_log(powerdown, n, 10))
    (rc, out, err), dt = timed(t.cli, "suspend", "gi")
    check("conflicting op gets 'busy' at once",
          rc != 0 and err == "error: domain gi is busy: shutdown" and dt < 1.0,
          f"{err} ({dt:.2f} s)")
    (rc, out, err), dt = timed(t.cli, "suspend", "ga")
    check("another domain is not blocked by gi's job", rc == 0 and dt < 1.0, f"{dt:.2f} s")
    t.cli("resume", "ga")
    th.join(30)
    # gi has an agent channel that its (absent) guest never opens: tetherd knows the port is
    # closed and says so at once, as libvirt does.
    (rc, out, err), dt = timed(t.cli, "reboot", "--mode=agent", "gi")
    check("reboot --mode agent without an agent: clear error at once",
          rc != 0 and err == "error: Guest agent is not responding: QEMU guest agent is not "
          "connected" and dt < 1.5, f"{err} ({dt:.2f} s)")
    check("gi still running (booted)", t.state("gi") == "running (booted)", t.state("gi"))

    # ---- save / restore keeps the guest's uptime ----
    # The guest's clock runs only while QEMU runs: from just before up1 to the end of the
    # save, and from the start of the restore to just after up2 (host time, which bounds it).
    t_up1 = time.monotonic()
    up1 = uptime(agent_a)
    check("boot mark set in the guest", mark_boot(agent_a))
    save = os.path.join(root, "ga.save")
    (rc, out, err), dt_save = timed(t.cli, "save", "ga", save)
    ran = time.monotonic() - t_up1
    check("save", rc == 0 and out == f"\nDomain 'ga' saved to {save}\n\n", repr(out) + err)
    check("save -> shut off (saved)", t.state("ga") == "shut off (saved)", t.state("ga"))
    check("save: QEMU is gone", not qemu_pids_named("ga", t.root))
    with open(save, "rb") as f:
        head = f.read(64)
    check("save image header: TetherSave magic, version 1, was_running",
          head[:16] == b"TetherSave" + b"\0" * 6 and struct.unpack("<II", head[16:24]) == (1, 1),
          repr(head[:24]))
    size = os.path.getsize(save)
    print(f"  save of the 256 MiB guest: {dt_save:.2f} s, image {size / 2**20:.1f} MiB")

    # refused images: nothing starts
    trunc = os.path.join(root, "trunc.save")
    with open(save, "rb") as f, open(trunc, "wb") as g:
        g.write(f.read(size // 2))
    part = os.path.join(root, "part.save")
    shutil.copyfile(save, part)
    with open(part, "r+b") as f:
        f.write(b"TetherPart")
    foreign = write(os.path.join(root, "foreign.save"), "QEVM\0\0\0\3 not ours\n" * 10)
    short = os.path.join(root, "short.save")
    with open(short, "wb") as f:
        f.write(b"TetherSa")
    for path, want in ((trunc, "image is incomplete"), (part, "image is incomplete"),
                       (foreign, "is not a Tether save image"), (short, "image is incomplete"),
                       (os.path.join(root, "missing.save"), "No such file")):
        rc, out, err = t.cli("restore", path)
        check(f"restore {os.path.basename(path)} refused: {want}", rc != 0 and want in err, err)
    check("refused restores started no QEMU", not qemu_pids_named("ga", t.root)
          and t.state("ga") == "shut off (saved)", t.state("ga"))

    time.sleep(2)  # the guest must not see this time
    t_restore = time.monotonic()
    (rc, out, err), dt_restore = timed(t.cli, "restore", save)
    check("restore", rc == 0 and out == f"Domain restored from {save}\n\n", repr(out) + err)
    check("restore -> running (restored)", t.state("ga") == "running (restored)", t.state("ga"))
    print(f"  restore of the 256 MiB guest: {dt_restore:.2f} s")
    up2 = uptime(agent_a)
    ran += time.monotonic() - t_restore
    # 1 s for the guest's clock against the host's (the saved time is over 2 s).
    check("restore keeps the guest's uptime (it grew only while QEMU ran)",
          up1 < up2 <= up1 + ran + 1.0, f"{up1:.2f} -> {up2:.2f}, QEMU ran at most {ran:.2f} s")
    check("restore: same boot (mark still there)", same_boot(agent_a))
    rc, out, err = t.cli("restore", save)
    check("restore onto a running domain is refused",
          rc != 0 and "domain is already running" in err, err)

    # paused image -> paused; restore --paused -> paused
    t.cli("suspend", "ga")
    rc, out, err = t.cli("save", "ga", save)
    with open(save, "rb") as f:
        flags = struct.unpack("<I", f.read(24)[20:24])[0]
    check("save of a paused domain: was_running clear", rc == 0 and flags == 0, f"{flags} {err}")
    rc, out, err = t.cli("restore", save)
    check("restore of a paused image -> paused (user)", rc == 0 and t.state("ga") == "paused (user)",
          t.state("ga") + err)
    t.cli("resume", "ga")
    t.cli("save", "ga", save)
    rc, out, err = t.cli("restore", "--paused", save)
    check("restore --paused -> paused (user)", rc == 0 and t.state("ga") == "paused (user)",
          t.state("ga") + err)
    rc, out, err = t.cli("resume", "ga")
    check("resume after restore -> running (unpaused)", t.state("ga") == "running (unpaused)",
          t.state("ga"))

    # ---- managedsave / start (restored) / --force-boot / remove / undefine ----
    up1 = uptime(agent_a)
    (rc, out, err), dt = timed(t.cli, "managedsave", "ga")
    check("managedsave", rc == 0 and "state saved" in out, out + err)
    check("managedsave -> shut off (saved)", t.state("ga") == "shut off (saved)", t.state("ga"))
    rc, out, err = t.cli("dominfo", "ga")
    check("dominfo: Managed save: yes", "Managed save:   yes" in out, out)
    rc, out, err = t.cli("list", "--all", "--with-managed-save", "--name")
    check("list --with-managed-save lists it", out.split() == ["ga"], out)
    rc, out, err = t.cli("list", "--all", "--managed-save")
    check("list --managed-save shows 'saved'", any(l.split()[1:] == ["ga", "saved"]
                                                   for l in out.splitlines() if l.strip()), out)
    rc, out, err = t.cli("undefine", "ga")
    check("undefine refuses while a managed-save image exists",
          rc != 0 and "managed save image exists" in err, err)
    (rc, out, err), dt = timed(t.cli, "start", "ga")
    check("start uses the managed-save image -> running (restored)",
          rc == 0 and t.state("ga") == "running (restored)", t.state("ga") + err)
    print(f"  start from the managed-save image: {dt:.2f} s")
    up2 = uptime(agent_a)
    check("start from managed save keeps uptime", up2 > up1, f"{up1:.2f} -> {up2:.2f}")
    rc, out, err = t.cli("dominfo", "ga")
    check("managed-save image removed once used", "Managed save:   no" in out, out)

    t.cli("managedsave", "ga")
    rc, out, err = t.cli("start", "--force-boot", "ga")
    check("start --force-boot -> running (booted)", rc == 0 and t.state("ga") == "running (booted)",
          t.state("ga") + err)
    rc, out, err = t.cli("dominfo", "ga")
    check("--force-boot discarded the managed-save image", "Managed save:   no" in out, out)
    check("--force-boot booted afresh (boot mark gone)", not same_boot(agent_a, wait=60))

    t.cli("managedsave", "ga")
    rc, out, err = t.cli("managedsave-remove", "ga")
    check("managedsave-remove", rc == 0 and out == "Removed managedsave image for domain 'ga'\n\n",
          repr(out) + err)
    rc, out, err = t.cli("managedsave-remove", "ga")
    check("managedsave-remove without an image",
          rc == 0 and "has no manage save image; removal skipped" in out, repr(out))
    check("still shut off (saved) after removal", t.state("ga") == "shut off (saved)", t.state("ga"))

    # ---- reboot (acpi) / reset / shutdown (acpi) / shutdown --wait ----
    rc, out, err = t.cli("start", "ga")
    check("start -> running (booted)", rc == 0 and t.state("ga") == "running (booted)",
          t.state("ga") + err)
    mark_boot(agent_a)
    pid = t.qemu_pid("ga")
    rc, out, err = t.cli("reboot", "ga")
    check("reboot (acpi)", rc == 0 and "is being rebooted" in out, out + err)
    deadline = time.monotonic() + 60
    rebooted = False
    while time.monotonic() < deadline and not rebooted:
        try:
            rebooted = not same_boot(agent_a, wait=10)
        except Exception:
            pass
    check("reboot: the guest booted again in the same QEMU", rebooted and
          t.qemu_pid("ga") == pid and t.state("ga") == "running (booted)", t.state("ga"))
    rc, out, err = t.cli("reset", "ga")
    check("reset -> running (booted)", rc == 0 and out.strip() == "Domain 'ga' was reset"
          and t.state("ga") == "running (booted)", t.state("ga") + err)
    uptime(agent_a, wait=60)  # acpid is up again
    rc, out, err = t.cli("shutdown", "ga")
    check("shutdown (acpi) answers at once", rc == 0 and
          out == "Domain 'ga' is being shutdown\n\n", repr(out) + err)
    st = t.wait_state("ga", "shut off (shutdown)", 60)
    check("ACPI shutdown reaches shut off (shutdown)", st == "shut off (shutdown)", st)

    rc, out, err = t.cli("start", "ga")
    uptime(agent_a, wait=60)
    (rc, out, err), dt = timed(t.cli, "shutdown", "--wait", "ga")
    check("shutdown --wait returns once shut off",
          rc == 0 and out == "Domain 'ga' has been shut down\n\n" and
          t.state("ga") == "shut off (shutdown)", f"{out!r} {err} {t.state('ga')} {dt:.1f} s")

    # ---- a guest ignoring ACPI; a domain without ACPI ----
    r, dt = timed(t.api, "shutdown", {"domain": "gi", "wait": True, "timeout": 3})
    desc = r.get("error", {}).get("desc", "")
    check("shutdown --wait --timeout 3: clear error when the guest ignores ACPI",
          "did not shut down within 3 s: the guest ignored the ACPI power button" in desc
          and 2.5 < dt < 6, f"{desc} ({dt:.1f} s)")
    check("... and the domain keeps running", t.state("gi") == "running (booted)", t.state("gi"))
    done = {}
    n = t.log_count(powerdown)
    th = threading.Thread(target=lambda: done.update(r=t.api(
        "shutdown", {"domain": "gi", "wait": True, "timeout": 3, "force": True})))
    th.start()
    check("shutdown --wait --force of gi pressed the power button", t.wait_log(powerdown, n, 10))
    rc, out, err = t.cli("suspend", "gi")
    check("busy while shutdown --wait runs", err == "error: domain gi is busy: shutdown", err)
    th.join(30)
    ret = done.get("r", {}).get("return", {})
    check("shutdown --wait --force escalates to destroy",
          ret.get("reason") == "destroyed" and t.state("gi") == "shut off (destroyed)",
          f"{done.get('r')} {t.state('gi')}")
    rc, out, err = t.cli("start", "gn")
    rc, out, err = t.cli("shutdown", "gn")
    check("shutdown of a domain without <acpi/> is refused clearly",
          rc != 0 and "has no ACPI" in err, err)
    rc, out, err = t.cli("destroy", "gn")
    check("destroy -> shut off (destroyed)", rc == 0 and out == "Domain 'gn' destroyed\n\n"
          and t.state("gn") == "shut off (destroyed)", t.state("gn") + err)

    # ---- guest agent: shutdown --mode agent ----
    # Wait until the guest opened its agent port, without connecting (QMP query-chardev).
    deadline, opened = time.monotonic() + 60, False
    while time.monotonic() < deadline and not opened:
        rc, out, err = t.cli("qemu-monitor-command", "gb", '{"execute": "query-chardev"}')
        opened = any(c.get("label") == "charchannel0" and c.get("frontend-open")
                     for c in (json.loads(out).get("return", []) if rc == 0 else []))
        time.sleep(0.5)
    check("gb's guest opened its agent port", opened)
    (rc, out, err), dt = timed(t.cli, "shutdown", "--mode=agent", "--wait", "gb", timeout=90)
    check("shutdown --mode agent --wait -> shut off (shutdown)",
          rc == 0 and t.state("gb") == "shut off (shutdown)", f"{out}{err} {t.state('gb')}")

    # ---- create --paused (transient), destroy, destroy --graceful ----
    rc, out, err = t.cli("create", "--paused", xt)
    check("create --paused -> paused (user)", rc == 0 and t.state("gt") == "paused (user)",
          t.state("gt") + err)
    rc, out, err = t.cli("dominfo", "gt")
    check("created domain is transient", "Persistent:     no" in out, out)
    rc, out, err = t.cli("destroy", "gt")
    rc2, out2, err2 = t.cli("dominfo", "gt")
    check("destroying a transient domain removes it", rc == 0 and rc2 != 0 and
          "failed to get domain 'gt'" in err2, err + err2)
    t.cli("start", "gi")
    rc, out, err = t.cli("destroy", "--graceful", "gi")
    check("destroy --graceful -> shut off (destroyed)",
          rc == 0 and t.state("gi") == "shut off (destroyed)", t.state("gi") + err)

    # ---- two clients racing start ----
    p1, p2 = t.cli_bg("start", "gi"), t.cli_bg("start", "gi")
    o1, e1 = p1.communicate(timeout=30)
    o2, e2 = p2.communicate(timeout=30)
    outcomes = sorted([(p1.returncode, (o1 + e1).strip()), (p2.returncode, (o2 + e2).strip())])
    check("racing start: one succeeds, the other is busy or already running",
          outcomes[0][0] == 0 and outcomes[1][0] != 0 and
          ("is busy: start" in outcomes[1][1] or "already running" in outcomes[1][1]),
          repr(outcomes))
    pids = qemu_pids_named("gi", t.root)
    check("racing start: one QEMU", len(pids) == 1, str(pids))

    # ---- undefine --managed-save ----
    t.cli("start", "gn")
    t.cli("managedsave", "gn")
    rc, out, err = t.cli("undefine", "--managed-save", "gn")
    check("undefine --managed-save", rc == 0 and "has been undefined" in out and
          not os.path.exists(os.path.join(root, "var/lib/tether/save/gn.save")), out + err)

    # ---- kill -9 QEMU -> shut off (crashed) ----
    pid = t.qemu_pid("gi")
    os.kill(pid, signal.SIGKILL)
    st = t.wait_state("gi", "shut off (crashed)", 10)
    check("kill -9 QEMU -> shut off (crashed)", st == "shut off (crashed)", st)

    # ---- autostart + daemon restart ----
    rc, out, err = t.cli("autostart", "gi")
    check("autostart", rc == 0 and "marked as autostarted" in out, out + err)
    t.stop_daemon()
    t.start_daemon()
    st = t.wait_state("gi", "running (booted)", 20)
    check("autostart domain starts when tetherd starts", st == "running (booted)", st)
    t.cli("autostart", "--disable", "gi")

    # ---- kill -9 tetherd with 3 guests running ----
    t.cli("start", "ga")
    t.cli("start", "gb")
    before = {n: (t.state(n), t.qemu_pid(n)) for n in ("ga", "gb", "gi")}
    t.stop_daemon(signal.SIGKILL)
    t.start_daemon()
    after = {n: (t.state(n), t.qemu_pid(n)) for n in ("ga", "gb", "gi")}
    check("kill -9 tetherd: all 3 guests still running with the same QEMUs",
          before == after and all(s.startswith("running") for s, _ in after.values()),
          f"{before} -> {after}")
    rc1, _, e1 = t.cli("suspend", "ga")
    rc2, _, e2 = t.cli("resume", "ga")
    check("reconnected domain is controllable (suspend/resume)",
          rc1 == 0 and rc2 == 0 and t.state("ga") == "running (unpaused)", t.state("ga") + e1 + e2)
    try:
        up, why = uptime(agent_a, wait=60), ""
    except AgentError as e:  # reported, and the destroys below still run
        up, why = -1.0, str(e)
    check("reconnected guest answers its agent (through the restarted tetherd)", up > 0,
          why or f"uptime {up:.1f} s")
    for n in ("ga", "gb", "gi"):
        (rc, out, err), dt = timed(t.cli, "destroy", n)
        check(f"destroy {n} after reconnect -> shut off (destroyed)",
              rc == 0 and t.state(n) == "shut off (destroyed)", t.state(n) + err)
        if n == "ga":
            print(f"  destroy of the 256 MiB guest: {dt:.2f} s")
        check(f"{n}: QEMU gone", not qemu_pids_named(n, t.root))


if __name__ == "__main__":
    sys.exit(main())
