# SPDX-License-Identifier: GPL-2.0-or-later
"""verbs_bench.py: the measuring half of bench/verbs-bench.sh (run it through that script).

The script sets up the two managers (a private libvirtd + virtlogd; tetherd under a temp
--root) and the guest files; this file defines the domains, runs every measurement side by
side in ABBA order, prints the table and exits 1 when a target fails. Side T is the candidate
(tether; with --self a second libvirt domain driven by virsh), side L the reference (virsh).
"""

import argparse
import base64
import difflib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

URI = "qemu:///system"
AGENT_CHANNEL = "org.qemu.guest_agent.0"
BIG_PATH = "/tmp/verbs-big"  # in the guest's RAM (initramfs root); the data disk is 64 MiB
BIG_MIB = 64
READ_COUNT = 1 << 20  # the reference loop's guest-file-read count
PING = '{"execute":"guest-ping"}'

failures = []  # (measure, side, text)


def log(msg):
    print(f"verbs-bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(msg)
    sys.exit(2)


def fail(measure, side, text):
    failures.append((measure, side))
    log(f"{measure} ({side}): {text[:400]}")


class Side:
    """One manager and its CLI: tether --root R, or virsh -c qemu:///system."""

    def __init__(self, key, kind, args):
        self.key = key
        self.kind = kind  # "tether" or "virsh"
        self.args = args
        self.prefix = "verbsbench-" + ("cand" if key == "T" else "ref")
        self.main = self.prefix
        self.rss_doms = [f"{self.prefix}-rss-{k:02d}" for k in range(1, args.rss_n + 1)]

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

    def agent(self, dom, execute, arguments=None, timeout=None):
        """One QGA command through the manager's qemu-agent-command; its "return" value."""
        req = {"execute": execute}
        if arguments is not None:
            req["arguments"] = arguments
        verb = ["qemu-agent-command", dom]
        if timeout is not None:
            verb += ["--timeout", str(timeout)]
        p = self.run(*verb, json.dumps(req), timeout=(timeout or 5) + 60)
        if p.returncode != 0:
            raise RuntimeError(f"{execute}: {p.stderr.strip() or p.stdout.strip()}")
        return json.loads(p.stdout)["return"]

    def daemon_pids(self):
        if self.kind == "tether":
            return [self.args.tetherd_pid]
        pids = []
        for f in ("libvirtd.pid", "virtlogd.pid"):
            try:
                with open(os.path.join(self.args.lv_piddir, f)) as fh:
                    pids.append(int(fh.read().split()[0]))
            except (OSError, ValueError, IndexError):
                pass
        return pids


def domain_xml(side, name, mem_mib, nic):
    """The one definition both managers run; only the name differs, and libvirt gets
    <controller type='usb' model='none'/> (libvirt adds a USB controller by default, tetherd
    none and it refuses <controller>), so both QEMUs get the same devices."""
    a = side.args
    usb = "<controller type='usb' model='none'/>" if side.kind == "virsh" else ""
    iface = ("<interface type='user'><mac address='52:54:00:12:34:56'/>"
             "<model type='virtio'/></interface>") if nic else ""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{mem_mib}</memory>
  <currentMemory unit='MiB'>{mem_mib}</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{a.kernel}</kernel>
    <initrd>{a.initrd}</initrd>
    <cmdline>{a.append}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {usb}
    {iface}
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><target type='virtio' name='{AGENT_CHANNEL}'/></channel>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def define(side, name, mem_mib, nic):
    path = os.path.join(side.args.tmp, f"{name}.xml")
    with open(path, "w") as f:
        f.write(domain_xml(side, name, mem_mib, nic))
    p = side.run("define", path)
    if p.returncode != 0:
        die(f"define {name} ({side.key}): {p.stderr.strip()}")


def wait_agents(side, doms, seconds):
    """Ping every domain's agent through its manager until all answer; seconds taken, or None."""
    t0 = time.monotonic()
    pending = list(doms)
    while pending and time.monotonic() - t0 < seconds:
        for d in list(pending):
            p = side.run("qemu-agent-command", d, PING, timeout=30)
            if p.returncode == 0 and '"return"' in p.stdout:
                pending.remove(d)
        if pending:
            time.sleep(1)
    if pending:
        log(f"agents of {', '.join(pending)} ({side.key}) did not answer in {seconds} s")
        return None
    return time.monotonic() - t0


# ---- statistics ----
def median(v):
    return statistics.median(v) if v else None


def abba(i):
    """Round i's order: T L, L T, T L, L T, ..."""
    return ("T", "L") if i % 2 == 0 else ("L", "T")


def halves(samples):
    """libvirt against itself: the ratio of the medians of two interleaved halves, each with
    as many L-first as L-second rounds (rounds 0,1,4,5,... against 2,3,6,7,...)."""
    a = [s for i, s in enumerate(samples) if (i // 2) % 2 == 0]
    b = [s for i, s in enumerate(samples) if (i // 2) % 2 == 1]
    if not a or not b:
        return None
    return median(a) / median(b)


# ---- the three agent verbs ----
def verb_checks(args):
    """(measure, argv tail, check(stdout) -> error text or None) of the timed verbs."""
    def ping_ok(out):
        try:
            return None if json.loads(out) == {"return": {}} else f"unexpected reply {out!r}"
        except ValueError:
            return f"not JSON: {out[:200]!r}"

    def ifaddr_ok(out):
        want = ["lo", "127.0.0.1/8"] + (["eth0", args.guest_ip] if args.nic else [])
        miss = [w for w in want if w not in out]
        return f"missing {miss} in {out[:300]!r}" if miss else None

    def info_ok(out):
        return None if "os.id" in out or "hostname" in out else f"odd output {out[:300]!r}"

    return [
        ("ping", lambda d: ["qemu-agent-command", d, PING], ping_ok),
        ("domifaddr", lambda d: ["domifaddr", d, "--source", "agent"], ifaddr_ok),
        ("guestinfo", lambda d: ["guestinfo", d], info_ok),
    ]


def timed_run(side, argv_tail):
    argv = side.argv(*argv_tail)
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    t1 = time.perf_counter()
    return (t1 - t0) * 1000.0, p


def measure_verbs(sides, args, res):
    verbs = verb_checks(args)
    for m, _, _ in verbs:
        res[m] = {"T": [], "L": []}
    shown = set()
    total = args.warmup + args.runs
    log(f"verbs: {args.runs} runs per side and verb (+{args.warmup} warm-up), ABBA")
    for i in range(total):
        for m, tail, check in verbs:
            for k in abba(i):
                s = sides[k]
                ms, p = timed_run(s, tail(s.main))
                err = (p.stderr.strip() or f"exit {p.returncode}") if p.returncode else check(p.stdout)
                if (m, k) not in shown:
                    shown.add((m, k))
                    with open(os.path.join(args.tmp, f"out.{m}.{k}"), "w") as f:
                        f.write(p.stdout)
                if err:
                    fail(m, k, err)
                    continue
                if i >= args.warmup:
                    res[m][k].append(ms)


# ---- the 64 MiB copy ----
def guest_exec(side, dom, path, argv, timeout=120):
    pid = side.agent(dom, "guest-exec", {"path": path, "arg": argv, "capture-output": True})["pid"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = side.agent(dom, "guest-exec-status", {"pid": pid})
        if st.get("exited"):
            out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")
            err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")
            return st.get("exitcode"), out, err
        time.sleep(0.2)
    raise RuntimeError(f"guest-exec {path} did not finish in {timeout} s")


def make_big(side):
    """Write 64 MiB of random bytes to the guest's /tmp (RAM); its sha256 as the guest sees it."""
    _, meminfo, _ = guest_exec(side, side.main, "/bin/cat", ["/proc/meminfo"])
    avail = next((int(l.split()[1]) for l in meminfo.splitlines()
                  if l.startswith("MemAvailable:")), 0)
    if avail < (BIG_MIB + 64) * 1024:
        raise RuntimeError(f"guest has only {avail} KiB available for a {BIG_MIB} MiB file")
    rc, out, err = guest_exec(side, side.main, "/bin/sh", [
        "-c", f"dd if=/dev/urandom of={BIG_PATH} bs=1M count={BIG_MIB} 2>/dev/null && "
              f"sha256sum {BIG_PATH}"], timeout=300)
    if rc != 0 or not out.split():
        raise RuntimeError(f"dd in the guest failed ({rc}): {err.strip()}")
    log(f"{side.key}: {BIG_PATH} in the guest ({avail // 1024} MiB available before), "
        f"sha256 {out.split()[0][:16]}...")
    return out.split()[0]


def virsh_read_loop(side, dom, path, dst):
    """The reference: guest-file-open, guest-file-read with count 1 MiB until eof,
    guest-file-close, one `virsh qemu-agent-command` per call; decode and write locally."""
    h = side.agent(dom, "guest-file-open", {"path": path, "mode": "r"})
    with open(dst, "wb") as f:
        while True:
            r = side.agent(dom, "guest-file-read", {"handle": h, "count": READ_COUNT})
            f.write(base64.b64decode(r["buf-b64"]))
            if r.get("eof") or r.get("count", 0) == 0:
                break
    side.agent(dom, "guest-file-close", {"handle": h})


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def measure_cp(sides, args, res, sums):
    res["cp"] = {"T": [], "L": []}
    log(f"cp: {args.cp_runs} copies of {BIG_MIB} MiB per side (+1 warm-up), ABBA")
    for i in range(1 + args.cp_runs):
        for k in abba(i):
            s = sides[k]
            dst = os.path.join(args.tmp, f"cp.{k}")
            if os.path.exists(dst):
                os.unlink(dst)
            t0 = time.perf_counter()
            err = None
            if s.kind == "tether":
                p = subprocess.run(s.argv("cp", f"{s.main}:{BIG_PATH}", dst),
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True)
                if p.returncode != 0:
                    err = p.stderr.strip() or f"exit {p.returncode}"
            else:
                try:
                    virsh_read_loop(s, s.main, BIG_PATH, dst)
                except (RuntimeError, ValueError, KeyError) as e:
                    err = str(e)
            secs = time.perf_counter() - t0
            if err is None:
                got = sha256_file(dst) if os.path.exists(dst) else "(no file)"
                if got != sums[k]:
                    err = f"sha256 {got[:16]}... differs from the guest's {sums[k][:16]}..."
            if err:
                fail("cp", k, err)
                continue
            mbs = BIG_MIB * 1048576 / 1e6 / secs
            log(f"cp round {i}{' (warm-up)' if i == 0 else ''} {k}: {secs:.2f} s, {mbs:.1f} MB/s, sha256 ok")
            if i > 0:
                res["cp"][k].append(mbs)
    for k in ("T", "L"):
        dst = os.path.join(args.tmp, f"cp.{k}")
        if os.path.exists(dst):
            os.unlink(dst)


# ---- daemon memory with rss_n domains whose agents answer ----
def vmrss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def daemon_rss(side):
    parts, total = [], 0
    for pid in side.daemon_pids():
        r = vmrss_kib(pid)
        if r is None:
            return None, f"pid {pid} gone"
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            comm = str(pid)
        parts.append(f"{comm}={r / 1024:.1f}M")
        total += r
    return total, " ".join(parts)


def rss_round(side, args):
    t0 = time.monotonic()
    started = []
    for d in side.rss_doms:
        p = side.run("start", d)
        if p.returncode != 0:
            fail("rss", side.key, f"start {d}: {p.stderr.strip()}")
        else:
            started.append(d)
    up = wait_agents(side, started, args.rss_wait) if len(started) == len(side.rss_doms) else None
    result = None
    if up is not None:
        time.sleep(3)  # let the daemons settle after the last connection
        reads = []
        for _ in range(3):
            total, detail = daemon_rss(side)
            if total is None:
                fail("rss", side.key, detail)
                break
            reads.append((total, detail))
            time.sleep(1)
        if len(reads) == 3:
            reads.sort()
            result = reads[1]
            log(f"rss {side.key}: {args.rss_n} agents answered {time.monotonic() - t0:.0f} s after "
                f"the first start; daemon RSS {result[1]}")
    else:
        fail("rss", side.key, "not every agent answered")
    for d in started:
        side.run("destroy", d)
    return result


def measure_rss(sides, args, res, detail):
    res["rss"] = {"T": [], "L": []}
    log(f"rss: {args.rss_n} x {args.rss_mem} MiB guests per side, {args.rss_rounds} round(s), ABBA")
    for r in range(args.rss_rounds):
        for k in abba(r):
            out = rss_round(sides[k], args)
            if out:
                res["rss"][k].append(out[0])
                detail.setdefault(k, []).append(out[1])


# ---- the table ----
def fmt_ms(v):
    return f"{median(v):.1f} ms ({min(v):.0f}-{max(v):.0f})"


def main():
    ap = argparse.ArgumentParser()
    for o in ("tmp", "root", "tether", "kernel", "initrd", "append", "lv-piddir", "guest-ip"):
        ap.add_argument("--" + o, required=o != "tether")
    ap.add_argument("--tetherd-pid", type=int, default=0)
    ap.add_argument("--self", action="store_true")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--cp-runs", type=int, default=4)
    ap.add_argument("--mem", type=int, default=512)
    ap.add_argument("--nic", type=int, default=1)
    ap.add_argument("--rss-n", type=int, default=20)
    ap.add_argument("--rss-mem", type=int, default=96)
    ap.add_argument("--rss-rounds", type=int, default=2)
    ap.add_argument("--rss-wait", type=int, default=600)
    ap.add_argument("--skip", default="")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    sides = {"T": Side("T", "virsh" if args.self else "tether", args), "L": Side("L", "virsh", args)}
    res, rss_detail, notes = {}, {}, []

    # Definitions: each side's main guest and its rss_n small ones.
    for k in ("T", "L"):
        s = sides[k]
        define(s, s.main, args.mem, args.nic)
        if "rss" not in skip:
            for d in s.rss_doms:
                define(s, d, args.rss_mem, False)

    # The RSS phase first, with both daemons still fresh (one side's guests at a time).
    if "rss" not in skip:
        measure_rss(sides, args, res, rss_detail)

    # Both main guests run together for the verbs and the copies, so each sample of one side
    # sits between samples of the other under the same load.
    if not ({"verbs", "cp"} <= skip):
        for k in ("T", "L"):
            p = sides[k].run("start", sides[k].main)
            if p.returncode != 0:
                die(f"start {sides[k].main} ({k}): {p.stderr.strip()}")
        for k in ("T", "L"):
            if wait_agents(sides[k], [sides[k].main], 180) is None:
                die(f"the agent of {sides[k].main} ({k}) never answered")
        time.sleep(2)
        if "verbs" not in skip:
            measure_verbs(sides, args, res)
        if "cp" not in skip:
            try:
                sums = {k: make_big(sides[k]) for k in ("T", "L")}
                measure_cp(sides, args, res, sums)
            except (RuntimeError, ValueError, KeyError) as e:
                fail("cp", "setup", str(e))
        for k in ("T", "L"):
            total, detail = daemon_rss(sides[k])
            notes.append(f"daemon RSS ({k}) after the verbs and copies, 2 guests running: {detail}")
            sides[k].run("destroy", sides[k].main)

    # Output.
    names = {"T": "virsh (--self)" if args.self else "tether", "L": "libvirt"}
    print()
    for m in ("ping", "domifaddr", "guestinfo"):
        outs = {}
        for k in ("T", "L"):
            f = os.path.join(args.tmp, f"out.{m}.{k}")
            if os.path.exists(f):
                with open(f) as fh:
                    outs[k] = fh.read()
        if len(outs) < 2:
            continue
        same = "identical" if outs["T"] == outs["L"] else "differ"
        notes.append(f"{m} output: {same}; T {len(outs['T'].splitlines())} lines, "
                     f"{len(outs['T'])} bytes; L {len(outs['L'].splitlines())} lines, {len(outs['L'])} bytes")
        if same == "differ":
            diff = [d for d in difflib.unified_diff(outs["L"].splitlines(), outs["T"].splitlines(),
                                                    "L", "T", n=0, lineterm="")][2:]
            notes += ["    " + d for d in diff[:12]]
            if len(diff) > 12:
                notes.append(f"    ... {len(diff) - 12} more diff lines")
    rows = [
        ("ping", f"qemu-agent-command guest-ping", "le", 0.3, "ms"),
        ("domifaddr", "domifaddr --source agent", "le", 0.3, "ms"),
        ("guestinfo", "guestinfo", "le", 0.3, "ms"),
        ("cp", f"cp {BIG_MIB} MiB from the guest, MB/s", "ge", 3.0, "MB/s"),
        ("rss", f"daemon RSS, {args.rss_n} agents connected", "le", 0.2, "KiB"),
    ]
    hdr = f"| {'measure':<40} | {names['T']:>20} | {names['L']:>20} | {'ratio':>6} | {'L vs L':>6} | {'target':>6} | result"
    print(hdr)
    print("|" + "-" * 42 + "|" + "-" * 22 + "|" + "-" * 22 + "|--------|--------|--------|--------")
    any_fail = False
    for m, label, cmp, target, unit in rows:
        tgt = ("<= " if cmp == "le" else ">= ") + f"{target:g}"
        if m in skip or (m in ("ping", "domifaddr", "guestinfo") and "verbs" in skip):
            print(f"| {label:<40} | {'skipped':>20} | {'skipped':>20} | {'':>6} | {'':>6} | {tgt:>6} | skipped")
            continue
        t = res.get(m, {}).get("T", [])
        l = res.get(m, {}).get("L", [])
        nerr = sum(1 for mm, _ in failures if mm == m)
        if not t or not l:
            any_fail = True
            print(f"| {label:<40} | {'n/a':>20} | {'n/a':>20} | {'n/a':>6} | {'':>6} | {tgt:>6} | FAIL (no data)")
            continue
        ratio = median(t) / median(l)
        if m == "rss":
            aa = l[0] / l[1] if len(l) >= 2 else None
            tv, lv = f"{median(t) / 1024:.1f} MiB", f"{median(l) / 1024:.1f} MiB"
        elif m == "cp":
            aa = halves(l) if len(l) >= 4 else (l[0] / l[1] if len(l) >= 2 else None)
            tv, lv = f"{median(t):.1f} ({min(t):.0f}-{max(t):.0f})", f"{median(l):.1f} ({min(l):.0f}-{max(l):.0f})"
        else:
            aa = halves(l)
            tv, lv = fmt_ms(t), fmt_ms(l)
        ok = ratio <= target if cmp == "le" else ratio >= target
        verdict = "PASS" if ok else "FAIL"
        if nerr:
            verdict += "*"
            ok = False
        any_fail |= not ok
        aas = f"{aa:.3f}" if aa is not None else "n/a"
        print(f"| {label:<40} | {tv:>20} | {lv:>20} | {ratio:>6.3f} | {aas:>6} | {tgt:>6} | {verdict}")
    print()
    print(f"ratio = {names['T']} / libvirt (for cp: MB/s over MB/s). 'L vs L' is libvirt against "
          "itself, the noise floor: verbs and cp, medians of two interleaved halves of its samples "
          "(rounds 0,1,4,5,.. vs 2,3,6,7,..); RSS, round 1 over round 2.")
    print(f"runs per side: verbs {args.runs} (+{args.warmup} warm-up), cp {args.cp_runs} (+1 warm-up), "
          f"RSS {args.rss_rounds} round(s); ABBA order throughout.")
    for n in notes:
        print(n)
    for k, d in rss_detail.items():
        print(f"daemon RSS per round ({k}): " + "; ".join(d))
    if failures:
        cnt = {}
        for m, k in failures:
            cnt[f"{m} {k}"] = cnt.get(f"{m} {k}", 0) + 1
        print("failures (rows marked *): " + ", ".join(f"{v} x {n}" for n, v in sorted(cnt.items())))
    return 1 if any_fail else 0


if __name__ == "__main__":
    sys.exit(main())
