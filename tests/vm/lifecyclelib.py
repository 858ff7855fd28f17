# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared helpers of the tetherd suites (test_lifecycle.py, test_events.py, test_graphics.py,
test_agent_verbs.py): a private tetherd under a temp --root, the tether CLI, the control API
spoken directly, the guest agent reached through tetherd, domain XML for the test guest.

tetherd keeps the one connection to each running domain's agent chardev socket (QEMU serves one
client at a time), so tests never connect to <run>/agent.sock themselves: they send QGA commands
through the control API's agent-command (Agent below)."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}{': ' + detail if detail else ''}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}{': ' + detail if detail else ''}", flush=True)
        return ok

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0

    def run_suite(self, t, body, *args, keep=False):
        """Run body(t, *args); a crash of the test is a failed check, not a traceback-only
        exit; t is always cleaned up. Then tetherd's log and the CLI's stderr must hold no
        sanitizer report (the ASan+UBSan build: tools/run-tests.sh --sanitize); tetherd is
        stopped with SIGTERM first, so LeakSanitizer runs at its exit. Returns the exit status."""
        t0 = time.monotonic()
        try:
            body(t, *args)
        except Exception as e:
            import traceback
            traceback.print_exc()
            self.check("test ran to the end", False, repr(e))
        finally:
            t.shutdown()
            report = t.sanitizer_report()
            self.check("no sanitizer report from tetherd or tether", report is None, report or "")
            if self.failed:
                # What tetherd said is the first thing to read about a failure in CI.
                try:
                    with open(t.log, errors="replace") as f:
                        tail = f.read().splitlines()[-60:]
                    print("---- last lines of tetherd's log ----\n" + "\n".join(tail))
                except (OSError, AttributeError):
                    pass
                print_console_logs(getattr(t, "root", None))
            t.cleanup(keep=keep)
        print(f"total {time.monotonic() - t0:.1f} s")
        return self.finish()


