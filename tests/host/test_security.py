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
  lookup of a domain reference as virsh does (id, then uuid, then name), restore of a FIFO;
- files that clients name (save, restore, screenshot) are opened by the client with its own
  rights, locally and through the remote `tether proxy` of tether+ssh:// (a real sshd on
  127.0.0.1): a member cannot make tetherd create, truncate or read what the member could not;
- what a domain may name when a client that is not root defines, creates or starts it: the
  <emulator> allow-list, disks, kernel and initrd under the image folders (no ".." or symlink
  way out, also when the file is swapped after define), no channel socket paths; root keeps
  its freedom; the file aimed at is unchanged;
- QEMU's user: [security] qemu-user and --qemu-user (root or '' keep QEMU as root, an unknown
  user stops tetherd with a clear message), [security] keys checked; tetherd's umask 077 leaves
  the control socket reachable and its files private.

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
    with open(sys.argv[2] + ".part", "wb") as f:
        f.write(buf)
    os.rename(sys.argv[2] + ".part", sys.argv[2])
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
    """The reply HOLDER's child wrote to path (whole: it renames the file into place)."""
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
    # The limiter's window is one second: earlier refusals' count is logged when it ends, and
    # this test's refusals start in a new window (a duration of the code under test).
    time.sleep(1.2)
    before = g.log_text()
    n = 40
    t0 = time.time()
    script = ("import socket,sys\nfor i in range(%d):\n s=socket.socket(socket.AF_UNIX);"
              "s.connect(sys.argv[1]);s.recv(4096);s.close()\n" % n)
    subprocess.run(users.as_other() + [USER_PY, "-c", script, g.sock], timeout=30)
    elapsed = time.time() - t0
    # The suppressed count is logged when the limiter's second ends.
    deadline = time.monotonic() + 5
    while True:
        new = g.log_text()[len(before):]
        lines = [ln for ln in new.splitlines() if "refused control connection" in ln]
        suppressed = 0
        for ln in lines:
            if "similar refusals suppressed)" in ln:
                suppressed += int(ln.rsplit("(", 1)[1].split()[0])
        if len(lines) + suppressed >= n or time.monotonic() > deadline:
            break
        time.sleep(0.05)
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


# ---- defects found by the attack ----

def test_stop_with_request_pending(tetherd, tether, tmp):
    """Defect 1: tetherd stops while a request waits on QEMU: no use after free (ASan build)."""
    s = td.Daemon(tetherd, tether, tmp, "stopper")
    qemu = None
    try:
        s.start()
        s.define("uaf-1", uuid_for(10))
        expect(s, ["start", "uaf-1"], 0, "Domain 'uaf-1' started\n\n", "")
        s.record_qemus()
        qemu = s.status("uaf-1")["pid"]
        os.kill(qemu, signal.SIGSTOP)  # QEMU answers nothing: the request stays pending
        n_fds = td.fd_count(s.proc.pid)
        clients = [s.popen("suspend", "uaf-1"), s.popen("qemu-monitor-command", "uaf-1",
                                                          '{"execute": "query-status"}')]
        # tetherd took both connections (their requests wait on the stopped QEMU).
        wait_for(lambda: td.fd_count(s.proc.pid) >= n_fds + 2, 10)
        time.sleep(0.1)  # and read them: a turn of its event loop
        check(all(c.poll() is None for c in clients), "the requests are pending")
        s.proc.terminate()
        rc = s.proc.wait(15)
        err = open(s.log + ".stderr", errors="replace").read()
        check(rc == 0, "tetherd stops cleanly with requests pending (exit %d)" % rc, err[-3000:])
        for c in clients:
            out, cerr = c.communicate(timeout=15)
            check(c.returncode == 1, "a pending client gets an error when tetherd stops",
                  repr((c.returncode, out, cerr)))
    finally:
        if qemu:
            os.kill(qemu, signal.SIGCONT)
        s.cleanup()  # checks tetherd's stderr for sanitizer reports; kills the QEMU


def open_files(pid):
    """What process pid holds open (the targets of /proc/PID/fd's links)."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


def qemus_of(d, escaped_name):
    """The live QEMUs of a domain of daemon d (CI runs two suites side by side)."""
    pids = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open("/proc/%s/cmdline" % e, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if ("guest=%s,debug-threads=on" % escaped_name).encode() in argv and \
                    (d.root.rstrip("/") + "/").encode() in b"\0".join(argv) and \
                    td.pid_alive(int(e)):
                pids.append(int(e))
    return pids


def test_comma_name_restart(d):
    """Defect 2: a domain named c,d is still its QEMU's after a restart of tetherd."""
    d.define("c,d", uuid_for(20))
    try:
        comma_name_restart(d)
    finally:
        # Any QEMU of ours left for c,d (a second one, on a tetherd that lost the first).
        for pid in qemus_of(d, "c,,d"):
            os.kill(pid, signal.SIGKILL)


def comma_name_restart(d):
    expect(d, ["start", "c,d"], 0, "Domain 'c,d' started\n\n", "")
    d.record_qemus()
    pid = d.status("c,d")["pid"]
    check(qemus_of(d, "c,,d") == [pid], "one QEMU for c,d", repr(qemus_of(d, "c,,d")))
    d.stop()
    d.start()
    expect(d, ["domstate", "--reason", "c,d"], 0, "running (booted)\n\n", "",
           what="c,d after a restart of tetherd")
    check("c,d: reconnected to QEMU pid %d" % pid in d.log_text(), "tetherd reconnected to c,d",
          d.log_text()[-1500:])
    expect(d, ["start", "c,d"], 1, "",
           "error: Requested operation is not valid: domain is already running\n",
           what="start of a running c,d after a restart")
    check(qemus_of(d, "c,,d") == [pid], "still one QEMU for c,d, the same one",
          repr(qemus_of(d, "c,,d")))
    expect(d, ["destroy", "c,d"], 0, "Domain 'c,d' destroyed\n\n", "")
    check(wait_for(lambda: not qemus_of(d, "c,,d"), 10), "destroy of c,d ends its QEMU")


def listing(root):
    out = []
    for base, dirs, files in os.walk(root):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(base, n), root))
    return sorted(x for x in out if not x.endswith(".xml.in"))


