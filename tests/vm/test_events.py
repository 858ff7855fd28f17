#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""tetherd's event-driven states against real QEMU 7.2 (TCG) and the test guest: a guest panic
(QMP GUEST_PANICKED through the ISA pvpanic device) and guest S3 (QMP SUSPEND, then WAKEUP).

  tests/vm/test_events.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                          [--guest DIR] [--panic-guest DIR] [--agent PATH] [--keep]

The panic needs the guest's pvpanic-mmio driver (the ISA device is ACPI QEMU0001), which the
standard test guest does not load: unless --panic-guest names a guest built with
`tools/mkguest.sh --modules 'pvpanic pvpanic-mmio'`, the test builds one under its temp root
(a few seconds) with the agent next to tetherd in the build tree (or --agent).

Guests (at most 2 QEMUs at once): "gp" (panic, on_crash preserve), "gd" (panic, on_crash
destroy by default) and "gs" (S3). The panics are triggered with sysrq inside these disposable
test guests only. Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (write, REPO, Results, Tether, domain_xml,  # noqa: E402
                          load_guest_env, mark_boot, qemu_pids_named, same_boot)

R = Results()
check = R.check

PANIC_MODULES = "pvpanic pvpanic-mmio"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--panic-guest", help="a guest built with --modules 'pvpanic pvpanic-mmio'")
    ap.add_argument("--agent", help="agent for the panic guest built here "
                    "(default: tether-agent-static or tether-agent next to tetherd's build)")
    ap.add_argument("--keep", action="store_true", help="keep the temp root")
    a = ap.parse_args()

    t = Tether(a.tetherd, a.tether, "/tmp/tt-events-")
    return R.run_suite(t, run, a, keep=a.keep)



def panic_guest(t, a):
    """guest.env of a guest that loads pvpanic-mmio: the caller's, or one built here."""
    if a.panic_guest:
        return load_guest_env(a.panic_guest)
    agent = a.agent
    if agent is None:
        build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(a.tetherd))))
        for name in ("tether-agent-static", "tether-agent"):
            agent = os.path.join(build, "src/agent", name)
            if os.path.exists(agent):
                break
    out = os.path.join(t.root, "panic-guest")
    p = subprocess.run([os.path.join(REPO, "tools/mkguest.sh"), "--agent", agent, "--out", out,
                        "--modules", PANIC_MODULES], capture_output=True, text=True, timeout=300)
    if not check("panic guest built (mkguest.sh --modules 'pvpanic pvpanic-mmio')",
                 p.returncode == 0, p.stderr.strip().splitlines()[-1] if p.stderr else ""):
        raise RuntimeError("cannot build the panic guest")
    return load_guest_env(out)


def panic_xml(name, genv, on_crash):
    x = domain_xml(name, genv, memory_mib=192, devices_extra="    <panic model='isa'/>\n")
    if on_crash:
        x = x.replace("</devices>\n", f"</devices>\n  <on_crash>{on_crash}</on_crash>\n")
    return x


def qmp(t, name, execute):
    """A QMP command through `tether qemu-monitor-command`; its return value (or the reply)."""
    rc, out, err = t.cli("qemu-monitor-command", name, json.dumps({"execute": execute}))
    if rc != 0:
        return f"error: {err}"
    reply = json.loads(out)
    return reply.get("return", reply) if isinstance(reply, dict) else reply


def qemu_status(t, name):
    st = qmp(t, name, "query-status")
    return st.get("status") if isinstance(st, dict) else st


def start_exec(agent, path, args):
    """guest-exec (through tetherd) without waiting for the end (the command takes the guest
    down)."""
    agent.wait(60)
    return agent.spawn(path, args, capture=False)


def crash(agent):
    # The panic waits a second, so that guest-exec's reply leaves the guest before it dies
    # (else the call fails with "Guest agent disappeared while executing command").
    return start_exec(agent, "/bin/sh", ["-c", "sleep 1; echo c > /proc/sysrq-trigger"])


