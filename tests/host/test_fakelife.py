#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
Lifecycle paths of tetherd that need a guest to react, run against fakeqemu.py (no guest, no
QEMU): the fake answers the ACPI power button as a guest with acpid would (SHUTDOWN, or nothing
for the domain named in FAKEQEMU_DEAF), writes and reads a migration stream through the
descriptors tetherd passes, and emits the events a test asks for with the x-fake-event
command (through `tether qemu-monitor-command`). Checked as a user sees them: the CLI's exact
output and libvirt's state and reason after
- shutdown and reboot by ACPI, --wait, a guest that ignores the button (--timeout, --force),
  --mode agent with an agent that blocks guest-shutdown, and a domain without ACPI;
- save / restore (--paused) and managedsave with the next start restoring; a paused save, a
  transient restore, files that are not images, a save QEMU fails;
- guest events: a panic with each on_crash action, guest suspend and wakeup, a guest
  poweroff with on_poweroff restart;
- graphics with autoport and a password, screenshots, start --paused, reset, a QEMU that
  exits while starting;
- a tetherd restart: transient domains, an unreadable live definition, a QEMU gone meanwhile,
  a broken definition, autostart (a failing one logged);
- the host stop: SIGTERM with --on-shutdown shutdown (the deaf guest destroyed after the
  timeout) and with --on-shutdown managedsave, then --on-boot start restoring.

    python3 test_fakelife.py TETHERD TETHER AGENT
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from fakelib import FAKE as FAKE_PNG_SOURCE, TIMEOUT, Env, check, counts, domain_xml


FAKE_ENV = {"FAKEQEMU_DEAF": "deaf", "FAKEQEMU_FAIL": "fails", "FAKEQEMU_SAVEFAIL": "sf"}


def event(e, name, ev, data=None, running=None):
    args = {"event": ev, "data": data or {}}
    if running is not None:
        args["running"] = running
    e.expect(["qemu-monitor-command", name,
              json.dumps({"execute": "x-fake-event", "arguments": args})], 0,
             '{"return":{}}\n\n')


def free_port(base):
    """The first port from base that binds on 127.0.0.1 now."""
    for port in range(base, base + 100):
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port from %d" % base)


def uuid_for(i):
    return "%08x-0000-4000-8000-%012x" % (0xfa4e0000 + i, i)


def test_power(e):
    e.define("fp", uuid_for(1), acpi=True)
    e.define("deaf", uuid_for(2), acpi=True, agent=False)
    e.define("noacpi", uuid_for(3), agent=False)
    for n in ("fp", "deaf", "noacpi"):
        e.expect(["start", n], 0, "Domain '%s' started\n\n" % n)
        e.record_fake(n)

    e.expect(["shutdown", "fp"], 0, "Domain 'fp' is being shutdown\n\n")
    e.wait_state("fp", "shut off (shutdown)")
    e.expect(["start", "fp"], 0)
    e.record_fake("fp")
    e.expect(["shutdown", "fp", "--wait"], 0, "Domain 'fp' has been shut down\n\n")
    e.expect(["domstate", "fp", "--reason"], 0, "shut off (shutdown)\n\n")
    e.expect(["start", "fp"], 0)
    e.record_fake("fp")
    e.expect(["reboot", "fp"], 0, "Domain 'fp' is being rebooted\n\n")
    e.expect(["domstate", "fp", "--reason"], 0, "running (booted)\n\n")
    # --mode agent is not tried here: this agent runs on the host (the VM suites test it in
    # a guest). A machine-changing command never goes to it, allowed or not.
    e.expect(["shutdown", "fp", "--wait"], 0, "Domain 'fp' has been shut down\n\n")
    e.expect(["shutdown", "fp", "--mode", "bogus"], 1, "",
             "error: Unknown mode bogus value, expecting 'acpi', 'agent', 'initctl', 'signal', "
             "or 'paravirt'\n")
    e.expect(["shutdown", "fp"], 1, "",
             "error: Requested operation is not valid: domain is not running\n")

    e.expect(["shutdown", "deaf", "--wait", "--timeout", "1"], 1, "",
             "error: domain deaf did not shut down within 1 s: the guest ignored the ACPI power "
             "button (no acpid in the guest?); use --mode agent, --force or destroy\n")
    e.expect(["domstate", "deaf", "--reason"], 0, "running (booted)\n\n")
    e.expect(["reboot", "deaf", "--mode", "agent"], 1, "",
             "error: argument unsupported: QEMU guest agent is not configured\n")
    e.expect(["shutdown", "deaf", "--wait", "--timeout", "1", "--force"], 0,
             "Domain 'deaf' did not shut down in time and was destroyed\n\n")
    e.expect(["domstate", "deaf", "--reason"], 0, "shut off (destroyed)\n\n")

    noacpi = ("error: Requested operation is not valid: domain noacpi has no ACPI "
              "(<features><acpi/>), so the guest cannot see the power button; use --mode agent "
              "or destroy\n")
    e.expect(["shutdown", "noacpi"], 1, "", noacpi)
    e.expect(["reboot", "noacpi"], 1, "", noacpi)
    e.expect(["suspend", "noacpi"], 0, "Domain 'noacpi' suspended\n\n")
    e.expect(["domstate", "noacpi", "--reason"], 0, "paused (user)\n\n")
    # As libvirt: suspending a paused domain succeeds and changes nothing.
    e.expect(["suspend", "noacpi"], 0, "Domain 'noacpi' suspended\n\n")
    e.expect(["domstate", "noacpi", "--reason"], 0, "paused (user)\n\n")
    e.expect(["resume", "noacpi"], 0, "Domain 'noacpi' resumed\n\n")
    e.expect(["domstate", "noacpi", "--reason"], 0, "running (unpaused)\n\n")
    e.expect(["destroy", "noacpi"], 0, "Domain 'noacpi' destroyed\n\n")


