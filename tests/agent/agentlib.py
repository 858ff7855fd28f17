# SPDX-License-Identifier: GPL-2.0-or-later
"""Start a guest agent (tether-agent or the reference qemu-ga) on a unix socket and talk to it.

Every agent gets its own temporary directory (socket, state directory, config file) and is
stopped by its own PID only. Replies are read as raw lines, so tests can assert exact bytes.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

QEMU_GA = shutil.which('qemu-ga') or '/usr/sbin/qemu-ga'


class AgentError(Exception):
    pass


class Agent:
    """One running agent and one connection to it."""

    def __init__(self, binary, extra_args=(), config=None, statedir=None, tmp=None):
        self.binary = binary
        self.tmp = tmp or tempfile.mkdtemp(prefix='agentlib-')
        self.sock_path = os.path.join(self.tmp, 'agent.sock')
        self.statedir = statedir or os.path.join(self.tmp, 'state')
        os.makedirs(self.statedir, exist_ok=True)
        args = [binary, '-m', 'unix-listen', '-p', self.sock_path, '-t', self.statedir]
        if config is not None:
            conf = os.path.join(self.tmp, 'agent.conf')
            with open(conf, 'w') as f:
                f.write(config)
            args += ['-c', conf]
        args += list(extra_args)
        self.stderr_path = os.path.join(self.tmp, 'stderr.log')
        self._stderr = open(self.stderr_path, 'wb')
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr)
        self.sock = None
        self.buf = bytearray()
        self.connect()

    def connect(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AgentError('%s exited with %d: %s' % (self.binary, self.proc.returncode,
                                                            self.stderr()))
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock_path)
                self.sock = s
                self.buf = bytearray()
                return
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise AgentError('cannot connect to ' + self.sock_path)
                time.sleep(0.01)

    def stderr(self):
        try:
            with open(self.stderr_path, 'rb') as f:
                return f.read().decode(errors='replace')
        except OSError:
            return ''

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self, timeout=30.0):
        """One reply line as raw bytes (with a leading 0xFF kept), without the newline."""
        deadline = time.monotonic() + timeout
        start = 0
        while True:
            i = self.buf.find(b'\n', start)
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return line
            start = len(self.buf)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no reply within %.1fs' % timeout)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise TimeoutError('no reply within %.1fs' % timeout)
            if not chunk:
                raise AgentError('connection closed by agent')
            self.buf += chunk

    def read_reply(self, timeout=30.0):
        """The next reply, parsed (a leading 0xFF delimiter is skipped)."""
        return json.loads(self.read_line(timeout).lstrip(b'\xff'))

    @staticmethod
    def request(name, args=None, id=None):
        msg = {'execute': name}
        if args is not None:
            msg['arguments'] = args
        if id is not None:
            msg['id'] = id
        return json.dumps(msg).encode()

    def cmd_line(self, name, args=None, id=None, timeout=30.0):
        """Send one command and return its reply line as raw bytes."""
        self.send_raw(self.request(name, args, id))
        return self.read_line(timeout)

    def cmd(self, name, args=None, id=None, timeout=30.0):
        """Send one command and return its parsed reply ({'return': ...} or {'error': ...})."""
        return json.loads(self.cmd_line(name, args, id, timeout).lstrip(b'\xff'))

    def ret(self, name, args=None, timeout=30.0):
        """Send one command that must succeed and return its 'return' value."""
        r = self.cmd(name, args, timeout=timeout)
        if 'return' not in r:
            raise AgentError('%s failed: %r' % (name, r))
        return r['return']

    def close(self):
        """Disconnect and stop the agent (SIGTERM, then SIGKILL), by its own PID."""
        if self.sock:
            self.sock.close()
            self.sock = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()

    def sanitizer_errors(self):
        """ASan/UBSan/LSan reports in the agent's output (complete once close() returned)."""
        marks = ('AddressSanitizer', 'LeakSanitizer', 'runtime error:')
        return [ln for ln in self.stderr().splitlines() if any(m in ln for m in marks)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_agent(binary, extra_args=(), **kw):
    """Start tether-agent (or any qemu-ga compatible binary) and connect to it."""
    return Agent(binary, extra_args, **kw)


def start_reference(extra_args=(), **kw):
    """Start the reference qemu-ga the same way."""
    return Agent(QEMU_GA, extra_args, **kw)


class Results:
    """Counts checks and prints the final 'N passed, N failed' line."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, name, got, want):
        if got == want:
            self.passed += 1
        else:
            self.failed += 1
            print('FAIL %s\n  got:  %r\n  want: %r' % (name, got, want), flush=True)

    def ok(self, name, cond, detail=''):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print('FAIL %s %s' % (name, detail), flush=True)

    def finish(self):
        print('%d passed, %d failed' % (self.passed, self.failed), flush=True)
        return 1 if self.failed else 0
