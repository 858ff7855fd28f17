#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Soak: tetherd under long repetition with real TCG guests, not in CI (issue 11).
#
#   tools/soak.sh [--quick] [--build DIR] [--guest DIR] [--cycles N] [--reconnects N]
#                 [--clients N] [--domains N] [--keep]
#
# (a) --cycles start/suspend/resume/save/restore/destroy cycles (default 1000 in total),
#     round-robin over --domains domains (default 4); one QEMU runs at a time;
# (b) --reconnects agent reconnections over virtio-serial (default 10000): the guest's agent is
#     killed from inside the guest (guest-exec of kill), the guest's supervisor starts a new
#     one, the port closes and opens again (VSERPORT_CHANGE), and tetherd's agent client
#     (src/host/guest.c) must sync with the new agent before guest-ping answers again;
# (c) --clients control clients (default 1000) that connect and vanish mid-request: half a
#     request line, a whole agent-command whose reply they do not wait for, a whole dominfo,
#     or nothing at all.
# --quick: 48 cycles, 50 reconnects, 100 clients, to test the script itself (~5 minutes).
#
# tetherd is the ASan+UBSan build's (build-asan/, tools/run-tests.sh --sanitize builds it) so
# LeakSanitizer reports its leaks when it exits; the guests run the static agent of
# build-asan/guest or build/guest (the same image; run-tests.sh builds them). Everything runs at
# nice 10.
#
# Pass: tetherd's RSS and open fd count are flat in each soak (the mean of the last 10% of the
# samples within 5% of the mean of the first 10%, after a short warm-up that fills the
# allocator's caches), every domain is in its expected state at the end, the agent's supervisor
# counted every restart, and tetherd's log holds no sanitizer report (leaks included) after it
# exits on SIGTERM. Prints the figures; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-asan
guest=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=${2:?}; shift 2 ;;
    --guest) guest=${2:?}; shift 2 ;;
    -h|--help) sed -n '3,27p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
# The sanitized run's guest (build-asan/guest), else the normal run's: both hold the static agent.
if [ -z "$guest" ]; then
  guest=build/guest
  [ -e "$build/guest/guest.env" ] && guest=$build/guest
fi
for f in "$build/src/host/tetherd" "$build/src/cli/tether" "$guest/guest.env"; do
  [ -e "$f" ] || { echo "soak: $f missing (tools/run-tests.sh --sanitize builds it)" >&2; exit 2; }
done

# Fatal sanitizer reports, leaks at exit. A 1 MiB quarantine: freed blocks wait there before
# they are reused, and the RSS they hold grows until the quarantine is full. ASan's default
# (256 MiB) grows for a whole soak; 16 MiB still made the 30 s clients soak grow 24 % (21.4 to
# 26.6 MiB) where it is flat (1.028) without a quarantine.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1:quarantine_size_mb=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:abort_on_error=1}
exec nice -n 10 python3 - --tetherd "$build/src/host/tetherd" --tether "$build/src/cli/tether" \
  --guest "$guest" "${args[@]}" <<'PY'
import argparse
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.getcwd(), "tests", "vm"))
from lifecyclelib import AgentError, Tether, domain_xml, load_guest_env, write  # noqa: E402

ap = argparse.ArgumentParser(prog="tools/soak.sh")
ap.add_argument("--tetherd", required=True)
ap.add_argument("--tether", required=True)
ap.add_argument("--guest", required=True)
ap.add_argument("--quick", action="store_true")
ap.add_argument("--cycles", type=int)
ap.add_argument("--reconnects", type=int)
ap.add_argument("--clients", type=int)
ap.add_argument("--domains", type=int, default=4)
ap.add_argument("--keep", action="store_true", help="keep the temp root")
a = ap.parse_args()
a.cycles = a.cycles if a.cycles is not None else (48 if a.quick else 1000)
a.reconnects = a.reconnects if a.reconnects is not None else (50 if a.quick else 10000)
a.clients = a.clients if a.clients is not None else (100 if a.quick else 1000)

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}", flush=True)


