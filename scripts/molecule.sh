#!/usr/bin/env bash
# The molecule scenarios of extensions/molecule, against the lab (each scenario brings up
# and removes a lab of its own: prefix $MDMOPS_LAB_PREFIX + a suffix, see its molecule.yml).
# Runs every scenario the way molecule expects (`molecule test --all` from extensions/,
# where the `default` scenario lives), or only the ones named: molecule.sh egress_firewall
set -uo pipefail
cd "$(dirname "$0")/../extensions" || exit 1
if [ $# -eq 0 ]; then
  exec molecule test --all
fi
args=()
for s in "$@"; do args+=(-s "$s"); done
exec molecule test "${args[@]}"
