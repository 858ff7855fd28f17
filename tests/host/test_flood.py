#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
A local flood of tetherd's control socket is bounded (issue 10): real tetherd, real tether CLI,
real QEMUs (no booted guest).
- 200 idle connections plus a client that pipelines `list` and never reads its replies: a
  `list` from root still answers in under 100 ms, tetherd's RSS stays under RSS_BOUND (a larger
  one under ASan, whose shadow memory and quarantine are not ours), and the client that never
  reads is dropped once its replies went unread for the deadline (15 s);
- a connection with more jobs in flight than the cap (64) is told so for each extra request;
- [security] max-clients: a member beyond the cap gets a clear error, root still gets in (a
  reserve), and the refusals are logged;
- more descriptors passed (SCM_RIGHTS) than a client may have waiting: an error, then hangup.

    python3 test_flood.py TETHERD TETHER
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_daemon as td  # noqa: E402
import test_security as ts  # noqa: E402  (throwaway users)

check, expect, wait_for = td.check, td.expect, td.wait_for
RSS_BOUND = 64 << 20
RSS_BOUND_ASAN = 512 << 20
LIST_BOUND_S = 0.100
DEADLINE_S = 15


def rss_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def is_asan(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def connect(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)  # blocking: waits while tetherd's listen backlog is full
    s.settimeout(10)
    return s


def read_lines(s, n, timeout=20):
    """The first n reply lines on s (decoded), or fewer at EOF/timeout."""
    s.settimeout(timeout)
    buf = b""
    try:
        while buf.count(b"\n") < n:
            d = s.recv(1 << 16)
            if not d:
                break
            buf += d
    except OSError:
        pass
    return [json.loads(x) for x in buf.split(b"\n")[:n] if x.strip()]


def timed_list(path):
    t0 = time.monotonic()
    s = connect(path)
    try:
        s.sendall(b'{"execute": "list"}\n')
        r = read_lines(s, 1, 5)
    finally:
        s.close()
    return time.monotonic() - t0, r


def test_flood(d):
    for i in range(3):
        d.define("flood-%d" % i, td.uuid_for(200 + i))
    pid = d.proc.pid
    asan = is_asan(pid)
    bound = RSS_BOUND_ASAN if asan else RSS_BOUND
    idle = [connect(d.sock) for _ in range(200)]
    # The client that never reads: it pipelines list until tetherd stops reading from it.
    hog = connect(d.sock)
    hog.setblocking(False)
    req = b'{"execute": "list"}\n' * 1000
    sent, stuck_since = 0, None
    while True:
        try:
            sent += hog.send(req)
            stuck_since = None
        except BlockingIOError:
            stuck_since = stuck_since or time.monotonic()
            if time.monotonic() - stuck_since > 2:
                break
            time.sleep(0.05)
    print("# the client that never reads sent %d bytes before tetherd stopped reading" % sent)
    check(sent < (256 << 20), "tetherd stops reading a client that does not read (%d bytes)"
          % sent)
    worst, replies = 0.0, []
    for _ in range(30):
        dt, r = timed_list(d.sock)
        worst = max(worst, dt)
        replies.append(r)
    check(all(r and "return" in r[0] and len(r[0]["return"]) == 3 for r in replies),
          "every list answers with the 3 domains during the flood", repr(replies[:2]))
    check(worst < LIST_BOUND_S, "list from root answers in under 100 ms during the flood "
          "(worst %.1f ms)" % (worst * 1000))
    expect(d, ["list", "--all", "--name"], 0, "flood-0\nflood-1\nflood-2\n\n", "",
           what="tether list during the flood")
    rss = rss_of(pid)
    print("# tetherd RSS during the flood: %.1f MiB (bound %d MiB%s)" % (
        rss / 2**20, bound >> 20, ", ASan" if asan else ""))
    check(rss < bound, "tetherd's RSS stays under %d MiB (%.1f MiB)" % (bound >> 20,
                                                                      rss / 2**20))
    # The deadline: no reply read for DEADLINE_S, the client is dropped.
    log_mark = len(d.log_text())
    dropped = wait_for(lambda: "dropping control client uid 0:" in d.log_text()[log_mark:],
                       DEADLINE_S + 10)
    check(dropped, "the client that never reads is dropped after %d s" % DEADLINE_S,
          d.log_text()[log_mark:][-1000:])
    line = [ln for ln in d.log_text()[log_mark:].splitlines() if "dropping control" in ln]
    check(line and line[0].endswith("bytes of replies unread for %d s" % DEADLINE_S),
          "the drop is logged with the unread bytes", repr(line))
    # Its connection is closed: after what was already sent, EOF.
    hog.setblocking(True)
    hog.settimeout(10)
    got, eof = 0, False
    try:
        while True:
            b = hog.recv(1 << 20)
            if not b:
                eof = True
                break
            got += len(b)
    except ConnectionResetError:
        eof = True  # tetherd closed with our requests unread in its queue
    except OSError:
        pass
    check(eof, "the dropped client's connection ends (%d bytes were delivered)" % got)
    hog.close()
    # The idle clients are still served.
    idle[0].sendall(b'{"execute": "list", "id": 7}\n')
    r = read_lines(idle[0], 1)
    check(r and r[0].get("id") == 7 and len(r[0].get("return", [])) == 3,
          "an idle connection is still served after the flood", repr(r))
    for s in idle:
        s.close()
    check(d.proc.poll() is None, "tetherd still runs after the flood")
    rss = rss_of(pid)
    check(rss < bound, "tetherd's RSS after the flood stays under %d MiB (%.1f MiB)" % (
        bound >> 20, rss / 2**20))
    for i in range(3):
        expect(d, ["undefine", "flood-%d" % i], 0, None, "")


def test_inflight_cap(d):
    d.define("busy-1", td.uuid_for(210))
    expect(d, ["start", "busy-1"], 0, "Domain 'busy-1' started\n\n", "")
    d.record_qemus()
    qemu = d.status("busy-1")["pid"]
    os.kill(qemu, signal.SIGSTOP)  # QEMU answers nothing: every request stays in flight
    s = connect(d.sock)
    try:
        n = 70
        s.sendall(b"".join(b'{"execute": "qmp", "arguments": {"domain": "busy-1", "command": '
                           b'{"execute": "query-status"}}, "id": %d}\n' % i for i in range(n)))
        refused = read_lines(s, n - 64, 10)
        want = ("too many requests in progress on this connection (at most 64): wait for their "
                "replies")
        check(len(refused) == n - 64 and
              all(r.get("error", {}).get("desc") == want and r.get("error", {}).get("class") ==
                  "Busy" for r in refused) and
              sorted(r["id"] for r in refused) == list(range(64, n)),
              "requests beyond 64 in flight on one connection are refused at once",
              repr(refused[:2]))
        dt, r = timed_list(d.sock)
        check(r and "return" in r[0] and dt < LIST_BOUND_S,
              "another client is served meanwhile (%.1f ms)" % (dt * 1000))
        os.kill(qemu, signal.SIGCONT)
        qemu = None
        answered = read_lines(s, 64, 30)
        check(len(answered) == 64 and all("return" in r for r in answered),
              "the 64 in flight are answered once QEMU does", repr(answered[-1:]))
    finally:
        if qemu:
            os.kill(qemu, signal.SIGCONT)
        s.close()
    expect(d, ["destroy", "busy-1"], 0, "Domain 'busy-1' destroyed\n\n", "")
    expect(d, ["undefine", "busy-1"], 0, None, "")


def test_too_many_fds(d):
    s = connect(d.sock)
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(5)]
    try:
        socket.send_fds(s, [b'{"execute": "list"}\n'], fds)
        r = read_lines(s, 2, 10)
    finally:
        for fd in fds:
            os.close(fd)
        s.close()
    check(len(r) == 1 and r[0].get("error", {}).get("desc") ==
          "too many descriptors passed: at most 4 may wait for their requests",
          "too many passed descriptors: one clear error, then the connection ends", repr(r))