def guest_out(agent, path, args=(), wait=60):
    agent.wait(wait)
    return agent.exec(path, list(args))["stdout"]


def run(t, a):
    genv = load_guest_env(a.guest)
    penv = panic_guest(t, a)
    root = t.root
    t.start_daemon()

    xp = write(os.path.join(root, "gp.xml"), panic_xml("gp", penv, "preserve"))
    xd = write(os.path.join(root, "gd.xml"), panic_xml("gd", penv, None))
    # S3 resume needs the bzImage: the unpacked vmlinux boots through PVH, and a PVH-booted
    # kernel does not come back from S3 (SeaBIOS's resume ends in a fresh boot).
    senv = dict(genv, TETHER_GUEST_KERNEL=genv.get("TETHER_GUEST_KERNEL_BZIMAGE",
                                                   genv["TETHER_GUEST_KERNEL"]))
    xs = write(os.path.join(root, "gs.xml"), domain_xml("gs", senv, memory_mib=192))
    for x in (xp, xd, xs):
        rc, out, err = t.cli("define", x)
        check(f"define {os.path.basename(x)}", rc == 0, out + err)
    rc, out, err = t.cli("dumpxml", "gp")
    check("gp keeps <panic model='isa'/> and <on_crash>preserve</on_crash>",
          "<panic model='isa'/>" in out and "<on_crash>preserve</on_crash>" in out, err)
    # The agents through tetherd (it holds each agent socket).
    gp_agent, gd_agent, gs_agent = (t.agent(n) for n in ("gp", "gd", "gs"))

    # gp and gs boot together (2 QEMUs); gd waits for gp to go.
    for n in ("gp", "gs"):
        rc, out, err = t.cli("start", n)
        check(f"start {n} -> running (booted)", rc == 0 and t.state(n) == "running (booted)",
              t.state(n) + err)
    pid = t.qemu_pid("gp")
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except (OSError, TypeError):
        argv = []
    check("gp's QEMU has -device pvpanic", b"pvpanic" in argv, "")

    # ---- panic with on_crash preserve ----
    mods = guest_out(gp_agent, "/bin/cat", ["/proc/modules"])
    check("gp guest loaded pvpanic_mmio (the ACPI QEMU0001 driver)", "pvpanic_mmio" in mods,
          "" if "pvpanic_mmio" in mods else mods[:200])
    check("gp boot mark set", mark_boot(gp_agent))
    crash(gp_agent)
    st = t.wait_state("gp", "crashed (panicked)", 60)
    check("guest panic, on_crash preserve -> crashed (panicked)", st == "crashed (panicked)", st)
    check("crashed: QEMU kept, paused in guest-panicked",
          len(qemu_pids_named("gp", t.root)) == 1 and qemu_status(t, "gp") == "guest-panicked",
          f"{qemu_status(t, 'gp')} pids {qemu_pids_named('gp', t.root)}")
    rc, out, err = t.cli("list", "--all")
    check("list shows gp crashed", any(ln.split()[1:] == ["gp", "crashed"]
                                       for ln in out.splitlines() if len(ln.split()) == 3),
          out)
    time.sleep(1)  # a duration, not a wait: nothing may change the state meanwhile
    check("crashed stays crashed (the STOP after the panic changes nothing)",
          t.state("gp") == "crashed (panicked)", t.state("gp"))

    # resume of a crashed domain: libvirt (and the table) allow it -> running (unpaused);
    # the guest kernel then finishes its panic (panic=-1: reboot at once) and boots again.
    rc, out, err = t.cli("resume", "gp")
    check("resume crashed -> running (unpaused)",
          rc == 0 and out.strip() == "Domain 'gp' resumed" and
          t.state("gp") == "running (unpaused)", f"{out.strip()} {err} {t.state('gp')}")
    check("after resume the guest rebooted (panic=-1), agent answers",
          not same_boot(gp_agent, 90), "")
    check("guest reboot after resume keeps running (unpaused)",
          t.state("gp") == "running (unpaused)", t.state("gp"))

    crash(gp_agent)
    st = t.wait_state("gp", "crashed (panicked)", 60)
    check("second panic -> crashed (panicked)", st == "crashed (panicked)", st)
    rc, out, err = t.cli("destroy", "gp")
    check("destroy crashed -> shut off (destroyed)",
          rc == 0 and t.state("gp") == "shut off (destroyed)", t.state("gp") + err)
    check("destroy crashed: QEMU gone", not qemu_pids_named("gp", t.root))

    # ---- panic with on_crash destroy (the default) ----
    rc, out, err = t.cli("start", "gd")
    check("start gd -> running (booted)", rc == 0 and t.state("gd") == "running (booted)",
          t.state("gd") + err)

    # ---- S3 on gs (booted above) while gd boots ----
    pm = guest_out(gs_agent, "/bin/cat", ["/sys/power/state"]).split()
    check("gs guest offers S3 (/sys/power/state has mem)", "mem" in pm, " ".join(pm))
    check("gs boot mark set", mark_boot(gs_agent))
    # guest-suspend-ram answers nothing on success: dompmsuspend (libvirt's way) sends it
    # and ends with QEMU's SUSPEND event.
    gs_agent.wait(60)
    rc, out, err = t.cli("dompmsuspend", "gs", "mem")
    check("dompmsuspend gs mem (guest-suspend-ram through tetherd)",
          rc == 0 and out == "Domain 'gs' successfully suspended\n", f"{out!r} {err}")
    st = t.wait_state("gs", "pmsuspended (unknown)", 60)
    check("guest S3 -> pmsuspended (unknown)", st == "pmsuspended (unknown)", st)
    check("pmsuspended: QEMU status suspended", qemu_status(t, "gs") == "suspended",
          str(qemu_status(t, "gs")))
    rc, out, err = t.cli("suspend", "gs")
    check("suspend a pmsuspended domain is refused", rc != 0 and err.startswith("error:"),
          f"rc {rc} {out.strip()} {err}")
    check("still pmsuspended after the refused suspend",
          t.state("gs") == "pmsuspended (unknown)", t.state("gs"))
    ret = qmp(t, "gs", "system_wakeup")
    check("qemu-monitor-command system_wakeup", ret == {}, repr(ret))
    st = t.wait_state("gs", "running (event wakeup)", 30)
    check("WAKEUP -> running (event wakeup)", st == "running (event wakeup)", st)
    check("woken guest: agent answers, same boot (no reboot)", same_boot(gs_agent, 60))
    check("QEMU status running after wakeup", qemu_status(t, "gs") == "running",
          str(qemu_status(t, "gs")))

    # A second guest-suspend-ram after this wakeup does not bring a second SUSPEND event from
    # QEMU 7.2 (the guest goes through its S3 path and is back at once): not tested here.
    rc, out, err = t.cli("destroy", "gs")
    check("destroy gs -> shut off (destroyed)",
          rc == 0 and t.state("gs") == "shut off (destroyed)", t.state("gs") + err)
    check("destroy gs: QEMU gone", not qemu_pids_named("gs", t.root))

    # ---- back to gd: its panic ends QEMU ----
    crash(gd_agent)
    st = t.wait_state("gd", "shut off (crashed)", 60)
    check("guest panic, on_crash destroy -> shut off (crashed)", st == "shut off (crashed)", st)
    deadline = time.monotonic() + 10
    while qemu_pids_named("gd", t.root) and time.monotonic() < deadline:
        time.sleep(0.1)
    check("on_crash destroy: QEMU gone", not qemu_pids_named("gd", t.root))
    rc, out, err = t.cli("start", "gd")
    check("a crashed-off domain starts again", rc == 0 and t.state("gd") == "running (booted)",
          t.state("gd") + err)
    t.cli("destroy", "gd")


if __name__ == "__main__":
    sys.exit(main())