def print_console_logs(root):
    """The end of each domain's serial console log (domains with a <serial>/<console>): what
    the guest's kernel said about a hang or an oops is the next thing to read after a failure."""
    logdir = os.path.join(root or "", "var/lib/tether/log")
    if not root or not os.path.isdir(logdir):
        return
    for name in sorted(os.listdir(logdir)):
        if not name.endswith(".console.log"):
            continue
        try:
            with open(os.path.join(logdir, name), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4000))
                tail = f.read().decode("utf-8", "replace").splitlines()[-40:]
        except OSError:
            continue
        print(f"---- last lines of {name} ----\n" + "\n".join(tail))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def start_libvirtd():
    """virtlogd and libvirtd through tools/libvirtd-start.sh (it masks /dev/kvm from libvirtd,
    which otherwise probes QEMU again on every call here), unless libvirtd already answers.
    (ok, pids): the PIDs it started, to stop by PID and only those; ok False with the reason
    in pids' place when it could not."""
    try:
        p = subprocess.run([os.path.join(REPO, "tools", "libvirtd-start.sh")],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return False, "tools/libvirtd-start.sh did not finish within 300 s"
    pids = [int(w) for w in p.stdout.split() if w.isdigit()]
    if p.returncode != 0:
        return False, p.stderr.strip() or f"tools/libvirtd-start.sh exited {p.returncode}"
    return True, pids


def load_guest_env(guest_dir):
    env = {}
    path = os.path.join(guest_dir, "guest.env")
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            env[k] = v.strip("'")
    return env


# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print: any of them in
# tetherd's log or the CLI's stderr fails the suite.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                   "ERROR: UndefinedBehaviorSanitizer")


def sanitizer_excerpt(text):
    """The text from the first sanitizer mark on (at most 4000 characters), or None."""
    at = [text.find(m) for m in SANITIZER_MARKS if m in text]
    if not at:
        return None
    start = text.rfind("\n", 0, min(at)) + 1
    return text[start:start + 4000]


class Tether:
    """A tetherd of our own (by PID) and the tether CLI pointed at it."""

    def __init__(self, tetherd, tether, prefix):
        self.tetherd = os.path.abspath(tetherd)
        self.tether = os.path.abspath(tether)
        self.root = tempfile.mkdtemp(prefix=prefix)
        self.proc = None
        self.log = os.path.join(self.root, "tetherd.log")
        # Sanitizer reports the CLI printed on stderr, and tetherd exits other than a clean
        # one after SIGTERM (an ASan abort, LeakSanitizer's exit code).
        self.reports = []

    @property
    def sock(self):
        return os.path.join(self.root, "run/tether/tetherd.sock")

    def run_path(self, name, file):
        return os.path.join(self.root, "run/tether/domains", name, file)

    def start_daemon(self):
        def ready_lines():
            try:
                with open(self.log, errors="replace") as f:
                    return f.read().count(" listening on ")
            except OSError:
                return 0

        before = ready_lines()
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([self.tetherd, "--root", self.root, "--verbose"],
                                     stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        # The socket accepts before the domains are loaded and reconnected (their requests
        # wait for that); what a test reads outside tetherd (a disk's owner) is only settled
        # once the log says "listening on".
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(self.sock) and ready_lines() > before:
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(self.sock)
                    s.close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("tetherd did not come up")

    def log_count(self, text):
        """How many times tetherd's log holds text."""
        try:
            with open(self.log, errors="replace") as f:
                return f.read().count(text)
        except OSError:
            return 0

    def wait_log(self, text, more_than, timeout):
        """Until tetherd's log holds text more than more_than times; whether it did."""
        deadline = time.monotonic() + timeout
        while self.log_count(text) <= more_than:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop_daemon(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.reports.append(f"tetherd did not exit within 10 s of signal {int(sig)}")
        if sig == signal.SIGTERM and self.proc.returncode not in (0, -signal.SIGTERM):
            self.reports.append(f"tetherd exited with status {self.proc.returncode} on SIGTERM")
        self.proc = None
        # the socket file stays after SIGKILL; the next daemon replaces it
        if sig == signal.SIGKILL:
            time.sleep(0.1)

    def cli(self, *args, timeout=120):
        p = subprocess.run([self.tether, "--root", self.root] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        report = sanitizer_excerpt(p.stderr)
        if report:
            self.reports.append(f"tether {' '.join(args)}:\n{report}")
        return p.returncode, p.stdout, p.stderr.strip()

    def cli_bg(self, *args):
        return subprocess.Popen([self.tether, "--root", self.root] + list(args),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def api(self, execute, args=None, timeout=120):
        """One control-API request, for options the CLI cannot express yet (--timeout N)."""
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(self.sock)
        msg = {"execute": execute}
        if args is not None:
            msg["arguments"] = args
        s.sendall(json.dumps(msg).encode() + b"\n")
        buf = b""
        dec = json.JSONDecoder()
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("tetherd closed the connection")
                buf += chunk
                try:
                    obj, _ = dec.raw_decode(buf.decode().lstrip())
                    return obj
                except ValueError:
                    continue
        finally:
            s.close()

    def agent(self, name):
        """The guest agent of domain NAME, reached through this tetherd."""
        return Agent(self, name)

    def state(self, name):
        rc, out, err = self.cli("domstate", "--reason", name)
        return out.strip() if rc == 0 else f"error: {err}"

    def wait_state(self, name, want, timeout=30):
        deadline = time.monotonic() + timeout
        st = None
        while time.monotonic() < deadline:
            st = self.state(name)
            if st == want:
                return st
            time.sleep(0.2)
        return st

    def qemu_pid(self, name):
        try:
            with open(self.run_path(name, "qemu.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def sanitizer_report(self):
        """None, or what went wrong: a sanitizer report in tetherd's log (every daemon this
        object started appends to it) or the CLI's stderr, or an unclean exit on SIGTERM."""
        try:
            with open(self.log, errors="replace") as f:
                log = sanitizer_excerpt(f.read())
        except OSError:
            log = None
        found = ([f"tetherd.log:\n{log}"] if log else []) + self.reports
        return "\n".join(found) if found else None

    def shutdown(self):
        """Our QEMUs killed, tetherd stopped with SIGTERM; the temp root stays."""
        # Our own QEMUs, by the pids tetherd recorded.
        for d in os.listdir(os.path.join(self.root, "run/tether/domains")) \
                if os.path.isdir(os.path.join(self.root, "run/tether/domains")) else []:
            pid = self.qemu_pid(d)
            if pid and is_qemu_of(pid, d, self.root):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.stop_daemon()

    def cleanup(self, keep=False):
        self.shutdown()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


def is_qemu_of(pid, name, root=None):
    """Whether pid is the QEMU of domain name (of the tetherd under root, when given: CI runs
    two suites side by side, with the same domain names)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return (f"guest={name},".encode() in cmdline and
            (root is None or (root.rstrip("/") + "/").encode() in cmdline))


def qemu_pids_named(name, root):
    """The live QEMUs of domain name started by the tetherd whose --root is root."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit() and is_qemu_of(int(p), name, root):
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().split(")")[1].split()[0] == "Z":
                        continue
            except OSError:
                continue
            pids.append(int(p))
    return pids


AGENT_CHANNEL = """    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
"""


def domain_xml(name, genv, disk=None, initrd=None, memory_mib=256, acpi=True, kernel=True,
               devices_extra="", vcpus=1, agent=True, kernel_path=None, append_extra=""):
    os_extra = ""
    if kernel:
        os_extra = (f"    <kernel>{kernel_path or genv['TETHER_GUEST_KERNEL']}</kernel>\n"
                    f"    <initrd>{initrd or genv['TETHER_GUEST_INITRD']}</initrd>\n"
                    f"    <cmdline>{genv['TETHER_GUEST_APPEND']}{append_extra}</cmdline>\n")
    disk_xml = ""
    if disk:
        disk_xml = (f"    <disk type='file' device='disk'>\n"
                    f"      <driver name='qemu' type='raw'/>\n"
                    f"      <source file='{disk}'/>\n"
                    f"      <target dev='vda' bus='virtio'/>\n"
                    f"    </disk>\n")
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
{os_extra}  </os>
  {'<features><acpi/></features>' if acpi else ''}
  <devices>
{disk_xml}{AGENT_CHANNEL if agent else ''}{devices_extra}  </devices>
</domain>
"""


class AgentError(RuntimeError):
    """tetherd or the agent refused a command; str() is the error text."""


class AgentTimeout(AgentError):
    pass


class Agent:
    """A domain's guest agent, reached through tetherd's control API (agent-command): tetherd
    holds the one connection that QEMU's chardev socket serves, so nobody else may connect."""

    def __init__(self, t, name):
        self.t = t
        self.name = name

    def cmd(self, execute, args=None, timeout=10):
        """One QGA command; the control API's whole reply: {"return": AGENT_REPLY} or
        {"error": {"class", "desc"}}."""
        command = {"execute": execute}
        if args is not None:
            command["arguments"] = args
        return self.t.api("agent-command", {"domain": self.name, "command": command,
                                            "timeout": timeout}, timeout=max(timeout, 0) + 30)

    def check(self, execute, args=None, timeout=10):
        """One QGA command; the agent's "return" value, or AgentError with the error text."""
        r = self.cmd(execute, args, timeout)
        if "error" in r:
            raise AgentError(f"{execute}: {r['error'].get('desc', r['error'])}")
        reply = r.get("return")
        if not isinstance(reply, dict) or "return" not in reply:
            raise AgentError(f"{execute}: not an agent reply object: {r!r}")
        return reply["return"]

    def ping(self, timeout=2):
        try:
            return "return" in self.cmd("guest-ping", timeout=timeout).get("return", {})
        except (OSError, ValueError):
            return False  # tetherd restarting

    def wait(self, timeout=40):
        """Until a guest-ping succeeds (the guest opened its port and the agent answers)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                r = self.cmd("guest-ping", timeout=2)
                if "return" in r.get("return", {}):
                    return self
                last = r.get("error", {}).get("desc", r)
            except (OSError, ValueError) as e:
                last = e
            time.sleep(0.3)
        raise AgentTimeout(f"agent of {self.name} did not answer within {timeout} s ({last})")

    def spawn(self, path, argv=(), env=None, stdin=None, capture=True):
        """guest-exec without waiting; the guest pid."""
        args = {"path": path, "arg": list(argv), "capture-output": capture}
        if env is not None:
            args["env"] = list(env)
        if stdin is not None:
            args["input-data"] = base64.b64encode(stdin).decode()
        return self.check("guest-exec", args)["pid"]

    def exec(self, path, argv=(), timeout=30, env=None, stdin=None):
        """guest-exec with captured output, polled to the end; the final status with
        "out-data"/"err-data" decoded to str under "stdout"/"stderr"."""
        pid = self.spawn(path, argv, env, stdin)
        deadline = time.monotonic() + timeout
        while True:
            st = self.check("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                st["stdout"] = base64.b64decode(st.get("out-data", "")).decode("utf-8", "replace")
                st["stderr"] = base64.b64decode(st.get("err-data", "")).decode("utf-8", "replace")
                return st
            if time.monotonic() > deadline:
                raise AgentTimeout(f"{path} still running after {timeout} s")
            time.sleep(0.05)

    def sh(self, script, timeout=30):
        """/bin/sh -c SCRIPT in the guest; (exit code, stdout)."""
        st = self.exec("/bin/sh", ["-c", script], timeout=timeout)
        return st.get("exitcode"), st["stdout"]

    def read_file(self, path):
        """A guest file's bytes (guest-file-open/read/close)."""
        h = self.check("guest-file-open", {"path": path, "mode": "r"})
        data = b""
        try:
            while True:
                r = self.check("guest-file-read", {"handle": h, "count": 1 << 20})
                data += base64.b64decode(r.get("buf-b64", ""))
                if r.get("eof") or r.get("count", 0) == 0:
                    return data
        finally:
            self.check("guest-file-close", {"handle": h})


def uptime(agent, wait=40):
    """Seconds of guest uptime, read through the guest agent (guest-exec cat /proc/uptime)."""
    agent.wait(wait)
    st = agent.exec("/bin/cat", ["/proc/uptime"])
    return float(st["stdout"].split()[0])


def guest_run(agent, path, args=(), wait=40):
    """Run a program in the guest through its agent; its exit code."""
    agent.wait(wait)
    return agent.exec(path, list(args)).get("exitcode")


def mark_boot(agent):
    """Leave a mark in the guest's /run (a tmpfs): a reboot wipes it."""
    return guest_run(agent, "/bin/touch", ["/run/tether-test-mark"]) == 0


def same_boot(agent, wait=40):
    """True while the mark of mark_boot() is still there (the guest did not boot again)."""
    return guest_run(agent, "/bin/sh", ["-c", "test -e /run/tether-test-mark"], wait) == 0