def proc_figures(pid):
    """tetherd's (VmRSS in KiB, open fds)."""
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Samples:
    """RSS and fd samples of one soak; flat() applies the pass rule."""

    def __init__(self, name, pid, warmup):
        self.name, self.pid, self.warmup = name, pid, warmup
        self.seen = 0
        self.rss, self.fds = [], []

    def take(self):
        self.seen += 1
        if self.seen <= self.warmup:
            return
        r, f = proc_figures(self.pid)
        self.rss.append(r)
        self.fds.append(f)

    def flat(self):
        n = len(self.rss)
        if n < 2:
            fail(f"{self.name}: only {n} samples")
            return
        k = max(1, n // 10)
        for what, xs, unit in (("RSS", self.rss, "KiB"), ("fds", self.fds, "")):
            first, last = sum(xs[:k]) / k, sum(xs[-k:]) / k
            ratio = last / first if first else float("inf")
            ok = abs(ratio - 1) <= 0.05
            print(f"  {self.name:<12} {what:<4} first 10% {first:10.1f}{unit:>4}  last 10% "
                  f"{last:10.1f}{unit:>4}  ratio {ratio:.3f}  min {min(xs)} max {max(xs)}  "
                  f"({n} samples) {'flat' if ok else 'NOT FLAT'}", flush=True)
            if not ok:
                fail(f"{self.name}: {what} grew from {first:.1f} to {last:.1f} ({ratio:.3f})")


def cli_ok(t, *args, want=None):
    rc, out, err = t.cli(*args)
    if rc != 0:
        raise RuntimeError(f"tether {' '.join(args)}: rc {rc}: {err}")
    return out


def expect_state(t, name, want, timeout=30):
    st = t.wait_state(name, want, timeout)
    if st != want:
        raise RuntimeError(f"{name}: state {st!r}, want {want!r}")


def soak_cycles(t, genv, names):
    """(a) start/suspend/resume/save/restore/destroy, round-robin over names."""
    s = Samples("cycles", t.proc.pid, warmup=len(names))
    image = os.path.join(t.root, "soak.save")
    t0 = time.monotonic()
    for i in range(a.cycles):
        n = names[i % len(names)]
        cli_ok(t, "start", n)
        expect_state(t, n, "running (booted)")
        cli_ok(t, "suspend", n)
        expect_state(t, n, "paused (user)")
        cli_ok(t, "resume", n)
        expect_state(t, n, "running (unpaused)")
        cli_ok(t, "save", n, image)
        expect_state(t, n, "shut off (saved)")
        cli_ok(t, "restore", image)
        expect_state(t, n, "running (restored)")
        cli_ok(t, "destroy", n)
        expect_state(t, n, "shut off (destroyed)")
        os.unlink(image)
        if (i + 1) % len(names) == 0:  # every domain shut off: comparable samples
            s.take()
        if (i + 1) % 50 == 0 or i + 1 == a.cycles:
            print(f"  cycles: {i + 1}/{a.cycles} ({time.monotonic() - t0:.0f} s) "
                  f"rss {proc_figures(t.proc.pid)[0]} KiB", flush=True)
    for n in names:
        st = t.state(n)
        if st != "shut off (destroyed)":
            fail(f"{n}: {st!r} at the end, want 'shut off (destroyed)'")
    return s


def soak_reconnects(t, name):
    """(b) the guest's agent killed from inside; tetherd must sync with each new one."""
    ag = t.agent(name)
    ag.wait(90)
    code, before = ag.sh("cat /run/log/agent-supervisor.log 2>/dev/null | wc -l")
    before = int(before.strip() or 0)
    s = Samples("reconnects", t.proc.pid, warmup=5)
    t0 = time.monotonic()
    for i in range(a.reconnects):
        _, pid = ag.sh("pidof tether-agent qemu-ga")
        pid = pid.strip()
        # The reply to guest-exec goes out before the kill (sleep), so the call itself is not
        # lost with the agent.
        ag.spawn("/bin/sh", ["-c", f"sleep 0.1; kill {pid}"], capture=False)
        deadline = time.monotonic() + 30
        while True:  # until a new agent answers (tetherd synced with it)
            try:
                if ag.ping(timeout=2):
                    _, now = ag.sh("pidof tether-agent qemu-ga")
                    if now.strip() and now.strip() != pid:
                        break
            except AgentError:
                pass  # the old agent went away during the call: what we are waiting for
            if time.monotonic() > deadline:
                raise RuntimeError(f"reconnect {i + 1}: no new agent within 30 s")
            time.sleep(0.1)
        s.take()
        if (i + 1) % 100 == 0 or i + 1 == a.reconnects:
            print(f"  reconnects: {i + 1}/{a.reconnects} ({time.monotonic() - t0:.0f} s) "
                  f"rss {proc_figures(t.proc.pid)[0]} KiB", flush=True)
    _, after = ag.sh("cat /run/log/agent-supervisor.log | wc -l")
    restarts = int(after.strip()) - before
    print(f"  the guest's supervisor restarted the agent {restarts} times", flush=True)
    if restarts != a.reconnects:
        fail(f"{restarts} agent restarts in the guest, want {a.reconnects}")
    return s


def soak_clients(t, name):
    """(c) control clients that vanish mid-request."""
    s = Samples("clients", t.proc.pid, warmup=2)
    full_agent = json.dumps({"execute": "agent-command", "arguments": {
        "domain": name, "command": {"execute": "guest-exec", "arguments": {
            "path": "/bin/sleep", "arg": ["0.2"]}}, "timeout": 10}}).encode() + b"\n"
    kinds = [
        b'{"execute": "dominfo", "arguments": {"domain": "',           # half a line
        full_agent,                                                    # reply never read
        json.dumps({"execute": "dominfo", "arguments": {"domain": name}}).encode() + b"\n",
        b"",                                                           # nothing at all
    ]
    t0 = time.monotonic()
    for i in range(a.clients):
        c = socket.socket(socket.AF_UNIX)
        c.connect(t.sock)
        if kinds[i % 4]:
            c.sendall(kinds[i % 4])
        c.close()
        if (i + 1) % 10 == 0:
            # tetherd answers the next client: it noticed every earlier one going away.
            if t.api("dominfo", {"domain": name}).get("return", {}).get("name") != name:
                raise RuntimeError(f"client {i + 1}: dominfo failed")
            time.sleep(0.3)  # the abandoned agent-commands finish
            s.take()
    print(f"  clients: {a.clients} in {time.monotonic() - t0:.0f} s", flush=True)
    return s


def main():
    genv = load_guest_env(a.guest)
    t = Tether(a.tetherd, a.tether, "/tmp/tt-soak-")
    samples = []
    try:
        t.start_daemon()
        names = [f"soak{i}" for i in range(a.domains)]
        for n in names + ["soakag"]:
            cli_ok(t, "define", write(os.path.join(t.root, n + ".xml"),
                                      domain_xml(n, genv, memory_mib=128)))
        r0 = proc_figures(t.proc.pid)
        print(f"tetherd {a.tetherd} pid {t.proc.pid}: rss {r0[0]} KiB, {r0[1]} fds", flush=True)
        if a.cycles:
            print(f"(a) {a.cycles} cycles over {len(names)} domains", flush=True)
            samples.append(soak_cycles(t, genv, names))
        cli_ok(t, "start", "soakag")
        if a.reconnects:
            print(f"(b) {a.reconnects} agent reconnections", flush=True)
            samples.append(soak_reconnects(t, "soakag"))
        if a.clients:
            print(f"(c) {a.clients} vanishing control clients", flush=True)
            samples.append(soak_clients(t, "soakag"))
        st = t.state("soakag")
        if st != "running (booted)":
            fail(f"soakag: {st!r} at the end, want 'running (booted)'")
        else:
            try:
                t.agent("soakag").wait(90)  # booting still when (b) did not run
            except AgentError as e:
                fail(f"soakag: its agent does not answer at the end: {e}")
        for n in names:
            st = t.state(n)
            if a.cycles and st != "shut off (destroyed)":
                fail(f"{n}: {st!r} at the end, want 'shut off (destroyed)'")
    except Exception as e:
        import traceback
        traceback.print_exc()
        fail(f"the soak stopped: {e}")
    finally:
        t.shutdown()
        report = t.sanitizer_report()
        if report:
            fail(f"sanitizer report:\n{report}")
        else:
            print("no sanitizer report (LeakSanitizer ran at tetherd's exit)", flush=True)
        t.cleanup(keep=a.keep)
    print("figures:")
    for s in samples:
        s.flat()
    print(f"soak: {'FAILED' if failures else 'passed'} ({len(failures)} failures)")
    return 1 if failures else 0


sys.exit(main())
PY
