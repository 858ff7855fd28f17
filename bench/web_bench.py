#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The web console's costs (issue 12), measured in a real Chromium against a private tetherd
with N defined domains (200 by default; QEMU runs only for the state-change rounds):

  paint   first paint of the list: navigation start to the moment the table holds every
          domain, on the browser's own clock (performance.now()), ms             < 300
  change  a state change reaching the page: tetherd's reply to `start` (the state is already
          running then) to the page's state cell saying so, ms                  < 1000
  rss     tetherd's RSS with the console on and a page open and idle, minus tetherd's RSS
          without the console, KiB (ABBA rounds; the console-off runs against each other
          give the noise line)                                                  <= 2048
  cpu     tetherd's CPU time per second with that page idle (the 250 ms list comparison),
          ms/s                                                                   report
  chart   a domain page's chart data request (GET /api/domains/NAME/history) on a kept-alive
          loopback connection, median of 50, ms                                  < 10
  spark   the list's sparkline request (GET /api/history, every domain), ms      report

The chart request is measured on a domain that runs for --chart-seconds under a tetherd whose
monitor takes a host sample every second: its ring holds that many points (printed), not a full
hour (360). The same first paint against Cockpit's Machines page, on the same domains under
libvirt: bench/cockpit_bench.py.

  bench/web_bench.py [--tetherd BIN] [--tether BIN] [--domains N] [--rounds N]
                     [--chart-seconds N]
Exits 1 when a target fails.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "vm"))
from lifecyclelib import domain_xml  # noqa: E402

try:
    import selenium  # noqa: F401
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")

TARGETS = {"paint": ("<", 300.0), "change": ("<", 1000.0), "rss": ("<=", 2048.0),
           "chart": ("<", 10.0)}
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1400,900")

# Resolves with performance.now() once the page holds n rows (arguments[0]) matching the selector
# arguments[1]: tetherd's list here, Cockpit's in cockpit_bench.py.
WAIT_ROWS = """
const n = arguments[0], sel = arguments[1], done = arguments[arguments.length - 1];
const rows = () => document.querySelectorAll(sel).length;
if (rows() >= n) { done(performance.now()); return; }
new MutationObserver((m, obs) => {
  if (rows() >= n) { obs.disconnect(); done(performance.now()); }
}).observe(document.body, {childList: true, subtree: true});
"""
TETHER_ROWS = "#domains tbody tr"  # the rows of tetherd's list (WAIT_ROWS's selector)
# Resolves with Date.now() once the state cell of domain arguments[0] reads arguments[1].
WAIT_STATE = """
const [name, want, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const cell = () => document.querySelector(`#domains tr[data-name="${name}"] .st`);
if (cell() && cell().textContent === want) { done(Date.now()); return; }
new MutationObserver((m, obs) => {
  if (cell() && cell().textContent === want) { obs.disconnect(); done(Date.now()); }
}).observe(document.querySelector('#domains tbody'),
           {childList: true, subtree: true, characterData: true});
"""


