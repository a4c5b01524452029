#!/usr/bin/env bash
# ansible-test sanity from a copy of the tracked tree laid out as
# ansible_collections/mdmops/apple (ansible-test requires that path).
#   sanity.sh [--core 2.17|2.18|2.19] [ansible-test sanity options...]
# --core picks the ansible-core (and so the ansible-test) to run: 2.19 is .venv, the older
# ones are .venv-compat/<version> (made by `scripts/compat.sh setup`). Default: .venv.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
repo=$(pwd)
venv="$repo/.venv"
if [ "${1:-}" = --core ]; then
  [ -n "${2:-}" ] || { echo "sanity: --core needs a version" >&2; exit 2; }
  if [ -x "$repo/.venv-compat/$2/bin/ansible-test" ]; then
    venv="$repo/.venv-compat/$2"
  elif [[ "$("$venv/bin/ansible" --version 2>/dev/null)" != *"core $2."* ]]; then
    echo "sanity: no ansible-core $2 here (run: bash scripts/compat.sh setup $2)" >&2
    exit 2
  fi
  shift 2
fi
version=$("$venv/bin/ansible" --version)
echo "sanity: ${version%%$'\n'*}"
root=$(mktemp -d /tmp/mdmops-sanity.XXXXXX)
trap 'rm -rf "$root"' EXIT
dest="$root/ansible_collections/mdmops/apple"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | (while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) \
  | xargs -0 cp --parents -t "$dest"
# ansible-test keeps its virtualenvs and caches under ~/.ansible/test, one set per requirement
# hash: two runs at once (two cores side by side in `make test`) would build and delete the
# same virtualenvs. Each core gets a home of its own for ansible-test, kept between runs.
core=$("$venv/bin/python" -c 'import ansible.release as r; print(".".join(r.__version__.split(".")[:2]))')
user_pip_conf=~/.config/pip/pip.conf
[ ! -f "$user_pip_conf" ] || [ -n "${PIP_CONFIG_FILE:-}" ] || export PIP_CONFIG_FILE=$user_pip_conf
export HOME="${XDG_CACHE_HOME:-$HOME/.cache}/mdmops-apple/ansible-test-$core"
mkdir -p "$HOME"
# ansible-test downloads a pip bootstrap script (get-pip.py) from a host CI cannot reach, into
# ~/.ansible/test/cache/get_pip_<pip version>.py; each core asks for its own pip version
# (2.17: 23.1.2; 2.18, 2.19: 24.2). ../shared/tools holds one get-pip.py, which installs
# whatever pip version ansible-test then names, so it serves under each name.
bootstrap=$repo/../shared/tools/ansible-test-get-pip.py
pip_version=$(grep -m1 -oE "pip='[0-9.]+'" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py \
  | head -1 | grep -oE "[0-9.]+[0-9]")
cache=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ -f "$bootstrap" ] && [ ! -f "$cache" ]; then
  mkdir -p "$(dirname "$cache")"
  cp "$bootstrap" "$cache.$$" && mv "$cache.$$" "$cache"
fi
cd "$dest"
git init -q . && git add -A >/dev/null   # ansible-test lists files through git
PATH="$venv/bin:$PATH" ansible-test sanity --local --python 3.11 --requirements "$@"