def test_bad_names(d):
    """Defect 3: names that leave the run folder, or whose sockets cannot fit: refused at
    define (and create), with nothing left behind."""
    run_prefix = os.path.join(d.root, "run/tether/domains/")
    # sun_path holds 107 bytes; "/agent.sock" is the longest socket file name.
    fits = 107 - len(run_prefix) - len("/agent.sock")
    long_name = "n" * (fits + 1)
    cases = [
        (".", "error: domain name '.' cannot begin with '.' at /domain/name (line 1)\n"),
        ("..", "error: domain name '..' cannot begin with '.' at /domain/name (line 1)\n"),
        (".hidden", "error: domain name '.hidden' cannot begin with '.' at /domain/name "
                    "(line 1)\n"),
        ("a&#9;b", "error: domain name contains a control character at /domain/name "
                   "(line 1)\n"),
        (long_name, "error: domain name '%s' is too long: its socket path '%s%s/agent.sock' "
                    "would be 108 bytes, more than the 107 a unix socket path may have\n" % (
                        long_name, run_prefix, long_name)),
    ]
    path = os.path.join(os.path.dirname(d.root), "badname.xml")
    for i, (name, want) in enumerate(cases):
        before = listing(d.root)
        with open(path, "w") as f:
            f.write(domain_xml(name, uuid_for(30 + i)))
        for verb in ("define", "create"):
            expect(d, [verb, path], 1, "", want, what="%s of a domain named %r" % (verb, name))
        check(listing(d.root) == before, "nothing left behind for %r" % name,
              repr(sorted(set(listing(d.root)) ^ set(before))))
    # The longest name that fits works, sockets and all.
    ok = "n" * fits
    with open(path, "w") as f:
        f.write(domain_xml(ok, uuid_for(39)))
    expect(d, ["create", path], 0, "Domain '%s' created from %s\n\n" % (ok, path), "",
           what="create with the longest name whose sockets fit")
    d.record_qemus()
    check(os.path.exists(run_prefix + ok + "/qmp.sock"), "its QMP socket exists")
    expect(d, ["destroy", ok], 0, "Domain '%s' destroyed\n\n" % ok, "")


def listening(port):
    """Local addresses listening on TCP port (IPv4 hex from /proc/net/tcp)."""
    addrs = []
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        ip, p = f[1].split(":")
        if int(p, 16) == port and f[3] == "0A":
            addrs.append(socket.inet_ntoa(bytes.fromhex(ip)[::-1]))
    return addrs


def test_listen_empty(d):
    """Defect 6: listen='' means the default 127.0.0.1, never every address (libvirt's rule)."""
    port = td.free_port()  # an ephemeral port: above 5900, so a VNC display number
    xml = domain_xml("listen-empty", uuid_for(60),
                     "<graphics type='vnc' port='%d' autoport='no' listen=''/>"
                     "<video><model type='vga'/></video>" % port)
    path = write(d, "listen-empty.xml", xml)
    expect(d, ["create", path], 0, "Domain 'listen-empty' created from %s\n\n" % path, "")
    d.record_qemus()
    pid = d.status("listen-empty")["pid"]
    argv = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")
    vnc = argv[argv.index(b"-vnc") + 1].decode() if b"-vnc" in argv else None
    check(vnc == "127.0.0.1:%d,audiodev=audio1" % (port - 5900), "QEMU's -vnc is 127.0.0.1",
          repr(vnc))
    check(wait_for(lambda: listening(port) != [], 10) and listening(port) == ["127.0.0.1"],
          "VNC listens on 127.0.0.1 only", repr(listening(port)))
    expect(d, ["destroy", "listen-empty"], 0, "Domain 'listen-empty' destroyed\n\n", "")


def test_lookup_order(d):
    """Defect 8: a reference is an id first, then a uuid, then a name, as virsh looks it up."""
    d.define("look-a", uuid_for(70))
    expect(d, ["start", "look-a"], 0, "Domain 'look-a' started\n\n", "")
    d.record_qemus()
    ida = d.run("domid", "look-a")[1].strip()
    # A domain whose name is look-a's id, defined after it.
    d.define(ida, uuid_for(71))
    # A domain whose name is look-b's uuid.
    d.define("look-b", uuid_for(72))
    d.define(uuid_for(72), uuid_for(73))
    expect(d, ["domname", ida], 0, "look-a\n\n", "", what="domname %s: the id wins" % ida)
    expect(d, ["domuuid", ida], 0, uuid_for(70) + "\n\n", "")
    expect(d, ["domname", uuid_for(72)], 0, "look-b\n\n", "", what="a uuid before a name")
    expect(d, ["domname", uuid_for(73)], 0, uuid_for(72) + "\n\n", "")
    expect(d, ["destroy", "look-a"], 0, "Domain 'look-a' destroyed\n\n", "")
    # No domain runs with that id any more: the name is found.
    expect(d, ["domuuid", ida], 0, uuid_for(71) + "\n\n", "", what="the name once no id matches")
    for n in [ida, "look-b", uuid_for(72), "look-a"]:
        expect(d, ["undefine", n], 0, None, "")


def test_restore_not_regular(d):
    """Defect 4: restore of a FIFO, a device or a symlink is refused at once; the daemon never
    blocks on it (the old code opened a FIFO and waited for a writer with the whole loop)."""
    fifo = os.path.join(d.root, "image.fifo")
    os.mkfifo(fifo, 0o600)
    link = os.path.join(d.root, "image.link")
    os.symlink("/dev/null", link)
    rule = "and a save image must be a regular file"
    cases = [(fifo, "error: '%s' is not a Tether save image: it is a FIFO, %s\n" % (fifo, rule)),
             ("/dev/zero", "error: '/dev/zero' is not a Tether save image: it is a character "
                           "device, %s\n" % rule),
             (link, "error: '%s' is a symbolic link: a save image must be a regular file, and "
                    "links are not followed\n" % link)]
    for path, want in cases:
        restore = d.popen("restore", path)
        # The restore request is in first: it was answered, or tetherd holds the file open
        # (the old code, blocked on the FIFO).
        real = os.path.realpath(path)
        check(td.wait_for(lambda: restore.poll() is not None or real in open_files(d.proc.pid),
                          10), "restore %s was taken by tetherd" % path)
        t0 = time.time()
        rc, out, err = d.run("list", "--all", timeout=5)
        check(rc == 0 and time.time() - t0 < 3, "list answers while restore %s runs" % path,
              repr((rc, out, err)))
        try:
            out, err = restore.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            restore.kill()
            out, err = restore.communicate()
        check((restore.returncode, out, err) == (1, "", want), "restore %s is refused" % path,
              repr((restore.returncode, out, err)))
    # Unblock a daemon that did open the FIFO (the old code), so that cleanup can stop it.
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


