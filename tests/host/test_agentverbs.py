#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""
The guest-agent verbs of tetherd and the CLI without a guest: the domain's <emulator> is
fakeqemu.py, which serves QMP and runs the real tether-agent on the host at the agent channel's
socket. The agent gets an allow-list of commands that only read (plus guest-exec and file
access under this test's temp folder), so nothing here changes the host; the commands left out
give their exact "has been disabled" errors, which is what a user sees from an agent that
blocks them. Checks the printed results against the host's own truth (hostname, time, vCPUs,
loopback address, files copied in and out, exit codes of exec).

    python3 test_agentverbs.py TETHERD TETHER AGENT
"""
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from fakelib import Env, check, counts, domain_xml, TIMEOUT


PING = '{"execute":"guest-ping"}'


def wait_agent(e, name):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        rc, out, _ = e.run("qemu-agent-command", name, '{"execute":"guest-ping"}')
        if rc == 0:
            return out
        time.sleep(0.1)
    return None


def top_live(e):
    """tether top on a terminal: the alternate screen, sort keys, q to quit."""
    master, slave = pty.openpty()
    p = subprocess.Popen([e.tether, "--root", e.root, "top", "--interval", "1"], stdin=slave,
                         stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    seen = b""

    def wait_for(text, timeout=TIMEOUT):
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text not in seen and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        return check(text in seen, "top on a terminal shows %r" % text, repr(seen[-500:]))

    try:
        wait_for(b"\033[?1049h")
        wait_for(b"sort: cpu")
        for key, name in ((b"a", b"name"), (b"m", b"mem"), (b"d", b"disk"), (b"n", b"net")):
            os.write(master, key)
            wait_for(b"sort: " + name)
        os.write(master, b"q")
        wait_for(b"\033[?1049l")
        try:
            rc = p.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "top quits on q with status 0", str(rc))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_agent_verbs(e):
    path = os.path.join(e.tmp, "fa.xml")
    with open(path, "w") as f:
        f.write(domain_xml("fa", "c1170000-0000-4000-8000-0000000000fa"))
    e.expect(["define", path], 0)
    e.expect(["start", "fa"], 0, "Domain 'fa' started\n\n")
    e.record_fake("fa")
    out = wait_agent(e, "fa")
    check(out == '{"return":{}}\n\n', "guest-ping through tetherd to the agent", repr(out))
    e.expect(["qemu-agent-command", "fa", '{"execute":"guest-ping"}', "--pretty"], 0,
             '{\n  "return": {\n\n  }\n}\n\n\n')  # as virsh prints it
    e.expect(["qemu-agent-command", "fa", "not json"], 1)

    # What the agent reports is the host's own truth.
    e.expect(["guestinfo", "fa", "--hostname"], 0,
             "hostname            : %s\n\n" % socket.gethostname())
    e.expect(["guestinfo", "fa", "--timezone", "--user"], 0)
    rc, out, err = e.expect(["domtime", "fa"], 0)
    try:
        t = int(out.split("Time: ")[1])
    except (IndexError, ValueError):
        t = 0
    check(abs(t - time.time()) < 30, "domtime is the host's time", out)
    rc, out, err = e.expect(["domtime", "fa", "--pretty"], 0)
    check(out.startswith("Time: " + time.strftime("%Y-%m-%d", time.gmtime())),
          "domtime --pretty: today's date", out)
    ncpu = os.cpu_count()
    cpus = "0" if ncpu == 1 else "0-%d" % (ncpu - 1)
    rc, out, err = e.expect(["guestvcpus", "fa"], 0)
    check(out.startswith("vcpus          : %s\nonline         : %s\n" % (cpus, cpus)),
          "guestvcpus lists the host's CPUs", out)
    rc, out, err = e.expect(["domifaddr", "fa"], 0)
    check(" lo         00:00:00:00:00:00    ipv4         127.0.0.1/8\n" in out,
          "domifaddr: the loopback address", out)
    rc, out, err = e.expect(["domfsinfo", "fa"], 0)
    check(out.startswith(" Mountpoint   Name") and "\n /  " in out, "domfsinfo: the root", out)

    # No machine-changing command (freeze, trim, passwords, suspend, vCPUs, keys, time) is
    # sent to this agent, which runs on the host: the VM suites test those inside a guest.

    # Option refusals, with virsh's texts, before anything reaches the agent.
    for args, err in [
        (["qemu-agent-command", "fa", PING, "--timeout", "5", "--async"],
         "timeout, async and block options are exclusive"),
        (["qemu-agent-command", "fa", PING, "--timeout", "-1"], "timeout must be positive"),
        (["domifaddr", "fa", "--source", "arp"], "--source arp is not supported by tether: "
         "addresses come from the guest agent only (--source agent)"),
        (["domifaddr", "fa", "--source", "bogus"], "Unknown data source 'bogus'"),
        (["domtime", "fa", "--now", "--sync"], "Options --now and --sync are mutually exclusive"),
        (["domtime", "fa", "--time", "5", "--now"],
         "Options --time and --now are mutually exclusive"),
        (["guestvcpus", "fa", "--enable"], "Option --cpulist is required by option --enable"),
        (["guestvcpus", "fa", "--enable", "--disable", "--cpulist", "0"],
         "Options --enable and --disable are mutually exclusive"),
        (["guestvcpus", "fa", "--cpulist", "0"],
         "One of options --enable or --disable is required by option --cpulist"),
        (["setvcpus", "fa", "2", "--current", "--live"],
         "Options --current and --live are mutually exclusive"),
        (["setvcpus", "fa", "2", "--guest", "--config"],
         "Options --guest and --config are mutually exclusive"),
        (["setvcpus", "fa", "0", "--guest"], "Can't set 0 processors for a VM"),
        (["setvcpus", "fa", "x", "--guest"],
         "Numeric value 'x' for <count> option is malformed or out of range"),
        (["setvcpus", "fa", "2", "--maximum"], "Option --config is required by option --maximum"),
        (["setvcpus", "fa", "2"], "only --guest is supported by tether's setvcpus (the guest "
         "agent takes vCPUs on- and offline; vCPU hotplug is not implemented)"),
        (["set-user-sshkeys", "fa", "root", "--remove"],
         "Option --file is required by option --remove"),
        (["set-user-sshkeys", "fa", "root"], "Option --file is required"),
        (["set-user-sshkeys", "fa", "root", "--file", "/nonexistent"],
         "Failed to open file '/nonexistent': No such file or directory"),
        (["dompmsuspend", "fa", "bogus"], "Invalid target"),
    ]:
        e.expect(args, 1, "\n", "error: %s\n" % err)
    e.expect(["domtime", "fa", "--time", "abc"], 1, "",
             "error: Numeric value 'abc' for <time> option is malformed or out of range\n")
    empty = os.path.join(e.tmp, "empty.keys")
    open(empty, "w").close()
    e.expect(["set-user-sshkeys", "fa", "root", "--file", empty], 1, "\n",
             "error: File %s contains no keys\n" % empty)
    e.expect(["qemu-agent-command", "fa", PING, "--block"], 0, '{"return":{}}\n\n')
    e.expect(["qemu-agent-command", "fa", PING, "--async"], 0, '{}\n\n')
    e.expect(["domifaddr", "fa", "--interface", "lo", "--full"], 0,
             " Name       MAC address          Protocol     Address\n" + "-" * 79 + "\n"
             " lo         00:00:00:00:00:00    ipv4         127.0.0.1/8\n"
             " lo         00:00:00:00:00:00    ipv6         ::1/128\n\n")
    e.expect(["get-user-sshkeys", "fa", "nobody"], 1, "\n",
             "error: internal error: unable to execute QEMU agent command "
             "'guest-ssh-get-authorized-keys': failed to read '/nonexistent/.ssh/"
             "authorized_keys': Failed to open file \u201c/nonexistent/.ssh/authorized_keys"
             "\u201d: No such file or directory\n")
    # virsh's format has no newline of its own: one line, no blank one.
    # guestvcpus --cpulist: a vCPU already as asked needs no change; the others are refused
    # before guest-set-vcpus (or by the agent, which blocks it).
    e.expect(["guestvcpus", "fa", "--cpulist", "0", "--enable"], 0, "\n", "")
    e.expect(["guestvcpus", "fa", "--cpulist", "0", "--disable"], 1, "\n",
             "error: Operation not supported: vCPU '0' is not offlinable\n")
    e.expect(["guestvcpus", "fa", "--cpulist", "4000", "--enable"], 1, "\n",
             "error: invalid argument: guest is missing vCPUs '4000'\n")
    e.expect(["dompmwakeup", "fa"], 0, "Domain 'fa' successfully woken up\n")

    # Every guestinfo section, and --json of the agent verbs: the host's own data.
    rc, out, err = e.expect(["guestinfo", "fa"], 0)
    for line in ["user.count", "os.id", "timezone.name", "hostname", "fs.count",
                 "disk.count", "if.count", "if.0.name           : lo"]:
        check(("\n" + line) in "\n" + out, "guestinfo shows " + line, out)
    rc, out, err = e.expect(["guestinfo", "fa", "--interface"], 0)
    check(out.startswith("if.count            : ") and
          "if.0.addr.0.addr    : 127.0.0.1\n" in out, "guestinfo --interface: loopback", out)
    rc, out, err = e.expect(["--json", "guestinfo", "fa", "--hostname"], 0)
    check(json.loads(out or "null") == {"hostname": socket.gethostname()},
          "guestinfo --json", out)
    rc, out, err = e.expect(["--json", "domtime", "fa"], 0)
    check(abs(json.loads(out or "{}").get("seconds", 0) - time.time()) < 30, "domtime --json",
          out)
    rc, out, err = e.expect(["--json", "domfsinfo", "fa"], 0)
    check(any(f.get("mountpoint") == "/" for f in json.loads(out or "[]")),
          "domfsinfo --json: the root", out)
    rc, out, err = e.expect(["--json", "domifaddr", "fa"], 0)
    check({"type": "ipv4", "addr": "127.0.0.1", "prefix": 8} in
          [a for i in json.loads(out or "[]") for a in i.get("addrs", [])],
          "domifaddr --json: loopback", out)
    rc, out, err = e.expect(["--json", "guestvcpus", "fa"], 0)
    check(json.loads(out or "{}").get("vcpus") == cpus, "guestvcpus --json", out)
    e.expect(["--json", "dompmwakeup", "fa"], 0, "{}\n")
    rc, out, err = e.expect(["--json", "domstats", "fa"], 0)
    check(json.loads(out or "[{}]")[0].get("state.state") == 1, "domstats --json", out)

    # exec: output, exit status, environment, timeout.
    e.expect(["exec", "fa", "--", "echo", "hi"], 0, "hi\n", "")
    e.expect(["exec", "fa", "--", "sh", "-c", "echo out; echo err >&2; exit 3"], 3,
             "out\n", "err\n")
    e.expect(["exec", "fa", "--env", "TT_X=42", "--", "sh", "-c", "echo $TT_X"], 0, "42\n")

    # cp in and out of the "guest", byte for byte.
    src = os.path.join(e.tmp, "in.bin")
    data = os.urandom(300000)
    with open(src, "wb") as f:
        f.write(data)
    inside = os.path.join(e.tmp, "inside.bin")
    e.expect(["cp", src, "fa:" + inside], 0)
    check(open(inside, "rb").read() == data if os.path.exists(inside) else False,
          "cp into the guest: same bytes")
    back = os.path.join(e.tmp, "back.bin")
    e.expect(["cp", "fa:" + inside, back], 0)
    check(open(back, "rb").read() == data if os.path.exists(back) else False,
          "cp out of the guest: same bytes")
    e.expect(["cp", src, back], 1, "",
             "error: exactly one of SRC and DST must be DOMAIN:PATH (got '%s' and '%s')\n"
             % (src, back))

    # exec and cp: the rest of what a user meets.
    rc, out, err = e.expect(["--json", "exec", "fa", "--", "sh", "-c",
                             "echo o; echo e >&2; exit 2"], 2, None, "")
    check(json.loads(out or "{}") == {"exitcode": 2, "signal": None, "out": "o\n", "err": "e\n"},
          "exec --json", out)
    e.expect(["exec", "fa", "--", "tr", "a-z", "A-Z"], 0, "FROM STDIN\n", "",
             input="from stdin\n")
    e.expect(["exec", "fa", "--", "sh", "-c", "kill -9 $$"], 137, "", "")
    rc, out, err = e.expect(["exec", "fa", "--timeout", "1", "--", "sleep", "3"], 124, "")
    check(err.startswith("error: command still running after 1 s (pid ") and
          err.endswith(" in the guest)\n"), "exec --timeout: the message", err)
    e.expect(["exec", "fa"], 1, "", "error: usage: tether exec DOMAIN [--timeout N] "
             "[--env K=V]... -- COMMAND [ARG]...\n")
    e.expect(["exec", "fa", "--", "/nonexistent/prog"], 1, "",
             "error: internal error: unable to execute QEMU agent command 'guest-exec': Guest "
             "agent command failed, error was 'Failed to execute child process \u201c"
             "/nonexistent/prog\u201d (No such file or directory)'\n")
    e.expect(["exec", "nosuch", "--", "true"], 1, "", "error: failed to get domain 'nosuch'\n")
    small = os.path.join(e.tmp, "small.txt")
    with open(small, "w") as f:
        f.write("hello\n")
    rc, out, err = e.expect(["--json", "cp", small, "fa:" + os.path.join(e.tmp, "x.txt")], 0,
                            None, "")
    check(json.loads(out or "{}").get("bytes") == 6, "cp --json: the byte count", out)
    e.expect(["cp", "--progress", small, "fa:" + os.path.join(e.tmp, "y.txt")], 0, "")
    sub = os.path.join(e.tmp, "sub")
    os.mkdir(sub)
    e.expect(["cp", "fa:" + os.path.join(e.tmp, "x.txt"), sub], 0, "", "")
    check(open(os.path.join(sub, "x.txt")).read() == "hello\n" if
          os.path.exists(os.path.join(sub, "x.txt")) else False,
          "cp into a local folder keeps the guest file's name")
    for args, err in [
        (["cp", "fa:/nonexistent/file", os.path.join(e.tmp, "z")],
         "cannot copy 'fa:/nonexistent/file' to '%s/z': failed to open file '/nonexistent/file' "
         "(mode: 'r'): No such file or directory" % e.tmp),
        (["cp", small, "fa:"], "the guest path after DOMAIN: is empty"),
        (["cp", small, "fa:/nonexistent/dir/f"],
         "cannot copy '%s' to 'fa:/nonexistent/dir/f': failed to open file '/nonexistent/dir/f' "
         "(mode: 'w'): No such file or directory" % small),
        (["cp", "/nonexistent-local", "fa:/tmp/w"],
         "cannot copy '/nonexistent-local' to 'fa:/tmp/w': cannot open '/nonexistent-local': "
         "No such file or directory"),
        (["cp", "fa:" + sub, os.path.join(e.tmp, "q")],
         "cannot copy 'fa:%s' to '%s/q': failed to read file: Is a directory" % (sub, e.tmp)),
    ]:
        e.expect(args, 1, "", "error: %s\n" % err)

    # The monitor's cached samples: domstats and top.
    rc, out, err = e.expect(["domstats", "fa"], 0)
    check(out.startswith("Domain: 'fa'\n  state.state=1\n  state.reason=1\n"),
          "domstats: running, booted", out)
    rc, out, err = e.expect(["domstats", "--state", "--list-shutoff"], 0)
    check("'fa'" not in out, "domstats --list-shutoff leaves out a running domain", out)
    # top shows the agent once the monitor sampled it (every 2 s).
    deadline = time.monotonic() + TIMEOUT
    while True:
        rc, out, err = e.expect(["top", "--once"], 0)
        lines = out.splitlines()
        if (len(lines) >= 4 and lines[3].rstrip().endswith(" ok")) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.2)
    check(len(lines) >= 4 and lines[0].startswith("tether top - ") and
          "1 domains, 1 running" in lines[0] and lines[3].startswith("fa ") and
          lines[3].rstrip().endswith(" ok"), "top --once: one running domain, agent ok", out)

    e.expect(["top", "--once", "--sort", "bogus"], 1, "",
             "error: invalid sort key 'bogus' (name, cpu, mem, disk or net)\n")
    e.expect(["top", "--once", "--interval", "0"], 1, "",
             "error: interval must be between 1 and 3600 seconds\n")
    rc, out, err = e.expect(["--json", "top", "--once"], 0)
    rows = json.loads(out or "[]")
    check(len(rows) == 1 and rows[0]["name"] == "fa" and rows[0]["state"] == "running" and
          rows[0]["agent"] == "ok" and rows[0]["mem_bytes"] > 0, "top --once --json", out)
    rc, out, err = e.expect(["top", "--once", "--sort", "name"], 0)
    check(out.splitlines()[0].endswith(", every 2 s, sort: name"), "top --sort name", out)
    e.expect(["domstats", "--state", "nosuch"], 1, "\n", "error: failed to get domain 'nosuch'\n")
    top_live(e)

    # A domain without an agent channel.
    path = os.path.join(e.tmp, "fb.xml")
    with open(path, "w") as f:
        f.write(domain_xml("fb", "c1170000-0000-4000-8000-0000000000fb", agent=False))
    e.expect(["define", path], 0)
    e.expect(["start", "fb"], 0)
    e.record_fake("fb")
    rc, out, err = e.expect(["guestinfo", "fb"], 1, "\n")
    check("agent" in err, "guestinfo without an agent channel names the agent", err)
    e.expect(["destroy", "fb"], 0, "Domain 'fb' destroyed\n\n")
    e.expect(["destroy", "fa"], 0, "Domain 'fa' destroyed\n\n")
    e.expect(["guestinfo", "fa"], 1, "\n", "error: Requested operation is not valid: domain is "
             "not running\n")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    tetherd, tether, agent = (os.path.abspath(a) for a in sys.argv[1:])
    tmp = tempfile.mkdtemp(prefix="tether-agentverbs-")
    os.chmod(tmp, 0o755)
    e = Env(tetherd, tether, agent, tmp)
    try:
        test_agent_verbs(e)
    finally:
        e.cleanup()
    if counts["failed"] == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (counts["passed"], counts["failed"]))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
