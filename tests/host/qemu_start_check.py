# SPDX-License-Identifier: GPL-2.0-or-later
"""Start real QEMU with every golden command line, then quit it over QMP.

The strongest check of the argv builder: QEMU itself parses every option and creates every
device (it stays stopped by -S). For each golden/<feature>.args:
  - /tmp/tether-golden is replaced by a fresh temporary folder holding the disk images, kernel
    and sockets the command line names;
  - QEMU must create the QMP socket, answer qmp_capabilities and query-status (prelaunch, or
    inmigrate with -incoming defer), write the pidfile, and exit 0 after "quit".
Known host limits, substituted and printed as such:
  - no usable KVM here (nested KVM hangs): -accel kvm -> tcg, -cpu host... -> max.
A "-netdev tap,fd=N" gets a real tap device at descriptor N, as tetherd passes it (needs root).
Usage: qemu_start_check.py GOLDEN_DIR QEMU_BINARY [FEATURE...]
"""
import glob
import fcntl
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

GOLDEN_ROOT = "/tmp/tether-golden"
KVM_USABLE = os.environ.get("TETHER_TEST_KVM") == "1"


# <linux/if_tun.h>
TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def fake_bzimage(path):
    """A Linux boot-protocol header QEMU's x86 loader accepts; it never runs (-S)."""
    setup_sects = 4
    img = bytearray((setup_sects + 1) * 512 + 4096)
    img[0x1F1] = setup_sects
    img[0x1FE:0x200] = b"\x55\xaa"
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, 0x020F)  # protocol 2.15
    img[0x211] = 0x01  # LOADED_HIGH
    struct.pack_into("<I", img, 0x22C, 0x7FFFFFFF)  # initrd_addr_max
    struct.pack_into("<I", img, 0x238, 2048)  # cmdline_size
    with open(path, "wb") as f:
        f.write(img)


def prepare(root, qemu):
    img = shutil.which("qemu-img")
    subprocess.run([img, "create", "-q", "-f", "qcow2", os.path.join(root, "disk.qcow2"), "16M"], check=True)
    for name, size in (("disk.img", 16 << 20), ("disk,with,commas.img", 16 << 20), ("cd.iso", 1 << 20)):
        with open(os.path.join(root, name), "wb") as f:
            f.truncate(size)
    fake_bzimage(os.path.join(root, "vmlinuz"))
    with open(os.path.join(root, "initrd.img"), "wb") as f:
        f.write(b"\0" * 4096)


def qmp(sock, cmd):
    sock.sendall(json.dumps({"execute": cmd}).encode() + b"\n")
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP closed while waiting for %s" % cmd)
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        msg = json.loads(line)
        if "event" in msg:
            continue
        if "error" in msg:
            raise RuntimeError("%s: %s" % (cmd, msg["error"]))
        return msg["return"]


def open_taps(argv):
    """A real tap device (not persistent: it goes with its last descriptor) at each fd=N that
    a "-netdev tap,fd=N" names, as tetherd passes them. Returns the descriptor numbers."""
    fds = []
    for a in argv:
        m = re.match(r"tap,fd=(\d+),", a)
        if not m:
            continue
        n = int(m.group(1))
        tun = os.open("/dev/net/tun", os.O_RDWR)
        ifr = struct.pack("16sH", b"tchk%d", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)
        fcntl.ioctl(tun, TUNSETIFF, ifr)
        os.dup2(tun, n, inheritable=True)
        os.close(tun)
        fds.append(n)
    return fds


def run_one(args_path, qemu):
    feature = os.path.basename(args_path)[:-5]
    root = tempfile.mkdtemp(prefix="host-qemu-")
    notes = []
    proc = None
    try:
        prepare(root, qemu)
        with open(args_path) as f:
            argv = [a.replace(GOLDEN_ROOT, root) for a in f.read().split("\n")[:-1]]
        argv[0] = qemu
        if not KVM_USABLE and "kvm" in argv:
            argv[argv.index("kvm")] = "tcg"
            cpu = argv.index("-cpu") + 1
            if argv[cpu].startswith("host"):
                argv[cpu] = "max"
            notes.append("kvm->tcg")
        qmp_path = os.path.join(root, "qmp.sock")
        taps = open_taps(argv)
        if taps:
            notes.append("%d tap device(s) passed" % len(taps))
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=taps)
        for n in taps:
            os.close(n)
        deadline = time.time() + 30
        while not os.path.exists(qmp_path):
            if proc.poll() is not None or time.time() > deadline:
                break
            time.sleep(0.05)
        if not os.path.exists(qmp_path):
            return False, "QEMU exited %s before QMP: %s" % (proc.returncode, proc.stderr.read().decode())
        # The socket file appears at bind(), a moment before listen(): retry refusals briefly.
        while True:
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(20)
            try:
                sock.connect(qmp_path)
                break
            except ConnectionRefusedError:
                sock.close()
                if proc.poll() is not None or time.time() > deadline:
                    raise
                time.sleep(0.05)
        greeting = sock.recv(65536)
        if b'"QMP"' not in greeting:
            return False, "no QMP greeting: %r" % greeting
        qmp(sock, "qmp_capabilities")
        status = qmp(sock, "query-status")["status"]
        want = "inmigrate" if "-incoming" in argv else "prelaunch"
        if status != want:
            return False, "status %s, expected %s" % (status, want)
        with open(os.path.join(root, "qemu.pid")) as f:
            if int(f.read().strip()) != proc.pid:
                return False, "pidfile does not hold QEMU's pid"
        qmp(sock, "quit")
        sock.close()
        rc = proc.wait(timeout=20)
        err = proc.stderr.read().decode(errors="replace")
        bad = [l for l in err.splitlines() if "char device redirected" not in l]
        if rc != 0:
            return False, "exit status %d: %s" % (rc, err)
        if bad:
            return False, "QEMU complained: %s" % " | ".join(bad)
        return True, "ok (%s%s)" % (status, ", " + ", ".join(notes) if notes else "")
    except Exception as e:  # report and go on with the next feature
        return False, "%s: %s" % (type(e).__name__, e)
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def main():
    golden, qemu = sys.argv[1], sys.argv[2]
    only = set(sys.argv[3:])
    failed = 0
    files = sorted(glob.glob(os.path.join(golden, "*.args")))
    if not files:
        print("not ok - no .args files in %s" % golden)
        return 1
    for i, path in enumerate(files, 1):
        feature = os.path.basename(path)[:-5]
        if only and feature not in only:
            continue
        ok, why = run_one(path, qemu)
        failed += not ok
        print("%s %d - %s: %s" % ("ok" if ok else "not ok", i, feature, why), flush=True)
    print("1..%d" % len(files))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
