#!/usr/bin/env bash
# ansible-test sanity from a copy of the tracked tree laid out as
# ansible_collections/mdmops/apple (ansible-test requires that path).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
root=$(mktemp -d /tmp/mdmops-sanity.XXXXXX)
trap 'rm -rf "$root"' EXIT
dest="$root/ansible_collections/mdmops/apple"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$dest" 2>/dev/null || true
# ansible-test fetches a pip bootstrap script from the Internet; use the copy in ../shared/tools.
version=$("$repo"/.venv/bin/ansible-test --version 2>/dev/null | awk '{print $2}')
mkdir -p ~/.ansible/test/cache
for f in ../shared/tools/ansible-test-get-pip.py; do
  [ -f "$f" ] && cp "$f" ~/.ansible/test/cache/get_pip_24_2.py
done
cd "$dest"
git init -q . && git add -A >/dev/null   # ansible-test lists files through git
PATH="$repo/.venv/bin:$PATH" ansible-test sanity --local --python 3.11 --requirements "$@"