def test_save(e):
    image = os.path.join(e.tmp, "fs.save")
    e.define("fs", uuid_for(10), agent=False)
    e.expect(["start", "fs"], 0)
    e.record_fake("fs")
    e.expect(["save", "fs", image], 0, "\nDomain 'fs' saved to %s\n\n" % image)
    e.expect(["domstate", "fs", "--reason"], 0, "shut off (saved)\n\n")
    with open(image, "rb") as f:
        head = f.read(16)
    check(head == b"TetherSave\0\0\0\0\0\0", "the image is complete", repr(head))
    e.expect(["restore", image], 0, "Domain restored from %s\n\n" % image)
    e.record_fake("fs")
    e.expect(["domstate", "fs", "--reason"], 0, "running (restored)\n\n")
    e.expect(["save", "fs", image], 0)
    e.expect(["restore", image, "--paused"], 0, "Domain restored from %s\n\n" % image)
    e.record_fake("fs")
    e.expect(["domstate", "fs", "--reason"], 0, "paused (user)\n\n")
    e.expect(["resume", "fs"], 0)
    # managedsave: the next start restores; managedsave-remove drops the image.
    e.expect(["managedsave", "fs"], 0, "\nDomain 'fs' state saved by tether\n\n")
    e.expect(["domstate", "fs", "--reason"], 0, "shut off (saved)\n\n")
    e.expect(["start", "fs"], 0, "Domain 'fs' started\n\n")
    e.record_fake("fs")
    e.expect(["domstate", "fs", "--reason"], 0, "running (restored)\n\n")
    e.expect(["managedsave", "fs"], 0)
    e.expect(["managedsave-remove", "fs"], 0,
             "Removed managedsave image for domain 'fs'\n\n")
    e.expect(["start", "fs"], 0)
    e.record_fake("fs")
    e.expect(["domstate", "fs", "--reason"], 0, "running (booted)\n\n")
    # A stream the fake did not write: the restore fails with QEMU's reason and nothing runs.
    e.expect(["save", "fs", image], 0)
    with open(image, "r+b") as f:
        f.seek(4096)
        f.write(b"GARBAGE")
    rc, out, err = e.expect(["restore", image], 1, "")
    check("fakeqemu: not a stream it wrote" in err, "restore of a bad stream: QEMU's reason",
          err)
    e.expect(["domstate", "fs", "--reason"], 0, "shut off (failed)\n\n")


