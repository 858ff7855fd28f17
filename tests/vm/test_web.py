#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""tetherd's web console (issue 12, first and second increments) in a real Chromium (Debian's
chromium, chromium-driver and python3-selenium), with one booted test guest and one domain that
starts from the page.

  tests/vm/test_web.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                       [--guest DIR] [--keep]

Checks: a non-loopback --web-listen without TLS is refused at start, and served over TLS with
--web-cert/--web-key; `tether web-url` without a console; [web] in the config file; login through `tether web-url` (cookie
flags), a wrong, a replayed and a missing token get the 403 page (logged with a rate limit);
no session, no page; the CSP and the other headers, and no inline script or style in any page;
the list shows every domain with its state (the CLI's words); start, suspend, resume, save
(managedsave), start from the saved image and shutdown from the page change the state cell
without a reload; destroy asks first (cancel keeps it running);
a POST without or with a wrong CSRF token is refused; the agent's IP and OS appear in the list
and on the domain's page; a member of tetherd's group gets a link, a non-member does not;
logout ends the session and its event streams; a closed event stream is noticed.
Second increment: the console page connects noVNC (Debian's novnc, served under /novnc/) through
tetherd's WebSocket proxy, a screenshot of its canvas is not blank, keys typed into the canvas
reach the guest's tty1 (read back through the agent from /dev/vcs1) and light more of the screen;
the WebSocket is refused without the session cookie, with a foreign or no Origin, with a bad
key, for a domain that is not running; its handshake, the RFB banner, ping/pong and the close
of a text frame by hand; a console that reads nothing keeps tetherd's RSS bounded; a VNC
password is asked for in the page; scale, Ctrl+Alt+Del and full screen; the charts (Chart.js)
gain points over monitor rounds (a 2 s host interval), the history JSON has equal columns and
at most 360 points, the list draws CPU sparklines, library paths cannot leave their folders.
Screenshots go to BUILD/web-screenshots/. Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import base64
import grp
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import REPO, Results, Tether, domain_xml, load_guest_env, write  # noqa: E402

try:
    import selenium  # noqa: F401
except ImportError:
    # Debian's python3-selenium, when python3 is another build of the same version (pyenv).
    sys.path.append("/usr/lib/python3/dist-packages")

R = Results()
check = R.check

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
LOGIN_REFUSED = ("<h1>403 Forbidden</h1>\n<p>This login link is wrong, expired or already used. "
                 "Run <code>tether web-url</code> on the host for a new one.</p>")
NOT_LOGGED_IN = ("<h1>403 Forbidden</h1>\n<p>You are not logged in, or your session has ended. "
                 "Run <code>tether web-url</code> on the host for a login link.</p>")
NO_TLS = ("web: refusing to serve the console on '0.0.0.0:0' without TLS: only a loopback "
          "address may use plain HTTP; give --web-cert and --web-key (or [web] cert and key)")
CONSOLE_OFF = ("error: the web console is off: start tetherd with --web-listen [ADDR:]PORT "
               "(or [web] listen in its config)")
DENIED = ("error: access denied: only root or members of the tetherd group may use this "
          "socket")
URL_RE = re.compile(r"^http://127\.0\.0\.1:(\d+)/login\?token=([0-9a-f]{32})$")
PAGES = ("/", "/domain.html")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1400,900")
# The guest's NIC: QEMU's user network, whose DHCP gives the guest 10.0.2.15.
NIC = """    <interface type='user'>
      <model type='virtio'/>
    </interface>
"""
# The console: QEMU's VNC server on loopback (autoport), the default VGA card.
VNC = "    <graphics type='vnc' autoport='yes' listen='127.0.0.1'/>\n"
# A VGA card: without one QEMU's VNC shows its own text console, and keys go there.
VGA = "    <video>\n      <model type='vga'/>\n    </video>\n"
VNC_PASSWORD = "tether7"
# One monitor round every 2 s: the charts gain points while the test watches.
MONITOR_CONF = "[monitor]\nhost-interval = 2\nstats-interval = 2\n"
HISTORY_KEYS = ["cpu", "disk_read", "disk_write", "domain", "memory", "net_rx", "net_tx",
                "points", "rootfs", "t"]


class WebTether(Tether):
    """Tether with tetherd's extra options (the console, --group)."""

    def __init__(self, tetherd, tether, prefix, extra):
        super().__init__(tetherd, tether, prefix)
        self.extra = extra

    def start_daemon(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([self.tetherd, "--root", self.root, "--verbose"] +
                                     self.extra, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not os.path.exists(self.sock):
            if self.proc.poll() is not None:
                raise RuntimeError("tetherd exited at start")
            time.sleep(0.05)
        if not os.path.exists(self.sock):
            raise RuntimeError("tetherd did not come up")


def wait_for(fn, timeout, step=0.1):
    """fn()'s first true value within timeout seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def request(base, path, method="GET", headers=None):
    """(status, headers, body) of one request to base (http[s]://HOST:PORT)."""
    u = urllib.parse.urlsplit(base)
    if u.scheme == "https":
        # The handshake is what is tested, not the test certificate's chain.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", u.port, timeout=15, context=ctx)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read().decode(errors="replace")
    finally:
        conn.close()


def log_text(t):
    with open(t.log, errors="replace") as f:
        return f.read()


def web_url(t, prefix=()):
    p = subprocess.run(list(prefix) + [t.tether, "--root", t.root, "web-url"],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr.strip()


def login(base, url):
    """Exchange a login URL's token for a session: (status, headers, cookie 'name=value')."""
    u = urllib.parse.urlsplit(url)
    st, h, body = request(base, f"{u.path}?{u.query}")
    m = re.match(r"(tether_session=[0-9a-f]+);", h.get("Set-Cookie", ""))
    return st, h, m.group(1) if m else None


def start_checks(a, tmp):
    """What tetherd refuses or does at start, without a guest."""
    root = os.path.join(tmp, "refused")
    p = subprocess.run([a.tetherd, "--root", root, "--web-listen", "0.0.0.0:0"],
                       capture_output=True, text=True, timeout=30)
    check("a non-loopback --web-listen without TLS is refused at start",
          p.returncode == 1 and NO_TLS in p.stderr,
          "" if NO_TLS in p.stderr else f"{p.returncode} {p.stderr[-400:]}")
    check("... before the control socket is made",
          not os.path.exists(os.path.join(root, "run/tether/tetherd.sock")))

    # TLS: a self-signed certificate for 127.0.0.1.
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "1", "-subj", "/CN=tether-test",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    if not check("openssl makes a test certificate", p.returncode == 0, p.stderr[-300:]):
        return
    t = WebTether(a.tetherd, a.tether, "/tmp/tt-webtls-",
                  ["--web-listen", "0.0.0.0:0", "--web-cert", cert, "--web-key", key])
    try:
        t.start_daemon()
        rc, out, err = web_url(t)
        m = re.match(r"^https://[^/]+:(\d+)/login\?token=[0-9a-f]{32}$", out.strip())
        check("with --web-cert/--web-key on 0.0.0.0: web-url prints an https:// link",
              rc == 0 and m, repr(out) + err)
        if m:
            base = f"https://127.0.0.1:{m.group(1)}"
            st, h, cookie = login(base, out.strip())
            check("the TLS login sets a Secure cookie",
                  st == 303 and "; Secure" in h.get("Set-Cookie", ""),
                  f"{st} {h.get('Set-Cookie')}")
            try:
                st, _, _ = request(f"http://127.0.0.1:{m.group(1)}", "/")
            except (OSError, http.client.HTTPException) as e:
                st = repr(e)
            check("plain HTTP on the TLS port gets no page", st != 200, str(st))
    finally:
        t.cleanup(keep=a.keep)
    report = t.sanitizer_report()
    check("no sanitizer report from the TLS tetherd", report is None, report or "")

    t = WebTether(a.tetherd, a.tether, "/tmp/tt-weboff-", [])
    try:
        t.start_daemon()
        rc, out, err = web_url(t)
        check("web-url without --web-listen: the console is off",
              rc == 1 and err == CONSOLE_OFF, repr(out) + err)
        t.stop_daemon()
        conf = write(os.path.join(t.root, "tetherd.conf"),
                     "[web]\nlisten = 127.0.0.1:0\nroot = %s\n" %
                     os.path.join(REPO, "src/host/web"))
        t.extra = ["--config", conf]
        t.start_daemon()
        rc, out, err = web_url(t)
        check("[web] listen in the config file turns the console on",
              rc == 0 and URL_RE.match(out.strip()), repr(out) + err)
    finally:
        t.cleanup(keep=a.keep)


def browser(tmp):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for f in CHROMIUM_FLAGS:
        opts.add_argument(f)
    opts.add_argument("--user-data-dir=" + os.path.join(tmp, "chromium"))
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def row_text(drv, name, cls):
    from selenium.webdriver.common.by import By
    try:
        return drv.find_element(By.CSS_SELECTOR,
                                f'#domains tr[data-name="{name}"] .{cls}').text
    except Exception:
        return None


def click(drv, name, action):
    from selenium.webdriver.common.by import By
    b = drv.find_element(By.CSS_SELECTOR,
                         f'#domains tr[data-name="{name}"] button[data-action="{action}"]')
    enabled = wait_for(lambda: b.is_enabled(), 10)
    b.click()
    return enabled


def page_state(drv, name):
    st, reason = row_text(drv, name, "st"), row_text(drv, name, "reason")
    return f"{st} {reason}" if st is not None else None


def wait_page_state(drv, t, name, want, timeout):
    """The state cell turns to want (the CLI's 'state (reason)'), and the CLI agrees."""
    t0 = time.monotonic()
    got = wait_for(lambda: page_state(drv, name) == want, timeout) and want
    took = time.monotonic() - t0
    return got == want, f"{page_state(drv, name)!r} after {took:.2f} s (CLI: {t.state(name)})"


def ws_open(port, path, headers):
    """A WebSocket handshake by hand: (status line, {header: value}, socket or None)."""
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    h = {"Host": f"127.0.0.1:{port}", "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13",
         "Origin": f"http://127.0.0.1:{port}"}
    h.update(headers)
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall((f"GET {path} HTTP/1.1\r\n" +
               "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None) +
               "\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    hdrs = dict(x.split(": ", 1) for x in lines[1:] if ": " in x)
    if not lines[0].startswith("HTTP/1.1 101"):
        s.close()
        return lines[0], hdrs, None, key, rest
    return lines[0], hdrs, s, key, rest


def ws_frame(s, first):
    """One server frame: (opcode, payload); reads what the handshake left first."""
    buf = first
    while True:
        if len(buf) >= 2:
            n, hl = buf[1] & 0x7f, 2
            if n == 126 and len(buf) >= 4:
                n, hl = int.from_bytes(buf[2:4], "big"), 4
            elif n == 127 and len(buf) >= 10:
                n, hl = int.from_bytes(buf[2:10], "big"), 10
            if n < 126 or hl > 2:
                if len(buf) >= hl + n:
                    return buf[0] & 0x0f, buf[hl:hl + n], buf[hl + n:]
        chunk = s.recv(65536)
        if not chunk:
            return None, b"", b""
        buf += chunk


def ws_send(s, opcode, payload):
    mask = secrets.token_bytes(4)
    n = len(payload)
    head = bytes([0x80 | opcode, 0x80 | n]) if n < 126 else \
        bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def accept_of(key):
    import hashlib
    return base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


def png_stats(png):
    """(distinct colours, share of pixels that are not the most common colour) of a PNG."""
    import io
    from PIL import Image
    img = Image.open(io.BytesIO(png)).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 24) or []
    total = img.width * img.height
    top = max((c for c, _ in colours), default=total)
    return len(colours), (total - top) / max(total, 1)


def tty1_text(agent):
    """The guest's first virtual console (its VGA text screen), read by the agent."""
    h = agent.check("guest-file-open", {"path": "/dev/vcs1", "mode": "r"})
    try:
        r = agent.check("guest-file-read", {"handle": h, "count": 8192})
        return base64.b64decode(r.get("buf-b64", "")).decode(errors="replace")
    finally:
        agent.check("guest-file-close", {"handle": h})


CANVAS_WIDTH = "return document.querySelector('#screen canvas').width"


def js(drv, script, default=None):
    try:
        return drv.execute_script(script)
    except Exception:
        return default


def console_checks(t, drv, base, auth, agent, shots):
    """The guest's screen through noVNC and tetherd's WebSocket proxy, and its refusals."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    port = urllib.parse.urlsplit(base).port
    path = "/api/domains/web1/vnc"
    # ---- the proxy by hand ----
    line, h, s, key, rest = ws_open(port, path, {})
    check("a WebSocket without the session cookie is refused (403)",
          s is None and line == "HTTP/1.1 403 Forbidden", line)
    line, h, s, key, rest = ws_open(port, path, dict(auth, Origin="http://evil.example"))
    check("a WebSocket with a foreign Origin is refused (403)",
          s is None and line == "HTTP/1.1 403 Forbidden", line)
    line, h, s, key, rest = ws_open(port, path, dict(auth, Origin=None))
    check("... and one with no Origin", s is None and line == "HTTP/1.1 403 Forbidden", line)
    line, h, s, key, rest = ws_open(port, path, dict(auth, **{"Sec-WebSocket-Key": "short"}))
    check("a WebSocket with a bad key: 400", s is None and line == "HTTP/1.1 400 Bad Request",
          line)
    line, h, s, key, rest = ws_open(port, "/api/domains/web2/vnc", auth)
    check("the console of a domain that is not running: 409",
          s is None and line == "HTTP/1.1 409 Conflict", line)
    line, h, s, key, rest = ws_open(port, path, dict(auth, **{"Sec-WebSocket-Protocol":
                                                              "binary"}))
    ok = s is not None and h.get("Sec-WebSocket-Accept") == accept_of(key) and \
        h.get("Sec-WebSocket-Protocol") == "binary"
    check("with the cookie and this Origin: 101 with the RFC 6455 accept key", ok,
          f"{line} {h}")
    if s:
        try:
            op, payload, rest = ws_frame(s, rest)
            check("... and the first binary frame is the VNC server's RFB banner",
                  op == 2 and payload == b"RFB 003.008\n", f"{op} {payload!r}")
            ws_send(s, 0x9, b"tether")
            op, payload, rest = ws_frame(s, rest)
            check("a ping gets its pong", (op, payload) == (0xa, b"tether"), f"{op} {payload!r}")
            ws_send(s, 0x1, b"text")
            op, payload, rest = ws_frame(s, rest)
            check("a text frame closes the socket with 1003",
                  op == 8 and payload[:2] == (1003).to_bytes(2, "big"), f"{op} {payload!r}")
        except OSError as e:
            check("the proxy answers", False, repr(e))
        finally:
            s.close()

    # ---- the page ----
    drv.get(base + "/console.html?name=web1")
    connected = wait_for(lambda: js(drv, "return document.body.dataset.vnc") == "connected", 30)
    check("the console page connects noVNC to the guest's screen", connected,
          js(drv, "return document.getElementById('message').textContent"))
    canvas = drv.find_element(By.CSS_SELECTOR, "#screen canvas")

    def shot():
        try:
            return canvas.screenshot_as_png
        except Exception:
            return b""
    # The guest's tty1 asks for Enter once booted (busybox askfirst); the screen shows it once
    # the guest's frame buffer console took over from the BIOS's 720x400 text mode.
    ready = wait_for(lambda: "activate this console" in tty1_text(agent) and
                     js(drv, CANVAS_WIDTH, 0) >= 800,
                     60, 0.5)
    before = wait_for(lambda: (lambda p: p if png_stats(p)[0] >= 2 and png_stats(p)[1] > 0.0005
                               else None)(shot()), 20, 0.5) or shot()
    with open(os.path.join(shots, "console.png"), "wb") as f:
        f.write(before)
    colours, lit = png_stats(before) if before else (0, 0)
    check("a screenshot of the console's canvas is not blank (the guest's text screen)",
          ready and colours >= 2 and lit > 0.0005,
          f"{colours} colours, {lit:.4f} of the pixels lit; tty1 ready {bool(ready)}, width "
          f"{js(drv, CANVAS_WIDTH)}")
    # Type into the guest through noVNC's keyboard: Enter starts a shell, then a command.
    canvas.click()
    canvas.send_keys(Keys.ENTER)
    wait_for(lambda: "#" in tty1_text(agent).split("activate this console")[-1], 15, 0.3)
    canvas.send_keys("echo tether$((6*7))" + Keys.ENTER)
    typed = wait_for(lambda: "tether42" in tty1_text(agent), 20, 0.3)
    check("keys typed in the page reach the guest's console (its shell printed tether42)",
          typed, " ".join(tty1_text(agent).split())[-300:])
    # More text on the screen (the shell's banner, the command, its output): not a cursor blink.
    changed = wait_for(lambda: (lambda p: p if p and png_stats(p)[1] >= 1.5 * lit else None)(
        shot()), 10, 0.3)
    if changed:
        with open(os.path.join(shots, "console-typed.png"), "wb") as f:
            f.write(changed)
    check("... and the screenshot changed: more of it is lit", changed is not None,
          f"{lit:.4f} before, {png_stats(shot())[1]:.4f} after")
    # Scale to window, Ctrl+Alt+Del and Full screen are there; scale follows the toggle.
    check("scale to window is on by default", js(drv, "return window.tetherRfb.scaleViewport"))
    drv.find_element(By.ID, "scale").click()
    check("the toggle turns scaling off",
          wait_for(lambda: js(drv, "return window.tetherRfb.scaleViewport") is False, 5))
    check("a Ctrl+Alt+Del and a Full screen button",
          drv.find_element(By.ID, "cad").text == "Ctrl+Alt+Del" and
          drv.find_element(By.ID, "fullscreen").text == "Full screen")
    drv.find_element(By.ID, "fullscreen").click()
    check("Full screen puts the page in full screen",
          wait_for(lambda: js(drv, "return document.fullscreenElement !== null"), 5))
    js(drv, "document.exitFullscreen()")
    drv.save_screenshot(os.path.join(shots, "console-page.png"))
    slow_reader_check(t, port, auth)
    logout_closes_console(t, base, port)


def logout_closes_console(t, base, port):
    """A console ends with its session: logout closes the WebSocket (1001, going away)."""
    rc, out, err = t.cli("web-url")
    st, h, cookie = login(base, out.strip())
    own = {"Cookie": cookie or ""}
    line, h, s, key, rest = ws_open(port, "/api/domains/web1/vnc", own)
    if not check("a console of a fresh session opens", s is not None, line):
        return
    try:
        op, banner, rest = ws_frame(s, rest)
        st, h, body = request(base, "/api/session", headers=own)
        csrf = json.loads(body)["csrf"]
        request(base, "/api/logout", "POST", headers=dict(own, **{"X-CSRF-Token": csrf}))
        op, payload, rest = ws_frame(s, rest)
        check("logout closes that session's console (close 1001)",
              op == 8 and payload[:2] == (1001).to_bytes(2, "big"), f"{op} {payload!r}")
    except (OSError, ValueError) as e:
        check("logout closes that session's console", False, repr(e))
    finally:
        s.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def slow_reader_check(t, port, auth):
    """A browser that asks for screens and reads nothing: tetherd stops reading VNC."""
    line, h, s, key, rest = ws_open(port, "/api/domains/web1/vnc", auth)
    if not check("a second console opens", s is not None, line):
        return
    try:
        op, banner, rest = ws_frame(s, rest)
        ws_send(s, 2, b"RFB 003.008\n")
        op, sec, rest = ws_frame(s, rest)
        ws_send(s, 2, b"\x01")
        op, result, rest = ws_frame(s, rest)
        ws_send(s, 2, b"\x01")
        op, init, rest = ws_frame(s, rest)
        w, hgt = int.from_bytes(init[0:2], "big"), int.from_bytes(init[2:4], "big")
        before = rss_kib(t.proc.pid)
        # Full screens, raw (4 bytes a pixel), and nothing read for a while.
        request_ = bytes([3, 0, 0, 0, 0, 0]) + w.to_bytes(2, "big") + hgt.to_bytes(2, "big")
        for _ in range(20):
            ws_send(s, 2, request_)
        peak = before
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            peak = max(peak, rss_kib(t.proc.pid))
            time.sleep(0.1)
        got, s_timeout = len(rest), s.gettimeout()
        s.settimeout(2)
        try:
            while got < 3 * w * hgt * 4:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        except OSError:
            pass
        # A sanitizer's quarantine keeps freed buffers in RSS: there only the flow is checked.
        with open(f"/proc/{t.proc.pid}/maps") as f:
            sanitized = "libasan" in f.read()
        check("a browser that does not read: tetherd's memory stays bounded (stops reading VNC)"
              + (" (RSS not checked: sanitizer build)" if sanitized else ""),
              (sanitized or peak - before < 2048) and got >= w * hgt * 4,
              f"RSS {before} KiB -> peak {peak} KiB; {got} bytes read afterwards "
              f"({w}x{hgt} screens)")
    except OSError as e:
        check("the slow console", False, repr(e))
    finally:
        s.close()


def password_checks(t, drv, base):
    """A domain with a VNC password: the page asks for it, noVNC answers VNC's challenge."""
    from selenium.webdriver.common.by import By

    rc, out, err = t.cli("start", "web2")
    check("start web2 (VNC with a password)", rc == 0, err)
    drv.get(base + "/console.html?name=web2")
    form = drv.find_element(By.ID, "password-form")
    asked = wait_for(lambda: form.is_displayed(), 30)
    check("a VNC password is asked for in the page", asked)
    if asked:
        drv.find_element(By.ID, "password").send_keys(VNC_PASSWORD)
        form.find_element(By.CSS_SELECTOR, "button").click()
    check("... and with it the console connects",
          wait_for(lambda: js(drv, "return document.body.dataset.vnc") == "connected", 20),
          js(drv, "return document.getElementById('message').textContent"))
    rc, out, err = t.cli("destroy", "web2")


def chart_checks(t, drv, base, auth, shots):
    """The domain page's charts gain points; the history endpoint is bounded."""
    from selenium.webdriver.common.by import By

    drv.get(base + "/domain.html?name=web1")

    def points():
        return js(drv, "const c = window.tetherCharts && window.tetherCharts['chart-cpu'];"
                       "return c ? c.data.datasets[0].data.length : -1;", -1)
    first = wait_for(lambda: points() >= 1 and points(), 30)
    grew = wait_for(lambda: points() >= (first or 0) + 2, 40, 0.5)
    check("the CPU chart gains points (two monitor rounds while the page is open)",
          first and grew, f"first {first}, now {points()}")
    check("every chart is drawn by Chart.js",
          js(drv, "return Object.keys(window.tetherCharts).sort().join(' ')") ==
          "chart-cpu chart-disk chart-memory chart-net chart-rootfs",
          js(drv, "return Object.keys(window.tetherCharts || {}).join(' ')"))
    mem = js(drv, "return window.tetherCharts['chart-memory'].data.datasets[0].data"
                  ".filter((v) => v !== null).length", 0)
    check("the guest memory chart has values (from the agent)", mem and mem > 0, str(mem))
    drv.find_element(By.CSS_SELECTOR, ".charts").screenshot(os.path.join(shots, "charts.png"))
    st, h, body = request(base, "/api/domains/web1/history", headers=auth)
    j = json.loads(body) if st == 200 else {}
    n = j.get("points", -1)
    check("GET /api/domains/web1/history: columns of equal length, at most 360 points",
          st == 200 and sorted(j) == HISTORY_KEYS and 0 < n <= 360 and
          all(len(j[k]) == n for k in HISTORY_KEYS if isinstance(j[k], list)),
          f"{st} {body[:300]}")
    check("... CPU in % and timestamps that increase",
          all(v is None or 0 <= v <= 1000 for v in j.get("cpu", [])) and
          j.get("t", []) == sorted(j.get("t", [])), body[:300])
    st, h, body = request(base, "/api/domains/web1/history")
    check("no session: no history", st == 403, f"{st}")
    st, h, body = request(base, "/api/history", headers=auth)
    spark = json.loads(body).get("web1", []) if st == 200 else []
    check("GET /api/history: the sparklines' CPU points (60 at most)",
          st == 200 and 0 < len(spark) <= 60, body[:200])
    drv.get(base + "/")
    drawn = wait_for(lambda: int(js(drv, "const c = document.querySelector("
                                         "'#domains tr[data-name=\"web1\"] canvas.spark');"
                                         "return c ? c.dataset.points || 0 : 0;", 0)) >= 2, 20)
    check("the list draws a CPU sparkline for web1", drawn)
    for name in ("core/rfb.js", "vendor/pako/lib/zlib/inflate.js"):
        st, h, body = request(base, "/novnc/" + name, headers=auth)
        check(f"/novnc/{name} is served from Debian's novnc",
              st == 200 and h.get("Content-Type") == "text/javascript; charset=utf-8", str(st))
    for path in ("/novnc/../../etc/passwd", "/novnc/core/%2e%2e/%2e%2e/x.js", "/novnc/vnc.html"):
        st, h, body = request(base, path, headers=auth)
        check(f"{path} is not served", st == 404, str(st))


def snapshot_checks(t, drv, base, auth):
    """The domain's page lists its snapshots (a shut-off domain's: qemu-img snapshot)."""
    from selenium.webdriver.common.by import By

    img = os.path.join(t.root, "web3.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", img, "16M"], check=True)
    write(os.path.join(t.root, "web3.xml"), f"""<domain type='qemu'>
  <name>web3</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{img}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
""")
    rc, out, err = t.cli("define", os.path.join(t.root, "web3.xml"))
    check("define web3 (a qcow2 disk, shut off)", rc == 0, err)
    drv.get(base + "/domain.html?name=web3")
    note = wait_for(lambda: drv.find_element(By.ID, "snapshots-note").text or None, 10)
    check("web3's page: 'No snapshots.'", note == "No snapshots.", repr(note))
    for args in (("before-upgrade", "--description", "taken by the web test"),
                 ("after-upgrade",)):
        rc, out, err = t.cli("snapshot-create-as", "web3", *args)
        check(f"snapshot-create-as web3 {args[0]}", rc == 0, err)
    st, h, body = request(base, "/api/domains/web3", headers=auth)
    snaps = json.loads(body).get("snapshots", []) if st == 200 else []
    got = sorted((x["name"], x.get("parent"), x["state"], x["current"], x.get("description"))
                 for x in snaps)
    check("GET /api/domains/web3: its two snapshots, parent and current as snapshot-list says",
          got == [("after-upgrade", "before-upgrade", "shutoff", True, None),
                  ("before-upgrade", None, "shutoff", False, "taken by the web test")],
          body[:600])
    drv.get(base + "/domain.html?name=web3")

    def rows():
        try:
            return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                    for tr in drv.find_elements(By.CSS_SELECTOR, "#snapshots tbody tr")]
        except Exception:
            return []

    wait_for(lambda: len(rows()) == 2, 10)
    got = [[r[0], r[2], r[3], r[4]] for r in rows()]
    check("the page's snapshot table: newest first, the current one marked",
          got == [["after-upgrade (current)", "shutoff", "before-upgrade", ""],
                  ["before-upgrade", "shutoff", "", "taken by the web test"]] and
          all(r[1] for r in rows()) and
          drv.find_element(By.ID, "snapshots-note").text == "", repr(rows()))


def run(t, a, genv, shots):
    from selenium.webdriver.common.by import By

    group = grp.getgrgid(100).gr_name if any(g.gr_gid == 100 for g in grp.getgrall()) else None
    start_checks(a, t.root)
    conf = write(os.path.join(t.root, "monitor.conf"), MONITOR_CONF)
    t.extra = (["--config", conf, "--web-listen", "127.0.0.1:0"] +
               (["--group", group] if group else []))
    t.start_daemon()
    # A copy of the data disk: the guest mounts it, and the agent lists it as a filesystem.
    disk = os.path.join(t.root, "web1-data.img")
    shutil.copyfile(genv["TETHER_GUEST_DATA"], disk)
    write(os.path.join(t.root, "web1.xml"),
          domain_xml("web1", genv, disk=disk, memory_mib=256, devices_extra=NIC + VNC + VGA,
                     append_extra=" tether.display"))
    # web2 needs no kernel: it only has to run (the BIOS finds nothing to boot and waits).
    write(os.path.join(t.root, "web2.xml"),
          domain_xml("web2", genv, kernel=False, agent=False, memory_mib=64,
                     devices_extra=VNC.replace("/>", f" passwd='{VNC_PASSWORD}'/>") + VGA))
    for n in ("web1", "web2"):
        rc, out, err = t.cli("define", os.path.join(t.root, f"{n}.xml"))
        check(f"define {n}", rc == 0, err)
    rc, out, err = t.cli("start", "web1")
    check("start web1 (the guest with an agent)", rc == 0, err)

    # ---- login ----
    rc, out, err = t.cli("web-url")
    m = URL_RE.match(out.strip())
    if not check("tether web-url prints http://127.0.0.1:PORT/login?token=<32 hex>",
                 rc == 0 and m is not None, repr(out) + err):
        return
    url, base = out.strip(), f"http://127.0.0.1:{m.group(1)}"
    rc, out2, err = t.cli("web-url")
    st, h, cookie = login(base, out2.strip())
    sc = h.get("Set-Cookie", "")
    check("a fresh token: 303 to / with a session cookie",
          st == 303 and h.get("Location") == "/" and cookie is not None
          and re.fullmatch(r"tether_session=[0-9a-f]{64}", cookie), f"{st} {dict(h)}")
    check("the cookie is HttpOnly, SameSite=Strict, Path=/, with a Max-Age",
          all(x in sc for x in ("; HttpOnly", "; SameSite=Strict", "; Path=/", "; Max-Age=43200")),
          sc)
    u = urllib.parse.urlsplit(out2.strip())
    for what, path in (("a replayed token", f"{u.path}?{u.query}"),
                       ("a wrong token", f"/login?token={secrets.token_hex(16)}"),
                       ("no token", "/login")):
        st, h, body = request(base, path)
        check(f"{what} is refused: 403 and the refusal page",
              st == 403 and LOGIN_REFUSED in body and "Set-Cookie" not in h, f"{st} {body!r}")
    for _ in range(5):
        request(base, f"/login?token={secrets.token_hex(16)}")
    line = "web: refused a login from 127.0.0.1: wrong, expired or used token"
    log = wait_for(lambda: re.search(re.escape(line) + r" \(\d+ similar refusals suppressed\)",
                                     log_text(t)), 5)
    check("refused logins are logged, with a rate limit",
          line in log_text(t) and log is not None,
          "\n".join(x for x in log_text(t).splitlines() if "refused" in x)[-600:])

    # ---- no session, headers, pages ----
    st, h, body = request(base, "/")
    check("no session: / is refused with the 403 page", st == 403 and NOT_LOGGED_IN in body,
          f"{st} {body!r}")
    st, h, body = request(base, "/api/domains")
    check("no session: /api/domains is refused",
          st == 403 and json.loads(body).get("error", "").startswith("not logged in"), body)
    auth = {"Cookie": cookie}
    for page in PAGES:
        st, h, body = request(base, page, headers=auth)
        check(f"{page}: 200 with the strict CSP, nosniff and X-Frame-Options DENY",
              st == 200 and h.get("Content-Security-Policy") == CSP and
              h.get("X-Content-Type-Options") == "nosniff" and h.get("X-Frame-Options") == "DENY",
              f"{st} {dict(h)}")
        scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", body, re.S)
        inline = [s for s in scripts if "src=" not in s[0] or s[1].strip()]
        check(f"{page}: no inline script, style or handler",
              scripts and not inline and "<style" not in body and
              not re.search(r"\sstyle\s*=", body) and not re.search(r"\son[a-z]+\s*=", body),
              repr(inline))
    st, h, body = request(base, "/api/domains", headers=auth)
    names = sorted(d["name"] for d in json.loads(body)) if st == 200 else []
    check("GET /api/domains lists both domains", names == ["web1", "web2"], body[:300])

    # ---- CSRF ----
    st, h, body = request(base, "/api/domains/web1/suspend", "POST", headers=auth)
    check("a POST without the CSRF token: 403 with a clear message",
          st == 403 and json.loads(body) == {"error": "missing CSRF token: a state-changing "
                                                      "request needs the X-CSRF-Token header"},
          f"{st} {body}")
    st, h, body = request(base, "/api/domains/web1/suspend", "POST",
                          headers=dict(auth, **{"X-CSRF-Token": secrets.token_hex(32)}))
    check("a POST with a wrong CSRF token: 403",
          st == 403 and json.loads(body) == {"error": "wrong CSRF token: reload the page"},
          f"{st} {body}")
    check("... and web1 was not suspended", t.state("web1") == "running (booted)",
          t.state("web1"))
    # One of them may be counted into the other's line (the rate limit is shared with logins).
    check("the CSRF refusals are logged",
          wait_for(lambda: "web: refused /api/domains/web1/suspend from 127.0.0.1 (uid 0): "
                   in log_text(t), 3))

    # ---- the page in Chromium ----
    drv = browser(t.root)
    try:
        drv.set_page_load_timeout(30)
        drv.get(url)
        check("the login link lands on the list",
              drv.current_url == base + "/" and drv.title == "Tether: domains", drv.current_url)
        ok = wait_for(lambda: page_state(drv, "web1") == "running (booted)" and
                      page_state(drv, "web2") == "shut off (unknown)", 10)
        check("every domain is listed with its state (the CLI's words)", ok,
              f"web1 {page_state(drv, 'web1')!r} ({t.state('web1')}), "
              f"web2 {page_state(drv, 'web2')!r} ({t.state('web2')})")
        check("vCPUs and memory of web1",
              (row_text(drv, "web1", "vcpus"), row_text(drv, "web1", "memory")) == ("1", "256 MiB"),
              repr((row_text(drv, "web1", "vcpus"), row_text(drv, "web1", "memory"))))
        drv.save_screenshot(os.path.join(shots, "list.png"))
        drv.execute_script("window.tetherMark = 'same page';")

        # start from the page: the state cell changes without a reload
        click(drv, "web2", "start")
        seen = {}
        deadline = time.monotonic() + 15
        while len(seen) < 2 and time.monotonic() < deadline:
            if "daemon" not in seen and t.api("dominfo", {"domain": "web2"}).get(
                    "return", {}).get("state") == "running":
                seen["daemon"] = time.monotonic()
            if "page" not in seen and page_state(drv, "web2") == "running (booted)":
                seen["page"] = time.monotonic()
            time.sleep(0.05)
        lag = seen["page"] - seen["daemon"] if len(seen) == 2 else None
        detail = f"{page_state(drv, 'web2')!r}, lag {lag}"
        check("start web2 from the page: its state turns to running without a reload",
              "page" in seen, detail)
        check("... within 1 s of tetherd's change", lag is not None and lag < 1.0, detail)
        check("... no reload happened",
              drv.execute_script("return window.tetherMark;") == "same page")
        check("the CLI agrees: web2 running (booted)", t.state("web2") == "running (booted)",
              t.state("web2"))

        click(drv, "web2", "suspend")
        ok, detail = wait_page_state(drv, t, "web2", "paused (user)", 10)
        check("suspend from the page: paused (user)",
              ok and t.state("web2") == "paused (user)", detail)
        click(drv, "web2", "resume")
        ok, detail = wait_page_state(drv, t, "web2", "running (unpaused)", 10)
        check("resume from the page: running (unpaused)",
              ok and t.state("web2") == "running (unpaused)", detail)

        # managedsave from the page, then start restores the image
        click(drv, "web2", "managedsave")
        ok, detail = wait_page_state(drv, t, "web2", "shut off (saved)", 60)
        check("Save (managedsave) from the page: shut off (saved)",
              ok and t.state("web2") == "shut off (saved)", detail)
        click(drv, "web2", "start")
        ok, detail = wait_page_state(drv, t, "web2", "running (restored)", 60)
        check("start of a saved domain from the page: running (restored)",
              ok and t.state("web2") == "running (restored)", detail)

        # destroy asks first
        click(drv, "web2", "destroy")
        dialog = drv.find_element(By.ID, "confirm")
        shown = wait_for(lambda: dialog.get_attribute("open") is not None, 5)
        text = drv.find_element(By.ID, "confirm-text").text
        check("destroy asks for a confirmation first",
              shown and text.startswith("Destroy domain 'web2'? It stops at once"), text)
        drv.save_screenshot(os.path.join(shots, "destroy-confirm.png"))
        drv.find_element(By.ID, "confirm-cancel").click()
        closed = wait_for(lambda: dialog.get_attribute("open") is None, 5)
        check("Cancel closes the question and web2 keeps running",
              closed and t.state("web2") == "running (restored)" and
              page_state(drv, "web2") == "running (restored)", t.state("web2"))
        click(drv, "web2", "destroy")
        wait_for(lambda: dialog.get_attribute("open") is not None, 5)
        drv.find_element(By.ID, "confirm-ok").click()
        ok, detail = wait_page_state(drv, t, "web2", "shut off (destroyed)", 15)
        check("confirmed destroy: shut off (destroyed)",
              ok and t.state("web2") == "shut off (destroyed)", detail)

        # the agent's facts
        agent = t.agent("web1")
        agent.wait(120)
        osinfo = agent.check("guest-get-osinfo")
        pretty = osinfo.get("pretty-name") or osinfo.get("name")
        ok = wait_for(lambda: genv["TETHER_GUEST_IP"] in (row_text(drv, "web1", "ips") or "")
                      and row_text(drv, "web1", "os") == pretty, 60, 0.5)
        check("the guest's IP address and OS appear in the list (from the agent)", ok,
              f"ips {row_text(drv, 'web1', 'ips')!r} os {row_text(drv, 'web1', 'os')!r} "
              f"(agent: {pretty!r})")
        check("no IP address or OS for web2 (no agent)",
              (row_text(drv, "web2", "ips"), row_text(drv, "web2", "os")) == ("", ""))
        drv.save_screenshot(os.path.join(shots, "list-agent.png"))

        drv.find_element(By.LINK_TEXT, "web1").click()
        wait_for(lambda: drv.current_url.endswith("/domain.html?name=web1"), 10)

        def facts():
            try:
                dts = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#os dt")]
                dds = [e.text for e in drv.find_elements(By.CSS_SELECTOR, "#os dd")]
                ifs = drv.find_element(By.ID, "interfaces").text
                fss = drv.find_elements(By.CSS_SELECTOR, "#filesystems tbody tr")
                return (dict(zip(dts, dds)), ifs, len(fss))
            except Exception:
                return ({}, "", 0)

        got = wait_for(lambda: facts()[0].get("Name") == pretty and
                       f"{genv['TETHER_GUEST_IP']}/24" in facts()[1] and facts()[2] > 0, 90, 0.5)
        os_facts, ifs, nfs = facts()
        check("the domain's page shows the agent's OS and interfaces",
              got and os_facts.get("Kernel") == osinfo.get("kernel-release"),
              f"{os_facts} {ifs!r}")
        fsinfo = agent.check("guest-get-fsinfo")
        mounts = [e.text for e in drv.find_elements(By.CSS_SELECTOR,
                                                      "#filesystems tbody td:first-child")]
        check("... and its filesystems (the data disk on /mnt/data)",
              sorted(mounts) == sorted(f["mountpoint"] for f in fsinfo) and
              "/mnt/data" in mounts, f"{mounts}, agent: {[f['mountpoint'] for f in fsinfo]}")
        drv.save_screenshot(os.path.join(shots, "domain.png"))

        snapshot_checks(t, drv, base, auth)
        chart_checks(t, drv, base, auth, shots)
        console_checks(t, drv, base, auth, agent, shots)
        password_checks(t, drv, base)

        # shutdown from the page: the guest's acpid powers it off
        drv.get(base + "/")
        wait_for(lambda: page_state(drv, "web1") == "running (booted)", 10)
        click(drv, "web1", "shutdown")
        ok, detail = wait_page_state(drv, t, "web1", "shut off (shutdown)", 90)
        check("Shut down from the page: the guest powers off, shut off (shutdown)",
              ok and t.state("web1") == "shut off (shutdown)", detail)
        logs = [e["message"] for e in drv.get_log("browser")
                if e.get("level") in ("SEVERE", "WARNING")]
        check("the browser logged no error (no CSP violation)", not logs, repr(logs[:3]))
    finally:
        drv.quit()

    # ---- who may get a link ----
    if group:
        os.chmod(t.root, 0o755)
        member = ["setpriv", "--reuid=65534", "--regid=65534", "--groups=100"]
        rc, out, err = web_url(t, member)
        m = URL_RE.match(out.strip())
        check(f"a member of tetherd's group ({group}) gets a link", rc == 0 and m, out + err)
        if m:
            st, h, c2 = login(base, out.strip())
            st, h, body = request(base, "/api/session", headers={"Cookie": c2 or ""})
            check("... whose session acts as that user (uid 65534)",
                  st == 200 and json.loads(body).get("uid") == 65534, body)
        nonmember = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        rc, out, err = web_url(t, nonmember)
        check("a non-member gets no link", rc == 1 and out == "" and err == DENIED,
              repr(out) + err)
    else:
        print("NOTE: no group with gid 100 on this machine: the group checks were not run")

    # ---- the event stream goes away, logout ----
    closed_line = "web: an event stream closed ("
    closed_before = log_text(t).count(closed_line)
    conn = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(base).port, timeout=10)
    conn.request("GET", "/api/events", headers=auth)
    r = conn.getresponse()
    first = r.fp.readline() + r.fp.readline()
    check("GET /api/events: an event stream", r.status == 200 and
          r.headers.get("Content-Type") == "text/event-stream" and b"retry: 1000" in first,
          f"{r.status} {first!r}")
    conn.sock.shutdown(2)
    conn.close()
    check("tetherd notices a closed event stream",
          wait_for(lambda: log_text(t).count(closed_line) > closed_before, 20, 0.2))
    # A second stream stays open through the logout: it must end with the session.
    conn2 = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(base).port, timeout=10)
    conn2.request("GET", "/api/events", headers=auth)
    r2 = conn2.getresponse()
    st, h, body = request(base, "/api/session", headers=auth)
    csrf = json.loads(body)["csrf"]
    st, h, body = request(base, "/api/logout", "POST", headers=dict(auth, **{"X-CSRF-Token": csrf}))
    check("logout", st == 200 and "Max-Age=0" in h.get("Set-Cookie", ""), f"{st} {body}")
    st, h, body = request(base, "/api/domains", headers=auth)
    check("after logout the cookie opens nothing", st == 403, f"{st} {body}")
    try:
        rest = r2.read().decode()
        ended = "event: domains" in rest
    except OSError as e:
        rest, ended = repr(e), False
    conn2.close()
    check("the session's event stream ends with the logout", ended, rest[-200:])

    # Sessions are bounded: 64; the 65th login ends the oldest.
    cookies = []
    for _ in range(65):
        rc, out, err = t.cli("web-url")
        cookies.append(login(base, out.strip())[2])
    alive = [request(base, "/api/session", headers={"Cookie": c or ""})[0] for c in cookies]
    check("64 sessions at most: the 65th login ended the oldest one",
          alive[0] == 403 and alive[1:] == [200] * 64, repr(alive))
    st, h, body = request(base, "/api/domains/web1/start", "GET", headers={"Cookie": cookies[-1]})
    check("GET of an action: 404", st == 404, f"{st} {body}")
    st, h, body = request(base, "/api/domains", "POST", headers={"Cookie": cookies[-1]})
    check("POST to a read-only resource: 405 with Allow",
          st == 405 and h.get("Allow") == "GET, HEAD", f"{st} {dict(h)}")
    st, h, body = request(base, "/api/domains/nosuch", headers={"Cookie": cookies[-1]})
    check("an unknown domain: 404 with the lookup's error",
          st == 404 and json.loads(body) == {"error": "failed to get domain 'nosuch'"}, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    genv = load_guest_env(a.guest)
    # The screenshots are CI artifacts, in the build tree that holds tetherd.
    build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(a.tetherd))))
    shots = os.path.join(build, "web-screenshots")
    os.makedirs(shots, exist_ok=True)
    t = WebTether(a.tetherd, a.tether, "/tmp/tt-web-", [])
    return R.run_suite(t, run, a, genv, shots, keep=a.keep)


if __name__ == "__main__":
    sys.exit(main())
