#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""tether-agent against Debian's qemu-ga on the host, both in unix-listen mode, measured the
way an independent client measures them (issue 13):

  - one CPU for the client and the agents (a wake-up across CPUs costs ~50 us here);
  - replies framed in linear time (the newline is searched from where the last search ended)
    and never base64-decoded: the byte counts come from the reply's "count";
  - every figure is paired per round with the order alternated (ABBA), the ratio is the
    median of the per-round ratios, and qemu-ga against a second qemu-ga gives the noise line.

Measures and targets (tether / qemu-ga):
  read   guest-file-read with 48 MiB counts of a 64 MiB file, open to close, MB/s   >= 10x
  exec   guest-exec /bin/true, then guest-exec-status until it exited, ms          <= 0.6
  start  spawn the agent, connect, guest-ping, first reply, ms                     <= 0.5

Only read-only commands are sent (file reads of our own file, /bin/true).
  bench/agent_speed.py [--tether BIN] [--qemu-ga BIN] [--rounds N] [--cpu N] [--only M,...]
Each row also gives the agents' own CPU time per operation (/proc/PID/schedstat: read per
64 MiB pass, exec per run, start up to the first reply), which no client can inflate.
Exits 1 when a target fails or a reference is missing.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FILE_SIZE = 64 << 20
READ_COUNT = 48 << 20
TARGETS = {"read": (">=", 10.0), "exec": ("<=", 0.6), "start": ("<=", 0.5)}


