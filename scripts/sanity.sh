#!/usr/bin/env bash
# ansible-test sanity from a copy of the tracked tree laid out as
# ansible_collections/mdmops/apple (ansible-test requires that path).
set -euo pipefail
cd "$(dirname "$0")/.." || exit 1
repo=$(pwd)
root=$(mktemp -d /tmp/mdmops-sanity.XXXXXX)
trap 'rm -rf "$root"' EXIT
dest="$root/ansible_collections/mdmops/apple"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$dest" 2>/dev/null || true
# ansible-test downloads a pip bootstrap script from the Internet, which CI cannot reach;
# ../shared/tools holds the one ansible-test 2.19 asks for (get_pip_24_2.py).
bootstrap=../shared/tools/ansible-test-get-pip.py
if [ -f "$bootstrap" ]; then
  mkdir -p ~/.ansible/test/cache
  cp "$bootstrap" ~/.ansible/test/cache/get_pip_24_2.py
fi
cd "$dest"
git init -q . && git add -A >/dev/null   # ansible-test lists files through git
PATH="$repo/.venv/bin:$PATH" ansible-test sanity --local --python 3.11 --requirements "$@"
