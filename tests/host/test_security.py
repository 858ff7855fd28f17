#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
tetherd attacked as a local user would (issue 10), with the real tether CLI and real QEMUs
(no booted guest). Throwaway users are created here and removed afterwards:
- authentication from the credentials the kernel took at connect time: a recycled pid does not
  let a non-member in, and a member whose connecting process is gone is still a member;
  refusals are logged at most once a second, with a count of the suppressed ones;
  qemu-monitor-command (raw QMP) is for uid 0 only;
- a stop with a request pending (no use after free), a name with a comma survives a restart,
  names that would escape the run folder or not fit a socket path, listen='' on graphics,
  lookup of a domain reference as virsh does (id, then uuid, then name), restore of a FIFO.

    python3 test_security.py TETHERD TETHER
"""
import json
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_daemon as td  # noqa: E402  (shared: Daemon, check, expect, ...)

check, expect, wait_for = td.check, td.expect, td.wait_for
DENIED = td.DENIED
AS_NOBODY = td.AS_NOBODY
# The system's python: the test's own may live under /root, out of other users' reach.
USER_PY = "/usr/bin/python3"


def domain_xml(name, uuid, devices=""):
    return ("<domain type='qemu'><name>%s</name><uuid>%s</uuid>"
            "<memory unit='MiB'>32</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
            "<devices><memballoon model='none'/>%s</devices></domain>\n" % (name, uuid, devices))


def uuid_for(i):
    return "%08x-0000-4000-8000-%012x" % (0x5ec00000 + i, i)


def write(d, fname, text):
    path = os.path.join(d.root, fname)
    with open(path, "w") as f:
        f.write(text)
    return path


class Users:
    """A throwaway group, a member of it (supplementary group only) and a non-member."""

    def __init__(self):
        tag = str(os.getpid())
        self.group, self.member, self.other = "sectg" + tag, "sectm" + tag, "secto" + tag
        self.made = []

    def create(self):
        cmds = [("group", self.group, ["groupadd", "-r", self.group]),
                ("passwd", self.member, ["useradd", "-r", "-M", "-d", "/nonexistent", "-s",
                                         "/usr/sbin/nologin", "-G", self.group, self.member]),
                ("passwd", self.other, ["useradd", "-r", "-M", "-d", "/nonexistent", "-s",
                                        "/usr/sbin/nologin", self.other])]
        for db, key, argv in cmds:
            if subprocess.run(argv, capture_output=True).returncode != 0:
                return False
            self.made.append((db, key))
        self.gid = grp.getgrnam(self.group).gr_gid
        self.member_pw = pwd.getpwnam(self.member)
        self.other_pw = pwd.getpwnam(self.other)
        return True

    def as_member(self):
        return ["runuser", "-u", self.member, "--"]

    def as_other(self):
        return ["runuser", "-u", self.other, "--"]

    def remove(self):
        for db, key in reversed(self.made):
            if db == "passwd":
                subprocess.run(["userdel", key], capture_output=True)
            else:
                subprocess.run(["groupdel", key], capture_output=True)
        for db, key in self.made:
            check(subprocess.run(["getent", db, key], capture_output=True).returncode == 2,
                  "the throwaway %s entry %s is gone" % (db, key))


# A client that connects, forks a child that keeps the connection, and exits at once, so that
# its pid is free before tetherd (stopped meanwhile) accepts. The child sends `list` and prints
# the reply. Its own pid goes to stdout first, then the reply.
HOLDER = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    os.setsid()
    nul = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(nul, fd)
    os.write(w, b"x"); os.close(w)
    s.sendall(b'{"execute": "list", "id": 1}\n')
    s.settimeout(20)
    buf = b""
    try:
        while b"\n" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
    except OSError:
        pass
    with open(sys.argv[2], "wb") as f:
        f.write(buf)
    os._exit(0)
os.close(w)
os.read(r, 1)
print(os.getpid(), flush=True)
os._exit(0)
"""


