#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Differential test: tether-agent against the real qemu-ga 7.2, request by request.

    python3 test_differential.py /path/to/tether-agent

Both agents are started the same way and get the same bytes. Replies are compared
structurally: the same number of reply lines, the same 0xFF prefixes, the same key sets
(recursively), the same JSON types, the same error class and exact desc, and the same values
wherever they are deterministic. Every accepted difference is listed below with its reason.
Only read-only commands are sent, to both agents.
"""

import json
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conformlib import (QEMU_GA, Agent, Results, FAKE_USER, can_unshare, is_qemu_ga,  # noqa: E402
                        jtype, make_fake_user, missing_reference)

R = Results()

# ---- accepted differences, each with its reason ----
# Members tether-agent may add that qemu-ga 7.2 does not send: (command, member) -> reason.
TETHER_EXTRA_MEMBERS = {
    ('guest-get-fsinfo', 'total-bytes-privileged'): 'added in QEMU 9.1; tether follows newest',
}
# Commands listed by guest-info of one agent only: name -> reason.
GUEST_INFO_ONLY_TETHER = {
    'guest-network-get-route': 'QEMU 9.1 command; 7.2 lacks it',
    'guest-get-load': 'QEMU 10.0 command; 7.2 lacks it',
}
GUEST_INFO_ONLY_QEMU = {
    'guest-get-devices': 'Windows-only; 7.2 lists it enabled:false, 9.1+ and tether omit it',
}
# Requests whose error desc may differ (the class must still match): name -> reason.
DESC_MAY_DIFFER = {
    'exec capture-output wrong type': "7.2 knows only bool ('expected: boolean'); tether has "
                                      "8.0's bool|enum alternate ('expected: GuestExecCaptureOutput')",
    'NUL in an enum argument': "7.2 keeps \\u0000 as C0 80 and finds no such value; tether "
                               "refuses any string holding a NUL (issue 10, defect 9)",
    'NUL in a string argument': "7.2 keeps \\u0000 as C0 80 (no such mode); tether refuses any "
                                "string holding a NUL before the handler runs",
}
# guest-get-fsinfo: qemu-ga 7.2 lists every mount of a device (bind mounts too); newer QEMU and
# tether-agent list one entry per device (the first mount). A qemu-only entry is accepted when
# tether lists the same device under another mountpoint.
FSINFO_ONE_PER_DEVICE = 'newer QEMU dedupes mounts by device (fsfreeze froze bind mounts twice)'
# Values that change between two calls: (command, member) -> compared by type only.
VOLATILE = {
    'guest-get-time': {'return'},
    'guest-info': {'version'},
    'guest-network-get-interfaces': {'rx-bytes', 'rx-packets', 'rx-errs', 'rx-dropped',
                                     'tx-bytes', 'tx-packets', 'tx-errs', 'tx-dropped'},
    'guest-get-fsinfo': {'used-bytes', 'total-bytes', 'total-bytes-privileged'},
    'guest-get-diskstats': {'read-sectors', 'read-ios', 'read-merges', 'write-sectors',
                            'write-ios', 'write-merges', 'discard-sectors', 'discard-ios',
                            'discard-merges', 'flush-ios', 'read-ticks', 'write-ticks',
                            'discard-ticks', 'flush-ticks', 'ios-pgr', 'total-ticks',
                            'weight-ticks'},
    'guest-get-cpustats': {'user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal',
                           'guest', 'guestnice'},
    'guest-exec': {'pid'},
    'guest-get-users': {'login-time'},
}
# Lists compared as sets, elements matched by this member (order is readdir/hash order).
LIST_KEYS = {'supported_commands': 'name', 'guest-network-get-interfaces': 'name',
             'ip-addresses': 'ip-address', 'guest-get-fsinfo': 'mountpoint',
             'guest-get-disks': 'name', 'guest-get-diskstats': 'name', 'guest-get-cpustats': 'cpu',
             'guest-get-vcpus': 'logical-id', 'guest-get-memory-blocks': 'phys-index'}
# Lists compared as sorted values: (command, member) -> reason.
UNORDERED = {
    ('guest-ssh-get-authorized-keys', 'keys'): 'qemu-ga 7.2 returns the keys in reverse file order',
}

NOTES = [
    'reconnect: qemu-ga keeps a dead client\'s partial message (see conform-findings.md); '
    'tether-agent is expected to drop it. Not compared here: test_conformance covers both.',
    'key order inside objects follows qemu\'s QDict hash order in qemu-ga; compared as sets here.',
    'guest-info supported_commands order: compared as a set (qemu-ga lists in reverse '
    'registration order).',
]


def compare(cmd, q, t, path, diffs):
    """Append to diffs every difference between qemu-ga's value q and tether's t."""
    qt, tt = jtype(q), jtype(t)
    leaf = path.rsplit('.', 1)[-1].split('[')[0]
    if leaf in VOLATILE.get(cmd, ()):
        if qt != tt and {qt, tt} != {'int', 'float'}:
            diffs.append('%s: type %s vs %s' % (path, qt, tt))
        return
    if qt != tt:
        diffs.append('%s: type qemu=%s %r, tether=%s %r' % (path, qt, _short(q), tt, _short(t)))
        return
    if qt == 'object':
        for k in sorted(set(q) | set(t)):
            p = '%s.%s' % (path, k)
            if k not in t:
                diffs.append('%s: missing in tether (qemu has %r)' % (p, _short(q[k])))
            elif k not in q:
                if (cmd, k) not in TETHER_EXTRA_MEMBERS:
                    diffs.append('%s: only in tether (%r)' % (p, _short(t[k])))
            else:
                compare(cmd, q[k], t[k], p, diffs)
        return
    if qt == 'array':
        key = LIST_KEYS.get(leaf) or (LIST_KEYS.get(cmd) if path == 'return' else None)
        if (cmd, leaf) in UNORDERED:
            q, t = sorted(q, key=repr), sorted(t, key=repr)
        if key and all(isinstance(e, dict) and key in e for e in q + t):
            qm = {e[key]: e for e in q}
            tm = {e[key]: e for e in t}
            for k in sorted(set(qm) | set(tm), key=repr):
                p = '%s[%s=%r]' % (path, key, k)
                if k not in tm:
                    if cmd == 'guest-get-fsinfo' and path == 'return' and \
                            qm[k].get('name') in {e.get('name') for e in t}:
                        continue  # see FSINFO_ONE_PER_DEVICE
                    if not (leaf == 'supported_commands' and k in GUEST_INFO_ONLY_QEMU):
                        diffs.append('%s: missing in tether' % p)
                elif k not in qm:
                    if not (leaf == 'supported_commands' and k in GUEST_INFO_ONLY_TETHER):
                        diffs.append('%s: only in tether' % p)
                else:
                    compare(cmd, qm[k], tm[k], p, diffs)
            return
        if len(q) != len(t):
            diffs.append('%s: %d elements in qemu, %d in tether' % (path, len(q), len(t)))
            return
        for i, (a, b) in enumerate(zip(q, t)):
            compare(cmd, a, b, '%s[%d]' % (path, i), diffs)
        return
    if q != t:
        diffs.append('%s: qemu=%r tether=%r' % (path, _short(q), _short(t)))


def _short(v):
    s = repr(v)
    return s if len(s) < 120 else s[:117] + '...'


def collect(agent, data, sync_id, timeout=10.0):
    """Send data then a guest-sync; return the reply lines before the sync reply."""
    agent.send(data + b'{"execute":"guest-sync","arguments":{"id":%d}}' % sync_id)
    want = b'{"return": %d}\n' % sync_id
    lines = []
    while True:
        line = agent.read_line(timeout)
        if line is None:
            lines.append(b'<no reply within %ds>' % timeout)
            return lines
        if line == want:
            return lines
        lines.append(line)


def diff_replies(name, cmd, qlines, tlines):
    diffs = []
    if len(qlines) != len(tlines):
        diffs.append('%d reply lines from qemu-ga, %d from tether-agent' % (len(qlines),
                                                                             len(tlines)))
    for i, (ql, tl) in enumerate(zip(qlines, tlines)):
        qp, tp = ql.startswith(b'\xff'), tl.startswith(b'\xff')
        if qp != tp:
            diffs.append('line %d: 0xFF prefix qemu=%s tether=%s' % (i, qp, tp))
        try:
            qv = json.loads(ql[1:] if qp else ql)
            tv = json.loads(tl[1:] if tp else tl)
        except ValueError as e:
            diffs.append('line %d: not JSON (%s): qemu=%r tether=%r' % (i, e, ql[:100], tl[:100]))
            continue
        if isinstance(qv, dict) and isinstance(tv, dict) and 'error' in qv and 'error' in tv \
                and name in DESC_MAY_DIFFER:
            tv = dict(tv, error=dict(tv['error'], desc=qv['error'].get('desc')))
        _compare_top(cmd, qv, tv, diffs)
    return diffs


def _compare_top(cmd, qv, tv, diffs):
    if isinstance(qv, dict) and isinstance(tv, dict) and 'return' in qv and 'return' in tv:
        for k in sorted(set(qv) | set(tv)):
            if k == 'return':
                compare(cmd, qv[k], tv[k], 'return', diffs)
            elif k not in qv or k not in tv:
                diffs.append('top-level member %r only in %s' % (k, 'qemu' if k in qv else
                                                                   'tether'))
            else:
                compare(cmd, qv[k], tv[k], k, diffs)
    else:
        compare(cmd, qv, tv, 'reply', diffs)


def check(name, cmd, qlines, tlines):
    diffs = diff_replies(name, cmd, qlines, tlines)
    detail = ''
    if diffs:
        detail = '\n'.join(diffs[:25])
        if len(diffs) > 25:
            detail += '\n... %d more' % (len(diffs) - 25)
        detail += '\nqemu-ga:      %s\ntether-agent: %s' % (
            b''.join(qlines)[:600].decode('utf-8', 'replace').rstrip(),
            b''.join(tlines)[:600].decode('utf-8', 'replace').rstrip())
    R.check('same reply: %s' % name, not diffs, detail)


def requests(tmp):
    """(name, command-for-rules, bytes or callable(agent_dir) -> bytes)."""
    rq = []

    def ex(cmd, args=None, name=None, extra=b''):
        body = {'execute': cmd}
        if args is not None:
            body['arguments'] = args
        rq.append((name or cmd, cmd, json.dumps(body).encode()[:-1] + extra + b'}'))

    for cmd in ['guest-ping', 'guest-info', 'guest-get-time', 'guest-network-get-interfaces',
                'guest-get-vcpus', 'guest-get-fsinfo', 'guest-get-disks',
                'guest-get-memory-blocks', 'guest-get-memory-block-info', 'guest-get-host-name',
                'guest-get-users', 'guest-get-timezone', 'guest-get-osinfo',
                'guest-get-diskstats', 'guest-get-cpustats', 'guest-fsfreeze-status']:
        ex(cmd)
    ex('guest-sync', {'id': 77})
    ex('guest-sync-delimited', {'id': 78})
    ex('guest-ssh-get-authorized-keys', {'username': FAKE_USER})
    ex('guest-ssh-get-authorized-keys', {'username': 'conform-no-such-user'},
       'ssh keys of a missing user')
    for idname, idraw in [('int', b'1'), ('string', b'"s"'), ('object', b'{"a":[1]}'),
                          ('array', b'[1,2]'), ('null', b'null'), ('float', b'1.5'),
                          ('bool', b'false')]:
        ex('guest-ping', None, 'id %s' % idname, b',"id":' + idraw)
        ex('conform-nope', None, 'id %s on an error' % idname, b',"id":' + idraw)
    raw = [
        ('stray 0xFF', b'\xff'), ('stray 0xFE', b'\xfe'), ('stray control', b'\x01\x02'),
        ('stray NUL', b'\x00'), ('0xFF in a string', b'{"execute":"guest-ping","id":"a\xff"}'),
        ('}}}', b'}}}'), ('xyz', b'xyz'), ('"str"', b'"str"'), ('123', b'123 '), ('[]', b'[]'),
        ('{}', b'{}'), ('execute not a string', b'{"execute":[]}'),
        ('arguments not an object', b'{"execute":"guest-ping","arguments":"x"}'),
        ('unexpected member', b'{"execute":"guest-ping","foo":1}'),
        ('exec-oob', b'{"exec-oob":"guest-ping"}'),
        ('duplicate key', b'{"execute":"guest-ping","execute":"guest-ping"}'),
        ('missing separator', b'{"execute" "guest-ping"}'),
        ('bad UTF-8', b'{"execute":"guest-ping","id":"\xff\xfe"}'),
        ('bad escape', b'{"execute":"guest-ping","id":"\\q"}'),
        ('single quotes', b"{'execute':'guest-ping','id':'it\\'s'}"),
        ('depth 1025', b'[' * 1025), ('depth 1025 balanced', b'[' * 1025 + b']' * 1025),
        ('unknown command', b'{"execute":"guest-conform-nope"}'),
        ('missing argument', b'{"execute":"guest-sync"}'),
        ('wrong argument type', b'{"execute":"guest-sync","arguments":{"id":"1"}}'),
        ('unexpected argument', b'{"execute":"guest-sync","arguments":{"id":1,"zz":1}}'),
        ('missing before unexpected', b'{"execute":"guest-sync","arguments":{"zz":1}}'),
        ('argument to a no-argument command', b'{"execute":"guest-get-time","arguments":{"a":1}}'),
        ('array element type',
         b'{"execute":"guest-exec","arguments":{"path":"/bin/true","env":[1]}}'),
        ('enum value', b'{"execute":"guest-file-seek","arguments":{"handle":1000000,"offset":0,'
                       b'"whence":"middle"}}'),
        ('alternate type', b'{"execute":"guest-file-seek","arguments":{"handle":1000000,'
                           b'"offset":0,"whence":[]}}'),
        ('unknown handle', b'{"execute":"guest-file-close","arguments":{"handle":1000000}}'),
        ('exec capture-output wrong type',
         b'{"execute":"guest-exec","arguments":{"path":"/bin/true","capture-output":1}}'),
        ('NUL in the command name', b'{"execute":"guest-ping\\u0000x"}'),
        ('NUL in an enum argument', b'{"execute":"guest-file-seek","arguments":{"handle":1000000,'
                                    b'"offset":0,"whence":"set\\u0000"}}'),
        ('NUL in a string argument', b'{"execute":"guest-file-open","arguments":{"path":"/",'
                                     b'"mode":"r\\u0000+"}}'),
        ('file-read negative count',
         b'{"execute":"guest-file-read","arguments":{"handle":1000000,"count":-1}}'),
    ]
    for name, data in raw:
        cmd = 'guest-ping'
        if b'"execute":"' in data:
            cmd = data.split(b'"execute":"', 1)[1].split(b'"', 1)[0].decode('latin-1')
        rq.append((name, cmd, data))
    return rq


def file_session(agents, tmp):
    """The guest-file-* commands on each agent's own copy of one file; replies compared."""
    steps = [('guest-file-open', lambda p: {'path': p, 'mode': 'r+'}),
             ('guest-file-read', lambda p: {'handle': 1000, 'count': 4}),
             ('guest-file-seek', lambda p: {'handle': 1000, 'offset': -2, 'whence': 'end'}),
             ('guest-file-write', lambda p: {'handle': 1000, 'buf-b64': 'eHl6'}),
             ('guest-file-flush', lambda p: {'handle': 1000}),
             ('guest-file-seek', lambda p: {'handle': 1000, 'offset': 0, 'whence': 0}),
             ('guest-file-read', lambda p: {'handle': 1000}),
             ('guest-file-read', lambda p: {'handle': 1000}),
             ('guest-file-close', lambda p: {'handle': 1000}),
             ('guest-file-close', lambda p: {'handle': 1000}),
             ('guest-file-open', lambda p: {'path': p + '.missing', 'mode': 'r'})]
    paths = []
    for i, _ in enumerate(agents):
        p = os.path.join(tmp, 'file%d.txt' % i)
        with open(p, 'wb') as f:
            f.write(b'0123456789\n')
        paths.append(p)
    for n, (cmd, args) in enumerate(steps):
        replies = []
        for a, p in zip(agents, paths):
            body = json.dumps({'execute': cmd, 'arguments': args(p)}).encode()
            replies.append(collect(a, body, 5000 + n))
        if n == len(steps) - 1:  # the path differs: put qemu's path into tether's text
            replies[1] = [ln.replace(paths[1].encode(), paths[0].encode()) for ln in replies[1]]
        check('file step %d %s' % (n, cmd), cmd, replies[0], replies[1])
    contents = []
    for p in paths:
        with open(p, 'rb') as f:
            contents.append(f.read())
    R.eq('same file content after the guest-file session', contents[1], contents[0])


