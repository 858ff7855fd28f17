#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""guest-set-time's refusals and failures, safely on the host: the agent runs as nobody (no
CAP_SYS_TIME, so the clock cannot change) with an empty TETHER_AGENT_SYSROOT (no hwclock, no
/dev/rtc0 under it). Checked: a time outside 1970-2069 ("Invalid time: Success", qemu-ga's
text), a valid time the kernel refuses, the read of a missing hardware clock and of one that is
not a clock, and a failing hwclock -s; the host's clock is the same afterwards.

usage: test_settime.py AGENT
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

passed = failed = 0


def check(what, got, want):
    global passed, failed
    if got == want:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s\n  got:  %r\n  want: %r" % (what, got, want), flush=True)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    if os.geteuid() != 0:
        print("test_settime: needs root (to run the agent as nobody)")
        return 1
    agent = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="tether-settime-")
    os.chmod(tmp, 0o755)
    for d in ("run", "state", "sysroot"):
        os.mkdir(os.path.join(tmp, d))
        os.chmod(os.path.join(tmp, d), 0o777)
    sock_path = os.path.join(tmp, "run", "agent.sock")
    log = open(os.path.join(tmp, "agent.log"), "wb")
    env = dict(os.environ, TETHER_AGENT_SYSROOT=os.path.join(tmp, "sysroot"))
    proc = subprocess.Popen([agent, "-m", "unix-listen", "-p", sock_path, "-t",
                             os.path.join(tmp, "state")], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log, env=env, user=65534, group=65534, extra_groups=[])
    s = socket.socket(socket.AF_UNIX)
    before = time.time()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                s.connect(sock_path)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the agent did not come up: " +
                                       open(log.name, errors="replace").read())
                time.sleep(0.01)
        f = s.makefile("rwb", buffering=0)

        def cmd(name, args=None):
            msg = {"execute": name}
            if args is not None:
                msg["arguments"] = args
            f.write(json.dumps(msg).encode())
            return json.loads(f.readline().lstrip(b"\xff"))

        def err(r):
            return r.get("error", {}).get("desc", r)

        check("year 2100", err(cmd("guest-set-time", {"time": 4102444800 * 10**9})),
              "Invalid time: Success")
        check("before 1970", err(cmd("guest-set-time", {"time": -86400 * 10**9})),
              "Invalid time: Success")
        check("a valid time, no CAP_SYS_TIME",
              err(cmd("guest-set-time", {"time": time.time_ns()})),
              "Failed to set time to guest: Operation not permitted")
        check("from the hardware clock, none there", err(cmd("guest-set-time")),
              "cannot open the hardware clock '/dev/rtc0': No such file or directory")
        # The sysroot is read at each call: a /dev/rtc0 that is not a clock, then a hwclock.
        sysroot = os.path.join(tmp, "sysroot")
        os.mkdir(os.path.join(sysroot, "dev"))
        open(os.path.join(sysroot, "dev", "rtc0"), "w").close()
        check("from a hardware clock that is not one", err(cmd("guest-set-time")),
              "cannot read the hardware clock '/dev/rtc0': Inappropriate ioctl for device")
        # With hwclock in the sysroot, the agent runs /sbin/hwclock -s (as nobody it cannot set
        # the clock, and without an hwclock at that path the helper fails the same way).
        os.mkdir(os.path.join(sysroot, "sbin"))
        with open(os.path.join(sysroot, "sbin", "hwclock"), "w") as script:
            script.write("#!/bin/sh\nexit 1\n")
        os.chmod(os.path.join(sysroot, "sbin", "hwclock"), 0o755)
        check("hwclock -s fails", err(cmd("guest-set-time")),
              "hwclock failed to set hardware clock to system time")
        check("a valid time with hwclock, no CAP_SYS_TIME",
              err(cmd("guest-set-time", {"time": time.time_ns()})),
              "Failed to set time to guest: Operation not permitted")
        r = cmd("guest-get-time")
        check("guest-get-time still answers", abs(r.get("return", 0) / 1e9 - time.time()) < 30,
              True)
    finally:
        s.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    check("the agent exits 0 on SIGTERM", proc.returncode, 0)
    text = open(log.name, errors="replace").read()
    check("no sanitizer report",
          [ln for ln in text.splitlines()
           if any(m in ln for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:"))], [])
    check("the host clock did not move", abs(time.time() - before) < 30, True)
    if failed == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
