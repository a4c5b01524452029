#!/usr/bin/env bash
# Install what the lab, the tests and the demo need on a fresh Debian machine:
# system packages (as root) and a virtualenv in .venv with requirements-dev.txt.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the HTML report is opened in a real headless browser (tests/integration/report)
# squid-openssl (not squid, which it replaces): the lab's proxies, the intercepting one needs ssl_bump (lab/proxies.py)
APT_PACKAGES=(iproute2 nftables iptables ipset dnsmasq-base squid-openssl openssl procps make shellcheck firewalld dbus chromium)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as firewalld and squid start a service on install; on this machine they
  # must only ever run inside the lab's namespaces, so keep the package scripts from starting them.
  policy=/usr/sbin/policy-rc.d
  added_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$added_policy" ] || rm -f "$policy"
fi

stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: preparing .venv"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # pip warns about local index folders this machine may not have; keep real errors.
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install -q -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import ansible, cryptography, molecule, pytest, xdist, httpx, h2, dnslib, yaml" \
    || { echo "bootstrap: .venv is incomplete (see pip's errors above)" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