def test_save_more(e):
    """A paused save restores paused, a restore without a definition is transient, refusals of
    files that are not images, a save that QEMU fails (the domain runs on, no file left)."""
    image = os.path.join(e.tmp, "ft.save")
    e.define("ft", uuid_for(11), agent=False)
    e.expect(["start", "ft"], 0)
    e.record_fake("ft")
    e.expect(["suspend", "ft"], 0)
    e.expect(["save", "ft", image], 0, "\nDomain 'ft' saved to %s\n\n" % image)
    e.expect(["restore", image], 0, "Domain restored from %s\n\n" % image)
    e.record_fake("ft")
    e.expect(["domstate", "ft", "--reason"], 0, "paused (user)\n\n")
    e.expect(["destroy", "ft"], 0)
    e.expect(["undefine", "ft"], 0, "Domain 'ft' has been undefined\n\n")
    e.expect(["restore", image], 0, "Domain restored from %s\n\n" % image)
    e.record_fake("ft")
    rc, out, err = e.expect(["dominfo", "ft"], 0)
    check("\nPersistent:     no\n" in out and "\nState:          paused\n" in out,
          "a restore without a definition is transient", out)
    e.expect(["destroy", "ft"], 0)
    e.expect(["domstate", "ft"], 1, "", "error: failed to get domain 'ft'\n")
    # The same name with another UUID is another domain.
    e.define("ft", uuid_for(12), agent=False)
    e.expect(["restore", image], 1, "",
             "error: operation failed: domain 'ft' already exists with uuid %s\n" % uuid_for(12))
    junk = os.path.join(e.tmp, "junk")
    with open(junk, "w") as f:
        f.write("hello")
    e.expect(["restore", junk], 1, "", "error: '%s' is not a Tether save image\n" % junk)
    e.expect(["restore", junk + ".missing"], 1, "",
             "error: cannot open save image '%s.missing': No such file or directory\n" % junk)

    e.define("sf", uuid_for(13), agent=False)
    e.expect(["start", "sf"], 0)
    e.record_fake("sf")
    failed = os.path.join(e.tmp, "sf.save")
    e.expect(["save", "sf", failed], 1, "", "error: operation failed: saving domain sf failed: "
             "fakeqemu: save failed as asked\n")
    e.expect(["domstate", "sf", "--reason"], 0, "running (save canceled)\n\n")
    check(not os.path.exists(failed) or os.path.getsize(failed) == 0,
          "a failed save leaves no image")
    e.expect(["managedsave", "sf"], 1, "", "error: operation failed: saving domain sf failed: "
             "fakeqemu: save failed as asked\n")
    rc, out, err = e.expect(["dominfo", "sf"], 0)
    check("\nManaged save:   no\n" in out, "a failed managedsave leaves no image", out)
    e.expect(["save", "sf", "/nonexistent/dir/x.save"], 1, "",
             "error: cannot create save image '/nonexistent/dir/x.save': No such file or "
             "directory\n")
    e.expect(["destroy", "sf"], 0)


def test_events(e):
    e.define("fc", uuid_for(20), agent=False)
    e.define("fk", uuid_for(21), agent=False, extra="<on_crash>preserve</on_crash>"
             "<on_poweroff>restart</on_poweroff>")
    for n in ("fc", "fk"):
        e.expect(["start", n], 0)
        e.record_fake(n)
    event(e, "fc", "GUEST_PANICKED", {"action": "pause"}, running=False)
    e.wait_state("fc", "shut off (crashed)")
    event(e, "fk", "GUEST_PANICKED", {"action": "pause"}, running=False)
    e.wait_state("fk", "crashed (panicked)")
    e.expect(["destroy", "fk"], 0)
    e.expect(["start", "fk"], 0)
    e.record_fake("fk")
    event(e, "fk", "SUSPEND")
    e.wait_state("fk", "pmsuspended (unknown)")
    event(e, "fk", "WAKEUP")
    e.wait_state("fk", "running (event wakeup)")  # virsh's text
    # on_poweroff restart: a guest poweroff starts the domain again.
    event(e, "fk", "SHUTDOWN", {"guest": True, "reason": "guest-shutdown"}, running=False)
    e.wait_state("fk", "running (booted)")
    e.record_fake("fk")
    e.expect(["destroy", "fk"], 0)