SLOW_SYNC = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <unistd.h>
/* Every fdatasync of the process takes 2 s longer, as on a busy disk. */
int fdatasync(int fd)
{
        int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");

        sleep(2);
        return real(fd);
}
"""


def test_save_sync_off_loop(tetherd, tether, tmp):
    """Defect 4, second half: a save's fdatasync runs off the event loop. With every fdatasync
    made 2 s slower (LD_PRELOAD), list still answers at once while a save completes."""
    src = os.path.join(tmp, "slowsync.c")
    so = os.path.join(tmp, "slowsync.so")
    with open(src, "w") as f:
        f.write(SLOW_SYNC)
    cc = subprocess.run(["cc", "-shared", "-fPIC", "-o", so, src, "-ldl"], capture_output=True,
                        text=True)
    if not check(cc.returncode == 0, "build the slow-fdatasync shim", cc.stderr):
        return
    s = td.Daemon(tetherd, tether, tmp, "slowsync")
    saved = os.environ.copy()
    os.environ["LD_PRELOAD"] = so
    # An ASan tetherd wants its runtime first; the shim only wraps one libc call.
    os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                  ":verify_asan_link_order=0").lstrip(":")
    try:
        s.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        s.define("sync-1", uuid_for(80))
        expect(s, ["start", "sync-1"], 0, "Domain 'sync-1' started\n\n", "")
        s.record_qemus()
        image = os.path.join(s.root, "sync-1.save")
        save = s.popen("save", "sync-1", image)
        worst = 0.0
        while save.poll() is None:
            t0 = time.time()
            rc, out, err = s.run("list", "--all", timeout=10)
            worst = max(worst, time.time() - t0)
            check(rc == 0, "list during the save", err)
            time.sleep(0.05)
        out, err = save.communicate()
        check((save.returncode, out, err) == (0, "\nDomain 'sync-1' saved to %s\n\n" % image, ""),
              "save with a slow fdatasync completes", repr((save.returncode, out, err)))
        check(worst < 1.0, "list answers within 1 s while the save syncs (worst %.2f s)" % worst)
        check("sync-1: saved" in s.log_text(), "the save is logged", s.log_text()[-800:])
        expect(s, ["domstate", "--reason", "sync-1"], 0, "shut off (saved)\n\n", "")
        # The image is complete: restore takes it.
        expect(s, ["restore", image], 0, "Domain restored from %s\n\n" % image, "")
        s.record_qemus()
        expect(s, ["domstate", "--reason", "sync-1"], 0, "running (restored)\n\n", "")
        expect(s, ["destroy", "sync-1"], 0, "Domain 'sync-1' destroyed\n\n", "")
    finally:
        s.cleanup()


# ---- files that clients name are opened by the client (issue 10, part 3) ----

def owner_mode(path):
    st = os.lstat(path)
    return st.st_uid, st.st_mode & 0o7777


def raw_call(sock_path, request, fds=(), timeout=20):
    """One request on the control socket, with descriptors passed alongside (SCM_RIGHTS)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        data = (json.dumps(request) + "\n").encode()
        if fds:
            socket.send_fds(s, [data], list(fds))
        else:
            s.sendall(data)
        buf = b""
        while b"\n" not in buf:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        return json.loads(buf.split(b"\n")[0]) if buf else None
    finally:
        s.close()


