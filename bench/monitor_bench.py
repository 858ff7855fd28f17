# SPDX-License-Identifier: GPL-2.0-or-later
"""monitor_bench.py: the measuring half of bench/monitor-bench.sh (run it through that script).

The script sets up the managers (a private libvirtd + virtlogd + prometheus-libvirt-exporter;
tetherd under a temp --root with --metrics-listen) and the guest files; this file defines the
domains, runs the phases in ABBA order (T L L T: one side's guests at a time), prints the table
and exits 1 when a target fails. Side T is tetherd's /metrics, side L the exporter's.
"""

import argparse
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verbs_bench import domain_xml  # noqa: E402  (the XML verbs-bench.sh runs, for both)

PING = '{"execute":"guest-ping"}'
URI = "qemu:///system"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST_INTERVAL = 10  # tetherd's default host-interval (the config the script writes)

failures = []  # (measure, side)


def log(msg):
    print(f"monitor-bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(msg)
    sys.exit(2)


def fail(measure, side, text):
    failures.append((measure, side))
    log(f"{measure} ({side}): {text[:400]}")


# ---- the HTTP client, the same for both sides ----
REQ = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: monitor-bench\r\n" \
      "Accept: text/plain\r\nConnection: close\r\n\r\n"


def dechunk(body):
    out, i = [], 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            raise ValueError("bad chunked body")
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[j + 2:j + 2 + size])
        i = j + 2 + size + 2


def scrape(port, timeout):
    """One GET /metrics on a fresh connection: (outcome, seconds, body). outcome is the HTTP
    status (int), "timeout" or an error text; seconds from connect() to the last byte."""
    t0 = time.perf_counter()
    deadline = t0 + timeout
    s = None
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(REQ.format(port=port).encode())
        chunks = []
        while True:
            rem = deadline - time.perf_counter()
            if rem <= 0:
                raise socket.timeout()
            s.settimeout(rem)
            b = s.recv(1 << 16)
            if not b:
                break
            chunks.append(b)
    except (socket.timeout, TimeoutError):
        return "timeout", time.perf_counter() - t0, b""
    except OSError as e:
        return f"error: {e}", time.perf_counter() - t0, b""
    finally:
        if s is not None:
            s.close()
    secs = time.perf_counter() - t0
    data = b"".join(chunks)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" in head.lower():
            body = dechunk(body)
    except (IndexError, ValueError) as e:
        return f"bad reply: {e}", secs, b""
    return status, secs, body


LINE = re.compile(rb'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)')
DOMAIN = re.compile(rb'domain="([^"]*)"')


def series(body):
    """[(name, domain or None, line bytes)] of the samples in an exposition text."""
    out = []
    for line in body.split(b"\n"):
        if not line or line.startswith(b"#"):
            continue
        m = LINE.match(line)
        if not m:
            continue
        d = DOMAIN.search(m.group(2) or b"")
        out.append((m.group(1).decode(), d.group(1).decode() if d else None, len(line) + 1))
    return out


