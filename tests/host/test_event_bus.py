#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
`tether event` and tetherd's event bus without guests (define and undefine make the events;
each tetherd has its own --root in a temp folder; only processes started here are killed):
- virsh 9.0's error texts and exit codes for bad options, an unknown domain or event type;
- --timeout 2 with no events: "event loop timed out", "events received: 0", exit 1;
- define, redefine, undefine: "Defined Added", "Defined Updated", "Undefined Removed", with
  --event and DOMAIN filters, and --list;
- a subscriber that never reads, while 10000 events are made: tetherd's RSS grows by less than
  1 MiB; once it reads, it gets one "events-dropped" notice whose count plus the events it got
  is every event made; a stopped (SIGSTOP) `tether event` prints "events dropped: N";
- [security] max-event-subscribers: the next subscriber is refused with a clear error;
- streaming through tether+ssh:// (a private sshd on 127.0.0.1, `tether proxy` on the far end).

    python3 test_event_bus.py TETHERD TETHER
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

TIMEOUT = 30
passed = 0
failed = 0
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
# What virsh 9.0 printed for the same command lines (checked on this machine).
NEED_ONE = "error: one of --list, --all, or --event <type> is required\n"


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s%s" % (what, ("\n" + detail) if detail else ""), flush=True)
    return cond


def domain_xml(name, uuid, description=""):
    return ("<domain type='qemu'><name>%s</name><uuid>%s</uuid>"
            "<description>%s</description><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
            "<devices><memballoon model='none'/></devices></domain>\n"
            % (name, uuid, description))


def wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class Daemon:
    """One tetherd (--verbose: its log says when a subscriber is in) with its own root."""

    def __init__(self, tetherd, tether, tmp, tag, config=None):
        self.tetherd, self.tether = tetherd, tether
        self.root = os.path.join(tmp, tag)
        self.log = os.path.join(tmp, tag + ".log")
        self.sock = os.path.join(self.root, "run/tether/tetherd.sock")
        self.config = config
        self.proc = None

    def start(self):
        os.makedirs(self.root, exist_ok=True)
        argv = [self.tetherd, "--root", self.root, "--log", self.log, "--verbose"]
        if self.config:
            argv += ["--config", self.config]
        # Under AddressSanitizer freed memory waits in a quarantine (256 MiB) that RSS would
        # count: without it the RSS bound measures tetherd, not the sanitizer.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS"),
                                                   "quarantine_size_mb=0",
                                                   "thread_local_quarantine_size_kb=0") if x)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.log + ".stderr", "ab"), env=env)
        if not wait_for(self.connectable, 10):
            raise RuntimeError("tetherd did not come up (see %s)" % self.log)

    def connectable(self):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(self.sock)
            s.close()
            return True
        except OSError:
            return self.proc.poll() is not None and False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            text = open(self.log + ".stderr", errors="replace").read()
        except OSError:
            text = ""
        check(not any(m in text for m in SANITIZER_MARKS),
              "no sanitizer report from tetherd (%s)" % os.path.basename(self.root), text[-3000:])

    def run(self, *args, timeout=TIMEOUT, root=True):
        argv = [self.tether] + (["--root", self.root] if root else []) + list(args)
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return -1, "", "TIMEOUT after %ss" % timeout
        return p.returncode, p.stdout, p.stderr

    def popen(self, *args, root=True):
        return subprocess.Popen([self.tether] + (["--root", self.root] if root else []) +
                                list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def subscriptions(self):
        """Subscriptions taken so far (cumulative), from the log."""
        try:
            with open(self.log, errors="replace") as f:
                return sum("event subscriber added" in line for line in f)
        except OSError:
            return 0

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def define(self, name, uuid, description=""):
        path = os.path.join(self.root, name + ".xml")
        with open(path, "w") as f:
            f.write(domain_xml(name, uuid, description))
        rc, out, err = self.run("define", path)
        check(rc == 0, "define %s" % name, err)
        return path


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


class Bg:
    """A background `tether ... event ...`: its stdout lines, collected as they come."""

    def __init__(self, d, args, root):
        self.proc = d.popen(*args, root=root)
        self.lines = []
        self.errs = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, args=(self.proc.stdout, self.lines),
                                       daemon=True)
        self.thread.start()
        self.ethread = threading.Thread(target=self._read, args=(self.proc.stderr, self.errs),
                                        daemon=True)
        self.ethread.start()

    def _read(self, f, into):
        for line in f:
            with self.lock:
                into.append(line)

    def stderr(self):
        with self.lock:
            return "".join(self.errs)

    def text(self):
        with self.lock:
            return "".join(self.lines)

    def count(self, prefix):
        with self.lock:
            return sum(x.startswith(prefix) for x in self.lines)

    def send_signal(self, sig):
        self.proc.send_signal(sig)