def test_client_files(g, users, tmp):
    """save and restore: the CLI opens the file with the user's own rights and passes the
    descriptor; tetherd (root) never opens or creates a client's path. A member cannot make
    tetherd create, truncate or read a file the member could not."""
    member = users.as_member()
    uid = users.member_pw.pw_uid
    files = os.path.join(tmp, "member-files")
    os.makedirs(files, exist_ok=True)
    os.chown(files, uid, users.member_pw.pw_gid)
    os.chmod(files, 0o755)
    g.define("fd-1", uuid_for(90))
    expect(g, ["start", "fd-1"], 0, "Domain 'fd-1' started\n\n", "")
    g.record_qemus()

    # Create a file where only root may: refused with the member's own error; nothing appears.
    pwned = "/etc/tether-pwned-%d" % os.getpid()
    try:
        expect(g, ["save", "fd-1", pwned], 1, "",
               "error: cannot create save image '%s': Permission denied\n" % pwned,
               prefix=member, what="a member's save into /etc")
        check(not os.path.lexists(pwned), "no file appears in /etc", pwned)
    finally:
        if os.path.lexists(pwned):
            os.unlink(pwned)
    # Truncate a root-owned file the member may not write (in a folder the member owns, too).
    victim = os.path.join(files, "root-owned")
    with open(victim, "wb") as f:
        f.write(b"precious root data\n" * 100)
    os.chmod(victim, 0o644)
    before = open(victim, "rb").read()
    expect(g, ["save", "fd-1", victim], 1, "",
           "error: cannot create save image '%s': Permission denied\n" % victim,
           prefix=member, what="a member's save over a root-owned file")
    check(open(victim, "rb").read() == before and owner_mode(victim) == (0, 0o644),
          "the root-owned file is unchanged, byte for byte")
    # A link to it is not followed, whoever asks.
    link = os.path.join(files, "link.save")
    os.symlink(victim, link)
    want = ("error: '%s' is a symbolic link: a save image must be a regular file, and links are "
            "not followed\n" % link)
    expect(g, ["save", "fd-1", link], 1, "", want, prefix=member, what="save to a symlink")
    expect(g, ["save", "fd-1", link], 1, "", want, what="save to a symlink by root")
    check(open(victim, "rb").read() == before, "the link's target is unchanged")
    # A FIFO (no reader: nothing blocks) and a device are refused clearly.
    fifo = os.path.join(files, "fifo")
    os.mkfifo(fifo)
    os.chown(fifo, uid, users.member_pw.pw_gid)
    expect(g, ["save", "fd-1", fifo], 1, "",
           "error: cannot save to '%s': it is a FIFO, and a save image must be a regular "
           "file\n" % fifo, prefix=member, what="save to a FIFO")
    expect(g, ["save", "fd-1", "/dev/null"], 1, "",
           "error: cannot save to '/dev/null': it is a character device, and a save image must "
           "be a regular file\n", prefix=member, what="save to /dev/null")
    expect(g, ["domstate", "--reason", "fd-1"], 0, "running (booted)\n\n", "",
           what="the domain runs on after the refused saves")

    # A normal save by the member: the image is the member's, 0600.
    image = os.path.join(files, "fd-1.save")
    expect(g, ["save", "fd-1", image], 0, "\nDomain 'fd-1' saved to %s\n\n" % image, "",
           prefix=member, what="a member's save")
    check(os.path.exists(image) and owner_mode(image) == (uid, 0o600),
          "the member's save image is owned by the member, mode 0600",
          repr(owner_mode(image)) if os.path.exists(image) else "missing")
    expect(g, ["domstate", "--reason", "fd-1"], 0, "shut off (saved)\n\n", "")
    # Restore from a copy only root can read: refused with the member's error.
    secret = os.path.join(files, "root-only.save")
    shutil.copyfile(image, secret)
    os.chown(secret, 0, 0)
    os.chmod(secret, 0o600)
    expect(g, ["restore", secret], 1, "",
           "error: cannot open save image '%s': Permission denied\n" % secret, prefix=member,
           what="a member's restore of a root-only image")
    expect(g, ["domstate", "--reason", "fd-1"], 0, "shut off (saved)\n\n", "")
    # The member's own image restores.
    expect(g, ["restore", image], 0, "Domain restored from %s\n\n" % image, "", prefix=member,
           what="a member's restore")
    g.record_qemus()
    expect(g, ["domstate", "--reason", "fd-1"], 0, "running (restored)\n\n", "")

    # A failed save removes the file it created, and leaves an existing one alone.
    fresh = os.path.join(files, "fresh.save")
    expect(g, ["save", "nosuch", fresh], 1, "", "error: failed to get domain 'nosuch'\n",
           prefix=member, what="save of an unknown domain")
    check(not os.path.lexists(fresh), "a failed save leaves no file it created")
    keep = os.path.join(files, "keep.save")
    subprocess.run(member + ["sh", "-c", "echo mine > " + keep], check=True)
    expect(g, ["save", "nosuch", keep], 1, "", "error: failed to get domain 'nosuch'\n",
           prefix=member, what="save of an unknown domain over an existing file")
    check(open(keep).read() == "mine\n", "a failed save does not touch an existing file")

    # The protocol itself: tetherd never opens a path, and checks every descriptor it gets.
    def save_req(path):
        return {"execute": "save", "arguments": {"domain": "fd-1",
                                                 "file": {"path": path, "open": "save"}}}
    r = raw_call(g.sock, {"execute": "save", "arguments": {"domain": "fd-1", "file": pwned}})
    check(r is not None and r.get("error", {}).get("desc") ==
          "Invalid parameter type for 'file', expected: object" and
          not os.path.lexists(pwned), "a path string is not accepted (the old protocol)", repr(r))
    r = raw_call(g.sock, save_req(pwned))
    check(r is not None and r.get("error", {}).get("desc") ==
          "no descriptor for '%s' came with the request: the client opens the file and passes "
          "it (SCM_RIGHTS); tetherd does not open files for its clients" % pwned and
          not os.path.lexists(pwned), "a request without its descriptor is refused", repr(r))
    cases = [(os.open("/dev/zero", os.O_RDWR), "'/x' is a character device",
              "cannot save to '/x': it is a character device, and a save image must be a "
              "regular file"),
             (os.open(victim, os.O_RDONLY), "a read-only descriptor",
              "cannot save to '/x': not open for writing"),
             (os.open(os.path.join(files, "append"), os.O_WRONLY | os.O_CREAT | os.O_APPEND),
              "an O_APPEND descriptor", "cannot save to '/x': open for appending (O_APPEND)")]
    for fd, what, want in cases:
        try:
            r = raw_call(g.sock, save_req("/x"), [fd])
        finally:
            os.close(fd)
        check(r is not None and r.get("error", {}).get("desc") == want,
              "tetherd refuses %s for save" % what, repr(r))
    check(open(victim, "rb").read() == before, "the read-only descriptor's file is unchanged")
    fd = os.open(image, os.O_WRONLY)
    try:
        r = raw_call(g.sock, {"execute": "restore",
                              "arguments": {"file": {"path": "/y", "open": "restore"}}}, [fd])
    finally:
        os.close(fd)
    check(r is not None and r.get("error", {}).get("desc") ==
          "cannot read '/y': not open for reading", "tetherd refuses a write-only fd for restore",
          repr(r))
    # One connection, two saves: each takes its own descriptor, also when the first fails.
    fa = os.path.join(files, "first.save")
    fb = os.path.join(files, "second.save")
    fds = [os.open(p, os.O_WRONLY | os.O_CREAT, 0o600) for p in (fa, fb)]
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(60)
    try:
        s.connect(g.sock)
        for dom, p, fd in (("nosuch", fa, fds[0]), ("fd-1", fb, fds[1])):
            req = {"execute": "save", "arguments": {"domain": dom,
                                                    "file": {"path": p, "open": "save"}}}
            socket.send_fds(s, [(json.dumps(req) + "\n").encode()], [fd])
        buf = b""
        while buf.count(b"\n") < 2:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        replies = [json.loads(x) for x in buf.split(b"\n") if x.strip()]
    finally:
        s.close()
        for fd in fds:
            os.close(fd)
    check(len(replies) == 2 and "error" in replies[0] and "return" in replies[1],
          "a failed save, then a save, on one connection", repr(replies))
    check(os.path.getsize(fa) == 0 and open(fb, "rb").read(10) == b"TetherSave",
          "the second save wrote its own file, not the first one's",
          "%d %r" % (os.path.getsize(fa), open(fb, "rb").read(10)))
    expect(g, ["restore", fb], 0, "Domain restored from %s\n\n" % fb, "")
    g.record_qemus()
    expect(g, ["destroy", "fd-1"], 0, "Domain 'fd-1' destroyed\n\n", "")


def test_client_screenshot(g, users, tmp):
    """A screenshot: QEMU writes the PNG into tetherd's own run folder, tetherd sends the bytes,
    and the CLI writes the file with the user's own rights."""
    member = users.as_member()
    files = os.path.join(tmp, "member-files")
    path = write(g, "shot-1.xml", domain_xml("shot-1", uuid_for(91),
                                             "<video><model type='vga'/></video>"))
    expect(g, ["define", path], 0, None, "")
    expect(g, ["start", "shot-1"], 0, "Domain 'shot-1' started\n\n", "")
    g.record_qemus()
    shot = os.path.join(files, "shot.png")
    expect(g, ["screenshot", "shot-1", shot], 0,
           "Screenshot saved to %s, with type of image/png\n\n" % shot, "", prefix=member,
           what="a member's screenshot")
    check(os.path.exists(shot) and os.stat(shot).st_uid == users.member_pw.pw_uid and
          open(shot, "rb").read(8) == b"\x89PNG\r\n\x1a\n",
          "the screenshot is a PNG owned by the member")
    pwned = "/etc/tether-shot-%d.png" % os.getpid()
    expect(g, ["screenshot", "shot-1", pwned], 1, "",
           "error: cannot write '%s': Permission denied\n" % pwned, prefix=member,
           what="a member's screenshot into /etc")
    check(not os.path.lexists(pwned), "no screenshot appears in /etc")
    run = os.path.join(g.root, "run/tether/domains/shot-1")
    check(not [f for f in os.listdir(run) if f.startswith("screenshot-")],
          "no screenshot is left in tetherd's run folder", repr(os.listdir(run)))
    expect(g, ["destroy", "shot-1"], 0, "Domain 'shot-1' destroyed\n\n", "")
    expect(g, ["undefine", "shot-1"], 0, None, "")


