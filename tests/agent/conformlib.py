# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for the agent conformance and differential tests (stdlib only).

Start a QGA-speaking agent (tether-agent or the reference qemu-ga) on a unix socket in a
temporary directory, talk raw bytes to it, and read its replies one line at a time. Only
processes started here are ever killed, and only by their PID.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

QEMU_GA = '/usr/sbin/qemu-ga'


def is_qemu_ga(binary):
    """True when binary is the reference qemu-ga (its -V says "QEMU Guest Agent")."""
    try:
        out = subprocess.run([binary, '-V'], capture_output=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b'QEMU Guest Agent' in out


def proc_status(pid):
    """VmRSS and VmHWM of pid in KiB, from /proc/PID/status (None when gone)."""
    vals = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                key, _, rest = line.partition(':')
                if key in ('VmRSS', 'VmHWM'):
                    vals[key] = int(rest.split()[0])
    except OSError:
        return None
    return vals


class Agent:
    """One agent process listening on SOCK in its own temp dir, with one client connection."""

    def __init__(self, binary, extra_args=(), name='agent', tmpdir=None):
        self.binary = binary
        self.own_tmp = tmpdir is None
        self.dir = tmpdir or tempfile.mkdtemp(prefix='conform-%s-' % name, dir='/tmp')
        self.sock_path = os.path.join(self.dir, name + '.sock')
        self.statedir = os.path.join(self.dir, name + '-state')
        os.makedirs(self.statedir, exist_ok=True)
        self.log_path = os.path.join(self.dir, name + '.stderr')
        self.argv = [binary, '-m', 'unix-listen', '-p', self.sock_path, '-t', self.statedir]
        self.argv += list(extra_args)
        self.proc = None
        self.sock = None
        self.buf = b''
        self.qemu = is_qemu_ga(binary)

    def start(self, timeout=10.0):
        env = dict(os.environ)
        env.pop('TZ', None)
        with open(self.log_path, 'wb') as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('%s exited with %d at start-up: %s' %
                                   (self.binary, self.proc.returncode, self.stderr()))
            if os.path.exists(self.sock_path):
                try:
                    self.connect()
                    return self
                except OSError:
                    pass
            time.sleep(0.02)
        raise RuntimeError('%s did not create %s' % (self.binary, self.sock_path))

    def stderr(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')[-2000:]
        except OSError:
            return ''

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock_path)
        self.sock = s
        self.buf = b''

    def disconnect(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.buf = b''

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def mem(self):
        return proc_status(self.proc.pid) if self.proc else None

    def stop(self):
        self.disconnect()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.own_tmp:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- raw I/O ----
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_line(self, timeout=5.0):
        """The next reply line including its '\\n', or None on timeout/EOF."""
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b'\n')
        return line + b'\n'

    def read_quiet(self, wait=0.3):
        """Whatever arrives within wait seconds (for 'expect no reply')."""
        end = time.monotonic() + wait
        data = self.buf
        self.buf = b''
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return data
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return data
            if not chunk:
                return data
            data += chunk

    def reply(self, timeout=5.0):
        """The next reply parsed as JSON (a leading 0xFF is removed); None on timeout."""
        line = self.read_line(timeout)
        if line is None:
            return None
        if line.startswith(b'\xff'):
            line = line[1:]
        return json.loads(line)

    def cmd(self, execute, arguments=None, timeout=10.0, **extra):
        req = {'execute': execute}
        if arguments is not None:
            req['arguments'] = arguments
        req.update(extra)
        self.send(json.dumps(req))
        return self.reply(timeout)


# ---- a tiny test runner ----
class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []

    def check(self, name, cond, detail=''):
        if cond:
            self.passed += 1
            print('ok   %s' % name)
        else:
            self.failed += 1
            self.failures.append(name)
            print('FAIL %s%s' % (name, ('\n     ' + detail.replace('\n', '\n     ')) if detail else ''))
        sys.stdout.flush()
        return cond

    def eq(self, name, got, want):
        return self.check(name, got == want, 'got:  %r\nwant: %r' % (got, want))

    def skip(self, name, why):
        self.skipped += 1
        print('skip %s (%s)' % (name, why))

    def run(self, name, fn, *args):
        """Run one test function; an exception counts as one failure."""
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a crashing test is a failing test
            import traceback
            self.check(name + ' (exception)', False,
                       '%s: %s\n%s' % (type(e).__name__, e, traceback.format_exc()))

    def finish(self):
        if self.failures:
            print('failed: ' + ', '.join(self.failures))
        line = '%d passed, %d failed' % (self.passed, self.failed)
        if self.skipped:
            line += ', %d skipped' % self.skipped
        print(line)
        sys.stdout.flush()
        return 1 if self.failed else 0


def err(cls, desc):
    return {'error': {'class': cls, 'desc': desc}}


def generic(desc):
    return err('GenericError', desc)


def jtype(v):
    """JSON type name of a decoded value (int and float kept apart, bool before int)."""
    if v is None:
        return 'null'
    if isinstance(v, bool):
        return 'bool'
    if isinstance(v, int):
        return 'int'
    if isinstance(v, float):
        return 'float'
    if isinstance(v, str):
        return 'string'
    if isinstance(v, list):
        return 'array'
    if isinstance(v, dict):
        return 'object'
    return type(v).__name__
