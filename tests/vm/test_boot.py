#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Boot the test guest under QEMU/TCG and check what every VM test relies on.

  tests/vm/test_boot.py [--variant qemu-ga|tether] [--guest DIR] [--build]

It boots tools/mkguest.sh's guest with tools/run-guest.sh and checks: the agent
answers guest-ping within 15 s of QEMU starting (the time is printed), eth0
has 10.0.2.15, /mnt/data is ext4, guest-exec runs /bin/echo, the data disk's
test file reads back, and an ACPI system_powerdown makes QEMU exit within 20 s.
Prints "N passed, N failed"; exit status 1 if anything failed.
"""

import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import qga  # noqa: E402

PING_LIMIT = 15.0
POWERDOWN_LIMIT = 20.0

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}{': ' + detail if detail else ''}")
    else:
        failed += 1
        print(f"FAIL {name}{': ' + detail if detail else ''}")
    return ok


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (QEMU daemonized, so it is not our child).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def ensure_guest(guest, variant, build):
    env = os.path.join(guest, "guest.env")
    initrd = "initrd-qemu-ga.img" if variant == "qemu-ga" else "initrd.img"
    if build or not os.path.exists(os.path.join(guest, initrd)) or not os.path.exists(env):
        cmd = [os.path.join(REPO, "tools", "mkguest.sh"), "--out", guest]
        if variant == "qemu-ga":
            cmd += ["--agent", "qemu-ga"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", default="qemu-ga", choices=["qemu-ga", "tether"])
    ap.add_argument("--guest", default=os.path.join(REPO, "build", "guest"))
    ap.add_argument("--build", action="store_true", help="run mkguest.sh first")
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    ap.add_argument("--run-arg", action="append", default=[],
                    help="extra tools/run-guest.sh argument (repeatable), e.g. --run-arg=--machine=pc")
    o = ap.parse_args()

    ensure_guest(o.guest, o.variant, o.build)
    rundir = tempfile.mkdtemp(prefix="tether-vmtest-")
    pid = None
    try:
        t0 = time.monotonic()
        out = subprocess.run([os.path.join(REPO, "tools", "run-guest.sh"), "--guest", o.guest,
                              "--variant", o.variant, "--dir", rundir, "--name", "tether-boot-test"]
                             + [a for arg in o.run_arg for a in arg.split("=", 1)],
                             check=True, capture_output=True, text=True).stdout
        paths = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        pid = int(paths["PID"])
        qga_sock = os.path.join(rundir, "qga.sock")
        qmp_sock = os.path.join(rundir, "qmp.sock")

        # Two guest-sync-delimited requests, written right after QEMU starts,
        # long before the guest agent opens its port: QEMU holds the bytes, and
        # the agent must answer all of them (the second is the one waited for)
        # when it starts, without any further input. A host client that
        # retries its sync while the guest boots sends exactly this.
        agent = None
        try:
            agent = qga.QGA(qga_sock, timeout=10, sync=False)
            agent.stream.send({"execute": "guest-sync-delimited", "arguments": {"id": 1}},
                              prefix=b"\xff")
            time.sleep(0.3)
            agent.sync(60)
            queued_ok = True
        except (qga.Timeout, OSError) as e:
            queued_ok = False
            queued_err = str(e)
            if agent:
                agent.close()
        boot = time.monotonic() - t0
        if queued_ok:
            # qemu-ga answers the whole backlog at once; a stall here is
            # latency every host client pays while it waits for a booting guest.
            stall = time.monotonic() - agent.stream.first_rx
            check("requests queued before the agent started are answered together",
                  stall < 0.5, f"last reply {stall:.2f} s after the first, {boot:.2f} s after QEMU start")
        else:
            check("requests queued before the agent started are answered", False, queued_err)
        try:
            if not queued_ok:
                agent = qga.wait_for_agent(qga_sock, 30)
                boot = time.monotonic() - t0
            print(f"boot-to-ping: {boot:.2f} s (QEMU start to first guest-ping reply, TCG, {o.variant})")
            check("guest-ping within %.0f s" % PING_LIMIT, boot <= PING_LIMIT and
                  agent.cmd("guest-ping") == {"return": {}}, f"{boot:.2f} s")
        except qga.Timeout as e:
            check("guest-ping within %.0f s" % PING_LIMIT, False, str(e))
            with open(os.path.join(rundir, "serial.log"), errors="replace") as f:
                print(f.read()[-3000:])
            return

        ifaces = agent.check("guest-network-get-interfaces")
        eth0 = [i for i in ifaces if i.get("name") == "eth0"]
        addrs = [a.get("ip-address") for i in eth0 for a in i.get("ip-addresses", [])]
        check("eth0 has 10.0.2.15/24", any(a.get("ip-address") == "10.0.2.15" and a.get("prefix") == 24
                                           for i in eth0 for a in i.get("ip-addresses", [])),
              f"eth0 addresses {addrs}")

        fsinfo = agent.check("guest-get-fsinfo")
        data = [f for f in fsinfo if f.get("mountpoint") == "/mnt/data"]
        check("/mnt/data is ext4 on vda", len(data) == 1 and data[0].get("type") == "ext4" and
              data[0].get("name") == "vda", str([(f.get("mountpoint"), f.get("type")) for f in fsinfo]))

        st = agent.exec("/bin/echo", ["hello", "guest"])
        check("guest-exec /bin/echo", st.get("exitcode") == 0 and st["stdout"] == "hello guest\n",
              repr(st.get("stdout")))

        st = agent.exec("/bin/sh", ["-c", "id tester; hostname; cat /etc/os-release | grep ^ID="])
        check("tester user, hostname, os-release",
              st.get("exitcode") == 0 and st["stdout"] ==
              "uid=1000(tester) gid=1000(tester) groups=1000(tester)\ntether-guest\nID=tether-guest\n",
              repr(st.get("stdout")))

        h = agent.check("guest-file-open", {"path": "/mnt/data/hello.txt", "mode": "r"})
        rd = agent.check("guest-file-read", {"handle": h, "count": 100})
        agent.check("guest-file-close", {"handle": h})
        check("data disk test file", base64.b64decode(rd["buf-b64"]) == b"tether test data\n" and rd["eof"],
              repr(rd))
        agent.close()

        # ACPI power button: acpid in the guest must turn it into a poweroff.
        qmp = qga.QMP(qmp_sock)
        t1 = time.monotonic()
        qmp.check("system_powerdown")
        while alive(pid) and time.monotonic() - t1 < POWERDOWN_LIMIT + 10:
            time.sleep(0.1)
        down = time.monotonic() - t1
        qmp.close()
        print(f"powerdown-to-exit: {down:.2f} s")
        check("system_powerdown exits QEMU within %.0f s" % POWERDOWN_LIMIT,
              not alive(pid) and down <= POWERDOWN_LIMIT, f"{down:.2f} s")
    finally:
        if pid is not None and alive(pid):
            os.kill(pid, signal.SIGKILL)
        if not o.keep:
            shutil.rmtree(rundir, ignore_errors=True)
        else:
            print(f"run directory kept: {rundir}")
        print(f"{passed} passed, {failed} failed")


if __name__ == "__main__":
    main()
    sys.exit(1 if failed or not passed else 0)