def test_misc(e):
    """Graphics (autoport, a password over QMP), screenshots, start --paused, reset, a QEMU
    that exits while starting."""
    e.define("gr", uuid_for(40), agent=False, extra="",
             devices="<graphics type='vnc' autoport='yes' passwd='sekrit'/>"
                     "<graphics type='spice' autoport='yes'/><video><model type='vga'/></video>")
    e.expect(["start", "gr"], 0, "Domain 'gr' started\n\n")
    e.record_fake("gr")
    rc, out, err = e.expect(["vncdisplay", "gr"], 0)
    display = out.split("\n")[0]
    check(display.startswith("127.0.0.1:") and display[10:].isdigit(), "vncdisplay", out)
    port = 5900 + int(display[10:]) if display[10:].isdigit() else 0
    # The password is not shown; --all lists SPICE too, on a port of its own.
    e.expect(["domdisplay", "gr"], 0, "vnc://%s\n" % display)
    rc, out, err = e.expect(["domdisplay", "gr", "--all"], 0)
    lines = out.splitlines()
    check(len(lines) == 2 and lines[0] == "vnc://" + display and
          lines[1].startswith("spice://127.0.0.1:") and
          lines[1] != "spice://127.0.0.1:%d" % port, "domdisplay --all", out)
    e.expect(["domdisplay", "gr", "--type", "spice"], 0, lines[1] + "\n" if len(lines) > 1
             else None)
    # SPICE's autoport never takes the port of the domain's VNC: QEMU binds neither before it
    # starts (it did, when 5900 was taken and both were given 5901).
    vnc = free_port(5901)
    e.define("gp", uuid_for(43), agent=False,
             devices="<graphics type='vnc' port='%d' autoport='no'/>"
                     "<graphics type='spice' autoport='yes'/>" % vnc)
    e.expect(["start", "gp"], 0)
    e.record_fake("gp")
    rc, out, err = e.expect(["domdisplay", "gp", "--all"], 0)
    lines = out.splitlines()
    check(len(lines) == 2 and lines[0] == "vnc://127.0.0.1:%d" % (vnc - 5900) and
          lines[1].startswith("spice://127.0.0.1:") and
          lines[1] != "spice://127.0.0.1:%d" % vnc, "SPICE autoport skips the VNC port", out)
    e.expect(["destroy", "gp"], 0)
    shot = os.path.join(e.tmp, "gr.png")
    e.expect(["screenshot", "gr", shot], 0,
             "Screenshot saved to %s, with type of image/png\n\n" % shot)
    with open(FAKE_PNG_SOURCE) as f:
        src = f.read()
    want = bytes.fromhex("".join(src.split("SCREEN_PNG = bytes.fromhex(")[1].split(")")[0]
                                 .replace('"', "").split()))
    check(os.path.exists(shot) and open(shot, "rb").read() == want,
          "screenshot: the bytes QEMU wrote")
    e.expect(["destroy", "gr"], 0)
    e.expect(["vncdisplay", "gr"], 1, "",
             "error: Requested operation is not valid: domain is not running\n")

    e.define("pz", uuid_for(41), agent=False)
    e.expect(["start", "pz", "--paused"], 0, "Domain 'pz' started\n\n")
    e.record_fake("pz")
    e.expect(["domstate", "pz", "--reason"], 0, "paused (user)\n\n")
    e.expect(["qemu-monitor-command", "pz", '{"execute":"query-status"}', "--pretty"], 0,
             '{\n  "return": {\n    "status": "paused",\n    "singlestep": false,\n'
             '    "running": false\n  }\n}\n\n')
    e.expect(["reset", "pz"], 0, "Domain 'pz' was reset\n\n")
    e.expect(["destroy", "pz"], 0)

    # QEMU that exits at once: libvirt's error with the last line of its log.
    e.define("fails", uuid_for(42), agent=False)
    e.expect(["start", "fails"], 1, "",
             "error: internal error: QEMU exited while starting: fakeqemu: failing to start as "
             "asked\n")
    e.expect(["domstate", "fails", "--reason"], 0, "shut off (failed)\n\n")


