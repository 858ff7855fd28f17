#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The demo: build tether-agent, start it on a unix socket in a temporary folder, and show its
# real replies to a few QGA commands, the way libvirt or a person would send them.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build src/agent/tether-agent >/dev/null

tmp=$(mktemp -d /tmp/tether-demo.XXXXXX)
agent_pid=
cleanup() { [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

build/src/agent/tether-agent -m unix-listen -p "$tmp/agent.sock" -t "$tmp" -l "$tmp/agent.log" &
agent_pid=$!
for _ in $(seq 50); do [ -S "$tmp/agent.sock" ] && break; sleep 0.1; done

echo "tether-agent $(build/src/agent/tether-agent -V | awk '{print $NF}') is listening on $tmp/agent.sock (pid $agent_pid)"
echo "hello from the demo" > "$tmp/hello.txt"
python3 - "$tmp/agent.sock" "$tmp/hello.txt" <<'PY'
import base64, json, socket, sys, time

sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
buf = b""

def call(name, args=None, show=True):
    global buf
    req = {"execute": name}
    if args is not None:
        req["arguments"] = args
    line = json.dumps(req)
    sock.sendall(line.encode())
    while b"\n" not in buf:
        buf += sock.recv(65536)
    reply, buf = buf.split(b"\n", 1)
    if show:
        print(f"\n>>> {line}\n<<< {reply.decode()[:600]}{' ...' if len(reply) > 600 else ''}")
    return json.loads(reply)

call("guest-sync", {"id": 1234})
call("guest-ping")
call("guest-get-osinfo")
call("guest-get-host-name")
call("guest-network-get-interfaces")
call("guest-get-vcpus")
h = call("guest-file-open", {"path": sys.argv[2]})["return"]
r = call("guest-file-read", {"handle": h})["return"]
print("    decoded:", base64.b64decode(r["buf-b64"]).decode().strip())
call("guest-file-close", {"handle": h})
pid = call("guest-exec", {"path": "/bin/echo", "arg": ["hello", "from", "guest-exec"],
                          "capture-output": True})["return"]["pid"]
for _ in range(100):
    st = call("guest-exec-status", {"pid": pid}, show=False)["return"]
    if st["exited"]:
        break
    time.sleep(0.02)
print(f"\n>>> guest-exec-status {pid}\n<<< {json.dumps(st)}")
print("    decoded:", base64.b64decode(st.get("out-data", "")).decode().strip())
call("guest-shutdown")
call("no-such-command")
PY