def exec_session(agents):
    """guest-exec of /bin/echo, then guest-exec-status until exited, on both."""
    finals, again = [], []
    for a in agents:
        r = a.cmd('guest-exec', {'path': '/bin/echo', 'arg': ['-n', 'a b'],
                                 'capture-output': True})
        pid = r.get('return', {}).get('pid') if isinstance(r, dict) else None
        st = None
        deadline = time.monotonic() + 10
        while pid and time.monotonic() < deadline:
            st = a.cmd('guest-exec-status', {'pid': pid})
            if not isinstance(st, dict) or st.get('return', {}).get('exited'):
                break
            time.sleep(0.05)
        finals.append([(json.dumps(st) + '\n').encode()])
        again.append(collect(a, json.dumps({'execute': 'guest-exec-status',
                                            'arguments': {'pid': pid or 0}}).encode(), 6000))
    check('guest-exec /bin/echo then guest-exec-status', 'guest-exec-status', finals[0], finals[1])
    check('exec-status of a collected pid', 'guest-exec-status', again[0], again[1])


def cli_compare(tether):
    tmp = tempfile.mkdtemp(prefix='conform-d-cli-', dir='/tmp')
    try:
        import subprocess
        args = ['-D', '-m', 'unix-listen', '-p', os.path.join(tmp, 's.sock'), '-t', tmp,
                '-f', os.path.join(tmp, 'pid'), '-l', os.path.join(tmp, 'log'), '-F/x/hook',
                '-v', '-r', '-b', 'guest-get-time', '-b', 'guest-ping']
        outs = [subprocess.run([b] + args, capture_output=True, timeout=10).stdout.decode()
                for b in (QEMU_GA, tether)]
        # Tether's own bounds and allow-rpcs (8.1+) are extra keys with their own lines.
        extra = ('allow-rpcs=', 'max-file-handles=', 'max-exec=', 'exec-reap-seconds=',
                 'freeze-timeout=')
        tl = [ln for ln in outs[1].splitlines() if not ln.startswith(extra)]
        R.eq('-D output matches qemu-ga (minus tether-only keys)', tl, outs[0].splitlines())
        for opt in (['-b', 'help'],):
            q = subprocess.run([QEMU_GA] + opt, capture_output=True, timeout=10).stdout.split()
            t = subprocess.run([tether] + opt, capture_output=True, timeout=10).stdout.split()
            only_q = sorted(set(q) - set(t) - {n.encode() for n in GUEST_INFO_ONLY_QEMU})
            only_t = sorted(set(t) - set(q) - {n.encode() for n in GUEST_INFO_ONLY_TETHER})
            R.eq('%s lists the same commands' % ' '.join(opt), (only_q, only_t), ([], []))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) != 2:
        print('usage: %s TETHER-AGENT' % sys.argv[0], file=sys.stderr)
        return 2
    tether = os.path.abspath(sys.argv[1])
    if not os.access(QEMU_GA, os.X_OK):
        return missing_reference('differential', 'the reference qemu-ga (%s)' % QEMU_GA)
    if is_qemu_ga(tether):
        print('note: comparing qemu-ga with itself (self-check of this script)')
    tmp = tempfile.mkdtemp(prefix='conform-d-', dir='/tmp')
    passwd = make_fake_user(tmp) if os.geteuid() == 0 and can_unshare() else None
    agents = []
    try:
        for name, b in (('qemu', QEMU_GA), ('tether', tether)):
            agents.append(Agent(b, name=name, tmpdir=tmp, fake_passwd=passwd).start())
        for i, (name, cmd, data) in enumerate(requests(tmp)):
            if passwd is None and FAKE_USER.encode() in data:
                R.skip('same reply: %s' % name, 'no private mount namespace for a fake user')
                continue
            qlines = collect(agents[0], data, 1000 + i)
            tlines = collect(agents[1], data, 1000 + i)
            check(name, cmd, qlines, tlines)
        R.run('file session', file_session, agents, tmp)
        R.run('exec session', exec_session, agents)
        for a in agents:
            R.check('%s still running' % os.path.basename(a.binary), a.alive(), a.stderr())
    except Exception as e:  # noqa: BLE001
        R.check('differential run (%s: %s)' % (type(e).__name__, e), False)
    finally:
        for a in agents:
            a.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    R.run('cli', cli_compare, tether)
    print('accepted differences:')
    for (c, m), why in sorted(TETHER_EXTRA_MEMBERS.items()):
        print('  %s: extra member %s (%s)' % (c, m, why))
    for n, why in sorted(GUEST_INFO_ONLY_TETHER.items()):
        print('  guest-info: %s only in tether (%s)' % (n, why))
    for n, why in sorted(GUEST_INFO_ONLY_QEMU.items()):
        print('  guest-info: %s only in qemu-ga (%s)' % (n, why))
    for n, why in sorted(DESC_MAY_DIFFER.items()):
        print('  %s: desc may differ (%s)' % (n, why))
    print('  guest-get-fsinfo: bind mounts of a listed device only in qemu-ga (%s)' %
          FSINFO_ONE_PER_DEVICE)
    for (c, m), why in sorted(UNORDERED.items()):
        print('  %s.%s compared unordered (%s)' % (c, m, why))
    for n in NOTES:
        print('  note: ' + n)
    return R.finish()


if __name__ == '__main__':
    sys.exit(main())
