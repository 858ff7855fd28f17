# SPDX-License-Identifier: GPL-2.0-or-later
"""host_reaper.py PIDDIR: start virtlogd and libvirtd as a child subreaper, reap at once.

libvirtd daemonizes QEMU, so a QEMU that exits becomes a zombie of the nearest subreaper, or of
PID 1. libvirt's destroy polls kill(pid, 0) every 200 ms until the pid is gone, and a zombie
still counts. On a systemd host PID 1 reaps at once; on the bench machine PID 1 reaps only
every second or two, which would add that much to every libvirt destroy and save. Being the
subreaper of the bench's own libvirtd gives libvirt the reaping a normal host gives it.

Both daemons run in a mount namespace of their own, where /dev/kvm is an empty file no one can
open and /etc/libvirt/qemu.conf adds `namespaces = [ ]` (see tools/libvirtd-start.sh): with the
real /dev/kvm (root, 0600) libvirt 9.0 finds its QEMU capability cache outdated on every lookup
and probes QEMU again, 4 s on each define and start, which no normal host pays. QEMU runs under
TCG on both sides either way, and without namespaces libvirt skips QEMU's private /dev (a file
mount under /dev cannot be moved into it).

Runs until it has no children left (the bench stops libvirtd and virtlogd by their pids).
"""
import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNS = 0x00020000


def mask_kvm(libc, piddir):
    """This process (and so its daemons) in a new mount namespace without a usable /dev/kvm."""
    conf = "/etc/libvirt/qemu.conf"
    if not os.path.exists("/dev/kvm") or not os.path.isfile(conf):
        return
    if libc.unshare(CLONE_NEWNS) != 0:
        sys.exit("host_reaper: unshare(CLONE_NEWNS): %s" % os.strerror(ctypes.get_errno()))
    nokvm = os.path.join(piddir, "nokvm")
    open(nokvm, "w").close()
    os.chmod(nokvm, 0)
    myconf = os.path.join(piddir, "qemu.conf")
    with open(conf) as src, open(myconf, "w") as dst:
        dst.write(src.read() + "\n# bench/host_reaper.py\nnamespaces = [ ]\n")
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "--bind", nokvm, "/dev/kvm"], check=True)
    subprocess.run(["mount", "--bind", myconf, conf], check=True)


def main():
    piddir = sys.argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("host_reaper: prctl(PR_SET_CHILD_SUBREAPER): %s"
                 % os.strerror(ctypes.get_errno()))
    mask_kvm(libc, piddir)
    # Both daemonize: the first process exits once the daemon runs, and the daemon
    # becomes our child.
    subprocess.run(["virtlogd", "-d", "-p", os.path.join(piddir, "virtlogd.pid")], check=True)
    subprocess.run(["libvirtd", "-d", "-p", os.path.join(piddir, "libvirtd.pid")], check=True)
    sys.stdout.write("ready\n")
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
