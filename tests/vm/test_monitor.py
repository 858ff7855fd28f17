#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""tetherd's monitor service and its Prometheus metrics, against real components: QEMU 7.2
(TCG), the test guest with tether-agent and with Debian's qemu-ga, Debian's Prometheus server,
promtool and Pushgateway, all on loopback ports with temp data folders.

  tests/vm/test_monitor.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                           [--guest DIR] [--keep]

Guests (3 QEMUs at most):
  "mt"  tether-agent, the data disk at /mnt/data;
  "mq"  Debian's qemu-ga (memory comes through the /proc/meminfo file fallback), data disk;
  "mn"  no agent channel.

tetherd reads its [monitor] settings from ROOT/etc/tether/tetherd.conf (the default config file)
with 1-2 s intervals, serves /metrics and pushes to the Pushgateway. Checked: promtool finds no
problem in a scrape; Prometheus scraping tetherd answers the guest's filesystem usage as the agent
reports it, and sees it grow by the size of a file written in the guest; qemu-ga's guest yields
memory and load; a SIGSTOPped agent and a SIGSTOPped QEMU never delay /metrics (20 scrapes, each
< 50 ms) while their source ages grow; destroy and undefine remove a domain's series; the
Pushgateway receives the push and loses the group when tetherd exits.

A missing Prometheus, promtool or Pushgateway is skipped, or a failure when CI=true.
Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (write, REPO, Results, Tether, AgentError, domain_xml,  # noqa: E402
                          load_guest_env)

R = Results()
check = R.check
CI = os.environ.get("CI") == "true"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
MIB = 1 << 20
GUEST_SOURCES = ("load", "memory", "cpustats", "diskstats", "interfaces", "users",
                 "filesystems", "osinfo")


def wait_stopped(pid, timeout):
    """Until the kernel has stopped pid (state T), at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return True
        time.sleep(0.01)
    return False


def skip_or_fail(name, why):
    if CI:
        check(name, False, why + " (CI=true: the Prometheus tools are required)")
    else:
        print(f"SKIP {name}: {why}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, timeout=5):
    """(status, headers, body as str); status 0 when nothing answered."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as e:
        return 0, {}, str(e)


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """[(name, {labels}, value)] of an exposition text."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            out.append(("(unparsable)", {"line": line}, 0.0))
            continue
        labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                  for k, v in LABEL.findall(m.group(2) or "")}
        out.append((m.group(1), labels, float(m.group(3))))
    return out


class Metrics:
    """Scrapes of tetherd's /metrics."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.last = []

    def scrape(self):
        st, _, body = http("GET", self.url)
        self.last = parse_metrics(body) if st == 200 else []
        return self.last

    def get(self, name, **labels):
        """Values of the series name whose labels include labels (of the last scrape)."""
        return [v for n, lab, v in self.last
                if n == name and all(lab.get(k) == w for k, w in labels.items())]

    def one(self, name, **labels):
        v = self.get(name, **labels)
        return v[0] if len(v) == 1 else None

    def domain_series(self, dom):
        return [(n, lab) for n, lab, _ in self.last if lab.get("domain") == dom]

    def wait(self, cond, timeout=30, step=0.5):
        deadline = time.monotonic() + timeout
        while True:
            self.scrape()
            r = cond(self)
            if r or time.monotonic() > deadline:
                return r
            time.sleep(step)

    def timed_scrapes(self, n=20):
        """Seconds of each of n scrapes (a new connection each, as Prometheus' first)."""
        times = []
        for _ in range(n):
            t0 = time.monotonic()
            st, _, body = http("GET", self.url)
            times.append(time.monotonic() - t0 if st == 200 and "tether_up 1" in body else 99)
            time.sleep(0.05)
        return times


class Daemons:
    """Prometheus and Pushgateway of our own, by PID."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start(self, name, argv, ready_url, timeout=30):
        log = open(os.path.join(self.workdir, f"{name}.log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        log.close()
        self.procs.append(p)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                return None
            if http("GET", ready_url, timeout=2)[0] == 200:
                return p
            time.sleep(0.2)
        return None

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def prom_query(port, q):
    st, _, body = http("GET", f"http://127.0.0.1:{port}/api/v1/query?"
                       + urllib.parse.urlencode({"query": q}))
    if st != 200:
        return None
    res = json.loads(body).get("data", {}).get("result", [])
    return [float(r["value"][1]) for r in res]


def agent_fs_used(t, dom, mountpoint):
    """used-bytes of mountpoint in the agent's guest-get-fsinfo, through the tether CLI."""
    rc, out, err = t.cli("qemu-agent-command", dom, '{"execute":"guest-get-fsinfo"}')
    if rc != 0:
        return None
    for fs in json.loads(out).get("return", []):
        if fs.get("mountpoint") == mountpoint:
            return fs.get("used-bytes")
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--keep", action="store_true", help="keep the temp root")
    a = ap.parse_args()
    t = Tether(a.tetherd, a.tether, "/tmp/tt-monitor-")
    daemons = Daemons(t.root)
    try:
        return R.run_suite(t, run_with, a, daemons, keep=a.keep)
    finally:
        daemons.cleanup()


