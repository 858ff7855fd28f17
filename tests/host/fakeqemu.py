#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A stand-in for qemu-system-x86_64 that tetherd can start as a domain's <emulator>, so that
the host suite reaches the guest-agent paths of tetherd and of the CLI without a guest.

It reads the argv tetherd built (or exits 1 at once for the domain named in $FAKEQEMU_FAIL,
as QEMU does on a bad command line; $FAKEQEMU_DEAF names a guest that ignores the power button,
$FAKEQEMU_SAVEFAIL one whose migration fails), serves QMP on the monitor descriptor it was handed (the
greeting, qmp_capabilities, query-status, cont/stop with their RESUME/STOP events,
query-chardev with the agent port open, system_powerdown and system_reset with their events,
getfd/migrate/migrate-incoming/query-migrate through the descriptors tetherd passes,
add-fd/screendump/remove-fd, the x-fake-event hook, quit), and starts the real tether-agent
($FAKEQEMU_AGENT) on the host, listening on the agent channel's socket path: tetherd then talks
to a real agent as it would through virtio-serial. The agent runs with $FAKEQEMU_AGENT_ARGS (the test passes an
allow-list of read-only commands: nothing that changes the host). Every other QMP command
answers {"return": {}}. Exits (killing its agent) on quit or SIGTERM.
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


# What screendump writes: a 1x1 PNG (the test compares the bytes the CLI saved).
SCREEN_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


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
    fail = os.environ.get("FAKEQEMU_FAIL")
    if fail and ("guest=%s," % fail) in " ".join(argv):
        # As QEMU that rejects its command line: one line on stderr (tetherd's log), exit 1.
        print("fakeqemu: failing to start as asked", file=sys.stderr, flush=True)
        return 1
    agent = None
    if agent_chardev and os.environ.get("FAKEQEMU_AGENT"):
        agent_path = channels[agent_chardev]
        try:
            os.unlink(agent_path)
        except FileNotFoundError:
            pass
        # Not in the run folder: tetherd removes only its own files there.
        statedir = tempfile.mkdtemp(prefix="fakeqemu-agent-")
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
        if agent:
            shutil.rmtree(statedir, ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, bye)
    lsock = socket.socket(fileno=mon_fd)
    incoming = "-incoming" in argv
    st = {"running": False, "migrate": None}
    fds = {}  # getfd name -> descriptor
    deaf = os.environ.get("FAKEQEMU_DEAF", "") and \
        ("guest=%s," % os.environ["FAKEQEMU_DEAF"]) in " ".join(argv)
    savefail = os.environ.get("FAKEQEMU_SAVEFAIL", "") and \
        ("guest=%s," % os.environ["FAKEQEMU_SAVEFAIL"]) in " ".join(argv)
    while True:
        conn, _ = lsock.accept()
        pending = []  # descriptors that came with the bytes read so far

        def send(obj):
            try:
                conn.sendall(json.dumps(obj).encode() + b"\r\n")
            except OSError:
                pass  # tetherd went away: as QEMU, wait for the next one

        def event(name, data=None):
            now = time.time()
            send({"event": name, "data": data or {},
                  "timestamp": {"seconds": int(now), "microseconds": int(now * 1e6) % 1000000}})

        def handle(cmd):
            name = cmd.get("execute")
            args = cmd.get("arguments") or {}
            reply = {}
            after = []
            if name == "query-status":
                status = "inmigrate" if incoming else ("running" if st["running"] else "paused")
                reply = {"status": status, "singlestep": False, "running": st["running"]}
            elif name == "cont":
                st["running"] = True
                after = [("RESUME", None)]
            elif name == "stop":
                st["running"] = False
                after = [("STOP", None)]
            elif name == "query-chardev":
                reply = [{"label": c, "filename": "unix:" + p, "frontend-open": c == agent_chardev}
                         for c, p in channels.items()]
            elif name in ("query-cpus-fast", "query-block", "query-blockstats"):
                reply = []
            elif name == "add-fd":
                if pending:
                    fds[args.get("fdset-id")] = pending.pop(0)
                    reply = {"fdset-id": args.get("fdset-id"), "fd": fds[args.get("fdset-id")]}
            elif name == "remove-fd":
                fd = fds.pop(args.get("fdset-id"), None)
                if fd is not None:
                    os.close(fd)
            elif name == "screendump":
                fd = fds.get(int(args.get("filename", "/dev/fdset/-1").rsplit("/", 1)[1]))
                if fd is not None:
                    os.write(fd, SCREEN_PNG)
            elif name == "getfd":
                if pending:
                    fds[args.get("fdname")] = pending.pop(0)
            elif name == "migrate":
                fd = fds.pop(args.get("uri", "")[3:], None)
                if fd is not None and not savefail:
                    os.write(fd, b"FAKEQEMU-STATE " + " ".join(argv).encode() + b"\n")
                if fd is not None:
                    os.close(fd)
                st["migrate"] = "completed" if fd is not None and not savefail else "failed"
                st["desc"] = "fakeqemu: save failed as asked" if savefail else None
            elif name == "migrate-incoming":
                fd = fds.pop(args.get("uri", "")[3:], None)
                data = os.read(fd, 15) if fd is not None else b""
                if fd is not None:
                    os.close(fd)
                st["migrate"] = "completed" if data == b"FAKEQEMU-STATE " else "failed"
            elif name == "query-migrate":
                reply = {"status": st["migrate"] or "none"}
                if st["migrate"] == "failed":
                    reply["error-desc"] = st.get("desc") or "fakeqemu: not a stream it wrote"
            elif name == "system_powerdown":
                after = [("POWERDOWN", None)]
                if not deaf:
                    st["running"] = False
                    after += [("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"}),
                              ("STOP", None)]
            elif name == "system_reset":
                after = [("RESET", {"guest": False, "reason": "host-qmp-system-reset"})]
            elif name == "x-fake-event":
                # A test's hook (through qemu-monitor-command): an event as the guest would cause.
                after = [(args["event"], args.get("data"))]
                if args.get("running") is not None:
                    st["running"] = args["running"]
            r = {"return": reply}
            if "id" in cmd:
                r["id"] = cmd["id"]
            send(r)
            for ev in after:
                event(*ev)
            if name == "quit":
                event("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})
                bye()

        send({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},
                      "capabilities": ["oob"]}})
        buf = b""
        while True:
            try:
                data, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
            except OSError:
                break
            if not data:
                break
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    n = len(cdata) // 4
                    pending.extend(int.from_bytes(cdata[4 * i:4 * i + 4], sys.byteorder)
                                   for i in range(n))
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    cmd = json.loads(line)
                except ValueError:
                    continue
                if isinstance(cmd, dict):
                    handle(cmd)
                    if cmd.get("execute") == "migrate-incoming":
                        incoming = False
        conn.close()  # like QEMU: the next tetherd connects again


if __name__ == "__main__":
    sys.exit(main())
