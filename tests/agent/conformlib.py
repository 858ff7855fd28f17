# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for the agent conformance and differential tests (stdlib only).

Start a QGA-speaking agent (tether-agent or the reference qemu-ga) on a unix socket in a
temporary directory, talk raw bytes to it, and read its replies one line at a time. Only
processes started here are ever killed, and only by their PID.
"""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# The reference agent (qemu-guest-agent 7.2); TETHER_QEMU_GA points elsewhere (tests of the
# missing-reference path use a path that does not exist).
QEMU_GA = os.environ.get('TETHER_QEMU_GA', '/usr/sbin/qemu-ga')


def missing_reference(test, what):
    """The exit status of a test that cannot run because a reference is missing: a counted
    skip outside CI (77, meson's SKIP), a failure in CI (CI=true). Prints why."""
    if os.environ.get('CI') == 'true':
        print('FAIL: %s cannot run: %s is missing (CI=true: a missing reference is a failure)'
              % (test, what), flush=True)
        return 1
    print('SKIP: %s cannot run: %s is missing' % (test, what), flush=True)
    return 77


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

    def __init__(self, binary, extra_args=(), name='agent', tmpdir=None, fake_passwd=None):
        self.binary = binary
        self.own_tmp = tmpdir is None
        self.dir = tmpdir or tempfile.mkdtemp(prefix='conform-%s-' % name, dir='/tmp')
        self.sock_path = os.path.join(self.dir, name + '.sock')
        self.statedir = os.path.join(self.dir, name + '-state')
        os.makedirs(self.statedir, exist_ok=True)
        self.log_path = os.path.join(self.dir, name + '.stderr')
        self.argv = [binary, '-m', 'unix-listen', '-p', self.sock_path, '-t', self.statedir]
        self.argv += list(extra_args)
        if fake_passwd:
            # Private mount namespace: /etc is replaced for this agent only, by a copy whose
            # passwd has the fake user. The whole folder: a mount on /etc/passwd itself goes
            # away when useradd on the host renames a new passwd over it (CI runs another
            # suite beside this one that adds users). unshare and sh exec, so the PID we hold
            # is the agent's own.
            self.argv = ['unshare', '-m', 'sh', '-c',
                         'mount --bind "$0" /etc && exec "$@"', fake_passwd] + self.argv
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

    def flood(self, data, sync_id, timeout=30.0):
        """Send data followed by guest-sync(sync_id) from a thread while reading replies here.

        Big malformed inputs make an agent write many error replies; a client that only writes
        would deadlock against it (qemu-ga busy-waits on a full socket). Returns
        (first_lines, counts, sync_seen, peak_kib): the first 5 reply lines, a Counter of all
        lines before the sync reply, whether the sync reply arrived, and the highest VmRSS seen.
        """
        import collections
        import threading
        tail = ('{"execute":"guest-sync","arguments":{"id":%d}}' % sync_id).encode()
        want = ('{"return": %d}\n' % sync_id).encode()
        errors = []

        def sender():
            try:
                self.sock.sendall(data)
                self.sock.sendall(tail)
            except OSError as e:
                errors.append(e)
        self.sock.settimeout(None)
        th = threading.Thread(target=sender, daemon=True)
        th.start()
        first, counts, seen, peak = [], collections.Counter(), False, 0
        deadline = time.monotonic() + timeout
        last_mem = 0.0
        while time.monotonic() < deadline:
            now = time.monotonic()
            if now - last_mem > 0.05:
                m = self.mem()
                if m:
                    peak = max(peak, m.get('VmRSS', 0), m.get('VmHWM', 0))
                last_mem = now
            if b'\n' in self.buf:
                line, _, self.buf = self.buf.partition(b'\n')
                line += b'\n'
                if line == want:
                    seen = True
                    break
                if len(first) < 5:
                    first.append(line)
                counts[line] += 1
                continue
            # The socket stays blocking (the sender thread shares it): poll before reading.
            if not select.select([self.sock], [], [], 0.05)[0]:
                continue
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:
                break
            if not chunk:
                break
            self.buf += chunk
        th.join(timeout=max(0.1, deadline - time.monotonic()))
        if errors:
            first.append(('sender: %s' % errors[0]).encode())
        m = self.mem()
        if m:
            peak = max(peak, m.get('VmRSS', 0), m.get('VmHWM', 0))
        return first, counts, seen, peak

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


# ---- a user that exists only inside the agents' mount namespace (for ssh key reads) ----
FAKE_USER = 'conformuser'
FAKE_UID = 4242
FAKE_KEYS_FILE = ('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIconform1 a@b\n'
                  '\n'
                  '# a comment line\n'
                  '  ssh-rsa AAAAB3NzaC1yc2EAAAADconform2 c@d  \n')
FAKE_KEYS = ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIconform1 a@b',
             'ssh-rsa AAAAB3NzaC1yc2EAAAADconform2 c@d']


