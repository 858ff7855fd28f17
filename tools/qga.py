#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Tiny QGA and QMP clients for Tether's tests, benchmarks and demo.

Command line:
  qga.py SOCK guest-ping
  qga.py SOCK guest-exec '{"path": "/bin/echo", "arg": ["hi"], "capture-output": true}'
  qga.py SOCK exec /bin/echo hi        # guest-exec + guest-exec-status, output decoded
  qga.py --wait 30 SOCK guest-ping     # keep trying until the agent answers
  qga.py --qmp SOCK query-status       # the same against a QMP socket

It prints the reply object as JSON. Exit status: 0 for {"return": ...},
1 for {"error": ...}, 2 when the agent or QEMU did not answer in time.

As a module: QGA(path).cmd("guest-ping"), wait_for_agent(path, 15), QMP(path).
"""

import argparse
import base64
import json
import os
import random
import socket
import sys
import time

_decoder = json.JSONDecoder()


class Timeout(Exception):
    pass


class _JsonStream:
    """JSON objects on a unix stream socket, with a deadline on every read."""

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.first_rx = None  # monotonic time of the first bytes received

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, obj, prefix=b""):
        self.sock.sendall(prefix + json.dumps(obj).encode() + b"\n")

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout("no reply in time")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Timeout("no reply in time") from None
        if not data:
            raise ConnectionError("connection closed")
        if self.first_rx is None:
            self.first_rx = time.monotonic()
        self.buf += data

    def recv(self, deadline):
        """The next JSON object; 0xFF bytes (sync delimiters) are skipped."""
        while True:
            text = self.buf.replace(b"\xff", b"").lstrip()
            if text:
                try:
                    obj, end = _decoder.raw_decode(text.decode("utf-8", "replace"))
                    self.buf = text.decode("utf-8", "replace")[end:].encode()
                    return obj
                except ValueError:
                    pass
            self._fill(deadline)

    def skip_to_delimiter(self, deadline):
        """Drop everything up to and including the next 0xFF byte."""
        while b"\xff" not in self.buf:
            self.buf = b""
            self._fill(deadline)
        self.buf = self.buf[self.buf.index(b"\xff") + 1:]


class QGA:
    """A guest agent connection (virtio-serial chardev socket or unix-listen)."""

    def __init__(self, path, timeout=10.0, sync=True):
        self.timeout = timeout
        self.stream = _JsonStream(path, timeout)
        if sync:
            self.sync(timeout)

    def close(self):
        self.stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def sync(self, timeout=None):
        """guest-sync-delimited: resynchronise, dropping stale replies."""
        deadline = time.monotonic() + (timeout or self.timeout)
        sync_id = random.randint(1, 2**31 - 1)
        self.stream.send({"execute": "guest-sync-delimited",
                          "arguments": {"id": sync_id}}, prefix=b"\xff")
        self.stream.skip_to_delimiter(deadline)
        while True:
            reply = self.stream.recv(deadline)
            if reply.get("return") == sync_id:
                return sync_id

    def cmd(self, name, args=None, timeout=None):
        """Run one command; the whole reply object ({"return"} or {"error"})."""
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        self.stream.send(msg)
        if name in ("guest-shutdown", "guest-suspend-disk", "guest-suspend-ram",
                    "guest-suspend-hybrid"):
            return {}  # these answer nothing on success
        return self.stream.recv(time.monotonic() + (timeout or self.timeout))

    def check(self, name, args=None, timeout=None):
        """Run one command; its "return" value, or RuntimeError on an error reply."""
        reply = self.cmd(name, args, timeout)
        if "error" in reply:
            raise RuntimeError(f"{name}: {reply['error']}")
        return reply.get("return")

    def exec(self, path, argv=(), timeout=None, stdin=None):
        """guest-exec with captured output, polled to the end; the final status
        with "out-data"/"err-data" decoded to str under "stdout"/"stderr"."""
        args = {"path": path, "arg": list(argv), "capture-output": True}
        if stdin is not None:
            args["input-data"] = base64.b64encode(stdin).decode()
        pid = self.check("guest-exec", args)["pid"]
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            st = self.check("guest-exec-status", {"pid": pid})
            if st.get("exited"):
                st["stdout"] = base64.b64decode(st.get("out-data", "")).decode("utf-8", "replace")
                st["stderr"] = base64.b64decode(st.get("err-data", "")).decode("utf-8", "replace")
                return st
            if time.monotonic() > deadline:
                raise Timeout(f"{path} still running")
            time.sleep(0.05)


def wait_for_agent(path, timeout, attempt=1.0):
    """Connect and sync, retrying until the agent answers; a synced QGA.

    Before the guest agent opens its port QEMU keeps our bytes or drops them,
    so each attempt has a short deadline and a fresh sync id.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            q = QGA(path, timeout=attempt, sync=False)
        except OSError as e:
            last = e
            time.sleep(0.1)
            continue
        try:
            while time.monotonic() < deadline:
                try:
                    q.sync(min(attempt, max(0.05, deadline - time.monotonic())))
                    q.timeout = 10.0
                    return q
                except Timeout as e:
                    last = e
        except (OSError, ConnectionError) as e:
            last = e
            time.sleep(0.1)
        q.close()
    raise Timeout(f"agent at {path} did not answer within {timeout} s ({last})")