def run_with(t, a, daemons):
    """run(), then Prometheus and the Pushgateway stop before the temp root goes."""
    try:
        run(t, a, daemons)
    finally:
        daemons.cleanup()


def config_errors(t):
    """--config: unknown keys and bad values are errors naming the key and the line."""
    d = tempfile.mkdtemp(prefix="/tmp/tt-monitor-conf-")
    try:
        for text, want in (
                ("[monitor]\nhost-interval = 1\nnope = 2\n", "bad.conf:3: unknown key 'nope'"),
                ("[monitor]\n\nstats-interval = soon\n", "bad.conf:3: invalid value 'soon' for "
                                                         "stats-interval"),
                ("host-interval = 1\n", "bad.conf:1: key 'host-interval' outside a section "
                                         "([monitor], [security], [lifecycle] or [web])")):
            path = write(os.path.join(d, "bad.conf"), text)
            p = subprocess.run([t.tetherd, "--root", os.path.join(d, "root"), "--config", path],
                               capture_output=True, text=True, timeout=20)
            check(f"--config error: {want}", p.returncode != 0 and want in p.stderr,
                  f"rc {p.returncode} {p.stderr.strip()[-200:]!r}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(t, a, daemons):
    genv = load_guest_env(a.guest)
    root = t.root
    have_prom = all(os.access(p, os.X_OK) for p in (PROMETHEUS, PROMTOOL, PUSHGATEWAY))
    if not have_prom:
        skip_or_fail("prometheus, promtool and prometheus-pushgateway installed",
                     "apt-get install prometheus prometheus-pushgateway (tools/deps.sh)")
    have_qga = bool(genv.get("TETHER_GUEST_INITRD_QEMU_GA"))
    if not have_qga:
        skip_or_fail("qemu-ga guest available", "guest.env has no TETHER_GUEST_INITRD_QEMU_GA")

    config_errors(t)

    mport, pgport, pport = free_port(), free_port(), free_port()
    pg = None
    if have_prom:
        pg = daemons.start("pushgateway", [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{pgport}"],
                           f"http://127.0.0.1:{pgport}/-/ready")
        check("Pushgateway starts", pg is not None)
    # The default config file, ROOT/etc/tether/tetherd.conf; short intervals for the test.
    os.makedirs(os.path.join(root, "etc/tether"), exist_ok=True)
    write(os.path.join(root, "etc/tether/tetherd.conf"),
          "# test_monitor.py\n[monitor]\n"
          f"metrics-listen = 127.0.0.1:{mport}\n"
          + (f"push-url = http://127.0.0.1:{pgport}\n" if pg else "")
          + "host-interval = 1\nstats-interval = 1\nusers-interval = 2\n"
            "filesystems-interval = 1\nosinfo-interval = 2\n")
    t.start_daemon()
    m = Metrics(mport)

    st, hdrs, body = http("GET", m.url)
    check("GET /metrics: 200, text/plain; version=0.0.4",
          st == 200 and hdrs.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
          and "tether_up 1\n" in body, f"{st} {hdrs.get('Content-Type')!r}")
    check("GET /other: 404", http("GET", f"http://127.0.0.1:{mport}/other")[0] == 404)
    check("POST /metrics: 405", http("POST", m.url)[0] == 405)

    # ---- three guests ----
    guests = [("mt", genv["TETHER_GUEST_INITRD"], True, 256)]
    if have_qga:
        guests.append(("mq", genv["TETHER_GUEST_INITRD_QEMU_GA"], True, 256))
    guests.append(("mn", None, False, 128))
    for name, initrd, agent, mem in guests:
        disk = None
        if agent:
            disk = os.path.join(root, f"{name}.img")
            shutil.copyfile(genv["TETHER_GUEST_DATA"], disk)
        x = write(os.path.join(root, f"{name}.xml"),
                  domain_xml(name, genv, disk, initrd=initrd, memory_mib=mem, agent=agent))
        rc, out, err = t.cli("define", x)
        check(f"define {name}", rc == 0, out + err)
        rc, out, err = t.cli("start", name)
        check(f"start {name}", rc == 0, out + err)
    names = [g[0] for g in guests]
    for name, _, agent, _ in guests:
        if agent:
            try:
                t.agent(name).wait(150)
            except AgentError as e:
                check(f"{name}: agent answers", False, str(e))

    # Every guest source of the agent guests has data (1-2 s intervals).
    def full(mm):
        return all(mm.get("tether_guest_filesystem_used_bytes", domain=n, mountpoint="/mnt/data")
                   and mm.get("tether_guest_os_info", domain=n)
                   for n, _, agent, _ in guests if agent)
    ok = m.wait(full, 40)
    check("guest data of every agent guest appears in /metrics", ok,
          "" if ok else repr(sorted({n for n, lab, _ in m.last})))

    # ---- the exposition is valid ----
    text = http("GET", m.url)[2]
    if have_prom:
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        check("promtool check metrics: no problems", p.returncode == 0 and not
              (p.stdout + p.stderr).strip(), (p.stdout + p.stderr).strip()[:500])
    m.scrape()
    check("every series parses", not m.get("(unparsable)"))
    for n in names:
        check(f"{n}: tether_domain_state 1, tether_domain_info with uuid",
              m.one("tether_domain_state", domain=n) == 1
              and m.get("tether_domain_info", domain=n)
              and [lab.get("uuid") for nm, lab, _ in m.last
                   if nm == "tether_domain_info" and lab.get("domain") == n][0])
        check(f"{n}: host data (cpu, rss, vcpu, memory maximum)",
              (m.one("tether_domain_cpu_seconds_total", domain=n) or 0) > 0
              and (m.one("tether_domain_memory_rss_bytes", domain=n) or 0) > 0
              and m.get("tether_domain_vcpu_seconds_total", domain=n, vcpu="0")
              and m.one("tether_domain_memory_maximum_bytes", domain=n)
              == dict((g[0], g[3]) for g in guests)[n] * MIB,
              repr([(nm, lab, v) for nm, lab, v in m.last if lab.get("domain") == n
                    and nm.startswith("tether_domain_")][:12]))
        agent = dict((g[0], g[2]) for g in guests)[n]
        check(f"{n}: tether_guest_agent_up {int(agent)}",
              m.one("tether_guest_agent_up", domain=n) == int(agent),
              repr(m.get("tether_guest_agent_up", domain=n)))
    check("mt: block statistics of the data disk",
          m.get("tether_domain_block_write_requests_total", domain="mt"),
          repr([lab for nm, lab, _ in m.last if nm.startswith("tether_domain_block")][:4]))
    # cpustats is polled on its own (after fsinfo and osinfo on a busy machine): wait for it.
    ok = m.wait(lambda mm: (mm.one("tether_guest_cpu_seconds_total", domain="mt", cpu="0",
                                   mode="idle") or 0) > 0, 20)
    check("mt: guest cpu seconds (idle of cpu 0 > 0) from milliseconds", ok,
          repr(m.get("tether_guest_cpu_seconds_total", domain="mt")))
    check("mn: no guest series, no uuid outside info",
          not [n for n, lab in m.domain_series("mn") if n.startswith("tether_guest_")
               and n != "tether_guest_agent_up"]
          and not [n for n, lab, _ in m.last if "uuid" in lab and n != "tether_domain_info"])

    if have_qga:
        code_mem = t.agent("mq").check("guest-exec", {"path": "/bin/cat",
                                                      "arg": ["/proc/meminfo"],
                                                      "capture-output": True})
        memtotal = None
        for _ in range(50):
            st = t.agent("mq").check("guest-exec-status", {"pid": code_mem["pid"]})
            if st.get("exited"):
                out = base64.b64decode(st.get("out-data", "")).decode()
                memtotal = int(re.search(r"MemTotal:\s+(\d+) kB", out).group(1)) * 1024
                break
            time.sleep(0.1)
        m.scrape()
        check("mq (qemu-ga): memory total = the guest's MemTotal (file fallback)",
              memtotal is not None and m.one("tether_guest_memory_total_bytes",
                                             domain="mq") == memtotal,
              f"{m.get('tether_guest_memory_total_bytes', domain='mq')} vs {memtotal}")
        check("mq (qemu-ga): memory available and load present",
              (m.one("tether_guest_memory_available_bytes", domain="mq") or 0) > 0
              and m.one("tether_guest_load1", domain="mq") is not None
              and m.one("tether_guest_load15", domain="mq") is not None)

    # ---- Prometheus scraping tetherd ----
    fs_dom = "mq" if have_qga else "mt"
    if have_prom:
        os.makedirs(os.path.join(root, "prom-data"), exist_ok=True)
        write(os.path.join(root, "prometheus.yml"),
              "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
              "scrape_configs:\n  - job_name: tetherd\n    static_configs:\n"
              f"      - targets: ['127.0.0.1:{mport}']\n")
        prom = daemons.start("prometheus", [
            PROMETHEUS, f"--config.file={os.path.join(root, 'prometheus.yml')}",
            f"--storage.tsdb.path={os.path.join(root, 'prom-data')}",
            f"--web.listen-address=127.0.0.1:{pport}"],
            f"http://127.0.0.1:{pport}/-/ready", timeout=60)
        check("Prometheus starts", prom is not None)
        q = f'tether_guest_filesystem_used_bytes{{domain="{fs_dom}",mountpoint="/mnt/data"}}'

        def prom_value(timeout=20):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                r = prom_query(pport, q)
                if r:
                    return r[0]
                time.sleep(0.5)
            return None

        up = None
        for _ in range(40):
            up = prom_query(pport, 'up{job="tetherd"}')
            if up:
                break
            time.sleep(0.5)
        check("Prometheus: target tetherd is up", up == [1.0], repr(up))
        # The value Prometheus has equals what the agent reports (nothing writes meanwhile).
        got = want = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            got, want = prom_value(), agent_fs_used(t, fs_dom, "/mnt/data")
            if got is not None and want is not None and abs(got - want) <= 64 * 1024:
                break
            time.sleep(1)
        check(f"Prometheus answers {q} = the agent's guest-get-fsinfo used-bytes",
              got is not None and want is not None and abs(got - want) <= 64 * 1024,
              f"{got} vs {want}")
        before = got
        rc, out, err = t.cli("exec", fs_dom, "--", "/bin/dd", "if=/dev/zero",
                             "of=/mnt/data/f", "bs=1M", "count=8")
        rc2, out2, err2 = t.cli("exec", fs_dom, "--", "/bin/sync")
        check(f"{fs_dom}: 8 MiB written with dd, synced", rc == 0 and rc2 == 0, err + err2)
        after = None
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            after = prom_value()
            if after is not None and before is not None and after - before >= 7.5 * MIB:
                break
            time.sleep(1)
        delta = (after - before) if after is not None and before is not None else None
        check("... Prometheus sees the filesystem grow by about 8 MiB",
              delta is not None and 7.5 * MIB <= delta <= 9 * MIB,
              f"grew by {delta / MIB if delta is not None else None} MiB")

    # ---- Pushgateway ----
    if pg:
        def pushed():
            st, _, body = http("GET", f"http://127.0.0.1:{pgport}/metrics")
            return parse_metrics(body) if st == 200 else []
        got = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = pushed()
            if any(n == "tether_domain_state" and lab.get("domain") == "mt" for n, lab, _ in got):
                break
            time.sleep(0.5)
        check("Pushgateway has tether_up and tether_domain_state with job=\"tether\"",
              any(n == "tether_up" and lab.get("job") == "tether" and v == 1
                  for n, lab, v in got)
              and any(n == "tether_domain_state" and lab.get("job") == "tether"
                      and lab.get("domain") == "mt" for n, lab, v in got))

    # ---- the tether-agent SIGSTOPped inside mt ----
    def guest_ages(dom):
        m.scrape()
        return {s: m.one("tether_monitor_source_age_seconds", domain=dom, source=s)
                for s in GUEST_SOURCES}
    try:
        t.agent("mt").spawn("/bin/sh", ["-c", "sleep 1; kill -STOP $(pidof tether-agent)"],
                            capture=False)
        spawned = True
    except AgentError as e:
        spawned = False
        check("mt: SIGSTOP of the agent spawned", False, str(e))
    if spawned:
        # Stopped: a ping through tetherd gets no answer (the spawned shell stops it 1 s on).
        deadline = time.monotonic() + 30
        stopped = False
        while not stopped and time.monotonic() < deadline:
            stopped = not t.agent("mt").ping(timeout=1)
            if not stopped:
                time.sleep(0.1)
        check("mt: the agent stops answering", stopped)
        ages0 = guest_ages("mt")
        times = m.timed_scrapes(20)
        check("agent SIGSTOPped: 20 scrapes, each < 50 ms", max(times) < 0.05,
              f"max {max(times) * 1000:.1f} ms")
        ok = m.wait(lambda mm: mm.one("tether_guest_agent_up", domain="mt") == 0, 15)
        check("agent SIGSTOPped: tether_guest_agent_up{domain=\"mt\"} 0", ok)
        time.sleep(max(0.0, 5 - 1))
        ages1 = guest_ages("mt")
        grown = {s: (ages0[s], ages1[s]) for s in GUEST_SOURCES
                 if ages0[s] is not None and ages1[s] is not None}
        check("agent SIGSTOPped: every guest source age of mt grows",
              grown and all(b - a >= 3 for a, b in grown.values())
              and all(ages1[s] is not None for s in ("load", "memory", "filesystems")),
              repr(grown))
        check("... mq's agent still up meanwhile",
              not have_qga or m.one("tether_guest_agent_up", domain="mq") == 1)

    # ---- a SIGSTOPped QEMU ----
    stop_dom = "mq" if have_qga else "mt"
    qpid = t.qemu_pid(stop_dom)
    if qpid:
        os.kill(qpid, signal.SIGSTOP)
        try:
            check(f"QEMU of {stop_dom} is stopped (T in /proc/PID/stat)",
                  wait_stopped(qpid, 10))
            m.scrape()
            h0 = m.one("tether_monitor_source_age_seconds", domain=stop_dom, source="host")
            times = m.timed_scrapes(20)
            check(f"QEMU of {stop_dom} SIGSTOPped: 20 scrapes, each < 50 ms", max(times) < 0.05,
                  f"max {max(times) * 1000:.1f} ms")
            time.sleep(max(0.0, 6 - 2))
            m.scrape()
            h1 = m.one("tether_monitor_source_age_seconds", domain=stop_dom, source="host")
            check(f"QEMU of {stop_dom} SIGSTOPped: its host age grows",
                  h0 is not None and h1 is not None and h1 - h0 >= 4, f"{h0} -> {h1}")
            check("... the other domains' host data stays fresh",
                  (m.one("tether_monitor_source_age_seconds", domain="mn", source="host")
                   or 99) < 3.5)
        finally:
            os.kill(qpid, signal.SIGCONT)
        ok = m.wait(lambda mm: (mm.one("tether_monitor_source_age_seconds", domain=stop_dom,
                                       source="host") or 99) < 3, 20)
        check(f"QEMU of {stop_dom} continued: its host data is fresh again", ok)
    else:
        check(f"QEMU pid of {stop_dom} known", False)

    # ---- destroy and undefine ----
    rc, out, err = t.cli("destroy", "mn")
    check("destroy mn", rc == 0, out + err)
    m.scrape()
    left = sorted({n for n, lab in m.domain_series("mn")})
    check("destroyed mn: only tether_domain_info, _state (5) and _state_reason remain",
          left == ["tether_domain_info", "tether_domain_state", "tether_domain_state_reason"]
          and m.one("tether_domain_state", domain="mn") == 5, repr(left))
    rc, out, err = t.cli("undefine", "mn")
    check("undefine mn", rc == 0, out + err)
    m.scrape()
    check("undefined mn: no series left", not m.domain_series("mn"),
          repr(m.domain_series("mn")[:5]))
    text = http("GET", m.url)[2]
    if have_prom:
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        check("promtool check metrics after the stops: no problems", p.returncode == 0 and not
              (p.stdout + p.stderr).strip(), (p.stdout + p.stderr).strip()[:500])

    # ---- tetherd exits: its Pushgateway group goes ----
    for n in names:
        if n != "mn":
            t.cli("destroy", n)
    t0 = time.monotonic()
    t.stop_daemon()
    dt = time.monotonic() - t0
    check("tetherd exits within 3 s of SIGTERM", dt < 3, f"{dt:.2f} s")
    if pg:
        st, _, body = http("GET", f"http://127.0.0.1:{pgport}/metrics")
        check("Pushgateway: the group is deleted when tetherd exits",
              st == 200 and 'job="tether"' not in body,
              [ln for ln in body.splitlines() if 'job="tether"' in ln][:3])


if __name__ == "__main__":
    sys.exit(main())
