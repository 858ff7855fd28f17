#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""tether-agent's command line, config file, process set-up and transports other than unix-listen.

-V, -h, -D (and config merging: the command line overrides scalars, lists accumulate), -c with a
missing or malformed file, -b/-a and `help`, -d with a locked pidfile, -l, isa-serial over a pty,
systemd socket activation (LISTEN_FDS), unix-listen serving one client at a time, and -r.
Usage: test_options.py /path/to/tether-agent
"""
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import start_agent  # noqa: E402

AGENT = os.path.abspath(sys.argv[1])
passed = failed = 0
# What a sanitizer writes on stderr (ASan, LSan, UBSan): any of it fails the test.
SANITIZER_MARKS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:')


def check(name, cond, detail=''):
    global passed, failed
    if cond:
        passed += 1
        print('ok   ' + name)
    else:
        failed += 1
        print('FAIL %s%s' % (name, ': ' + str(detail) if detail != '' else ''))


def sanitizer_lines(text):
    return [ln for ln in text.splitlines() if any(m in ln for m in SANITIZER_MARKS)]


def check_clean(name, text):
    """No sanitizer report in an agent's stderr (or log)."""
    bad = sanitizer_lines(text)
    check(name + ': no sanitizer report', not bad, '\n'.join(bad[:5]))


def run(*args, env=None, timeout=10):
    p = subprocess.run([AGENT, *args], capture_output=True, text=True, timeout=timeout,
                       env=env)
    check_clean('tether-agent ' + ' '.join(args)[:60], p.stderr)
    return p


