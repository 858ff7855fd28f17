#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Snapshots (virsh snapshot-*) against real QEMU 7.2 (TCG) and the real test guest.

  tests/vm/test_snapshot.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                            [--guest DIR] [--keep]

One guest boots ("snap1", its data disk the guest's ext4 image converted to qcow2, mounted at
/mnt/data). Shut-off snapshots go through qemu-img; running ones through QMP snapshot-save/load
jobs: a marker file and the guest's uptime come back on revert. --quiesce is seen in the agent's
log and in guest-fsfreeze-status. A raw disk is refused by name. tetherd killed (-9) during a
snapshot job lists nothing half-made after its restart. snapshot-list's views are compared with
virsh's (libvirt 9.0's test driver, same tree of snapshots). Prints "N passed, N failed".
"""

import argparse
import hashlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (write, REPO, Results, Tether, domain_xml,  # noqa: E402
                          load_guest_env, uptime)

# Captured from virsh 9.0 (`virsh event --all --loop`, libvirtd 9.0, QEMU 7.2): the lifecycle
# events of `snapshot-revert` of a running domain to a running snapshot.
VIRSH90_REVERT_RUNNING = ["Stopped Snapshot", "Started Snapshot", "Resumed Snapshot",
                          "Defined Snapshot"]

# Captured from virsh 9.0 (the same two shut-off domains, snap1 with one snapshot, snapraw
# without; qemu:///system gave the same shapes for its own domains): `list` with the filters.
VIRSH90_LISTS = [
    (["--all", "--with-snapshot"],
     " Id   Name    State\n------------------------\n -    snap1   shut off\n\n"),
    (["--all", "--without-snapshot"],
     " Id   Name      State\n--------------------------\n -    snapraw   shut off\n\n"),
    (["--all", "--with-snapshot", "--name"], "snap1\n\n"),
    (["--all", "--without-snapshot", "--name"], "snapraw\n\n"),
    (["--all", "--with-snapshot", "--without-snapshot", "--name"], "snap1\nsnapraw\n\n"),
    (["--with-snapshot"], " Id   Name   State\n--------------------\n\n"),
]

R = Results()
check = R.check


def qcow2_xml(name, genv, disk, fmt="qcow2"):
    x = domain_xml(name, genv, disk, memory_mib=192)
    return x.replace("<driver name='qemu' type='raw'/>", f"<driver name='qemu' type='{fmt}'/>")


def img_tags(path):
    """The internal snapshots of an image (-U: QEMU may hold it)."""
    out = subprocess.run(["qemu-img", "snapshot", "-U", "-l", path], capture_output=True,
                         text=True).stdout
    return [ln.split()[1] for ln in out.splitlines()[2:] if ln.split()]


def img_info(path):
    p = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True,
                       text=True)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def subscribe(t, *args):
    """`tether event ARGS` in the background, once tetherd has added it as a subscriber (its
    log's count of such lines grows)."""
    def added():
        with open(t.log) as f:
            return f.read().count("event subscriber added")
    before = added()
    ev = t.cli_bg("event", *args)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and added() <= before:
        time.sleep(0.05)
    return ev


def collect(ev, timeout):
    """What the `tether event` of subscribe() printed: (stdout, stderr), killed at timeout."""
    try:
        return ev.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        ev.kill()
        return ev.communicate()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def wait_for(cond, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False


def qmp_hmp(path, cmdline, timeout=120):
    """One HMP command on QEMU's own QMP socket (while tetherd is not connected)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        f = s.makefile("rw")
        f.readline()  # the greeting
        answers = []
        for cmd in ({"execute": "qmp_capabilities"},
                    {"execute": "human-monitor-command",
                     "arguments": {"command-line": cmdline}}):
            f.write(json.dumps(cmd) + "\n")
            f.flush()
            while True:
                msg = json.loads(f.readline())
                if "return" in msg or "error" in msg:
                    answers.append(msg)
                    break
        return answers[-1]


def subscribe_all(t, name):
    """`tether event NAME --all --loop`, once tetherd counts its subscriber."""
    before = open(t.log).read().count("event subscriber added")
    p = t.cli_bg("event", name, "--all", "--loop", "--timeout", "120")
    wait_for(lambda: open(t.log).read().count("event subscriber added") > before, 20, 0.05)
    return p


def events_until(p, last, timeout=60):
    """The subscriber's lines up to and with the one that is `last`, then it is ended."""
    lines, buf = [], ""
    deadline = time.monotonic() + timeout
    fd = p.stdout.fileno()
    while last not in lines and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            chunk = os.read(fd, 4096).decode()
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split("\n")
            lines += done
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=30)
    return lines


TIME_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}")


