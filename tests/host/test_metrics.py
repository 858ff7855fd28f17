#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
tetherd's /metrics server and Pushgateway pushes without a guest: a real tetherd under a temp
--root, real QEMUs with no kernel (the host side of the monitor works over QMP and /proc), a
Python HTTP server standing in for the Pushgateway. The guest side is tests/vm/test_monitor.py's.

- --metrics-listen with port 0 logs the port the kernel chose; bad listen addresses and push
  URLs are refused with their error texts;
- GET /metrics: Content-Type of the exposition format, HELP and TYPE once per family, the
  domain's state and reason in libvirt's numbers as it is started, paused, resumed, destroyed;
  the host-side series of a running QEMU (vCPUs, memory), none for a shut-off domain; no series
  left after undefine; HEAD is 200 without a body, other methods 405 with Allow, other paths
  404;
- --push-url: a PUT of the same text to PREFIX/metrics/job/tether/instance/HOST after host
  rounds, and a DELETE of that group when tetherd stops.

    python3 test_metrics.py TETHERD TETHER
"""
import http.client
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

passed = 0
failed = 0
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
TYPE = "text/plain; version=0.0.4; charset=utf-8"


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"PASS {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL {what}{': ' + detail if detail else ''}", flush=True)
    return cond


XML = ("<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>"
       "<memory unit='MiB'>32</memory><vcpu>2</vcpu>"
       "<os><type arch='x86_64' machine='pc'>hvm</type></os>"
       "<devices><memballoon model='none'/></devices></domain>\n")
UUID = "c1170000-0000-4000-8000-0000000000%02x"


class Gateway(http.server.BaseHTTPRequestHandler):
    """A Pushgateway stand-in: records (method, path, content-type, body)."""
    seen = []

    def _record(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        Gateway.seen.append((self.command, self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_DELETE = do_POST = _record

    def log_message(self, *args):
        pass


class Daemon:
    def __init__(self, tetherd, tether, root, extra):
        self.tetherd, self.tether, self.root = tetherd, tether, root
        self.log = os.path.join(root, "tetherd.log")
        conf = os.path.join(root, "tetherd.conf")
        with open(conf, "w") as f:
            f.write("[monitor]\nhost-interval = 1\nstats-interval = 0\nusers-interval = 0\n"
                    "filesystems-interval = 0\nosinfo-interval = 0\n")
        with open(self.log, "a") as logf:
            self.proc = subprocess.Popen([tetherd, "--root", root, "--verbose", "--config", conf]
                                         + extra, stdout=logf, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", self.text())
            if m and os.path.exists(os.path.join(root, "run/tether/tetherd.sock")):
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("tetherd did not come up: " + self.text()[-2000:])

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def cli(self, *args):
        p = subprocess.run([self.tether, "--root", self.root] + list(args), capture_output=True,
                           text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def http(self, method, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request(method, path)
            r = c.getresponse()
            self.allow = r.getheader("Allow")
            return r.status, r.getheader("Content-Type"), r.read().decode()
        finally:
            c.close()

    def metrics(self):
        status, ctype, body = self.http("GET", "/metrics")
        if status != 200:
            raise RuntimeError(f"GET /metrics: {status}")
        return body

    def wait_metric(self, line, timeout=20):
        """Until LINE (a whole sample line without its value, or with it) is in a scrape."""
        deadline = time.monotonic() + timeout
        body = ""
        while time.monotonic() < deadline:
            body = self.metrics()
            if any(ln == line or ln.startswith(line + " ") for ln in body.splitlines()):
                return body
            time.sleep(0.1)
        return body

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def value(body, series):
    for ln in body.splitlines():
        if ln.startswith(series + " "):
            return float(ln.split(" ", 1)[1])
    return None


def families_once(body):
    """Every family's HELP and TYPE exactly once, each before its samples."""
    helps = re.findall(r"^# HELP (\S+) ", body, re.M)
    types = re.findall(r"^# TYPE (\S+) ", body, re.M)
    return len(helps) == len(set(helps)) and helps == types


def refusals(tetherd, tmp):
    for spec, want in (
            ("::1:9100", "invalid listen address '::1:9100': expected ADDR:PORT, [ADDR]:PORT "
                         "or PORT"),
            ("127.0.0.1:65536", "invalid listen address '127.0.0.1:65536'"),
            ("[::1", "invalid listen address '[::1'")):
        p = subprocess.run([tetherd, "--root", os.path.join(tmp, "r"), "--metrics-listen", spec],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode != 0 and want in p.stderr, f"--metrics-listen {spec} refused",
              f"rc {p.returncode} {p.stderr.strip()[-300:]!r}")
    for url, want in (
            ("https://127.0.0.1:9091", "invalid push URL 'https://127.0.0.1:9091': expected "
                                       "http://HOST[:PORT][/PATH]"),
            ("http://127.0.0.1:9091/?a=b", "expected http://HOST[:PORT][/PATH]"),
            ("http://no-such-host.invalid:9091", "push URL: cannot resolve 'no-such-host.invalid'")):
        p = subprocess.run([tetherd, "--root", os.path.join(tmp, "r"), "--push-url", url],
                           capture_output=True, text=True, timeout=20)
        check(p.returncode != 0 and want in p.stderr, f"--push-url {url} refused",
              f"rc {p.returncode} {p.stderr.strip()[-300:]!r}")