def make_fake_user(tmpdir):
    """A copy of /etc whose passwd has FAKE_USER, whose home (in tmpdir) holds FAKE_KEYS_FILE.

    Returns the copy's path, to be bind-mounted over /etc in a private mount namespace
    (Agent(fake_passwd=...)), so the host's users are never touched.
    """
    home = os.path.join(tmpdir, 'home')
    os.makedirs(os.path.join(home, '.ssh'), exist_ok=True)
    keys = os.path.join(home, '.ssh', 'authorized_keys')
    with open(keys, 'w') as f:
        f.write(FAKE_KEYS_FILE)
    for p, mode in ((home, 0o755), (os.path.join(home, '.ssh'), 0o700), (keys, 0o600)):
        os.chown(p, FAKE_UID, FAKE_UID)
        os.chmod(p, mode)
    etc = os.path.join(tmpdir, 'etc')
    subprocess.run(['cp', '-a', '/etc', etc], check=True)
    with open(os.path.join(etc, 'passwd'), 'a') as dst:
        dst.write('%s:x:%d:%d::%s:/bin/sh\n' % (FAKE_USER, FAKE_UID, FAKE_UID, home))
    return etc


def can_unshare():
    try:
        return subprocess.run(['unshare', '-m', 'true'], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ---- reply shapes, from shared/reference/qga-commands.md (optional keys start with '?') ----
INT, STR, BOOL, NUM, ANY = 'int', 'string', 'bool', 'number', 'any'
PCI = {'domain': INT, 'bus': INT, 'slot': INT, 'function': INT}
CCW = {'cssid': INT, 'ssid': INT, 'subchno': INT, 'devno': INT}
BUS_TYPES = ('ide', 'fdc', 'scsi', 'virtio', 'xen', 'usb', 'uml', 'sata', 'sd', 'unknown',
             'ieee1394', 'ssa', 'fibre', 'raid', 'iscsi', 'sas', 'mmc', 'virtual',
             'file-backed-virtual', 'nvme')
DISK_ADDR = {'pci-controller': PCI, 'bus-type': ('enum',) + BUS_TYPES, 'bus': INT, 'target': INT,
             'unit': INT, '?serial': STR, '?dev': STR, '?ccw-address': CCW}
IFSTATS = {k: INT for k in ('rx-bytes', 'rx-packets', 'rx-errs', 'rx-dropped', 'tx-bytes',
                            'tx-packets', 'tx-errs', 'tx-dropped')}
DISKSTATS = {'?' + k: INT for k in (
    'read-sectors', 'read-ios', 'read-merges', 'write-sectors', 'write-ios', 'write-merges',
    'discard-sectors', 'discard-ios', 'discard-merges', 'flush-ios', 'read-ticks', 'write-ticks',
    'discard-ticks', 'flush-ticks', 'ios-pgr', 'total-ticks', 'weight-ticks')}
SCHEMAS = {
    'guest-ping': {},
    'guest-get-time': INT,
    'guest-info': {'version': STR,
                   'supported_commands': [{'name': STR, 'enabled': BOOL,
                                           'success-response': BOOL}]},
    'guest-network-get-interfaces': [{
        'name': STR, '?hardware-address': STR,
        '?ip-addresses': [{'ip-address': STR, 'ip-address-type': ('enum', 'ipv4', 'ipv6'),
                           'prefix': INT}],
        '?statistics': IFSTATS}],
    'guest-network-get-route': [{
        'iface': STR, 'destination': STR, 'metric': INT, '?gateway': STR, '?mask': STR,
        '?irtt': INT, '?flags': INT, '?refcnt': INT, '?use': INT, '?window': INT, '?mtu': INT,
        '?desprefixlen': STR, '?source': STR, '?srcprefixlen': STR, '?nexthop': STR,
        'version': ('enum', 4, 6)}],
    'guest-get-vcpus': [{'logical-id': INT, 'online': BOOL, 'can-offline': BOOL}],
    'guest-get-fsinfo': [{'name': STR, 'mountpoint': STR, 'type': STR, '?used-bytes': INT,
                          '?total-bytes': INT, '?total-bytes-privileged': INT,
                          'disk': [DISK_ADDR]}],
    'guest-get-disks': [{'name': STR, 'partition': BOOL, '?dependencies': [STR],
                         '?address': DISK_ADDR, '?alias': STR, '?smart': ANY}],
    'guest-get-memory-blocks': [{'phys-index': INT, 'online': BOOL, 'can-offline': BOOL}],
    'guest-get-memory-block-info': {'size': INT},
    'guest-get-host-name': {'host-name': STR},
    'guest-get-users': [{'user': STR, 'login-time': NUM, '?domain': STR}],
    'guest-get-timezone': {'?zone': STR, 'offset': INT},
    'guest-get-osinfo': {'?' + k: STR for k in (
        'kernel-release', 'kernel-version', 'machine', 'id', 'name', 'pretty-name', 'version',
        'version-id', 'variant', 'variant-id')},
    'guest-get-diskstats': [{'name': STR, 'major': INT, 'minor': INT, 'stats': DISKSTATS}],
    'guest-get-cpustats': [dict({'type': ('enum', 'linux'), 'cpu': INT, 'user': INT, 'nice': INT,
                                 'system': INT, 'idle': INT},
                                **{'?' + k: INT for k in ('iowait', 'irq', 'softirq', 'steal',
                                                          'guest', 'guestnice')})],
    'guest-get-load': {'load1m': NUM, 'load5m': NUM, 'load15m': NUM},
    'guest-ssh-get-authorized-keys': {'keys': [STR]},
    'guest-fsfreeze-status': ('enum', 'thawed', 'frozen'),
    'guest-sync': INT,
    'guest-sync-delimited': INT,
    'guest-file-open': INT,
    'guest-file-read': {'count': INT, 'buf-b64': STR, 'eof': BOOL},
    'guest-file-write': {'count': INT, 'eof': BOOL},
    'guest-file-seek': {'position': INT, 'eof': BOOL},
    'guest-file-flush': {},
    'guest-file-close': {},
    'guest-exec': {'pid': INT},
    'guest-exec-status': {'exited': BOOL, '?exitcode': INT, '?signal': INT, '?out-data': STR,
                          '?err-data': STR, '?out-truncated': BOOL, '?err-truncated': BOOL},
}


def shape_errors(value, spec, path='return'):
    """Differences between a decoded value and a SCHEMAS spec, as readable strings."""
    errs = []
    if spec == ANY:
        return errs
    if isinstance(spec, tuple) and spec[0] == 'enum':
        if value not in spec[1:] or isinstance(value, bool):
            errs.append('%s: %r not one of %r' % (path, value, spec[1:]))
        return errs
    if isinstance(spec, str):
        t = jtype(value)
        ok = (t == spec or (spec == NUM and t in ('int', 'float')))
        if not ok:
            errs.append('%s: expected %s, got %s %r' % (path, spec, t, value))
        return errs
    if isinstance(spec, list):
        if not isinstance(value, list):
            return ['%s: expected array, got %s' % (path, jtype(value))]
        for i, v in enumerate(value):
            errs += shape_errors(v, spec[0], '%s[%d]' % (path, i))
        return errs
    if not isinstance(value, dict):
        return ['%s: expected object, got %s' % (path, jtype(value))]
    known = set()
    for k, sub in spec.items():
        opt = k.startswith('?')
        name = k[1:] if opt else k
        known.add(name)
        if name not in value:
            if not opt:
                errs.append('%s: missing required member %r' % (path, name))
            continue
        errs += shape_errors(value[name], sub, '%s.%s' % (path, name))
    for k in value:
        if k not in known:
            errs.append('%s: unknown member %r' % (path, k))
    return errs
