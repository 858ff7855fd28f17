#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 10's defects that need a booted guest (the others are in tests/host/test_security.py):

- on_reboot destroy: QEMU runs with -no-reboot, and a reboot from inside the guest shuts the
  domain off ("shut off (shutdown)") instead of being ignored (the guest used to reboot), even
  with on_poweroff restart (the reboot follows on_reboot, not the power-off action).
- QEMU without root: `ps` shows tether-qemu; /proc/PID/status has no capabilities and
  seccomp mode 2; QEMU's fd table holds only what it was given (a descriptor tetherd inherited
  without close-on-exec does not reach it); a disk image (root 0600) belongs to tether-qemu for
  the run and gets its owner and mode back after destroy, and after a tetherd restart + destroy.
- A read-only image (root 0600) that two running domains share stays tether-qemu's until the
  last of them stops, in either order of stops and across a tetherd restart, then is root 0600.

  tests/vm/test_security.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                            [--guest DIR] [--keep]

One guest, one tetherd. Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (write, REPO, Results, Tether, domain_xml,  # noqa: E402
                          load_guest_env, qemu_pids_named)

R = Results()
check = R.check


def run(t, a):
    genv = load_guest_env(a.guest)
    t.start_daemon()
    # on_poweroff restart: a reboot must follow on_reboot, not the power-off action.
    xml = domain_xml("rd", genv, memory_mib=192).replace(
        "</devices>\n", "</devices>\n  <on_poweroff>restart</on_poweroff>\n"
        "  <on_reboot>destroy</on_reboot>\n")
    path = write(os.path.join(t.root, "rd.xml"), xml)
    rc, out, err = t.cli("define", path)
    check("define with <on_reboot>destroy</on_reboot>", rc == 0, err)
    rc, out, err = t.cli("dumpxml", "rd")
    check("dumpxml keeps on_reboot destroy", "<on_reboot>destroy</on_reboot>" in out, err)
    rc, out, err = t.cli("start", "rd")
    check("start rd", rc == 0, err)
    pid = t.qemu_pid("rd")
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0") if pid else []
    check("QEMU runs with -no-reboot", b"-no-reboot" in argv, repr(argv[20:30]))
    t.agent("rd").wait(60)
    # A reboot from inside the guest (the agent's guest-shutdown mode=reboot).
    t0 = time.monotonic()
    rc, out, err = t.cli("reboot", "rd", "--mode", "agent")
    check("tether reboot --mode agent is accepted", rc == 0, err)
    st = t.wait_state("rd", "shut off (shutdown)", 60)
    check("a guest reboot with on_reboot destroy: shut off (shutdown)",
          st == "shut off (shutdown)", f"{st} after {time.monotonic() - t0:.1f} s")
    deadline = time.monotonic() + 10
    while qemu_pids_named("rd", t.root) and time.monotonic() < deadline:
        time.sleep(0.2)
    pids = qemu_pids_named("rd", t.root)
    check("its QEMU is gone", pids == [], repr(pids))
    rc, out, err = t.cli("domid", "rd")
    check("no id once shut off", (rc, out.strip()) == (0, "-"), repr((rc, out, err)))
    unprivileged_qemu(t, genv)
    shared_image(t, genv)
    t.stop_daemon()
    log = open(t.log, errors="replace").read()
    check("no sanitizer report from tetherd",
          not any(m in log for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")),
          log[-2000:])


def start_daemon_with_fd(t, fd):
    """Tether.start_daemon, but tetherd inherits fd (no close-on-exec): QEMU must not."""
    logf = open(t.log, "a")
    t.proc = subprocess.Popen([t.tetherd, "--root", t.root, "--verbose"], stdout=logf,
                              stderr=subprocess.STDOUT, pass_fds=(fd,))
    logf.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not os.path.exists(t.sock):
        time.sleep(0.05)
    time.sleep(0.2)


def owner(path):
    st = os.stat(path)
    return (st.st_uid, st.st_gid, st.st_mode & 0o7777)


def unprivileged_qemu(t, genv):
    qemu = pwd.getpwnam("tether-qemu")
    disk = os.path.join(t.root, "qu-disk.img")
    shutil.copyfile(genv["TETHER_GUEST_DATA"], disk)
    os.chown(disk, 0, 0)
    os.chmod(disk, 0o600)
    canary = os.path.join(t.root, "canary")
    # tetherd gets a descriptor without close-on-exec, as from a careless parent.
    t.stop_daemon()
    cfd = os.open(canary, os.O_WRONLY | os.O_CREAT, 0o600)
    start_daemon_with_fd(t, cfd)
    os.close(cfd)
    path = write(os.path.join(t.root, "qu.xml"), domain_xml("qu", genv, disk=disk,
                                                            memory_mib=192))
    rc, out, err = t.cli("define", path)
    check("define qu", rc == 0, err)
    rc, out, err = t.cli("start", "qu")
    check("start qu", rc == 0, err)
    pid = t.qemu_pid("qu")
    user = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True,
                          text=True).stdout.strip()
    check("ps shows QEMU running as tether-qemu", user == "tether-qemu", user)
    status = dict(ln.split(":", 1) for ln in open(f"/proc/{pid}/status").read().splitlines())
    caps = {k: status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")}
    check("QEMU has no capabilities", set(caps.values()) == {"0000000000000000"}, repr(caps))
    check("QEMU runs under a seccomp filter (mode 2)", status["Seccomp"].strip() == "2",
          status["Seccomp"])
    # The guest boots and its agent answers: QEMU works without root.
    t.agent("qu").wait(60)
    check("the guest agent answers under the unprivileged QEMU", True)
    check("the disk belongs to tether-qemu for the run",
          owner(disk) == (qemu.pw_uid, qemu.pw_gid, 0o600), repr(owner(disk)))
    log = os.path.join(t.root, "var/lib/tether/log/qu.log")
    allowed_files = {"/dev/null", log, disk, t.run_path("qu", "qemu.pid")}
    fds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    odd = {fd: target for fd, target in fds.items()
           if target not in allowed_files and
           not target.startswith(("socket:", "anon_inode:", "pipe:", "/dev/pts/", "/dev/ptmx"))}
    check("QEMU's fds are only its own: stdio, the log, its disk, pidfile, sockets, eventfds",
          odd == {}, repr(odd))
    files = sorted(set(v for v in fds.values() if not v.startswith("anon_inode:")))
    check("the descriptor tetherd inherited does not reach QEMU",
          canary not in fds.values(), repr(files))
    check("stdin is /dev/null, stdout and stderr the log",
          (fds.get(0), fds.get(1), fds.get(2)) == ("/dev/null", log, log), repr(files))
    rc, out, err = t.cli("destroy", "qu")
    check("destroy qu", rc == 0, err)
    check("destroy gives the disk back: root 0600",
          owner(disk) == (0, 0, 0o600), repr(owner(disk)))
    check("no dac.json left", not os.path.exists(t.run_path("qu", "dac.json")))
    # Again, with tetherd restarted while QEMU runs: the new tetherd restores the owner.
    rc, out, err = t.cli("start", "qu")
    check("start qu again", rc == 0, err)
    pid = t.qemu_pid("qu")
    check("the disk is tether-qemu's again", owner(disk)[0] == qemu.pw_uid, repr(owner(disk)))
    t.stop_daemon()
    check("QEMU outlives tetherd", pid is not None and os.path.exists(f"/proc/{pid}"))
    t.start_daemon()
    check("the disk stays tether-qemu's while QEMU runs on",
          owner(disk)[0] == qemu.pw_uid, repr(owner(disk)))
    rc, out, err = t.cli("destroy", "qu")
    check("destroy qu after a tetherd restart", rc == 0, err)
    check("after a restart, destroy gives the disk back: root 0600",
          owner(disk) == (0, 0, 0o600), repr(owner(disk)))
    # The same when QEMU dies while tetherd is away (the reconnect finds it gone).
    rc, out, err = t.cli("start", "qu")
    pid = t.qemu_pid("qu")
    t.stop_daemon()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.1)
    t.start_daemon()
    check("QEMU died while tetherd was away: the disk is given back",
          owner(disk) == (0, 0, 0o600), repr(owner(disk)))


