#!/usr/bin/env bash
# Every test of the project, in one run (`make test`, CI's .ci/run). Needs root (the lab).
#
# Steps (each runs even when another fails; the run fails at the end if any did):
#   unit          pytest tests/unit, once, on the current ansible-core (pure tests: no lab, no root)
#   lab           pytest tests/integration -m "not serial" (but test_compat.py, the older cores'),
#                 sharded over pytest-xdist workers, each worker with its own lab (prefix <base>l<n>)
#   serial        pytest tests/integration -m serial, alone in one process (firewalld: the one
#                 system D-Bus socket); none selected is not a failure
#   compat-2.17   module tests (tests/integration marked `compat`, not serial) on each older
#   compat-2.18   ansible-core, in .venv-compat/<version> (scripts/compat.sh)
#   sanity-2.17   ansible-test sanity on every supported ansible-core (scripts/sanity.sh)
#   sanity-2.18
#   sanity-2.19
#   lint          ansible-lint, production profile
#   molecule      the molecule scenarios (extensions/molecule), against the lab
# With arguments, runs only those steps; `pytest` means unit lab serial, `compat` and
# `sanity` mean all their versions.
#
# Independent steps run side by side, at most $MDMOPS_TEST_JOBS at a time (default 4: the
# lab, serial and molecule steps spend much of their time waiting on timers and the network
# (serial: 80 CPU-s in about 300 s), so four keep two cores busy); each step's output is
# printed whole when it ends, then a time table and one closing line with the test counts of
# all pytest steps.
#
# Lab prefixes: every step derives its own from $MDMOPS_LAB_PREFIX (default mdmt), so two
# checkouts (or two people) running this at once must set different ones.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
[ "$(id -u)" = 0 ] || { echo "test: run as root (the lab uses network namespaces)" >&2; exit 1; }
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_DEPRECATION_WARNINGS=False ANSIBLE_NOCOLOR=1 PY_COLORS=0 NO_COLOR=1
# the lab must come up here: a lab that cannot start fails the run instead of skipping
export MDMOPS_LAB_REQUIRED=1
# the HTML report must be opened in a real browser: a missing chromium fails the run
export MDMOPS_BROWSER_REQUIRED=1
BASE=${MDMOPS_LAB_PREFIX:-mdmt}
JOBS=${MDMOPS_TEST_JOBS:-4}
LAB_WORKERS=${MDMOPS_TEST_WORKERS:-4}   # lab tests wait on timeouts and timers more than they compute
CURRENT_CORE=2.19
OLDER_CORES=(2.17 2.18)

# A private collections root (lab/collection.py), shared by every step, removed at the end.
work=$(mktemp -d /tmp/mdmops-test.XXXXXX) || exit 1
MDMOPS_COLLECTIONS_ROOT=$(python lab/collection.py) || exit 1
export MDMOPS_COLLECTIONS_ROOT ANSIBLE_COLLECTIONS_PATH=$MDMOPS_COLLECTIONS_ROOT
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  local pid
  for pid in "${!running[@]}"; do kill -- -"$pid" 2>/dev/null; done
  python lab/collection.py --remove "$MDMOPS_COLLECTIONS_ROOT"
  rm -rf "$work"
}
declare -A running=()
trap cleanup EXIT
trap 'exit 130' INT TERM

# longest first, so that the short ones (unit, the older cores' steps, lint) fill the gaps at the end
ALL=(lab serial "sanity-$CURRENT_CORE" molecule unit)
for v in "${OLDER_CORES[@]}"; do ALL+=("compat-$v" "sanity-$v"); done
ALL+=(lint)

steps=() skipped_by_env=()
if [ $# -eq 0 ]; then
  steps=("${ALL[@]}")
else
  for arg in "$@"; do
    case "$arg" in
      pytest) steps+=(unit lab serial) ;;
      compat) for v in "${OLDER_CORES[@]}"; do steps+=("compat-$v"); done ;;
      sanity) for v in "${OLDER_CORES[@]}" "$CURRENT_CORE"; do steps+=("sanity-$v"); done ;;
      *) if [[ " ${ALL[*]} setup-compat " == *" $arg "* ]]; then steps+=("$arg")
         else echo "test: unknown step $arg (${ALL[*]}, pytest, compat, sanity)" >&2; exit 2; fi ;;
    esac
  done
fi
# MDMOPS_TEST_SKIP="serial ..." leaves steps out (e.g. on a machine where another firewalld
# test run holds the system D-Bus socket); they show as "skipped" in the table
kept=()
for s in "${steps[@]}"; do
  if [[ " ${MDMOPS_TEST_SKIP:-} " == *" $s "* ]]; then skipped_by_env+=("$s"); else kept+=("$s"); fi
done
steps=("${kept[@]}")
# the older cores' virtualenvs are made once, before the steps that use them
for s in "${steps[@]}"; do
  case "$s" in compat-*|sanity-2.17|sanity-2.18) steps=(setup-compat "${steps[@]}"); break ;; esac
done

needs() {     # the step that must have ended before $1 starts
  case "$1" in compat-*|sanity-2.17|sanity-2.18) echo setup-compat ;; esac
}

# pytest: exit 5 means "no tests collected"; only the serial step may select none
run_pytest() {
  local allow_empty=$1; shift
  python -m pytest -p no:cacheprovider "$@"
  local rc=$?
  if [ "$rc" = 5 ] && [ "$allow_empty" = 1 ]; then echo "(no tests selected for this step)"; return 0; fi
  return "$rc"
}