class Proc:
    """The little of subprocess.Popen that the bench needs, for a posix_spawn'ed child."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or 1e9)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.001)
        return self.returncode

    def send_signal(self, sig):
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)


class Agent:
    """An agent process in unix-listen mode, pinned to cpu, and one connection to it."""

    def __init__(self, binary, cpu, tmp, tag):
        self.binary = binary
        self.dir = os.path.join(tmp, tag)
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        self.path = os.path.join(self.dir, "agent.sock")
        self.cpu = cpu
        self.proc = None
        self.sock = None
        # Room for the largest reply (48 MiB in base64 plus the JSON around it), made once:
        # zeroing 72 MiB costs ~40 ms, which must not land in the start figure.
        self.buf = bytearray(72 << 20)

    def spawn(self):
        """posix_spawn (vfork): the client's own spawn cost stays small, and the agent inherits
        the client's CPU."""
        if os.path.exists(self.path):
            os.unlink(self.path)
        null = os.open(os.devnull, os.O_RDWR)
        argv = [self.binary, "-m", "unix-listen", "-p", self.path, "-t",
                os.path.join(self.dir, "state")]
        pid = os.posix_spawn(self.binary, argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1),
            (os.POSIX_SPAWN_DUP2, null, 2)])
        os.close(null)
        self.proc = Proc(pid)

    def connect(self, deadline):
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                self.sock = s
                self.start = self.scanned = self.end = 0
                return
            except OSError:
                s.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.binary}: cannot connect")
                # Yield the one CPU to the agent that is starting (a spin would steal it).
                time.sleep(0.0001)

    def start(self):
        self.spawn()
        self.connect(time.monotonic() + 10)
        self.send(b'{"execute":"guest-ping"}\n')
        self.line()

    def stop(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        """The next reply line (bytes, never decoded). Framed in linear time with no copy of
        a growing buffer: recv_into one preallocated buffer, the newline searched only in
        what each recv brought, so the client's cost stays out of the figure."""
        while True:
            i = self.buf.find(b"\n", self.scanned, self.end)
            if i >= 0:
                out = memoryview(self.buf)[self.start:i]
                self.start = i + 1
                self.scanned = self.start
                if self.start == self.end:
                    self.start = self.scanned = self.end = 0
                return out
            self.scanned = self.end
            if self.end == len(self.buf):
                if self.start > 0:
                    # Move the partial line to the front (once per reply at most).
                    self.buf[:self.end - self.start] = self.buf[self.start:self.end]
                    self.end -= self.start
                    self.scanned -= self.start
                    self.start = 0
                else:
                    self.buf.extend(bytes(len(self.buf)))
            n = self.sock.recv_into(memoryview(self.buf)[self.end:], 1 << 20)
            if n == 0:
                raise RuntimeError(f"{self.binary}: connection closed")
            self.end += n

    def cmd(self, execute, args=None):
        msg = {"execute": execute}
        if args is not None:
            msg["arguments"] = args
        self.send(json.dumps(msg).encode() + b"\n")
        reply = json.loads(bytes(self.line()))
        if "return" not in reply:
            raise RuntimeError(f"{execute}: {reply}")
        return reply["return"]


def cpu_ns(pid):
    """Time the process has spent on a CPU (schedstat), in ns: the agent's own cost, which
    no client overhead and no other load on the machine can inflate."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except OSError:
        return 0


def read_mbps(a, path):
    """One pass: open, 48 MiB reads to EOF, close; (MB/s, agent CPU ms)."""
    c0 = cpu_ns(a.proc.pid)
    t0 = time.perf_counter()
    h = a.cmd("guest-file-open", {"path": path, "mode": "r"})
    total = 0
    while True:
        a.send(json.dumps({"execute": "guest-file-read",
                           "arguments": {"handle": h, "count": READ_COUNT}}).encode() + b"\n")
        reply = a.line()
        # Only the small fields, at the head and the tail of the reply: never the payload.
        head, tail = bytes(reply[:64]), bytes(reply[-64:])
        m = re.search(rb'"count":\s*(\d+)', head) or re.search(rb'"count":\s*(\d+)', tail)
        if m is None:
            raise RuntimeError(f"{a.binary}: not a read reply: {head!r}")
        count = int(m.group(1))
        total += count
        if re.search(rb'"eof":\s*true', tail) or count == 0:
            break
    a.cmd("guest-file-close", {"handle": h})
    dt = time.perf_counter() - t0
    if total != FILE_SIZE:
        raise RuntimeError(f"read {total} bytes, expected {FILE_SIZE}")
    return total / dt / 1e6, (cpu_ns(a.proc.pid) - c0) / 1e6


def exec_ms(a, n=40):
    """Median of n: guest-exec /bin/true, then guest-exec-status until it exited; (ms, agent
    CPU ms per run)."""
    times = []
    c0 = cpu_ns(a.proc.pid)
    for _ in range(n):
        t0 = time.perf_counter()
        pid = a.cmd("guest-exec", {"path": "/bin/true"})["pid"]
        while not a.cmd("guest-exec-status", {"pid": pid}).get("exited"):
            pass
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), (cpu_ns(a.proc.pid) - c0) / n / 1e6


def start_ms(a, n=9):
    """Median of n: spawn, connect, guest-ping, first reply; (ms, agent CPU ms up to it)."""
    times, cpus = [], []
    for _ in range(n):
        a.stop()
        t0 = time.perf_counter()
        a.spawn()
        a.connect(time.monotonic() + 10)
        a.send(b'{"execute":"guest-ping"}\n')
        a.line()
        times.append((time.perf_counter() - t0) * 1e3)
        cpus.append(cpu_ns(a.proc.pid) / 1e6)
    return statistics.median(times), statistics.median(cpus)


def paired(fn, a, b, rounds):
    """Per-round a/b ratios in ABBA order: (median ratio, median a, median b, and the same
    three for the agents' own CPU time)."""
    va, vb, ratios, ca, cb, cratios = [], [], [], [], [], []
    for r in range(rounds):
        order = (a, b) if r % 4 in (0, 3) else (b, a)
        got = {}
        for ag in order:
            got[id(ag)] = fn(ag)
        (x, cx), (y, cy) = got[id(a)], got[id(b)]
        va.append(x)
        vb.append(y)
        ratios.append(x / y)
        ca.append(cx)
        cb.append(cy)
        cratios.append(cx / cy if cy else float("nan"))
    med = statistics.median
    return med(ratios), med(va), med(vb), med(cratios), med(ca), med(cb)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/agent/tether-agent-static"))
    ap.add_argument("--qemu-ga", default=shutil.which("qemu-ga") or "/usr/sbin/qemu-ga")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--only", default="read,exec,start")
    o = ap.parse_args()
    for b in (o.tether, o.qemu_ga):
        if not os.access(b, os.X_OK):
            print(f"FAIL reference missing: {b}")
            return 1
    os.sched_setaffinity(0, {o.cpu})
    tmp = tempfile.mkdtemp(prefix="agent-speed-")
    big = os.path.join(tmp, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(FILE_SIZE))
    agents = {"tether": Agent(o.tether, o.cpu, tmp, "tether"),
              "qga": Agent(o.qemu_ga, o.cpu, tmp, "qga"),
              "qga2": Agent(o.qemu_ga, o.cpu, tmp, "qga2")}
    fns = {"read": lambda a: read_mbps(a, big), "exec": exec_ms, "start": start_ms}
    units = {"read": "MB/s", "exec": "ms", "start": "ms"}
    failed = 0
    try:
        for a in agents.values():
            a.start()
        print(f"{'measure':8} {'tether':>12} {'qemu-ga':>12} {'ratio':>7} {'noise':>7} "
              f"{'target':>7}  result   agent CPU: {'tether':>9} {'qemu-ga':>9} {'ratio':>6}")
        for m in o.only.split(","):
            ratio, t, q, cratio, ct, cq = paired(fns[m], agents["tether"], agents["qga"],
                                                 o.rounds)
            noise = paired(fns[m], agents["qga2"], agents["qga"], o.rounds)[0]
            op, target = TARGETS[m]
            ok = ratio >= target if op == ">=" else ratio <= target
            failed += not ok
            print(f"{m:8} {t:>7.2f} {units[m]:<4} {q:>7.2f} {units[m]:<4} {ratio:>7.3f} "
                  f"{noise:>7.3f} {op}{target:<5}  {'PASS' if ok else 'FAIL'}   "
                  f"{' ' * 11}{ct:>6.2f} ms {cq:>6.2f} ms {cratio:>6.3f}", flush=True)
    finally:
        for a in agents.values():
            a.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{'all targets met' if not failed else f'{failed} target(s) missed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
