# SPDX-License-Identifier: GPL-2.0-or-later
"""host_reaper.py PIDDIR: start virtlogd and libvirtd as a child subreaper, reap at once.

libvirtd daemonizes QEMU, so a QEMU that exits becomes a zombie of the nearest subreaper, or of
PID 1. libvirt's destroy polls kill(pid, 0) every 200 ms until the pid is gone, and a zombie
still counts. On a systemd host PID 1 reaps at once; on the bench machine PID 1 reaps only
every second or two, which would add that much to every libvirt destroy and save. Being the
subreaper of the bench's own libvirtd gives libvirt the reaping a normal host gives it.

Runs until it has no children left (the bench stops libvirtd and virtlogd by their pids).
"""
import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    piddir = sys.argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("host_reaper: prctl(PR_SET_CHILD_SUBREAPER): %s"
                 % os.strerror(ctypes.get_errno()))
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
