#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
tetherd as a daemon, with the real tether CLI and real QEMUs (each tetherd has its own --root
in a temp folder; only processes started here are killed, by pid):
- access: a non-root client is refused with a clear error and the refusal is logged;
  `--group NAME` lets its members in (a throwaway group and user, removed afterwards);
- requests refused before any handler runs get their exact error, one reply each;
- many clients at once, and clients that send nothing, garbage or 5 MiB do not block others;
- remote access: tether+ssh:// through a private sshd on 127.0.0.1 gives the local output;
- kill -9 of tetherd and restart: domains keep state and ids and stay controllable;
  kill -9 of a QEMU: `shut off (crashed)`; corrupt status files do not crash the daemon;
- two clients racing `start` on one domain: one wins, the other gets a clear error, no hang.

    python3 test_daemon.py TETHERD TETHER
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
import threading
import time

TIMEOUT = 30
passed = 0
failed = 0
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s%s" % (what, ("\n" + detail) if detail else ""), flush=True)
    return cond


def domain_xml(name, uuid):
    return ("<domain type='qemu'><name>%s</name><uuid>%s</uuid>"
            "<memory unit='MiB'>32</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
            "<devices><memballoon model='none'/></devices></domain>\n" % (name, uuid))


def uuid_for(i):
    return "%08x-0000-4000-8000-%012x" % (0xc1170000 + i, i)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def is_qemu_of(pid, name):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return ("guest=%s," % name).encode() in f.read()
    except OSError:
        return False