def test_ssh_client_files(g, users, tmp):
    """Over tether+ssh:// the remote `tether proxy` opens the file, with the remote user's
    rights, and passes the descriptor to tetherd (ssh cannot carry one). A real sshd on
    127.0.0.1; the remote user is a member of the group with a shell."""
    login = "sectl" + str(os.getpid())
    home = os.path.join(tmp, "ssh-home")
    os.makedirs(home)
    made = subprocess.run(["useradd", "-r", "-M", "-d", home, "-s", "/bin/sh", "-G",
                           users.group, "-p", "*", login], capture_output=True, text=True)
    if not check(made.returncode == 0, "create the ssh login user", made.stderr):
        return
    sshd = None
    sdir = os.path.join(tmp, "ssh-files")
    try:
        pw = pwd.getpwnam(login)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.makedirs(os.path.join(sdir, "bin"))
        os.chmod(sdir, 0o755)
        for key in ["hostkey", "clientkey"]:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            os.path.join(sdir, key)], check=True)
        shutil.copy(os.path.join(sdir, "clientkey.pub"), os.path.join(sdir, "authorized_keys"))
        os.chmod(os.path.join(sdir, "authorized_keys"), 0o644)
        os.symlink(g.tether, os.path.join(sdir, "bin/tether"))
        port = td.free_port()
        conf = os.path.join(sdir, "sshd_config")
        with open(conf, "w") as f:
            f.write("ListenAddress 127.0.0.1\nPort %d\nHostKey %s/hostkey\nPidFile %s/sshd.pid\n"
                    "AuthorizedKeysFile %s/authorized_keys\nPasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                    "SetEnv PATH=%s/bin:/usr/bin:/bin\n" % (port, sdir, sdir, sdir, sdir))
        # sshd's privilege-separation folder: made if missing and left in place (another
        # suite's sshd may be using it: CI runs two suites side by side).
        os.makedirs("/run/sshd", 0o755, exist_ok=True)
        sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf],
                                stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(sdir, "sshd.log"), "w"))

        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False
        if not check(wait_for(listening, 10), "private sshd listens",
                     open(os.path.join(sdir, "sshd.log")).read()):
            return
        uri = ("tether+ssh://%s@127.0.0.1:%d/system?socket=%s&keyfile=%s&known_hosts=%s"
               "&no_verify=1" % (login, port, g.sock, os.path.join(sdir, "clientkey"),
                                 os.path.join(sdir, "known_hosts")))
        files = os.path.join(tmp, "ssh-user-files")
        os.makedirs(files)
        os.chown(files, pw.pw_uid, pw.pw_gid)
        rc, out, err = g.run("-c", uri, "list", "--all", root=False)
        if not check(rc == 0, "list over ssh as the member", "%r %r\n%s" % (
                out, err, open(os.path.join(sdir, "sshd.log")).read()[-2000:])):
            return
        g.define("ssh-1", uuid_for(92))
        expect(g, ["start", "ssh-1"], 0, "Domain 'ssh-1' started\n\n", "")
        g.record_qemus()
        pwned = "/etc/tether-pwned-ssh-%d" % os.getpid()
        try:
            expect(g, ["-c", uri, "save", "ssh-1", pwned], 1, "",
                   "error: cannot create save image '%s': Permission denied\n" % pwned,
                   root=False, what="save into /etc over ssh as a member")
            check(not os.path.lexists(pwned), "no file appears in /etc (ssh)")
        finally:
            if os.path.lexists(pwned):
                os.unlink(pwned)
        link = os.path.join(files, "link.save")
        os.symlink("/etc/passwd", link)
        before = open("/etc/passwd", "rb").read()
        expect(g, ["-c", uri, "save", "ssh-1", link], 1, "",
               "error: '%s' is a symbolic link: a save image must be a regular file, and links "
               "are not followed\n" % link, root=False, what="save to a symlink over ssh")
        check(open("/etc/passwd", "rb").read() == before, "/etc/passwd is unchanged")
        image = os.path.join(files, "ssh-1.save")
        expect(g, ["-c", uri, "save", "ssh-1", image], 0,
               "\nDomain 'ssh-1' saved to %s\n\n" % image, "", root=False,
               what="save over ssh as a member")
        check(os.path.exists(image) and owner_mode(image) == (pw.pw_uid, 0o600),
              "the image saved over ssh is the remote user's, mode 0600",
              repr(owner_mode(image)) if os.path.exists(image) else "missing")
        secret = os.path.join(files, "root-only.save")
        shutil.copyfile(image, secret)
        os.chmod(secret, 0o600)
        expect(g, ["-c", uri, "restore", secret], 1, "",
               "error: cannot open save image '%s': Permission denied\n" % secret, root=False,
               what="restore of a root-only image over ssh")
        expect(g, ["-c", uri, "restore", image], 0, "Domain restored from %s\n\n" % image, "",
               root=False, what="restore over ssh as a member")
        g.record_qemus()
        expect(g, ["domstate", "--reason", "ssh-1"], 0, "running (restored)\n\n", "")
        expect(g, ["destroy", "ssh-1"], 0, "Domain 'ssh-1' destroyed\n\n", "")
        # A save that fails leaves no file that the remote proxy created for it, as locally.
        failed = os.path.join(files, "failed.save")
        expect(g, ["-c", uri, "save", "ssh-1", failed], 1, "",
               "error: Requested operation is not valid: domain is not running\n",
               root=False, what="save of a shut-off domain over ssh")
        check(not os.path.lexists(failed), "the failed save's file made over ssh is removed")
        kept = os.path.join(files, "kept.save")
        with open(kept, "wb") as f:
            f.write(b"mine")
        os.chown(kept, pw.pw_uid, pw.pw_gid)
        expect(g, ["-c", uri, "save", "ssh-1", kept], 1, "",
               "error: Requested operation is not valid: domain is not running\n",
               root=False, what="failed save over ssh into an existing file")
        check(os.path.exists(kept), "a file that was there before a failed save stays")
    finally:
        if sshd:
            sshd.terminate()
            try:
                sshd.wait(10)
            except subprocess.TimeoutExpired:
                sshd.kill()
                sshd.wait()
        subprocess.run(["userdel", login], capture_output=True)
        check(subprocess.run(["getent", "passwd", login], capture_output=True).returncode == 2,
              "the ssh login user is gone")
# ---- part 2: what a domain may name, and QEMU's user ----

QEMU = "/usr/bin/qemu-system-x86_64"


def policy_xml(name, uuid, emulator=None, disk=None, kernel=None, initrd=None, channel=None,
               fmt="raw"):
    dev = "<emulator>%s</emulator>" % emulator if emulator else ""
    if disk:
        dev += ("<disk type='file' device='disk'><driver name='qemu' type='%s'/>"
                "<source file='%s'/><target dev='vda' bus='virtio'/></disk>" % (fmt, disk))
    if channel is not None:
        src = "<source mode='bind' path='%s'/>" % channel if channel else ""
        dev += ("<channel type='unix'>%s<target type='virtio' name='org.qemu.guest_agent.0'/>"
                "</channel>" % src)
    os_extra = ""
    if kernel:
        os_extra += "<kernel>%s</kernel>" % kernel
    if initrd:
        os_extra += "<initrd>%s</initrd>" % initrd
    return ("<domain type='qemu'><name>%s</name><uuid>%s</uuid>"
            "<memory unit='MiB'>32</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type>%s</os>"
            "<devices>%s<memballoon model='none'/></devices></domain>\n"
            % (name, uuid, os_extra, dev))


