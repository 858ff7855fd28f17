#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""guest-exec and guest-exec-status against a real agent: exit codes, signals, every capture
mode, input-data, environment and PATH rules, exec failure texts (as qemu-ga 7.2 prints them),
the 16 MiB capture cap, "exited" only after EOF, the max-exec bound and the reaping of results
nobody collects.

usage: test_exec.py AGENT [--reference]   (--reference: run the checks qemu-ga 7.2 supports on it)
"""
import base64
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import Results, start_agent, start_reference  # noqa: E402

MiB = 1024 * 1024
T = Results()


def b64(data):
    return base64.b64encode(data).decode()


def err_line(desc):
    return json.dumps({'error': {'class': 'GenericError', 'desc': desc}}).encode()


def spawn_fail_line(path, reason):
    # g_spawn's text; json.dumps escapes the curly quotes as \u201c, qemu writes \u201C.
    desc = "Guest agent command failed, error was 'Failed to execute child process \u201c%s\u201d (%s)'" \
        % (path, reason)
    return json.dumps({'error': {'class': 'GenericError', 'desc': desc}}) \
        .replace('\\u201c', '\\u201C').replace('\\u201d', '\\u201D').encode()


def wait_status(a, pid, timeout=30.0):
    """Poll guest-exec-status until exited; returns the final raw reply line."""
    deadline = time.monotonic() + timeout
    while True:
        raw = a.cmd_line('guest-exec-status', {'pid': pid})
        r = json.loads(raw)
        if 'error' in r or r['return'].get('exited'):
            return raw
        if time.monotonic() > deadline:
            return raw
        time.sleep(0.01)


def wait_for(pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def wait_gone(pid, timeout=30.0):
    """True once pid has exited and been reaped (no /proc entry left)."""
    return wait_for(lambda: not os.path.exists('/proc/%d' % pid), timeout)


def run(a, args, timeout=30.0):
    """guest-exec then wait; returns the final status reply line (or the exec error line)."""
    raw = a.cmd_line('guest-exec', args)
    r = json.loads(raw)
    if 'error' in r:
        return raw
    return wait_status(a, r['return']['pid'], timeout)


def ret(raw):
    return json.loads(raw).get('return', json.loads(raw))


def out_of(raw, key='out-data'):
    r = ret(raw)
    return base64.b64decode(r[key]) if key in r else None


def test_basics(a):
    raw = a.cmd_line('guest-exec', {'path': '/bin/true'})
    pid = ret(raw)['pid']
    T.check('exec reply', raw, b'{"return": {"pid": %d}}' % pid)
    T.check('true', wait_status(a, pid), b'{"return": {"exitcode": 0, "exited": true}}')
    T.check('second status', a.cmd_line('guest-exec-status', {'pid': pid}), err_line("Invalid parameter 'pid'"))
    T.check('unknown pid', a.cmd_line('guest-exec-status', {'pid': -5}), err_line("Invalid parameter 'pid'"))
    T.check('exit 3', run(a, {'path': '/bin/sh', 'arg': ['-c', 'exit 3']}),
            b'{"return": {"exitcode": 3, "exited": true}}')
    T.check('kill -9', run(a, {'path': '/bin/sh', 'arg': ['-c', 'kill -9 $$']}),
            b'{"return": {"signal": 9, "exited": true}}')
    T.check('args', out_of(run(a, {'path': 'sh', 'arg': ['-c', 'printf "[%s]" "$0" "$@"', 'a b', 'c'],
                                   'capture-output': True})), b'[a b][c]')
    T.check('argv[0] is path', out_of(run(a, {'path': 'sh', 'arg': ['-c', 'echo $0'],
                                              'capture-output': True})), b'sh\n')


def test_capture(a, reference):
    sh = {'path': '/bin/sh', 'arg': ['-c', 'echo out; echo err >&2']}
    T.check('capture true', run(a, dict(sh, **{'capture-output': True})),
            b'{"return": {"exitcode": 0, "err-data": "ZXJyCg==", "out-data": "b3V0Cg==", '
            b'"err-truncated": false, "out-truncated": false, "exited": true}}')
    T.check('capture false', run(a, dict(sh, **{'capture-output': False})),
            b'{"return": {"exitcode": 0, "exited": true}}')
    T.check('no capture', run(a, sh), b'{"return": {"exitcode": 0, "exited": true}}')
    T.check('capture, no output', run(a, {'path': '/bin/true', 'capture-output': True}),
            b'{"return": {"exitcode": 0, "exited": true}}')
    T.check('capture stderr only output', run(a, {'path': 'sh', 'arg': ['-c', 'echo err >&2'],
                                                  'capture-output': True}),
            b'{"return": {"exitcode": 0, "err-data": "ZXJyCg==", "err-truncated": false, "exited": true}}')
    T.check('capture with signal', run(a, {'path': 'sh', 'arg': ['-c', 'echo x; echo y >&2; kill -TERM $$'],
                                           'capture-output': True}),
            b'{"return": {"err-data": "eQo=", "out-data": "eAo=", "err-truncated": false, "signal": 15, '
            b'"out-truncated": false, "exited": true}}')
    if reference:
        T.check('7.2 capture is bool', a.cmd_line('guest-exec', dict(sh, **{'capture-output': 'merged'})),
                err_line("Invalid parameter type for 'capture-output', expected: boolean"))
        return
    T.check('capture none', run(a, dict(sh, **{'capture-output': 'none'})),
            b'{"return": {"exitcode": 0, "exited": true}}')
    T.check('capture separated', run(a, dict(sh, **{'capture-output': 'separated'})),
            b'{"return": {"exitcode": 0, "err-data": "ZXJyCg==", "out-data": "b3V0Cg==", '
            b'"err-truncated": false, "out-truncated": false, "exited": true}}')
    T.check('capture stdout', run(a, dict(sh, **{'capture-output': 'stdout'})),
            b'{"return": {"exitcode": 0, "out-data": "b3V0Cg==", "out-truncated": false, "exited": true}}')
    T.check('capture stderr', run(a, dict(sh, **{'capture-output': 'stderr'})),
            b'{"return": {"exitcode": 0, "err-data": "ZXJyCg==", "err-truncated": false, "exited": true}}')
    T.check('capture merged', out_of(run(a, dict(sh, **{'capture-output': 'merged'}))), b'out\nerr\n')
    T.check('capture bad name', a.cmd_line('guest-exec', dict(sh, **{'capture-output': 'both'})),
            err_line("Parameter 'capture-output' does not accept value 'both'"))


def test_input(a):
    T.check('input to cat', run(a, {'path': '/bin/cat', 'input-data': 'aGVsbG8=', 'capture-output': True}),
            b'{"return": {"exitcode": 0, "out-data": "aGVsbG8=", "out-truncated": false, "exited": true}}')
    big = os.urandom(3 * MiB)
    T.ok('3 MiB through cat', out_of(run(a, {'path': 'cat', 'input-data': b64(big), 'capture-output': True}))
         == big)
    T.check('input, child ignores it', run(a, {'path': 'true', 'input-data': b64(big)}),
            b'{"return": {"exitcode": 0, "exited": true}}')
    T.check('glib base64 quirks', out_of(run(a, {'path': 'cat', 'input-data': 'QUJDRA==QUJD',
                                                 'capture-output': True})), b'ABCDABC')
    T.check('empty input', run(a, {'path': 'cat', 'input-data': '', 'capture-output': True}),
            b'{"return": {"exitcode": 0, "exited": true}}')
    T.check('bad base64', a.cmd_line('guest-exec', {'path': 'cat', 'input-data': '!!!'}),
            err_line('Base64 data contains invalid characters'))
    T.check('stdin without input-data', out_of(run(a, {'path': 'sh', 'arg': ['-c', 'readlink /proc/self/fd/0'],
                                                       'capture-output': True})), b'/dev/null\n')


def test_env_and_path(a, tmp):
    T.check('env replaces', out_of(run(a, {'path': '/usr/bin/env', 'env': ['A=1', 'B=x y'],
                                           'capture-output': True})), b'A=1\nB=x y\n')
    T.check('empty env', run(a, {'path': '/usr/bin/env', 'env': [], 'capture-output': True}),
            b'{"return": {"exitcode": 0, "exited": true}}')
    T.check('PATH from env', run(a, {'path': 'env', 'env': ['PATH=/nonexistent'], 'capture-output': True}),
            spawn_fail_line('env', 'No such file or directory'))
    bindir = os.path.join(tmp, 'bin')
    os.makedirs(bindir)
    for name, text, mode in (('myprog', '#!/bin/sh\necho myprog "$@"\n', 0o755),
                             ('noshebang', 'echo noshebang "$@"\n', 0o755),
                             ('noexec', '#!/bin/sh\necho x\n', 0o644)):
        with open(os.path.join(bindir, name), 'w') as f:
            f.write(text)
        os.chmod(os.path.join(bindir, name), mode)
    T.check('search env PATH', out_of(run(a, {'path': 'myprog', 'arg': ['1'], 'env': ['PATH=/usr/bin:' + bindir],
                                              'capture-output': True})), b'myprog 1\n')
    T.check('script without #!', out_of(run(a, {'path': os.path.join(bindir, 'noshebang'), 'arg': ['2'],
                                                'capture-output': True})), b'noshebang 2\n')
    T.check('searched script without #!', out_of(run(a, {'path': 'noshebang', 'env': ['PATH=' + bindir],
                                                         'capture-output': True})), b'noshebang\n')
    T.check('search hits non-executable', run(a, {'path': 'noexec', 'env': ['PATH=' + bindir]}),
            spawn_fail_line('noexec', 'Permission denied'))
    T.check('non-executable path', run(a, {'path': os.path.join(bindir, 'noexec')}),
            spawn_fail_line(os.path.join(bindir, 'noexec'), 'Permission denied'))
    T.check('directory', run(a, {'path': tmp}), spawn_fail_line(tmp, 'Permission denied'))
    T.check('missing absolute', run(a, {'path': '/nonexistent'}),
            spawn_fail_line('/nonexistent', 'No such file or directory'))
    T.check('missing in PATH', run(a, {'path': 'nonexistent-prog-xyz'}),
            spawn_fail_line('nonexistent-prog-xyz', 'No such file or directory'))
    T.check('empty path', run(a, {'path': ''}), spawn_fail_line('', 'No such file or directory'))


def test_child_state(a):
    fds = out_of(run(a, {'path': 'sh', 'arg': ['-c', 'ls /proc/self/fd'], 'capture-output': True}))
    T.check('only stdio inherited', fds, b'0\n1\n2\n3\n')
    sig = out_of(run(a, {'path': 'sh', 'arg': ['-c', 'grep -E "^Sig(Blk|Ign)" /proc/self/status'],
                         'capture-output': True}))
    T.check('signals unblocked, none ignored', sig, b'SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n')


def test_truncation_and_eof(a):
    raw = run(a, {'path': 'sh', 'arg': ['-c', 'head -c 20000000 /dev/zero; head -c 17000000 /dev/zero >&2; exit 2'],
                  'capture-output': True}, timeout=60)
    r = ret(raw)
    T.check('truncated', (r.get('exitcode'), r.get('out-truncated'), r.get('err-truncated'),
                          out_of(raw) == bytes(16 * MiB), out_of(raw, 'err-data') == bytes(16 * MiB)),
            (2, True, True, True, True))
    raw = run(a, {'path': 'sh', 'arg': ['-c', 'head -c 1000 /dev/zero'], 'capture-output': True})
    T.check('not truncated', (ret(raw).get('out-truncated'), len(out_of(raw))), (False, 1000))

    # The shell exits at once; its background child keeps stdout open until the test opens
    # the gate (a FIFO), then prints "late".
    gate = os.path.join(a.tmp, 'gate')
    os.mkfifo(gate)
    pid = a.ret('guest-exec', {'path': 'sh', 'arg': ['-c', '(cat "$0" >/dev/null; echo late) & exit 0',
                                                     gate], 'capture-output': True})['pid']
    T.ok('the shell exits and is reaped by the agent', wait_gone(pid))
    T.check('not exited while output is open', a.cmd_line('guest-exec-status', {'pid': pid}),
            b'{"return": {"exited": false}}')
    with open(gate, 'wb'):
        pass  # the background child's cat sees EOF
    T.check('exited after EOF', wait_status(a, pid),
            b'{"return": {"exitcode": 0, "out-data": "bGF0ZQo=", "out-truncated": false, "exited": true}}')


def agent_pipes(pid):
    """How many pipe ends the agent holds (its captured output pipes among them)."""
    n = 0
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            n += os.readlink('/proc/%d/fd/%s' % (pid, fd)).startswith('pipe:')
        except OSError:
            pass
    return n


def test_total_output_cap(a, tmp):
    """Issue 10, defect 9: the output kept for uncollected children is bounded in total (64 MiB,
    four full streams), not only per child (16 MiB). Five children write 16 MiB each and stay
    alive (blocked on a FIFO) until the agent has closed all their pipes, so none is collected
    while the others are still read: exactly 64 MiB is kept, every stream cut short says
    out-truncated, and what is kept is a prefix of what was written."""
    fifo = os.path.join(tmp, 'gate')
    os.mkfifo(fifo)
    gate = os.open(fifo, os.O_RDWR)  # a writer exists from now on: the children's cat blocks
    try:
        base = agent_pipes(a.proc.pid)
        # The FIFO is opened first (our writer exists, so that does not block), so that closing
        # the gate later always reaches every child's cat.
        pids = [a.ret('guest-exec', {'path': 'sh', 'arg': ['-c', 'exec 3<"$0"; head -c %d /dev/zero; '
                                                         'exec >&- 2>&-; cat <&3 >/dev/null'
                                                         % (16 * MiB), fifo],
                                     'capture-output': True})['pid'] for _ in range(5)]
        deadline = time.monotonic() + 60
        while agent_pipes(a.proc.pid) > base and time.monotonic() < deadline:
            time.sleep(0.01)
        T.check('agent read every stream to EOF', agent_pipes(a.proc.pid), base)
    finally:
        os.close(gate)  # the last writer goes: every cat sees EOF and its child exits
    kept = []
    for pid in pids:
        r = ret(wait_status(a, pid, timeout=60))
        data = base64.b64decode(r.get('out-data', ''))
        kept.append((len(data), r.get('out-truncated'), data == bytes(len(data))))
    T.check('64 MiB kept in total, not 80', sum(k[0] for k in kept), 64 * MiB)
    T.check('a stream is truncated exactly when it was cut short',
            [(n < 16 * MiB) == trunc for n, trunc, _ in kept], [True] * 5)
    T.ok('at least one stream truncated', any(k[1] for k in kept), repr(kept))
    T.ok('kept bytes are a prefix of the output', all(k[2] for k in kept), repr(kept))
    raw = run(a, {'path': 'head', 'arg': ['-c', str(16 * MiB), '/dev/zero'],
                  'capture-output': True}, timeout=60)
    T.check('room again once collected', (ret(raw).get('out-truncated'), len(out_of(raw))),
            (False, 16 * MiB))


def test_limits(binary, tmp):
    conf = '[general]\nmax-exec=2\nexec-reap-seconds=1\n'
    with start_agent(binary, config=conf, tmp=tempfile.mkdtemp(dir=tmp)) as a:
        p1 = a.ret('guest-exec', {'path': 'sleep', 'arg': ['0.3']})['pid']
        p2 = a.ret('guest-exec', {'path': 'true'})['pid']
        T.check('exec limit', a.cmd_line('guest-exec', {'path': 'true'}),
                err_line('too many guest-exec processes: limit is 2 (max-exec)'))
        T.check('p2 collected', wait_status(a, p2), b'{"return": {"exitcode": 0, "exited": true}}')
        p3 = a.ret('guest-exec', {'path': 'true'})['pid']
        T.check('still at the limit', a.cmd('guest-exec', {'path': 'true'}).get('error', {}).get('desc'),
                'too many guest-exec processes: limit is 2 (max-exec)')
        # p1 and p3 finish and are dropped uncollected after 1 s: wait for the agent to say so.
        T.ok('p1 and p3 dropped (logged)', wait_for(
            lambda: all('the result of pid %d, not collected' % p in a.stderr() for p in (p1, p3)),
            15), a.stderr()[-500:])
        T.check('reaped result gone', a.cmd_line('guest-exec-status', {'pid': p1}),
                err_line("Invalid parameter 'pid'"))
        T.check('reaped result gone 2', a.cmd_line('guest-exec-status', {'pid': p3}),
                err_line("Invalid parameter 'pid'"))
        T.ok('room again after reaping', 'return' in a.cmd('guest-exec', {'path': 'true'}))
        T.ok('reaping logged', 'not collected' in a.stderr(), a.stderr()[-500:])
    T.check('no sanitizer reports (limits)', a.sanitizer_errors(), [])


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    reference = '--reference' in sys.argv[2:]
    tmp = tempfile.mkdtemp(prefix='tether-test-exec-')
    try:
        a = start_reference(tmp=os.path.join(tmp, 'agent')) if reference else \
            start_agent(binary, tmp=os.path.join(tmp, 'agent'))
        try:
            test_basics(a)
            test_capture(a, reference)
            test_input(a)
            test_env_and_path(a, tmp)
            test_child_state(a)
            test_truncation_and_eof(a)
            if not reference:
                test_total_output_cap(a, tmp)
        finally:
            a.close()
            T.check('no sanitizer reports', a.sanitizer_errors(), [])
        if not reference:
            test_limits(binary, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return T.finish()


if __name__ == '__main__':
    sys.exit(main())
