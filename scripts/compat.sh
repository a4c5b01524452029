#!/usr/bin/env bash
# Run the module-level tests (real ansible runs, lab included) with each older
# ansible-core we support, each in its own virtualenv under .venv-compat/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.17 2.18)
rc=0
for v in "${versions[@]}"; do
  venv=".venv-compat/$v"
  if [ ! -x "$venv/bin/ansible" ]; then
    python3 -m venv "$venv" || exit 1
    "$venv/bin/python" -m pip install -q "ansible-core==$v.*" -r requirements-compat.txt 2>&1 | grep -v "^WARNING: Location" || true
  fi
  echo "--- ansible-core $("$venv/bin/ansible" --version | head -1)"
  MDMOPS_LAB_PREFIX="mdmc${v//./}" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    tests/integration/certs tests/integration/collection tests/integration/firewall/test_nftables.py \
    tests/integration/test_return_docs.py \
    tests/unit || rc=1
done
exit $rc