def subscribed_popen(d, *args, root=True):
    """Start `tether ... event ...` and return once tetherd has its subscription."""
    n = d.subscriptions()
    p = Bg(d, args, root)
    check(wait_for(lambda: d.subscriptions() > n, 20), "subscribed: %s" % " ".join(args))
    return p


def finish(p, lines=0, prefix="", timeout=15):
    """Once `lines` lines starting with prefix came, SIGINT: (rc, stdout, stderr)."""
    check(wait_for(lambda: p.count(prefix) >= lines or p.proc.poll() is not None, timeout),
          "%d lines '%s...' arrive" % (lines, prefix), p.text())
    if p.proc.poll() is None:
        p.proc.send_signal(signal.SIGINT)
    try:
        p.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        p.proc.kill()
        p.proc.wait()
    p.thread.join(5)
    p.ethread.join(5)
    return p.proc.returncode, p.text(), p.stderr()


# ---- options and texts ----

def test_options(d):
    expect(d, ["event"], 1, "\n", NEED_ONE)
    expect(d, ["event", "--loop"], 1, "\n", NEED_ONE)
    expect(d, ["event", "--all", "--event", "reboot"], 1, "\n",
           "error: Options --all and --event are mutually exclusive\n")
    expect(d, ["event", "--event", "bogus"], 1, "\n", "error: unknown event type bogus\n")
    expect(d, ["event", "nosuch", "--all"], 1, "\n", "error: failed to get domain 'nosuch'\n")
    expect(d, ["event", "--all", "--timeout", "0"], 1, "\n",
           "error: Numeric value '0' for <timeout> option is malformed or out of range\n")
    expect(d, ["event", "--all", "--timeout", "x"], 1, "",
           "error: Numeric value 'x' for <timeout> option is malformed or out of range\n")
    expect(d, ["event", "--list"], 0,
           "lifecycle\nreboot\nblock-job\nagent-lifecycle\nsnapshot\n\n", "")
    t0 = time.monotonic()
    expect(d, ["event", "--all", "--timeout", "2"], 1,
           "event loop timed out\nevents received: 0\n\n", "", what="--timeout 2, no events")
    took = time.monotonic() - t0
    check(2.0 <= took < 6.0, "--timeout 2 waits 2 s", "%.2f s" % took)
    got = d.run("--json", "event", "--all", "--timeout", "1")
    check(got[0] == 1 and json.loads(got[1]) == {"events_received": 0, "timed_out": True,
                                                 "interrupted": False},
          "--json --timeout 1: the summary line", repr(got))


