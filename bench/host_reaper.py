# SPDX-License-Identifier: GPL-2.0-or-later
"""host_reaper.py LVDIR: a private virtlogd + libvirtd for a bench, as their child subreaper.

The caller runs in a mount namespace of its own (the benches re-exec under `unshare -m`). This
script bind-mounts fresh state folders under LVDIR over /run/libvirt, /etc/libvirt/qemu,
/var/lib/libvirt/qemu, /var/cache/libvirt and /var/log/libvirt in that namespace (so the
caller's virsh reaches this libvirtd, and nothing of the host's libvirt is touched; the QEMU
capability cache is copied, so no probe runs), starts the two daemons (pidfiles in LVDIR/pid),
prints "ready" once libvirtd's socket is there, and reaps until it has no children left (the
bench stops libvirtd and virtlogd by their pids).

Why a subreaper: libvirtd daemonizes QEMU, so a QEMU that exits becomes a zombie of the nearest
subreaper, or of PID 1. libvirt's destroy polls kill(pid, 0) every 200 ms until the pid is
gone, and a zombie still counts. On a systemd host PID 1 reaps at once; on the bench machine
PID 1 reaps only every second or two, which would add that much to every libvirt destroy and
save. Being the subreaper of the bench's own libvirtd gives libvirt the reaping a normal host
gives it.

libvirtd runs under tools/nokvm.sh (no usable /dev/kvm): with the real one libvirt 9.0 probes
QEMU again on each define and start, 4 s that no normal host pays. QEMU runs under TCG on both
sides either way.
"""
import ctypes
import os
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
HERE = os.path.dirname(os.path.abspath(__file__))
NOKVM = os.path.join(HERE, "..", "tools", "nokvm.sh")
STATE = (("run", "/run/libvirt"), ("etc-qemu", "/etc/libvirt/qemu"),
         ("lib-qemu", "/var/lib/libvirt/qemu"), ("cache", "/var/cache/libvirt"),
         ("log", "/var/log/libvirt"))


def state_dirs(lv):
    """Fresh state folders for libvirt under lv, mounted over the real ones."""
    for d in ("run", "etc-qemu/networks/autostart", "etc-qemu/autostart", "cache", "log/qemu",
              "pid", "lib-qemu"):
        os.makedirs(os.path.join(lv, d), exist_ok=True)
    for d in ("channel/target", "snapshot", "dump", "checkpoint", "nvram", "save", "ram"):
        os.makedirs(os.path.join(lv, "lib-qemu", d), exist_ok=True)
    subprocess.run(["chown", "-R", "--reference=/var/lib/libvirt/qemu", f"{lv}/lib-qemu"],
                   check=True)
    subprocess.run(["chmod", "--reference=/var/lib/libvirt/qemu", f"{lv}/lib-qemu"], check=True)
    os.chmod(f"{lv}/cache", 0o711)
    if os.path.isdir("/var/cache/libvirt/qemu"):
        subprocess.run(["cp", "-a", "/var/cache/libvirt/qemu", f"{lv}/cache/"], check=True)
    for src, dst in STATE:
        subprocess.run(["mount", "--bind", os.path.join(lv, src), dst], check=True)


def main():
    lv = sys.argv[1]
    piddir = os.path.join(lv, "pid")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("host_reaper: prctl(PR_SET_CHILD_SUBREAPER): %s"
                 % os.strerror(ctypes.get_errno()))
    state_dirs(lv)
    # Both daemonize: the first process exits once the daemon runs, and the daemon
    # becomes our child.
    subprocess.run(["virtlogd", "-d", "-p", os.path.join(piddir, "virtlogd.pid")], check=True)
    subprocess.run([NOKVM, os.path.join(lv, "nokvm"), "libvirtd", "-d", "-p",
                    os.path.join(piddir, "libvirtd.pid")], check=True)
    deadline = time.monotonic() + 15
    while not os.path.exists("/run/libvirt/libvirt-sock") and time.monotonic() < deadline:
        time.sleep(0.05)
    sys.stdout.write("ready\n" if os.path.exists("/run/libvirt/libvirt-sock") else
                     "libvirtd has no socket after 15 s\n")
    sys.stdout.flush()
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return
        except InterruptedError:
            continue


if __name__ == "__main__":
    main()