def file_state(path):
    st = os.lstat(path)
    with open(path, "rb") as f:
        return (st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns, f.read())


class PolicyDaemon(td.Daemon):
    """A grouped tetherd with [security] emulators and image-dirs set in its tetherd.conf."""

    def __init__(self, tetherd, tether, tmp, users):
        super().__init__(tetherd, tether, tmp, "policy", group=users.group)
        self.images = os.path.join(self.root, "images")
        os.makedirs(os.path.join(self.root, "etc/tether"))
        os.makedirs(self.images)
        with open(os.path.join(self.root, "etc/tether/tetherd.conf"), "w") as f:
            f.write("[security]\nemulators = %s\nimage-dirs = %s\n" % (QEMU, self.images))


def test_policy(tetherd, tether, tmp, users):
    p = PolicyDaemon(tetherd, tether, tmp, users)
    try:
        p.start()
        os.chmod(p.root, 0o755)
        policy_cases(p, users)
    finally:
        p.cleanup()


def policy_cases(p, users):
    member = users.as_member()
    imgs = p.images
    allowed_dirs = "(allowed: %s)" % imgs
    # What an attack aims at: a root-only file; it must stay exactly as it is.
    secret = os.path.join(p.root, "secret")
    with open(secret, "w") as f:
        f.write("root's secret\n")
    os.chmod(secret, 0o600)
    before = file_state(secret)
    ok_img = os.path.join(imgs, "ok.img")
    with open(ok_img, "wb") as f:
        f.truncate(1 << 20)
    os.chmod(ok_img, 0o644)
    link = os.path.join(imgs, "link.img")
    os.symlink(secret, link)
    dotdot = os.path.join(imgs, "..", "secret")
    cases = [
        ("emulator", dict(emulator="/bin/sh"),
         "<emulator> '/bin/sh' is not an allowed emulator (allowed: %s)" % QEMU),
        ("disk-outside", dict(disk=secret),
         "<disk> source '%s' is not under an image folder %s" % (secret, allowed_dirs)),
        ("disk-symlink", dict(disk=link),
         "<disk> source '%s' resolves to '%s', which is not under an image folder %s"
         % (link, secret, allowed_dirs)),
        ("disk-dotdot", dict(disk=dotdot),
         "<disk> source '%s' resolves to '%s', which is not under an image folder %s"
         % (dotdot, secret, allowed_dirs)),
        ("kernel", dict(kernel=secret),
         "<kernel> '%s' is not under an image folder %s" % (secret, allowed_dirs)),
        ("initrd", dict(kernel=ok_img, initrd="/etc/passwd"),
         "<initrd> '/etc/passwd' is not under an image folder %s" % allowed_dirs),
        ("channel", dict(channel="/tmp/evil.sock"),
         "<channel> <source path='/tmp/evil.sock'>: channel sockets are tetherd's own, a client "
         "that is not root may not choose them (leave out <source>)"),
    ]
    for i, (tag, kw, rule) in enumerate(cases):
        name = "pol-" + tag
        path = write(p, name + ".xml", policy_xml(name, uuid_for(100 + i), **kw))
        want = "error: access denied: %s\n" % rule
        expect(p, ["define", path], 1, "", want, prefix=member, what="member define " + tag)
        expect(p, ["create", path], 1, "", want, prefix=member, what="member create " + tag)
        check(not os.path.exists(os.path.join(p.root, "etc/tether/domains", name + ".xml")),
              "a refused define leaves no definition (%s)" % tag)
        rc, out, err = p.run("list", "--all")
        check(rc == 0 and name not in out, "a refused define or create lists nothing (%s)" % tag,
              out)
        # Root keeps full freedom: the same definition is accepted from uid 0.
        expect(p, ["define", path], 0, what="root define " + tag)
        # A member may not start what it could not have defined (QEMU opens it as root).
        expect(p, ["start", name], 1, "", want, prefix=member, what="member start " + tag)
        check(not os.path.isdir(os.path.join(p.root, "run/tether/domains", name)),
              "a refused start leaves no run folder (%s)" % tag)
        expect(p, ["undefine", name], 0, what="root undefine " + tag)
    check(file_state(secret) == before, "the file aimed at is unchanged (owner, mode, content)")
    # What lies under the image folder and names the allowed QEMU is fine for a member.
    path = write(p, "pol-ok.xml", policy_xml("pol-ok", uuid_for(120), emulator=QEMU,
                                             disk=ok_img, channel=""))
    expect(p, ["define", path], 0, prefix=member, what="member define within the rules")
    expect(p, ["start", "pol-ok"], 0, "Domain 'pol-ok' started\n\n", "", prefix=member,
           what="member start within the rules")
    p.record_qemus()
    expect(p, ["destroy", "pol-ok"], 0, prefix=member, what="member destroy")
    # The image is swapped for a symlink after define: the start is refused at launch.
    os.unlink(ok_img)
    os.symlink(secret, ok_img)
    expect(p, ["start", "pol-ok"], 1, "",
           "error: access denied: <disk> source '%s' resolves to '%s', which is not under an "
           "image folder %s\n" % (ok_img, secret, allowed_dirs),
           prefix=member, what="member start after the image became a symlink")
    check(file_state(secret) == before, "the file aimed at by the swap is unchanged")
    # A FIFO under the image folder: refused at once, the daemon does not block on it.
    fifo = os.path.join(imgs, "fifo.img")
    os.mkfifo(fifo, 0o666)
    path = write(p, "pol-fifo.xml", policy_xml("pol-fifo", uuid_for(121), disk=fifo))
    expect(p, ["define", path], 0, prefix=member, what="member define with a FIFO disk")
    t0 = time.time()
    expect(p, ["start", "pol-fifo"], 1, "",
           "error: disk image '%s' is not a regular file or a block device\n" % fifo,
           prefix=member, what="member start with a FIFO disk", timeout=10)
    check(time.time() - t0 < 5, "the FIFO does not block the start")
    # QEMU opens a member's image from descriptors tetherd opened, never by its path.
    os.unlink(ok_img)
    with open(ok_img, "wb") as f:
        f.truncate(1 << 20)
    expect(p, ["start", "pol-ok"], 0, prefix=member, what="member start (fdset)")
    p.record_qemus()
    pid = p.status("pol-ok")["pid"]
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    check(any(a.startswith(b"driver=file,filename=/dev/fdset/1,") for a in argv) and
          ok_img.encode() not in b" ".join(argv),
          "QEMU gets the disk as /dev/fdset/1, not its path", repr(argv))
    expect(p, ["destroy", "pol-ok"], 0, prefix=member)
    backing_cases(p, users, secret, before)


