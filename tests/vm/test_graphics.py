#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Video and graphics of tetherd domains against real QEMU 7.2 and a real VNC client.

  tests/vm/test_graphics.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                            [--guest DIR] [--keep]

Checks vncdisplay/domdisplay output, screenshot (QMP screendump, PNG), that the VNC password
is set over QMP and not on QEMU's command line, that gvnccapture (Debian package gvncviewer)
captures a PNG frame of the right size with the password and is refused with a wrong one,
and that QXL + SPICE starts and query-spice (through qemu-monitor-command) shows it listening.
Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import json
import os
import pty
import termios
import select
import shutil
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (REPO, AgentError, Results, Tether, domain_xml,  # noqa: E402
                          load_guest_env)

R = Results()
check = R.check

VNC_PASSWORD = "s3cret"
SPICE_PASSWORD = "sp1ce"


def png_size(path):
    """(width, height) of a PNG file, or None when it is not one."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def gvnccapture(display, out, password, timeout=30):
    """Run gvnccapture on a pty (it reads the password from the terminal); (rc, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("gvnccapture", ["gvnccapture", display, out])
    buf, sent, status = b"", False, None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 1024)
            except OSError:
                data = b""
            buf += data
        # gvnccapture prints the prompt, then turns echo off with a flush of pending input:
        # type only once echo is off, or the password is thrown away and it waits for ever.
        if b"Password:" in buf and not sent:
            try:
                echo_off = not termios.tcgetattr(fd)[3] & termios.ECHO
            except termios.error:
                echo_off = True
            if echo_off:
                os.write(fd, password.encode() + b"\n")
                sent = True
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid:
            status = os.waitstatus_to_exitcode(st)
            # Keep what it printed last (an error message) before the pty goes away.
            while select.select([fd], [], [], 0.1)[0]:
                try:
                    data = os.read(fd, 1024)
                except OSError:
                    break
                if not data:
                    break
                buf += data
            break
    if status is None:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        status = -9
    os.close(fd)
    return status, buf.decode(errors="replace").replace("\r", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    genv = load_guest_env(a.guest)
    t = Tether(a.tetherd, a.tether, "/tmp/tt-gfx-")
    return R.run_suite(t, run, genv, keep=a.keep)


def run(t, genv):
    t.start_daemon()
    vnc = (f"    <graphics type='vnc' autoport='yes' listen='127.0.0.1' passwd='{VNC_PASSWORD}'/>\n"
           "    <video><model type='vga'/></video>\n")
    spice = (f"    <graphics type='spice' autoport='yes' listen='127.0.0.1' passwd='{SPICE_PASSWORD}'/>\n"
             "    <video><model type='qxl'/></video>\n")
    xv = os.path.join(t.root, "gv.xml")
    xs = os.path.join(t.root, "gs.xml")
    with open(xv, "w") as f:
        f.write(domain_xml("gv", genv, memory_mib=128, devices_extra=vnc))
    with open(xs, "w") as f:
        f.write(domain_xml("gs", genv, kernel=False, memory_mib=64, devices_extra=spice))

    rc, out, err = t.cli("define", xv)
    check("define VNC domain", rc == 0, err)
    rc, out, err = t.cli("vncdisplay", "gv")
    check("vncdisplay of a shut off domain is refused", rc != 0 and "not running" in err, err)
    rc, out, err = t.cli("start", "gv")
    check("start VNC domain", rc == 0 and t.state("gv") == "running (booted)", err)

    pid = t.qemu_pid("gv")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read().replace(b"\0", b" ").decode()
    check("VNC password is not on QEMU's command line",
          VNC_PASSWORD not in cmdline and "password=on" in cmdline, cmdline[-200:])

    rc, out, err = t.cli("vncdisplay", "gv")
    check("vncdisplay prints ADDR:N as virsh", rc == 0 and out.endswith("\n\n") and
          out.strip().startswith("127.0.0.1:"), repr(out) + err)
    display = out.strip()
    port = 5900 + int(display.rsplit(":", 1)[1])
    rc, out, err = t.cli("domdisplay", "gv")
    check("domdisplay prints vnc://ADDR:N", rc == 0 and out == f"vnc://{display}\n", repr(out))

    # The display changes mode while the guest boots (640x480, then the BIOS's 720x400 text
    # mode): compare frames once the guest is up, its agent answering.
    try:
        t.agent("gv").wait(60)
        up = ""
    except AgentError as e:
        up = str(e)
    check("gv's guest is up (its agent answers)", not up, up)
    shot = os.path.join(t.root, "shot.png")
    rc, out, err = t.cli("screenshot", "gv", shot)
    check("screenshot", rc == 0 and out == f"Screenshot saved to {shot}, with type of image/png\n\n",
          repr(out) + err)
    size = png_size(shot) if os.path.exists(shot) else None
    check("screenshot is a PNG of the display's size", size is not None and size[0] >= 640
          and size[1] >= 400, str(size))

    if shutil.which("gvnccapture") is None:
        check("gvnccapture installed (apt-get install gvncviewer)", False)
    else:
        bad = os.path.join(t.root, "bad.png")
        rc, out = gvnccapture(display, bad, "wrong")
        check("VNC client with a wrong password is refused",
              rc != 0 and not os.path.exists(bad), out.strip())
        cap = os.path.join(t.root, "cap.png")
        rc, out = gvnccapture(display, cap, VNC_PASSWORD)
        csize = png_size(cap) if os.path.exists(cap) else None
        check("gvnccapture captures a frame from the vncdisplay port with the password",
              rc == 0 and csize is not None, f"rc={rc} {out.strip()!r} size={csize}")
        check("captured frame has the screenshot's size", csize == size, f"{csize} vs {size}")

    rc, out, err = t.cli("qemu-monitor-command", "gv", '{"execute": "query-vnc"}')
    try:
        ret = json.loads(out)["return"]
    except (ValueError, KeyError):
        ret = {}
    check("qemu-monitor-command query-vnc: enabled, auth vnc, our port",
          ret.get("enabled") is True and ret.get("auth") == "vnc" and
          ret.get("service") == str(port), out + err)
    rc, out, err = t.cli("qemu-monitor-command", "gv", '{"execute": "no-such-command"}')
    check("qemu-monitor-command passes QEMU's error", rc != 0 and "no-such-command" in err, err)
    rc, out, err = t.cli("qemu-monitor-command", "gv", "not json")
    check("qemu-monitor-command refuses bad JSON", rc != 0 and "invalid JSON" in err, err)

    # autoport survives a daemon restart (the port is in the status file, not the live XML)
    t.stop_daemon()
    t.start_daemon()
    rc, out, err = t.cli("vncdisplay", "gv")
    check("vncdisplay after a daemon restart", rc == 0 and out.strip() == display, repr(out) + err)

    # QXL + SPICE
    rc, out, err = t.cli("define", xs)
    rc, out, err = t.cli("start", "gs")
    check("QXL + SPICE domain starts", rc == 0 and t.state("gs") == "running (booted)",
          t.state("gs") + err)
    rc, out, err = t.cli("qemu-monitor-command", "gs", '{"execute": "query-spice"}')
    try:
        ret = json.loads(out)["return"]
    except (ValueError, KeyError):
        ret = {}
    sport = ret.get("port")
    check("query-spice: enabled, listening on 127.0.0.1 with a password",
          ret.get("enabled") is True and ret.get("host") == "127.0.0.1" and
          ret.get("auth") == "spice" and isinstance(sport, int), out + err)
    rc, out, err = t.cli("domdisplay", "gs")
    check("domdisplay prints spice://ADDR:PORT", rc == 0 and out == f"spice://127.0.0.1:{sport}\n",
          repr(out) + err)
    rc, out, err = t.cli("vncdisplay", "gs")
    check("vncdisplay of a SPICE-only domain is an error", rc != 0 and "VNC display" in err, err)
    rc, out, err = t.cli("qemu-monitor-command", "gs", '{"execute": "query-display-options"}')
    check("SPICE domain: QMP passthrough works", rc == 0 and '"return"' in out, out + err)
    for n in ("gv", "gs"):
        t.cli("destroy", n)


if __name__ == "__main__":
    sys.exit(main())
