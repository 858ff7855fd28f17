# SPDX-License-Identifier: GPL-2.0-or-later
"""What the host tests that run domains on fakeqemu.py share: a tetherd with its own --root in a
temp folder, the CLI run with exact-output checks, a domain XML whose <emulator> is the fake,
and cleanup of the fakes by their pids (only the ones this test started).
"""
import json
import os
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fakeqemu.py")
TIMEOUT = 30
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
ALLOWED = ("guest-sync-delimited,guest-sync,guest-ping,guest-get-time,guest-info,"
           "guest-get-host-name,guest-get-osinfo,guest-get-users,guest-get-timezone,"
           "guest-get-fsinfo,guest-get-disks,guest-network-get-interfaces,guest-get-vcpus,"
           "guest-exec,guest-exec-status,guest-file-open,guest-file-close,guest-file-read,"
           "guest-file-write,guest-file-seek,guest-file-flush,guest-get-load,guest-get-cpustats,"
           "guest-get-diskstats,guest-fsfreeze-status,guest-get-memory-blocks,"
           "guest-get-memory-block-info,guest-ssh-get-authorized-keys,guest-network-get-route")
# Never allowed, and never sent by these tests: the agent runs on the host.
MACHINE_CHANGING = ("guest-shutdown", "guest-set-time", "guest-fsfreeze-freeze",
                    "guest-fsfreeze-freeze-list", "guest-fsfreeze-thaw", "guest-fstrim",
                    "guest-suspend-disk", "guest-suspend-ram", "guest-suspend-hybrid",
                    "guest-set-vcpus", "guest-set-memory-blocks", "guest-set-user-password",
                    "guest-ssh-add-authorized-keys", "guest-ssh-remove-authorized-keys")
assert not set(ALLOWED.split(",")) & set(MACHINE_CHANGING), "a machine-changing command allowed"
counts = {"passed": 0, "failed": 0}


def check(cond, what, detail=""):
    counts["passed" if cond else "failed"] += 1
    if not cond:
        print("FAIL: %s%s" % (what, ("\n" + detail) if detail else ""), flush=True)
    return cond


class Env:
    def __init__(self, tetherd, tether, agent, tmp, extra=(), env=None):
        self.tetherd = tetherd
        self.tether = tether
        self.agent = agent
        self.tmp = tmp
        self.root = os.path.join(tmp, "root")
        self.log = os.path.join(tmp, "tetherd.log")
        self.fakes = []
        self.env = env or {}
        os.makedirs(self.root, exist_ok=True)
        self.start(extra)

    def start(self, extra=(), wait=True):
        """Start tetherd (again) with extra options; the fakes it starts get self.env. With
        wait, until its control socket accepts."""
        env = dict(os.environ, FAKEQEMU_AGENT=self.agent, FAKEQEMU_AGENT_ARGS="-a " + ALLOWED,
                   **self.env)
        self.stderr = open(os.path.join(self.tmp, "tetherd.stderr"), "ab")
        self.proc = subprocess.Popen([self.tetherd, "--root", self.root, "--log", self.log] +
                                     list(extra), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr, env=env)
        if not wait:
            return
        sock = os.path.join(self.root, "run/tether/tetherd.sock")
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                s.close()
                break
            except OSError:
                s.close()
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("tetherd did not come up (see %s)" % self.log)
                time.sleep(0.02)

    def log_text(self):
        try:
            return open(self.log, errors="replace").read()
        except OSError:
            return ""

    def wait_log(self, text, timeout=TIMEOUT):
        """Has tetherd's log said text (waiting up to timeout for it)?"""
        deadline = time.monotonic() + timeout
        while text not in self.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        return text in self.log_text()

    def define(self, name, uuid, **kw):
        path = os.path.join(self.tmp, name + ".xml")
        with open(path, "w") as f:
            f.write(domain_xml(name, uuid, **kw))
        self.expect(["define", path], 0, "Domain '%s' defined from %s\n\n" % (name, path))
        return path

    def wait_state(self, name, want, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            rc, out, err = self.run("domstate", name, "--reason")
            if out == want + "\n\n" or time.monotonic() > deadline:
                return check(out == want + "\n\n", "%s becomes %s" % (name, want),
                             "got %r %r" % (out, err))
            time.sleep(0.05)

    def run(self, *args, timeout=TIMEOUT, input=None):
        try:
            p = subprocess.run([self.tether, "--root", self.root] + list(args),
                               capture_output=True, text=True, timeout=timeout,
                               input=input if input is not None else "")
        except subprocess.TimeoutExpired:
            return -1, "", "TIMEOUT after %ss" % timeout
        return p.returncode, p.stdout, p.stderr

    def expect(self, args, rc, out=None, err=None, input=None):
        got = self.run(*args, input=input)
        what = "tether " + " ".join(args)
        check(not any(m in got[2] for m in SANITIZER_MARKS), what + ": no sanitizer report",
              got[2])
        check(got[0] == rc, "%s: exit code %d, want %d" % (what, got[0], rc),
              "stdout: %r\nstderr: %r" % (got[1], got[2]))
        if out is not None:
            check(got[1] == out, what + ": stdout", "got:  %r\nwant: %r" % (got[1], out))
        if err is not None:
            check(got[2] == err, what + ": stderr", "got:  %r\nwant: %r" % (got[2], err))
        return got

    def record_fake(self, name):
        """Remember the pid of name's fake, for cleanup."""
        try:
            with open(os.path.join(self.root, "run/tether/domains", name, "status.json")) as f:
                self.fakes.append(int(json.load(f)["pid"]))
        except (OSError, ValueError, KeyError):
            pass

    def stop(self):
        # Every domain running now (autostarted ones too) is cleaned up at the end.
        d = os.path.join(self.root, "run/tether/domains")
        for name in os.listdir(d) if os.path.isdir(d) else []:
            self.record_fake(name)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            # SIGTERM ends tetherd cleanly at any moment, even the first after its socket
            # accepts (it used to catch signals only after it listened: killed, no host stop).
            check(self.proc.returncode == 0, "tetherd exits 0 on SIGTERM",
                  "exit status %d" % self.proc.returncode)
        self.stderr.close()

    def cleanup(self):
        self.stop()
        text = open(os.path.join(self.tmp, "tetherd.stderr"), errors="replace").read()
        check(not any(m in text for m in SANITIZER_MARKS), "no sanitizer report from tetherd",
              text[-3000:])
        # The agents the fakes ran write to the domains' logs.
        logs = os.path.join(self.root, "var/lib/tether/log")
        for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            text = open(os.path.join(logs, name), errors="replace").read()
            check(not any(m in text for m in SANITIZER_MARKS),
                  "no sanitizer report in %s" % name, text[-3000:])
        for pid in self.fakes:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if b"fakeqemu.py" not in f.read():
                        continue
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass


def domain_xml(name, uuid, agent=True, acpi=False, extra="", devices=""):
    chan = ("<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/>"
            "</channel>" if agent else "")
    return ("<domain type='qemu'><name>%s</name><uuid>%s</uuid>"
            "<memory unit='MiB'>32</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64' machine='pc'>hvm</type></os>%s%s"
            "<devices><emulator>%s</emulator>%s%s<memballoon model='none'/></devices>"
            "</domain>\n" % (name, uuid, "<features><acpi/></features>" if acpi else "", extra,
                              FAKE, chan, devices))