def holder_connect(d, prefix, out):
    """Run HOLDER as prefix; return the pid that connected (gone by now)."""
    p = subprocess.run(prefix + [USER_PY, "-c", HOLDER, d.sock, out],
                       capture_output=True, text=True, timeout=20)
    return int(p.stdout.strip()) if p.returncode == 0 and p.stdout.strip() else None


def read_result(path, timeout=20):
    if not wait_for(lambda: os.path.exists(path), timeout):
        return None
    try:
        return json.loads(open(path).read())
    except ValueError:
        return None


def proc_groups(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Groups:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return None


def spawn_with_pid(prefix, want_pid, tries=300):
    """Start `prefix sleep 60` so that its process gets want_pid (ns_last_pid); None if the race
    with the rest of the machine was lost every time."""
    for _ in range(tries):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(want_pid - 1))
        p = subprocess.Popen(prefix + ["sleep", "60"])
        if p.pid == want_pid:
            return p
        p.kill()
        p.wait()
    return None


def test_peer_credentials(d, g, users):
    # Sanity: a non-member is refused, a member (supplementary group) is let in.
    expect(g, ["list"], 1, "", DENIED, prefix=users.as_other(), what="list by a non-member")
    expect(g, ["list", "--all"], 0, None, "", prefix=users.as_member(),
           what="list by a member (supplementary group)")

    # Where the users' clients write what they got.
    tmp = os.path.join(os.path.dirname(g.root), "out")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o1777)
    # A member connects; its process is gone when tetherd accepts. The kernel's record of the
    # connecting process still says member: let in (reading /proc/PID would refuse it).
    out = os.path.join(tmp, "member-gone.json")
    os.kill(g.proc.pid, signal.SIGSTOP)
    try:
        pid = holder_connect(g, users.as_member(), out)
    finally:
        os.kill(g.proc.pid, signal.SIGCONT)
    check(pid is not None, "the member's connecting process ran")
    reply = read_result(out)
    check(reply is not None and "return" in reply,
          "a member whose connecting process exited before accept is let in", repr(reply))

    # The attack: a non-member connects and exits; its pid is recycled by a member's process
    # before tetherd accepts. The connection must still be refused.
    if not os.path.exists("/proc/sys/kernel/ns_last_pid"):
        print("# SKIP pid recycling: no /proc/sys/kernel/ns_last_pid")
        return
    out = os.path.join(tmp, "recycled.json")
    os.kill(g.proc.pid, signal.SIGSTOP)
    squatter = None
    try:
        pid = holder_connect(g, users.as_other(), out)
        if check(pid is not None, "the non-member's connecting process ran"):
            # setpriv execs in place (runuser would fork): the member's process is that pid.
            squatter = spawn_with_pid(["setpriv", "--reuid=%d" % users.member_pw.pw_uid,
                                       "--regid=%d" % users.member_pw.pw_gid,
                                       "--groups=%d" % users.gid], pid)
            # Let tetherd go only once the squatter has dropped to the member's credentials.
            if squatter:
                check(wait_for(lambda: proc_groups(pid) == [users.gid], 5),
                      "the squatter runs with the member's groups", repr(proc_groups(pid)))
    finally:
        os.kill(g.proc.pid, signal.SIGCONT)
    try:
        if not check(squatter is not None, "a member's process got the recycled pid"):
            return
        reply = read_result(out)
        check(reply is not None and reply.get("error", {}).get("class") == "PermissionDenied",
              "a recycled pid of a member does not let a non-member in", repr(reply))
    finally:
        if squatter:
            squatter.kill()
            squatter.wait()