class Proc:
    """An agent started in the background: stderr to a file, exit status and stderr checked
    when it is finished with (SIGTERM must give exit status 0 unless told otherwise)."""

    def __init__(self, name, argv, tmp, **kw):
        self.name = name
        self.log = os.path.join(tmp, name.replace(' ', '-') + '.stderr')
        with open(self.log, 'wb') as f:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f, **kw)

    def stderr(self):
        with open(self.log, errors='replace') as f:
            return f.read()

    def finish(self, want_rc=0):
        """Stop it (SIGTERM) if still running, then check its exit status and stderr."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if want_rc is not None:
            check('%s: exit status %d' % (self.name, want_rc), self.p.returncode == want_rc,
                  '%s; stderr: %s' % (self.p.returncode, self.stderr()[-500:]))
        check_clean(self.name, self.stderr())


def read_reply(fd, timeout=5):
    """One reply line from a raw fd (pty master or socket fd)."""
    buf = b''
    deadline = time.monotonic() + timeout
    while b'\n' not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('no reply')
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError('closed')
            buf += chunk
    return buf.split(b'\n', 1)[0]


def wait_for(pred, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def is_raw(fd):
    """The agent puts its serial line in raw mode when it opens it: no echo, no ICANON."""
    lflag = termios.tcgetattr(fd)[3]
    return not (lflag & termios.ECHO) and not (lflag & termios.ICANON)


def finish_agent(name, a):
    """An agentlib agent after close(): SIGTERM gave exit status 0, no sanitizer report."""
    check(name + ': exit status 0', a.proc.returncode == 0, a.proc.returncode)
    check_clean(name, a.stderr())


def test_version_help(tmp):
    p = run('-V')
    check('-V prints the version', p.returncode == 0 and p.stdout.startswith('Tether guest agent '),
          p.stdout)
    p = run('--help')
    check('-h prints usage', p.returncode == 0 and '--block-rpcs' in p.stdout and
          '--allow-rpcs' in p.stdout)
    p = run('--no-such-option')
    check('unknown option fails with a hint', p.returncode != 0 and '--help' in p.stderr, p.stderr)
    p = run('-m', 'carrier-pigeon', '-D')
    check('unknown method is refused', p.returncode != 0 and "invalid method 'carrier-pigeon'"
          in p.stderr, p.stderr)
    p = run('-t', 'relative/dir', '-D')
    check('relative statedir is refused', p.returncode != 0 and 'absolute' in p.stderr, p.stderr)


def test_dump_conf(tmp):
    conf = os.path.join(tmp, 'a.conf')
    with open(conf, 'w') as f:
        f.write('# comment\n[other]\npath=/ignored\n[general]\nmethod = unix-listen\n'
                'path=/tmp/from-file.sock\nverbose=1\nblock-rpcs=guest-ping\n'
                'max-exec=7\nfreeze-timeout=0\n')
    p = run('-c', conf, '-p', '/tmp/from-cli.sock', '-b', 'guest-get-time,guest-info', '-D')
    want = ('[general]\ndaemon=false\nmethod=unix-listen\npath=/tmp/from-cli.sock\n'
            'pidfile=/var/run/tether-agent.pid\nstatedir=/var/run\nverbose=true\n'
            'retry-path=false\nblock-rpcs=guest-ping,guest-get-time,guest-info\n'
            'max-file-handles=128\nmax-exec=7\nexec-reap-seconds=600\nfreeze-timeout=0\n')
    check('-D merges file and command line', p.returncode == 0 and p.stdout == want,
          p.stdout + p.stderr)
    # The dump is itself a valid config file that gives the same dump.
    again = os.path.join(tmp, 'again.conf')
    with open(again, 'w') as f:
        f.write(p.stdout)
    q = run('-c', again, '-D')
    check('-D output reads back to the same config', q.stdout == p.stdout, q.stdout + q.stderr)
    p = run('-c', os.path.join(tmp, 'missing.conf'), '-D')
    check('-c with a missing file fails', p.returncode != 0 and 'missing.conf' in p.stderr,
          p.stderr)
    bad = os.path.join(tmp, 'bad.conf')
    with open(bad, 'w') as f:
        f.write('[general]\nverbose=maybe\n')
    p = run('-c', bad, '-D')
    check('a bad boolean names the key', p.returncode != 0 and "key 'verbose'" in p.stderr,
          p.stderr)
    with open(bad, 'w') as f:
        f.write('[general]\nno-such-key=1\n')
    p = run('-c', bad, '-D')
    check('an unknown key is named', p.returncode != 0 and "unknown key 'no-such-key'" in p.stderr,
          p.stderr)
    env = dict(os.environ, QGA_CONF=conf)
    p = run('-D', env=env)
    check('$QGA_CONF names the default config file', 'max-exec=7' in p.stdout, p.stdout)


def test_rpc_lists(tmp):
    p = run('-b', 'help')
    names = p.stdout.split()
    check('-b help lists the commands', p.returncode == 0 and 'guest-ping' in names and
          'guest-file-read' in names, p.stdout)
    p = run('-a', 'help')
    check('-a help lists the commands', p.stdout.split() == names)
    with start_agent(AGENT, ['-a', 'guest-ping,guest-info,guest-get-time', '-b',
                             'guest-get-time']) as a:
        check('allowed command answers', a.cmd('guest-ping') == {'return': {}})
        r = a.cmd('guest-get-time')
        check('block list wins over allow list', r == {'error': {
            'class': 'CommandNotFound', 'desc': 'Command guest-get-time has been disabled'}}, r)
        r = a.cmd('guest-get-host-name')
        check('command outside the allow list is disabled',
              r.get('error', {}).get('desc') == 'Command guest-get-host-name has been disabled', r)
        info = {c['name']: c for c in a.ret('guest-info')['supported_commands']}
        check('guest-info shows enabled flags', info['guest-ping']['enabled'] is True and
              info['guest-get-time']['enabled'] is False and
              info['guest-get-host-name']['enabled'] is False)
    finish_agent('agent with -a/-b', a)


def test_daemonize(tmp):
    sock = os.path.join(tmp, 'd.sock')
    pidfile = os.path.join(tmp, 'agent.pid')
    log = os.path.join(tmp, 'agent.log')
    p = run('-d', '-m', 'unix-listen', '-p', sock, '-t', tmp, '-f', pidfile, '-l', log, '-v')
    check('-d returns once the daemon is ready', p.returncode == 0 and os.path.exists(pidfile),
          p.stderr)
    pid = int(open(pidfile).read())
    check('pidfile holds a live pid', os.path.exists('/proc/%d' % pid))
    # -d returns once the daemon serves its channel: no waiting for the socket here.
    s = socket.socket(socket.AF_UNIX)
    check('daemon serves its socket when -d returns', os.path.exists(sock))
    s.connect(sock)
    s.sendall(b'{"execute":"guest-ping"}')
    check('daemon answers', read_reply(s.fileno()) == b'{"return": {}}')
    s.close()
    p2 = run('-d', '-m', 'unix-listen', '-p', sock + '2', '-t', tmp, '-f', pidfile)
    check('a second daemon with the same pidfile is refused',
          p2.returncode != 0 and os.path.exists('/proc/%d' % pid) and
          'locked' in p2.stderr + open(log).read())
    check('the refused daemon leaves the first one\'s pidfile alone',
          os.path.exists(pidfile) and int(open(pidfile).read()) == pid)
    os.kill(pid, signal.SIGTERM)
    check('daemon exits on SIGTERM and removes its pidfile',
          wait_for(lambda: not os.path.exists('/proc/%d' % pid) and not os.path.exists(pidfile)))
    text = open(log).read()
    check('-l writes the log file, -v logs commands',
          'serving unix-listen' in text and 'executing guest-ping' in text, text)
    # The daemon is not our child (its exit status goes to init): its log holds its stderr.
    check_clean('daemonized agent log', text)
    bad = os.path.join(tmp, 'missing', 'd.sock')
    p3 = run('-d', '-m', 'unix-listen', '-p', bad, '-t', tmp, '-f', pidfile)
    check('-d exits 1 when the daemon cannot open its channel, and says why',
          p3.returncode == 1 and ("cannot bind '%s'" % bad) in p3.stderr, p3.stderr)
    check('and the failed daemon removes its pidfile', not os.path.exists(pidfile))


def test_isa_serial(tmp):
    master, slave = pty.openpty()
    path = os.ttyname(slave)
    proc = Proc('isa-serial agent', [AGENT, '-m', 'isa-serial', '-p', path, '-t', tmp], tmp)
    try:
        # The agent puts the line in raw mode: no echo, no CR/LF translation.
        check('isa-serial sets raw mode', wait_for(lambda: is_raw(slave), 10))
        os.write(master, b'{"execute":"guest-sync","arguments":{"id":4242}}')
        check('isa-serial answers', read_reply(master) == b'{"return": 4242}')
    finally:
        proc.finish()
        os.close(master)
        os.close(slave)


def test_socket_activation(tmp):
    path = os.path.join(tmp, 'activated.sock')
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(path)
    ls.listen(1)
    # The agent must see LISTEN_PID equal to its own pid: set it in a shell that execs it.
    proc = Proc('socket-activated agent',
                ['sh', '-c', 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -t "$1"', AGENT, tmp], tmp,
                pass_fds=[ls.fileno()], preexec_fn=lambda: os.dup2(ls.fileno(), 3))
    ls.close()
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b'{"execute":"guest-ping","id":"sa"}')
        check('socket activation serves the passed socket',
              read_reply(s.fileno()) == b'{"return": {}, "id": "sa"}')
        s.close()
    finally:
        proc.finish()
    proc = Proc('agent with two activated sockets',
                ['sh', '-c', 'LISTEN_PID=$$ LISTEN_FDS=2 exec "$0" -t "$1"', AGENT, tmp], tmp)
    try:
        proc.p.wait(10)
    except subprocess.TimeoutExpired:
        pass
    err = proc.stderr()
    check('two activated sockets are refused', proc.p.returncode not in (None, 0) and
          'exactly one socket' in err, err)
    proc.finish(want_rc=None)


def test_vsock_errors(tmp):
    # No vsock transport on the build host: check the address handling and that the failure
    # is a clear error, not a hang. (Real vsock traffic needs a vhost-vsock guest.)
    p = subprocess.run([AGENT, '-m', 'vsock-listen', '-p', 'not-an-address', '-t', tmp],
                       capture_output=True, text=True, timeout=10)
    check('vsock-listen refuses a malformed address', p.returncode != 0 and
          "vsock address 'not-an-address' is not <cid>:<port>" in p.stderr, p.stderr)
    p = subprocess.run([AGENT, '-m', 'vsock-listen', '-p', '4294967296:1', '-t', tmp],
                       capture_output=True, text=True, timeout=10)
    check('vsock-listen refuses an out-of-range cid', p.returncode != 0 and
          'is not <cid>:<port>' in p.stderr, p.stderr)
    p = subprocess.run([AGENT, '-m', 'vsock-listen', '-p', '1:5555', '-t', tmp],
                       capture_output=True, text=True, timeout=10)
    check('vsock-listen says why it cannot listen', p.returncode != 0 and
          ('vsock' in p.stderr), p.stderr)


def test_one_client_at_a_time(tmp):
    with start_agent(AGENT) as a:
        b = socket.socket(socket.AF_UNIX)
        b.connect(a.sock_path)  # queued in the backlog, not served yet
        b.sendall(b'{"execute":"guest-sync","arguments":{"id":2}}')
        check('first client served', a.cmd('guest-sync', {'id': 1}) == {'return': 1})
        r, _, _ = select.select([b], [], [], 0.3)
        check('second client waits while the first is connected', not r)
        a.sock.close()
        a.sock = None
        check('second client served once the first leaves', read_reply(b.fileno()) ==
              b'{"return": 2}')
        b.close()
    finish_agent('unix-listen agent', a)


# The agent's reopen timer with -r (CHANNEL_RETRY_MS in src/agent/channel.c).
RETRY_S = 5


def test_exit_without_retry(tmp):
    # isa-serial on a pty whose other side closes: EIO on read. Without -r the agent exits;
    # with -r it keeps running, reopens the device after its retry timer, and serves again.
    # The agent opens the device through a symlink, so that the reopen can find a new pty.
    link = os.path.join(tmp, 'serial')
    for retry in (False, True):
        master, slave = pty.openpty()
        os.symlink(os.ttyname(slave), link + '.new')
        os.replace(link + '.new', link)
        name = 'isa-serial agent' + (' with -r' if retry else '')
        args = [AGENT, '-m', 'isa-serial', '-p', link, '-t', tmp] + (['-r'] if retry else [])
        proc = Proc(name, args, tmp)
        check('%s: serving' % name, wait_for(lambda: is_raw(slave), 10))
        os.write(master, b'{"execute":"guest-sync","arguments":{"id":1}}')
        check('%s: answers before the channel error' % name, read_reply(master) ==
              b'{"return": 1}')
        os.close(slave)
        os.close(master)
        check('%s: the channel error is seen' % name,
              wait_for(lambda: 'channel error' in proc.stderr(), 10), proc.stderr())
        if not retry:
            exited = wait_for(lambda: proc.p.poll() is not None, 10)
            check('a channel error without -r ends the agent', exited and proc.p.returncode != 0,
                  proc.p.returncode)
            proc.finish(want_rc=1)
            continue
        check('-r keeps the agent running after a channel error', proc.p.poll() is None)
        master, slave = pty.openpty()
        os.symlink(os.ttyname(slave), link + '.new')
        os.replace(link + '.new', link)
        t0 = time.monotonic()
        reopened = wait_for(lambda: is_raw(slave), RETRY_S * 3)
        check('-r reopens the device after its %d s retry timer' % RETRY_S, reopened,
              proc.stderr()[-500:])
        check('-r: the reopen came from the timer (after ~%d s)' % RETRY_S,
              time.monotonic() - t0 > RETRY_S / 2, time.monotonic() - t0)
        if reopened:
            os.write(master, b'{"execute":"guest-sync","arguments":{"id":2}}')
            check('-r: the reopened device is served', read_reply(master) == b'{"return": 2}')
        proc.finish()
        os.close(master)
        os.close(slave)


def main():
    tests = [test_version_help, test_dump_conf, test_rpc_lists, test_daemonize, test_isa_serial,
             test_socket_activation, test_vsock_errors, test_one_client_at_a_time, test_exit_without_retry]
    for t in tests:
        tmp = tempfile.mkdtemp(prefix='tether-opts-')
        try:
            t(tmp)
        except Exception as e:  # report and go on with the next group
            check(t.__name__ + ' ran to the end', False, repr(e))
        finally:
            subprocess.run(['rm', '-rf', tmp])
    print('%d passed, %d failed' % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
