#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""In-guest benchmark: the same test guest booted with tether-agent and with qemu-ga, at least 3
boots each in alternate order (T Q, Q T, T Q, ...), every figure from every boot.

Driven by bench/guest-bench.sh, which builds the guest images and explains the method. This
client talks to each agent through QEMU's virtio-serial chardev socket and prints one table of
tether-agent / qemu-ga ratios. Not a test: nothing here runs in CI.
"""

import argparse
import base64
import ctypes
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time

PING = b'{"execute": "guest-ping"}\n'
AGENT_NAMES = {"tether": "tether-agent", "qemu-ga": "qemu-ga"}  # as mkguest.sh installs them


class Timeout(Exception):
    pass


class Conn:
    """One client on the agent's chardev socket; replies are newline-terminated JSON."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.timeout = timeout

    def close(self):
        self.sock.close()

    def line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("no reply in time")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout("no reply in time") from None
            if not data:
                raise ConnectionError("connection closed")
            self.buf += data
        i = self.buf.index(b"\n")
        ln, self.buf = self.buf[:i], self.buf[i + 1:]
        return ln

    def recv(self, deadline):
        """The next JSON object (sync delimiters and blank lines skipped)."""
        while True:
            ln = self.line(deadline).replace(b"\xff", b"").strip()
            if ln:
                return json.loads(ln)

    def cmd(self, name, args=None, timeout=None):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return self.recv(time.monotonic() + (timeout or self.timeout))

    def check(self, name, args=None, timeout=None):
        r = self.cmd(name, args, timeout)
        if "error" in r:
            raise RuntimeError(f"{name}: {r['error']}")
        return r["return"]

    def sync(self, timeout=None):
        sid = random.randint(1, 2**31 - 1)
        self.sock.sendall(b"\xff" + json.dumps(
            {"execute": "guest-sync-delimited", "arguments": {"id": sid}}).encode() + b"\n")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                r = self.recv(deadline)
            except ValueError:
                continue  # a reply cut by an earlier resynchronisation
            if r.get("return") == sid:
                return

    def exec(self, argv, timeout=30.0):
        """guest-exec with captured output, polled until it exits; (exitcode, stdout)."""
        pid = self.check("guest-exec", {"path": argv[0], "arg": list(argv[1:]),
                                        "capture-output": True})["pid"]
        deadline = time.monotonic() + timeout
        while True:
            st = self.check("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                return st.get("exitcode"), base64.b64decode(st.get("out-data", "")).decode()
            if time.monotonic() > deadline:
                raise Timeout(f"{argv} still running")
            time.sleep(0.01)


def log(msg):
    print(f"guest-bench: {msg}", file=sys.stderr, flush=True)


# --- QEMU processes ---------------------------------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    # run-guest.sh daemonizes QEMU; as subreaper we inherit it and can reap it the moment it
    # exits (PID 1 here reaps orphans only every second or two).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class Guest:
    def __init__(self, o, variant, tag):
        self.variant = variant
        self.dir = os.path.join(o.run_dir, tag)
        os.makedirs(self.dir, exist_ok=True)
        self.t0 = time.monotonic()
        out = subprocess.run(
            [o.run_guest, "--guest", o.guest, "--variant", variant, "--dir", self.dir,
             "--name", f"guestbench-{tag}"],
            check=True, stdout=subprocess.PIPE, text=True).stdout
        env = {}
        for ln in out.splitlines():
            k, _, v = ln.partition("=")
            env[k] = v.strip("'")
        self.pid = int(env["PID"])
        self.qga = env["QGA"]
        self.serial = env["SERIAL"]

    def first_reply(self, timeout=180.0):
        """Seconds from spawning run-guest.sh to the first guest-ping reply, then a synced Conn.

        Until the agent opens its port QEMU leaves our bytes unread in the socket, where the
        agent finds them; in case one is lost anyway a ping is resent every 250 ms (without
        blocking, so a full socket buffer cannot stall us). Any reply counts."""
        deadline = self.t0 + timeout
        c = None
        while c is None:
            try:
                c = Conn(self.qga)
            except OSError:
                if time.monotonic() > deadline:
                    raise Timeout("agent socket never appeared")
                time.sleep(0.01)
        while True:
            try:
                c.sock.send(PING, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            try:
                r = c.recv(min(deadline, time.monotonic() + 0.25))
            except Timeout:
                if time.monotonic() > deadline:
                    raise Timeout(f"no agent reply within {timeout} s; see {self.serial}")
                continue
            except ValueError:
                r = {}
            if "return" in r:
                t = time.monotonic() - self.t0
                break
        c.sync(10)
        return t, c

    def stop(self):
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                p, _ = os.waitpid(self.pid, os.WNOHANG)
                if p == self.pid:
                    return
            except ChildProcessError:
                # not ours to reap (no subreaper): wait until it is gone or a zombie
                try:
                    with open(f"/proc/{self.pid}/stat") as f:
                        if f.read().split(") ")[1].startswith("Z"):
                            return
                except FileNotFoundError:
                    return
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)


# --- measurements ----------------------------------------------------------------------------

def cpu_sample(pids):
    """(busy jiffies of the whole host, jiffies of pids, total jiffies)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])
    busy = total - v[3] - v[4]
    own = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
            own += int(st[11]) + int(st[12])
        except FileNotFoundError:
            pass
    return busy, own, total


def other_load(a, b):
    """CPUs busy with work other than pids (QEMU and this client) between two samples."""
    dt = b[2] - a[2]
    if dt <= 0:
        return 0.0
    return max(0.0, ((b[0] - a[0]) - (b[1] - a[1])) / dt * os.cpu_count())


def timed_pings(c, pid, n):
    pids = (pid, os.getpid())
    a = cpu_sample(pids)
    r = ping_loop(c.sock, n)
    return r, other_load(a, cpu_sample(pids))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def ping_loop(sock, n):
    """n sequential guest-ping round trips on a raw socket; RTTs in microseconds."""
    rtts = []
    buf = b""
    perf = time.perf_counter_ns
    send, recv = sock.sendall, sock.recv
    for _ in range(n):
        t = perf()
        send(PING)
        while b"\n" not in buf:
            d = recv(4096)
            if not d:
                raise ConnectionError("connection closed")
            buf += d
        rtts.append((perf() - t) / 1000.0)
        i = buf.index(b"\n")
        if buf[:i].strip().replace(b" ", b"") != b'{"return":{}}':
            raise RuntimeError(f"unexpected ping reply {buf[:i]!r}")
        buf = buf[i + 1:]
    return rtts


def client_floor(run_dir, n):
    """The same ping loop against a trivial echo server (Python, its own process)."""
    path = os.path.join(run_dir, "floor.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    child = os.fork()
    if child == 0:
        try:
            c, _ = srv.accept()
            buf = b""
            while True:
                d = c.recv(4096)
                if not d:
                    break
                buf += d
                k = buf.count(b"\n")
                if k:
                    c.sendall(b'{"return": {}}\n' * k)
                    buf = buf[buf.rindex(b"\n") + 1:]
        finally:
            os._exit(0)
    srv.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    ping_loop(s, 500)
    r = ping_loop(s, n)
    s.close()
    os.waitpid(child, 0)
    return r


def agent_status(c, name):
    """pid, {field: kB} and summed ctxt switches of the agent, read through guest-exec."""
    code, out = c.exec(["/bin/sh", "-c",
                        f"p=$(pidof {name}); echo pid $p; cat /proc/$p/status"])
    if code != 0:
        raise RuntimeError(f"cannot read the status of {name}: {out!r}")
    st = {}
    for ln in out.splitlines():
        k, _, v = ln.partition(":") if ":" in ln else ln.partition(" ")
        st[k.strip()] = v.strip()
    return st


def kb(st, key):
    return int(st[key].split()[0])


MIX_FILE = "/etc/os-release"
MIX_CYCLE = 11  # requests per cycle with one status poll


def command_mix(c, total):
    """A fixed mix of read-only commands: round(total / MIX_CYCLE) cycles of ten requests plus the
    guest-exec-status polls (10 ms apart) that /bin/true needs to be seen exited. The same
    cycles for both agents; only the number of polls can differ. Per-command latencies (ms),
    error counts and the number of requests."""
    lat, errs = {}, {}
    count = 0

    def run(name, args=None):
        nonlocal count
        t = time.perf_counter()
        r = c.cmd(name, args, timeout=30)
        lat.setdefault(name, []).append((time.perf_counter() - t) * 1000)
        count += 1
        if "error" in r:
            errs[name] = errs.get(name, 0) + 1
        return r.get("return")

    for _ in range(max(1, round(total / MIX_CYCLE))):
        run("guest-ping")
        run("guest-info")
        run("guest-get-osinfo")
        run("guest-network-get-interfaces")
        run("guest-get-fsinfo")
        run("guest-get-vcpus")
        h = run("guest-file-open", {"path": MIX_FILE, "mode": "r"})
        if isinstance(h, int):
            run("guest-file-read", {"handle": h})
            run("guest-file-close", {"handle": h})
        ex = run("guest-exec", {"path": "/bin/true"})
        if isinstance(ex, dict):
            while True:
                st = run("guest-exec-status", {"pid": ex["pid"]})
                if not isinstance(st, dict) or st.get("exited"):
                    break
                time.sleep(0.01)
    return lat, errs, count


def wakeups(o, c, path, name, connected):
    """Context switches of the agent (all its threads) per second over o.window s, measured
    by a guest-side shell script; with connected=False the host client is closed meanwhile.
    Returns (per second, delta, seconds, threads, Conn)."""
    snap = (f"read -r up _ </proc/uptime; echo up $up; "
            f"for t in /proc/$p/task/*; do grep ctxt $t/status; done")
    script = (f"p=$(pidof {name}); rm -f /tmp/gb-a /tmp/gb-b; sleep {o.settle}; "
              f"({snap}) >/tmp/gb-a.t && mv /tmp/gb-a.t /tmp/gb-a; sleep {o.window}; "
              f"({snap}) >/tmp/gb-b.t && mv /tmp/gb-b.t /tmp/gb-b")
    c.check("guest-exec", {"path": "/bin/sh", "arg": ["-c", script]})
    if not connected:
        c.close()  # QEMU tells the guest that the host side closed
    time.sleep(o.settle + o.window + 2.5)
    if not connected:
        c = Conn(path)
        c.sync(10)
    _, out = c.exec(["/bin/sh", "-c", "cat /tmp/gb-a; echo --; cat /tmp/gb-b"])
    a, _, b = out.partition("--\n")

    def parse(text):
        up, sw, threads = None, 0, 0
        for ln in text.splitlines():
            if ln.startswith("up "):
                up = float(ln.split()[1])
            elif "ctxt_switches" in ln:
                sw += int(ln.split(":")[1])
                threads += ln.startswith("voluntary")
        return up, sw, threads

    ua, sa, ta = parse(a)
    ub, sb, _ = parse(b)
    if ua is None or ub is None:
        raise RuntimeError(f"wakeup script did not finish: {out!r}")
    return (sb - sa) / (ub - ua), sb - sa, ub - ua, ta, c


def main_guest(o, variant, res, k):
    name = AGENT_NAMES[variant]
    g = Guest(o, variant, f"{variant}-boot{k}")
    try:
        t, c = g.first_reply()
        res["boot"] = t
        log(f"{variant}: boot {k}: first reply {t:.2f} s after spawning QEMU (pid {g.pid})")
        info = c.check("guest-info")
        res["version"] = info.get("version")
        st = agent_status(c, name)
        res["idle_rss"] = kb(st, "VmRSS")
        res["idle_hwm"] = kb(st, "VmHWM")
        res["threads"] = int(st.get("Threads", "0"))

        # warm-up, then the round trips
        ping_loop(c.sock, o.warmup)
        res["rtt"], load = timed_pings(c, g.pid, o.pings)
        res["rtt_boot"] = (statistics.median(res["rtt"]), pct(res["rtt"], 99), load)
        log(f"{variant}: {o.pings} pings, median {statistics.median(res['rtt']):.0f} us, "
            f"p99 {pct(res['rtt'], 99):.0f} us; other host load {load:.2f} CPUs")

        t = time.monotonic()
        res["lat"], res["errs"], res["ncmds"] = command_mix(c, o.mix)
        res["mix_s"] = time.monotonic() - t
        st = agent_status(c, name)
        res["rss"], res["hwm"] = kb(st, "VmRSS"), kb(st, "VmHWM")
        res["rss_parts"] = "/".join(str(kb(st, k)) for k in ("RssAnon", "RssFile", "RssShmem"))
        log(f"{variant}: {res['ncmds']} mixed commands in {res['mix_s']:.1f} s, "
            f"VmRSS {res['rss']} kB, VmHWM {res['hwm']} kB, errors {res['errs'] or 'none'}")

        r = wakeups(o, c, g.qga, name, connected=True)
        res["wake_conn"], c = r[0], r[4]
        log(f"{variant}: connected idle: {r[1]} switches in {r[2]:.1f} s ({r[3]} threads)")
        r = wakeups(o, c, g.qga, name, connected=False)
        res["wake_disc"], res["wake_disc_raw"], c = r[0], r[1:4], r[4]
        log(f"{variant}: disconnected: {r[1]} switches in {r[2]:.1f} s ({r[3]} threads)")
        c.close()
    finally:
        g.stop()


def combine(rs):
    """One agent's boots as one result: RTTs pooled, the other figures the median over boots."""
    med = statistics.median
    lat = {}
    errs = {}
    for r in rs:
        for name, xs in r["lat"].items():
            lat.setdefault(name, []).extend(xs)
        for name, n in r["errs"].items():
            errs[name] = errs.get(name, 0) + n
    return {
        "runs": rs,
        "version": rs[0].get("version"),
        "threads": rs[0]["threads"],
        "boot": [r["boot"] for r in rs],
        "rtt": [x for r in rs for x in r["rtt"]],
        "rtt_boots": [r["rtt_boot"] for r in rs],
        "ncmds": med([r["ncmds"] for r in rs]),
        "lat": lat,
        "errs": errs,
        "mix_s": med([r["mix_s"] for r in rs]),
        "rss": med([r["rss"] for r in rs]),
        "hwm": med([r["hwm"] for r in rs]),
        "rss_parts": "; ".join(r["rss_parts"] for r in rs),
        "idle_rss": med([r["idle_rss"] for r in rs]),
        "wake_conn": med([r["wake_conn"] for r in rs]),
        "wake_disc": med([r["wake_disc"] for r in rs]),
        "wake_disc_raw": tuple(sum(r["wake_disc_raw"][i] for r in rs) for i in range(2))
        + (rs[0]["wake_disc_raw"][2],),
        "wake_disc_zero": all(r["wake_disc_raw"][0] == 0 for r in rs),
    }


def self_ratio(rs):
    """qemu-ga against itself, the noise floor: its second boot (first in its pair) over its
    first (second in its pair), for the ping median and p99, VmRSS after the mix and start."""
    a, b = rs[0], rs[1]
    return {"ping median": statistics.median(b["rtt"]) / statistics.median(a["rtt"]),
            "ping p99": pct(b["rtt"], 99) / pct(a["rtt"], 99),
            "VmRSS": b["rss"] / a["rss"],
            "start": b["boot"] / a["boot"]}


def fmt_ratio(a, b):
    if b == 0:
        return "n/a"
    return f"{a / b:.3f}"


def verdict(ratio, target):
    return "PASS" if ratio <= target else "FAIL"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guest", required=True)
    ap.add_argument("--run-guest", required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--tether-name", default=AGENT_NAMES["tether"],
                    help="the agent's file name in the guest (for pidof)")
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--mix", type=int, default=1000)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--settle", type=float, default=2)
    ap.add_argument("--boots", type=int, default=3,
                    help="boots per agent, alternate order (at least 3)")
    o = ap.parse_args()
    if o.boots < 3:
        ap.error("--boots must be at least 3: one boot per agent is not a fair comparison")
    AGENT_NAMES["tether"] = o.tether_name
    become_subreaper()

    load0 = open("/proc/loadavg").read().split()[:3]
    t_start = time.monotonic()
    floor = client_floor(o.run_dir, o.pings)
    runs = {v: [] for v in ("tether", "qemu-ga")}
    for k in range(1, o.boots + 1):
        # Alternate order: T Q, Q T, T Q, ... so that neither agent always boots first.
        for v in (("tether", "qemu-ga") if k % 2 else ("qemu-ga", "tether")):
            res = {}
            main_guest(o, v, res, k)
            runs[v].append(res)
    load1 = open("/proc/loadavg").read().split()[:3]
    R = {v: combine(rs) for v, rs in runs.items()}
    T, Q = R["tether"], R["qemu-ga"]

    rows = []

    def row(measure, t, q, unit, target, fmt="{:.0f}"):
        ratio = t / q if q else float("inf")
        if target is None:
            tgt, res = "report", "-"
        else:
            tgt, res = f"<= {target}", verdict(ratio, target)
        rows.append((measure, f"{fmt.format(t)} {unit}", f"{fmt.format(q)} {unit}",
                     fmt_ratio(t, q), tgt, res))

    row("guest-ping RTT, median", statistics.median(T["rtt"]), statistics.median(Q["rtt"]),
        "us", 0.8)
    row("guest-ping RTT, p99", pct(T["rtt"], 99), pct(Q["rtt"], 99), "us", 0.8)
    row(f"VmRSS after {T['ncmds']:.0f}/{Q['ncmds']:.0f} mixed cmds, median of boots", T["rss"],
        Q["rss"], "kB", 0.25)
    row("VmHWM after the same", T["hwm"], Q["hwm"], "kB", 0.25)
    tw, qw = T["wake_disc"], Q["wake_disc"]
    rows.append(("wakeups/s, host side disconnected", f"{tw:.2f}", f"{qw:.2f}",
                 fmt_ratio(tw, qw), "tether 0", "PASS" if T["wake_disc_zero"] else "FAIL"))
    rows.append(("wakeups/s, connected idle (check)", f"{T['wake_conn']:.2f}",
                 f"{Q['wake_conn']:.2f}", fmt_ratio(T["wake_conn"], Q["wake_conn"]),
                 "~0 both", "-"))
    row(f"QEMU start to first reply, median of {len(T['boot'])}",
        statistics.median(T["boot"]), statistics.median(Q["boot"]), "s", None, "{:.2f}")
    row("VmRSS idle after boot (info)", T["idle_rss"], Q["idle_rss"], "kB", None)

    hdr = ("measure", "tether-agent", "qemu-ga", "ratio", "target", "PASS/FAIL")
    w = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]
    print()
    print(f"agents: tether-agent {T.get('version')} (static, {T['threads']} thread(s)) | "
          f"qemu-ga {Q.get('version')} ({Q['threads']} thread(s)); guest: {o.guest}")
    print(f"host: {os.uname().release}, {os.cpu_count()} CPUs shared, TCG, 2 vCPUs, 256 MiB; "
          f"load average {' '.join(load0)} before, {' '.join(load1)} after; "
          f"run {time.monotonic() - t_start:.0f} s")
    print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(hdr)) + " |")
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |")
    print()
    print(f"client floor (same Python ping loop against a Python echo server on a unix socket): "
          f"median {statistics.median(floor):.0f} us, p99 {pct(floor, 99):.0f} us")
    print(f"boots: {o.boots} per agent in alternate order (T Q, Q T, ...); the RTT rows pool every "
          "boot's pings, the other rows are medians over boots. Per boot, median/p99 us @ other "
          "host load in CPUs:")
    for v, X in (("tether", T), ("qemu-ga", Q)):
        print(f"  {v:8s} " + "; ".join(f"{m:.0f}/{p:.0f} @ {ld:.2f}" for m, p, ld in X["rtt_boots"]))
    print("boots (s): tether " + ", ".join(f"{x:.2f}" for x in T["boot"]) +
          "; qemu-ga " + ", ".join(f"{x:.2f}" for x in Q["boot"]))
    print("disconnected raw, summed over boots: tether %d switches in %.1f s (%d threads); "
          "qemu-ga %d switches in %.1f s (%d threads)" % (*T["wake_disc_raw"], *Q["wake_disc_raw"]))
    noise = self_ratio(Q["runs"])
    print("noise floor, qemu-ga against itself (its boot 2, first of its pair, over boot 1, "
          "second of its pair): " + ", ".join(f"{k} {v:.3f}" for k, v in noise.items()))
    print(f"mix wall time: tether {T['mix_s']:.1f} s, qemu-ga {Q['mix_s']:.1f} s; "
          f"error replies: tether {T['errs'] or 'none'}, qemu-ga {Q['errs'] or 'none'}")
    print("VmRSS after the mix, RssAnon/RssFile/RssShmem kB: tether %s, qemu-ga %s"
          % (T["rss_parts"], Q["rss_parts"]))
    print()
    print("per-command latency in the mix, median ms (tether / qemu-ga):")
    for name in T["lat"]:
        if name in Q["lat"]:
            a, b = statistics.median(T["lat"][name]), statistics.median(Q["lat"][name])
            print(f"  {name:32s} {a:8.2f} {b:8.2f}  ratio {fmt_ratio(a, b)}  (n={len(T['lat'][name])}/{len(Q['lat'][name])})")
    failed = [r[0] for r in rows if r[5].startswith("FAIL")]
    if failed or T["errs"] or Q["errs"]:
        print(f"guest-bench: FAILED: {', '.join(failed) or 'no row'} missed the target; error "
              f"replies: tether {T['errs'] or 'none'}, qemu-ga {Q['errs'] or 'none'}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