def test_refusal_rate_limit(g, users):
    time.sleep(1.2)  # earlier refusals' count is logged first
    before = g.log_text()
    n = 40
    t0 = time.time()
    script = ("import socket,sys\nfor i in range(%d):\n s=socket.socket(socket.AF_UNIX);"
              "s.connect(sys.argv[1]);s.recv(4096);s.close()\n" % n)
    subprocess.run(users.as_other() + [USER_PY, "-c", script, g.sock], timeout=30)
    elapsed = time.time() - t0
    # The suppressed count is logged when the second ends.
    time.sleep(1.5)
    new = g.log_text()[len(before):]
    lines = [ln for ln in new.splitlines() if "refused control connection" in ln]
    suppressed = 0
    for ln in lines:
        if "similar refusals suppressed)" in ln:
            suppressed += int(ln.rsplit("(", 1)[1].split()[0])
    check(len(lines) + suppressed == n,
          "every refusal is logged or counted (%d lines + %d suppressed = %d)" % (
              len(lines), suppressed, n), new[-2000:])
    check(len(lines) <= int(elapsed + 1.5) + 1,
          "at most one refusal line a second (%d lines in %.1fs)" % (len(lines), elapsed),
          new[-2000:])
    check(any("uid %d gid %d" % (users.other_pw.pw_uid, users.other_pw.pw_gid) in ln
              for ln in lines), "the refusal names uid and gid", new[-1000:])
    check(any("similar refusals suppressed)" in ln for ln in lines),
          "a line carries the suppressed count", new[-1000:])


QMP_DENIED = ("error: access denied: qemu-monitor-command (raw QMP, verb 'qmp') is allowed "
              "for root (uid 0) only\n")


def test_qmp_root_only(g, users):
    g.define("qmp-1", uuid_for(1))
    expect(g, ["start", "qmp-1"], 0, "Domain 'qmp-1' started\n\n", "")
    g.record_qemus()
    expect(g, ["qemu-monitor-command", "qmp-1", '{"execute": "query-status"}'], 1, "",
           QMP_DENIED, prefix=users.as_member(), what="qemu-monitor-command by a member")
    expect(g, ["qemu-monitor-command", "nosuch", '{"execute": "quit"}'], 1, "", QMP_DENIED,
           prefix=users.as_member(), what="qemu-monitor-command by a member, unknown domain")
    rc, out, err = g.run("qemu-monitor-command", "qmp-1", '{"execute": "query-status"}')
    check(rc == 0 and '"running"' in out, "qemu-monitor-command by root works",
          repr((rc, out, err)))
    expect(g, ["domstate", "qmp-1"], 0, "running\n\n", "", prefix=users.as_member(),
           what="the domain still runs after the refused quit")
    expect(g, ["destroy", "qmp-1"], 0, "Domain 'qmp-1' destroyed\n\n", "",
           prefix=users.as_member(), what="a member may destroy")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tetherd, tether = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if os.geteuid() != 0:
        print("SKIP: needs root (setpriv, useradd)")
        return 77
    tmp = tempfile.mkdtemp(prefix="sectest-", dir="/tmp")
    os.chmod(tmp, 0o755)
    users = Users()
    daemons = []
    try:
        if not check(users.create(), "create throwaway users and group"):
            return 1
        g = td.Daemon(tetherd, tether, tmp, "grouped", group=users.group)
        daemons.append(g)
        g.start()
        os.chmod(g.root, 0o755)
        d = td.Daemon(tetherd, tether, tmp, "main")
        daemons.append(d)
        d.start()
        for name, fn in [("peer credentials", lambda: test_peer_credentials(d, g, users)),
                         ("refusal rate limit", lambda: test_refusal_rate_limit(g, users)),
                         ("qmp root only", lambda: test_qmp_root_only(g, users))]:
            t0 = time.time()
            try:
                fn()
            except Exception as e:  # one broken part must not hide the others
                import traceback
                check(False, "%s: exception %r" % (name, e), traceback.format_exc())
            print("# %s: %.1fs" % (name, time.time() - t0), flush=True)
        for x in daemons:
            check(x.proc.poll() is None, "tetherd (%s) still runs at the end" % x.root)
    finally:
        if td.failed:
            for x in daemons:
                print("--- tetherd log %s (tail) ---\n%s" % (x.root, x.log_text()[-3000:]))
        for x in daemons:
            x.cleanup()
        users.remove()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (td.passed, td.failed))
    return 1 if td.failed else 0


if __name__ == "__main__":
    sys.exit(main())
