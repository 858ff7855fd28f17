# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared helpers of test_lifecycle.py and test_graphics.py: a private tetherd under a temp
--root, the tether CLI, the control API spoken directly, domain XML for the test guest."""

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
import qga  # noqa: E402


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
        exit; t is always cleaned up. Returns the exit status."""
        t0 = time.monotonic()
        try:
            body(t, *args)
        except Exception as e:
            import traceback
            traceback.print_exc()
            self.check("test ran to the end", False, repr(e))
        finally:
            t.cleanup(keep=keep)
        print(f"total {time.monotonic() - t0:.1f} s")
        return self.finish()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


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


class Tether:
    """A tetherd of our own (by PID) and the tether CLI pointed at it."""

    def __init__(self, tetherd, tether, prefix):
        self.tetherd = os.path.abspath(tetherd)
        self.tether = os.path.abspath(tether)
        self.root = tempfile.mkdtemp(prefix=prefix)
        self.proc = None
        self.log = os.path.join(self.root, "tetherd.log")

    @property
    def sock(self):
        return os.path.join(self.root, "run/tether/tetherd.sock")

    def run_path(self, name, file):
        return os.path.join(self.root, "run/tether/domains", name, file)

    def start_daemon(self):
        logf = open(self.log, "a")
        self.proc = subprocess.Popen([self.tetherd, "--root", self.root, "--verbose"],
                                     stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if os.path.exists(self.sock):
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(self.sock)
                    s.close()
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("tetherd did not come up")

    def stop_daemon(self, sig=signal.SIGTERM):
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        # the socket file stays after SIGKILL; the next daemon replaces it
        if sig == signal.SIGKILL:
            time.sleep(0.1)

    def cli(self, *args, timeout=120):
        p = subprocess.run([self.tether, "--root", self.root] + list(args),
                           capture_output=True, text=True, timeout=timeout)
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

    def cleanup(self, keep=False):
        # Our own QEMUs, by the pids tetherd recorded.
        for d in os.listdir(os.path.join(self.root, "run/tether/domains")) \
                if os.path.isdir(os.path.join(self.root, "run/tether/domains")) else []:
            pid = self.qemu_pid(d)
            if pid and is_qemu_of(pid, d):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.stop_daemon()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


def is_qemu_of(pid, name):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f"guest={name},".encode() in f.read()
    except OSError:
        return False


def qemu_pids_named(name):
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit() and is_qemu_of(int(p), name):
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().split(")")[1].split()[0] == "Z":
                        continue
            except OSError:
                continue
            pids.append(int(p))
    return pids


def domain_xml(name, genv, disk=None, initrd=None, memory_mib=256, acpi=True, kernel=True,
               devices_extra=""):
    os_extra = ""
    if kernel:
        os_extra = (f"    <kernel>{genv['TETHER_GUEST_KERNEL']}</kernel>\n"
                    f"    <initrd>{initrd or genv['TETHER_GUEST_INITRD']}</initrd>\n"
                    f"    <cmdline>{genv['TETHER_GUEST_APPEND']}</cmdline>\n")
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
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
{os_extra}  </os>
  {'<features><acpi/></features>' if acpi else ''}
  <devices>
{disk_xml}    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
{devices_extra}  </devices>
</domain>
"""


def uptime(agent_sock, wait=40):
    """Seconds of guest uptime, read through the guest agent (guest-exec cat /proc/uptime)."""
    q = qga.wait_for_agent(agent_sock, wait)
    try:
        st = q.exec("/bin/cat", ["/proc/uptime"])
        return float(st["stdout"].split()[0])
    finally:
        q.close()


def guest_run(agent_sock, path, args=(), wait=40):
    """Run a program in the guest through its agent; its exit code."""
    q = qga.wait_for_agent(agent_sock, wait)
    try:
        return q.exec(path, list(args)).get("exitcode")
    finally:
        q.close()


def mark_boot(agent_sock):
    """Leave a mark in the guest's /run (a tmpfs): a reboot wipes it."""
    return guest_run(agent_sock, "/bin/touch", ["/run/tether-test-mark"]) == 0


def same_boot(agent_sock, wait=40):
    """True while the mark of mark_boot() is still there (the guest did not boot again)."""
    return guest_run(agent_sock, "/bin/sh", ["-c", "test -e /run/tether-test-mark"], wait) == 0