class Daemon:
    def __init__(self, tetherd, root, web, extra=()):
        self.root = root
        sock = os.path.join(root, "run/tether/tetherd.sock")
        if os.path.exists(sock):
            os.unlink(sock)
        argv = [tetherd, "--root", root] + (["--web-listen", "127.0.0.1:0"] if web else []) + \
            list(extra)
        self.log = open(os.path.join(root, "tetherd.log"), "a")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("tetherd did not come up")
            time.sleep(0.02)
        self.sock = sock

    def api(self, execute, args=None):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(60)
        s.connect(self.sock)
        msg = {"execute": execute, **({"arguments": args} if args else {})}
        s.sendall(json.dumps(msg).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        return json.loads(buf)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_s(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


def browser(tmp):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for f in CHROMIUM_FLAGS:
        opts.add_argument(f)
    opts.add_argument("--user-data-dir=" + os.path.join(tmp, "chromium"))
    drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    drv.set_script_timeout(30)
    return drv


def settle(seconds):
    """Idle time before a memory reading (a pause in the measurement, not a synchronisation)."""
    time.sleep(seconds)


def timed_gets(base, url, path, n=50):
    """(median ms, last reply's JSON) of n GETs of path with a session from the login url."""
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    lu = urllib.parse.urlsplit(url)
    conn.request("GET", f"{lu.path}?{lu.query}")
    r = conn.getresponse()
    r.read()
    cookie = r.headers.get("Set-Cookie", "").split(";")[0]
    times, body = [], b""
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        r = conn.getresponse()
        body = r.read()
        times.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[:200]!r}")
    conn.close()
    return statistics.median(times), json.loads(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--domains", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--chart-seconds", type=int, default=20)
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="tt-webbench-")
    results, failed = {}, False
    drv = None
    try:
        # The definitions, once (they stay in the root for every daemon below).
        d = Daemon(a.tetherd, root, web=False)
        for i in range(a.domains):
            r = d.api("define", {"xml": domain_xml(f"b{i:03d}", {}, kernel=False, agent=False,
                                                   memory_mib=64)})
            if "error" in r:
                raise RuntimeError(f"define b{i:03d}: {r['error']}")
        d.stop()
        drv = browser(root)

        # rss: ABBA rounds of console off (A) and on with an idle page (B)
        rss = {"A": [], "B": []}
        noise = []
        cpu = []
        for rnd in range(a.rounds):
            order = "ABBA" if rnd % 2 == 0 else "BAAB"
            got = {"A": [], "B": []}
            for which in order:
                d = Daemon(a.tetherd, root, web=which == "B")
                if which == "B":
                    url = d.api("web-url")["return"]["url"]
                    drv.get(url)
                    drv.execute_async_script(WAIT_ROWS, a.domains, TETHER_ROWS)
                settle(2)
                got[which].append(d.rss_kib())
                if which == "B":
                    c0, t0 = d.cpu_s(), time.monotonic()
                    settle(3)
                    cpu.append((d.cpu_s() - c0) * 1000 / (time.monotonic() - t0))
                    drv.get("about:blank")
                d.stop()
            rss["A"] += got["A"]
            rss["B"] += got["B"]
            noise.append(abs(got["A"][0] - got["A"][1]))
        results["rss"] = statistics.median(rss["B"]) - statistics.median(rss["A"])

        # paint and change, on one daemon with the console
        d = Daemon(a.tetherd, root, web=True)
        url = d.api("web-url")["return"]["url"]
        drv.get(url)
        drv.execute_async_script(WAIT_ROWS, a.domains, TETHER_ROWS)
        base = url.split("/login")[0]
        paints = []
        for _ in range(a.rounds * 2):
            drv.get(base + "/")
            paints.append(drv.execute_async_script(WAIT_ROWS, a.domains, TETHER_ROWS))
        results["paint"] = statistics.median(paints)

        changes = []
        for rnd in range(a.rounds):
            name = f"b{rnd:03d}"
            replied = {}

            def start():
                time.sleep(0.3)  # the observer in the page is installed meanwhile
                r = d.api("start", {"domain": name})
                replied["t"] = time.time() * 1000
                replied["r"] = r

            th = threading.Thread(target=start)
            th.start()
            seen = drv.execute_async_script(WAIT_STATE, name, "running")
            th.join()
            if "error" in replied.get("r", {}):
                raise RuntimeError(f"start {name}: {replied['r']['error']}")
            changes.append(seen - replied["t"])
            d.api("destroy", {"domain": name})
        results["change"] = statistics.median(changes)
        d.stop()

        # chart: one domain runs while the monitor samples it every second
        conf = os.path.join(root, "bench.conf")
        with open(conf, "w") as f:
            f.write("[monitor]\nhost-interval = 1\n")
        d = Daemon(a.tetherd, root, web=True, extra=["--config", conf])
        url = d.api("web-url")["return"]["url"]
        base = url.split("/login")[0]
        r = d.api("start", {"domain": "b000"})
        if "error" in r:
            raise RuntimeError(f"start b000: {r['error']}")
        settle(a.chart_seconds)
        results["chart"], hist = timed_gets(base, url, "/api/domains/b000/history")
        spark, _ = timed_gets(base, d.api("web-url")["return"]["url"], "/api/history")
        d.api("destroy", {"domain": "b000"})
        d.stop()

        print(f"{a.domains} defined domains, {a.rounds} rounds")
        print(f"paint   first paint of the list        {results['paint']:8.1f} ms   "
              f"(runs: {', '.join(f'{x:.0f}' for x in paints)})")
        print(f"change  state change reaching the page {results['change']:8.1f} ms   "
              f"(runs: {', '.join(f'{x:.0f}' for x in changes)}; negative: the page saw it "
              "before the CLI's reply arrived)")
        print(f"rss     tetherd RSS, console on - off  {results['rss']:8.0f} KiB  "
              f"(off: {statistics.median(rss['A'])} KiB, on: {statistics.median(rss['B'])} KiB; "
              f"noise off vs off: median {statistics.median(noise):.0f} KiB)")
        print(f"cpu     tetherd CPU, page open, idle    {statistics.median(cpu):8.2f} ms/s")
        print(f"chart   a chart's data request          {results['chart']:8.2f} ms   "
              f"({hist['points']} points)")
        print(f"spark   the list's sparkline request    {spark:8.2f} ms")
        for k, (op, goal) in TARGETS.items():
            ok = results[k] < goal if op == "<" else results[k] <= goal
            print(f"{k:7s} target {op} {goal:g}: {'ok' if ok else 'FAILED'}")
            failed = failed or not ok
    finally:
        if drv:
            drv.quit()
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
