#!/usr/bin/env bash
# The older ansible-core releases we support (2.17, 2.18), each in its own virtualenv
# under .venv-compat/<version> (ansible-core + requirements-compat.txt).
#   compat.sh setup [VERSION...]   make (or refresh, when the requirements changed) the virtualenvs
#   compat.sh [VERSION...]         the module tests marked `compat` (real ansible runs, lab
#                                  included; see tests/integration/conftest.py), not `serial`;
#                                  unit tests run once, on the current core (scripts/test.sh unit)
# Lab prefix: $MDMOPS_LAB_PREFIX (default mdmc<version>), plus the xdist worker number.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

setup() {
  local v=$1 venv=".venv-compat/$1" want
  want=$( (echo "$v"; cat requirements.txt requirements-compat.txt) | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/ansible" ] && [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "compat: preparing $venv"
  [ -x "$venv/bin/python" ] || "$PY" -m venv "$venv" || return 1
  # pip warns about local index folders this machine may not have; keep real errors.
  "$venv/bin/python" -m pip install -q "ansible-core==$v.*" -r requirements-compat.txt 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$venv/bin/python" -c "import ansible, cryptography, pytest, xdist, yaml" \
    || { echo "compat: $venv is incomplete (see pip's errors above)" >&2; return 1; }
  echo "$want" > "$venv/.requirements.sha256"
}

if [ "${1:-}" = setup ]; then
  shift
  versions=("$@")
  [ ${#versions[@]} -gt 0 ] || versions=(2.17 2.18)
  pids=()
  for v in "${versions[@]}"; do setup "$v" & pids+=($!); done
  rc=0
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  exit $rc
fi

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.17 2.18)
workers=${MDMOPS_TEST_WORKERS:-2}
rc=0
for v in "${versions[@]}"; do
  setup "$v" || { rc=1; continue; }
  venv=".venv-compat/$v"
  version=$("$venv/bin/ansible" --version)
  echo "--- ${version%%$'\n'*}"
  MDMOPS_LAB_PREFIX="${MDMOPS_LAB_PREFIX:-mdmc${v//./}}" "$venv/bin/python" -m pytest -p no:cacheprovider \
    -n "$workers" -m "compat and not serial" tests/integration || rc=1
done
exit $rc
