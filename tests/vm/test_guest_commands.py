#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""tether-agent's commands that change the guest, inside a real QEMU test guest.

These commands (set-time, fsfreeze, fstrim, suspend, set-vcpus, set-memory-blocks,
set-user-password, ssh keys, shutdown) are never sent to an agent on the build host: this
test boots the busybox test guest (tools/mkguest.sh, tools/run-guest.sh) under TCG and talks
to the agent in it through the virtio-serial chardev socket. One guest runs at a time; only
the QEMU this test started is ever killed, by its pid.

  test_guest_commands.py --agent BUILD/src/agent/tether-agent   # builds a guest first
  test_guest_commands.py --guest DIR                             # a mkguest.sh output

Prints "N passed, N failed"; exit status 0 only when nothing failed.
"""

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import qga  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import crypt  # Python <= 3.12
    except ImportError:
        crypt = None

NS = 1_000_000_000
FROZEN_TEXT = "Command {} has been disabled: the agent is in frozen state"


class Guest:
    """One test guest: QEMU started by run-guest.sh, stopped by its own pid."""

    def __init__(self, guest_dir, name):
        self.dir = tempfile.mkdtemp(prefix="guestcmds-vm-")
        subprocess.run([os.path.join(REPO, "tools", "run-guest.sh"), "--guest", guest_dir,
                        "--dir", self.dir, "--name", name, "--smp", "2"],
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "qemu.pid")) as f:
            self.pid = int(f.read().strip())
        self.qga_path = os.path.join(self.dir, "qga.sock")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.q = qga.wait_for_agent(self.qga_path, 120)
        self.q.timeout = 30.0

    def alive(self):
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.2)
        return False

    def stop(self):
        try:
            self.q.close()
        except OSError:
            pass
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            if not self.wait_exit(10):
                os.kill(self.pid, signal.SIGKILL)
                self.wait_exit(5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def reconnect(self, timeout=60):
        try:
            self.q.close()
        except OSError:
            pass
        self.q = qga.wait_for_agent(self.qga_path, timeout)
        self.q.timeout = 30.0


# ---- small helpers over the agent ----

def reply(q, name, args=None, timeout=15.0):
    """Send a command and read whatever comes back (for commands with no success reply
    too); None when nothing arrives within timeout."""
    msg = {"execute": name}
    if args is not None:
        msg["arguments"] = args
    q.stream.send(msg)
    try:
        return q.stream.recv(time.monotonic() + timeout)
    except qga.Timeout:
        return None


def sh(q, cmd, timeout=30):
    st = q.exec("/bin/sh", ["-c", cmd], timeout=timeout)
    return st.get("exitcode"), st["stdout"]


def read_file(q, path):
    h = q.check("guest-file-open", {"path": path, "mode": "r"})
    data = b""
    while True:
        r = q.check("guest-file-read", {"handle": h, "count": 65536})
        data += base64.b64decode(r.get("buf-b64", ""))
        if r["eof"] or r["count"] == 0:
            break
    q.check("guest-file-close", {"handle": h})
    return data


def write_file(q, path, data):
    h = q.check("guest-file-open", {"path": path, "mode": "w"})
    q.check("guest-file-write", {"handle": h, "buf-b64": base64.b64encode(data).decode()})
    q.check("guest-file-close", {"handle": h})


def guest_time(q):
    return q.check("guest-get-time") / NS


def agent_replaced(g, kill_cmd, during=None, timeout=60):
    """Run kill_cmd in the guest (in the background, after the reply has gone out), then
    during() if given; wait until the agent's port is open again, and reconnect.

    The port was open: QMP's VSERPORT_CHANGE with open true means it closed and opened again
    (QEMU sends at most one of these events a second per port, the last state: a close and an
    open within the second arrive as the open alone)."""
    with qga.QMP(g.qmp_path) as m:
        sh(g.q, f"({kill_cmd}) >/dev/null 2>&1 </dev/null &")
        if during:
            during()
        deadline = time.monotonic() + timeout
        while True:
            ev = m.stream.recv(deadline)  # qga.Timeout at the deadline
            if ev.get("event") == "VSERPORT_CHANGE" and ev["data"].get("open") is True:
                break
    g.reconnect()


def wait_guest_file(q, path, timeout=30):
    """The stripped contents of a file the guest writes in the background, once it exists."""
    deadline = time.monotonic() + timeout
    while True:
        code, out = sh(q, f"cat {path} 2>/dev/null")
        if (code == 0 and out.strip()) or time.monotonic() > deadline:
            return code, out
        time.sleep(0.1)


def restart_agent(g, conf):
    """Install /etc/tether/agent.conf and restart the agent (the guest's supervisor starts
    the new one); reconnect to it."""
    sh(g.q, "mkdir -p /etc/tether")
    write_file(g.q, "/etc/tether/agent.conf", conf.encode())
    agent_replaced(g, "sleep 0.5; kill $(pidof tether-agent)")


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name} {detail}")

    def eq(self, name, got, want):
        self.check(name, got == want, f"\n  got:  {got!r}\n  want: {want!r}")

    def error(self, name, rep, desc, cls="GenericError"):
        self.eq(name, rep, {"error": {"class": cls, "desc": desc}})


# ---- the tests; each gets the results and the guest ----

def test_shutdown_invalid(r, g):
    r.error("shutdown: invalid mode", reply(g.q, "guest-shutdown", {"mode": "nap"}),
            "mode is invalid (valid values are: halt|powerdown|reboot")


def test_set_time(r, g):
    q = g.q
    r.error("set-time: before 1970", reply(q, "guest-set-time", {"time": -NS * NS}),
            "Invalid time: Success")
    r.error("set-time: after 2069", reply(q, "guest-set-time", {"time": 5 * NS * NS}),
            "Invalid time: Success")
    tol = 20

    def near(name, want):
        got = guest_time(q)
        r.check(name, abs(got - want) < tol, f"guest {got:.0f} want {want:.0f}")

    # with /sbin/hwclock (busybox): settimeofday, then hwclock -w
    t = time.time() - 3600
    r.eq("set-time: with time (hwclock)", reply(q, "guest-set-time", {"time": int(t * NS)}),
         {"return": {}})
    near("set-time: get-time agrees", t)
    sh(q, f"date -s @{int(time.time()) + 5000} >/dev/null")
    near("set-time: date -s moved the system clock only", time.time() + 5000)
    # without time: hwclock -s reads back what -w wrote
    r.eq("set-time: without time (hwclock -s)", reply(q, "guest-set-time"), {"return": {}})
    near("set-time: clock back from the RTC", time.time() - 3600)

    # no hwclock at all: we talk to /dev/rtc0 ourselves (qemu-ga fails here)
    code, _ = sh(q, "rm -f /sbin/hwclock /usr/sbin/hwclock /bin/hwclock /usr/bin/hwclock")
    t = time.time() + 86400
    r.eq("set-time: with time (no hwclock, RTC ioctl)",
         reply(q, "guest-set-time", {"time": int(t * NS)}), {"return": {}})
    near("set-time: get-time agrees (no hwclock)", t)
    sh(q, f"date -s @{int(time.time())} >/dev/null")
    r.eq("set-time: without time (no hwclock, RTC ioctl)", reply(q, "guest-set-time"),
         {"return": {}})
    near("set-time: clock back from the RTC (no hwclock)", time.time() + 86400)
    # leave the guest on the host's time (the freeze tests compare clocks)
    r.eq("set-time: restore", reply(q, "guest-set-time", {"time": time.time_ns()}),
         {"return": {}})
    near("set-time: restored", time.time())


def test_fsfreeze(r, g):
    q = g.q
    r.eq("fsfreeze: status thawed", q.cmd("guest-fsfreeze-status"), {"return": "thawed"})
    # a writer that blocks on the frozen file system until the thaw
    sh(q, "rm -f /run/probe-done; (sleep 2; echo x > /mnt/data/probe; sync; "
          "date +%s > /run/probe-done) >/dev/null 2>&1 </dev/null &")
    t_freeze = time.time()
    r.eq("fsfreeze: freeze", q.cmd("guest-fsfreeze-freeze"), {"return": 1})
    r.eq("fsfreeze: status frozen", q.cmd("guest-fsfreeze-status"), {"return": "frozen"})
    for name in ("guest-get-time", "guest-exec", "guest-file-open", "guest-fsfreeze-freeze",
                 "guest-fstrim", "guest-set-time"):
        r.error(f"fsfreeze: {name} disabled while frozen", reply(q, name),
                FROZEN_TEXT.format(name), "CommandNotFound")
    r.eq("fsfreeze: ping while frozen", q.cmd("guest-ping"), {"return": {}})
    r.check("fsfreeze: info while frozen", "return" in q.cmd("guest-info"))
    # A duration, not a wait: frozen for 5 s, with the writer's write (2 s in) blocked; nothing
    # in the guest can be asked meanwhile (guest-exec is disabled while frozen).
    time.sleep(5)
    t_thaw = time.time()
    r.eq("fsfreeze: thaw", q.cmd("guest-fsfreeze-thaw"), {"return": 1})
    r.eq("fsfreeze: status thawed again", q.cmd("guest-fsfreeze-status"), {"return": "thawed"})
    code, out = wait_guest_file(q, "/run/probe-done")
    done = int(out.strip() or 0)
    r.check("fsfreeze: the write waited for the thaw", done >= t_thaw - 2,
            f"write done at {done}, freeze {t_freeze:.0f}, thaw {t_thaw:.0f}")
    r.eq("fsfreeze: thaw when thawed", q.cmd("guest-fsfreeze-thaw"), {"return": 0})
    code, _ = sh(q, "test -e /run/agent/qga.state.isfrozen")
    r.check("fsfreeze: no isfrozen file after thaw", code == 1)

    r.eq("freeze-list: /mnt/data",
         q.cmd("guest-fsfreeze-freeze-list", {"mountpoints": ["/mnt/data", "/nope"]}),
         {"return": 1})
    r.eq("freeze-list: frozen", q.cmd("guest-fsfreeze-status"), {"return": "frozen"})
    r.eq("freeze-list: thaw", q.cmd("guest-fsfreeze-thaw"), {"return": 1})
    r.eq("freeze-list: unknown mount only", q.cmd("guest-fsfreeze-freeze-list",
                                                  {"mountpoints": ["/nope"]}), {"return": 0})
    r.eq("freeze-list: still thawed", q.cmd("guest-fsfreeze-status"), {"return": "thawed"})
    r.eq("freeze-list: empty list", q.cmd("guest-fsfreeze-freeze-list", {"mountpoints": []}),
         {"return": 0})


HOOK = b"""#!/bin/sh
echo "$1" >> /run/hook.log
[ -e /run/hook-fail ] && exit 7
exit 0
"""


def test_freeze_hook_and_kill(r, g):
    sh(g.q, "mkdir -p /etc/tether")
    write_file(g.q, "/etc/tether/hook.sh", HOOK)
    sh(g.q, "chmod 755 /etc/tether/hook.sh; rm -f /run/hook.log /run/hook-fail")
    restart_agent(g, "[general]\nfsfreeze-hook=/etc/tether/hook.sh\nfreeze-timeout=120\n")
    q = g.q
    r.eq("hook: freeze", q.cmd("guest-fsfreeze-freeze"), {"return": 1})
    r.eq("hook: thaw", q.cmd("guest-fsfreeze-thaw"), {"return": 1})
    r.eq("hook: ran with freeze, then thaw", read_file(q, "/run/hook.log"), b"freeze\nthaw\n")
    sh(q, "touch /run/hook-fail")
    r.error("hook: failing hook aborts the freeze", reply(q, "guest-fsfreeze-freeze"),
            "fsfreeze hook has failed with status 7")
    r.eq("hook: still thawed", q.cmd("guest-fsfreeze-status"), {"return": "thawed"})
    sh(q, "rm -f /run/hook-fail /run/hook.log")

    # the agent dies (SIGKILL: SIGTERM is ignored while frozen) with the file systems frozen;
    # the restarted agent must know from statedir/qga.state.isfrozen. The agent writes that file
    # just before its FIFREEZEs: the kill comes 1 s after it appears, once they are done.
    agent_replaced(g, "while [ ! -e /run/agent/qga.state.isfrozen ]; do sleep 0.05; done; "
                      "sleep 1; kill -9 $(pidof tether-agent)",
                   during=lambda: r.eq("kill while frozen: freeze",
                                       g.q.cmd("guest-fsfreeze-freeze"), {"return": 1}))
    q = g.q
    r.eq("kill while frozen: restarted agent is frozen", q.cmd("guest-fsfreeze-status"),
         {"return": "frozen"})
    r.error("kill while frozen: gate still closed", reply(q, "guest-get-time"),
            FROZEN_TEXT.format("guest-get-time"), "CommandNotFound")
    r.eq("kill while frozen: thaw", q.cmd("guest-fsfreeze-thaw"), {"return": 1})
    r.eq("kill while frozen: thawed", q.cmd("guest-fsfreeze-status"), {"return": "thawed"})
    r.eq("kill while frozen: hook log", read_file(q, "/run/hook.log"), b"freeze\nthaw\n")


def test_auto_thaw(r, g):
    restart_agent(g, "[general]\nfreeze-timeout=5\n")
    q = g.q
    sh(q, "rm -f /run/probe-done; (sleep 1; echo y > /mnt/data/probe2; sync; "
          "date +%s > /run/probe-done) >/dev/null 2>&1 </dev/null &")
    t0 = time.time()
    r.eq("auto-thaw: freeze", q.cmd("guest-fsfreeze-freeze"), {"return": 1})
    status = None
    while time.time() - t0 < 30:
        status = q.cmd("guest-fsfreeze-status").get("return")
        if status == "thawed":
            break
        time.sleep(0.5)
    took = time.time() - t0
    r.check("auto-thaw: thawed by the timer after ~5 s", status == "thawed" and 4 <= took <= 15,
            f"status {status} after {took:.1f} s")
    code, out = wait_guest_file(q, "/run/probe-done")
    r.check("auto-thaw: blocked write went through after the thaw",
            code == 0 and int(out.strip() or 0) >= t0 + 3, f"{code} {out!r} t0={t0:.0f}")
    log = read_file(q, "/run/agent.log").decode("utf-8", "replace")
    r.check("auto-thaw: warning logged (logging back on)",
            "no guest-fsfreeze-thaw within 5 s" in log, log[-500:])
    r.check("auto-thaw: logging was off while frozen",
            "disabling logging due to filesystem freeze" in log and
            "logging re-enabled due to filesystem unfreeze" in log)
    restart_agent(g, "[general]\n")


def test_fstrim(r, g):
    q = g.q
    for args, minimum in ((None, 0), ({"minimum": 4096}, 4096)):
        rep = q.cmd("guest-fstrim", args)
        paths = rep.get("return", {}).get("paths")
        ok = (isinstance(paths, list) and len(paths) == 1 and paths[0]["path"] == "/mnt/data" and
              (set(paths[0]) == {"path", "trimmed", "minimum"} and
               paths[0]["minimum"] == minimum and paths[0]["trimmed"] >= 0 or
               set(paths[0]) == {"path", "error"}))
        r.check(f"fstrim: result shape (minimum {minimum})", ok, json.dumps(rep))


def test_suspend_errors(r, g):
    # no systemctl, no pm-utils; hybrid has no /sys/power/state way
    r.error("suspend-hybrid: not supported", reply(g.q, "guest-suspend-hybrid"),
            "the requested suspend mode is not supported by the guest")


def test_vcpus(r, g):
    q = g.q
    vcpus = q.check("guest-get-vcpus")
    r.eq("vcpus: two online", [(v["logical-id"], v["online"]) for v in vcpus],
         [(0, True), (1, True)])
    r.eq("set-vcpus: cpu1 offline", q.cmd("guest-set-vcpus",
                                          {"vcpus": [{"logical-id": 1, "online": False}]}),
         {"return": 1})
    r.eq("set-vcpus: get-vcpus sees it", [v["online"] for v in q.check("guest-get-vcpus")],
         [True, False])
    code, out = sh(q, "grep -c ^processor /proc/cpuinfo")
    r.eq("set-vcpus: one processor left", out.strip(), "1")
    r.eq("set-vcpus: cpu1 online again", q.cmd("guest-set-vcpus", {"vcpus": [
        {"logical-id": 1, "online": True, "can-offline": True}]}), {"return": 1})
    r.eq("set-vcpus: both online", [v["online"] for v in q.check("guest-get-vcpus")],
         [True, True])
    r.error("set-vcpus: cpu0 cannot go offline",
            reply(q, "guest-set-vcpus", {"vcpus": [{"logical-id": 0, "online": False}]}),
            "logical processor #0 can't be offlined")
    r.eq("set-vcpus: error after the first entry stops the count",
         q.cmd("guest-set-vcpus", {"vcpus": [{"logical-id": 1, "online": True},
                                             {"logical-id": 0, "online": False},
                                             {"logical-id": 1, "online": False}]}),
         {"return": 1})
    r.error("set-vcpus: no such cpu",
            reply(q, "guest-set-vcpus", {"vcpus": [{"logical-id": 9, "online": True}]}),
            'open("/sys/devices/system/cpu/cpu9/"): No such file or directory')


def test_memory_blocks(r, g):
    q = g.q
    blocks = q.check("guest-get-memory-blocks")
    first = blocks[0]["phys-index"]
    r.eq("set-memory-blocks: no-op and not-found",
         q.cmd("guest-set-memory-blocks", {"mem-blks": [
             {"phys-index": first, "online": True},
             {"phys-index": 99999, "online": True}]}),
         {"return": [{"phys-index": first, "response": "success"},
                     {"phys-index": 99999, "response": "not-found", "error-code": 2}]})
    last = blocks[-1]["phys-index"]
    rep = q.cmd("guest-set-memory-blocks", {"mem-blks": [{"phys-index": last, "online": False}]})
    res = rep.get("return", [{}])[0]
    r.check("set-memory-blocks: offline answers success or operation-failed with errno",
            res == {"phys-index": last, "response": "success"} or
            (res.get("response") == "operation-failed" and res.get("error-code", 0) > 0),
            json.dumps(rep))
    q.cmd("guest-set-memory-blocks", {"mem-blks": [{"phys-index": last, "online": True}]})
    r.check("set-memory-blocks: all online at the end",
            all(b["online"] for b in q.check("guest-get-memory-blocks")))


def shadow_line(q, user):
    for line in read_file(q, "/etc/shadow").decode().splitlines():
        if line.startswith(user + ":"):
            return line
    return None


def test_user_password(r, g):
    q = g.q
    before = read_file(q, "/etc/shadow").decode().splitlines()
    code, _ = sh(q, "command -v chpasswd")
    r.check("set-user-password: the guest has no chpasswd (built-in editor used)", code != 0)
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    r.eq("set-user-password: plain", q.cmd("guest-set-user-password", {
        "username": "tester", "password": b64("Sekrit 1"), "crypted": False}), {"return": {}})
    line = shadow_line(q, "tester")
    h = line.split(":")[1]
    r.check("set-user-password: SHA-512 hash", h.startswith("$6$"), line)
    if crypt:
        r.check("set-user-password: hash verifies", crypt.crypt("Sekrit 1", h) == h)
        r.check("set-user-password: wrong password does not", crypt.crypt("Sekrit 2", h) != h)
    days = int(time.time() // 86400)
    r.eq("set-user-password: last-change date is today", line.split(":")[2], str(days))
    after = read_file(q, "/etc/shadow").decode().splitlines()
    r.eq("set-user-password: other lines untouched",
         [x for x in after if not x.startswith("tester:")],
         [x for x in before if not x.startswith("tester:")])
    code, out = sh(q, "stat -c '%a %u %g' /etc/shadow")
    r.eq("set-user-password: shadow keeps mode and owner", out.strip(), "600 0 0")

    crypted = "$6$abcdefgh$" + "x" * 86
    if crypt:
        crypted = crypt.crypt("other", "$6$abcdefgh")
    r.eq("set-user-password: crypted", q.cmd("guest-set-user-password", {
        "username": "tester", "password": b64(crypted), "crypted": True}), {"return": {}})
    r.eq("set-user-password: crypted hash stored as given",
         shadow_line(q, "tester").split(":")[1], crypted)
    r.error("set-user-password: unknown user", reply(q, "guest-set-user-password", {
        "username": "nosuch", "password": b64("x"), "crypted": False}),
        "user 'nosuch' not found in /etc/shadow")
    r.error("set-user-password: newline in password", reply(q, "guest-set-user-password", {
        "username": "tester", "password": b64("a\nb"), "crypted": False}),
        "forbidden characters in raw password")
    r.error("set-user-password: colon in user", reply(q, "guest-set-user-password", {
        "username": "a:b", "password": b64("x"), "crypted": False}),
        "forbidden characters in username")
    code, out = sh(q, "ls -a /etc | grep -c tether- || true")
    r.eq("set-user-password: no temporary files left", out.strip(), "0")


def test_ssh_keys(r, g):
    q = g.q
    k1, k2, k3 = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + c * 8 + " test" + c
                  for c in "ABC")
    r.eq("ssh: add two", q.cmd("guest-ssh-add-authorized-keys",
                               {"username": "tester", "keys": [k1, k2]}), {"return": {}})
    r.eq("ssh: get", q.cmd("guest-ssh-get-authorized-keys", {"username": "tester"}),
         {"return": {"keys": [k2, k1]}})
    code, out = sh(q, "stat -c '%a %u %g' /home/tester/.ssh /home/tester/.ssh/authorized_keys")
    r.eq("ssh: modes and owners", out.split("\n")[:2], ["700 1000 1000", "600 1000 1000"])
    r.eq("ssh: file as qemu-ga writes it", read_file(q, "/home/tester/.ssh/authorized_keys"),
         (k1 + "\n" + k2).encode())
    r.eq("ssh: add again (dedupe)", q.cmd("guest-ssh-add-authorized-keys",
                                          {"username": "tester", "keys": [k2, k3]}),
         {"return": {}})
    r.eq("ssh: three keys", q.cmd("guest-ssh-get-authorized-keys", {"username": "tester"}),
         {"return": {"keys": [k3, k2, k1]}})
    r.eq("ssh: reset", q.cmd("guest-ssh-add-authorized-keys",
                             {"username": "tester", "keys": [k3], "reset": True}),
         {"return": {}})
    r.eq("ssh: only the reset key", q.cmd("guest-ssh-get-authorized-keys",
                                          {"username": "tester"}), {"return": {"keys": [k3]}})
    r.eq("ssh: remove", q.cmd("guest-ssh-remove-authorized-keys",
                              {"username": "tester", "keys": [k3, k1]}), {"return": {}})
    r.eq("ssh: none left", q.cmd("guest-ssh-get-authorized-keys", {"username": "tester"}),
         {"return": {"keys": []}})
    r.error("ssh: comment is not a key", reply(q, "guest-ssh-add-authorized-keys", {
        "username": "tester", "keys": ["# nope"]}), "invalid OpenSSH public key: '# nope'")
    r.error("ssh: unknown user", reply(q, "guest-ssh-add-authorized-keys", {
        "username": "nosuch", "keys": [k1]}), "failed to lookup user 'nosuch': Success")
    # root's keys, and removal from a file that does not exist
    r.eq("ssh: remove without a file", q.cmd("guest-ssh-remove-authorized-keys",
                                             {"username": "root", "keys": [k1]}),
         {"return": {}})
    code, _ = sh(q, "test -e /root/.ssh")
    r.check("ssh: removal creates nothing", code == 1)
    r.eq("ssh: add for root", q.cmd("guest-ssh-add-authorized-keys",
                                    {"username": "root", "keys": [k1]}), {"return": {}})
    code, out = sh(q, "stat -c '%a %u %g' /root/.ssh /root/.ssh/authorized_keys")
    r.eq("ssh: root's modes and owners", out.split("\n")[:2], ["700 0 0", "600 0 0"])


def test_shutdown(r, g):
    try:
        rep = reply(g.q, "guest-shutdown", timeout=5)
    except ConnectionError:
        rep = None  # QEMU was already gone: no reply came either
    r.eq("shutdown: no success response", rep, None)
    r.check("shutdown: powerdown makes QEMU exit", g.wait_exit(90))


def test_suspend_ram(r, g):
    rep = reply(g.q, "guest-suspend-ram", timeout=3)
    r.eq("suspend-ram: no success response", rep, None)
    status = None
    with qga.QMP(g.qmp_path) as m:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = m.check("query-status")["status"]
            if status == "suspended":
                break
            time.sleep(0.5)
    r.eq("suspend-ram: QEMU reports the guest suspended", status, "suspended")


GUEST_TESTS = [test_shutdown_invalid, test_set_time, test_fsfreeze, test_freeze_hook_and_kill,
               test_auto_thaw, test_fstrim, test_suspend_errors, test_vcpus, test_memory_blocks,
               test_user_password, test_ssh_keys, test_shutdown]


def run_guest(r, guest_dir, name, tests):
    g = Guest(guest_dir, name)
    try:
        for t in tests:
            try:
                t(r, g)
            except Exception:  # a broken step is a failure, and the rest still runs
                r.check(t.__name__, False, traceback.format_exc())
                if not g.alive():
                    break
                try:
                    g.reconnect(30)
                except Exception:
                    break
    finally:
        g.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--guest", help="mkguest.sh output directory")
    ap.add_argument("--agent", help="tether-agent binary (static) to build a guest with")
    o = ap.parse_args()
    tmp = None
    guest_dir = o.guest
    if not guest_dir:
        agent = o.agent or os.path.join(REPO, "build", "src", "agent", "tether-agent")
        tmp = tempfile.mkdtemp(prefix="guestcmds-guest-")
        subprocess.run([os.path.join(REPO, "tools", "mkguest.sh"), "--agent", agent,
                        "--out", tmp], check=True)
        guest_dir = tmp
    r = Results()
    try:
        run_guest(r, guest_dir, "guestcmds-test", GUEST_TESTS)
        # resuming from S3 resets this guest (QEMU exits with -no-reboot): a guest of its own
        run_guest(r, guest_dir, "guestcmds-suspend", [test_suspend_ram])
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