def qemu_img(*args):
    r = subprocess.run(["qemu-img"] + list(args), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("qemu-img %s: %s" % (" ".join(args), r.stderr))


def drop_backing_format(path):
    """qemu-img no longer writes a backing file without its format: rename the extension."""
    with open(path, "r+b") as f:
        head = f.read(4096)
        at = head.find(b"\xe2\x79\x2a\xca")
        if at < 0:
            raise RuntimeError("no backing format extension in " + path)
        f.seek(at)
        f.write(b"\x0b\xad\x0b\xad")


def backing_cases(p, users, secret, before):
    """qcow2 backing files: tetherd walks each chain itself. A member's chain may not leave the
    image folders (at define, and at start after the header was rewritten), and QEMU gets
    every link as a descriptor with the chain spelled out, never a path to open as root."""
    member = users.as_member()
    uid, gid = users.member_pw.pw_uid, users.member_pw.pw_gid
    imgs = p.images
    allowed = "(allowed: %s)" % imgs
    evil = os.path.join(imgs, "evil.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", evil)
    os.chown(evil, uid, gid)
    want = ("error: access denied: the backing file '%s' of disk image '%s' is not under an "
            "image folder %s\n" % (secret, evil, allowed))
    path = write(p, "bk-evil.xml", policy_xml("bk-evil", uuid_for(140), disk=evil, fmt="qcow2"))
    expect(p, ["define", path], 1, "", want, prefix=member, what="member define, backing outside")
    expect(p, ["create", path], 1, "", want, prefix=member, what="member create, backing outside")
    # No format in the header: the backing file is probed, and checked all the same; a chain
    # that leaves through a second link is caught too.
    mid = os.path.join(imgs, "mid.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-b", secret, "-F", "raw", mid)
    top = os.path.join(imgs, "top.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top)
    drop_backing_format(top)
    path = write(p, "bk-deep.xml", policy_xml("bk-deep", uuid_for(141), disk=top, fmt="qcow2"))
    expect(p, ["define", path], 1, "",
           "error: access denied: the backing file '%s' of disk image '%s' is not under an "
           "image folder %s\n" % (secret, mid, allowed),
           prefix=member, what="member define, second link outside, probed format")
    # A header rewritten after define: the start walks the chain again.
    clean = os.path.join(imgs, "clean.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", clean, "1M")
    os.chown(clean, uid, gid)
    path = write(p, "bk-swap.xml", policy_xml("bk-swap", uuid_for(142), disk=clean, fmt="qcow2"))
    expect(p, ["define", path], 0, prefix=member, what="member define, clean qcow2")
    qemu_img("rebase", "-q", "-u", "-f", "qcow2", "-b", secret, "-F", "raw", clean)
    expect(p, ["start", "bk-swap"], 1, "",
           "error: access denied: the backing file '%s' of disk image '%s' is not under an "
           "image folder %s\n" % (secret, clean, allowed),
           prefix=member, what="member start after the header named a file outside")
    check(not os.path.isdir(os.path.join(p.root, "run/tether/domains", "bk-swap")),
          "a refused start leaves no run folder (backing)")
    expect(p, ["undefine", "bk-swap"], 0, prefix=member)
    # A pseudo-protocol name is refused for everyone: tetherd hands QEMU plain files only.
    qemu_img("rebase", "-q", "-u", "-f", "qcow2", "-b", 'json:{"file.filename":"%s"}' % secret,
             "-F", "raw", clean)
    path = write(p, "bk-json.xml", policy_xml("bk-json", uuid_for(143), disk=clean, fmt="qcow2"))
    expect(p, ["define", path], 0, what="root define, json: backing")
    expect(p, ["start", "bk-json"], 1, "",
           "error: disk image '%s': backing file 'json:{\"file.filename\":\"%s\"}' is not a "
           "plain file (tetherd opens backing files itself and hands QEMU files only)\n"
           % (clean, secret), what="root start, json: backing")
    expect(p, ["undefine", "bk-json"], 0)
    check(file_state(secret) == before, "the file aimed at by the backing chains is unchanged")
    # Root's chain, in a folder closed to QEMU's user, named relatively: QEMU reads through it
    # from the descriptors tetherd opened.
    closed = os.path.join(p.root, "closed")
    os.makedirs(closed, mode=0o700)
    base = os.path.join(closed, "base.raw")
    with open(base, "wb") as f:
        f.write(b"\x5a" * 512)
        f.truncate(1 << 20)
    os.chmod(base, 0o600)
    qemu_img("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw",
             os.path.join(closed, "mid.qcow2"))
    ctop = os.path.join(closed, "top.qcow2")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", ctop)
    path = write(p, "bk-root.xml", policy_xml("bk-root", uuid_for(144), disk=ctop, fmt="qcow2"))
    expect(p, ["define", path], 0, what="root define, chain in a closed folder")
    expect(p, ["start", "bk-root"], 0, "Domain 'bk-root' started\n\n", "",
           what="root start, chain in a closed folder")
    p.record_qemus()
    pid = p.status("bk-root")["pid"]
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    joined = b" ".join(argv)
    check(b"base.raw" not in joined and b"mid.qcow2" not in joined,
          "no backing file's name reaches QEMU", repr(argv))
    check(any(a.startswith(b"node-name=libvirt-1-format,") and
              a.endswith(b",backing=libvirt-1-b1-format") for a in argv) and
          any(a.startswith(b"node-name=libvirt-1-b1-format,") and b",driver=qcow2," in a and
              a.endswith(b",backing=libvirt-1-b2-format") for a in argv) and
          any(a.startswith(b"node-name=libvirt-1-b2-format,") and b",driver=raw," in a
              for a in argv),
          "the chain is spelled out: top, then qcow2, then raw", repr(argv))
    # QEMU opened every link (it reads each header at start): query-block shows the chain.
    rc, out, err = p.run("qemu-monitor-command", "bk-root", '{"execute": "query-block"}')
    chain = []
    try:
        img = [b for b in json.loads(out)["return"] if b.get("inserted")][0]["inserted"]["image"]
        while img:
            chain.append((img["format"], "/dev/fdset/" in img["filename"] and
                          closed not in img["filename"]))
            img = img.get("backing-image")
    except (ValueError, KeyError, IndexError) as e:
        chain.append(repr(e))
    check(rc == 0 and chain == [("qcow2", True), ("qcow2", True), ("raw", True)],
          "QEMU holds the whole chain, each link from a descriptor", repr((rc, chain, out, err)))
    expect(p, ["destroy", "bk-root"], 0)
    expect(p, ["undefine", "bk-root"], 0)


def test_policy_defaults(g, users):
    """Without [security]: the QEMUs found, and ROOT/var/lib/tether/images for --root."""
    path = write(g, "pold-1.xml", policy_xml("pold-1", uuid_for(130), emulator="/bin/sh"))
    rc, out, err = g.run("define", path, prefix=users.as_member())
    head = "error: access denied: <emulator> '/bin/sh' is not an allowed emulator (allowed: "
    check(rc == 1 and err.startswith(head) and QEMU in err[len(head):].split(")")[0].split(),
          "default emulators: the QEMU binaries found", repr((rc, out, err)))
    path = write(g, "pold-2.xml", policy_xml("pold-2", uuid_for(131), disk="/etc/passwd"))
    expect(g, ["define", path], 1, "",
           "error: access denied: <disk> source '/etc/passwd' is not under an image folder "
           "(allowed: /var/lib/tether/images %s/var/lib/tether/images)\n" % g.root,
           prefix=users.as_member(), what="default image folders")
    imgs = os.path.join(g.root, "var/lib/tether/images")
    os.makedirs(imgs, exist_ok=True)
    img = os.path.join(imgs, "d.img")
    open(img, "wb").close()
    path = write(g, "pold-3.xml", policy_xml("pold-3", uuid_for(132), disk=img))
    expect(g, ["define", path], 0, prefix=users.as_member(), what="define under ROOT's images")
    expect(g, ["undefine", "pold-3"], 0, prefix=users.as_member())


def qemu_user_of(d, name):
    pid = d.status(name)["pid"]
    user = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True,
                          text=True).stdout.strip()
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = f.read().split(b"\0")
    return pid, user, argv


def test_qemu_user_options(tetherd, tether, tmp):
    # The default: tether-qemu, with -runas and the sandbox.
    d = td.Daemon(tetherd, tether, tmp, "quser-default")
    try:
        d.start()
        d.define("qu-1", uuid_for(140))
        expect(d, ["start", "qu-1"], 0, "Domain 'qu-1' started\n\n", "")
        d.record_qemus()
        pid, user, argv = qemu_user_of(d, "qu-1")
        check(user == "tether-qemu", "QEMU runs as tether-qemu by default", user)
        i = argv.index(b"-runas") if b"-runas" in argv else -1
        check(i > 0 and argv[i + 1] == b"tether-qemu", "QEMU gets -runas tether-qemu",
              repr(argv))
        i = argv.index(b"-sandbox") if b"-sandbox" in argv else -1
        check(i > 0 and argv[i + 1] == b"on,obsolete=deny,spawn=deny,resourcecontrol=deny",
              "QEMU gets -sandbox", repr(argv))
        # umask 077: tetherd's own files are private, the socket's folder stays reachable.
        for rel, mode in [("run/tether", 0o755), ("run/tether/domains", 0o755),
                          ("run/tether/domains/qu-1", 0o700),
                          ("run/tether/domains/qu-1/status.json", 0o600),
                          ("var/lib/tether/log/qu-1.log", 0o600),
                          ("etc/tether/domains/qu-1.xml", 0o600)]:
            got = os.stat(os.path.join(d.root, rel)).st_mode & 0o777
            check(got == mode, "mode of %s is %o" % (rel, mode), "%o" % got)
        expect(d, ["destroy", "qu-1"], 0)
    finally:
        d.cleanup()
    # --qemu-user root, and qemu-user = (empty) in the config: QEMU stays root, as before.
    for tag, extra, conf in [("quser-root", ["--qemu-user", "root"], None),
                             ("quser-empty", [], "[security]\nqemu-user =\n")]:
        d = td.Daemon(tetherd, tether, tmp, tag)
        if conf:
            os.makedirs(os.path.join(d.root, "etc/tether"))
            with open(os.path.join(d.root, "etc/tether/tetherd.conf"), "w") as f:
                f.write(conf)
        try:
            start_with(d, extra)
            d.define("qu-2", uuid_for(141))
            expect(d, ["start", "qu-2"], 0, "Domain 'qu-2' started\n\n", "")
            d.record_qemus()
            pid, user, argv = qemu_user_of(d, "qu-2")
            check(user == "root" and b"-runas" not in argv and b"-sandbox" not in argv,
                  "%s: QEMU runs as root, without -runas and -sandbox" % tag,
                  repr((user, argv)))
            expect(d, ["destroy", "qu-2"], 0)
        finally:
            d.cleanup()
    # Errors at start-up: an unknown user, an unknown [security] key.
    root = os.path.join(tmp, "quser-bad")
    p = subprocess.run([tetherd, "--root", root, "--qemu-user", "nosuchuser"],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 1 and "tetherd: error: QEMU's user 'nosuchuser' does not exist: "
          "create it (useradd --system --no-create-home --shell /usr/sbin/nologin nosuchuser) "
          "or choose another with --qemu-user (root: QEMU runs as root)\n" in p.stderr,
          "an unknown QEMU user stops tetherd with a clear message", repr((p.returncode,
                                                                        p.stderr)))
    conf = os.path.join(tmp, "bad.conf")
    with open(conf, "w") as f:
        f.write("[security]\nqemu-users = x\n")
    p = subprocess.run([tetherd, "--root", root, "--config", conf],
                       capture_output=True, text=True, timeout=20)
    check(p.returncode == 1 and
          "%s:2: unknown key 'qemu-users' in [security]\n" % conf in p.stderr,
          "an unknown [security] key is refused", repr((p.returncode, p.stderr)))


def start_with(d, extra):
    """Daemon.start with extra options."""
    os.makedirs(d.root, exist_ok=True)
    argv = [d.tetherd, "--root", d.root, "--log", d.log] + extra
    d.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=open(d.log + ".stderr", "ab"))
    check(wait_for(lambda: os.path.exists(d.sock), 10), "tetherd %s comes up" % " ".join(extra))


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
                         ("qmp root only", lambda: test_qmp_root_only(g, users)),
                         ("stop with a request pending",
                          lambda: test_stop_with_request_pending(tetherd, tether, tmp)),
                         ("comma name restart", lambda: test_comma_name_restart(d)),
                         ("bad names", lambda: test_bad_names(d)),
                         ("listen empty", lambda: test_listen_empty(d)),
                         ("lookup order", lambda: test_lookup_order(d)),
                         ("restore not regular", lambda: test_restore_not_regular(d)),
                         ("save sync off the loop",
                          lambda: test_save_sync_off_loop(tetherd, tether, tmp)),
                         ("client files", lambda: test_client_files(g, users, tmp)),
                         ("client screenshot", lambda: test_client_screenshot(g, users, tmp)),
                         ("ssh client files", lambda: test_ssh_client_files(g, users, tmp)),
                         ("policy", lambda: test_policy(tetherd, tether, tmp, users)),
                         ("policy defaults", lambda: test_policy_defaults(g, users)),
                         ("qemu user options",
                          lambda: test_qemu_user_options(tetherd, tether, tmp))]:
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
