#!/usr/bin/env bash
# Every test of the project, in one run: molecule (against the lab), ansible-test
# sanity, ansible-lint, the module tests on the older ansible-core releases we
# support (compat), then pytest (unit + lab integration) on the current one.
# Runs each step even when an earlier one fails, and fails at the end if any did.
# With arguments, runs only the named steps (molecule, sanity, lint, compat, pytest).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
[ "$(id -u)" = 0 ] || { echo "test: run as root (the lab uses network namespaces)" >&2; exit 1; }
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH
ANSIBLE_COLLECTIONS_PATH=$(python lab/collection.py)
export ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_DEPRECATION_WARNINGS=False ANSIBLE_NOCOLOR=1 PY_COLORS=0
# the lab must come up here: a lab that cannot start fails the run instead of skipping
export MDMOPS_LAB_REQUIRED=1

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(molecule sanity lint compat pytest)
declare -A result

run_molecule() {
  local rc=0 scenario
  for scenario in extensions/molecule/*/molecule.yml; do
    scenario=$(basename "$(dirname "$scenario")")
    (cd extensions && molecule test -s "$scenario") || rc=1
  done
  return "$rc"
}

run_step() {
  case "$1" in
    molecule) run_molecule ;;
    sanity) bash scripts/sanity.sh ;;
    lint) ansible-lint --offline --profile production ;;
    compat) bash scripts/compat.sh ;;
    pytest) python -m pytest tests/unit tests/integration ;;
    *) echo "test: unknown step $1 (molecule, sanity, lint, compat, pytest)" >&2; return 2 ;;
  esac
}

for step in "${steps[@]}"; do
  echo "=== $step"
  start=$SECONDS
  if run_step "$step"; then result[$step]="ok"; else result[$step]="FAILED"; fi
  echo "=== $step: ${result[$step]} in $((SECONDS - start)) s"
done

failed=0
summary=""
for step in "${steps[@]}"; do
  summary+="$step ${result[$step]}; "
  [ "${result[$step]}" = ok ] || failed=1
done
echo "make test: ${summary% }"
exit $failed
