#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""guest-file-* against a real agent: exact replies and texts (as qemu-ga 7.2 prints them), every
open mode, large transfers checked by sha256, handle numbering persisted in the state directory,
and the max-file-handles bound.

usage: test_files.py AGENT [--reference]   (--reference: run the same checks on qemu-ga)
"""
import base64
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentlib import Results, start_agent, start_reference  # noqa: E402

MiB = 1024 * 1024
T = Results()


def b64(data):
    return base64.b64encode(data).decode()


def line(ret):
    """The exact reply line qemu-ga writes for a return value of small ints/bools/strings."""
    return json.dumps({'return': ret}).encode()


def err_line(desc):
    return json.dumps({'error': {'class': 'GenericError', 'desc': desc}}).encode()


def test_basics(a, tmp):
    p = os.path.join(tmp, 'ten')
    with open(p, 'wb') as f:
        f.write(b'0123456789')
    missing = os.path.join(tmp, 'missing')
    T.check('open missing', a.cmd_line('guest-file-open', {'path': missing}),
            err_line("failed to open file '%s' (mode: 'r'): No such file or directory" % missing))
    for mode in ('x', '', 'rb+ ', 'rw', 'r\n'):
        T.check('open mode %r' % mode, a.cmd('guest-file-open', {'path': p, 'mode': mode}),
                {'error': {'class': 'GenericError', 'desc': "invalid file open mode '%s'" % mode}})
    T.check('open dir for write', a.cmd_line('guest-file-open', {'path': tmp, 'mode': 'w'}),
            err_line("failed to open file '%s' (mode: 'w'): Is a directory" % tmp))

    h = a.ret('guest-file-open', {'path': p})
    T.check('read 10 of 10', a.cmd_line('guest-file-read', {'handle': h, 'count': 10}),
            b'{"return": {"count": 10, "buf-b64": "MDEyMzQ1Njc4OQ==", "eof": false}}')
    T.check('read at end', a.cmd_line('guest-file-read', {'handle': h, 'count': 10}),
            b'{"return": {"count": 0, "buf-b64": "", "eof": true}}')
    T.check('seek set', a.cmd_line('guest-file-seek', {'handle': h, 'offset': 0, 'whence': 'set'}),
            b'{"return": {"eof": false, "position": 0}}')
    T.check('read past end', a.cmd_line('guest-file-read', {'handle': h, 'count': 11}),
            b'{"return": {"count": 10, "buf-b64": "MDEyMzQ1Njc4OQ==", "eof": true}}')
    T.check('seek int 0', a.cmd_line('guest-file-seek', {'handle': h, 'offset': 3, 'whence': 0}),
            b'{"return": {"eof": false, "position": 3}}')
    T.check('read 0', a.cmd_line('guest-file-read', {'handle': h, 'count': 0}),
            b'{"return": {"count": 0, "buf-b64": "", "eof": false}}')
    T.check('read default', a.cmd_line('guest-file-read', {'handle': h}),
            b'{"return": {"count": 7, "buf-b64": "MzQ1Njc4OQ==", "eof": true}}')
    T.check('seek cur', a.cmd_line('guest-file-seek', {'handle': h, 'offset': -2, 'whence': 'cur'}),
            b'{"return": {"eof": false, "position": 8}}')
    T.check('seek int 1', a.cmd_line('guest-file-seek', {'handle': h, 'offset': 1, 'whence': 1}),
            b'{"return": {"eof": false, "position": 9}}')
    T.check('seek end past', a.cmd_line('guest-file-seek', {'handle': h, 'offset': 100, 'whence': 'end'}),
            b'{"return": {"eof": false, "position": 110}}')
    T.check('seek int 2', a.cmd_line('guest-file-seek', {'handle': h, 'offset': -1, 'whence': 2}),
            b'{"return": {"eof": false, "position": 9}}')
    for c in (-1, 48 * MiB + 1, 1 << 62):
        T.check('read count %d' % c, a.cmd_line('guest-file-read', {'handle': h, 'count': c}),
                err_line("value '%d' is invalid for argument count" % c))
    for w in (3, -1, 100):
        T.check('whence %d' % w, a.cmd_line('guest-file-seek', {'handle': h, 'offset': 0, 'whence': w}),
                err_line('invalid whence code %d' % w))
    T.check('whence bogus', a.cmd_line('guest-file-seek', {'handle': h, 'offset': 0, 'whence': 'bogus'}),
            err_line("Parameter 'whence' does not accept value 'bogus'"))
    T.check('seek negative', a.cmd_line('guest-file-seek', {'handle': h, 'offset': -100, 'whence': 'set'}),
            err_line('failed to seek file: Invalid argument'))
    T.check('write read-only', a.cmd_line('guest-file-write', {'handle': h, 'buf-b64': 'QUJD'}),
            err_line('failed to write to file: Bad file descriptor'))
    T.check('flush', a.cmd_line('guest-file-flush', {'handle': h}), b'{"return": {}}')
    T.check('close', a.cmd_line('guest-file-close', {'handle': h}), b'{"return": {}}')
    for cmd, args in (('guest-file-close', {}), ('guest-file-flush', {}),
                      ('guest-file-read', {'count': -1}),
                      ('guest-file-write', {'buf-b64': '!!!'}),
                      ('guest-file-seek', {'offset': 0, 'whence': 7})):
        args = dict(args, handle=h)
        T.check('closed handle %s' % cmd, a.cmd_line(cmd, args),
                err_line("handle '%d' has not been found" % h))
    T.check('unknown big handle', a.cmd_line('guest-file-read', {'handle': 99999999999}),
            err_line("handle '99999999999' has not been found"))

    hd = a.ret('guest-file-open', {'path': tmp})
    T.check('read dir', a.cmd_line('guest-file-read', {'handle': hd}),
            err_line('failed to read file: Is a directory'))
    a.ret('guest-file-close', {'handle': hd})


def test_write_decoding(a, tmp):
    p = os.path.join(tmp, 'w')
    h = a.ret('guest-file-open', {'path': p, 'mode': 'w+'})
    cases = [
        ({'buf-b64': 'QUJD'}, line({'count': 3, 'eof': False})),
        ({'buf-b64': 'QUJD', 'count': 4}, err_line("value '4' is invalid for argument count")),
        ({'buf-b64': 'QUJD', 'count': -1}, err_line("value '-1' is invalid for argument count")),
        ({'buf-b64': 'QU\nJD', 'count': 2}, line({'count': 2, 'eof': False})),
        ({'buf-b64': 'QUJ'}, line({'count': 0, 'eof': False})),
        ({'buf-b64': 'QQ='}, line({'count': 0, 'eof': False})),
        ({'buf-b64': '!!!!'}, err_line('Base64 data contains invalid characters')),
        ({'buf-b64': 'QUJDRA==QUJD'}, line({'count': 7, 'eof': False})),
        ({'buf-b64': ''}, line({'count': 0, 'eof': False})),
        ({'buf-b64': '', 'count': 0}, line({'count': 0, 'eof': False})),
    ]
    for args, want in cases:
        T.check('write %r' % args, a.cmd_line('guest-file-write', dict(args, handle=h)), want)
    a.ret('guest-file-seek', {'handle': h, 'offset': 0, 'whence': 'set'})
    T.check('read back', a.cmd_line('guest-file-read', {'handle': h}),
            line({'count': 12, 'buf-b64': b64(b'ABCABABCDABC'), 'eof': True}))
    a.ret('guest-file-close', {'handle': h})
    T.check('new file mode 0666', stat.S_IMODE(os.stat(p).st_mode), 0o666)


# mode -> (readable, writable, truncates, appends)
MODES = {
    'r': (1, 0, 0, 0), 'rb': (1, 0, 0, 0),
    'w': (0, 1, 1, 0), 'wb': (0, 1, 1, 0),
    'a': (0, 1, 0, 1), 'ab': (0, 1, 0, 1),
    'r+': (1, 1, 0, 0), 'rb+': (1, 1, 0, 0), 'r+b': (1, 1, 0, 0),
    'w+': (1, 1, 1, 0), 'wb+': (1, 1, 1, 0), 'w+b': (1, 1, 1, 0),
    'a+': (1, 1, 0, 1), 'ab+': (1, 1, 0, 1), 'a+b': (1, 1, 0, 1),
}


def test_modes(a, tmp):
    for mode, (rd, wr, trunc, app) in MODES.items():
        p = os.path.join(tmp, 'mode-' + mode.replace('+', 'plus'))
        with open(p, 'wb') as f:
            f.write(b'hello')
        os.chmod(p, 0o600)
        h = a.ret('guest-file-open', {'path': p, 'mode': mode})
        r = a.cmd('guest-file-read', {'handle': h, 'count': 2})
        if rd:
            want = {'return': {'count': 0 if trunc else 2, 'buf-b64': '' if trunc else b64(b'he'),
                               'eof': bool(trunc)}}
        else:
            want = {'error': {'class': 'GenericError', 'desc': 'failed to read file: Bad file descriptor'}}
        T.check('mode %s read' % mode, r, want)
        r = a.cmd('guest-file-write', {'handle': h, 'buf-b64': b64(b'XY')})
        want = ({'return': {'count': 2, 'eof': False}} if wr else
                {'error': {'class': 'GenericError', 'desc': 'failed to write to file: Bad file descriptor'}})
        T.check('mode %s write' % mode, r, want)
        a.ret('guest-file-close', {'handle': h})
        with open(p, 'rb') as f:
            data = f.read()
        if not wr:
            want = b'hello'
        elif trunc:
            want = b'XY'
        elif app:
            want = b'helloXY'
        else:
            want = b'heXYo'
        T.check('mode %s contents' % mode, data, want)
        T.check('mode %s keeps file mode' % mode, stat.S_IMODE(os.stat(p).st_mode), 0o600)
        # A mode that creates makes the file if it is missing.
        os.unlink(p)
        r = a.cmd('guest-file-open', {'path': p, 'mode': mode})
        if 'return' in r:
            a.ret('guest-file-close', {'handle': r['return']})
        T.check('mode %s creates' % mode, os.path.exists(p), bool(wr and mode[0] != 'r'))


def sha(data):
    return hashlib.sha256(data).hexdigest()


def read_all(a, h, chunk):
    parts = []
    while True:
        r = a.ret('guest-file-read', {'handle': h, 'count': chunk}, timeout=120)
        data = base64.b64decode(r['buf-b64'])
        T.ok('chunk count', r['count'] == len(data), '%d != %d' % (r['count'], len(data)))
        parts.append(data)
        if r['eof'] or not data:
            break
    return b''.join(parts)


def test_large(a, tmp):
    data = os.urandom(32 * MiB)
    p = os.path.join(tmp, 'big')
    h = a.ret('guest-file-open', {'path': p, 'mode': 'wb+'})
    for off in range(0, len(data), MiB):
        r = a.ret('guest-file-write', {'handle': h, 'buf-b64': b64(data[off:off + MiB])})
        if r['count'] != MiB:
            T.check('write 1 MiB', r['count'], MiB)
            break
    with open(p, 'rb') as f:
        T.check('32 MiB written sha256', sha(f.read()), sha(data))
    for chunk in (MiB, 8 * MiB):
        a.ret('guest-file-seek', {'handle': h, 'offset': 0, 'whence': 'set'})
        T.check('32 MiB read in %d MiB chunks' % (chunk // MiB), sha(read_all(a, h, chunk)), sha(data))
    # A streamed read that meets the end of the file.
    a.ret('guest-file-seek', {'handle': h, 'offset': -5 * MiB, 'whence': 'end'})
    r = a.ret('guest-file-read', {'handle': h, 'count': 8 * MiB}, timeout=120)
    T.check('short streamed read', (r['count'], r['eof'], sha(base64.b64decode(r['buf-b64']))),
            (5 * MiB, True, sha(data[-5 * MiB:])))
    a.ret('guest-file-close', {'handle': h})
    os.unlink(p)

    data = os.urandom(48 * MiB)
    with open(p, 'wb') as f:
        f.write(data)
    h = a.ret('guest-file-open', {'path': p})
    r = a.ret('guest-file-read', {'handle': h, 'count': 48 * MiB}, timeout=120)
    T.check('48 MiB single read', (r['count'], r['eof'], sha(base64.b64decode(r['buf-b64']))),
            (48 * MiB, False, sha(data)))
    T.check('then eof', a.cmd_line('guest-file-read', {'handle': h, 'count': 48 * MiB}),
            b'{"return": {"count": 0, "buf-b64": "", "eof": true}}')
    a.ret('guest-file-close', {'handle': h})
    os.unlink(p)


def test_embedded_nul(a, tmp):
    """Issue 10 defect 9: "/x\u0000.log" must not open "/x" (a C string ends at the NUL).

    qemu-ga 7.2 keeps U+0000 as the bytes C0 80 and creates "x\xc0\x80.log"; tether-agent
    refuses the string (GenericError, like every argument error of qemu-ga), so no file at all
    is touched."""
    d = os.path.join(tmp, 'nul')
    os.makedirs(d)
    x = os.path.join(d, 'x')
    raw = ('{"execute":"guest-file-open","arguments":{"path":"%s\\u0000.log","mode":"w"}}'
           % x).encode()
    a.send_raw(raw)
    T.check('open "x\\u0000.log" refused', a.read_line(),
            err_line("Parameter 'path' must not contain a NUL character"))
    T.check('nothing created for "x\\u0000.log"', sorted(os.listdir(d)), [])
    with open(x, 'wb') as f:
        f.write(b'keep')
    a.send_raw(('{"execute":"guest-file-open","arguments":{"path":"%s\\u0000","mode":"w"}}'
                % x).encode())
    T.check('open "x\\u0000" (an existing x) refused', a.read_line(),
            err_line("Parameter 'path' must not contain a NUL character"))
    with open(x, 'rb') as f:
        T.check('x not truncated', f.read(), b'keep')
    a.send_raw(('{"execute":"guest-file-open","arguments":{"path":"%s","mode":"r\\u0000+"}}'
                % x).encode())
    T.check('mode "r\\u0000+" refused', a.read_line(),
            err_line("Parameter 'mode' must not contain a NUL character"))


def test_numbering(binary, reference, tmp):
    statedir = os.path.join(tmp, 'numbering-state')
    os.makedirs(statedir)
    p = os.path.join(tmp, 'n')
    open(p, 'w').close()
    start = (lambda: start_reference(statedir=statedir, tmp=tempfile.mkdtemp(dir=tmp))) if reference \
        else (lambda: start_agent(binary, statedir=statedir, tmp=tempfile.mkdtemp(dir=tmp)))
    with start() as a:
        T.check('first handle', a.cmd_line('guest-file-open', {'path': p}), b'{"return": 1000}')
        T.check('second handle', a.cmd_line('guest-file-open', {'path': p}), b'{"return": 1001}')
        a.cmd('guest-file-open', {'path': p + '-missing'})  # a failed open takes no number
    with open(os.path.join(statedir, 'qga.state'), 'rb') as f:
        T.check('qga.state', f.read(), b'[global]\nfd_counter=1002\n')
    with start() as a:
        T.check('handle after restart', a.cmd_line('guest-file-open', {'path': p}), b'{"return": 1002}')
        T.check('old handle gone', a.cmd_line('guest-file-close', {'handle': 1000}),
                err_line("handle '1000' has not been found"))


def test_limit(binary, tmp):
    p = os.path.join(tmp, 'lim')
    open(p, 'w').close()
    with start_agent(binary, config='[general]\nmax-file-handles=3\n', tmp=tempfile.mkdtemp(dir=tmp)) as a:
        hs = [a.ret('guest-file-open', {'path': p}) for _ in range(3)]
        T.check('handle limit', a.cmd_line('guest-file-open', {'path': p}),
                err_line('too many open files: limit is 3 (max-file-handles)'))
        T.check('limit checked before creating', a.cmd('guest-file-open', {'path': p + '-new', 'mode': 'w'})
                .get('error', {}).get('desc'), 'too many open files: limit is 3 (max-file-handles)')
        T.ok('no file created at the limit', not os.path.exists(p + '-new'))
        a.ret('guest-file-close', {'handle': hs[0]})
        T.ok('open after close', 'return' in a.cmd('guest-file-open', {'path': p}))
    T.check('no sanitizer reports (limit)', a.sanitizer_errors(), [])


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    reference = '--reference' in sys.argv[2:]
    tmp = tempfile.mkdtemp(prefix='tether-test-files-')
    try:
        a = start_reference(tmp=os.path.join(tmp, 'agent')) if reference else \
            start_agent(binary, tmp=os.path.join(tmp, 'agent'))
        os.makedirs(os.path.join(tmp, 'agent'), exist_ok=True)
        files = os.path.join(tmp, 'files')
        os.makedirs(files)
        try:
            test_basics(a, files)
            test_write_decoding(a, files)
            test_modes(a, files)
            test_large(a, files)
            if not reference:
                test_embedded_nul(a, files)
        finally:
            a.close()
            T.check('no sanitizer reports', a.sanitizer_errors(), [])
        test_numbering(binary, reference, tmp)
        if not reference:
            test_limit(binary, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return T.finish()


if __name__ == '__main__':
    sys.exit(main())