run_step() {
  case "$1" in
    setup-compat) bash scripts/compat.sh setup "${OLDER_CORES[@]}" ;;
    unit) MDMOPS_LAB_PREFIX="${BASE}u" run_pytest 0 tests/unit ;;
    # test_compat.py is for the older cores: on this one test_return_docs.py and the module tests run the same
    lab) MDMOPS_LAB_PREFIX="${BASE}l" run_pytest 0 -n "$LAB_WORKERS" --dist worksteal --durations=25 -m "not serial" \
           --deselect tests/integration/test_compat.py tests/integration ;;
    serial) MDMOPS_LAB_PREFIX="${BASE}s" run_pytest 1 -m serial tests/integration ;;
    compat-*) MDMOPS_LAB_PREFIX="${BASE}c${1#compat-2.}" bash scripts/compat.sh "${1#compat-}" ;;
    # every sanity test on the current core; on the older ones all but pylint (the same code
    # linted again by an older pylint finds nothing new, and it is the slowest sanity test)
    sanity-"$CURRENT_CORE") bash scripts/sanity.sh --core "$CURRENT_CORE" ;;
    sanity-*) bash scripts/sanity.sh --core "${1#sanity-}" --skip-test pylint ;;
    lint) ansible-lint --offline --profile production && antsibull-changelog lint ;;
    molecule) MDMOPS_LAB_PREFIX="${BASE}m" bash scripts/molecule.sh ;;
  esac
}

declare -A result=() took=() started=()
pending=("${steps[@]}")
echo "test: ${#steps[@]} steps (${steps[*]}), up to $JOBS at a time; lab prefixes ${BASE}*"
total_start=$SECONDS

start_ready() {
  local step dep rest=()
  for step in "${pending[@]}"; do
    dep=$(needs "$step")
    if [ "${#running[@]}" -lt "$JOBS" ] && { [ -z "$dep" ] || [ -n "${result[$dep]:-}" ] || [[ " ${steps[*]} " != *" $dep "* ]]; }; then
      if [ -n "$dep" ] && [ -n "${result[$dep]:-}" ] && [ "${result[$dep]}" != ok ]; then
        result[$step]="skipped"; took[$step]=0
        echo "=== $step: skipped ($dep failed)"
        continue
      fi
      started[$step]=$SECONDS
      set -m
      # `times` at the end: the CPU seconds of the step and every process it waited for
      ( run_step "$step"; rc=$?; times >"$work/$step.cpu"; exit $rc ) >"$work/$step.log" 2>&1 </dev/null &
      set +m
      running[$!]=$step
      echo "--- $step started"
    else
      rest+=("$step")
    fi
  done
  pending=("${rest[@]}")
}

while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
  start_ready
  [ ${#running[@]} -gt 0 ] || continue
  done_pid=""
  wait -n -p done_pid "${!running[@]}"
  rc=$?
  [ -n "$done_pid" ] || continue
  step=${running[$done_pid]}
  unset "running[$done_pid]"
  took[$step]=$((SECONDS - ${started[$step]}))
  if [ "$rc" = 0 ]; then result[$step]=ok; else result[$step]="FAILED (exit $rc)"; fi
  echo
  echo "=================================== $step ==================================="
  cat "$work/$step.log"
  echo "=== $step: ${result[$step]} in ${took[$step]} s"
done
total=$((SECONDS - total_start))

# CPU seconds (user + system) of a step, from the `times` lines it wrote
cpu_seconds() {
  [ -s "$work/$1.cpu" ] || return 0
  grep -oE '[0-9]+m[0-9.]+s' "$work/$1.cpu" \
    | awk -Fm '{sub("s", "", $2); t += $1 * 60 + $2} END {printf "%d", t}'
}

# the time table (wall and CPU seconds: on 2 cores the run cannot end before CPU total / 2),
# then one closing line with every pytest step's counts added up
echo
printf '%-14s %-26s %8s %8s\n' step result seconds cpu
cpu_total=0
failed=0
passed_n=0 failed_n=0 skipped_n=0
for step in "${steps[@]}"; do
  cpu=$(cpu_seconds "$step")
  cpu_total=$((cpu_total + ${cpu:-0}))
  printf '%-14s %-26s %8s %8s\n' "$step" "${result[$step]:-not run}" "${took[$step]:-}" "$cpu"
  [ "${result[$step]:-}" = ok ] || failed=1
  line=$(grep -E '^=+ .* in [0-9.]+s' "$work/$step.log" 2>/dev/null | tail -1)
  for kind in passed failed error errors skipped; do
    n=$(grep -oE "[0-9]+ $kind\b" <<<"$line" | grep -oE '^[0-9]+' || true)
    n=${n:-0}
    case "$kind" in
      passed) passed_n=$((passed_n + n)) ;;
      failed|error|errors) failed_n=$((failed_n + n)) ;;
      skipped) skipped_n=$((skipped_n + n)) ;;
    esac
  done
done
for step in "${skipped_by_env[@]}"; do
  printf '%-14s %-26s %8s\n' "$step" "skipped (MDMOPS_TEST_SKIP)" ""
done
if [ -n "${MDMOPS_DEPS_SECONDS:-}" ]; then     # make test: scripts/bootstrap.sh ran first
  printf '%-14s %-26s %8s\n' "(deps)" ok "$MDMOPS_DEPS_SECONDS"
  total=$((total + MDMOPS_DEPS_SECONDS))
fi
printf '%-14s %-26s %8s %8s\n' total "$([ $failed = 0 ] && echo ok || echo FAILED)" "$total" "$cpu_total"
echo
if [ "$passed_n" = 0 ] && [[ " ${steps[*]} " == *" unit "* || " ${steps[*]} " == *" lab "* ]]; then
  echo "test: the pytest steps ran no test" >&2
  failed=1
fi
if [[ " ${steps[*]} " =~ \ (unit|lab|serial|compat-[0-9.]+)\  ]]; then
  echo "tests: $passed_n passed, $failed_n failed, $skipped_n skipped"
fi
exit $failed