def test_max_clients(tetherd, tether, tmp, users):
    c = td.Daemon(tetherd, tether, tmp, "capped", group=users.group)
    conf = os.path.join(tmp, "capped.conf")
    with open(conf, "w") as f:
        f.write("[security]\nmax-clients = 8\n")
    held = []
    try:
        os.makedirs(c.root, exist_ok=True)
        c.proc = subprocess.Popen([tetherd, "--root", c.root, "--log", c.log, "--group",
                                   users.group, "--config", conf],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=open(c.log + ".stderr", "ab"))
        # "listening on" comes after the socket's chmod (members may connect from then on).
        if not check(wait_for(lambda: " listening on " in c.log_text(), 10),
                     "capped tetherd starts", c.log_text()):
            return
        os.chmod(c.root, 0o755)
        n_fds = td.fd_count(c.proc.pid)
        # Eight members' connections held open (a member's process keeps them).
        holder = subprocess.Popen(
            users.as_member() + [ts.USER_PY, "-c",
                                 "import socket,sys,time\nss=[]\nfor i in range(8):\n"
                                 " s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
                                 "ss.append(s)\nprint('ok',flush=True)\nsys.stdin.read()\n",
                                 c.sock],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        held.append(holder)
        check(holder.stdout.readline().strip() == "ok", "a member holds 8 connections")
        # tetherd accepted all eight (the limit counts accepted connections).
        check(wait_for(lambda: td.fd_count(c.proc.pid) >= n_fds + 8, 10),
              "tetherd accepted the member's 8 connections")
        full = "error: too many clients: tetherd serves at most 8 at once; try again later\n"
        expect(c, ["list", "--all"], 1, "", full, prefix=users.as_member(),
               what="a member's list beyond max-clients")
        expect(c, ["list", "--all"], 0, None, "", what="root's list beyond max-clients "
               "(the reserve)")
        check(wait_for(lambda: "(too many clients)" in c.log_text(), 5),
              "the refusal is logged", c.log_text()[-1000:])
        line = [ln for ln in c.log_text().splitlines() if "(too many clients)" in ln]
        check(line and "refused control connection from uid %d gid %d" % (
            users.member_pw.pw_uid, users.member_pw.pw_gid) in line[0],
            "the log names the refused member", repr(line))
        holder.stdin.close()
        holder.wait(10)
        held.remove(holder)
        check(wait_for(lambda: c.run("list", prefix=users.as_member())[0] == 0, 5),
              "once the member's connections close, a member gets in again")
        # A bad value is refused at start, naming the key and the line.
        with open(conf, "w") as f:
            f.write("[security]\nmax-clients = 0\n")
        p = subprocess.run([tetherd, "--root", os.path.join(tmp, "badconf"), "--config", conf],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode != 0 and "%s:2: invalid value '0' for max-clients: from 1 to 65536"
              % conf in p.stderr, "max-clients = 0 is refused clearly", p.stderr)
    finally:
        for h in held:
            h.kill()
            h.wait()
        c.cleanup()


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tetherd, tether = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if os.geteuid() != 0:
        print("SKIP: needs root (useradd, runuser)")
        return 77
    tmp = tempfile.mkdtemp(prefix="floodtest-", dir="/tmp")
    os.chmod(tmp, 0o755)
    users = ts.Users()
    d = td.Daemon(tetherd, tether, tmp, "flood")
    try:
        if not check(users.create(), "create throwaway users and group"):
            return 1
        d.start()
        for name, fn in [("flood", lambda: test_flood(d)),
                         ("inflight cap", lambda: test_inflight_cap(d)),
                         ("too many fds", lambda: test_too_many_fds(d)),
                         ("max clients", lambda: test_max_clients(tetherd, tether, tmp, users))]:
            t0 = time.time()
            try:
                fn()
            except Exception as e:  # one broken part must not hide the others
                import traceback
                check(False, "%s: exception %r" % (name, e), traceback.format_exc())
            print("# %s: %.1fs" % (name, time.time() - t0), flush=True)
        check(d.proc.poll() is None, "tetherd still runs at the end")
    finally:
        if td.failed:
            print("--- tetherd log (tail) ---\n%s" % d.log_text()[-3000:])
        d.cleanup()
        users.remove()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (td.passed, td.failed))
    return 1 if td.failed else 0


if __name__ == "__main__":
    sys.exit(main())
