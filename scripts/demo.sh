#!/usr/bin/env bash
# Bring up the built-in lab and run the main playbooks from the lab's corp host:
# mdmops.apple.network_report (catalog summary, DNS/TCP/UDP reachability table),
# mdmops.apple.verify_push (the push path layer by layer, with a lab push certificate that the
# lab's APNs provider API accepts; JSON, JUnit and HTML reports in the lab's state directory), then
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
state=$(dirname "$inventory")
cert=$(.venv/bin/python -m lab push-cert --out "$state/demo-push")
field() { .venv/bin/python -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$cert" "$1"; }
ansible-playbook -i "$inventory" mdmops.apple.verify_push -e target=corp \
  -e push_health_certificate_path="$(field certificate_path)" -e push_health_privatekey_path="$(field privatekey_path)" \
  -e "push_health_ca_path={{ lab_ca_path }}" -e push_health_report_dir="$state/demo-reports" "$@"
echo "push reports: $state/demo-reports/push_health_corp.html (.json, .junit.xml)"
ansible-playbook -i "$inventory" lab/playbooks/firewall_demo.yml -e target=corp "$@"
echo
echo "The lab is still up ('.venv/bin/python -m lab status' shows it); 'make lab-down' removes it."