def scrapes(d, tmp):
    x = os.path.join(tmp, "ma.xml")
    with open(x, "w") as f:
        f.write(XML.format(name="ma", uuid=UUID % 1))
    rc, out, err = d.cli("define", x)
    check(rc == 0, "define ma", err)

    status, ctype, body = d.http("GET", "/metrics")
    check(status == 200 and ctype == TYPE, "GET /metrics: 200 and the exposition Content-Type",
          f"{status} {ctype!r}")
    lines = body.splitlines()
    check("tether_up 1" in lines, "tether_up 1")
    check(re.search(r'^tether_build_info\{version="[^"]+"\} 1$', body, re.M) is not None,
          "tether_build_info with the version")
    check(f'tether_domain_info{{domain="ma",uuid="{UUID % 1}",persistent="true"}} 1' in lines,
          "tether_domain_info: name, uuid, persistent", body[:1500])
    check('tether_domain_state{domain="ma"} 5' in lines, "shut off: state 5")
    check('tether_domain_state_reason{domain="ma"} 0' in lines, "never started: reason 0 (unknown)")
    check(not any(ln.startswith("tether_domain_cpu_seconds_total") for ln in lines),
          "no host-side series while shut off")
    check(families_once(body), "HELP and TYPE once per family, in order")

    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        status, _, _ = d.http(method, "/metrics")
        check(status == 405 and d.allow == "GET, HEAD", f"{method} /metrics: 405, Allow: GET, HEAD",
              f"{status} {d.allow!r}")
    status, ctype, body = d.http("HEAD", "/metrics")
    check((status, ctype, body) == (200, TYPE, ""), "HEAD /metrics: 200, no body",
          repr((status, ctype, body[:100])))
    for path in ("/", "/metrics/", "/metricsx", "/nope"):
        status, _, _ = d.http("GET", path)
        check(status == 404, f"GET {path}: 404", str(status))

    rc, out, err = d.cli("start", "ma")
    check(rc == 0, "start ma (no kernel: QEMU runs its firmware)", err)
    body = d.wait_metric('tether_domain_memory_maximum_bytes{domain="ma"}')
    lines = body.splitlines()
    check('tether_domain_state{domain="ma"} 1' in lines and
          'tether_domain_state_reason{domain="ma"} 1' in lines, "running (booted): 1 and 1")
    check('tether_domain_vcpus{domain="ma"} 2' in lines, "2 vCPUs")
    check('tether_domain_memory_maximum_bytes{domain="ma"} 33554432' in lines and
          'tether_domain_memory_current_bytes{domain="ma"} 33554432' in lines,
          "maximum and current memory: 32 MiB (no balloon)")
    rss = value(body, 'tether_domain_memory_rss_bytes{domain="ma"}')
    check(rss is not None and rss > 4 << 20, "QEMU's RSS is there and plausible", repr(rss))
    check(all(value(body, f'tether_domain_vcpu_seconds_total{{domain="ma",vcpu="{i}"}}')
              is not None for i in (0, 1)), "a CPU-time series per vCPU")
    check('tether_guest_agent_up{domain="ma"} 0' in lines, "no agent channel: agent up 0")
    check('tether_monitor_source_failing{domain="ma",source="host"} 0' in lines,
          "the host source does not fail")
    age = value(body, 'tether_monitor_source_age_seconds{domain="ma",source="host"}')
    check(age is not None and 0 <= age < 5, "the host source is fresh (interval 1 s)", repr(age))
    check(families_once(body), "HELP and TYPE once per family with a running domain")
    cpu0 = value(body, 'tether_domain_cpu_seconds_total{domain="ma"}')

    rc, out, err = d.cli("suspend", "ma")
    body = d.wait_metric('tether_domain_state{domain="ma"} 3')
    check('tether_domain_state{domain="ma"} 3' in body.splitlines() and
          'tether_domain_state_reason{domain="ma"} 1' in body.splitlines(), "paused (user): 3 and 1")
    rc, out, err = d.cli("resume", "ma")
    body = d.wait_metric('tether_domain_state{domain="ma"} 1')
    check('tether_domain_state_reason{domain="ma"} 5' in body.splitlines(),
          "running (unpaused): reason 5")
    # QEMU (SeaBIOS looking for a boot device) keeps a CPU busy: a later host round sees more.
    deadline = time.monotonic() + 10
    cpu1 = None
    while time.monotonic() < deadline:
        cpu1 = value(d.metrics(), 'tether_domain_cpu_seconds_total{domain="ma"}')
        if cpu0 is None or cpu1 is None or cpu1 > cpu0:
            break
        time.sleep(0.1)
    check(cpu0 is not None and cpu1 is not None and cpu1 > cpu0,
          "QEMU's CPU time grows while it runs", f"{cpu0} -> {cpu1}")

    rc, out, err = d.cli("destroy", "ma")
    body = d.wait_metric('tether_domain_state{domain="ma"} 5')
    lines = body.splitlines()
    check('tether_domain_state_reason{domain="ma"} 2' in lines, "shut off (destroyed): 5 and 2")
    check(not any(ln.startswith("tether_domain_memory_rss_bytes") for ln in lines),
          "destroyed: its host-side series are gone")
    rc, out, err = d.cli("undefine", "ma")
    body = d.metrics()
    check('domain="ma"' not in body, "undefined: no series name it", body[-500:])
    check("tether_up 1" in body.splitlines(), "tether_up 1 with no domains")