def shared_image(t, genv):
    """A read-only image that two running domains use: the first stop leaves it to the other,
    the last one gives it back, whichever order they stop in, across a tetherd restart too."""
    qemu = pwd.getpwnam("tether-qemu")
    shared = os.path.join(t.root, "shared-ro.img")
    shutil.copyfile(genv["TETHER_GUEST_DATA"], shared)
    os.chown(shared, 0, 0)
    os.chmod(shared, 0o600)
    disk = (f"    <disk type='file' device='disk'>\n"
            f"      <driver name='qemu' type='raw'/>\n"
            f"      <source file='{shared}'/>\n"
            f"      <target dev='vdb' bus='virtio'/>\n"
            f"      <readonly/>\n"
            f"    </disk>\n")
    for name in ("sa", "sb"):
        path = write(os.path.join(t.root, f"{name}.xml"),
                     domain_xml(name, genv, memory_mib=128, agent=False, devices_extra=disk))
        rc, out, err = t.cli("define", path)
        check(f"define {name} with the shared read-only image", rc == 0, err)
    given = (qemu.pw_uid, qemu.pw_gid, 0o600)
    for first, last, restart in (("sa", "sb", True), ("sb", "sa", False)):
        for name in ("sa", "sb"):
            rc, out, err = t.cli("start", name)
            check(f"start {name}", rc == 0, err)
        check("the shared image is tether-qemu's while both run", owner(shared) == given,
              repr(owner(shared)))
        rc, out, err = t.cli("destroy", first)
        check(f"destroy {first}", rc == 0, err)
        check(f"{first} stopped, {last} runs on: the shared image stays tether-qemu's",
              owner(shared) == given, repr(owner(shared)))
        if restart:
            t.stop_daemon()
            t.start_daemon()
            check("and after a tetherd restart", owner(shared) == given, repr(owner(shared)))
        rc, out, err = t.cli("destroy", last)
        check(f"destroy {last}", rc == 0, err)
        check(f"the last user ({last}) stopped: the shared image is root 0600 again",
              owner(shared) == (0, 0, 0o600), repr(owner(shared)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--keep", action="store_true", help="keep the temp root")
    a = ap.parse_args()
    t = Tether(a.tetherd, a.tether, "/tmp/tt-security-")
    return R.run_suite(t, run, a, keep=a.keep)


if __name__ == "__main__":
    sys.exit(main())