def virsh_views(script):
    """virsh's output of a snapshot script on libvirt's test driver (one connection)."""
    p = subprocess.run(["virsh", "-c", "test:///default", script], capture_output=True,
                       text=True, timeout=60)
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--keep", action="store_true", help="keep the temp root")
    a = ap.parse_args()
    genv = load_guest_env(a.guest)
    t = Tether(a.tetherd, a.tether, "/tmp/tt-snap-")
    return R.run_suite(t, run, genv, keep=a.keep)


def run(t, genv):
    root = t.root
    t.start_daemon()
    disk = os.path.join(root, "data.qcow2")
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", genv["TETHER_GUEST_DATA"], disk],
                   check=True)
    raw = os.path.join(root, "raw.img")
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", raw, "1M"], check=True)
    x1 = write(os.path.join(root, "snap1.xml"), qcow2_xml("snap1", genv, disk))
    xr = write(os.path.join(root, "snapraw.xml"), qcow2_xml("snapraw", genv, raw, fmt="raw"))
    for x in (x1, xr):
        rc, out, err = t.cli("define", x)
        check(f"define {os.path.basename(x)}", rc == 0, out + err)

    # ---- shut off: qemu-img ----
    # A `tether event --event snapshot` subscriber sees the snapshot made (one event, then it ends).
    ev = subscribe(t, "snap1", "--event", "snapshot", "--timeout", "60")
    rc, out, err = t.cli("snapshot-create-as", "snap1", "off1", "--description", "cold")
    check("shut-off snapshot-create-as prints virsh's line",
          rc == 0 and out == "Domain snapshot off1 created\n", repr(out) + err)
    evout, everr = collect(ev, 30)
    check("the snapshot event reaches `tether event --event snapshot`",
          ev.returncode == 0 and evout == ("event 'snapshot' for domain 'snap1': off1 created\n"
                                           "events received: 1\n\n"), repr((evout, everr)))
    check("shut-off snapshot is in the image (qemu-img)", img_tags(disk) == ["off1"],
          str(img_tags(disk)))
    rc, out, err = t.cli("snapshot-info", "snap1", "off1")
    check("snapshot-info of a shut-off snapshot",
          rc == 0 and out == ("Name:           off1\nDomain:         snap1\nCurrent:        yes\n"
                              "State:          shutoff\nLocation:       internal\n"
                              "Parent:         -\nChildren:       0\nDescendants:    0\n"
                              "Metadata:       yes\n\n"), out + err)
    for flags, want in VIRSH90_LISTS:
        rc, out, err = t.cli("list", *flags)
        check(f"list {' '.join(flags)} as virsh 9.0", rc == 0 and out == want,
              f"ours:\n{out}{err}virsh:\n{want}")
    rc, out, err = t.cli("snapshot-create-as", "snapraw", "x")
    check("a raw disk is refused, named",
          rc == 1 and err == "error: unsupported configuration: internal snapshot for disk vda "
                             "unsupported for storage type raw", err)
    rc, out, err = t.cli("snapshot-create-as", "snap1", "off1")
    check("a duplicate name is refused",
          rc == 1 and err == "error: operation failed: domain moment off1 already exists", err)
    rc, out, err = t.cli("undefine", "snap1")
    check("undefine refuses a domain with snapshots (virsh's two lines)",
          rc == 1 and err == "error: Failed to undefine domain 'snap1'\nerror: Requested "
                             "operation is not valid: cannot delete inactive domain with 1 "
                             "snapshots", err)
    sx = write(os.path.join(root, "snap.xml"), "<domainsnapshot>\n  <name>fromfile</name>\n"
               "  <description>from a file</description>\n</domainsnapshot>\n")
    rc, out, err = t.cli("snapshot-create", "snap1", sx)
    check("snapshot-create XMLFILE", rc == 0 and out == f"Domain snapshot fromfile created from "
                                                        f"'{sx}'\n", repr(out) + err)
    rc, out, err = t.cli("--json", "snapshot-info", "snap1", "fromfile")
    info = json.loads(out) if rc == 0 else {}
    check("snapshot-info --json", info.get("description") == "from a file"
          and info.get("parent") == "off1" and info.get("current") is True
          and info.get("location") == "internal", out + err)
    rc, out, err = t.cli("snapshot-create-as", "snap1", "nometa", "--no-metadata")
    check("--no-metadata: taken", rc == 0 and out == "Domain snapshot nometa created\n",
          out + err)
    rc, out, _ = t.cli("snapshot-list", "snap1", "--name")
    check("--no-metadata: not listed, and current unchanged",
          out == "fromfile\noff1\n\n" and "nometa" in img_tags(disk), out)
    subprocess.run(["qemu-img", "snapshot", "-d", "nometa", disk], check=True)
    rc, out, err = t.cli("snapshot-delete", "snap1", "fromfile")
    check("snapshot-delete of a shut-off snapshot",
          rc == 0 and out == "Domain snapshot fromfile deleted\n\n"
          and img_tags(disk) == ["off1"], out + err + str(img_tags(disk)))
    rc, out, _ = t.cli("snapshot-current", "snap1", "--name")
    check("current goes back to the parent", out == "off1\n", out)
    # A stored definition that is no longer this domain's is refused by name, nothing changed.
    rc, out, err = t.cli("snapshot-create-as", "snap1", "alien")
    meta = os.path.join(root, "var/lib/tether/snapshot/snap1/alien.xml")
    text = open(meta).read()
    uuid = re.search(r"<uuid>([^<]+)</uuid>", text).group(1)
    other = "00000000-0000-4000-8000-000000000009"
    write(meta, text.replace(uuid, other))
    rc, out, err = t.cli("snapshot-revert", "snap1", "alien")
    check("a revert to a snapshot whose definition is another domain's is refused by name",
          rc == 1 and err == "error: unsupported configuration: the definition stored in "
                             f"snapshot 'alien' cannot be used: it is of domain 'snap1' (uuid "
                             f"{other})", err)
    rc, out, err = t.cli("snapshot-delete", "snap1", "alien")
    check("and can be deleted", rc == 0 and "alien" not in img_tags(disk), out + err)

    # ---- running: QMP snapshot-save / snapshot-load ----
    rc, out, err = t.cli("start", "snap1")
    check("start snap1", rc == 0, out + err)
    ag = t.agent("snap1")
    ag.wait(120)
    check("data disk mounted in the guest",
          wait_for(lambda: ag.sh("grep -q ' /mnt/data ' /proc/mounts")[0] == 0, 60))
    code, _ = ag.sh("echo MARK-A > /mnt/data/marker && sync && echo one > /run/memmark")
    check("marker A written", code == 0)
    u_before = uptime(ag)
    rc, out, err = t.cli("snapshot-create-as", "snap1", "s1", "--description", "warm")
    u_after = uptime(ag)
    check("running snapshot-create-as", rc == 0 and out == "Domain snapshot s1 created\n",
          repr(out) + err)
    rc, out, _ = t.cli("domstate", "snap1", "--reason")
    check("still running after the snapshot", out.startswith("running"), out)
    code, _ = ag.sh("echo MARK-B > /mnt/data/marker && sync && echo two > /run/memmark")
    check("marker B written", code == 0)
    check("time passes in the guest", wait_for(lambda: uptime(ag) > u_after + 5, 120, 1))
    evp = subscribe_all(t, "snap1")
    rc, out, err = t.cli("snapshot-revert", "snap1", "s1")
    check("snapshot-revert prints virsh's lines",
          rc == 0 and out == "Domain snapshot s1 reverted\n\n", repr(out) + err)
    got = events_until(evp, "event 'snapshot' for domain 'snap1': s1 reverted")
    life = [ln for ln in got if ln.startswith("event 'lifecycle'")]
    check("a running domain's revert tells virsh 9.0's lifecycle events",
          life == [f"event 'lifecycle' for domain 'snap1': {w}" for w in VIRSH90_REVERT_RUNNING],
          "\n".join(got))
    rc, out, _ = t.cli("domstate", "snap1", "--reason")
    check("running (from snapshot) after revert", out == "running (from snapshot)\n\n", out)
    # The agent port comes back once the loaded guest runs (QEMU's post-load VSERPORT_CHANGE).
    ag.wait(60)
    code, text = ag.sh("cat /mnt/data/marker")
    check("the old marker is back", text == "MARK-A\n", text)
    code, text = ag.sh("cat /run/memmark")
    check("the guest's memory is the snapshot's (a tmpfs file)", text == "one\n", text)
    # TCG's TSC never goes back within one QEMU process (cpu_get_ticks), so the uptime of
    # this revert runs on; the revert of the shut-off domain below starts a fresh QEMU.

    # ---- --quiesce: the agent freezes and thaws ----
    log_before = ag.sh("grep -c 'guest-fsfreeze called' /run/agent.log")[1].strip()
    rc, out, err = t.cli("snapshot-create-as", "snap1", "q1", "--quiesce")
    check("snapshot-create-as --quiesce", rc == 0 and out == "Domain snapshot q1 created\n",
          repr(out) + err)
    log_after = ag.sh("grep -c 'guest-fsfreeze called' /run/agent.log")[1].strip()
    check("the agent froze the guest's filesystems",
          log_after.isdigit() and int(log_after) > int(log_before or 0),
          f"{log_before} -> {log_after}")
    st = ag.check("guest-fsfreeze-status")
    check("and thawed them", st == "thawed", str(st))

    # ---- the list filters ----
    rc, out, _ = t.cli("list", "--all", "--with-snapshot", "--name")
    check("list --with-snapshot", out == "snap1\n\n", out)
    rc, out, _ = t.cli("list", "--all", "--without-snapshot", "--name")
    check("list --without-snapshot", out == "snapraw\n\n", out)

    # ---- snapshot-list views against virsh (test driver, same tree and states) ----
    views = [["--name"], ["--tree"], ["--roots"], ["--leaves"], ["--parent"], [],
             ["--current"], ["--tree", "--current"], ["--leaves", "--parent"]]
    script = ("destroy test; snapshot-create-as test off1 --description cold; start test; "
              "snapshot-create-as test s1; snapshot-revert test s1; "
              "snapshot-create-as test q1 --quiesce; ")
    marks = []
    for i, v in enumerate(views):
        script += f"echo @@{i}; snapshot-list test {' '.join(v)}; "
        marks.append(i)
    ref = virsh_views(script)
    parts = re.split(r"@@(\d+)\n", ref)
    ref_by = {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    for i, v in enumerate(views):
        rc, out, err = t.cli("snapshot-list", "snap1", *v)
        want = TIME_RE.sub("T", ref_by.get(i, "?"))
        check(f"snapshot-list {' '.join(v)} as virsh", TIME_RE.sub("T", out) == want,
              f"ours:\n{out}virsh:\n{want}")
    rc, out, err = t.cli("snapshot-list", "snap1", "--tree", "--name")
    check("snapshot-list --tree --name refused as virsh",
          rc == 1 and err == "error: Options --tree and --name are mutually exclusive", err)
    rc, out, _ = t.cli("snapshot-current", "snap1", "--name")
    check("snapshot-current --name", out == "q1\n", out)
    rc, out, _ = t.cli("snapshot-parent", "snap1", "q1")
    check("snapshot-parent", out == "s1\n", out)
    rc, out, _ = t.cli("snapshot-dumpxml", "snap1", "s1")
    check("snapshot-dumpxml", out.startswith("<domainsnapshot>\n  <name>s1</name>\n"
                                             "  <description>warm</description>\n"
                                             "  <state>running</state>\n  <parent>\n"
                                             "    <name>off1</name>\n  </parent>\n")
          and "<memory snapshot='internal'/>" in out and "  <domain type='qemu'>" in out, out)
    rc, out, err = t.cli("snapshot-info", "snap1", "nosuch")
    check("an unknown snapshot is named",
          rc == 1 and err == "error: Domain snapshot not found: no domain snapshot with "
                             "matching name 'nosuch'", err)

    # ---- kill -9 of tetherd during snapshot-save ----
    pending = os.path.join(root, "var/lib/tether/snapshot/snap1/k1.pending")
    bg = t.cli_bg("snapshot-create-as", "snap1", "k1")
    seen = wait_for(lambda: os.path.exists(pending), 30, 0.005)
    check("the job's pending marker is written", seen)
    t.stop_daemon(signal.SIGKILL)
    bout, berr = bg.communicate(timeout=60)
    check("the client is told the job failed", bg.returncode != 0 and "error" in berr, berr)
    # Whether QEMU got to write k1 before the kill is a race: make sure it did (savevm on
    # QEMU's monitor, free while tetherd is dead), as a job killed a moment later leaves it.
    if "k1" not in img_tags(disk):
        ans = qmp_hmp(t.run_path("snap1", "qmp.sock"), "savevm k1")
        check("QEMU wrote k1 into the image", "error" not in ans and "k1" in img_tags(disk),
              str(ans) + str(img_tags(disk)))
    t.start_daemon()
    rc, out, _ = t.cli("snapshot-list", "snap1", "--name")
    check("nothing half-made is listed after the restart", out == "off1\nq1\ns1\n\n", out)
    check("the log says the job failed",
          "snapshot job for 'k1' failed" in open(t.log).read())
    # The tag QEMU wrote for the killed job leaves the image (a QMP snapshot-delete job).
    check("the killed job's tag is deleted from the image, logged",
          wait_for(lambda: "snapshot 'k1' of the failed job deleted from the images"
                   in open(t.log).read(), 60), open(t.log).read()[-2000:])
    check("qemu-img lists no leftover k1", "k1" not in img_tags(disk), str(img_tags(disk)))
    check("the pending marker is gone", not os.path.exists(pending))
    rc, out, _ = t.cli("domstate", "snap1")
    check("the guest still runs", out == "running\n\n", out)

    # ---- delete ----
    rc, out, err = t.cli("snapshot-delete", "snap1", "q1")
    check("snapshot-delete of a running domain's snapshot",
          rc == 0 and out == "Domain snapshot q1 deleted\n\n", repr(out) + err)
    check("q1 left the image", "q1" not in img_tags(disk), str(img_tags(disk)))
    rc, out, _ = t.cli("snapshot-current", "snap1", "--name")
    check("current goes to the parent", out == "s1\n", out)

    # ---- QEMU killed during snapshot-save: the job fails, nothing is listed ----
    pending = os.path.join(root, "var/lib/tether/snapshot/snap1/dead.pending")
    qpid = t.qemu_pid("snap1")
    bg = t.cli_bg("snapshot-create-as", "snap1", "dead")
    seen = wait_for(lambda: os.path.exists(pending), 30, 0.002)
    os.kill(qpid, signal.SIGKILL)
    bout, berr = bg.communicate(timeout=60)
    check("QEMU killed during the job: the job failed",
          seen and bg.returncode == 1 and berr.startswith("error: ") and "created" not in bout,
          bout + berr)
    rc, out, _ = t.cli("snapshot-list", "snap1", "--name")
    check("and nothing half-made is listed", out == "off1\ns1\n\n" and not os.path.exists(pending),
          out)

    # ---- revert of a shut-off domain to a running snapshot: a fresh QEMU loads it ----
    rc, out, err = t.cli("domstate", "snap1")
    check("snap1 is shut off", out == "shut off\n\n", out)
    # The definition changes after the snapshot; the revert brings the snapshot's back.
    rc, inact, _ = t.cli("dumpxml", "snap1", "--inactive")
    changed = write(os.path.join(root, "snap1-changed.xml"),
                    inact.replace("<memory unit='KiB'>196608</memory>",
                                  "<memory unit='KiB'>262144</memory>")
                    .replace("<currentMemory unit='KiB'>196608</currentMemory>",
                             "<currentMemory unit='KiB'>262144</currentMemory>")
                    .replace("</uuid>", "</uuid>\n  <description>changed</description>", 1))
    rc, out, err = t.cli("define", changed)
    rc2, inact, _ = t.cli("dumpxml", "snap1", "--inactive")
    check("the changed definition is defined",
          rc == 0 and "<memory unit='KiB'>262144</memory>" in inact
          and "<description>changed</description>" in inact, out + err + inact)
    rc, out, err = t.cli("snapshot-revert", "snap1", "s1")
    check("revert a shut-off domain to a running snapshot",
          rc == 0 and out == "Domain snapshot s1 reverted\n\n", repr(out) + err)
    rc, out, _ = t.cli("domstate", "snap1", "--reason")
    check("running (from snapshot) again", out == "running (from snapshot)\n\n", out)
    ag.wait(120)
    u_rev = uptime(ag)
    check("the guest's uptime is the snapshot's", u_before - 1 <= u_rev < u_after + 10,
          f"snapshot taken at {u_before:.1f}-{u_after:.1f} s, after revert {u_rev:.1f} s")
    code, text = ag.sh("cat /mnt/data/marker /run/memmark")
    check("marker and memory are the snapshot's", text == "MARK-A\none\n", text)
    for flag in ([], ["--inactive"]):
        rc, out, _ = t.cli("dumpxml", "snap1", *flag)
        check(f"dumpxml {' '.join(flag)}: the snapshot's definition is back (memory, no "
              f"description)", "<memory unit='KiB'>196608</memory>" in out
              and "<description>" not in out, out)
    rc, out, err = t.cli("snapshot-revert", "snap1", "s1", "--paused")
    check("revert --paused", rc == 0, out + err)
    rc, out, _ = t.cli("domstate", "snap1", "--reason")
    check("paused (from snapshot)", out == "paused (from snapshot)\n\n", out)

    # ---- revert to a shut-off snapshot ----
    rc, out, err = t.cli("destroy", "snap1")
    rc, out, err = t.cli("define", changed)
    check("the changed definition again", rc == 0, out + err)
    rc, out, err = t.cli("snapshot-revert", "snap1", "off1")
    check("revert to the shut-off snapshot", rc == 0, out + err)
    rc, out, _ = t.cli("dumpxml", "snap1", "--inactive")
    check("its definition is back (dumpxml --inactive)",
          "<memory unit='KiB'>196608</memory>" in out and "<description>" not in out, out)
    rc, out, _ = t.cli("domstate", "snap1", "--reason")
    check("shut off (from snapshot)", out == "shut off (from snapshot)\n\n", out)
    rc, out, err = t.cli("snapshot-delete", "snap1", "off1", "--children")
    check("snapshot-delete --children", rc == 0 and out == "Domain snapshot off1 deleted\n\n",
          out + err)
    rc, out, _ = t.cli("snapshot-list", "snap1", "--name")
    check("no snapshots left", out == "\n", repr(out))
    check("no snapshot left in the image", img_tags(disk) == [], str(img_tags(disk)))

    # ---- --disk-only: a qcow2 overlay per disk, the guest still writing ----
    rc, out, err = t.cli("start", "snap1")
    check("start snap1 again", rc == 0, out + err)
    ag.wait(120)
    check("data disk mounted again",
          wait_for(lambda: ag.sh("grep -q ' /mnt/data ' /proc/mounts")[0] == 0, 60))
    base_sum = sha256(disk)
    rc, out, err = t.cli("snapshot-create-as", "snap1", "d1", "--disk-only")
    check("snapshot-create-as --disk-only", rc == 0 and out == "Domain snapshot d1 created\n",
          repr(out) + err)
    overlay = os.path.join(root, "data.d1")
    info = img_info(overlay)
    check("the overlay is qcow2 over the old image",
          info.get("format") == "qcow2" and info.get("backing-filename") == disk
          and info.get("backing-filename-format") == "qcow2", str(info))
    rc, out, _ = t.cli("dumpxml", "snap1")
    check("the running definition points at the overlay", f"<source file='{overlay}'/>" in out,
          out)
    rc, out, _ = t.cli("dumpxml", "snap1", "--inactive")
    check("and so does the persistent one", f"<source file='{overlay}'/>" in out, out)
    rc, out, _ = t.cli("snapshot-info", "snap1", "d1")
    check("snapshot-info of a disk-only snapshot",
          "State:          disk-snapshot\nLocation:       external\n" in out, out)
    size0 = img_info(overlay).get("actual-size", 0)
    code, _ = ag.sh("dd if=/dev/urandom of=/mnt/data/big bs=1M count=8 2>/dev/null && "
                    "echo MARK-D > /mnt/data/marker && sync")
    check("the guest writes after the snapshot", code == 0)
    size1 = img_info(overlay).get("actual-size", 0)
    check("its writes land in the overlay", size1 >= size0 + 8 * 1024 * 1024,
          f"{size0} -> {size1}")
    check("the old image is unchanged", sha256(disk) == base_sum)
    code, text = ag.sh("cat /mnt/data/marker")
    check("and reads its own writes", text == "MARK-D\n", text)
    rc, out, err = t.cli("snapshot-create-as", "snap1", "i2")
    check("an internal snapshot on top of the overlay", rc == 0, out + err)
    check("it is in the overlay", img_tags(overlay) == ["i2"], str(img_tags(overlay)))
    code, _ = ag.sh("echo MARK-E > /mnt/data/marker && sync")
    rc, out, err = t.cli("snapshot-revert", "snap1", "i2")
    ag.wait(60)
    code, text = ag.sh("cat /mnt/data/marker")
    check("and reverts", rc == 0 and text == "MARK-D\n", out + err + text)
    rc, out, err = t.cli("snapshot-delete", "snap1", "i2")
    check("and goes", rc == 0 and img_tags(overlay) == [], out + err + str(img_tags(overlay)))
    rc, out, err = t.cli("snapshot-delete", "snap1", "d1")
    check("deleting an external snapshot is refused as libvirt 9.0 does",
          rc == 1 and err == "error: Failed to delete snapshot d1\nerror: unsupported "
                             "configuration: deletion of 1 external disk snapshots not "
                             "supported yet", err)
    rc, out, err = t.cli("snapshot-revert", "snap1", "d1")
    check("reverting to it too",
          rc == 1 and err == "error: unsupported configuration: revert to external snapshot "
                             "not supported yet", err)
    rc, out, err = t.cli("snapshot-delete", "snap1", "d1", "--metadata")
    check("snapshot-delete --metadata", rc == 0 and out == "Domain snapshot d1 deleted\n\n",
          out + err)

    # ---- a block job (virsh blockpull's QMP job, through qemu-monitor-command) on the disk
    # that is now the overlay over the old image, after a restart: tetherd opened both files for
    # QEMU, which runs unprivileged and reopens the overlay's node for the job (QEMU's image
    # locks refused that while it switched descriptors: auto-read-only). The job's end reaches
    # `tether event` as virsh's block-job line, with the disk's path ----
    t.cli("destroy", "snap1")
    rc, out, err = t.cli("start", "snap1")
    check("start snap1 on its overlay", rc == 0, out + err)
    ag.wait(120)
    check("data disk mounted from the overlay",
          wait_for(lambda: ag.sh("grep -q ' /mnt/data ' /proc/mounts")[0] == 0, 60))
    rc, out, err = t.cli("qemu-monitor-command", "snap1", '{"execute":"query-block"}')
    nodes = [b["inserted"]["node-name"] for b in json.loads(out).get("return", [])
             if "inserted" in b] if rc == 0 else []
    check("query-block names the overlay's node", len(nodes) == 1, out + err)
    ev = subscribe(t, "snap1", "--event", "block-job", "--timeout", "60")
    rc, out, err = t.cli("qemu-monitor-command", "snap1", json.dumps(
        {"execute": "block-stream", "arguments": {"job-id": "vda",
                                                  "device": nodes[0] if nodes else "none"}}))
    check("block-stream of the overlay starts (no image lock refuses it)",
          rc == 0 and out == '{"return":{}}\n\n', out + err)
    eout, eerr = collect(ev, 90)
    check("tether event: virsh's block-job line with the disk's path",
          eout.startswith(f"event 'block-job' for domain 'snap1': Block Pull for {overlay} "
                          "completed\n"), repr(eout) + eerr)
    info = img_info(overlay)
    check("the overlay stands alone after the pull (no backing file)",
          info.get("format") == "qcow2" and "backing-filename" not in info, str(info))
    code, text = ag.sh("echo MARK-F > /mnt/data/marker && sync && cat /mnt/data/marker "
                       "&& sha256sum /mnt/data/big | cut -c1-8")
    check("the guest writes and reads its data after the job", code == 0 and
          text.startswith("MARK-F\n"), text)
    check("the old image is still unchanged", sha256(disk) == base_sum)
    rc, out, err = t.cli("destroy", "snap1")
    rc, out, err = t.cli("undefine", "snap1", "--snapshots-metadata")
    check("undefine --snapshots-metadata", rc == 0, out + err)


if __name__ == "__main__":
    sys.exit(main())
