#!/usr/bin/env bash
# Bring up the built-in lab and run the main playbooks from the lab's corp host:
# mdmops.apple.network_report (catalog summary, DNS/TCP/UDP reachability table), then
# lab/playbooks/firewall_demo.yml (default-drop egress firewall from the catalog, proved
# with real connections, then removed; lab only, not shipped).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (the lab uses network namespaces)" >&2; exit 1; }
# a private collections root for this run (lab/collection.py), removed at the end
MDMOPS_COLLECTIONS_ROOT=$(.venv/bin/python lab/collection.py)
export MDMOPS_COLLECTIONS_ROOT ANSIBLE_COLLECTIONS_PATH=$MDMOPS_COLLECTIONS_ROOT
trap '.venv/bin/python lab/collection.py --remove "$MDMOPS_COLLECTIONS_ROOT"' EXIT
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_DEPRECATION_WARNINGS=False
.venv/bin/python -m lab up
inventory=$(.venv/bin/python -m lab status | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["inventory"])')
ansible-playbook -i "$inventory" mdmops.apple.network_report -e target=corp "$@"
ansible-playbook -i "$inventory" lab/playbooks/firewall_demo.yml -e target=corp "$@"
echo
echo "The lab is still up ('.venv/bin/python -m lab status' shows it); 'make lab-down' removes it."