class Side:
    def __init__(self, key, args):
        self.key = key
        self.args = args
        self.kind = "tether" if key == "T" else "virsh"
        self.name = "tether" if key == "T" else "libvirt"
        self.port = args.tport if key == "T" else args.eport
        self.up = b"tether_up 1" if key == "T" else b"libvirt_up 1"
        self.doms = [f"monbench-{key.lower()}-{i:02d}" for i in range(1, args.n + 1)]

    def argv(self, *verb):
        if self.kind == "tether":
            return [self.args.tether, "--root", self.args.root, *verb]
        return ["virsh", "-c", URI, *verb]

    def run(self, *verb, timeout=120):
        try:
            return subprocess.run(self.argv(*verb), stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(verb, 124, "", f"timed out after {timeout} s")

    def daemon_pids(self):
        """(comm, pid) of the processes whose memory and CPU count for this side."""
        if self.key == "T":
            return [("tetherd", self.args.tetherd_pid)]
        out = []
        for f in ("libvirtd", "virtlogd"):
            try:
                with open(os.path.join(self.args.lv_dir, "pid", f + ".pid")) as fh:
                    out.append((f, int(fh.read().split()[0])))
            except (OSError, ValueError, IndexError):
                pass
        out.append(("exporter", self.args.exporter_pid))
        return out

    def qemu_pid(self, dom):
        if self.key == "T":
            f = os.path.join(self.args.root, "run/tether/domains", dom, "qemu.pid")
        else:
            f = os.path.join(self.args.lv_dir, "run/qemu", dom + ".pid")
        try:
            with open(f) as fh:
                pid = int(fh.read().split()[0])
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if f"guest={dom},".encode() in fh.read():
                    return pid
        except (OSError, ValueError, IndexError):
            pass
        return None

    def complete(self, status, body):
        """None when a reply is a full one (200, up 1, every domain), else what is wrong."""
        if status != 200:
            return f"status {status}"
        if self.up not in body:
            return "no " + self.up.decode()
        miss = [d for d in self.doms if f'domain="{d}"'.encode() not in body]
        return f"domains missing: {', '.join(miss)}" if miss else None


def define_all(side, args):
    xa = types.SimpleNamespace(kernel=args.kernel, initrd=args.initrd, append=args.append)
    for d in side.doms:
        x = domain_xml(types.SimpleNamespace(args=xa, kind=side.kind), d, args.mem, False)
        if args.disk:
            img = os.path.join(args.img, d + ".img")
            subprocess.run(["cp", "--sparse=always", args.data_img, img], check=True)
            os.chmod(img, 0o644)
            x = x.replace("    <serial type='pty'>",
                          "    <disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                          f"<source file='{img}'/><target dev='vda' bus='virtio'/></disk>\n"
                          "    <serial type='pty'>", 1)
        path = os.path.join(args.tmp, d + ".xml")
        with open(path, "w") as f:
            f.write(x)
        p = side.run("define", path)
        if p.returncode != 0:
            die(f"define {d} ({side.key}): {p.stderr.strip()}")


def wait_agents(side, seconds):
    t0 = time.monotonic()
    pending = list(side.doms)
    while pending and time.monotonic() - t0 < seconds:
        for d in list(pending):
            p = side.run("qemu-agent-command", d, PING, timeout=30)
            if p.returncode == 0 and '"return"' in p.stdout:
                pending.remove(d)
        if pending:
            time.sleep(1)
    if pending:
        return None
    return time.monotonic() - t0


# ---- /proc ----
def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    except (OSError, ValueError, IndexError):
        return None


def side_cpu_s(side):
    tot = 0
    for _, pid in side.daemon_pids():
        t = cpu_ticks(pid)
        if t is None:
            return None
        tot += t
    return tot / CLK_TCK


def sched_ns(pid):
    """CPU time of every thread of pid in ns (/proc/PID/task/*/schedstat): utime+stime come in
    10 ms ticks, too coarse for tens of ms over a window."""
    tot = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    tot += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return tot


def vmrss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def side_rss(side):
    parts, total = [], 0
    for comm, pid in side.daemon_pids():
        r = vmrss_kib(pid)
        if r is None:
            return None, f"{comm} (pid {pid}) gone"
        parts.append(f"{comm}={r / 1024:.1f}M")
        total += r
    return total, " ".join(parts)


# ---- statistics ----
def median(v):
    return statistics.median(v) if v else None


def p99(v):
    if not v:
        return None
    s = sorted(v)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


# ---- one phase: one side's guests running ----
def phase(side, args, ph, res, notes):
    k = side.key
    log(f"phase {ph} ({side.name}): starting {args.n} guests")
    t0 = time.monotonic()
    for d in side.doms:
        p = side.run("start", d)
        if p.returncode != 0:
            die(f"start {d} ({k}): {p.stderr.strip()}")
    up = wait_agents(side, args.boot_wait)
    if up is None:
        die(f"phase {ph}: not every agent of {side.name}'s guests answered in {args.boot_wait} s")
    log(f"phase {ph}: {args.n} agents answered {time.monotonic() - t0:.0f} s after the first start")

    # Wait until the metrics are complete: for tetherd, every domain's guest data has arrived.
    def ready(body):
        if side.complete(200, body):
            return False
        if k == "L":
            return True
        have = {(n, d) for n, d, _ in series(body)}
        return all((n, d) in have for d in side.doms
                   for n in ("tether_guest_os_info", "tether_guest_memory_total_bytes",
                             "tether_guest_load1", "tether_guest_cpu_seconds_total",
                             *(("tether_guest_filesystem_used_bytes",) if args.disk else ())))
    deadline = time.monotonic() + 90
    body = b""
    while time.monotonic() < deadline:
        st, _, body = scrape(side.port, 60)
        if st == 200 and ready(body):
            break
        time.sleep(1)
    else:
        fail("scrape", k, f"phase {ph}: the metrics never became complete: "
             f"{side.complete(200, body) or 'guest data missing'}")
    time.sleep(3)

    # Scrape size and series.
    st, _, body = scrape(side.port, 60)
    if st == 200:
        ser = series(body)
        per = [sum(1 for _, d, _ in ser if d == dom) for dom in side.doms]
        res["size"][k].append(len(body))
        res["series"][k].append(sum(per) / len(per))
        res["series_other"][k] = sum(1 for _, d, _ in ser if d is None)
        res["body"][k] = body

    # Normal scrapes, with the side's CPU around them.
    c0, w0 = side_cpu_s(side), time.monotonic()
    lat = []
    for _ in range(args.scrapes):
        st, secs, body = scrape(side.port, args.stop_timeout)
        err = side.complete(st, body)
        if err:
            fail("scrape", k, f"phase {ph}: {err}")
        else:
            lat.append(secs * 1000)
        time.sleep(0.02)
    c1, w1 = side_cpu_s(side), time.monotonic()
    res["scrape"][k].append(lat)
    if c0 is not None and c1 is not None:
        res["scrape_cpu"][k].append((c1 - c0) / args.scrapes / args.n * 1000)
    log(f"phase {ph}: {len(lat)} scrapes, median {median(lat) or 0:.2f} ms, "
        f"p99 {p99(lat) or 0:.2f} ms, daemons' CPU {((c1 or 0) - (c0 or 0)):.2f} s "
        f"over {w1 - w0:.1f} s")

    # Idle polling: tetherd's CPU with nothing scraping it.
    if k == "T":
        time.sleep(2)
        c0, n0, w0 = side_cpu_s(side), sched_ns(args.tetherd_pid), time.monotonic()
        time.sleep(args.cpu_seconds)
        c1, n1, w1 = side_cpu_s(side), sched_ns(args.tetherd_pid), time.monotonic()
        if c0 is not None and c1 is not None:
            res["cpu"].append((c1 - c0, w1 - w0))
            if n0 is not None and n1 is not None:
                res["cpu_ns"].append((n1 - n0) / 1e9)
            log(f"phase {ph}: tetherd idle polling: {c1 - c0:.2f} s CPU (utime+stime), "
                f"{((n1 or 0) - (n0 or 0)) / 1e9:.4f} s (schedstat) in {w1 - w0:.1f} s")

    # One QEMU SIGSTOPped.
    dom = side.doms[len(side.doms) // 2]
    qpid = side.qemu_pid(dom)
    if qpid is None:
        fail("stopped", k, f"no QEMU pid for {dom}")
    else:
        stop_phase(side, args, ph, dom, qpid, res, notes)

    # Memory.
    time.sleep(1)
    reads = []
    for _ in range(3):
        total, detail = side_rss(side)
        if total is None:
            fail("rss", k, detail)
            break
        reads.append((total, detail))
        time.sleep(1)
    if len(reads) == 3:
        reads.sort()
        res["rss"][k].append(reads[1][0])
        notes.append(f"phase {ph} ({side.name}) RSS: {reads[1][1]}")

    for d in side.doms:
        side.run("destroy", d)
    log(f"phase {ph} done in {time.monotonic() - t0:.0f} s")


def stop_phase(side, args, ph, dom, qpid, res, notes):
    k = side.key
    outcomes = []
    lat = []
    os.kill(qpid, signal.SIGSTOP)
    t_stop = time.monotonic()
    try:
        if k == "T":
            time.sleep(2)
            age0 = tether_age(side, dom)
            for _ in range(args.stop_scrapes):
                st, secs, body = scrape(side.port, args.stop_timeout)
                err = side.complete(st, body)
                if err:
                    fail("stopped", k, f"phase {ph}: {err} after {secs:.1f} s")
                    outcomes.append(f"{err} ({secs:.1f} s)")
                else:
                    lat.append(secs * 1000)
                time.sleep(0.2)
            age1 = tether_age(side, dom)
            notes.append(f"phase {ph} (tether), {dom}'s QEMU stopped "
                         f"{time.monotonic() - t_stop:.0f} s: {len(lat)}/{args.stop_scrapes} "
                         f"full scrapes, max {max(lat) if lat else 0:.1f} ms; its host age "
                         f"{age0} -> {age1} s")
        else:
            budget = time.monotonic() + 100
            for _ in range(3):
                if time.monotonic() > budget:
                    break
                st, secs, body = scrape(side.port, args.stop_timeout)
                err = side.complete(st, body)
                if err is None:
                    lat.append(secs * 1000)
                    outcomes.append(f"full answer in {secs:.1f} s")
                elif st == "timeout":
                    outcomes.append(f"no answer in {secs:.1f} s (client timeout)")
                else:
                    ser = series(body)
                    info = {d for n, d, _ in ser if n == "libvirt_domain_info_cpu_time_seconds_total"}
                    blk = {d for n, d, _ in ser if n.startswith("libvirt_domain_block_stats_")}
                    up = "libvirt_up 0" if b"libvirt_up 0" in body else "libvirt_up ?"
                    outcomes.append(f"{st} after {secs:.1f} s, {up}, info of {len(info)} and "
                                    f"block stats of {len(blk)} of {len(side.doms)} domains")
            notes.append(f"phase {ph} (libvirt), {dom}'s QEMU stopped: " + "; ".join(outcomes))
    finally:
        os.kill(qpid, signal.SIGCONT)
    t_cont = time.monotonic()
    res["stopped"][k].append((lat, outcomes))

    # Back to complete answers (tetherd: the stopped domain's host data fresh again, then,
    # for at most 30 s more, tether_guest_agent_up 1 again).
    deadline = t_cont + 120
    ok = False
    agent_at = None
    while time.monotonic() < deadline:
        st, secs, body = scrape(side.port, 60)
        if side.complete(st, body) is None:
            if k == "L":
                ok = True
                break
            age = tether_age(side, dom, body)
            if not ok and age is not None and age < time.monotonic() - t_cont + 0.5:
                ok = True
                rec = time.monotonic() - t_cont
                deadline = min(deadline, time.monotonic() + 30)
            if re.search(rb'tether_guest_agent_up\{domain="' + re.escape(dom.encode())
                         + rb'"\} 1', body):
                agent_at = time.monotonic() - t_cont
                if ok:
                    break
        time.sleep(0.5)
    if k == "L" or not ok:
        rec = time.monotonic() - t_cont
    what = "complete again" if k == "L" else "its host data fresh again"
    notes.append(f"phase {ph} ({side.name}): after SIGCONT, "
                 + (f"{what} after {rec:.1f} s" if ok else f"not complete after {rec:.0f} s")
                 + ("" if k == "L" else ", tether_guest_agent_up 1 " +
                    (f"after {agent_at:.1f} s" if agent_at is not None else "not seen")))
    if not ok:
        fail("stopped", k, f"phase {ph}: no recovery after SIGCONT")
    # Let the exporter's hung requests drain before the next measure.
    time.sleep(2)


def tether_age(side, dom, body=None):
    if body is None:
        st, _, body = scrape(side.port, 10)
        if st != 200:
            return None
    m = re.search(rb'tether_monitor_source_age_seconds\{domain="' + re.escape(dom.encode())
                  + rb'",source="host"\} (\S+)', body)
    return round(float(m.group(1)), 1) if m else None


# ---- the table ----
def main():
    ap = argparse.ArgumentParser()
    for o in ("tmp", "root", "tether", "kernel", "initrd", "append", "lv-dir", "img", "data-img"):
        ap.add_argument("--" + o, required=True)
    for o in ("tetherd-pid", "exporter-pid", "tport", "eport"):
        ap.add_argument("--" + o, type=int, required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--mem", type=int, default=128)
    ap.add_argument("--disk", type=int, default=1)
    ap.add_argument("--scrapes", type=int, default=100)
    ap.add_argument("--stop-scrapes", type=int, default=100)
    ap.add_argument("--stop-timeout", type=float, default=35)
    ap.add_argument("--cpu-seconds", type=float, default=30)
    ap.add_argument("--boot-wait", type=int, default=300)
    args = ap.parse_args()

    sides = {"T": Side("T", args), "L": Side("L", args)}
    # Both endpoints answer before anything starts.
    for k, s in sides.items():
        deadline = time.monotonic() + 20
        while True:
            st, _, body = scrape(s.port, 10)
            if st == 200 and s.up in body:
                break
            if time.monotonic() > deadline:
                die(f"{s.name}'s /metrics on port {s.port} does not answer: {st} "
                    f"{body[:200]!r}")
            time.sleep(0.2)
    for k in ("T", "L"):
        define_all(sides[k], args)

    res = {m: {"T": [], "L": []} for m in ("scrape", "scrape_cpu", "stopped", "rss", "size",
                                           "series")}
    res["series_other"], res["body"], res["cpu"], res["cpu_ns"] = {}, {}, [], []
    notes = []
    order = []
    for r in range(args.rounds):
        order += ["T", "L"] if r % 2 == 0 else ["L", "T"]
    for ph, k in enumerate(order, 1):
        phase(sides[k], args, ph, res, notes)
    return report(args, sides, res, notes, order)


def report(args, sides, res, notes, order):
    def cell(v, fmt):
        return fmt.format(v) if v is not None else "n/a"

    rows = []  # (label, tether text, libvirt text, ratio, L vs L, target text, verdict)
    any_fail = False

    def verdict(ok, measure, sides="TL"):
        nonlocal any_fail
        if ok is None:
            any_fail = True
            return "FAIL (no data)"
        v = "PASS" if ok else "FAIL"
        if any(m == measure and k in sides for m, k in failures):
            v += "*"
            ok = False
        any_fail |= not ok
        return v

    def halves(per_phase, fn):
        return fn(per_phase[0]) / fn(per_phase[1]) if len(per_phase) >= 2 and \
            fn(per_phase[0]) and fn(per_phase[1]) else None

    tl = [x for p in res["scrape"]["T"] for x in p]
    ll = [x for p in res["scrape"]["L"] for x in p]
    for label, fn in (("median", median), ("p99", p99)):
        t, l = fn(tl), fn(ll)
        ratio = t / l if t and l else None
        rows.append((f"/metrics scrape, {label}", cell(t, "{:.2f} ms"), cell(l, "{:.1f} ms"),
                     ratio, halves(res["scrape"]["L"], fn), "<= 0.1",
                     verdict(ratio <= 0.1 if ratio is not None else None, "scrape")))
    ts = [x for lat, _ in res["stopped"]["T"] for x in lat]
    lo = [o for _, outs in res["stopped"]["L"] for o in outs]
    n_to = sum(1 for o in lo if "client timeout" in o)
    n_full = sum(1 for o in lo if o.startswith("full"))
    ltxt = (f"{n_to} t/o, {len(lo) - n_to - n_full} part, {n_full} full"
            if lo else "n/a")
    tp99 = p99(ts)
    rows.append(("scrape p99, one QEMU SIGSTOPped", cell(tp99, "{:.2f} ms"), ltxt, None, None,
                 "T < 20 ms", verdict(tp99 < 20 if tp99 is not None else None, "stopped", "T")))
    cpu_s = sum(c for c, _ in res["cpu"])
    win = sum(w for _, w in res["cpu"])
    per_round = cpu_s / args.n / (win / HOST_INTERVAL) * 1000 if win else None
    share = cpu_s / win * 100 if win else None
    lcpu = median(res["scrape_cpu"]["L"])
    rows.append(("CPU per domain per 10 s round / scrape",
                 cell(per_round, "{:.2f} ms"), cell(lcpu, "{:.2f} ms"),
                 per_round / lcpu if per_round is not None and lcpu else None,
                 halves([[x] for x in res["scrape_cpu"]["L"]], median),
                 f"< 1% core", verdict(share < 1 if share is not None else None, "cpu")))
    tr, lr = median(res["rss"]["T"]), median(res["rss"]["L"])
    ratio = tr / lr if tr and lr else None
    rows.append((f"daemon RSS, {args.n} domains", cell(tr and tr / 1024, "{:.1f} MiB"),
                 cell(lr and lr / 1024, "{:.1f} MiB"), ratio,
                 halves([[x] for x in res["rss"]["L"]], median), "<= 0.2",
                 verdict(ratio <= 0.2 if ratio is not None else None, "rss")))
    tz, lz = median(res["size"]["T"]), median(res["size"]["L"])
    rows.append((f"scrape size, {args.n} domains", cell(tz, "{:.0f} B"), cell(lz, "{:.0f} B"),
                 tz / lz if tz and lz else None, halves([[x] for x in res["size"]["L"]], median),
                 "report", "-"))
    tn, ln = median(res["series"]["T"]), median(res["series"]["L"])
    rows.append(("series per domain", cell(tn, "{:.1f}"), cell(ln, "{:.1f}"),
                 tn / ln if tn and ln else None, None, "report", "-"))

    print()
    print(f"| {'measure':<40} | {'tether':>18} | {'libvirt':>22} | {'ratio':>6} | "
          f"{'L vs L':>6} | {'target':>9} | result")
    print("|" + "-" * 42 + "|" + "-" * 20 + "|" + "-" * 24 + "|--------|--------|-----------|-------")
    for label, t, l, ratio, aa, tgt, v in rows:
        print(f"| {label:<40} | {t:>18} | {l:>22} | {cell(ratio, '{:.3f}'):>6} | "
              f"{cell(aa, '{:.3f}'):>6} | {tgt:>9} | {v}")
    print()
    print("ratio = tether / libvirt. 'L vs L': libvirt's first L phase over its second "
          "(the noise floor). Phases: " + " ".join(order) + f", {args.n} guests each; "
          f"{args.scrapes} scrapes per phase (fresh connection each, 20 ms apart).")
    if share is not None:
        print(f"tetherd idle polling: {cpu_s:.2f} s CPU in {win:.0f} s = {share:.3f}% of one core "
              f"with {args.n} domains (target < 1%), {per_round:.2f} ms per domain per "
              f"{HOST_INTERVAL} s round; per T phase: "
              + ", ".join(f"{c:.2f} s/{w:.0f} s" for c, w in res["cpu"]))
    if res["cpu_ns"] and win:
        ns = sum(res["cpu_ns"])
        print(f"the same from /proc/PID/task/*/schedstat (ns resolution): {ns:.3f} s = "
              f"{ns / win * 100:.3f}% of one core, "
              f"{ns / args.n / (win / HOST_INTERVAL) * 1000:.2f} ms per domain per round")
    print("libvirt's CPU column: libvirtd + virtlogd + exporter CPU per scrape per domain "
          "(the exporter only polls when scraped); tetherd's CPU per scrape per domain: "
          + ", ".join(f"{x:.3f} ms" for x in res["scrape_cpu"]["T"]))
    for k in ("T", "L"):
        per = res["scrape"][k]
        print(f"{sides[k].name} per phase: " + "; ".join(
            f"median {median(p):.2f} ms p99 {p99(p):.2f} ms max {max(p):.2f} ms (n={len(p)})"
            for p in per if p))
    for k in ("T", "L"):
        if k in res["body"]:
            fams = {}
            for n, d, _ in series(res["body"][k]):
                if d == sides[k].doms[0]:
                    n = n.replace("tether_", "").replace("libvirt_domain_", "")
                    fams[n] = fams.get(n, 0) + 1
            print(f"{sides[k].name}: {res['series_other'].get(k, 0)} series without a domain "
                  f"label; scrape sizes {res['size'][k]}; one domain's series: "
                  + " ".join(f"{n}" + (f"x{c}" if c > 1 else "") for n, c in fams.items()))
    if ts:
        print(f"tether with one QEMU stopped: median {median(ts):.2f} ms, p99 {tp99:.2f} ms, "
              f"max {max(ts):.2f} ms over {len(ts)} scrapes")
    for n in notes:
        print(n)
    try:
        with open(os.path.join(args.tmp, "exporter.log")) as f:
            lines = [re.sub(r"^\S+ \S+ ", "", l.strip()) for l in f if l.strip()]
        seen = []
        for l in lines:
            if l not in seen:
                seen.append(l)
        if seen:
            print(f"exporter log ({len(lines)} lines, distinct): " + " | ".join(seen[:5])[:600])
    except OSError:
        pass
    if failures:
        cnt = {}
        for m, k in failures:
            cnt[f"{m} {k}"] = cnt.get(f"{m} {k}", 0) + 1
        print("failures (rows marked *): " + ", ".join(f"{v} x {n}" for n, v in sorted(cnt.items())))
    return 1 if any_fail else 0


if __name__ == "__main__":
    sys.exit(main())