def test_stream(d):
    d.define("ev-b", "c1170000-0000-4000-8000-0000000000b0")
    every = subscribed_popen(d, "event", "--all", "--loop")
    only_b = subscribed_popen(d, "event", "ev-b", "--event", "lifecycle", "--loop")
    only_reboot = subscribed_popen(d, "event", "--event", "reboot", "--loop", "--timeout", "30")
    one = subscribed_popen(d, "event", "--all")
    js = subscribed_popen(d, "--json", "event", "--all", "--loop")
    d.define("ev-a", "c1170000-0000-4000-8000-0000000000a0")
    d.define("ev-a", "c1170000-0000-4000-8000-0000000000a0", "again")  # a redefinition
    d.define("ev-b", "c1170000-0000-4000-8000-0000000000b0", "again")
    expect(d, ["undefine", "ev-a"], 0)
    expect(d, ["undefine", "ev-b"], 0)
    life = "event 'lifecycle' for domain '%s': %s\n"
    want = (life % ("ev-a", "Defined Added") + life % ("ev-a", "Defined Updated") +
            life % ("ev-b", "Defined Updated") + life % ("ev-a", "Undefined Removed") +
            life % ("ev-b", "Undefined Removed"))
    rc, out, err = finish(one)
    check(rc == 0 and out == life % ("ev-a", "Defined Added") + "events received: 1\n\n",
          "no --loop: the first event, the count, exit 0", repr((rc, out, err)))
    rc, out, err = finish(every, 5, "event ")
    check(rc == 0 and out == want + "event loop interrupted\nevents received: 5\n\n",
          "--all --loop: define, redefine, undefine in order, virsh's words",
          "got:  %r\nwant: %r\nstderr %r" % (out, want, err))
    rc, out, err = finish(only_b, 2, "event ")
    check(rc == 0 and out == life % ("ev-b", "Defined Updated") +
          life % ("ev-b", "Undefined Removed") + "event loop interrupted\nevents received: 2\n\n",
          "DOMAIN --event lifecycle: that domain's events only", repr((rc, out, err)))
    rc, out, err = finish(only_reboot)
    check(rc == 1 and out == "event loop interrupted\nevents received: 0\n\n",
          "--event reboot: none of the lifecycle events; Ctrl-C with none is exit 1",
          repr((rc, out, err)))
    rc, out, err = finish(js, 5, "{")
    lines = out.splitlines()
    try:
        msgs = [json.loads(x) for x in lines]
    except ValueError:
        msgs = []
    check(len(msgs) == 6 and [(m["event"], m["data"]["domain"], m["data"]["event"],
                               m["data"]["detail"]) for m in msgs[:5]] ==
          [("lifecycle", "ev-a", "Defined", "Added"), ("lifecycle", "ev-a", "Defined", "Updated"),
           ("lifecycle", "ev-b", "Defined", "Updated"),
           ("lifecycle", "ev-a", "Undefined", "Removed"),
           ("lifecycle", "ev-b", "Undefined", "Removed")] and
          msgs[5] == {"events_received": 5, "timed_out": False, "interrupted": True} and
          all(set(m["timestamp"]) == {"seconds", "microseconds"} for m in msgs[:5]),
          "--json: QMP-shaped event lines and the summary", repr(lines))


# ---- a subscriber that never reads ----

FLOOD_NAME = "flood-" + "x" * 34
FLOOD_XML = domain_xml(FLOOD_NAME, "c1170000-0000-4000-8000-0000000000f0", "d" * 4000)


