#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`tether event` against a real guest (QEMU 7.2, TCG): one guest is driven through define,
start, suspend, resume, reboot, shutdown, start --paused, destroy and undefine while these
stream in the background:

  A  tether event --all --loop --timestamp        every line, in order, with virsh's words
  J  tether --json event --all --loop             the same events as JSON lines
  N  tether event --event lifecycle               no --loop: ends after the first event
  F  tether event ev1 --event reboot --loop       only ev1's reboot events
  O  tether event evother --all --loop            only the other domain's events

The expected lines are what virsh 9.0's `virsh event --all --loop` printed for the same steps
on a libvirt domain of the same guest (libvirt's order: the cont's "Resumed Unpaused" comes
before "Started Booted"; a destroy first says "Shutdown Finished after host request"; a reboot
is only 'reboot' events).

  tests/vm/test_event_stream.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                                [--guest DIR] [--keep]

Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import json
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (REPO, AgentError, Results, Tether, domain_xml,  # noqa: E402
                          load_guest_env, write)

R = Results()
TS = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\+0000: (.*)$")


class Stream:
    """A background `tether event ...`: its stdout lines, collected as they come."""

    def __init__(self, t, *args):
        self.args = args
        self.proc = t.cli_bg(*args)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def wait_for(self, pred, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.snapshot()):
                return True
            if self.proc.poll() is not None:
                self.reader.join(2)
                return pred(self.snapshot())
            time.sleep(0.05)
        return pred(self.snapshot())

    def interrupt(self):
        """SIGINT, as Ctrl-C: virsh's closing lines; returns (rc, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(15)
        except Exception:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(5)
        return rc, self.proc.stderr.read()


def words(lines, dom):
    """The lifecycle and reboot lines of dom, without timestamps, repeated reboots folded."""
    out = []
    for line in lines:
        m = TS.match(line)
        text = m.group(2) if m else line
        if not text.startswith(f"event 'lifecycle' for domain '{dom}'") and \
                text != f"event 'reboot' for domain '{dom}'":
            continue
        if out and out[-1] == text and "'reboot'" in text:
            continue  # QEMU may reset more than once in one guest reboot (libvirt shows each)
        out.append(text)
    return out


def run(t, genv):
    t.start_daemon()
    life = "event 'lifecycle' for domain 'ev1': "
    agent = "event 'agent-lifecycle' for domain 'ev1': state: "
    xml = write(os.path.join(t.root, "ev1.xml"), domain_xml("ev1", genv))
    other = write(os.path.join(t.root, "evother.xml"), domain_xml("evother", genv))
    rc, _, err = t.cli("define", other)
    R.check("define evother", rc == 0, err)

    a = Stream(t, "event", "--all", "--loop", "--timestamp")
    j = Stream(t, "--json", "event", "--all", "--loop")
    n = Stream(t, "event", "--event", "lifecycle")
    o = Stream(t, "event", "evother", "--all", "--loop")
    # The CLI prints nothing before the first event: tetherd's log says when each is in.
    wait_subscribers(t, 4)

    rc, _, err = t.cli("define", xml)
    R.check("define ev1", rc == 0, err)
    f = Stream(t, "event", "ev1", "--event", "reboot", "--loop")
    wait_subscribers(t, 5)

    # N: the first event ends it, with virsh's count line.
    rc = n.proc.wait(20)
    n.reader.join(5)
    R.check("without --loop: virsh's lines and exit 0",
            rc == 0 and n.snapshot() == [life + "Defined Added", "events received: 1", ""],
            repr((rc, n.snapshot())))

    rc, _, err = t.cli("start", "ev1")
    R.check("start ev1", rc == 0, err)
    ok = a.wait_for(lambda l: any((agent + "'connected'") in x for x in l), 120)
    R.check("agent-lifecycle: connected (channel event) after boot", ok and any(
        x.endswith(agent + "'connected' reason: 'channel event'") for x in a.snapshot()),
        repr(a.snapshot()[-5:]))
    t.agent("ev1").wait(90)
    fast_agent_restart(t, a, agent)
    for verb, done in (("suspend", "Domain 'ev1' suspended"), ("resume", "Domain 'ev1' resumed")):
        rc, out, err = t.cli(verb, "ev1")
        R.check(f"{verb} ev1", rc == 0 and out.startswith(done), err)
    rc, out, err = t.cli("reboot", "ev1")
    R.check("reboot ev1", rc == 0, err)
    R.check("reboot: the 'reboot' event", a.wait_for(
        lambda l: any(x.endswith("event 'reboot' for domain 'ev1'") for x in l), 120),
        repr(a.snapshot()[-5:]))
    # Connected again after the reboot: a 'connected' line after the 'reboot' one.
    def connected_after_reboot(lines):
        idx = [i for i, x in enumerate(lines) if x.endswith("event 'reboot' for domain 'ev1'")]
        return bool(idx) and any((agent + "'connected'") in x for x in lines[idx[0]:])
    R.check("agent connects again after the reboot", a.wait_for(connected_after_reboot, 120),
            repr(a.snapshot()[-6:]))
    t.agent("ev1").wait(90)
    rc, out, err = t.cli("shutdown", "ev1")
    R.check("shutdown ev1", rc == 0, err)
    R.check("shut off after shutdown", t.wait_state("ev1", "shut off (shutdown)", 120) ==
            "shut off (shutdown)")
    rc, _, err = t.cli("start", "--paused", "ev1")
    R.check("start --paused ev1", rc == 0, err)
    rc, _, err = t.cli("destroy", "ev1")
    R.check("destroy ev1", rc == 0, err)
    rc, _, err = t.cli("undefine", "ev1")
    R.check("undefine ev1", rc == 0, err)
    rc, _, err = t.cli("undefine", "evother")
    R.check("undefine evother", rc == 0, err)

    want = [life + w for w in ("Defined Added", "Resumed Unpaused", "Started Booted",
                               "Suspended Paused", "Resumed Unpaused")]
    want += ["event 'reboot' for domain 'ev1'"]
    want += [life + w for w in ("Shutdown Finished after guest request", "Stopped Shutdown",
                                "Started Booted", "Suspended Paused",
                                "Shutdown Finished after host request", "Stopped Destroyed",
                                "Undefined Removed")]
    a.wait_for(lambda l: (life + "Undefined Removed") in " ".join(l), 30)
    got = words(a.snapshot(), "ev1")
    R.check("--all --loop --timestamp: the lifecycle in order, with virsh's words",
            got == want, "\n  got:  " + "\n        ".join(got) + "\n  want: " +
            "\n        ".join(want))
    # Every line of A has virsh's timestamp prefix, close to now, in order.
    stamps = [TS.match(x) for x in a.snapshot()]
    R.check("--timestamp: every line has virsh's prefix", all(stamps), repr(a.snapshot()[:3]))
    if all(stamps):
        secs = [time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S")) -
                time.timezone + int(m.group(1)[20:]) / 1000 for m in stamps]
        R.check("--timestamp: UTC, in order, within the test's time",
                secs == sorted(secs) and abs(secs[-1] - time.time()) < 600, repr(secs[-3:]))
    # Each start says first that the agent is not there (libvirt's 'domain started').
    ag = [TS.match(x).group(2) if TS.match(x) else x for x in a.snapshot()]
    starts = [i for i, x in enumerate(ag) if x == life + "Started Booted"]
    R.check("agent-lifecycle: disconnected (domain started) before each start",
            len(starts) == 2 and all(
                any(ag[k] == agent + "'disconnected' reason: 'domain started'"
                    for k in range(max(0, s - 3), s)) for s in starts), repr(ag))
    R.check("agent-lifecycle: disconnected (channel event) at the reboot and the shutdown",
            sum(x == agent + "'disconnected' reason: 'channel event'" for x in ag) >= 2,
            repr(ag))
    R.check("only domain ev1's events (the other domain made one)",
            all("'ev1'" in x or "'evother'" in x for x in ag) and
            ag.count("event 'lifecycle' for domain 'evother': Undefined Removed") == 1)

    # J: the same events, as JSON lines in QMP's event shape.
    j.wait_for(lambda l: any('"Undefined"' in x and '"ev1"' in x for x in l), 30)
    msgs = []
    for line in j.snapshot():
        try:
            msgs.append(json.loads(line))
        except ValueError:
            R.check("--json: every line is JSON", False, line)
    jl = [f"event 'lifecycle' for domain '{m['data']['domain']}': {m['data']['event']} "
          f"{m['data']['detail']}" if m["event"] == "lifecycle" else
          f"event '{m['event']}' for domain '{m['data']['domain']}'" for m in msgs]
    R.check("--json: the same lifecycle as the text stream", words(jl, "ev1") == want,
            repr(words(jl, "ev1")))
    us = [m["timestamp"]["seconds"] * 10**6 + m["timestamp"]["microseconds"] for m in msgs]
    R.check("--json: microsecond timestamps, in order", us == sorted(us) and len(us) > 10)

    # F and O: the filters.
    f.wait_for(lambda l: len(l) >= 1, 10)
    fl = f.snapshot()
    R.check("DOMAIN --event reboot: only ev1's reboot lines",
            len(fl) >= 1 and all(x == "event 'reboot' for domain 'ev1'" for x in fl), repr(fl))
    o.wait_for(lambda l: len(l) >= 1, 10)
    R.check("DOMAIN filter: only the other domain's event",
            o.snapshot() == ["event 'lifecycle' for domain 'evother': Undefined Removed"],
            repr(o.snapshot()))

    # Ctrl-C: virsh's closing lines and status.
    rc, err = a.interrupt()
    tail = a.snapshot()[-3:]
    R.check("SIGINT: 'event loop interrupted', the count, exit 0",
            rc == 0 and tail[0] == "event loop interrupted" and
            tail[1] == f"events received: {len(a.snapshot()) - 3}" and tail[2] == "",
            repr((rc, tail, err)))
    for s in (j, f, o):
        rc, err = s.interrupt()
        R.check(f"SIGINT ends {' '.join(s.args)}", rc == 0, err)


# Run by the agent itself, detached (it kills the agent): an agent restart (A -> B), then a
# second one (B -> C) as soon as the test has talked to B (/run/go), with half a reply written to
# the port in between, as an agent that died mid-write leaves it. QEMU sends at most one
# VSERPORT_CHANGE a second per port, with the last state: A's close at once, B's open a second
# later, and the second restart (B's close, the half reply's open and close, C's open), within
# the second after that, as an open alone.
FAST_RESTART = """
rm -f /run/go /run/fastrestart
sleep 1.1
a=$(pidof tether-agent); kill $a
i=0; while [ ! -e /run/go ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
b=$(pidof tether-agent)
if [ ! -e /run/go ] || [ -z "$b" ] || [ "$b" = "$a" ]; then
  echo "no word from the test through a new agent" >/run/fastrestart; exit
fi
kill $b; while kill -0 $b 2>/dev/null; do sleep 0.01; done
if printf '{"return": {"half": ' >/dev/virtio-ports/org.qemu.guest_agent.0; then
  echo "$a $b half-written" >/run/fastrestart
else
  echo "$a $b the port would not open" >/run/fastrestart
fi
"""


def fast_agent_restart(t, a, agent):
    """Two agent restarts within a second: tetherd takes the lone open as a reopen."""
    connected = agent + "'connected' reason: 'channel event'"
    disconnected = agent + "'disconnected' reason: 'channel event'"
    touch = {"execute": "guest-exec", "arguments": {"path": "/bin/touch", "arg": ["/run/go"]}}
    ag = t.agent("ev1")
    for attempt in range(1, 4):
        with open(t.log, errors="replace") as f:
            reopens = f.read().count("ev1: guest agent port reopened")
        n0 = len(a.snapshot())
        try:
            ag.spawn("/bin/sh", ["-c", FAST_RESTART], capture=False)
        except AgentError as e:
            R.check(f"attempt {attempt}: the agent runs the restart script", False, str(e))
            return
        # B's open (a second after A's close): then a command to B, so that tetherd is in step
        # with B when B dies mid-reply.
        if a.wait_for(lambda l: any(connected in x for x in l[n0:]), 30):
            r = t.api("agent-command", {"domain": "ev1", "command": touch}, timeout=10)
            R.check(f"attempt {attempt}: a command to the new agent B", "return" in r, repr(r))
        # Then C's open (the reopen): two 'connected' lines in all.
        a.wait_for(lambda l: sum(connected in x for x in l[n0:]) >= 2, 30)
        with open(t.log, errors="replace") as f:
            reopened = f.read().count("ev1: guest agent port reopened") > reopens
        evs = [TS.match(x).group(2) if TS.match(x) else x for x in a.snapshot()[n0:]]
        evs = [x for x in evs if "'agent-lifecycle'" in x]
        if reopened or evs == [disconnected, connected, connected]:
            break  # a reopen, or a lone open that tetherd did not take for one
        # Both restarts reached tetherd as a close and an open each: QEMU's one-a-second
        # window was missed (a busy host). That tests nothing new: again.
        print(f"  attempt {attempt}: no lone open (the events: {evs!r})")
    R.check("two agent restarts within a second: QEMU's VSERPORT_CHANGE says open alone, and "
            "tetherd's log says 'guest agent port reopened'", reopened,
            f"{attempt} attempts")
    # The stream says what happened: the agent went away before each 'connected'.
    got = [TS.match(x).group(2) if TS.match(x) else x for x in a.snapshot()[n0:]]
    got = [x for x in got if "'agent-lifecycle'" in x]
    R.check("agent-lifecycle: disconnected, connected for each restart (the reopen too)",
            got == [disconnected, connected, disconnected, connected], repr(got))
    # The next command: tetherd syncs with the new agent first, which drops the half reply.
    t0 = time.monotonic()
    rc, out, err = t.cli("qemu-agent-command", "ev1", '{"execute":"guest-ping"}')
    dt = time.monotonic() - t0
    R.check("the next command after the reopen answers at once (a sync first drops the half "
            "reply the old agent left)", rc == 0 and out == '{"return":{}}\n\n' and dt < 2,
            f"rc {rc} {out!r} {err!r} {dt:.2f} s")
    code, note = ag.sh("cat /run/fastrestart")
    R.check("... the half reply was written to the port", "half-written" in note, note)


def count_subscribers(t):
    """Subscriptions tetherd took so far (its --verbose log says each)."""
    with open(t.log, errors="replace") as f:
        return sum("event subscriber added" in line for line in f)


def wait_subscribers(t, n, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count_subscribers(t) >= n:
            return True
        time.sleep(0.05)
    R.check(f"{n} subscribers are in", False, f"{count_subscribers(t)} seen in the log")
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--keep", action="store_true", help="keep the temp root")
    a = ap.parse_args()
    genv = load_guest_env(a.guest)
    t = Tether(a.tetherd, a.tether, "tether-evstream-")
    return R.run_suite(t, run, genv, keep=a.keep)


if __name__ == "__main__":
    sys.exit(main())