def pushes(tetherd, tether, tmp):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    root = os.path.join(tmp, "push")
    os.makedirs(root)
    d = Daemon(tetherd, tether, root, ["--metrics-listen", "127.0.0.1:0",
                                        "--push-url", f"http://127.0.0.1:{port}/pg/"])
    try:
        x = os.path.join(tmp, "mp.xml")
        with open(x, "w") as f:
            f.write(XML.format(name="mp", uuid=UUID % 2))
        d.cli("define", x)
        rc, out, err = d.cli("start", "mp")
        check(rc == 0, "start mp", err)
        host = socket.gethostname()
        want_path = f"/pg/metrics/job/tether/instance/{host}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                m == "PUT" and 'tether_domain_vcpus{domain="mp"} 2' in b
                for m, _, _, b in Gateway.seen):
            time.sleep(0.1)
        puts = [s for s in Gateway.seen if s[0] == "PUT"]
        check(puts and all(p[1] == want_path for p in puts),
              f"PUT to {want_path} (the trailing / of the prefix dropped)",
              repr([p[1] for p in puts][:3]))
        check(puts and all(p[2] == TYPE for p in puts), "pushed with the exposition Content-Type")
        check(any('tether_domain_vcpus{domain="mp"} 2' in p[3] and "tether_up 1" in p[3]
                  for p in puts), "a push holds the running domain's series")
        n = len(puts)
        t0 = time.monotonic()
        while time.monotonic() < t0 + 10 and \
                len([s for s in Gateway.seen if s[0] == "PUT"]) <= n + 1:
            time.sleep(0.05)
        dt = time.monotonic() - t0
        check(len([s for s in Gateway.seen if s[0] == "PUT"]) > n + 1 and dt < 4,
              "pushes repeat after host rounds (interval 1 s: two more within 4 s)",
              f"{dt:.1f} s")
        d.cli("destroy", "mp")
    finally:
        rc = d.stop()
        srv.shutdown()
    dels = [s for s in Gateway.seen if s[0] == "DELETE"]
    check(len(dels) == 1 and dels[0][1] == f"/pg/metrics/job/tether/instance/{socket.gethostname()}",
          "tetherd DELETEs its group once when it stops", repr(dels))
    check(rc == 0, "tetherd exits 0 on SIGTERM", str(rc))
    text = d.text()
    check(not any(m in text for m in SANITIZER_MARKS), "no sanitizer report (push daemon)",
          text[-2000:])


def main():
    tetherd, tether = (os.path.abspath(p) for p in sys.argv[1:3])
    tmp = tempfile.mkdtemp(prefix="/tmp/tt-metrics-")
    d = None
    try:
        refusals(tetherd, tmp)
        root = os.path.join(tmp, "main")
        os.makedirs(root)
        d = Daemon(tetherd, tether, root, ["--metrics-listen", "127.0.0.1:0"])
        check(d.port and d.port != 0, "port 0: the log names the port the kernel chose",
              str(d.port))
        scrapes(d, tmp)
        rc = d.stop()
        check(rc == 0, "tetherd exits 0 on SIGTERM", str(rc))
        text = d.text()
        check(not any(m in text for m in SANITIZER_MARKS), "no sanitizer report", text[-2000:])
        d = None
        pushes(tetherd, tether, tmp)
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(False, "test ran to the end", repr(e))
    finally:
        if d is not None:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