def test_reconnect(e):
    """A tetherd restart: a transient domain comes back transient, an unreadable live
    definition kills its QEMU (shut off (daemon)), a QEMU gone meanwhile is shut off (crashed),
    a broken definition is skipped with its reason, autostart starts (and logs a failure)."""
    path = os.path.join(e.tmp, "rt.xml")
    with open(path, "w") as f:
        f.write(domain_xml("rt", uuid_for(50), agent=False))
    e.expect(["create", path], 0)
    e.record_fake("rt")
    for i, n in enumerate(("rlx", "rgone")):
        e.define(n, uuid_for(51 + i), agent=False)
        e.expect(["start", n], 0)
        e.record_fake(n)
    e.define("fails", uuid_for(42), agent=False)  # FAKEQEMU_FAIL: its QEMU exits at once
    e.define("rauto", uuid_for(53), agent=False)
    e.expect(["autostart", "fails"], 0, "Domain 'fails' marked as autostarted\n\n")
    e.expect(["autostart", "rauto"], 0, "Domain 'rauto' marked as autostarted\n\n")
    gone = e.fakes[-1]
    e.stop()
    with open(os.path.join(e.root, "run/tether/domains/rlx/domain.xml"), "w") as f:
        f.write("<domain")
    os.kill(gone, signal.SIGTERM)
    deadline = time.monotonic() + TIMEOUT
    while os.path.exists("/proc/%d" % gone) and time.monotonic() < deadline:
        try:
            os.waitpid(gone, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.02)
    with open(os.path.join(e.root, "etc/tether/domains/rbad.xml"), "w") as f:
        f.write("<domain><name>rbad</name>")
    e.start()
    rc, out, err = e.expect(["dominfo", "rt"], 0)
    check("\nState:          running\n" in out and "\nPersistent:     no\n" in out,
          "a transient domain reconnects transient", out)
    e.expect(["domstate", "rlx", "--reason"], 0, "shut off (daemon)\n\n")
    e.expect(["domstate", "rgone", "--reason"], 0, "shut off (crashed)\n\n")
    e.wait_state("rauto", "running (booted)")
    e.record_fake("rauto")
    e.wait_state("fails", "shut off (failed)")
    e.expect(["domstate", "rbad"], 1, "", "error: failed to get domain 'rbad'\n")
    for line in ["rbad: ignoring definition: not well-formed XML at line 1: ",
                 "rlx: its live definition is unreadable; killing its QEMU (pid ",
                 "rt: reconnected to QEMU pid ",
                 "autostart failed: internal error: QEMU exited while starting: fakeqemu: "
                 "failing to start as asked"]:
        check(e.wait_log(line), "the log says: " + line, e.log_text()[-3000:])
    for n in ("rt", "rauto"):
        e.expect(["destroy", n], 0)
    for n in ("fails", "rauto"):
        e.expect(["autostart", n, "--disable"], 0, "Domain '%s' unmarked as autostarted\n\n" % n)
    os.unlink(os.path.join(e.root, "etc/tether/domains/rbad.xml"))


def test_hoststop(e):
    e.define("hs1", uuid_for(30), acpi=True, agent=False)
    e.define("deaf", uuid_for(2), acpi=True, agent=False)
    for n in ("hs1", "deaf"):
        e.expect(["start", n], 0)
        e.record_fake(n)
    e.stop()
    e.start(["--on-shutdown", "shutdown", "--shutdown-timeout", "2"])
    t0 = time.monotonic()
    e.stop()
    took = time.monotonic() - t0
    log = e.log_text()
    check(e.proc.returncode == 0, "tetherd exits 0 after the host stop", str(e.proc.returncode))
    check("host stop: hs1: shut down" in log, "the log: hs1 shut down", log[-2000:])
    check("host stop: deaf: destroyed: it did not shut down within the" in log or
          "host stop: the shutdown-timeout of 2 s has passed" in log,
          "the log: deaf destroyed after the timeout", log[-2000:])
    check(1.5 < took < 15, "the host stop took the timeout (%.1f s)" % took)
    # As libvirt after a daemon restart: inactive domains are "shut off (unknown)".
    e.start()
    e.expect(["domstate", "hs1", "--reason"], 0, "shut off (unknown)\n\n")
    e.expect(["domstate", "deaf", "--reason"], 0, "shut off (unknown)\n\n")

    # managedsave, then the next start restores what it saved.
    e.expect(["start", "hs1"], 0)
    e.record_fake("hs1")
    e.stop()
    e.start(["--on-shutdown", "managedsave"])
    e.stop()
    check(e.wait_log("host stop: hs1: saved (managedsave)"), "the log: hs1 saved")
    e.start(["--on-boot", "start"])
    e.wait_state("hs1", "running (restored)")
    e.record_fake("hs1")
    check(e.wait_log("on-boot: hs1: restored"), "the log: hs1 restored")

    # A transient domain has no managed save: it is shut down. --on-boot ignore leaves the
    # saved ones saved (and keeps the record); an image removed since, or a domain undefined
    # since, is said so at the next start.
    e.define("hs2", uuid_for(31), acpi=True, agent=False)
    e.define("hs3", uuid_for(32), acpi=True, agent=False)
    for n in ("hs2", "hs3"):
        e.expect(["start", n], 0)
        e.record_fake(n)
    path = os.path.join(e.tmp, "tr.xml")
    with open(path, "w") as f:
        f.write(domain_xml("tr", uuid_for(33), agent=False, acpi=True))
    e.expect(["create", path], 0, "Domain 'tr' created from %s\n\n" % path)
    e.record_fake("tr")
    e.stop()
    e.start(["--on-shutdown", "managedsave"])
    e.stop()
    log = e.log_text()
    check("host stop: tr: transient (no managed save): shutting it down" in log and
          "host stop: tr: shut down" in log, "the log: the transient domain shut down",
          log[-2000:])
    e.start(["--on-boot", "ignore"])
    check(e.wait_log("on-boot: hs1: saved by the last host stop; left saved (on-boot ignore)"),
          "the log: on-boot ignore", e.log_text()[-2000:])
    rc, out, err = e.expect(["dominfo", "hs1"], 0)
    check("\nState:          shut off\n" in out and "\nManaged save:   yes\n" in out,
          "on-boot ignore: hs1 stays saved", out)
    e.expect(["managedsave-remove", "hs2"], 0,
             "Removed managedsave image for domain 'hs2'\n\n")
    e.expect(["undefine", "hs3", "--managed-save"], 0)
    e.stop()
    e.start(["--on-boot", "start"])
    e.wait_state("hs1", "running (restored)")
    e.record_fake("hs1")
    check(e.wait_log("on-boot: hs2: its managed-save image is gone: left shut off"),
          "the log: an image gone since", e.log_text()[-2000:])
    check(e.wait_log("on-boot: hs3: saved by the last host stop but no longer defined"),
          "the log: a domain undefined since", e.log_text()[-2000:])
    e.expect(["domstate", "hs2", "--reason"], 0, "shut off (unknown)\n\n")
    e.expect(["destroy", "hs1"], 0)