def flood(sock_path, cycles):
    """define + undefine of one domain, cycles times, pipelined on one connection."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    f = s.makefile("rb")
    pair = (json.dumps({"execute": "define", "arguments": {"xml": FLOOD_XML}}) + "\n" +
            json.dumps({"execute": "undefine", "arguments": {"domain": FLOOD_NAME}}) +
            "\n").encode()
    done = 0
    while done < cycles:
        n = min(25, cycles - done)
        s.sendall(pair * n)
        for _ in range(2 * n):
            r = json.loads(f.readline())
            if "return" not in r:
                raise RuntimeError("flood: %r" % r)
        done += n
    s.close()


def raw_subscriber(sock_path, args=None):
    """A raw client subscribed to events; its receive buffer is small and it reads nothing."""
    s = socket.socket(socket.AF_UNIX)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(sock_path)
    s.sendall((json.dumps({"execute": "events", "arguments": args or {}}) + "\n").encode())
    buf = b""
    while b"\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    return s, json.loads(line), rest


def read_events(s, rest, until, timeout=30):
    """Read event lines until until(msgs) is true: (msgs, the bytes after the last line)."""
    msgs, buf = [], rest
    s.settimeout(1)
    end = time.time() + timeout
    while time.time() < end:
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            msgs.append(json.loads(line))
            if until(msgs):
                return msgs, buf
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
    return msgs, buf


def test_slow_subscriber(d):
    cycles = 5000
    # Warm-up: the allocator's pools and the store's files are made before the measure.
    flood(d.sock, 200)
    s, reply, rest = raw_subscriber(d.sock)
    check(reply == {"return": {}}, "raw subscriber: the events verb's reply", repr(reply))
    stopped = subscribed_popen(d, "event", "--all", "--loop")
    stopped.send_signal(signal.SIGSTOP)
    before = d.rss_kib()
    t0 = time.monotonic()
    flood(d.sock, cycles)
    took = time.monotonic() - t0
    after = d.rss_kib()
    made = 2 * cycles
    check(after - before < 1024,
          "a subscriber that never reads: tetherd's RSS grows by less than 1 MiB over %d events"
          % made, "VmRSS %d -> %d KiB" % (before, after))
    print("# %d events in %.1f s; VmRSS %d -> %d KiB" % (made, took, before, after), flush=True)
    # It starts reading: what fitted, then one notice with the count of the rest.
    msgs, rest = read_events(s, rest, lambda m: m[-1]["event"] == "events-dropped")
    got = [m for m in msgs if m["event"] == "lifecycle"]
    notice = [m for m in msgs if m["event"] == "events-dropped"]
    count = notice[0]["data"]["count"] if notice else 0
    check(len(notice) == 1 and msgs[-1] is notice[0],
          "the reader gets one events-dropped notice after the events that fitted",
          repr(msgs[-2:]))
    check(len(got) > 0 and count > 0 and len(got) + count == made,
          "events received + the dropped count = every event made",
          "%d received + %d dropped != %d" % (len(got), count, made))
    check(all(m["data"]["domain"] == FLOOD_NAME for m in got) and
          [m["data"]["event"] for m in got[:2]] == ["Defined", "Undefined"],
          "the events that fitted are the first ones, in order")
    # After the notice, events flow again.
    d.define("ev-after", "c1170000-0000-4000-8000-0000000000c0")
    msgs, _ = read_events(s, rest, lambda m: len(m) >= 1, 10)
    check(len(msgs) == 1 and msgs[0]["data"] == {
        "domain": "ev-after", "event": "Defined", "detail": "Added", "type_code": 0,
        "detail_code": 0}, "after the notice the next event arrives", repr(msgs))
    s.close()
    # The stopped CLI: it says how many it lost, on stderr.
    stopped.send_signal(signal.SIGCONT)
    check(wait_for(lambda: "events dropped: " in stopped.stderr(), 30),
          "the stopped CLI, continued, says it lost events", stopped.stderr())
    d.define("ev-cli", "c1170000-0000-4000-8000-0000000000c1")
    rc, out, err = finish(stopped, 1, "event 'lifecycle' for domain 'ev-cli'", 30)
    lines = out.splitlines()
    dropped = [x for x in err.splitlines() if x.startswith("events dropped: ")]
    n = int(dropped[0].split(": ")[1]) if dropped else 0
    events = [x for x in lines if x.startswith("event 'lifecycle'")]
    check(rc == 0 and len(dropped) == 1 and len(events) + n == made + 2 and
          lines[-2] == "events received: %d" % len(events),
          "a stopped `tether event` prints 'events dropped: N' and counts what it got",
          "rc %d, %d lines, stderr %r" % (rc, len(events), err[-300:]))
    expect(d, ["undefine", "ev-after"], 0)
    expect(d, ["undefine", "ev-cli"], 0)


# ---- the subscriber cap ----

def test_cap(tetherd, tether, tmp):
    conf = os.path.join(tmp, "cap.conf")
    with open(conf, "w") as f:
        f.write("[security]\nmax-event-subscribers = 2\n")
    d = Daemon(tetherd, tether, tmp, "cap", config=conf)
    d.start()
    try:
        a, ra, _ = raw_subscriber(d.sock)
        b, rb, _ = raw_subscriber(d.sock)
        check(ra == rb == {"return": {}}, "two subscribers under a cap of 2")
        expect(d, ["event", "--all", "--timeout", "1"], 1, "\n",
               "error: too many event subscribers: tetherd serves at most 2 at once "
               "([security] max-event-subscribers)\n", what="a third subscriber is refused")
        c, rc_, _ = raw_subscriber(d.sock, {"event": "reboot"})
        check(rc_.get("error", {}).get("class") == "Busy", "the refusal's class is Busy",
              repr(rc_))
        c.close()
        a.close()
        check(wait_for(lambda: "event subscriber removed (1 now" in open(d.log).read(), 10),
              "a closed subscriber leaves the bus")
        expect(d, ["event", "--all", "--timeout", "1"], 1,
               "event loop timed out\nevents received: 0\n\n", "",
               what="once one left, a new subscriber gets in")
        b.close()
    finally:
        d.stop()
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("[security]\nmax-event-subscribers = 0\n")
    p = subprocess.run([tetherd, "--root", os.path.join(tmp, "bad"), "--config", bad],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(p.returncode != 0 and
          "invalid value '0' for max-event-subscribers: from 1 to 65536" in p.stderr,
          "max-event-subscribers = 0 is refused at start", p.stderr)


# ---- tether+ssh:// ----

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_ssh(d, tmp):
    if shutil.which("/usr/sbin/sshd") is None or os.geteuid() != 0:
        print("# ssh: skipped (needs root and sshd)")
        return
    sdir = os.path.join(tmp, "ssh")
    os.makedirs(os.path.join(sdir, "bin"))
    for key in ["hostkey", "clientkey"]:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        os.path.join(sdir, key)], check=True)
    shutil.copy(os.path.join(sdir, "clientkey.pub"), os.path.join(sdir, "authorized_keys"))
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

        if not check(wait_for(listening, 10), "private sshd listens"):
            return
        uri = ("tether+ssh://root@127.0.0.1:%d/system?socket=%s&keyfile=%s&known_hosts=%s"
               "&no_verify=1" % (port, d.sock, os.path.join(sdir, "clientkey"),
                                 os.path.join(sdir, "known_hosts")))
        p = subscribed_popen(d, "-c", uri, "event", "--all", "--loop", "--timestamp",
                             root=False)
        d.define("ev-ssh", "c1170000-0000-4000-8000-0000000000e0")
        expect(d, ["undefine", "ev-ssh"], 0)
        removed = open(d.log).read().count("event subscriber removed")
        rc, out, err = finish(p, 2, "20", 30)
        lines = [x.split(": ", 1)[1] if x[:2] == "20" else x for x in out.splitlines()]
        check(rc == 0 and lines == ["event 'lifecycle' for domain 'ev-ssh': Defined Added",
                                    "event 'lifecycle' for domain 'ev-ssh': Undefined Removed",
                                    "event loop interrupted", "events received: 2", ""],
              "events stream through tether+ssh:// (tether proxy)", repr((rc, out, err)))
        check(wait_for(lambda: open(d.log).read().count("event subscriber removed") > removed,
                       15), "the ssh subscriber leaves the bus when the CLI ends")
        rc, out, err = d.run("-c", uri, "event", "--all", "--timeout", "1", root=False)
        check((rc, out) == (1, "event loop timed out\nevents received: 0\n\n"),
              "--timeout over ssh", repr((rc, out, err)))
    finally:
        sshd.terminate()
        try:
            sshd.wait(10)
        except subprocess.TimeoutExpired:
            sshd.kill()


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tetherd, tether = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    tmp = tempfile.mkdtemp(prefix="evtest-bus-", dir="/tmp")
    d = Daemon(tetherd, tether, tmp, "main")
    try:
        d.start()
        for name, fn in [("options", lambda: test_options(d)),
                         ("stream", lambda: test_stream(d)),
                         ("slow subscriber", lambda: test_slow_subscriber(d)),
                         ("cap", lambda: test_cap(tetherd, tether, tmp)),
                         ("ssh", lambda: test_ssh(d, tmp))]:
            t0 = time.time()
            try:
                fn()
            except Exception as e:  # one broken part must not hide the others
                import traceback
                check(False, "%s: exception %r" % (name, e), traceback.format_exc())
            print("# %s: %.1fs" % (name, time.time() - t0), flush=True)
        check(d.proc.poll() is None, "tetherd is still running at the end")
    finally:
        d.stop()
        if failed:
            try:
                print("--- tetherd log (tail) ---\n" + open(d.log).read()[-3000:])
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