class Daemon:
    """One tetherd with its own root; remembers every QEMU it saw so cleanup can kill it."""

    def __init__(self, tetherd, tether, tmp, tag, group=None):
        self.tetherd = tetherd
        self.tether = tether
        self.root = os.path.join(tmp, tag)
        self.log = os.path.join(tmp, tag + ".log")
        self.sock = os.path.join(self.root, "run/tether/tetherd.sock")
        self.group = group
        self.proc = None
        self.qemus = {}  # pid -> domain name

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        argv = [self.tetherd, "--root", self.root, "--log", self.log]
        if self.group:
            argv += ["--group", self.group]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log + ".stderr", "ab"))
        for _ in range(200):
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("tetherd did not come up (see %s)" % self.log)

    def kill9(self):
        self.record_qemus()
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.record_qemus()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def status(self, name):
        with open(os.path.join(self.root, "run/tether/domains", name, "status.json")) as f:
            return json.load(f)

    def record_qemus(self):
        d = os.path.join(self.root, "run/tether/domains")
        for name in os.listdir(d) if os.path.isdir(d) else []:
            try:
                self.qemus[int(self.status(name)["pid"])] = name
            except (OSError, ValueError, KeyError, TypeError):
                pass

    def cleanup(self):
        self.stop()
        # Under -Db_sanitize=address,undefined the daemon reports on its stderr.
        try:
            text = open(self.log + ".stderr", errors="replace").read()
        except OSError:
            text = ""
        check(not any(m in text for m in SANITIZER_MARKS),
              "no sanitizer report from tetherd (%s)" % os.path.basename(self.root), text[-3000:])
        for pid, name in self.qemus.items():
            if pid_alive(pid) and is_qemu_of(pid, name):
                os.kill(pid, signal.SIGKILL)

    def run(self, *args, timeout=TIMEOUT, prefix=(), root=True):
        argv = list(prefix) + [self.tether] + (["--root", self.root] if root else []) + list(args)
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return -1, "", "TIMEOUT after %ss" % timeout
        return p.returncode, p.stdout, p.stderr

    def popen(self, *args):
        return subprocess.Popen([self.tether, "--root", self.root] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def define(self, name, uuid):
        path = os.path.join(self.root, name + ".xml")
        with open(path, "w") as f:
            f.write(domain_xml(name, uuid))
        rc, out, err = self.run("define", path)
        check(rc == 0, "define %s" % name, err)

    def log_text(self):
        try:
            return open(self.log).read()
        except OSError:
            return ""


def expect(d, args, rc, out=None, err=None, what=None, **kw):
    got = d.run(*args, **kw)
    what = what or "tether " + " ".join(args)
    check(not any(m in got[2] for m in SANITIZER_MARKS), "%s: no sanitizer report" % what,
          got[2])
    check(got[0] == rc, "%s: exit code %d, want %d" % (what, got[0], rc),
          "stdout: %r\nstderr: %r" % (got[1], got[2]))
    if out is not None:
        check(got[1] == out, "%s: stdout" % what, "got:  %r\nwant: %r" % (got[1], out))
    if err is not None:
        check(got[2] == err, "%s: stderr" % what, "got:  %r\nwant: %r" % (got[2], err))
    return got


def fd_count(pid):
    """How many files process pid holds open."""
    return len(os.listdir("/proc/%d/fd" % pid))


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


# ---- access control ----

DENIED = ("error: access denied: only root or members of the tetherd group may use this "
          "socket\n")
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_access(tetherd, tether, tmp, d):
    # The client must be able to reach the socket: report folders that shut others out.
    rundir = os.path.dirname(d.sock)
    for path in [d.root, os.path.dirname(rundir), rundir]:
        mode = os.stat(path).st_mode & 0o777
        check(mode & 0o001, "%s is searchable by others (mode %o)" % (path, mode))
    expect(d, ["list"], 1, "", DENIED, prefix=AS_NOBODY, what="list as nobody")
    expect(d, ["start", "x"], 1, "", DENIED, prefix=AS_NOBODY, what="start as nobody")
    check(wait_for(lambda: "refused control connection from uid 65534" in d.log_text(), 3),
          "the refusal of uid 65534 is logged", d.log_text()[-500:])
    # Raw: the refusal is a wire error, then the socket closes.
    out = subprocess.run(AS_NOBODY + [sys.executable, "-c", """
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5)
buf = b""
while True:
    d = s.recv(4096)
    if not d: break
    buf += d
sys.stdout.write(buf.decode())
""", d.sock], capture_output=True, text=True, timeout=10)
    try:
        j = json.loads(out.stdout)
    except ValueError:
        j = None
    check(j is not None and j.get("error", {}).get("class") == "PermissionDenied",
          "raw refusal: one PermissionDenied error, then EOF", repr(out.stdout) + out.stderr)

    # --group: a member (supplementary or primary group) gets in; others still do not.
    gname, uname = "clitestg%d" % os.getpid(), "clitestu%d" % os.getpid()
    made_group = made_user = False
    g = None
    try:
        if subprocess.run(["groupadd", "-r", gname], capture_output=True).returncode == 0:
            made_group = True
        if subprocess.run(["useradd", "-r", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                           "-G", gname, uname], capture_output=True).returncode == 0:
            made_user = True
        if not check(made_group and made_user, "create a throwaway group and user"):
            return
        gid = grp.getgrnam(gname).gr_gid
        pw = pwd.getpwnam(uname)
        g = Daemon(tetherd, tether, tmp, "grouped", group=gname)
        g.start()
        os.chmod(g.root, 0o755)
        want = "error: failed to get domain 'nosuch'\n"
        expect(g, ["list", "--all"], 0, " Id   Name   State\n--------------------\n\n", "",
               prefix=["runuser", "-u", uname, "--"], what="list by a member of --group")
        expect(g, ["dominfo", "nosuch"], 1, "", want, prefix=["runuser", "-u", uname, "--"],
               what="a member gets the daemon's own errors")
        expect(g, ["list", "--all"], 0, None, "",
               prefix=["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % gid, "--clear-groups"],
               what="list with --group as the primary group")
        expect(g, ["list"], 1, "", DENIED,
               prefix=["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                       "--clear-groups"],
               what="the same user without the group")
        expect(g, ["list"], 1, "", DENIED, prefix=AS_NOBODY, what="nobody with --group")
        expect(d, ["list"], 1, "", DENIED, prefix=["runuser", "-u", uname, "--"],
               what="a member of a group that this daemon was not given")
    finally:
        if g:
            g.cleanup()
        if made_user:
            subprocess.run(["userdel", uname], capture_output=True)
        if made_group:
            subprocess.run(["groupdel", gname], capture_output=True)
    for db, key in [("group", gname), ("passwd", uname), ("group", uname)]:
        check(subprocess.run(["getent", db, key], capture_output=True).returncode == 2,
              "the throwaway %s entry %s is gone" % (db, key))


# ---- many clients, bad clients ----

def read_replies(sock, until_id, limit_bytes, timeout):
    """Read replies until one carries until_id, EOF, limit_bytes or timeout."""
    sock.settimeout(timeout)
    buf = b""
    end = time.time() + timeout
    reason = "timeout"
    while time.time() < end and len(buf) < limit_bytes:
        try:
            data = sock.recv(1 << 16)
        except socket.timeout:
            break
        except OSError:
            reason = "closed"
            break
        if not data:
            reason = "closed"
            break
        buf += data
        if until_id and ('"id": "%s"' % until_id).encode() in buf:
            reason = "answered"
            break
    else:
        if len(buf) >= limit_bytes:
            reason = "limit"
    return buf, reason


def big_client(d, payload, result):
    """Send payload then a list with id "after"; count what comes back."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.sock)
    got = {}

    def reader():
        got["buf"], got["reason"] = read_replies(s, "after", 4 << 20, 20)

    th = threading.Thread(target=reader)
    th.start()
    try:
        s.sendall(payload)
        s.sendall(b'{"execute": "list", "id": "after"}\n')
    except OSError as e:
        got["send_error"] = str(e)
    th.join()
    s.close()
    result.update(got)


# Requests refused before any handler runs (api_request_parse): the exact reply to each.
REQUEST_ERRORS = [
    (b'{"execute": "dominfo", "id": 1}',
     {"id": 1, "error": {"class": "GenericError", "desc": "Parameter 'domain' is missing"}}),
    (b'{"execute": "start", "arguments": {"domain": 5}, "id": 2}',
     {"id": 2, "error": {"class": "GenericError",
                         "desc": "Invalid parameter type for 'domain', expected: string"}}),
    (b'{"execute": "frobnicate", "id": 3}',
     {"id": 3, "error": {"class": "CommandNotFound",
                         "desc": "The command frobnicate has not been found"}}),
    (b'{"execute": "list", "arguments": {"x": 1}, "id": 4}',
     {"id": 4, "error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}}),
    (b'{"arguments": {}, "id": 5}',
     {"id": 5, "error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}}),
    (b'{"execute": "domfsinfo", "id": 6}',
     {"id": 6, "error": {"class": "GenericError", "desc": "Parameter 'domain' is missing"}}),
    (b'{"execute": "domfsinfo", "arguments": {"domain": "nope"}, "id": 7}',
     {"id": 7, "error": {"class": "NoDomain", "desc": "failed to get domain 'nope'"}}),
    (b'{"execute": "dominfo", "arguments": {"domain": "nope"}, "id": 8}',
     {"id": 8, "error": {"class": "NoDomain", "desc": "failed to get domain 'nope'"}}),
    (b'{"execute": "list", "arguments": "x", "id": 9}',
     {"id": 9, "error": {"class": "GenericError",
                         "desc": "QMP input member 'arguments' must be an object"}}),
]


def test_request_errors(d):
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.sock)
    s.sendall(b"".join(req + b"\n" for req, _ in REQUEST_ERRORS) +
              b'{"execute": "list", "id": "after"}\n')
    buf, reason = read_replies(s, "after", 1 << 20, 10)
    s.close()
    lines = buf.decode(errors="replace").splitlines()
    check(reason == "answered" and len(lines) == len(REQUEST_ERRORS) + 1,
          "every refused request gets exactly one reply", buf.decode(errors="replace"))
    for (req, want), line in zip(REQUEST_ERRORS, lines):
        check(json.loads(line) == want, "reply to %s" % req.decode(),
              "want %s\n got %s" % (json.dumps(want), line))


def test_many_clients(d):
    names = ["conc-%d" % i for i in range(1, 5)]
    for i, n in enumerate(names):
        d.define(n, uuid_for(10 + i))
    # Clients that misbehave, connected before and during the crowd.
    idle = socket.socket(socket.AF_UNIX)
    idle.connect(d.sock)
    idle.sendall(b'{"execute": "li')  # half a request, never finished
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(d.sock)
    garbage = socket.socket(socket.AF_UNIX)
    garbage.connect(d.sock)
    garbage.sendall(b"\x00\xff garbage }}}\n")
    big_str, big_arr = {}, {}
    threads = [
        threading.Thread(target=big_client, args=(d, b'{"execute": "define", "arguments": '
                                                     b'{"xml": "' + b"a" * (5 << 20) + b'"}}\n',
                                                  big_str)),
        threading.Thread(target=big_client, args=(d, b'{"execute": "list", "arguments": {"x": ['
                                                     + b"1," * (5 << 19) + b'1]}}\n', big_arr)),
    ]
    for t in threads:
        t.start()
    t0 = time.time()
    procs = [("list", d.popen("list", "--all")) for _ in range(20)]
    procs += [("start " + n, d.popen("start", n)) for n in names]
    results = []
    for what, p in procs:
        try:
            out, err = p.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err = "TIMEOUT " + err
        results.append((what, p.returncode, out, err))
    elapsed = time.time() - t0
    for what, rc, out, err in results:
        check(rc == 0 and err == "", "concurrent %s answered" % what, "rc %s err %r" % (rc, err))
        if what.startswith("start "):
            check(out == "Domain '%s' started\n\n" % what[6:], "concurrent %s output" % what,
                  repr(out))
        else:
            check(out.startswith(" Id   Name") and len(out.splitlines()) == 7,
                  "concurrent list: a full table", repr(out))
    check(elapsed < 20, "24 concurrent clients served in %.1fs" % elapsed)
    rc, out, _ = d.run("list", "--name")
    check(sorted(out.split()) == names, "all four concurrent starts ran", out)
    ids = sorted(d.run("domid", n)[1].strip() for n in names)
    check(ids == ["1", "2", "3", "4"], "concurrent starts got distinct ids 1-4", repr(ids))

    for t in threads:
        t.join()
    # Garbage: a clear error, and the connection still serves requests.
    garbage.sendall(b'{"execute": "list", "id": "g"}\n')
    buf, reason = read_replies(garbage, "g", 1 << 20, 10)
    lines = buf.decode(errors="replace").splitlines()
    check(reason == "answered" and len(lines) >= 2 and
          all('"GenericError"' in line for line in lines[:-1]) and
          json.loads(lines[-1]).get("id") == "g",
          "garbage gets GenericError replies, then the next request is answered", repr(buf[:500]))
    # 5 MiB: the first reply is the limit error, and no flood follows.
    for what, res, first in [
            ("5 MiB string", big_str, "JSON token size limit exceeded"),
            ("5 MiB array", big_arr, "JSON token count limit exceeded")]:
        buf = res.get("buf", b"")
        lines = buf.split(b"\n")
        try:
            j = json.loads(lines[0])
        except ValueError:
            j = {}
        check(j == {"error": {"class": "GenericError", "desc": first}},
              "%s: the first reply is a clear error" % what, repr(buf[:300]))
        check(res.get("reason") in ("answered", "closed") and len(buf) < 65536 and
              len(lines) <= 12,
              "%s: at most a few replies, then an answer or EOF (not a flood)" % what,
              "reason %s, %d bytes, %d lines, biggest line %d bytes" % (
                  res.get("reason"), len(buf), len(lines), max(len(x) for x in lines)))
    # The idle and silent clients got nothing and did not block anyone; the daemon lives on.
    for s, what in [(idle, "half a request"), (silent, "nothing")]:
        s.setblocking(False)
        try:
            data = s.recv(4096)
        except BlockingIOError:
            data = None
        check(data is None, "a client that sent %s gets no reply" % what, repr(data))
        s.close()
    garbage.close()
    rc, out, err = d.run("list", "--all", timeout=10)
    check(rc == 0 and d.proc.poll() is None, "the daemon still serves after bad clients", err)
    try:
        with open("/proc/%d/status" % d.proc.pid) as f:
            rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    except (OSError, IndexError):
        rss = 0
    check(rss < 100 * 1024, "tetherd's RSS after bad clients is %d KiB (< 100 MiB)" % rss)


# ---- ssh ----

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_ssh(d, tmp):
    sdir = os.path.join(tmp, "ssh")
    os.makedirs(os.path.join(sdir, "bin"))
    for key in ["hostkey", "clientkey"]:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        os.path.join(sdir, key)], check=True)
    shutil.copy(os.path.join(sdir, "clientkey.pub"), os.path.join(sdir, "authorized_keys"))
    # The remote side runs `tether proxy`: put our build first on the session's PATH.
    os.symlink(d.tether, os.path.join(sdir, "bin/tether"))
    port = free_port()
    conf = os.path.join(sdir, "sshd_config")
    with open(conf, "w") as f:
        f.write("ListenAddress 127.0.0.1\nPort %d\nHostKey %s/hostkey\nPidFile %s/sshd.pid\n"
                "AuthorizedKeysFile %s/authorized_keys\nPermitRootLogin prohibit-password\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                "StrictModes no\nSetEnv PATH=%s/bin:/usr/bin:/bin\n"
                % (port, sdir, sdir, sdir, sdir))
    # sshd's privilege-separation folder: made if missing and left in place (another
    # suite's sshd may be using it: CI runs two suites side by side).
    os.makedirs("/run/sshd", 0o755, exist_ok=True)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf],
                            stdout=subprocess.DEVNULL, stderr=open(sdir + "/sshd.log", "w"))
    try:
        def listening():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        ok = wait_for(listening, 10)
        if not check(ok, "private sshd listens on 127.0.0.1:%d" % port,
                     open(sdir + "/sshd.log").read()):
            return
        key = os.path.join(sdir, "clientkey")
        kh = os.path.join(sdir, "known_hosts")
        base = "tether+ssh://root@127.0.0.1:%d/system?socket=%s&keyfile=%s&known_hosts=%s" % (
            port, d.sock, key, kh)
        # An unknown host key is refused (BatchMode): a clear error, quickly.
        rc, out, err = d.run("-c", base, "list", "--all", root=False, timeout=20)
        check(rc == 1 and out == "" and "Host key verification failed." in err and
              err.endswith("error: failed to connect to the daemon over ssh (exit status 255)\n"),
              "ssh to an unknown host key fails clearly", "rc %d out %r err %r" % (rc, out, err))
        # no_verify=1 accepts it (and records it).
        rc, local, _ = d.run("list", "--all")
        rc, out, err = d.run("-c", base + "&no_verify=1", "list", "--all", root=False)
        check(rc == 0 and out == local, "list --all over ssh (no_verify=1) equals the local output",
              "rc %d out %r err %r" % (rc, out, err))
        # Now the key is known: clean stderr, same output for several verbs.
        for args in (["list", "--all"], ["dominfo", "conc-1"], ["domstate", "--reason", "conc-2"],
                     ["--json", "list", "--all"], ["dumpxml", "conc-3"]):
            want = d.run(*args)
            got = d.run("-c", base, *args, root=False)
            check(got == want, "tether -c tether+ssh://... %s equals local" % " ".join(args),
                  "got %r\nwant %r" % (got, want))
        # Errors and actions travel too.
        expect(d, ["-c", base, "dominfo", "nosuch"], 1, "",
               "error: failed to get domain 'nosuch'\n", root=False, what="error over ssh")
        expect(d, ["-c", base, "suspend", "conc-4"], 0, "Domain 'conc-4' suspended\n\n", "",
               root=False, what="suspend over ssh")
        expect(d, ["domstate", "conc-4"], 0, "paused\n\n", "")
        expect(d, ["-c", base, "resume", "conc-4"], 0, "Domain 'conc-4' resumed\n\n", "",
               root=False, what="resume over ssh")
        # TETHER_DEFAULT_URI works for ssh too; without socket=, --root picks the remote root.
        env = dict(os.environ, TETHER_DEFAULT_URI=base)
        p = subprocess.run([d.tether, "list", "--all"], capture_output=True, text=True,
                           env=env, timeout=TIMEOUT)
        check(p.returncode == 0 and p.stdout == local, "TETHER_DEFAULT_URI=tether+ssh://...",
              p.stderr)
        noroot = "tether+ssh://root@127.0.0.1:%d/system?keyfile=%s&known_hosts=%s" % (port, key, kh)
        rc, out, err = d.run("-c", noroot, "list", "--all")
        check(rc == 0 and out == local, "tether+ssh:// with --root relays to ROOT's socket", err)
        # A socket path with a space and a quote: %XX in the URI, quoted for the remote shell.
        odd = os.path.join(tmp, "we ird'dir")
        os.makedirs(odd)
        os.symlink(d.sock, os.path.join(odd, "s.sock"))
        odd_uri = base.replace("socket=" + d.sock,
                               "socket=" + os.path.join(odd, "s.sock").replace(" ", "%20")
                               .replace("'", "%27"))
        rc, out, err = d.run("-c", odd_uri, "list", "--all", root=False)
        check(rc == 0 and out == local, "ssh with a socket path that needs quoting", err)
        # A remote daemon that is not there: the remote proxy's error, then ours.
        bad = base.replace("socket=" + d.sock, "socket=/nonexistent/tetherd.sock")
        rc, out, err = d.run("-c", bad, "list", root=False)
        check(rc == 1 and out == "" and err == (
              "error: failed to connect to the daemon at '/nonexistent/tetherd.sock': No such "
              "file or directory (is tetherd running?)\n"
              "error: failed to connect to the daemon over ssh (exit status 1)\n"),
              "ssh to a host without tetherd", "rc %d out %r err %r" % (rc, out, err))
        # Nothing listens on this port.
        dead = base.replace(":%d/" % port, ":%d/" % free_port())
        rc, out, err = d.run("-c", dead, "list", root=False, timeout=20)
        check(rc == 1 and "Connection refused" in err and
              err.endswith("error: failed to connect to the daemon over ssh (exit status 255)\n"),
              "ssh to a closed port fails clearly", repr(err))
    finally:
        sshd.terminate()
        try:
            sshd.wait(10)
        except subprocess.TimeoutExpired:
            sshd.kill()


# ---- restarts and crashes ----

def test_restart(d):
    names = ["conc-1", "conc-2", "conc-3"]
    expect(d, ["suspend", "conc-2"], 0, "Domain 'conc-2' suspended\n\n", "")
    before = {n: (d.run("domid", n)[1], d.run("domstate", "--reason", n)[1]) for n in names}
    pids = {n: d.status(n)["pid"] for n in names}
    d.kill9()
    for n in names:
        check(pid_alive(pids[n]), "QEMU of %s survives kill -9 of tetherd" % n)
    d.start()
    after = {n: (d.run("domid", n)[1], d.run("domstate", "--reason", n)[1]) for n in names}
    check(after == before, "after restart: same ids and states", "%r\n%r" % (before, after))
    check(before["conc-1"][1] == "running (booted)\n\n" and
          before["conc-2"][1] == "paused (user)\n\n", "states before the restart", repr(before))
    check("reconnected to QEMU pid %d" % pids["conc-1"] in d.log_text(), "reconnect is logged")
    # Still controllable.
    expect(d, ["resume", "conc-2"], 0, "Domain 'conc-2' resumed\n\n", "")
    expect(d, ["suspend", "conc-1"], 0, "Domain 'conc-1' suspended\n\n", "")
    expect(d, ["domstate", "--reason", "conc-1"], 0, "paused (user)\n\n", "")
    expect(d, ["resume", "conc-1"], 0, "Domain 'conc-1' resumed\n\n", "")
    expect(d, ["destroy", "conc-3"], 0, "Domain 'conc-3' destroyed\n\n", "")
    expect(d, ["domstate", "--reason", "conc-3"], 0, "shut off (destroyed)\n\n", "")
    check(wait_for(lambda: not pid_alive(pids["conc-3"]), 10), "destroy after restart kills QEMU")
    # A new start after the restart does not reuse a live id.
    expect(d, ["start", "conc-3"], 0, "Domain 'conc-3' started\n\n", "")
    ids = [d.run("domid", n)[1].strip() for n in ["conc-1", "conc-2", "conc-3", "conc-4"]]
    check(len(set(ids)) == 4 and ids[2] == "5", "ids after restart stay unique (new start is 5)",
          repr(ids))


def test_qemu_crash(d):
    d.record_qemus()
    pid = d.status("conc-3")["pid"]
    os.kill(pid, signal.SIGKILL)
    check(wait_for(lambda: d.run("domstate", "--reason", "conc-3")[1] == "shut off (crashed)\n\n",
                   10), "kill -9 of QEMU: shut off (crashed)", d.run("domstate", "--reason",
                                                                      "conc-3")[1])
    expect(d, ["domid", "conc-3"], 0, "-\n\n", "")
    # A transient domain whose QEMU dies disappears.
    path = os.path.join(d.root, "crash-t.xml")
    with open(path, "w") as f:
        f.write(domain_xml("crash-t", uuid_for(40)))
    expect(d, ["create", path], 0, "Domain 'crash-t' created from %s\n\n" % path, "")
    d.record_qemus()
    os.kill(d.status("crash-t")["pid"], signal.SIGKILL)
    check(wait_for(lambda: d.run("dominfo", "crash-t")[0] == 1, 10),
          "a crashed transient domain is gone")
    expect(d, ["dominfo", "crash-t"], 1, "", "error: failed to get domain 'crash-t'\n")


def test_corrupt_status(d):
    """Corrupt status files on restart: no crash, and no unrelated process is ever killed."""
    for n in ["conc-3"]:
        expect(d, ["start", n], 0, None, "")
    pids = {n: d.status(n)["pid"] for n in ["conc-1", "conc-2", "conc-3", "conc-4"]}
    decoy = subprocess.Popen(["sleep", "300"])
    d.kill9()
    run = os.path.join(d.root, "run/tether/domains")
    with open(os.path.join(run, "conc-1", "status.json"), "w") as f:
        f.write('{"name": "conc-1", "pid": ')  # truncated
    with open(os.path.join(run, "conc-2", "status.json"), "w") as f:
        f.write('{"name": "conc-2", "uuid": 5, "pid": "x", "id": [], "state": 999, "reason": -7}')
    st = d.status("conc-3")
    st["pid"] = decoy.pid  # a live process that is not this domain's QEMU
    with open(os.path.join(run, "conc-3", "status.json"), "w") as f:
        json.dump(st, f)
    open(os.path.join(run, "conc-4", "status.json"), "w").close()  # empty
    os.makedirs(os.path.join(run, "ghost"))  # a run folder without anything
    d.start()
    try:
        # list answers once the domains are loaded (requests wait for that).
        rc, out, err = d.run("list", "--all")
        check(d.proc.poll() is None, "tetherd survives corrupt status files")
        check(rc == 0, "list works after corrupt status files", err)
        check(pid_alive(decoy.pid), "a pid in a status file that is not our QEMU is not killed")
        for n in ["conc-1", "conc-2", "conc-3", "conc-4"]:
            rc, out, err = d.run("domstate", n)
            check(rc == 0 and out in ("running\n\n", "paused\n\n", "shut off\n\n"),
                  "%s after a corrupt status file: a valid state" % n, repr((rc, out, err)))
        # A QEMU whose status file is unreadable must not be left running unmanaged: it still
        # holds the domain's disks, and `start` would run a second QEMU on them.
        for n in ["conc-1", "conc-2", "conc-4"]:
            state = d.run("domstate", n)[1]
            orphan = state == "shut off\n\n" and pid_alive(pids[n]) and is_qemu_of(pids[n], n)
            check(not orphan, "%s: no orphaned QEMU (pid %d) behind a 'shut off' domain" % (
                n, pids[n]))
        check(d.run("dominfo", "ghost")[0] == 1, "an empty run folder is not a domain")
    finally:
        decoy.kill()
        decoy.wait()


def test_start_race(d):
    d.define("race-1", uuid_for(50))
    for rnd in range(3):
        a = d.popen("start", "race-1")
        b = d.popen("start", "race-1")
        res = []
        for p in (a, b):
            try:
                out, err = p.communicate(timeout=20)
                res.append((p.returncode, out, err))
            except subprocess.TimeoutExpired:
                p.kill()
                res.append((-1, "", "TIMEOUT"))
        wins = [r for r in res if r[0] == 0]
        loses = [r for r in res if r[0] != 0]
        check(len(wins) == 1 and wins[0][1] == "Domain 'race-1' started\n\n",
              "start race %d: exactly one wins" % rnd, repr(res))
        check(len(loses) == 1 and loses[0][0] == 1 and loses[0][1] == "" and loses[0][2] in (
            "error: domain race-1 is busy: start\n",
            "error: Requested operation is not valid: domain is already running\n"),
              "start race %d: the other gets busy or already running" % rnd, repr(res))
        expect(d, ["domstate", "--reason", "race-1"], 0, "running (booted)\n\n", "")
        d.record_qemus()
        # destroy racing start's sibling: destroy and a second destroy.
        a = d.popen("destroy", "race-1")
        b = d.popen("destroy", "race-1")
        res = [p.communicate(timeout=20) + (p.returncode,) for p in (a, b)]
        check(sorted(r[2] for r in res) == [0, 1] and any(
            r[1] in ("error: domain race-1 is busy: destroy\n",
                     "error: Requested operation is not valid: domain is not running\n")
            for r in res), "destroy race %d: one wins, the other gets a clear error" % rnd,
              repr(res))
        expect(d, ["domstate", "--reason", "race-1"], 0, "shut off (destroyed)\n\n", "")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tetherd, tether = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if os.geteuid() != 0:
        print("SKIP: needs root (setpriv, groupadd, sshd)")
        return 77
    tmp = tempfile.mkdtemp(prefix="clitest-daemon-", dir="/tmp")
    os.chmod(tmp, 0o755)  # so that nobody and the throwaway user can reach the sockets
    d = Daemon(tetherd, tether, tmp, "main")
    try:
        d.start()
        os.chmod(d.root, 0o755)
        for name, fn in [("access", lambda: test_access(tetherd, tether, tmp, d)),
                         ("request errors", lambda: test_request_errors(d)),
                         ("many clients", lambda: test_many_clients(d)),
                         ("ssh", lambda: test_ssh(d, tmp)),
                         ("restart", lambda: test_restart(d)),
                         ("qemu crash", lambda: test_qemu_crash(d)),
                         ("start race", lambda: test_start_race(d)),
                         ("corrupt status", lambda: test_corrupt_status(d))]:
            t0 = time.time()
            try:
                fn()
            except Exception as e:  # one broken part must not hide the others
                import traceback
                check(False, "%s: exception %r" % (name, e), traceback.format_exc())
            print("# %s: %.1fs" % (name, time.time() - t0), flush=True)
        check(d.proc.poll() is None, "tetherd is still running at the end")
    finally:
        if failed:
            print("--- tetherd log (tail) ---\n" + d.log_text()[-3000:])
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
