#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 10's defects that need a booted guest (the others are in tests/host/test_security.py):

- on_reboot destroy: QEMU runs with -no-reboot, and a reboot from inside the guest shuts the
  domain off ("shut off (shutdown)") instead of being ignored (the guest used to reboot), even
  with on_poweroff restart (the reboot follows on_reboot, not the power-off action).

  tests/vm/test_security.py --tetherd build/src/host/tetherd --tether build/src/cli/tether
                            [--guest DIR] [--keep]

One guest, one tetherd. Prints "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lifecyclelib import (write, REPO, Results, Tether, domain_xml,  # noqa: E402
                          load_guest_env, qemu_pids_named)

R = Results()
check = R.check


def run(t, a):
    genv = load_guest_env(a.guest)
    t.start_daemon()
    # on_poweroff restart: a reboot must follow on_reboot, not the power-off action.
    xml = domain_xml("rd", genv, memory_mib=192).replace(
        "</devices>\n", "</devices>\n  <on_poweroff>restart</on_poweroff>\n"
        "  <on_reboot>destroy</on_reboot>\n")
    path = write(os.path.join(t.root, "rd.xml"), xml)
    rc, out, err = t.cli("define", path)
    check("define with <on_reboot>destroy</on_reboot>", rc == 0, err)
    rc, out, err = t.cli("dumpxml", "rd")
    check("dumpxml keeps on_reboot destroy", "<on_reboot>destroy</on_reboot>" in out, err)
    rc, out, err = t.cli("start", "rd")
    check("start rd", rc == 0, err)
    pid = t.qemu_pid("rd")
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0") if pid else []
    check("QEMU runs with -no-reboot", b"-no-reboot" in argv, repr(argv[20:30]))
    t.agent("rd").wait(60)
    # A reboot from inside the guest (the agent's guest-shutdown mode=reboot).
    t0 = time.monotonic()
    rc, out, err = t.cli("reboot", "rd", "--mode", "agent")
    check("tether reboot --mode agent is accepted", rc == 0, err)
    st = t.wait_state("rd", "shut off (shutdown)", 60)
    check("a guest reboot with on_reboot destroy: shut off (shutdown)",
          st == "shut off (shutdown)", f"{st} after {time.monotonic() - t0:.1f} s")
    deadline = time.monotonic() + 10
    while qemu_pids_named("rd") and time.monotonic() < deadline:
        time.sleep(0.2)
    check("its QEMU is gone", qemu_pids_named("rd") == [], repr(qemu_pids_named("rd")))
    rc, out, err = t.cli("domid", "rd")
    check("no id once shut off", (rc, out.strip()) == (0, "-"), repr((rc, out, err)))
    t.stop_daemon()
    log = open(t.log, errors="replace").read()
    check("no sanitizer report from tetherd",
          not any(m in log for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:")),
          log[-2000:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tetherd", default=os.path.join(REPO, "build/src/host/tetherd"))
    ap.add_argument("--tether", default=os.path.join(REPO, "build/src/cli/tether"))
    ap.add_argument("--guest", default=os.environ.get("TETHER_GUEST_DIR",
                                                      os.path.join(REPO, "build/guest")))
    ap.add_argument("--keep", action="store_true", help="keep the temp root")
    a = ap.parse_args()
    t = Tether(a.tetherd, a.tether, "/tmp/tt-security-")
    return R.run_suite(t, run, a, keep=a.keep)


if __name__ == "__main__":
    sys.exit(main())
