#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Stands in for a test whose reference or tool is missing on this machine (QEMU, qemu-ga,
# libvirt, virt-xml-validate, cmocka), so that the test is counted instead of vanishing:
# outside CI it is a skip (exit 77, meson's SKIP); in CI (CI=true) it fails the run.
# Usage: missing_reference.sh TEST WHAT-IS-MISSING
if [ "${CI:-}" = true ]; then
        echo "FAIL: $1 cannot run: $2 is missing (CI=true: a missing reference is a failure)"
        exit 1
fi
echo "SKIP: $1 cannot run: $2 is missing"
exit 77
