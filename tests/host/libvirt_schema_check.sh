#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Differential check against libvirt: what domain_format() writes for every golden definition
# must validate against libvirt's own domain schema (virt-xml-validate, libvirt-clients).
# Usage: libvirt_schema_check.sh TETHER_DOMAIN_CHECK GOLDEN_DIR
set -u
check=$1 golden=$2
tmp=$(mktemp -d /tmp/host-schema-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
failed=0 n=0
for xml in "$golden"/*.xml; do
        n=$((n + 1))
        name=$(basename "$xml")
        if ! "$check" "$xml" > "$tmp/$name" 2> "$tmp/err"; then
                echo "not ok $n - $name: $(cat "$tmp/err")"; failed=1; continue
        fi
        # both the hand-written input and what Tether writes back
        if out=$(virt-xml-validate "$xml" domain 2>&1 && virt-xml-validate "$tmp/$name" domain 2>&1); then
                echo "ok $n - $name"
        else
                echo "not ok $n - $name: $out"; failed=1
        fi
done
echo "1..$n"
exit $failed