def test_early_sigterm(e):
    """SIGTERM before tetherd is up (here: while it waits for its config on a pipe, as with
    `--config <(...)`): tetherd finishes starting, then runs the host stop (the running guest
    is saved) and exits 0. It used to catch signals only once it listened: killed at once,
    the guest left unsaved."""
    e.define("es", uuid_for(50), acpi=True, agent=False)
    e.expect(["start", "es"], 0)
    e.record_fake("es")
    e.stop()
    fifo = os.path.join(e.tmp, "tetherd-conf.fifo")
    os.mkfifo(fifo)
    e.start(["--on-shutdown", "managedsave", "--config", fifo], wait=False)

    def waiting_on_fifo():
        try:
            with open("/proc/%d/wchan" % e.proc.pid) as f:
                return f.read() == "wait_for_partner"
        except OSError:
            return False

    deadline = time.monotonic() + TIMEOUT
    while not waiting_on_fifo() and e.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if not check(waiting_on_fifo(), "tetherd waits for its config on the pipe"):
        return
    e.proc.send_signal(signal.SIGTERM)
    with open(fifo, "w") as f:
        f.write("[lifecycle]\nshutdown-timeout = 20\n")
    try:
        rc = e.proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "SIGTERM before tetherd was up: it exits 0", "exit status %r" % rc)
    check("host stop: es: saved (managedsave)" in e.log_text(),
          "SIGTERM before tetherd was up: the host stop saved es", e.log_text()[-1500:])
    e.stop()
    e.start()  # on-boot's default restores what the host stop saved
    e.wait_state("es", "running (restored)")
    e.record_fake("es")
    e.expect(["destroy", "es"], 0)
    e.expect(["undefine", "es"], 0)


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    tetherd, tether, agent = (os.path.abspath(a) for a in sys.argv[1:])
    tmp = tempfile.mkdtemp(prefix="tether-fakelife-")
    os.chmod(tmp, 0o755)
    e = Env(tetherd, tether, agent, tmp, env=FAKE_ENV)
    try:
        test_power(e)
        test_save(e)
        test_save_more(e)
        test_events(e)
        test_misc(e)
        test_reconnect(e)
        test_hoststop(e)
        test_early_sigterm(e)
    finally:
        e.cleanup()
    if counts["failed"] == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (counts["passed"], counts["failed"]))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