class QMP:
    """A QMP monitor connection; events are kept in self.events."""

    def __init__(self, path, timeout=10.0):
        self.timeout = timeout
        self.events = []
        self.stream = _JsonStream(path, timeout)
        self.greeting = self.stream.recv(time.monotonic() + timeout)
        self.check("qmp_capabilities")

    def close(self):
        self.stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def cmd(self, name, args=None, timeout=None):
        msg = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        self.stream.send(msg)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self.stream.recv(deadline)
            if "event" in reply:
                self.events.append(reply)
                continue
            return reply

    def check(self, name, args=None, timeout=None):
        reply = self.cmd(name, args, timeout)
        if "error" in reply:
            raise RuntimeError(f"{name}: {reply['error']}")
        return reply.get("return")

    def wait_event(self, name, timeout):
        """Wait for event NAME (or return one already seen); None when the
        connection closes first (QEMU exited)."""
        for ev in self.events:
            if ev["event"] == name:
                return ev
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self.stream.recv(deadline)
            except ConnectionError:
                return None
            if "event" in ev:
                self.events.append(ev)
                if ev["event"] == name:
                    return ev


def main():
    ap = argparse.ArgumentParser(description="Send one QGA (or QMP) command and print the reply.")
    ap.add_argument("--qmp", action="store_true", help="SOCK is a QMP socket")
    ap.add_argument("--timeout", type=float, default=10.0, help="reply deadline in seconds")
    ap.add_argument("--wait", type=float, default=0.0,
                    help="retry for up to this many seconds until the agent answers")
    ap.add_argument("sock")
    ap.add_argument("command", help="command name, or 'exec PATH ARG...'")
    ap.add_argument("rest", nargs=argparse.REMAINDER,
                    help="JSON arguments object (or, for exec, the program and its arguments)")
    o = ap.parse_args()
    try:
        if o.qmp:
            conn = QMP(o.sock, o.timeout)
        elif o.wait > 0:
            conn = wait_for_agent(o.sock, o.wait)
            conn.timeout = o.timeout
        else:
            conn = QGA(o.sock, o.timeout)
        with conn:
            if o.command == "exec" and not o.qmp:
                if not o.rest:
                    ap.error("exec needs a program path")
                st = conn.exec(o.rest[0], o.rest[1:], o.timeout)
                print(json.dumps(st, indent=2))
                return 0 if st.get("exitcode") == 0 else 1
            args = json.loads(o.rest[0]) if o.rest else None
            reply = conn.cmd(o.command, args)
    except (Timeout, OSError, ConnectionError, RuntimeError) as e:
        print(f"qga.py: {e}", file=sys.stderr)
        return 2
    print(json.dumps(reply, indent=2))
    return 1 if "error" in reply else 0


if __name__ == "__main__":
    sys.exit(main())
