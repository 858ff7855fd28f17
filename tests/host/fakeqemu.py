#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A stand-in for qemu-system-x86_64 that tetherd can start as a domain's <emulator>, so that
the host suite reaches the guest-agent paths of tetherd and of the CLI without a guest.

It reads the argv tetherd built, serves QMP on the monitor descriptor it was handed (the
greeting, qmp_capabilities, query-status, cont/stop with their RESUME/STOP events,
query-chardev with the agent port open, quit), and starts the real tether-agent ($FAKEQEMU_AGENT)
on the host, listening on the agent channel's socket path: tetherd then talks to a real agent
as it would through virtio-serial. The agent runs with $FAKEQEMU_AGENT_ARGS (the test passes an
allow-list of read-only commands: nothing that changes the host). Every other QMP command
answers {"return": {}}. Exits (killing its agent) on quit or SIGTERM.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time


def main():
    argv = sys.argv[1:]
    mon_fd = None
    agent_path = None
    channels = {}  # charchannelN -> path
    agent_chardev = None
    for i, a in enumerate(argv[:-1]):
        nxt = argv[i + 1]
        if a == "-chardev" and nxt.startswith("socket,id=charmonitor,fd="):
            mon_fd = int(nxt.split("fd=")[1].split(",")[0])
        elif a == "-chardev" and nxt.startswith("socket,id=charchannel"):
            opts = dict(kv.split("=", 1) for kv in nxt.split(",")[1:] if "=" in kv)
            channels[opts["id"]] = opts["path"]
        elif a == "-device" and nxt.startswith("virtserialport,") and \
                "name=org.qemu.guest_agent.0" in nxt:
            opts = dict(kv.split("=", 1) for kv in nxt.split(",")[1:] if "=" in kv)
            agent_chardev = opts["chardev"]
    if mon_fd is None:
        print("fakeqemu: no monitor descriptor in %r" % argv, file=sys.stderr)
        return 1
    agent = None
    if agent_chardev and os.environ.get("FAKEQEMU_AGENT"):
        agent_path = channels[agent_chardev]
        try:
            os.unlink(agent_path)
        except FileNotFoundError:
            pass
        statedir = agent_path + ".state"
        os.makedirs(statedir, exist_ok=True)
        agent = subprocess.Popen([os.environ["FAKEQEMU_AGENT"], "-m", "unix-listen", "-p",
                                  agent_path, "-t", statedir] +
                                 os.environ.get("FAKEQEMU_AGENT_ARGS", "").split(),
                                 stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(agent_path) and time.monotonic() < deadline:
            time.sleep(0.01)

    def bye(*_):
        if agent and agent.poll() is None:
            agent.terminate()
            agent.wait()
        os._exit(0)

    signal.signal(signal.SIGTERM, bye)
    lsock = socket.socket(fileno=mon_fd)
    running = False
    while True:
        conn, _ = lsock.accept()
        f = conn.makefile("rwb", buffering=0)

        def send(obj):
            f.write(json.dumps(obj).encode() + b"\r\n")

        def event(name, data=None):
            now = time.time()
            send({"event": name, "data": data or {},
                  "timestamp": {"seconds": int(now), "microseconds": int(now * 1e6) % 1000000}})

        send({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},
                      "capabilities": ["oob"]}})
        for line in f:
            try:
                cmd = json.loads(line)
            except ValueError:
                continue
            name = cmd.get("execute")
            reply = {}
            after = None
            if name == "query-status":
                reply = {"status": "running" if running else "paused", "singlestep": False,
                         "running": running}
            elif name == "cont":
                running = True
                after = ("RESUME", None)
            elif name == "stop":
                running = False
                after = ("STOP", None)
            elif name == "query-chardev":
                reply = [{"label": c, "filename": "unix:" + p, "frontend-open": c == agent_chardev}
                         for c, p in channels.items()]
            elif name in ("query-cpus-fast", "query-block", "query-blockstats"):
                reply = []
            r = {"return": reply}
            if "id" in cmd:
                r["id"] = cmd["id"]
            send(r)
            if after:
                event(*after)
            if name == "quit":
                event("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})
                bye()
        conn.close()  # like QEMU: the next tetherd connects again


if __name__ == "__main__":
    sys.exit(main())
